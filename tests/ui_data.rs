//! The data pages of `vibedev ui` over HTTP against a real stack with seeded data: Postgres
//! tables, rows and migration states; Firestore collections, typed fields and documents
//! created, edited and deleted; bucket objects listed, previewed, uploaded and deleted; Redis
//! keys of every type found, read and deleted. What a page changes is checked in the store
//! itself, and a request from another origin changes nothing.

mod migrate_common;
mod support;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use support::web::UiServer;
use support::{TestProject, env};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `%`-encodes a form or query value.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Text of an HTML page with the entities the templates write turned back.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text between `start` and the next `end` after it.
fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let from = s
        .find(start)
        .unwrap_or_else(|| panic!("no {start:?} in {s}"))
        + start.len();
    let to = s[from..]
        .find(end)
        .unwrap_or_else(|| panic!("no {end:?} after {start:?}"));
    &s[from..from + to]
}

/// A link's `href` from the element with `id`.
fn href_of(body: &str, id: &str) -> String {
    let tag = format!("id=\"{id}\"");
    let at = body
        .find(&tag)
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let head = &body[..at];
    let open = head.rfind('<').unwrap();
    unescape(between(&body[open..], "href=\"", "\""))
}

fn foreign_post(ui: &UiServer, path: &str, body: &str) -> support::web::Response {
    ui.request(
        "POST",
        path,
        &[
            ("Cookie", &ui.cookie),
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        body,
    )
}

#[test]
fn postgres_page_shows_tables_rows_and_migration_states() {
    let p = TestProject::new("ui-data-pg");
    let dir = p.path().join("drizzle");
    std::fs::create_dir_all(dir.join("meta")).unwrap();
    std::fs::write(
        dir.join("meta/_journal.json"),
        r#"{"version":"7","dialect":"postgresql","entries":[]}"#,
    )
    .unwrap();
    migrate_common::add_migration(
        &dir,
        "0000_items",
        1_700_000_000_000,
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, note text, data jsonb);",
    );
    migrate_common::add_migration(
        &dir,
        "0001_big",
        1_700_000_001_000,
        "CREATE TABLE big (n int PRIMARY KEY);",
    );
    p.ok(&["up", "postgres"]);
    migrate_common::add_migration(&dir, "0002_later", 1_700_000_002_000, "SELECT 1;");
    let db = migrate_common::app_db(&p);
    db.exec(
        "INSERT INTO items (name, note, data) SELECT 'item-' || n, 'note ' || n, jsonb_build_object('n', n) FROM generate_series(1, 117) n;
         INSERT INTO items (name, note) VALUES ('with-null', NULL), ('with-empty', ''), ('long', repeat('x', 500));
         INSERT INTO big SELECT generate_series(1, 20000);
         ANALYZE big;",
    );

    let ui = UiServer::start(&p, &[]);
    let r = ui.get("/postgres");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains(">items</a>"), "{r}");
    assert!(
        r.body.contains(">120</td>"),
        "exact count of a small table: {r}"
    );
    assert!(
        r.body.contains("about 20000"),
        "estimate of a large table: {r}"
    );
    // the migrations in `migrate status`'s words
    assert!(r.body.contains("2 applied, 1 pending"), "{r}");
    assert!(r.body.contains("0002_later"), "{r}");
    assert!(r.body.contains("class=\"state-pending\">pending"), "{r}");

    let r = ui.get("/postgres/table?schema=public&table=items");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains(">item-1<"), "{r}");
    assert!(
        r.body.contains(">item-50<") && !r.body.contains(">item-51<"),
        "{r}"
    );
    // the next page moves on
    let next = href_of(&r.body, "next-page");
    assert!(next.contains("offset=50"), "{next}");
    let r = ui.get(&next);
    assert!(
        r.body.contains(">item-51<") && !r.body.contains(">item-50<"),
        "{r}"
    );
    let r = ui.get("/postgres/table?schema=public&table=items&offset=100");
    assert!(r.body.contains(">item-101<"), "{r}");
    assert!(!r.body.contains("id=\"next-page\""), "last page: {r}");
    // NULL is not the empty string; long values are cut
    assert!(r.body.contains("<td class=\"null\">NULL</td>"), "{r}");
    assert!(r.body.contains("class=\"value empty\"></td>"), "{r}");
    assert!(r.body.contains("class=\"value clipped\""), "{r}");
    assert!(!r.body.contains(&"x".repeat(300)), "long value shown whole");
    assert_eq!(
        ui.get("/postgres/table?schema=public&table=nope").status,
        404
    );
}

/// Writes a document through the emulator's REST API.
fn put_doc(base: &str, path: &str, fields: Value) {
    block(async {
        let r = http()
            .patch(format!("{base}/{path}"))
            .header("Authorization", "Bearer owner")
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {r:?}");
    })
}

/// A document as the emulator's REST API gives it (`None`: 404).
fn get_doc(base: &str, path: &str) -> Option<Value> {
    block(async {
        let r = http()
            .get(format!("{base}/{path}"))
            .header("Authorization", "Bearer owner")
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "{path}: {r:?}");
        Some(r.json().await.unwrap())
    })
}

#[test]
fn firestore_page_shows_typed_fields_and_edits_documents() {
    let p = TestProject::new("ui-data-fs");
    p.ok(&["up", "firestore"]);
    let vars: BTreeMap<String, String> = env(&p);
    let project = &vars["GOOGLE_CLOUD_PROJECT"];
    let base = format!(
        "http://{}/v1/projects/{project}/databases/(default)/documents",
        vars["FIRESTORE_EMULATOR_HOST"]
    );
    let prefix = format!("projects/{project}/databases/(default)/documents/");
    let ada = json!({
        "name": {"stringValue": "Ada"},
        "age": {"integerValue": "36"},
        "ratio": {"doubleValue": 2.0},
        "born": {"timestampValue": "1815-12-10T00:00:00Z"},
        "friend": {"referenceValue": format!("{prefix}users/bob")},
        "home": {"geoPointValue": {"latitude": 51.5, "longitude": -0.12}},
        "key": {"bytesValue": "AAEC"},
        "nothing": {"nullValue": null},
        "address": {"mapValue": {"fields": {"city": {"stringValue": "London"}}}},
        "tags": {"arrayValue": {"values": [{"stringValue": "math"}, {"integerValue": "1"}]}},
    });
    put_doc(&base, "users/ada", ada.clone());
    put_doc(
        &base,
        "users/ada/posts/p1",
        json!({"title": {"stringValue": "Notes"}}),
    );
    for i in 0..60 {
        put_doc(
            &base,
            &format!("items/i{i:03}"),
            json!({"n": {"integerValue": i.to_string()}}),
        );
    }

    let ui = UiServer::start(&p, &[]);
    let r = ui.get("/firestore");
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.body.contains(">users</a>") && r.body.contains(">items</a>"),
        "{r}"
    );

    // pages of 50, the next one by the emulator's page token
    let r = ui.get("/firestore/c?path=items");
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.body.contains(">i000<") && r.body.contains(">i049<"),
        "{r}"
    );
    assert!(!r.body.contains(">i050<"), "{r}");
    let r = ui.get(&href_of(&r.body, "next-page"));
    assert!(
        r.body.contains(">i050<") && r.body.contains(">i059<"),
        "{r}"
    );
    assert!(!r.body.contains(">i049<"), "{r}");

    // the collection's list is live
    let mut events = ui.events("/live/firestore/c?path=users");
    assert!(events.until(">ada<"), "first fragment: {}", events.seen);
    put_doc(&base, "users/zoe", json!({"n": {"integerValue": "1"}}));
    assert!(events.until(">zoe<"), "{}", events.seen);

    // the typed view
    let r = ui.get("/firestore/d?path=users%2Fada");
    assert_eq!(r.status, 200, "{r}");
    for kind in [
        "timestamp",
        "reference",
        "geo point",
        "bytes",
        "null",
        "map",
        "array",
        "integer",
        "double",
        "string",
    ] {
        assert!(
            r.body
                .contains(&format!("<span class=\"kind\">{kind}</span>")),
            "{kind}: {r}"
        );
    }
    assert!(r.body.contains("1815-12-10T00:00:00Z"), "{r}");
    assert!(r.body.contains("London"), "{r}");
    assert!(r.body.contains(">posts</a>"), "subcollection: {r}");
    assert!(r.body.contains("$timestamp"), "typed JSON help: {r}");

    // the editor's typed JSON saved back unchanged keeps every type
    let typed = unescape(between(
        &r.body,
        "name=\"json\" spellcheck=\"false\">",
        "</textarea>",
    ));
    let r = ui.post(
        "/firestore/save",
        &format!("path=users%2Fada&json={}", enc(&typed)),
    );
    assert_eq!(r.status, 303, "{r}");
    assert_eq!(get_doc(&base, "users/ada").unwrap()["fields"], ada);

    // an edit with typed values
    let edited = r#"{"name": "Ada L", "born": {"$timestamp": "1815-12-10T01:00:00Z"}, "friend": {"$reference": "users/carol"}}"#;
    let r = ui.post(
        "/firestore/save",
        &format!("path=users%2Fada&json={}", enc(edited)),
    );
    assert_eq!(r.status, 303, "{r}");
    let fields = get_doc(&base, "users/ada").unwrap()["fields"].clone();
    assert_eq!(fields["name"], json!({"stringValue": "Ada L"}));
    assert_eq!(
        fields["born"],
        json!({"timestampValue": "1815-12-10T01:00:00Z"})
    );
    assert_eq!(
        fields["friend"],
        json!({"referenceValue": format!("{prefix}users/carol")})
    );
    assert!(fields.get("age").is_none(), "saving replaces the fields");

    // a refused edit changes nothing
    let r = ui.post(
        "/firestore/save",
        &format!(
            "path=users%2Fada&json={}",
            enc("{\"t\": {\"$timestamp\": \"soon\"}}")
        ),
    );
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("RFC 3339"), "{r}");
    assert_eq!(get_doc(&base, "users/ada").unwrap()["fields"], fields);

    // create, then delete
    let r = ui.post(
        "/firestore/create",
        &format!("collection=users&id=carol&json={}", enc("{\"x\": 1}")),
    );
    assert_eq!(r.status, 303, "{r}");
    assert_eq!(
        get_doc(&base, "users/carol").unwrap()["fields"],
        json!({"x": {"integerValue": "1"}})
    );
    let r = ui.post(
        "/firestore/create",
        &format!("collection=users&id=carol&json={}", enc("{}")),
    );
    assert_eq!(r.status, 400, "{r}");
    assert!(r.body.contains("already exists"), "{r}");

    // another origin cannot delete
    let r = foreign_post(&ui, "/firestore/delete", "path=users%2Fcarol");
    assert_eq!(r.status, 403, "{r}");
    assert!(get_doc(&base, "users/carol").is_some());
    let r = ui.post("/firestore/delete", "path=users%2Fcarol");
    assert_eq!(r.status, 303, "{r}");
    assert!(get_doc(&base, "users/carol").is_none());
}

/// The smallest PNG: one transparent pixel.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

fn upload(gcs: &str, bucket: &str, name: &str, content_type: &str, bytes: Vec<u8>) {
    block(async {
        let r = http()
            .post(format!("{gcs}/upload/storage/v1/b/{bucket}/o"))
            .query(&[("uploadType", "media"), ("name", name)])
            .header("Content-Type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {r:?}");
    })
}

/// An object's bytes from fake-gcs (`None`: 404).
fn object(gcs: &str, bucket: &str, name: &str) -> Option<Vec<u8>> {
    block(async {
        let r = http()
            .get(format!("{gcs}/storage/v1/b/{bucket}/o/{}", enc(name)))
            .query(&[("alt", "media")])
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 404 {
            return None;
        }
        assert!(r.status().is_success(), "{name}: {r:?}");
        Some(r.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn bucket_page_lists_previews_uploads_and_deletes_objects() {
    let p = TestProject::new("ui-data-gcs");
    p.ok(&["up", "gcs"]);
    let vars = env(&p);
    let gcs = vars["STORAGE_EMULATOR_HOST"].clone();
    let bucket = vars["TEMPLATES_BUCKET"].clone();
    upload(
        &gcs,
        &bucket,
        "docs/readme.txt",
        "text/plain",
        b"Hello from the bucket <b>".to_vec(),
    );
    upload(
        &gcs,
        &bucket,
        "img/pixel.png",
        "image/png",
        PIXEL_PNG.to_vec(),
    );
    for i in 0..60 {
        upload(
            &gcs,
            &bucket,
            &format!("many/o{i:03}.json"),
            "application/json",
            b"{}".to_vec(),
        );
    }

    let ui = UiServer::start(&p, &[]);
    // the stack's one bucket opens at once, with its folders
    let r = ui.get("/bucket");
    assert_eq!(r.status, 200, "{r}");
    for folder in ["docs/", "img/", "many/"] {
        assert!(
            unescape(&r.body).contains(&format!(">{folder}</a>")),
            "{folder}: {r}"
        );
    }
    let r = ui.get(&format!("/bucket?bucket={bucket}&prefix=many%2F"));
    assert!(
        r.body.contains(">o000.json<") && r.body.contains(">o049.json<"),
        "{r}"
    );
    assert!(!r.body.contains(">o050.json<"), "{r}");
    let r = ui.get(&href_of(&r.body, "next-page"));
    assert!(
        r.body.contains(">o050.json<") && !r.body.contains(">o049.json<"),
        "{r}"
    );

    // a text preview (escaped), an image preview, downloads
    let r = ui.get(&format!("/bucket/o?bucket={bucket}&name=docs%2Freadme.txt"));
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains("Hello from the bucket &lt;b&gt;"), "{r}");
    assert!(unescape(&r.body).contains("text/plain"), "{r}");
    let r = ui.get(&format!("/bucket/o?bucket={bucket}&name=img%2Fpixel.png"));
    assert!(r.body.contains("id=\"preview-image\""), "{r}");
    let r = ui.get(&format!("/bucket/raw?bucket={bucket}&name=img%2Fpixel.png"));
    assert_eq!(r.status, 200, "{r}");
    assert_eq!(r.header("content-type"), Some("image/png"));
    let r = ui.get(&format!(
        "/bucket/raw?bucket={bucket}&name=docs%2Freadme.txt"
    ));
    assert!(
        r.header("content-disposition")
            .unwrap_or("")
            .starts_with("attachment"),
        "{r}"
    );
    assert_eq!(r.body, "Hello from the bucket <b>");

    // upload through the page's form
    let boundary = "vibedevtestboundary";
    let form = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"bucket\"\r\n\r\n{bucket}\r\n--{b}\r\nContent-Disposition: form-data; name=\"prefix\"\r\n\r\ndocs/\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"new.txt\"\r\nContent-Type: text/plain\r\n\r\nuploaded text\r\n--{b}--\r\n",
        b = boundary
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let r = ui.request(
        "POST",
        "/bucket/upload",
        &[
            ("Cookie", &ui.cookie),
            ("Origin", &ui.origin()),
            ("Content-Type", &ct),
        ],
        &form,
    );
    assert_eq!(r.status, 303, "{r}");
    assert_eq!(
        object(&gcs, &bucket, "docs/new.txt").as_deref(),
        Some(&b"uploaded text"[..])
    );

    // another origin cannot delete; the page can
    let body = format!("bucket={bucket}&name=docs%2Fnew.txt");
    assert_eq!(foreign_post(&ui, "/bucket/delete", &body).status, 403);
    assert!(object(&gcs, &bucket, "docs/new.txt").is_some());
    let r = ui.post("/bucket/delete", &body);
    assert_eq!(r.status, 303, "{r}");
    assert!(object(&gcs, &bucket, "docs/new.txt").is_none());
}

#[test]
fn redis_page_finds_keys_by_pattern_shows_values_and_deletes() {
    let p = TestProject::new("ui-data-redis");
    p.ok(&["up", "redis"]);
    let vars = env(&p);
    let client = redis::Client::open(vars["REDIS_URL"].as_str()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let run = |conn: &mut redis::Connection, args: &[&str]| {
        let mut c = redis::cmd(args[0]);
        for a in &args[1..] {
            c.arg(*a);
        }
        c.exec(conn).unwrap();
    };
    run(&mut conn, &["SET", "user:string", "hello", "EX", "3600"]);
    run(
        &mut conn,
        &["HSET", "user:hash", "field1", "value1", "field2", "value2"],
    );
    run(&mut conn, &["RPUSH", "user:list", "first", "second"]);
    run(&mut conn, &["SADD", "user:set", "member-a", "member-b"]);
    run(&mut conn, &["ZADD", "user:zset", "1.5", "low", "7", "high"]);
    run(&mut conn, &["XADD", "user:stream", "*", "event", "signup"]);
    for i in 0..150 {
        run(&mut conn, &["SET", &format!("page:{i:03}"), "x"]);
    }

    let ui = UiServer::start(&p, &[]);
    let r = ui.get("/redis?pattern=user%3A*");
    assert_eq!(r.status, 200, "{r}");
    for (key, kind) in [
        ("user:string", "string"),
        ("user:hash", "hash"),
        ("user:list", "list"),
        ("user:set", "set"),
        ("user:zset", "zset"),
        ("user:stream", "stream"),
    ] {
        let row = between(&r.body, &format!(">{key}</a>"), "</tr>");
        assert!(row.contains(&format!(">{kind}<")), "{key}: {row}");
    }
    let row = between(&r.body, ">user:string</a>", "</tr>");
    assert!(row.contains(">59m") || row.contains(">1h00m"), "TTL: {row}");
    assert!(between(&r.body, ">user:hash</a>", "</tr>").contains("no expiry"));
    assert!(!r.body.contains("page:"), "the pattern filters: {r}");

    // the list is live: a key set after the page opened arrives over its event stream
    let mut events = ui.events("/live/redis?pattern=user%3A*");
    assert!(
        events.until("user:string"),
        "first fragment: {}",
        events.seen
    );
    run(&mut conn, &["SET", "user:late", "1"]);
    assert!(events.until("user:late"), "{}", events.seen);

    // pages follow SCAN's cursor until every key was seen
    let mut seen = std::collections::BTreeSet::new();
    let mut next = Some("/redis?pattern=page%3A*".to_string());
    let mut pages = 0;
    while let Some(path) = next {
        let r = ui.get(&path);
        assert_eq!(r.status, 200, "{r}");
        for part in r.body.split(">page:").skip(1) {
            seen.insert(part[..3].to_string());
        }
        next = r
            .body
            .contains("id=\"next-page\"")
            .then(|| href_of(&r.body, "next-page"));
        pages += 1;
        assert!(pages < 50, "the cursor never ends");
    }
    assert_eq!(seen.len(), 150);
    assert!(pages > 1, "150 keys take more than one page");

    // values of each type
    let value = |key: &str| ui.get(&format!("/redis/key?key={}", enc(key)));
    assert!(value("user:string").body.contains(">hello<"));
    let r = value("user:hash");
    assert!(
        r.body.contains(">field2<") && r.body.contains(">value2<"),
        "{r}"
    );
    assert!(value("user:list").body.contains(">second<"));
    assert!(value("user:set").body.contains(">member-b<"));
    let r = value("user:zset");
    assert!(r.body.contains(">high<") && r.body.contains(">7<"), "{r}");
    assert!(value("user:stream").body.contains("event=signup"));
    assert_eq!(value("user:none").status, 404);

    // another origin cannot delete; the page can
    let exists = |conn: &mut redis::Connection| -> i64 {
        redis::cmd("EXISTS").arg("user:hash").query(conn).unwrap()
    };
    assert_eq!(
        foreign_post(&ui, "/redis/delete", "key=user%3Ahash").status,
        403
    );
    assert_eq!(exists(&mut conn), 1);
    let r = ui.post("/redis/delete", "key=user%3Ahash");
    assert_eq!(r.status, 303, "{r}");
    assert_eq!(exists(&mut conn), 0);
}

#[test]
fn data_pages_say_when_the_stack_lacks_or_stopped_a_store() {
    let p = TestProject::empty("ui-data-none");
    let img = support::images();
    p.write(
        "vibedev.toml",
        &format!("project = \"{}\"\ncompose = \"stack.yml\"\n", p.name),
    );
    p.write(
        "stack.yml",
        &format!(
            "services:\n  redis:\n    image: {}\n    ports: [\"6379\"]\n",
            img.redis
        ),
    );
    let ui = UiServer::start(&p, &[]);
    for page in ["/postgres", "/firestore", "/bucket"] {
        let r = ui.get(page);
        assert_eq!(r.status, 200, "{r}");
        assert!(r.body.contains("id=\"missing\""), "{page}: {r}");
    }
    let r = ui.get("/redis");
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.body.contains("id=\"stopped\"") && r.body.contains("vibedev up redis"),
        "{r}"
    );
}
