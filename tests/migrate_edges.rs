//! `vibedev migrate` where a migration is more than a list of statements: files with their own
//! transaction control, errors without a position, errors no edit of the file fixes (extensions,
//! privileges) and `[migrations] extensions`, and Ctrl-C while a statement runs on the server.

mod migrate_common;
mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use migrate_common::*;
use support::TestProject;

/// A project with Postgres up and the three fixture migrations applied.
fn migrated(tag: &str) -> TestProject {
    let p = TestProject::new(tag);
    p.ok(&["up", "postgres", "--quiet"]);
    use_migrations(&p, "drizzle-pg", "drizzle");
    p.ok(&["migrate"]);
    p
}

/// Polls `f` until it holds (panics after `secs`: a wait with a deadline, not a speed check).
fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shape drizzle projects use around `CREATE INDEX CONCURRENTLY`, then a failing statement.
const OWN_TX_BROKEN: &str = "CREATE TABLE \"kept\" (\"id\" integer, \"name\" text);\n\
--> statement-breakpoint\n\
COMMIT;\n\
--> statement-breakpoint\n\
CREATE INDEX CONCURRENTLY \"kept_name_idx\" ON \"kept\" (\"name\");\n\
--> statement-breakpoint\n\
BEGIN;\n\
--> statement-breakpoint\n\
CREATE TABLE \"rolled_back\" (\"id\" integer);\n\
--> statement-breakpoint\n\
ALTER TABLE \"kept\" ADD COLUMN \"x\" integr;\n";

#[test]
fn a_file_with_its_own_commit_reports_which_statements_stayed_after_a_failure() {
    let p = migrated("mig-own-tx");
    let dir = p.path().join("drizzle");
    add_migration(&dir, "0003_concurrent_index", 1795690400000, OWN_TX_BROKEN);

    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(
            "warning: migration 0003_concurrent_index controls its own transactions (COMMIT at line 3, BEGIN at line 7)"
        ),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("drizzle/0003_concurrent_index.sql:11:35: type \"integr\" does not exist"),
        "{run}"
    );
    assert!(
        !run.stderr.contains("nothing of it was applied"),
        "part of it was: {run}"
    );
    assert!(
        run.stderr.contains(
            "2 statements before the failure ran outside the rollback and stayed applied:\n    line 1: CREATE TABLE \"kept\" (\"id\" integer, \"name\" text)\n    line 5: CREATE INDEX CONCURRENTLY \"kept_name_idx\" ON \"kept\" (\"name\")"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("make them idempotent"), "{run}");

    // Exactly what the report says stayed, stayed; the rest was rolled back; no row recorded.
    let db = app_db(&p);
    assert!(db.exists("public.kept"));
    assert!(db.exists("public.kept_name_idx"));
    assert!(!db.exists("public.rolled_back"));
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg"));

    // Fixed and made idempotent, it applies and is recorded as drizzle records it.
    let fixed = OWN_TX_BROKEN
        .replace(
            "CREATE TABLE \"kept\"",
            "CREATE TABLE IF NOT EXISTS \"kept\"",
        )
        .replace(
            "CONCURRENTLY \"kept_name_idx\"",
            "CONCURRENTLY IF NOT EXISTS \"kept_name_idx\"",
        )
        .replace("integr", "integer");
    std::fs::write(dir.join("0003_concurrent_index.sql"), fixed).unwrap();
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
    assert!(db.exists("public.rolled_back"));
    assert_eq!(drizzle_rows(&db), fixture_rows_and_the_added_one(&dir));
}

#[test]
fn a_file_that_commits_before_create_index_concurrently_applies_and_is_recorded() {
    let p = migrated("mig-own-commit");
    let dir = p.path().join("drizzle");
    // The usual hand edit: end drizzle's transaction, build the index outside any, no BEGIN after.
    add_migration(
        &dir,
        "0003_users_email_idx",
        1795690400000,
        "-- CONCURRENTLY cannot run inside a transaction block.\nCOMMIT;--> statement-breakpoint\n\
         SET lock_timeout = 0;--> statement-breakpoint\n\
         CREATE INDEX CONCURRENTLY IF NOT EXISTS \"users_email_lower_idx\" ON \"users\" USING btree (lower(\"email\"));\n",
    );
    let run = p.ok(&["migrate"]);
    assert!(
        run.stderr.contains(
            "warning: migration 0003_users_email_idx controls its own transactions (COMMIT at line 2)"
        ),
        "{run}"
    );
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
    let db = app_db(&p);
    assert!(db.exists("public.users_email_lower_idx"));
    assert_eq!(drizzle_rows(&db), fixture_rows_and_the_added_one(&dir));
    assert_eq!(p.run(&["migrate", "status", "--exit-code"]).code, Some(0));
}

#[test]
fn without_a_server_position_the_caret_marks_the_failing_statement_not_the_pieces_comment() {
    let p = migrated("mig-nopos");
    let dir = p.path().join("drizzle");
    add_migration(
        &dir,
        "0003_audit",
        1795690400000,
        "-- the audit table\n-- (twice, by mistake)\nCREATE TABLE \"audit\" (\"id\" integer);\nCREATE TABLE \"audit\" (\"id\" integer);\n",
    );
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    // "already exists" carries no position: line 4 is the second CREATE, not the comment on line 1.
    assert!(
        run.stderr
            .contains("drizzle/0003_audit.sql:4:1: relation \"audit\" already exists"),
        "{run}"
    );
    assert!(
        run.stderr.contains(
            "4 | CREATE TABLE \"audit\" (\"id\" integer);\n    | ^ approximate: the server gave no position"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("nothing of it was applied"), "{run}");
    assert!(!app_db(&p).exists("public.audit"));
}

#[test]
fn extension_errors_say_what_is_missing_and_configured_extensions_are_created_by_the_admin() {
    let p = migrated("mig-ext");
    let dir = p.path().join("drizzle");
    // An operator class of pg_trgm, used before anything installed it.
    add_migration(
        &dir,
        "0003_trgm_index",
        1795690400000,
        "CREATE INDEX \"apps_title_trgm\" ON \"apps\" USING gin (\"title\" gin_trgm_ops);",
    );
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("gin_trgm_ops comes from the extension \"pg_trgm\", which is not installed"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("`[migrations] extensions = [\"pg_trgm\"]`"),
        "{run}"
    );
    assert!(!run.stderr.contains("hint: fix"), "{run}");

    // An extension only a superuser may create (as on Cloud SQL) in the migration itself.
    std::fs::write(
        dir.join("0003_trgm_index.sql"),
        "CREATE EXTENSION IF NOT EXISTS \"postgres_fdw\";\n--> statement-breakpoint\n\
         CREATE INDEX \"apps_title_trgm\" ON \"apps\" USING gin (\"title\" gin_trgm_ops);",
    )
    .unwrap();
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("permission denied to create extension \"postgres_fdw\""),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("may not create extension \"postgres_fdw\" (it needs a superuser)"),
        "{run}"
    );
    assert!(!run.stderr.contains("hint: fix"), "{run}");

    p.write_config("[migrations]\nextensions = [\"pg_trgm\", \"postgres_fdw\"]\n");
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
    let installed = "SELECT extname::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1";
    assert_eq!(app_db(&p).strings(installed), ["pg_trgm", "postgres_fdw"]);
    assert!(app_db(&p).exists("public.apps_title_trgm"));

    // Reset databases are clones of a template (or of its spare) that was built the same way.
    let run = p.ok(&["reset-db", "--yes"]);
    assert!(run.stdout.contains("template rebuilt"), "{run}");
    assert_eq!(app_db(&p).strings(installed), ["pg_trgm", "postgres_fdw"]);
    assert!(app_db(&p).exists("public.apps_title_trgm"));
}

#[test]
fn an_extension_the_server_lacks_is_named_with_no_fix_the_file_hint() {
    let p = migrated("mig-noext");
    let dir = p.path().join("drizzle");
    add_migration(
        &dir,
        "0003_embeddings",
        1795690400000,
        "CREATE EXTENSION IF NOT EXISTS vector;\n--> statement-breakpoint\n\
         CREATE TABLE \"embeddings\" (\"v\" vector(3));",
    );
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("extension \"vector\" is not available"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("the Postgres server has no extension \"vector\" to install"),
        "{run}"
    );
    assert!(!run.stderr.contains("hint: fix"), "{run}");

    p.write_config("[migrations]\nextensions = [\"vector\"]\n");
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("error: cannot create extension \"vector\" in database"),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("the Postgres image does not ship \"vector\""),
        "{run}"
    );
    assert!(!run.stderr.contains("hint: fix"), "{run}");
    assert_eq!(drizzle_rows(&app_db(&p)).len(), 3, "nothing was migrated");
}

#[test]
fn ctrl_c_during_a_migration_cancels_its_statement_on_the_server() {
    let p = migrated("mig-ctrlc");
    let dir = p.path().join("drizzle");
    add_migration(&dir, "0003_slow", 1795690400000, "SELECT pg_sleep(300);");
    let admin = admin_db(&p);
    let sleeping = "SELECT count(*) FROM pg_stat_activity \
                    WHERE query LIKE 'SELECT pg_sleep(300)%' AND pid <> pg_backend_pid()";

    let child = p
        .cmd(&["migrate"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the migration's statement runs on the server", 60, || {
        admin.count(&format!("{sleeping} AND state = 'active'")) == 1
    });
    // SAFETY: kill(2) on the child's own pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(130), "{run}");

    // The cancel reached the server before the process ended: no session keeps sleeping (and
    // holding the migration lock) for the remaining minutes.
    wait_until("the cancelled session ends", 60, || {
        admin.count(sleeping) == 0
    });
    std::fs::write(dir.join("0003_slow.sql"), "SELECT 1;").unwrap();
    let run = p.ok(&["migrate"]);
    assert!(!run.stderr.contains("waiting for another"), "{run}");
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
}

/// drizzle-orm's recorded rows for the fixture, then the row of the migration the test added.
fn fixture_rows_and_the_added_one(dir: &std::path::Path) -> Vec<(String, i64)> {
    let mut rows = drizzle_orm_rows("drizzle-pg");
    rows.extend(expected_rows(dir).pop());
    rows
}
