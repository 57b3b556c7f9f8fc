//! What is checked before anything is created: the host ports new containers will bind, and the
//! bind-mount sources they will mount.

use crate::engine::Engine;
use crate::engine::containers::ContainerInfo;
use crate::engine::ports::{PortTaken, WantedPort, check_ports};
use crate::stack::{Action, Mount, ServiceSpec};

use super::{Event, Reporter, UpError};

/// Every host port a new or restarted container will bind must be free, or held by this
/// project's own container for that service. Checked before anything is created.
pub(super) async fn preflight_ports(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    containers: &[ContainerInfo],
) -> Result<(), UpError> {
    let wanted = plans
        .iter()
        .filter(|(_, a)| !matches!(a, Action::Keep { .. }))
        .flat_map(|(spec, _)| spec.ports.iter().map(|p| WantedPort::of(&spec.name, p)));
    let own = |service: &str, port: u16| {
        containers
            .iter()
            .find(|c| c.service == service)
            .filter(|c| c.public_ports.contains(&port))
            .map(|c| c.name.clone())
    };
    check_ports(Some(engine), wanted, own)
        .await
        .map(drop)
        .map_err(port_in_use)
}

/// A port something else holds, as `up` fails with it.
pub fn port_in_use(taken: PortTaken) -> UpError {
    UpError::PortInUse {
        service: taken.service,
        host_ip: taken.host_ip,
        port: taken.port,
        holder: taken.holder,
        stack: taken.stack.map(Box::new),
    }
}

/// Bind-mount sources are checked before anything is created, where the engine runs on this
/// machine (a remote engine's paths are its own): a missing source folder is created, as Compose
/// does; a file mounted where the image declares a volume folder is refused.
pub(super) async fn preflight_mounts(
    engine: &Engine,
    plans: &[(ServiceSpec, Action)],
    report: &Reporter,
) -> Result<(), UpError> {
    if !engine.is_local() {
        // Files vibedev owns (secrets, configs) are copied in through the API; what the user
        // shares is named, since it must exist on the engine's machine.
        for (spec, action) in plans {
            if !matches!(action, Action::Create | Action::Recreate { .. }) {
                continue;
            }
            let paths: Vec<_> = spec
                .mounts
                .iter()
                .filter_map(|m| match m {
                    Mount::Bind {
                        source,
                        owned: false,
                        ..
                    } => Some(source.clone()),
                    _ => None,
                })
                .collect();
            if !paths.is_empty() {
                report(Event::RemoteBindMounts {
                    service: spec.name.clone(),
                    paths,
                });
            }
        }
        return Ok(());
    }
    for (spec, action) in plans {
        if !matches!(action, Action::Create | Action::Recreate { .. }) {
            continue;
        }
        let mut image_volumes: Option<Vec<String>> = None;
        for mount in &spec.mounts {
            let Mount::Bind { source, target, .. } = mount else {
                continue;
            };
            let mount_error = |problem: &str| UpError::Mount {
                service: spec.name.clone(),
                source_path: source.clone(),
                target: target.clone(),
                problem: problem.to_string(),
            };
            match std::fs::metadata(source) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir_all(source)
                        .map_err(|e| mount_error(&format!("cannot create the folder: {e}")))?;
                    report(Event::MountSourceCreated {
                        service: spec.name.clone(),
                        path: source.clone(),
                    });
                }
                Err(e) => return Err(mount_error(&e.to_string())),
                Ok(meta) if meta.is_dir() => {}
                Ok(_) => {
                    if image_volumes.is_none() {
                        image_volumes = Some(engine.image_volumes(&spec.image).await);
                    }
                    let folder_in_image = target.ends_with('/')
                        || image_volumes
                            .as_deref()
                            .unwrap_or_default()
                            .iter()
                            .any(|v| v.trim_end_matches('/') == target.trim_end_matches('/'));
                    if folder_in_image {
                        return Err(mount_error(&format!(
                            "{} is a file, and {target} is a folder in image {}",
                            source.display(),
                            spec.image
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}
