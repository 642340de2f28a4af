//! The dashboard's two charts, requests per hour (served beside refused) and
//! tokens per day by model, and a key's tokens per day on its page.

use super::series::{Column, Series, SeriesChart};
use crate::admin::error::{AdminError, PageError};
use crate::admin::pages::shown;
use crate::admin::AdminState;
use crate::store::{BucketBy, RefusalFilter, RefusalGroup, UsageFilter};
use chrono::Timelike;
use std::collections::HashMap;

const HOURS: i64 = 48;
const DAYS: i64 = 30;
/// Models drawn on their own; the rest add up as "other".
const MODELS: usize = 6;

/// Requests per hour over the last 48 hours, the current one last. Usage
/// rows are the requests let through (whatever their outcome); refusals are
/// the counts the gate keeps per UTC hour, key and reason. Hours are UTC
/// hours shown in `APP_TZ`, which is exact for every zone on a whole-hour
/// offset (a half-hour zone's labels read :30).
pub async fn requests_per_hour(state: &AdminState) -> Result<SeriesChart, PageError> {
    let tz = state.settings.app_tz;
    let now = state.clock.now().timestamp();
    let first = crate::refusals::hour_of(now) - (HOURS - 1) * 3600;
    let index = |t: i64| {
        let i = (t - first).div_euclid(3600);
        (0..HOURS).contains(&i).then_some(i as usize)
    };
    let mut served = vec![0; HOURS as usize];
    let filter = UsageFilter { from: Some(first), ..UsageFilter::default() };
    for b in state.store.usage_buckets(&filter, 3600, BucketBy::Time).await? {
        if let Some(i) = index(b.bucket) {
            served[i] += b.requests;
        }
    }
    let mut refused = vec![0; HOURS as usize];
    let refusals = RefusalFilter { key_id: None, from: Some(first), to: None };
    for r in state.store.refusal_rows(&refusals, RefusalGroup::Hour).await? {
        if let Some(i) = r.hour.and_then(index) {
            refused[i] += r.count;
        }
    }
    let columns: Vec<Column> = (0..HOURS)
        .map(|i| {
            let hour = first + i * 3600;
            let local = chrono::DateTime::from_timestamp(hour, 0).map(|t| t.with_timezone(&tz));
            Column {
                label: shown::minute(hour, tz),
                utc: Some(shown::utc(hour)),
                // A tick at each local midnight, 06:00, noon and 18:00.
                tick: local.is_some_and(|t| t.hour() % 6 == 0),
            }
        })
        .collect();
    let series = [
        Series { name: "served".into(), values: served },
        Series { name: "refused".into(), values: refused },
    ];
    let title = "Requests per hour, last 48 hours: served and refused".to_owned();
    let chart = SeriesChart::new("requests-per-hour", title, "requests", &columns, &series, false);
    // Only the time of day under the chart: the date is in the table.
    Ok(chart.map_ticks(|t| t.get(11..16).unwrap_or(t).to_owned()))
}

/// Tokens per local day over the last 30 days, stacked by model: the six
/// models with the most tokens over the period, then "other".
pub async fn tokens_per_day_by_model(state: &AdminState) -> Result<SeriesChart, PageError> {
    let tz = state.settings.app_tz;
    let (from, days) = last_days(state)?;
    let index: HashMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let mut by_model: HashMap<String, Vec<i64>> = HashMap::new();
    // Quarter hours, so a day's edge in any zone falls on a bucket's edge.
    for b in state.store.model_quarters(from).await? {
        if let Some(&i) = index.get(shown::date(b.bucket, tz).as_str()) {
            by_model.entry(b.model.clone()).or_insert_with(|| vec![0; days.len()])[i] += b.total_tokens;
        }
    }
    let mut models: Vec<(String, Vec<i64>)> = by_model.into_iter().collect();
    models.sort_by(|a, b| b.1.iter().sum::<i64>().cmp(&a.1.iter().sum::<i64>()).then(a.0.cmp(&b.0)));
    let mut series: Vec<Series> = Vec::new();
    let mut other = vec![0; days.len()];
    for (n, (name, values)) in models.into_iter().enumerate() {
        if n < MODELS {
            series.push(Series { name, values });
        } else {
            other.iter_mut().zip(values).for_each(|(o, v)| *o += v);
        }
    }
    if other.iter().any(|&v| v > 0) {
        series.push(Series { name: "other".into(), values: other });
    }
    let title = "Tokens per day by model, last 30 days".to_owned();
    Ok(by_day("tokens-per-day", title, &days, &series))
}

/// One key's tokens per local day over the last 30 days.
pub async fn key_tokens_per_day(state: &AdminState, key_id: i64) -> Result<SeriesChart, PageError> {
    let tz = state.settings.app_tz;
    let (from, days) = last_days(state)?;
    let index: HashMap<&str, usize> = days.iter().enumerate().map(|(i, d)| (d.as_str(), i)).collect();
    let mut tokens = vec![0; days.len()];
    let filter = UsageFilter { key_id: Some(key_id), from: Some(from), ..UsageFilter::default() };
    // Quarter hours, so a day's edge in any zone falls on a bucket's edge.
    for b in state.store.usage_buckets(&filter, 900, BucketBy::Time).await? {
        if let Some(&i) = index.get(shown::date(b.bucket, tz).as_str()) {
            tokens[i] += b.total_tokens;
        }
    }
    let series = [Series { name: "tokens".into(), values: tokens }];
    Ok(by_day("key-tokens-per-day", "Tokens per day, last 30 days".into(), &days, &series))
}

/// The first second of the local day 29 days ago, and the 30 days from it on.
fn last_days(state: &AdminState) -> Result<(i64, Vec<String>), PageError> {
    let tz = state.settings.app_tz;
    let today = state.clock.now().with_timezone(&tz).date_naive();
    let first = today - chrono::Duration::days(DAYS - 1);
    let from =
        crate::domain::time::parse_time(&first.to_string(), tz, false).map_err(AdminError::BadRequest)?;
    Ok((from, (0..DAYS).map(|i| (first + chrono::Duration::days(i)).to_string()).collect()))
}

/// A chart of days, stacked, with the month and day under every seventh.
fn by_day(id: &'static str, title: String, days: &[String], series: &[Series]) -> SeriesChart {
    let columns: Vec<Column> = days
        .iter()
        .enumerate()
        .map(|(i, d)| Column { label: d.clone(), utc: None, tick: i % 7 == 0 })
        .collect();
    let chart = SeriesChart::new(id, title, "tokens", &columns, series, true);
    chart.map_ticks(|t| t.get(5..).unwrap_or(t).to_owned())
}
