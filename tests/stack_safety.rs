//! Nothing breaks, nothing is lost: two commands at once on one project, a half-saved compose
//! file, a network removed behind vibedev's back, a paused container, a volume or mount that is
//! not what it should be, an engine address that makes no sense. Real engine, real files.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{TestProject, container_id, docker_ok, images, labelled};

/// A project with its own compose file: two Redis services (fast to start), `cache` and `store`.
fn two_redis(tag: &str) -> TestProject {
    let mut p = TestProject::empty(tag);
    p.services.clear();
    p.write_config("compose = \"compose.yml\"\n");
    write_compose(&p, &["cache", "store"]);
    p
}

fn write_compose(p: &TestProject, services: &[&str]) {
    let img = images();
    let mut text = String::from("services:\n");
    for s in services {
        text.push_str(&format!(
            "  {s}:\n    image: {}\n    ports: [\"6379\"]\n    x-vibedev: {{kind: redis}}\n",
            img.redis
        ));
    }
    p.write("compose.yml", &text);
}

/// The state of a service's container (`running`, `exited`, ...; empty when there is none).
fn state(p: &TestProject, service: &str) -> String {
    let id = container_id(p, service);
    if id.is_empty() {
        return String::new();
    }
    docker_ok(&["inspect", "-f", "{{.State.Status}}", &id])
}

fn redis_cli(p: &TestProject, service: &str, args: &[&str]) -> String {
    let id = container_id(p, service);
    let mut all = vec!["exec", id.as_str(), "redis-cli"];
    all.extend_from_slice(args);
    docker_ok(&all)
}

/// Starts `vibedev ARGS`, runs `act` (with the child's PID) once a line of its stderr contains
/// `moment`, and returns its exit code and everything it printed on stderr.
fn act_when(
    p: &TestProject,
    args: &[&str],
    moment: &str,
    act: impl FnOnce(u32),
) -> (Option<i32>, String) {
    let mut child = p
        .cmd(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    let mut act = Some(act);
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(moment)
            && let Some(act) = act.take()
        {
            act(child.id());
        }
    }
    (child.wait().unwrap().code(), seen)
}

#[test]
fn two_ups_at_once_share_one_network_and_both_succeed() {
    let p = two_redis("two-ups");
    let spawn = || {
        p.cmd(&["up"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        support::Run::from(a.wait_with_output().unwrap()),
        support::Run::from(b.wait_with_output().unwrap()),
    );
    assert!(a.success(), "first up:\n{a}");
    assert!(b.success(), "second up:\n{b}");
    // One of them waited for the other, and said who it waited for.
    let waited = [&a, &b]
        .iter()
        .filter(|r| r.stderr.contains("waiting for `vibedev up` (PID"))
        .count();
    assert_eq!(waited, 1, "first:\n{a}\nsecond:\n{b}");
    assert_eq!(labelled(&p, "network").len(), 1, "duplicate networks");
    for svc in ["cache", "store"] {
        assert_eq!(container_id(&p, svc).lines().count(), 1, "{svc}");
        assert_eq!(state(&p, svc), "running", "{svc}");
    }
    // And the project is not wedged: down and up again both work.
    p.ok(&["down"]);
    p.ok(&["up"]);
}

#[test]
fn second_command_waits_for_the_holder_and_names_it() {
    let mut p = two_redis("lock-wait");
    let lock = std::env::temp_dir()
        .join(format!("vibedev-{}", unsafe { libc::getuid() }))
        .join(format!("{}.lock", p.name));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(&lock, format!("4242\n{now}\nmigrate\n")).unwrap();
    // Another process holds the lock (flock(1) itself, not its child, as any other holder would).
    let mut holder = Command::new("flock")
        .arg("--close")
        .arg(&lock)
        .args(["sleep", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    p.env.push(("VIBEDEV_LOCK_TIMEOUT".into(), "1".into()));
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("waiting for `vibedev migrate` (PID 4242"),
        "{run}"
    );
    assert!(
        run.stderr.contains("still holds its lock after 1 s"),
        "{run}"
    );
    assert!(run.stderr.contains("hint:"), "{run}");
    assert_eq!(container_id(&p, "cache"), "", "up ran without the lock");
    // Once the holder is gone (here: killed), the lock is free at once.
    holder.kill().unwrap();
    holder.wait().unwrap();
    let run = p.ok(&["up"]);
    assert!(!run.stderr.contains("waiting for"), "{run}");
}

#[test]
fn lock_of_a_killed_up_is_taken_over() {
    let p = two_redis("lock-killed");
    // SIGKILL once a container is being created: no cleanup of any kind.
    let (_, seen) = act_when(&p, &["up"], "creating", |pid| unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    });
    assert!(
        seen.contains("creating"),
        "never saw a container created:\n{seen}"
    );
    let run = p.ok(&["up"]);
    assert!(!run.stderr.contains("waiting for"), "{run}");
    for svc in ["cache", "store"] {
        assert_eq!(container_id(&p, svc).lines().count(), 1, "{svc}");
        assert_eq!(state(&p, svc), "running", "{svc}");
    }
}

#[test]
fn duplicate_project_networks_are_reduced_to_one() {
    let p = two_redis("dup-net");
    p.ok(&["up"]);
    let network = format!("{}_default", p.name);
    // What a concurrent run used to leave: a second network of the same name and label (the
    // engine's API allows it unless the client asks it to check).
    let body = format!(
        r#"{{"Name":"{network}","Driver":"bridge","Labels":{{"dev.vibedev.project":"{}"}}}}"#,
        p.name
    );
    let out = Command::new("curl")
        .args(["-sf", "--unix-socket", "/var/run/docker.sock", "-X", "POST"])
        .args(["-H", "Content-Type: application/json", "-d", &body])
        .arg("http://localhost/v1.41/networks/create")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(labelled(&p, "network").len(), 2);
    let run = p.ok(&["up"]);
    assert_eq!(labelled(&p, "network").len(), 1, "{run}");
    assert_eq!(state(&p, "cache"), "running");
    p.ok(&["down"]);
    assert!(labelled(&p, "network").is_empty());
}

#[test]
fn half_saved_compose_file_removes_nothing() {
    let p = two_redis("orphans");
    p.ok(&["up"]);
    redis_cli(&p, "store", &["SET", "kept", "yes"]);
    let store = container_id(&p, "store");

    // An editor saved an empty file: an error, not a plan.
    p.write("compose.yml", "services: {}\n");
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains("compose.yml: defines no services"),
        "{run}"
    );
    p.write("compose.yml", "");
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");

    // A truncated file that still has one service: the other is reported and kept.
    write_compose(&p, &["cache"]);
    let run = p.ok(&["up"]);
    assert!(
        run.stderr.contains(
            "store      kept: no longer in the stack (`vibedev up --remove-orphans` removes it)"
        ),
        "{run}"
    );
    assert_eq!(container_id(&p, "store"), store);
    assert_eq!(state(&p, "store"), "running");
    assert_eq!(redis_cli(&p, "store", &["GET", "kept"]), "yes");

    // Asked to, up removes it.
    let run = p.ok(&["up", "--remove-orphans"]);
    assert!(
        run.stderr
            .contains("store      removed (no longer in the stack)"),
        "{run}"
    );
    assert_eq!(container_id(&p, "store"), "");
    assert_eq!(state(&p, "cache"), "running");
}

#[test]
fn network_removed_behind_vibedevs_back_is_repaired() {
    let p = two_redis("net-gone");
    p.ok(&["up"]);
    let network = format!("{}_default", p.name);
    let cache = container_id(&p, "cache");
    let store = container_id(&p, "store");
    // Running containers cut off from their network, and the network gone.
    docker_ok(&["network", "disconnect", "-f", &network, &cache]);
    docker_ok(&["network", "disconnect", "-f", &network, &store]);
    docker_ok(&["network", "rm", &network]);
    assert_eq!(state(&p, "cache"), "running");
    let run = p.run(&["status", "--exit-code"]);
    assert_eq!(
        run.code,
        Some(7),
        "a service without its ports is not ready:\n{run}"
    );
    assert!(
        run.stdout.contains("cache") && run.stdout.contains(" no "),
        "{run}"
    );

    let run = p.ok(&["up"]);
    assert!(run.stderr.contains("lost the project network"), "{run}");
    assert_ne!(container_id(&p, "cache"), cache, "not recreated");
    p.ok(&["status", "--exit-code"]);

    // Stopped containers and the network gone: up repairs that too.
    docker_ok(&["stop", "-t", "1", &container_id(&p, "cache")]);
    docker_ok(&["stop", "-t", "1", &container_id(&p, "store")]);
    docker_ok(&["network", "rm", &network]);
    let run = p.ok(&["up"]);
    assert_eq!(state(&p, "cache"), "running", "{run}");
    assert_eq!(state(&p, "store"), "running", "{run}");
    assert_eq!(labelled(&p, "network").len(), 1);
}

#[test]
fn paused_container_is_unpaused() {
    let p = two_redis("paused");
    p.ok(&["up"]);
    let id = container_id(&p, "cache");
    docker_ok(&["pause", &id]);
    let run = p.ok(&["up"]);
    assert!(run.stderr.contains("cache      unpausing"), "{run}");
    assert_eq!(
        container_id(&p, "cache"),
        id,
        "recreated instead of unpaused"
    );
    assert_eq!(state(&p, "cache"), "running");
}

#[test]
fn start_failure_names_the_service_and_the_engines_reason() {
    let mut p = TestProject::empty("start-fails");
    p.services.clear();
    p.write_config("compose = \"compose.yml\"\n");
    // The engine itself refuses to start it: the entrypoint does not exist in the image.
    p.write(
        "compose.yml",
        &format!(
            "services:\n  redis:\n    image: {}\n    entrypoint: [\"/no/such/program\"]\n    ports: [\"6379\"]\n",
            images().redis
        ),
    );
    let run = p.run(&["up", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("error: cannot start redis: "), "{run}");
    assert!(run.stderr.contains("/no/such/program"), "{run}");
    assert!(run.stderr.contains("hint:"), "{run}");
    // The container the engine would not start is not left behind half-made.
    assert_eq!(container_id(&p, "redis"), "", "{run}");
}

#[test]
fn volume_vibedev_did_not_create_is_refused() {
    let p = TestProject::new("foreign-vol");
    let volume = format!("{}_redisdata", p.name);
    docker_ok(&["volume", "create", &volume]);
    let run = p.run(&["up", "redis"]);
    docker_ok(&["volume", "rm", &volume]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "volume {volume} exists but was not created by vibedev for project {}",
            p.name
        )),
        "{run}"
    );
    assert!(run.stderr.contains("external: true"), "{run}");
    assert_eq!(container_id(&p, "redis"), "");
}

#[test]
fn foreign_network_of_the_project_name_is_refused() {
    let p = TestProject::new("foreign-net");
    let network = format!("{}_default", p.name);
    docker_ok(&["network", "create", &network]);
    let run = p.run(&["up", "redis"]);
    docker_ok(&["network", "rm", &network]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "network {network} exists but was not created by vibedev"
        )),
        "{run}"
    );
    assert_eq!(container_id(&p, "redis"), "");
}

#[test]
fn file_mounted_onto_an_image_folder_is_refused_before_anything_is_created() {
    let mut p = TestProject::empty("mount-file");
    p.services.clear();
    p.write_config("compose = \"compose.yml\"\n");
    p.write("redis.conf", "appendonly no\n");
    p.write(
        "compose.yml",
        &format!(
            "services:\n  cache:\n    image: {}\n    ports: [\"6379\"]\n    volumes: [\"./redis.conf:/data\", \"./new-folder:/extra\"]\n    x-vibedev: {{kind: redis}}\n",
            images().redis
        ),
    );
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("service cache: cannot mount")
            && run
                .stderr
                .contains("redis.conf is a file, and /data is a folder in image"),
        "{run}"
    );
    assert_eq!(container_id(&p, "cache"), "", "{run}");
    assert!(labelled(&p, "network").is_empty(), "{run}");
    // With the mount fixed, the missing source folder is created as Compose does.
    p.write(
        "compose.yml",
        &format!(
            "services:\n  cache:\n    image: {}\n    ports: [\"6379\"]\n    volumes: [\"./new-folder:/extra\"]\n    x-vibedev: {{kind: redis}}\n",
            images().redis
        ),
    );
    let run = p.ok(&["up"]);
    assert!(p.path().join("new-folder").is_dir(), "{run}");
}

#[test]
fn docker_host_that_makes_no_sense_is_a_usage_error() {
    let mut p = TestProject::new("bad-host");
    p.env.push(("DOCKER_HOST".into(), "garbage://x".into()));
    let run = p.run(&["up", "redis"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("garbage://x"), "{run}");
    p.env.clear();
}

#[test]
fn compose_postgres_credentials_are_kept_and_used() {
    let mut p = TestProject::empty("pg-creds");
    p.services.clear();
    p.write_config("compose = \"compose.yml\"\n");
    p.write(
        "compose.yml",
        &format!(
            "services:\n  db:\n    image: {}\n    environment: {{POSTGRES_USER: shop, POSTGRES_PASSWORD: s3cret-pw, POSTGRES_DB: shopdb}}\n    ports: [\"5432\"]\n    x-vibedev: {{kind: postgres}}\n",
            images().postgres
        ),
    );
    p.ok(&["up"]);
    let url = support::env(&p)["DATABASE_URL"].clone();
    assert!(url.starts_with("postgres://shop:s3cret-pw@"), "{url}");
    assert!(url.ends_with("/shopdb"), "{url}");
    // A second up leaves the role's password as the compose file says.
    p.ok(&["up"]);
    let id = container_id(&p, "db");
    let out = Command::new("docker")
        .args(["exec", "-e", "PGPASSWORD=s3cret-pw", &id])
        .args([
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "shop",
            "-d",
            "shopdb",
            "-tAc",
            "SELECT current_user",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "shop");
}

/// A Unix-socket proxy in front of the real engine that can be cut, as an engine that dies.
struct EngineProxy {
    dir: tempfile::TempDir,
    streams: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
}

impl EngineProxy {
    fn start() -> EngineProxy {
        use std::os::unix::net::{UnixListener, UnixStream};
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("engine.sock")).unwrap();
        let streams = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let tracked = streams.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(engine) = UnixStream::connect("/var/run/docker.sock") else {
                    return;
                };
                let pipe = |mut from: UnixStream, mut to: UnixStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                let mut t = tracked.lock().unwrap();
                t.push(client.try_clone().unwrap());
                t.push(engine.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), engine.try_clone().unwrap());
                pipe(engine, client);
            }
        });
        EngineProxy { dir, streams }
    }

    fn url(&self) -> String {
        format!("unix://{}", self.dir.path().join("engine.sock").display())
    }

    /// The engine is gone: no new connection is accepted, open ones are closed.
    fn cut(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("engine.sock"));
        for s in self.streams.lock().unwrap().iter() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

#[test]
fn engine_that_goes_away_during_up_exits_3() {
    let mut p = TestProject::new("engine-gone");
    let proxy = EngineProxy::start();
    p.env.push(("DOCKER_HOST".into(), proxy.url()));
    let (code, seen) = act_when(&p, &["up", "postgres", "redis"], "creating", |_| {
        proxy.cut()
    });
    assert_eq!(code, Some(3), "{seen}");
    assert!(seen.contains("error:"), "{seen}");
    assert!(
        seen.contains("the Docker engine stopped answering"),
        "{seen}"
    );
    assert!(
        seen.contains("hint: the Docker engine stopped answering: start it again"),
        "{seen}"
    );
    // The real engine is still there: the stack converges once it answers again.
    p.env.clear();
    p.ok(&["up", "postgres", "redis"]);
}

#[test]
fn up_interrupted_at_any_moment_leaves_ports_the_next_up_can_use() {
    let mut p = TestProject::new("ctrl-c-ports");
    // Fixed host ports: what a half-finished start would leave held by the engine's proxy.
    p.set(
        "redis",
        "ports",
        &format!("[\"{}:6379\"]", support::free_port()),
    );
    p.set(
        "gcs",
        "ports",
        &format!("[\"{}:4443\"]", support::free_port()),
    );
    p.write_config("");
    for (round, moment) in ["creating", "starting", "ready"].iter().enumerate() {
        if round > 0 {
            // Stopped containers: the next up starts them (the `starting` moment).
            for svc in ["redis", "gcs"] {
                docker_ok(&["stop", "-t", "1", &container_id(&p, svc)]);
            }
        }
        let (code, seen) = act_when(&p, &["up", "redis", "gcs"], moment, |pid| unsafe {
            libc::kill(pid as i32, libc::SIGINT);
        });
        // Interrupted (130), or finished before the signal landed (0).
        assert!(matches!(code, Some(130) | Some(0)), "{code:?}\n{seen}");
        let run = p.ok(&["up", "redis", "gcs"]);
        assert!(!run.stderr.contains("already in use"), "{run}");
    }
}

#[test]
fn watch_never_removes_a_service_a_half_saved_file_left_out() {
    let p = two_redis("watch-orphans");
    p.ok(&["up"]);
    let store = container_id(&p, "store");
    let mut watch = p
        .cmd(&["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    for stream in [
        Box::new(watch.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(watch.stderr.take().unwrap()),
    ] {
        let sink = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut t = sink.lock().unwrap();
                t.push_str(&line);
                t.push('\n');
            }
        });
    }
    let wait_for = |what: &str, n: usize| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while out.lock().unwrap().matches(what).count() < n {
            assert!(
                Instant::now() < deadline,
                "never saw {what:?}:\n{}",
                out.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("watching ", 1);
    // Saved half-way: only `cache` is left in the file, then nothing at all.
    write_compose(&p, &["cache"]);
    wait_for("config changed:", 1);
    p.write("compose.yml", "services: {}\n");
    wait_for("config changed:", 2);
    unsafe { libc::kill(watch.id() as i32, libc::SIGINT) };
    watch.wait().unwrap();
    let text = out.lock().unwrap().clone();
    assert!(text.contains("config changed: failed"), "{text}");
    assert!(text.contains("defines no services"), "{text}");
    assert_eq!(container_id(&p, "store"), store, "{text}");
    assert_eq!(state(&p, "store"), "running", "{text}");
}
