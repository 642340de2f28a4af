//! The texts of one SQLite group-commit transaction: `BEGIN IMMEDIATE` and
//! some settlements, then some admissions and `COMMIT`, so a whole group
//! costs two trips to SQLite's thread and one commit (up to four when it
//! mixes keys alone with keys that have budget rows: see `Rows`).
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
pub const SETTLEMENT_PARAMS: usize = 11;

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

/// Whether the jobs of a part touch budget rows. Most keys have no user and
/// no limits per model; their jobs run shorter statements (`sql::SQLITE_ADMIT_KEY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    KeyOnly,
    WithBudgets,
}

/// One part of a batch: `places` jobs of one kind and one `Rows`, the first
/// part opening the transaction and the last committing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub settle: bool,
    pub rows: Rows,
    pub places: usize,
    pub begin: bool,
    pub commit: bool,
}

impl Part {
    fn index(self) -> usize {
        let flags = [self.settle, self.rows == Rows::WithBudgets, self.begin, self.commit];
        flags.iter().fold(size_index(self.places), |i, f| i * 2 + usize::from(*f))
    }

    pub fn params(self) -> usize {
        if self.settle {
            SETTLEMENT_PARAMS
        } else {
            ADMISSION_PARAMS
        }
    }

    /// The part's text (`places` 0 or a power of two up to `MAX_BATCH`).
    pub fn text(self) -> &'static str {
        static TEXTS: [OnceLock<String>; SIZES * 16] = [const { OnceLock::new() }; SIZES * 16];
        debug_assert!(self.places <= MAX_BATCH && places(self.places) == self.places);
        TEXTS[self.index()].get_or_init(|| {
            let job: &str = match (self.settle, self.rows) {
                (true, Rows::KeyOnly) => &sql::SQLITE_SETTLE_KEY,
                (true, Rows::WithBudgets) => &sql::SQLITE_SETTLE,
                (false, Rows::KeyOnly) => &sql::SQLITE_ADMIT_KEY,
                (false, Rows::WithBudgets) => &sql::SQLITE_ADMIT,
            };
            let mut statements = Vec::new();
            if self.begin {
                statements.push("BEGIN IMMEDIATE".to_owned());
            }
            for place in 0..self.places {
                let tags = if self.settle {
                    vec![("RETURNING key_id", format!("RETURNING {place} AS settled, key_id"))]
                } else {
                    vec![
                        ("RETURNING name,", format!("RETURNING {place} AS admitted, name,")),
                        ("RETURNING id", format!("RETURNING {place} AS reserved, id")),
                    ]
                };
                statements.push(renumber(&tagged(job, &tags), place * self.params()));
            }
            if self.commit {
                statements.push("COMMIT".to_owned());
            }
            statements.join(";\n")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_padded_to_a_few_sizes() {
        assert_eq!([0, 1, 2, 3, 5, 17, 32].map(places), [0, 1, 2, 4, 8, 32, 32]);
        assert_eq!(size_index(MAX_BATCH), SIZES - 1);
    }

    fn part(settle: bool, rows: Rows, places: usize, begin: bool, commit: bool) -> Part {
        Part { settle, rows, places, begin, commit }
    }

    #[test]
    fn every_job_tags_its_rows_and_numbers_its_own_parameters() {
        let settle = part(true, Rows::WithBudgets, 2, true, false).text();
        let admit = part(false, Rows::WithBudgets, 4, false, true).text();
        assert!(settle.starts_with("BEGIN IMMEDIATE;") && admit.ends_with("COMMIT"));
        assert_eq!(settle.matches(" AS settled,").count(), 2);
        assert_eq!(admit.matches(" AS admitted,").count(), 4);
        assert_eq!(admit.matches(" AS reserved,").count(), 4);
        assert!(admit.contains("RETURNING 3 AS reserved, id"));
        for (text, highest) in [(settle, 2 * SETTLEMENT_PARAMS), (admit, 4 * ADMISSION_PARAMS)] {
            assert!(text.contains(&format!("${highest}")));
            assert!(!text.contains(&format!("${}", highest + 1)));
        }
        assert_eq!(part(true, Rows::KeyOnly, 0, true, false).text(), "BEGIN IMMEDIATE");
        assert_eq!(part(false, Rows::KeyOnly, 0, false, true).text(), "COMMIT");
    }

    #[test]
    fn jobs_of_keys_alone_never_touch_budget_rows_and_number_their_parameters_alike() {
        let settle = part(true, Rows::KeyOnly, 2, true, false).text();
        let admit = part(false, Rows::KeyOnly, 2, false, true).text();
        for text in [settle, admit] {
            assert!(!text.contains("budgets"), "{text}");
        }
        assert_eq!(admit.matches(" AS admitted,").count(), 2);
        assert_eq!(admit.matches(" AS reserved,").count(), 2);
        assert!(admit.contains(&format!("${}", 2 * ADMISSION_PARAMS)), "the same places as with budgets");
        assert!(!admit.contains(&format!("${}", 2 * ADMISSION_PARAMS + 1)));
        assert!(settle.contains(&format!("${}", 2 * SETTLEMENT_PARAMS)));
    }

    #[test]
    fn every_part_has_a_text_of_its_own() {
        let mut seen = std::collections::HashSet::new();
        for places in [0, 1, 2, 4, 8, 16, 32] {
            for settle in [true, false] {
                for rows in [Rows::KeyOnly, Rows::WithBudgets] {
                    for (begin, commit) in [(false, false), (true, false), (false, true), (true, true)] {
                        assert!(seen.insert(part(settle, rows, places, begin, commit).index()));
                    }
                }
            }
        }
    }
}
