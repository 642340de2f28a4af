//! The filters of `/api/audit` and `/api/refusals`, and of the console pages
//! that show the same rows, read from a query string. Every value is taken
//! as text and checked here, so a bad one is refused with a message that
//! names it (and an empty form field means no filter).

use super::error::AdminError;
use crate::domain::audit::{Via, ACTIONS};
use crate::domain::time::{parse_time, rfc3339};
use crate::store::{AuditFilter, AuditRow, RefusalFilter, RefusalGroup, RefusalRow};
use chrono_tz::Tz;
use serde::Deserialize;
use serde_json::{json, Value};

/// Rows a page of the audit log holds unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 100;
/// The most rows one request may ask for.
pub const MAX_LIMIT: i64 = 1000;

#[derive(Debug, Default, Clone, Deserialize)]
pub struct AuditQuery {
    pub from: Option<String>,
    pub to: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub limit: Option<String>,
    pub offset: Option<String>,
}

fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn time(name: &str, v: &Option<String>, tz: Tz, end: bool) -> Result<Option<i64>, AdminError> {
    given(v)
        .map(|t| parse_time(t, tz, end).map_err(|e| AdminError::BadRequest(format!("{name}: {e}"))))
        .transpose()
}

fn whole(name: &str, v: &Option<String>, min: i64, max: i64) -> Result<Option<i64>, AdminError> {
    given(v)
        .map(|n| match n.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(AdminError::BadRequest(format!(
                "{name} must be a whole number from {min} to {max}, not '{}'",
                crate::domain::lengths::shown(n)
            ))),
        })
        .transpose()
}

impl AuditQuery {
    pub fn filter(&self, tz: Tz) -> Result<AuditFilter, AdminError> {
        let actor = given(&self.actor)
            .map(|a| {
                Via::parse(a).map(|v| v.as_str().to_owned()).ok_or_else(|| {
                    AdminError::BadRequest(format!(
                        "actor must be session, bearer or cli, not '{}'",
                        crate::domain::lengths::shown(a)
                    ))
                })
            })
            .transpose()?;
        let action = given(&self.action)
            .map(|a| {
                ACTIONS.iter().find(|known| **known == a).map(|k| (*k).to_owned()).ok_or_else(|| {
                    AdminError::BadRequest(format!(
                        "unknown action '{}'; the actions are {}",
                        crate::domain::lengths::shown(a),
                        ACTIONS.join(", ")
                    ))
                })
            })
            .transpose()?;
        Ok(AuditFilter {
            from: time("from", &self.from, tz, false)?,
            to: time("to", &self.to, tz, true)?,
            actor,
            action,
            limit: whole("limit", &self.limit, 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT),
            offset: whole("offset", &self.offset, 0, i64::MAX / 2)?.unwrap_or(0),
        })
    }
}

/// A stored JSON text as JSON again; text that does not read stays text.
fn stored_json(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.clone())),
    }
}

pub fn audit_row_json(r: &AuditRow) -> Value {
    json!({
        "at": rfc3339(r.at),
        "actor": r.actor,
        "address": r.address,
        "action": r.action,
        "target": r.target,
        "before": stored_json(&r.before),
        "after": stored_json(&r.after),
    })
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct RefusalQuery {
    /// A key's id, or `none` for refusals before any key was known.
    pub key_id: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub group_by: Option<String>,
}

impl RefusalQuery {
    pub fn filter(&self, tz: Tz) -> Result<(RefusalFilter, RefusalGroup), AdminError> {
        let key_id = match given(&self.key_id) {
            None => None,
            Some("none") => Some(None),
            Some(k) => Some(Some(whole("key_id", &Some(k.to_owned()), 1, i64::MAX)?.unwrap_or_default())),
        };
        let group = match given(&self.group_by) {
            None => RefusalGroup::Each,
            Some("hour") => RefusalGroup::Hour,
            Some("key") => RefusalGroup::Key,
            Some("reason") => RefusalGroup::Reason,
            Some(g) => {
                return Err(AdminError::BadRequest(format!(
                    "group_by must be hour, key or reason, not '{}'",
                    crate::domain::lengths::shown(g)
                )))
            }
        };
        // Counts are kept per hour: a bound inside an hour takes in that whole hour.
        let filter = RefusalFilter {
            key_id,
            from: time("from", &self.from, tz, false)?.map(crate::refusals::hour_of),
            to: time("to", &self.to, tz, true)?,
        };
        Ok((filter, group))
    }
}

/// A row with the fields its grouping keeps, and its count.
pub fn refusal_row_json(r: &RefusalRow, group: RefusalGroup) -> Value {
    let mut row = serde_json::Map::new();
    if matches!(group, RefusalGroup::Each | RefusalGroup::Hour) {
        row.insert("hour".into(), json!(r.hour.map(rfc3339)));
    }
    if matches!(group, RefusalGroup::Each | RefusalGroup::Key) {
        row.insert("key_id".into(), json!(r.key()));
    }
    if matches!(group, RefusalGroup::Each | RefusalGroup::Reason) {
        row.insert("reason".into(), json!(r.reason));
    }
    row.insert("count".into(), json!(r.count));
    Value::Object(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(pairs: &[(&str, &str)]) -> Result<AuditFilter, AdminError> {
        let get = |n: &str| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned());
        let q = AuditQuery {
            from: get("from"),
            to: get("to"),
            actor: get("actor"),
            action: get("action"),
            limit: get("limit"),
            offset: get("offset"),
        };
        q.filter(Tz::UTC)
    }

    #[test]
    fn audit_filters_are_checked_and_empty_fields_mean_no_filter() {
        let f = audit(&[("actor", ""), ("action", ""), ("limit", "")]).unwrap();
        assert_eq!((f.actor, f.action, f.limit, f.offset), (None, None, DEFAULT_LIMIT, 0));
        let f = audit(&[("actor", "bearer"), ("action", "key.create"), ("limit", "1000")]).unwrap();
        assert_eq!(
            (f.actor.as_deref(), f.action.as_deref(), f.limit),
            (Some("bearer"), Some("key.create"), 1000)
        );
        for bad in [
            ("limit", "0"),
            ("limit", "1001"),
            ("limit", "ten"),
            ("offset", "-1"),
            ("offset", "1e3"),
            ("actor", "root"),
            ("action", "key.*"),
            ("from", "yesterday"),
        ] {
            assert!(audit(&[bad]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusal_filters_take_a_key_none_or_a_grouping() {
        let q = |key: &str, group: &str| RefusalQuery {
            key_id: Some(key.into()),
            group_by: Some(group.into()),
            ..Default::default()
        };
        assert_eq!(q("none", "").filter(Tz::UTC).unwrap().0.key_id, Some(None));
        assert_eq!(q("7", "reason").filter(Tz::UTC).unwrap().1, RefusalGroup::Reason);
        for (key, group) in [("0", ""), ("-1", ""), ("x", ""), ("", "day"), ("", "HOUR")] {
            assert!(q(key, group).filter(Tz::UTC).is_err(), "{key} {group}");
        }
    }
}
