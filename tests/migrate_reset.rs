//! `vibedev reset-db` and the seeds against the real test images: confirmation, a reset that
//! leaves exactly migrations and seeds, the template database rebuilt once when a migration
//! changes, and bucket and Firestore seeds (fake-gcs, the Firestore emulator) with `--all`.

mod migrate_common;
mod support;

use std::io::{Read, Write};

use migrate_common::*;
use support::TestProject;

const USERS_SQL: &str = "INSERT INTO users (id, email, display_name, provider, provider_id)\n\
VALUES ('u1', 'ada@example.com', 'Ada', 'github', '1'),\n\
       ('u2', 'alan@example.com', 'Alan', 'github', '2');\n";
// Needs the users of the first file: proves the files run in the configured order.
const APPS_SQL: &str = "INSERT INTO apps (id, title, original_prompt, user_id)\n\
SELECT 'app-' || id, 'App of ' || display_name, 'make it', id FROM users;\n";

/// A project with the fixture migrations and two SQL seed files, Postgres up (so migrated and
/// seeded by `up`).
fn seeded_project(tag: &str) -> TestProject {
    let p = TestProject::new(tag);
    p.write_config("[seed]\nsql = [\"seed/01_users.sql\", \"seed/02_apps.sql\"]\n");
    p.write("seed/01_users.sql", USERS_SQL);
    p.write("seed/02_apps.sql", APPS_SQL);
    use_migrations(&p, "drizzle-pg", "drizzle");
    let run = p.ok(&["up", "postgres"]);
    assert!(run.stderr.contains("seeded seed/02_apps.sql"), "{run}");
    p
}

fn seeded_state(db: &Db) -> (Vec<String>, Vec<String>) {
    (
        db.strings("SELECT id FROM users ORDER BY id"),
        db.strings("SELECT id FROM apps ORDER BY id"),
    )
}

fn seeds() -> (Vec<String>, Vec<String>) {
    (
        vec!["u1".into(), "u2".into()],
        vec!["app-u1".into(), "app-u2".into()],
    )
}

#[test]
fn reset_db_without_yes_and_without_a_terminal_refuses() {
    let p = seeded_project("reset-refuse");
    app_db(&p).exec("INSERT INTO stars (id, user_id, app_id) VALUES ('s1', 'u1', 'app-u1')");
    let output = p
        .cmd(&["reset-db"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let run = support::Run::from(output);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no terminal to ask on"), "{run}");
    assert!(run.stderr.contains("hint: pass --yes"), "{run}");
    assert_eq!(
        app_db(&p).count("SELECT count(*) FROM stars"),
        1,
        "the database was not touched"
    );
}

#[test]
fn reset_leaves_exactly_migrations_and_seeds() {
    let p = seeded_project("reset-exact");
    let db = app_db(&p);
    let clean_tables = tables(&db);
    assert_eq!(seeded_state(&db), seeds());
    db.exec(
        "CREATE TABLE scratch (x int);\n\
         INSERT INTO users (id, email, display_name, provider, provider_id) VALUES ('u3', 'x@example.com', 'X', 'github', '3');\n\
         DELETE FROM apps WHERE id = 'app-u1';\n\
         CREATE SCHEMA junk;",
    );
    drop(db);

    for args in [
        &["reset-db", "--yes"][..],
        &["reset-db", "--yes", "--no-template"][..],
    ] {
        let run = p.ok(args);
        assert!(run.stdout.contains("vibesdk: reset in"), "{run}");
        let db = app_db(&p);
        assert_eq!(tables(&db), clean_tables, "{args:?}");
        assert_eq!(seeded_state(&db), seeds(), "{args:?}");
        assert_eq!(
            drizzle_rows(&db),
            drizzle_orm_rows("drizzle-pg"),
            "{args:?}"
        );
        assert_eq!(
            db.count("SELECT count(*) FROM pg_namespace WHERE nspname = 'junk'"),
            0
        );
        db.exec("CREATE TABLE scratch (x int)");
    }

    let run = p.ok(&["reset-db", "--yes", "--no-seed"]);
    // A template without seeds is a different template.
    assert!(
        run.stdout.contains("(template rebuilt; 3 migrations)"),
        "{run}"
    );
    let db = app_db(&p);
    assert_eq!(tables(&db), clean_tables);
    assert_eq!(
        seeded_state(&db),
        (vec![], vec![]),
        "--no-seed leaves the tables empty"
    );
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg"));
}

#[test]
fn reset_disconnects_other_sessions() {
    let p = seeded_project("reset-sessions");
    let held = app_db(&p);
    held.exec("SELECT 1");
    let run = p.ok(&["reset-db", "--yes"]);
    assert!(run.stderr.contains("disconnecting 1 session"), "{run}");
    assert!(
        held.try_exec("SELECT 1").is_err(),
        "the old session was ended"
    );
}

#[test]
fn template_is_rebuilt_once_when_a_migration_changes() {
    let p = seeded_project("reset-template");
    let databases = |p: &TestProject, spare: bool| {
        admin_db(p).strings(&format!(
            "SELECT datname::text FROM pg_database \
             WHERE (datname LIKE 'vibesdk\\_\\_vibedev\\_seeded\\_%' \
             OR datname LIKE 'vibesdk\\_\\_vibedev\\_bare\\_%') \
             AND (datname LIKE '%\\_spare\\_%') = {spare} ORDER BY 1"
        ))
    };
    let templates = |p: &TestProject| databases(p, false);
    // The spare is cloned in the background after a reset: wait for it.
    let spare_appears = |p: &TestProject| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let spares = databases(p, true);
            if !spares.is_empty() || std::time::Instant::now() > deadline {
                return spares;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let first = p.ok(&["reset-db", "--yes"]);
    assert!(first.stdout.contains("template rebuilt"), "{first}");
    assert!(
        first
            .stderr
            .contains("building template database vibesdk__vibedev_seeded_"),
        "{first}"
    );
    let built = templates(&p);
    assert_eq!(built.len(), 1, "{built:?}");

    let spare = spare_appears(&p);
    assert_eq!(
        spare.len(),
        1,
        "a spare copy is prepared for the next reset"
    );
    let second = p.ok(&["reset-db", "--yes"]);
    assert!(
        second
            .stdout
            .contains("from a prepared copy of the template"),
        "{second}"
    );
    assert!(
        !second.stderr.contains("applied"),
        "nothing migrated: {second}"
    );
    assert_eq!(templates(&p), built);
    assert_eq!(seeded_state(&app_db(&p)), seeds());
    // Without a spare (not prepared yet, or taken), the template is cloned directly.
    admin_db(&p).exec(&format!(
        "DROP DATABASE IF EXISTS \"{}\"",
        spare_appears(&p)[0]
    ));
    let direct = p.ok(&["reset-db", "--yes"]);
    assert!(direct.stdout.contains("(from the template;"), "{direct}");

    use_migrations(&p, "drizzle-pg-next", "drizzle");
    let third = p.ok(&["reset-db", "--yes"]);
    assert!(
        third.stderr.contains("rebuilding template database"),
        "{third}"
    );
    assert!(
        third.stderr.contains(&format!("dropping {}", built[0])),
        "{third}"
    );
    let rebuilt = templates(&p);
    assert_eq!(rebuilt.len(), 1, "the old template is gone: {rebuilt:?}");
    assert_ne!(rebuilt, built);
    let new_spare = spare_appears(&p);
    assert_eq!(new_spare.len(), 1, "the old spare is gone: {new_spare:?}");
    assert!(
        new_spare[0].ends_with(&rebuilt[0][rebuilt[0].len() - 12..]),
        "{new_spare:?}"
    );
    let db = app_db(&p);
    assert_eq!(drizzle_rows(&db), drizzle_orm_rows("drizzle-pg-next"));
    assert_eq!(seeded_state(&db), seeds());
    drop(db);

    let fourth = p.ok(&["reset-db", "--yes"]);
    assert!(
        fourth
            .stdout
            .contains("from a prepared copy of the template"),
        "{fourth}"
    );
    assert_eq!(
        drizzle_rows(&app_db(&p)),
        drizzle_orm_rows("drizzle-pg-next")
    );

    // A changed seed file is part of the template's key too.
    p.write(
        "seed/02_apps.sql",
        &APPS_SQL.replace("'App of '", "'Application of '"),
    );
    let fifth = p.ok(&["reset-db", "--yes"]);
    assert!(fifth.stdout.contains("template rebuilt"), "{fifth}");
    let titles = app_db(&p).strings("SELECT title FROM apps ORDER BY id");
    assert_eq!(titles, ["Application of Ada", "Application of Alan"]);
}

// ---- bucket, Firestore and Redis ----

fn http(method: &str, url: &str, body: Option<&str>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let mut req = client
            .request(method.parse().unwrap(), url)
            .header("Authorization", "Bearer owner");
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    })
}

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

fn upload(gcs: &str, bucket: &str, name: &str, content: &str) {
    let (status, body) = http(
        "POST",
        &format!("{gcs}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"),
        Some(content),
    );
    assert_eq!(status, 200, "{body}");
}

/// A document's fields; `None` only when the emulator answers 404 (any other failure fails the
/// test, so "absent" is never a failed request).
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

/// Writes a document's fields through the emulator, failing the test unless it was written.
fn patch_document(fs: &str, project: &str, path: &str, fields: &str) {
    let (status, body) = http(
        "PATCH",
        &format!("http://{fs}/v1/projects/{project}/databases/(default)/documents/{path}"),
        Some(&format!("{{\"fields\":{fields}}}")),
    );
    assert_eq!(status, 200, "PATCH document {path}: {body}");
}

fn redis(addr: &str, command: &[&str]) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut req = format!("*{}\r\n", command.len());
    for part in command {
        req.push_str(&format!("${}\r\n{part}\r\n", part.len()));
    }
    stream.write_all(req.as_bytes()).unwrap();
    let mut buf = [0u8; 128];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).trim_end().to_string()
}

#[test]
fn bucket_and_firestore_seeds_appear_and_reset_all_restores_them() {
    let p = TestProject::new("reset-all");
    p.write_config(
        "[seed]\nsql = [\"seed/users.sql\"]\nbucket_dir = \"seed/bucket\"\nfirestore_dir = \"seed/firestore\"\n",
    );
    p.write("seed/users.sql", USERS_SQL);
    p.write("seed/bucket/readme.txt", "hello\n");
    p.write(
        "seed/bucket/templates/react/package.json",
        "{\"name\":\"react\"}\n",
    );
    p.write("seed/bucket/.gitkeep", "");
    p.write(
        "seed/firestore/users/u1.json",
        "{\"name\":\"Ada\",\"age\":36,\"tags\":[\"a\"]}",
    );
    p.write(
        "seed/firestore/users/u1/sessions/s1.json",
        "{\"active\":true}",
    );
    use_migrations(&p, "drizzle-pg", "drizzle");

    let up = p.ok(&["up"]);
    assert!(
        up.stderr
            .contains("seeded bucket vibesdk-templates: 2 uploaded, 0 unchanged"),
        "{up}"
    );
    assert!(up.stderr.contains("firestore  seeded 2 documents"), "{up}");
    assert!(up.stderr.contains("seeded seed/users.sql"), "{up}");

    let env = support::env(&p);
    let gcs = env["STORAGE_EMULATOR_HOST"].clone();
    let fs = env["FIRESTORE_EMULATOR_HOST"].clone();
    let gp = env["GOOGLE_CLOUD_PROJECT"].clone();
    let redis_addr = env["REDIS_URL"].trim_start_matches("redis://").to_string();
    let seeded_objects = vec![
        ("readme.txt".to_string(), "hello\n".to_string()),
        (
            "templates/react/package.json".to_string(),
            "{\"name\":\"react\"}\n".to_string(),
        ),
    ];
    assert_eq!(objects(&gcs, "vibesdk-templates"), seeded_objects);
    let ada = document(&fs, &gp, "users/u1").expect("seeded document");
    assert_eq!(ada["name"]["stringValue"], "Ada");
    assert_eq!(ada["age"]["integerValue"], "36");
    assert_eq!(
        document(&fs, &gp, "users/u1/sessions/s1").unwrap()["active"]["booleanValue"],
        true
    );

    // A second `up` keeps everything and seeds nothing again.
    let again = p.ok(&["up"]);
    assert!(!again.stderr.contains("seeded"), "{again}");
    // `vibedev seed bucket` skips objects whose content is unchanged.
    let seed = p.ok(&["seed", "bucket"]);
    assert!(seed.stderr.contains("0 uploaded, 2 unchanged"), "{seed}");

    // The developer changes every store.
    upload(&gcs, "vibesdk-templates", "readme.txt", "edited");
    upload(&gcs, "vibesdk-templates", "stray.txt", "stray");
    patch_document(
        &fs,
        &gp,
        "users/u1",
        "{\"name\":{\"stringValue\":\"Changed\"}}",
    );
    patch_document(&fs, &gp, "users/stray", "{}");
    assert_eq!(
        document(&fs, &gp, "users/u1").unwrap()["name"]["stringValue"],
        "Changed",
        "the edit the seed must undo took effect"
    );
    assert!(document(&fs, &gp, "users/stray").is_some());
    assert_eq!(redis(&redis_addr, &["SET", "k", "v"]), "+OK");
    app_db(&p).exec("DELETE FROM users");

    let seed = p.ok(&["seed", "bucket", "firestore"]);
    assert!(seed.stderr.contains("1 uploaded, 1 unchanged"), "{seed}");
    assert_eq!(
        document(&fs, &gp, "users/u1").unwrap()["name"]["stringValue"],
        "Ada"
    );
    assert!(
        document(&fs, &gp, "users/stray").is_some(),
        "seed alone deletes nothing"
    );

    let reset = p.ok(&["reset-db", "--yes", "--all"]);
    assert!(reset.stderr.contains("redis      emptied"), "{reset}");
    assert_eq!(
        objects(&gcs, "vibesdk-templates"),
        seeded_objects,
        "{reset}"
    );
    assert!(document(&fs, &gp, "users/stray").is_none(), "{reset}");
    assert_eq!(
        document(&fs, &gp, "users/u1").unwrap()["name"]["stringValue"],
        "Ada"
    );
    assert_eq!(redis(&redis_addr, &["DBSIZE"]), ":0");
    assert_eq!(
        app_db(&p).strings("SELECT id FROM users ORDER BY id"),
        ["u1", "u2"]
    );

    // --all --no-seed leaves every store empty.
    p.ok(&["reset-db", "--yes", "--all", "--no-seed"]);
    assert!(objects(&gcs, "vibesdk-templates").is_empty());
    assert!(document(&fs, &gp, "users/u1").is_none());
    assert_eq!(app_db(&p).count("SELECT count(*) FROM users"), 0);
}
