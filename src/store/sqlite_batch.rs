//! The texts of one SQLite group-commit transaction: `BEGIN IMMEDIATE` and
//! some settlements, then some admissions and `COMMIT`, so a whole group
//! costs two trips to SQLite's thread and one commit.
//!
//! Each job is the one-job statements of `sql.rs` with its parameters moved
//! past the jobs before it (`$1` of the third settlement is `$19`), and each
//! row it returns starts with a column naming what the row is and whose:
//! `settled`, `admitted` (the counters) or `reserved` (the reservation id),
//! holding the job's place in its kind.
//!
//! SQLite prepares each distinct text once and keeps it (sqlx's statement
//! cache), tens of KiB of compiled program per job in it, so the texts are
//! few: a batch of n jobs of a kind uses the text for the next power of two,
//! and the places past n are bound to NULL, which matches no row and changes
//! nothing. Settlements and admissions have texts of their own: one text for
//! both would need one for every pair of sizes, and kept the gate about
//! 35 MiB larger after a burst of load, against about 10 MiB for these.

use super::group::MAX_BATCH;
use super::sql::{self, renumber, tagged};
use std::sync::OnceLock;

/// Parameters of one admission (`sql::SQLITE_ADMIT`) and one settlement (`sql::SQLITE_SETTLE`).
pub const ADMISSION_PARAMS: usize = 24;
pub const SETTLEMENT_PARAMS: usize = 10;

/// How many places a batch of `n` jobs of one kind has.
pub fn places(n: usize) -> usize {
    match n {
        0 => 0,
        n => n.next_power_of_two(),
    }
}

/// 0, 1, 2, 4, ... MAX_BATCH: the sizes a text is made for.
const SIZES: usize = MAX_BATCH.trailing_zeros() as usize + 2;

fn size_index(places: usize) -> usize {
    match places {
        0 => 0,
        p => p.trailing_zeros() as usize + 1,
    }
}

/// `BEGIN IMMEDIATE` and `places` settlements (0 or a power of two up to `MAX_BATCH`).
pub fn settlements(places: usize) -> &'static str {
    static TEXTS: [OnceLock<String>; SIZES] = [const { OnceLock::new() }; SIZES];
    debug_assert!(places <= MAX_BATCH && self::places(places) == places);
    TEXTS[size_index(places)].get_or_init(|| {
        let mut text = String::from("BEGIN IMMEDIATE");
        for place in 0..places {
            let statements = tagged(
                &sql::SQLITE_SETTLE,
                &[("RETURNING key_id", format!("RETURNING {place} AS settled, key_id"))],
            );
            text.push_str(";\n");
            text.push_str(&renumber(&statements, place * SETTLEMENT_PARAMS));
        }
        text
    })
}

/// `places` admissions (0 or a power of two up to `MAX_BATCH`) and `COMMIT`.
pub fn admissions(places: usize) -> &'static str {
    static TEXTS: [OnceLock<String>; SIZES] = [const { OnceLock::new() }; SIZES];
    debug_assert!(places <= MAX_BATCH && self::places(places) == places);
    TEXTS[size_index(places)].get_or_init(|| {
        let mut text = String::new();
        for place in 0..places {
            let statements = tagged(
                &sql::SQLITE_ADMIT,
                &[
                    ("RETURNING name,", format!("RETURNING {place} AS admitted, name,")),
                    ("RETURNING id", format!("RETURNING {place} AS reserved, id")),
                ],
            );
            text.push_str(&renumber(&statements, place * ADMISSION_PARAMS));
            text.push_str(";\n");
        }
        text.push_str("COMMIT");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_padded_to_a_few_sizes() {
        assert_eq!([0, 1, 2, 3, 5, 17, 32].map(places), [0, 1, 2, 4, 8, 32, 32]);
        assert_eq!(size_index(MAX_BATCH), SIZES - 1);
    }

    #[test]
    fn every_job_tags_its_rows_and_numbers_its_own_parameters() {
        let (settle, admit) = (settlements(2), admissions(4));
        assert!(settle.starts_with("BEGIN IMMEDIATE;") && admit.ends_with("COMMIT"));
        assert_eq!(settle.matches(" AS settled,").count(), 2);
        assert_eq!(admit.matches(" AS admitted,").count(), 4);
        assert_eq!(admit.matches(" AS reserved,").count(), 4);
        assert!(admit.contains("RETURNING 3 AS reserved, id"));
        for (text, highest) in [(settle, 2 * SETTLEMENT_PARAMS), (admit, 4 * ADMISSION_PARAMS)] {
            assert!(text.contains(&format!("${highest}")));
            assert!(!text.contains(&format!("${}", highest + 1)));
        }
        assert_eq!(settlements(0), "BEGIN IMMEDIATE");
        assert_eq!(admissions(0), "COMMIT");
    }
}
