//! Readiness as data: what one check of a service is ([`WaitFor`]), one check from the host
//! ([`check`]), and the wait that repeats it under a deadline and prepares the service on the
//! way ([`until_ready`]). The same check serves `up` (repeated) and `status` (once).

use std::time::{Duration, Instant};

use super::{Kind, Store};
use crate::{pg, ready};

/// One readiness check, made from the host the way a real client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitFor {
    /// A query as the app user on the app database (the service's Postgres settings).
    Postgres { query: &'static str },
    /// A Redis command whose reply starts with one of `replies`.
    Redis {
        command: &'static [&'static str],
        replies: &'static [&'static str],
    },
    /// `GET` answering 2xx (and, when given, a body starting with `body`); the next path is
    /// tried when one fails (an older server without the first endpoint).
    Http {
        paths: Vec<String>,
        body: Option<String>,
    },
    /// A TCP connection is accepted.
    Tcp,
}

/// When [`super::ServiceKind::prepare`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The server answered the check but refused it (a missing role or database).
    Refused,
    /// The check passed.
    Ready,
}

/// Why one check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    pub message: String,
    /// The server is up and answered: preparing it may make the next check pass.
    pub refused: bool,
}

impl NotReady {
    fn waiting(message: impl Into<String>) -> NotReady {
        NotReady {
            message: message.into(),
            refused: false,
        }
    }
}

/// One check, bounded by the probe's attempt budget.
pub async fn check(
    wait: &WaitFor,
    store: &Store<'_>,
    http: &reqwest::Client,
) -> Result<(), NotReady> {
    match wait {
        WaitFor::Postgres { query } => {
            let Some(app) = &store.settings.postgres else {
                return Err(NotReady::waiting("no Postgres settings"));
            };
            let result = async {
                let client = pg::connect(
                    &store.host,
                    store.port,
                    &app.user,
                    &app.password,
                    app.prepared_database(),
                )
                .await?;
                client.simple_query(query).await.map(|_| ())
            }
            .await;
            result.map_err(|e| NotReady {
                refused: pg::server_answered(&e),
                message: pg::pg_error(&e),
            })
        }
        WaitFor::Redis { command, replies } => {
            let reply =
                ready::redis_command(&store.host, store.port, command, ready::ATTEMPT_TIMEOUT)
                    .await
                    .map_err(NotReady::waiting)?;
            if replies.iter().any(|r| reply.starts_with(r)) {
                Ok(())
            } else {
                Err(NotReady::waiting(format!("unexpected reply {reply:?}")))
            }
        }
        WaitFor::Http { paths, body } => {
            let mut last = NotReady::waiting("no path to check");
            for path in paths {
                let url = format!("{}{path}", store.base_url());
                match ready::http_ok(http, &url, body.as_deref()).await {
                    Ok(()) => return Ok(()),
                    Err(e) => last = NotReady::waiting(e),
                }
            }
            Err(last)
        }
        WaitFor::Tcp => ready::tcp_open(&store.host, store.port)
            .await
            .map_err(NotReady::waiting),
    }
}

/// Checks until the service passes, backing off from 10 ms to 50 ms; prepares a service of a
/// kind when it refuses and once it passes (see [`Stage`]). Returns what was made, or the last failure
/// once `deadline` passes.
pub async fn until_ready(
    kind: Option<Kind>,
    wait: &WaitFor,
    store: &Store<'_>,
    deadline: Instant,
    http: &reqwest::Client,
) -> Result<Vec<String>, String> {
    let mut made = Vec::new();
    let mut backoff = ready::Backoff::probe();
    loop {
        let last = match check(wait, store, http).await {
            Ok(()) => {
                if let Some(kind) = kind {
                    made.extend(kind.prepare(store, Stage::Ready).await?);
                }
                return Ok(made);
            }
            Err(e) if e.refused && kind.is_some() => match prepare(kind, store).await {
                Ok(done) if !done.is_empty() => {
                    made.extend(done);
                    continue;
                }
                Ok(_) => e.message,
                Err(why) => why,
            },
            Err(e) => e.message,
        };
        let delay = backoff.next_delay();
        if Instant::now() + delay >= deadline {
            return Err(last);
        }
        tokio::time::sleep(delay).await;
    }
}

/// The kind's preparation after a refusal.
async fn prepare(kind: Option<Kind>, store: &Store<'_>) -> Result<Vec<String>, String> {
    match kind {
        Some(kind) => kind.prepare(store, Stage::Refused).await,
        None => Ok(Vec::new()),
    }
}

/// One check for `status`, answered within 3 s.
pub async fn is_ready(wait: &WaitFor, store: &Store<'_>, http: &reqwest::Client) -> bool {
    tokio::time::timeout(Duration::from_secs(3), check(wait, store, http))
        .await
        .is_ok_and(|r| r.is_ok())
}
