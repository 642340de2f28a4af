//! Instants as the API writes and reads them.

use super::windows::Windows;
use chrono_tz::Tz;

/// An instant as RFC 3339 in UTC, to the second; empty when out of range.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// An RFC 3339 instant, or a date (`2026-12-31`) in `APP_TZ`: the start of
/// that day, or with `end_of_day` the start of the next.
pub fn parse_time(text: &str, tz: Tz, end_of_day: bool) -> Result<i64, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    let date = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is neither an RFC 3339 time nor a YYYY-MM-DD date"))?;
    let date = if end_of_day { date.succ_opt().unwrap_or(date) } else { date };
    let noon = date.and_hms_opt(12, 0, 0).unwrap_or_default();
    let at = chrono::TimeZone::from_local_datetime(&tz, &noon)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| format!("'{text}' does not exist in {tz}"))?;
    Ok(Windows::at(at, tz).day.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_the_start_or_end_of_that_day_in_the_zone() {
        let tz: Tz = "Europe/Paris".parse().unwrap();
        assert_eq!(rfc3339(parse_time("2026-07-01", tz, false).unwrap()), "2026-06-30T22:00:00Z");
        assert_eq!(rfc3339(parse_time("2026-07-01", tz, true).unwrap()), "2026-07-01T22:00:00Z");
        assert_eq!(parse_time("2026-07-01T10:00:00+02:00", tz, true).unwrap(), 1_782_892_800);
        assert!(parse_time("yesterday", tz, false).is_err());
    }
}
