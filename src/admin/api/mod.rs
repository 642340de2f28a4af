//! The admin JSON API (API.md section 4), for scripts. Every handler takes
//! [`ApiAdmin`](super::auth::ApiAdmin): the admin password, or a console
//! session with its CSRF token.

mod alerts;
mod audit;
mod keys;
mod people;
mod public_keys;
mod refusals;
pub mod settings;
mod usage;

use super::error::AdminError;
use actix_web::web;
use actix_web::HttpResponse;

pub use keys::{key_json, model_limits_json, usage_json};

type Reply = Result<HttpResponse, AdminError>;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api-keys", web::get().to(keys::list_keys))
        .route("/api-keys", web::post().to(keys::create_key))
        .route("/api-keys/{id}", web::get().to(keys::get_key))
        .route("/api-keys/{id}", web::patch().to(keys::update_key))
        .route("/api-keys/{id}", web::delete().to(keys::delete_key))
        .route("/api-keys/{id}/quota", web::patch().to(keys::update_quota))
        .route("/api-keys/{id}/activate", web::put().to(keys::activate_key))
        .route("/api-keys/{id}/deactivate", web::put().to(keys::deactivate_key))
        .route("/api-keys/{id}/rotate", web::post().to(keys::rotate_key))
        .route("/api-keys/{id}/previous-secret", web::delete().to(keys::end_grace))
        .route("/api-keys/{id}/public-keys", web::get().to(public_keys::list))
        .route("/api-keys/{id}/public-keys", web::post().to(public_keys::add))
        .route("/api-keys/{id}/public-keys/{pk_id}", web::delete().to(public_keys::remove))
        .route("/teams", web::get().to(people::list_teams))
        .route("/teams", web::post().to(people::create_team))
        .route("/teams/{id}", web::get().to(people::get_team))
        .route("/teams/{id}", web::patch().to(people::update_team))
        .route("/teams/{id}", web::delete().to(people::delete_team))
        .route("/teams/{id}/quota", web::patch().to(people::team_quota))
        .route("/users", web::get().to(people::list_users))
        .route("/users", web::post().to(people::create_user))
        .route("/users/{id}", web::get().to(people::get_user))
        .route("/users/{id}", web::patch().to(people::update_user))
        .route("/users/{id}", web::delete().to(people::delete_user))
        .route("/users/{id}/quota", web::patch().to(people::user_quota))
        .route("/model-weights", web::get().to(people::get_weights))
        .route("/model-weights", web::put().to(people::put_weights))
        .route("/usage", web::get().to(usage::usage))
        .route("/stats", web::get().to(usage::stats))
        .route("/settings", web::get().to(settings::get_settings))
        .route("/settings", web::put().to(settings::put_settings))
        .route("/ollama-models", web::get().to(settings::ollama_models))
        .route("/proxy-info", web::get().to(settings::proxy_info))
        .route("/audit", web::get().to(audit::audit_log))
        .route("/refusals", web::get().to(refusals::refusals))
        .route("/alerts", web::get().to(alerts::list_alerts))
        .route("/alerts/{id}/dismiss", web::post().to(alerts::dismiss_alert));
}
