//! `migrations`: the Drizzle folder loads exactly as `vibedev migrate` would read it (journal,
//! every file it lists), and, when the stack's Postgres is running, how the app database stands
//! against it: migrations pending (someone pulled new ones) or changed since they were applied.

use std::path::Path;
use std::time::Duration;

use crate::config::Project;
use crate::engine::Engine;
use crate::migrate::journal::Journal;
use crate::migrate::plan::Plan;
use crate::migrate::runner::{self, Bookkeeping};
use crate::runtime;
use crate::services::targets::Targets;
use crate::stack::Stack;

use super::Check;

const NAME: &str = "migrations";

/// The folder vibedev migrates from when `[migrations] dir` does not name one.
const DEFAULT_DIR: &str = "drizzle";

/// How long the doctor waits for the database before leaving the comparison out.
const DB_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn check(root: &Path, project: Option<&Project>, stack: Option<&Stack>) -> Check {
    let Some(project) = project else {
        return Check::skip(NAME, "vibedev.toml could not be read");
    };
    let m = &project.file.migrations;
    let dir = project.resolve(m.dir.as_deref().unwrap_or(DEFAULT_DIR.as_ref()));
    if !dir.is_dir() {
        return match m.dir {
            Some(_) => Check::fail(
                NAME,
                format!(
                    "the migrations folder {} (vibedev.toml [migrations] dir) does not exist",
                    dir.display()
                ),
                Some("fix [migrations] dir in vibedev.toml, or generate migrations with `drizzle-kit generate`".into()),
            ),
            None => Check::skip(
                NAME,
                format!("no {} folder: nothing to migrate", dir.display()),
            ),
        };
    }
    let journal = match Journal::load(&dir, root) {
        Ok(j) => j,
        Err(e) => {
            let hint = e.hint();
            return Check::fail(NAME, e.to_string(), hint);
        }
    };
    let count = journal.migrations.len();
    let latest = journal
        .migrations
        .last()
        .map(|e| format!(", latest {}", e.tag))
        .unwrap_or_default();
    let files = format!(
        "{}: {count} migration{}{latest}",
        dir.display(),
        if count == 1 { "" } else { "s" }
    );
    let defaults = Bookkeeping::default();
    let bookkeeping = Bookkeeping {
        schema: m.schema.clone().unwrap_or(defaults.schema),
        table: m.table.clone().unwrap_or(defaults.table),
    };
    match stack {
        Some(stack) => against_database(files, &journal, &bookkeeping, stack).await,
        None => Check::pass(NAME, files),
    }
}

/// The check's outcome once the files are known good, from the running database's bookkeeping.
async fn against_database(
    files: String,
    journal: &Journal,
    bookkeeping: &Bookkeeping,
    stack: &Stack,
) -> Check {
    let plan = match tokio::time::timeout(DB_TIMEOUT, applied(journal, bookkeeping, stack)).await {
        Ok(Database::Plan(plan)) => plan,
        Ok(Database::NotCompared(why)) => {
            return Check::pass(
                NAME,
                format!("{files}; {why}, so not compared with the database"),
            );
        }
        Ok(Database::Failed(e)) => {
            return Check::warn(
                NAME,
                format!("{files}; cannot read which are applied: {e}"),
                "`vibedev migrate status` shows the database's side; `vibedev up` starts Postgres",
            );
        }
        Err(_) => {
            return Check::warn(
                NAME,
                format!(
                    "{files}; Postgres did not answer within {} s",
                    DB_TIMEOUT.as_secs()
                ),
                "`vibedev status` shows whether it is ready; `vibedev logs postgres` why not",
            );
        }
    };
    let tags = |entries: Vec<&crate::migrate::plan::PlannedEntry>| {
        entries
            .iter()
            .map(|e| e.tag.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (pending, drifted) = (plan.pending(), plan.drifted());
    if !drifted.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{files}; changed since they were applied: {}",
                tags(drifted)
            ),
            "migrations are applied once: undo the edit and add a new migration, or rebuild the database from the files with `vibedev reset-db`",
        );
    }
    if !pending.is_empty() {
        let n = pending.len();
        return Check::warn(
            NAME,
            format!(
                "{files}; {n} not applied to the database yet: {}",
                tags(pending)
            ),
            "apply them with `vibedev migrate`",
        );
    }
    let out_of_order = plan.out_of_order();
    if !out_of_order.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{files}; older than the newest applied and never applied (drizzle skips them): {}",
                tags(out_of_order)
            ),
            "`vibedev migrate --allow-out-of-order` applies them",
        );
    }
    Check::pass(NAME, format!("{files}; all applied to the database"))
}

/// What the running stack says about the migrations.
enum Database {
    Plan(Plan),
    /// Nothing to compare with (the reason): no engine (the `docker` check says why) or no
    /// running Postgres.
    NotCompared(&'static str),
    Failed(String),
}

/// The plan against the running app database.
async fn applied(journal: &Journal, bookkeeping: &Bookkeeping, stack: &Stack) -> Database {
    let Ok(engine) = Engine::connect().await else {
        return Database::NotCompared("Docker is not reachable");
    };
    let runtimes = match runtime::observe(&engine, stack).await {
        Ok(r) => r,
        Err(e) => return Database::Failed(e.to_string()),
    };
    let Some(target) = Targets::new(stack, &runtimes).postgres else {
        return Database::NotCompared("Postgres is not running");
    };
    let client = match crate::migrate::connect_app(&target, &target.app.database).await {
        Ok(c) => c,
        Err(e) => return Database::Failed(e.to_string()),
    };
    match runner::status(&client, journal, bookkeeping).await {
        Ok(plan) => Database::Plan(plan),
        Err(e) => Database::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;
    use std::path::PathBuf;

    use super::super::test_project as project;

    #[tokio::test]
    async fn folder_journal_and_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let p = project(dir.path(), Default::default());
        let root = dir.path();
        assert_eq!(check(root, Some(&p), None).await.status, Status::Skip);
        let mut file = crate::config::ConfigFile::default();
        file.migrations.dir = Some(PathBuf::from("db"));
        let configured = project(root, file);
        assert_eq!(
            check(root, Some(&configured), None).await.status,
            Status::Fail
        );
        let meta = root.join("drizzle/meta");
        std::fs::create_dir_all(&meta).unwrap();
        let c = check(root, Some(&p), None).await;
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("_journal.json"), "{}", c.message);
        assert!(c.hint.unwrap().contains("drizzle-kit generate"));
        std::fs::write(
            meta.join("_journal.json"),
            r#"{"dialect":"postgresql","entries":[{"idx":0,"when":1,"tag":"0000_init","breakpoints":true}]}"#,
        )
        .unwrap();
        let c = check(root, Some(&p), None).await;
        assert!(c.message.contains("0000_init.sql"), "{}", c.message);
        assert_eq!(c.status, Status::Fail);
        std::fs::write(root.join("drizzle/0000_init.sql"), "select 1;").unwrap();
        let c = check(root, Some(&p), None).await;
        assert_eq!(c.status, Status::Pass, "{}", c.message);
        assert!(
            c.message.contains("1 migration, latest 0000_init"),
            "{}",
            c.message
        );
    }
}
