//! `vibedev migrate` where a migration is more than a list of statements: files with their own
//! transaction control and errors without a position.

mod migrate_common;
mod support;

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
    assert_eq!(drizzle_rows(&db), expected_rows(&fixture("drizzle-pg")));

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
    assert_eq!(drizzle_rows(&db), expected_rows(&dir));
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
