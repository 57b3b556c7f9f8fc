//! `vibedev secrets diff` against the local Secret Manager: each variable in sync, changed (with
//! the versions), missing, without access, disabled, not pulled yet or no longer in the template;
//! `--json` and `--exit-code`; and no value in any output or in the header's records.

mod support;

use support::Run;
use support::secret_manager::Fault;
use support::secrets::SecretsProject;

const VALUES: [&str; 5] = [
    "jwt-Diff-v1-aaaa",
    "jwt-Diff-v2-bbbb",
    "sk-diff-Ok51-cccc",
    "pw-diff-Zq88-dddd",
    "sk-diff-new-eeee",
];

const TEMPLATE: &str = "JWT_SECRET={{ secret \"jwt-secret\" }}\nOPENAI_API_KEY={{ secret \"openai-api-key\" }}\nDB_PASSWORD={{ secret \"db-password\" version=\"1\" }}\nAPP_ENV=development\n";

fn pulled(tag: &str) -> SecretsProject {
    let p = SecretsProject::new(tag, TEMPLATE);
    p.server
        .add_secret("jwt-secret", &[], &[VALUES[0].as_bytes()]);
    p.server
        .add_secret("openai-api-key", &[], &[VALUES[2].as_bytes()]);
    p.server
        .add_secret("db-password", &[], &[VALUES[3].as_bytes()]);
    assert_clean(&p.ok(&["secrets", "pull"]));
    p
}

/// No secret value in stdout or stderr.
fn assert_clean(run: &Run) {
    for value in VALUES {
        assert!(
            !run.stdout.contains(value) && !run.stderr.contains(value),
            "{value} printed:\n{run}"
        );
    }
}

/// `secrets diff --json`: the state of every variable, by key.
fn states(p: &SecretsProject, extra: &[&str]) -> (Run, serde_json::Value) {
    let mut args = vec!["secrets", "diff", "--json"];
    args.extend(extra);
    let run = p.run(&args);
    assert_clean(&run);
    let json = run.json();
    let mut by_key = serde_json::Map::new();
    for v in json["variables"].as_array().expect("variables") {
        by_key.insert(v["key"].as_str().unwrap().to_string(), v.clone());
    }
    (run, serde_json::Value::Object(by_key))
}

#[test]
fn fresh_pull_is_all_in_sync_and_exits_0() {
    let p = pulled("diff-fresh");
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(0), "{run}");
    for key in ["JWT_SECRET", "OPENAI_API_KEY", "DB_PASSWORD", "APP_ENV"] {
        assert_eq!(s[key]["state"], "in-sync", "{key}: {run}");
    }
    assert_eq!(s["JWT_SECRET"]["version"], "1");
    assert_eq!(s["JWT_SECRET"]["secret"], "jwt-secret");
    assert_eq!(run.json()["in_sync"], true);

    let human = p.ok(&["secrets", "status"]);
    assert_clean(&human);
    assert!(
        human.stdout.contains("all 4 variables are in sync"),
        "{human}"
    );
    assert!(human.stdout.contains("in sync (version 1)"), "{human}");
}

#[test]
fn rotated_secret_shows_changed_with_both_versions() {
    let p = pulled("diff-rotated");
    p.server.add_version("jwt-secret", VALUES[1].as_bytes());
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(8), "{run}");
    assert_eq!(s["JWT_SECRET"]["state"], "changed", "{run}");
    assert_eq!(s["JWT_SECRET"]["local_version"], "1");
    assert_eq!(s["JWT_SECRET"]["latest_version"], "2");
    assert_eq!(s["OPENAI_API_KEY"]["state"], "in-sync");
    // Pinned: a new version does not change it.
    p.server.add_version("db-password", VALUES[4].as_bytes());
    let (_, s) = states(&p, &[]);
    assert_eq!(s["DB_PASSWORD"]["state"], "in-sync");

    let human = p.run(&["secrets", "diff"]);
    assert_eq!(human.code, Some(0), "no --exit-code: {human}");
    assert_clean(&human);
    assert!(
        human
            .stdout
            .contains("changed in Secret Manager: local 1, latest 2"),
        "{human}"
    );
    // A pull brings it back in sync.
    assert_clean(&p.ok(&["secrets", "pull"]));
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(0), "{run}");
    assert_eq!(s["JWT_SECRET"]["version"], "2");
}

#[test]
fn template_lines_not_pulled_missing_and_no_longer_there_are_named() {
    let p = pulled("diff-template");
    p.server.add_secret("new-key", &[], &[VALUES[4].as_bytes()]);
    p.project.write(
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nDB_PASSWORD={{ secret \"db-password\" version=\"1\" }}\nNEW_KEY={{ secret \"new-key\" }}\nNOT_CREATED={{ secret \"not-created\" }}\nAPP_ENV=production\n",
    );
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(8), "{run}");
    assert_eq!(s["NEW_KEY"]["state"], "not-pulled", "{run}");
    assert_eq!(s["NOT_CREATED"]["state"], "missing", "{run}");
    assert_eq!(s["OPENAI_API_KEY"]["state"], "not-in-template", "{run}");
    assert_eq!(s["APP_ENV"]["state"], "changed", "{run}");
    assert_eq!(s["JWT_SECRET"]["state"], "in-sync", "{run}");
    let human = p.run(&["secrets", "diff"]);
    assert_clean(&human);
    for said in [
        "not in .env.gcp yet",
        "missing in Secret Manager",
        "no longer in the template",
    ] {
        assert!(human.stdout.contains(said), "{said}: {human}");
    }
}

#[test]
fn forbidden_secret_shows_no_access_and_the_role() {
    let p = pulled("diff-403");
    p.server.fault("openai-api-key", Fault::Status(403));
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(8), "{run}");
    assert_eq!(s["OPENAI_API_KEY"]["state"], "no-access", "{run}");
    assert_eq!(
        s["OPENAI_API_KEY"]["role"],
        "roles/secretmanager.secretAccessor"
    );
    assert_eq!(s["JWT_SECRET"]["state"], "in-sync", "{run}");
    let human = p.run(&["secrets", "diff"]);
    assert_clean(&human);
    assert!(
        human
            .stdout
            .contains("no access: ask for roles/secretmanager.secretAccessor"),
        "{human}"
    );
}

#[test]
fn disabled_versions_are_named() {
    let p = pulled("diff-disabled");
    // The pulled latest version is disabled: latest falls back to version 1.
    p.server.add_version("jwt-secret", VALUES[1].as_bytes());
    assert_clean(&p.ok(&["secrets", "pull"]));
    p.server.disable_version("jwt-secret", 2);
    // A pinned version is disabled.
    p.server.disable_version("db-password", 1);
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(8), "{run}");
    assert_eq!(s["JWT_SECRET"]["state"], "disabled", "{run}");
    assert_eq!(s["JWT_SECRET"]["version"], "2");
    assert_eq!(s["JWT_SECRET"]["latest_version"], "1");
    assert_eq!(s["DB_PASSWORD"]["state"], "disabled", "{run}");
    assert_eq!(s["DB_PASSWORD"]["version"], "1");
    let human = p.run(&["secrets", "diff"]);
    assert_clean(&human);
    assert!(
        human
            .stdout
            .contains("version 2 disabled or destroyed (latest now 1)"),
        "{human}"
    );
}

#[test]
fn a_value_edited_by_hand_is_told_apart_from_a_rotation() {
    let p = pulled("diff-edited");
    let text = p.env_file().unwrap();
    let edited = text.replace(VALUES[2], "sk-typed-by-hand-0000");
    assert_ne!(text, edited);
    std::fs::write(p.env_path(), edited).unwrap();
    let (run, s) = states(&p, &[]);
    assert_eq!(s["OPENAI_API_KEY"]["state"], "edited-locally", "{run}");
    assert!(!run.stdout.contains("sk-typed-by-hand"), "{run}");
}

#[test]
fn header_records_versions_and_fingerprints_not_values() {
    use std::os::unix::fs::PermissionsExt;
    let p = pulled("diff-header");
    let text = p.env_file().unwrap();
    let header: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    let record = header
        .iter()
        .find(|l| l.starts_with("# JWT_SECRET: secret jwt-secret, version 1, fingerprint "))
        .unwrap_or_else(|| panic!("no record for JWT_SECRET:\n{text}"));
    let fingerprint = record.rsplit(' ').next().unwrap();
    assert_eq!(fingerprint.len(), 32, "{record}");
    assert!(fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
    for value in VALUES {
        assert!(
            !header.iter().any(|l| l.contains(value)),
            "{value} in header"
        );
    }
    // The per-machine key: made once, mode 0600, in the user's state folder.
    let key = p.home.path().join(".local/state/vibedev/fingerprint.key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let before = std::fs::read(&key).unwrap();
    assert_clean(&p.ok(&["secrets", "pull"]));
    assert_eq!(std::fs::read(&key).unwrap(), before);
    // Same value, same key: the same fingerprint on the next pull.
    assert!(p.env_file().unwrap().contains(record), "{record}");
}

#[test]
fn diff_before_any_pull_says_nothing_is_pulled() {
    let p = SecretsProject::new("diff-none", TEMPLATE);
    p.server
        .add_secret("jwt-secret", &[], &[VALUES[0].as_bytes()]);
    p.server
        .add_secret("openai-api-key", &[], &[VALUES[2].as_bytes()]);
    p.server
        .add_secret("db-password", &[], &[VALUES[3].as_bytes()]);
    let (run, s) = states(&p, &["--exit-code"]);
    assert_eq!(run.code, Some(8), "{run}");
    for key in ["JWT_SECRET", "OPENAI_API_KEY", "DB_PASSWORD", "APP_ENV"] {
        assert_eq!(s[key]["state"], "not-pulled", "{key}: {run}");
    }
    assert_eq!(p.env_file(), None, "diff wrote .env.gcp");
}
