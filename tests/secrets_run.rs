//! `vibedev run -- CMD`: CMD gets `.env.gcp` in its environment (the existing environment wins),
//! signals reach it, and its exit status becomes vibedev's. Docker is pointed at a socket that does
//! not exist, so the stack's variables are left out with a warning and the command still runs.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Run;
use support::secrets::SecretsProject;

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkq\n-----END PRIVATE KEY-----\n";

fn pulled(tag: &str) -> SecretsProject {
    let p = SecretsProject::new(
        tag,
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nPRIVATE_KEY={{ secret \"private-key\" }}\nAPP_ENV=development\n",
    );
    p.server
        .add_secret("jwt-secret", &[], &[b"jwt run-Vx40 $HOME"]);
    p.server.add_secret("private-key", &[], &[PEM.as_bytes()]);
    p.ok(&["secrets", "pull"]);
    p
}

#[test]
fn run_passes_env_file_values_and_the_exit_code() {
    let p = pulled("run-env");
    let run = p.run(&[
        "run",
        "--",
        "sh",
        "-c",
        "printf '%s' \"$JWT_SECRET\" > jwt.out; printf '%s' \"$PRIVATE_KEY\" > key.out; printf '%s' \"$APP_ENV\" > app.out; exit 7",
    ]);
    assert_eq!(run.code, Some(7), "{run}");
    let read = |f: &str| std::fs::read_to_string(p.project.path().join(f)).unwrap();
    assert_eq!(read("jwt.out"), "jwt run-Vx40 $HOME");
    assert_eq!(read("key.out"), PEM);
    assert_eq!(read("app.out"), "development");
    assert!(
        run.stderr
            .contains("the stack's connection variables are left out"),
        "{run}"
    );
    assert!(
        !run.stderr.contains("run-Vx40") && !run.stdout.contains("run-Vx40"),
        "{run}"
    );
}

#[test]
fn existing_environment_and_local_overrides_win() {
    let p = pulled("run-precedence");
    let mut text = p.env_file().unwrap();
    text.push_str("APP_ENV=from-overrides\n");
    std::fs::write(p.env_path(), text).unwrap();
    let run = Run::from(
        p.cmd(&[
            "run",
            "-v",
            "--",
            "sh",
            "-c",
            "printf '%s|%s' \"$JWT_SECRET\" \"$APP_ENV\" > out",
        ])
        .env("JWT_SECRET", "from-the-shell")
        .output()
        .unwrap(),
    );
    assert!(run.success(), "{run}");
    let out = std::fs::read_to_string(p.project.path().join("out")).unwrap();
    assert_eq!(out, "from-the-shell|from-overrides");
    assert!(
        run.stderr
            .contains("JWT_SECRET is already set in the environment, which wins"),
        "{run}"
    );
}

#[test]
fn run_without_env_file_warns_and_still_runs() {
    let p = SecretsProject::new("run-no-file", "");
    let run = p.run(&["run", "--", "sh", "-c", "exit 3"]);
    assert_eq!(run.code, Some(3), "{run}");
    assert!(run.stderr.contains(".env.gcp does not exist"), "{run}");
    assert!(run.stderr.contains("vibedev secrets pull"), "{run}");
}

#[test]
fn command_killed_by_a_signal_exits_128_plus_the_signal() {
    let p = SecretsProject::new("run-killed", "");
    let run = p.run(&["run", "--", "sh", "-c", "kill -KILL $$"]);
    assert_eq!(run.code, Some(128 + 9), "{run}");
}

#[test]
fn missing_command_exits_127() {
    let p = SecretsProject::new("run-missing", "");
    let run = p.run(&["run", "--", "vibedev-no-such-command-x"]);
    assert_eq!(run.code, Some(127), "{run}");
    assert!(
        run.stderr.contains("cannot run vibedev-no-such-command-x"),
        "{run}"
    );
}

/// Starts `vibedev run` with a command that traps `signal` and exits with `code`, waits until
/// the trap is set, signals vibedev (not the command), and returns vibedev's exit code.
fn signal_forwarded(tag: &str, signal: i32, name: &str, code: i32) -> Option<i32> {
    let p = SecretsProject::new(tag, "");
    let script = format!("trap 'exit {code}' {name}; touch ready; while :; do sleep 0.02; done");
    let mut child = p
        .cmd(&["run", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = p.project.path().join("ready");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the command never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling the vibedev process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("vibedev run did not exit after {name}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_is_forwarded_to_the_command() {
    assert_eq!(
        signal_forwarded("run-term", libc::SIGTERM, "TERM", 42),
        Some(42)
    );
}

#[test]
fn sigint_is_forwarded_to_the_command() {
    assert_eq!(
        signal_forwarded("run-int", libc::SIGINT, "INT", 43),
        Some(43)
    );
}

#[test]
fn sighup_is_forwarded_to_the_command() {
    assert_eq!(
        signal_forwarded("run-hup", libc::SIGHUP, "HUP", 44),
        Some(44)
    );
}

#[test]
fn variable_over_the_environment_limit_is_named_before_starting() {
    let p = pulled("run-too-large");
    let mut text = p.env_file().unwrap();
    text.push_str(&format!("HUGE_CERT='{}'\n", "x".repeat(140 * 1024)));
    std::fs::write(p.env_path(), text).unwrap();
    let run = p.run(&["run", "--", "sh", "-c", "touch started"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("HUGE_CERT in .env.gcp is 143360 bytes, over the 131072-byte limit"),
        "{run}"
    );
    assert!(run.stderr.contains("file="), "{run}");
    assert!(!p.project.path().join("started").exists());
}

#[test]
fn run_names_the_variables_the_template_added_since_the_pull_and_the_file_age() {
    let p = pulled("run-stale");
    // Written ten days and an hour ago, as its header says.
    let text = p.env_file().unwrap();
    let text = rewrite_written(&text, epoch_now() - (10 * 86400 + 3600));
    std::fs::write(p.env_path(), text).unwrap();
    p.project.write(
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nPRIVATE_KEY={{ secret \"private-key\" }}\nAPP_ENV=development\nNEW_FEATURE_KEY={{ secret \"new-feature\" }}\n",
    );
    // No network: nothing answers at the endpoint; run reads only the file.
    let run = Run::from(
        p.cmd(&[
            "run",
            "--",
            "sh",
            "-c",
            "printf '%s' \"$JWT_SECRET\" > jwt.out",
        ])
        .env("VIBEDEV_SECRET_MANAGER_ENDPOINT", "http://127.0.0.1:9")
        .output()
        .unwrap(),
    );
    assert!(run.success(), "{run}");
    assert_eq!(
        std::fs::read_to_string(p.project.path().join("jwt.out")).unwrap(),
        "jwt run-Vx40 $HOME"
    );
    assert!(
        run.stderr.contains(
            "(written 10d01h ago) lacks 1 variable the env template names: NEW_FEATURE_KEY"
        ),
        "{run}"
    );
    assert!(!run.stderr.contains("run-Vx40"), "{run}");

    // Nothing missing, but over a week old: the age and the way to see what changed.
    p.project.write(
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nPRIVATE_KEY={{ secret \"private-key\" }}\nAPP_ENV=development\n",
    );
    let run = p.run(&["run", "--", "true"]);
    assert!(run.success(), "{run}");
    assert!(run.stderr.contains("was written 10d01h ago"), "{run}");
    assert!(run.stderr.contains("vibedev secrets diff"), "{run}");
}

/// Seconds since the epoch, now.
fn epoch_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The header's `written: ...` set to `epoch` seconds (UTC, RFC 3339).
fn rewrite_written(text: &str, epoch: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{epoch}"), "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .unwrap();
    let stamp = String::from_utf8(out.stdout).unwrap().trim().to_string();
    text.lines()
        .map(|l| match l.split_once("; written: ") {
            Some((head, _)) if l.starts_with("# project: ") => format!("{head}; written: {stamp}"),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// Waits until `path` has `n` lines (or the deadline passes) and returns them.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn watch_restarts_the_command_once_when_a_pull_rotates_a_secret() {
    let p = pulled("run-watch");
    let err = p.project.path().join("vibedev.err");
    let mut vibedev = p
        .cmd(&[
            "run",
            "--watch",
            "--",
            "sh",
            "-c",
            "printf '%s\\n' \"$JWT_SECRET\" >> seen; trap 'exit 0' TERM; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let seen = p.project.path().join("seen");
    assert_eq!(wait_lines(&seen, 1), ["jwt run-Vx40 $HOME"]);

    p.server.add_version("jwt-secret", b"jwt run-Vx41 rotated");
    p.ok(&["secrets", "pull"]);
    let lines = wait_lines(&seen, 2);
    assert_eq!(lines, ["jwt run-Vx40 $HOME", "jwt run-Vx41 rotated"]);

    let pid = i32::try_from(vibedev.id()).unwrap();
    // SAFETY: signalling the vibedev process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = vibedev.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the command's exit code");
    let said = std::fs::read_to_string(&err).unwrap();
    assert_eq!(
        said.matches("restarting sh: .env.gcp changed (JWT_SECRET)")
            .count(),
        1,
        "{said}"
    );
    assert_eq!(wait_lines(&seen, 2).len(), 2, "restarted more than once");
    assert!(!said.contains("run-Vx4"), "{said}");
}
