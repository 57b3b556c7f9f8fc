//! What Compose does beyond running images, on the real engine: `build:` (built once, rebuilt
//! when the context changes, a failing build shows its step's output), service `secrets:` and
//! `configs:` as read-only files, `depends_on` conditions with a one-shot job, and a Postgres
//! password read from a secret file.

mod support;

use std::process::Command;

use support::{TestProject, container_id, docker_ok, images};

/// A project whose stack is `compose` (the test images substituted for `@REDIS@` / `@POSTGRES@`).
fn project(tag: &str, compose: &str) -> TestProject {
    let mut p = TestProject::empty(tag);
    p.services.clear();
    p.write_config("compose = \"compose.yml\"\n");
    write(&p, compose);
    p
}

fn write(p: &TestProject, compose: &str) {
    let img = images();
    p.write(
        "compose.yml",
        &compose
            .replace("@REDIS@", &img.redis)
            .replace("@POSTGRES@", &img.postgres),
    );
}

fn exec(p: &TestProject, service: &str, script: &str) -> std::process::Output {
    Command::new("docker")
        .args(["exec", &container_id(p, service), "sh", "-c", script])
        .output()
        .unwrap()
}

fn exec_ok(p: &TestProject, service: &str, script: &str) -> String {
    let out = exec(p, service, script);
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const BUILT: &str = "services:
  app:
    build: ./app
    ports: [\"6379\"]
    x-vibedev: {kind: redis}
";

#[test]
fn built_image_is_rebuilt_only_when_its_context_changes() {
    let p = project("build", BUILT);
    p.write(
        "app/Dockerfile",
        &format!("FROM {}\nCOPY . /ctx/\n", images().redis),
    );
    p.write("app/greeting.txt", "hello");
    p.write("app/.dockerignore", "ignored.txt\n");
    p.write("app/ignored.txt", "not sent");
    let image = format!("{}-app", p.name);

    let run = p.ok(&["up"]);
    assert!(
        run.stderr
            .contains(&format!("app        building image {image}")),
        "{run}"
    );
    assert!(
        run.stderr.contains(&format!("built image {image}")),
        "{run}"
    );
    assert_eq!(exec_ok(&p, "app", "cat /ctx/greeting.txt"), "hello");
    let listing = exec_ok(&p, "app", "ls -a /ctx");
    assert!(
        !listing.contains("ignored.txt"),
        ".dockerignore not applied: {listing}"
    );

    // Nothing changed, or only an ignored file: no build, nothing recreated.
    let id = container_id(&p, "app");
    let run = p.ok(&["up"]);
    assert!(!run.stderr.contains("building"), "{run}");
    assert!(run.stdout.contains("nothing to change"), "{run}");
    p.write("app/ignored.txt", "still not sent");
    let run = p.ok(&["up"]);
    assert!(!run.stderr.contains("building"), "{run}");
    assert_eq!(container_id(&p, "app"), id);

    // A file of the context changed: built again, and the container made from the new image.
    p.write("app/greeting.txt", "hello again");
    let run = p.ok(&["up"]);
    assert!(run.stderr.contains("building image"), "{run}");
    assert!(run.stderr.contains("app        recreating"), "{run}");
    assert_ne!(container_id(&p, "app"), id);
    assert_eq!(exec_ok(&p, "app", "cat /ctx/greeting.txt"), "hello again");

    // --build builds even when nothing changed.
    let run = p.ok(&["up", "--build"]);
    assert!(run.stderr.contains("building image"), "{run}");
    docker_ok(&["rm", "-f", &container_id(&p, "app")]);
    p.ok(&["down"]);
    docker_ok(&["rmi", "-f", &image]);
}

#[test]
fn failing_build_shows_the_failing_steps_output_and_creates_nothing() {
    let p = project("build-fails", BUILT);
    p.write(
        "app/Dockerfile",
        &format!(
            "FROM {}\nRUN echo fine-step\nRUN echo step-output-Kx1 && exit 3\n",
            images().redis
        ),
    );
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains(&format!("error: cannot build image {}-app", p.name)),
        "{run}"
    );
    assert!(run.stderr.contains("step-output-Kx1"), "{run}");
    assert!(run.stderr.contains("hint:"), "{run}");
    assert_eq!(container_id(&p, "app"), "", "{run}");
}

#[test]
fn secrets_and_configs_become_read_only_files_with_their_content() {
    let mut p = project(
        "secrets",
        "secrets:
  api_key: {file: ./api_key.txt}
  token: {environment: VDT_TOKEN}
configs:
  app_conf: {content: \"mode=dev\\n\"}
services:
  cache:
    image: @REDIS@
    ports: [\"6379\"]
    secrets: [api_key, {source: token, target: tok, mode: 0440}]
    configs: [{source: app_conf, target: /etc/app.conf}]
    x-vibedev: {kind: redis}
",
    );
    p.write("api_key.txt", "key-value-Jw2\n");
    p.env.push(("VDT_TOKEN".into(), "tok-value-Zq8".into()));
    let run = p.ok(&["up"]);
    assert!(!run.stderr.contains("not used"), "{run}");
    assert_eq!(
        exec_ok(&p, "cache", "cat /run/secrets/api_key"),
        "key-value-Jw2"
    );
    let write = exec(&p, "cache", "echo x > /run/secrets/api_key");
    assert!(!write.status.success(), "a secret file is writable");
    assert_eq!(
        exec_ok(&p, "cache", "cat /run/secrets/tok"),
        "tok-value-Zq8"
    );
    assert_eq!(exec_ok(&p, "cache", "stat -c %a /run/secrets/tok"), "440");
    assert_eq!(exec_ok(&p, "cache", "cat /etc/app.conf"), "mode=dev");
    // The values never reach the container's labels or the engine's view of its config.
    let inspect = docker_ok(&["inspect", &container_id(&p, "cache")]);
    assert!(!inspect.contains("tok-value-Zq8"), "{inspect}");
    assert!(!inspect.contains("mode=dev"), "{inspect}");

    // A changed value recreates the container with it.
    p.env.retain(|(k, _)| k != "VDT_TOKEN");
    p.env.push(("VDT_TOKEN".into(), "tok-rotated-Ab3".into()));
    let run = p.ok(&["up"]);
    assert!(run.stderr.contains("recreating"), "{run}");
    assert_eq!(
        exec_ok(&p, "cache", "cat /run/secrets/tok"),
        "tok-rotated-Ab3"
    );

    // A secret whose file is missing is named before anything changes.
    std::fs::remove_file(p.path().join("api_key.txt")).unwrap();
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("secret \"api_key\""), "{run}");
    assert!(run.stderr.contains("api_key.txt does not exist"), "{run}");
    assert!(!run.stderr.contains("tok-rotated-Ab3"), "{run}");
}

const JOB_STACK: &str = "x-redis: &redis
  image: @REDIS@
  x-vibedev: {kind: redis}
secrets:
  pg_pw: {file: ./pg_pw.txt}
services:
  db:
    image: @POSTGRES@
    environment: {POSTGRES_PASSWORD_FILE: /run/secrets/pg_pw}
    secrets: [pg_pw]
    ports: [\"5432\"]
    x-vibedev: {kind: postgres}
  init:
    <<: *redis
    entrypoint: [\"sh\", \"-c\", \"INIT_SCRIPT\"]
    volumes: [shared:/shared]
  cache:
    <<: *redis
    ports: [\"6379\"]
    volumes: [shared:/shared]
    depends_on:
      init: {condition: service_completed_successfully}
      db: {condition: service_started}
  debug:
    <<: *redis
    ports: [\"6379\"]
    profiles: [debug]
volumes:
  shared:
";

fn inspect(p: &TestProject, service: &str, format: &str) -> String {
    docker_ok(&["inspect", "-f", format, &container_id(p, service)])
}

#[test]
fn one_shot_job_runs_to_completion_before_its_dependants() {
    let p = project(
        "job",
        &JOB_STACK.replace("INIT_SCRIPT", "sleep 1; echo done > /shared/init-done"),
    );
    p.write("pg_pw.txt", "pg-secret-Hy6\n");
    let run = p.ok(&["up"]);
    // The job ran to its end before the service that waits for it started.
    assert_eq!(inspect(&p, "init", "{{.State.ExitCode}}"), "0");
    let finished = inspect(&p, "init", "{{.State.FinishedAt}}");
    let started = inspect(&p, "cache", "{{.State.StartedAt}}");
    assert!(
        finished < started,
        "init finished {finished}, cache started {started}\n{run}"
    );
    assert_eq!(exec_ok(&p, "cache", "cat /shared/init-done"), "done");
    // The profile-gated service stays out; the merge key gave every service its settings.
    assert_eq!(container_id(&p, "debug"), "", "{run}");
    // Postgres's admin password came from the secret file: the app role exists and works.
    let url = support::env(&p)["DATABASE_URL"].clone();
    let psql = Command::new("psql")
        .args([url.as_str(), "-tAc", "SELECT current_user"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&psql.stdout).trim(),
        "vibesdk_app",
        "{psql:?}"
    );
    let status = support::status(&p);
    assert_eq!(
        status["init"]["ready"], true,
        "a completed job is ready: {status:?}"
    );

    // A completed job is not run again while its settings stay the same.
    let run = p.ok(&["up"]);
    assert_eq!(
        inspect(&p, "init", "{{.State.FinishedAt}}"),
        finished,
        "{run}"
    );
    assert!(run.stdout.contains("nothing to change"), "{run}");

    // A failing job fails up with its log; what waits for it is not started.
    write(
        &p,
        &JOB_STACK.replace("INIT_SCRIPT", "echo init-failed-Rt5; exit 3"),
    );
    docker_ok(&["rm", "-f", &container_id(&p, "cache")]);
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("init, a one-shot job others wait for, exited with code 3"),
        "{run}"
    );
    assert!(run.stderr.contains("init-failed-Rt5"), "{run}");
    assert_eq!(container_id(&p, "cache"), "", "{run}");
}
