//! Bars of one or more series over the same columns (hours, days), drawn on
//! the server as SVG with the same numbers in a table beside it: the table is
//! what a screen reader, a text browser or a copy and paste gets.

use super::super::{html_safe, shown};
use askama::Template;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 8.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 26.0;
/// Fills by series, told apart by lightness too, not by hue alone.
const FILLS: [&str; 7] = ["#2f5fb3", "#e08a2e", "#4aa37a", "#a34a8f", "#8fb3e6", "#c9b037", "#8a8f98"];

/// One named row of numbers, one per column.
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
}

/// A column: its label in the table, and under the chart when `tick` is set.
pub struct Column {
    pub label: String,
    /// The column's start in UTC for `<time datetime=>`, when it is an instant.
    pub utc: Option<String>,
    pub tick: bool,
}

pub struct Bar {
    x: String,
    y: String,
    width: String,
    height: String,
    fill: &'static str,
    title: String,
}

struct Tick {
    x: String,
    text: String,
}

struct Row {
    column: String,
    utc: Option<String>,
    values: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/chart_series.html")]
pub struct SeriesChart {
    id: &'static str,
    title: String,
    unit: &'static str,
    bars: Vec<Bar>,
    ticks: Vec<Tick>,
    legend: Vec<(&'static str, String)>,
    max: String,
    names: Vec<String>,
    rows: Vec<Row>,
    width: f64,
    height: f64,
    baseline: String,
    tick_y: String,
}

html_safe!(SeriesChart);

impl SeriesChart {
    /// `stacked`: the series add up in one bar per column (parts of a whole);
    /// otherwise they stand side by side (served and refused are no sum).
    pub fn new(
        id: &'static str,
        title: String,
        unit: &'static str,
        columns: &[Column],
        series: &[Series],
        stacked: bool,
    ) -> SeriesChart {
        let value = |s: &Series, i: usize| s.values.get(i).copied().unwrap_or(0).max(0);
        let column_max = |i: usize| -> i64 {
            let values = series.iter().map(|s| value(s, i));
            if stacked {
                values.sum()
            } else {
                values.max().unwrap_or(0)
            }
        };
        let max = (0..columns.len()).map(column_max).max().unwrap_or(0);
        let scale = (HEIGHT - TOP - BOTTOM) / max.max(1) as f64;
        let step = (WIDTH - 2.0 * LEFT) / columns.len().max(1) as f64;
        let gap = if step > 6.0 { 2.0 } else { 0.0 };
        let mut bars = Vec::new();
        let mut ticks = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let x0 = LEFT + i as f64 * step;
            let mut base = HEIGHT - BOTTOM;
            let width = if stacked { step - gap } else { (step - gap) / series.len().max(1) as f64 };
            for (n, s) in series.iter().enumerate() {
                let v = value(s, i);
                let h = v as f64 * scale;
                let x = if stacked { x0 } else { x0 + n as f64 * width };
                let title = format!("{} {}: {} {unit}", column.label, s.name, shown::number(v));
                if h > 0.0 {
                    bars.push(Bar {
                        x: format!("{x:.1}"),
                        y: format!("{:.1}", base - h),
                        width: format!("{:.1}", width.max(0.5)),
                        height: format!("{h:.1}"),
                        fill: FILLS[n.min(FILLS.len() - 1)],
                        title,
                    });
                }
                if stacked {
                    base -= h;
                }
            }
            if column.tick {
                ticks.push(Tick { x: format!("{x0:.1}"), text: column.label.clone() });
            }
        }
        let rows = columns
            .iter()
            .enumerate()
            .map(|(i, c)| Row {
                column: c.label.clone(),
                utc: c.utc.clone(),
                values: series.iter().map(|s| shown::number(value(s, i))).collect(),
            })
            .collect();
        SeriesChart {
            id,
            title,
            unit,
            bars,
            ticks,
            legend: series
                .iter()
                .enumerate()
                .map(|(n, s)| (FILLS[n.min(FILLS.len() - 1)], s.name.clone()))
                .collect(),
            max: shown::number(max),
            names: series.iter().map(|s| s.name.clone()).collect(),
            rows,
            width: WIDTH,
            height: HEIGHT,
            baseline: format!("{:.1}", HEIGHT - BOTTOM),
            tick_y: format!("{:.1}", HEIGHT - 8.0),
        }
    }
}

impl SeriesChart {
    /// Shortens the labels under the chart (the table keeps them whole).
    pub fn map_ticks(mut self, f: impl Fn(&str) -> String) -> SeriesChart {
        for t in &mut self.ticks {
            t.text = f(&t.text);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn columns(n: usize) -> Vec<Column> {
        (0..n).map(|i| Column { label: format!("<c{i}>"), utc: None, tick: i == 0 }).collect()
    }

    #[test]
    fn stacked_bars_scale_to_the_largest_sum_and_the_table_holds_the_numbers() {
        let series = [
            Series { name: "a".into(), values: vec![1000, 0] },
            Series { name: "<b>".into(), values: vec![1000, 500] },
        ];
        let html =
            SeriesChart::new("t", "Tokens".into(), "tokens", &columns(2), &series, true).render().unwrap();
        assert!(html.contains("max 2,000") && html.contains("<td class=\"num\">1,000</td>"), "{html}");
        assert!(!html.contains("<b>") && !html.contains("<c0>"), "labels are escaped: {html}");
        // The two parts of the first column together are the chart's full height.
        assert!(html.contains("height=\"83.0\""), "{html}");
    }

    #[test]
    fn side_by_side_bars_scale_to_the_largest_value_and_empty_charts_draw() {
        let series =
            [Series { name: "x".into(), values: vec![3, 1] }, Series { name: "y".into(), values: vec![] }];
        let html =
            SeriesChart::new("t", "T".into(), "requests", &columns(2), &series, false).render().unwrap();
        assert!(html.contains("max 3") && html.contains("height=\"166.0\""), "{html}");
        let empty = SeriesChart::new("e", "T".into(), "requests", &[], &[], false).render().unwrap();
        assert!(empty.contains("max 0"), "{empty}");
    }
}
