//! Applies a drizzle journal to a database with drizzle-orm's bookkeeping (same schema, table and
//! rows), but each migration in its own transaction with its row, under an advisory lock.

use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::journal::{Journal, Migration};
use super::plan::{AppliedRow, EntryState, Plan};
use super::sql::{self, SqlStatement};
use super::{
    MigrateError, OwnTransaction, Progress, Reporter, advisory_lock, advisory_unlock, lock_key,
};
use crate::pg::{quote_ident, quote_literal};

pub const DEFAULT_SCHEMA: &str = "drizzle";
pub const DEFAULT_TABLE: &str = "__drizzle_migrations";

/// The bookkeeping table (drizzle's `migrationsSchema` / `migrationsTable`, quoted as given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bookkeeping {
    pub schema: String,
    pub table: String,
}

impl Default for Bookkeeping {
    fn default() -> Self {
        Bookkeeping {
            schema: DEFAULT_SCHEMA.into(),
            table: DEFAULT_TABLE.into(),
        }
    }
}

impl Bookkeeping {
    /// The table `[migrations] schema` / `table` name, drizzle's defaults otherwise.
    pub fn configured(m: &crate::config::MigrationsConfig) -> Bookkeeping {
        let defaults = Bookkeeping::default();
        Bookkeeping {
            schema: m.schema.clone().unwrap_or(defaults.schema),
            table: m.table.clone().unwrap_or(defaults.table),
        }
    }

    /// `"schema"."table"`.
    pub fn qualified(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.table))
    }

    /// The statements drizzle-orm runs before reading the table, as it writes them.
    fn create_sql(&self) -> [String; 2] {
        [
            format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(&self.schema)),
            format!(
                "CREATE TABLE IF NOT EXISTS {} (\n\t\t\tid SERIAL PRIMARY KEY,\n\t\t\thash text NOT NULL,\n\t\t\tcreated_at bigint\n\t\t)",
                self.qualified()
            ),
        ]
    }
}

/// How a run behaves.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub bookkeeping: Bookkeeping,
    /// Apply entries older than the newest applied one that were never recorded.
    pub allow_out_of_order: bool,
    /// How long to wait for another run holding the lock.
    pub lock_timeout: Duration,
    /// Extensions the admin account creates before migrating (`[migrations] extensions`).
    pub extensions: Vec<String>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            bookkeeping: Bookkeeping::default(),
            allow_out_of_order: false,
            lock_timeout: Duration::from_secs(600),
            extensions: Vec::new(),
        }
    }
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct MigrateOutcome {
    /// The plan found once the lock was held (before anything was applied).
    pub plan: Plan,
    /// Tags applied by this run, in order.
    pub applied: Vec<String>,
    pub elapsed: Duration,
}

impl MigrateOutcome {
    /// True when the database had no bookkeeping rows before this run.
    pub fn started_empty(&self) -> bool {
        self.plan
            .entries
            .iter()
            .all(|e| matches!(e.state, EntryState::Pending))
            && self.plan.unknown_rows.is_empty()
    }
}

/// The bookkeeping rows in id order; none when the table does not exist yet. Creates nothing.
pub async fn read_rows(client: &Client, bk: &Bookkeeping) -> Result<Vec<AppliedRow>, MigrateError> {
    let exists: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&bk.qualified()])
        .await
        .map_err(|e| MigrateError::query("cannot look up the bookkeeping table", &e))?
        .get(0);
    if exists.is_none() {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT id, hash, created_at FROM {} ORDER BY id",
                bk.qualified()
            ),
            &[],
        )
        .await
        .map_err(|e| MigrateError::query(format!("cannot read {}", bk.qualified()), &e))?;
    Ok(rows
        .iter()
        .map(|r| AppliedRow {
            id: r.get(0),
            hash: r.get(1),
            created_at: r.get(2),
        })
        .collect())
}

/// Where every journal entry stands (read-only: creates no schema or table).
pub async fn status(
    client: &Client,
    journal: &Journal,
    bk: &Bookkeeping,
) -> Result<Plan, MigrateError> {
    let rows = read_rows(client, bk).await?;
    Ok(Plan::new(&journal.migrations, &rows))
}

/// Applies what the journal has and the database lacks. Each migration runs in its own
/// transaction with its bookkeeping row; a failing one leaves no trace, earlier ones stay.
pub async fn migrate(
    client: &mut Client,
    journal: &Journal,
    options: &MigrateOptions,
    report: &Reporter,
) -> Result<MigrateOutcome, MigrateError> {
    let start = Instant::now();
    let key = lock_key("migrate", &options.bookkeeping.qualified());
    advisory_lock(client, key, "migrate", options.lock_timeout, report).await?;
    let result = migrate_locked(client, journal, options, report).await;
    advisory_unlock(client, key).await;
    result.map(|(plan, applied)| MigrateOutcome {
        plan,
        applied,
        elapsed: start.elapsed(),
    })
}

async fn migrate_locked(
    client: &mut Client,
    journal: &Journal,
    options: &MigrateOptions,
    report: &Reporter,
) -> Result<(Plan, Vec<String>), MigrateError> {
    let bk = &options.bookkeeping;
    for sql in bk.create_sql() {
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| MigrateError::query(format!("cannot create {}", bk.qualified()), &e))?;
    }
    let plan = status(client, journal, bk).await?;
    let out_of_order = plan.out_of_order();
    if !options.allow_out_of_order && !out_of_order.is_empty() {
        return Err(MigrateError::OutOfOrder {
            entries: out_of_order
                .iter()
                .map(|e| format!("{} (when {})", e.tag, e.when))
                .collect(),
        });
    }
    for entry in plan.drifted() {
        report(Progress::Drifted {
            tag: entry.tag.clone(),
        });
    }
    let mut applied = Vec::new();
    for entry in plan.to_apply(options.allow_out_of_order) {
        let migration = &journal.migrations[entry.index];
        apply_one(client, migration, bk, report).await?;
        applied.push(migration.tag.clone());
    }
    Ok((plan, applied))
}

/// One migration and its row, in one transaction (unless the file ends it with its own
/// `COMMIT;`, as files around `CREATE INDEX CONCURRENTLY` do: then it runs as drizzle runs it,
/// and a failure reports which statements stayed).
async fn apply_one(
    client: &mut Client,
    m: &Migration,
    bk: &Bookkeeping,
    report: &Reporter,
) -> Result<(), MigrateError> {
    let start = Instant::now();
    report(Progress::Applying {
        tag: m.tag.clone(),
        statements: m.statements.len(),
    });
    let pieces: Vec<Vec<SqlStatement>> = m
        .statements
        .iter()
        .map(|s| sql::statements(&s.sql))
        .collect();
    let control = control_statements(m, &pieces);
    if !control.is_empty() {
        report(Progress::OwnTransactionControl {
            tag: m.tag.clone(),
            file: m.display.clone(),
            at: control.clone(),
        });
    }
    client
        .batch_execute("BEGIN")
        .await
        .map_err(|e| MigrateError::query("cannot begin a transaction", &e))?;
    for (k, stmt) in m.statements.iter().enumerate() {
        if let Err(failure) = super::run_piece(client, &stmt.sql).await {
            // Whatever is still open is discarded (a warning only when nothing is).
            let _ = client.batch_execute("ROLLBACK").await;
            let own_tx = (!control.is_empty()).then(|| OwnTransaction {
                control: control.clone(),
                stayed: sql::committed_before(&pieces, k, failure.completed)
                    .into_iter()
                    .map(|(p, s)| located(m, p, &pieces[p][s]))
                    .collect(),
            });
            let err = super::statement_error(
                "migration",
                &m.tag,
                &m.display,
                &m.text,
                stmt,
                m.statements.len(),
                &failure,
            );
            return Err(super::with_own_tx(err, own_tx));
        }
    }
    // Literals rather than parameters: the row is identical either way, and a simple query
    // keeps the transaction to one round trip per statement.
    let insert = format!(
        "insert into {} (\"hash\", \"created_at\") values({}, {})",
        bk.qualified(),
        quote_literal(&m.hash),
        m.when
    );
    if let Err(e) = client.batch_execute(&insert).await {
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(MigrateError::query(format!("cannot record {}", m.tag), &e));
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| MigrateError::query(format!("cannot commit {}", m.tag), &e))?;
    report(Progress::Applied {
        tag: m.tag.clone(),
        elapsed: start.elapsed(),
    });
    Ok(())
}

/// `(line, statement)` of the file's transaction control statements.
fn control_statements(m: &Migration, pieces: &[Vec<SqlStatement>]) -> Vec<(usize, String)> {
    pieces
        .iter()
        .enumerate()
        .flat_map(|(p, piece)| piece.iter().map(move |s| (p, s)))
        .filter(|(_, s)| s.tx.is_some())
        .map(|(p, s)| located(m, p, s))
        .collect()
}

/// A statement of piece `p` as `(file line, first line of its text)`.
fn located(m: &Migration, p: usize, s: &SqlStatement) -> (usize, String) {
    let piece = &m.statements[p];
    let (line, _) = super::journal::line_column(&m.text, piece.offset + s.start);
    (line, s.excerpt(&piece.sql, 72))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookkeeping_names_are_quoted_as_given() {
        let bk = Bookkeeping {
            schema: "Ops".into(),
            table: "Migrations \"log\"".into(),
        };
        assert_eq!(bk.qualified(), "\"Ops\".\"Migrations \"\"log\"\"\"");
        let [schema, table] = bk.create_sql();
        assert_eq!(schema, "CREATE SCHEMA IF NOT EXISTS \"Ops\"");
        assert!(
            table.starts_with("CREATE TABLE IF NOT EXISTS \"Ops\".\"Migrations \"\"log\"\"\" (")
        );
        assert!(table.contains("id SERIAL PRIMARY KEY"));
        assert!(table.contains("hash text NOT NULL"));
        assert!(table.contains("created_at bigint"));
    }

    #[test]
    fn defaults_are_drizzles() {
        assert_eq!(
            Bookkeeping::default().qualified(),
            "\"drizzle\".\"__drizzle_migrations\""
        );
    }
}
