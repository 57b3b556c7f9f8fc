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
