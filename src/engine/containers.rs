//! Containers: list this project's, create (claiming a name an earlier run may hold), start,
//! stop, remove, inspect, wait for their exit or health, and read their logs.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use super::{
    Engine, EngineError, LABEL_HASH, LABEL_PROJECT, LABEL_SERVICE, is_conflict, is_not_found,
    is_not_modified,
};

/// What the engine says about one of this project's containers.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    pub id: String,
    pub name: String,
    pub service: String,
    pub hash: String,
    /// `created`, `running`, `exited`, `paused`, `restarting`, `removing` or `dead`.
    pub state: String,
    pub labels: HashMap<String, String>,
    /// Host ports it publishes.
    pub public_ports: Vec<u16>,
    /// Ids of the networks it is attached to.
    pub networks: Vec<String>,
    /// Its exit code, once it has exited.
    pub exit_code: Option<i64>,
    /// The id of the image it was created from.
    pub image_id: String,
}

/// The exit code in the engine's status text (`Exited (3) 2 minutes ago`).
fn exit_code_of(status: &str) -> Option<i64> {
    status
        .strip_prefix("Exited (")?
        .split(')')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// What [`Engine::claim_container`] found under the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Created now (not started): its id.
    Created(String),
    /// This project's container of the same spec had the name: its id (not started by this).
    Existing(String),
    /// An older container of this project had the name and was removed: try again.
    Replaced,
    /// The engine holds the name for a container not visible yet: try again a little later.
    Reserved,
    /// A container vibedev did not create has the name.
    Foreign(NameInUse),
}

/// A container name that cannot be had, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameInUse {
    pub name: String,
    pub what: &'static str,
}

impl NameInUse {
    /// The engine still reserves the name after the caller stopped waiting for it.
    pub fn reserved(name: &str) -> NameInUse {
        NameInUse {
            name: name.to_string(),
            what: "the name stays reserved by the engine",
        }
    }

    /// In a sentence, for the user.
    pub fn reason(&self) -> String {
        format!("the container name {} is in use: {}", self.name, self.what)
    }

    /// As the engine's refusal of the create (409).
    pub fn into_error(self) -> EngineError {
        EngineError::Api {
            action: format!("create container {}: {}", self.name, self.what),
            source: bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message: "name in use".into(),
            },
        }
    }
}

impl Engine {
    /// Every container carrying this project's label (running or not).
    pub async fn project_containers(
        &self,
        project: &str,
    ) -> Result<Vec<ContainerInfo>, EngineError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_PROJECT}={project}")],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("list containers", e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                let labels = c.labels.unwrap_or_default();
                // The filter asked for the label; check it again rather than trust it.
                if labels.get(LABEL_PROJECT).map(String::as_str) != Some(project) {
                    return None;
                }
                Some(ContainerInfo {
                    id: c.id?,
                    name: c
                        .names
                        .and_then(|n| n.into_iter().next())
                        .unwrap_or_default()
                        .trim_start_matches('/')
                        .to_string(),
                    service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
                    hash: labels.get(LABEL_HASH).cloned().unwrap_or_default(),
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                    public_ports: c
                        .ports
                        .unwrap_or_default()
                        .iter()
                        .filter_map(|p| p.public_port)
                        .collect(),
                    exit_code: c.status.as_deref().and_then(exit_code_of),
                    image_id: c.image_id.unwrap_or_default(),
                    networks: c
                        .network_settings
                        .and_then(|n| n.networks)
                        .unwrap_or_default()
                        .into_values()
                        .filter_map(|e| e.network_id.filter(|id| !id.is_empty()))
                        .collect(),
                    labels,
                })
            })
            .collect())
    }

    /// Every container on the engine (any project, or none), for naming who holds a port.
    pub async fn all_containers(
        &self,
    ) -> Result<Vec<bollard::models::ContainerSummary>, EngineError> {
        let options = ListContainersOptionsBuilder::default().all(false).build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| EngineError::api("list containers", e))
    }

    /// Creates a container; `Ok(None)` when the name is already taken.
    pub async fn create_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<Option<String>, EngineError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        match self.docker.create_container(Some(options), body).await {
            Ok(resp) => Ok(Some(resp.id)),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("create container {name}"), e)),
        }
    }

    pub async fn pause_container(&self, id: &str) -> Result<(), EngineError> {
        self.docker
            .pause_container(id)
            .await
            .map_err(|e| EngineError::api(format!("pause container {id}"), e))
    }

    pub async fn unpause_container(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.unpause_container(id).await {
            Ok(()) => Ok(()),
            // Not paused (any more): the same outcome.
            Err(e) if is_conflict(&e) || is_not_modified(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("unpause container {id}"), e)),
        }
    }

    /// Writes files into a created container before it starts (service secrets and configs
    /// whose value is not a file on the host), with their owner and mode; missing parent
    /// folders are made.
    pub async fn put_files(&self, id: &str, files: &[ContainerFile]) -> Result<(), EngineError> {
        if files.is_empty() {
            return Ok(());
        }
        let tar = files_tar(files).map_err(|e| EngineError::Api {
            action: format!("prepare files for container {id}"),
            source: bollard::errors::Error::IOError { err: e },
        })?;
        let options = bollard::query_parameters::UploadToContainerOptionsBuilder::default()
            .path("/")
            .build();
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| EngineError::api(format!("copy files into container {id}"), e))
    }

    pub async fn start_container(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_modified(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("start container {id}"), e)),
        }
    }

    /// Stops a container (its own stop signal, then SIGKILL after `grace_secs`); it stays, with
    /// its anonymous volumes, for a later start. Stopping a stopped container is fine.
    pub async fn stop_container(&self, id: &str, grace_secs: i32) -> Result<(), EngineError> {
        let stop = StopContainerOptionsBuilder::default().t(grace_secs).build();
        match self.docker.stop_container(id, Some(stop)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_modified(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("stop container {id}"), e)),
        }
    }

    /// Stops (with the container's own stop signal and a grace period) and removes a container
    /// and its anonymous volumes. Named volumes are never removed here.
    pub async fn remove_container(&self, id: &str, grace_secs: i32) -> Result<(), EngineError> {
        let stop = StopContainerOptionsBuilder::default().t(grace_secs).build();
        match self.docker.stop_container(id, Some(stop)).await {
            Ok(()) => {}
            Err(e) if is_not_modified(&e) || is_not_found(&e) => {}
            Err(e) => return Err(EngineError::api(format!("stop container {id}"), e)),
        }
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // Already being removed by someone else: converges to the same state.
            Err(e) if is_conflict(&e) => Ok(()),
            Err(e) => Err(EngineError::api(format!("remove container {id}"), e)),
        }
    }

    pub async fn inspect_container(
        &self,
        id: &str,
    ) -> Result<Option<ContainerInspectResponse>, EngineError> {
        match self.docker.inspect_container(id, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspect container {id}"), e)),
        }
    }

    /// Creates container `name` from `body`, or deals with what already holds the name (a
    /// concurrent or interrupted run): this project's container of the same spec (`hash`) is
    /// used as it is; an older one of this project is removed (`grace_secs` to stop) so that the
    /// name is free again; one vibedev did not create is never touched.
    pub async fn claim_container(
        &self,
        name: &str,
        body: ContainerCreateBody,
        project: &str,
        hash: &str,
        grace_secs: i32,
    ) -> Result<Claim, EngineError> {
        if let Some(id) = self.create_container(name, body).await? {
            return Ok(Claim::Created(id));
        }
        let Some(existing) = self.inspect_container(name).await? else {
            // An interrupted run's create may still be finishing inside the engine: the name is
            // reserved but the container not yet visible.
            return Ok(Claim::Reserved);
        };
        let labels = existing
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        let id = existing.id.clone().unwrap_or_default();
        if labels.get(LABEL_PROJECT).map(String::as_str) != Some(project) {
            return Ok(Claim::Foreign(NameInUse {
                name: name.to_string(),
                what: "a container of that name exists without vibedev's labels; remove or rename it",
            }));
        }
        if labels.get(LABEL_HASH).map(String::as_str) == Some(hash) {
            return Ok(Claim::Existing(id));
        }
        self.remove_container(&id, grace_secs).await?;
        Ok(Claim::Replaced)
    }

    /// Writes `files` into a container just created and starts it; a container the engine will
    /// not start is removed again (unless the engine went away), so that no half-made container
    /// is left behind. The error tells which step failed (`create` or `start`).
    pub async fn start_created(
        &self,
        id: &str,
        files: &[ContainerFile],
    ) -> Result<(), (&'static str, EngineError)> {
        if let Err(e) = self.put_files(id, files).await {
            let _ = self.remove_container(id, 0).await;
            return Err(("create", e));
        }
        if let Err(e) = self.start_container(id).await {
            if !e.is_connection_lost() {
                let _ = self.remove_container(id, 0).await;
            }
            return Err(("start", e));
        }
        Ok(())
    }

    /// Resolves with the exit code once the container stops running, or with the error once the
    /// engine has stopped answering (three checks in a row).
    pub async fn watch_exit(&self, id: &str) -> Result<i64, EngineError> {
        let mut lost = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match self.inspect_container(id).await {
                Ok(Some(c)) => {
                    lost = 0;
                    let state = c.state.unwrap_or_default();
                    if state.running != Some(true) && state.restarting != Some(true) {
                        return Ok(state.exit_code.unwrap_or(-1));
                    }
                }
                Ok(None) => return Ok(-1),
                Err(e) if e.is_connection_lost() => {
                    lost += 1;
                    if lost >= 3 {
                        return Err(e);
                    }
                }
                // Other engine trouble: the caller's deadline still bounds the wait.
                Err(_) => {}
            }
        }
    }

    /// A one-shot container's exit code once it has run to its end (-1 when it is gone);
    /// `None` while it runs, restarts, or has not been started yet.
    pub async fn completed(&self, id: &str) -> Result<Option<i64>, EngineError> {
        let Some(c) = self.inspect_container(id).await? else {
            return Ok(Some(-1));
        };
        let state = c.state.unwrap_or_default();
        if state.running == Some(true) || state.restarting == Some(true) {
            return Ok(None);
        }
        if state.status.map(|s| s.to_string()).as_deref() == Some("created") {
            // Not started yet: nothing to wait for but the start.
            return Ok(None);
        }
        Ok(Some(state.exit_code.unwrap_or(-1)))
    }

    /// Whether the container's health check reports healthy: `Err` says what it reports
    /// instead, or that it has no health check (then it cannot be waited for, as Compose says).
    pub async fn healthy(&self, id: &str) -> Result<(), String> {
        let c = self
            .inspect_container(id)
            .await
            .map_err(|e| e.to_string())?;
        let has_check = c
            .as_ref()
            .and_then(|c| c.config.as_ref())
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref())
            .is_some_and(|t| t.first().map(String::as_str) != Some("NONE"));
        if !has_check {
            return Err(
                "another service waits for it to be healthy (service_healthy), but it has no healthcheck: add one under `healthcheck:`"
                    .to_string(),
            );
        }
        let health = c
            .and_then(|c| c.state)
            .and_then(|s| s.health)
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .unwrap_or_default();
        if health == "healthy" {
            Ok(())
        } else {
            Err(format!("health check says {health:?}"))
        }
    }

    /// The last `n` lines of a container's output (stdout and stderr), for error messages.
    pub async fn log_tail(&self, id: &str, n: usize) -> Vec<String> {
        let mut stream = Box::pin(self.logs(id, false, Some(n)));
        let mut text = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(log_bytes(&chunk)));
        }
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        let skip = lines.len().saturating_sub(n);
        lines.into_iter().skip(skip).collect()
    }

    /// A container's log stream; `tail` = `None` means all of it.
    pub fn logs(
        &self,
        id: &str,
        follow: bool,
        tail: Option<usize>,
    ) -> impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + use<> {
        let tail = tail.map_or_else(|| "all".to_string(), |n| n.to_string());
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(follow)
            .tail(&tail)
            .build();
        self.docker.logs(id, Some(options))
    }
}

/// The bytes of one log chunk, whichever stream it came from.
pub fn log_bytes(chunk: &LogOutput) -> &[u8] {
    match chunk {
        LogOutput::StdErr { message }
        | LogOutput::StdOut { message }
        | LogOutput::StdIn { message }
        | LogOutput::Console { message } => message,
    }
}

/// The host address and port a container port is published on.
pub fn published_port(
    inspect: &ContainerInspectResponse,
    container_port: u16,
    protocol: &str,
) -> Option<(String, u16)> {
    let ports = inspect.network_settings.as_ref()?.ports.as_ref()?;
    let bindings = ports
        .get(&format!("{container_port}/{protocol}"))?
        .as_ref()?;
    bindings.iter().find_map(|b| {
        let port = b.host_port.as_deref()?.parse::<u16>().ok()?;
        Some((b.host_ip.clone().unwrap_or_default(), port))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn exit_code_is_read_from_the_status_text() {
        assert_eq!(super::exit_code_of("Exited (0) 3 seconds ago"), Some(0));
        assert_eq!(super::exit_code_of("Exited (137) 2 minutes ago"), Some(137));
        assert_eq!(super::exit_code_of("Up 5 seconds"), None);
    }
}

/// A file written into a container before it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFile {
    /// Absolute path in the container.
    pub path: String,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A tar archive of `files` rooted at `/`. No folder entries: the engine makes missing parent
/// folders (mode 0755) and leaves existing ones (say `/tmp`) as they are.
fn files_tar(files: &[ContainerFile]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.data.len() as u64);
        header.set_mode(f.mode);
        header.set_uid(f.uid);
        header.set_gid(f.gid);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(
            &mut header,
            f.path.trim_start_matches('/'),
            f.data.as_slice(),
        )?;
    }
    builder.into_inner()
}
