//! Postgres: the app role and database vibedev prepares (idempotent, safe to run concurrently),
//! ready when the app user can run `SELECT 1` on the app database; `DATABASE_URL`; SQL seeds;
//! snapshots of the app database (schema by the image's own `pg_dump`, rows by binary `COPY`
//! over parallel connections sharing one exported snapshot; restored beside, then swapped in).

use std::collections::BTreeMap;

use futures_util::future::BoxFuture;

use super::seed::SeedEvent;
use super::{
    CACHE_MOUNT, Counted, ImageFacts, Launch, LaunchInput, SeedError, SeedMode, SeedPaths,
    SeedReporter, Seeded, ServiceKind, Settings, SettingsInput, SnapshotIo, Stage, Store, WaitFor,
};
use crate::compose::XVibedev;

pub mod browse;
mod snapshot;
use crate::migrate::seed::{self as sql_seed, SeedFile};
use crate::pg::{
    self, PostgresApp, create_database_sql, is_duplicate, pg_error, quote_ident, quote_literal,
    server_version,
};

pub const DEFAULT_APP_DATABASE: &str = "vibesdk";
pub const DEFAULT_APP_USER: &str = "vibesdk_app";
pub const DEFAULT_APP_PASSWORD: &str = "vibesdk-local";

/// PostgreSQL (the app's Cloud SQL database).
pub struct Postgres;

impl ServiceKind for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["postgresql"]
    }

    fn settings(&self, input: &SettingsInput<'_>) -> Result<Settings, String> {
        Ok(Settings {
            postgres: Some(accounts(input.env, input.x)?),
            ..Settings::default()
        })
    }

    /// First when its volume is new (initdb: the longest way to ready), else with the others.
    fn start_rank(&self, fresh_data: bool) -> u8 {
        if fresh_data { 0 } else { 1 }
    }

    fn wait(&self) -> WaitFor {
        WaitFor::Postgres { query: "SELECT 1" }
    }

    /// The official image's entrypoint runs initdb on an empty volume, which syncs every file
    /// it writes to disk: `POSTGRES_INITDB_ARGS=--no-sync` (its documented way to pass initdb
    /// options) makes the same cluster without waiting for the disk, 2-3 s less on a busy
    /// machine. Only the first start of a volume reads it.
    ///
    /// And the first init of an empty volume (initdb, a temporary server, the database, a
    /// restart) is done once per image and settings: the cluster it leaves is kept in vibedev's
    /// cache volume, and later first starts with the same image and settings (a new checkout,
    /// `down --volumes`) begin from a copy of it, which the entrypoint then finds initialized
    /// ([`CLUSTER_SCRIPT`]).
    fn launch(&self, image: &ImageFacts, service: &LaunchInput<'_>) -> Option<Launch> {
        let entrypoint = service.entrypoint.unwrap_or(&image.entrypoint);
        if entrypoint != ["docker-entrypoint.sh"]
            || service.env.contains_key("POSTGRES_INITDB_ARGS_FILE")
        {
            return None;
        }
        let args = service
            .env
            .get("POSTGRES_INITDB_ARGS")
            .map(String::as_str)
            .unwrap_or("");
        let mut launch = Launch::default();
        if !args
            .split_whitespace()
            .any(|a| a == "--no-sync" || a == "-N")
        {
            let args = if args.trim().is_empty() {
                "--no-sync".to_string()
            } else {
                format!("{args} --no-sync")
            };
            launch.env.push(("POSTGRES_INITDB_ARGS".into(), args));
        }
        let command = service.command.unwrap_or(&image.cmd);
        if let Some(key) = cluster_key(image, service, command, &launch.env) {
            let mut words = vec![
                "/bin/sh".to_string(),
                "-c".to_string(),
                CLUSTER_SCRIPT
                    .replace("{MOUNT}", CACHE_MOUNT)
                    .replace("{DIR}", CLUSTER_DIR)
                    .replace("{KEY}", &key),
                "vibedev-postgres".to_string(),
            ];
            words.extend(entrypoint.iter().cloned());
            words.extend(command.iter().cloned());
            let command = words.split_off(2);
            launch.entrypoint = Some(words);
            launch.command = Some(command);
            launch.cache_target = Some(CACHE_MOUNT);
        }
        (launch != Launch::default()).then_some(launch)
    }

    fn launch_cache(
        &self,
        image: &ImageFacts,
        service: &LaunchInput<'_>,
    ) -> Option<(String, &'static str)> {
        let launch = self.launch(image, service)?;
        launch.cache_target?;
        let command = service.command.unwrap_or(&image.cmd);
        let key = cluster_key(image, service, command, &launch.env)?;
        Some((
            format!("{CACHE_MOUNT}/{CLUSTER_DIR}/{key}.tar"),
            "a first start on an empty volume runs initdb, a temporary server and a restart (about 1-2 s more on a small machine); the initialized cluster is kept once that first init is done",
        ))
    }

    fn prepare<'a>(
        &'a self,
        store: &'a Store<'a>,
        stage: Stage,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            match (&store.settings.postgres, stage) {
                (Some(app), Stage::Refused) => {
                    create_role_and_database(&store.host, store.port, app).await
                }
                _ => Ok(Vec::new()),
            }
        })
    }

    fn url(&self, store: &Store<'_>, with_password: bool) -> String {
        let Some(app) = &store.settings.postgres else {
            return format!("postgres://{}:{}", store.url_host(), store.port);
        };
        let auth = if with_password {
            format!(
                "{}:{}",
                super::encode(&app.user),
                super::encode(&app.password)
            )
        } else {
            super::encode(&app.user)
        };
        format!(
            "postgres://{auth}@{}:{}/{}",
            store.url_host(),
            store.port,
            super::encode(&app.database)
        )
    }

    fn connection_env(&self, store: &Store<'_>) -> Vec<(String, String)> {
        vec![("DATABASE_URL".to_string(), self.url(store, true))]
    }

    fn holds_app_database(&self) -> bool {
        true
    }

    fn seed_name(&self) -> Option<&'static str> {
        Some("sql")
    }

    fn seed_title(&self) -> &'static str {
        "SQL"
    }

    fn seed_setting(&self) -> &'static str {
        "sql = [\"seed/data.sql\"]"
    }

    fn seed_configured(&self, seeds: &SeedPaths) -> bool {
        !seeds.sql.is_empty()
    }

    /// Runs the `[seed] sql` files as the app user, in one transaction each; with `IfEmpty`,
    /// only into a database without tables (migrations must not have run yet: the caller
    /// decides that with [`database_is_empty`] before migrating).
    fn seed<'a>(
        &'a self,
        store: &'a Store<'a>,
        seeds: &'a SeedPaths,
        _mode: SeedMode,
        report: &'a SeedReporter,
    ) -> BoxFuture<'a, Result<Option<Seeded>, SeedError>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Ok(None);
            };
            if seeds.sql.is_empty() {
                return Ok(None);
            }
            let files = SeedFile::load_all(&seeds.sql, &seeds.root)?;
            let mut client = crate::migrate::connect_app(&target, &target.app.database).await?;
            let report = report.clone();
            let progress: crate::migrate::Reporter =
                std::sync::Arc::new(move |p| report(SeedEvent::Sql(p)));
            sql_seed::apply(&mut client, &files, &progress).await?;
            Ok(Some(Seeded::SqlFiles { count: files.len() }))
        })
    }

    fn snapshot_save<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Option<Counted>, String>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Ok(None);
            };
            snapshot::save(&target, io).await.map(Some)
        })
    }

    fn snapshot_restore<'a>(
        &'a self,
        store: &'a Store<'a>,
        io: &'a SnapshotIo<'a>,
    ) -> BoxFuture<'a, Result<Counted, String>> {
        Box::pin(async move {
            let Some(target) = store.postgres() else {
                return Err("the service has no app database".into());
            };
            snapshot::restore(&target, io).await
        })
    }

    /// A database swapped in one transaction.
    fn snapshot_restore_in_one_step(&self) -> bool {
        true
    }

    fn snapshot_abandon<'a>(&'a self, store: &'a Store<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(target) = store.postgres() {
                snapshot::abandon(&target).await;
            }
        })
    }
}

/// The folder of the kept initialized clusters in vibedev's cache volume.
const CLUSTER_DIR: &str = "postgres";

/// What names a kept initialized cluster: the image's id, and a digest of everything the first
/// init reads (the image, its entrypoint and command, the whole environment the container gets,
/// the password included), so that no other image or settings ever start from it and nothing
/// secret shows in the name. `None` (no cluster is kept) when the init reads what the digest
/// cannot cover: a `*_FILE` variable (its file), a separate WAL folder, or init scripts mounted
/// into `/docker-entrypoint-initdb.d` (the script also checks the image's own folder is empty).
fn cluster_key(
    image: &ImageFacts,
    service: &LaunchInput<'_>,
    command: &[String],
    added: &[(String, String)],
) -> Option<String> {
    use sha2::{Digest, Sha256};
    if service
        .env
        .keys()
        .any(|k| k.ends_with("_FILE") || k == "POSTGRES_INITDB_WALDIR")
        || service.mount_targets.iter().any(|t| {
            let t = t.trim_end_matches('/');
            t == "/docker-entrypoint-initdb.d" || t.starts_with("/docker-entrypoint-initdb.d/")
        })
    {
        return None;
    }
    let hex = image.id.rsplit(':').next()?;
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut env = service.env.clone();
    env.extend(added.iter().cloned());
    let mut digest = Sha256::new();
    let mut word = |w: &str| {
        digest.update((w.len() as u64).to_le_bytes());
        digest.update(w.as_bytes());
    };
    word(&image.id);
    for w in service.entrypoint.unwrap_or(&image.entrypoint) {
        word(w);
    }
    word("\0command");
    for w in command {
        word(w);
    }
    word("\0env");
    for (k, v) in &env {
        word(k);
        word(v);
    }
    let settings = hex::encode(digest.finalize());
    Some(format!("{}-{}", &hex[..hex.len().min(12)], &settings[..32]))
}

/// The container's `sh -c` script around the image's entrypoint (its arguments: the entrypoint
/// and command). On an empty data folder (as root, with no init scripts in the image): when the
/// kept cluster for these settings exists, it is unpacked there, and the entrypoint finds a
/// database and starts it (a damaged copy is deleted with a warning and the init runs as usual);
/// when it does not (or no more), a `postgres` first in `PATH` keeps the folder as the entrypoint left it,
/// initialized and stopped, just before it starts the server (pg_ctl and initdb run their own
/// `postgres`, not this one); of one image's kept clusters the four newest stay.
const CLUSTER_SCRIPT: &str = r#"d="${PGDATA:-/var/lib/postgresql/data}"; c={MOUNT}/{DIR}; a="$c/{KEY}.tar"
if [ "$(id -u)" = 0 ] && [ ! -e "$d/PG_VERSION" ] && [ -z "$(ls -A "$d" 2>/dev/null)" ] &&
  [ -z "$(ls -A /docker-entrypoint-initdb.d 2>/dev/null)" ] &&
  mkdir -p "$c" 2>/dev/null && chmod 1777 "$c" 2>/dev/null; then
  if [ -s "$a" ]; then
    mkdir -p "$d"
    if tar -xf "$a" -C "$d" 2>/dev/null && [ -s "$d/PG_VERSION" ]; then
      echo "vibedev: the data folder starts as a copy of the cluster this image's first init made with the same settings ($a)" >&2
    else
      find "$d" -mindepth 1 -delete 2>/dev/null; rm -f "$a"
      echo "vibedev: warning: the kept initialized cluster $a is unusable: deleted; initializing as usual" >&2
    fi
  fi
  if [ ! -e "$d/PG_VERSION" ] && s=/tmp/vibedev-postgres && mkdir -p "$s" && cat >"$s/postgres" <<'EOF' && chmod 755 "$s/postgres"; then
#!/bin/sh
PATH="${PATH#/tmp/vibedev-postgres:}"; a="$VIBEDEV_CLUSTER"; unset VIBEDEV_CLUSTER
d="${PGDATA:-/var/lib/postgresql/data}"
if [ -n "$a" ] && [ -s "$d/PG_VERSION" ] && [ ! -e "$d/postmaster.pid" ] && [ ! -e "$a" ]; then
  if (umask 077 && tar -cf "$a.$$" -C "$d" .) 2>/dev/null && mv -f "$a.$$" "$a"; then
    echo "vibedev: kept the initialized cluster for later first starts with the same settings ($a)" >&2
    ls -t "${a%-*}"-*.tar 2>/dev/null | tail -n +5 | while read -r f; do rm -f "$f"; done
  else
    rm -f "$a.$$"
  fi
fi
exec postgres "$@"
EOF
    export VIBEDEV_CLUSTER="$a" PATH="$s:$PATH"
  fi
fi
exec "$@"
"#;

/// The Postgres accounts of a service. The compose file's values win: a `POSTGRES_USER` other
/// than the image's default `postgres` is the app's own role (with `POSTGRES_PASSWORD` and
/// `POSTGRES_DB`), unless `x-vibedev` names another; vibedev's defaults fill what neither says.
/// When the app role is the admin role, its password is the compose file's (never changed).
fn accounts(env: &BTreeMap<String, String>, x: &XVibedev) -> Result<PostgresApp, String> {
    let admin_user = env
        .get("POSTGRES_USER")
        .filter(|u| !u.is_empty())
        .cloned()
        .unwrap_or_else(|| "postgres".into());
    let admin_password = env.get("POSTGRES_PASSWORD").cloned().unwrap_or_default();
    let admin_database = env
        .get("POSTGRES_DB")
        .filter(|d| !d.is_empty())
        .cloned()
        .unwrap_or_else(|| admin_user.clone());
    let own_role = admin_user != "postgres";
    let user = x.user.clone().unwrap_or_else(|| {
        if own_role {
            admin_user.clone()
        } else {
            DEFAULT_APP_USER.into()
        }
    });
    let password = if user == admin_user {
        if x.password.as_ref().is_some_and(|p| *p != admin_password) {
            return Err(format!(
                "x-vibedev password differs from POSTGRES_PASSWORD, but both are for role {user:?}: drop one of them"
            ));
        }
        admin_password.clone()
    } else {
        x.password
            .clone()
            .unwrap_or_else(|| DEFAULT_APP_PASSWORD.into())
    };
    let database = x.database.clone().unwrap_or_else(|| {
        if own_role {
            admin_database.clone()
        } else {
            DEFAULT_APP_DATABASE.into()
        }
    });
    Ok(PostgresApp {
        database,
        user,
        password,
        admin_user,
        admin_password,
        admin_database,
        branch: None,
    })
}

/// Creates (or repairs) the app role and database as the admin user.
async fn create_role_and_database(
    host: &str,
    port: u16,
    app: &PostgresApp,
) -> Result<Vec<String>, String> {
    let admin = pg::connect(
        host,
        port,
        &app.admin_user,
        &app.admin_password,
        &app.admin_database,
    )
    .await
    .map_err(|e| format!("as admin user {:?}: {}", app.admin_user, pg_error(&e)))?;
    let mut done = Vec::new();
    // The app role is the admin role: it exists and its password is the compose file's.
    if app.user == app.admin_user {
        return create_database(&admin, app, done).await;
    }
    let role_exists = !admin
        .query("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&app.user])
        .await
        .map_err(|e| pg_error(&e))?
        .is_empty();
    let user = quote_ident(&app.user);
    let password = quote_literal(&app.password);
    let sql = if role_exists {
        format!("ALTER ROLE {user} WITH LOGIN PASSWORD {password}")
    } else {
        format!("CREATE ROLE {user} WITH LOGIN PASSWORD {password}")
    };
    match admin.batch_execute(&sql).await {
        Ok(()) if !role_exists => done.push(format!("role {}", app.user)),
        Ok(()) => {}
        // Created by a concurrent run between the check and the create.
        Err(e) if is_duplicate(&e) => {}
        Err(e) => {
            return Err(format!(
                "cannot create role {:?}: {}",
                app.user,
                pg_error(&e)
            ));
        }
    }
    create_database(&admin, app, done).await
}

/// Creates the app database, owned by the app role, unless it exists.
async fn create_database(
    admin: &tokio_postgres::Client,
    app: &PostgresApp,
    mut done: Vec<String>,
) -> Result<Vec<String>, String> {
    let database = app.prepared_database();
    let db_exists = !admin
        .query("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| pg_error(&e))?
        .is_empty();
    if !db_exists {
        let version = server_version(admin).await.map_err(|e| pg_error(&e))?;
        let sql = create_database_sql(database, None, &app.user, version);
        match admin.batch_execute(&sql).await {
            Ok(()) => done.push(format!("database {database}")),
            Err(e) if is_duplicate(&e) => {}
            Err(e) => {
                return Err(format!(
                    "cannot create database {database:?}: {}",
                    pg_error(&e)
                ));
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> ImageFacts {
        ImageFacts {
            id: "sha256:aa00112233445566".into(),
            entrypoint: vec!["docker-entrypoint.sh".into()],
            cmd: vec!["postgres".into()],
        }
    }

    fn input<'a>(
        env: &'a BTreeMap<String, String>,
        entrypoint: Option<&'a [String]>,
        mount_targets: Vec<&'a str>,
    ) -> LaunchInput<'a> {
        LaunchInput {
            entrypoint,
            command: None,
            env,
            mount_targets,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The kept cluster's file name in the launch script.
    fn cluster_name(image: &ImageFacts, env: &BTreeMap<String, String>) -> Option<String> {
        let launch = Postgres.launch(image, &input(env, None, Vec::new()))?;
        let script = launch.command?.first()?.clone();
        let start = script.find("a=\"$c/")? + 6;
        let end = start + script[start..].find(".tar\"")?;
        Some(script[start..end].to_string())
    }

    #[test]
    fn initdb_skips_syncing_on_the_official_entrypoint_only() {
        let image = image();
        let launch = |env: &BTreeMap<String, String>, entrypoint: Option<&[String]>| {
            Postgres.launch(&image, &input(env, entrypoint, Vec::new()))
        };
        let mut env = BTreeMap::new();
        assert_eq!(
            launch(&env, None).unwrap().env,
            [("POSTGRES_INITDB_ARGS".to_string(), "--no-sync".to_string())]
        );
        // the user's own initdb options are kept
        env.insert("POSTGRES_INITDB_ARGS".into(), "--locale=C".into());
        assert_eq!(launch(&env, None).unwrap().env[0].1, "--locale=C --no-sync");
        env.insert("POSTGRES_INITDB_ARGS".into(), "-N".into());
        assert_eq!(launch(&env, None).unwrap().env, []);
        env.clear();
        env.insert("POSTGRES_INITDB_ARGS_FILE".into(), "/run/secrets/a".into());
        assert_eq!(launch(&env, None), None);
        env.clear();
        let own = ["/my-entrypoint.sh".to_string()];
        assert_eq!(launch(&env, Some(&own)), None);
    }

    #[test]
    fn the_entrypoint_runs_inside_the_cluster_script_with_the_cache_volume() {
        let env = env(&[("POSTGRES_PASSWORD", "s3cret")]);
        let cmd = ["postgres".to_string(), "-c".into(), "fsync=off".into()];
        let launch = Postgres
            .launch(
                &image(),
                &LaunchInput {
                    command: Some(&cmd),
                    ..input(&env, None, vec!["/var/lib/postgresql/data"])
                },
            )
            .unwrap();
        assert_eq!(launch.entrypoint.unwrap(), ["/bin/sh", "-c"]);
        let command = launch.command.unwrap();
        let script = &command[0];
        assert!(
            script.contains("c=/vibedev-cache/postgres; a=\"$c/aa0011223344-"),
            "{script}"
        );
        // the image's entrypoint and the service's command follow the script's name
        assert_eq!(
            command[1..],
            [
                "vibedev-postgres",
                "docker-entrypoint.sh",
                "postgres",
                "-c",
                "fsync=off"
            ]
        );
        assert_eq!(launch.cache_target, Some(CACHE_MOUNT));
        assert!(!script.contains("s3cret"));
        let (path, _) = Postgres
            .launch_cache(&image(), &input(&env, None, Vec::new()))
            .unwrap();
        let name = cluster_name(&image(), &env).unwrap();
        assert_eq!(path, format!("/vibedev-cache/postgres/{name}.tar"));
    }

    #[test]
    fn every_setting_the_init_reads_names_another_cluster() {
        let base = env(&[
            ("POSTGRES_USER", "postgres"),
            ("POSTGRES_PASSWORD", "postgres"),
            ("POSTGRES_DB", "postgres"),
        ]);
        let name = cluster_name(&image(), &base).unwrap();
        assert_eq!(cluster_name(&image(), &base.clone()), Some(name.clone()));
        let mut names = vec![name];
        for (k, v) in [
            ("POSTGRES_PASSWORD", "other"),
            ("POSTGRES_USER", "app"),
            ("POSTGRES_DB", "app"),
            ("POSTGRES_INITDB_ARGS", "--locale=C"),
            ("POSTGRES_INITDB_ARGS", "--encoding=LATIN1 --locale=C"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_COLLATE", "C"),
            ("POSTGRES_HOST_AUTH_METHOD", "md5"),
            ("TZ", "Europe/Paris"),
        ] {
            let mut env = base.clone();
            env.insert(k.into(), v.into());
            names.push(cluster_name(&image(), &env).unwrap());
        }
        let other_image = ImageFacts {
            id: "sha256:bb00112233445566".into(),
            ..image()
        };
        names.push(cluster_name(&other_image, &base).unwrap());
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "{names:?}");
    }

    #[test]
    fn no_cluster_is_kept_when_the_init_reads_what_the_name_cannot_cover() {
        for extra in [
            ("POSTGRES_PASSWORD_FILE", "/run/secrets/pw"),
            ("POSTGRES_INITDB_WALDIR", "/wal"),
        ] {
            let env = env(&[extra]);
            let launch = Postgres
                .launch(&image(), &input(&env, None, Vec::new()))
                .unwrap();
            assert_eq!(launch.cache_target, None, "{extra:?}");
            assert_eq!(launch.entrypoint, None, "{extra:?}");
        }
        let env = BTreeMap::new();
        for target in [
            "/docker-entrypoint-initdb.d",
            "/docker-entrypoint-initdb.d/",
            "/docker-entrypoint-initdb.d/01.sql",
        ] {
            let launch = Postgres
                .launch(&image(), &input(&env, None, vec![target]))
                .unwrap();
            assert_eq!(launch.cache_target, None, "{target}");
            assert_eq!(
                Postgres.launch_cache(&image(), &input(&env, None, vec![target])),
                None
            );
        }
    }
}
