//! Command-line and configuration errors that need no Docker engine: they are reported before
//! vibedev connects to anything, name the file, line and column, and exit with code 2.

mod support;

use support::TestProject;

#[test]
fn toml_syntax_error_names_file_line_and_column() {
    let p = TestProject::empty("toml-syntax");
    p.write(
        "vibedev.toml",
        "project = \"x\"\n[services.postgres\nimage = \"y\"\n",
    );
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");
    let toml = p.path().join("vibedev.toml").canonicalize().unwrap();
    assert!(
        run.stderr.contains(&format!("{}:2:", toml.display())),
        "{run}"
    );
    assert!(!run.stderr.contains("panicked"), "{run}");
}

#[test]
fn toml_unknown_key_names_file_line_and_column() {
    let p = TestProject::empty("toml-unknown");
    p.write(
        "vibedev.toml",
        "project = \"x\"\n\n[services.redis]\nimagee = \"y\"\n",
    );
    let run = p.run(&["status"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("vibedev.toml:4:1"), "{run}");
    assert!(run.stderr.contains("imagee"), "{run}");
    assert!(run.stderr.contains("hint:"), "{run}");
}

#[test]
fn compose_unknown_key_names_file_line_and_column() {
    let p = TestProject::empty("compose-unknown");
    p.write(
        "vibedev.toml",
        "project = \"x\"\ncompose = \"stack/compose.yml\"\n",
    );
    p.write(
        "stack/compose.yml",
        "services:\n  db:\n    image: postgres\n    portz: [\"5432\"]\n",
    );
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("compose.yml:4:5"), "{run}");
    assert!(run.stderr.contains("portz"), "{run}");
}

#[test]
fn compose_syntax_error_names_file_and_line() {
    let p = TestProject::empty("compose-syntax");
    p.write("vibedev.toml", "compose = \"c.yml\"\n");
    p.write(
        "c.yml",
        "services:\n  db:\n    image: [postgres\n    ports: 1\n",
    );
    let run = p.run(&["up"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("c.yml:"), "{run}");
    assert!(!run.stderr.contains("panicked"), "{run}");
}

#[test]
fn unknown_service_is_refused_with_the_known_ones() {
    let p = TestProject::new("unknown-svc");
    let run = p.run(&["up", "mysql"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("unknown service \"mysql\""), "{run}");
    assert!(
        run.stderr.contains("postgres, firestore, redis, gcs"),
        "{run}"
    );
}

#[test]
fn override_for_a_service_the_stack_lacks_is_an_error() {
    let p = TestProject::empty("bad-override");
    p.write("vibedev.toml", "[services.mysql]\nimage = \"mysql\"\n");
    let run = p.run(&["status"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("[services.mysql]"), "{run}");
}

#[test]
fn config_is_found_walking_up_and_named_by_flag() {
    let p = TestProject::empty("walk-up");
    p.write("vibedev.toml", "project = \"walked\"\nimage_typo = 1\n");
    std::fs::create_dir_all(p.path().join("a/b")).unwrap();
    let run = p
        .cmd(&["status"])
        .current_dir(p.path().join("a/b"))
        .output()
        .map(support::Run::from)
        .unwrap();
    assert_eq!(
        run.code,
        Some(2),
        "the parent's config was not found: {run}"
    );
    assert!(run.stderr.contains("image_typo"), "{run}");

    p.write("other/custom.toml", "project = \"named\"\nother_typo = 1\n");
    let run = p.run(&["status", "--config", "other/custom.toml"]);
    assert!(run.stderr.contains("custom.toml:2:1"), "{run}");
}

#[test]
fn missing_config_file_named_by_flag_is_an_error() {
    let p = TestProject::empty("missing-config");
    let run = p.run(&["status", "--config", "nope.toml"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("nope.toml"), "{run}");
}

#[test]
fn no_docker_daemon_is_one_clear_message() {
    let p = TestProject::new("no-daemon");
    for args in [&["up"][..], &["status"], &["down"], &["env"], &["logs"]] {
        let run = p
            .cmd(args)
            .env("DOCKER_HOST", "unix:///nonexistent.sock")
            .output()
            .map(support::Run::from)
            .unwrap();
        assert_eq!(run.code, Some(3), "{args:?}: {run}");
        assert!(
            run.stderr
                .contains("no Docker engine answers at unix:///nonexistent.sock"),
            "{args:?}: {run}"
        );
        assert!(run.stderr.contains("DOCKER_HOST"), "{args:?}: {run}");
        assert!(run.stderr.contains("hint:"), "{args:?}: {run}");
        assert!(!run.stderr.contains("panicked"), "{args:?}: {run}");
        assert_eq!(run.stderr.matches("error:").count(), 1, "{args:?}: {run}");
    }
}

#[test]
fn tcp_docker_host_that_refuses_is_named() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let p = TestProject::new("tcp-refused");
    let url = format!("tcp://127.0.0.1:{port}");
    let run = p
        .cmd(&["status"])
        .env("DOCKER_HOST", &url)
        .output()
        .map(support::Run::from)
        .unwrap();
    assert_eq!(run.code, Some(3), "{run}");
    assert!(run.stderr.contains(&url), "{run}");
}

#[test]
fn help_lists_the_commands() {
    let p = TestProject::empty("help");
    let run = p.ok(&["--help"]);
    let table = support::help_commands(&run.stdout);
    let expected = [
        "up",
        "down",
        "status",
        "logs",
        "env",
        "doctor",
        "init",
        "completions",
        "migrate",
        "reset-db",
        "seed",
        "secrets",
        "watch",
        "run",
        "config",
        "snapshot",
        "ls",
        "prune",
        "branch",
        "ui",
        "help",
    ];
    assert_eq!(table, expected, "the command table of:\n{run}");
}
