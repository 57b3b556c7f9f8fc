//! A Docker engine reached over SSH (`DOCKER_HOST=ssh://...` and a Docker context with an ssh
//! endpoint): a real OpenSSH server on 127.0.0.1, started here with its own host key and an
//! authorized key, whose login reaches this machine's engine socket. The engine publishes the
//! stack's ports on 127.0.0.3, which the clients here never use: they reach the services on
//! 127.0.0.1 only if vibedev's forwards carry the traffic.

mod remote_common;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use remote_common::{engine_binding, host_port, port_open, redis_conn, wait_for};
use support::TestProject;

/// Where the engine binds the stack's ports: an address of this machine the clients do not use.
const ENGINE_BIND: &str = "127.0.0.3";
const SSHD: &str = "/usr/sbin/sshd";

/// An sshd of the test's own, in the foreground, ended when dropped.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    user: String,
    child: Child,
}

impl Sshd {
    fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install Debian's openssh-server (.ci/run and scripts/test do)"
        );
        // sshd refuses to start without its privilege separation folder.
        std::fs::create_dir_all("/run/sshd").expect("create /run/sshd");
        let dir = tempfile::Builder::new()
            .prefix("vibedev-sshd-")
            .tempdir()
            .expect("temp dir");
        let d = dir.path();
        for key in ["host_key", "user_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        std::fs::copy(d.join("user_key.pub"), d.join("authorized_keys")).expect("copy key");
        let user = String::from_utf8(
            Command::new("id")
                .arg("-un")
                .output()
                .expect("id -un")
                .stdout,
        )
        .expect("utf-8")
        .trim()
        .to_string();
        let port = support::free_port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nAuthorizedKeysFile {keys}\n\
                 PidFile {pid}\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 AllowTcpForwarding yes\nAllowStreamLocalForwarding yes\n",
                host_key = d.join("host_key").display(),
                keys = d.join("authorized_keys").display(),
                pid = d.join("sshd.pid").display(),
            ),
        )
        .expect("write sshd_config");
        let host_key = std::fs::read_to_string(d.join("host_key.pub")).expect("host key");
        std::fs::write(
            d.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .expect("write known_hosts");
        // The client side as a user would have it in ~/.ssh/config.
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n  \
                 StrictHostKeyChecking yes\n  BatchMode yes\n",
                key = d.join("user_key").display(),
                known = d.join("known_hosts").display(),
            ),
        )
        .expect("write ssh_config");
        let log = std::fs::File::create(d.join("sshd.log")).expect("sshd log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start sshd");
        let sshd = Sshd {
            dir,
            port,
            user,
            child,
        };
        assert!(
            wait_for(|| port_open("127.0.0.1", port)),
            "sshd did not listen on {port}: {}",
            sshd.log()
        );
        sshd
    }

    fn url(&self) -> String {
        format!("ssh://{}@127.0.0.1:{}", self.user, self.port)
    }

    /// The ssh command vibedev runs: the system's ssh with this server's client config.
    fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.dir.path().join("ssh_config").display())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// Drops every connection to this server, as a network failure would: kills the session
    /// processes the listening sshd started (its children), never the listener itself.
    fn drop_connections(&self) -> usize {
        let listener = self.child.id();
        let sessions = children_of(listener);
        for pid in &sessions {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        sessions.len()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// PIDs whose parent is `parent` (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...: comm may hold spaces, so read after its closing paren.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// A project on the test images whose engine binds its ports on [`ENGINE_BIND`].
fn remote_project(tag: &str, env: Vec<(String, String)>) -> TestProject {
    let mut p = TestProject::empty(tag);
    p.env = env;
    let mut text = format!("project = \"{}\"\nbind = \"{ENGINE_BIND}\"\n", p.name);
    for (service, keys) in &p.services {
        text.push_str(&format!("\n[services.{service}]\n"));
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    p.write("vibedev.toml", &text);
    p
}

/// `ssh PID N` in `status`'s forwards line.
fn master_pid(status: &str) -> u32 {
    let start = status.find("ssh PID ").expect("forwards line in status") + 8;
    status[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("pid")
}

#[test]
fn ssh_engine_serves_the_stack_through_forwards_that_up_restores_and_down_ends() {
    let sshd = Sshd::start();
    let p = remote_project(
        "remote-ssh",
        vec![
            ("DOCKER_HOST".into(), sshd.url()),
            ("VIBEDEV_SSH_COMMAND".into(), sshd.ssh_command()),
        ],
    );

    let up = p.ok(&["up", "postgres", "redis"]);
    // Postgres was probed and prepared from here: only possible through the forwards.
    assert!(up.stderr.contains("created database vibesdk"), "{up}");

    let env = support::env(&p);
    let (redis_host, redis_port) = host_port(&env["REDIS_URL"]);
    let (pg_host, pg_port) = host_port(&env["DATABASE_URL"]);
    assert_eq!(
        (redis_host.as_str(), pg_host.as_str()),
        ("127.0.0.1", "127.0.0.1")
    );
    // The engine bound its own side where the stack says, not where the clients connect.
    assert_eq!(
        engine_binding(&p, "redis", "6379/tcp"),
        format!("{ENGINE_BIND}:{redis_port}")
    );
    assert_eq!(
        engine_binding(&p, "postgres", "5432/tcp"),
        format!("{ENGINE_BIND}:{pg_port}")
    );

    // Real clients on 127.0.0.1.
    let mut conn = redis_conn(&env["REDIS_URL"]);
    redis::cmd("SET")
        .arg("remote")
        .arg("kept")
        .query::<()>(&mut conn)
        .unwrap();
    drop(conn);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let one: i32 = rt.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&env["DATABASE_URL"], tokio_postgres::NoTls)
                .await
                .expect("postgres through the forward");
        tokio::spawn(connection);
        client.query_one("SELECT 1", &[]).await.unwrap().get(0)
    });
    assert_eq!(one, 1);

    // `run` hands its command the same addresses.
    let run = p.ok(&[
        "run",
        "--",
        "sh",
        "-c",
        "redis-cli -u \"$REDIS_URL\" GET remote",
    ]);
    assert_eq!(run.stdout.trim(), "kept", "{run}");

    let status = p.ok(&["status"]);
    assert!(
        status.stdout.contains(&format!(
            "forwarded to 127.0.0.1 over ssh to {}@127.0.0.1:{}",
            sshd.user, sshd.port
        )),
        "{status}"
    );
    assert!(
        status.stdout.contains(&format!("redis {redis_port}")),
        "{status}"
    );
    let first_master = master_pid(&status.stdout);

    let doctor = p.run(&["doctor", "--json"]);
    let docker = doctor.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker")
        .cloned()
        .unwrap();
    assert_eq!(docker["status"], "pass", "{doctor}");
    let message = docker["message"].as_str().unwrap();
    assert!(message.contains("on another machine"), "{message}");
    assert!(message.contains("round trip"), "{message}");
    assert!(message.contains("forwarded to 127.0.0.1"), "{message}");

    // The connection drops: the forwards go with it.
    assert!(sshd.drop_connections() > 0, "no ssh session to drop");
    assert!(
        wait_for(|| !port_open("127.0.0.1", redis_port)),
        "127.0.0.1:{redis_port} still answers after the connection dropped"
    );
    let doctor = p.run(&["doctor", "--json"]);
    let docker = doctor.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "docker")
        .cloned()
        .unwrap();
    assert_eq!(docker["status"], "warn", "{doctor}");
    assert!(
        docker["message"].as_str().unwrap().contains("dropped"),
        "{doctor}"
    );
    assert!(
        docker["hint"].as_str().unwrap().contains("vibedev up"),
        "{doctor}"
    );
    let env_run = p.ok(&["env"]);
    assert!(
        env_run.stderr.contains("dropped: run `vibedev up`"),
        "{env_run}"
    );

    // `up` connects again and forwards the same ports; the data is the same container's.
    p.ok(&["up", "postgres", "redis"]);
    let mut conn = redis_conn(&env["REDIS_URL"]);
    let got: String = redis::cmd("GET").arg("remote").query(&mut conn).unwrap();
    assert_eq!(got, "kept");
    drop(conn);
    let status = p.ok(&["status"]);
    let second_master = master_pid(&status.stdout);
    assert_ne!(first_master, second_master, "{status}");

    // `down` ends the forwards and the connection.
    p.ok(&["down"]);
    assert!(
        !port_open("127.0.0.1", redis_port),
        "the forward outlived down"
    );
    assert!(
        wait_for(|| !PathBuf::from(format!("/proc/{second_master}")).exists()),
        "the ssh connection (PID {second_master}) outlived down"
    );
}

#[test]
fn docker_context_with_an_ssh_endpoint_works_the_same() {
    let sshd = Sshd::start();
    let config = tempfile::Builder::new()
        .prefix("vibedev-docker-config-")
        .tempdir()
        .unwrap();
    let name = "remote-box";
    use sha2::Digest;
    let meta_dir = config
        .path()
        .join("contexts/meta")
        .join(hex::encode(sha2::Sha256::digest(name.as_bytes())));
    std::fs::create_dir_all(&meta_dir).unwrap();
    std::fs::write(
        meta_dir.join("meta.json"),
        serde_json::json!({
            "Name": name,
            "Metadata": {},
            "Endpoints": {"docker": {"Host": sshd.url(), "SkipTLSVerify": false}},
        })
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        config.path().join("config.json"),
        serde_json::json!({"currentContext": name}).to_string(),
    )
    .unwrap();
    let mut p = TestProject::empty("remote-ctx");
    p.env = vec![
        ("DOCKER_CONFIG".into(), config.path().display().to_string()),
        ("VIBEDEV_SSH_COMMAND".into(), sshd.ssh_command()),
    ];
    // A secret from a file (vibedev's to hand over) and a folder the user shares (a path on
    // the engine's machine, which here is this one).
    p.write(
        "vibedev.toml",
        &format!(
            "project = \"{}\"\nbind = \"{ENGINE_BIND}\"\ncompose = \"stack.yml\"\n",
            p.name
        ),
    );
    p.write(
        "stack.yml",
        &format!(
            "services:\n  redis:\n    image: {:?}\n    ports: [\"6379\"]\n    secrets: [pw]\n    \
             volumes: [\"./shared:/shared:ro\"]\nsecrets:\n  pw: {{file: ./pw.txt}}\n",
            support::images().redis
        ),
    );
    p.write("pw.txt", "copied-not-mounted\n");
    p.write("shared/hello", "hi\n");

    let up = p.ok(&["up", "redis"]);
    assert!(
        up.stderr.contains("bind-mounts") && up.stderr.contains("shared"),
        "{up}"
    );
    assert!(!up.stderr.contains("pw.txt"), "{up}");
    let id = support::container_id(&p, "redis");
    assert_eq!(
        support::docker(&["exec", &id, "cat", "/run/secrets/pw"]),
        "copied-not-mounted"
    );
    let mounts = support::docker(&["inspect", "-f", "{{json .Mounts}}", &id]);
    assert!(
        !mounts.contains("pw.txt"),
        "the secret file was bind-mounted: {mounts}"
    );
    assert!(mounts.contains("/shared"), "{mounts}");
    let env = support::env(&p);
    let (host, port) = host_port(&env["REDIS_URL"]);
    assert_eq!(host, "127.0.0.1");
    assert_eq!(
        engine_binding(&p, "redis", "6379/tcp"),
        format!("{ENGINE_BIND}:{port}")
    );
    let mut conn = redis_conn(&env["REDIS_URL"]);
    let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG");
    drop(conn);
    let doctor = p.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains(&format!("(Docker context \"{name}\"); on another machine")),
        "{doctor}"
    );
    p.ok(&["down"]);
    assert!(!port_open("127.0.0.1", port), "the forward outlived down");
}
