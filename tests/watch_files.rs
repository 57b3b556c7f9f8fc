//! `vibedev watch` on a real stack: saving the compose file, the config, a migration, a bucket
//! or Firestore seed file, or the env template (against the Secret Manager stand-in) runs the
//! matching action (and only it), a bad save keeps the watcher alive, a burst of writes becomes
//! one run of each affected action, and `up --watch` starts the stack before it watches.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{TestProject, container_id, env, images, status};

/// A running `vibedev watch` whose output is collected as it comes.
struct Watcher {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    fn start(p: &TestProject) -> Watcher {
        Watcher::spawn(p, &["watch"], "watching ")
    }

    /// Starts `vibedev ARGS` and waits until stderr shows `ready`.
    fn spawn(p: &TestProject, args: &[&str], ready: &str) -> Watcher {
        Watcher::spawn_cmd(p.cmd(args), ready)
    }

    /// Starts `cmd` and waits until stderr shows `ready`.
    fn spawn_cmd(mut cmd: std::process::Command, ready: &str) -> Watcher {
        let mut child = cmd
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
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        let w = Watcher {
            child,
            stdout,
            stderr,
        };
        w.wait_stderr(ready);
        w
    }

    fn out(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn err(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn wait(&self, what: &str, text: &dyn Fn() -> String) {
        self.wait_n(what, 1, text);
    }

    /// Waits until `what` has appeared `n` times.
    fn wait_n(&self, what: &str, n: usize, text: &dyn Fn() -> String) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while text().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "never saw {what:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.out(),
                self.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_out(&self, what: &str) {
        self.wait(what, &|| self.out());
    }

    fn wait_stderr(&self, what: &str) {
        self.wait(what, &|| self.err());
    }

    /// Ctrl-C: the watcher exits cleanly and promptly.
    fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert_eq!(status.code(), Some(0), "{}", self.err());
                return;
            }
            assert!(Instant::now() < deadline, "watch did not exit on Ctrl-C");
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

/// A project with its own compose file of postgres, redis and gcs (no JVM: two cores).
fn project(tag: &str, extra_toml: &str) -> TestProject {
    let p = TestProject::empty(tag);
    let img = images();
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"stack.yml\"\n{extra_toml}",
            p.name
        ),
    );
    p.write(
        "stack.yml",
        &format!(
            "services:\n  postgres:\n    image: {}\n    environment: {{POSTGRES_PASSWORD: pw}}\n    ports: [\"5432\"]\n  redis:\n    image: {}\n    ports: [\"6379\"]\n  gcs:\n    image: {}\n    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]\n    ports: [\"4443\"]\n",
            img.postgres, img.redis, img.gcs
        ),
    );
    p
}

/// Replaces a file the way editors save: write a temp file, rename it over.
fn save(p: &TestProject, rel: &str, contents: &str) {
    let tmp = format!("{rel}.vibedev-test-tmp");
    p.write(&tmp, contents);
    std::fs::rename(p.path().join(&tmp), p.path().join(rel)).unwrap();
}

fn migration_rows(url: &str) -> i64 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
            .query_one("SELECT count(*) FROM drizzle.__drizzle_migrations", &[])
            .await
            .unwrap()
            .get(0)
    })
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn fixtures(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Brings the fourth fixture migration into the project's drizzle folder.
fn add_fourth_migration(p: &TestProject) {
    let next = fixtures("drizzle-pg-next");
    for rel in [
        "0003_deployment_commit_sha.sql",
        "meta/0003_snapshot.json",
        "meta/_journal.json",
    ] {
        std::fs::copy(next.join(rel), p.path().join("drizzle").join(rel)).unwrap();
    }
}

#[test]
fn compose_change_recreates_only_that_service_and_a_bad_save_keeps_watching() {
    let p = project("watch-compose", "");
    p.ok(&["up"]);
    let before: Vec<String> = ["postgres", "redis", "gcs"]
        .iter()
        .map(|s| container_id(&p, s))
        .collect();
    let w = Watcher::start(&p);

    // A port that was free a moment ago; when something takes it before the stack binds it,
    // the save fails naming it, and another port is saved.
    let compose = std::fs::read_to_string(p.path().join("stack.yml")).unwrap();
    let mut saves = 0;
    let port = loop {
        let port = support::free_port();
        save(
            &p,
            "stack.yml",
            &compose.replace("[\"6379\"]", &format!("[\"{port}:6379\"]")),
        );
        saves += 1;
        assert!(saves <= 5, "five free ports were taken:\n{}", w.err());
        w.wait_n("config changed:", saves, &|| w.out());
        let out = w.out();
        let last = out
            .lines()
            .rfind(|l| l.contains("config changed:"))
            .unwrap();
        if last.contains("config changed: recreated redis") {
            break port;
        }
        assert!(
            w.err().contains(&format!("port {port} for service redis")),
            "{out}\n{}",
            w.err()
        );
    };
    assert_eq!(
        container_id(&p, "postgres"),
        before[0],
        "postgres was touched"
    );
    assert_eq!(container_id(&p, "gcs"), before[2], "gcs was touched");
    assert_ne!(
        container_id(&p, "redis"),
        before[1],
        "redis was not recreated"
    );
    assert_eq!(env(&p)["REDIS_URL"], format!("redis://127.0.0.1:{port}"));

    // An invalid save: the error is shown, the stack keeps running, the watcher keeps watching.
    let good = std::fs::read_to_string(p.path().join("vibedev.toml")).unwrap();
    save(&p, "vibedev.toml", "project = [\n");
    w.wait_n("config changed: failed", saves, &|| w.out());
    w.wait_stderr("vibedev.toml:1:");
    let redis = container_id(&p, "redis");
    assert_eq!(
        support::docker(&["inspect", "-f", "{{.State.Running}}", &redis]),
        "true"
    );

    // The next good save applies.
    save(
        &p,
        "vibedev.toml",
        &format!("{good}\n[services.redis.env]\nWATCHED = \"yes\"\n"),
    );
    w.wait_n(
        "config changed: recreated redis; 2 kept running",
        2,
        &|| w.out(),
    );
    assert_ne!(container_id(&p, "redis"), redis);
    assert_eq!(container_id(&p, "postgres"), before[0]);
    w.stop();
    // Ctrl-C stops watching, not the stack.
    assert_eq!(support::status(&p)["postgres"]["state"], "running");
}

#[test]
fn migrations_and_bucket_seed_follow_saves() {
    let p = project("watch-data", "[seed]\nbucket_dir = \"seed/bucket\"\n");
    copy_dir(&fixtures("drizzle-pg"), &p.path().join("drizzle"));
    p.write("seed/bucket/first.txt", "first");
    p.ok(&["up", "postgres", "gcs"]);
    let vars = env(&p);
    assert_eq!(migration_rows(&vars["DATABASE_URL"]), 3);
    let w = Watcher::start(&p);

    add_fourth_migration(&p);
    w.wait_out("migrations changed: applied 0003_deployment_commit_sha");
    assert_eq!(migration_rows(&vars["DATABASE_URL"]), 4);

    // Editing an applied migration is drift: reported, not re-run.
    let path = p.path().join("drizzle/0001_apps_fork_count.sql");
    let mut sql = std::fs::read_to_string(&path).unwrap();
    sql.push_str("\n-- edited after it was applied\n");
    save(&p, "drizzle/0001_apps_fork_count.sql", &sql);
    w.wait_out("drift: 0001_apps_fork_count changed after being applied, not re-run");
    assert!(
        w.err()
            .contains("0001_apps_fork_count changed after it was applied"),
        "{}",
        w.err()
    );
    assert_eq!(migration_rows(&vars["DATABASE_URL"]), 4);

    // A new seed file appears in the bucket; a removed one disappears.
    let object = |name: &str| {
        let url = format!(
            "{}/storage/v1/b/vibesdk-templates/o/{name}?alt=media",
            vars["STORAGE_EMULATOR_HOST"]
        );
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(object("first.txt"), (200, "first".to_string()));
    p.write("seed/bucket/added.txt", "added");
    w.wait_out("1 uploaded");
    assert_eq!(object("added.txt"), (200, "added".to_string()));
    std::fs::remove_file(p.path().join("seed/bucket/first.txt")).unwrap();
    w.wait_out("1 deleted");
    assert_eq!(object("first.txt").0, 404);
    w.stop();
}

#[test]
fn burst_of_fifty_writes_runs_each_affected_action_once() {
    let p = project("watch-burst", "[seed]\nbucket_dir = \"seed/bucket\"\n");
    copy_dir(&fixtures("drizzle-pg"), &p.path().join("drizzle"));
    std::fs::create_dir_all(p.path().join("seed/bucket")).unwrap();
    p.ok(&["up", "postgres", "gcs"]);
    let w = Watcher::spawn(&p, &["watch", "-v"], "idle: 0 actions run so far");

    // 47 seed files and 3 migration files, as fast as they can be written.
    for i in 0..47 {
        p.write(
            &format!("seed/bucket/file-{i:02}.txt"),
            &format!("content {i}"),
        );
    }
    add_fourth_migration(&p);
    // The watcher says when it has nothing left queued, with how many actions it ran: once
    // both changes are acted on, that is exactly two (one run of each).
    let idle_runs = || -> Vec<usize> {
        w.err()
            .lines()
            .filter_map(|l| l.split("idle: ").nth(1)?.split(' ').next()?.parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while idle_runs().last().is_none_or(|&n| n < 2) {
        assert!(
            Instant::now() < deadline,
            "never idle after the burst:\n{}",
            w.err()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(idle_runs().last(), Some(&2), "{}\n{}", w.out(), w.err());
    w.wait_out("migrations changed:");
    w.wait_out("bucket seed changed:");
    let out = w.out();
    assert_eq!(out.matches("migrations changed:").count(), 1, "{out}");
    assert_eq!(out.matches("bucket seed changed:").count(), 1, "{out}");
    assert_eq!(out.matches("config changed:").count(), 0, "{out}");
    assert!(out.contains("47 uploaded"), "{out}");
    assert!(out.contains("applied 0003_deployment_commit_sha"), "{out}");
    w.stop();
}

#[test]
fn saved_env_template_pulls_the_secrets() {
    // The Secret Manager stand-in; no stack (and no Docker) is needed for this action.
    let p = support::secrets::SecretsProject::new(
        "watch-secrets",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\n",
    );
    p.server.add_secret("jwt-secret", &[], &[b"jwt-Aq93-value"]);
    p.server
        .add_secret("openai-api-key", &[], &[b"sk-live-Wd52"]);
    let w = Watcher::spawn_cmd(p.cmd(&["watch"]), "watching ");
    assert_eq!(p.env_file(), None, "pulled before any save");

    save(
        &p.project,
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nOPENAI_API_KEY={{ secret \"openai-api-key\" }}\n",
    );
    w.wait_out("env template changed:");
    let out = w.out();
    assert!(!out.contains("failed"), "{out}\n{}", w.err());
    assert_eq!(
        p.env_vars(),
        [
            ("JWT_SECRET".to_string(), "jwt-Aq93-value".to_string()),
            ("OPENAI_API_KEY".to_string(), "sk-live-Wd52".to_string()),
        ]
        .into(),
    );
    assert_eq!(p.server.access_calls("jwt-secret"), 1);
    assert_eq!(p.server.access_calls("openai-api-key"), 1);
    for value in ["jwt-Aq93-value", "sk-live-Wd52"] {
        assert!(
            !out.contains(value) && !w.err().contains(value),
            "{value} printed"
        );
    }
    w.stop();
}

#[test]
fn up_watch_starts_the_stack_then_applies_saves() {
    let p = project("watch-up", "");
    let w = Watcher::spawn(&p, &["up", "--watch"], "watching ");
    let before: Vec<String> = ["postgres", "redis", "gcs"]
        .iter()
        .map(|s| container_id(&p, s))
        .collect();
    assert!(
        before.iter().all(|id| !id.is_empty()),
        "{before:?}\n{}",
        w.err()
    );
    assert_eq!(status(&p)["redis"]["state"], "running");

    let compose = std::fs::read_to_string(p.path().join("stack.yml")).unwrap();
    save(
        &p,
        "stack.yml",
        &compose.replace(
            "    ports: [\"6379\"]\n",
            "    ports: [\"6379\"]\n    environment: {WATCHED: \"yes\"}\n",
        ),
    );
    w.wait_out("config changed: recreated redis; 2 kept running");
    assert_eq!(
        container_id(&p, "postgres"),
        before[0],
        "postgres was touched"
    );
    assert_eq!(container_id(&p, "gcs"), before[2], "gcs was touched");
    let redis = container_id(&p, "redis");
    assert_ne!(redis, before[1], "redis was not recreated");
    let env = support::docker(&["inspect", "-f", "{{json .Config.Env}}", &redis]);
    assert!(env.contains("WATCHED=yes"), "{env}");
    w.stop();
}

#[test]
fn saved_firestore_seed_document_is_written_to_the_emulator() {
    let p = TestProject::new("watch-firestore");
    p.write_config("[seed]\nfirestore_dir = \"seed/firestore\"\n");
    p.write("seed/firestore/users/u1.json", "{\"name\":\"Ada\"}");
    p.ok(&["up", "firestore"]);
    let vars = env(&p);
    let url = |path: &str| {
        format!(
            "http://{}/v1/projects/{}/databases/(default)/documents/{path}",
            vars["FIRESTORE_EMULATOR_HOST"], vars["GOOGLE_CLOUD_PROJECT"]
        )
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let field = |path: &str| -> Option<String> {
        rt.block_on(async {
            let r = reqwest::get(url(path)).await.unwrap();
            if r.status() == 404 {
                return None;
            }
            assert_eq!(r.status(), 200, "GET {path}");
            let doc: serde_json::Value = r.json().await.unwrap();
            Some(doc["fields"]["name"]["stringValue"].as_str()?.to_string())
        })
    };
    assert_eq!(field("users/u1").as_deref(), Some("Ada"));
    assert_eq!(field("users/u2"), None);

    let w = Watcher::start(&p);
    save(&p, "seed/firestore/users/u1.json", "{\"name\":\"Ada L.\"}");
    p.write("seed/firestore/users/u2.json", "{\"name\":\"Grace\"}");
    w.wait_out("firestore seed changed:");
    let out = w.out();
    assert!(!out.contains("failed"), "{out}\n{}", w.err());
    // Both files may arrive as one change or as two: wait for the last document written.
    let deadline = Instant::now() + Duration::from_secs(60);
    while field("users/u2").is_none() {
        assert!(
            Instant::now() < deadline,
            "users/u2 never written:\n{}",
            w.out()
        );
        w.wait_n("firestore seed changed:", 2, &|| w.out());
    }
    assert_eq!(field("users/u1").as_deref(), Some("Ada L."));
    assert_eq!(field("users/u2").as_deref(), Some("Grace"));
    w.stop();
}

#[test]
fn poll_mode_sees_saves_too() {
    let p = project("watch-poll", "[seed]\nbucket_dir = \"seed/bucket\"\n");
    p.write("seed/bucket/one.txt", "1");
    p.ok(&["up", "gcs"]);
    let w = Watcher::spawn(&p, &["watch", "--poll"], "(polling)");
    p.write("seed/bucket/two.txt", "2");
    w.wait_out("bucket seed changed: gcs seeded bucket vibesdk-templates: 1 uploaded, 1 unchanged");
    w.stop();
}

/// Adds a migration to the project's drizzle folder and its journal, as drizzle-kit does.
fn add_migration(p: &TestProject, tag: &str, when: i64, sql: &str) {
    let dir = p.path().join("drizzle");
    let path = dir.join("meta/_journal.json");
    let mut journal: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let entries = journal["entries"].as_array_mut().unwrap();
    let idx = entries.len();
    entries.push(serde_json::json!({
        "idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true
    }));
    std::fs::write(dir.join(format!("{tag}.sql")), sql).unwrap();
    std::fs::write(&path, serde_json::to_string_pretty(&journal).unwrap()).unwrap();
}

#[test]
fn migrations_folder_deleted_or_moved_and_put_back_is_still_watched() {
    let p = project("watch-refolder", "");
    copy_dir(&fixtures("drizzle-pg"), &p.path().join("drizzle"));
    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    assert_eq!(migration_rows(&url), 3);
    let w = Watcher::start(&p);
    // Waits for `what` in what the watcher printed after `mark`.
    let after = |mark: usize, what: &str| w.wait(what, &|| w.out()[mark..].to_string());

    // Deleted, then regenerated (a branch switch, drizzle-kit writing the folder afresh).
    let mark = w.out().len();
    std::fs::remove_dir_all(p.path().join("drizzle")).unwrap();
    after(mark, "migrations changed: no migrations folder at");
    let mark = w.out().len();
    copy_dir(&fixtures("drizzle-pg"), &p.path().join("drizzle"));
    after(mark, "migrations changed: no pending migration");
    // Added once the new folder was taken in: seen through a watch on the new folder.
    add_fourth_migration(&p);
    w.wait_out("migrations changed: applied 0003_deployment_commit_sha");
    assert_eq!(migration_rows(&url), 4);

    // Moved away and put back.
    let aside = p.path().join("drizzle-aside");
    let mark = w.out().len();
    std::fs::rename(p.path().join("drizzle"), &aside).unwrap();
    after(mark, "migrations changed: no migrations folder at");
    let mark = w.out().len();
    std::fs::rename(&aside, p.path().join("drizzle")).unwrap();
    after(mark, "migrations changed: no pending migration");
    add_migration(
        &p,
        "0004_nickname",
        1795690500000,
        "ALTER TABLE \"users\" ADD COLUMN \"nickname\" text;",
    );
    w.wait_out("migrations changed: applied 0004_nickname");
    assert_eq!(migration_rows(&url), 5);
    w.stop();
}

#[test]
fn a_migration_pending_before_watch_starts_is_applied_at_start() {
    let p = project("watch-pending", "");
    copy_dir(&fixtures("drizzle-pg"), &p.path().join("drizzle"));
    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    // Pulled while nothing watched.
    add_fourth_migration(&p);
    assert_eq!(migration_rows(&url), 3);
    let w = Watcher::start(&p);
    w.wait_out("migrations pending at start: applied 0003_deployment_commit_sha");
    assert_eq!(migration_rows(&url), 4);
    assert!(!w.out().contains("migrations changed:"), "{}", w.out());
    w.stop();
}

#[test]
fn up_watch_keeps_its_profiles_when_a_saved_file_is_applied() {
    let p = TestProject::empty("watch-profile");
    p.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"stack.yml\"\n", p.name),
    );
    let compose = |spare_env: &str| {
        format!(
            "services:\n  cache:\n    image: {img}\n    ports: [\"6379\"]\n    x-vibedev: {{kind: redis}}\n  spare:\n    image: {img}\n    ports: [\"6379\"]\n    profiles: [tools]\n    environment: {{MARK: \"{spare_env}\"}}\n    x-vibedev: {{kind: redis}}\n",
            img = images().redis
        )
    };
    p.write("stack.yml", &compose("one"));
    let w = Watcher::spawn(&p, &["up", "--watch", "--profile", "tools"], "watching ");
    let spare = container_id(&p, "spare");
    // A change to the profiled service: applied, because its profile is still active.
    save(&p, "stack.yml", &compose("two"));
    w.wait_out("config changed:");
    assert!(
        w.out()
            .contains("config changed: recreated spare; 1 kept running"),
        "{}\n{}",
        w.out(),
        w.err()
    );
    assert_ne!(container_id(&p, "spare"), spare);
    w.stop();
}
