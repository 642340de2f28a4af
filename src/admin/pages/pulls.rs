//! Pulling a model from the console: the form posts here, the pull runs in
//! the background (`pull_task`), and the browser goes on to the pull's own
//! page, which shows its progress: refreshed by htmx every second, or without
//! JavaScript by the page itself every two, only while the pull runs.

use super::model_names::{check_pull, chosen};
use super::pull_task::{self, Layer, Outcome, Pull};
use super::{html_safe, render_swappable, see_other, shown, Chrome, Nav, Page, Swappable};
use crate::admin::auth::{Console, CsrfForm};
use crate::admin::error::AdminError;
use crate::admin::AdminState;
use actix_web::web::{Data, Path};
use actix_web::HttpRequest;
use askama::Template;

/// Starts a pull and goes to its page; a bad name or backend is said on the
/// models page, next to the form.
pub async fn start_pull(
    req: HttpRequest,
    state: Data<AdminState>,
    client: Data<awc::Client>,
    post: CsrfForm,
) -> Page {
    let model = post.form.get("model").trim().to_owned();
    let backend = post.form.get("backend").to_owned();
    let refused = check_pull(&state, &model).and_then(|()| chosen(&state, &backend));
    let backends = match refused {
        Ok(b) => b,
        Err(message) => {
            return super::models::refused_pull(&post.session, &state, &client, &model, message).await
        }
    };
    let names: Vec<String> = backends.iter().map(|b| b.spec.name.clone()).collect();
    let now = state.clock.now().timestamp();
    let id = pull_task::start(state.upstreams.clone(), client.get_ref().clone(), &model, backends, now)
        .map_err(AdminError::Conflict)?;
    log::info!("pull of {model} started from the console on {}", names.join(", "));
    super::model_actions::audit(&state, post.actor, "model.pull", &model, &names).await;
    Ok(see_other(&req, &format!("/models/pulls/{id}")))
}

struct BarView {
    /// `None` while the size is not known yet: the bar then runs without a value.
    max: Option<i64>,
    value: i64,
    percent: i64,
    completed: String,
    total: String,
}

impl BarView {
    fn new(completed: i64, total: i64) -> BarView {
        let percent = if total > 0 { (completed.saturating_mul(100) / total).clamp(0, 100) } else { 0 };
        BarView {
            max: (total > 0).then_some(total),
            value: completed,
            percent,
            completed: shown::number(completed),
            total: shown::number(total),
        }
    }
}

struct LayerView {
    digest: String,
    bar: BarView,
}

struct TrackView {
    backend: String,
    status: String,
    done: bool,
    error: Option<String>,
    bar: BarView,
    layers: Vec<LayerView>,
}

#[derive(Template)]
#[template(path = "admin/model_pull_partial.html")]
pub(super) struct PullPartial {
    id: String,
    model: String,
    /// When it started, in `APP_TZ`, and as UTC for `<time datetime>`.
    started: String,
    started_utc: String,
    running: bool,
    several: bool,
    tracks: Vec<TrackView>,
}

html_safe!(PullPartial);

#[derive(Template)]
#[template(path = "admin/model_pull.html")]
struct PullPage {
    chrome: Chrome,
    pull: PullPartial,
}

impl Swappable for PullPage {
    type Partial = PullPartial;
    fn partial(&self) -> &PullPartial {
        &self.pull
    }
}

fn short(digest: &str) -> String {
    digest.trim_start_matches("sha256:").chars().take(12).collect()
}

fn view(id: String, pull: Pull, tz: chrono_tz::Tz) -> PullPartial {
    let running = pull.running();
    let several = pull.tracks.len() > 1;
    let tracks = pull
        .tracks
        .into_iter()
        .map(|t| {
            let sum = |f: fn(&Layer) -> i64| t.layers.iter().map(f).fold(0i64, i64::saturating_add);
            let (mut completed, total) = (sum(|l| l.completed), sum(|l| l.total));
            if t.outcome == Outcome::Done {
                completed = total;
            }
            TrackView {
                bar: BarView::new(completed, total),
                layers: t
                    .layers
                    .iter()
                    .map(|l| LayerView { digest: short(&l.digest), bar: BarView::new(l.completed, l.total) })
                    .collect(),
                done: t.outcome == Outcome::Done,
                error: match t.outcome {
                    Outcome::Failed(e) => Some(e),
                    _ => None,
                },
                status: t.status,
                backend: t.backend,
            }
        })
        .collect();
    PullPartial {
        id,
        started: shown::time(pull.started_at, tz),
        started_utc: shown::utc(pull.started_at),
        model: pull.model,
        running,
        several,
        tracks,
    }
}

pub async fn pull_page(
    req: HttpRequest,
    console: Console,
    state: Data<AdminState>,
    id: Path<String>,
) -> Page {
    let id = id.into_inner();
    let Some(pull) = pull_task::get(&id) else {
        return Err(AdminError::NotFound(
            "No such pull: it ended more than five minutes ago, or the gate has restarted since. The models page lists what each backend has.".into(),
        )
        .into());
    };
    let page = PullPage {
        chrome: Chrome::new(&console.session, Nav::Models),
        pull: view(id, pull, state.settings.app_tz),
    };
    render_swappable(&req, &page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bar_without_a_size_has_no_value_and_sizes_get_separators() {
        let bar = BarView::new(0, 0);
        assert_eq!((bar.max, bar.percent), (None, 0));
        let bar = BarView::new(2_330_605_904, 4_661_211_808);
        assert_eq!(
            (bar.max, bar.percent, bar.completed.as_str()),
            (Some(4_661_211_808), 50, "2,330,605,904")
        );
    }
}
