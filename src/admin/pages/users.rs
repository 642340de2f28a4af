//! Users: the list (its table swapped by htmx as the filter changes), a
//! user's page with their limits, keys and requests, and the changes made
//! there: create, save, delete.

use super::bars::{Bars, LimitTable};
use super::key_list::{key_row, KeysPartial};
use super::names::Names;
use super::person_form::{self, PersonForm};
use super::usage::UsageRows;
use super::{html_safe, redirect_notice, render, render_status, render_swappable};
use super::{Chrome, Nav, Notice, NoticeQuery, Page, Swappable};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::people::{CreateUser, PatchUser, PeopleOps};
use crate::admin::AdminState;
use crate::domain::limits::LimitsPatch;
use crate::domain::time::rfc3339;
use crate::domain::windows::Windows;
use crate::store::{UsageFilter, UserRecord};
use actix_web::http::StatusCode;
use actix_web::web::{Data, Path, Query};
use actix_web::HttpRequest;
use askama::Template;
use serde::Deserialize;

struct UserRowView {
    id: i64,
    name: String,
    email: String,
    team: Option<(i64, String)>,
    keys: usize,
    bars: Bars,
}

fn user_row(u: &UserRecord, w: &Windows, teams: &Names) -> UserRowView {
    UserRowView {
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone().unwrap_or_default(),
        team: teams.link(u.team_id),
        keys: u.key_ids.len(),
        bars: Bars::of(&u.own, w),
    }
}

/// The users table: what the filter form swaps.
#[derive(Template)]
#[template(path = "admin/users_partial.html")]
struct UsersPartial {
    users: Vec<UserRowView>,
}

html_safe!(UsersPartial);

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    q: String,
    team_options: Vec<(i64, String, bool)>,
    table: UsersPartial,
}

impl Swappable for UsersPage {
    type Partial = UsersPartial;
    fn partial(&self) -> &UsersPartial {
        &self.table
    }
}

#[derive(Deserialize)]
pub struct UsersQuery {
    q: Option<String>,
    /// A string, so that the form's empty "any team" choice means no filter.
    team_id: Option<String>,
    notice: Option<String>,
}

pub async fn users_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    query: Query<UsersQuery>,
) -> Page {
    let q = query.q.clone().unwrap_or_default();
    let needle = q.to_lowercase();
    let team = query.team_id.clone().unwrap_or_default();
    let teams = Names::teams(&state).await?;
    let w = state.windows();
    let users = state
        .store
        .list_users()
        .await?
        .iter()
        .filter(|u| team.is_empty() || u.team_id.map(|t| t.to_string()) == Some(team.clone()))
        .map(|u| user_row(u, &w, &teams))
        .filter(|u| {
            needle.is_empty()
                || u.name.to_lowercase().contains(&needle)
                || u.email.to_lowercase().contains(&needle)
        })
        .collect();
    let team_options = teams.options(team.parse().ok());
    let notice = query.notice.as_deref().and_then(Notice::parse);
    let chrome = Chrome::new(&console.session, Nav::Users).with_notice(notice);
    render_swappable(&req, &UsersPage { chrome, q, team_options, table: UsersPartial { users } })
}

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct UserNewPage {
    chrome: Chrome,
    form: PersonForm,
}

#[derive(Deserialize)]
pub struct NewUserQuery {
    /// Opens the form with this team chosen (a team's page links here).
    team_id: Option<i64>,
}

pub async fn new_user_form(console: Console, state: Data<AdminState>, query: Query<NewUserQuery>) -> Page {
    let mut form = PersonForm::blank();
    form.team_id = query.team_id.map(|t| t.to_string()).unwrap_or_default();
    let form = form.with_teams(&Names::teams(&state).await?);
    render(&UserNewPage { chrome: Chrome::new(&console.session, Nav::Users), form })
}

/// The new-user form back with its errors.
async fn new_user_refused(state: &AdminState, post: &CsrfForm, form: PersonForm) -> Page {
    let form = form.with_teams(&Names::teams(state).await?);
    let page = UserNewPage { chrome: Chrome::new(&post.session, Nav::Users), form };
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

pub async fn create_user(req: HttpRequest, state: Data<AdminState>, post: CsrfForm) -> Page {
    let person = match person_form::read(&post.form) {
        Ok(person) => person,
        Err(form) => return new_user_refused(&state, &post, *form).await,
    };
    let input = CreateUser {
        name: person.name,
        email: person.email,
        team_id: person.team_id,
        limits: Some(person.limits),
        model_limits: Some(person.model_limits),
        alerts: person.alerts.map(|soft| Some(soft.to_json())),
    };
    match PeopleOps::of(&state, post.actor).create_user(input).await {
        Ok(user) => {
            log::info!("created user {} from the console", user.id);
            Ok(redirect_notice(&req, &format!("/users/{}", user.id), Notice::Saved))
        }
        Err(e) => new_user_refused(&state, &post, PersonForm::refused(&post.form, e)?).await,
    }
}

#[derive(Template)]
#[template(path = "admin/user_detail.html")]
struct UserDetailPage {
    chrome: Chrome,
    id: i64,
    name: String,
    email: String,
    team: Option<(i64, String)>,
    created: String,
    limits: LimitTable,
    keys: KeysPartial,
    recent: UsageRows,
    form: PersonForm,
}

/// A user's page; with a form that has errors, those and a 422.
async fn detail_page(state: &AdminState, chrome: Chrome, u: &UserRecord, form: PersonForm) -> Page {
    let w = state.windows();
    let teams = Names::teams(state).await?;
    // The user's keys and requests are all theirs.
    let users = Names::of([(u.id, u.name.clone())]);
    let keys = state
        .store
        .list_keys()
        .await?
        .iter()
        .filter(|k| k.fields.user_id == Some(u.id))
        .map(|k| key_row(k, &w, &users, state.settings.app_tz))
        .collect();
    let filter = UsageFilter { user_id: Some(u.id), limit: 20, ..UsageFilter::default() };
    let status = if form.has_errors() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let page = UserDetailPage {
        chrome,
        id: u.id,
        name: u.name.clone(),
        email: u.email.clone().unwrap_or_default(),
        team: teams.link(u.team_id),
        created: rfc3339(u.created_at),
        limits: LimitTable::new(Bars::of(&u.own, &w), &u.models, &w),
        keys: KeysPartial::unpaged(keys),
        recent: UsageRows::new(&state.store.usage_rows(&filter).await?, state.settings.app_tz, &users),
        form: form.with_teams(&teams),
    };
    render_status(status, &page)
}

pub async fn user_detail(
    console: Console,
    state: Data<AdminState>,
    id: Path<i64>,
    query: Query<NoticeQuery>,
) -> Page {
    let u = PeopleOps::of(&state, console.actor).user(*id).await?;
    let chrome = Chrome::new(&console.session, Nav::Users).with_notice(query.notice());
    detail_page(&state, chrome, &u, PersonForm::of_user(&u)).await
}

pub async fn update_user(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    let ops = PeopleOps::of(&state, post.actor);
    let u = ops.user(*id).await?;
    let chrome = || Chrome::new(&post.session, Nav::Users);
    let person = match person_form::read(&post.form) {
        Ok(person) => person,
        Err(form) => return detail_page(&state, chrome(), &u, *form).await,
    };
    let patch = PatchUser {
        name: Some(person.name),
        email: Some(person.email),
        team_id: Some(person.team_id),
        model_limits: Some(person.model_limits),
        alerts: person.alerts.map(|soft| Some(soft.to_json())),
    };
    let saved = match ops.patch_user(u.id, patch).await {
        Ok(_) => ops.user_quota(u.id, &LimitsPatch::all(&person.limits)).await,
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(redirect_notice(&req, &format!("/users/{}", u.id), Notice::Saved)),
        Err(e) => detail_page(&state, chrome(), &u, PersonForm::refused(&post.form, e)?).await,
    }
}

#[derive(Template)]
#[template(path = "admin/person_delete.html")]
pub(super) struct PersonDeletePage {
    pub(super) chrome: Chrome,
    /// "user" or "team".
    pub(super) what: &'static str,
    pub(super) name: String,
    /// Where the form posts, and where Cancel goes.
    pub(super) action: String,
    pub(super) back: String,
    /// What happens to the rest.
    pub(super) consequence: &'static str,
}

pub async fn delete_user_form(console: Console, state: Data<AdminState>, id: Path<i64>) -> Page {
    let u = PeopleOps::of(&state, console.actor).user(*id).await?;
    render(&PersonDeletePage {
        chrome: Chrome::new(&console.session, Nav::Users),
        what: "user",
        name: u.name,
        action: format!("/users/{}/delete", u.id),
        back: format!("/users/{}", u.id),
        consequence: "Their keys keep working, under their own limits and no longer under the user's or the \
                      team's. Their usage history is kept.",
    })
}

pub async fn delete_user(req: HttpRequest, state: Data<AdminState>, id: Path<i64>, post: CsrfForm) -> Page {
    PeopleOps::of(&state, post.actor).delete_user(*id).await?;
    log::info!("deleted user {} from the console", *id);
    Ok(redirect_notice(&req, "/users", Notice::UserDeleted))
}
