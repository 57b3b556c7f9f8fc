//! `ports = "auto"`: each checkout gets a stable set of free host ports, derived from its path and
//! recorded in a port file in the user's state folder, so `down`/`up` keep them.
//!
//! Why a file rather than labels on the project's volumes: labels are fixed once a volume exists
//! (a port added or moved later could not be recorded), not every stack has a named volume,
//! `down --volumes` would forget them, and `up` must see the ports other checkouts reserved while
//! their stacks are down. One file per project (`<state>/vibedev/ports/<project>.json`), written
//! whole (temporary file, then rename) while an advisory lock on the folder is held, so that two
//! `up`s of different checkouts never pick the same port.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{PortsMode, Project};
use crate::stack::Stack;

/// Host ports auto assignment picks from: below Linux's ephemeral range (32768-60999, where the
/// engine and clients take ports) and above the usual fixed ports of development servers.
pub const FIRST_PORT: u16 = 20000;
pub const LAST_PORT: u16 = 29999;
/// A checkout's ports start at a block of this many ports, chosen from its path.
const BLOCK: u16 = 10;

/// One published port of the stack with the host port it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assigned {
    pub service: String,
    pub container_port: u16,
    pub protocol: String,
    pub host_port: u16,
}

impl Assigned {
    fn same_port(&self, key: &Wanted) -> bool {
        self.service == key.service
            && self.container_port == key.container_port
            && self.protocol == key.protocol
    }
}

/// What a project's port file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortFile {
    pub project: String,
    /// The checkout the ports were derived from.
    pub checkout: PathBuf,
    /// Set by `vibedev up --ports auto`: the checkout keeps auto ports without the config key.
    #[serde(default)]
    pub auto: bool,
    #[serde(default)]
    pub ports: Vec<Assigned>,
}

/// A port that had to move because something else took its recorded host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Moved {
    pub service: String,
    pub container_port: u16,
    pub from: u16,
    pub to: u16,
}

/// Errors reading or writing port files, or finding ports.
#[derive(Debug, thiserror::Error)]
pub enum PortsError {
    #[error(
        "cannot tell where to keep the ports of ports = \"auto\": neither XDG_STATE_HOME nor HOME is set"
    )]
    NoStateDir,
    #[error("cannot use the port file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the port file {path} is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("no free host port left between {FIRST_PORT} and {LAST_PORT} for {service}")]
    Exhausted { service: String },
    #[error("{path} sets ports = \"auto\", so `--ports fixed` cannot apply to this checkout")]
    FixedAgainstConfig { path: PathBuf },
}

impl PortsError {
    pub fn hint(&self) -> Option<String> {
        match self {
            PortsError::NoStateDir => {
                Some("set XDG_STATE_HOME (or HOME) to a folder you can write".into())
            }
            PortsError::Io { path, .. } => Some(format!(
                "check that {} is a folder you own and can write",
                path.parent().unwrap_or(Path::new("/")).display()
            )),
            PortsError::Corrupt { path, .. } => Some(format!(
                "remove {} (this checkout then gets its ports anew)",
                path.display()
            )),
            PortsError::Exhausted { .. } => Some(
                "remove stacks no longer needed (`vibedev ls`, `vibedev prune`) or give the service fixed ports".into(),
            ),
            PortsError::FixedAgainstConfig { .. } => Some(
                "remove the `ports = \"auto\"` line from vibedev.toml to use the compose file's ports".into(),
            ),
        }
    }
}

/// The port files of every project, in one folder.
#[derive(Debug, Clone)]
pub struct PortFiles {
    dir: PathBuf,
}

impl PortFiles {
    /// The folder of port files under the user's state folder (not created until written).
    pub fn open() -> Result<PortFiles, PortsError> {
        let dir = crate::dirs::state_dir()
            .ok_or(PortsError::NoStateDir)?
            .join("ports");
        Ok(PortFiles { dir })
    }

    /// Port files in `dir` (tests).
    pub fn at(dir: PathBuf) -> PortFiles {
        PortFiles { dir }
    }

    fn path(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.json"))
    }

    /// The project's port file, when it has one.
    pub fn read(&self, project: &str) -> Result<Option<PortFile>, PortsError> {
        let path = self.path(project);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PortsError::Io { path, source }),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PortsError::Corrupt {
                path,
                message: e.to_string(),
            })
    }

    /// Every readable port file (an unreadable one reserves nothing).
    pub fn all(&self) -> Vec<PortFile> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let project = name.strip_suffix(".json")?;
                self.read(project).ok().flatten()
            })
            .collect()
    }

    /// Writes a project's port file whole: a reader sees the old one or the new one.
    pub fn write(&self, file: &PortFile) -> Result<(), PortsError> {
        let path = self.path(&file.project);
        let io = |source| PortsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(file).unwrap_or_default();
        tmp.write_all(&json).map_err(io)?;
        tmp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// Forgets a project's ports.
    pub fn remove(&self, project: &str) -> Result<(), PortsError> {
        let path = self.path(project);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(PortsError::Io { path, source }),
        }
    }

    /// Holds the folder's lock until the returned file is dropped: one assignment at a time.
    pub fn lock(&self) -> Result<File, PortsError> {
        let path = self.dir.join(".lock");
        let io = |source| PortsError::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        Ok(file)
    }
}

/// Whether the project uses auto ports: `ports = "auto"` in vibedev.toml, or an earlier
/// `vibedev up --ports auto` recorded in its port file.
pub fn enabled(project: &Project, file: Option<&PortFile>) -> bool {
    project.file.ports == Some(PortsMode::Auto) || file.is_some_and(|f| f.auto)
}

/// One published port of the stack that wants a host port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub service: String,
    pub container_port: u16,
    pub protocol: String,
    /// The host address it binds (empty: all).
    pub host_ip: String,
}

/// Every published port of the stack, in stack order.
pub fn wanted(stack: &Stack) -> Vec<Wanted> {
    stack
        .services
        .iter()
        .flat_map(|s| {
            s.ports.iter().map(|p| Wanted {
                service: s.name.clone(),
                container_port: p.container_port,
                protocol: p.protocol.clone(),
                host_ip: p.host_ip.clone().unwrap_or_default(),
            })
        })
        .collect()
}

/// Gives each port of the stack its recorded host port; one not recorded yet is left for the
/// engine to choose (until `up` assigns it).
pub fn apply(stack: &mut Stack, assigned: &[Assigned]) {
    for spec in &mut stack.services {
        for p in &mut spec.ports {
            p.host_port = assigned
                .iter()
                .find(|a| {
                    a.service == spec.name
                        && a.container_port == p.container_port
                        && a.protocol == p.protocol
                })
                .map(|a| a.host_port);
        }
    }
}

/// Applies the recorded ports when the project uses auto ports; the stack is left as resolved
/// otherwise. For commands that read the stack without changing it (`status`, `doctor`, ...).
pub fn apply_recorded(project: &Project, stack: &mut Stack) -> Result<(), PortsError> {
    if project.file.ports != Some(PortsMode::Auto) && crate::dirs::state_dir().is_none() {
        return Ok(());
    }
    let file = match PortFiles::open() {
        Ok(files) => files.read(&stack.project)?,
        Err(e) if project.file.ports == Some(PortsMode::Auto) => return Err(e),
        Err(_) => None,
    };
    if enabled(project, file.as_ref()) {
        apply(stack, file.as_ref().map_or(&[][..], |f| &f.ports));
    }
    Ok(())
}

/// A number derived from the checkout's path: where its block of ports starts.
pub fn seed(checkout: &Path) -> u64 {
    let digest = Sha256::digest(checkout.to_string_lossy().as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// The port a checkout's `index`-th port prefers: its block's start plus the index.
fn preferred(seed: u64, index: usize) -> u16 {
    let blocks = u64::from((LAST_PORT - FIRST_PORT + 1) / BLOCK);
    let start = u64::from(FIRST_PORT) + (seed % blocks) * u64::from(BLOCK);
    let span = u64::from(LAST_PORT - FIRST_PORT + 1);
    let offset = (start - u64::from(FIRST_PORT) + index as u64) % span;
    FIRST_PORT + offset as u16
}

/// Gives every wanted port a host port: its recorded one while that is still usable (not
/// reserved by another project, not given twice, `usable` on the host), else the first usable
/// port from the checkout's preferred one on, wrapping around the range. Pure: `usable` answers
/// whether `host_ip:port` is free (or held by this project's own container).
pub fn allocate(
    seed: u64,
    wanted: &[Wanted],
    recorded: &[Assigned],
    reserved: &BTreeSet<u16>,
    usable: impl Fn(&str, u16) -> bool,
) -> Result<(Vec<Assigned>, Vec<Moved>), PortsError> {
    let mut taken: BTreeSet<u16> = BTreeSet::new();
    let mut kept: Vec<Option<u16>> = Vec::with_capacity(wanted.len());
    for w in wanted {
        let old = recorded
            .iter()
            .find(|a| a.same_port(w))
            .map(|a| a.host_port);
        let keep =
            old.filter(|p| !reserved.contains(p) && !taken.contains(p) && usable(&w.host_ip, *p));
        if let Some(p) = keep {
            taken.insert(p);
        }
        kept.push(keep);
    }
    let span = usize::from(LAST_PORT - FIRST_PORT) + 1;
    let mut assigned = Vec::with_capacity(wanted.len());
    let mut moved = Vec::new();
    for (index, (w, keep)) in wanted.iter().zip(kept).enumerate() {
        let port = match keep {
            Some(p) => p,
            None => {
                let start = preferred(seed, index);
                let found = (0..span)
                    .map(|step| {
                        let offset = (usize::from(start - FIRST_PORT) + step) % span;
                        FIRST_PORT + offset as u16
                    })
                    .find(|p| !reserved.contains(p) && !taken.contains(p) && usable(&w.host_ip, *p))
                    .ok_or_else(|| PortsError::Exhausted {
                        service: w.service.clone(),
                    })?;
                if let Some(old) = recorded.iter().find(|a| a.same_port(w)) {
                    moved.push(Moved {
                        service: w.service.clone(),
                        container_port: w.container_port,
                        from: old.host_port,
                        to: found,
                    });
                }
                taken.insert(found);
                found
            }
        };
        assigned.push(Assigned {
            service: w.service.clone(),
            container_port: w.container_port,
            protocol: w.protocol.clone(),
            host_port: port,
        });
    }
    Ok((assigned, moved))
}

/// What `up --ports` asks for this checkout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// Auto ports from now on (recorded in the port file).
    Auto,
    /// The configured ports again: the port file is removed.
    Fixed,
}

/// The outcome of [`assign`].
#[derive(Debug, Clone, Default)]
pub struct Assignment {
    /// Auto ports are in use (the stack's ports were rewritten).
    pub auto: bool,
    /// Ports that moved because something else took them.
    pub moved: Vec<Moved>,
    /// Ports given for the first time.
    pub new: Vec<Assigned>,
}

/// For `up` (and watch's reconcile): settles the stack's host ports. With auto ports, every
/// published port gets its recorded host port, or a new free one, and the port file is written;
/// `own` tells whether this project's own container publishes a host port (then it stays usable).
/// With `Choice::Fixed`, the port file is removed and the stack keeps its configured ports.
pub fn assign(
    project: &Project,
    stack: &mut Stack,
    choice: Option<Choice>,
    own: impl Fn(u16) -> bool,
) -> Result<Assignment, PortsError> {
    let configured_auto = project.file.ports == Some(PortsMode::Auto);
    if choice == Some(Choice::Fixed) {
        if configured_auto {
            return Err(PortsError::FixedAgainstConfig {
                path: project
                    .config_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from(crate::config::CONFIG_FILE)),
            });
        }
        if let Ok(files) = PortFiles::open() {
            files.remove(&stack.project)?;
        }
        return Ok(Assignment::default());
    }
    if !configured_auto && choice.is_none() && crate::dirs::state_dir().is_none() {
        return Ok(Assignment::default());
    }
    let files = match PortFiles::open() {
        Ok(files) => files,
        Err(e) if configured_auto || choice.is_some() => return Err(e),
        Err(_) => return Ok(Assignment::default()),
    };
    let _lock = files.lock()?;
    let recorded = files.read(&stack.project)?;
    if !configured_auto && choice.is_none() && !recorded.as_ref().is_some_and(|f| f.auto) {
        return Ok(Assignment::default());
    }
    let reserved: BTreeSet<u16> = files
        .all()
        .into_iter()
        .filter(|f| f.project != stack.project)
        .flat_map(|f| f.ports.into_iter().map(|a| a.host_port))
        .collect();
    let previous = recorded.as_ref().map_or(&[][..], |f| &f.ports[..]);
    let wanted = wanted(stack);
    let (assigned, moved) = allocate(
        seed(&project.root),
        &wanted,
        previous,
        &reserved,
        |ip, port| own(port) || crate::ports::is_free(ip, port),
    )?;
    let new: Vec<Assigned> = assigned
        .iter()
        .filter(|a| {
            !previous.iter().any(|p| {
                p.service == a.service
                    && p.container_port == a.container_port
                    && p.protocol == a.protocol
            })
        })
        .cloned()
        .collect();
    // Ports of services that left the stack stay reserved: the service may come back.
    let mut ports = assigned.clone();
    ports.extend(
        previous
            .iter()
            .filter(|p| {
                !assigned.iter().any(|a| {
                    a.service == p.service
                        && a.container_port == p.container_port
                        && a.protocol == p.protocol
                })
            })
            .cloned(),
    );
    let file = PortFile {
        project: stack.project.clone(),
        checkout: project.root.clone(),
        auto: recorded.as_ref().is_some_and(|f| f.auto) || choice == Some(Choice::Auto),
        ports,
    };
    if recorded.as_ref() != Some(&file) {
        files.write(&file)?;
    }
    apply(stack, &assigned);
    Ok(Assignment {
        auto: true,
        moved,
        new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(service: &str, port: u16) -> Wanted {
        Wanted {
            service: service.into(),
            container_port: port,
            protocol: "tcp".into(),
            host_ip: "127.0.0.1".into(),
        }
    }

    fn stack_ports() -> Vec<Wanted> {
        vec![
            want("postgres", 5432),
            want("firestore", 8080),
            want("redis", 6379),
            want("gcs", 4443),
        ]
    }

    fn ports(assigned: &[Assigned]) -> Vec<u16> {
        assigned.iter().map(|a| a.host_port).collect()
    }

    #[test]
    fn a_checkout_gets_a_contiguous_block_in_the_range_derived_from_its_path() {
        let seed = seed(Path::new("/home/ana/app"));
        let (a, moved) =
            allocate(seed, &stack_ports(), &[], &BTreeSet::new(), |_, _| true).unwrap();
        assert!(moved.is_empty());
        let p = ports(&a);
        assert!(
            p.iter().all(|p| (FIRST_PORT..=LAST_PORT).contains(p)),
            "{p:?}"
        );
        assert_eq!(p, (p[0]..p[0] + 4).collect::<Vec<_>>());
        assert_eq!((p[0] - FIRST_PORT) % BLOCK, 0);
        // The same path gives the same ports; another path (almost always) other ones.
        let (again, _) =
            allocate(seed, &stack_ports(), &[], &BTreeSet::new(), |_, _| true).unwrap();
        assert_eq!(again, a);
        let other = super::seed(Path::new("/home/ana/app-review"));
        let (b, _) = allocate(other, &stack_ports(), &[], &BTreeSet::new(), |_, _| true).unwrap();
        assert_ne!(ports(&b), p);
    }

    #[test]
    fn taken_and_reserved_ports_are_skipped() {
        let seed = seed(Path::new("/x"));
        let (free, _) = allocate(seed, &stack_ports(), &[], &BTreeSet::new(), |_, _| true).unwrap();
        let first = free[0].host_port;
        let reserved = BTreeSet::from([first]);
        let busy = first + 1;
        let (a, _) = allocate(seed, &stack_ports(), &[], &reserved, |_, p| p != busy).unwrap();
        let p = ports(&a);
        assert!(!p.contains(&first) && !p.contains(&busy), "{p:?}");
        assert_eq!(p.iter().collect::<BTreeSet<_>>().len(), 4, "{p:?}");
    }

    #[test]
    fn recorded_ports_are_kept_and_only_a_taken_one_moves() {
        let seed = seed(Path::new("/x"));
        let recorded = vec![
            Assigned {
                service: "postgres".into(),
                container_port: 5432,
                protocol: "tcp".into(),
                host_port: 23001,
            },
            Assigned {
                service: "redis".into(),
                container_port: 6379,
                protocol: "tcp".into(),
                host_port: 23002,
            },
        ];
        let (a, moved) = allocate(seed, &stack_ports(), &recorded, &BTreeSet::new(), |_, _| {
            true
        })
        .unwrap();
        assert_eq!(a[0].host_port, 23001);
        assert_eq!(a[2].host_port, 23002);
        assert!(moved.is_empty());
        let (a, moved) = allocate(seed, &stack_ports(), &recorded, &BTreeSet::new(), |_, p| {
            p != 23002
        })
        .unwrap();
        assert_eq!(a[0].host_port, 23001);
        assert_ne!(a[2].host_port, 23002);
        assert_eq!(
            moved,
            [Moved {
                service: "redis".into(),
                container_port: 6379,
                from: 23002,
                to: a[2].host_port
            }]
        );
    }

    #[test]
    fn a_full_range_is_an_error_naming_the_service() {
        let err = allocate(1, &[want("redis", 6379)], &[], &BTreeSet::new(), |_, _| {
            false
        })
        .unwrap_err();
        assert!(matches!(err, PortsError::Exhausted { ref service } if service == "redis"));
    }

    #[test]
    fn port_files_round_trip_and_list() {
        let dir = tempfile::tempdir().unwrap();
        let files = PortFiles::at(dir.path().join("ports"));
        assert_eq!(files.read("a").unwrap(), None);
        let file = PortFile {
            project: "a".into(),
            checkout: "/src/a".into(),
            auto: true,
            ports: vec![Assigned {
                service: "redis".into(),
                container_port: 6379,
                protocol: "tcp".into(),
                host_port: 21000,
            }],
        };
        {
            let _lock = files.lock().unwrap();
            files.write(&file).unwrap();
        }
        assert_eq!(files.read("a").unwrap(), Some(file.clone()));
        assert_eq!(files.all(), [file]);
        std::fs::write(dir.path().join("ports/b.json"), "{").unwrap();
        assert!(matches!(files.read("b"), Err(PortsError::Corrupt { .. })));
        assert_eq!(files.all().len(), 1);
        files.remove("a").unwrap();
        files.remove("a").unwrap();
        assert_eq!(files.read("a").unwrap(), None);
    }
}
