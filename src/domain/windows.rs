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

/// What an admission at `now` does with a stored window, given the window
/// computed for it: count into the stored one (`Stays`, possibly stretched to
/// a later end), or start a new one (`Starts`).
///
/// Windows only move forward. The stored window's counters restart only when
/// the computed window begins at or after the stored end; a computed window
/// that is older (computed before a slow upload, or by a replica whose clock
/// is behind) or overlaps the stored one counts into the stored one.
///
/// Windows of one zone are either the same, older, or later. They overlap only
/// when `APP_TZ` changed while a window was open, and then the stored window
/// runs to the end it had; a new-zone window that lies mostly inside it (its
/// larger half, or the same start) is merged into it, the stored end stretched
/// to the new one, so that no new-zone day gets a second quota. Otherwise the
/// next window starts where the stored one ends and runs to the new-zone end:
/// merging that one would hold a spent quota for up to a whole further period.
/// `sql.rs` (`admit_sql`) states the same rule in SQL; the two must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Stays(Window),
    Starts(Window),
}

pub fn next_window(stored: Window, computed: Window, now: i64) -> Next {
    let merges = computed.start == stored.start
        || stored.end.saturating_mul(2) > computed.start.saturating_add(computed.end);
    if computed.start < stored.end && (now < stored.end || merges) {
        let end = if merges { stored.end.max(computed.end) } else { stored.end };
        Next::Stays(Window { start: stored.start, end })
    } else {
        Next::Starts(Window { start: computed.start.max(stored.end), end: computed.end })
    }
}

/// Whether counts stored for `stored` are the ones an admission at `now` would add to.
pub fn is_current(stored: Window, computed: Window, now: i64) -> bool {
    matches!(next_window(stored, computed, now), Next::Stays(_))
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
    fn window(start: &str, end: &str) -> Window {
        Window { start: utc(start).timestamp(), end: utc(end).timestamp() }
    }

    #[test]
    fn a_window_computed_a_minute_a_day_or_a_month_too_early_counts_into_the_stored_one() {
        let tz: Tz = "UTC".parse().unwrap();
        let stored = Windows::at(utc("2026-05-01T00:00:30Z"), tz);
        for earlier in ["2026-04-30T23:59:59Z", "2026-04-30T00:00:30Z", "2026-04-01T00:00:30Z"] {
            let computed = Windows::at(utc(earlier), tz);
            for (s, c) in
                [(stored.minute, computed.minute), (stored.day, computed.day), (stored.month, computed.month)]
            {
                assert_eq!(next_window(s, c, computed.now), Next::Stays(s), "{earlier}");
                assert!(is_current(s, c, computed.now));
            }
        }
    }

    #[test]
    fn the_next_window_starts_only_at_the_end_of_the_stored_one() {
        let tz: Tz = "UTC".parse().unwrap();
        let stored = Windows::at(utc("2026-05-01T12:00:30Z"), tz);
        let later = Windows::at(utc("2026-05-01T12:01:00Z"), tz);
        assert_eq!(next_window(stored.minute, later.minute, later.now), Next::Starts(later.minute));
        assert_eq!(next_window(stored.day, later.day, later.now), Next::Stays(stored.day));
    }

    #[test]
    fn a_zone_change_does_not_hand_out_a_fresh_day_before_the_open_one_ends() {
        let utc_day = window("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z");
        // Kiritimati (UTC+14) is already on Jan 2; Los Angeles (UTC-8) still on Jan 1.
        let kiritimati: Tz = "Pacific/Kiritimati".parse().unwrap();
        let los_angeles: Tz = "America/Los_Angeles".parse().unwrap();
        for (tz, merged_end) in [(kiritimati, "2026-01-02T10:00:00Z"), (los_angeles, "2026-01-02T08:00:00Z")]
        {
            for now in ["2026-01-01T12:00:00Z", "2026-01-01T23:59:59Z", "2026-01-02T00:00:00Z"] {
                let computed = Windows::at(utc(now), tz).day;
                let next = next_window(utc_day, computed, utc(now).timestamp());
                assert_eq!(next, Next::Stays(window("2026-01-01T00:00:00Z", merged_end)), "{tz} {now}");
            }
            let after = Windows::at(utc(merged_end), tz);
            let merged = window("2026-01-01T00:00:00Z", merged_end);
            assert_eq!(next_window(merged, after.day, after.now), Next::Starts(after.day), "{tz}");
        }
    }

    #[test]
    fn a_new_zone_month_mostly_after_the_open_one_starts_where_the_open_one_ends() {
        // Kiritimati's February begins 14 hours before UTC's: merging it would
        // hold January's spent quota through all of February.
        let tz: Tz = "Pacific/Kiritimati".parse().unwrap();
        let january = window("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
        let before_end = Windows::at(utc("2026-01-31T23:00:00Z"), tz);
        assert_eq!(next_window(january, before_end.month, before_end.now), Next::Stays(january));
        let at_end = Windows::at(utc("2026-02-01T00:00:00Z"), tz);
        assert_eq!(
            next_window(january, at_end.month, at_end.now),
            Next::Starts(window("2026-02-01T00:00:00Z", "2026-02-28T10:00:00Z"))
        );
    }

    #[test]
    fn a_window_migrated_with_an_end_just_past_its_start_takes_its_real_end_when_used() {
        let tz: Tz = "UTC".parse().unwrap();
        let computed = Windows::at(utc("2026-05-10T12:00:00Z"), tz);
        let migrated = Window { start: computed.day.start, end: computed.day.start + 1 };
        assert_eq!(next_window(migrated, computed.day, computed.now), Next::Stays(computed.day));
        let tomorrow = Windows::at(utc("2026-05-11T00:00:00Z"), tz);
        assert_eq!(next_window(migrated, tomorrow.day, tomorrow.now), Next::Starts(tomorrow.day));
    }
}
