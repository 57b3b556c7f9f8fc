//! Faults on a real engine: each gives one clear error naming what went wrong, and leaves
//! nothing behind that the next `up` cannot converge from.

mod support;

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{TestProject, container_id, docker};

/// Every container of the project, as `name state` lines.
fn containers(p: &TestProject) -> Vec<String> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=dev.vibedev.project={}", p.name),
        "--format",
        "{{.Names}} {{.State}}",
    ]);
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn host_port_in_use_is_named_before_anything_is_created() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut p = TestProject::new("port-busy");
    p.set("redis", "ports", &format!("[\"{port}:6379\"]"));
    p.write_config("");
    let run = p.run(&["up", "postgres", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains(&format!("port {port} for service redis")),
        "{run}"
    );
    // The holder is this test process.
    assert!(
        run.stderr.contains(&format!("PID {}", std::process::id())),
        "{run}"
    );
    assert!(run.stderr.contains("hint:"), "{run}");
    assert!(
        containers(&p).is_empty(),
        "something was created: {:?}",
        containers(&p)
    );
    drop(listener);
}

#[test]
fn image_that_cannot_be_pulled_names_image_and_registry_answer() {
    let mut p = TestProject::new("bad-image");
    let image = "127.0.0.1:5000/vibedev-test/does-not-exist:1";
    p.set("redis", "image", &format!("{image:?}"));
    p.write_config("");
    let run = p.run(&["up", "postgres", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!("cannot pull image {image}")),
        "{run}"
    );
    // The registry's own words: it does not know that repository.
    assert!(
        run.stderr.to_lowercase().contains("not found") || run.stderr.contains("unknown"),
        "{run}"
    );
    assert!(
        containers(&p).is_empty(),
        "a failed pull created containers: {:?}",
        containers(&p)
    );
}

#[test]
fn missing_image_is_pulled_from_the_registry() {
    // A private tag of the redis test image, pushed to the local registry and removed locally.
    let base = support::images().redis;
    let tag = format!(
        "127.0.0.1:5000/vibedev-test/redis-pull:{}",
        std::process::id()
    );
    docker(&["tag", &base, &tag]);
    let push = std::process::Command::new("docker")
        .args(["push", &tag])
        .output()
        .unwrap();
    assert!(
        push.status.success(),
        "push: {}",
        String::from_utf8_lossy(&push.stderr)
    );
    docker(&["rmi", &tag]);
    assert_eq!(docker(&["images", "-q", &tag]), "");

    let mut p = TestProject::new("pull");
    p.set("redis", "image", &format!("{tag:?}"));
    p.write_config("");
    let run = p.ok(&["up", "redis"]);
    assert!(run.stderr.contains(&format!("pulling {tag}")), "{run}");
    assert!(run.stderr.contains(&format!("pulled {tag}")), "{run}");
    assert_ne!(
        docker(&["images", "-q", &tag]),
        "",
        "the image is not there after up"
    );
    p.ok(&["down"]);
    docker(&["rmi", &tag]);
}

#[test]
fn container_that_exits_during_startup_shows_its_last_log_lines() {
    let mut p = TestProject::new("exits");
    p.set(
        "redis",
        "command",
        r#"["sh", "-c", "echo starting; echo kaboom-no-config >&2; exit 7"]"#,
    );
    p.write_config("");
    let run = p.run(&["up", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("redis exited during startup (exit code 7)"),
        "{run}"
    );
    assert!(run.stderr.contains("kaboom-no-config"), "{run}");
    assert!(run.stderr.contains("log lines of redis"), "{run}");
}

#[test]
fn service_that_never_answers_fails_at_its_deadline_with_logs() {
    let mut p = TestProject::new("never-ready");
    // Redis listens on another port than the published one: the probe never gets an answer.
    p.set("redis", "command", r#"["redis-server", "--port", "6380"]"#);
    p.set("redis", "ready_timeout", "3");
    p.write_config("");
    let run = p.run(&["up", "redis"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains("redis did not become ready within 3 s"),
        "{run}"
    );
    assert!(
        run.stderr.contains("6380"),
        "the log tail is missing: {run}"
    );
}

#[test]
fn interrupted_up_converges_on_the_next_up() {
    let p = TestProject::new("ctrl-c");
    let mut child = p
        .cmd(&["up", "postgres", "redis", "gcs"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once a container is being created, before the stack is ready.
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut reader = BufReader::new(stderr);
    for line in reader.by_ref().lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("creating") {
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no container was being created: {seen}"
        );
    }
    // Keep reading what it prints while it winds down.
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");

    let run = p.ok(&["up", "postgres", "redis", "gcs"]);
    let names = containers(&p);
    assert_eq!(names.len(), 3, "duplicates or orphans: {names:?}\n{run}");
    assert!(names.iter().all(|n| n.ends_with(" running")), "{names:?}");
    for svc in ["postgres", "redis", "gcs"] {
        assert_eq!(container_id(&p, svc).lines().count(), 1, "{svc}");
    }
}
