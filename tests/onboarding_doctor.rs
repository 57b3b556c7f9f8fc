//! `vibedev doctor` where no Docker engine answers (DOCKER_HOST pointing at a closed port): the
//! engine check fails with the exact next step, the other checks still run, a broken
//! vibedev.toml is reported by line and column, and the JSON has one entry per check.

mod support;

use serde_json::Value;
use support::{Run, TestProject};

const NOWHERE: &str = "tcp://127.0.0.1:1";

fn doctor(p: &TestProject, args: &[&str]) -> Run {
    let mut full = vec!["doctor"];
    full.extend_from_slice(args);
    let mut cmd = p.cmd(&full);
    let home = p.path().join(".home");
    cmd.env("DOCKER_HOST", NOWHERE)
        .env("HOME", &home)
        .env("CLOUDSDK_CONFIG", home.join("gcloud"))
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("GOOGLE_CLOUD_PROJECT")
        .env_remove("CLOUDSDK_CORE_PROJECT")
        .env_remove("CLOUDSDK_CORE_ACCOUNT");
    Run::from(cmd.output().unwrap())
}

fn by_name<'a>(json: &'a Value, name: &str) -> &'a Value {
    json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check: {json:#}"))
}

#[test]
fn doctor_with_docker_host_pointing_at_nothing_fails_with_the_hint() {
    let p = TestProject::new("doctor-nohost");
    let run = doctor(&p, &[]);
    assert_eq!(run.code, Some(5), "{run}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("fail  docker "))
        .unwrap_or_else(|| panic!("{run}"));
    assert!(
        lines[i].contains(&format!(
            "no Docker engine answers at {NOWHERE} (from DOCKER_HOST)"
        )),
        "{run}"
    );
    assert!(
        lines[i + 1].trim_start().starts_with(&format!(
            "hint: start the Docker engine at {NOWHERE}, or unset DOCKER_HOST to use the default socket"
        )),
        "{run}"
    );
    for needs_engine in ["images", "architecture", "disk"] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("skip  {needs_engine} "))),
            "{needs_engine}: {run}"
        );
    }
    // Ports are still checked from this side.
    assert!(lines.iter().any(|l| l.starts_with("pass  ports ")), "{run}");

    let json = doctor(&p, &["--json"]).json();
    assert_eq!(json["status"], "fail");
    assert_eq!(json["exit_code"], 5);
    let docker = by_name(&json, "docker");
    assert_eq!(docker["status"], "fail");
    assert!(
        docker["hint"]
            .as_str()
            .unwrap()
            .contains("unset DOCKER_HOST")
    );
}

#[test]
fn doctor_json_parses_with_one_entry_per_check() {
    let p = TestProject::new("doctor-json");
    let run = doctor(&p, &["--json"]);
    let json = run.json();
    let checks = json["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, support::DOCTOR_CHECKS);
    for c in checks {
        assert!(
            ["pass", "skip", "warn", "fail"].contains(&c["status"].as_str().unwrap()),
            "{c}"
        );
        assert!(!c["message"].as_str().unwrap().is_empty(), "{c}");
        let warns_or_fails = c["status"] == "warn" || c["status"] == "fail";
        assert_eq!(
            c["hint"].is_string(),
            warns_or_fails,
            "a hint exactly where something is wrong: {c}"
        );
    }
    // The human output has the same checks, one line each.
    let text = doctor(&p, &[]);
    for name in names {
        assert!(
            text.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{name}:\n{text}"
        );
    }
    assert_eq!(text.code, run.code);
}

#[test]
fn doctor_reports_a_broken_config_by_line_and_column_and_runs_the_rest() {
    let p = TestProject::empty("doctor-badcfg");
    p.write(
        "vibedev.toml",
        "project = \"ok\"\n\n[secrets]\nprojekt = \"typo\"\n",
    );
    let run = doctor(&p, &["--json"]);
    assert_eq!(run.code, Some(5), "{run}");
    let json = run.json();
    let config = by_name(&json, "config");
    assert_eq!(config["status"], "fail");
    let message = config["message"].as_str().unwrap();
    assert!(message.contains("vibedev.toml:4:1: "), "{message}");
    assert!(message.contains("projekt"), "{message}");
    assert!(config["hint"].as_str().unwrap().contains("fix the file"));
    // Checks that do not need the config still ran.
    assert_eq!(by_name(&json, "env-file")["status"], "warn");
    assert_eq!(by_name(&json, "gcp-credentials")["status"], "warn");
    assert_eq!(by_name(&json, "ports")["status"], "skip");
}

#[test]
fn doctor_fails_on_a_credentials_variable_naming_a_user_credentials_file() {
    let p = TestProject::new("doctor-adc");
    p.write(
        "adc.json",
        r#"{"type":"authorized_user","client_id":"id","client_secret":"do-not-print-me","refresh_token":"nor-me"}"#,
    );
    let mut cmd = p.cmd(&["doctor", "--json"]);
    cmd.env("DOCKER_HOST", NOWHERE)
        .env("HOME", p.path().join(".home"))
        .env("GOOGLE_APPLICATION_CREDENTIALS", p.path().join("adc.json"));
    let run = Run::from(cmd.output().unwrap());
    let json = run.json();
    let creds = by_name(&json, "gcp-credentials");
    assert_eq!(creds["status"], "fail", "{run}");
    assert!(
        creds["message"]
            .as_str()
            .unwrap()
            .contains("\"authorized_user\""),
        "{run}"
    );
    assert!(
        creds["hint"]
            .as_str()
            .unwrap()
            .contains("gcloud auth application-default login")
    );
    for secret in ["do-not-print-me", "nor-me"] {
        assert!(
            !run.stdout.contains(secret) && !run.stderr.contains(secret),
            "{run}"
        );
    }
}

#[test]
fn doctor_uses_gcloud_application_default_credentials_and_configured_project() {
    let p = TestProject::new("doctor-gcloud");
    p.write(
        ".home/.config/gcloud/application_default_credentials.json",
        r#"{"type":"authorized_user","client_id":"id","client_secret":"s","refresh_token":"r"}"#,
    );
    p.write(".home/gcloud/active_config", "work\n");
    p.write(
        ".home/gcloud/configurations/config_work",
        "[core]\nproject = from-gcloud\n",
    );
    let json = doctor(&p, &["--json"]).json();
    let creds = by_name(&json, "gcp-credentials");
    assert_eq!(creds["status"], "pass", "{json:#}");
    assert!(
        creds["message"]
            .as_str()
            .unwrap()
            .starts_with("gcloud application-default credentials")
    );
    let project = by_name(&json, "gcp-project");
    assert_eq!(
        project["message"],
        "from-gcloud (from gcloud configuration \"work\")"
    );
    // The flag wins over everything.
    let json = doctor(&p, &["--json", "--project", "from-flag"]).json();
    assert_eq!(
        by_name(&json, "gcp-project")["message"],
        "from-flag (from --project)"
    );
}
