//! Pure migration planning: where each journal entry stands against the bookkeeping rows
//! (applied, pending, drifted, out of order), decided the way drizzle-orm decides, without a database.

use serde::Serialize;

use super::journal::Migration;

/// A bookkeeping row, as drizzle writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedRow {
    pub id: i32,
    pub hash: String,
    pub created_at: Option<i64>,
}

/// Where one journal entry stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EntryState {
    /// Recorded with the same hash.
    Applied { created_at: i64 },
    /// Newer than the newest row: drizzle and vibedev both apply it.
    Pending,
    /// Recorded (a row with its `when`), but the file changed since.
    Drifted {
        created_at: i64,
        recorded_hash: String,
    },
    /// Older than the newest row and never recorded: drizzle skips it forever.
    OutOfOrder,
}

impl EntryState {
    pub fn label(&self) -> &'static str {
        match self {
            EntryState::Applied { .. } => "applied",
            EntryState::Pending => "pending",
            EntryState::Drifted { .. } => "drifted",
            EntryState::OutOfOrder => "out of order",
        }
    }
}

/// One entry of the plan, in journal order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedEntry {
    /// Index in the journal's `entries`.
    pub index: usize,
    pub tag: String,
    pub when: i64,
    pub hash: String,
    #[serde(flatten)]
    pub state: EntryState,
}

/// Every journal entry's state, plus rows that match no entry.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub entries: Vec<PlannedEntry>,
    /// Rows recorded for migrations the journal no longer lists.
    pub unknown_rows: Vec<AppliedRow>,
}

impl Plan {
    /// Plans `migrations` (journal order) against the bookkeeping `rows`.
    ///
    /// Pending is drizzle's own rule: `when` greater than the `created_at` of the row drizzle
    /// reads as newest (`ORDER BY created_at DESC LIMIT 1`, where a NULL sorts first and counts
    /// as 0). Everything else is matched to rows to tell applied, drifted and out of order apart.
    pub fn new(migrations: &[Migration], rows: &[AppliedRow]) -> Plan {
        let newest = drizzle_newest(rows);
        let mut claimed = vec![false; rows.len()];
        let mut states: Vec<Option<EntryState>> = migrations
            .iter()
            .map(|m| {
                newest
                    .is_none_or(|n| m.when > n)
                    .then_some(EntryState::Pending)
            })
            .collect();
        // Exact (hash, when) matches first, so a later pass cannot steal their rows.
        for (m, state) in migrations.iter().zip(states.iter_mut()) {
            if state.is_some() {
                continue;
            }
            if let Some(i) = find_row(rows, &claimed, |r| {
                r.created_at == Some(m.when) && r.hash == m.hash
            }) {
                claimed[i] = true;
                *state = Some(EntryState::Applied { created_at: m.when });
            }
        }
        for (m, state) in migrations.iter().zip(states.iter_mut()) {
            if state.is_some() {
                continue;
            }
            if let Some(i) = find_row(rows, &claimed, |r| r.created_at == Some(m.when)) {
                claimed[i] = true;
                *state = Some(EntryState::Drifted {
                    created_at: m.when,
                    recorded_hash: rows[i].hash.clone(),
                });
            } else if let Some(i) = find_row(rows, &claimed, |r| r.hash == m.hash) {
                // Its `when` was edited in the journal; the recorded work is the same file.
                claimed[i] = true;
                *state = Some(EntryState::Applied {
                    created_at: rows[i].created_at.unwrap_or_default(),
                });
            }
        }
        let entries = migrations
            .iter()
            .zip(states)
            .enumerate()
            .map(|(index, (m, state))| PlannedEntry {
                index,
                tag: m.tag.clone(),
                when: m.when,
                hash: m.hash.clone(),
                state: state.unwrap_or(EntryState::OutOfOrder),
            })
            .collect();
        let unknown_rows = rows
            .iter()
            .zip(&claimed)
            .filter(|(_, c)| !**c)
            .map(|(r, _)| r.clone())
            .collect();
        Plan {
            entries,
            unknown_rows,
        }
    }

    pub fn with_state(&self, label: &str) -> Vec<&PlannedEntry> {
        self.entries
            .iter()
            .filter(|e| e.state.label() == label)
            .collect()
    }

    pub fn pending(&self) -> Vec<&PlannedEntry> {
        self.with_state("pending")
    }

    pub fn drifted(&self) -> Vec<&PlannedEntry> {
        self.with_state("drifted")
    }

    pub fn out_of_order(&self) -> Vec<&PlannedEntry> {
        self.with_state("out of order")
    }

    /// The entries a run applies, in journal order: pending ones, and out-of-order ones when allowed.
    pub fn to_apply(&self, allow_out_of_order: bool) -> Vec<&PlannedEntry> {
        self.entries
            .iter()
            .filter(|e| match e.state {
                EntryState::Pending => true,
                EntryState::OutOfOrder => allow_out_of_order,
                _ => false,
            })
            .collect()
    }

    /// True when the database matches the journal exactly (nothing pending, drifted or skipped).
    pub fn in_step(&self) -> bool {
        self.entries
            .iter()
            .all(|e| matches!(e.state, EntryState::Applied { .. }))
    }

    /// `2 applied, 1 pending`: how many entries are in each state (applied always said).
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        for label in ["applied", "pending", "drifted", "out of order"] {
            let n = self.with_state(label).len();
            if n > 0 || label == "applied" {
                parts.push(format!("{n} {label}"));
            }
        }
        parts.join(", ")
    }
}

impl PlannedEntry {
    /// The journal's `when` (milliseconds since the epoch) as UTC.
    pub fn when_utc(&self) -> String {
        chrono::DateTime::from_timestamp_millis(self.when)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| self.when.to_string())
    }

    /// What `migrate status` says beside an entry whose state needs explaining.
    pub fn note(&self) -> String {
        match &self.state {
            EntryState::Drifted { recorded_hash, .. } => format!(
                "file changed since it was applied (recorded {}, file {})",
                &recorded_hash[..recorded_hash.len().min(12)],
                &self.hash[..self.hash.len().min(12)]
            ),
            EntryState::OutOfOrder => {
                "older than the newest applied migration: drizzle-orm skips it".to_string()
            }
            EntryState::Applied { .. } | EntryState::Pending => String::new(),
        }
    }
}

fn find_row(
    rows: &[AppliedRow],
    claimed: &[bool],
    f: impl Fn(&AppliedRow) -> bool,
) -> Option<usize> {
    rows.iter()
        .enumerate()
        .find(|(i, r)| !claimed[*i] && f(r))
        .map(|(i, _)| i)
}

/// The `created_at` drizzle compares against: none without rows; 0 when a row has NULL (it
/// sorts first under `DESC`, and `Number(null)` is 0); else the largest.
pub fn drizzle_newest(rows: &[AppliedRow]) -> Option<i64> {
    if rows.is_empty() {
        return None;
    }
    if rows.iter().any(|r| r.created_at.is_none()) {
        return Some(0);
    }
    rows.iter().filter_map(|r| r.created_at).max()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_when_reads_as_utc() {
        let e = PlannedEntry {
            index: 0,
            tag: "a".into(),
            when: 0,
            hash: "h".into(),
            state: EntryState::Pending,
        };
        assert_eq!(e.when_utc(), "1970-01-01 00:00:00 UTC");
    }

    fn mig(tag: &str, when: i64, hash: &str) -> Migration {
        Migration {
            tag: tag.into(),
            when,
            path: format!("{tag}.sql").into(),
            display: format!("{tag}.sql"),
            hash: hash.into(),
            text: String::new(),
            statements: Vec::new(),
        }
    }

    fn row(id: i32, hash: &str, at: i64) -> AppliedRow {
        AppliedRow {
            id,
            hash: hash.into(),
            created_at: Some(at),
        }
    }

    fn labels(p: &Plan) -> Vec<&'static str> {
        p.entries.iter().map(|e| e.state.label()).collect()
    }

    #[test]
    fn empty_database_has_everything_pending() {
        let m = [mig("a", 1, "h1"), mig("b", 2, "h2")];
        let p = Plan::new(&m, &[]);
        assert_eq!(labels(&p), ["pending", "pending"]);
        assert_eq!(p.to_apply(false).len(), 2);
        assert!(!p.in_step());
    }

    #[test]
    fn recorded_entries_are_applied_and_newer_ones_pending() {
        let m = [mig("a", 1, "h1"), mig("b", 2, "h2"), mig("c", 3, "h3")];
        let p = Plan::new(&m, &[row(1, "h1", 1), row(2, "h2", 2)]);
        assert_eq!(labels(&p), ["applied", "applied", "pending"]);
        assert_eq!(p.to_apply(false)[0].tag, "c");
    }

    #[test]
    fn fully_recorded_journal_is_in_step() {
        let m = [mig("a", 1, "h1"), mig("b", 2, "h2")];
        let p = Plan::new(&m, &[row(1, "h1", 1), row(2, "h2", 2)]);
        assert!(p.in_step());
        assert!(p.to_apply(true).is_empty());
    }

    #[test]
    fn a_changed_file_is_drifted_not_reapplied() {
        let m = [mig("a", 1, "h1-edited"), mig("b", 2, "h2")];
        let p = Plan::new(&m, &[row(1, "h1", 1), row(2, "h2", 2)]);
        assert_eq!(labels(&p), ["drifted", "applied"]);
        assert_eq!(
            p.entries[0].state,
            EntryState::Drifted {
                created_at: 1,
                recorded_hash: "h1".into()
            }
        );
        assert!(p.to_apply(true).is_empty());
        assert!(!p.in_step());
    }

    #[test]
    fn an_older_unrecorded_entry_is_out_of_order() {
        // Merged from another branch: generated before the newest applied migration.
        let m = [mig("a", 1, "h1"), mig("x", 2, "hx"), mig("b", 3, "h3")];
        let p = Plan::new(&m, &[row(1, "h1", 1), row(2, "h3", 3)]);
        assert_eq!(labels(&p), ["applied", "out of order", "applied"]);
        assert!(p.to_apply(false).is_empty());
        assert_eq!(p.to_apply(true)[0].tag, "x");
    }

    #[test]
    fn pending_follows_drizzle_even_when_a_hash_is_recorded() {
        // drizzle only compares `when`: a re-dated entry newer than every row is applied again.
        let m = [mig("a", 5, "h1")];
        let p = Plan::new(&m, &[row(1, "h1", 1)]);
        assert_eq!(labels(&p), ["pending"]);
    }

    #[test]
    fn a_redated_older_entry_with_a_recorded_hash_is_applied() {
        let m = [mig("a", 1, "h1"), mig("b", 3, "h2")];
        let p = Plan::new(&m, &[row(1, "h1", 2), row(2, "h2", 3)]);
        assert_eq!(labels(&p), ["applied", "applied"]);
        assert!(p.unknown_rows.is_empty());
    }

    #[test]
    fn rows_for_deleted_files_are_reported() {
        let m = [mig("a", 1, "h1")];
        let p = Plan::new(&m, &[row(1, "h1", 1), row(2, "gone", 2)]);
        assert_eq!(labels(&p), ["applied"]);
        assert_eq!(p.unknown_rows, [row(2, "gone", 2)]);
    }

    #[test]
    fn a_null_created_at_makes_drizzle_see_no_newest_row() {
        let rows = [
            row(1, "h1", 5),
            AppliedRow {
                id: 2,
                hash: "h0".into(),
                created_at: None,
            },
        ];
        assert_eq!(drizzle_newest(&rows), Some(0));
        assert_eq!(drizzle_newest(&[]), None);
        assert_eq!(drizzle_newest(&[row(1, "a", 3), row(2, "b", 9)]), Some(9));
        let p = Plan::new(&[mig("a", 5, "h1")], &rows);
        assert_eq!(labels(&p), ["pending"]);
    }

    #[test]
    fn entries_with_the_same_when_claim_their_own_rows() {
        let m = [mig("a", 7, "h1"), mig("b", 7, "h2")];
        let p = Plan::new(&m, &[row(1, "h2", 7), row(2, "h1", 7)]);
        assert_eq!(labels(&p), ["applied", "applied"]);
    }
}
