//! `migrate --from --to`: one database's keys (with their public keys), users, teams, their limits
//! and counters, usage history, audit log, refusal counts and settings into
//! another, empty one.

use super::{AuditFilter, Owner, RefusalFilter, RefusalGroup, Store, StoreResult};

/// How much was copied.
pub struct Copied {
    pub keys: usize,
    pub users: usize,
    pub teams: usize,
    pub usage_rows: usize,
    pub audit_entries: usize,
    pub refusal_rows: usize,
    pub settings: usize,
}

/// Copies everything but in-flight reservations; the gate should be stopped.
/// The caller checks that `target` is empty.
pub async fn copy(source: &dyn Store, target: &dyn Store) -> StoreResult<Copied> {
    let keys = source.list_keys().await?;
    for key in &keys {
        target.import_key(key).await?;
        // The public keys that sign its requests (when they were last used stays behind).
        for pk in source.list_public_keys(key.id).await? {
            let new = super::public_keys::NewPublicKey {
                key_id: key.id,
                public_key: &pk.public_key,
                comment: pk.comment.as_deref(),
                fingerprint: &pk.fingerprint,
                now: pk.created_at,
            };
            target.add_public_key(&new).await?;
        }
    }
    let (teams, users) = (source.list_teams().await?, source.list_users().await?);
    target.import_people(&teams, &users, &source.all_budgets().await?).await?;
    // Soft limits; the alerts already sent and recorded stay behind.
    let soft = keys.iter().map(|k| (Owner::Key, k.id, &k.alerts));
    let soft = soft.chain(users.iter().map(|u| (Owner::User, u.id, &u.alerts)));
    for (owner, id, alerts) in soft.chain(teams.iter().map(|t| (Owner::Team, t.id, &t.alerts))) {
        if !alerts.is_empty() {
            target.set_soft_limits(owner, id, alerts).await?;
        }
    }
    let mut usage_rows = 0;
    let mut after = 0;
    loop {
        let batch = source.usage_after(after, 1000).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        target.import_usage(&batch).await?;
        usage_rows += batch.len();
    }
    // The audit log is read newest first, page by page, and written oldest first.
    let mut audit = Vec::new();
    loop {
        let filter = AuditFilter { limit: 1000, offset: audit.len() as i64, ..AuditFilter::default() };
        let page = source.audit_rows(&filter).await?;
        let done = page.len() < 1000;
        audit.extend(page);
        if done {
            break;
        }
    }
    audit.reverse();
    for chunk in audit.chunks(1000) {
        target.import_audit(chunk).await?;
    }
    let refusals = source.refusal_rows(&RefusalFilter::default(), RefusalGroup::Each).await?;
    target.import_refusals(&refusals).await?;
    let settings = source.all_settings().await?;
    for (name, value) in &settings {
        target.put_setting(name, value).await?;
    }
    target.finish_import().await?;
    Ok(Copied {
        keys: keys.len(),
        users: users.len(),
        teams: teams.len(),
        usage_rows,
        audit_entries: audit.len(),
        refusal_rows: refusals.len(),
        settings: settings.len(),
    })
}
