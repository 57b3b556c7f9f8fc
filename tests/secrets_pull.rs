//! `vibedev secrets pull` against the local Secret Manager and OAuth token endpoint
//! (tests/support/secret_manager.rs): the whole gcp_auth service-account flow, paging, pinned
//! versions, retries, every failure leaving `.env.gcp` as it was, and no value ever printed.

mod support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use support::secret_manager::{CLIENT_EMAIL, CLOUD_PLATFORM, Fault, now_secs, sign_assertion};
use support::secrets::{GCP_PROJECT, SecretsProject, node_read, python_dotenv_read};

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nq8Zc+/w0=\n-----END PRIVATE KEY-----\n";
const JSON_KEY: &str = "{\"type\":\"service_account\",\"private_key\":\"-----BEGIN PRIVATE KEY-----\\nMIIE\\n\",\"x\":\"$HOME\"}";

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Asserts none of `values` appears in the command's output.
fn assert_no_values(run: &support::Run, values: &[&str]) {
    for v in values {
        let probe = v.lines().find(|l| l.len() >= 6).unwrap_or(v);
        assert!(
            !run.stdout.contains(probe) && !run.stderr.contains(probe),
            "a secret value ({probe:?}) was printed:\n{run}"
        );
    }
}

#[test]
fn pull_writes_every_secret_across_three_pages() {
    let p = SecretsProject::new(
        "pull-pages",
        "# the app's secrets\nAPP_ENV=development\nJWT_SECRET={{ secret \"jwt-secret\" }}\n\n{{ secrets filter=\"labels.env=dev\" }}\n",
    );
    let dev = [("env", "dev")];
    p.server
        .add_secret("jwt-secret", &dev, &[b"jwt-value-Zq81"]);
    p.server.add_secret("private-key", &dev, &[PEM.as_bytes()]);
    p.server.add_secret("sa-json", &dev, &[JSON_KEY.as_bytes()]);
    p.server
        .add_secret("odd-chars", &dev, &["  $x #y =z \\d ünï ✓  ".as_bytes()]);
    p.server
        .add_secret("quoted", &dev, &[b"it's a `word`\nnext"]);
    p.server.add_secret("db-password", &dev, &[b"pg-pass-77x"]);
    p.server
        .add_secret("prod-only", &[("env", "prod")], &[b"never-fetched-value"]);
    p.server.set_max_page(2);

    let run = p.ok(&["secrets", "pull", "-v"]);

    let expected = map(&[
        ("APP_ENV", "development"),
        ("JWT_SECRET", "jwt-value-Zq81"),
        ("DB_PASSWORD", "pg-pass-77x"),
        ("ODD_CHARS", "  $x #y =z \\d ünï ✓  "),
        ("PRIVATE_KEY", PEM),
        ("QUOTED", "it's a `word`\nnext"),
        ("SA_JSON", JSON_KEY),
    ]);
    assert_eq!(p.env_vars(), expected);
    assert_eq!(python_dotenv_read(&p.env_path()), expected, "python-dotenv");
    assert_eq!(node_read(&p.env_path()), expected, "node");
    assert_eq!(p.server.list_calls(), 3, "6 matching secrets in pages of 2");
    assert_eq!(p.server.list_filters(), ["labels.env=dev"; 3]);
    assert_eq!(p.server.access_calls("prod-only"), 0);
    assert_eq!(
        p.server.access_calls("jwt-secret"),
        1,
        "fetched once for two mentions"
    );
    assert!(p.server.tokens_issued() >= 1);
    assert!(
        p.server.token_rejections().is_empty(),
        "{:?}",
        p.server.token_rejections()
    );
    assert_eq!(p.server.unauthenticated(), 0);
    let text = p.env_file().unwrap();
    assert!(
        text.starts_with("# Secrets from Google Secret Manager"),
        "{text}"
    );
    assert!(text.contains(&format!("project: {GCP_PROJECT}; template: env.gcp.tmpl;")));
    assert!(text.ends_with("# --- local overrides ---\n"), "{text}");
    assert!(
        run.stderr.contains("fetched private-key (version 1)"),
        "{run}"
    );
    assert!(run.stderr.contains("6 secrets (3 pages)"), "{run}");
    assert_no_values(
        &run,
        &[
            "jwt-value-Zq81",
            PEM,
            "pg-pass-77x",
            "never-fetched-value",
            "MIIEvQIBADANBgkq",
        ],
    );
}

#[test]
fn builtin_template_fetches_the_apps_secrets() {
    let p = SecretsProject::new("pull-builtin", "");
    p.write_config(&format!("[secrets]\nproject = \"{GCP_PROJECT}\"\n"));
    let names = [
        "jwt-secret",
        "ai-proxy-jwt-secret",
        "cf-oauth-encryption-key",
        "google-client-secret",
        "github-client-secret",
        "github-exporter-client-secret",
        "anthropic-api-key",
        "openai-api-key",
        "google-ai-studio-api-key",
        "openrouter-api-key",
        "serpapi-key",
        "sandbox-service-api-key",
        "db-password",
    ];
    for name in names {
        p.server
            .add_secret(name, &[], &[format!("value-of-{name}").as_bytes()]);
    }
    let run = p.ok(&["secrets", "pull"]);
    let vars = p.env_vars();
    assert_eq!(vars.len(), names.len(), "{vars:?}");
    for name in names {
        let key = name.to_uppercase().replace('-', "_");
        assert_eq!(vars[&key], format!("value-of-{name}"));
    }
    assert!(p.env_file().unwrap().contains("template: built-in"));
    assert!(run.stdout.contains("13 variables, 13 secrets"), "{run}");
}

#[test]
fn pinned_version_is_written_and_latest_skips_disabled_versions() {
    let p = SecretsProject::new(
        "pull-pinned",
        "OLD={{ secret \"api-key\" version=\"1\" }}\nNEW={{ secret \"api-key\" }}\nB64={{ secret \"api-key\" version=\"2\" encoding=\"base64\" }}\n",
    );
    p.server
        .add_secret("api-key", &[], &[b"key-v1", b"key-v2", b"key-v3"]);
    p.server.disable_version("api-key", 3);
    p.ok(&["secrets", "pull"]);
    assert_eq!(
        p.env_vars(),
        map(&[("OLD", "key-v1"), ("NEW", "key-v2"), ("B64", "a2V5LXYy")])
    );
}

/// Pulls once successfully, breaks something, pulls again: the second pull must fail with
/// `phrases` in its error, leave `.env.gcp` byte-identical, and print no value.
fn assert_failed_pull_keeps_env_file(
    p: &SecretsProject,
    break_it: impl FnOnce(&SecretsProject),
    phrases: &[&str],
    values: &[&str],
) -> support::Run {
    p.ok(&["secrets", "pull"]);
    let before = std::fs::read(p.env_path()).unwrap();
    break_it(p);
    let run = p.run(&["secrets", "pull", "-v"]);
    assert_eq!(run.code, Some(1), "{run}");
    for phrase in phrases {
        assert!(run.stderr.contains(phrase), "missing {phrase:?}:\n{run}");
    }
    assert_eq!(
        std::fs::read(p.env_path()).unwrap(),
        before,
        ".env.gcp changed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(p.project.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".vibedev-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_no_values(&run, values);
    run
}

const TWO: &str = "JWT_SECRET={{ secret \"jwt-secret\" }}\nOPENAI_API_KEY={{ secret \"openai-api-key\" version=\"2\" }}\n";

fn two_secrets(tag: &str) -> SecretsProject {
    let p = SecretsProject::new(tag, TWO);
    p.server.add_secret("jwt-secret", &[], &[b"jwt-Aq93-value"]);
    p.server
        .add_secret("openai-api-key", &[], &[b"sk-old-Pq11", b"sk-live-Wd52"]);
    p
}

const VALUES: &[&str] = &["jwt-Aq93-value", "sk-old-Pq11", "sk-live-Wd52"];

#[test]
fn permission_denied_keeps_env_file() {
    let p = two_secrets("fail-403");
    let run = assert_failed_pull_keeps_env_file(
        &p,
        |p| p.server.fault("jwt-secret", Fault::Status(403)),
        &[
            "secret jwt-secret",
            "JWT_SECRET",
            "PERMISSION_DENIED",
            "roles/secretmanager.secretAccessor",
        ],
        VALUES,
    );
    let error = run
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap();
    assert!(
        error.starts_with("error: cannot fetch secret jwt-secret (version latest, for JWT_SECRET) from project vibedev-test-gcp: HTTP 403 PERMISSION_DENIED"),
        "{run}"
    );
}

#[test]
fn missing_secret_keeps_env_file() {
    let p = two_secrets("fail-404");
    assert_failed_pull_keeps_env_file(
        &p,
        |p| {
            p.project.write(
                "env.gcp.tmpl",
                &format!("{TWO}EXTRA={{{{ secret \"no-such-secret\" }}}}\n"),
            )
        },
        &[
            "secret no-such-secret",
            "EXTRA",
            "NOT_FOUND",
            "gcloud secrets list",
        ],
        VALUES,
    );
}

#[test]
fn disabled_version_keeps_env_file() {
    let p = two_secrets("fail-disabled");
    assert_failed_pull_keeps_env_file(
        &p,
        |p| p.server.disable_version("openai-api-key", 2),
        &[
            "secret openai-api-key (version 2",
            "FAILED_PRECONDITION",
            "DISABLED",
            "versions enable",
        ],
        VALUES,
    );
}

#[test]
fn server_errors_that_persist_keep_env_file() {
    let p = two_secrets("fail-500");
    let run = assert_failed_pull_keeps_env_file(
        &p,
        |p| p.server.fault("jwt-secret", Fault::Status(500)),
        &[
            "secret jwt-secret",
            "HTTP 500 INTERNAL",
            "gave up after 5 tries",
        ],
        VALUES,
    );
    assert!(run.stderr.contains("retrying jwt-secret"), "{run}");
    // One successful pull, then five tries.
    assert_eq!(p.server.access_calls("jwt-secret"), 6);
}

#[test]
fn crc_mismatch_keeps_env_file() {
    let p = two_secrets("fail-crc");
    assert_failed_pull_keeps_env_file(
        &p,
        |p| p.server.fault("openai-api-key", Fault::WrongCrc),
        &["secret openai-api-key", "dataCrc32c"],
        VALUES,
    );
}

#[test]
fn non_utf8_secret_keeps_env_file() {
    let p = two_secrets("fail-utf8");
    assert_failed_pull_keeps_env_file(
        &p,
        |p| {
            p.server
                .add_secret("jwt-secret", &[], &[b"jwt-Aq93-value\xff\xfe"])
        },
        &[
            "secret jwt-secret (for JWT_SECRET) is not UTF-8",
            "encoding=\"base64\"",
        ],
        VALUES,
    );
}

#[test]
fn value_no_dotenv_reader_agrees_on_keeps_env_file() {
    let p = two_secrets("fail-unportable");
    assert_failed_pull_keeps_env_file(
        &p,
        |p| {
            p.server
                .add_secret("jwt-secret", &[], &[b"jwt-Aq93-value it's $5"])
        },
        &[
            "secret jwt-secret (for JWT_SECRET) cannot be written",
            "single quote",
        ],
        VALUES,
    );
}

#[test]
fn rate_limited_and_unavailable_secrets_are_retried_then_written() {
    let p = two_secrets("retry-429");
    p.server.fault("jwt-secret", Fault::FirstN(2, 429));
    p.server.fault("openai-api-key", Fault::FirstN(1, 503));
    let run = p.ok(&["secrets", "pull", "-v"]);
    assert_eq!(
        p.env_vars(),
        map(&[
            ("JWT_SECRET", "jwt-Aq93-value"),
            ("OPENAI_API_KEY", "sk-live-Wd52")
        ])
    );
    assert_eq!(p.server.access_calls("jwt-secret"), 3);
    assert_eq!(p.server.access_calls("openai-api-key"), 2);
    assert!(run.stderr.contains("HTTP 429 RESOURCE_EXHAUSTED"), "{run}");
    assert!(run.stderr.contains("HTTP 503 UNAVAILABLE"), "{run}");
    assert_no_values(&run, VALUES);
}

#[test]
fn timed_out_request_is_retried() {
    let p = two_secrets("retry-timeout");
    p.server
        .fault("jwt-secret", Fault::Stall(1, Duration::from_secs(5)));
    let run = support::Run::from(
        p.cmd(&["secrets", "pull", "-v"])
            .env("VIBEDEV_SECRETS_TIMEOUT", "0.5")
            .output()
            .unwrap(),
    );
    assert!(run.success(), "{run}");
    assert!(run.stderr.contains("timed out"), "{run}");
    // The stalled call and at least one retry (on a loaded machine a retry may time out too).
    assert!(p.server.access_calls("jwt-secret") >= 2, "{run}");
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");
}

#[test]
fn local_overrides_survive_a_pull() {
    let p = two_secrets("overrides");
    p.ok(&["secrets", "pull"]);
    let mine = "JWT_SECRET=my-local-jwt\n# my note, kept\nEXTRA='x y'\n";
    let mut text = p.env_file().unwrap();
    text.push_str(mine);
    std::fs::write(p.env_path(), &text).unwrap();
    p.server
        .add_secret("jwt-secret", &[], &[b"jwt-Aq93-value", b"jwt-rotated-Kk20"]);

    p.ok(&["secrets", "pull"]);

    let text = p.env_file().unwrap();
    assert!(
        text.ends_with(&format!("# --- local overrides ---\n{mine}")),
        "{text}"
    );
    assert!(text.contains("JWT_SECRET=jwt-rotated-Kk20\n"), "{text}");
    let vars = p.env_vars();
    assert_eq!(vars["JWT_SECRET"], "my-local-jwt", "the override wins");
    assert_eq!(vars["EXTRA"], "x y");
    assert_eq!(vars["OPENAI_API_KEY"], "sk-live-Wd52");
}

#[test]
fn env_file_is_written_with_mode_0600() {
    let p = two_secrets("mode");
    p.project.write(".env.gcp", "# --- local overrides ---\n");
    std::fs::set_permissions(p.env_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    p.ok(&["secrets", "pull"]);
    let mode = std::fs::metadata(p.env_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn file_not_written_by_vibedev_is_not_overwritten() {
    let p = two_secrets("foreign");
    p.project.write(".env.gcp", "HANDWRITTEN=1\n");
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("was not written by vibedev"), "{run}");
    assert!(run.stderr.contains("# --- local overrides ---"), "{run}");
    assert_eq!(p.env_file().unwrap(), "HANDWRITTEN=1\n");
    assert_eq!(p.server.total_access_calls(), 0);
}

fn git(p: &SecretsProject, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(p.project.path())
        .env("HOME", p.home.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn env_file_tracked_by_git_is_refused_unless_allowed() {
    let p = two_secrets("git-tracked");
    git(&p, &["init", "-q"]);
    p.project.write(".env.gcp", "# --- local overrides ---\n");
    git(&p, &["add", ".env.gcp"]);

    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("tracked by git"), "{run}");
    assert!(run.stderr.contains("git rm --cached .env.gcp"), "{run}");
    assert!(run.stderr.contains("--allow-tracked"), "{run}");
    assert_eq!(p.env_file().unwrap(), "# --- local overrides ---\n");
    assert_eq!(p.server.total_access_calls(), 0, "refused before fetching");

    let run = p.ok(&["secrets", "pull", "--allow-tracked"]);
    assert!(run.stderr.contains("do not commit it"), "{run}");
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");
}

#[test]
fn env_file_not_ignored_by_git_gets_a_warning_with_the_line_to_add() {
    let p = two_secrets("git-ignored");
    git(&p, &["init", "-q"]);
    let run = p.ok(&["secrets", "pull"]);
    assert!(
        run.stderr
            .contains(".env.gcp is not git-ignored: add the line `.env.gcp` to"),
        "{run}"
    );
    p.project.write(".gitignore", ".env.gcp\n");
    let run = p.ok(&["secrets", "pull"]);
    assert!(!run.stderr.contains("git-ignored"), "{run}");
}

#[test]
fn dry_run_lists_key_names_and_writes_nothing() {
    let p = two_secrets("dry-run");
    let run = p.ok(&["secrets", "pull", "--dry-run"]);
    assert!(!p.env_path().exists(), "a dry run created .env.gcp");
    // The key names, then the one line saying what the dry run found.
    assert!(
        run.stdout
            .starts_with("+ JWT_SECRET\n+ OPENAI_API_KEY\ndry run: 2 added, 0 changed, 0 removed"),
        "{run}"
    );
    assert_eq!(run.stdout.lines().count(), 3, "{run}");

    p.ok(&["secrets", "pull"]);
    let before = std::fs::read(p.env_path()).unwrap();
    p.project.write(
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nNEW_KEY={{ secret \"new-secret\" }}\n",
    );
    p.server.add_secret("new-secret", &[], &[b"new-Hh71-value"]);
    p.server
        .add_secret("jwt-secret", &[], &[b"jwt-Aq93-value", b"jwt-changed-Mm33"]);

    let run = p.ok(&["secrets", "pull", "--dry-run", "-v"]);
    assert!(
        run.stdout.starts_with(
            "+ NEW_KEY\n~ JWT_SECRET\n- OPENAI_API_KEY\ndry run: 1 added, 1 changed, 1 removed"
        ),
        "{run}"
    );
    assert_eq!(
        std::fs::read(p.env_path()).unwrap(),
        before,
        "a dry run wrote"
    );
    assert_no_values(
        &run,
        &[
            "new-Hh71-value",
            "jwt-changed-Mm33",
            "jwt-Aq93-value",
            "sk-live-Wd52",
        ],
    );
}

#[test]
fn missing_credentials_off_google_cloud_fail_without_asking_the_metadata_server() {
    let mut p = two_secrets("no-credentials");
    p.key_file = None;
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("no Google credentials found"), "{run}");
    assert!(
        run.stderr
            .contains("the metadata server was not asked: this machine is not on Google Cloud"),
        "{run}"
    );
    assert!(
        run.stderr.contains("gcloud has no signed-in account")
            || run.stderr.contains("gcloud is not on PATH"),
        "{run}"
    );
    assert!(
        run.stderr.contains("gcloud auth application-default login"),
        "{run}"
    );
    assert_eq!(
        run.stderr.matches("error:").count(),
        1,
        "one clear error:\n{run}"
    );
    assert!(!p.env_path().exists());
    assert_eq!(
        p.server.total_access_calls() + p.server.unauthenticated(),
        0
    );
}

#[test]
fn unreadable_key_file_is_named() {
    let mut p = two_secrets("bad-key");
    let bad = p.home.path().join("broken.json");
    std::fs::write(&bad, "{ not json").unwrap();
    p.key_file = Some(bad);
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("broken.json (GOOGLE_APPLICATION_CREDENTIALS)"),
        "{run}"
    );
}

#[test]
fn missing_project_says_how_to_set_it() {
    let p = two_secrets("no-project");
    p.write_config("[secrets]\ntemplate = \"env.gcp.tmpl\"\n");
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("no GCP project"), "{run}");
    assert!(run.stderr.contains("--project"), "{run}");
    assert!(run.stderr.contains("gcloud config set project"), "{run}");
}

#[test]
fn gcloud_configured_project_is_used() {
    let p = two_secrets("gcloud-project");
    p.write_config("[secrets]\ntemplate = \"env.gcp.tmpl\"\n");
    let gcloud = p.home.path().join("gcloud");
    std::fs::create_dir_all(gcloud.join("configurations")).unwrap();
    std::fs::write(gcloud.join("active_config"), "work").unwrap();
    std::fs::write(
        gcloud.join("configurations/config_work"),
        format!("[core]\naccount = dev@example.com\nproject = {GCP_PROJECT}\n"),
    )
    .unwrap();
    let run = p.ok(&["secrets", "pull", "-v"]);
    assert!(
        run.stderr.contains("gcloud configuration \"work\""),
        "{run}"
    );
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");
}

#[test]
fn project_flag_wins_over_the_config() {
    let p = two_secrets("project-flag");
    let run = p.run(&["secrets", "pull", "--project", "someone-elses"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("PERMISSION_DENIED"), "{run}");
    assert!(run.stderr.contains("project someone-elses"), "{run}");
}

#[test]
fn template_mistake_names_file_line_and_column() {
    let p = SecretsProject::new(
        "bad-template",
        "A=1\n\nB={{ secret \"b\" verison=\"2\" }}\n",
    );
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr
            .contains("env.gcp.tmpl:3:17: unknown attribute \"verison\""),
        "{run}"
    );
}

#[test]
fn unquoted_secret_name_says_it_must_be_quoted() {
    let p = SecretsProject::new("unquoted-name", "A=1\nS01={{ secret s01 }}\n");
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(
        run.stderr.contains(
            "env.gcp.tmpl:2:15: the name must be quoted: {{ secret \"s01\" }}, not {{ secret s01 }}"
        ),
        "{run}"
    );
    assert!(!p.env_path().exists());
}

#[test]
fn derived_name_that_is_not_a_variable_asks_for_a_prefix() {
    let p = SecretsProject::new("bad-derived", "{{ secrets filter=\"labels.team=x\" }}\n");
    p.server.add_secret("1password", &[("team", "x")], &[b"v"]);
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(2), "{run}");
    assert!(run.stderr.contains("secret 1password"), "{run}");
    assert!(run.stderr.contains("prefix="), "{run}");
}

/// The token endpoint refuses assertions that are not signed by the key, or ask for the wrong
/// audience or scope; Secret Manager refuses requests without an issued token.
#[test]
fn token_endpoint_checks_signature_audience_and_scope() {
    let p = two_secrets("token-endpoint");
    let uri = p.server.token_uri();
    let now = now_secs();
    let claims = |aud: &str, scope: &str| serde_json::json!({"iss": CLIENT_EMAIL, "aud": aud, "scope": scope, "iat": now, "exp": now + 3600});
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let grant = |assertion: String| {
        let http = http.clone();
        let uri = uri.clone();
        rt.block_on(async move {
            let r = http
                .post(&uri)
                .header("content-type", "application/x-www-form-urlencoded")
                // A JWT is base64url and dots: nothing in it needs escaping.
                .body(format!(
                    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
                ))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    let good = sign_assertion(&claims(&uri, CLOUD_PLATFORM));
    let (status, body) = grant(good.clone());
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(token["expires_in"], 3600);

    let (status, body) = grant(sign_assertion(&claims(
        "https://oauth2.googleapis.com/token",
        CLOUD_PLATFORM,
    )));
    assert_eq!(status, 400);
    assert!(body.contains("aud must be"), "{body}");
    let (status, body) = grant(sign_assertion(&claims(
        &uri,
        "https://www.googleapis.com/auth/devstorage.read_only",
    )));
    assert_eq!(status, 400);
    assert!(body.contains("scope must include"), "{body}");
    let mut forged = good[..good.rfind('.').unwrap()].to_string();
    forged.push_str(".AAAA");
    let (status, body) = grant(forged);
    assert_eq!(status, 400);
    assert!(body.contains("signature"), "{body}");

    // Well-formed and signed, but by another key (1024 bits: the stand-in only verifies).
    let other = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
    let (status, body) = grant(support::secret_manager::sign_assertion_with(
        &other,
        &claims(&uri, CLOUD_PLATFORM),
    ));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not verify"), "{body}");

    // Signed by the right key, then the claims changed (the signature of the original kept).
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = good.split('.').collect();
    let mut tampered_claims = claims(&uri, CLOUD_PLATFORM);
    tampered_claims["exp"] = serde_json::json!(now + 3000);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        base64::Engine::encode(&b64, tampered_claims.to_string()),
        parts[2]
    );
    let (status, body) = grant(tampered);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("does not verify"), "{body}");

    // Signed by the right key with valid audience and scope, but expired.
    let mut expired = claims(&uri, CLOUD_PLATFORM);
    expired["iat"] = serde_json::json!(now - 7200);
    expired["exp"] = serde_json::json!(now - 3600);
    let (status, body) = grant(sign_assertion(&expired));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("iat/exp"), "{body}");

    let url = format!(
        "{}/v1/projects/{GCP_PROJECT}/secrets/jwt-secret/versions/latest:access",
        p.server.endpoint()
    );
    let statuses = rt.block_on(async {
        let none = http.get(&url).send().await.unwrap().status().as_u16();
        let wrong = http
            .get(&url)
            .bearer_auth("ya29.made-up")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        let right = http
            .get(&url)
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        (none, wrong, right)
    });
    assert_eq!(statuses, (401, 401, 200));
}

#[test]
fn timeout_zero_means_no_per_request_limit() {
    let p = two_secrets("timeout-zero");
    p.server
        .fault("jwt-secret", Fault::Stall(1, Duration::from_millis(1500)));
    let run = support::Run::from(
        p.cmd(&["secrets", "pull", "-v"])
            .env("VIBEDEV_SECRETS_TIMEOUT", "0")
            .output()
            .unwrap(),
    );
    assert!(run.success(), "{run}");
    assert!(!run.stderr.contains("timed out"), "{run}");
    assert_eq!(p.server.access_calls("jwt-secret"), 1, "waited, no retry");
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");
}

#[test]
fn bad_timeout_says_what_is_allowed() {
    let p = two_secrets("timeout-bad");
    for bad in ["-1", "601", "soon"] {
        let run = support::Run::from(
            p.cmd(&["secrets", "pull"])
                .env("VIBEDEV_SECRETS_TIMEOUT", bad)
                .output()
                .unwrap(),
        );
        assert_eq!(run.code, Some(1), "{run}");
        assert!(
            run.stderr
                .contains("is not a number of seconds from 0 to 600 (0: no per-request limit)"),
            "{run}"
        );
    }
    assert!(!p.env_path().exists());
    assert_eq!(p.server.total_access_calls(), 0);
}

#[test]
fn env_file_that_is_a_symlink_is_written_through() {
    let p = two_secrets("symlink");
    let shared = p.home.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    let target = shared.join("app.env");
    std::fs::write(&target, "# --- local overrides ---\nMINE=1\n").unwrap();
    std::os::unix::fs::symlink(&target, p.env_path()).unwrap();

    let run = p.ok(&["secrets", "pull"]);

    let meta = std::fs::symlink_metadata(p.env_path()).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "the link was replaced by a file"
    );
    assert_eq!(std::fs::read_link(p.env_path()).unwrap(), target);
    assert!(run.stdout.contains("(a link to "), "{run}");
    let vars = p.env_vars();
    assert_eq!(vars["JWT_SECRET"], "jwt-Aq93-value");
    assert_eq!(vars["MINE"], "1", "the target's overrides were kept");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    for dir in [p.project.path(), shared.as_path()] {
        let leftovers: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".vibedev-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    // A dangling relative link: the target is created where it points.
    std::fs::remove_file(p.env_path()).unwrap();
    std::os::unix::fs::symlink("local/.env.gcp", p.env_path()).unwrap();
    std::fs::create_dir(p.project.path().join("local")).unwrap();
    p.ok(&["secrets", "pull"]);
    assert!(
        std::fs::symlink_metadata(p.env_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(p.env_vars()["OPENAI_API_KEY"], "sk-live-Wd52");
}

/// 140 KiB: over the 128 KiB Linux allows one environment string.
fn big_value() -> Vec<u8> {
    let mut v = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    while v.len() < 140 * 1024 {
        v.extend_from_slice(b"MIIFazCCA1OgAwIBAgIRAIIQz7DSQONZRGPgu2OCiwAwDQYJKoZIhvcNAQELBQAw\n");
    }
    v.truncate(140 * 1024);
    v
}

#[test]
fn secret_over_the_environment_limit_is_refused_at_pull_time() {
    let p = two_secrets("too-large");
    let big = big_value();
    let run = assert_failed_pull_keeps_env_file(
        &p,
        |p| {
            p.server.add_secret("big-cert", &[], &[&big]);
            p.project.write(
                "env.gcp.tmpl",
                &format!("{TWO}BIG_CERT={{{{ secret \"big-cert\" }}}}\n"),
            );
        },
        &[
            "secret big-cert is 143360 bytes",
            "131072-byte limit",
            "MAX_ARG_STRLEN",
            "BIG_CERT={{ secret \"big-cert\" file=\"big-cert\" }}",
        ],
        VALUES,
    );
    assert!(!run.stderr.contains("MIIFazCCA1OgAwIBAgIR"), "{run}");
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn file_secrets_are_written_beside_env_file_and_replaced_with_it() {
    let p = SecretsProject::new(
        "secret-files",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nBIG_CERT={{ secret \"big-cert\" file=\"big-cert.pem\" }}\nGOOGLE_APPLICATION_CREDENTIALS={{ secret \"sa-json\" file=\"sa.json\" }}\n",
    );
    let big = big_value();
    p.server.add_secret("jwt-secret", &[], &[b"jwt-Aq93-value"]);
    p.server.add_secret("big-cert", &[], &[&big]);
    p.server.add_secret("sa-json", &[], &[JSON_KEY.as_bytes()]);
    git(&p, &["init", "-q"]);
    p.project.write(".gitignore", ".env.gcp\n");

    let run = p.ok(&["secrets", "pull"]);
    assert!(run.stdout.contains("and 2 files in"), "{run}");
    let dir = p.project.path().join(".env.gcp.d");
    let vars = p.env_vars();
    let cert = std::path::PathBuf::from(&vars["BIG_CERT"]);
    assert!(cert.is_absolute(), "{cert:?}");
    assert!(cert.ends_with(".env.gcp.d/big-cert.pem"), "{cert:?}");
    assert_eq!(std::fs::read(&cert).unwrap(), big);
    let sa = std::path::PathBuf::from(&vars["GOOGLE_APPLICATION_CREDENTIALS"]);
    assert_eq!(std::fs::read_to_string(&sa).unwrap(), JSON_KEY);
    assert_eq!(vars["JWT_SECRET"], "jwt-Aq93-value");
    for f in [&cert, &sa] {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let ignored = Command::new("git")
        .args(["check-ignore", "-q", ".env.gcp.d/sa.json"])
        .current_dir(p.project.path())
        .status()
        .unwrap();
    assert!(ignored.success(), "git does not ignore the secret files");
    assert!(!p.env_file().unwrap().contains("MIIFazCCA1OgAwIBAgIR"));
    assert_no_values(&run, &["jwt-Aq93-value", "MIIFazCCA1OgAwIBAgIR"]);

    // `vibedev run` hands the path over, and the command reads the value from the file.
    let run = p.run(&["run", "--", "sh", "-c", "cat \"$BIG_CERT\" > copy.out"]);
    assert!(run.success(), "{run}");
    assert_eq!(
        std::fs::read(p.project.path().join("copy.out")).unwrap(),
        big
    );

    // A failed pull changes neither the env file nor the files.
    let before = std::fs::read(p.env_path()).unwrap();
    p.server
        .add_secret("sa-json", &[], &[JSON_KEY.as_bytes(), b"{\"rotated\":1}"]);
    p.server.fault("jwt-secret", Fault::Status(403));
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert_eq!(std::fs::read(p.env_path()).unwrap(), before);
    assert_eq!(std::fs::read_to_string(&sa).unwrap(), JSON_KEY);
    assert_eq!(files_in(&dir), [".gitignore", "big-cert.pem", "sa.json"]);

    // A file that left the template leaves the folder; the folder goes with the last one.
    p.server.clear_fault("jwt-secret");
    p.project.write(
        "env.gcp.tmpl",
        "JWT_SECRET={{ secret \"jwt-secret\" }}\nGOOGLE_APPLICATION_CREDENTIALS={{ secret \"sa-json\" file=\"sa.json\" }}\n",
    );
    p.ok(&["secrets", "pull"]);
    assert_eq!(files_in(&dir), [".gitignore", "sa.json"]);
    assert_eq!(std::fs::read_to_string(&sa).unwrap(), "{\"rotated\":1}");
    p.project
        .write("env.gcp.tmpl", "JWT_SECRET={{ secret \"jwt-secret\" }}\n");
    p.ok(&["secrets", "pull"]);
    assert!(!dir.exists(), "the files folder outlived its last file");
    let leftovers: Vec<_> = files_in(p.project.path())
        .into_iter()
        .filter(|n| n.starts_with(".vibedev-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn files_folder_not_written_by_vibedev_is_not_replaced() {
    let p = SecretsProject::new(
        "foreign-files",
        "SA={{ secret \"sa-json\" file=\"sa.json\" }}\n",
    );
    p.server.add_secret("sa-json", &[], &[JSON_KEY.as_bytes()]);
    p.project.write(".env.gcp.d/mine.txt", "keep me\n");
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains(".env.gcp.d exists and was not written by vibedev"),
        "{run}"
    );
    assert!(run.stderr.contains("move"), "{run}");
    assert_eq!(
        std::fs::read_to_string(p.project.path().join(".env.gcp.d/mine.txt")).unwrap(),
        "keep me\n"
    );
    assert_eq!(p.server.total_access_calls(), 0);
}

#[test]
fn slow_secret_manager_hits_the_deadline_and_names_what_is_pending() {
    let p = two_secrets("deadline");
    p.ok(&["secrets", "pull"]);
    let before = std::fs::read(p.env_path()).unwrap();
    p.server
        .fault("openai-api-key", Fault::Stall(10, Duration::from_secs(30)));
    p.write_config(&format!(
        "[secrets]\nproject = \"{GCP_PROJECT}\"\ntemplate = \"env.gcp.tmpl\"\ndeadline = 1\n"
    ));
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(
            "the pull did not finish within 1.00s: 1 of 2 secrets still pending: openai-api-key"
        ),
        "{run}"
    );
    assert!(run.stderr.contains("VIBEDEV_SECRETS_DEADLINE"), "{run}");
    assert_eq!(std::fs::read(p.env_path()).unwrap(), before);

    // The variable wins over the config.
    p.write_config(&format!(
        "[secrets]\nproject = \"{GCP_PROJECT}\"\ntemplate = \"env.gcp.tmpl\"\ndeadline = 600\n"
    ));
    let run = support::Run::from(
        p.cmd(&["secrets", "pull"])
            .env("VIBEDEV_SECRETS_DEADLINE", "1.5")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(run.stderr.contains("did not finish within 1.50s"), "{run}");
    assert_eq!(std::fs::read(p.env_path()).unwrap(), before);
    assert_no_values(&run, VALUES);

    // 0: no deadline.
    p.server.clear_fault("openai-api-key");
    let run = support::Run::from(
        p.cmd(&["secrets", "pull"])
            .env("VIBEDEV_SECRETS_DEADLINE", "0")
            .output()
            .unwrap(),
    );
    assert!(run.success(), "{run}");

    let run = support::Run::from(
        p.cmd(&["secrets", "pull"])
            .env("VIBEDEV_SECRETS_DEADLINE", "-1")
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr
            .contains("is not a number of seconds from 0 to 3600 (0: no deadline)"),
        "{run}"
    );
}

#[test]
fn slow_secrets_are_named_at_the_end() {
    let p = two_secrets("slow");
    p.server
        .fault("jwt-secret", Fault::Stall(1, Duration::from_millis(1500)));
    let run = p.ok(&["secrets", "pull"]);
    let slow = run
        .stderr
        .lines()
        .find(|l| l.starts_with("slow: "))
        .unwrap_or_else(|| panic!("no slow line:\n{run}"));
    assert!(slow.starts_with("slow: jwt-secret "), "{run}");
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");
}

#[test]
fn progress_counter_shows_on_a_terminal_only() {
    let p = two_secrets("progress");
    p.server.set_latency(Duration::from_millis(300));
    // Under `script`, vibedev's stderr is a pseudo-terminal.
    let cmd = p.cmd(&["secrets", "pull"]);
    let line = format!(
        "'{}' secrets pull",
        cmd.get_program().to_string_lossy().replace('\'', "'\\''")
    );
    let mut script = Command::new("script");
    script.args(["-qec", &line, "/dev/null"]);
    if let Some(dir) = cmd.get_current_dir() {
        script.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    script.env_remove("CI").env("TERM", "xterm");
    let out = script.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("/2 secrets"),
        "no counter on a terminal:\n{text}"
    );
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");

    let run = p.ok(&["secrets", "pull"]);
    assert!(
        !run.stderr.contains("/2 secrets"),
        "a counter without a terminal:\n{run}"
    );
}

#[test]
fn service_account_key_the_token_endpoint_refuses_is_named() {
    let p = two_secrets("key-revoked");
    p.ok(&["secrets", "pull"]);
    let before = std::fs::read(p.env_path()).unwrap();
    p.server.revoke_key(None);
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "the token endpoint {} refused the service-account key of {CLIENT_EMAIL}",
            p.server.token_uri()
        )),
        "{run}"
    );
    assert!(
        run.stderr.contains("invalid_grant: Invalid JWT Signature."),
        "{run}"
    );
    assert!(run.stderr.contains("service-accounts keys create"), "{run}");
    assert!(!run.stderr.contains("auth login"), "{run}");
    assert!(!run.stderr.contains("application-default login"), "{run}");
    assert_eq!(std::fs::read(p.env_path()).unwrap(), before);
    assert_eq!(p.server.unauthenticated(), 0);
    assert_eq!(p.server.token_rejections(), ["Invalid JWT Signature."]);
}

#[test]
fn token_endpoint_outage_is_retried_then_reported() {
    let p = two_secrets("token-outage");
    p.server.token_outage(2);
    p.ok(&["secrets", "pull"]);
    assert_eq!(p.server.tokens_issued(), 1);
    assert_eq!(p.env_vars()["JWT_SECRET"], "jwt-Aq93-value");

    let before = std::fs::read(p.env_path()).unwrap();
    p.server.token_outage(3);
    let run = p.run(&["secrets", "pull"]);
    assert_eq!(run.code, Some(1), "{run}");
    assert!(
        run.stderr.contains(&format!(
            "cannot get a token from {}: HTTP 503",
            p.server.token_uri()
        )),
        "{run}"
    );
    assert!(!run.stderr.contains("refused"), "{run}");
    assert_eq!(std::fs::read(p.env_path()).unwrap(), before);
}
