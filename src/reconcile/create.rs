//! A service's new container: its spec in the engine's terms, created (or the one an earlier run
//! left under its name claimed), then started when its turn in the start order comes.

use std::time::{Duration, Instant};

use crate::engine::body::{ContainerSpec, MountSpec, container_body};
use crate::engine::containers::{Claim, ContainerFile, NameInUse};
use crate::engine::{Engine, EngineError};
use crate::ready;
use crate::services::{Kind, Launch};
use crate::stack::{Mount, ServiceSpec, Stack};

use super::{Cancel, StartTurn, UpError};

/// Creates the service's container and starts it when its turn comes. A container of that name
/// that appeared meanwhile (a concurrent or interrupted run) is reused when its spec matches. A
/// container created here that the engine will not start is removed again, so that no
/// half-made container is left behind.
pub(super) async fn create_and_start(
    engine: &Engine,
    stack: &Stack,
    spec: &ServiceSpec,
    turn: &mut StartTurn<'_>,
    cancel: &Cancel,
) -> Result<String, UpError> {
    let hash = spec.config_hash();
    let launch = launch(engine, spec).await;
    let mut container = container_spec(stack, spec, &hash);
    if !engine.is_local() {
        copy_owned_files(spec, &mut container)?;
    }
    let mut env;
    if let Some((launch, volume)) = &launch {
        if let Some(entrypoint) = &launch.entrypoint {
            container.entrypoint = Some(entrypoint);
        }
        if let Some(command) = &launch.command {
            container.command = Some(command);
        }
        if !launch.env.is_empty() {
            env = spec.env.clone();
            env.extend(launch.env.iter().cloned());
            container.env = &env;
        }
        if let (Some(target), Some(volume)) = (launch.cache_target, volume) {
            container.mounts.push(MountSpec::Volume {
                name: volume,
                target,
                read_only: false,
            });
        }
    }
    let body = container_body(&container);
    let failed = |action: &'static str, source: EngineError| UpError::Service {
        service: spec.name.clone(),
        action,
        reason: source.reason(),
        source: Box::new(source),
    };
    let name_in_use = |taken: NameInUse| UpError::Service {
        service: spec.name.clone(),
        action: "create",
        reason: taken.reason(),
        source: Box::new(taken.into_error()),
    };
    // An interrupted run's create may still be finishing inside the engine: the name is then
    // reserved but the container not yet visible. Wait for it rather than fail.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut backoff = ready::Backoff::default();
    loop {
        cancel.check()?;
        let claim = engine
            .claim_container(
                &spec.container_name,
                body.clone(),
                &stack.project,
                &hash,
                spec.stop_grace_secs as i32,
            )
            .await
            .map_err(|e| failed("create", e))?;
        match claim {
            Claim::Created(id) => {
                // Interrupted while waiting for its turn: the container is removed, not left
                // created.
                let turn_came = tokio::select! {
                    _ = turn.before_start() => true,
                    _ = cancel.cancelled() => false,
                };
                if !turn_came {
                    let _ = engine.remove_container(&id, 0).await;
                    return Err(UpError::Interrupted);
                }
                engine
                    .start_created(&id, &container.files)
                    .await
                    .map_err(|(action, e)| failed(action, e))?;
                return Ok(id);
            }
            Claim::Existing(id) => {
                turn.before_start().await;
                match engine.start_container(&id).await {
                    Ok(()) => return Ok(id),
                    // Removed since it was found (an interrupted run's create being undone by
                    // the engine): claimed again after the delay below.
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(failed("start", e)),
                }
            }
            Claim::Foreign(taken) => return Err(name_in_use(taken)),
            Claim::Replaced => continue,
            Claim::Reserved => {}
        }
        let delay = backoff.next_delay();
        if Instant::now() + delay >= deadline {
            return Err(name_in_use(NameInUse::reserved(&spec.container_name)));
        }
        tokio::time::sleep(delay).await;
    }
}

/// On an engine on another machine, a host path means a path there: the files vibedev hands to
/// the container itself (`secrets:`/`configs:` from a `file:`) are read here and copied in
/// through the API before it starts, instead of bind-mounted. Folders the user shares stay bind
/// mounts of the engine's machine (`up` names them).
fn copy_owned_files(spec: &ServiceSpec, container: &mut ContainerSpec<'_>) -> Result<(), UpError> {
    for mount in &spec.mounts {
        let Mount::Bind {
            source,
            target,
            owned: true,
            ..
        } = mount
        else {
            continue;
        };
        let data = std::fs::read(source).map_err(|e| UpError::Mount {
            service: spec.name.clone(),
            source_path: source.clone(),
            target: target.clone(),
            problem: format!("cannot read it to copy it to the engine: {e}"),
        })?;
        container
            .mounts
            .retain(|m| !matches!(m, MountSpec::Bind { target: t, .. } if *t == target));
        container.files.push(ContainerFile {
            path: target.clone(),
            data,
            mode: 0o444,
            uid: 0,
            gid: 0,
        });
    }
    Ok(())
}

/// The kind's faster start for the service's image, when it recognises the image (with the
/// cache volume it mounts). The service's own command otherwise, and also when the engine cannot
/// describe the image or make the cache volume: a slower start, never a failed one.
async fn launch(engine: &Engine, spec: &ServiceSpec) -> Option<(Launch, Option<&'static str>)> {
    let kind = spec.kind?;
    let facts = engine.image_facts(&spec.image).await?;
    let launch = kind.launch(&facts, &spec.launch_input())?;
    if launch.cache_target.is_none() {
        return Some((launch, None));
    }
    let volume = engine.ensure_cache_volume().await.ok()?;
    Some((launch, Some(volume)))
}

/// The engine's terms for a service's container.
fn container_spec<'a>(stack: &'a Stack, spec: &'a ServiceSpec, hash: &'a str) -> ContainerSpec<'a> {
    ContainerSpec {
        project: &stack.project,
        checkout: Some(&stack.checkout),
        network: &stack.network,
        service: &spec.name,
        hash,
        kind: spec.kind.map(Kind::as_str),
        image: &spec.image,
        command: spec.command.as_deref(),
        entrypoint: spec.entrypoint.as_deref(),
        env: &spec.env,
        ports: &spec.ports,
        mounts: spec
            .mounts
            .iter()
            .map(|m| match m {
                Mount::Volume {
                    name,
                    target,
                    read_only,
                } => MountSpec::Volume {
                    name,
                    target,
                    read_only: *read_only,
                },
                Mount::Bind {
                    source,
                    target,
                    read_only,
                    ..
                } => MountSpec::Bind {
                    source,
                    target,
                    read_only: *read_only,
                },
                Mount::Anonymous { target } => MountSpec::Anonymous { target },
            })
            .collect(),
        labels: &spec.labels,
        user: spec.user.as_deref(),
        working_dir: spec.working_dir.as_deref(),
        healthcheck: spec.healthcheck.as_ref(),
        stop_signal: spec.stop_signal.as_deref(),
        stop_grace_secs: spec.stop_grace_secs,
        tmpfs: &spec.tmpfs,
        restart: spec.restart.as_deref(),
        // Secrets and configs whose value is not a host file.
        files: spec
            .files
            .iter()
            .map(|f| ContainerFile {
                path: f.target.clone(),
                data: f.data.clone(),
                mode: f.mode,
                uid: f.uid,
                gid: f.gid,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Project;
    use crate::engine::body::container_body;
    use crate::engine::{LABEL_HASH, LABEL_KIND, LABEL_PROJECT, LABEL_SERVICE};
    use crate::stack::Stack;
    use std::path::PathBuf;

    fn stack() -> Stack {
        let project = Project {
            root: PathBuf::from("/w"),
            config_path: None,
            file: Default::default(),
            name: "demo".into(),
        };
        Stack::resolve(&project).unwrap()
    }

    #[test]
    fn the_default_postgres_container_carries_labels_ports_and_its_volume() {
        let s = stack();
        let pg = s.service("postgres").unwrap();
        let body = container_body(&container_spec(&s, pg, "abc"));
        let labels = body.labels.clone().unwrap();
        assert_eq!(labels[LABEL_PROJECT], "demo");
        assert_eq!(labels[LABEL_SERVICE], "postgres");
        assert_eq!(labels[LABEL_HASH], "abc");
        assert_eq!(labels[LABEL_KIND], "postgres");
        // The app's password is in the environment only, never in a label.
        assert!(
            labels
                .values()
                .all(|v| !v.contains("vibesdk-local") && !v.contains("postgres:postgres"))
        );
        let host = body.host_config.unwrap();
        let binding = &host.port_bindings.unwrap()["5432/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("5432"));
        let mount = &host.mounts.unwrap()[0];
        assert_eq!(mount.source.as_deref(), Some("demo_pgdata"));
        assert_eq!(host.network_mode.as_deref(), Some("demo_default"));
    }
}
