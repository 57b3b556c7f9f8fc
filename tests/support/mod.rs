//! Test environment helpers shared by the integration tests: a throwaway project folder with a
//! unique project name, its `vibedev.toml` pointing at the locally built test images (see
//! `scripts/test-env`), a way to run the real `vibedev` binary in it hermetically, and cleanup
//! (`vibedev down --volumes`) when the test ends, pass or fail.
#![allow(dead_code)]

pub mod browser;
pub mod secret_manager;
pub mod secrets;
pub mod web;

/// `vibedev doctor`'s checks, in the order it runs and prints them (names are stable for scripts).
pub const DOCTOR_CHECKS: [&str; 13] = [
    "config",
    "docker",
    "images",
    "start-cache",
    "architecture",
    "disk",
    "ports",
    "gcp-credentials",
    "gcp-project",
    "env-file",
    "env-file-git",
    "env-file-template",
    "migrations",
];

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Test images, overridable by the variables `scripts/test-env --print-env` prints.
pub struct Images {
    pub postgres: String,
    pub redis: String,
    pub gcs: String,
    pub firestore: String,
    /// Google's Pub/Sub emulator (not in the built-in stack): `gcloud beta emulators pubsub start
    /// --host-port=H:P` as in the production image; port 8085 when given no arguments.
    pub pubsub: String,
}

pub fn images() -> Images {
    let get = |var: &str, default: &str| std::env::var(var).unwrap_or_else(|_| default.to_string());
    Images {
        postgres: get(
            "VIBEDEV_TEST_POSTGRES_IMAGE",
            "127.0.0.1:5000/vibedev-test/postgres:15",
        ),
        redis: get(
            "VIBEDEV_TEST_REDIS_IMAGE",
            "127.0.0.1:5000/vibedev-test/redis:7",
        ),
        gcs: get(
            "VIBEDEV_TEST_GCS_IMAGE",
            "127.0.0.1:5000/vibedev-test/fake-gcs-server:1.54.0",
        ),
        firestore: get(
            "VIBEDEV_TEST_FIRESTORE_IMAGE",
            "127.0.0.1:5000/vibedev-test/firestore-emulator:1.19.9",
        ),
        pubsub: get(
            "VIBEDEV_TEST_PUBSUB_IMAGE",
            "127.0.0.1:5000/vibedev-test/pubsub-emulator:0.8.20",
        ),
    }
}

/// The built binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vibedev"))
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique, valid project name for one test: `vdt-<tag>-<pid>-<n>`.
pub fn unique_name(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(20)
        .collect();
    format!(
        "vdt-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A throwaway project. Its stack is torn down (with volumes) when dropped.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub name: String,
    /// Extra environment for every command run in it.
    pub env: Vec<(String, String)>,
    /// `[services.NAME]` lines `write_config` renders (image and ports to start with).
    pub services: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    teardown: bool,
}

impl TestProject {
    /// An empty folder with no config yet.
    pub fn empty(tag: &str) -> TestProject {
        let img = images();
        let service = |image: &str, port: u16| {
            std::collections::BTreeMap::from([
                ("image".to_string(), format!("{image:?}")),
                ("ports".to_string(), format!("[\"{port}\"]")),
            ])
        };
        TestProject {
            dir: tempfile::Builder::new()
                .prefix("vibedev-test-")
                .tempdir()
                .expect("temp dir"),
            name: unique_name(tag),
            env: Vec::new(),
            services: std::collections::BTreeMap::from([
                ("postgres".to_string(), service(&img.postgres, 5432)),
                ("redis".to_string(), service(&img.redis, 6379)),
                ("gcs".to_string(), service(&img.gcs, 4443)),
                ("firestore".to_string(), service(&img.firestore, 8080)),
            ]),
            teardown: true,
        }
    }

    /// A project on the built-in stack with every image pointed at the test images and every
    /// port chosen by the engine (so tests never collide with each other or the machine).
    pub fn new(tag: &str) -> TestProject {
        let p = TestProject::empty(tag);
        p.write_config("");
        p
    }

    /// Sets `key = value` (a TOML value) in `[services.SERVICE]` for the next `write_config`.
    pub fn set(&mut self, service: &str, key: &str, value: &str) {
        self.services
            .entry(service.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
    }

    /// Writes `vibedev.toml`: the project name, the `[services.*]` settings, then `extra`.
    pub fn write_config(&self, extra: &str) {
        let mut text = format!("project = \"{}\"\n", self.name);
        for (service, keys) in &self.services {
            text.push_str(&format!("\n[services.{service}]\n"));
            for (k, v) in keys {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text.push('\n');
        text.push_str(extra);
        self.write("vibedev.toml", &text);
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the project, creating folders.
    pub fn write(&self, rel: &str, contents: &str) {
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, contents).expect("write file");
    }

    /// A `vibedev` command in the project folder with a hermetic environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin());
        cmd.args(args).current_dir(self.dir.path());
        hermetic(&mut cmd);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `vibedev ARGS` and returns its output.
    pub fn run(&self, args: &[&str]) -> Run {
        let output = self.cmd(args).output().expect("run vibedev");
        Run::from(output)
    }

    /// Runs `vibedev ARGS` and panics with its output unless it succeeded.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(run.success(), "vibedev {args:?} failed:\n{run}");
        run
    }

    /// Keeps the stack after the test (for debugging a failure by hand).
    pub fn keep(&mut self) {
        self.teardown = false;
    }
}

impl Drop for TestProject {
    fn drop(&mut self) {
        if !self.teardown {
            return;
        }
        if self.dir.path().join("vibedev.toml").exists() {
            let _ = self.cmd(&["down", "--volumes", "--quiet"]).output();
        }
        // Snapshots (`reset-db` and `migrate` take automatic ones) live in the user's data folder.
        let data = self
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "XDG_DATA_HOME")
            .map(|(_, v)| PathBuf::from(v))
            .or_else(|| std::env::var_os("XDG_DATA_HOME").map(PathBuf::from))
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")));
        if let Some(data) = data {
            let _ = std::fs::remove_dir_all(data.join("vibedev/snapshots").join(&self.name));
        }
        // Whatever `down` could not reach (a test may leave the config broken): by label.
        let label = format!("label=dev.vibedev.project={}", self.name);
        for (list, remove) in [
            (&["ps", "-aq", "--filter"][..], &["rm", "-f", "-v"][..]),
            (&["network", "ls", "-q", "--filter"], &["network", "rm"]),
            (&["volume", "ls", "-q", "--filter"], &["volume", "rm", "-f"]),
        ] {
            let mut args = list.to_vec();
            args.push(&label);
            let ids = docker_lenient(&args);
            if !ids.is_empty() {
                let mut rm = remove.to_vec();
                rm.extend(ids.lines());
                let _ = Command::new("docker").args(&rm).output();
            }
        }
    }
}

/// Strips vibedev's own variables and anything that would make output depend on the machine.
pub fn hermetic(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("VIBEDEV_") && !key.starts_with("VIBEDEV_TEST_") {
            cmd.env_remove(&key);
        }
    }
    // Variables of the developer's shell that change what vibedev does.
    cmd.env("NO_COLOR", "1")
        .env("CI", "true")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("COMPOSE_PROFILES");
}

/// A finished command: exit code and both streams as text.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Run {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `vibedev status --json` as a map from service to its object.
pub fn status(project: &TestProject) -> std::collections::BTreeMap<String, serde_json::Value> {
    let run = project.ok(&["status", "--json"]);
    run.json()
        .as_array()
        .expect("status --json is an array")
        .iter()
        .map(|s| {
            (
                s["service"].as_str().expect("service").to_string(),
                s.clone(),
            )
        })
        .collect()
}

/// `vibedev env --format json` as a map.
pub fn env(project: &TestProject) -> std::collections::BTreeMap<String, String> {
    let run = project.ok(&["env", "--format", "json"]);
    run.json()
        .as_object()
        .expect("env json is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect()
}

/// Runs `docker` (the CLI) for checks from outside vibedev and fails the test unless the CLI
/// succeeded (so an empty listing means "none", never "the query failed"); returns trimmed stdout.
pub fn docker(args: &[&str]) -> String {
    docker_ok(args)
}

/// Best-effort `docker` for cleanup only (never for checks): stdout, or empty when the CLI failed.
fn docker_lenient(args: &[&str]) -> String {
    match Command::new("docker").args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => String::new(),
    }
}

/// The container id of a project's service (empty when none).
pub fn container_id(project: &TestProject, service: &str) -> String {
    docker(&[
        "ps",
        "-aq",
        "--no-trunc",
        "--filter",
        &format!("label=dev.vibedev.project={}", project.name),
        "--filter",
        &format!("label=dev.vibedev.service={service}"),
    ])
}

/// A TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Runs `attempt` with a host port that was free a moment ago; when something else took that
/// port before the stack bound it (vibedev then refuses with "port N for service ..."), again with
/// another. Returns the port and the run that did not lose that race.
pub fn on_a_free_port(mut attempt: impl FnMut(u16) -> Run) -> (u16, Run) {
    for _ in 0..5 {
        let port = free_port();
        let run = attempt(port);
        if !(run.code == Some(1) && run.stderr.contains(&format!("port {port} for service"))) {
            return (port, run);
        }
    }
    panic!("five free ports were taken before the stack could bind them");
}

/// Ids of the project's `network`s or `volume`s (by vibedev's project label).
pub fn labelled(project: &TestProject, kind: &str) -> Vec<String> {
    let label = format!("label=dev.vibedev.project={}", project.name);
    docker(&[kind, "ls", "-q", "--filter", &label])
        .lines()
        .map(str::to_string)
        .collect()
}

/// Runs `docker` (the CLI) and fails the test unless it succeeded; returns trimmed stdout.
pub fn docker_ok(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The subcommands listed in the `Commands:` table of clap's `--help` output: the first word of
/// each line indented by exactly two spaces, up to the next section (continuation lines of a
/// description are indented further and are not entries).
pub fn help_commands(help: &str) -> Vec<String> {
    let mut lines = help.lines().skip_while(|l| l.trim_end() != "Commands:");
    assert!(lines.next().is_some(), "no Commands: section in:\n{help}");
    lines
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect()
}
