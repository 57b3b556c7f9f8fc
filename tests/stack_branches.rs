//! A database per git branch on a real Postgres: a branch's migration and rows stay on its
//! own database (a file-level copy of the default branch's), switching back finds them again,
//! `watch` follows `git switch`, slugs of names with slashes, unicode and great length name
//! databases Postgres accepts (and two branches with one slug are refused), and `branch prune`
//! removes only the database of a branch deleted in git.

mod migrate_common;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migrate_common::Db;
use support::{TestProject, env, images};

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

/// A repository on `main` with a Postgres-only stack, `[branches] database = true` and one
/// committed migration creating `items`.
fn project(tag: &str) -> TestProject {
    let p = TestProject::empty(tag);
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"stack.yml\"\n\n[branches]\ndatabase = true\n",
            p.name
        ),
    );
    p.write(
        "stack.yml",
        &format!(
            "services:\n  postgres:\n    image: {}\n    environment: {{POSTGRES_PASSWORD: pw}}\n    ports: [\"5432\"]\n",
            images().postgres
        ),
    );
    p.write(
        "drizzle/meta/_journal.json",
        &journal(&[("0000_items", 1_700_000_000_000)]),
    );
    p.write(
        "drizzle/0000_items.sql",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);\n",
    );
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "."]);
    git(p.path(), &["commit", "-qm", "stack and first migration"]);
    p
}

fn journal(entries: &[(&str, i64)]) -> String {
    let entries: Vec<serde_json::Value> = entries
        .iter()
        .enumerate()
        .map(|(idx, (tag, when))| {
            serde_json::json!({"idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true})
        })
        .collect();
    serde_json::to_string_pretty(
        &serde_json::json!({"version": "7", "dialect": "postgresql", "entries": entries}),
    )
    .unwrap()
}

/// The database `DATABASE_URL` names, and a client on it.
fn database(p: &TestProject) -> (String, Db) {
    let url = env(p)["DATABASE_URL"].clone();
    let name = url.rsplit('/').next().unwrap().to_string();
    (name, Db::connect(&url))
}

fn tables(db: &Db) -> Vec<String> {
    db.strings("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
}

/// `vibedev branch ls --json`, by database.
fn branch_ls(p: &TestProject) -> std::collections::BTreeMap<String, serde_json::Value> {
    p.ok(&["branch", "ls", "--json"])
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["database"].as_str().unwrap().to_string(), b.clone()))
        .collect()
}

#[test]
fn each_branch_keeps_its_own_database_and_prune_removes_only_a_deleted_branchs() {
    let p = project("branches");
    let root = p.path();
    p.ok(&["up"]);
    let (main_db, db) = database(&p);
    assert_eq!(main_db, "vibesdk");
    db.exec("INSERT INTO items (name) VALUES ('from main')");
    drop(db);

    // Branch A adds a migration and a table; its database is a copy of main's.
    git(root, &["switch", "-q", "-c", "feature/A"]);
    p.write(
        "drizzle/meta/_journal.json",
        &journal(&[
            ("0000_items", 1_700_000_000_000),
            ("0001_a_only", 1_700_000_100_000),
        ]),
    );
    p.write(
        "drizzle/0001_a_only.sql",
        "CREATE TABLE a_only (id serial PRIMARY KEY, note text);\n",
    );
    git(root, &["add", "drizzle"]);
    git(root, &["commit", "-qm", "a_only"]);
    // The doctor looks at the branch's database, which is not made yet.
    let doctor = p.run(&["doctor"]).to_string();
    assert!(
        doctor.contains("git branch feature/A has its own data")
            && doctor.contains("branch feature/A's database vibesdk__feature_a is not made yet"),
        "{doctor}"
    );
    let migrate = p.ok(&["migrate"]);
    assert!(
        migrate.stderr.contains(
            "branch feature/A: database vibesdk__feature_a (created as a copy of vibesdk"
        ),
        "{migrate}"
    );
    assert!(migrate.to_string().contains("0001_a_only"), "{migrate}");
    // A database made by this very command holds nothing that main's does not: no save first.
    assert!(!migrate.stderr.contains("automatic snapshot"), "{migrate}");
    let doctor = p.run(&["doctor"]).to_string();
    assert!(
        doctor.contains("all applied to branch feature/A's database vibesdk__feature_a"),
        "{doctor}"
    );
    let (a_db, db) = database(&p);
    assert_eq!(a_db, "vibesdk__feature_a");
    assert_eq!(tables(&db), ["a_only", "items"]);
    assert_eq!(db.strings("SELECT name FROM items"), ["from main"]);
    db.exec("INSERT INTO a_only (note) VALUES ('kept on A')");
    drop(db);

    // Main's database never saw A's migration.
    git(root, &["switch", "-q", "main"]);
    let (name, db) = database(&p);
    assert_eq!(name, "vibesdk");
    assert_eq!(tables(&db), ["items"]);
    drop(db);

    // B (a slash and unicode in its name) starts from main's database: no a_only.
    git(root, &["switch", "-q", "-c", "feature/ünï-B"]);
    let env_b = p.ok(&["env", "--format", "json"]);
    assert!(
        env_b
            .stderr
            .contains("database vibesdk__feature_uni_b (created as a copy of vibesdk"),
        "{env_b}"
    );
    let (b_db, db) = database(&p);
    assert_eq!(b_db, "vibesdk__feature_uni_b");
    assert_eq!(tables(&db), ["items"]);
    drop(db);

    // Back on A: its table and its row.
    git(root, &["switch", "-q", "feature/A"]);
    let (name, db) = database(&p);
    assert_eq!(name, "vibesdk__feature_a");
    assert_eq!(db.strings("SELECT note FROM a_only"), ["kept on A"]);
    drop(db);
    let status = p.ok(&["status", "--json"]).json();
    assert!(
        status[0]["url"]
            .as_str()
            .unwrap()
            .ends_with("/vibesdk__feature_a"),
        "{status}"
    );

    // A very long name: cut, with a hash, within Postgres's 63 bytes.
    let long = format!("feature/{}", "a-very-long-branch-name-".repeat(4));
    git(root, &["switch", "-q", "-c", &long]);
    let (long_db, db) = database(&p);
    assert!(long_db.len() <= 63, "{long_db}");
    assert!(
        long_db.starts_with("vibesdk__feature_a_very_long"),
        "{long_db}"
    );
    assert_eq!(db.count("SELECT count(*) FROM items"), 1);
    drop(db);

    // A detached HEAD has a database of its commit.
    git(root, &["switch", "-q", "--detach", "main"]);
    let (detached_db, _) = database(&p);
    assert!(
        detached_db.starts_with("vibesdk__detached_")
            && detached_db.len() == "vibesdk__detached_".len() + 12,
        "{detached_db}"
    );

    // Two branches with one slug: refused, naming both.
    git(root, &["switch", "-q", "-c", "Feature-A"]);
    let clash = p.run(&["env"]);
    assert_eq!(clash.code, Some(2), "{clash}");
    assert!(
        clash.stderr.contains("\"Feature-A\"") && clash.stderr.contains("\"feature/A\""),
        "{clash}"
    );
    git(root, &["switch", "-q", "main"]);
    git(root, &["branch", "-q", "-D", "Feature-A"]);

    let listed = branch_ls(&p);
    for (db, branch) in [
        ("vibesdk", "main"),
        ("vibesdk__feature_a", "feature/A"),
        ("vibesdk__feature_uni_b", "feature/ünï-B"),
        (long_db.as_str(), long.as_str()),
    ] {
        assert_eq!(listed[db]["branch"], branch, "{listed:?}");
        assert_eq!(listed[db]["branch_exists"], true, "{listed:?}");
        assert!(listed[db]["bytes"].as_i64().unwrap() > 0, "{listed:?}");
    }
    assert_eq!(listed["vibesdk"]["current"], true);
    assert!(listed["vibesdk__feature_a"]["last_used"].is_string());

    // B deleted in git: prune asks (refuses without a terminal), then removes B's alone.
    git(root, &["branch", "-q", "-D", "feature/ünï-B"]);
    let refused = p.run(&["branch", "prune"]);
    assert_eq!(refused.code, Some(1), "{refused}");
    assert!(
        refused.stderr.contains("vibesdk__feature_uni_b"),
        "{refused}"
    );
    assert!(branch_ls(&p).contains_key("vibesdk__feature_uni_b"));
    let pruned = p.ok(&["branch", "prune", "--yes"]);
    assert!(
        pruned
            .stdout
            .contains("removed database vibesdk__feature_uni_b"),
        "{pruned}"
    );
    let after = branch_ls(&p);
    assert!(!after.contains_key("vibesdk__feature_uni_b"), "{after:?}");
    for kept in ["vibesdk", "vibesdk__feature_a", long_db.as_str()] {
        assert!(after.contains_key(kept), "{kept} pruned: {after:?}");
    }
    // The detached commit is checked out in no worktree now: its database went too.
    assert!(!after.contains_key(&detached_db), "{after:?}");

    // rm by branch name; the app database and the one in use are refused.
    let rm = p.ok(&["branch", "rm", &long]);
    assert!(
        rm.stdout.contains(&format!("removed database {long_db}")),
        "{rm}"
    );
    let app = p.run(&["branch", "rm", "vibesdk"]);
    assert_eq!(app.code, Some(2), "{app}");
    git(root, &["switch", "-q", "feature/A"]);
    let in_use = p.run(&["branch", "rm", "feature/A"]);
    assert_eq!(in_use.code, Some(1), "{in_use}");
    assert!(branch_ls(&p).contains_key("vibesdk__feature_a"));
}

/// A running `vibedev watch` whose output is collected as it comes.
struct Watcher {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(p: &TestProject) -> Watcher {
        let mut child = p
            .cmd(&["watch"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut t = sink.lock().unwrap();
                    t.push_str(&line);
                    t.push('\n');
                }
            });
            text
        };
        let w = Watcher {
            stdout: collect(Box::new(child.stdout.take().unwrap())),
            stderr: collect(Box::new(child.stderr.take().unwrap())),
            child,
        };
        w.wait(&w.stderr, "watching ", 1);
        w
    }

    /// Waits until `what` has appeared `n` times in `stream` (the deadline only ends a hung test).
    fn wait(&self, stream: &Arc<Mutex<String>>, what: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while stream.lock().unwrap().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "never saw {what:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.stdout.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn watch_follows_git_switch_and_makes_the_new_branchs_database() {
    let p = project("branch-watch");
    let root = p.path();
    p.ok(&["up"]);
    let w = Watcher::start(&p);
    git(root, &["switch", "-q", "-c", "topic/w"]);
    w.wait(
        &w.stdout,
        "git HEAD changed: branch topic/w: database vibesdk__topic_w (created as a copy of vibesdk",
        1,
    );
    let (name, db) = database(&p);
    assert_eq!(name, "vibesdk__topic_w");
    assert_eq!(tables(&db), ["items"]);
    drop(db);
    git(root, &["switch", "-q", "main"]);
    w.wait(
        &w.stdout,
        "git HEAD changed: default branch: database vibesdk",
        1,
    );
    git(root, &["switch", "-q", "topic/w"]);
    w.wait(
        &w.stdout,
        "git HEAD changed: branch topic/w: database vibesdk__topic_w (",
        2,
    );
    let out = w.stdout.lock().unwrap().clone();
    assert_eq!(out.matches("created as a copy").count(), 1, "{out}");
}
