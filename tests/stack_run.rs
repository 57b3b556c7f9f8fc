//! `vibedev run` with a running stack: the command gets the stack's connection variables
//! (`vibedev env`), under `.env.gcp`, under the existing environment.

mod support;

use support::{Run, TestProject};

#[test]
fn run_gives_the_command_the_stacks_connection_variables() {
    let p = TestProject::new("run-stack");
    p.ok(&["up", "redis"]);
    let env = support::env(&p);
    p.write(
        ".env.gcp",
        "# --- local overrides ---\nGOOGLE_CLOUD_PROJECT=from-env-file\nFROM_FILE=yes\n",
    );
    let script = "printf '%s|%s|%s|%s' \"$REDIS_URL\" \"$GOOGLE_CLOUD_PROJECT\" \"$FROM_FILE\" \"$STORAGE_EMULATOR_HOST\" > out";
    let out = || std::fs::read_to_string(p.path().join("out")).unwrap();

    let run = p.ok(&["run", "--", "sh", "-c", script]);
    assert!(env["REDIS_URL"].starts_with("redis://"), "{env:?}");
    assert_eq!(
        out(),
        format!("{}|from-env-file|yes|", env["REDIS_URL"]),
        "the stack's variables, under .env.gcp; services not running give none"
    );
    assert!(!run.stderr.contains("left out"), "{run}");

    let run = Run::from(
        p.cmd(&["run", "--", "sh", "-c", script])
            .env("REDIS_URL", "redis://from-the-shell:1")
            .env("FROM_FILE", "shell")
            .output()
            .unwrap(),
    );
    assert!(run.success(), "{run}");
    assert_eq!(out(), "redis://from-the-shell:1|from-env-file|shell|");
    assert!(
        run.stderr.contains(
            "REDIS_URL is already set in the environment, which wins over the stack's value"
        ),
        "{run}"
    );
}

/// Waits until `path` has `n` lines (or 60 s pass) and returns them.
fn wait_lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect();
        if lines.len() >= n || std::time::Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn run_watch_restarts_the_command_when_the_stacks_variables_change() {
    let mut p = TestProject::new("run-watch-stack");
    p.ok(&["up", "redis"]);
    let before = support::env(&p)["REDIS_URL"].clone();
    let err = p.path().join("vibedev.err");
    let mut vibedev = p
        .cmd(&[
            "run",
            "--watch",
            "--",
            "sh",
            "-c",
            "printf '%s\\n' \"$REDIS_URL\" >> seen; trap 'exit 0' TERM; while :; do sleep 0.05; done",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let seen = p.path().join("seen");
    assert_eq!(wait_lines(&seen, 1), std::slice::from_ref(&before));

    // Redis moves to another host port: the command is given the new URL.
    let (_, up) = support::on_a_free_port(|port| {
        p.set("redis", "ports", &format!("[\"{port}:6379\"]"));
        p.write_config("");
        p.run(&["up", "redis"])
    });
    assert!(up.success(), "{up}");
    let after = support::env(&p)["REDIS_URL"].clone();
    assert_ne!(after, before);
    let lines = wait_lines(&seen, 2);
    assert_eq!(lines, [before, after]);

    let pid = i32::try_from(vibedev.id()).unwrap();
    // SAFETY: signalling the vibedev process this test started.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = vibedev.wait().unwrap();
    assert_eq!(status.code(), Some(0), "the command's exit code");
    let said = std::fs::read_to_string(&err).unwrap();
    assert_eq!(said.matches("restarting sh:").count(), 1, "{said}");
    assert!(said.contains("REDIS_URL"), "{said}");
}
