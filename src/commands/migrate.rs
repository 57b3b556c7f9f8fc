//! `vibedev migrate [--allow-out-of-order]` and `vibedev migrate status [--exit-code] [--json]`.
//! Before applying anything, the app database is saved as an automatic snapshot (`[snapshots]`).

use serde::Serialize;

use crate::cli::{MigrateArgs, MigrateCommand, MigrateStatusArgs};
use crate::data::{self, Database, Stores};
use crate::error::{Exit, Result};
use crate::migrate::{self, Bookkeeping, EntryState, Journal, Plan, runner};
use crate::snapshot;
use crate::ui::Ui;

use super::Context;
use super::report::{
    auto_snapshot_lines, branch_line, migrate_summary, reporters, warn_unknown_rows,
};

pub async fn run(ctx: &Context, args: MigrateArgs) -> Result<u8> {
    let (project, stack) = ctx.stack()?;
    let paths = project.paths();
    let journal = migrate::project_journal(&paths, true)?.unwrap_or_else(|| Journal {
        dir: paths.migrations.clone(),
        migrations: Vec::new(),
    });
    let engine = ctx.engine().await?;
    let stores = Stores::observe(&engine, &stack).await?;
    let db = stores.database()?;
    let bookkeeping = Bookkeeping::configured(&project.file.migrations);
    // A branch's database is made on first use (and, for `status`, migrated as it would be by
    // any other first use; `migrate` itself applies what is pending next).
    let (project_ref, db_ref) = (&project, &db);
    // Returns true when it made the database now.
    let on_branch = |migrate_new| async move {
        let used =
            data::branch_database(project_ref, db_ref, migrate_new, &reporters(&ctx.ui)).await?;
        if let Some(used) = &used {
            branch_line(&ctx.ui, used);
        }
        Ok::<_, crate::error::Error>(used.is_some_and(|u| u.made.is_some()))
    };
    match args.command {
        Some(MigrateCommand::Status(status_args)) => {
            on_branch(true).await?;
            status(ctx, &db, &journal, &bookkeeping, status_args).await
        }
        None => {
            let _lock = ctx.lock(&stack.project, "migrate").await?;
            // A database made now is a copy of one that still holds its data: nothing of the
            // user's exists only in it, so it is not saved first.
            let made = on_branch(false).await?;
            if let Some(keep) = project.file.snapshots.auto_keep().filter(|_| !made) {
                let client = migrate::connect_app(&db.target, &db.target.app.database).await?;
                let plan = runner::status(&client, &journal, &bookkeeping).await?;
                drop(client);
                if !plan.to_apply(args.allow_out_of_order).is_empty()
                    && let Some(done) =
                        snapshot::save_automatic(&engine, &project, &stores, "migrate", keep)
                            .await?
                {
                    auto_snapshot_lines(&ctx.ui, "migrate", &done);
                }
            }
            let outcome = data::migrate(
                &project,
                &db,
                &journal,
                args.allow_out_of_order,
                &reporters(&ctx.ui),
            )
            .await?;
            warn_unknown_rows(&ctx.ui, &outcome.plan.unknown_rows, &bookkeeping);
            ctx.ui.out(&migrate_summary(
                &db.target.app.database,
                journal.migrations.len(),
                &outcome,
            ));
            Ok(0)
        }
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
    db: &Database,
    journal: &Journal,
    bookkeeping: &Bookkeeping,
    args: MigrateStatusArgs,
) -> Result<u8> {
    let pg = &db.target;
    let client = migrate::connect_app(pg, &pg.app.database).await?;
    let plan = runner::status(&client, journal, bookkeeping).await?;
    if args.json {
        let json = StatusJson {
            database: &pg.app.database,
            bookkeeping: bookkeeping.qualified(),
            in_step: plan.in_step(),
            plan: &plan,
        };
        ctx.ui
            .out(&serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        for line in status_table(&ctx.ui, &plan) {
            ctx.ui.out(&line);
        }
        ctx.ui.out(&plan.summary());
        warn_unknown_rows(&ctx.ui, &plan.unknown_rows, bookkeeping);
    }
    Ok(if args.exit_code && !plan.in_step() {
        Exit::MigrationsNotInStep.code()
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
            let state = match &e.state {
                EntryState::Applied { .. } => console::style(e.state.label()).green(),
                EntryState::Pending => console::style(e.state.label()).yellow(),
                EntryState::Drifted { .. } | EntryState::OutOfOrder => {
                    console::style(e.state.label()).red()
                }
            };
            vec![e.tag.clone(), state.to_string(), e.when_utc(), e.note()]
        })
        .collect();
    ui.table(&["migration", "state", "when", "note"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(plan.summary(), "0 applied, 1 pending");
    }
}
