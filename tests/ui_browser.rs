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
        let overflow = phone
            .js("return document.documentElement.scrollWidth - window.innerWidth;")
            .await;
        assert!(
            overflow.as_i64().unwrap_or(i64::MAX) <= 0,
            "{path} is {overflow} px wider than a 320 px screen"
        );
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
