//! The published ports of a `tcp://` engine on another host, relayed to 127.0.0.1 of this
//! machine when the project asks for it (`[engine] forward = true` or `VIBEDEV_FORWARD=1`).
//!
//! It is opt-in because it only works when the engine publishes the ports on an address this
//! machine can reach (`bind` in vibedev.toml), which vibedev never arranges by default: the
//! stack binds to the engine's own 127.0.0.1 unless told otherwise. (Over SSH no such address is
//! needed: the connection reaches the far side's 127.0.0.1 itself.)
//!
//! One small background process per project (`vibedev __forward`, in a session of its own)
//! listens on 127.0.0.1:<port> for each published port and copies every connection to and from
//! the engine host's <port>. Its control socket adds ports, says who it is and ends it. Its
//! record (PID and ports) sits beside the socket in the engine's folder of the lock directory
//! and outlives it, so `status` and `doctor` can say that the relay is gone and which ports went
//! with it; `up` starts a new one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

use super::ssh::{Forward, ForwardsState};

/// The hidden subcommand that runs the relay.
pub const SUBCOMMAND: &str = "__forward";
/// How long a new relay may take to listen on its control socket.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the relay may take to answer on its control socket.
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the relay waits for the engine's host to accept a relayed connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The line a new relay prints once its control socket listens.
const READY: &str = "ready";

/// Errors of the port relay.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot start the port relay ({program}): {source}")]
    Spawn {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the port relay did not start: {message}")]
    Start { message: String },
    #[error("the port relay at {socket} does not answer: {message}")]
    Control { socket: PathBuf, message: String },
    #[error("cannot relay the published ports to 127.0.0.1: {message}")]
    Forward { message: String },
    #[error(
        "{service} is published on the engine's own {host}:{port}, which this machine cannot reach: set `bind` in vibedev.toml to an address of {engine_host} this machine reaches (for example \"0.0.0.0\"), or turn forwarding off"
    )]
    Unreachable {
        service: String,
        host: String,
        port: u16,
        engine_host: String,
    },
    #[error("cannot use {path}: {source}")]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What the relay is asked on its control socket (one JSON line).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
enum Request {
    /// Listen on 127.0.0.1:`port` for each forward (one that listens already changes nothing).
    Forward { forwards: Vec<Forward> },
    /// Who are you?
    Status,
    /// Close every listener, then exit.
    Exit,
}

/// The relay's answer (one JSON line).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Reply {
    pid: u32,
    forwards: Vec<Forward>,
    error: Option<String>,
}

/// A project's relayed ports and the relay that carries them, as recorded beside its socket.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    pid: u32,
    forwards: Vec<Forward>,
}

/// The relays of one `tcp://` engine on another host: a folder of sockets, records and logs.
#[derive(Debug)]
pub struct Relay {
    /// The engine's host as the URL names it (where the relayed connections go).
    pub host: String,
    dir: PathBuf,
    /// One change of the records at a time within this process (services become ready at once).
    records: tokio::sync::Mutex<()>,
}

impl Relay {
    /// The relay of a `tcp://` (or `http(s)://`) engine on another host; `None` for an engine on
    /// this machine (127.0.0.1, localhost) and any other kind of endpoint.
    pub fn for_url(url: &str) -> Option<Relay> {
        let host = remote_tcp_host(url)?;
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(url.as_bytes()));
        Some(Relay {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            dir: crate::lock::lock_dir().join(format!("tcp-{}", &digest[..16])),
            records: tokio::sync::Mutex::new(()),
        })
    }

    fn socket(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.sock"))
    }

    fn record_path(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.json"))
    }

    fn log(&self, project: &str) -> PathBuf {
        self.dir.join(format!("{project}.log"))
    }

    /// Where a relayed connection to a port the engine published on `engine_host` goes: the
    /// engine's host for a wildcard address, else the address itself, unless that is a loopback
    /// address of the engine's machine, which this machine cannot reach.
    pub fn target(
        &self,
        service: &str,
        engine_host: &str,
        port: u16,
    ) -> Result<String, RelayError> {
        match engine_host {
            "" | "0.0.0.0" | "::" => Ok(self.host.clone()),
            ip if ip != self.host && is_loopback(ip) => Err(RelayError::Unreachable {
                service: service.to_string(),
                host: ip.to_string(),
                port,
                engine_host: self.host.clone(),
            }),
            ip => Ok(ip.to_string()),
        }
    }

    /// Relays each forward's 127.0.0.1:`port` to its `remote_host`:`port`, starting the
    /// project's relay when none answers, and records them.
    pub async fn forward(&self, project: &str, forwards: &[Forward]) -> Result<(), RelayError> {
        let _one = self.records.lock().await;
        let running = match self.ask(project, &Request::Status).await {
            Ok(reply) => reply.pid,
            Err(_) => self.start(project).await?,
        };
        let mut record = self.read_record(project).unwrap_or_default();
        if record.pid != running {
            // Ports of a relay that is gone went with it.
            record = Record {
                pid: running,
                forwards: Vec::new(),
            };
        }
        let reply = self
            .ask(
                project,
                &Request::Forward {
                    forwards: forwards.to_vec(),
                },
            )
            .await?;
        if let Some(message) = reply.error {
            return Err(RelayError::Forward { message });
        }
        for f in forwards {
            record.forwards.retain(|r| r.port != f.port);
            record.forwards.push(f.clone());
        }
        self.write_record(project, &record)
    }

    /// The project's relayed ports: none recorded, carried by the running relay, or down.
    pub async fn state(&self, project: &str) -> ForwardsState {
        let Some(record) = self.read_record(project) else {
            return ForwardsState::None;
        };
        if record.forwards.is_empty() {
            return ForwardsState::None;
        }
        match self.ask(project, &Request::Status).await {
            Ok(reply) if reply.pid == record.pid => ForwardsState::Up {
                pid: reply.pid,
                forwards: record.forwards,
            },
            _ => ForwardsState::Down {
                forwards: record.forwards,
            },
        }
    }

    /// Ends the project's relay (its listeners are closed when this returns), its record and
    /// its log.
    pub async fn end(&self, project: &str) -> Result<(), RelayError> {
        let _one = self.records.lock().await;
        let _ = self.ask(project, &Request::Exit).await;
        for path in [
            self.record_path(project),
            self.socket(project),
            self.log(project),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(RelayError::State { path, source }),
            }
        }
        Ok(())
    }

    /// Starts the project's relay in a session of its own and returns its PID once its
    /// control socket listens. Its messages go to a log file: an inherited stderr would keep a
    /// caller's pipe open.
    async fn start(&self, project: &str) -> Result<u32, RelayError> {
        let state = |path: &Path, source| RelayError::State {
            path: path.to_path_buf(),
            source,
        };
        crate::dirs::create_private(&self.dir).map_err(|e| state(&self.dir, e))?;
        let log_path = self.log(project);
        let log = std::fs::File::create(&log_path).map_err(|e| state(&log_path, e))?;
        let program = std::env::current_exe().map_err(|source| RelayError::Spawn {
            program: PathBuf::from("vibedev"),
            source,
        })?;
        let mut cmd = tokio::process::Command::new(&program);
        cmd.arg(SUBCOMMAND)
            .arg(self.socket(project))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        // SAFETY: setsid is async-signal-safe and touches nothing of the parent's: the relay
        // leaves the terminal's session, so Ctrl-C and a closed terminal do not end it.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|source| RelayError::Spawn { program, source })?;
        let pid = child.id().unwrap_or_default();
        let mut lines = BufReader::new(child.stdout.take().ok_or_else(|| RelayError::Start {
            message: "no pipe to the relay".into(),
        })?)
        .lines();
        let ready = tokio::time::timeout(START_TIMEOUT, lines.next_line()).await;
        match ready {
            Ok(Ok(Some(line))) if line == READY => Ok(pid),
            Ok(_) => {
                let _ = child.wait().await;
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                Err(RelayError::Start {
                    message: match crate::text::last_lines(&log, 3) {
                        m if m.is_empty() => "it exited at once".into(),
                        m => m,
                    },
                })
            }
            Err(_) => {
                let _ = child.kill().await;
                Err(RelayError::Start {
                    message: format!("it did not listen within {} s", START_TIMEOUT.as_secs()),
                })
            }
        }
    }

    /// One request to the project's relay over its control socket.
    async fn ask(&self, project: &str, request: &Request) -> Result<Reply, RelayError> {
        let socket = self.socket(project);
        let control = |message: String| RelayError::Control {
            socket: socket.clone(),
            message,
        };
        let exchange = async {
            let mut stream = UnixStream::connect(&socket).await?;
            let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
            line.push('\n');
            stream.write_all(line.as_bytes()).await?;
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer).await?;
            serde_json::from_str::<Reply>(&answer).map_err(std::io::Error::other)
        };
        match tokio::time::timeout(ASK_TIMEOUT, exchange).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(e)) => Err(control(e.to_string())),
            Err(_) => Err(control(format!(
                "no answer within {} s",
                ASK_TIMEOUT.as_secs()
            ))),
        }
    }

    fn read_record(&self, project: &str) -> Option<Record> {
        let text = std::fs::read_to_string(self.record_path(project)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write_record(&self, project: &str, record: &Record) -> Result<(), RelayError> {
        let path = self.record_path(project);
        let tmp = self.dir.join(format!(".{project}.json.tmp"));
        let text = serde_json::to_string_pretty(record).unwrap_or_default();
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| RelayError::State { path, source })
    }
}

/// The listeners of a running relay, by port: where each relays to, and its accept loop.
type Listeners = BTreeMap<u16, (Forward, tokio::task::JoinHandle<()>)>;

/// The relay process (`vibedev __forward SOCKET`): listens on its control socket, says so on
/// stdout, then relays the ports it is asked to until told to exit.
pub async fn serve(socket: &Path) -> Result<(), RelayError> {
    let state = |source| RelayError::State {
        path: socket.to_path_buf(),
        source,
    };
    // A socket left by a relay that died: nothing answers on it any more.
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(state(e)),
    }
    let control = UnixListener::bind(socket).map_err(state)?;
    println!("{READY}");
    let listeners = Arc::new(tokio::sync::Mutex::new(Listeners::new()));
    loop {
        let (stream, _) = control.accept().await.map_err(state)?;
        if answer(stream, &listeners).await {
            break;
        }
    }
    Ok(())
}

/// Answers one control connection; true when the relay is to exit (its listeners are closed
/// and its socket removed before the answer goes out, so the caller sees the ports closed).
async fn answer(stream: UnixStream, listeners: &tokio::sync::Mutex<Listeners>) -> bool {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return false;
    }
    let mut reply = Reply {
        pid: std::process::id(),
        ..Reply::default()
    };
    let mut exit = false;
    let mut open = listeners.lock().await;
    match serde_json::from_str::<Request>(&line) {
        Ok(Request::Forward { forwards }) => {
            for f in forwards {
                if let Err(message) = listen(&mut open, f).await {
                    reply.error = Some(message);
                    break;
                }
            }
        }
        Ok(Request::Status) => {}
        Ok(Request::Exit) => {
            for (_, (_, task)) in std::mem::take(&mut *open) {
                task.abort();
                let _ = task.await;
            }
            exit = true;
        }
        Err(e) => reply.error = Some(format!("not a request: {e}")),
    }
    reply.forwards = open.values().map(|(f, _)| f.clone()).collect();
    drop(open);
    if let Ok(mut text) = serde_json::to_string(&reply) {
        text.push('\n');
        let _ = write.write_all(text.as_bytes()).await;
    }
    exit
}

/// Listens on 127.0.0.1:`port` and relays each connection to the forward's remote end (a port
/// that listens already keeps listening, now relaying to the new remote end).
async fn listen(open: &mut Listeners, forward: Forward) -> Result<(), String> {
    if let Some((known, _)) = open.get(&forward.port)
        && *known == forward
    {
        return Ok(());
    }
    if let Some((_, task)) = open.remove(&forward.port) {
        task.abort();
        let _ = task.await;
    }
    let listener = TcpListener::bind(("127.0.0.1", forward.port))
        .await
        .map_err(|e| {
            format!(
                "cannot listen on 127.0.0.1:{} for {}: {e}",
                forward.port, forward.service
            )
        })?;
    let remote = (forward.remote_host.clone(), forward.port);
    let task = tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(relay(client, remote.clone()));
        }
    });
    open.insert(forward.port, (forward, task));
    Ok(())
}

/// Copies one connection both ways; a remote end that does not answer closes the client's.
async fn relay(mut client: TcpStream, (host, port): (String, u16)) {
    let Ok(Ok(mut remote)) =
        tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect((host.as_str(), port))).await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = remote.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut remote).await;
}

/// The host of a `tcp://` (or `http(s)://`) engine URL when it is not this machine.
pub fn remote_tcp_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    if host.is_empty() || host == "localhost" || host == "127.0.0.1" {
        return None;
    }
    Some(host.to_string())
}

fn is_loopback(ip: &str) -> bool {
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tcp_engines_on_another_host_are_relayed() {
        assert_eq!(
            remote_tcp_host("tcp://build-box:2375").as_deref(),
            Some("build-box")
        );
        assert_eq!(
            remote_tcp_host("tcp://127.0.0.2:2375").as_deref(),
            Some("127.0.0.2")
        );
        assert_eq!(remote_tcp_host("tcp://127.0.0.1:2375"), None);
        assert_eq!(remote_tcp_host("tcp://localhost:2375"), None);
        assert_eq!(remote_tcp_host("unix:///var/run/docker.sock"), None);
        assert_eq!(remote_tcp_host("ssh://ana@box"), None);
    }

    #[test]
    fn relayed_connections_go_where_the_engine_host_is_reached() {
        let relay = Relay::for_url("tcp://10.0.0.5:2375").unwrap();
        assert_eq!(relay.target("redis", "0.0.0.0", 6379).unwrap(), "10.0.0.5");
        assert_eq!(relay.target("redis", "", 6379).unwrap(), "10.0.0.5");
        assert_eq!(
            relay.target("redis", "192.168.1.9", 6379).unwrap(),
            "192.168.1.9"
        );
        let err = relay.target("redis", "127.0.0.1", 6379).unwrap_err();
        assert!(err.to_string().contains("set `bind`"), "{err}");
        // An engine host that is itself a loopback address of this machine is reachable.
        let relay = Relay::for_url("tcp://127.0.0.2:2375").unwrap();
        assert_eq!(
            relay.target("redis", "127.0.0.2", 6379).unwrap(),
            "127.0.0.2"
        );
    }
}
