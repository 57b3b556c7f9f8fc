//! `vibedev ui` over HTTP against a real stack: who may use it (token, cookie, Host, Origin),
//! the Stack page's rows and buttons changing the real containers, logs followed over SSE (a
//! line written after the stream opened, a burst that does not block the server), the Secrets
//! page's names and states without a value, snapshots saved and restored from the page.

mod support;

use support::secrets::SecretsProject;
use support::web::UiServer;
use support::{TestProject, env, status};

fn pg(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    });
    (rt, client)
}

fn state_of(p: &TestProject, service: &str) -> String {
    status(p)[service]["state"].as_str().unwrap().to_string()
}

#[test]
fn only_the_printed_url_opens_the_ui_and_foreign_pages_are_refused() {
    let p = TestProject::new("ui-guard");
    let ui = UiServer::start(&p, &[]);
    assert!(ui.url.starts_with("http://127.0.0.1:"), "{}", ui.url);
    assert_eq!(ui.token.len(), 64, "{}", ui.url);

    // No token at all: refused, with a page saying what to open.
    let r = ui.request("GET", "/", &[], "");
    assert_eq!(r.status, 401, "{r}");
    assert!(r.body.contains("vibedev ui"), "{r}");
    assert!(!r.body.contains(&ui.token), "{r}");
    // A wrong token, in the URL or in the cookie.
    let r = ui.request("GET", &format!("/?token={}", "0".repeat(64)), &[], "");
    assert_eq!(r.status, 403, "{r}");
    let wrong = format!("vibedev_ui_{}={}", ui.port, "f".repeat(64));
    let r = ui.request("GET", "/", &[("Cookie", &wrong)], "");
    assert_eq!(r.status, 403, "{r}");
    // The right token under a foreign Host (DNS rebinding) or from a foreign page.
    let r = ui.request(
        "GET",
        "/",
        &[
            ("Host", &format!("evil.example:{}", ui.port)),
            ("Cookie", &ui.cookie),
        ],
        "",
    );
    assert_eq!(r.status, 403, "{r}");
    let r = ui.request(
        "GET",
        &format!("/?token={}", ui.token),
        &[("Host", "attacker.example")],
        "",
    );
    assert_eq!(r.status, 403, "{r}");
    assert!(r.header("set-cookie").is_none(), "{r}");
    let r = ui.request(
        "GET",
        "/",
        &[("Origin", "http://evil.example"), ("Cookie", &ui.cookie)],
        "",
    );
    assert_eq!(r.status, 403, "{r}");

    // The printed URL: its token is traded for a cookie, and the browser sent on without it.
    let path = ui.url.trim_start_matches(&format!("http://{}", ui.host()));
    let r = ui.request("GET", path, &[], "");
    assert_eq!(r.status, 303, "{r}");
    assert_eq!(r.header("location"), Some("/"), "{r}");
    let cookie = r.header("set-cookie").expect("cookie");
    assert!(cookie.starts_with(&ui.cookie), "{cookie}");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // Other parameters stay.
    let r = ui.request(
        "GET",
        &format!("/logs?service=redis&token={}", ui.token),
        &[],
        "",
    );
    assert_eq!(r.header("location"), Some("/logs?service=redis"), "{r}");
    // localhost works as well as 127.0.0.1, and the cookie opens every page.
    let r = ui.request(
        "GET",
        "/",
        &[
            ("Host", &format!("localhost:{}", ui.port)),
            ("Cookie", &ui.cookie),
        ],
        "",
    );
    assert_eq!(r.status, 200, "{r}");
    for (path, id) in [
        ("/", "id=\"services-table\""),
        ("/logs", "id=\"log\""),
        ("/snapshots", "id=\"snapshot-save\""),
        ("/assets/app.css", "prefers-color-scheme"),
        ("/assets/app.js", "EventSource"),
    ] {
        let r = ui.get(path);
        assert_eq!(r.status, 200, "{path}: {r}");
        assert!(r.body.contains(id), "{path}: {r}");
        assert!(r.header("content-security-policy").is_some(), "{path}: {r}");
    }
    assert_eq!(ui.get("/no-such-page").status, 404);
    // Nothing in the stack was started by looking.
    assert_eq!(state_of(&p, "postgres"), "missing");

    // A second server on the same port: refused with the way out, nothing served.
    let port = ui.port.to_string();
    let taken = p.run(&["ui", "--no-open", "--port", &port]);
    assert_eq!(taken.code, Some(2), "{taken}");
    assert!(
        taken.stderr.contains(&format!("port {port} is taken")),
        "{taken}"
    );
    assert!(!taken.stdout.contains("token="), "{taken}");

    // Ctrl-C ends it as a normal exit, live pages open or not.
    let mut ui = ui;
    let live = ui.events("/live/stack");
    let status = ui.interrupt(std::time::Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{status:?}");
    drop(live);
}

#[test]
fn up_with_ui_serves_the_page_once_the_stack_is_up() {
    let p = TestProject::new("ui-up");
    let ui = UiServer::spawn(p.cmd(&["up", "redis", "--ui", "--no-open", "--ui-port", "0"]));
    // The URL comes after up: redis already runs.
    assert_eq!(state_of(&p, "redis"), "running");
    let r = ui.get("/");
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.body
            .contains("id=\"service-redis\" data-service=\"redis\" data-state=\"running\""),
        "{r}"
    );
}

#[test]
fn stack_page_shows_the_services_and_its_buttons_change_the_containers() {
    let p = TestProject::new("ui-stack");
    p.ok(&["up"]);
    let ui = UiServer::start(&p, &[]);

    let r = ui.get("/");
    assert_eq!(r.status, 200, "{r}");
    for svc in ["postgres", "redis", "gcs", "firestore"] {
        assert!(
            r.body.contains(&format!("id=\"service-{svc}\"")),
            "{svc}: {r}"
        );
    }
    assert!(
        r.body.contains("data-state=\"running\" data-ready=\"yes\""),
        "{r}"
    );
    assert!(r.body.contains(&UiServer::escaped("postgres://")), "{r}");
    assert!(r.body.contains("answers"), "{r}");
    // The live fragment pushes the same table.
    let mut live = ui.events("/live/stack");
    assert!(live.until("event: fragment"), "{}", live.seen);
    assert!(live.until("id=\"service-redis\""), "{}", live.seen);

    // A stop from another origin changes nothing.
    let r = ui.request(
        "POST",
        "/stack/redis/stop",
        &[
            ("Cookie", &ui.cookie),
            ("Origin", "http://evil.example"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        "",
    );
    assert_eq!(r.status, 403, "{r}");
    // Nor does one without the cookie (a form another page posts cannot carry it).
    let r = ui.request("POST", "/stack/redis/stop", &[("Origin", &ui.origin())], "");
    assert_eq!(r.status, 401, "{r}");
    assert_eq!(state_of(&p, "redis"), "running");

    // Stop from the page: the real container stops; the live table says so, and a followed
    // log says where it ends.
    let mut redis_log = ui.events("/live/logs?service=redis");
    let r = ui.post("/stack/redis/stop", "");
    assert_eq!(r.status, 303, "{r}");
    let back = r.header("location").unwrap().to_string();
    assert!(back.starts_with("/?note=redis%20stopped"), "{r}");
    assert_eq!(state_of(&p, "redis"), "exited");
    assert!(live.until("data-state=\"exited\""), "{}", live.seen);
    assert!(
        redis_log.until("the container stopped"),
        "{}",
        redis_log.seen
    );
    let r = ui.get(&back);
    assert!(r.body.contains("id=\"note\""), "{r}");
    assert!(r.body.contains("id=\"start-redis\""), "{r}");

    // Start brings it back, ready.
    let r = ui.post("/stack/redis/start", "");
    assert_eq!(r.status, 303, "{r}");
    assert!(r.header("location").unwrap().contains("note="), "{r}");
    let s = status(&p);
    assert_eq!(s["redis"]["state"], "running");
    assert_eq!(s["redis"]["ready"], true);

    // Restart: a new start time, ready again.
    let id = support::container_id(&p, "redis");
    let started = support::docker(&["inspect", "-f", "{{.State.StartedAt}}", &id]);
    let r = ui.post("/stack/redis/restart", "");
    assert!(
        r.header("location")
            .unwrap()
            .contains("note=redis%20restarted"),
        "{r}"
    );
    let again = support::docker(&["inspect", "-f", "{{.State.StartedAt}}", &id]);
    assert_ne!(started, again);
    assert_eq!(status(&p)["redis"]["ready"], true);

    // Up for the whole stack after a stop: everything runs again.
    ui.post("/stack/gcs/stop", "");
    assert_eq!(state_of(&p, "gcs"), "exited");
    let r = ui.post("/stack/up", "");
    assert!(r.header("location").unwrap().contains("note=up"), "{r}");
    for (svc, row) in status(&p) {
        assert_eq!(row["state"], "running", "{svc}");
    }

    // An unknown service or action is refused without touching anything.
    assert_eq!(ui.post("/stack/nope/stop", "").status, 404);
    assert_eq!(ui.post("/stack/redis/explode", "").status, 404);
    assert_eq!(state_of(&p, "redis"), "running");
}

#[test]
fn logs_stream_new_lines_filtered_and_a_burst_does_not_block_the_server() {
    let p = TestProject::new("ui-logs");
    p.ok(&["up", "postgres"]);
    let (rt, db) = pg(&env(&p)["DATABASE_URL"]);
    let ui = UiServer::start(&p, &[]);

    let r = ui.get("/logs?service=postgres&q=marker");
    assert_eq!(r.status, 200, "{r}");
    let live = UiServer::escaped("/live/logs?service=postgres&q=marker");
    assert!(r.body.contains(&format!("data-append=\"{live}\"")), "{r}");
    assert_eq!(ui.get("/logs?service=nope").status, 404);

    // A line written after the stream opened arrives, with its service's colour; lines that
    // do not match the search do not.
    let mut all = ui.events("/live/logs");
    let mut filtered = ui.events("/live/logs?service=postgres&q=ui_marker_7c1");
    // Both streams are attached once the past output (or its absence) has come.
    assert!(all.until("event: append"), "{}", all.seen);
    rt.block_on(async {
        // Postgres logs each statement after its message: two statements, so the other
        // line's statement does not carry the marker.
        db.simple_query("DO $$ BEGIN RAISE LOG 'unrelated %', 1; END $$")
            .await
            .unwrap();
        db.simple_query("DO $$ BEGIN RAISE LOG 'ui_marker_7c1 <b>'; END $$")
            .await
            .unwrap();
    });
    assert!(all.until("ui_marker_7c1 &lt;b&gt;"), "{}", all.seen);
    assert!(all.seen.contains("class=\"svc c"), "{}", all.seen);
    assert!(filtered.until("ui_marker_7c1"), "{}", filtered.seen);
    assert!(!filtered.seen.contains("unrelated"), "{}", filtered.seen);
    assert!(all.until("unrelated 1"), "{}", all.seen);

    // 10,000 lines at once, with one client not reading at all: pages still answer, and a
    // reading client gets to the end (or is told what it missed).
    let stalled = ui.events("/live/logs?service=postgres");
    let mut reader = ui.events("/live/logs?service=postgres&q=burst");
    rt.block_on(async {
        db.simple_query(
            "DO $$ BEGIN FOR i IN 1..10000 LOOP RAISE LOG 'burst % of 10000', i; END LOOP; END $$",
        )
        .await
        .unwrap();
    });
    let r = ui.get("/");
    assert_eq!(r.status, 200, "{r}");
    let r = ui.get("/logs");
    assert_eq!(r.status, 200, "{r}");
    let end = reader.until("burst 10000 of 10000");
    assert!(
        end || reader.seen.contains("lines skipped"),
        "{}",
        &reader.seen[reader.seen.len().saturating_sub(2000)..]
    );
    drop(stalled);
}

#[test]
fn secrets_page_shows_names_and_states_never_a_value() {
    const VALUE: &str = "sk-ui-Zq88-never-shown";
    let p = SecretsProject::new(
        "ui-secrets",
        "OPENAI_API_KEY={{ secret \"openai-api-key\" }}\nJWT_SECRET={{ secret \"jwt-secret\" }}\nAPP_ENV=development\n",
    );
    p.server
        .add_secret("openai-api-key", &[], &[VALUE.as_bytes()]);
    p.server.add_secret("jwt-secret", &[], &[b"jwt-ui-v1-aaaa"]);
    p.ok(&["secrets", "pull"]);
    p.server.add_version("jwt-secret", b"jwt-ui-v2-bbbb");
    let mut cmd = p.cmd(&["ui", "--no-open"]);
    // The UI needs the engine (the stack's pages); the secrets need only the local server.
    cmd.env_remove("DOCKER_HOST");
    let ui = UiServer::spawn(cmd);

    let r = ui.get("/secrets");
    assert_eq!(r.status, 200, "{r}");
    assert!(
        r.body
            .contains("id=\"var-OPENAI_API_KEY\" data-state=\"in-sync\""),
        "{r}"
    );
    assert!(
        r.body
            .contains("id=\"var-JWT_SECRET\" data-state=\"changed\""),
        "{r}"
    );
    assert!(r.body.contains("local 1, latest 2"), "{r}");
    assert!(r.body.contains("id=\"var-APP_ENV\""), "{r}");
    assert!(r.body.contains("openai-api-key"), "{r}");
    for value in [VALUE, "jwt-ui-v1-aaaa", "jwt-ui-v2-bbbb", "development"] {
        assert!(!r.body.contains(value), "{value} shown: {r}");
    }
}

#[test]
fn secrets_page_without_credentials_says_what_the_cli_says() {
    let mut p = SecretsProject::new("ui-secrets-nocreds", "A={{ secret \"a\" }}\n");
    p.key_file = None;
    let cli = p.run(&["secrets", "status"]);
    assert!(!cli.success(), "{cli}");
    let mut cmd = p.cmd(&["ui", "--no-open"]);
    cmd.env_remove("DOCKER_HOST");
    let ui = UiServer::spawn(cmd);
    let r = ui.get("/secrets");
    assert_eq!(r.status, 200, "{r}");
    assert!(r.body.contains("id=\"secrets-error\""), "{r}");
    let first = cli
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .expect("an error line");
    let first = UiServer::escaped(first);
    assert!(r.body.contains(&first), "{first}\n{r}");
}

#[test]
fn snapshots_page_saves_and_restores_under_the_lock() {
    let p = TestProject::new("ui-snap");
    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    let (rt, db) = pg(&url);
    rt.block_on(db.simple_query("CREATE TABLE ui_kept (n int); INSERT INTO ui_kept VALUES (42)"))
        .unwrap();
    let ui = UiServer::start(&p, &[]);

    let r = ui.post("/snapshots/save", "name=ui-first");
    assert_eq!(r.status, 303, "{r}");
    assert!(
        r.header("location")
            .unwrap()
            .contains("note=saved%20snapshot%20ui%2Dfirst"),
        "{r}"
    );
    let list = p.ok(&["snapshot", "list", "--json"]).json();
    assert_eq!(list["snapshots"][0]["name"], "ui-first", "{list}");
    let r = ui.get("/snapshots");
    assert!(r.body.contains("id=\"snapshot-ui-first\""), "{r}");
    assert!(
        r.body.contains("action=\"/snapshots/ui-first/restore\""),
        "{r}"
    );
    assert!(
        r.body.contains("data-confirm=\"Restore snapshot ui-first?"),
        "{r}"
    );
    // The app database's family, as `branch ls` lists it.
    assert!(r.body.contains("id=\"branches-table\""), "{r}");

    rt.block_on(db.simple_query("DROP TABLE ui_kept")).unwrap();
    drop(db);
    // A restore from another origin changes nothing.
    let r = ui.request(
        "POST",
        "/snapshots/ui-first/restore",
        &[("Cookie", &ui.cookie), ("Origin", "http://evil.example")],
        "",
    );
    assert_eq!(r.status, 403, "{r}");
    let (rt2, db) = pg(&url);
    let rows = rt2
        .block_on(db.query("SELECT to_regclass('ui_kept')::text", &[]))
        .unwrap();
    assert_eq!(rows[0].get::<_, Option<String>>(0), None);
    drop(db);

    let r = ui.post("/snapshots/ui-first/restore", "");
    assert_eq!(r.status, 303, "{r}");
    assert!(
        r.header("location").unwrap().contains("note=restored"),
        "{r}"
    );
    let (rt3, db) = pg(&url);
    let rows = rt3
        .block_on(db.query("SELECT n FROM ui_kept", &[]))
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 42);

    // A snapshot that does not exist: the page says so, nothing else happens.
    let r = ui.post("/snapshots/nope/restore", "");
    assert!(r.header("location").unwrap().contains("failure="), "{r}");
}
