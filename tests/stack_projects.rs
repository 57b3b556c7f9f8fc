//! Projects on a real engine: scoping by project name, a project's own compose file (renamed
//! services keep their probes through `x-vibedev` or a label), `depends_on` order, and the
//! formats of `vibedev env`.

mod support;

use support::{TestProject, docker, env, images};

#[test]
fn two_checkouts_with_the_same_folder_name_do_not_collide() {
    let root = tempfile::tempdir().unwrap();
    let img = images();
    let mut names = Vec::new();
    for side in ["a", "b"] {
        let dir = root.path().join(side).join("app");
        std::fs::create_dir_all(&dir).unwrap();
        // No `project = ...`: the name is derived from the folder.
        std::fs::write(
            dir.join("vibedev.toml"),
            format!(
                "[services.redis]\nimage = {:?}\nports = [\"6379\"]\n",
                img.redis
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(support::bin());
        support::hermetic(&mut cmd);
        let out = cmd
            .args(["up", "redis"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let run = support::Run::from(out);
        assert!(run.success(), "{run}");
        let mut cmd = std::process::Command::new(support::bin());
        support::hermetic(&mut cmd);
        let out = cmd
            .args(["status", "--json"])
            .current_dir(&dir)
            .output()
            .unwrap();
        let st = support::Run::from(out).json();
        let redis = st
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["service"] == "redis")
            .unwrap()
            .clone();
        assert_eq!(redis["state"], "running");
        names.push(redis["container"].as_str().unwrap().to_string());
    }
    assert_ne!(names[0], names[1]);
    assert!(names.iter().all(|n| n.starts_with("app-")), "{names:?}");
    for side in ["a", "b"] {
        let mut cmd = std::process::Command::new(support::bin());
        support::hermetic(&mut cmd);
        let dir = root.path().join(side).join("app");
        let out = cmd
            .args(["down", "--volumes"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    for name in names {
        assert_eq!(
            docker(&["ps", "-aq", "--filter", &format!("name=^{name}$")]),
            ""
        );
    }
}

#[test]
fn own_compose_file_with_renamed_services_keeps_probes_and_order() {
    let p = TestProject::empty("own-compose");
    let img = images();
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"ops/stack.yml\"\ngcp_project = \"own-local\"\n",
            p.name
        ),
    );
    p.write(
        "ops/stack.yml",
        &format!(
            r#"services:
  db:
    image: {pg}
    environment:
      POSTGRES_PASSWORD: admin-pw
    ports: ["5432"]
    volumes: [dbdata:/var/lib/postgresql/data]
    x-vibedev:
      kind: postgres
      database: shop
      user: shop_app
      password: shop-pw
  cache:
    image: {redis}
    ports: ["6379"]
    labels:
      dev.vibedev.kind: redis
    depends_on: [db]
  blobs:
    image: {gcs}
    command: ["-scheme", "http", "-port", "4443", "-backend", "memory"]
    ports: ["4443"]
    x-vibedev:
      kind: gcs
      buckets: [one, two]
volumes:
  dbdata:
"#,
            pg = img.postgres,
            redis = img.redis,
            gcs = img.gcs
        ),
    );
    let run = p.ok(&["up"]);
    // depends_on: cache is created only once db is ready.
    let ready_db = run.stderr.find("db         ready").expect("db ready line");
    let create_cache = run
        .stderr
        .find("cache      creating")
        .expect("cache creating line");
    assert!(ready_db < create_cache, "{run}");
    assert!(
        run.stderr.contains("created bucket one") && run.stderr.contains("created bucket two"),
        "{run}"
    );

    let vars = env(&p);
    assert!(
        vars["DATABASE_URL"].starts_with("postgres://shop_app:shop-pw@127.0.0.1:"),
        "{vars:?}"
    );
    assert!(vars["DATABASE_URL"].ends_with("/shop"), "{vars:?}");
    assert!(
        vars["REDIS_URL"].starts_with("redis://127.0.0.1:"),
        "{vars:?}"
    );
    assert_eq!(vars["TEMPLATES_BUCKET"], "one");
    assert_eq!(vars["GOOGLE_CLOUD_PROJECT"], "own-local");
    assert!(!vars.contains_key("FIRESTORE_EMULATOR_HOST"));

    let st = support::status(&p);
    assert_eq!(st.len(), 3);
    assert!(st.values().all(|s| s["ready"] == true), "{st:?}");
    assert_eq!(st["cache"]["kind"], "redis");
}

#[test]
fn env_formats_read_back_in_a_shell_and_as_dotenv() {
    let p = TestProject::new("env-formats");
    p.ok(&["up", "redis", "gcs"]);
    let json = env(&p);
    let shell = p.ok(&["env", "--format", "shell"]);
    let script = format!(
        "{}\nprintf '%s|%s' \"$REDIS_URL\" \"$STORAGE_EMULATOR_HOST\"",
        shell.stdout
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}|{}", json["REDIS_URL"], json["STORAGE_EMULATOR_HOST"])
    );
    let dotenv = p.ok(&["env"]);
    let parsed: Vec<(String, String)> = dotenvy::from_read_iter(dotenv.stdout.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    let parsed: std::collections::BTreeMap<_, _> = parsed.into_iter().collect();
    assert_eq!(parsed, json);
}

/// Forwards TCP connections on a loopback port to the engine's unix socket, so a `tcp://`
/// DOCKER_HOST reaches the real engine.
fn tcp_proxy_to_engine() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    if let Ok(mut unix) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                    }
                });
            }
        });
    });
    port
}

#[test]
fn tcp_docker_host_reaches_the_engine() {
    let port = tcp_proxy_to_engine();
    let mut p = TestProject::new("tcp-host");
    p.env
        .push(("DOCKER_HOST".into(), format!("tcp://127.0.0.1:{port}")));
    let run = p.ok(&["up", "redis", "--verbose"]);
    assert!(
        run.stderr
            .contains(&format!("tcp://127.0.0.1:{port} (from DOCKER_HOST)")),
        "{run}"
    );
    let st = support::status(&p);
    assert_eq!(st["redis"]["ready"], true);
    p.ok(&["down"]);
}
