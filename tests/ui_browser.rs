//! `vibedev ui` in a real headless Chromium (Debian's chromium + chromium-driver over WebDriver):
//! what a person sees on each page of a running stack with seeded data, at a phone's width and a
//! desktop's, in dark mode and from the keyboard. Each page's screenshot is saved under
//! `target/ui-screenshots/`.

mod support;

use support::TestProject;
use support::browser::Browser;
use support::web::UiServer;

/// Opens the URL `vibedev ui` printed (the token is traded for a cookie) and lands on the stack.
async fn open(browser: &Browser, ui: &UiServer) {
    browser.goto(&ui.url).await;
    browser.find("#services-table").await;
    let url = browser.url().await;
    assert!(
        !url.contains("token="),
        "the token stays in the address bar: {url}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stack_and_logs_pages_show_the_live_stack_and_a_stop_button_stops() {
    let p = TestProject::new("ui-browser-stack");
    p.ok(&["up"]);
    let ui = UiServer::start(&p, &[]);
    let browser = Browser::start(1280, 900).await;
    open(&browser, &ui).await;

    for service in ["postgres", "redis", "gcs", "firestore"] {
        let state = browser.text(&format!("#service-{service} .state")).await;
        assert!(
            state.as_deref().is_some_and(|s| s.starts_with("running")),
            "{service} is shown {state:?}, not running"
        );
        let ready = browser.text(&format!("#service-{service} .ready")).await;
        assert_eq!(
            ready.as_deref(),
            Some("yes"),
            "{service} is not shown ready"
        );
    }
    browser.screenshot("stack").await;

    // Logs: a line Postgres writes after the page opened appears without a reload.
    browser
        .goto(&format!("http://127.0.0.1:{}/logs", ui.port))
        .await;
    browser.find("#log").await;
    let url = support::env(&p)["DATABASE_URL"].clone();
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect to the stack's Postgres");
    tokio::spawn(conn);
    db.simple_query(
        "DO $$ BEGIN RAISE LOG 'browser_marker_5d2 written after the page opened'; END $$",
    )
    .await
    .unwrap();
    browser
        .wait_text("#log", 30, |t| {
            t.contains("browser_marker_5d2 written after")
        })
        .await;
    browser.screenshot("logs").await;
    browser
        .goto(&format!("http://127.0.0.1:{}/", ui.port))
        .await;
    browser.find("#services-table").await;

    // Stop Redis from the page (the confirmation is accepted), then the row says so, live.
    browser.click("#stop-redis").await;
    browser.client.accept_alert().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = browser.js(
            "const r = document.querySelector('#service-redis'); return r ? r.dataset.state : null;",
        )
        .await;
        if state.as_str().is_some_and(|s| s != "running") {
            break;
        }
        if std::time::Instant::now() >= deadline {
            browser.screenshot("stack-stop-failed").await;
            panic!(
                "redis still shown running; the page shows:\n{}",
                browser.body_text().await
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let running = support::docker(&[
        "inspect",
        "-f",
        "{{.State.Running}}",
        &support::container_id(&p, "redis"),
    ]);
    assert_eq!(
        running.trim(),
        "false",
        "the page's Stop did not stop the container"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_fit_a_phone_work_from_the_keyboard_and_have_a_dark_mode() {
    let p = TestProject::new("ui-browser-layout");
    p.ok(&["up"]);
    let ui = UiServer::start(&p, &[]);

    // 320 px wide: nothing wider than the screen, on every page of the nav.
    let phone = Browser::start(320, 640).await;
    open(&phone, &ui).await;
    let paths = phone
        .js("return [...document.querySelectorAll('nav a')].map(a => a.getAttribute('href'));")
        .await;
    let paths: Vec<String> = serde_json::from_value(paths).unwrap();
    assert!(paths.len() >= 8, "the nav lists {paths:?}");
    for path in &paths {
        phone
            .goto(&format!("http://127.0.0.1:{}{path}", ui.port))
            .await;
        phone.find("main h1").await;
        let page = path.trim_matches('/');
        phone
            .screenshot(&format!(
                "320px-{}",
                if page.is_empty() { "stack" } else { page }
            ))
            .await;
        let overflow = phone
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        if overflow.as_i64().unwrap_or(i64::MAX) > 0 {
            let name = format!("too-wide{}", path.replace('/', "-"));
            phone.screenshot(&name).await;
            let widest = phone
                .js(
                    "let w = null; for (const e of document.querySelectorAll('main *')) { \
                     if (e.getBoundingClientRect().right > window.innerWidth && \
                     (!w || e.contains(w) === false)) w = e; } \
                     return w ? w.outerHTML.slice(0, 300) : null;",
                )
                .await;
            panic!("{path} is {overflow} px wider than a 320 px screen (see {name}.png): {widest}");
        }
    }
    phone.goto(&format!("http://127.0.0.1:{}/", ui.port)).await;
    phone.find("#services-table").await;
    phone.screenshot("stack-320px").await;
    phone.close().await;

    // The keyboard: the first Tab reaches the skip link, the next ones the nav.
    let desk = Browser::start_with(1280, 900, &["--force-dark-mode"]).await;
    open(&desk, &ui).await;
    desk.find("body")
        .await
        .send_keys(fantoccini::key::Key::Tab.to_string().as_str())
        .await
        .unwrap();
    let focused = desk.js("return document.activeElement.className;").await;
    assert_eq!(
        focused, "skip",
        "the first Tab does not reach the skip link"
    );
    desk.find("body")
        .await
        .send_keys(fantoccini::key::Key::Tab.to_string().as_str())
        .await
        .unwrap();
    let focused = desk.js("return document.activeElement.id;").await;
    assert_eq!(
        focused, "nav-stack",
        "the second Tab does not reach the nav"
    );

    // Dark mode follows the system's: a dark background with light text.
    let colours = desk
        .js("const s = getComputedStyle(document.body); return [s.backgroundColor, s.color];")
        .await;
    let luminance = |css: &serde_json::Value| -> f64 {
        let nums: Vec<f64> = css
            .as_str()
            .unwrap_or_default()
            .trim_start_matches("rgba(")
            .trim_start_matches("rgb(")
            .trim_end_matches(')')
            .split(',')
            .filter_map(|n| n.trim().parse().ok())
            .collect();
        nums.iter().take(3).sum::<f64>() / 3.0
    };
    assert!(
        luminance(&colours[0]) < 80.0 && luminance(&colours[1]) > 170.0,
        "not dark with --force-dark-mode: background/text {colours}"
    );
    desk.screenshot("stack-dark").await;
    desk.close().await;
}

/// The PNG the bucket preview shows: 2 x 2 pixels.
const PNG_2X2: [u8; 73] = [
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xFD, 0xD4, 0x9A,
    0x73, 0x00, 0x00, 0x00, 0x10, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0x00, 0x04,
    0xFF, 0x19, 0x20, 0x14, 0x00, 0x1B, 0xF2, 0x03, 0xFD, 0xD6, 0x96, 0xF2, 0x2B, 0x00, 0x00, 0x00,
    0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

#[tokio::test(flavor = "multi_thread")]
async fn data_pages_show_what_the_stores_hold_and_an_edit_in_the_page_reaches_firestore() {
    let p = TestProject::new("ui-browser-data");
    p.ok(&["up"]);
    let vars = support::env(&p);
    let http = reqwest::Client::new();

    // Postgres: a table of 120 rows.
    let (db, conn) = tokio_postgres::connect(&vars["DATABASE_URL"], tokio_postgres::NoTls)
        .await
        .expect("connect to the stack's Postgres");
    tokio::spawn(conn);
    db.batch_execute(
        "CREATE TABLE browser_items (id int PRIMARY KEY, name text);
         INSERT INTO browser_items SELECT i, 'item number ' || i FROM generate_series(1, 120) i;",
    )
    .await
    .unwrap();

    // Firestore: a document with typed fields.
    let project = &vars["GOOGLE_CLOUD_PROJECT"];
    let docs = format!(
        "http://{}/v1/projects/{project}/databases/(default)/documents",
        vars["FIRESTORE_EMULATOR_HOST"]
    );
    let r = http
        .patch(format!("{docs}/users/ada"))
        .header("Authorization", "Bearer owner")
        .json(&serde_json::json!({ "fields": {
            "name": {"stringValue": "Ada Lovelace"},
            "born": {"timestampValue": "1815-12-10T00:00:00Z"},
            "address": {"mapValue": {"fields": {"city": {"stringValue": "London"}}}},
            "tags": {"arrayValue": {"values": [{"stringValue": "math"}]}},
        }}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{r:?}");

    // The bucket: a text file and a picture.
    let gcs = &vars["STORAGE_EMULATOR_HOST"];
    let bucket = &vars["TEMPLATES_BUCKET"];
    for (name, content_type, bytes) in [
        (
            "notes/hello.txt",
            "text/plain",
            b"Hello from the bucket".to_vec(),
        ),
        ("img/dot.png", "image/png", PNG_2X2.to_vec()),
    ] {
        let r = http
            .post(format!("{gcs}/upload/storage/v1/b/{bucket}/o"))
            .query(&[("uploadType", "media"), ("name", name)])
            .header("Content-Type", content_type)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{name}: {r:?}");
    }

    // Redis: a key with a TTL.
    let mut redis = redis::Client::open(vars["REDIS_URL"].as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("SET")
        .arg("browser:greeting")
        .arg("hello")
        .arg("EX")
        .arg(3600)
        .exec(&mut redis)
        .unwrap();

    let ui = UiServer::start(&p, &[]);
    let browser = Browser::start(1280, 900).await;
    open(&browser, &ui).await;
    let page = |path: &str| format!("http://127.0.0.1:{}{path}", ui.port);

    // Postgres: the table is listed; its first page of rows shows a seeded row.
    browser.goto(&page("/postgres")).await;
    browser
        .wait_text("#tables", 15, |t| t.contains("browser_items"))
        .await;
    browser.screenshot("postgres").await;
    browser
        .goto(&page("/postgres/table?schema=public&table=browser_items"))
        .await;
    browser
        .wait_text("#rows", 15, |t| t.contains("item number 1"))
        .await;
    browser.screenshot("postgres-rows").await;

    // Firestore: the document's typed fields, then an edit made in the page.
    browser.goto(&page("/firestore/d?path=users%2Fada")).await;
    let fields = browser
        .wait_text("#fields", 15, |t| t.contains("Ada Lovelace"))
        .await;
    for shown in ["timestamp", "1815-12-10", "map", "London", "array", "math"] {
        assert!(
            fields.contains(shown),
            "{shown:?} is not in the field view:\n{fields}"
        );
    }
    browser.screenshot("firestore-document").await;
    let textarea = browser.find("#doc-json").await;
    textarea.clear().await.unwrap();
    textarea
        .send_keys(r#"{"name": "Ada, edited in the page", "born": {"$timestamp": "1815-12-10T00:00:00Z"}}"#)
        .await
        .unwrap();
    browser.click("#save").await;
    browser.wait_for_text("Ada, edited in the page", 15).await;
    let doc: serde_json::Value = http
        .get(format!("{docs}/users/ada"))
        .header("Authorization", "Bearer owner")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc["fields"]["name"]["stringValue"], "Ada, edited in the page",
        "{doc}"
    );
    assert_eq!(
        doc["fields"]["born"]["timestampValue"], "1815-12-10T00:00:00Z",
        "the timestamp lost its type: {doc}"
    );

    // The bucket: both objects listed; the text and the picture previewed.
    browser
        .goto(&page(&format!("/bucket?bucket={bucket}")))
        .await;
    browser
        .wait_text("#objects", 15, |t| {
            t.contains("notes/") || t.contains("hello.txt")
        })
        .await;
    browser.screenshot("bucket").await;
    browser
        .goto(&page(&format!(
            "/bucket/o?bucket={bucket}&name=notes%2Fhello.txt"
        )))
        .await;
    browser
        .wait_text("#preview-text", 15, |t| t.contains("Hello from the bucket"))
        .await;
    browser
        .goto(&page(&format!(
            "/bucket/o?bucket={bucket}&name=img%2Fdot.png"
        )))
        .await;
    browser.find("#preview-image").await;
    let width = browser
        .js("const i = document.querySelector('#preview-image'); return i.complete ? i.naturalWidth : -1;")
        .await;
    assert_eq!(width, 2, "the picture's preview did not load");
    browser.screenshot("bucket-image").await;

    // Redis: the key with its type and TTL.
    browser.goto(&page("/redis?pattern=browser%3A*")).await;
    browser
        .wait_text("#keys", 15, |t| t.contains("browser:greeting"))
        .await;
    browser
        .goto(&page("/redis/key?key=browser%3Agreeting"))
        .await;
    let text = browser.wait_for_text("hello", 15).await;
    assert!(text.contains("string"), "no type shown:\n{text}");
    assert!(
        ["1h", "59m", "58m"].iter().any(|t| text.contains(t)),
        "no TTL near an hour shown:\n{text}"
    );
    browser.screenshot("redis").await;

    // Secrets: names and states, never a value (this stack has no credentials: the page says
    // what the CLI says).
    browser.goto(&page("/secrets")).await;
    browser.find("main h1").await;
    browser.screenshot("secrets").await;
    browser.goto(&page("/snapshots")).await;
    browser.find("main h1").await;
    browser.screenshot("snapshots").await;
    browser.close().await;
}
