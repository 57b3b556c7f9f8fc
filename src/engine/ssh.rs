//! Engines reached over SSH (`DOCKER_HOST=ssh://[user@]host[:port][/path/docker.sock]`, or a
//! Docker context with such an endpoint): one `ssh` connection per engine carries the engine's
//! API and forwards each project's published ports to 127.0.0.1 of this machine.
//!
//! Why the system's `ssh` with a forwarded socket rather than bollard's `ssh` feature: bollard
//! 0.21 starts a new SSH master for every HTTP connection it opens and runs `docker system
//! dial-stdio` on the far side, so it needs the docker CLI installed there and pays a full
//! handshake for each of the many connections vibedev opens at once (probes, logs, creates). A
//! single control master (`ssh -M -f -N -L <local.sock>:<engine socket>`) uses the user's own
//! ssh, its config, agent and known_hosts as the docker CLI does, costs one handshake, needs
//! only sshd's stream-local forwarding on the far side, and its control socket adds and removes
//! the port forwards over the same connection (`ssh -O forward` / `-O cancel`).
//!
//! The master runs in the background until the last project using it goes `down`. Each
//! project's forwards are recorded beside it with the master's PID; when the connection drops,
//! the next command starts a new master for the engine, and the record (whose PID is no longer
//! the master's) says the forwards are down until `vibedev up` adds them again.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the engine listens on the far side when the URL names no socket path.
const DEFAULT_REMOTE_SOCKET: &str = "/var/run/docker.sock";
/// How long `ssh` may take to connect and authenticate before vibedev gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Words of the ssh command: `VIBEDEV_SSH_COMMAND` (split on whitespace), else `ssh`.
const SSH_COMMAND_VAR: &str = "VIBEDEV_SSH_COMMAND";

/// An `ssh://` engine address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine's socket on the far side.
    pub socket: String,
}

impl SshTarget {
    /// Parses `ssh://[user@]host[:port][/socket/path]` (`[v6]` for an IPv6 host).
    pub fn parse(url: &str) -> Result<SshTarget, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("{url:?} does not start with ssh://"))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let (user, host_port) = match authority.rsplit_once('@') {
            Some((user, hp)) if !user.is_empty() => (Some(user.to_string()), hp),
            Some(_) => return Err(format!("{url:?} has an empty user name before @")),
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("{url:?}: an IPv6 host needs its closing ]"))?;
            (host, after.strip_prefix(':'))
        } else {
            match host_port.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(format!("{url:?} names no host"));
        }
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| format!("{url:?}: {p:?} is not a port number"))?,
            ),
            None => None,
        };
        let socket = match path {
            "" | "/" => DEFAULT_REMOTE_SOCKET.to_string(),
            p => p.to_string(),
        };
        Ok(SshTarget {
            user,
            host: host.to_string(),
            port,
            socket,
        })
    }

    /// `user@host:port` as ssh and people write it (for messages).
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }

    /// The destination arguments of an `ssh` command line.
    fn destination(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(p) = self.port {
            args.extend(["-p".to_string(), p.to_string()]);
        }
        if let Some(u) = &self.user {
            args.extend(["-l".to_string(), u.clone()]);
        }
        args.extend(["--".to_string(), self.host.clone()]);
        args
    }
}

/// Errors of the SSH connection to an engine.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("unsupported ssh endpoint: {0}")]
    BadUrl(String),
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("ssh to {target} failed: {message}")]
    Connect { target: String, message: String },
    #[error("ssh to {target} did not connect within {secs} s")]
    Timeout { target: String, secs: u64 },
    #[error("cannot forward 127.0.0.1:{port} to {remote} over ssh to {target}: {message}")]
    Forward {
        target: String,
        port: u16,
        remote: String,
        message: String,
    },
    #[error("cannot use {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One forwarded port of a project: 127.0.0.1:`port` here to `remote_host`:`port` on the far side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub service: String,
    pub port: u16,
    pub remote_host: String,
}

/// A project's forwards and the master that carries them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Record {
    master_pid: u32,
    forwards: Vec<Forward>,
}

/// The state of a project's forwards, for `status` and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ForwardsState {
    /// No forwards recorded for the project (it is not up on this engine).
    None,
    /// Carried by the running master.
    Up { pid: u32, forwards: Vec<Forward> },
    /// Recorded, but the connection that carried them is gone.
    Down { forwards: Vec<Forward> },
}

/// The SSH connection to one engine: its control socket, the local end of the engine's socket,
/// and the project forwards it carries, in a folder of its own.
#[derive(Debug)]
pub struct Tunnel {
    pub url: String,
    pub target: SshTarget,
    dir: PathBuf,
    /// One change of the records at a time within this process (services become ready at once).
    records: tokio::sync::Mutex<()>,
}

impl Tunnel {
    /// The tunnel of an `ssh://` URL (nothing is started).
    pub fn new(url: &str) -> Result<Tunnel, SshError> {
        let target = SshTarget::parse(url).map_err(SshError::BadUrl)?;
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        let dir = crate::lock::lock_dir().join(format!("ssh-{}", &digest[..16]));
        Ok(Tunnel {
            url: url.to_string(),
            target,
            dir,
            records: tokio::sync::Mutex::new(()),
        })
    }

    /// The local socket bollard talks to.
    pub fn engine_socket(&self) -> PathBuf {
        self.dir.join("engine.sock")
    }

    fn control(&self) -> PathBuf {
        self.dir.join("control")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("ssh.log")
    }

    fn records_dir(&self) -> PathBuf {
        self.dir.join("forwards")
    }

    fn record_path(&self, project: &str) -> PathBuf {
        self.records_dir().join(format!("{project}.json"))
    }

    /// An `ssh` command with the control socket, ready for its options.
    fn ssh(&self) -> tokio::process::Command {
        let words: Vec<String> = std::env::var(SSH_COMMAND_VAR)
            .ok()
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .filter(|w: &Vec<String>| !w.is_empty())
            .unwrap_or_else(|| vec!["ssh".to_string()]);
        let mut cmd = tokio::process::Command::new(&words[0]);
        cmd.args(&words[1..])
            .arg("-S")
            .arg(self.control())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    fn program(&self) -> String {
        std::env::var(SSH_COMMAND_VAR)
            .ok()
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .unwrap_or_else(|| "ssh".to_string())
    }

    /// The running master's PID (`ssh -O check`), if one answers on the control socket.
    pub async fn master_pid(&self) -> Option<u32> {
        if !self.control().exists() {
            return None;
        }
        let out = self
            .ssh()
            .args(["-O", "check"])
            .args(self.target.destination())
            .stderr(Stdio::piped())
            .output()
            .await
            .ok()?;
        if !out.status.success() {
            return None;
        }
        parse_master_pid(&String::from_utf8_lossy(&out.stderr))
    }

    /// Makes sure a master runs (starting one when none answers) and returns its PID. Two
    /// commands starting at once start one master: the second waits on the folder's lock.
    pub async fn ensure(&self) -> Result<u32, SshError> {
        if let Some(pid) = self.master_pid().await {
            return Ok(pid);
        }
        let state = |path: &Path, source| SshError::State {
            path: path.to_path_buf(),
            source,
        };
        crate::dirs::create_private(&self.dir).map_err(|e| state(&self.dir, e))?;
        let lock_path = self.dir.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| state(&lock_path, e))?;
        let lock = tokio::task::spawn_blocking(move || {
            use std::os::fd::AsRawFd;
            // SAFETY: flock on a file descriptor this closure owns; blocks until granted.
            let rc = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
            (rc, lock)
        })
        .await
        .map_err(|e| state(&lock_path, std::io::Error::other(e)))?;
        if lock.0 != 0 {
            return Err(state(&lock_path, std::io::Error::last_os_error()));
        }
        let _held = lock.1;
        if let Some(pid) = self.master_pid().await {
            return Ok(pid);
        }
        self.start_master().await?;
        self.master_pid().await.ok_or_else(|| SshError::Connect {
            target: self.target.display(),
            message: "the connection closed right after it was made".into(),
        })
    }

    /// Starts the master: it authenticates in the foreground (so a passphrase or host key
    /// question reaches the terminal, as with the docker CLI), then goes to the background. Its
    /// messages go to a log file: an inherited stderr would keep a caller's pipe open.
    async fn start_master(&self) -> Result<(), SshError> {
        let _ = std::fs::remove_file(self.control());
        let log_path = self.log();
        let log = std::fs::File::create(&log_path).map_err(|e| SshError::State {
            path: log_path.clone(),
            source: e,
        })?;
        let mut cmd = self.ssh();
        cmd.args(["-M", "-f", "-N", "-T"])
            .args(["-o", "ControlPersist=no"])
            .args(["-o", "ExitOnForwardFailure=yes"])
            .args(["-o", "StreamLocalBindUnlink=yes"])
            .args(["-o", "ServerAliveInterval=10"])
            .args(["-o", "ServerAliveCountMax=3"])
            .arg("-L")
            .arg(format!(
                "{}:{}",
                self.engine_socket().display(),
                self.target.socket
            ))
            .args(self.target.destination())
            .stderr(log);
        let mut child = cmd.spawn().map_err(|source| SshError::Spawn {
            program: self.program(),
            source,
        })?;
        let status = match tokio::time::timeout(CONNECT_TIMEOUT, child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(source)) => {
                return Err(SshError::Spawn {
                    program: self.program(),
                    source,
                });
            }
            Err(_) => {
                let _ = child.kill().await;
                return Err(SshError::Timeout {
                    target: self.target.display(),
                    secs: CONNECT_TIMEOUT.as_secs(),
                });
            }
        };
        if status.success() {
            return Ok(());
        }
        let message = std::fs::read_to_string(&log_path).unwrap_or_default();
        let message = crate::text::last_lines(&message, 5);
        Err(SshError::Connect {
            target: self.target.display(),
            message: if message.is_empty() {
                format!("ssh exited with {status}")
            } else {
                message
            },
        })
    }

    /// Forwards 127.0.0.1:`port` here to `remote_host`:`port` on the far side over the running
    /// master (adding a forward that exists changes nothing), and records it for the project.
    pub async fn forward(&self, project: &str, forwards: &[Forward]) -> Result<(), SshError> {
        let _one = self.records.lock().await;
        let pid = self.ensure().await?;
        let mut record = self.read_record(project).unwrap_or_default();
        if record.master_pid != pid {
            // Forwards of a master that is gone went with it.
            record = Record {
                master_pid: pid,
                forwards: Vec::new(),
            };
        }
        for f in forwards {
            let remote = format!("{}:{}", bracket(&f.remote_host), f.port);
            let out = self
                .ssh()
                .args(["-O", "forward", "-L"])
                .arg(format!("127.0.0.1:{}:{remote}", f.port))
                .args(self.target.destination())
                .stderr(Stdio::piped())
                .output()
                .await
                .map_err(|source| SshError::Spawn {
                    program: self.program(),
                    source,
                })?;
            if !out.status.success() {
                return Err(SshError::Forward {
                    target: self.target.display(),
                    port: f.port,
                    remote,
                    message: crate::text::last_lines(&String::from_utf8_lossy(&out.stderr), 3),
                });
            }
            record.forwards.retain(|r| r.port != f.port);
            record.forwards.push(f.clone());
        }
        self.write_record(project, &record)
    }

    /// The project's forwards: none recorded, carried by the running master, or down.
    pub async fn state(&self, project: &str) -> ForwardsState {
        let Some(record) = self.read_record(project) else {
            return ForwardsState::None;
        };
        if record.forwards.is_empty() {
            return ForwardsState::None;
        }
        match self.master_pid().await {
            Some(pid) if pid == record.master_pid => ForwardsState::Up {
                pid,
                forwards: record.forwards,
            },
            _ => ForwardsState::Down {
                forwards: record.forwards,
            },
        }
    }

    /// Ends the project's forwards; when no other project has any left, ends the master too.
    /// Returns whether the master was ended.
    pub async fn end(&self, project: &str) -> Result<bool, SshError> {
        let _one = self.records.lock().await;
        let pid = self.master_pid().await;
        if let Some(record) = self.read_record(project)
            && pid == Some(record.master_pid)
        {
            for f in &record.forwards {
                let _ = self
                    .ssh()
                    .args(["-O", "cancel", "-L"])
                    .arg(format!(
                        "127.0.0.1:{}:{}:{}",
                        f.port,
                        bracket(&f.remote_host),
                        f.port
                    ))
                    .args(self.target.destination())
                    .stderr(Stdio::null())
                    .status()
                    .await;
            }
        }
        let path = self.record_path(project);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SshError::State { path, source }),
        }
        let others = std::fs::read_dir(self.records_dir())
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| {
                        let text = std::fs::read_to_string(e.path()).ok()?;
                        serde_json::from_str::<Record>(&text).ok()
                    })
                    .any(|r| Some(r.master_pid) == pid && !r.forwards.is_empty())
            })
            .unwrap_or(false);
        if others || pid.is_none() {
            return Ok(false);
        }
        let _ = self
            .ssh()
            .args(["-O", "exit"])
            .args(self.target.destination())
            .stderr(Stdio::null())
            .status()
            .await;
        Ok(true)
    }

    fn read_record(&self, project: &str) -> Option<Record> {
        let text = std::fs::read_to_string(self.record_path(project)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_record(&self, project: &str, record: &Record) -> Result<(), SshError> {
        let dir = self.records_dir();
        crate::dirs::create_private(&dir).map_err(|source| SshError::State {
            path: dir.clone(),
            source,
        })?;
        let path = self.record_path(project);
        let tmp = dir.join(format!(".{project}.json.tmp"));
        let text = serde_json::to_string_pretty(record).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| SshError::State { path, source })
    }
}

/// `[::1]` for an IPv6 address in a forward spec, the address itself otherwise.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// The PID in `ssh -O check`'s answer, `Master running (pid=1234)`.
fn parse_master_pid(text: &str) -> Option<u32> {
    let start = text.find("pid=")? + 4;
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_urls_parse_as_the_docker_cli_reads_them() {
        let t = SshTarget::parse("ssh://ana@build-box:2222").unwrap();
        assert_eq!(t.user.as_deref(), Some("ana"));
        assert_eq!(t.host, "build-box");
        assert_eq!(t.port, Some(2222));
        assert_eq!(t.socket, DEFAULT_REMOTE_SOCKET);
        assert_eq!(
            t.destination(),
            ["-p", "2222", "-l", "ana", "--", "build-box"]
        );
        let t = SshTarget::parse("ssh://box/run/user/1000/docker.sock").unwrap();
        assert_eq!((t.user, t.port), (None, None));
        assert_eq!(t.socket, "/run/user/1000/docker.sock");
        let t = SshTarget::parse("ssh://me@[fd00::1]:22").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::1", Some(22)));
        assert_eq!(t.display(), "me@fd00::1:22");
    }

    #[test]
    fn bad_ssh_urls_say_what_is_wrong() {
        assert!(SshTarget::parse("ssh://").unwrap_err().contains("no host"));
        assert!(
            SshTarget::parse("ssh://box:22x")
                .unwrap_err()
                .contains("not a port")
        );
        assert!(SshTarget::parse("ssh://@box").unwrap_err().contains("user"));
    }

    #[test]
    fn master_pid_is_read_from_ssh_check() {
        assert_eq!(
            parse_master_pid("Master running (pid=31967)\r\n"),
            Some(31967)
        );
        assert_eq!(parse_master_pid("Control socket connect: nope"), None);
    }
}
