//! `vibedev doctor` against the real Docker engine and the local test images: all checks pass on
//! a healthy running stack; a port held by a plain listener or another container is named; a
//! world-readable or git-tracked `.env.gcp` warns (exit code 4).

mod support;

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use support::{TestProject, images};

/// A project whose every doctor check can pass: test images, `redis_ports` for redis, a GCP
/// project and env template in the config, a service-account key in GOOGLE_APPLICATION_CREDENTIALS
/// (its presence and shape are checked, no token is asked for), gcloud's folders in a temp dir, a
/// git repository that ignores `.env.gcp`, a private `.env.gcp` newer than its template, and one
/// Drizzle migration.
fn ready_project(tag: &str, redis_ports: &str) -> (TestProject, tempfile::TempDir) {
    let mut p = TestProject::empty(tag);
    let img = images();
    p.write(
        "vibedev.toml",
        &format!(
            r#"project = "{name}"

[services.postgres]
image = "{pg}"
ports = ["5432"]

[services.redis]
image = "{redis}"
ports = [{redis_ports}]

[services.gcs]
image = "{gcs}"
ports = ["4443"]

[services.firestore]
image = "{fs}"
ports = ["8080"]

[secrets]
project = "vibedev-doctor-test"
template = "templates/env.gcp.tmpl"
"#,
            name = p.name,
            pg = img.postgres,
            redis = img.redis,
            gcs = img.gcs,
            fs = img.firestore,
        ),
    );
    p.write(
        "templates/env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\n",
    );
    p.write(
        "drizzle/meta/_journal.json",
        r#"{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1700000000000,"tag":"0000_init","breakpoints":true}]}"#,
    );
    p.write("drizzle/0000_init.sql", "CREATE TABLE t (id int);\n");
    p.write(".gitignore", ".env.gcp\n");
    git(p.path(), &["init", "-q"]);
    write_private(&p.path().join(".env.gcp"), "JWT_SECRET=local-only\n", 0o600);

    let home = tempfile::tempdir().unwrap();
    let key = home.path().join("key.json");
    std::fs::write(
        &key,
        r#"{"type":"service_account","project_id":"vibedev-doctor-test","client_email":"doctor@vibedev-doctor-test.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----\n","token_uri":"http://127.0.0.1:9/token"}"#,
    )
    .unwrap();
    for (k, v) in [
        ("GOOGLE_APPLICATION_CREDENTIALS", key.clone()),
        ("HOME", home.path().to_path_buf()),
        ("CLOUDSDK_CONFIG", home.path().join("gcloud")),
    ] {
        p.env.push((k.into(), v.display().to_string()));
    }
    (p, home)
}

fn write_private(path: &Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

/// `doctor --json`'s checks by name, after checking the shape.
fn checks(run: &support::Run) -> Vec<(String, String, String, Option<String>)> {
    let json = run.json();
    let list = json["checks"].as_array().expect("checks array");
    assert_eq!(json["exit_code"].as_i64(), run.code.map(i64::from), "{run}");
    list.iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
                c["message"].as_str().unwrap().to_string(),
                c["hint"].as_str().map(str::to_string),
            )
        })
        .collect()
}

fn check<'a>(
    all: &'a [(String, String, String, Option<String>)],
    name: &str,
) -> &'a (String, String, String, Option<String>) {
    all.iter()
        .find(|c| c.0 == name)
        .unwrap_or_else(|| panic!("no {name} check in {all:?}"))
}

const ALL_CHECKS: [&str; 13] = support::DOCTOR_CHECKS;

#[test]
fn doctor_passes_every_check_on_a_healthy_stack() {
    let mut made = None;
    let (redis_port, up) = support::on_a_free_port(|port| {
        let (p, home) = ready_project("doctor-healthy", &format!("\"127.0.0.1:{port}:6379\""));
        let up = p.run(&["up"]);
        made = Some((p, home));
        up
    });
    let (p, _home) = made.unwrap();
    assert!(up.success(), "{up}");

    let run = p.run(&["doctor"]);
    assert_eq!(run.code, Some(0), "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    for name in ALL_CHECKS {
        let line = lines
            .iter()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{run}"));
        assert!(line.starts_with("pass "), "{line}\n{run}");
    }
    assert!(!run.stdout.contains("hint:"), "{run}");
    assert!(
        run.stdout.contains("13 passed, 0 warned, 0 failed"),
        "{run}"
    );

    let json = p.run(&["doctor", "--json"]);
    assert_eq!(json.code, Some(0), "{json}");
    let all = checks(&json);
    let names: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names, ALL_CHECKS, "one entry per check");
    assert!(
        all.iter().all(|c| c.1 == "pass" && c.3.is_none()),
        "{all:#?}"
    );
    let ports = &check(&all, "ports").2;
    assert!(
        ports.contains(&format!(
            "{redis_port} (redis) held by this project's container {}-redis",
            p.name
        )),
        "{ports}"
    );
    assert!(check(&all, "docker").2.contains(" (API 1."), "{all:#?}");
    assert!(check(&all, "images").2.starts_with("4 present"), "{all:#?}");
    assert!(
        check(&all, "gcp-credentials")
            .2
            .contains("doctor@vibedev-doctor-test.iam.gserviceaccount.com")
    );
    assert!(
        check(&all, "gcp-project")
            .2
            .starts_with("vibedev-doctor-test (from vibedev.toml")
    );
    // The key's private part is never shown.
    assert!(!json.stdout.contains("not-a-real-key") && !json.stderr.contains("not-a-real-key"));
    assert!(
        check(&all, "migrations")
            .2
            .ends_with("1 migration, latest 0000_init; all applied to the database"),
        "{all:#?}"
    );

    // A teammate's new migration pulled while the stack runs: the doctor says it is not applied.
    p.write(
        "drizzle/meta/_journal.json",
        r#"{"version":"7","dialect":"postgresql","entries":[{"idx":0,"version":"7","when":1700000000000,"tag":"0000_init","breakpoints":true},{"idx":1,"version":"7","when":1700000000001,"tag":"0001_more","breakpoints":true}]}"#,
    );
    p.write("drizzle/0001_more.sql", "CREATE TABLE u (id int);\n");
    let behind = p.run(&["doctor", "--json"]);
    assert_eq!(behind.code, Some(4), "{behind}");
    let all = checks(&behind);
    let (_, status, message, hint) = check(&all, "migrations");
    assert_eq!(status, "warn", "{all:#?}");
    assert!(
        message.ends_with(
            "2 migrations, latest 0001_more; 1 not applied to the database yet: 0001_more"
        ),
        "{message}"
    );
    assert_eq!(hint.as_deref(), Some("apply them with `vibedev migrate`"));
    p.ok(&["migrate"]);
    assert_eq!(p.run(&["doctor"]).code, Some(0));
}

#[test]
fn doctor_names_the_process_holding_a_configured_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (p, _home) = ready_project("doctor-port", &format!("\"127.0.0.1:{port}:6379\""));

    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(5), "{run}");
    let all = checks(&run);
    let (_, status, message, hint) = check(&all, "ports");
    assert_eq!(status, "fail");
    assert!(
        message.contains(&format!(
            "port {port} for service redis is already in use on 127.0.0.1 by PID {} (",
            std::process::id()
        )),
        "{message}"
    );
    let hint = hint.as_deref().unwrap();
    assert!(hint.contains("[services.redis] ports"), "{hint}");
    // Only the port fails; the rest of the machine is fine.
    let failed: Vec<&str> = all
        .iter()
        .filter(|c| c.1 == "fail")
        .map(|c| c.0.as_str())
        .collect();
    assert_eq!(failed, ["ports"]);

    let text = p.run(&["doctor"]);
    assert_eq!(text.code, Some(5));
    assert!(
        text.stdout.contains(&format!("PID {}", std::process::id())),
        "{text}"
    );
    drop(listener);
}

#[test]
fn doctor_names_another_container_and_its_project_holding_a_port() {
    // The squatter's port is chosen by the engine (no window for anything else to take it), then
    // the project asks for that same port.
    let image = images().redis;
    Command::new("docker")
        .args(["pull", "-q", &image])
        .output()
        .unwrap();
    let name = format!(
        "vibedev-test-doctor-other-{}-{}-squatter",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let out = Command::new("docker")
        .args([
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "--label",
            "com.docker.compose.project=someone-else",
            "-p",
            "127.0.0.1::6379",
            &image,
            "redis-server",
            "--protected-mode",
            "no",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    struct Removed(String);
    impl Drop for Removed {
        fn drop(&mut self) {
            let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
        }
    }
    let _squatter = Removed(name.clone());
    let bound = support::docker(&["port", &name, "6379/tcp"]);
    let port: u16 = bound
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no host port in {bound:?}"));
    let (p, _home) = ready_project("doctor-other", &format!("\"127.0.0.1:{port}:6379\""));
    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(5), "{run}");
    let all = checks(&run);
    let message = &check(&all, "ports").2;
    assert!(
        message.contains(&format!(
            "by container {name} (compose project someone-else)"
        )),
        "{message}"
    );
}

#[test]
fn doctor_warns_when_env_file_is_world_readable() {
    let (p, _home) = ready_project("doctor-mode", "\"6379\"");
    write_private(&p.path().join(".env.gcp"), "JWT_SECRET=local-only\n", 0o644);

    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(4), "warnings only: {run}");
    let all = checks(&run);
    let (_, status, message, hint) = check(&all, "env-file");
    assert_eq!(status, "warn");
    assert!(message.contains("mode 0644"), "{message}");
    assert_eq!(
        hint.as_deref(),
        Some(
            format!(
                "chmod 600 {}",
                p.path().canonicalize().unwrap().join(".env.gcp").display()
            )
            .as_str()
        )
    );
    let others: Vec<_> = all
        .iter()
        .filter(|c| c.0 != "env-file" && c.1 != "pass")
        .collect();
    assert!(others.is_empty(), "{others:#?}");

    let text = p.run(&["doctor"]);
    assert_eq!(text.code, Some(4));
    assert!(
        text.stdout
            .lines()
            .any(|l| l.starts_with("warn  env-file ")),
        "{text}"
    );
    assert!(text.stdout.contains("hint: chmod 600"), "{text}");
}

#[test]
fn doctor_warns_when_env_file_is_tracked_by_git() {
    let (p, _home) = ready_project("doctor-tracked", "\"6379\"");
    git(p.path(), &["add", "-f", ".env.gcp"]);

    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(4), "{run}");
    let all = checks(&run);
    let (_, status, message, hint) = check(&all, "env-file-git");
    assert_eq!(status, "warn");
    assert!(message.contains("tracked by git"), "{message}");
    assert!(
        hint.as_deref()
            .unwrap()
            .starts_with("git rm --cached .env.gcp")
    );

    // Not ignored either: the same check says so once it is untracked.
    git(p.path(), &["rm", "-q", "--cached", ".env.gcp"]);
    std::fs::write(p.path().join(".gitignore"), "node_modules\n").unwrap();
    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(4), "{run}");
    let all = checks(&run);
    let (_, status, message, _) = check(&all, "env-file-git");
    assert_eq!(status, "warn");
    assert!(message.contains("not git-ignored"), "{message}");
}

#[test]
fn doctor_fails_when_an_image_is_neither_here_nor_pullable() {
    let mut p = TestProject::new("doctor-unpullable");
    // Nothing listens on port 1: the registry cannot be reached, and the image is not local.
    let image = "127.0.0.1:1/vibedev-test/nowhere:1";
    p.set("redis", "image", &format!("{image:?}"));
    p.write_config("");
    let run = p.run(&["doctor", "--json"]);
    assert_eq!(run.code, Some(5), "{run}");
    let all = checks(&run);
    let (_, status, message, hint) = check(&all, "images");
    assert_eq!(status, "fail", "{all:#?}");
    assert!(
        message.contains(&format!(
            "{image} is not here and its registry cannot be reached"
        )),
        "{message}"
    );
    assert!(
        !message.contains("postgres:15"),
        "only the unpullable one: {message}"
    );
    assert!(
        hint.as_deref().unwrap_or_default().contains("docker load"),
        "{hint:?}"
    );
}
