//! `vibedev doctor`'s checks: can this machine run the stack (Docker, ports, disk, images), are
//! Google credentials and `.env.gcp` in order, do the migrations load and are they applied. Each check is data; nothing here prints.

pub mod docker;
pub mod files;
pub mod gcp;
pub mod migrations;
pub mod registry;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{ConfigError, Project, find_config};
use crate::engine::Engine;
use crate::exit::Exit;
use crate::stack::Stack;

/// A check's outcome. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Not applicable here, or needs something another check found missing.
    Skip,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One check: a stable name (for scripts), its status, what was found, and the next step.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    pub hint: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            message: message.into(),
            hint: None,
        }
    }

    pub fn skip(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            message: message.into(),
            hint: None,
        }
    }

    pub fn warn(name: &'static str, message: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            message: message.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn fail(name: &'static str, message: impl Into<String>, hint: Option<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
            hint,
        }
    }
}

/// Every check, in the order they are shown. The JSON output is `{"status", "exit_code", "checks"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub exit_code: u8,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        // Skipped checks neither pass nor fail: the whole run passes when nothing warns or fails.
        let status = checks
            .iter()
            .map(|c| c.status)
            .filter(|s| *s != Status::Skip)
            .max()
            .unwrap_or(Status::Pass);
        Report {
            status,
            exit_code: exit_code(status),
            checks,
        }
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// 0 when nothing warns or fails (skips are fine), 4 with warnings only, 5 with a failure.
pub fn exit_code(worst: Status) -> u8 {
    match worst {
        Status::Pass | Status::Skip => Exit::Success,
        Status::Warn => Exit::DoctorWarn,
        Status::Fail => Exit::DoctorFail,
    }
    .code()
}

/// What the doctor is asked about.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--config`, when given.
    pub config: Option<PathBuf>,
    /// `--project`: the GCP project holding the secrets.
    pub gcp_project: Option<String>,
}

/// The project as far as it could be read: the doctor runs on a broken config too.
struct Loaded {
    root: PathBuf,
    project: Option<Project>,
    stack: Option<Stack>,
    check: Check,
}

fn load(options: &Options) -> Loaded {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config_path = match &options.config {
        Some(p) => Some(cwd.join(p)),
        None => find_config(&cwd),
    };
    let root = config_path
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or(cwd);
    let failed = |root: PathBuf, e: ConfigError| Loaded {
        root,
        project: None,
        stack: None,
        check: Check::fail("config", e.to_string(), e.hint()),
    };
    let project = match Project::load(options.config.as_deref()) {
        Ok(p) => p,
        Err(e) => return failed(root, e),
    };
    if let Err(e) = project.forward_ports() {
        return failed(project.root.clone(), e);
    }
    let mut stack = match Stack::resolve(&project) {
        Ok(s) => s,
        Err(e) => return failed(project.root.clone(), e),
    };
    // With auto ports, the ports recorded for this checkout are the ones to check.
    if let Err(e) = crate::autoports::apply_recorded(&project, &mut stack) {
        return Loaded {
            root: project.root.clone(),
            project: None,
            stack: None,
            check: Check::fail("config", e.to_string(), e.hint()),
        };
    }
    // On a branch with data of its own, its stores are the ones to check (a branch that
    // cannot be told is a warning: the checks then look at the default branch's).
    let branch = stack.follow_branch(&project);
    let compose = match &stack.source {
        crate::compose::ComposeSource::Builtin => "the built-in compose file".to_string(),
        crate::compose::ComposeSource::File(p) => p.display().to_string(),
    };
    let message = match &project.config_path {
        Some(path) => format!(
            "{} parses; project {}, {} services from {compose}",
            path.display(),
            project.name,
            stack.services.len()
        ),
        None => format!(
            "no vibedev.toml: the built-in stack, project {} (`vibedev init` writes one to change)",
            project.name
        ),
    };
    let check = match branch {
        Ok(None) => Check::pass("config", message),
        Ok(Some(on)) => Check::pass(
            "config",
            format!("{message}; git branch {} has its own data", on.branch),
        ),
        Err(e) => Check::warn(
            "config",
            format!("{message}; {e}"),
            e.hint().unwrap_or_default(),
        ),
    };
    Loaded {
        root: project.root.clone(),
        check,
        project: Some(project),
        stack: Some(stack),
    }
}

/// Runs every check. Independent ones (the engine, the metadata server) run concurrently.
pub async fn run(options: &Options) -> Report {
    let loaded = load(options);
    let gcp_env = crate::secrets::credentials::GcpEnv::from_process();
    // One engine connection for the checks that need it (or the reason there is none).
    let forward = match &loaded.project {
        Some(project) => project.forward_ports(),
        None => crate::config::forward_from_env().map(|on| on.unwrap_or(false)),
    };
    let engine = Engine::connect()
        .await
        .map(|e| e.with_forwarding(forward.unwrap_or(false)));
    let (docker, credentials) = tokio::join!(
        docker::checks(&engine, loaded.stack.as_ref()),
        gcp::credentials_check(&gcp_env),
    );
    let mut checks = vec![loaded.check];
    checks.extend(docker);
    checks.push(credentials);
    checks.push(gcp::project_check(
        options.gcp_project.as_deref(),
        loaded.project.as_ref(),
        &gcp_env,
    ));
    checks.extend(files::env_file_checks(
        &loaded.root,
        loaded.project.as_ref(),
    ));
    checks.push(
        migrations::check(
            &loaded.root,
            loaded.project.as_ref(),
            loaded.stack.as_ref(),
            engine.as_ref().ok(),
        )
        .await,
    );
    Report::new(checks)
}

/// A project rooted at `root` with `file` as its config, for the checks' unit tests.
#[cfg(test)]
pub(crate) fn test_project(root: &Path, file: crate::config::ConfigFile) -> Project {
    Project {
        root: root.to_path_buf(),
        config_path: Some(root.join("vibedev.toml")),
        file,
        name: "p".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_decides_the_exit_code() {
        let r = Report::new(vec![Check::pass("a", ""), Check::skip("b", "")]);
        assert_eq!((r.status, r.exit_code), (Status::Pass, 0));
        let r = Report::new(vec![Check::pass("a", ""), Check::warn("b", "", "h")]);
        assert_eq!(r.exit_code, Exit::DoctorWarn.code());
        let r = Report::new(vec![Check::fail("a", "", None), Check::warn("b", "", "h")]);
        assert_eq!(r.exit_code, Exit::DoctorFail.code());
        assert_eq!(r.count(Status::Warn), 1);
    }

    #[test]
    fn json_shape_is_stable() {
        let r = Report::new(vec![Check::warn("env-file", "m", "h")]);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["status"], "warn");
        assert_eq!(v["exit_code"], 4);
        assert_eq!(v["checks"][0]["name"], "env-file");
        assert_eq!(v["checks"][0]["hint"], "h");
        let r = Report::new(vec![Check::pass("config", "m")]);
        let v = serde_json::to_value(&r).unwrap();
        assert!(v["checks"][0]["hint"].is_null());
    }
}
