//! Where the running stack's data stores are reached from the host: the Postgres target with its
//! credentials, the fake-gcs and Firestore base URLs, Redis. Derived from what `runtime` observed.

use super::postgres::PgTarget;
use crate::runtime::ServiceRuntime;
use crate::stack::{Kind, Stack};

/// The running data stores (a store is `None` when its service is absent or not running).
#[derive(Debug, Clone, Default)]
pub struct Targets {
    pub postgres: Option<PgTarget>,
    /// fake-gcs base URL and the stack's buckets.
    pub gcs: Option<(String, Vec<String>)>,
    /// Firestore emulator base URL.
    pub firestore: Option<String>,
    pub redis: Option<(String, u16)>,
    pub gcp_project: String,
}

impl Targets {
    pub fn new(stack: &Stack, runtimes: &[ServiceRuntime]) -> Targets {
        let mut t = Targets {
            gcp_project: stack.gcp_project.clone(),
            ..Targets::default()
        };
        for (spec, rt) in stack.services.iter().zip(runtimes) {
            if !rt.running() {
                continue;
            }
            let Some((host, port)) = rt.probe_address(spec) else {
                continue;
            };
            let base = if host.contains(':') {
                format!("http://[{host}]:{port}")
            } else {
                format!("http://{host}:{port}")
            };
            match spec.kind {
                Some(Kind::Postgres) if t.postgres.is_none() => {
                    if let Some(app) = &spec.postgres {
                        t.postgres = Some(PgTarget {
                            host,
                            port,
                            app: app.clone(),
                        });
                    }
                }
                Some(Kind::Gcs) if t.gcs.is_none() => t.gcs = Some((base, spec.buckets.clone())),
                Some(Kind::Firestore) if t.firestore.is_none() => t.firestore = Some(base),
                Some(Kind::Redis) if t.redis.is_none() => t.redis = Some((host, port)),
                _ => {}
            }
        }
        t
    }
}
