//! Bars per day, drawn on the server as SVG (`chart.svg`): no chart library,
//! no script, and every label escaped by the template.

mod series;
mod traffic;

pub use series::SeriesChart;
pub use traffic::{requests_per_hour, tokens_per_day_by_model};

use super::html_safe;
use crate::admin::error::{AdminError, PageError};
use crate::admin::AdminState;
use crate::store::{BucketBy, UsageFilter};
use askama::Template;
use std::collections::BTreeMap;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const PAD: f64 = 24.0;

struct DayBar {
    x: String,
    y: String,
    width: String,
    height: String,
    day: String,
    value: String,
    /// The date under every seventh bar.
    label: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/chart.svg")]
pub struct DayChart {
    unit: &'static str,
    max: String,
    bars: Vec<DayBar>,
    width: f64,
    height: f64,
    pad: f64,
    label_y: String,
}

html_safe!(DayChart);

impl DayChart {
    pub fn new(days: &[(String, i64)], unit: &'static str) -> DayChart {
        let max = days.iter().map(|(_, v)| *v).max().unwrap_or(0).max(1);
        let step = (WIDTH - 2.0 * PAD) / days.len().max(1) as f64;
        let bars = days
            .iter()
            .enumerate()
            .map(|(i, (day, value))| {
                let bar = (*value as f64 / max as f64) * (HEIGHT - 2.0 * PAD);
                let x = PAD + i as f64 * step;
                DayBar {
                    x: format!("{x:.1}"),
                    y: format!("{:.1}", HEIGHT - PAD - bar),
                    width: format!("{:.1}", (step - 2.0).max(1.0)),
                    height: format!("{bar:.1}"),
                    day: day.clone(),
                    value: super::shown::number(*value),
                    label: (i % 7 == 0).then(|| day.get(5..).unwrap_or(day).to_owned()),
                }
            })
            .collect();
        DayChart {
            unit,
            max: super::shown::number(max),
            bars,
            width: WIDTH,
            height: HEIGHT,
            pad: PAD,
            label_y: format!("{:.1}", HEIGHT - 6.0),
        }
    }

    fn baseline(&self) -> f64 {
        self.height - self.pad
    }

    fn right(&self) -> f64 {
        self.width - self.pad
    }

    /// Tokens per local day over the last 30 days, for one key or all.
    pub async fn tokens_per_day(state: &AdminState, key_id: Option<i64>) -> Result<DayChart, PageError> {
        let tz = state.settings.app_tz;
        let today = state.clock.now().with_timezone(&tz).date_naive();
        let first = today - chrono::Duration::days(29);
        let from =
            crate::domain::time::parse_time(&first.to_string(), tz, false).map_err(AdminError::BadRequest)?;
        let filter = UsageFilter { key_id, from: Some(from), ..UsageFilter::default() };
        let mut by_day: BTreeMap<String, i64> =
            (0..30).map(|i| ((first + chrono::Duration::days(i)).to_string(), 0)).collect();
        for b in state.store.usage_buckets(&filter, 900, BucketBy::Time).await? {
            if let Some(t) = chrono::DateTime::from_timestamp(b.bucket, 0) {
                *by_day.entry(t.with_timezone(&tz).date_naive().to_string()).or_default() += b.total_tokens;
            }
        }
        Ok(DayChart::new(&by_day.into_iter().collect::<Vec<_>>(), "tokens"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_escapes_its_labels_and_scales_to_the_largest_day() {
        let days = [("2026-01-01".to_owned(), 5), ("<b>".to_owned(), 10)];
        let svg = DayChart::new(&days, "tokens").render().unwrap();
        let escaped = svg.contains("&#60;b&#62;") || svg.contains("&lt;b&gt;");
        assert!(svg.contains("max 10") && !svg.contains("<b>") && escaped, "{svg}");
        assert!(svg.contains("height=\"112.0\""), "{svg}");
    }
}
