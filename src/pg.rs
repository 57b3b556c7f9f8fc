//! Postgres as a client sees it: the accounts of a service, connections with a deadline, error
//! text with the server's words, quoting and `CREATE DATABASE`. Shared by readiness, migrations,
//! seeds and resets; knows nothing of Docker or the stack.

use std::time::Duration;

/// One connection attempt's budget: a server that hangs must not eat a caller's deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The app database and role vibedev prepares on a Postgres service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresApp {
    pub database: String,
    pub user: String,
    pub password: String,
    pub admin_user: String,
    pub admin_password: String,
    pub admin_database: String,
    /// Set when `database` is a git branch's own database rather than the app database.
    pub branch: Option<BranchOf>,
}

/// A git branch's own database (`[branches] database = true`), beside the app database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchOf {
    /// The git branch, as git names it (`detached at <commit>` on a detached HEAD).
    pub branch: String,
    /// The app database (the default branch's), which readiness and preparation use and a new
    /// branch database is copied from.
    pub default_database: String,
}

impl PostgresApp {
    /// The database the service is prepared with and probed on: the app database, also when a
    /// branch has its own (that one is made from it once the server is ready).
    pub fn prepared_database(&self) -> &str {
        self.branch
            .as_ref()
            .map_or(&self.database, |b| &b.default_database)
    }
}

/// Connects to Postgres and runs `SELECT 1`.
pub async fn select1(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<(), tokio_postgres::Error> {
    let client = connect(host, port, user, password, database).await?;
    client.simple_query("SELECT 1").await?;
    Ok(())
}

/// A Postgres connection whose driver task runs in the background.
pub async fn connect(
    host: &str,
    port: u16,
    user: &str,
    password: &str,
    database: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port)
        .user(user)
        .password(password)
        .dbname(database)
        .application_name("vibedev")
        .connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// True when a Postgres error came from a server that is up (as opposed to no connection, or a
/// server still starting): authentication failures, missing databases and roles.
pub fn server_answered(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        Some(code) => {
            let c = code.code();
            // 57P03: the database system is starting up / shutting down.
            !c.starts_with("57")
        }
        None => false,
    }
}

/// Where the app's Postgres is reached from the host, with the app and admin credentials.
#[derive(Debug, Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub app: PostgresApp,
}

impl PgTarget {
    /// A connection as the app user.
    pub async fn connect_app(
        &self,
        database: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(
            &self.host,
            self.port,
            &self.app.user,
            &self.app.password,
            database,
        )
        .await
    }

    /// A connection as the admin user on [`PgTarget::maintenance_database`].
    pub async fn connect_admin(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        connect(
            &self.host,
            self.port,
            &self.app.admin_user,
            &self.app.admin_password,
            self.maintenance_database(),
        )
        .await
    }

    /// The admin's database, unless that is the app database (which a reset drops) or the
    /// one a branch's database is copied from (a copy needs its source to itself).
    pub fn maintenance_database(&self) -> &str {
        if self.app.admin_database == self.app.database
            || self.app.admin_database == self.app.prepared_database()
        {
            "postgres"
        } else {
            &self.app.admin_database
        }
    }
}

pub fn is_duplicate(e: &tokio_postgres::Error) -> bool {
    // 42710 duplicate_object, 42P04 duplicate_database, 23505 unique_violation (catalog race).
    e.code()
        .is_some_and(|c| matches!(c.code(), "42710" | "42P04" | "23505"))
}

/// A Postgres error with the server's message when there is one.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut msg = e.to_string();
            if let Some(src) = std::error::Error::source(e) {
                msg.push_str(": ");
                msg.push_str(&src.to_string());
            }
            msg
        }
    }
}

/// The server's version as a number (150004 for 15.4).
pub async fn server_version(client: &tokio_postgres::Client) -> Result<i32, tokio_postgres::Error> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(row.get(0))
}

/// `CREATE DATABASE name [TEMPLATE t] OWNER owner`, copying the template's files where the server
/// can choose: PostgreSQL 15 copies a template block by block through the WAL by default, which
/// for a small template (template1 included) is several times slower than copying its files, the
/// only way before 15 (on a fresh cluster: ~11 ms against 20-110 ms).
pub fn create_database_sql(
    name: &str,
    template: Option<&str>,
    owner: &str,
    server_version: i32,
) -> String {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(t) = template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
    }
    sql.push_str(&format!(" OWNER {}", quote_ident(owner)));
    if server_version >= 150000 {
        sql.push_str(" STRATEGY FILE_COPY");
    }
    sql
}

/// `CREATE DATABASE name TEMPLATE template0 OWNER owner`, an empty database: from PostgreSQL 15
/// through the WAL, as template0 is small, so no checkpoint flushes every dirty page of the
/// server first (as copying files would).
pub fn create_empty_database_sql(name: &str, owner: &str, server_version: i32) -> String {
    let mut sql = format!(
        "CREATE DATABASE {} TEMPLATE template0 OWNER {}",
        quote_ident(name),
        quote_ident(owner)
    );
    if server_version >= 150000 {
        sql.push_str(" STRATEGY WAL_LOG");
    }
    sql
}

/// The copy of `database` the newest snapshot save keeps in the server for a fast restore.
pub fn snapshot_copy_name(database: &str) -> String {
    let suffix = "__vibedev_kept";
    let mut base = database.to_string();
    while base.len() + suffix.len() > 63 {
        base.pop();
    }
    format!("{base}{suffix}")
}

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'text'` with embedded quotes doubled (standard_conforming_strings is on since 9.1).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn create_database_copies_files_from_15_on() {
        assert_eq!(
            create_database_sql("app", None, "u\"x", 150004),
            "CREATE DATABASE \"app\" OWNER \"u\"\"x\" STRATEGY FILE_COPY"
        );
        assert_eq!(
            create_database_sql("new", Some("tpl"), "u", 140010),
            "CREATE DATABASE \"new\" TEMPLATE \"tpl\" OWNER \"u\""
        );
    }
}
