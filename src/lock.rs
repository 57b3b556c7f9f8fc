//! One writer per project: every command that changes a stack holds the project's lock, an
//! advisory file lock (`flock`) in the user's temporary folder. A second caller waits, told who
//! holds it; the kernel releases the lock when its holder dies, so a crashed run never wedges a
//! project. Nothing here prints: waiting is reported through a callback.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a second caller waits by default (`VIBEDEV_LOCK_TIMEOUT` changes it, in seconds).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Who holds a project's lock, as its holder wrote it into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// The command, e.g. `up` or `watch (migrations)`.
    pub command: String,
    /// Seconds since the Unix epoch when it took the lock.
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        write!(
            f,
            "`vibedev {}` (PID {}, for {} s)",
            self.command,
            self.pid,
            now.saturating_sub(self.since)
        )
    }
}

/// Why the lock could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "project {project} is busy: {} still holds its lock after {secs} s",
        holder.as_ref().map_or_else(|| "another vibedev command".to_string(), ToString::to_string)
    )]
    Timeout {
        project: String,
        secs: u64,
        holder: Option<Holder>,
    },
    #[error("cannot use the lock file {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LockError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Timeout { holder, .. } => Some(match holder {
                Some(h) => format!(
                    "wait for it to finish, or stop it (`kill {}`); VIBEDEV_LOCK_TIMEOUT sets how many seconds to wait",
                    h.pid
                ),
                None => "wait for the other command to finish; VIBEDEV_LOCK_TIMEOUT sets how many seconds to wait".into(),
            }),
            LockError::Io { path, .. } => Some(format!(
                "check that {} is a folder you own and can write",
                path.parent().unwrap_or(Path::new("/")).display()
            )),
        }
    }
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct ProjectLock {
    // The open file is the lock: closing it (on drop, or when the process dies) releases it.
    _file: File,
}

/// The folder holding the lock files: per user, in the temporary folder.
pub fn lock_dir() -> PathBuf {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("vibedev-{uid}"))
}

/// The lock file of a project.
pub fn lock_path(project: &str) -> PathBuf {
    lock_dir().join(format!("{project}.lock"))
}

/// How long to wait: `VIBEDEV_LOCK_TIMEOUT` seconds, else [`DEFAULT_TIMEOUT`].
pub fn timeout_from_env() -> Duration {
    std::env::var("VIBEDEV_LOCK_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// Takes the project's lock for `command`, waiting up to `timeout` for another holder; `waiting`
/// is called with the holder each time a different one is seen.
pub async fn acquire(
    project: &str,
    command: &str,
    timeout: Duration,
    waiting: &(dyn Fn(Option<&Holder>) + Send + Sync),
) -> Result<ProjectLock, LockError> {
    let path = lock_path(project);
    let mut file = open(&path)?;
    let deadline = Instant::now() + timeout;
    let mut delay = Duration::from_millis(20);
    let mut reported: Option<Option<Holder>> = None;
    loop {
        match file.try_lock() {
            Ok(()) => {
                record(&mut file, command).map_err(|source| LockError::Io {
                    path: path.clone(),
                    source,
                })?;
                return Ok(ProjectLock { _file: file });
            }
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(source)) => return Err(LockError::Io { path, source }),
        }
        let holder = read_holder(&path);
        if reported.as_ref() != Some(&holder) {
            waiting(holder.as_ref());
            reported = Some(holder.clone());
        }
        if Instant::now() >= deadline {
            return Err(LockError::Timeout {
                project: project.to_string(),
                secs: timeout.as_secs(),
                holder,
            });
        }
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(Instant::now()))).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

fn open(path: &Path) -> Result<File, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
    }
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io)
}

/// Writes who holds the lock, for whoever waits for it.
fn record(file: &mut File, command: &str) -> std::io::Result<()> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{}\n{since}\n{command}\n", std::process::id())?;
    file.flush()
}

/// The holder the lock file names, if it names one.
pub fn read_holder(path: &Path) -> Option<Holder> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    parse_holder(&text)
}

fn parse_holder(text: &str) -> Option<Holder> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let since = lines.next()?.trim().parse().ok()?;
    let command = lines.next()?.trim().to_string();
    (!command.is_empty()).then_some(Holder {
        pid,
        command,
        since,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn holder_round_trips_through_the_file_format() {
        assert_eq!(
            parse_holder("4242\n1700000000\nwatch (migrations)\n"),
            Some(Holder {
                pid: 4242,
                command: "watch (migrations)".into(),
                since: 1_700_000_000
            })
        );
        assert_eq!(parse_holder(""), None);
        assert_eq!(parse_holder("12\nnot-a-time\nup\n"), None);
    }

    #[tokio::test]
    async fn second_caller_waits_names_the_holder_and_times_out() {
        let project = format!("lock-unit-{}", std::process::id());
        let first = acquire(&project, "up", Duration::from_secs(1), &|_| {})
            .await
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let err = acquire(&project, "migrate", Duration::from_millis(300), &move |h| {
            s.lock().unwrap().push(h.cloned())
        })
        .await
        .unwrap_err();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let holder = seen[0].clone().unwrap();
        assert_eq!(
            (holder.pid, holder.command.as_str()),
            (std::process::id(), "up")
        );
        let msg = err.to_string();
        assert!(msg.contains("`vibedev up`") && msg.contains("PID"), "{msg}");
        // Released on drop: the next caller gets it at once and records itself.
        drop(first);
        let _second = acquire(&project, "migrate", Duration::from_millis(300), &|_| {
            panic!("should not wait")
        })
        .await
        .unwrap();
        assert_eq!(
            read_holder(&lock_path(&project)).map(|h| h.command),
            Some("migrate".to_string())
        );
    }
}
