//! `vibedev snapshot` on a real stack: data in all four stores is saved, everything is changed,
//! and a restore gives back exactly what was saved (rows and checksums, documents as JSON,
//! object bytes and metadata, keys, values and TTLs); a damaged snapshot is refused before
//! anything changes; renamed services work; two projects' snapshots never mix. A store or
//! vibedev killed mid-restore leaves the previous data; `save --pause` freezes the app's
//! containers while the stores are read and never leaves one paused.

mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::{TestProject, env, images};

/// A project whose snapshots go to `data` (the user's data folder, outside the checkout).
fn with_data_dir(mut p: TestProject, data: &std::path::Path) -> TestProject {
    p.env
        .push(("XDG_DATA_HOME".into(), data.display().to_string()));
    p
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn pg(rt: &tokio::runtime::Runtime, url: &str) -> tokio_postgres::Client {
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    })
}

/// Tables, row counts, an md5 of every row in order, and the next value of each sequence.
fn pg_state(rt: &tokio::runtime::Runtime, url: &str) -> Vec<String> {
    let c = pg(rt, url);
    rt.block_on(async {
        let mut out = Vec::new();
        let tables = c
            .query(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
                 WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        for t in tables {
            let name: String = t.get(0);
            let row = c
                .query_one(
                    &format!(
                        "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {name} x"
                    ),
                    &[],
                )
                .await
                .unwrap();
            let (n, sum): (i64, String) = (row.get(0), row.get(1));
            out.push(format!("{name} {n} {sum}"));
        }
        let indexes = c
            .query(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        for i in indexes {
            out.push(format!("index {}", i.get::<_, String>(0)));
        }
        let seq: i64 = c
            .query_one("SELECT last_value FROM items_id_seq", &[])
            .await
            .map(|r| r.get(0))
            .unwrap_or(-1);
        out.push(format!("items_id_seq {seq}"));
        out
    })
}

fn firestore_root(vars: &BTreeMap<String, String>) -> String {
    format!(
        "http://{}/v1/projects/{}/databases/(default)/documents",
        vars["FIRESTORE_EMULATOR_HOST"], vars["GOOGLE_CLOUD_PROJECT"]
    )
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn put_doc(
    rt: &tokio::runtime::Runtime,
    vars: &BTreeMap<String, String>,
    path: &str,
    fields: Value,
) {
    let url = format!("{}/{path}", firestore_root(vars));
    rt.block_on(async {
        let r = http()
            .patch(url)
            .header("Authorization", "Bearer owner")
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
}

fn delete_doc(rt: &tokio::runtime::Runtime, vars: &BTreeMap<String, String>, path: &str) {
    let url = format!("{}/{path}", firestore_root(vars));
    rt.block_on(async {
        let r = http()
            .delete(url)
            .header("Authorization", "Bearer owner")
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
}

/// Every document (subcollections included) as path -> fields.
fn firestore_state(
    rt: &tokio::runtime::Runtime,
    vars: &BTreeMap<String, String>,
) -> BTreeMap<String, Value> {
    let root = firestore_root(vars);
    rt.block_on(async {
        let r: Vec<Value> = http()
            .post(format!("{root}:runQuery"))
            .header("Authorization", "Bearer owner")
            .json(&json!({ "structuredQuery": { "from": [{ "allDescendants": true }] } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        r.iter()
            .filter_map(|d| d.get("document"))
            .map(|d| {
                let name = d["name"].as_str().unwrap();
                let path = name.split("/documents/").nth(1).unwrap().to_string();
                (path, d["fields"].clone())
            })
            .collect()
    })
}

fn gcs_upload(
    rt: &tokio::runtime::Runtime,
    vars: &BTreeMap<String, String>,
    name: &str,
    content_type: &str,
    metadata: Value,
    bytes: &[u8],
) {
    let base = &vars["STORAGE_EMULATOR_HOST"];
    let bucket = &vars["TEMPLATES_BUCKET"];
    let mut body = format!(
        "--b\r\nContent-Type: application/json\r\n\r\n{}\r\n--b\r\nContent-Type: {content_type}\r\n\r\n",
        json!({ "name": name, "contentType": content_type, "metadata": metadata })
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--b--\r\n");
    rt.block_on(async {
        let r = http()
            .post(format!(
                "{base}/upload/storage/v1/b/{bucket}/o?uploadType=multipart"
            ))
            .header("Content-Type", "multipart/related; boundary=b")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    });
}

/// Every object of the app's bucket: name -> (content type, metadata, bytes).
fn gcs_state(
    rt: &tokio::runtime::Runtime,
    vars: &BTreeMap<String, String>,
) -> BTreeMap<String, (String, Value, Vec<u8>)> {
    let base = &vars["STORAGE_EMULATOR_HOST"];
    let bucket = &vars["TEMPLATES_BUCKET"];
    rt.block_on(async {
        let list: Value = http()
            .get(format!("{base}/storage/v1/b/{bucket}/o"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut out = BTreeMap::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = item["name"].as_str().unwrap().to_string();
            let enc = name.replace('/', "%2F");
            let bytes = http()
                .get(format!("{base}/storage/v1/b/{bucket}/o/{enc}?alt=media"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .to_vec();
            out.insert(
                name,
                (
                    item["contentType"].as_str().unwrap_or_default().to_string(),
                    item["metadata"].clone(),
                    bytes,
                ),
            );
        }
        out
    })
}

fn gcs_delete(rt: &tokio::runtime::Runtime, vars: &BTreeMap<String, String>, name: &str) {
    let base = &vars["STORAGE_EMULATOR_HOST"];
    let bucket = &vars["TEMPLATES_BUCKET"];
    let enc = name.replace('/', "%2F");
    rt.block_on(async {
        let r = http()
            .delete(format!("{base}/storage/v1/b/{bucket}/o/{enc}"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
}

fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// Every key of databases 0 and 3: (db, key) -> (DUMP of the value, has a TTL).
fn redis_state(url: &str) -> BTreeMap<(u8, String), (Vec<u8>, bool)> {
    let mut conn = redis_conn(url);
    let mut out = BTreeMap::new();
    for db in [0u8, 3] {
        redis::cmd("SELECT").arg(db).exec(&mut conn).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        for k in keys {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut conn).unwrap();
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut conn).unwrap();
            out.insert((db, k), (dump, ttl > 0));
        }
    }
    out
}

fn ttl_secs(url: &str, key: &str) -> i64 {
    let mut conn = redis_conn(url);
    redis::cmd("TTL").arg(key).query(&mut conn).unwrap()
}

/// Fills all four stores with data of many shapes.
fn fill(rt: &tokio::runtime::Runtime, vars: &BTreeMap<String, String>) {
    let c = pg(rt, &vars["DATABASE_URL"]);
    rt.block_on(async {
        c.batch_execute(
            "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, data bytea, doc jsonb, at timestamptz DEFAULT now());
             CREATE INDEX items_name ON items (name);
             CREATE TABLE tags (item int REFERENCES items (id), tag text);
             INSERT INTO items (name, data, doc) SELECT 'item ' || g, decode(md5(g::text), 'hex'), jsonb_build_object('g', g, 'q', 'it''s')
               FROM generate_series(1, 2000) g;
             INSERT INTO tags SELECT g, 'tag' || (g % 7) FROM generate_series(1, 2000, 3) g;",
        )
        .await
        .unwrap();
    });
    put_doc(
        rt,
        vars,
        "users/ada",
        json!({
            "name": {"stringValue": "Ada"}, "age": {"integerValue": "36"}, "score": {"doubleValue": 1.5},
            "joined": {"timestampValue": "2024-01-02T03:04:05.678Z"}, "raw": {"bytesValue": "AAEC"},
            "where": {"geoPointValue": {"latitude": 51.5, "longitude": -0.1}},
            "tags": {"arrayValue": {"values": [{"stringValue": "a"}, {"nullValue": null}]}},
            "address": {"mapValue": {"fields": {"city": {"stringValue": "London"}}}}
        }),
    );
    put_doc(
        rt,
        vars,
        "users/ada/sessions/s1",
        json!({"active": {"booleanValue": true}}),
    );
    for i in 0..30 {
        put_doc(
            rt,
            vars,
            &format!("apps/app{i}"),
            json!({"n": {"integerValue": i.to_string()}}),
        );
    }
    gcs_upload(
        rt,
        vars,
        "templates/react/package.json",
        "application/json",
        json!({"owner": "ada"}),
        b"{\"name\":\"react\"}",
    );
    gcs_upload(
        rt,
        vars,
        "bin/blob",
        "application/x-custom",
        json!({}),
        &(0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
    );
    let mut conn = redis_conn(&vars["REDIS_URL"]);
    redis::cmd("SET")
        .arg("plain")
        .arg("v")
        .exec(&mut conn)
        .unwrap();
    redis::cmd("SET")
        .arg("session:1")
        .arg("s")
        .arg("EX")
        .arg(3600)
        .exec(&mut conn)
        .unwrap();
    redis::cmd("HSET")
        .arg("h")
        .arg("f")
        .arg("1")
        .arg("g")
        .arg("2")
        .exec(&mut conn)
        .unwrap();
    redis::cmd("SELECT").arg(3).exec(&mut conn).unwrap();
    redis::cmd("RPUSH")
        .arg("list")
        .arg("x")
        .arg("y")
        .exec(&mut conn)
        .unwrap();
    redis::cmd("SET")
        .arg(b"bin\x00key")
        .arg(b"\xff\x00")
        .exec(&mut conn)
        .unwrap();
}

/// Changes everything: new rows, a dropped table, deleted and new documents, a new object, an
/// object with other bytes of the same size, one with the same bytes and other metadata,
/// flushed Redis.
fn change_everything(rt: &tokio::runtime::Runtime, vars: &BTreeMap<String, String>) {
    let c = pg(rt, &vars["DATABASE_URL"]);
    rt.block_on(async {
        c.batch_execute(
            "INSERT INTO items (name) VALUES ('late'); DROP TABLE tags; CREATE TABLE newer (x int);",
        )
        .await
        .unwrap();
    });
    delete_doc(rt, vars, "users/ada");
    delete_doc(rt, vars, "apps/app3");
    put_doc(rt, vars, "apps/new", json!({"n": {"integerValue": "99"}}));
    gcs_delete(rt, vars, "bin/blob");
    let mut blob = (0..=255u8).cycle().take(70_000).collect::<Vec<_>>();
    blob[35_000] ^= 0xff;
    gcs_upload(
        rt,
        vars,
        "bin/blob",
        "application/x-custom",
        json!({}),
        &blob,
    );
    gcs_upload(rt, vars, "new.txt", "text/plain", json!({}), b"new");
    gcs_upload(
        rt,
        vars,
        "templates/react/package.json",
        "text/plain",
        json!({"owner": "bob"}),
        b"{\"name\":\"react\"}",
    );
    let mut conn = redis_conn(&vars["REDIS_URL"]);
    redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
    redis::cmd("SET")
        .arg("after")
        .arg("1")
        .exec(&mut conn)
        .unwrap();
}

#[test]
fn every_store_comes_back_as_saved_and_damage_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-all"), data.path());
    p.ok(&["up"]);
    let vars = env(&p);
    let rt = runtime();
    fill(&rt, &vars);
    let before = (
        pg_state(&rt, &vars["DATABASE_URL"]),
        firestore_state(&rt, &vars),
        gcs_state(&rt, &vars),
        redis_state(&vars["REDIS_URL"]),
    );
    assert_eq!(before.1.len(), 32, "{:?}", before.1.keys());
    assert_eq!(before.2.len(), 2);
    assert_eq!(before.3.len(), 5);

    let save = p.ok(&["snapshot", "save", "base"]);
    assert!(save.stdout.contains("saved snapshot base"), "{save}");
    for line in [
        "postgres   saved 2 tables",
        "firestore  saved 32 documents",
        "redis      saved 5 keys",
        "gcs        saved 2 objects",
    ] {
        assert!(save.stderr.contains(line), "{line:?} in\n{save}");
    }
    // A second save under the same name is refused.
    let again = p.run(&["snapshot", "save", "base"]);
    assert_eq!(again.code, Some(2), "{again}");
    assert!(
        again.stderr.contains("already has a snapshot \"base\""),
        "{again}"
    );

    change_everything(&rt, &vars);
    assert_ne!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);
    assert_ne!(redis_state(&vars["REDIS_URL"]), before.3);

    let restore = p.ok(&["snapshot", "restore", "base"]);
    assert!(
        restore.stdout.contains("restored snapshot base (4 stores"),
        "{restore}"
    );
    assert_eq!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);
    assert_eq!(firestore_state(&rt, &vars), before.1);
    assert_eq!(gcs_state(&rt, &vars), before.2);
    assert_eq!(redis_state(&vars["REDIS_URL"]), before.3);
    let ttl = ttl_secs(&vars["REDIS_URL"], "session:1");
    assert!(ttl > 3000 && ttl <= 3600, "TTL {ttl}");
    // The restored database is the app's: the app user owns it and its tables.
    let c = pg(&rt, &vars["DATABASE_URL"]);
    let owner: String = rt
        .block_on(c.query_one(
            "SELECT tableowner::text FROM pg_tables WHERE tablename = 'items'",
            &[],
        ))
        .unwrap()
        .get(0);
    assert_eq!(owner, "vibesdk_app");
    drop(c);

    // Listed with its size per store; JSON for scripts.
    let list = p.ok(&["snapshot", "list", "--json"]).json();
    let snaps = list["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1, "{list}");
    assert_eq!(snaps[0]["name"], "base");
    assert_eq!(snaps[0]["stores"].as_array().unwrap().len(), 4);
    let root = std::path::PathBuf::from(list["root"].as_str().unwrap());
    assert!(root.starts_with(data.path()), "{}", root.display());
    assert!(list["total_bytes"].as_u64().unwrap() > 70_000);

    // --only: Redis alone goes back; the database keeps its new row.
    let mut conn = redis_conn(&vars["REDIS_URL"]);
    redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
    let c = pg(&rt, &vars["DATABASE_URL"]);
    rt.block_on(c.batch_execute("INSERT INTO items (name) VALUES ('kept')"))
        .unwrap();
    drop(c);
    p.ok(&["snapshot", "restore", "base", "--only", "redis"]);
    assert_eq!(redis_state(&vars["REDIS_URL"]), before.3);
    assert_ne!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);

    // A damaged file is found before anything changes.
    let copy = root.join("base/stores/postgres/data/0.copy");
    let mut bytes = std::fs::read(&copy).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&copy, &bytes).unwrap();
    redis::cmd("SET")
        .arg("after")
        .arg("1")
        .exec(&mut conn)
        .unwrap();
    let pg_now = pg_state(&rt, &vars["DATABASE_URL"]);
    let redis_now = redis_state(&vars["REDIS_URL"]);
    let damaged = p.run(&["snapshot", "restore", "base"]);
    assert_eq!(damaged.code, Some(1), "{damaged}");
    assert!(
        damaged.stderr.contains("is damaged") && damaged.stderr.contains("0.copy"),
        "{damaged}"
    );
    assert!(damaged.stderr.contains("nothing was changed"), "{damaged}");
    assert_eq!(pg_state(&rt, &vars["DATABASE_URL"]), pg_now);
    assert_eq!(redis_state(&vars["REDIS_URL"]), redis_now);

    let rm = p.ok(&["snapshot", "rm", "base"]);
    assert!(rm.stdout.contains("removed snapshot base"), "{rm}");
    assert!(!root.join("base").exists());
    let missing = p.run(&["snapshot", "restore", "base"]);
    assert_eq!(missing.code, Some(2), "{missing}");
    assert!(
        missing.stderr.contains("has no snapshot \"base\""),
        "{missing}"
    );
}

/// The data services under their own names (`db`, `cache`, `docs`, `blobs`).
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

/// A copy of snapshot `from` named `to` whose `file` in `service`'s folder is `edit`ed, with the
/// manifest's sizes and checksums updated: a snapshot whose files check out but that holds
/// something the store refuses.
fn doctored(
    root: &std::path::Path,
    from: &str,
    to: &str,
    service: &str,
    file: &str,
    edit: impl FnOnce(String) -> String,
) {
    copy_dir(&root.join(from), &root.join(to));
    let path = root.join(to).join("stores").join(service).join(file);
    let text = edit(std::fs::read_to_string(&path).unwrap());
    std::fs::write(&path, &text).unwrap();
    let manifest_path = root.join(to).join("manifest.json");
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    manifest["name"] = json!(to);
    let store = manifest["stores"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["service"] == service)
        .unwrap();
    let entry = store["files"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["path"] == file)
        .unwrap();
    entry["size"] = json!(text.len());
    entry["crc32c"] = json!(crc32c::crc32c(text.as_bytes()));
    let total: u64 = store["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["size"].as_u64().unwrap())
        .sum();
    store["bytes"] = json!(total);
    std::fs::write(manifest_path, manifest.to_string()).unwrap();
}

/// A bucket restore that fails midway (an object's metadata the server refuses, after others
/// were already uploaded) puts the bucket back as it was: overwritten objects, deleted ones and
/// added ones.
#[test]
fn a_failed_bucket_restore_puts_the_bucket_back() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-gcs-undo"), data.path());
    p.ok(&["up", "gcs"]);
    let vars = env(&p);
    let rt = runtime();
    for i in 0..12 {
        let name = format!("page-{i:02}.html");
        gcs_upload(
            &rt,
            &vars,
            &name,
            "text/html",
            json!({ "i": i.to_string() }),
            format!("<p>{i}</p>").as_bytes(),
        );
    }
    let saved = gcs_state(&rt, &vars);
    p.ok(&["snapshot", "save", "good", "--only", "gcs"]);
    let root = data.path().join("vibedev/snapshots").join(&p.name);
    // The last object in the snapshot's list gets metadata that is not a map.
    doctored(&root, "good", "bad", "gcs", "index.json", |text| {
        let mut index: Value = serde_json::from_str(&text).unwrap();
        let objects = index["objects"].as_array_mut().unwrap();
        let last = objects.len() - 1;
        objects[last]["resource"]["metadata"] = json!("not a map");
        index.to_string()
    });

    // Changed since: every object rewritten but the last, which is deleted, and one added.
    for i in 0..11 {
        let name = format!("page-{i:02}.html");
        gcs_upload(
            &rt,
            &vars,
            &name,
            "text/html",
            json!({ "i": "changed" }),
            b"changed",
        );
    }
    gcs_delete(&rt, &vars, "page-11.html");
    gcs_upload(&rt, &vars, "new.txt", "text/plain", json!({}), b"new");
    let changed = gcs_state(&rt, &vars);

    let failed = p.run(&["snapshot", "restore", "bad", "--only", "gcs"]);
    assert_ne!(failed.code, Some(0), "{failed}");
    assert!(
        failed
            .stderr
            .contains("the buckets were put back as they were"),
        "{failed}"
    );
    assert_eq!(gcs_state(&rt, &vars), changed);
    let undo = data.path().join("vibedev/restore-undo");
    let left = std::fs::read_dir(&undo).map_or(0, |d| d.count());
    assert_eq!(left, 0, "the undo folder is removed once used");

    p.ok(&["snapshot", "restore", "good", "--only", "gcs"]);
    assert_eq!(gcs_state(&rt, &vars), saved);
    assert_eq!(std::fs::read_dir(&undo).map_or(0, |d| d.count()), 0);
}

/// A Firestore restore too big for one commit (30 MB of documents) stopped with Ctrl-C after it
/// emptied the project writes back the documents the project held.
#[test]
fn ctrl_c_during_a_large_firestore_restore_writes_the_held_documents_back() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-fs-large"), data.path());
    p.ok(&["up", "firestore"]);
    let vars = env(&p);
    let rt = runtime();
    let root = firestore_root(&vars);
    let prefix = root.split("/v1/").nth(1).unwrap().to_string();
    let filler = "x".repeat(2500);
    for batch in 0..24 {
        let writes: Vec<Value> = (0..500)
            .map(|i| {
                json!({ "update": {
                    "name": format!("{prefix}/big/d{batch:02}-{i:03}"),
                    "fields": { "s": { "stringValue": filler } },
                } })
            })
            .collect();
        rt.block_on(async {
            let r = http()
                .post(format!("{root}:commit"))
                .header("Authorization", "Bearer owner")
                .json(&json!({ "writes": writes }))
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        });
    }
    p.ok(&["snapshot", "save", "big", "--only", "firestore"]);
    rt.block_on(async {
        let emulator = format!(
            "http://{}/emulator/v1/projects/{}/databases/(default)/documents",
            vars["FIRESTORE_EMULATOR_HOST"], vars["GOOGLE_CLOUD_PROJECT"]
        );
        assert!(
            http()
                .delete(emulator)
                .send()
                .await
                .unwrap()
                .status()
                .is_success()
        );
    });
    for i in 1..=3 {
        put_doc(
            &rt,
            &vars,
            &format!("after/{i}"),
            json!({ "i": { "integerValue": i.to_string() } }),
        );
    }
    let held = firestore_state(&rt, &vars);
    assert_eq!(held.len(), 3);

    let child = p
        .cmd(&["snapshot", "restore", "big", "--only", "firestore"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Ctrl-C once the held documents are kept aside and the project was emptied.
    let undo = data.path().join("vibedev/restore-undo");
    let kept_aside = || {
        std::fs::read_dir(&undo).is_ok_and(|d| {
            d.flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let after_1 = format!("{root}/after/1");
    let emptied = || {
        rt.block_on(async {
            http()
                .get(&after_1)
                .header("Authorization", "Bearer owner")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
                == 404
        })
    };
    while !(kept_aside() && emptied()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never emptied the project"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(130), "{run}");
    assert!(
        run.stderr.contains("firestore keeps its data as it was"),
        "{run}"
    );
    let after = firestore_state(&rt, &vars);
    assert!(
        after == held,
        "{} documents: {:?}...",
        after.len(),
        after.keys().take(5).collect::<Vec<_>>()
    );
    assert!(
        !kept_aside(),
        "the kept-aside documents are removed once written back"
    );

    // Not stopped, the same restore makes the documents the snapshot's.
    p.ok(&["snapshot", "restore", "big", "--only", "firestore"]);
    let restored = firestore_state(&rt, &vars);
    assert_eq!(restored.len(), 12000);
    assert!(!restored.contains_key("after/1"));
}

/// A Firestore restore is one commit: a snapshot the emulator refuses (a field it cannot
/// read) changes no document, and a good one makes the documents exactly the saved ones.
#[test]
fn a_refused_firestore_restore_changes_no_document() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-fs-one"), data.path());
    p.ok(&["up", "firestore"]);
    let vars = env(&p);
    let rt = runtime();
    put_doc(&rt, &vars, "a/1", json!({ "n": { "integerValue": "1" } }));
    put_doc(&rt, &vars, "a/2", json!({ "n": { "integerValue": "2" } }));
    put_doc(
        &rt,
        &vars,
        "a/1/sub/x",
        json!({ "s": { "stringValue": "x" } }),
    );
    let saved = firestore_state(&rt, &vars);
    p.ok(&["snapshot", "save", "good", "--only", "firestore"]);

    // A copy of it whose second document has a field the emulator refuses.
    let root = data.path().join("vibedev/snapshots").join(&p.name);
    doctored(
        &root,
        "good",
        "bad",
        "firestore",
        "documents.jsonl",
        |text| {
            let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
            assert_eq!(lines.len(), 3, "{text}");
            let mut doc: Value = serde_json::from_str(&lines[1]).unwrap();
            doc["fields"]["n"] = json!({ "integerValue": "not a number" });
            lines[1] = doc.to_string();
            format!("{}\n", lines.join("\n"))
        },
    );

    // Changed since the save: one document gone, one new, one edited.
    delete_doc(&rt, &vars, "a/2");
    put_doc(&rt, &vars, "b/9", json!({ "n": { "integerValue": "9" } }));
    put_doc(&rt, &vars, "a/1", json!({ "n": { "integerValue": "100" } }));
    let changed = firestore_state(&rt, &vars);
    assert_ne!(changed, saved);

    let refused = p.run(&["snapshot", "restore", "bad", "--only", "firestore"]);
    assert_ne!(refused.code, Some(0), "{refused}");
    assert!(
        refused.stderr.contains("cannot restore firestore")
            && refused
                .stderr
                .contains("firestore keeps its data as it was"),
        "{refused}"
    );
    assert_eq!(firestore_state(&rt, &vars), changed);

    p.ok(&["snapshot", "restore", "good", "--only", "firestore"]);
    assert_eq!(firestore_state(&rt, &vars), saved);
}

fn renamed_compose() -> String {
    let img = images();
    format!(
        "services:
  db:
    image: {}
    environment: {{POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres, POSTGRES_DB: postgres}}
    ports: [\"5432\"]
    x-vibedev: {{kind: postgres}}
  cache:
    image: {}
    ports: [\"6379\"]
    x-vibedev: {{kind: redis}}
  docs:
    image: {}
    command: [\"gcloud\", \"emulators\", \"firestore\", \"start\", \"--host-port=0.0.0.0:8080\"]
    ports: [\"8080\"]
    x-vibedev: {{kind: firestore}}
  blobs:
    image: {}
    command: [\"-scheme\", \"http\", \"-port\", \"4443\", \"-backend\", \"memory\"]
    ports: [\"4443\"]
    x-vibedev: {{kind: gcs}}
",
        img.postgres, img.redis, img.firestore, img.gcs
    )
}

#[test]
fn renamed_services_restore_and_projects_never_mix() {
    let data = tempfile::tempdir().unwrap();
    let renamed = TestProject::empty("snap-renamed");
    renamed.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"stack.yml\"\n", renamed.name),
    );
    renamed.write("stack.yml", &renamed_compose());
    let renamed = with_data_dir(renamed, data.path());
    renamed.ok(&["up"]);
    let other = with_data_dir(TestProject::new("snap-other"), data.path());
    other.ok(&["up", "postgres", "redis"]);

    let rt = runtime();
    let vars = env(&renamed);
    fill(&rt, &vars);
    let before = (
        pg_state(&rt, &vars["DATABASE_URL"]),
        firestore_state(&rt, &vars),
        gcs_state(&rt, &vars),
        redis_state(&vars["REDIS_URL"]),
    );
    let save = renamed.ok(&["snapshot", "save", "same"]);
    for service in ["db", "cache", "docs", "blobs"] {
        assert!(
            save.stderr.contains(&format!("{service:<10} saved")),
            "{service} in\n{save}"
        );
    }
    // The other project's snapshot of the same name is its own.
    let other_vars = env(&other);
    let mut conn = redis_conn(&other_vars["REDIS_URL"]);
    redis::cmd("SET")
        .arg("other")
        .arg("1")
        .exec(&mut conn)
        .unwrap();
    let other_save = other.ok(&["snapshot", "save", "same"]);
    assert!(
        other_save
            .stderr
            .contains("firestore is not running: not in the snapshot"),
        "{other_save}"
    );
    let listed = |p: &TestProject| -> Vec<String> {
        let mut services: Vec<String> = p.ok(&["snapshot", "list", "--json"]).json()["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["stores"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|st| st["service"].as_str().unwrap().to_string())
            })
            .collect();
        services.sort();
        services
    };
    assert_eq!(listed(&renamed), ["blobs", "cache", "db", "docs"]);
    assert_eq!(listed(&other), ["postgres", "redis"]);
    // Only this project's snapshot is in its folder.
    let no_snapshot = other.run(&["snapshot", "restore", "nope"]);
    assert!(
        no_snapshot
            .stderr
            .contains("snapshots of this project: same"),
        "{no_snapshot}"
    );

    change_everything(&rt, &vars);
    renamed.ok(&[
        "snapshot",
        "restore",
        "same",
        "--only",
        "db,docs,blobs,cache",
    ]);
    assert_eq!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);
    assert_eq!(firestore_state(&rt, &vars), before.1);
    assert_eq!(gcs_state(&rt, &vars), before.2);
    assert_eq!(redis_state(&vars["REDIS_URL"]), before.3);

    // A word --only does not know is refused, naming what it knows.
    let bad = renamed.run(&["snapshot", "restore", "same", "--only", "mysql"]);
    assert_eq!(bad.code, Some(2), "{bad}");
    assert!(
        bad.stderr.contains("--only takes any of") && bad.stderr.contains("cache"),
        "{bad}"
    );

    // The other project's restore gives its own Redis back, not this one's.
    redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
    other.ok(&["snapshot", "restore", "same"]);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert_eq!(keys, ["other"]);
}

/// Writes `drizzle/` with these `(tag, when, sql)` migrations as drizzle-kit does.
fn write_migrations(p: &TestProject, migrations: &[(&str, i64, &str)]) {
    let dir = p.path().join("drizzle");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("meta")).unwrap();
    let entries: Vec<Value> = migrations
        .iter()
        .enumerate()
        .map(|(idx, (tag, when, _))| {
            json!({"idx": idx, "version": "7", "when": when, "tag": tag, "breakpoints": true})
        })
        .collect();
    std::fs::write(
        dir.join("meta/_journal.json"),
        serde_json::to_string_pretty(
            &json!({"version": "7", "dialect": "postgresql", "entries": entries}),
        )
        .unwrap(),
    )
    .unwrap();
    for (tag, _, sql) in migrations {
        std::fs::write(dir.join(format!("{tag}.sql")), sql).unwrap();
    }
}

const MIGRATIONS: [(&str, i64, &str); 3] = [
    (
        "0000_items",
        1_790_000_000_000,
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);",
    ),
    (
        "0001_price",
        1_790_000_100_000,
        "ALTER TABLE items ADD COLUMN price integer DEFAULT 0 NOT NULL;",
    ),
    (
        "0002_orders",
        1_790_000_200_000,
        "CREATE TABLE orders (id serial PRIMARY KEY, item integer REFERENCES items (id));",
    ),
];

/// The columns of `table`, in order.
fn columns(rt: &tokio::runtime::Runtime, url: &str, table: &str) -> Vec<String> {
    let c = pg(rt, url);
    rt.block_on(c.query(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' \
         AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    ))
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn item_names(rt: &tokio::runtime::Runtime, url: &str) -> Vec<String> {
    let c = pg(rt, url);
    rt.block_on(c.query("SELECT name FROM items ORDER BY id", &[]))
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn an_older_snapshot_lists_its_pending_migrations_and_a_newer_one_warns_of_drift() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-migrations"), data.path());
    write_migrations(&p, &MIGRATIONS[..1]);
    p.ok(&["up", "postgres"]);
    let rt = runtime();
    let url = env(&p)["DATABASE_URL"].clone();
    let c = pg(&rt, &url);
    rt.block_on(c.batch_execute("INSERT INTO items (name) VALUES ('a'), ('b')"))
        .unwrap();
    drop(c);
    let save = p.ok(&["snapshot", "save", "old"]);
    assert!(save.stdout.contains("saved snapshot old"), "{save}");

    // The folder moves on two migrations; the database follows.
    write_migrations(&p, &MIGRATIONS);
    p.ok(&["migrate"]);
    assert_eq!(columns(&rt, &url, "items"), ["id", "name", "price"]);
    p.ok(&["snapshot", "save", "new"]);

    // The old snapshot comes back as it was, and says what it lacks.
    let restore = p.ok(&["snapshot", "restore", "old"]);
    assert!(
        restore.stderr.contains(
            "postgres is 2 migrations behind the migrations folder: 0001_price, 0002_orders"
        ),
        "{restore}"
    );
    assert!(restore.stderr.contains("--migrate"), "{restore}");
    assert_eq!(columns(&rt, &url, "items"), ["id", "name"]);
    assert!(columns(&rt, &url, "orders").is_empty());
    let status = p.run(&["migrate", "status", "--exit-code"]);
    assert!(status.stdout.contains("1 applied, 2 pending"), "{status}");

    // --migrate applies them on top of the restored rows.
    let migrated = p.ok(&["snapshot", "restore", "old", "--migrate"]);
    assert!(
        migrated.stdout.contains("applied 2 migrations"),
        "{migrated}"
    );
    assert!(!migrated.stderr.contains("behind"), "{migrated}");
    assert_eq!(columns(&rt, &url, "items"), ["id", "name", "price"]);
    assert_eq!(columns(&rt, &url, "orders"), ["id", "item"]);
    assert_eq!(item_names(&rt, &url), ["a", "b"]);
    p.ok(&["migrate", "status", "--exit-code"]);

    // A checkout whose folder stops at the first migration: the newer snapshot is drift.
    write_migrations(&p, &MIGRATIONS[..1]);
    let drift = p.ok(&["snapshot", "restore", "new"]);
    assert!(drift.stderr.contains("drift: snapshot new"), "{drift}");
    assert!(drift.stderr.contains("(taken at 0002_orders)"), "{drift}");
    assert!(
        drift
            .stderr
            .contains("records 2 migrations the folder does not list"),
        "{drift}"
    );
    assert!(!drift.stderr.contains("behind"), "{drift}");
    assert_eq!(columns(&rt, &url, "orders"), ["id", "item"]);
}

/// Names of the project's snapshots (oldest first) with the command an automatic one was
/// taken before.
fn snapshots(p: &TestProject) -> Vec<(String, Option<String>)> {
    p.ok(&["snapshot", "list", "--json"]).json()["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["auto"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn reset_db_and_migrate_save_the_database_first_and_restore_last_undoes_them() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-auto"), data.path());
    p.write_config("[snapshots]\nkeep = 2\n");
    write_migrations(&p, &MIGRATIONS[..1]);
    p.ok(&["up", "postgres"]);
    let rt = runtime();
    let url = env(&p)["DATABASE_URL"].clone();
    let c = pg(&rt, &url);
    rt.block_on(c.batch_execute("INSERT INTO items (name) VALUES ('a'), ('b')"))
        .unwrap();
    drop(c);
    p.ok(&["snapshot", "save", "mine"]);

    let reset = p.ok(&["reset-db", "--yes"]);
    assert!(
        reset
            .stderr
            .contains("saved automatic snapshot auto-reset-db-"),
        "{reset}"
    );
    assert!(reset.stderr.contains("snapshot restore --last"), "{reset}");
    assert!(item_names(&rt, &url).is_empty());
    let listed = snapshots(&p);
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert_eq!(listed[1].1.as_deref(), Some("reset-db"));
    let table = p.ok(&["snapshot", "list"]);
    assert!(table.stdout.contains("before reset-db"), "{table}");

    let undo = p.ok(&["snapshot", "restore", "--last"]);
    assert!(
        undo.stdout
            .contains(&format!("restored snapshot {}", listed[1].0)),
        "{undo}"
    );
    assert_eq!(item_names(&rt, &url), ["a", "b"]);

    // migrate saves only when it has something to apply.
    write_migrations(&p, &MIGRATIONS);
    let migrate = p.ok(&["migrate"]);
    assert!(
        migrate
            .stderr
            .contains("saved automatic snapshot auto-migrate-"),
        "{migrate}"
    );
    let again = p.ok(&["migrate"]);
    assert!(!again.stderr.contains("automatic snapshot"), "{again}");
    assert_eq!(snapshots(&p).len(), 3);

    // A third automatic one: the oldest goes (keep = 2); the one saved by hand stays.
    p.ok(&["reset-db", "--yes"]);
    let listed = snapshots(&p);
    let autos: Vec<&str> = listed
        .iter()
        .filter_map(|(_, auto)| auto.as_deref())
        .collect();
    assert_eq!(autos, ["migrate", "reset-db"], "{listed:?}");
    assert_eq!(listed[0], ("mine".to_string(), None));
    // --last is the newest: the database as migrate left it, rows and all.
    p.ok(&["snapshot", "restore", "--last"]);
    assert_eq!(item_names(&rt, &url), ["a", "b"]);
    assert_eq!(columns(&rt, &url, "items"), ["id", "name", "price"]);

    // `auto = false` turns them off; the name and --last go together with nothing else.
    p.write_config("[snapshots]\nauto = false\n");
    let reset = p.ok(&["reset-db", "--yes"]);
    assert!(!reset.stderr.contains("automatic snapshot"), "{reset}");
    assert_eq!(snapshots(&p).len(), 3);
    let both = p.run(&["snapshot", "restore", "mine", "--last"]);
    assert_eq!(both.code, Some(2), "{both}");
}

/// The folder names under the project's snapshot folder (snapshots and anything left behind).
fn snapshot_folders(root: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn an_exported_snapshot_comes_back_after_down_volumes_and_damaged_files_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-export"), data.path());
    p.ok(&["up"]);
    let vars = env(&p);
    let rt = runtime();
    fill(&rt, &vars);
    let before = (
        pg_state(&rt, &vars["DATABASE_URL"]),
        firestore_state(&rt, &vars),
        gcs_state(&rt, &vars),
        redis_state(&vars["REDIS_URL"]),
    );
    p.ok(&["snapshot", "save", "base"]);
    let file = files.path().join("base.vdsnap");
    let file_arg = file.to_str().unwrap();
    let export = p.ok(&["snapshot", "export", "base", file_arg]);
    assert!(export.stdout.contains("exported snapshot base"), "{export}");
    let again = p.run(&["snapshot", "export", "base", file_arg]);
    assert_eq!(again.code, Some(2), "{again}");
    assert!(again.stderr.contains("already exists"), "{again}");

    // Data volumes go; snapshots stay.
    let down = p.ok(&["down", "--volumes"]);
    assert!(down.stdout.contains("removed"), "{down}");
    assert!(down.stderr.contains("1 snapshot kept"), "{down}");
    p.ok(&["up"]);
    let vars = env(&p);
    assert_ne!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);
    assert!(firestore_state(&rt, &vars).is_empty());
    let root = data.path().join("vibedev/snapshots").join(&p.name);
    assert_eq!(snapshot_folders(&root), ["base"]);

    // Damaged files are refused with the reason, and nothing changes.
    let bytes = std::fs::read(&file).unwrap();
    let mut corrupt = bytes.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid] ^= 0x40;
    for (what, content, reason) in [
        ("corrupt", &corrupt[..], "it is corrupt"),
        (
            "truncated",
            &bytes[..bytes.len() * 2 / 3],
            "it is truncated",
        ),
    ] {
        let bad = files.path().join(format!("{what}.vdsnap"));
        std::fs::write(&bad, content).unwrap();
        let run = p.run(&["snapshot", "import", bad.to_str().unwrap(), what]);
        assert_eq!(run.code, Some(1), "{run}");
        assert!(
            run.stderr.contains("cannot be imported") && run.stderr.contains(reason),
            "{run}"
        );
        assert!(run.stderr.contains("nothing was changed"), "{run}");
        assert_eq!(snapshot_folders(&root), ["base"], "{what}");
    }

    // The file, imported under another name, restores every store as it was saved.
    let import = p.ok(&["snapshot", "import", file_arg, "shared"]);
    assert!(
        import.stdout.contains("imported snapshot shared"),
        "{import}"
    );
    assert_eq!(snapshot_folders(&root), ["base", "shared"]);
    p.ok(&["snapshot", "restore", "shared"]);
    assert_eq!(pg_state(&rt, &vars["DATABASE_URL"]), before.0);
    assert_eq!(firestore_state(&rt, &vars), before.1);
    assert_eq!(gcs_state(&rt, &vars), before.2);
    assert_eq!(redis_state(&vars["REDIS_URL"]), before.3);
    // Imported under its own name, it meets the snapshot it came from.
    let twice = p.run(&["snapshot", "import", file_arg]);
    assert_eq!(twice.code, Some(2), "{twice}");
    assert!(
        twice.stderr.contains("already has a snapshot \"base\""),
        "{twice}"
    );

    // --snapshots goes with --volumes only, and removes this project's snapshots.
    let alone = p.run(&["down", "--snapshots"]);
    assert_eq!(alone.code, Some(2), "{alone}");
    assert_eq!(snapshot_folders(&root), ["base", "shared"]);
    let all = p.ok(&["down", "--volumes", "--snapshots"]);
    assert!(all.stdout.contains("removed 2 snapshots"), "{all}");
    assert!(!root.exists());
    let list = p.ok(&["snapshot", "list"]);
    assert!(list.stdout.contains("has no snapshots yet"), "{list}");
}

/// The advisory lock a reset of app database `db` holds (vibedev's key: the first 8 bytes of
/// SHA-256 of `vibedev:reset:<db>`, big-endian).
fn reset_lock_key(db: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("vibedev:reset:{db}").as_bytes());
    i64::from_be_bytes(digest[..8].try_into().unwrap())
}

#[test]
fn ctrl_c_during_a_postgres_restore_leaves_the_previous_data_and_says_so() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-ctrl-c"), data.path());
    p.ok(&["up", "postgres"]);
    let rt = runtime();
    let url = env(&p)["DATABASE_URL"].clone();
    let c = pg(&rt, &url);
    rt.block_on(c.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 5000) g;",
    ))
    .unwrap();
    p.ok(&["snapshot", "save", "base"]);
    let saved = pg_state(&rt, &url);
    rt.block_on(
        c.batch_execute("INSERT INTO items (name) VALUES ('late'); CREATE TABLE newer (x int);"),
    )
    .unwrap();
    drop(c);
    let current = pg_state(&rt, &url);

    // The test holds the lock a reset of the app database takes: the restore builds the new
    // database beside the app's, then waits for the lock to swap it in. Ctrl-C comes then.
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let admin = pg(
        &rt,
        &format!("postgres://postgres:postgres@{host_port}/postgres"),
    );
    let key = reset_lock_key("vibesdk");
    rt.block_on(admin.execute("SELECT pg_advisory_lock($1)", &[&key]))
        .unwrap();
    let child = p
        .cmd(&["snapshot", "restore", "base"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = || -> bool {
        rt.block_on(admin.query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() \
               AND query LIKE 'SELECT pg_try_advisory_lock%') \
             AND EXISTS (SELECT 1 FROM pg_database WHERE datname = 'vibesdk__vibedev_restore')",
            &[],
        ))
        .unwrap()
        .get(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !waiting() {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never came to wait for the swap"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(130), "{run}");
    assert!(
        run.stderr
            .contains("interrupted: postgres keeps its data as it was"),
        "{run}"
    );
    assert!(
        run.stderr.contains("vibedev snapshot restore base` again"),
        "{run}"
    );
    assert_eq!(pg_state(&rt, &url), current);
    let staging: i64 = rt
        .block_on(admin.query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'vibesdk__vibedev_%'",
            &[],
        ))
        .unwrap()
        .get(0);
    assert_eq!(staging, 0, "what the restore was building is gone");

    // Once the lock is free, the same restore goes through.
    rt.block_on(admin.execute("SELECT pg_advisory_unlock($1)", &[&key]))
        .unwrap();
    p.ok(&["snapshot", "restore", "base"]);
    assert_eq!(pg_state(&rt, &url), saved);
}

/// Waits until no client session is connected to database `db` (a closed client's session
/// ends on the server a moment after the client is dropped).
fn wait_unconnected(rt: &tokio::runtime::Runtime, admin: &tokio_postgres::Client, db: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let n: i64 = rt
            .block_on(admin.query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND backend_type = 'client backend'",
                &[&db],
            ))
            .unwrap()
            .get(0);
        if n == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sessions on {db} never ended"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The comment on database `db`, `None` when the database does not exist.
fn database_comment(
    rt: &tokio::runtime::Runtime,
    admin: &tokio_postgres::Client,
    db: &str,
) -> Option<Option<String>> {
    rt.block_on(admin.query_opt(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
        &[&db],
    ))
    .unwrap()
    .map(|r| r.get(0))
}

#[test]
fn a_copy_kept_in_the_server_restores_the_newest_save_and_the_files_restore_the_rest() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-kept"), data.path());
    p.ok(&["up", "postgres"]);
    let rt = runtime();
    let url = env(&p)["DATABASE_URL"].clone();
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let admin = pg(
        &rt,
        &format!("postgres://postgres:postgres@{host_port}/postgres"),
    );
    let owner = |rt: &tokio::runtime::Runtime| -> String {
        rt.block_on(admin.query_one(
            "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = 'vibesdk'",
            &[],
        ))
        .unwrap()
        .get(0)
    };
    let app_owner = owner(&rt);
    let write = |sql: &str| {
        let c = pg(&rt, &url);
        rt.block_on(c.batch_execute(sql)).unwrap();
        drop(c);
        wait_unconnected(&rt, &admin, "vibesdk");
    };
    write(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
         CREATE INDEX items_name ON items (name);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 3000) g;",
    );
    let one = pg_state(&rt, &url);
    wait_unconnected(&rt, &admin, "vibesdk");

    // Nothing is connected to the app database: the save keeps a copy of it in the server.
    p.ok(&["snapshot", "save", "one"]);
    let kept = "vibesdk__vibedev_kept";
    let first_mark = database_comment(&rt, &admin, kept)
        .expect("a kept copy")
        .unwrap();
    let meta = std::fs::read_to_string(
        data.path()
            .join("vibedev/snapshots")
            .join(&p.name)
            .join("one/stores/postgres/meta.json"),
    )
    .unwrap();
    assert!(meta.contains("\"kept\""), "{meta}");

    write("INSERT INTO items (name) VALUES ('two'); CREATE TABLE newer (x int);");
    let two = pg_state(&rt, &url);
    wait_unconnected(&rt, &admin, "vibesdk");
    p.ok(&["snapshot", "save", "two"]);
    let second_mark = database_comment(&rt, &admin, kept)
        .expect("a kept copy")
        .unwrap();
    assert_ne!(
        first_mark, second_mark,
        "the newer save's copy replaced the older"
    );

    // The older snapshot's copy is gone: it comes back from its files, the newer copy stays.
    write("DROP TABLE items;");
    p.ok(&["snapshot", "restore", "one"]);
    assert_eq!(pg_state(&rt, &url), one);
    assert_eq!(
        database_comment(&rt, &admin, kept),
        Some(Some(second_mark.clone()))
    );

    // While another vibedev (another machine on this engine) holds the copy's lock, a restore
    // leaves the copy alone and restores from the files.
    let copy_key = {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(b"vibedev:snapshot-copy:vibesdk");
        i64::from_be_bytes(digest[..8].try_into().unwrap())
    };
    rt.block_on(admin.execute("SELECT pg_advisory_lock($1)", &[&copy_key]))
        .unwrap();
    write("INSERT INTO items (name) VALUES ('three');");
    p.ok(&["snapshot", "restore", "two"]);
    assert_eq!(pg_state(&rt, &url), two);
    assert_eq!(
        database_comment(&rt, &admin, kept),
        Some(Some(second_mark.clone()))
    );
    rt.block_on(admin.execute("SELECT pg_advisory_unlock($1)", &[&copy_key]))
        .unwrap();

    // The newest snapshot's copy is swapped in (and so used up); the data is the saved data,
    // owned as before, without the copy's mark.
    write("INSERT INTO items (name) VALUES ('three');");
    p.ok(&["snapshot", "restore", "two"]);
    assert_eq!(pg_state(&rt, &url), two);
    assert_eq!(database_comment(&rt, &admin, kept), None);
    assert_eq!(database_comment(&rt, &admin, "vibesdk"), Some(None));
    assert_eq!(owner(&rt), app_owner);
    let leftovers: i64 = rt
        .block_on(admin.query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'vibesdk\\_\\_vibedev\\_%'",
            &[],
        ))
        .unwrap()
        .get(0);
    assert_eq!(leftovers, 0);
    // Used up, the copy is no longer there: the same snapshot restores from its files.
    write("DELETE FROM items;");
    p.ok(&["snapshot", "restore", "two"]);
    assert_eq!(pg_state(&rt, &url), two);

    // A session on the app database (a running app): the save keeps no copy and ends no
    // session; the snapshot restores from its files.
    let app = pg(&rt, &url);
    rt.block_on(app.batch_execute("INSERT INTO items (name) VALUES ('four')"))
        .unwrap();
    let four = pg_state(&rt, &url);
    p.ok(&["snapshot", "save", "four"]);
    assert_eq!(database_comment(&rt, &admin, kept), None);
    let alive: i64 = rt
        .block_on(app.query_one("SELECT count(*) FROM items", &[]))
        .unwrap()
        .get(0);
    assert!(alive > 0);
    drop(app);
    write("DELETE FROM items;");
    p.ok(&["snapshot", "restore", "four"]);
    assert_eq!(pg_state(&rt, &url), four);
}

/// A project whose app database holds `items` (3000 rows) and `slow`, whose rows pass a check
/// that sleeps only in the database a restore builds: a restore from files spends seconds
/// copying `slow`'s rows, long enough to stop it there. Returns (url, admin client on
/// `postgres`, the data as saved in `base`, the data changed since).
fn slow_restore_project(
    rt: &tokio::runtime::Runtime,
    p: &TestProject,
) -> (String, tokio_postgres::Client, Vec<String>, Vec<String>) {
    p.ok(&["up", "postgres"]);
    let url = env(p)["DATABASE_URL"].clone();
    let c = pg(rt, &url);
    rt.block_on(c.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 3000) g;
         CREATE FUNCTION gate() RETURNS boolean LANGUAGE plpgsql AS $$
         BEGIN
           IF current_database() LIKE '%\\_\\_vibedev\\_restore' THEN PERFORM pg_sleep(0.02); END IF;
           RETURN true;
         END $$;
         CREATE TABLE slow (x int CHECK (gate()));
         INSERT INTO slow SELECT g FROM generate_series(1, 400) g;",
    ))
    .unwrap();
    // The client stays connected: the save keeps no copy in the server, the restore builds
    // the database from the files.
    p.ok(&["snapshot", "save", "base"]);
    let saved = pg_state(rt, &url);
    rt.block_on(
        c.batch_execute("INSERT INTO items (name) VALUES ('late'); CREATE TABLE newer (x int);"),
    )
    .unwrap();
    drop(c);
    let current = pg_state(rt, &url);
    assert_ne!(saved, current);
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let admin = pg(
        rt,
        &format!("postgres://postgres:postgres@{host_port}/postgres"),
    );
    (url, admin, saved, current)
}

/// The same tables, rows and indexes as `before`. A server that crashed may hand out a
/// sequence's values beyond what it had handed out (PostgreSQL logs sequences ahead), never
/// below.
fn assert_same_after_a_crash(after: &[String], before: &[String]) {
    let (seq_after, seq_before) = (after.last().unwrap(), before.last().unwrap());
    assert_eq!(after[..after.len() - 1], before[..before.len() - 1]);
    let value = |s: &str| s.rsplit(' ').next().unwrap().parse::<i64>().unwrap();
    assert!(
        value(seq_after) >= value(seq_before),
        "{seq_after} < {seq_before}"
    );
}

/// Waits until a restore copies the rows of `slow` into the database it builds.
fn wait_copying_slow(rt: &tokio::runtime::Runtime, admin: &tokio_postgres::Client) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let copying: bool = rt
            .block_on(admin.query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = 'vibesdk__vibedev_restore' \
                 AND query LIKE 'COPY%slow%FROM STDIN%')",
                &[],
            ))
            .unwrap()
            .get(0);
        if copying {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never came to copy the rows"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The databases a restore builds or replaces beside the app database.
fn restore_leftovers(rt: &tokio::runtime::Runtime, admin: &tokio_postgres::Client) -> Vec<String> {
    rt.block_on(admin.query(
        "SELECT datname::text FROM pg_database WHERE datname IN ('vibesdk__vibedev_restore', 'vibesdk__vibedev_replaced') ORDER BY 1",
        &[],
    ))
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[test]
fn a_killed_postgres_during_a_restore_leaves_the_previous_data_and_says_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-kill-pg"), data.path());
    let rt = runtime();
    let (_, admin, saved, current) = slow_restore_project(&rt, &p);
    let child = p
        .cmd(&["snapshot", "restore", "base"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_copying_slow(&rt, &admin);
    drop(admin);
    support::docker(&["kill", &support::container_id(&p, "postgres")]);
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("cannot restore postgres: ")
            && run.stderr.contains("; postgres keeps its data as it was"),
        "{run}"
    );
    assert!(
        run.stderr.contains(
            "hint: postgres stopped during the restore: `vibedev up` starts it again, then `vibedev snapshot restore base` restores the snapshot"
        ),
        "{run}"
    );

    // Up again, the app database holds what it held before the restore; the database the
    // restore was building is still beside it until the next restore, which removes it first.
    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    assert_same_after_a_crash(&pg_state(&rt, &url), &current);
    let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
    let admin = pg(
        &rt,
        &format!("postgres://postgres:postgres@{host_port}/postgres"),
    );
    assert_eq!(restore_leftovers(&rt, &admin), ["vibesdk__vibedev_restore"]);
    p.ok(&["snapshot", "restore", "base"]);
    assert_eq!(pg_state(&rt, &url), saved);
    assert!(restore_leftovers(&rt, &admin).is_empty());
}

#[test]
fn a_killed_vibedev_during_a_restore_leaves_the_previous_data_and_the_next_restore_cleans_up() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-kill-vd"), data.path());
    let rt = runtime();
    let (url, admin, saved, current) = slow_restore_project(&rt, &p);
    let mut child = p
        .cmd(&["snapshot", "restore", "base"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_copying_slow(&rt, &admin);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(pg_state(&rt, &url), current);
    assert_eq!(restore_leftovers(&rt, &admin), ["vibesdk__vibedev_restore"]);

    // No lock is left held and nothing half built is in the way: the next restore goes through.
    p.ok(&["snapshot", "restore", "base"]);
    assert_eq!(pg_state(&rt, &url), saved);
    assert!(restore_leftovers(&rt, &admin).is_empty());
}

#[test]
fn a_killed_postgres_before_a_kept_copy_is_swapped_in_keeps_the_data_and_the_copy() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-kill-kept"), data.path());
    p.ok(&["up", "postgres"]);
    let rt = runtime();
    let url = env(&p)["DATABASE_URL"].clone();
    let admin_url = |url: &str| {
        let host_port = url.split('@').nth(1).unwrap().split('/').next().unwrap();
        format!("postgres://postgres:postgres@{host_port}/postgres")
    };
    let admin = pg(&rt, &admin_url(&url));
    let c = pg(&rt, &url);
    rt.block_on(c.batch_execute(
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL);
         INSERT INTO items (name) SELECT 'item ' || g FROM generate_series(1, 3000) g;",
    ))
    .unwrap();
    drop(c);
    wait_unconnected(&rt, &admin, "vibesdk");
    let saved = pg_state(&rt, &url);
    wait_unconnected(&rt, &admin, "vibesdk");
    p.ok(&["snapshot", "save", "one"]);
    let kept = "vibesdk__vibedev_kept";
    let mark = database_comment(&rt, &admin, kept).expect("a kept copy");
    let c = pg(&rt, &url);
    rt.block_on(c.batch_execute("DELETE FROM items WHERE id > 10"))
        .unwrap();
    drop(c);
    let current = pg_state(&rt, &url);

    // The restore has nothing to build: it waits for the lock a reset holds, then swaps the
    // kept copy in. The server is killed while it waits.
    let key = reset_lock_key("vibesdk");
    rt.block_on(admin.execute("SELECT pg_advisory_lock($1)", &[&key]))
        .unwrap();
    let child = p
        .cmd(&["snapshot", "restore", "one"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !rt
        .block_on(admin.query_one(
            // Holding the kept copy's lock and trying another: the reset's.
            "SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND a.pid <> pg_backend_pid() \
             AND a.query LIKE 'SELECT pg_try_advisory_lock%')",
            &[],
        ))
        .unwrap()
        .get::<_, bool>(0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never waited"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The test's session (holding the lock) ends with the server.
    support::docker(&["kill", &support::container_id(&p, "postgres")]);
    drop(admin);
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("postgres keeps its data as it was")
            && run.stderr.contains("postgres stopped during the restore"),
        "{run}"
    );

    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    assert_same_after_a_crash(&pg_state(&rt, &url), &current);
    let admin = pg(&rt, &admin_url(&url));
    assert_eq!(database_comment(&rt, &admin, kept), Some(mark));
    // The copy is still the snapshot's: the next restore swaps it in (and so uses it up).
    wait_unconnected(&rt, &admin, "vibesdk");
    p.ok(&["snapshot", "restore", "one"]);
    assert_eq!(pg_state(&rt, &url), saved);
    assert_eq!(database_comment(&rt, &admin, kept), None);
    assert!(restore_leftovers(&rt, &admin).is_empty());
}

/// (keys in database 0, the value of `which`): enough to tell the saved keys from the later.
fn redis_mark(url: &str) -> (i64, Option<String>) {
    let mut conn = redis_conn(url);
    let n: i64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    let which: Option<String> = redis::cmd("GET").arg("which").query(&mut conn).unwrap();
    (n, which)
}

#[test]
fn a_killed_redis_during_or_after_a_restore_comes_back_with_the_previous_or_the_restored_keys() {
    let data = tempfile::tempdir().unwrap();
    let p = with_data_dir(TestProject::new("snap-kill-redis"), data.path());
    p.ok(&["up", "redis"]);
    let url = env(&p)["REDIS_URL"].clone();
    let mut conn = redis_conn(&url);
    // Enough keys that the restore spends a moment queuing them in its transaction.
    let value = "v".repeat(200);
    for chunk in (0..200_000).collect::<Vec<u32>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for i in chunk {
            pipe.cmd("SET").arg(format!("k:{i}")).arg(&value).ignore();
        }
        pipe.exec(&mut conn).unwrap();
    }
    redis::cmd("SET")
        .arg("which")
        .arg("saved")
        .exec(&mut conn)
        .unwrap();
    p.ok(&["snapshot", "save", "base"]);
    let saved = redis_mark(&url);
    redis::cmd("FLUSHALL").exec(&mut conn).unwrap();
    redis::cmd("MSET")
        .arg("which")
        .arg("current")
        .arg("c")
        .arg("1")
        .exec(&mut conn)
        .unwrap();
    let current = redis_mark(&url);
    assert_eq!(current, (2, Some("current".into())));

    // Killed while the restore queues its keys: the keys before the restore come back.
    let child = p
        .cmd(&["snapshot", "restore", "base"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query(&mut conn).unwrap();
        let queuing = clients.lines().any(|l| {
            l.split(' ').any(|f| {
                f.strip_prefix("multi=")
                    .is_some_and(|n| n.parse::<i64>().unwrap_or(0) > 1000)
            })
        });
        if queuing {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the restore never came to queue its keys"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    support::docker(&["kill", &support::container_id(&p, "redis")]);
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("redis keeps its data as it was")
            && run.stderr.contains("redis stopped during the restore"),
        "{run}"
    );
    p.ok(&["up", "redis"]);
    let url = env(&p)["REDIS_URL"].clone();
    assert_eq!(redis_mark(&url), current);

    // Killed right after a restore: the restored keys come back.
    p.ok(&["snapshot", "restore", "base"]);
    assert_eq!(redis_mark(&url), saved);
    support::docker(&["kill", &support::container_id(&p, "redis")]);
    p.ok(&["up", "redis"]);
    let url = env(&p)["REDIS_URL"].clone();
    assert_eq!(redis_mark(&url), saved);
}

/// Postgres (`db`), Redis (`cache`) and `writer`: a shell loop that writes an increasing
/// counter into both, the row into Postgres first, then the key into Redis.
fn writer_compose() -> String {
    let img = images();
    format!(
        "services:
  db:
    image: {pg}
    environment: {{POSTGRES_USER: postgres, POSTGRES_PASSWORD: postgres, POSTGRES_DB: vibesdk}}
    ports: [\"5432\"]
    x-vibedev: {{kind: postgres}}
  cache:
    image: {redis}
    ports: [\"6379\"]
    x-vibedev: {{kind: redis}}
  writer:
    image: {pg}
    environment: {{PGPASSWORD: postgres}}
    entrypoint: [\"bash\", \"-c\"]
    command:
      - |
        until psql -h db -U postgres -d vibesdk -qc 'CREATE TABLE IF NOT EXISTS counter (n int)'; do sleep 0.2; done
        exec 3<>/dev/tcp/cache/6379
        i=0
        while true; do
          i=$$((i+1))
          psql -h db -U postgres -d vibesdk -qc \"INSERT INTO counter VALUES ($$i)\" || exit 1
          printf 'SET counter %s\\r\\n' \"$$i\" >&3
          read -r reply <&3
        done
",
        pg = img.postgres,
        redis = img.redis
    )
}

/// `docker inspect`'s State.Paused of a project's service.
fn paused(p: &TestProject, service: &str) -> bool {
    support::docker(&[
        "inspect",
        "-f",
        "{{.State.Paused}}",
        &support::container_id(p, service),
    ]) == "true"
}

/// The app database as the admin user (`postgres`).
fn admin_database_url(vars: &BTreeMap<String, String>) -> String {
    let url = &vars["DATABASE_URL"];
    let host_port = url.split('@').nth(1).unwrap();
    format!("postgres://postgres:postgres@{host_port}")
}

/// The writer's counter in Postgres (its largest row) and in Redis.
fn counters(rt: &tokio::runtime::Runtime, vars: &BTreeMap<String, String>) -> (i64, i64) {
    let c = pg(rt, &admin_database_url(vars));
    let in_pg: Option<i32> = rt
        .block_on(c.query_one("SELECT max(n) FROM counter", &[]))
        .unwrap()
        .get(0);
    let mut conn = redis_conn(&vars["REDIS_URL"]);
    let in_redis: Option<i64> = redis::cmd("GET").arg("counter").query(&mut conn).unwrap();
    (i64::from(in_pg.unwrap_or(0)), in_redis.unwrap_or(0))
}

/// A project on [`writer_compose`], up, with the writer past its 20th write; a client holds
/// `filler` locked, so a save waits for it once it has paused the writer. Returns the client
/// (its transaction holds the lock; commit it to let the save go on).
fn writer_project(
    rt: &tokio::runtime::Runtime,
    data: &std::path::Path,
    tag: &str,
) -> (TestProject, tokio_postgres::Client) {
    let p = TestProject::empty(tag);
    p.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"stack.yml\"\n", p.name),
    );
    p.write("stack.yml", &writer_compose());
    let p = with_data_dir(p, data);
    p.ok(&["up"]);
    let vars = env(&p);
    assert!(vars["DATABASE_URL"].ends_with("/vibesdk"), "{vars:?}");
    let admin = pg(rt, &admin_database_url(&vars));
    until("the writer writes", || {
        rt.block_on(admin.query_one("SELECT count(*) FROM counter", &[]))
            .is_ok_and(|r| r.get::<_, i64>(0) >= 20)
    });
    rt.block_on(admin.batch_execute(
        "CREATE TABLE filler (x int); BEGIN; LOCK TABLE filler IN ACCESS EXCLUSIVE MODE;",
    ))
    .unwrap();
    (p, admin)
}

/// Polls until `check` holds (at most a minute).
fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn save_pause_freezes_the_writers_so_the_stores_are_saved_at_one_moment() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (p, lock) = writer_project(&rt, data.path(), "snap-pause");
    let child = p
        .cmd(&["snapshot", "save", "frozen", "--pause"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The save waits for the lock on `filler`, the writer paused.
    until("the writer is paused", || paused(&p, "writer"));
    assert!(!paused(&p, "db") && !paused(&p, "cache"));
    rt.block_on(lock.batch_execute("COMMIT")).unwrap();
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert!(run.success(), "{run}");
    assert!(run.stderr.contains("paused writer for "), "{run}");
    assert!(run.stdout.contains("saved snapshot frozen"), "{run}");

    // It writes again.
    assert!(!paused(&p, "writer"));
    let vars = env(&p);
    let after = counters(&rt, &vars);
    until("the writer writes again", || {
        counters(&rt, &vars).0 > after.0
    });

    // What was saved: the two counters at most one write apart.
    support::docker(&["kill", &support::container_id(&p, "writer")]);
    p.ok(&["snapshot", "restore", "frozen"]);
    let (in_pg, in_redis) = counters(&rt, &vars);
    assert!(in_pg >= 20, "{in_pg}");
    assert!(
        (in_pg - in_redis).abs() <= 1,
        "Postgres {in_pg}, Redis {in_redis}"
    );
}

#[test]
fn ctrl_c_during_save_pause_leaves_nothing_paused() {
    let data = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (p, lock) = writer_project(&rt, data.path(), "snap-pause-c");
    let child = p
        .cmd(&["snapshot", "save", "stopped", "--pause"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    until("the writer is paused", || paused(&p, "writer"));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let run: support::Run = child.wait_with_output().unwrap().into();
    assert_eq!(run.code, Some(130), "{run}");
    assert!(run.stderr.contains("paused writer for "), "{run}");
    assert!(run.stderr.contains("nothing was saved"), "{run}");
    assert!(!paused(&p, "writer"));
    rt.block_on(lock.batch_execute("COMMIT")).unwrap();
    let list = p.ok(&["snapshot", "list"]);
    assert!(list.stdout.contains("has no snapshots yet"), "{list}");
    let vars = env(&p);
    let after = counters(&rt, &vars);
    until("the writer writes again", || {
        counters(&rt, &vars).0 > after.0
    });

    // What a vibedev killed during a paused save would leave: the next `up` unpauses it.
    support::docker(&["pause", &support::container_id(&p, "writer")]);
    p.ok(&["up"]);
    assert!(!paused(&p, "writer"));
}
