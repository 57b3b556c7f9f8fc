//! The official-like images (`scripts/test-env --official`): Google's emulators image started
//! through the emulator's JVM directly, with a class-data archive per image id in vibedev's cache
//! volume: made on the first stop, used from then on, made anew for another image, and dropped
//! with a warning when it is damaged. The Postgres image's first init kept per image and
//! settings: later first starts with the same ones begin from a copy (the same databases,
//! encodings, locales, roles and password checks), other settings or another image never do.
//! Run with `VIBEDEV_TEST_IMAGES=official scripts/test -E 'binary(stack_official)' --run-ignored all`.

mod support;

use support::{TestProject, docker, docker_ok, unique_name};

fn official_firestore() -> String {
    std::env::var("VIBEDEV_TEST_OFFICIAL_FIRESTORE_IMAGE")
        .expect("VIBEDEV_TEST_OFFICIAL_FIRESTORE_IMAGE: run scripts/test-env --official (VIBEDEV_TEST_IMAGES=official scripts/test)")
}

fn official_postgres() -> String {
    std::env::var("VIBEDEV_TEST_OFFICIAL_POSTGRES_IMAGE")
        .expect("VIBEDEV_TEST_OFFICIAL_POSTGRES_IMAGE: run scripts/test-env --official (VIBEDEV_TEST_IMAGES=official scripts/test)")
}

/// An image with the official Firestore one's contents under a new id (a label of its own).
fn image_copy(tag: &str) -> (String, String) {
    image_copy_of(&official_firestore(), tag)
}

/// An image with `from`'s contents under a new id (a label of its own): its name and id's hex.
fn image_copy_of(from: &str, tag: &str) -> (String, String) {
    let name = format!("vibedev-test-copy/{}:latest", unique_name(tag));
    let mut child = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &name, "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("docker build");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("FROM {from}\nLABEL dev.vibedev.test-copy={name}\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "docker build {name}");
    let id = docker_ok(&["image", "inspect", "-f", "{{.Id}}", &name]);
    let hex = id.trim().trim_start_matches("sha256:").to_string();
    (name, hex)
}

/// The emulator container's PID 1 command line.
fn pid1(p: &TestProject) -> String {
    let id = support::container_id(p, "firestore");
    docker(&["exec", &id, "cat", "/proc/1/cmdline"]).replace('\0', " ")
}

/// True when doctor's `start-cache` line names the service among those with their cache made.
fn cached(doctor: &str, service: &str) -> bool {
    let line = doctor
        .lines()
        .find(|l| l.contains("start-cache"))
        .unwrap_or_default();
    let ready = match line.split_once("(cached: ") {
        Some((_, ready)) => ready,
        None => line
            .split_once("start cache ready for ")
            .map_or("", |(_, r)| r),
    };
    ready
        .trim_end_matches(')')
        .split(", ")
        .any(|s| s.trim() == service)
}

/// Runs `sh -c SCRIPT` in a container with the cache volume mounted at /c.
fn in_cache(image: &str, script: &str) -> String {
    docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        "-v",
        "vibedev-cache:/c",
        image,
        "-c",
        script,
    ])
}

#[test]
#[ignore = "needs the official-like images: VIBEDEV_TEST_IMAGES=official scripts/test --run-ignored all"]
fn class_data_archive_per_image_made_used_remade_and_dropped_when_damaged() {
    let (first, first_id) = image_copy("fs-a");
    let (second, second_id) = image_copy("fs-b");
    let mut p = TestProject::new("official-fs");
    p.set("firestore", "image", &format!("{first:?}"));
    p.write_config("");

    // first start: no archive yet, the JVM writes one when it stops
    p.ok(&["up"]);
    let cmd = pid1(&p);
    assert!(
        cmd.starts_with("/usr/bin/java ") || cmd.contains("/java "),
        "{cmd}"
    );
    assert!(
        cmd.contains(&format!(
            "-XX:ArchiveClassesAtExit=/vibedev-cache/firestore/{first_id}.jsa.new"
        )),
        "{cmd}"
    );
    let doctor = p.run(&["doctor"]);
    assert!(doctor.stdout.contains("no start cache yet"), "{doctor}");
    p.ok(&["down"]);

    // later starts use it
    p.ok(&["up"]);
    let cmd = pid1(&p);
    assert!(
        cmd.contains(&format!(
            "-XX:SharedArchiveFile=/vibedev-cache/firestore/{first_id}.jsa "
        )),
        "{cmd}"
    );
    let doctor = p.run(&["doctor"]);
    assert!(cached(&doctor.stdout, "firestore"), "{doctor}");

    // another image: another archive, made anew
    p.set("firestore", "image", &format!("{second:?}"));
    p.write_config("");
    p.ok(&["up"]);
    let cmd = pid1(&p);
    assert!(
        cmd.contains(&format!(
            "-XX:ArchiveClassesAtExit=/vibedev-cache/firestore/{second_id}.jsa.new"
        )),
        "{cmd}"
    );
    p.ok(&["down"]);

    // a damaged archive is dropped with a warning and the emulator starts without it
    in_cache(
        &second,
        &format!(
            "f=/c/firestore/{second_id}.jsa.new; head -c 100000 $f > $f.cut && mv -f $f.cut $f"
        ),
    );
    p.ok(&["up"]);
    let cmd = pid1(&p);
    assert!(
        cmd.contains(&format!(
            "-XX:ArchiveClassesAtExit=/vibedev-cache/firestore/{second_id}.jsa.new"
        )),
        "{cmd}"
    );
    let logs = std::process::Command::new("docker")
        .args(["logs", &support::container_id(&p, "firestore")])
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&logs.stderr);
    assert!(
        logs.contains("class-data archive") && logs.contains("is unusable"),
        "{logs}"
    );
    assert_eq!(support::status(&p)["firestore"]["ready"], true);

    p.ok(&["down", "--volumes"]);
    in_cache(
        &second,
        &format!("rm -f /c/firestore/{first_id}.jsa* /c/firestore/{second_id}.jsa*"),
    );
    docker(&["rmi", &first, &second]);
}

/// The container's log (stdout and stderr).
fn logs(p: &TestProject, service: &str) -> String {
    let out = std::process::Command::new("docker")
        .args(["logs", &support::container_id(p, service)])
        .output()
        .unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `psql` as the admin user in the Postgres container over TCP from its network address (not
/// the loopback one, which the image's rules trust) with `password`: the output, or the error.
fn psql(p: &TestProject, password: &str, sql: &str) -> Result<String, String> {
    let id = support::container_id(p, "postgres");
    let out = std::process::Command::new("docker")
        .args([
            "exec",
            "-e",
            &format!("PGPASSWORD={password}"),
            "-e",
            &format!("SQL={sql}"),
            &id,
            "sh",
            "-c",
            r#"psql -XAtq -h "$(hostname -i | cut -d' ' -f1)" -U postgres -d postgres -c "$SQL""#,
        ])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// What the first init decides, as a client sees it: databases with their encodings and
/// locales, roles with their password method, the server's settings from the environment,
/// and the password rules.
fn cluster_facts(p: &TestProject, password: &str) -> String {
    let sql = "SELECT string_agg(datname || ' ' || pg_encoding_to_char(encoding) || ' ' || datcollate || ' ' || datctype, '; ' ORDER BY datname) FROM pg_database UNION ALL \
               SELECT string_agg(rolname || ' ' || rolsuper || ' ' || coalesce(split_part(rolpassword, '$', 1), '-'), '; ' ORDER BY rolname) FROM pg_authid UNION ALL \
               SELECT string_agg(name || '=' || setting, '; ' ORDER BY name) FROM pg_settings WHERE name IN ('server_encoding', 'lc_messages', 'lc_monetary', 'TimeZone', 'password_encryption') UNION ALL \
               SELECT string_agg(type || ' ' || array_to_string(database, ',') || ' ' || array_to_string(user_name, ',') || ' ' || coalesce(address, '-') || ' ' || auth_method, '; ' ORDER BY line_number) FROM pg_hba_file_rules";
    psql(p, password, sql).unwrap_or_else(|e| panic!("psql: {e}"))
}

const KEPT: &str = "vibedev: kept the initialized cluster";
const COPIED: &str = "starts as a copy of the cluster";

#[test]
#[ignore = "needs the official-like images: VIBEDEV_TEST_IMAGES=official scripts/test --run-ignored all"]
fn first_init_kept_per_image_and_settings_and_copied_only_for_the_same() {
    let from = official_postgres();
    let (first, first_id) = image_copy_of(&from, "pg-a");
    let (second, second_id) = image_copy_of(&from, "pg-b");
    let mut p = TestProject::new("official-pg");
    p.set("postgres", "image", &format!("{first:?}"));
    p.write_config("");
    let doctor = p.run(&["doctor"]);
    assert!(
        !cached(&doctor.stdout, "postgres")
            && doctor
                .stdout
                .contains(&format!("postgres ({first}): a first start"))
            && doctor.stdout.contains("initdb"),
        "{doctor}"
    );

    // the first init of this image and these settings: kept
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains(KEPT) && !log.contains(COPIED), "{log}");
    assert!(log.contains("PostgreSQL init process complete"), "{log}");
    let fresh = cluster_facts(&p, "postgres");
    assert!(fresh.contains("scram-sha-256"), "{fresh}");
    let kept = in_cache(
        &first,
        &format!("ls /c/postgres/ | grep '^{}-'", &first_id[..12]),
    );
    assert_eq!(kept.lines().count(), 1, "{kept}");
    let doctor = p.run(&["doctor"]);
    assert!(cached(&doctor.stdout, "postgres"), "{doctor}");
    // a cluster that holds data is never copied: only the first init's
    p.ok(&["down", "--volumes"]);

    // a first start again (a new volume): the copy, with the same result
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains(COPIED) && !log.contains(KEPT), "{log}");
    assert!(log.contains("Skipping initialization"), "{log}");
    assert_eq!(cluster_facts(&p, "postgres"), fresh);
    assert_eq!(support::status(&p)["postgres"]["ready"], true);
    // password checks as after an init: the right one in, a wrong one out
    let wrong = psql(&p, "not-the-password", "SELECT 1").unwrap_err();
    assert!(wrong.contains("password authentication failed"), "{wrong}");
    p.ok(&["down", "--volumes"]);

    // other initdb options (locale, encoding): a first init of their own
    p.set(
        "postgres",
        "env",
        r#"{ POSTGRES_INITDB_ARGS = "--locale=C --encoding=SQL_ASCII" }"#,
    );
    p.write_config("");
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains(KEPT) && !log.contains(COPIED), "{log}");
    let other = cluster_facts(&p, "postgres");
    assert!(other.contains("postgres SQL_ASCII C C"), "{other}");
    p.ok(&["down", "--volumes"]);

    // another password: a first init of its own, and only the new password opens it
    p.set("postgres", "env", r#"{ POSTGRES_PASSWORD = "changed" }"#);
    p.write_config("");
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains(KEPT) && !log.contains(COPIED), "{log}");
    assert!(psql(&p, "postgres", "SELECT 1").is_err());
    assert_eq!(cluster_facts(&p, "changed"), fresh);
    p.ok(&["down", "--volumes"]);

    // another image (a new id): made anew
    p.services.get_mut("postgres").unwrap().remove("env");
    p.set("postgres", "image", &format!("{second:?}"));
    p.write_config("");
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains(KEPT) && !log.contains(COPIED), "{log}");
    p.ok(&["down", "--volumes"]);

    // a damaged copy is deleted with a warning, and the init runs as usual
    in_cache(
        &second,
        &format!(
            "for f in /c/postgres/{}-*.tar; do head -c 100000 $f > $f.cut && mv -f $f.cut $f; done",
            &second_id[..12]
        ),
    );
    p.ok(&["up", "postgres"]);
    let log = logs(&p, "postgres");
    assert!(log.contains("is unusable: deleted"), "{log}");
    assert!(log.contains("PostgreSQL init process complete"), "{log}");
    assert_eq!(cluster_facts(&p, "postgres"), fresh);

    p.ok(&["down", "--volumes"]);
    in_cache(
        &second,
        &format!(
            "rm -f /c/postgres/{}-* /c/postgres/{}-*",
            &first_id[..12],
            &second_id[..12]
        ),
    );
    docker(&["rmi", &first, &second]);
}
