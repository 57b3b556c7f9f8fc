//! Why `up` failed: the facts a user needs (service, port, exit code, the container's last log
//! lines) and the next step.

use crate::engine::EngineError;
use crate::stack::UnknownService;

/// Why `up` failed.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    UnknownService(#[from] UnknownService),
    #[error("port {port} for service {service} is already in use on {host_ip}{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    PortInUse {
        service: String,
        host_ip: String,
        port: u16,
        holder: Option<String>,
        /// The other vibedev stack holding the port, when it is one.
        stack: Option<Box<crate::engine::ports::OtherStack>>,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{service} did not become ready within {secs} s: {last}")]
    NotReady {
        service: String,
        secs: u64,
        last: String,
        logs: Vec<String>,
    },
    #[error("{service} exited during startup (exit code {code})")]
    Exited {
        service: String,
        code: i64,
        logs: Vec<String>,
    },
    #[error("{service}, a one-shot job others wait for, exited with code {code}")]
    JobFailed {
        service: String,
        code: i64,
        logs: Vec<String>,
    },
    #[error("{service} was not started because {dependency} failed")]
    DependencyFailed { service: String, dependency: String },
    /// The engine refused to create or start a service's container; its reason, verbatim.
    #[error("cannot {action} {service}: {reason}")]
    Service {
        service: String,
        action: &'static str,
        reason: String,
        #[source]
        source: Box<EngineError>,
    },
    #[error("service {service}: cannot mount {source_path} at {target}: {problem}")]
    Mount {
        service: String,
        source_path: std::path::PathBuf,
        target: String,
        problem: String,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Several(Vec<UpError>),
}

impl UpError {
    pub fn hint(&self) -> Option<String> {
        match self {
            UpError::UnknownService(u) => {
                Some(format!("services of this stack: {}", u.known.join(", ")))
            }
            UpError::PortInUse {
                stack: Some(other), ..
            } => Some(format!(
                "another checkout's stack (project {}{}) holds it: set ports = \"auto\" in vibedev.toml (or run `vibedev up --ports auto`) so that each checkout gets its own free ports, or stop that stack (`vibedev down` there)",
                other.project,
                other
                    .checkout
                    .as_deref()
                    .map(|c| format!(", checkout {c}"))
                    .unwrap_or_default()
            )),
            UpError::PortInUse { service, port, .. } => Some(format!(
                "stop what holds port {port}, or give {service} another host port in vibedev.toml: [services.{service}] ports = [\"<free port>:<container port>\"]"
            )),
            UpError::Engine(e) => e.hint(),
            UpError::JobFailed { service, .. } => Some(format!(
                "its log is above; fix what {service} runs, then `vibedev up` runs it again (a job that completed successfully is not run again until its settings change)"
            )),
            UpError::NotReady { service, .. } | UpError::Exited { service, .. } => Some(format!(
                "see the log lines above, or `vibedev logs {service}`; fix the service's settings and run `vibedev up` again"
            )),
            UpError::DependencyFailed { .. } | UpError::Interrupted => None,
            UpError::Service {
                service,
                reason,
                source,
                ..
            } => {
                if source.is_connection_lost() {
                    return source.hint();
                }
                Some(service_hint(service, reason))
            }
            UpError::Mount { service, .. } => Some(format!(
                "fix the mount under {service}'s `volumes:` in the compose file: mount a folder onto a folder, a file onto a file path"
            )),
            UpError::Several(errs) => errs.iter().find_map(|e| e.hint()),
        }
    }

    /// True when the engine itself went away (not a problem of one service).
    pub fn is_connection_lost(&self) -> bool {
        match self {
            UpError::Engine(e) => e.is_connection_lost(),
            UpError::Service { source, .. } => source.is_connection_lost(),
            UpError::Several(errs) => errs.iter().any(UpError::is_connection_lost),
            _ => false,
        }
    }

    /// Container log lines that explain the failure.
    pub fn log_lines(&self) -> Vec<(String, Vec<String>)> {
        match self {
            UpError::NotReady { service, logs, .. }
            | UpError::Exited { service, logs, .. }
            | UpError::JobFailed { service, logs, .. } => {
                vec![(service.clone(), logs.clone())]
            }
            UpError::Several(errs) => errs.iter().flat_map(|e| e.log_lines()).collect(),
            UpError::Engine(EngineError::Build { image, output, .. }) => {
                vec![(format!("the build of {image}"), output.clone())]
            }
            _ => Vec::new(),
        }
    }
}

/// The next step for a container the engine would not create or start, from its reason.
fn service_hint(service: &str, reason: &str) -> String {
    let r = reason.to_ascii_lowercase();
    if r.contains("port is already allocated") || r.contains("address already in use") {
        format!(
            "another process took one of {service}'s host ports meanwhile: stop it, or give {service} another host port ([services.{service}] ports in vibedev.toml)"
        )
    } else if r.contains("mount") || r.contains("not a directory") {
        format!(
            "check {service}'s `volumes:` in the compose file: a bind-mount source must exist and be a folder where the image has a folder, a file where it has a file"
        )
    } else if r.contains("no such image") {
        "the image disappeared meanwhile: run `vibedev up` again to pull it".to_string()
    } else {
        format!(
            "fix {service}'s settings in the compose file or vibedev.toml as the engine's reason says, then run `vibedev up` again"
        )
    }
}
