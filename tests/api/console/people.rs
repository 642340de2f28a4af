//! Users and teams in the console: their pages and forms, the key form's
//! user, and usage filtered and grouped by user and team, without JavaScript.

use super::{escaped, Browser, Page};
use crate::helpers::*;
use awc::http::StatusCode;
use serde_json::{json, Value};

/// The id at the end of a redirect to `/{section}/{id}?notice=saved`.
fn created_id(page: &Page, section: &str) -> i64 {
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    let to = page.location().expect("a redirect");
    let rest = to.strip_prefix(&format!("/{section}/")).unwrap_or_else(|| panic!("{to}"));
    assert!(rest.ends_with("?notice=saved"), "{to}");
    rest.trim_end_matches("?notice=saved").parse().unwrap()
}

/// The text of the field with `id` up to the end of its `div`, where its error stands.
fn field<'a>(page: &'a Page, id: &str) -> &'a str {
    let at = page.body.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no field {id}"));
    &page.body[at..at + page.body[at..].find("</div>").unwrap()]
}

async fn api(app: &TestApp, path: &str) -> Value {
    let reply = app.admin("GET", path, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.json()
}

#[actix_web::test]
async fn users_and_teams_are_created_edited_and_deleted_with_plain_forms() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;

    let created = browser
        .post(
            "/teams",
            &[
                ("csrf_token", &csrf),
                ("name", "physics"),
                ("daily_requests", "3"),
                ("model_limits", "llama3 daily_tokens=100\nqwen3:*, max_concurrent=1"),
            ],
        )
        .await;
    let team = created_id(&created, "teams");
    let t = api(&app, &format!("/teams/{team}")).await;
    assert_eq!(t["limits"]["daily_requests"], 3);
    assert_eq!(t["model_limits"][0]["model"], "llama3");
    assert_eq!(t["model_limits"][0]["limits"]["daily_tokens"], 100);
    assert_eq!(t["model_limits"][1]["model"], "qwen3:*");
    assert_eq!(t["model_limits"][1]["limits"]["max_concurrent"], 1);

    let taken = browser.post("/teams", &[("csrf_token", &csrf), ("name", "physics")]).await;
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field(&taken, "name").contains("already exists"), "{}", field(&taken, "name"));

    let team_field = team.to_string();
    for (name, value, error_at, says) in [
        ("email", "not-an-address", "email", "is not an e-mail address"),
        ("model_limits", "llama3 tokens=5", "model_limits", "is not a limit"),
        ("model_limits", "llama3 daily_tokens=1\nLLAMA3 daily_tokens=2", "model_limits", "twice"),
        ("team_id", "999", "team_id", "no team with id 999"),
        ("daily_tokens", "-1", "max_concurrent", "daily_tokens must be a whole number"),
    ] {
        let page = browser.post("/users", &[("csrf_token", &csrf), ("name", "ana"), (name, value)]).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{name}={value}");
        let near = if error_at == "max_concurrent" {
            &page.body[page.body.find("id=\"max_concurrent\"").unwrap()..]
        } else {
            field(&page, error_at)
        };
        assert!(near.contains("class=\"error\"") && near.contains(says), "{name}={value}: {near}");
        assert!(
            page.body.contains(&format!("value=\"{value}\"")) || name != "email",
            "the form keeps what was typed"
        );
    }
    assert_eq!(api(&app, "/users").await, json!([]), "nothing was created by a refused form");

    let created = browser
        .post(
            "/users",
            &[
                ("csrf_token", &csrf),
                ("name", "ana"),
                ("email", "ana@example.org"),
                ("team_id", &team_field),
                ("daily_tokens", "500"),
            ],
        )
        .await;
    let user = created_id(&created, "users");
    let u = api(&app, &format!("/users/{user}")).await;
    assert_eq!((u["email"].as_str(), u["team_id"].as_i64()), (Some("ana@example.org"), Some(team)));
    assert_eq!(u["limits"]["daily_tokens"], 500);

    // The key form picks the user and takes limits per model.
    let new_key = browser.get(&format!("/keys/new?user_id={user}")).await;
    assert!(
        new_key.body.contains(&format!("<option value=\"{user}\" selected>ana</option>")),
        "{}",
        new_key.body
    );
    let made = browser
        .post(
            "/keys",
            &[
                ("csrf_token", &csrf),
                ("name", "ana laptop"),
                ("scopes", "inference"),
                ("user_id", &user.to_string()),
                ("model_limits", "llama3 daily_requests=2"),
            ],
        )
        .await;
    let to = made.location().unwrap().to_owned();
    let secret_page = browser.get(&to).await;
    let at = secret_page.body.find("sk-og-").expect("the secret");
    let secret = secret_page.body[at..at + secret_page.body[at..].find('<').unwrap()].to_owned();
    let key_id: i64 = to.trim_start_matches("/keys/").split('/').next().unwrap().parse().unwrap();
    let k = api(&app, &format!("/api-keys/{key_id}")).await;
    assert_eq!(k["user_id"], user);
    assert_eq!(k["model_limits"][0]["model"], "llama3");
    assert_eq!(k["model_limits"][0]["limits"]["daily_requests"], 2);

    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK);
    app.settled(&json!(key_id)).await;

    let key_page = browser.get(&format!("/keys/{key_id}")).await;
    assert!(
        key_page.body.contains(&format!("user <a href=\"/users/{user}\">ana</a>")),
        "the key names its user"
    );
    assert!(key_page.body.contains(&format!("team <a href=\"/teams/{team}\">physics</a>")));
    assert!(
        key_page.body.contains("on llama3") && key_page.body.contains("1 / 2"),
        "the key's limit per model"
    );
    assert!(key_page.body.contains("llama3 daily_requests=2"), "the form shows it as typed");

    let user_page = browser.get(&format!("/users/{user}")).await;
    assert_eq!(user_page.status, StatusCode::OK);
    for needle in
        ["ana laptop", "ana@example.org", "tokens today", "/ 500", "Recent requests", "llama3:latest"]
    {
        assert!(user_page.body.contains(needle), "the user's page lacks {needle}");
    }
    let team_page = browser.get(&format!("/teams/{team}")).await;
    for needle in ["Members", ">ana</a>", ">ana laptop</a>", "requests today", "1 / 3", "on qwen3:*"] {
        assert!(team_page.body.contains(needle), "the team's page lacks {needle}");
    }
    assert!(browser.get("/users?q=ANA").await.body.contains(">ana</a>"), "search ignores case");
    assert!(browser.get("/users?q=example.org").await.body.contains(">ana</a>"), "search reads e-mail");
    assert!(browser.get("/users?q=zed").await.body.contains("No users match"));
    assert!(browser.get(&format!("/users?team_id={team}")).await.body.contains(">ana</a>"));
    assert!(browser.get("/teams?q=PHY").await.body.contains(">physics</a>"));
    assert!(browser.get("/teams?q=chem").await.body.contains("No teams match"));
    assert!(browser.get("/keys?q=ana").await.body.contains("ana laptop"), "keys are found by their user");

    // Saving the user's form: a new name, no team, the limits as typed.
    let saved = browser
        .post(
            &format!("/users/{user}"),
            &[("csrf_token", &csrf), ("name", "ana b"), ("team_id", ""), ("daily_tokens", "")],
        )
        .await;
    assert_eq!(saved.location(), Some(format!("/users/{user}?notice=saved").as_str()));
    let u = api(&app, &format!("/users/{user}")).await;
    assert_eq!((u["name"].as_str(), u["team_id"].as_i64()), (Some("ana b"), None));
    assert_eq!(u["limits"]["daily_tokens"], Value::Null);
    assert_eq!(u["key_ids"], json!([key_id]), "the user keeps their keys");
    let saved = browser
        .post(
            &format!("/teams/{team}"),
            &[("csrf_token", &csrf), ("name", "physics 2"), ("daily_requests", "9"), ("model_limits", "")],
        )
        .await;
    assert_eq!(saved.location(), Some(format!("/teams/{team}?notice=saved").as_str()));
    let t = api(&app, &format!("/teams/{team}")).await;
    assert_eq!((t["name"].as_str(), &t["limits"]["daily_requests"]), (Some("physics 2"), &json!(9)));
    assert_eq!(t["model_limits"], json!([]));

    // Deleting: the team's users stay; the user's keys keep working.
    browser
        .post(
            &format!("/users/{user}"),
            &[("csrf_token", &csrf), ("name", "ana b"), ("team_id", &team_field)],
        )
        .await;
    let confirm = browser.get(&format!("/teams/{team}/delete")).await;
    assert!(confirm.body.contains("Delete the team") && confirm.body.contains("Its users stay"));
    let gone = browser.post(&format!("/teams/{team}/delete"), &[("csrf_token", &csrf)]).await;
    assert_eq!(gone.location(), Some("/teams?notice=team-deleted"));
    assert_eq!(api(&app, &format!("/users/{user}")).await["team_id"], Value::Null);
    let confirm = browser.get(&format!("/users/{user}/delete")).await;
    assert!(confirm.body.contains("Delete the user") && confirm.body.contains("keep working"));
    let gone = browser.post(&format!("/users/{user}/delete"), &[("csrf_token", &csrf)]).await;
    assert_eq!(gone.location(), Some("/users?notice=user-deleted"));
    assert!(browser.get("/users?notice=user-deleted").await.body.contains("The user was deleted"));
    assert_eq!(app.admin("GET", &format!("/users/{user}"), None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(browser.get(&format!("/users/{user}")).await.status, StatusCode::NOT_FOUND);
    assert_eq!(api(&app, &format!("/api-keys/{key_id}")).await["user_id"], Value::Null);
    assert_eq!(app.generate(&secret, "llama3", false).await.status, StatusCode::OK, "the key works on");
    let history = browser.get(&format!("/usage?key_id={key_id}")).await;
    assert!(history.body.contains(&format!("#{user} (deleted)")), "history keeps who it was for");
}

#[actix_web::test]
async fn usage_is_filtered_and_grouped_by_user_and_team_on_the_page_and_in_csv() {
    let app = spawn_app().await;
    let team = app.admin("POST", "/teams", Some(json!({"name": "chem"}))).await.json();
    let ana = app.admin("POST", "/users", Some(json!({"name": "ana", "team_id": team["id"]}))).await.json();
    let bo = app.admin("POST", "/users", Some(json!({"name": "bo", "team_id": team["id"]}))).await.json();
    let (ana_key, ak) = app.create_key(json!({"name": "ana's", "user_id": ana["id"]})).await;
    let (bo_key, bk) = app.create_key(json!({"name": "bo's", "user_id": bo["id"]})).await;
    let (lone_key, lk) = app.create_key(json!({"name": "lone"})).await;
    for (secret, n) in [(&ana_key, 2), (&bo_key, 1), (&lone_key, 1)] {
        for _ in 0..n {
            assert_eq!(app.generate(secret, "llama3", false).await.status, StatusCode::OK);
        }
    }
    for k in [&ak, &bk, &lk] {
        app.settled(&k["id"]).await;
    }
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;

    let only_ana = browser.get(&format!("/usage?user_id={}", ana["id"])).await;
    assert_eq!(only_ana.body.matches("<tr><td>").count(), 2, "{}", only_ana.body);
    assert!(!only_ana.body.contains(">bo's</a>") && !only_ana.body.contains(">lone</a>"));
    assert!(only_ana.body.contains(&format!("<option value=\"{}\" selected>ana</option>", ana["id"])));
    let the_team = browser.get(&format!("/usage?team_id={}", team["id"])).await;
    assert_eq!(the_team.body.matches("<tr><td>").count(), 3);

    let per_user = browser.get("/usage?group_by=user").await;
    assert_eq!(per_user.status, StatusCode::OK);
    let rows: Vec<&str> = per_user.body.split("<tr>").filter(|r| r.starts_with("<td>")).collect();
    assert_eq!(rows.len(), 3, "ana, bo and no user: {rows:?}");
    assert!(rows.iter().any(|r| r.contains(">ana</a>") && r.contains("<td class=\"num\">2</td>")));
    assert!(rows.iter().any(|r| r.contains("no user") && r.contains("<td class=\"num\">1</td>")));
    let per_team = browser.get("/usage?group_by=team").await;
    assert!(per_team
        .body
        .contains(&format!("<a href=\"/teams/{}\">chem</a></td><td class=\"num\">3</td>", team["id"])));
    assert_eq!(browser.get("/usage?group_by=colour").await.status, StatusCode::BAD_REQUEST);
    assert!(per_team.body.contains("/usage.csv?group_by=team"), "the export keeps the grouping");

    let csv = browser.get("/usage.csv?group_by=user").await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines[0],
        "user,user_name,requests,prompt_tokens,completion_tokens,total_tokens,weighted_tokens"
    );
    let ana_line = format!("\"{}\",\"ana\",2,", ana["id"]);
    assert!(lines.iter().any(|l| l.starts_with(&ana_line)), "{lines:?}");
    let csv = browser.get(&format!("/usage.csv?team_id={}", team["id"])).await;
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(
        lines[0].ends_with(",user_id,user_name,team_id,weighted_tokens,request_id,local_time"),
        "{}",
        lines[0]
    );
    assert_eq!(lines.len(), 4);
    let bo_line = lines.iter().find(|l| l.contains("\"bo's\"")).unwrap();
    assert!(bo_line.contains(&format!(",{},\"bo\",{},", bo["id"], team["id"])), "{bo_line}");

    let dashboard = browser.get("/").await;
    let top_users = &dashboard.body[dashboard.body.find("Top users this month").unwrap()..];
    let top_users = &top_users[..top_users.find("</table>").unwrap()];
    assert!(top_users.find(">ana<").unwrap() < top_users.find(">bo<").unwrap(), "ana used more: {top_users}");
    assert!(dashboard.body[dashboard.body.find("Top teams this month").unwrap()..].contains(">chem<"));
}

#[actix_web::test]
async fn names_with_html_are_escaped_on_every_people_page() {
    let app = spawn_app().await;
    let name = "<script>alert(1)</script>";
    let team = app.admin("POST", "/teams", Some(json!({"name": name}))).await.json();
    let user = app.admin("POST", "/users", Some(json!({"name": name, "team_id": team["id"]}))).await.json();
    let (secret, key) = app.create_key(json!({"name": "k", "user_id": user["id"]})).await;
    app.generate(&secret, "llama3", false).await;
    app.settled(&key["id"]).await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    for path in [
        "/".to_owned(),
        "/users".into(),
        "/teams".into(),
        format!("/users/{}", user["id"]),
        format!("/teams/{}", team["id"]),
        format!("/users/{}/delete", user["id"]),
        format!("/keys/{}", key["id"]),
        "/usage".into(),
        "/usage?group_by=team".into(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(escaped(&page.body) && !page.body.contains(name), "{path}");
    }
}

#[actix_web::test]
async fn forged_form_fields_change_nothing() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let csrf = browser.csrf().await;
    // A user that does not exist, and one that is not a number.
    for user_id in ["999", "1 OR 1=1"] {
        let page = browser
            .post(
                "/keys",
                &[("csrf_token", &csrf), ("name", "forged"), ("scopes", "inference"), ("user_id", user_id)],
            )
            .await;
        assert!(page.status.is_client_error(), "{user_id}: {}", page.status);
    }
    assert_eq!(app.admin("GET", "/api-keys", None).await.json().as_array().map(Vec::len), Some(0));
    let long = "n".repeat(300);
    let page = browser.post("/users", &[("csrf_token", &csrf), ("name", &long)]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field(&page, "name").contains("name must be 1 to"), "{}", field(&page, "name"));
    let page = browser.post("/teams", &[("csrf_token", &csrf), ("name", "  ")]).await;
    assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Without the session's token nothing is created.
    let page = browser.post("/teams", &[("csrf_token", "forged"), ("name", "chem")]).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(app.admin("GET", "/teams", None).await.json(), json!([]));
    assert_eq!(app.admin("GET", "/users", None).await.json(), json!([]));
}
