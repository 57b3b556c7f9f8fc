//! `vibedev config` and the compose reader as a user meets them, without a Docker engine: the
//! resolved stack printed as Compose (accepted by docker-compose), masked values, profiles from
//! the flag, the environment and vibedev.toml, warnings and errors with positions.

mod support;

use std::process::Command;

use support::TestProject;

const COMPOSE: &str = r#"x-common: &common
  restart: unless-stopped
  labels: {team: core}
services:
  db:
    <<: *common
    image: postgres:15
    env_file: [db.env]
    environment:
      <<: {FROM_ANCHOR: "yes"}
      POSTGRES_DB: app
      PASSWORD_FILE: /run/secrets/pw
    volumes: ["data:/var/lib/postgresql/data"]
    secrets: [pw]
  tools:
    image: alpine
    profiles: [tools]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data: {}
secrets:
  pw: {file: ./pw.txt}
"#;

fn project(tag: &str, toml_extra: &str) -> TestProject {
    let p = TestProject::empty(tag);
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\ncompose = \"compose.yml\"\n{toml_extra}",
            p.name
        ),
    );
    p.write("compose.yml", COMPOSE);
    p.write("db.env", "POSTGRES_PASSWORD=hunter2-from-env-file\n");
    p.write("pw.txt", "file-secret\n");
    p
}

fn services(p: &TestProject, args: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let mut cmd = p.cmd(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn config_prints_the_resolved_stack_that_docker_compose_accepts() {
    let p = project(
        "config-accepted",
        "[services.db]\nenv = { EXTRA = \"from-toml\" }\n",
    );
    let run = p.ok(&["config"]);
    let out = &run.stdout;
    assert!(
        !out.contains("hunter2"),
        "env_file values are masked:\n{out}"
    );
    assert!(out.contains("POSTGRES_PASSWORD: \"********\""), "{out}");
    assert!(out.contains("EXTRA: from-toml"), "{out}");
    assert!(out.contains("FROM_ANCHOR: \"yes\""), "{out}");
    assert!(out.contains("restart: unless-stopped"), "{out}");
    assert!(
        !out.contains("tools:"),
        "a service of an inactive profile is left out:\n{out}"
    );
    let file = p.path().join("resolved.yml");
    std::fs::write(&file, out).unwrap();
    let dc = Command::new("docker-compose")
        .args(["-f", file.to_str().unwrap(), "config", "-q"])
        .output()
        .expect("docker-compose is installed");
    assert!(
        dc.status.success(),
        "docker-compose rejects the output:\n{}\n{out}",
        String::from_utf8_lossy(&dc.stderr)
    );
    let json = p.ok(&["config", "--format", "json"]).json();
    assert_eq!(json["services"]["db"]["environment"]["POSTGRES_DB"], "app");
    assert_eq!(json["name"], p.name.as_str());
}

#[test]
fn profiles_come_from_the_flag_the_environment_and_the_toml() {
    let p = project("config-profiles", "");
    assert_eq!(services(&p, &["config", "--services"], &[]), ["db"]);
    assert_eq!(
        services(&p, &["config", "--services", "--profile", "tools"], &[]),
        ["db", "tools"]
    );
    assert_eq!(
        services(
            &p,
            &["config", "--services"],
            &[("COMPOSE_PROFILES", "ops,tools")]
        ),
        ["db", "tools"]
    );
    let p = project("config-profiles-toml", "profiles = [\"tools\"]\n");
    assert_eq!(
        services(&p, &["config", "--services"], &[]),
        ["db", "tools"]
    );
}

#[test]
fn unset_variable_is_a_warning_and_required_one_an_error_without_values() {
    let p = project("config-vars", "");
    p.write(
        "compose.yml",
        "services:\n  db:\n    image: \"postgres:${VIBEDEV_T_UNSET_TAG}\"\n",
    );
    let run = p.ok(&["config"]);
    assert!(
        run.stderr.contains(
            "The \"VIBEDEV_T_UNSET_TAG\" variable is not set. Defaulting to a blank string."
        ),
        "{run}"
    );
    assert!(run.stderr.contains("services.db.image"), "{run}");
    p.write(".env", "SECRET=\"pa: ss # x\"\n");
    p.write(
        "compose.yml",
        "services:\n  db:\n    image: x\n    environment: {P: \"${SECRET}\"}\n    ports: [\"${SECRET}\"]\n    labels: {k: \"${VIBEDEV_T_NEEDED:?set VIBEDEV_T_NEEDED first}\"}\n",
    );
    let run = p.run(&["config"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("compose.yml:6:"), "{run}");
    assert!(run.stderr.contains("set VIBEDEV_T_NEEDED first"), "{run}");
    assert!(
        !run.stderr.contains("pa: ss") && !run.stdout.contains("pa: ss"),
        "{run}"
    );
}

#[test]
fn what_the_specification_rejects_is_an_error_at_its_position() {
    let p = project("config-schema", "");
    p.write(
        "compose.yml",
        "services:\n  db:\n    image: x\n    restart: always\n    ports:\n      - target: 80\n        publishd: 8080\n",
    );
    let run = p.run(&["config"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("compose.yml:7:9"), "{run}");
    assert!(run.stderr.contains("publishd"), "{run}");
}

#[test]
fn keys_vibedev_does_not_act_on_are_listed_with_verbose() {
    let p = project("config-ignored", "");
    p.write(
        "compose.yml",
        "services:\n  db:\n    image: x\n    cap_add: [NET_ADMIN]\n    runtime: runc\n",
    );
    let run = p.ok(&["-v", "config", "--services"]);
    assert!(run.stderr.contains("db.cap_add"), "{run}");
    assert!(run.stderr.contains("db.runtime"), "{run}");
}
