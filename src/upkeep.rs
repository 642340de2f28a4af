//! What runs beside the listeners: the heartbeat that keeps this process's
//! reservations its own, settling those of processes that died, picking up
//! settings other replicas changed, and handing freed memory back.

use crate::admin::AdminState;
use crate::runtime::SettingName;
use crate::state::Shared;
use actix_web::web::Data;
use std::time::Duration;

/// One round; also run once at startup, before the listeners serve.
pub async fn once(state: &AdminState) -> anyhow::Result<()> {
    let now = state.clock.now().timestamp();
    state.store.heartbeat(&state.instance_id, now).await?;
    reload_shared_settings(state).await?;
    settle_dead_neighbours(state, now).await?;
    let stale_before = now - state.settings.reservation_stale_after.as_secs() as i64;
    let settled = state.store.settle_stale(stale_before, now).await?;
    if settled > 0 {
        log::warn!("settled {settled} reservations left by a process that stopped mid-request");
    }
    // Old audit entries can wait for the next round; reservations cannot.
    if let Err(e) = prune_audit_log(state, now).await {
        log::warn!("could not delete old audit log entries (will retry): {e:#}");
    }
    if let Err(e) = prune_alerts(state, now).await {
        log::warn!("could not delete old alerts (will retry): {e:#}");
    }
    // A signature whose ts has left the window is refused as stale anyway.
    if let Err(e) = state.store.prune_signatures(now).await {
        log::warn!("could not delete used signatures past their window (will retry): {e:#}");
    }
    Ok(())
}

/// Processes on this machine that died without unregistering (killed, or
/// crashed) leave reservations that would hold `max_concurrent` slots until
/// their heartbeat went stale; they are settled as soon as they are seen dead.
/// Processes elsewhere are left to the heartbeat: they may be alive.
async fn settle_dead_neighbours(state: &Shared, now: i64) -> anyhow::Result<()> {
    for id in state.store.instances().await? {
        if crate::instance::known_dead(&id, &state.instance_id) {
            let settled = state.store.settle_instance(&id, now).await?;
            log::warn!(
                "process {id} has ended without unregistering; settled the {settled} reservations it left"
            );
        }
    }
    Ok(())
}

/// Settings another replica may have changed through its admin: the upstream
/// URLs, the default Anthropic model and a password changed in the console.
async fn reload_shared_settings(state: &AdminState) -> anyhow::Result<()> {
    state.runtime.reload(state.store.as_ref(), &state.upstreams).await?;
    if !state.settings.password_from_env() {
        if let Some(phc) = state.store.get_setting(SettingName::AdminPasswordHash.as_str()).await? {
            state.password.replace_if_changed(phc);
        }
    }
    Ok(())
}

/// Hands memory freed after a burst (thousands of streams' buffers) back to
/// the system. glibc keeps freed blocks in its per-thread arenas otherwise,
/// and the resident size stays at the burst's peak for good.
pub async fn return_freed_memory() {
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory; it takes the
        // allocator's own locks and touches no live allocation.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Adds the refused-request counts kept in memory to the database every
/// `REFUSALS_FLUSH_MS`; a failed flush keeps them for the next.
pub async fn flush_refusals(shared: std::sync::Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.settings.refusals_flush);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = shared.refusals.flush(shared.store.as_ref()).await {
            log::warn!("could not save the refused-request counts (kept for the next try): {e}");
        }
    }
}

/// Audit log entries older than `AUDIT_RETENTION_DAYS` go.
async fn prune_audit_log(state: &Shared, now: i64) -> anyhow::Result<()> {
    if let Some(keep) = state.settings.audit_retention {
        let pruned = state.store.prune_audit(now - keep.as_secs() as i64).await?;
        if pruned > 0 {
            log::info!("deleted {pruned} audit log entries older than AUDIT_RETENTION_DAYS");
        }
    }
    Ok(())
}

/// Windows longer than any quota window (a month): a claim this old can never
/// be claimed again, so it may go.
const CLAIMS_KEPT_SECS: i64 = 62 * 86_400;

/// Alerts recorded before `AUDIT_RETENTION_DAYS` go with the audit log, and
/// the once-per-window claims of windows long over.
async fn prune_alerts(state: &Shared, now: i64) -> anyhow::Result<()> {
    let recorded_before = match state.settings.audit_retention {
        Some(keep) => now - keep.as_secs() as i64,
        None => i64::MIN,
    };
    let pruned = state.store.prune_alerts(recorded_before, now - CLAIMS_KEPT_SECS).await?;
    if pruned > 0 {
        log::info!("deleted {pruned} old alerts and alert claims");
    }
    Ok(())
}

/// Heartbeat, settings other replicas changed, and the reservations of processes that died.
pub async fn run(state: Data<AdminState>) {
    let period = (state.settings.reservation_stale_after / 3).max(Duration::from_secs(1));
    let mut tick = tokio::time::interval(period);
    tick.tick().await;
    loop {
        tick.tick().await;
        if let Err(e) = once(&state).await {
            log::warn!("upkeep failed (will retry): {e:#}");
        }
    }
}
