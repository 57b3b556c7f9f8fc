//! Redis (the app's Memorystore cache and rate limits): ready on `PING`, `REDIS_URL`, emptied for
//! `vibedev reset-db --all` (`FLUSHALL` over the wire protocol, no client library needed), and
//! snapshots: every key of every database as `DUMP` gives it, with its time to live.

pub mod browse;

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{
    Counted, Emptied, SeedError, SeedPaths, SeedReporter, ServiceKind, SnapshotIo, Store, WaitFor,
};
use crate::ready::redis_command;
use crate::resp::{Connection, Reply};

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

    fn snapshot_save<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async move {
            let records = save_keys(&store.host, store.port).await?;
            let count = records.len() as u64;
            super::snapshot::write(io.dir, KEYS_FILE, &encode(&records))?;
            Ok(Some(Counted::new(count, "keys")))
        })
    }

    /// One `MULTI`/`EXEC`.
    fn snapshot_restore_in_one_step(&self) -> bool {
        true
    }

    fn snapshot_restore<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        Box::pin(async move {
            let records = decode(&super::snapshot::read(io.dir, KEYS_FILE)?)?;
            restore_keys(&store.host, store.port, &records).await?;
            Ok(Counted::new(records.len() as u64, "keys"))
        })
    }
}

/// The snapshot's file: every key as a record (see [`encode`]).
const KEYS_FILE: &str = "keys.bin";

/// What the file starts with (its format's version is the last byte).
const MAGIC: &[u8] = b"vibedev-redis\x01";

/// Keys asked for per `SCAN`, and commands per pipelined batch.
const BATCH: usize = 1000;

/// One key as saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub db: u32,
    pub key: Vec<u8>,
    /// Milliseconds left to live when saved; 0: none.
    pub ttl_ms: u64,
    /// What `DUMP` gave (the value in Redis' own serialization, with its checksum).
    pub payload: Vec<u8>,
}

fn io_error(e: std::io::Error) -> String {
    format!("Redis: {e}")
}

fn reply_error(what: &str, reply: &Reply) -> String {
    format!("{what} answered {reply:?}")
}

/// Every key of every database: `SCAN`, then `PTTL` and `DUMP` for each key, pipelined.
async fn save_keys(host: &str, port: u16) -> Result<Vec<Record>, String> {
    let mut conn = Connection::connect(host, port).await.map_err(io_error)?;
    let mut records = Vec::new();
    for db in databases(&mut conn).await? {
        let db_arg = db.to_string();
        expect_ok(&mut conn, &[b"SELECT", db_arg.as_bytes()]).await?;
        let mut seen = std::collections::HashSet::new();
        let mut cursor = b"0".to_vec();
        loop {
            let reply = conn
                .command(&[b"SCAN", &cursor, b"COUNT", BATCH.to_string().as_bytes()])
                .await
                .map_err(io_error)?;
            let Reply::Array(Some(parts)) = &reply else {
                return Err(reply_error("SCAN", &reply));
            };
            let [Reply::Bulk(Some(next)), Reply::Array(Some(keys))] = parts.as_slice() else {
                return Err(reply_error("SCAN", &reply));
            };
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .filter_map(|k| match k {
                    Reply::Bulk(Some(k)) if seen.insert(k.clone()) => Some(k.clone()),
                    _ => None,
                })
                .collect();
            for key in &keys {
                conn.send(&[b"PTTL", key]).await.map_err(io_error)?;
                conn.send(&[b"DUMP", key]).await.map_err(io_error)?;
            }
            conn.flush().await.map_err(io_error)?;
            for key in keys {
                let ttl = conn.read().await.map_err(io_error)?;
                let dump = conn.read().await.map_err(io_error)?;
                let ttl_ms = match ttl {
                    Reply::Int(ms) if ms > 0 => ms as u64,
                    // No expiry.
                    Reply::Int(-1) => 0,
                    // Gone (expired or deleted) since the scan found it.
                    Reply::Int(_) => continue,
                    other => return Err(reply_error("PTTL", &other)),
                };
                match dump {
                    Reply::Bulk(Some(payload)) => records.push(Record {
                        db,
                        key,
                        ttl_ms,
                        payload,
                    }),
                    Reply::Bulk(None) => {}
                    other => return Err(reply_error("DUMP", &other)),
                }
            }
            if next.as_slice() == b"0" {
                break;
            }
            cursor = next.clone();
        }
    }
    Ok(records)
}

/// The databases that hold keys, from `INFO keyspace` (`db3:keys=1,...`).
async fn databases(conn: &mut Connection) -> Result<Vec<u32>, String> {
    let reply = conn
        .command(&[b"INFO", b"keyspace"])
        .await
        .map_err(io_error)?;
    let Reply::Bulk(Some(text)) = &reply else {
        return Err(reply_error("INFO keyspace", &reply));
    };
    Ok(String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| l.strip_prefix("db")?.split_once(':')?.0.parse().ok())
        .collect())
}

async fn expect_ok(conn: &mut Connection, args: &[&[u8]]) -> Result<(), String> {
    match conn.command(args).await.map_err(io_error)? {
        Reply::Status(s) if s == "OK" => Ok(()),
        other => Err(reply_error(&String::from_utf8_lossy(args[0]), &other)),
    }
}

/// Makes the server hold exactly `records`. One key is restored under a scratch name first, so
/// a server that cannot read the payloads (an older Redis) refuses before anything changes;
/// then `FLUSHALL` and every `RESTORE` run in one `MULTI`/`EXEC`, which other clients see as
/// one step. A server that keeps its keys in a dump file writes it before and after: killed
/// during the restore it comes back with the keys it held before, killed after it with the
/// restored ones (not with its last periodic dump).
async fn restore_keys(host: &str, port: u16, records: &[Record]) -> Result<(), String> {
    let mut conn = Connection::connect(host, port).await.map_err(io_error)?;
    let dumps = dumps_to_file(&mut conn).await;
    if let Some(first) = records.first() {
        let probe = format!("vibedev:snapshot-probe:{}", std::process::id());
        let reply = conn
            .command(&[
                b"RESTORE",
                probe.as_bytes(),
                b"0",
                &first.payload,
                b"REPLACE",
            ])
            .await
            .map_err(io_error)?;
        if let Some(e) = reply.error() {
            return Err(format!(
                "this Redis cannot read the snapshot's values ({e}); nothing was changed"
            ));
        }
        conn.command(&[b"DEL", probe.as_bytes()])
            .await
            .map_err(io_error)?;
    }
    if dumps {
        expect_ok(&mut conn, &[b"SAVE"]).await.map_err(|e| {
            format!("cannot write the keys held now to disk ({e}); nothing was changed")
        })?;
    }
    expect_ok(&mut conn, &[b"MULTI"]).await?;
    let mut queued = 0usize;
    conn.send(&[b"FLUSHALL"]).await.map_err(io_error)?;
    queued += 1;
    let mut db = None;
    for r in records {
        if db != Some(r.db) {
            conn.send(&[b"SELECT", r.db.to_string().as_bytes()])
                .await
                .map_err(io_error)?;
            queued += 1;
            db = Some(r.db);
        }
        conn.send(&[
            b"RESTORE",
            &r.key,
            r.ttl_ms.to_string().as_bytes(),
            &r.payload,
            b"REPLACE",
        ])
        .await
        .map_err(io_error)?;
        queued += 1;
        if queued >= BATCH {
            read_queued(&mut conn, queued).await?;
            queued = 0;
        }
    }
    read_queued(&mut conn, queued).await?;
    let reply = conn.command(&[b"EXEC"]).await.map_err(io_error)?;
    let Reply::Array(Some(results)) = &reply else {
        return Err(reply_error("EXEC", &reply));
    };
    if let Some(e) = results.iter().find_map(Reply::error) {
        return Err(format!("restoring the keys failed part way: {e}"));
    }
    let _ = conn.command(&[b"SELECT", b"0"]).await;
    if dumps {
        expect_ok(&mut conn, &[b"SAVE"]).await.map_err(|e| {
            format!("the keys were restored but cannot be written to disk ({e}): a restart of Redis would bring back the keys from before the restore")
        })?;
    }
    Ok(())
}

/// Whether the server writes its keys to a dump file (`save` rules set; a server started with
/// `--save ""` keeps them in memory only, or in its append-only file).
async fn dumps_to_file(conn: &mut Connection) -> bool {
    match conn.command(&[b"CONFIG", b"GET", b"save"]).await {
        Ok(Reply::Array(Some(items))) => {
            matches!(items.get(1), Some(Reply::Bulk(Some(rules))) if !rules.is_empty())
        }
        _ => false,
    }
}

/// Reads the `QUEUED` replies of `n` commands sent inside `MULTI`; a refused one discards the
/// transaction before anything ran.
async fn read_queued(conn: &mut Connection, n: usize) -> Result<(), String> {
    conn.flush().await.map_err(io_error)?;
    for _ in 0..n {
        let reply = conn.read().await.map_err(io_error)?;
        if let Some(e) = reply.error() {
            let _ = conn.command(&[b"DISCARD"]).await;
            return Err(format!(
                "Redis refused the restore ({e}); nothing was changed"
            ));
        }
    }
    Ok(())
}

/// The records as one file: [`MAGIC`], then per key its database (u32), key length (u32), key,
/// milliseconds to live (u64), payload length (u32) and payload, little-endian.
pub fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for r in records {
        out.extend_from_slice(&r.db.to_le_bytes());
        out.extend_from_slice(&(r.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.key);
        out.extend_from_slice(&r.ttl_ms.to_le_bytes());
        out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&r.payload);
    }
    out
}

/// Reads what [`encode`] wrote; anything short or malformed is refused.
pub fn decode(bytes: &[u8]) -> Result<Vec<Record>, String> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| format!("{KEYS_FILE} in the snapshot is not a vibedev Redis snapshot"))?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let db = u32::from_le_bytes(take(&mut rest)?);
        let klen = u32::from_le_bytes(take(&mut rest)?);
        let key = take_slice(&mut rest, klen as usize)?.to_vec();
        let ttl_ms = u64::from_le_bytes(take(&mut rest)?);
        let plen = u32::from_le_bytes(take(&mut rest)?);
        let payload = take_slice(&mut rest, plen as usize)?.to_vec();
        records.push(Record {
            db,
            key,
            ttl_ms,
            payload,
        });
    }
    Ok(records)
}

fn take_slice<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if rest.len() < n {
        return Err(format!(
            "{KEYS_FILE} in the snapshot is damaged (it ends inside a record)"
        ));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn take<const N: usize>(rest: &mut &[u8]) -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    out.copy_from_slice(take_slice(rest, N)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_short_files_are_refused() {
        let records = vec![
            Record {
                db: 0,
                key: b"k".to_vec(),
                ttl_ms: 0,
                payload: vec![0, 1, 2],
            },
            Record {
                db: 3,
                key: b"with\r\nbytes".to_vec(),
                ttl_ms: 60_000,
                payload: Vec::new(),
            },
        ];
        let bytes = encode(&records);
        assert_eq!(decode(&bytes).unwrap(), records);
        assert_eq!(decode(MAGIC).unwrap(), Vec::new());
        let err = decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.contains("damaged"), "{err}");
        assert!(decode(b"something else").is_err());
    }
}
