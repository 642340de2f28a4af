//! Teams: the list, a team's page with its limits, its members and their
//! keys, and its requests, and the changes made there: create, save, delete.

use super::bars::{Bars, LimitTable};
use super::names::Names;
use super::person_form::{self, PersonForm};
use super::usage::UsageRows;
use super::users::PersonDeletePage;
use super::{html_safe, redirect_notice, render, render_status, render_swappable};
use super::{Chrome, Nav, Notice, NoticeQuery, Page, Swappable};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::people::{CreateTeam, PatchTeam, PeopleOps};
use crate::admin::AdminState;
use crate::domain::limits::LimitsPatch;
use crate::domain::time::rfc3339;
use crate::store::{TeamRecord, UsageFilter};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::HttpRequest;
use askama::Template;
use serde::Deserialize;

struct TeamRowView {
    id: i64,
    name: String,
    users: usize,
    keys: usize,
    bars: Bars,
}

/// The teams table: what the search swaps.
#[derive(Template)]
#[template(path = "admin/teams_partial.html")]
struct TeamsPartial {
    teams: Vec<TeamRowView>,
}

html_safe!(TeamsPartial);

#[derive(Template)]
#[template(path = "admin/teams.html")]
struct TeamsPage {
    chrome: Chrome,
    q: String,
    table: TeamsPartial,
}

impl Swappable for TeamsPage {
    type Partial = TeamsPartial;
    fn partial(&self) -> &TeamsPartial {
        &self.table
    }
}

#[derive(Deserialize)]
pub struct TeamsQuery {
    q: Option<String>,
    notice: Option<String>,
}

pub async fn teams_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<TeamsQuery>,
) -> Page {
    let w = state.windows();
    let q = query.q.clone().unwrap_or_default();
    let needle = q.to_lowercase();
    let users = state.store.list_users().await?;
    let teams = state
        .store
        .list_teams()
        .await?
        .iter()
        .filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle))
        .map(|t| {
            let members = users.iter().filter(|u| u.team_id == Some(t.id));
            TeamRowView {
                id: t.id,
                name: t.name.clone(),
                users: members.clone().count(),
                keys: members.map(|u| u.key_ids.len()).sum(),
                bars: Bars::of(&t.own, &w),
            }
        })
        .collect();
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let chrome = Chrome::new(&console.session, Nav::Teams).with_notice(notice);
    render_swappable(&req, &TeamsPage { chrome, q, table: TeamsPartial { teams } })
}

#[derive(Template)]
#[template(path = "admin/team_new.html")]
struct TeamNewPage {
    chrome: Chrome,
    form: PersonForm,
}

pub async fn new_team_form(console: Console) -> Page {
    render(&TeamNewPage { chrome: Chrome::new(&console.session, Nav::Teams), form: PersonForm::blank() })
}

pub async fn create_team(req: HttpRequest, state: Data<AdminState>, post: CsrfForm) -> Page {
    let refused = |form: PersonForm| {
        let page = TeamNewPage { chrome: Chrome::new(&post.session, Nav::Teams), form };
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
    };
    let person = match person_form::read(&post.form) {
        Ok(person) => person,
        Err(form) => return refused(*form),
    };
    let input = CreateTeam {
        name: person.name,
        limits: Some(person.limits),
        model_limits: Some(person.model_limits),
        alerts: person.alerts.map(|soft| Some(soft.to_json())),
    };
    match PeopleOps::of(&state, post.actor).create_team(input).await {
        Ok(team) => {
            log::info!("created team {} from the console", team.id);
            Ok(redirect_notice(&req, &format!("/teams/{}", team.id), Notice::Saved))
        }
        Err(e) => refused(PersonForm::refused(&post.form, e)?),
    }
}

/// A member of a team, with their keys.
struct MemberView {
    id: i64,
    name: String,
    email: String,
    bars: Bars,
    /// (id, name, status) of each key.
    keys: Vec<(i64, String, &'static str)>,
}

#[derive(Template)]
#[template(path = "admin/team_detail.html")]
struct TeamDetailPage {
    chrome: Chrome,
    id: i64,
    name: String,
    created: String,
    limits: LimitTable,
    members: Vec<MemberView>,
    recent: UsageRows,
    form: PersonForm,
}

/// A team's page; with a form that has errors, those and a 422.
async fn detail_page(state: &AdminState, chrome: Chrome, t: &TeamRecord, form: PersonForm) -> Page {
    let w = state.windows();
    let keys = state.store.list_keys().await?;
    let users = state.store.list_users().await?;
    // The team's requests may be of users who have left it since.
    let names = Names::of(users.iter().map(|u| (u.id, u.name.clone())));
    let members = users
        .into_iter()
        .filter(|u| u.team_id == Some(t.id))
        .map(|u| MemberView {
            id: u.id,
            bars: Bars::of(&u.own, &w),
            keys: keys
                .iter()
                .filter(|k| k.fields.user_id == Some(u.id))
                .map(|k| (k.id, k.fields.name.clone(), k.status(w.now).as_str()))
                .collect(),
            name: u.name,
            email: u.email.unwrap_or_default(),
        })
        .collect();
    let filter = UsageFilter { team_id: Some(t.id), limit: 20, ..UsageFilter::default() };
    let status = if form.has_errors() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = TeamDetailPage {
        chrome,
        id: t.id,
        name: t.name.clone(),
        created: rfc3339(t.created_at),
        limits: LimitTable::new(Bars::of(&t.own, &w), &t.models, &w),
        members,
        recent: UsageRows::new(&state.store.usage_rows(&filter).await?, state.settings.app_tz, &names),
        form,
    };
    render_status(status, &page)
}

pub async fn team_detail(
    console: Console,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<NoticeQuery>,
) -> Page {
    let t = PeopleOps::of(&state, console.actor).team(*id).await?;
    let chrome = Chrome::new(&console.session, Nav::Teams).with_notice(query.notice());
    detail_page(&state, chrome, &t, PersonForm::of_team(&t)).await
}

pub async fn update_team(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    let ops = PeopleOps::of(&state, post.actor);
    let t = ops.team(*id).await?;
    let chrome = || Chrome::new(&post.session, Nav::Teams);
    let person = match person_form::read(&post.form) {
        Ok(person) => person,
        Err(form) => return detail_page(&state, chrome(), &t, *form).await,
    };
    let patch = PatchTeam {
        name: Some(person.name),
        model_limits: Some(person.model_limits),
        alerts: person.alerts.map(|soft| Some(soft.to_json())),
    };
    let saved = match ops.patch_team(t.id, patch).await {
        Ok(_) => ops.team_quota(t.id, &LimitsPatch::all(&person.limits)).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(redirect_notice(&req, &format!("/teams/{}", t.id), Notice::Saved)),
        Err(e) => detail_page(&state, chrome(), &t, PersonForm::refused(&post.form, e)?).await,
    }
}

pub async fn delete_team_form(console: Console, state: Data<AdminState>, id: Path<i64>) -> Page {
    let t = PeopleOps::of(&state, console.actor).team(*id).await?;
    render(&PersonDeletePage {
        chrome: Chrome::new(&console.session, Nav::Teams),
        what: "team",
        name: t.name,
        action: format!("/teams/{}/delete", t.id),
        back: format!("/teams/{}", t.id),
        consequence: "Its users stay, without a team; their keys keep working under their own limits and \
                      their users'. The usage history is kept.",
    })
}

pub async fn delete_team(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    PeopleOps::of(&state, post.actor).delete_team(*id).await?;
    log::info!("deleted team {} from the console", *id);
    Ok(redirect_notice(&req, "/teams", Notice::TeamDeleted))
}
