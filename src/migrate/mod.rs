//! Drizzle migrations and the app database's lifecycle: the journal, the plan, the runner (one
//! transaction per migration, an advisory lock), SQL seeds, and the template-database reset.

pub mod branch;
pub mod cancel;
pub mod journal;
pub mod plan;
pub mod runner;
pub mod seed;
pub mod sql;
pub mod template;

use std::path::PathBuf;

use crate::config::{Paths, Project};
use std::sync::Arc;
use std::time::Duration;

use crate::pg::{PgTarget, pg_error};

pub use journal::{Journal, JournalError};
pub use plan::{EntryState, Plan};
pub use runner::{Bookkeeping, MigrateOptions, MigrateOutcome};

pub use crate::config::DEFAULT_MIGRATIONS_DIR as DEFAULT_DIR;

/// What is happening, as it happens (the caller decides how to show it).
#[derive(Debug, Clone)]
pub enum Progress {
    /// Another run holds the migration (or reset) lock; this one waits.
    LockWait {
        what: &'static str,
    },
    Applying {
        tag: String,
        statements: usize,
    },
    Applied {
        tag: String,
        elapsed: Duration,
    },
    /// The migration commits or begins transactions itself: it cannot be rolled back as a whole.
    OwnTransactionControl {
        tag: String,
        file: String,
        /// `(line, statement)` of each transaction control statement.
        at: Vec<(usize, String)>,
    },
    /// Extensions the admin account created (or found) in a database before migrating it.
    Extensions {
        database: String,
        names: Vec<String>,
    },
    /// Applied earlier, but the file changed since.
    Drifted {
        tag: String,
    },
    Seeding {
        file: String,
    },
    Seeded {
        file: String,
        elapsed: Duration,
    },
    /// The template database is being (re)built.
    TemplateBuilding {
        name: String,
        replaced: Vec<String>,
    },
    TemplateBuilt {
        name: String,
        elapsed: Duration,
    },
    /// Sessions on the app database that the reset ends.
    Disconnecting {
        sessions: i64,
    },
}

/// The progress callback: cheap, thread-safe, never blocking.
pub type Reporter = Arc<dyn Fn(Progress) + Send + Sync>;

/// A reporter that drops everything.
pub fn silent() -> Reporter {
    Arc::new(|_| {})
}

/// The project's journal; `None` when the folder does not exist and it is not `required`.
pub fn project_journal(paths: &Paths, required: bool) -> Result<Option<Journal>, MigrateError> {
    if !required && !paths.migrations.exists() {
        return Ok(None);
    }
    Ok(Some(Journal::load(&paths.migrations, &paths.root)?))
}

/// The project's `[migrations]` settings as options for the runner.
pub fn project_options(project: &Project, allow_out_of_order: bool) -> MigrateOptions {
    let m = &project.file.migrations;
    MigrateOptions {
        bookkeeping: Bookkeeping::configured(m),
        allow_out_of_order,
        extensions: m.extensions.clone(),
        ..MigrateOptions::default()
    }
}

/// Applies pending migrations as the app user (after creating `[migrations] extensions` as
/// the admin); used by `migrate`, `up` and `watch`.
pub async fn apply(
    target: &PgTarget,
    journal: &Journal,
    options: &MigrateOptions,
    report: &Reporter,
) -> Result<MigrateOutcome, MigrateError> {
    create_extensions(target, &target.app.database, &options.extensions, report).await?;
    let mut client = connect_app(target, &target.app.database).await?;
    runner::migrate(&mut client, journal, options, report).await
}

/// A connection as the app user (migrations and seeds run as the database's owner).
pub async fn connect_app(
    target: &PgTarget,
    database: &str,
) -> Result<tokio_postgres::Client, MigrateError> {
    target
        .connect_app(database)
        .await
        .map_err(|e| MigrateError::Connect {
            user: target.app.user.clone(),
            database: database.to_string(),
            message: pg_error(&e),
        })
}

/// A connection as the admin user, on a database other than the app's (which may be dropped).
pub async fn connect_admin(target: &PgTarget) -> Result<tokio_postgres::Client, MigrateError> {
    target
        .connect_admin()
        .await
        .map_err(|e| MigrateError::Connect {
            user: target.app.admin_user.clone(),
            database: target.maintenance_database().to_string(),
            message: pg_error(&e),
        })
}

/// Creates `[migrations] extensions` in `database` as the admin account (`CREATE EXTENSION IF NOT
/// EXISTS ... CASCADE`), so migrations run by the app role find them, as on Cloud SQL where an
/// administrator enables them.
pub async fn create_extensions(
    target: &PgTarget,
    database: &str,
    names: &[String],
    report: &Reporter,
) -> Result<(), MigrateError> {
    if names.is_empty() {
        return Ok(());
    }
    let admin = crate::pg::connect(
        &target.host,
        target.port,
        &target.app.admin_user,
        &target.app.admin_password,
        database,
    )
    .await
    .map_err(|e| MigrateError::Connect {
        user: target.app.admin_user.clone(),
        database: database.to_string(),
        message: pg_error(&e),
    })?;
    for name in names {
        let sql = format!(
            "CREATE EXTENSION IF NOT EXISTS {} CASCADE",
            crate::pg::quote_ident(name)
        );
        let result = admin.batch_execute(&sql).await;
        // Another run creating it at the same moment: unique_violation / duplicate_object.
        let concurrent = |e: &tokio_postgres::Error| {
            e.code()
                .is_some_and(|c| matches!(c.code(), "23505" | "42710"))
        };
        result
            .or_else(|e| if concurrent(&e) { Ok(()) } else { Err(e) })
            .map_err(|e| MigrateError::Extension {
                name: name.clone(),
                database: database.to_string(),
                message: e
                    .as_db_error()
                    .map_or_else(|| pg_error(&e), |d| d.message().to_string()),
                unavailable: is_unavailable_extension(&e),
            })?;
    }
    report(Progress::Extensions {
        database: database.to_string(),
        names: names.to_vec(),
    });
    Ok(())
}

/// `extension "x" is not available` (15+) / `could not open extension control file` (older).
fn is_unavailable_extension(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        matches!(d.code().code(), "0A000" | "58P01")
            && (d.message().contains("is not available")
                || d.message().contains("extension control file"))
    })
}

/// A statement the server refused, placed in its file.
#[derive(Debug, Clone)]
pub struct StatementError {
    /// `migration` or `seed file`.
    pub kind: &'static str,
    /// The migration's tag or the seed file's name.
    pub name: String,
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub number: usize,
    pub total: usize,
    pub message: String,
    pub detail: Option<String>,
    pub server_hint: Option<String>,
    /// The SQLSTATE code, when the server sent one.
    pub code: Option<String>,
    /// The file's line the error points at, for the caret display.
    pub source_line: Option<String>,
    /// The server gave no position: the caret marks where the failing statement starts.
    pub approximate: bool,
    /// Set when the file controls transactions itself (`COMMIT;`, `BEGIN;`).
    pub own_tx: Option<OwnTransaction>,
}

/// What a file's own transaction control meant for a failure in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnTransaction {
    /// `(line, statement)` of the transaction control statements in the file.
    pub control: Vec<(usize, String)>,
    /// `(line, statement)` of the statements before the failure that were committed and stay.
    pub stayed: Vec<(usize, String)>,
}

impl StatementError {
    fn outcome(&self) -> String {
        let Some(own) = &self.own_tx else {
            return "nothing of it was applied".into();
        };
        let control: Vec<String> = own
            .control
            .iter()
            .map(|(line, sql)| format!("{sql} at line {line}"))
            .collect();
        let mut text = format!(
            "the file controls its own transactions ({}), so it cannot be rolled back as a whole",
            control.join(", ")
        );
        if own.stayed.is_empty() {
            text.push_str("; nothing before the failure was committed, nothing of it stayed");
        } else {
            text.push_str(&format!(
                "; {} before the failure ran outside the rollback and stayed applied:",
                crate::text::count(own.stayed.len(), "statement", "statements")
            ));
            for (line, sql) in &own.stayed {
                text.push_str(&format!("\n    line {line}: {sql}"));
            }
        }
        text
    }
}

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}\n  statement {} of {} in {} {}; {}",
            self.file,
            self.line,
            self.column,
            self.message,
            self.number,
            self.total,
            self.kind,
            self.name,
            self.outcome()
        )?;
        if let Some(detail) = &self.detail {
            write!(f, "\n  detail: {detail}")?;
        }
        if let Some(src) = &self.source_line {
            let width = self.line.to_string().len();
            let pad: String = src
                .chars()
                .take(self.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(
                f,
                "\n  {:>width$} | {src}\n  {:>width$} | {pad}^",
                self.line, ""
            )?;
            if self.approximate {
                write!(
                    f,
                    " approximate: the server gave no position, this is where the failing statement starts"
                )?;
            }
        }
        Ok(())
    }
}

/// Why a migration, seed or reset failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot connect to database {database:?} as {user:?}: {message}")]
    Connect {
        user: String,
        database: String,
        message: String,
    },
    #[error("{context}: {message}")]
    Query { context: String, message: String },
    #[error("{0}")]
    Statement(Box<StatementError>),
    #[error("cannot create extension {name:?} in database {database:?}: {message}")]
    Extension {
        name: String,
        database: String,
        message: String,
        /// The server has no such extension to install.
        unavailable: bool,
    },
    #[error("{} out of order: {}", crate::text::count(entries.len(), "migration is", "migrations are"), entries.join(", "))]
    OutOfOrder { entries: Vec<String> },
    #[error("waited {secs} s for another {what} run to finish")]
    LockTimeout { what: &'static str, secs: u64 },
    #[error("cannot read seed file {path}")]
    SeedRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MigrateError {
    pub fn hint(&self) -> Option<String> {
        match self {
            MigrateError::Journal(e) => e.hint(),
            MigrateError::Connect { .. } => {
                Some("run `vibedev up` to start Postgres and prepare the app database".into())
            }
            MigrateError::Query { .. } => None,
            MigrateError::Extension {
                name, unavailable, ..
            } => Some(if *unavailable {
                format!(
                    "the Postgres image does not ship {name:?}: use an image that does (`[services.postgres] image` in vibedev.toml), or remove it from `[migrations] extensions`"
                )
            } else {
                "check the name in `[migrations] extensions` (`SELECT name FROM pg_available_extensions` lists what the server has)".into()
            }),
            MigrateError::Statement(s) => {
                if let Some(missing) = environment_cause(s) {
                    return Some(missing);
                }
                let next = if s.kind == "seed file" && s.code.as_deref() == Some("23505") {
                    // unique_violation: the usual cause is seeding a database seeded before.
                    format!(
                        "{} already holds this data: `vibedev reset-db` starts from a clean database, or make the seed idempotent (INSERT ... ON CONFLICT DO NOTHING)",
                        s.name
                    )
                } else if s.own_tx.as_ref().is_some_and(|o| !o.stayed.is_empty()) {
                    format!(
                        "fix {}:{}; the statements listed above stay applied and run again with the file: undo them, or make them idempotent (IF NOT EXISTS), then run the command again",
                        s.file, s.line
                    )
                } else {
                    format!(
                        "fix {}:{} and run the command again; what was applied before it stays applied",
                        s.file, s.line
                    )
                };
                Some(match &s.server_hint {
                    Some(h) => format!("{h}\n      then {next}"),
                    None => next,
                })
            }
            MigrateError::OutOfOrder { .. } => Some(
                "these were generated before the newest applied migration (merged from another branch?) and drizzle-orm's migrator would skip them forever: \
                 apply them with `vibedev migrate --allow-out-of-order`, or regenerate them with drizzle-kit so they come last"
                    .into(),
            ),
            MigrateError::LockTimeout { .. } => Some(
                "another vibedev process (`watch`, `migrate`, `reset-db`) is still working on this database; wait for it or stop it".into(),
            ),
            MigrateError::SeedRead { .. } => {
                Some("check the paths under [seed] in vibedev.toml".into())
            }
        }
    }

    pub(crate) fn query(context: impl Into<String>, e: &tokio_postgres::Error) -> MigrateError {
        MigrateError::Query {
            context: context.into(),
            message: pg_error(e),
        }
    }
}

/// A piece of SQL the server refused, with how many of its statements completed first.
pub(crate) struct Failure {
    pub error: tokio_postgres::Error,
    pub completed: usize,
}

/// Runs a piece of SQL (one or more statements) as one simple query, counting the statements that
/// completed so a failure can be placed even when the server gives no position. The statement in
/// flight is cancelled on the server if this future is dropped (Ctrl-C).
pub(crate) async fn run_piece(client: &tokio_postgres::Client, sql: &str) -> Result<(), Failure> {
    use futures_util::StreamExt;
    let guard = cancel::CancelOnDrop::new(client.cancel_token());
    let mut completed = 0;
    let result = async {
        let stream = client.simple_query_raw(sql).await?;
        futures_util::pin_mut!(stream);
        while let Some(message) = stream.next().await {
            if let tokio_postgres::SimpleQueryMessage::CommandComplete(_) = message? {
                completed += 1;
            }
        }
        Ok(())
    }
    .await;
    guard.disarm();
    result.map_err(|error| Failure { error, completed })
}

/// Builds the error for a statement the server refused: file, line and column from the
/// server's position, or else the first line of the statement that failed (approximate).
pub(crate) fn statement_error(
    kind: &'static str,
    name: &str,
    file: &str,
    text: &str,
    statement: &journal::Statement,
    total: usize,
    failure: &Failure,
) -> MigrateError {
    let err = &failure.error;
    let db = err.as_db_error();
    let (offset, approximate) = match db.and_then(|d| d.position()) {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
            (journal::file_offset(statement, *p), false)
        }
        _ => {
            let parts = sql::statements(&statement.sql);
            let start = parts.get(failure.completed).map_or_else(
                || journal::statement_start(statement),
                |s| statement.offset + s.start,
            );
            (start, true)
        }
    };
    let (line, column) = journal::line_column(text, offset);
    MigrateError::Statement(Box::new(StatementError {
        kind,
        name: name.to_string(),
        file: file.to_string(),
        line,
        column,
        number: statement.number,
        total,
        message: db.map_or_else(|| pg_error(err), |d| d.message().to_string()),
        detail: db.and_then(|d| d.detail()).map(str::to_string),
        server_hint: db.and_then(|d| d.hint()).map(str::to_string),
        code: db.map(|d| d.code().code().to_string()),
        source_line: text.lines().nth(line - 1).map(str::to_string),
        approximate,
        own_tx: None,
    }))
}

/// Adds what the file's own transaction control meant to a statement error.
pub(crate) fn with_own_tx(err: MigrateError, own_tx: Option<OwnTransaction>) -> MigrateError {
    match err {
        MigrateError::Statement(mut s) => {
            s.own_tx = own_tx;
            MigrateError::Statement(s)
        }
        other => other,
    }
}

/// Objects that come from an extension, by the names a migration uses them under.
const EXTENSION_OBJECTS: &[(&str, &[&str])] = &[
    (
        "pg_trgm",
        &[
            "gin_trgm_ops",
            "gist_trgm_ops",
            "similarity",
            "word_similarity",
            "show_trgm",
        ],
    ),
    (
        "vector",
        &[
            "vector",
            "halfvec",
            "sparsevec",
            "vector_cosine_ops",
            "vector_l2_ops",
            "vector_ip_ops",
            "hnsw",
            "ivfflat",
        ],
    ),
    ("citext", &["citext"]),
    (
        "pgcrypto",
        &[
            "gen_random_bytes",
            "crypt",
            "gen_salt",
            "digest",
            "hmac",
            "pgp_sym_encrypt",
            "pgp_sym_decrypt",
        ],
    ),
    (
        "uuid-ossp",
        &["uuid_generate_v1", "uuid_generate_v4", "uuid_nil"],
    ),
    ("hstore", &["hstore"]),
    ("ltree", &["ltree", "lquery"]),
    (
        "postgis",
        &[
            "geometry",
            "geography",
            "st_distance",
            "st_makepoint",
            "gist_geometry_ops_2d",
        ],
    ),
    ("btree_gin", &["int4_ops"]),
    ("unaccent", &["unaccent"]),
    ("fuzzystrmatch", &["levenshtein", "soundex", "metaphone"]),
];

/// What is missing when an edit of the migration cannot fix its error: an extension the server
/// lacks or the database has not installed, or a privilege the app role does not have.
fn environment_cause(s: &StatementError) -> Option<String> {
    let code = s.code.as_deref()?;
    let quoted = quoted_names(&s.message);
    let config = |ext: &str| {
        format!(
            "add it to vibedev.toml as `[migrations] extensions = [\"{ext}\"]`: the admin account then creates it in the app database (and the reset templates) before migrating, as an administrator enables it on Cloud SQL"
        )
    };
    match code {
        // `extension "x" is not available` (feature_not_supported on 15, undefined_file before).
        "0A000" | "58P01"
            if s.message.starts_with("extension ")
                || s.message.contains("extension control file") =>
        {
            let ext = quoted.first().cloned().unwrap_or_default();
            Some(format!(
                "this is not an error in {}: the Postgres server has no extension {ext:?} to install; use an image that ships it (`[services.postgres] image` in vibedev.toml)",
                s.file
            ))
        }
        // insufficient_privilege
        "42501" => {
            if s.message
                .starts_with("permission denied to create extension")
            {
                let ext = quoted.first().cloned().unwrap_or_default();
                Some(format!(
                    "this is not an error in {}: migrations run as the app role, which may not create extension {ext:?} (it needs a superuser); {}",
                    s.file,
                    config(&ext)
                ))
            } else {
                Some(format!(
                    "this is not an error in {}: migrations run as the app role, which owns the app database but is not a superuser, and lacks this privilege; \
                     create what needs it as the admin account (extensions: `[migrations] extensions` in vibedev.toml), or grant the app role the privilege",
                    s.file
                ))
            }
        }
        // undefined_object, undefined_function: an extension's type, operator class or function.
        "42704" | "42883" => {
            // `type "vector" does not exist`; `function similarity(text, text) does not exist`.
            let name = quoted
                .first()
                .map(String::as_str)
                .or_else(|| s.message.strip_prefix("function "))?;
            let bare = name
                .split('(')
                .next()
                .unwrap_or(name)
                .rsplit('.')
                .next()
                .unwrap_or(name)
                .to_ascii_lowercase();
            let (ext, _) = EXTENSION_OBJECTS
                .iter()
                .find(|(_, objects)| objects.contains(&bare.as_str()))?;
            Some(format!(
                "{bare} comes from the extension {ext:?}, which is not installed in this database; {}",
                config(ext)
            ))
        }
        _ => None,
    }
}

/// The `"..."` names in a server message, in order.
fn quoted_names(message: &str) -> Vec<String> {
    message
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// An advisory lock key for a purpose and a name (both Postgres-wide per database).
pub(crate) fn lock_key(purpose: &str, name: &str) -> i64 {
    let digest = journal::sha256_hex(format!("vibedev:{purpose}:{name}").as_bytes());
    let mut bytes = [0u8; 8];
    if let Ok(raw) = hex::decode(&digest[..16]) {
        bytes.copy_from_slice(&raw);
    }
    i64::from_be_bytes(bytes)
}

/// Takes a session-level advisory lock, polling so the wait has a deadline.
pub(crate) async fn advisory_lock(
    client: &tokio_postgres::Client,
    key: i64,
    what: &'static str,
    timeout: Duration,
    report: &Reporter,
) -> Result<(), MigrateError> {
    let deadline = std::time::Instant::now() + timeout;
    let mut backoff = crate::ready::Backoff::default();
    let mut told = false;
    loop {
        let row = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| MigrateError::query("cannot take the migration lock", &e))?;
        if row.get::<_, bool>(0) {
            return Ok(());
        }
        if !told {
            report(Progress::LockWait { what });
            told = true;
        }
        let delay = backoff.next_delay();
        if std::time::Instant::now() + delay >= deadline {
            return Err(MigrateError::LockTimeout {
                what,
                secs: timeout.as_secs(),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

pub(crate) async fn advisory_unlock(client: &tokio_postgres::Client, key: i64) {
    // Closing the session releases it too; this only makes it prompt.
    let _ = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_error_points_at_the_column() {
        let e = StatementError {
            kind: "migration",
            name: "0003_x".into(),
            file: "drizzle/0003_x.sql".into(),
            line: 12,
            column: 5,
            number: 2,
            total: 3,
            message: "syntax error at or near \"TABLEE\"".into(),
            detail: None,
            server_hint: None,
            code: None,
            source_line: Some("\tALTER TABLEE x".into()),
            approximate: false,
            own_tx: None,
        };
        let text = e.to_string();
        assert!(
            text.starts_with("drizzle/0003_x.sql:12:5: syntax error"),
            "{text}"
        );
        assert!(
            text.contains("statement 2 of 3 in migration 0003_x"),
            "{text}"
        );
        assert!(
            text.ends_with("  12 | \tALTER TABLEE x\n     | \t   ^"),
            "{text:?}"
        );
    }

    fn refused(code: &str, message: &str) -> StatementError {
        StatementError {
            kind: "migration",
            name: "0003_x".into(),
            file: "drizzle/0003_x.sql".into(),
            line: 1,
            column: 1,
            number: 1,
            total: 1,
            message: message.into(),
            detail: None,
            server_hint: None,
            code: Some(code.into()),
            source_line: None,
            approximate: false,
            own_tx: None,
        }
    }

    #[test]
    fn errors_from_the_environment_name_what_is_missing() {
        let cause = |code: &str, message: &str| environment_cause(&refused(code, message));
        let trgm = cause(
            "42704",
            "operator class \"gin_trgm_ops\" does not exist for access method \"gin\"",
        )
        .unwrap();
        assert!(trgm.contains("extension \"pg_trgm\""), "{trgm}");
        assert!(trgm.contains("extensions = [\"pg_trgm\"]"), "{trgm}");
        let func = cause(
            "42883",
            "function public.similarity(text, text) does not exist",
        )
        .unwrap();
        assert!(func.contains("\"pg_trgm\""), "{func}");
        let denied = cause(
            "42501",
            "permission denied to create extension \"postgres_fdw\"",
        )
        .unwrap();
        assert!(denied.contains("needs a superuser"), "{denied}");
        let absent = cause("0A000", "extension \"vector\" is not available").unwrap();
        assert!(absent.contains("no extension \"vector\""), "{absent}");
        // A typo in the file is the file's to fix.
        assert_eq!(cause("42704", "type \"integr\" does not exist"), None);
        assert_eq!(cause("42601", "syntax error at or near \";\""), None);
    }

    #[test]
    fn lock_keys_are_pinned_and_depend_on_each_input() {
        // Reference values: the first 8 bytes, big-endian, of SHA-256("vibedev:{purpose}:{name}"),
        // computed with Python's hashlib. Other runs (other vibedev versions) must agree on them.
        assert_eq!(
            lock_key("migrate", "\"drizzle\".\"__drizzle_migrations\""),
            449269480631968395
        );
        assert_eq!(lock_key("migrate", "a"), -438400532550877820);
        // Another name, another key.
        assert_eq!(lock_key("migrate", "b"), -818378522847204254);
        // Another purpose, another key.
        assert_eq!(lock_key("reset", "a"), -4102171204034554118);
    }
}
