//! `/api/teams`, `/api/users` and `/api/model-weights` (API.md section 4.1).

use super::Reply;
use crate::admin::auth::ApiAdmin;
use crate::admin::error::AdminError;
use crate::admin::people::{team_json, user_json, CreateTeam, CreateUser, PatchTeam, PatchUser, PeopleOps};
use crate::admin::AdminState;
use crate::domain::limits::LimitsPatch;
use crate::domain::people::ModelWeights;
use actix_web::web::{Data, Json, Path};
use actix_web::HttpResponse;
use serde::Deserialize;
use serde_json::{json, Value};

pub async fn list_teams(_: ApiAdmin, state: Data<AdminState>) -> Reply {
    let w = state.windows();
    let teams: Vec<Value> = state.store.list_teams().await?.iter().map(|t| team_json(t, &w)).collect();
    Ok(HttpResponse::Ok().json(teams))
}

pub async fn create_team(admin: ApiAdmin, state: Data<AdminState>, body: Json<CreateTeam>) -> Reply {
    let team = PeopleOps::of(&state, admin.actor).create_team(body.into_inner()).await?;
    log::info!("created team {} ({})", team.id, team.name);
    Ok(HttpResponse::Created().json(team_json(&team, &state.windows())))
}

pub async fn get_team(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    let team = PeopleOps::of(&state, admin.actor).team(*id).await?;
    Ok(HttpResponse::Ok().json(team_json(&team, &state.windows())))
}

pub async fn update_team(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<PatchTeam>,
) -> Reply {
    let team = PeopleOps::of(&state, admin.actor).patch_team(*id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(team_json(&team, &state.windows())))
}

pub async fn team_quota(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<LimitsPatch>,
) -> Reply {
    let team = PeopleOps::of(&state, admin.actor).team_quota(*id, &body).await?;
    Ok(HttpResponse::Ok().json(team_json(&team, &state.windows())))
}

pub async fn delete_team(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    PeopleOps::of(&state, admin.actor).delete_team(*id).await?;
    log::info!("deleted team {}", *id);
    Ok(HttpResponse::NoContent().finish())
}

pub async fn list_users(_: ApiAdmin, state: Data<AdminState>) -> Reply {
    let w = state.windows();
    let users: Vec<Value> = state.store.list_users().await?.iter().map(|u| user_json(u, &w)).collect();
    Ok(HttpResponse::Ok().json(users))
}

pub async fn create_user(admin: ApiAdmin, state: Data<AdminState>, body: Json<CreateUser>) -> Reply {
    let user = PeopleOps::of(&state, admin.actor).create_user(body.into_inner()).await?;
    log::info!("created user {} ({})", user.id, user.name);
    Ok(HttpResponse::Created().json(user_json(&user, &state.windows())))
}

pub async fn get_user(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    let user = PeopleOps::of(&state, admin.actor).user(*id).await?;
    Ok(HttpResponse::Ok().json(user_json(&user, &state.windows())))
}

pub async fn update_user(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<PatchUser>,
) -> Reply {
    let user = PeopleOps::of(&state, admin.actor).patch_user(*id, body.into_inner()).await?;
    Ok(HttpResponse::Ok().json(user_json(&user, &state.windows())))
}

pub async fn user_quota(
    admin: ApiAdmin,
    state: Data<AdminState>,
    id: Path<i64>,
    body: Json<LimitsPatch>,
) -> Reply {
    let user = PeopleOps::of(&state, admin.actor).user_quota(*id, &body).await?;
    Ok(HttpResponse::Ok().json(user_json(&user, &state.windows())))
}

pub async fn delete_user(admin: ApiAdmin, state: Data<AdminState>, id: Path<i64>) -> Reply {
    PeopleOps::of(&state, admin.actor).delete_user(*id).await?;
    log::info!("deleted user {}", *id);
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    weights: Value,
}

pub async fn get_weights(_: ApiAdmin, state: Data<AdminState>) -> Reply {
    Ok(HttpResponse::Ok().json(json!({"weights": state.runtime.model_weights().to_json()})))
}

/// Replaces every weight; `{"weights": {}}` makes every model weigh 1 again.
pub async fn put_weights(admin: ApiAdmin, state: Data<AdminState>, body: Json<Weights>) -> Reply {
    let weights = ModelWeights::from_json(&body.weights).map_err(AdminError::BadRequest)?;
    let before = state.runtime.model_weights().to_json();
    state.runtime.set_model_weights(state.store.as_ref(), weights).await?;
    let after = state.runtime.model_weights().to_json();
    crate::admin::audit::record_change(&state, admin.actor, "weights.update", None, &before, &after).await;
    log::info!("model weights changed");
    Ok(HttpResponse::Ok().json(json!({"weights": state.runtime.model_weights().to_json()})))
}
