//! The key page's "Signed requests (ollama CLI)" section: paste, refuse, remove.

use super::*;

const LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIqI4910CfGV/VLbLTy6XXLKZwm/HZQSG/N0iAG0D29c";
const FINGERPRINT: &str = "SHA256:fe85JkIjo8VPe+XqXJGH5Mau1EMFdK1OdKvJUFicyA8";

#[actix_web::test]
async fn the_key_page_adds_and_removes_public_keys() {
    let app = spawn_app().await;
    let (_, key) = app.create_key(json!({"name": "cli"})).await;
    let id = key["id"].as_i64().unwrap();
    let mut browser = Browser::new(&app);
    browser.log_in(ADMIN_PASSWORD).await;
    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(page.body.contains("Signed requests (ollama CLI)"), "{}", page.body);
    assert!(page.body.contains("OLLAMA_AUTH=1") && page.body.contains("~/.ollama/id_ed25519.pub"));
    assert!(page.body.contains("No public keys yet."));
    let csrf = page.csrf();

    // Without the CSRF token: nothing happens.
    let forged = browser.post(&format!("/keys/{id}/public-keys"), &[("public_key", LINE)]).await;
    assert_ne!(forged.status, StatusCode::SEE_OTHER);
    assert_eq!(app.admin("GET", &format!("/api-keys/{id}/public-keys"), None).await.json(), json!([]));

    // A bad line comes back with its error and what was pasted.
    let bad = browser
        .post(
            &format!("/keys/{id}/public-keys"),
            &[("csrf_token", &csrf), ("public_key", "ssh-rsa AAAAB3Nza <x>")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("The public key was not added"), "{}", bad.body);
    assert!(bad.body.contains("only ssh-ed25519 public keys are accepted"), "{}", bad.body);
    let pasted = bad.body.split("name=\"public_key\"").nth(1).unwrap_or(&bad.body);
    assert!(pasted.contains("ssh-rsa AAAAB3Nza"), "{pasted}");
    assert!(!bad.body.contains("<x>"), "the pasted text is escaped");

    let line = format!("{LINE} alice@laptop");
    let added = browser
        .post(&format!("/keys/{id}/public-keys"), &[("csrf_token", &csrf), ("public_key", &line)])
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), Some(format!("/keys/{id}?notice=saved").as_str()));
    let page = browser.get(&format!("/keys/{id}")).await;
    assert!(page.body.contains(FINGERPRINT) && page.body.contains("alice@laptop"), "{}", page.body);
    assert!(page.body.contains("never"));

    // The same key again: refused, saying so.
    let again = browser
        .post(&format!("/keys/{id}/public-keys"), &[("csrf_token", &csrf), ("public_key", LINE)])
        .await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("already registered"));

    // Removal asks first, then goes.
    let pk = app.admin("GET", &format!("/api-keys/{id}/public-keys"), None).await.json()[0]["id"]
        .as_i64()
        .unwrap();
    let ask = browser.get(&format!("/keys/{id}/public-keys/{pk}/remove")).await;
    assert_eq!(ask.status, StatusCode::OK);
    assert!(ask.body.contains(FINGERPRINT) && ask.body.contains("Remove the public key"));
    let gone = browser.post(&format!("/keys/{id}/public-keys/{pk}/remove"), &[("csrf_token", &csrf)]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(app.admin("GET", &format!("/api-keys/{id}/public-keys"), None).await.json(), json!([]));
    let missing =
        browser.post(&format!("/keys/{id}/public-keys/{pk}/remove"), &[("csrf_token", &csrf)]).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}
