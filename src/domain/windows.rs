//! Quota windows. Minutes are plain UTC minutes; days start at midnight and
//! months on the 1st in `APP_TZ`, so a school in Berlin resets at its own midnight.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

/// A half-open span of time in unix seconds: `start <= t < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: i64,
    pub end: i64,
}

impl Window {
    pub fn seconds_left(&self, now: i64) -> i64 {
        (self.end - now).max(1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub now: i64,
    pub minute: Window,
    pub day: Window,
    pub month: Window,
}

impl Windows {
    pub fn at(now: DateTime<Utc>, tz: Tz) -> Self {
        let ts = now.timestamp();
        let minute_start = ts.div_euclid(60) * 60;
        let today = now.with_timezone(&tz).date_naive();
        let tomorrow = today.succ_opt().unwrap_or(today);
        let month_first = today.with_day(1).unwrap_or(today);
        let next_month_first = first_of_next_month(month_first);
        Windows {
            now: ts,
            minute: Window { start: minute_start, end: minute_start + 60 },
            day: Window { start: local_midnight(tz, today), end: local_midnight(tz, tomorrow) },
            month: Window {
                start: local_midnight(tz, month_first),
                end: local_midnight(tz, next_month_first),
            },
        }
    }
}

fn first_of_next_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 { (first.year() + 1, 1) } else { (first.year(), first.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).unwrap_or(first)
}

/// The first instant of `date` in `tz`. Where a DST change skips midnight
/// (clocks jump from 00:00 to 01:00), the day starts at the first instant that exists.
fn local_midnight(tz: Tz, date: NaiveDate) -> i64 {
    let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    for _ in 0..16 {
        if let Some(t) = tz.from_local_datetime(&local).earliest() {
            return t.timestamp();
        }
        local += Duration::minutes(15);
    }
    // No zone has a gap longer than four hours; fall back to UTC midnight.
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default()).timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_day_starts_at_local_midnight() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        // 23:30 UTC on Jan 1 is 00:30 on Jan 2 in Berlin.
        let w = Windows::at(utc("2026-01-01T23:30:00Z"), tz);
        assert_eq!(w.day.start, utc("2026-01-01T23:00:00Z").timestamp());
        assert_eq!(w.day.end, utc("2026-01-02T23:00:00Z").timestamp());
        assert_eq!(w.month.start, utc("2025-12-31T23:00:00Z").timestamp());
    }

    #[test]
    fn a_day_that_loses_an_hour_to_dst_is_23_hours_long() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let w = Windows::at(utc("2026-03-29T12:00:00Z"), tz);
        assert_eq!(w.day.end - w.day.start, 23 * 3600);
        let w = Windows::at(utc("2026-10-25T12:00:00Z"), tz);
        assert_eq!(w.day.end - w.day.start, 25 * 3600);
    }

    #[test]
    fn a_skipped_midnight_starts_the_day_at_the_first_real_instant() {
        // Santiago skipped 00:00-01:00 on 2022-09-11.
        let tz: Tz = "America/Santiago".parse().unwrap();
        let w = Windows::at(utc("2022-09-11T12:00:00Z"), tz);
        assert_eq!(w.day.start, utc("2022-09-11T04:00:00Z").timestamp());
    }

    #[test]
    fn december_rolls_into_january() {
        let tz: Tz = "UTC".parse().unwrap();
        let w = Windows::at(utc("2026-12-15T00:00:00Z"), tz);
        assert_eq!(w.month.end, utc("2027-01-01T00:00:00Z").timestamp());
        assert_eq!(w.minute.end - w.minute.start, 60);
    }
}
