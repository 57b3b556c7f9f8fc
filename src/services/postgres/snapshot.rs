//! The app database in a snapshot. Saving opens one repeatable-read transaction, exports its
//! snapshot, and from that one point in time dumps the schema with the image's own `pg_dump`
//! (run inside the container, so its version is the server's) and copies every table's rows in
//! binary over several connections at once. Restoring builds a new database beside the app
//! database (schema, rows, sequence values, then indexes and constraints) and swaps the two
//! names in one transaction, so a failure at any point leaves the app database as it was.
//!
//! When nothing else is connected to the app database, a save first copies it inside the
//! server (`CREATE DATABASE ... TEMPLATE`, file by file) and dumps the files from that copy,
//! which it keeps: restoring that snapshot on the same server then swaps the kept copy in
//! without rebuilding anything. One copy is kept per app database (the newest save's); a
//! restore uses it up, and the files stay the snapshot's durable, portable form.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use futures_util::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::super::snapshot::{ContainerExec, read, read_json, write, write_json};
use super::super::{Counted, SnapshotIo};
use crate::migrate::{advisory_lock, advisory_unlock, lock_key, silent};
use crate::pg::{
    self, PgTarget, PostgresApp, create_database_sql, create_empty_database_sql, pg_error,
    quote_ident, quote_literal, server_version, snapshot_copy_name,
};

/// Connections copying tables at once.
const COPY_WORKERS: usize = 4;

/// Bytes read from a table's file per message when restoring.
const CHUNK: usize = 1 << 20;

/// The suffix of the database a restore builds beside the app database.
const STAGING: &str = "__vibedev_restore";

/// How long the swap waits for a reset of the app database to finish.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// What the snapshot records beside the schema and the rows.
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    /// `server_version_num` of the server it was taken on.
    server_version: i32,
    database: String,
    tables: Vec<Table>,
    sequences: Vec<Sequence>,
    /// The copy of the database kept in the server at save time, if one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kept: Option<Kept>,
}

/// A copy of the saved database inside the server: `database`, marked with `token` (its
/// comment) so that a later save's copy of that name is never taken for this one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Kept {
    database: String,
    token: String,
}

impl Kept {
    fn comment(&self) -> String {
        format!("{{\"vibedev_snapshot\":\"{}\"}}", self.token)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Table {
    schema: String,
    name: String,
    /// The file holding its rows (binary `COPY` format).
    file: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sequence {
    schema: String,
    name: String,
    last_value: i64,
    is_called: bool,
}

fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// User relations of one kind (`r` tables, `S` sequences), extensions' own left out.
fn relations_sql(relkind: char) -> String {
    format!(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind = '{relkind}' AND c.relpersistence <> 't' \
         AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
         AND d.objid = c.oid AND d.deptype = 'e') \
         ORDER BY pg_relation_size(c.oid) DESC, 1, 2"
    )
}

fn query_error(what: &str) -> impl Fn(tokio_postgres::Error) -> String + '_ {
    move |e| format!("{what}: {}", pg_error(&e))
}

/// Saves the app database into `io.dir`.
pub async fn save(target: &PgTarget, io: &SnapshotIo<'_>) -> Result<Counted, String> {
    // The connection holding the kept copy's lock until the files are written.
    let admin = target.connect_admin().await.ok();
    let kept = match &admin {
        Some(admin) => keep_copy(target, admin).await,
        None => None,
    };
    let source = kept
        .as_ref()
        .map_or(target.app.database.as_str(), |k| k.database.as_str());
    let saved = save_from(target, source, kept.clone(), io).await;
    if let (Err(_), Some(k), Some(admin)) = (&saved, &kept, &admin) {
        let _ = drop_database(admin, &k.database).await;
    }
    saved
}

/// Takes the lock on the kept copy of the app database: a save replacing it and a restore
/// swapping it in never meet (two machines may drive one engine). Held until `admin` closes.
async fn lock_kept(admin: &tokio_postgres::Client, database: &str) -> bool {
    admin
        .query_one(
            "SELECT pg_try_advisory_lock($1)",
            &[&lock_key("snapshot-copy", database)],
        )
        .await
        .is_ok_and(|row| row.get::<_, bool>(0))
}

/// Copies the app database inside the server, replacing the copy an earlier save kept, when
/// no other session is connected to it (a copy needs its source to itself, and a save never
/// ends the app's sessions). `None` when it is not made: the save reads the app database.
async fn keep_copy(target: &PgTarget, admin: &tokio_postgres::Client) -> Option<Kept> {
    let version = server_version(admin).await.ok()?;
    let db = &target.app.database;
    if !lock_kept(admin, db).await {
        return None;
    }
    let others: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'",
            &[db],
        )
        .await
        .ok()?
        .get(0);
    if others > 0 {
        return None;
    }
    let kept = Kept {
        database: snapshot_copy_name(db),
        token: format!("{:032x}", rand::random::<u128>()),
    };
    drop_database(admin, &kept.database).await.ok()?;
    admin
        .batch_execute(&create_database_sql(
            &kept.database,
            Some(db),
            &target.app.user,
            version,
        ))
        .await
        .ok()?;
    let marked = admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(&kept.database),
            quote_literal(&kept.comment())
        ))
        .await;
    if marked.is_err() {
        let _ = drop_database(admin, &kept.database).await;
        return None;
    }
    Some(kept)
}

/// Saves database `source` (the app database or its kept copy) into `io.dir`.
async fn save_from(
    target: &PgTarget,
    source: &str,
    kept: Option<Kept>,
    io: &SnapshotIo<'_>,
) -> Result<Counted, String> {
    let app = &target.app;
    let admin = admin_on(target, source).await?;
    admin
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(query_error("cannot start the snapshot's transaction"))?;
    let snapshot: String = admin
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(query_error("cannot export a snapshot"))?
        .get(0);
    let version = server_version(&admin)
        .await
        .map_err(query_error("cannot read the server version"))?;
    let tables: Vec<Table> = admin
        .query(&relations_sql('r'), &[])
        .await
        .map_err(query_error("cannot list the tables"))?
        .iter()
        .enumerate()
        .map(|(i, row)| Table {
            schema: row.get(0),
            name: row.get(1),
            file: format!("data/{i}.copy"),
        })
        .collect();
    let mut sequences = Vec::new();
    for row in admin
        .query(&relations_sql('S'), &[])
        .await
        .map_err(query_error("cannot list the sequences"))?
    {
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let value = admin
            .query_one(
                &format!(
                    "SELECT last_value, is_called FROM {}",
                    qualified(&schema, &name)
                ),
                &[],
            )
            .await
            .map_err(query_error(&format!(
                "cannot read sequence {schema}.{name}"
            )))?;
        sequences.push(Sequence {
            schema,
            name,
            last_value: value.get(0),
            is_called: value.get(1),
        });
    }
    std::fs::create_dir_all(io.dir.join("data"))
        .map_err(|e| format!("cannot create {}: {e}", io.dir.display()))?;
    let (pre, post, copied) = tokio::join!(
        dump_schema(io.exec, app, source, &snapshot, "pre-data"),
        dump_schema(io.exec, app, source, &snapshot, "post-data"),
        copy_out_all(target, source, &snapshot, &tables, io.dir),
    );
    write(io.dir, "pre-data.sql", pre?.as_bytes())?;
    write(io.dir, "post-data.sql", post?.as_bytes())?;
    copied?;
    let count = tables.len() as u64;
    write_json(
        io.dir,
        "meta.json",
        &Meta {
            server_version: version,
            database: app.database.clone(),
            tables,
            sequences,
            kept,
        },
    )?;
    admin
        .batch_execute("COMMIT")
        .await
        .map_err(query_error("cannot end the snapshot's transaction"))?;
    Ok(Counted::new(count, "tables"))
}

/// A connection as the admin user on `database`.
async fn admin_on(target: &PgTarget, database: &str) -> Result<tokio_postgres::Client, String> {
    let app = &target.app;
    pg::connect(
        &target.host,
        target.port,
        &app.admin_user,
        &app.admin_password,
        database,
    )
    .await
    .map_err(|e| format!("as admin user {:?}: {}", app.admin_user, pg_error(&e)))
}

/// One section (`pre-data`: types, tables, functions; `post-data`: indexes, constraints,
/// triggers) of the schema, as seen by `snapshot`, from `pg_dump` inside the container.
async fn dump_schema(
    exec: &dyn ContainerExec,
    app: &PostgresApp,
    database: &str,
    snapshot: &str,
    section: &str,
) -> Result<String, String> {
    let cmd = [
        "pg_dump",
        "--no-password",
        "--schema-only",
        &format!("--section={section}"),
        &format!("--snapshot={snapshot}"),
        "--username",
        &app.admin_user,
        "--dbname",
        database,
    ]
    .map(str::to_string)
    .to_vec();
    let env = vec![format!("PGPASSWORD={}", app.admin_password)];
    let out = exec.exec(cmd, env).await?;
    match out.code {
        Some(0) => {}
        Some(126 | 127) => {
            return Err(
                "pg_dump is not in the service's image: a Postgres image ships it next to the server"
                    .into(),
            );
        }
        code => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "pg_dump --section={section} failed (exit code {}): {}",
                code.map_or_else(|| "unknown".to_string(), |c| c.to_string()),
                stderr.trim()
            ));
        }
    }
    let text = String::from_utf8(out.stdout)
        .map_err(|_| format!("pg_dump --section={section} printed text that is not UTF-8"))?;
    Ok(without_meta_commands(&text))
}

/// The dump without the `\restrict` / `\unrestrict` lines pg_dump writes for psql (since the
/// 2025 minor releases); vibedev runs the SQL itself, where they mean nothing.
fn without_meta_commands(text: &str) -> String {
    text.lines()
        .filter(|l| !(l.starts_with("\\restrict ") || l.starts_with("\\unrestrict ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Copies every table's rows into its file, several tables at once, all from `snapshot`.
async fn copy_out_all(
    target: &PgTarget,
    database: &str,
    snapshot: &str,
    tables: &[Table],
    dir: &Path,
) -> Result<(), String> {
    let queue = Arc::new(Mutex::new(tables.iter().cloned().collect::<VecDeque<_>>()));
    let workers = (0..COPY_WORKERS.min(tables.len())).map(|_| {
        let queue = queue.clone();
        async move {
            let client = admin_on(target, database).await?;
            client
                .batch_execute(&format!(
                    "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT {}",
                    quote_literal(snapshot)
                ))
                .await
                .map_err(query_error("cannot join the snapshot"))?;
            while let Some(table) = next(&queue) {
                copy_out(&client, &table, dir).await?;
            }
            client
                .batch_execute("COMMIT")
                .await
                .map_err(query_error("cannot end a copy"))
        }
    });
    futures_util::future::try_join_all(workers).await?;
    Ok(())
}

fn next(queue: &Mutex<VecDeque<Table>>) -> Option<Table> {
    queue.lock().ok()?.pop_front()
}

async fn copy_out(
    client: &tokio_postgres::Client,
    table: &Table,
    dir: &Path,
) -> Result<(), String> {
    let name = qualified(&table.schema, &table.name);
    let failed = query_error_owned(format!("cannot copy table {name}"));
    let stream = client
        .copy_out(&format!("COPY {name} TO STDOUT (FORMAT binary)"))
        .await
        .map_err(&failed)?;
    futures_util::pin_mut!(stream);
    let path = dir.join(&table.file);
    let io_failed = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let file = tokio::fs::File::create(&path).await.map_err(io_failed)?;
    let mut file = tokio::io::BufWriter::with_capacity(CHUNK, file);
    while let Some(chunk) = stream.next().await {
        file.write_all(&chunk.map_err(&failed)?)
            .await
            .map_err(io_failed)?;
    }
    file.flush().await.map_err(io_failed)
}

fn query_error_owned(what: String) -> impl Fn(tokio_postgres::Error) -> String {
    move |e| format!("{what}: {}", pg_error(&e))
}

/// Replaces the app database with the one saved in `io.dir`.
pub async fn restore(target: &PgTarget, io: &SnapshotIo<'_>) -> Result<Counted, String> {
    let meta: Meta = read_json(io.dir, "meta.json")?;
    let db = &target.app.database;
    let admin = target.connect_admin().await.map_err(|e| {
        format!(
            "as admin user {:?}: {}",
            target.app.admin_user,
            pg_error(&e)
        )
    })?;
    let version = server_version(&admin)
        .await
        .map_err(query_error("cannot read the server version"))?;
    if version / 10000 != meta.server_version / 10000 {
        return Err(format!(
            "the snapshot was taken on PostgreSQL {}, this service runs PostgreSQL {}: its table data restores into the same major version only",
            meta.server_version / 10000,
            version / 10000
        ));
    }
    let replaced = side_name(db, "__vibedev_replaced");
    let building = side_name(db, STAGING);
    for name in [&building, &replaced] {
        drop_database(&admin, name).await?;
    }
    // The copy kept at save time when the server still holds it, else one built from the files.
    let (staging, built) = match &meta.kept {
        Some(kept) if lock_kept(&admin, db).await && is_kept(&admin, kept).await => {
            (kept.database.clone(), false)
        }
        _ => {
            build(target, &admin, &building, &meta, version, io.dir).await?;
            (building, true)
        }
    };
    // What a failure leaves: a built database is dropped, a kept copy stays for the next try.
    let give_up = |e: String| async {
        if built {
            let _ = drop_database(&admin, &staging).await;
        }
        e
    };
    // The swap waits for a reset of the app database in progress (from any machine driving
    // this engine): the two never replace it at the same time.
    let key = lock_key("reset", db);
    if let Err(e) = advisory_lock(&admin, key, "reset-db", LOCK_TIMEOUT, &silent()).await {
        return Err(give_up(e.to_string()).await);
    }
    let swapped = swap(&admin, db, &staging, &replaced, version).await;
    advisory_unlock(&admin, key).await;
    if let Err(e) = swapped {
        return Err(give_up(e).await);
    }
    if !built {
        // The kept copy's mark is not the app database's.
        let _ = admin
            .batch_execute(&format!("COMMENT ON DATABASE {} IS NULL", quote_ident(db)))
            .await;
    }
    drop_database(&admin, &replaced).await?;
    Ok(Counted::new(meta.tables.len() as u64, "tables"))
}

/// Whether the server still holds `kept`, the copy made when the snapshot was saved.
async fn is_kept(admin: &tokio_postgres::Client, kept: &Kept) -> bool {
    let comment: Option<String> = admin
        .query_opt(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            &[&kept.database],
        )
        .await
        .ok()
        .flatten()
        .and_then(|row| row.get(0));
    comment.as_deref() == Some(kept.comment().as_str())
}

/// Builds `staging` from the snapshot's files (dropped again if that fails).
async fn build(
    target: &PgTarget,
    admin: &tokio_postgres::Client,
    staging: &str,
    meta: &Meta,
    version: i32,
    dir: &Path,
) -> Result<(), String> {
    let pre = text(dir, "pre-data.sql")?;
    let post = text(dir, "post-data.sql")?;
    admin
        .batch_execute(&create_empty_database_sql(
            staging,
            &target.app.user,
            version,
        ))
        .await
        .map_err(query_error("cannot create the database to restore into"))?;
    if let Err(e) = fill(target, staging, meta, &pre, &post, dir).await {
        let _ = drop_database(admin, staging).await;
        return Err(e);
    }
    Ok(())
}

/// Drops the database a restore stopped midway was building (its sessions are ended first).
pub async fn abandon(target: &PgTarget) {
    if let Ok(admin) = target.connect_admin().await {
        let _ = drop_database(&admin, &side_name(&target.app.database, STAGING)).await;
    }
}

fn text(dir: &Path, name: &str) -> Result<String, String> {
    String::from_utf8(read(dir, name)?).map_err(|_| format!("{name} in the snapshot is not UTF-8"))
}

/// `<database><suffix>`, cut to fit Postgres' 63-byte names.
fn side_name(database: &str, suffix: &str) -> String {
    let mut base = database.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

async fn drop_database(admin: &tokio_postgres::Client, name: &str) -> Result<(), String> {
    admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            quote_ident(name)
        ))
        .await
        .map_err(query_error(&format!("cannot drop database {name}")))
}

/// Schema, rows, sequence values, then indexes and constraints, into `staging`.
async fn fill(
    target: &PgTarget,
    staging: &str,
    meta: &Meta,
    pre: &str,
    post: &str,
    dir: &Path,
) -> Result<(), String> {
    let client = admin_on(target, staging).await?;
    client
        .batch_execute(pre)
        .await
        .map_err(query_error("the snapshot's schema does not apply"))?;
    let queue = Arc::new(Mutex::new(
        meta.tables.iter().cloned().collect::<VecDeque<_>>(),
    ));
    let workers = (0..COPY_WORKERS.min(meta.tables.len())).map(|_| {
        let queue = queue.clone();
        async move {
            let client = admin_on(target, staging).await?;
            while let Some(table) = next(&queue) {
                copy_in(&client, &table, dir).await?;
            }
            Ok::<_, String>(())
        }
    });
    futures_util::future::try_join_all(workers).await?;
    for seq in &meta.sequences {
        let name = qualified(&seq.schema, &seq.name);
        client
            .execute(
                "SELECT pg_catalog.setval($1::text::regclass, $2, $3)",
                &[&name, &seq.last_value, &seq.is_called],
            )
            .await
            .map_err(query_error(&format!("cannot set sequence {name}")))?;
    }
    client.batch_execute(post).await.map_err(query_error(
        "the snapshot's indexes and constraints do not apply",
    ))
}

async fn copy_in(client: &tokio_postgres::Client, table: &Table, dir: &Path) -> Result<(), String> {
    let name = qualified(&table.schema, &table.name);
    let failed = query_error_owned(format!("cannot restore the rows of {name}"));
    let sink = client
        .copy_in::<_, bytes::Bytes>(&format!("COPY {name} FROM STDIN (FORMAT binary)"))
        .await
        .map_err(&failed)?;
    futures_util::pin_mut!(sink);
    let path = dir.join(&table.file);
    let io_failed = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut file = tokio::fs::File::open(&path).await.map_err(io_failed)?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).await.map_err(io_failed)?;
        if n == 0 {
            break;
        }
        sink.send(bytes::Bytes::copy_from_slice(&buf[..n]))
            .await
            .map_err(&failed)?;
    }
    sink.as_mut().finish().await.map_err(&failed)?;
    Ok(())
}

/// Gives `staging` the app database's name and the app database `replaced`'s, in one
/// transaction: sessions on the app database are ended first (a session that connects in
/// between makes the rename fail, and it is tried again).
async fn swap(
    admin: &tokio_postgres::Client,
    db: &str,
    staging: &str,
    replaced: &str,
    version: i32,
) -> Result<(), String> {
    let exists = !admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&db])
        .await
        .map_err(query_error("cannot look up the app database"))?
        .is_empty();
    let rename = |from: &str, to: &str| {
        format!(
            "ALTER DATABASE {} RENAME TO {};",
            quote_ident(from),
            quote_ident(to)
        )
    };
    let sql = if exists {
        format!(
            "BEGIN; {} {} COMMIT;",
            rename(db, replaced),
            rename(staging, db)
        )
    } else {
        rename(staging, db)
    };
    // pg_terminate_backend waits for the session to end (with a timeout) since PostgreSQL 14.
    let terminate = if version >= 140000 {
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    } else {
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()"
    };
    let mut attempts = 0;
    loop {
        attempts += 1;
        admin
            .execute(terminate, &[&db])
            .await
            .map_err(query_error("cannot end the sessions on the app database"))?;
        match admin.batch_execute(&sql).await {
            Ok(()) => return Ok(()),
            Err(e) => {
                let _ = admin.batch_execute("ROLLBACK").await;
                // 55006 object_in_use: a session connected again in between.
                let in_use = e.code().is_some_and(|c| c.code() == "55006");
                if !in_use || attempts >= 20 {
                    return Err(format!(
                        "cannot swap the restored database in: {}",
                        pg_error(&e)
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_meta_commands_are_dropped_from_dumps() {
        let dump = "SET x = 1;\n\\restrict abc\nCREATE TABLE t ();\n\\unrestrict abc\n";
        assert_eq!(
            without_meta_commands(dump),
            "SET x = 1;\nCREATE TABLE t ();"
        );
    }

    #[test]
    fn side_names_fit_postgres_identifiers() {
        let long = "d".repeat(63);
        let name = side_name(&long, "__vibedev_restore");
        assert_eq!(name.len(), 63);
        assert!(name.ends_with("__vibedev_restore"));
        assert_eq!(side_name("app", "__x"), "app__x");
    }
}
