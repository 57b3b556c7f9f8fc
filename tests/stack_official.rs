//! The official-like images (`scripts/test-env --official`): Google's emulators image started
//! through the emulator's JVM directly, with a class-data archive per image id in vibedev's cache
//! volume: made on the first stop, used from then on, made anew for another image, and dropped
//! with a warning when it is damaged.
//! Run with `VIBEDEV_TEST_IMAGES=official scripts/test -E 'binary(stack_official)' --run-ignored all`.

mod support;

use support::{TestProject, docker, docker_ok, unique_name};

fn official_firestore() -> String {
    std::env::var("VIBEDEV_TEST_OFFICIAL_FIRESTORE_IMAGE")
        .expect("VIBEDEV_TEST_OFFICIAL_FIRESTORE_IMAGE: run scripts/test-env --official (VIBEDEV_TEST_IMAGES=official scripts/test)")
}

/// An image with the official one's contents under a new id (a label of its own).
fn image_copy(tag: &str) -> (String, String) {
    let name = format!("vibedev-test-copy/{}:latest", unique_name(tag));
    let from = official_firestore();
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
    assert!(
        doctor.stdout.contains("start cache ready for firestore"),
        "{doctor}"
    );

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
