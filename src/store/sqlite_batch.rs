//! The text of one SQLite group-commit transaction: `BEGIN IMMEDIATE`, some
//! settlements, some admissions, `COMMIT`, sent as one batch, so a whole
//! group costs one trip to SQLite's thread and one commit.
//!
//! Each job is the one-job statements of `sql.rs` with its parameters moved
//! past the jobs before it (`$1` of the third settlement is `$19`), and each
//! row it returns starts with a column naming what the row is and whose:
//! `settled`, `admitted` (the counters) or `reserved` (the reservation id),
//! holding the job's place in its kind.
//!
//! SQLite prepares each distinct text once and keeps it (sqlx's statement
//! cache), so the number of texts is kept small: a batch of n jobs of a kind
//! uses the text for the next power of two, and the places past n are bound
//! to NULL, which matches no row and changes nothing.

use super::group::MAX_BATCH;
use super::sql::{self, renumber, tagged};
use std::sync::OnceLock;

/// Parameters of one admission (`sql::SQLITE_ADMIT`) and one settlement (`sql::SQLITE_SETTLE`).
pub const ADMISSION_PARAMS: usize = 15;
pub const SETTLEMENT_PARAMS: usize = 9;

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

/// The transaction for `settlements` and then `admissions` places (each 0
/// or a power of two up to `MAX_BATCH`).
pub fn text(settlements: usize, admissions: usize) -> &'static str {
    static TEXTS: [[OnceLock<String>; SIZES]; SIZES] = [const { [const { OnceLock::new() }; SIZES] }; SIZES];
    debug_assert!(settlements <= MAX_BATCH && admissions <= MAX_BATCH);
    debug_assert_eq!(places(settlements), settlements);
    debug_assert_eq!(places(admissions), admissions);
    TEXTS[size_index(settlements)][size_index(admissions)].get_or_init(|| build(settlements, admissions))
}

fn build(settlements: usize, admissions: usize) -> String {
    let mut text = String::from("BEGIN IMMEDIATE;\n");
    for place in 0..settlements {
        let statements = tagged(
            &sql::SQLITE_SETTLE,
            &[("RETURNING key_id", format!("RETURNING {place} AS settled, key_id"))],
        );
        text.push_str(&renumber(&statements, place * SETTLEMENT_PARAMS));
        text.push_str(";\n");
    }
    let past_settlements = settlements * SETTLEMENT_PARAMS;
    for place in 0..admissions {
        let statements = tagged(
            &sql::SQLITE_ADMIT,
            &[
                ("RETURNING name,", format!("RETURNING {place} AS admitted, name,")),
                ("RETURNING id", format!("RETURNING {place} AS reserved, id")),
            ],
        );
        text.push_str(&renumber(&statements, past_settlements + place * ADMISSION_PARAMS));
        text.push_str(";\n");
    }
    text.push_str("COMMIT");
    text
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
        let text = text(2, 4);
        assert!(text.starts_with("BEGIN IMMEDIATE;") && text.ends_with("COMMIT"));
        assert_eq!(text.matches(" AS settled,").count(), 2);
        assert_eq!(text.matches(" AS admitted,").count(), 4);
        assert_eq!(text.matches(" AS reserved,").count(), 4);
        assert!(text.contains("RETURNING 3 AS reserved, id"));
        let highest = 2 * SETTLEMENT_PARAMS + 4 * ADMISSION_PARAMS;
        assert!(text.contains(&format!("${highest}")));
        assert!(!text.contains(&format!("${}", highest + 1)));
    }
}
