//! One rule for how the console writes times and numbers, so every page
//! agrees: times in `APP_TZ` with the zone's abbreviation (the zone's full
//! name is on the `<time>` element and in the footer), whole numbers with
//! thousands separators.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `2026-12-04 15:03:05 CET`: an instant in `APP_TZ`, to the second.
pub fn time(ts: i64, tz: Tz) -> String {
    at(ts).map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string()).unwrap_or_default()
}

/// `2026-12-04 15:03 CET`: the same to the minute, for tables.
pub fn minute(ts: i64, tz: Tz) -> String {
    at(ts).map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()).unwrap_or_default()
}

/// The day an instant falls on in `APP_TZ` (`2026-12-04`), for date inputs.
pub fn date(ts: i64, tz: Tz) -> String {
    at(ts).map(|t| t.with_timezone(&tz).format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// An expiry as the console shows it. A typed date means the end of that day
/// in `APP_TZ`, stored as the start of the next, so it reads back as
/// `2026-12-31 end of day CET` rather than as midnight of the 1st.
pub fn expiry(ts: i64, tz: Tz) -> String {
    let Some(t) = at(ts).map(|t| t.with_timezone(&tz)) else { return String::new() };
    if t.format("%H:%M:%S").to_string() == "00:00:00" {
        if let Some(day) = t.date_naive().pred_opt() {
            return format!("{day} end of day {}", t.format("%Z"));
        }
    }
    time(ts, tz)
}

/// The UTC instant for `datetime=` attributes and CSV (`2026-12-04T14:03:05Z`).
pub fn utc(ts: i64) -> String {
    crate::domain::time::rfc3339(ts)
}

/// `1,234,567` (and `-1,234`): digits in groups of three.
pub fn number(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn at(ts: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_in_threes() {
        let cases = [(0, "0"), (999, "999"), (1000, "1,000"), (1234567, "1,234,567"), (-1234, "-1,234")];
        for (n, text) in cases {
            assert_eq!(number(n), text);
        }
        assert_eq!(number(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn times_are_local_with_the_zone_abbreviation() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // 2026-12-04T14:03:05Z is 15:03:05 in Berlin's winter time.
        assert_eq!(time(1_796_392_985, berlin), "2026-12-04 15:03:05 CET");
        assert_eq!(minute(1_796_392_985, berlin), "2026-12-04 15:03 CET");
        assert_eq!(time(1_796_392_985, Tz::UTC), "2026-12-04 14:03:05 UTC");
        assert_eq!(utc(1_796_392_985), "2026-12-04T14:03:05Z");
    }

    #[test]
    fn a_typed_expiry_date_reads_back_as_the_end_of_that_day() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let next_midnight = crate::domain::time::parse_time("2026-07-31", tz, true).unwrap();
        assert_eq!(expiry(next_midnight, tz), "2026-07-31 end of day EDT");
        assert_eq!(date(next_midnight - 1, tz), "2026-07-31");
        let afternoon = crate::domain::time::parse_time("2026-07-31T18:30:00Z", tz, true).unwrap();
        assert_eq!(expiry(afternoon, tz), "2026-07-31 14:30:00 EDT");
    }
}
