//! Charts drawn on the server as SVG, each with its numbers in a table: no
//! chart library, no script, and every label escaped by the template.

mod series;
mod traffic;

pub use series::SeriesChart;
pub use traffic::{key_tokens_per_day, requests_per_hour, tokens_per_day_by_model};
