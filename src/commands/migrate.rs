//! `vibedev migrate [--allow-out-of-order]` and `vibedev migrate status [--exit-code] [--json]`,
//! plus the glue `reset-db`, `seed` and `up` share: the project's data settings and reporters.

use std::path::PathBuf;

use serde::Serialize;

use crate::cli::{MigrateArgs, MigrateCommand, MigrateStatusArgs};
use crate::config::Project;
use crate::error::{EXIT_MIGRATIONS_NOT_IN_STEP, Error, Result};
use crate::migrate::plan::AppliedRow;
use crate::migrate::{
    self, Bookkeeping, EntryState, Journal, MigrateOptions, MigrateOutcome, Plan, Progress,
    Reporter, runner,
};
use crate::runtime;
use crate::services::postgres::PgTarget;
use crate::services::targets::Targets;
use crate::stack::{DEFAULT_BUCKET, Stack};
use crate::ui::{self, Ui};

use super::Context;

/// The project's `[migrations]` and `[seed]` settings, resolved against its root.
#[derive(Debug, Clone)]
pub struct DataConfig {
    pub root: PathBuf,
    pub migrations_dir: PathBuf,
    /// True when `[migrations] dir` names the folder (then it must exist).
    pub migrations_dir_set: bool,
    pub bookkeeping: Bookkeeping,
    /// `[migrations] extensions`: created by the admin account before migrating.
    pub extensions: Vec<String>,
    pub seed_sql: Vec<PathBuf>,
    pub bucket_dir: Option<PathBuf>,
    pub bucket: Option<String>,
    pub firestore_dir: Option<PathBuf>,
}

impl DataConfig {
    pub fn new(project: &Project) -> DataConfig {
        let m = &project.file.migrations;
        let s = &project.file.seed;
        DataConfig {
            root: project.root.clone(),
            migrations_dir: migrate::migrations_dir(project),
            migrations_dir_set: m.dir.is_some(),
            bookkeeping: Bookkeeping::configured(m),
            extensions: m.extensions.clone(),
            seed_sql: s.sql.iter().map(|p| project.resolve(p)).collect(),
            bucket_dir: s.bucket_dir.as_deref().map(|p| project.resolve(p)),
            bucket: s.bucket.clone(),
            firestore_dir: s.firestore_dir.as_deref().map(|p| project.resolve(p)),
        }
    }

    /// The journal; `None` when the folder does not exist and `required` is false.
    pub fn journal(&self, required: bool) -> Result<Option<Journal>> {
        if !required && !self.migrations_dir.exists() {
            return Ok(None);
        }
        Ok(Some(
            Journal::load(&self.migrations_dir, &self.root).map_err(migrate::MigrateError::from)?,
        ))
    }

    pub fn options(&self, allow_out_of_order: bool) -> MigrateOptions {
        MigrateOptions {
            bookkeeping: self.bookkeeping.clone(),
            allow_out_of_order,
            extensions: self.extensions.clone(),
            ..MigrateOptions::default()
        }
    }

    /// The seed bucket: `[seed] bucket`, else the stack's first bucket, else `vibesdk-templates`.
    pub fn seed_bucket(&self, targets: &Targets) -> String {
        self.bucket
            .clone()
            .or_else(|| targets.gcs.as_ref().and_then(|(_, b)| b.first().cloned()))
            .unwrap_or_else(|| DEFAULT_BUCKET.to_string())
    }
}

/// Observes the stack and returns where its running data stores are.
pub async fn locate(ctx: &Context, stack: &Stack) -> Result<Targets> {
    let engine = ctx.engine().await?;
    let runtimes = runtime::observe(&engine, stack).await?;
    Ok(Targets::new(stack, &runtimes))
}

/// The Postgres target, or an error that says how to start it.
pub fn require_postgres(targets: &Targets) -> Result<&PgTarget> {
    targets.postgres.as_ref().ok_or_else(|| {
        Error::failed(
            "Postgres is not running",
            Some("start it with `vibedev up` (or `vibedev up postgres`)".into()),
        )
    })
}

/// `postgres  ` as the reconcile reporter writes service names.
pub fn service_label(name: &str) -> String {
    console::style(format!("{name:<10}")).bold().to_string()
}

/// Shows migration, seed and reset progress through `ui`.
pub fn reporter(ui: &Ui, service: &str) -> Reporter {
    let ui = ui.clone();
    let label = service_label(service);
    std::sync::Arc::new(move |event| {
        match event {
        Progress::LockWait { what } => ui.info(&format!(
            "{label} waiting for another `{what}` on this database to finish"
        )),
        Progress::Applying { tag, statements } => {
            ui.detail(&format!("applying {tag} ({statements} statements)"))
        }
        Progress::Applied { tag, elapsed } => ui.info(&format!(
            "{label} applied {tag} in {}",
            ui::secs(elapsed)
        )),
        Progress::OwnTransactionControl { tag, file, at } => ui.warn(&format!(
            "migration {tag} controls its own transactions ({}): it runs as drizzle runs it, but cannot be rolled back as a whole; \
             if a statement of {file} fails, what was committed before it stays",
            at.iter()
                .map(|(line, sql)| format!("{sql} at line {line}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Progress::Extensions { database, names } => ui.detail(&format!(
            "extensions {} present in {database}",
            names.join(", ")
        )),
        Progress::Drifted { tag } => ui.warn(&format!(
            "migration {tag} changed after it was applied (its hash no longer matches the database's record); \
             it is not applied again: put further changes in a new migration"
        )),
        Progress::Seeding { file } => ui.detail(&format!("seeding {file}")),
        Progress::Seeded { file, elapsed } => ui.info(&format!(
            "{label} seeded {file} in {}",
            ui::secs(elapsed)
        )),
        Progress::TemplateBuilding { name, replaced } => ui.info(&if replaced.is_empty() {
            format!("{label} building template database {name}")
        } else {
            format!(
                "{label} rebuilding template database {name} (migrations or seeds changed; dropping {})",
                replaced.join(", ")
            )
        }),
        Progress::TemplateBuilt { name, elapsed } => {
            ui.detail(&format!("template {name} built in {}", ui::secs(elapsed)))
        }
        Progress::Disconnecting { sessions } if sessions > 0 => ui.info(&format!(
            "{label} disconnecting {sessions} session{}",
            if sessions == 1 { "" } else { "s" }
        )),
        Progress::Disconnecting { .. } => {}
    }
    })
}

/// Applies pending migrations as the app user; used by `migrate` and by `up`.
pub async fn apply(
    ui: &Ui,
    pg: &PgTarget,
    journal: &Journal,
    options: &MigrateOptions,
    service: &str,
) -> Result<MigrateOutcome> {
    let report = reporter(ui, service);
    migrate::create_extensions(pg, &pg.app.database, &options.extensions, &report).await?;
    let mut client = migrate::connect_app(pg, &pg.app.database).await?;
    let outcome = runner::migrate(&mut client, journal, options, &report).await?;
    warn_unknown_rows(ui, &outcome.plan.unknown_rows, &options.bookkeeping);
    Ok(outcome)
}

fn warn_unknown_rows(ui: &Ui, rows: &[AppliedRow], bk: &Bookkeeping) {
    if !rows.is_empty() {
        ui.warn(&format!(
            "{} has {} row(s) for migrations the journal no longer lists (ids {})",
            bk.qualified(),
            rows.len(),
            rows.iter()
                .map(|r| r.id.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

pub async fn run(ctx: &Context, args: MigrateArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let config = DataConfig::new(&project);
    let journal = config.journal(true)?.unwrap_or_else(|| Journal {
        dir: config.migrations_dir.clone(),
        migrations: Vec::new(),
    });
    let targets = locate(ctx, &stack).await?;
    let pg = require_postgres(&targets)?;
    match args.command {
        Some(MigrateCommand::Status(status_args)) => {
            status(ctx, pg, &journal, &config, status_args).await
        }
        None => {
            let _lock = ctx.lock(&stack.project, "migrate").await?;
            let options = config.options(args.allow_out_of_order);
            let outcome = apply(&ctx.ui, pg, &journal, &options, "postgres").await?;
            ctx.ui.out(&summary(&pg.app.database, &journal, &outcome));
            Ok(0)
        }
    }
}

/// `vibesdk: applied 2 migrations in 120ms (3 in the journal)` / `vibesdk: up to date (...)`.
pub fn summary(database: &str, journal: &Journal, outcome: &MigrateOutcome) -> String {
    let total = journal.migrations.len();
    match outcome.applied.len() {
        0 => format!("{database}: up to date ({total} migrations in the journal)"),
        n => format!(
            "{database}: applied {n} migration{} in {} ({total} in the journal)",
            if n == 1 { "" } else { "s" },
            ui::secs(outcome.elapsed)
        ),
    }
}

/// The JSON shape of `migrate status --json` (stable for scripts).
#[derive(Debug, Serialize)]
struct StatusJson<'a> {
    database: &'a str,
    bookkeeping: String,
    in_step: bool,
    #[serde(flatten)]
    plan: &'a Plan,
}

async fn status(
    ctx: &Context,
    pg: &PgTarget,
    journal: &Journal,
    config: &DataConfig,
    args: MigrateStatusArgs,
) -> Result<u8> {
    let client = migrate::connect_app(pg, &pg.app.database).await?;
    let plan = runner::status(&client, journal, &config.bookkeeping).await?;
    if args.json {
        let json = StatusJson {
            database: &pg.app.database,
            bookkeeping: config.bookkeeping.qualified(),
            in_step: plan.in_step(),
            plan: &plan,
        };
        ctx.ui
            .out(&serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        for line in status_table(&ctx.ui, &plan) {
            ctx.ui.out(&line);
        }
        ctx.ui.out(&status_summary(&plan));
        warn_unknown_rows(&ctx.ui, &plan.unknown_rows, &config.bookkeeping);
    }
    Ok(if args.exit_code && !plan.in_step() {
        EXIT_MIGRATIONS_NOT_IN_STEP
    } else {
        0
    })
}

/// One line per journal entry.
pub fn status_table(ui: &Ui, plan: &Plan) -> Vec<String> {
    let rows: Vec<Vec<String>> = plan
        .entries
        .iter()
        .map(|e| {
            let (state, note) = match &e.state {
                EntryState::Applied { .. } => (console::style("applied").green(), String::new()),
                EntryState::Pending => (console::style("pending").yellow(), String::new()),
                EntryState::Drifted { recorded_hash, .. } => (
                    console::style("drifted").red(),
                    format!(
                        "file changed since it was applied (recorded {}, file {})",
                        &recorded_hash[..recorded_hash.len().min(12)],
                        &e.hash[..12]
                    ),
                ),
                EntryState::OutOfOrder => (
                    console::style("out of order").red(),
                    "older than the newest applied migration: drizzle-orm skips it".to_string(),
                ),
            };
            vec![e.tag.clone(), state.to_string(), when(e.when), note]
        })
        .collect();
    ui.table(&["migration", "state", "when", "note"], &rows)
}

fn status_summary(plan: &Plan) -> String {
    let mut parts = Vec::new();
    for label in ["applied", "pending", "drifted", "out of order"] {
        let n = plan.with_state(label).len();
        if n > 0 || label == "applied" {
            parts.push(format!("{n} {label}"));
        }
    }
    parts.join(", ")
}

/// A journal `when` (milliseconds since the epoch) as UTC.
fn when(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| ms.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_when_reads_as_utc() {
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
    }

    #[test]
    fn status_summary_counts_states() {
        let plan = Plan {
            entries: vec![crate::migrate::plan::PlannedEntry {
                index: 0,
                tag: "a".into(),
                when: 1,
                hash: "h".repeat(64),
                state: EntryState::Pending,
            }],
            unknown_rows: vec![],
        };
        assert_eq!(status_summary(&plan), "0 applied, 1 pending");
    }
}
