//! `vibedev migrate` against the real Postgres test image: drizzle-orm's exact bookkeeping both
//! ways, one transaction per migration, errors placed at file:line, the advisory lock, drift,
//! out-of-order entries, renamed bookkeeping, and `up` applying what is pending.

mod migrate_common;
mod support;

use migrate_common::*;
use support::TestProject;

const SCHEMA: &str = "drizzle";
const TABLE: &str = "__drizzle_migrations";

/// A project with Postgres up and no migrations folder yet.
fn project(tag: &str) -> TestProject {
    let p = TestProject::new(tag);
    p.ok(&["up", "postgres", "--quiet"]);
    p
}

#[test]
fn the_tests_model_of_drizzles_rows_matches_the_rows_drizzle_orm_recorded() {
    // The rows of migrations added by the tests (not recorded from drizzle-orm) are computed
    // with the model below; it must agree with drizzle-orm on the recorded fixtures.
    for name in ["drizzle-pg", "drizzle-pg-next"] {
        assert_eq!(
            expected_rows(&fixture(name)),
            drizzle_orm_rows(name),
            "{name}"
        );
    }
    assert_eq!(
        drizzle_orm_rows("drizzle-pg"),
        drizzle_orm_rows("drizzle-pg-next")[..3],
        "drizzle-pg-next only adds a fourth migration"
    );
}

#[test]
fn migrate_applies_three_then_the_fourth_with_drizzles_exact_rows() {
    let p = project("mig-3-then-4");
    use_migrations(&p, "drizzle-pg", "drizzle");
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 3 migrations"), "{run}");
    let db = app_db(&p);
    let three = drizzle_orm_rows("drizzle-pg");
    assert_eq!(drizzle_rows(&db), three);
    assert_eq!(
        tables(&db).len(),
        23,
        "22 tables of the schema plus app_deployments"
    );

    use_migrations(&p, "drizzle-pg-next", "drizzle");
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
    assert!(
        run.stderr.contains("applied 0003_deployment_commit_sha"),
        "{run}"
    );
    let four = drizzle_orm_rows("drizzle-pg-next");
    assert_eq!(drizzle_rows(&db), four);
    assert_eq!(&four[..3], &three[..], "earlier rows untouched");
    // drizzle-orm's migrator, pointed at the same folder, finds nothing to do.
    assert!(drizzle_pending(&db, &p.path().join("drizzle"), SCHEMA, TABLE).is_empty());

    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("up to date (4 migrations"), "{run}");
    assert_eq!(drizzle_rows(&db), four, "a rerun changes nothing");
    let status = p.run(&["migrate", "status", "--exit-code", "--quiet"]);
    assert_eq!(status.code, Some(0), "{status}");
    // The table and its summary are the result: both on stdout, nothing else printed.
    assert!(
        status.stdout.contains("0003_deployment_commit_sha"),
        "{status}"
    );
    assert!(status.stdout.trim_end().ends_with("4 applied"), "{status}");
    assert_eq!(status.stderr, "", "{status}");
}

#[test]
fn database_migrated_by_drizzles_algorithm_is_up_to_date_for_vibedev() {
    let p = project("mig-drizzle-first");
    use_migrations(&p, "drizzle-pg", "drizzle");
    let dir = p.path().join("drizzle");
    let db = app_db(&p);
    drizzle_migrate(&db, &dir, SCHEMA, TABLE);

    let status = p.run(&["migrate", "status", "--exit-code"]);
    assert_eq!(status.code, Some(0), "{status}");
    // Three rows applied, then the summary.
    let lines: Vec<&str> = status.stdout.lines().collect();
    assert_eq!(lines.last(), Some(&"3 applied"), "{status}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" applied ")).count(),
        3,
        "{status}"
    );
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("up to date"), "{run}");

    // The 4th through vibedev, then drizzle's migrator again: it agrees there is nothing left.
    use_migrations(&p, "drizzle-pg-next", "drizzle");
    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 1 migration "), "{run}");
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg-next"));
    drizzle_migrate(&db, &dir, SCHEMA, TABLE);
    assert_eq!(
        drizzle_rows(&db),
        drizzle_orm_rows("drizzle-pg-next"),
        "drizzle added no row"
    );
}

#[test]
fn up_applies_pending_migrations_once_postgres_is_ready() {
    let p = TestProject::new("mig-up");
    use_migrations(&p, "drizzle-pg-next", "drizzle");
    let run = p.ok(&["up", "postgres"]);
    assert!(
        run.stderr.contains("applied 0003_deployment_commit_sha"),
        "{run}"
    );
    assert_eq!(
        drizzle_rows(&app_db(&p)),
        drizzle_orm_rows("drizzle-pg-next")
    );
    let db = app_db(&p);
    db.exec("INSERT INTO users (id, email, display_name, provider, provider_id) VALUES ('u1', 'ada@example.com', 'Ada', 'github', '1')");
    let again = p.ok(&["up", "postgres"]);
    assert!(!again.stderr.contains("applied 0"), "{again}");
    // Nothing re-applied or recorded twice, and the data is untouched.
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg-next"));
    assert_eq!(db.strings("SELECT id FROM users"), ["u1"]);
}

const BROKEN: &str = "CREATE TABLE \"ok_one\" (\"id\" integer);\n\
--> statement-breakpoint\n\
ALTER TABLE \"ok_one\"\n\
\tADD COLUMN \"x\" integer NOT NULL DEFAULT ;\n\
--> statement-breakpoint\n\
CREATE TABLE \"ok_two\" (\"id\" integer);\n";

#[test]
fn syntax_error_mid_file_applies_nothing_of_it_and_names_file_and_line() {
    let p = project("mig-syntax");
    use_migrations(&p, "drizzle-pg", "drizzle");
    let dir = p.path().join("drizzle");
    add_migration(&dir, "0003_broken", 1795690400000, BROKEN);

    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    // The error is on line 4 of the file (the statement's second line), at the `;` (column 42).
    assert!(
        run.stderr
            .contains("drizzle/0003_broken.sql:4:42: syntax error at or near \";\""),
        "{run}"
    );
    assert!(
        run.stderr
            .contains("statement 2 of 3 in migration 0003_broken"),
        "{run}"
    );
    assert!(
        run.stderr.contains("hint: fix drizzle/0003_broken.sql:4"),
        "{run}"
    );

    let db = app_db(&p);
    assert!(
        !db.exists("public.ok_one"),
        "the file's first statement was rolled back"
    );
    assert!(!db.exists("public.ok_two"));
    assert_eq!(
        drizzle_rows(&db),
        drizzle_orm_rows("drizzle-pg"),
        "earlier migrations stay"
    );

    std::fs::write(
        dir.join("0003_broken.sql"),
        BROKEN.replace("DEFAULT ;", "DEFAULT 0;"),
    )
    .unwrap();
    p.ok(&["migrate"]);
    assert!(db.exists("public.ok_two"));
    let mut expected = drizzle_orm_rows("drizzle-pg");
    expected.push(expected_rows(&dir)[3].clone());
    assert_eq!(drizzle_rows(&db), expected);
}

#[test]
fn enum_value_added_then_used_applies_where_drizzles_single_transaction_wedges() {
    let p = project("mig-enum");
    use_migrations(&p, "drizzle-pg", "drizzle");
    let db = app_db(&p);
    drizzle_migrate(&db, &p.path().join("drizzle"), SCHEMA, TABLE);
    // 0003 adds the enum value 'cancelled'; 0004 uses it.
    use_migrations(&p, "drizzle-pg-next", "drizzle");
    let dir = p.path().join("drizzle");
    add_migration(
        &dir,
        "0004_cancel_default",
        1795690400000,
        "ALTER TABLE \"app_deployments\" ALTER COLUMN \"status\" SET DEFAULT 'cancelled';",
    );
    let err = try_drizzle_migrate(&db, &dir, SCHEMA, TABLE).unwrap_err();
    assert!(
        err.contains("unsafe use of new value \"cancelled\""),
        "{err}"
    );
    assert_eq!(drizzle_rows(&db).len(), 3, "drizzle applied neither");

    let run = p.ok(&["migrate"]);
    assert!(run.stdout.contains("applied 2 migrations"), "{run}");
    let mut expected = drizzle_orm_rows("drizzle-pg-next");
    expected.push(expected_rows(&dir)[4].clone());
    assert_eq!(drizzle_rows(&db), expected);
    let default: String = db.query(
        "SELECT column_default FROM information_schema.columns \
         WHERE table_name = 'app_deployments' AND column_name = 'status'",
        &[],
    )[0]
    .get(0);
    assert!(default.starts_with("'cancelled'"), "{default}");
}

/// The advisory lock `vibedev migrate` takes for the default bookkeeping table: the first 8 bytes
/// (big-endian) of SHA-256("vibedev:migrate:\"drizzle\".\"__drizzle_migrations\""), computed with
/// Python's hashlib (the unit test `lock_keys_are_pinned_and_depend_on_each_input` pins it too).
const MIGRATE_LOCK: i64 = 449269480631968395;

/// A running `vibedev` whose stderr is collected as it is written.
struct Spawned {
    child: std::process::Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Spawned {
    fn new(p: &TestProject, args: &[&str]) -> Spawned {
        let mut child = p
            .cmd(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(pipe).lines() {
                let line = line.unwrap();
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Spawned {
            child,
            stderr,
            reader,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn finish(self) -> support::Run {
        let mut out = self.child.wait_with_output().unwrap();
        self.reader.join().unwrap();
        out.stderr = self.stderr.lock().unwrap().clone().into_bytes();
        out.into()
    }
}

#[test]
fn concurrent_migrate_runs_wait_for_the_lock_and_apply_each_migration_once() {
    let p = project("mig-concurrent");
    use_migrations(&p, "drizzle-pg-next", "drizzle");
    // The test's own session holds the migration lock in the database, so the first run waits
    // for it there, and the second, started meanwhile, waits for the first (the project's
    // lock): the runs overlap by construction, and the database lock is shown to be taken.
    let db = app_db(&p);
    let held: bool = db.query("SELECT pg_try_advisory_lock($1)", &[&MIGRATE_LOCK])[0].get(0);
    assert!(held, "the lock was free");
    let db_wait = "postgres   waiting for another `migrate` on this database to finish";
    let project_wait = "waiting for `vibedev migrate` (PID ";
    let runs: Vec<Spawned> = (0..2).map(|_| Spawned::new(&p, &["migrate"])).collect();
    let both_waiting = |runs: &[Spawned]| {
        let (a, b) = (runs[0].stderr(), runs[1].stderr());
        (a.contains(db_wait) && b.contains(project_wait))
            || (b.contains(db_wait) && a.contains(project_wait))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !both_waiting(&runs) {
        assert!(
            std::time::Instant::now() < deadline,
            "one run should wait for the database lock, the other for the first run: {:?}",
            runs.iter().map(Spawned::stderr).collect::<Vec<_>>()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !db.exists("drizzle.__drizzle_migrations") || drizzle_rows(&db).is_empty(),
        "nothing is applied while the lock is held"
    );
    assert!(tables(&db).is_empty(), "{:?}", tables(&db));
    let released: bool = db.query("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK])[0].get(0);
    assert!(released);

    let runs: Vec<support::Run> = runs.into_iter().map(Spawned::finish).collect();
    for run in &runs {
        assert!(run.success(), "{run}");
    }
    let applied: usize = runs
        .iter()
        .map(|r| r.stderr.matches("postgres   applied").count())
        .sum();
    assert_eq!(applied, 4, "each migration applied by exactly one run");
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg-next"));
}

#[test]
fn changed_file_is_reported_as_drifted_and_not_reapplied() {
    let p = project("mig-drift");
    use_migrations(&p, "drizzle-pg", "drizzle");
    p.ok(&["migrate"]);
    let file = p.path().join("drizzle/0001_apps_fork_count.sql");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n-- edited after it was applied\n");
    std::fs::write(&file, text).unwrap();

    let status = p.run(&["migrate", "status", "--exit-code"]);
    assert_eq!(status.code, Some(6), "{status}");
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with("0001_apps_fork_count"))
        .unwrap();
    assert!(
        line.contains("drifted") && line.contains("file changed"),
        "{status}"
    );
    let json = p.ok(&["migrate", "status", "--json"]).json();
    assert_eq!(json["entries"][1]["state"], "drifted");
    assert_eq!(json["in_step"], false);

    let run = p.ok(&["migrate"]);
    assert!(
        run.stderr
            .contains("warning: migration 0001_apps_fork_count changed"),
        "{run}"
    );
    assert!(run.stdout.contains("up to date"), "{run}");
    assert_eq!(drizzle_rows(&app_db(&p)), drizzle_orm_rows("drizzle-pg"));
}

#[test]
fn out_of_order_entry_is_refused_until_allowed() {
    let p = project("mig-order");
    use_migrations(&p, "drizzle-pg", "drizzle");
    p.ok(&["migrate"]);
    let dir = p.path().join("drizzle");
    // Generated on another branch before 0002 (whose `when` is 1795690301053), merged after.
    add_migration(
        &dir,
        "0002_from_branch",
        1795690300000,
        "ALTER TABLE \"users\" ADD COLUMN \"nickname\" text;",
    );
    let db = app_db(&p);
    assert!(
        drizzle_pending(&db, &dir, SCHEMA, TABLE).is_empty(),
        "drizzle would skip it silently"
    );

    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("1 migration is out of order: 0002_from_branch (when 1795690300000)"),
        "{run}"
    );
    assert!(run.stderr.contains("--allow-out-of-order"), "{run}");
    let status = p.run(&["migrate", "status", "--exit-code"]);
    assert_eq!(status.code, Some(6));
    assert!(status.stdout.contains("out of order"), "{status}");

    let run = p.ok(&["migrate", "--allow-out-of-order"]);
    assert!(run.stderr.contains("applied 0002_from_branch"), "{run}");
    let mut expected = drizzle_orm_rows("drizzle-pg");
    expected.push(expected_rows(&dir)[3].clone());
    assert_eq!(drizzle_rows(&db), expected);
    assert_eq!(p.run(&["migrate", "status", "--exit-code"]).code, Some(0));
    assert!(drizzle_pending(&db, &dir, SCHEMA, TABLE).is_empty());
}

#[test]
fn renamed_bookkeeping_schema_and_table_are_used_as_given() {
    let p = TestProject::new("mig-renamed");
    p.write_config(
        "[migrations]\ndir = \"db/migrations\"\nschema = \"Ops Log\"\ntable = \"Applied\"\n",
    );
    let up = p.ok(&["up", "postgres"]);
    assert!(
        up.stderr.contains("warning: [migrations] dir names")
            && up.stderr.contains("db/migrations, which does not exist"),
        "{up}"
    );
    use_migrations(&p, "drizzle-pg", "db/migrations");
    p.ok(&["migrate"]);
    let db = app_db(&p);
    let dir = p.path().join("db/migrations");
    assert_eq!(
        rows(&db, "Ops Log", "Applied"),
        drizzle_orm_rows("drizzle-pg")
    );
    assert_eq!(
        db.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'drizzle'"),
        0,
        "no default bookkeeping schema"
    );
    // drizzle-orm with migrationsSchema "Ops Log" and migrationsTable "Applied" agrees.
    assert!(drizzle_pending(&db, &dir, "Ops Log", "Applied").is_empty());
    let json = p.ok(&["migrate", "status", "--json"]).json();
    assert_eq!(json["bookkeeping"], "\"Ops Log\".\"Applied\"");
    assert_eq!(json["in_step"], true);
}

#[test]
fn migrate_without_a_journal_says_where_it_looked() {
    let p = TestProject::new("mig-nojournal");
    std::fs::create_dir_all(p.path().join("drizzle")).unwrap();
    let run = p.run(&["migrate"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no migrations journal at"), "{run}");
    assert!(run.stderr.contains("drizzle/meta/_journal.json"), "{run}");
    assert!(run.stderr.contains("hint:"), "{run}");
}

#[test]
fn seed_of_an_unconfigured_kind_says_which_key_to_add() {
    let p = TestProject::new("mig-seed-config");
    let run = p.run(&["seed", "firestore"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("no Firestore seed is configured"),
        "{run}"
    );
    assert!(
        run.stderr.contains("firestore_dir = \"seed/firestore\""),
        "{run}"
    );
    let run = p.ok(&["seed"]);
    assert!(run.stdout.contains("nothing to seed"), "{run}");
}
