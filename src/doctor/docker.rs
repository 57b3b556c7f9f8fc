//! The engine side of the doctor: which Docker engine answers and its versions, which of the
//! stack's images are present or still to pull (and whether they suit this engine), disk space
//! where the engine keeps images, and whether every fixed host port of the stack is free.

use std::path::Path;

use futures_util::future::join_all;
use indicatif::HumanBytes;

use crate::engine::ports::{PortState, WantedPort, check_ports};
use crate::engine::{Engine, EngineError, is_not_found};
use crate::reconcile::port_in_use;
use crate::stack::Stack;

use super::Check;
use super::registry::{self, RegistryError, Remote, normalize_arch};

/// Below this much free space the data volumes themselves are at risk, whatever is pulled.
const MIN_FREE: u64 = 1 << 30;
/// Unpacked images take about this many times their compressed download.
const UNPACK_FACTOR: u64 = 3;

/// What the engine told about itself.
#[derive(Debug, Clone, Default)]
pub struct EngineFacts {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    /// Where the engine keeps images (`DockerRootDir`).
    pub root_dir: Option<String>,
    /// The engine's host name (tells whether it runs on this machine).
    pub host_name: Option<String>,
}

/// One image of the stack, as found locally or in its registry.
#[derive(Debug, Clone)]
pub struct ImageState {
    pub image: String,
    pub services: Vec<String>,
    pub found: Found,
}

#[derive(Debug, Clone)]
pub enum Found {
    /// In the engine's image store.
    Present { os: String, arch: String },
    /// Not present; what its registry said.
    Missing(Result<Remote, RegistryError>),
    /// The engine could not say.
    Unknown(String),
}

/// `docker`, `images`, `architecture`, `disk` and `ports`, in that order.
pub async fn checks(engine: &Result<Engine, EngineError>, stack: Option<&Stack>) -> Vec<Check> {
    let engine = match engine {
        Ok(engine) => engine,
        Err(e) => {
            let needs = "needs the Docker engine (see the docker check)";
            // The SSH client's own words say what went wrong (host, key, known_hosts).
            let message = match e {
                EngineError::Ssh { source, .. } => format!("{e}: {source}"),
                _ => e.to_string(),
            };
            return vec![
                Check::fail("docker", message, e.hint()),
                Check::skip("images", needs),
                Check::skip("start-cache", needs),
                Check::skip("architecture", needs),
                Check::skip("disk", needs),
                match stack {
                    Some(stack) => ports_check(stack, None).await,
                    None => Check::skip("ports", "vibedev.toml could not be read"),
                },
            ];
        }
    };
    let facts = match engine_facts(engine).await {
        Ok(facts) => facts,
        Err(e) => {
            let needs = "needs an answer from the Docker engine (see the docker check)";
            return vec![
                Check::fail(
                    "docker",
                    e.to_string(),
                    Some(format!(
                        "the engine at {} answers but not as Docker does; check `docker info`",
                        engine.endpoint
                    )),
                ),
                Check::skip("images", needs),
                Check::skip("start-cache", needs),
                Check::skip("architecture", needs),
                Check::skip("disk", needs),
                Check::skip("ports", needs),
            ];
        }
    };
    let docker = docker_check(engine, &facts, stack.map(|s| s.project.as_str())).await;
    let Some(stack) = stack else {
        let needs = "vibedev.toml could not be read";
        return vec![
            docker,
            Check::skip("images", needs),
            Check::skip("start-cache", needs),
            Check::skip("architecture", needs),
            disk_check(&[], &facts),
            Check::skip("ports", needs),
        ];
    };
    let images = image_states(engine, stack, &facts).await;
    vec![
        docker,
        images_check(&images),
        start_cache_check(engine, stack).await,
        architecture_check(&images, &facts),
        disk_check(&images, &facts),
        ports_check(stack, Some(engine)).await,
    ]
}

/// `docker`: which engine, its versions and, for an engine on another machine, where it is,
/// the round trip to it and the state of the project's forwards (a dropped SSH connection warns,
/// with the step that forwards the ports again).
async fn docker_check(engine: &Engine, facts: &EngineFacts, project: Option<&str>) -> Check {
    let mut message = format!(
        "Docker {} (API {}, {}/{}) at {}",
        facts.version, facts.api_version, facts.os, facts.arch, engine.endpoint
    );
    if engine.is_local() {
        return Check::pass("docker", message);
    }
    let started = std::time::Instant::now();
    let rtt = engine.docker.ping().await.map(|_| started.elapsed());
    let host = facts.host_name.as_deref().unwrap_or("?");
    match rtt {
        Ok(rtt) => message.push_str(&format!(
            "; on another machine ({host}), round trip {:.1} ms",
            rtt.as_secs_f64() * 1000.0
        )),
        Err(e) => message.push_str(&format!("; on another machine ({host}), ping failed: {e}")),
    }
    let Some(project) = project else {
        return Check::pass("docker", message);
    };
    let Some(state) = crate::runtime::forwards_state(engine, project).await else {
        message.push_str(match &engine.relay {
            Some(_) => "; published ports are reached on the engine's host (`[engine] forward = true` in vibedev.toml or VIBEDEV_FORWARD=1 relays them to 127.0.0.1)",
            None => "; published ports are reached on the engine's host (forwards are made for ssh:// engines)",
        });
        return Check::pass("docker", message);
    };
    let again = match &engine.tunnel {
        Some(_) => "run `vibedev up`: it connects again and forwards the stack's ports",
        None => "run `vibedev up`: it starts the relay of the stack's ports again",
    };
    match crate::runtime::describe_forwards(engine, &state) {
        Some((line, true)) => Check::warn("docker", format!("{message}; {line}"), again),
        Some((line, false)) => Check::pass("docker", format!("{message}; {line}")),
        None => Check::pass("docker", message),
    }
}

/// `start-cache`: the services whose image vibedev starts a faster way with a cache (the
/// Firestore emulator's class-data archive in Google's emulators image, the initialized cluster
/// of the official Postgres entrypoint for the service's settings), and whether the cache for
/// that image is made yet: without it the next start (for Postgres: the next on an empty
/// volume) takes the slow path, and what that costs.
async fn start_cache_check(engine: &Engine, stack: &Stack) -> Check {
    const NAME: &str = "start-cache";
    let mut ready = Vec::new();
    let mut slow = Vec::new();
    for spec in &stack.services {
        let Some(kind) = spec.kind else { continue };
        let Some(facts) = engine.image_facts(&spec.image).await else {
            continue;
        };
        let input = spec.launch_input();
        let Some(target) = kind.launch(&facts, &input).and_then(|l| l.cache_target) else {
            continue;
        };
        let Some((path, cost)) = kind.launch_cache(&facts, &input) else {
            continue;
        };
        match engine.cache_has(&spec.image, target, &path).await {
            Ok(true) => ready.push(spec.name.clone()),
            Ok(false) => slow.push(format!("{} ({}): {cost}", spec.name, spec.image)),
            Err(e) => {
                return Check::warn(
                    NAME,
                    format!("could not look into the cache volume: {e}"),
                    "check `docker volume inspect vibedev-cache`",
                );
            }
        }
    }
    if !slow.is_empty() {
        let mut message = format!(
            "no start cache yet, so these take the slow path: {}",
            slow.join("; ")
        );
        if !ready.is_empty() {
            message.push_str(&format!(" (cached: {})", ready.join(", ")));
        }
        return Check::pass(NAME, message);
    }
    if ready.is_empty() {
        Check::pass(NAME, "no service's image takes a start cache")
    } else {
        Check::pass(NAME, format!("start cache ready for {}", ready.join(", ")))
    }
}

async fn engine_facts(engine: &Engine) -> Result<EngineFacts, EngineError> {
    let version = engine
        .docker
        .version()
        .await
        .map_err(|e| EngineError::api("read the engine's version", e))?;
    let info = engine
        .docker
        .info()
        .await
        .map_err(|e| EngineError::api("read the engine's info", e))?;
    Ok(EngineFacts {
        version: version.version.unwrap_or_else(|| "?".into()),
        api_version: version.api_version.unwrap_or_else(|| "?".into()),
        os: version
            .os
            .or(info.os_type)
            .unwrap_or_else(|| "linux".into()),
        arch: version
            .arch
            .or(info.architecture)
            .map(|a| normalize_arch(&a).to_string())
            .unwrap_or_default(),
        root_dir: info.docker_root_dir,
        host_name: info.name,
    })
}

/// Each distinct image of the stack: present (with its platform), or what its registry says.
pub async fn image_states(engine: &Engine, stack: &Stack, facts: &EngineFacts) -> Vec<ImageState> {
    let mut images: Vec<(String, Vec<String>)> = Vec::new();
    // Images built from `build:` are made by `up`, not pulled: nothing to look up.
    for spec in stack.services.iter().filter(|s| s.build.is_none()) {
        match images.iter_mut().find(|(i, _)| *i == spec.image) {
            Some((_, services)) => services.push(spec.name.clone()),
            None => images.push((spec.image.clone(), vec![spec.name.clone()])),
        }
    }
    let client = registry::client();
    join_all(images.into_iter().map(|(image, services)| {
        let client = &client;
        async move {
            let found = match engine.docker.inspect_image(&image).await {
                Ok(i) => Found::Present {
                    os: i.os.unwrap_or_default(),
                    arch: i.architecture.unwrap_or_default(),
                },
                Err(e) if is_not_found(&e) => {
                    Found::Missing(registry::lookup(client, &image, &facts.os, &facts.arch).await)
                }
                Err(e) => Found::Unknown(e.to_string()),
            };
            ImageState {
                image,
                services,
                found,
            }
        }
    }))
    .await
}

/// `images`: which are present and which `vibedev up` will pull; an image its registry does not
/// have fails here rather than halfway through `up`.
pub fn images_check(images: &[ImageState]) -> Check {
    const NAME: &str = "images";
    let mut present = Vec::new();
    let mut to_pull = Vec::new();
    // Why sizes are unknown, with the images each reason applies to.
    let mut unknown: Vec<(String, Vec<String>)> = Vec::new();
    let mut problems = Vec::new();
    let mut unreachable: Vec<(ImageState, String)> = Vec::new();
    for s in images {
        match &s.found {
            Found::Present { .. } => present.push(s.image.clone()),
            Found::Missing(Ok(remote)) => match remote.download_bytes {
                Some(b) => to_pull.push(format!("{} ({} download)", s.image, HumanBytes(b))),
                None => {
                    to_pull.push(s.image.clone());
                    push_reason(
                        &mut unknown,
                        "its registry gave no size for this engine's platform".into(),
                        &s.image,
                    );
                }
            },
            Found::Missing(Err(RegistryError::NotFound)) => problems.push((
                s.clone(),
                format!("{} is not in its registry (no such image or tag)", s.image),
            )),
            // Not here and nowhere to pull it from: `up` would fail at its pull.
            Found::Missing(Err(RegistryError::Unreachable(why))) => unreachable.push((
                s.clone(),
                format!(
                    "{} is not here and its registry cannot be reached ({why})",
                    s.image
                ),
            )),
            Found::Missing(Err(e)) => {
                to_pull.push(s.image.clone());
                push_reason(&mut unknown, e.to_string(), &s.image);
            }
            Found::Unknown(e) => problems.push((
                s.clone(),
                format!("the engine cannot inspect {}: {e}", s.image),
            )),
        }
    }
    if let Some((state, _)) = problems.first() {
        let service = state.services.first().cloned().unwrap_or_default();
        return Check::fail(
            NAME,
            problems
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Some(format!(
                "check the image name and tag; vibedev.toml can name another: [services.{service}] image = \"...\""
            )),
        );
    }
    if !unreachable.is_empty() {
        return Check::fail(
            NAME,
            unreachable
                .iter()
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            Some(
                "connect this machine to the image's registry (network, proxy, VPN), or load the image into the engine (`docker load`, or build it); vibedev.toml can point [services.NAME] image at a registry you reach"
                    .into(),
            ),
        );
    }
    let mut message = if present.is_empty() {
        "none present yet".to_string()
    } else {
        format!("{} present: {}", present.len(), present.join(", "))
    };
    if !to_pull.is_empty() {
        message.push_str(&format!(
            "; `vibedev up` will pull {}: {}",
            to_pull.len(),
            to_pull.join(", ")
        ));
    }
    for (reason, names) in unknown {
        let which = if names.len() == to_pull.len() && names.len() > 1 {
            "all of them".to_string()
        } else {
            names.join(", ")
        };
        message.push_str(&format!("; download size unknown for {which} ({reason})"));
    }
    Check::pass(NAME, message)
}

fn push_reason(list: &mut Vec<(String, Vec<String>)>, reason: String, image: &str) {
    match list.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, names)) => names.push(image.to_string()),
        None => list.push((reason, vec![image.to_string()])),
    }
}

/// `architecture`: every image suits the engine's platform (present images by their own
/// record, missing ones by their registry's index when it has one; the rest after the pull).
pub fn architecture_check(images: &[ImageState], facts: &EngineFacts) -> Check {
    const NAME: &str = "architecture";
    let engine = format!("{}/{}", facts.os, facts.arch);
    let mut ok = 0;
    let mut later = Vec::new();
    let mut wrong_os = Vec::new();
    let mut wrong_arch = Vec::new();
    for s in images {
        match &s.found {
            Found::Present { os, arch } => {
                if !os.is_empty() && *os != facts.os {
                    wrong_os.push(format!("{} is {os}/{arch}", s.image));
                } else if !arch.is_empty() && normalize_arch(arch) != facts.arch {
                    wrong_arch.push(format!("{} is {os}/{arch}", s.image));
                } else {
                    ok += 1;
                }
            }
            Found::Missing(Ok(Remote {
                matches_engine: Some(false),
                platforms,
                ..
            })) => wrong_arch.push(format!(
                "{} is built for {} only",
                s.image,
                platforms.clone().unwrap_or_default().join(", ")
            )),
            Found::Missing(Ok(Remote {
                matches_engine: Some(true),
                ..
            })) => ok += 1,
            _ => later.push(s.image.clone()),
        }
    }
    let mut message = format!("engine is {engine}");
    if ok > 0 {
        message.push_str(&format!("; {ok} image{} match", plural(ok)));
    }
    if !later.is_empty() {
        message.push_str(&format!("; checked after the pull: {}", later.join(", ")));
    }
    if !wrong_os.is_empty() {
        return Check::fail(
            NAME,
            format!("engine is {engine}, but {}", wrong_os.join("; ")),
            Some("point the service at an image for this engine's OS: [services.NAME] image = \"...\" in vibedev.toml".into()),
        );
    }
    if !wrong_arch.is_empty() {
        return Check::warn(
            NAME,
            format!("engine is {engine}, but {}", wrong_arch.join("; ")),
            "such images run only under emulation (slow; needs qemu/binfmt or Docker Desktop's Rosetta); use an image built for this architecture: [services.NAME] image = \"...\" in vibedev.toml",
        );
    }
    Check::pass(NAME, message)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `disk`: free space where the engine keeps images, against what is still to download.
/// Measured only when the engine runs on this machine.
pub fn disk_check(images: &[ImageState], facts: &EngineFacts) -> Check {
    disk_check_measured(images, facts, free_bytes)
}

/// [`disk_check`] with the free-space measurement given (so that its verdicts can be tested
/// against fixed figures).
fn disk_check_measured(
    images: &[ImageState],
    facts: &EngineFacts,
    measure: impl FnOnce(&Path) -> std::io::Result<u64>,
) -> Check {
    const NAME: &str = "disk";
    let mut need = 0u64;
    let mut unknown = Vec::new();
    let mut missing = 0;
    for s in images {
        if let Found::Missing(remote) = &s.found {
            missing += 1;
            match remote.as_ref().ok().and_then(|r| r.download_bytes) {
                Some(b) => need += b,
                None => unknown.push(s.image.clone()),
            }
        }
    }
    let Some(root) = facts.root_dir.as_deref() else {
        return Check::skip(NAME, "the engine does not say where it keeps images");
    };
    let local = facts.host_name.as_deref() == local_host_name().as_deref();
    let free = if local {
        measure(Path::new(root)).ok()
    } else {
        None
    };
    let Some(free) = free else {
        return Check::skip(
            NAME,
            format!(
                "the engine keeps images at {root} on {}, not measurable from here",
                facts.host_name.as_deref().unwrap_or("its own machine")
            ),
        );
    };
    let mut message = format!("{} free at {root}", HumanBytes(free));
    if missing == 0 {
        message.push_str("; nothing to pull");
    } else if need > 0 {
        message.push_str(&format!("; {} to download", HumanBytes(need)));
    }
    if !unknown.is_empty() {
        message.push_str(&format!(
            "; download size unknown for {} image{} (see the images check)",
            unknown.len(),
            plural(unknown.len())
        ));
    }
    if free < need {
        return Check::fail(
            NAME,
            message,
            Some("free disk space (`docker system prune` removes unused images and containers; it asks first)".into()),
        );
    }
    let want = need.saturating_mul(UNPACK_FACTOR).saturating_add(MIN_FREE);
    if free < want {
        return Check::warn(
            NAME,
            format!(
                "{message}; images unpack to about {UNPACK_FACTOR}x their download, and the data needs room too"
            ),
            format!(
                "free at least {} (`docker system prune` removes unused images and containers; it asks first)",
                HumanBytes(want - free)
            ),
        );
    }
    Check::pass(NAME, message)
}

/// Free bytes for an unprivileged writer on the file system holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path; `st` is plain old data that statvfs fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_bavail as u64 * st.f_frsize as u64)
}

/// This machine's host name.
pub fn local_host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; the name is read up to the first NUL.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|s| !s.is_empty())
}

/// `ports`: every fixed host port is free, or held by this project's own container. Ports the
/// engine chooses (`"5432"` with no host port) cannot collide.
pub async fn ports_check(stack: &Stack, engine: Option<&Engine>) -> Check {
    const NAME: &str = "ports";
    let own = match engine {
        Some(e) => e
            .project_containers(&stack.project)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let wanted = stack
        .services
        .iter()
        .flat_map(|spec| spec.ports.iter().map(|p| WantedPort::of(&spec.name, p)));
    let held = |_: &str, port: u16| {
        own.iter()
            .find(|c| c.public_ports.contains(&port))
            .map(|c| c.name.clone())
    };
    let found = match check_ports(engine, wanted, held).await {
        Ok(found) => found,
        Err(taken) => {
            let err = port_in_use(taken);
            return Check::fail(NAME, err.to_string(), err.hint());
        }
    };
    let mut fine = Vec::new();
    let mut chosen = 0;
    for (w, state) in found {
        let label = format!("{} ({})", w.host_port.unwrap_or_default(), w.service);
        match state {
            PortState::Chosen => chosen += 1,
            PortState::NotChecked => fine.push(format!("{label} {} not checked", w.protocol)),
            PortState::Free => fine.push(format!("{label} free")),
            PortState::Own(name) => {
                fine.push(format!("{label} held by this project's container {name}"))
            }
        }
    }
    let mut message = fine.join(", ");
    if chosen > 0 {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&format!(
            "{chosen} port{} chosen by the engine when the stack starts",
            plural(chosen)
        ));
    }
    if message.is_empty() {
        message = "the stack publishes no ports".into();
    }
    Check::pass(NAME, message)
}

#[cfg(test)]
mod tests {
    use super::super::Status;
    use super::*;

    fn facts() -> EngineFacts {
        EngineFacts {
            os: "linux".into(),
            arch: "amd64".into(),
            root_dir: Some(std::env::temp_dir().display().to_string()),
            host_name: local_host_name(),
            ..Default::default()
        }
    }

    fn state(image: &str, found: Found) -> ImageState {
        ImageState {
            image: image.into(),
            services: vec!["svc".into()],
            found,
        }
    }

    fn missing(bytes: Option<u64>, matches: Option<bool>) -> Found {
        Found::Missing(Ok(Remote {
            download_bytes: bytes,
            platforms: matches.map(|_| vec!["linux/arm64".into()]),
            matches_engine: matches,
        }))
    }

    #[test]
    fn missing_images_are_listed_with_their_size_or_honestly_without() {
        let images = [
            state(
                "a",
                Found::Present {
                    os: "linux".into(),
                    arch: "amd64".into(),
                },
            ),
            state("b", missing(Some(2_000_000), None)),
            state("c", Found::Missing(Err(RegistryError::Denied))),
        ];
        let c = images_check(&images);
        assert_eq!(c.status, Status::Pass);
        assert!(c.message.contains("1 present: a"), "{}", c.message);
        assert!(c.message.contains("b (1.91 MiB download)"), "{}", c.message);
        assert!(
            c.message.contains("will pull 2: b (1.91 MiB download), c; download size unknown for c (the registry wants credentials)"),
            "{}",
            c.message
        );
    }

    #[test]
    fn an_image_that_is_neither_here_nor_pullable_fails_naming_it() {
        let c = images_check(&[
            state(
                "postgres:15-alpine",
                Found::Present {
                    os: "linux".into(),
                    arch: "amd64".into(),
                },
            ),
            state(
                "redis:7-alpine",
                Found::Missing(Err(RegistryError::Unreachable("connection refused".into()))),
            ),
        ]);
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(
            c.message
                .contains("redis:7-alpine is not here and its registry cannot be reached"),
            "{c:?}"
        );
        assert!(!c.message.contains("postgres"), "{c:?}");
        assert!(c.hint.unwrap().contains("docker load"));
    }

    #[test]
    fn an_image_its_registry_lacks_fails_with_the_override_hint() {
        let c = images_check(&[state(
            "x:nope",
            Found::Missing(Err(RegistryError::NotFound)),
        )]);
        assert_eq!(c.status, Status::Fail);
        assert!(c.hint.unwrap().contains("[services.svc] image"));
    }

    #[test]
    fn foreign_architecture_warns_and_foreign_os_fails() {
        let f = facts();
        let arm = [state(
            "a",
            Found::Present {
                os: "linux".into(),
                arch: "arm64".into(),
            },
        )];
        assert_eq!(architecture_check(&arm, &f).status, Status::Warn);
        let index = [state("b", missing(None, Some(false)))];
        let c = architecture_check(&index, &f);
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("linux/arm64 only"), "{}", c.message);
        let win = [state(
            "w",
            Found::Present {
                os: "windows".into(),
                arch: "amd64".into(),
            },
        )];
        assert_eq!(architecture_check(&win, &f).status, Status::Fail);
        let fine = [
            state(
                "a",
                Found::Present {
                    os: "linux".into(),
                    arch: "x86_64".into(),
                },
            ),
            state("b", missing(Some(1), None)),
        ];
        let c = architecture_check(&fine, &f);
        assert_eq!(c.status, Status::Pass);
        assert!(
            c.message
                .contains("1 image match; checked after the pull: b"),
            "{}",
            c.message
        );
    }

    #[test]
    fn free_space_is_measured_on_this_machine() {
        let free = free_bytes(&std::env::temp_dir()).unwrap();
        assert!(free > 0);
        assert!(free_bytes(Path::new("/no/such/dir/for/vibedev")).is_err());
    }

    #[test]
    fn disk_is_measured_only_on_this_machine_and_compared_with_downloads() {
        const GIB: u64 = 1 << 30;
        let mut f = facts();
        let root = f.root_dir.clone().unwrap();
        // 10 GiB free where the engine keeps images (the path asked about is the engine's root).
        let ten = |p: &Path| {
            assert_eq!(p, Path::new(&root));
            Ok(10 * GIB)
        };
        let c = disk_check_measured(&[], &f, ten);
        assert_eq!(c.status, Status::Pass, "{}", c.message);
        assert!(c.message.contains("nothing to pull"), "{}", c.message);
        // More to download than is free: fail.
        let huge = [state("big", missing(Some(10 * GIB + 1), None))];
        assert_eq!(disk_check_measured(&huge, &f, ten).status, Status::Fail);
        // It fits, but not unpacked (3x) with 1 GiB to spare: warn; exactly enough room: pass.
        let tight = [state("big", missing(Some(4 * GIB), None))];
        assert_eq!(disk_check_measured(&tight, &f, ten).status, Status::Warn);
        let roomy = [state("big", missing(Some(3 * GIB), None))];
        assert_eq!(disk_check_measured(&roomy, &f, ten).status, Status::Pass);
        // Unmeasurable where the engine keeps images: skipped, not guessed.
        let broken = |_: &Path| Err(std::io::Error::other("statvfs failed"));
        assert_eq!(disk_check_measured(&huge, &f, broken).status, Status::Skip);
        let unknown = [state("u", missing(None, None))];
        let c = disk_check_measured(&unknown, &f, ten);
        assert!(
            c.message.contains("download size unknown for 1 image"),
            "{}",
            c.message
        );
        // The engine on another machine: its disk is not this one's, nothing is measured.
        f.host_name = Some("some-vm-that-is-not-this-machine".into());
        let never =
            |_: &Path| -> std::io::Result<u64> { panic!("measured a remote engine's disk") };
        assert_eq!(disk_check_measured(&huge, &f, never).status, Status::Skip);
    }
}
