//! The stack's life on a real Docker engine with the real services: up, status, env, real
//! clients, reconcile (no-op, one-service change, stopped container), data across down/up, down.

mod support;

use std::collections::BTreeMap;

use support::{TestProject, container_id, docker, env, status};

/// `docker inspect` of one field.
fn inspect(id: &str, format: &str) -> String {
    docker(&["inspect", "-f", format, id])
}

fn pg_client(url: &str) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
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

#[test]
fn full_stack_up_status_env_real_clients_down() {
    let p = TestProject::new("full");
    let up = p.ok(&["up"]);
    // The summary names every service with its URL.
    for svc in ["postgres", "firestore", "redis", "gcs"] {
        assert!(up.stdout.contains(svc), "{up}");
    }
    assert!(up.stderr.contains("created role vibesdk_app"), "{up}");
    assert!(up.stderr.contains("created database vibesdk"), "{up}");
    assert!(
        up.stderr.contains("created bucket vibesdk-templates"),
        "{up}"
    );

    let st = status(&p);
    assert_eq!(st.len(), 4);
    for (name, s) in &st {
        assert_eq!(s["state"], "running", "{name}: {s}");
        assert_eq!(s["ready"], true, "{name}: {s}");
        assert!(
            s["ports"].as_array().is_some_and(|a| !a.is_empty()),
            "{name}: {s}"
        );
        assert!(s["url"].is_string(), "{name}: {s}");
    }
    // Status never shows the database password.
    assert!(
        !st["postgres"]["url"]
            .as_str()
            .unwrap()
            .contains("vibesdk-local")
    );

    let vars = env(&p);
    let keys: Vec<_> = vars.keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "DATABASE_URL",
            "FIRESTORE_EMULATOR_HOST",
            "GOOGLE_CLOUD_PROJECT",
            "REDIS_URL",
            "STORAGE_EMULATOR_HOST",
            "TEMPLATES_BUCKET"
        ]
    );
    assert_eq!(vars["TEMPLATES_BUCKET"], "vibesdk-templates");

    // Postgres: the app user owns the app database and can create tables in it.
    let (rt, client) = pg_client(&vars["DATABASE_URL"]);
    let row = rt
        .block_on(client.query_one("SELECT current_user::text, current_database()::text", &[]))
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "vibesdk_app");
    assert_eq!(row.get::<_, String>(1), "vibesdk");
    rt.block_on(client.batch_execute("CREATE TABLE probe (id int)"))
        .unwrap();

    // Redis: a real client sets and reads a key.
    let redis = redis::Client::open(vars["REDIS_URL"].as_str()).unwrap();
    let mut conn = redis.get_connection().unwrap();
    redis::cmd("SET").arg("k").arg("v").exec(&mut conn).unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut conn).unwrap();
    assert_eq!(v, "v");

    // fake-gcs: the bucket exists; Firestore: the emulator answers and stores a document.
    let http = reqwest::Client::new();
    let gcs = &vars["STORAGE_EMULATOR_HOST"];
    let fs = &vars["FIRESTORE_EMULATOR_HOST"];
    let project = &vars["GOOGLE_CLOUD_PROJECT"];
    rt.block_on(async {
        let bucket = http
            .get(format!("{gcs}/storage/v1/b/vibesdk-templates"))
            .send()
            .await
            .unwrap();
        assert!(bucket.status().is_success(), "{bucket:?}");
        let root = http
            .get(format!("http://{fs}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(root.starts_with("Ok"), "{root}");
        let doc = http
            .patch(format!(
                "http://{fs}/v1/projects/{project}/databases/(default)/documents/apps/a1"
            ))
            .json(&serde_json::json!({"fields": {"name": {"stringValue": "demo"}}}))
            .send()
            .await
            .unwrap();
        assert!(doc.status().is_success(), "{doc:?}");
    });

    // Logs carry the service prefix.
    let logs = p.ok(&["logs", "postgres", "--tail", "5"]);
    assert!(!logs.stdout.is_empty(), "{logs}");
    assert!(
        logs.stdout.lines().all(|l| l.starts_with("postgres ")),
        "{logs}"
    );

    let down = p.ok(&["down"]);
    assert!(down.stdout.contains("removed 4 containers"), "{down}");
    for svc in ["postgres", "firestore", "redis", "gcs"] {
        assert_eq!(container_id(&p, svc), "", "{svc} survived down");
    }
    let nets = support::labelled(&p, "network").join("\n");
    assert_eq!(nets, "", "network survived down");
    let vols = support::labelled(&p, "volume").join("\n");
    assert_eq!(
        vols.lines().count(),
        3,
        "named volumes are kept by down: {vols}"
    );
    let env_after = p.run(&["env"]);
    assert_eq!(env_after.code, Some(1), "{env_after}");
    assert!(env_after.stderr.contains("vibedev up"), "{env_after}");
}

/// Container id and start time of each service.
fn fingerprint(p: &TestProject, services: &[&str]) -> BTreeMap<String, (String, String)> {
    services
        .iter()
        .map(|s| {
            let id = container_id(p, s);
            assert!(!id.is_empty(), "{s} has no container");
            let started = inspect(&id, "{{.State.StartedAt}}");
            (s.to_string(), (id, started))
        })
        .collect()
}

#[test]
fn second_up_changes_nothing() {
    let p = TestProject::new("noop");
    p.ok(&["up", "postgres", "redis", "gcs"]);
    let before = fingerprint(&p, &["postgres", "redis", "gcs"]);
    let again = p.ok(&["up", "postgres", "redis", "gcs"]);
    assert!(again.stdout.contains("nothing to change"), "{again}");
    assert!(
        !again.stderr.contains("creating") && !again.stderr.contains("starting"),
        "{again}"
    );
    assert_eq!(fingerprint(&p, &["postgres", "redis", "gcs"]), before);

    // The app database and role dropped behind vibedev's back: made again in the same
    // containers, and the summary says so rather than "nothing to change".
    let url = env(&p)["DATABASE_URL"].clone();
    let port = url.rsplit(':').next().unwrap().split('/').next().unwrap();
    let (rt, admin) = pg_client(&format!(
        "postgres://postgres:postgres@127.0.0.1:{port}/postgres"
    ));
    for sql in [
        "DROP DATABASE vibesdk WITH (FORCE)",
        "DROP ROLE vibesdk_app",
    ] {
        rt.block_on(admin.batch_execute(sql)).unwrap();
    }
    let repaired = p.ok(&["up", "postgres", "redis", "gcs"]);
    assert!(
        repaired
            .stdout
            .contains("containers unchanged; created role vibesdk_app, database vibesdk"),
        "{repaired}"
    );
    assert_eq!(fingerprint(&p, &["postgres", "redis", "gcs"]), before);
    let (rt, app) = pg_client(&url);
    let one: i32 = rt.block_on(app.query_one("SELECT 1", &[])).unwrap().get(0);
    assert_eq!(one, 1);
}

#[test]
fn changing_one_service_recreates_only_that_one() {
    let p = TestProject::new("one-change");
    p.ok(&["up", "postgres", "redis"]);
    let before = fingerprint(&p, &["postgres", "redis"]);

    // The env of redis changes; postgres is untouched.
    p.write_config("[services.redis.env]\nEXTRA = \"1\"\n");
    let run = p.ok(&["up", "postgres", "redis"]);
    assert!(run.stderr.contains("recreating"), "{run}");
    let after = fingerprint(&p, &["postgres", "redis"]);
    assert_eq!(
        after["postgres"], before["postgres"],
        "postgres was touched"
    );
    assert_ne!(
        after["redis"].0, before["redis"].0,
        "redis was not recreated"
    );
    assert!(inspect(&after["redis"].0, "{{.Config.Env}}").contains("EXTRA=1"));

    // The image of redis (the same image under another name) changes: again only redis.
    let img = support::images().redis;
    let alias = format!("{img}-alias-{}", std::process::id());
    docker(&["tag", &img, &alias]);
    let mut p = p;
    p.set("redis", "image", &format!("{alias:?}"));
    p.write_config("[services.redis.env]\nEXTRA = \"1\"\n");
    let run = p.ok(&["up", "postgres", "redis"]);
    let last = fingerprint(&p, &["postgres", "redis"]);
    assert_eq!(
        last["postgres"], before["postgres"],
        "postgres was touched: {run}"
    );
    assert_ne!(
        last["redis"].0, after["redis"].0,
        "redis was not recreated: {run}"
    );
    assert_eq!(inspect(&last["redis"].0, "{{.Config.Image}}"), alias);

    // A port change: again only redis, now on the port asked for.
    let (port, run) = support::on_a_free_port(|port| {
        p.set("redis", "ports", &format!("[\"{port}:6379\"]"));
        p.write_config("[services.redis.env]\nEXTRA = \"1\"\n");
        p.run(&["up", "postgres", "redis"])
    });
    assert!(run.success(), "{run}");
    let ported = fingerprint(&p, &["postgres", "redis"]);
    assert_eq!(ported["postgres"], before["postgres"]);
    assert_ne!(ported["redis"].0, last["redis"].0);
    assert_eq!(env(&p)["REDIS_URL"], format!("redis://127.0.0.1:{port}"));
    p.ok(&["down"]);
    docker(&["rmi", &alias]);
}

#[test]
fn stopped_container_is_started_not_recreated() {
    let p = TestProject::new("stopped");
    p.ok(&["up", "redis"]);
    let id = container_id(&p, "redis");
    docker(&["stop", &id]);
    assert_eq!(inspect(&id, "{{.State.Running}}"), "false");
    let run = p.ok(&["up", "redis"]);
    assert!(run.stderr.contains("starting"), "{run}");
    assert_eq!(container_id(&p, "redis"), id, "the container was replaced");
    assert_eq!(inspect(&id, "{{.State.Running}}"), "true");
}

#[test]
fn data_survives_down_and_recreation_until_down_volumes() {
    let p = TestProject::new("data");
    p.ok(&["up", "postgres"]);
    let url = env(&p)["DATABASE_URL"].clone();
    let (rt, client) = pg_client(&url);
    rt.block_on(
        client.batch_execute("CREATE TABLE keep (v text); INSERT INTO keep VALUES ('kept')"),
    )
    .unwrap();
    drop(client);

    p.ok(&["down"]);
    p.ok(&["up", "postgres"]);
    let (rt, client) = pg_client(&env(&p)["DATABASE_URL"]);
    let v: String = rt
        .block_on(client.query_one("SELECT v FROM keep", &[]))
        .unwrap()
        .get(0);
    assert_eq!(v, "kept");
    drop(client);

    // A recreated container (its settings changed) keeps the data too.
    p.write_config("[services.postgres.env]\nTZ = \"UTC\"\n");
    let run = p.ok(&["up", "postgres"]);
    assert!(run.stderr.contains("recreating"), "{run}");
    let (rt, client) = pg_client(&env(&p)["DATABASE_URL"]);
    let v: String = rt
        .block_on(client.query_one("SELECT v FROM keep", &[]))
        .unwrap()
        .get(0);
    assert_eq!(v, "kept");
    drop(client);

    let down = p.ok(&["down", "--volumes"]);
    assert!(
        down.stdout
            .contains("removed 1 container, 1 network, 1 volume"),
        "{down}"
    );
    let vols = support::labelled(&p, "volume").join("\n");
    assert_eq!(vols, "", "volumes survived down --volumes");
    p.ok(&["up", "postgres"]);
    let (rt, client) = pg_client(&env(&p)["DATABASE_URL"]);
    let gone = rt
        .block_on(client.query_one("SELECT to_regclass('keep') IS NULL", &[]))
        .unwrap();
    assert!(gone.get::<_, bool>(0), "data survived down --volumes");
}

#[test]
fn down_takes_the_stack_down_even_when_the_config_is_broken() {
    let p = TestProject::new("brokencfg");
    p.ok(&["up", "redis"]);
    assert_ne!(container_id(&p, "redis"), "");

    // A half-typed edit after `up`: `up` refuses it with the position ...
    p.write_config("[migrations]\ndir = \n");
    let up = p.run(&["up", "redis"]);
    assert_eq!(up.code, Some(2), "{up}");
    assert!(up.stderr.contains("vibedev.toml:"), "{up}");

    // ... but `down` only needs the project name, which the file still says.
    let down = p.ok(&["down"]);
    assert!(
        down.stderr.contains("vibedev.toml:"),
        "the error is shown: {down}"
    );
    assert!(down.stderr.contains(&p.name), "{down}");
    assert!(down.stdout.contains("removed 1 container"), "{down}");
    assert_eq!(container_id(&p, "redis"), "", "redis survived down");
    assert_eq!(support::labelled(&p, "network"), Vec::<String>::new());

    // When the broken line is the one naming the project, nothing is guessed or removed.
    p.write_config("");
    p.ok(&["up", "redis"]);
    p.write("vibedev.toml", &format!("project = \"{}\n", p.name));
    let refused = p.run(&["down"]);
    assert_eq!(refused.code, Some(2), "{refused}");
    assert_ne!(
        container_id(&p, "redis"),
        "",
        "removed without knowing the project"
    );
    p.write_config("");
}

#[test]
fn quiet_up_and_down_print_their_results_and_nothing_else() {
    let p = TestProject::new("quiet");
    let up = p.ok(&["up", "redis", "--quiet"]);
    assert_eq!(up.stderr, "", "progress with --quiet:\n{up}");
    assert!(up.stdout.contains("SERVICE"), "the table:\n{up}");
    assert!(up.stdout.contains(&format!("{} ready in", p.name)), "{up}");
    let up = p.ok(&["up", "redis"]);
    assert!(up.stdout.contains("(nothing to change)"), "{up}");
    let down = p.ok(&["down", "--quiet"]);
    assert_eq!(down.stderr, "", "{down}");
    assert!(down.stdout.contains("removed 1 container"), "{down}");
}
