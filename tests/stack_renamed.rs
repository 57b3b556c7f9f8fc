//! A stack whose services are not named after what they run: `db` (Postgres), `cache` (Redis),
//! `docs` (the Firestore emulator) and `blobs` (fake-gcs), each declared with `x-vibedev: kind`.
//! Every command must behave exactly as on the default names, on real data read back through
//! real clients, and every line it prints about a service must name it by its compose name.

mod migrate_common;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use migrate_common::{
    Db, add_migration, admin_db, app_db, drizzle_orm_rows, drizzle_rows, expected_rows, fixture,
    tables, use_migrations,
};
use support::{Run, TestProject, container_id, docker, images};

/// The four data services under their own names, with the kind each one is.
const SERVICES: [(&str, &str); 4] = [
    ("db", "postgres"),
    ("cache", "redis"),
    ("docs", "firestore"),
    ("blobs", "gcs"),
];

const USERS_SQL: &str = "INSERT INTO users (id, email, display_name, provider, provider_id)\n\
VALUES ('u1', 'ada@example.com', 'Ada', 'github', '1'),\n\
       ('u2', 'alan@example.com', 'Alan', 'github', '2');\n";

/// The compose file: the services named in `names`, each with the test image of its kind and a
/// port the engine chooses.
fn compose(names: &[&str]) -> String {
    let img = images();
    let mut yaml = String::from("services:\n");
    for name in names {
        let body = match *name {
            "db" => format!(
                "    image: {}\n    environment: {{POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres, POSTGRES_DB: postgres}}\n    ports: [\"5432\"]\n    x-vibedev: {{kind: postgres}}\n",
                img.postgres
            ),
            "cache" => format!(
                "    image: {}\n    ports: [\"6379\"]\n    x-vibedev: {{kind: redis}}\n",
                img.redis
            ),
            "docs" => format!(
                "    image: {}\n    command: [\"gcloud\", \"emulators\", \"firestore\", \"start\", \"--host-port=0.0.0.0:8080\"]\n    ports: [\"8080\"]\n    x-vibedev: {{kind: firestore}}\n",
                img.firestore
            ),
            "blobs" => format!(
                "    image: {}\n    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]\n    ports: [\"4443\"]\n    x-vibedev: {{kind: gcs}}\n",
                img.gcs
            ),
            other => panic!("no such service in this test: {other}"),
        };
        yaml.push_str(&format!("  {name}:\n{body}"));
    }
    yaml
}

/// A project on its own compose file of the named services, with the fixture migrations and
/// every kind of seed: SQL, a bucket folder and a Firestore folder.
fn project(tag: &str, names: &[&str]) -> TestProject {
    let p = TestProject::empty(tag);
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"stack.yml\"\n\n[seed]\nsql = [\"seed/users.sql\"]\n\
             bucket_dir = \"seed/bucket\"\nfirestore_dir = \"seed/firestore\"\n",
            p.name
        ),
    );
    p.write("stack.yml", &compose(names));
    p.write("seed/users.sql", USERS_SQL);
    p.write("seed/bucket/readme.txt", "hello\n");
    p.write(
        "seed/bucket/templates/react/package.json",
        "{\"name\":\"react\"}\n",
    );
    p.write(
        "seed/firestore/users/u1.json",
        "{\"name\":\"Ada\",\"age\":36}",
    );
    p.write(
        "seed/firestore/users/u1/sessions/s1.json",
        "{\"active\":true}",
    );
    use_migrations(&p, "drizzle-pg", "drizzle");
    p
}

/// A progress line as vibedev prints it: the service's name in a 10-wide column, then the text.
fn line(service: &str, text: &str) -> String {
    format!("{service:<10} {text}")
}

/// What the user reads about the services, checked across all the commands of a test and
/// reported together at the end (so one run lists every line that names a service wrongly,
/// while the data checks in between still fail at once).
#[derive(Default)]
struct Naming {
    problems: Vec<String>,
}

impl Naming {
    /// `run` printed each of `expected` (a whole progress line or part of one), and no line of
    /// its output starts with the name of a kind instead of the service's own name.
    fn check(&mut self, command: &str, run: &Run, expected: &[String]) {
        let output = format!("{}\n{}", run.stdout, run.stderr);
        self.check_text(command, &output, expected);
    }

    fn check_text(&mut self, command: &str, output: &str, expected: &[String]) {
        for want in expected {
            if !output.contains(want.as_str()) {
                self.problems
                    .push(format!("`{command}`: no line with {want:?}"));
            }
        }
        for l in output.lines() {
            let first = l.split_whitespace().next().unwrap_or("");
            if SERVICES.iter().any(|(_, kind)| *kind == first) {
                self.problems.push(format!(
                    "`{command}`: a line names a kind, not a service: {l:?}"
                ));
            }
        }
    }

    /// `output` says `want` (a hint or a message naming the service).
    fn says(&mut self, command: &str, output: &str, want: &str, not: &str) {
        if !output.contains(want) || output.contains(not) {
            self.problems.push(format!(
                "`{command}`: expected {want:?} (and not {not:?}) in:\n{output}"
            ));
        }
    }

    fn assert_none(&self) {
        assert!(
            self.problems.is_empty(),
            "output that does not name the renamed services by their names:\n{}",
            self.problems.join("\n")
        );
    }
}

fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

/// Every object of a bucket with its content, sorted by name.
fn objects(gcs: &str, bucket: &str) -> Vec<(String, String)> {
    let (status, body) = http("GET", &format!("{gcs}/storage/v1/b/{bucket}/o"), None);
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<(String, String)> = json["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|o| {
                    let name = o["name"].as_str().unwrap().to_string();
                    let (status, content) = http(
                        "GET",
                        &format!(
                            "{gcs}/storage/v1/b/{bucket}/o/{}?alt=media",
                            name.replace('/', "%2F")
                        ),
                        None,
                    );
                    assert_eq!(status, 200, "GET object {name}: {content}");
                    (name, content)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn seeded_objects() -> Vec<(String, String)> {
    vec![
        ("readme.txt".to_string(), "hello\n".to_string()),
        (
            "templates/react/package.json".to_string(),
            "{\"name\":\"react\"}\n".to_string(),
        ),
    ]
}

fn upload(gcs: &str, bucket: &str, name: &str, content: &str) {
    let (status, body) = http(
        "POST",
        &format!("{gcs}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"),
        Some(content),
    );
    assert_eq!(status, 200, "{body}");
}

/// A document's fields; `None` only when the emulator answers 404.
fn document(fs: &str, project: &str, path: &str) -> Option<serde_json::Value> {
    let (status, body) = http(
        "GET",
        &format!("http://{fs}/v1/projects/{project}/databases/(default)/documents/{path}"),
        None,
    );
    match status {
        200 => Some(serde_json::from_str::<serde_json::Value>(&body).unwrap()["fields"].clone()),
        404 => None,
        other => panic!("GET document {path}: status {other}: {body}"),
    }
}

fn patch_document(fs: &str, project: &str, path: &str, fields: &str) {
    let (status, body) = http(
        "PATCH",
        &format!("http://{fs}/v1/projects/{project}/databases/(default)/documents/{path}"),
        Some(&format!("{{\"fields\":{fields}}}")),
    );
    assert_eq!(status, 200, "PATCH document {path}: {body}");
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

fn user_ids(db: &Db) -> Vec<String> {
    db.strings("SELECT id FROM users ORDER BY id")
}

/// The rows of `up`'s (or `status`'s) table: service, state, ready.
fn table_rows(stdout: &str) -> Vec<(String, String, String)> {
    stdout
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (service, state, ready) = (words.next()?, words.next()?, words.next()?);
            SERVICES
                .iter()
                .any(|(s, _)| *s == service)
                .then(|| (service.to_string(), state.to_string(), ready.to_string()))
        })
        .collect()
}

#[test]
fn renamed_services_keep_every_behaviour_and_are_named_by_their_names() {
    let names: Vec<&str> = SERVICES.iter().map(|(s, _)| *s).collect();
    let p = project("renamed", &names);
    let mut naming = Naming::default();

    // ---- up: probes, preparation, migrations and every seed, on the renamed services ----
    let up = p.ok(&["up"]);
    let ready: Vec<(String, String, String)> = names
        .iter()
        .map(|s| (s.to_string(), "running".to_string(), "yes".to_string()))
        .collect();
    assert_eq!(table_rows(&up.stdout), ready, "{up}");
    naming.check(
        "up",
        &up,
        &[
            line("db", "created role vibesdk_app"),
            line("db", "created database vibesdk"),
            line("blobs", "created bucket vibesdk-templates"),
            line("db", "applied 0000_initial_schema"),
            line("db", "applied 0002_app_deployments"),
            line("db", "seeded seed/users.sql"),
            line(
                "blobs",
                "seeded bucket vibesdk-templates: 2 uploaded, 0 unchanged",
            ),
            line("docs", "seeded 2 documents"),
            line("db", "ready in"),
            line("cache", "ready in"),
            line("docs", "ready in"),
            line("blobs", "ready in"),
        ],
    );

    let st = support::status(&p);
    assert_eq!(
        st.keys().map(String::as_str).collect::<Vec<_>>(),
        ["blobs", "cache", "db", "docs"]
    );
    for (service, kind) in SERVICES {
        assert_eq!(st[service]["kind"], kind, "{service}: {}", st[service]);
        assert_eq!(st[service]["state"], "running", "{}", st[service]);
        assert_eq!(st[service]["ready"], true, "{}", st[service]);
    }
    let status_text = p.ok(&["status"]);
    assert_eq!(table_rows(&status_text.stdout), ready, "{status_text}");

    // ---- env: every variable, pointing at the renamed services' published ports ----
    let vars = support::env(&p);
    let host_port = |service: &str| {
        st[service]["ports"][0]["host_port"]
            .as_u64()
            .unwrap_or_else(|| panic!("{service} has no published port: {}", st[service]))
    };
    assert_eq!(
        vars["DATABASE_URL"],
        format!(
            "postgres://vibesdk_app:vibesdk-local@127.0.0.1:{}/vibesdk",
            host_port("db")
        )
    );
    assert_eq!(
        vars["REDIS_URL"],
        format!("redis://127.0.0.1:{}", host_port("cache"))
    );
    assert_eq!(
        vars["FIRESTORE_EMULATOR_HOST"],
        format!("127.0.0.1:{}", host_port("docs"))
    );
    assert_eq!(
        vars["STORAGE_EMULATOR_HOST"],
        format!("http://127.0.0.1:{}", host_port("blobs"))
    );
    assert_eq!(vars["TEMPLATES_BUCKET"], "vibesdk-templates");
    let gcs = vars["STORAGE_EMULATOR_HOST"].clone();
    let fs = vars["FIRESTORE_EMULATOR_HOST"].clone();
    let gp = vars["GOOGLE_CLOUD_PROJECT"].clone();

    // The data `up` put there, read back through real clients.
    let db = app_db(&p);
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg"));
    assert_eq!(user_ids(&db), ["u1", "u2"]);
    drop(db);
    assert_eq!(objects(&gcs, "vibesdk-templates"), seeded_objects());
    let ada = document(&fs, &gp, "users/u1").expect("seeded document users/u1");
    assert_eq!(ada["name"]["stringValue"], "Ada");
    assert_eq!(ada["age"]["integerValue"], "36");
    assert_eq!(
        document(&fs, &gp, "users/u1/sessions/s1").expect("seeded sub-document")["active"]["booleanValue"],
        true
    );
    let mut cache = redis_conn(&vars["REDIS_URL"]);
    redis::cmd("SET")
        .arg("session:1")
        .arg("x")
        .exec(&mut cache)
        .unwrap();
    let got: String = redis::cmd("GET")
        .arg("session:1")
        .query(&mut cache)
        .unwrap();
    assert_eq!(got, "x");

    // ---- migrate and migrate status after adding a migration ----
    let drizzle = p.path().join("drizzle");
    add_migration(
        &drizzle,
        "0003_user_nickname",
        1795690400000,
        "ALTER TABLE \"users\" ADD COLUMN \"nickname\" text;",
    );
    let pending = p.ok(&["migrate", "status"]);
    assert!(
        pending
            .stdout
            .lines()
            .any(|l| l.starts_with("0003_user_nickname")
                && l.split_whitespace().nth(1) == Some("pending")),
        "{pending}"
    );
    assert!(pending.stdout.contains("3 applied, 1 pending"), "{pending}");
    let migrate = p.ok(&["migrate"]);
    assert!(
        migrate.stdout.contains("vibesdk: applied 1 migration in"),
        "{migrate}"
    );
    naming.check(
        "migrate",
        &migrate,
        &[line("db", "applied 0003_user_nickname")],
    );
    let db = app_db(&p);
    assert_eq!(drizzle_rows(&db), expected_rows(&drizzle));
    assert!(
        db.count(
            "SELECT count(*) FROM information_schema.columns \
             WHERE table_name = 'users' AND column_name = 'nickname'"
        ) == 1,
        "the migration ran"
    );
    drop(db);
    let applied = p.ok(&["migrate", "status"]);
    assert!(applied.stdout.contains("4 applied"), "{applied}");
    assert!(!applied.stdout.contains("pending"), "{applied}");
    let json = p.ok(&["migrate", "status", "--json"]).json();
    assert_eq!(json["database"], "vibesdk");
    assert_eq!(json["in_step"], true);

    // ---- seed, every kind, after the developer changed every store ----
    upload(&gcs, "vibesdk-templates", "readme.txt", "edited");
    patch_document(
        &fs,
        &gp,
        "users/u1",
        "{\"name\":{\"stringValue\":\"Changed\"}}",
    );
    app_db(&p).exec("DELETE FROM users");
    let seed = p.ok(&["seed"]);
    naming.check(
        "seed",
        &seed,
        &[
            line(
                "blobs",
                "seeded bucket vibesdk-templates: 1 uploaded, 1 unchanged",
            ),
            line("docs", "seeded 2 documents"),
            line("db", "seeded seed/users.sql"),
        ],
    );
    assert_eq!(objects(&gcs, "vibesdk-templates"), seeded_objects());
    assert_eq!(
        document(&fs, &gp, "users/u1").unwrap()["name"]["stringValue"],
        "Ada"
    );
    assert_eq!(user_ids(&app_db(&p)), ["u1", "u2"]);

    // ---- reset-db: the database rebuilt, migrated and seeded ----
    let db = app_db(&p);
    let clean_tables = tables(&db);
    db.exec(
        "CREATE TABLE scratch (x int);\n\
         DELETE FROM users WHERE id = 'u1';\n\
         INSERT INTO users (id, email, display_name, provider, provider_id) \
         VALUES ('u3', 'x@example.com', 'X', 'github', '3');",
    );
    let reset = p.ok(&["reset-db", "--yes"]);
    assert!(
        reset.stdout.contains("vibesdk: reset in")
            && reset.stdout.contains("4 migrations, 1 seed file"),
        "{reset}"
    );
    naming.check(
        "reset-db --yes",
        &reset,
        &[
            line("db", "building template database vibesdk__vibedev_seeded_"),
            line("db", "applied 0003_user_nickname"),
            line("db", "seeded seed/users.sql"),
            line("db", "disconnecting 1 session"),
        ],
    );
    assert!(
        db.try_exec("SELECT 1").is_err(),
        "the session on the old database was ended"
    );
    let db = app_db(&p);
    assert_eq!(tables(&db), clean_tables);
    assert_eq!(user_ids(&db), ["u1", "u2"]);
    assert_eq!(drizzle_rows(&db), expected_rows(&drizzle));
    drop(db);

    // ---- reset-db --all: Redis emptied, the bucket and Firestore reseeded, the database too ----
    upload(&gcs, "vibesdk-templates", "stray.txt", "stray");
    patch_document(&fs, &gp, "users/stray", "{}");
    assert!(document(&fs, &gp, "users/stray").is_some());
    app_db(&p).exec("DELETE FROM users");
    let reset_all = p.ok(&["reset-db", "--yes", "--all"]);
    assert!(
        reset_all.stdout.contains("all stores reset in"),
        "{reset_all}"
    );
    naming.check(
        "reset-db --yes --all",
        &reset_all,
        &[
            line("cache", "emptied"),
            line("docs", "emptied"),
            line("docs", "seeded 2 documents"),
            line("blobs", "seeded bucket vibesdk-templates:"),
        ],
    );
    let size: i64 = redis::cmd("DBSIZE").query(&mut cache).unwrap();
    assert_eq!(size, 0, "Redis keys gone: {reset_all}");
    assert_eq!(objects(&gcs, "vibesdk-templates"), seeded_objects());
    assert!(document(&fs, &gp, "users/stray").is_none(), "{reset_all}");
    assert_eq!(
        document(&fs, &gp, "users/u1").unwrap()["name"]["stringValue"],
        "Ada"
    );
    let db = app_db(&p);
    assert_eq!(user_ids(&db), ["u1", "u2"]);
    assert_eq!(tables(&db), clean_tables);
    assert_eq!(drizzle_rows(&db), expected_rows(&drizzle));
    drop(db);
    // The admin account is the compose file's own, untouched.
    assert_eq!(
        admin_db(&p).strings("SELECT current_user::text"),
        ["postgres"]
    );

    // ---- a stopped service is named by its name, with the command that starts it ----
    docker(&["stop", &container_id(&p, "cache")]);
    let without_cache = p.ok(&["reset-db", "--yes", "--all"]);
    naming.says(
        "reset-db --yes --all (cache stopped)",
        &without_cache.stderr,
        "cache is not running",
        "redis is not running",
    );
    docker(&["stop", &container_id(&p, "blobs")]);
    let no_blobs = p.run(&["seed", "bucket"]);
    assert_eq!(no_blobs.code, Some(1), "{no_blobs}");
    naming.says(
        "seed bucket (blobs stopped)",
        &no_blobs.stderr,
        "`vibedev up blobs`",
        "vibedev up gcs",
    );
    docker(&["stop", &container_id(&p, "docs")]);
    let no_docs = p.run(&["seed", "firestore"]);
    assert_eq!(no_docs.code, Some(1), "{no_docs}");
    naming.says(
        "seed firestore (docs stopped)",
        &no_docs.stderr,
        "`vibedev up docs`",
        "vibedev up firestore",
    );
    docker(&["stop", &container_id(&p, "db")]);
    let no_db = p.run(&["migrate"]);
    assert_eq!(no_db.code, Some(1), "{no_db}");
    naming.says(
        "migrate (db stopped)",
        &no_db.stderr,
        "`vibedev up db`",
        "vibedev up postgres",
    );

    naming.assert_none();
}

/// A running `vibedev watch` whose output is collected as it comes.
struct Watcher {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Watcher {
    /// Starts `vibedev watch` and waits until it says it is watching.
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
                for l in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut t = sink.lock().unwrap();
                    t.push_str(&l);
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
        w.wait(&|| w.err(), "watching ");
        w
    }

    fn out(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn err(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `text()` shows `what` (a deadline only against a hung watcher).
    fn wait(&self, text: &dyn Fn() -> String, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !text().contains(what) {
            assert!(
                Instant::now() < deadline,
                "never saw {what:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                self.out(),
                self.err()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Ctrl-C: the watcher exits cleanly.
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

/// Replaces a file the way editors save: write a temporary file, rename it over.
fn save(p: &TestProject, rel: &str, contents: &str) {
    let tmp = format!("{rel}.vibedev-test-tmp");
    p.write(&tmp, contents);
    std::fs::rename(p.path().join(&tmp), p.path().join(rel)).unwrap();
}

#[test]
fn watch_applies_saved_migrations_and_bucket_seeds_on_renamed_services() {
    // Postgres and fake-gcs only (no JVM: two cores).
    let p = project("renamed-watch", &["db", "blobs"]);
    let mut naming = Naming::default();
    let up = p.ok(&["up"]);
    naming.check(
        "up",
        &up,
        &[
            line("db", "applied 0002_app_deployments"),
            line(
                "blobs",
                "seeded bucket vibesdk-templates: 2 uploaded, 0 unchanged",
            ),
        ],
    );
    let vars = support::env(&p);
    let gcs = vars["STORAGE_EMULATOR_HOST"].clone();
    assert_eq!(
        drizzle_rows(&Db::connect(&vars["DATABASE_URL"])),
        drizzle_orm_rows("drizzle-pg")
    );
    assert_eq!(objects(&gcs, "vibesdk-templates"), seeded_objects());

    let w = Watcher::start(&p);
    // A migration saved: applied.
    let next = fixture("drizzle-pg-next");
    for rel in ["0003_deployment_commit_sha.sql", "meta/0003_snapshot.json"] {
        std::fs::copy(next.join(rel), p.path().join("drizzle").join(rel)).unwrap();
    }
    save(
        &p,
        "drizzle/meta/_journal.json",
        &std::fs::read_to_string(next.join("meta/_journal.json")).unwrap(),
    );
    w.wait(
        &|| w.out(),
        "migrations changed: applied 0003_deployment_commit_sha",
    );
    assert_eq!(
        drizzle_rows(&Db::connect(&vars["DATABASE_URL"])),
        drizzle_orm_rows("drizzle-pg-next")
    );

    // A bucket seed file saved: uploaded.
    save(&p, "seed/bucket/added.txt", "added\n");
    w.wait(&|| w.out(), "bucket seed changed:");
    let mut want = seeded_objects();
    want.push(("added.txt".to_string(), "added\n".to_string()));
    want.sort();
    assert_eq!(objects(&gcs, "vibesdk-templates"), want);
    let out = w.out();
    let bucket_line = out
        .lines()
        .find(|l| l.contains("bucket seed changed:"))
        .unwrap();
    naming.check_text(
        "watch",
        bucket_line,
        &[
            "bucket seed changed: blobs seeded bucket vibesdk-templates: 1 uploaded, 2 unchanged"
                .to_string(),
        ],
    );
    naming.check_text("watch", &w.err(), &[]);
    w.stop();

    naming.assert_none();
}
