//! Redis (the app's Memorystore cache and rate limits): ready on `PING`, `REDIS_URL`, emptied for
//! `vibedev reset-db --all` (`FLUSHALL` over the wire protocol, no client library needed).

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Emptied, SeedError, SeedPaths, SeedReporter, ServiceKind, Store, WaitFor};
use crate::ready::redis_command;

/// Redis.
pub struct Redis;

impl ServiceKind for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    /// Ready moments after its container starts: last.
    fn start_rank(&self, _fresh_data: bool) -> u8 {
        2
    }

    /// `PING` answers `PONG` (or NOAUTH from a password-protected server: it is up).
    fn wait(&self) -> WaitFor {
        WaitFor::Redis {
            command: &["PING"],
            replies: &["+PONG", "-NOAUTH"],
        }
    }

    fn url(&self, store: &Store<'_>, _with_password: bool) -> String {
        format!("redis://{}:{}", store.url_host(), store.port)
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        vec![("REDIS_URL".to_string(), self.url(store, false))]
    }

    fn empty<'a>(
        &'a self,
        store: &'a Store<'a>,
        _reseed: Option<&'a SeedPaths>,
        _report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Emptied>, SeedError>> {
        Box::pin(async move {
            let reply = redis_command(
                &store.host,
                store.port,
                &["FLUSHALL"],
                Duration::from_secs(10),
            )
            .await
            .map_err(|m| SeedError::api(store.service, m))?;
            if reply.starts_with("+OK") {
                Ok(Some(Emptied::Everything))
            } else {
                Err(SeedError::api(
                    store.service,
                    format!("FLUSHALL answered {reply:?}"),
                ))
            }
        })
    }
}
