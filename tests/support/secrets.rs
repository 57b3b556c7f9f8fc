//! A project wired to the local Secret Manager and token endpoint, with a hermetic Google
//! environment: its own service-account key, HOME and CLOUDSDK_CONFIG, and no Docker.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use super::secret_manager::SecretManagerServer;
use super::{Run, TestProject};

/// The GCP project the test server holds secrets for.
pub const GCP_PROJECT: &str = "vibedev-test-gcp";

/// Variables that could point gcp_auth, gcloud or vibedev at a developer's real Google setup.
const GOOGLE_VARS: &[&str] = &[
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
    "GCLOUD_PROJECT",
    "CLOUDSDK_CONFIG",
    "CLOUDSDK_CORE_PROJECT",
    "CLOUDSDK_ACTIVE_CONFIG_NAME",
    "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE",
    "GCE_METADATA_HOST",
];

pub struct SecretsProject {
    pub project: TestProject,
    pub server: SecretManagerServer,
    /// HOME and CLOUDSDK_CONFIG (`<home>/gcloud`) for every command.
    pub home: tempfile::TempDir,
    /// The service-account key; `None` runs without GOOGLE_APPLICATION_CREDENTIALS.
    pub key_file: Option<PathBuf>,
}

impl SecretsProject {
    /// A project whose `vibedev.toml` names the GCP project and `env.gcp.tmpl`, with `template`
    /// written there.
    pub fn new(tag: &str, template: &str) -> SecretsProject {
        let mut project = TestProject::empty(tag);
        // No stack is ever started here: nothing to tear down.
        project.keep();
        let server = SecretManagerServer::start(GCP_PROJECT);
        let home = tempfile::tempdir().expect("temp home");
        std::fs::create_dir_all(home.path().join("gcloud")).expect("gcloud dir");
        let key_file = Some(server.write_key_file(home.path()));
        let p = SecretsProject {
            project,
            server,
            home,
            key_file,
        };
        p.write_config(&format!(
            "[secrets]\nproject = \"{GCP_PROJECT}\"\ntemplate = \"env.gcp.tmpl\"\n"
        ));
        p.project.write("env.gcp.tmpl", template);
        p
    }

    /// Replaces `vibedev.toml` with the project name and `extra`.
    pub fn write_config(&self, extra: &str) {
        self.project.write(
            "vibedev.toml",
            &format!("project = \"{}\"\n{extra}", self.project.name),
        );
    }

    pub fn env_path(&self) -> PathBuf {
        self.project.path().join(".env.gcp")
    }

    /// `.env.gcp` as text, if it exists.
    pub fn env_file(&self) -> Option<String> {
        std::fs::read_to_string(self.env_path()).ok()
    }

    /// `.env.gcp` as dotenvy reads it.
    pub fn env_vars(&self) -> std::collections::BTreeMap<String, String> {
        dotenvy::from_path_iter(self.env_path())
            .expect(".env.gcp exists")
            .map(|r| r.expect(".env.gcp parses"))
            .collect()
    }

    /// A hermetic `vibedev` command: Google variables cleared, the test key, HOME and gcloud
    /// config, the local endpoint, and a Docker host that does not exist.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = self.project.cmd(args);
        for var in GOOGLE_VARS {
            cmd.env_remove(var);
        }
        cmd.env("HOME", self.home.path())
            .env("CLOUDSDK_CONFIG", self.home.path().join("gcloud"))
            .env("VIBEDEV_SECRET_MANAGER_ENDPOINT", self.server.endpoint())
            .env(
                "DOCKER_HOST",
                format!("unix://{}/no-docker.sock", self.home.path().display()),
            );
        if let Some(key) = &self.key_file {
            cmd.env("GOOGLE_APPLICATION_CREDENTIALS", key);
        }
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("run vibedev"))
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        assert!(run.success(), "vibedev {args:?} failed:\n{run}");
        run
    }
}

/// A dotenv file as python-dotenv's `dotenv_values` reads it (default settings).
pub fn python_dotenv_read(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import json, sys\n\
             from dotenv import dotenv_values\n\
             sys.stdout.write(json.dumps(dotenv_values(sys.argv[1])))",
        )
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python-dotenv failed (pip install python-dotenv==1.2.2): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python printed a JSON object")
}

/// A dotenv file as Node's own parser (`util.parseEnv`, behind `node --env-file`) reads it.
pub fn node_read(path: &std::path::Path) -> std::collections::BTreeMap<String, String> {
    let out = Command::new("node")
        .arg("-e")
        .arg(
            "const fs = require('fs'), util = require('util');\n\
             process.stdout.write(JSON.stringify(util.parseEnv(fs.readFileSync(process.argv[1], 'utf8'))));",
        )
        .arg(path)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "node failed (Node.js 20.12 or newer): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("node printed a JSON object")
}
