//! `migrations`: the Drizzle folder loads exactly as `vibedev migrate` would read it (journal,
//! every file it lists), and, when the stack's Postgres is running, how the app database stands
//! against it: migrations pending (someone pulled new ones) or changed since they were applied.

use std::path::Path;
use std::time::Duration;

use crate::config::Project;
use crate::engine::Engine;
use crate::migrate::plan::PlannedEntry;
use crate::migrate::{Bookkeeping, Journal, Plan, runner};
use crate::stack::Stack;
use crate::text::count;

use super::Check;

const NAME: &str = "migrations";

/// How long the doctor waits for the database before leaving the comparison out.
const DB_TIMEOUT: Duration = Duration::from_secs(3);

/// `engine`: the doctor's connection, when the engine answered.
pub async fn check(
    root: &Path,
    project: Option<&Project>,
    stack: Option<&Stack>,
    engine: Option<&Engine>,
) -> Check {
    let Some(project) = project else {
        return Check::skip(NAME, "vibedev.toml could not be read");
    };
    let m = &project.file.migrations;
    let dir = project.paths().migrations;
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
    let latest = journal
        .migrations
        .last()
        .map(|e| format!(", latest {}", e.tag))
        .unwrap_or_default();
    let files = format!(
        "{}: {}{latest}",
        dir.display(),
        count(journal.migrations.len(), "migration", "migrations")
    );
    let bookkeeping = Bookkeeping::configured(m);
    match stack {
        Some(stack) => against_database(files, &journal, &bookkeeping, stack, engine).await,
        None => Check::pass(NAME, files),
    }
}

/// The check's outcome once the files are known good, from the running database's bookkeeping.
async fn against_database(
    files: String,
    journal: &Journal,
    bookkeeping: &Bookkeeping,
    stack: &Stack,
    engine: Option<&Engine>,
) -> Check {
    let applied = applied(journal, bookkeeping, stack, engine);
    let (plan, database) = match tokio::time::timeout(DB_TIMEOUT, applied).await {
        Ok(Database::Plan(plan, database)) => (plan, database),
        Ok(Database::NotMade(why)) => return Check::pass(NAME, format!("{files}; {why}")),
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
                format!(
                    "`vibedev status` shows whether it is ready; `vibedev logs {}` why not",
                    database_service(stack)
                ),
            );
        }
    };
    // The first of these that has entries decides: what it is, and what to do about it.
    let (pending, drifted, out_of_order) = (plan.pending(), plan.drifted(), plan.out_of_order());
    let n = pending.len();
    let findings: [(Vec<&PlannedEntry>, String, &str); 3] = [
        (
            drifted,
            "changed since they were applied".into(),
            "migrations are applied once: undo the edit and add a new migration, or rebuild the database from the files with `vibedev reset-db`",
        ),
        (
            pending,
            format!("{n} not applied to {database} yet"),
            "apply them with `vibedev migrate`",
        ),
        (
            out_of_order,
            "older than the newest applied and never applied (drizzle skips them)".into(),
            "`vibedev migrate --allow-out-of-order` applies them",
        ),
    ];
    for (entries, what, hint) in findings {
        if !entries.is_empty() {
            let tags: Vec<&str> = entries.iter().map(|e| e.tag.as_str()).collect();
            return Check::warn(NAME, format!("{files}; {what}: {}", tags.join(", ")), hint);
        }
    }
    Check::pass(NAME, format!("{files}; all applied to {database}"))
}

/// The name of the stack's app database service (`postgres` in the default stack).
fn database_service(stack: &Stack) -> &str {
    stack
        .services
        .iter()
        .find(|s| s.kind.is_some_and(|k| k.holds_app_database()))
        .map_or("postgres", |s| s.name.as_str())
}

/// What the running stack says about the migrations.
enum Database {
    /// The plan, and how the messages name the database (`the database`, or a branch's).
    Plan(Plan, String),
    /// The checkout's branch has no database of its own yet (what will make it).
    NotMade(String),
    /// Nothing to compare with (the reason): no engine (the `docker` check says why) or no
    /// running Postgres.
    NotCompared(&'static str),
    Failed(String),
}

/// The plan against the running app database.
async fn applied(
    journal: &Journal,
    bookkeeping: &Bookkeeping,
    stack: &Stack,
    engine: Option<&Engine>,
) -> Database {
    let Some(engine) = engine else {
        return Database::NotCompared("Docker is not reachable");
    };
    let stores = match crate::data::Stores::observe(engine, stack).await {
        Ok(s) => s,
        Err(e) => return Database::Failed(e.to_string()),
    };
    let Ok(crate::data::Database { target, .. }) = stores.database() else {
        return Database::NotCompared("Postgres is not running");
    };
    let database = match &target.app.branch {
        None => "the database".to_string(),
        Some(on) => {
            let name = &target.app.database;
            match crate::migrate::branch::exists(&target).await {
                Ok(true) => format!("branch {}'s database {name}", on.branch),
                Ok(false) => {
                    return Database::NotMade(format!(
                        "branch {}'s database {name} is not made yet: the first `vibedev up`, `env`, `run` or `migrate` on this branch makes it and applies what is pending",
                        on.branch
                    ));
                }
                Err(e) => return Database::Failed(e.to_string()),
            }
        }
    };
    let client = match crate::migrate::connect_app(&target, &target.app.database).await {
        Ok(c) => c,
        Err(e) => return Database::Failed(e.to_string()),
    };
    match runner::status(&client, journal, bookkeeping).await {
        Ok(plan) => Database::Plan(plan, database),
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
        assert_eq!(check(root, Some(&p), None, None).await.status, Status::Skip);
        let mut file = crate::config::ConfigFile::default();
        file.migrations.dir = Some(PathBuf::from("db"));
        let configured = project(root, file);
        assert_eq!(
            check(root, Some(&configured), None, None).await.status,
            Status::Fail
        );
        let meta = root.join("drizzle/meta");
        std::fs::create_dir_all(&meta).unwrap();
        let c = check(root, Some(&p), None, None).await;
        assert_eq!(c.status, Status::Fail);
        assert!(c.message.contains("_journal.json"), "{}", c.message);
        assert!(c.hint.unwrap().contains("drizzle-kit generate"));
        std::fs::write(
            meta.join("_journal.json"),
            r#"{"dialect":"postgresql","entries":[{"idx":0,"when":1,"tag":"0000_init","breakpoints":true}]}"#,
        )
        .unwrap();
        let c = check(root, Some(&p), None, None).await;
        assert!(c.message.contains("0000_init.sql"), "{}", c.message);
        assert_eq!(c.status, Status::Fail);
        std::fs::write(root.join("drizzle/0000_init.sql"), "select 1;").unwrap();
        let c = check(root, Some(&p), None, None).await;
        assert_eq!(c.status, Status::Pass, "{}", c.message);
        assert!(
            c.message.contains("1 migration, latest 0000_init"),
            "{}",
            c.message
        );
    }
}
