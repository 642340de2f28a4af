//! The key page's "Signed requests (ollama CLI)" section: the public keys
//! that sign the key's requests, a form to paste one, and removal after a
//! page that asks. Plain forms with a redirect after each POST; a pasted
//! key that is refused comes back on the key page (`keys.rs`).

use super::{redirect_notice, render, shown, Chrome, Nav, Notice, Page};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::keys::KeyOps;
use crate::admin::public_keys::{PublicKeyError, PublicKeyOps};
use crate::admin::AdminState;
use actix_web::web::{Data, Path};
use actix_web::HttpRequest;
use askama::Template;

/// One public key as the section lists it.
pub struct ShownPublicKey {
    pub id: i64,
    pub fingerprint: String,
    pub comment: String,
    pub added: String,
    pub last_used: String,
}

/// The section, rendered into the key page by one line.
#[derive(Template)]
#[template(path = "admin/key_public_keys.html")]
pub struct SignedRequests {
    id: i64,
    csrf: String,
    keys: Vec<ShownPublicKey>,
    /// What was pasted, shown again beside its error.
    pasted: String,
    error: Option<String>,
}

impl SignedRequests {
    pub async fn load(
        state: &AdminState,
        key_id: i64,
        csrf: &str,
        refused: Option<(String, String)>,
    ) -> Result<Self, super::PageError> {
        let tz = state.settings.app_tz;
        let rows =
            state.store.list_public_keys(key_id).await.map_err(crate::admin::error::AdminError::from)?;
        let keys = rows
            .iter()
            .map(|r| ShownPublicKey {
                id: r.id,
                fingerprint: r.fingerprint.clone(),
                comment: r.comment.clone().unwrap_or_default(),
                added: shown::time(r.created_at, tz),
                last_used: r.last_used_at.map_or_else(|| "never".to_owned(), |t| shown::time(t, tz)),
            })
            .collect();
        let (pasted, error) = match refused {
            Some((pasted, error)) => (pasted, Some(error)),
            None => (String::new(), None),
        };
        Ok(SignedRequests { id: key_id, csrf: csrf.to_owned(), keys, pasted, error })
    }

    pub fn has_error(&self) -> bool {
        self.error.is_some()
    }
}

#[derive(Template)]
#[template(path = "admin/key_public_key_remove.html")]
struct RemovePage {
    chrome: Chrome,
    id: i64,
    pk_id: i64,
    name: String,
    fingerprint: String,
}

/// Asks before removing: the `ollama` command line with that key stops at once.
pub async fn remove_form(console: Console, state: Data<AdminState>, ids: Path<(i64, i64)>) -> Page {
    let (id, pk_id) = ids.into_inner();
    let k = KeyOps::of(&state, console.actor).get(id).await?;
    let rows = PublicKeyOps::of(&state, console.actor).list(id).await?;
    let row = rows.into_iter().find(|r| r.id == pk_id).ok_or(PublicKeyError::NotFound(id, pk_id))?;
    let chrome = Chrome::new(&console.session, Nav::Keys);
    render(&RemovePage { chrome, id, pk_id, name: k.fields.name, fingerprint: row.fingerprint })
}

pub async fn remove(
    req: HttpRequest,
    state: Data<AdminState>,
    ids: Path<(i64, i64)>,
    post: CsrfForm,
) -> Page {
    let (id, pk_id) = ids.into_inner();
    PublicKeyOps::of(&state, post.actor).remove(id, pk_id).await?;
    Ok(redirect_notice(&req, &format!("/keys/{id}"), Notice::Saved))
}
