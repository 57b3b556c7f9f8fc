//! A `tcp://` Docker engine on another host: this machine's engine, exposed on 127.0.0.2 by a
//! small relay the test runs (127.0.0.2:<port> to the engine's socket), so vibedev sees an
//! engine whose host is not this one. The stack binds on 127.0.0.2, the engine's host. With
//! forwarding asked for, clients reach the services on 127.0.0.1 only through vibedev's relay of
//! the ports; without it, they go to the engine's host as before.

mod remote_common;
mod support;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use remote_common::{engine_binding, host_port, port_open, redis_conn, wait_for};
use support::TestProject;

/// The engine's host as vibedev sees it, and where the stack's ports are bound.
const ENGINE_HOST: &str = "127.0.0.2";

/// This machine's engine API on `ENGINE_HOST`:<port>, one thread pair per connection, for as long
/// as the test runs.
struct EngineOnTcp {
    port: u16,
}

impl EngineOnTcp {
    fn start() -> EngineOnTcp {
        let socket = match std::env::var("DOCKER_HOST") {
            Ok(url) if url.starts_with("unix://") => PathBuf::from(&url["unix://".len()..]),
            _ => PathBuf::from("/var/run/docker.sock"),
        };
        let listener = TcpListener::bind((ENGINE_HOST, 0)).expect("listen on 127.0.0.2");
        let port = listener.local_addr().expect("address").port();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let socket = socket.clone();
                std::thread::spawn(move || {
                    if let Ok(engine) = UnixStream::connect(&socket) {
                        pipe(client, engine);
                    }
                });
            }
        });
        EngineOnTcp { port }
    }

    fn url(&self) -> String {
        format!("tcp://{ENGINE_HOST}:{}", self.port)
    }
}

/// Copies both ways until each side has said all it will.
fn pipe(client: TcpStream, engine: UnixStream) {
    let (mut client_in, mut engine_out) = (
        client.try_clone().expect("clone"),
        engine.try_clone().expect("clone"),
    );
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut engine_out);
        let _ = engine_out.shutdown(Shutdown::Write);
    });
    let (mut engine_in, mut client_out) = (engine, client);
    let _ = std::io::copy(&mut engine_in, &mut client_out);
    let _ = client_out.flush();
    let _ = client_out.shutdown(Shutdown::Write);
    let _ = upstream.join();
}

/// A project on the test images whose ports bind on the engine's host, with `extra` config.
fn tcp_project(tag: &str, engine: &EngineOnTcp, extra: &str) -> TestProject {
    let mut p = TestProject::empty(tag);
    p.env = vec![("DOCKER_HOST".into(), engine.url())];
    p.services.retain(|s, _| s == "postgres" || s == "redis");
    // The "remote" engine is this machine's: a port it picked on ENGINE_HOST may be one another
    // test's container holds on 127.0.0.1, where the relay listens. So the host ports are
    // chosen here, free on both addresses and below the range the engine and the OS pick from.
    for (service, container) in [("postgres", 5432), ("redis", 6379)] {
        let port = free_on_both();
        p.set(service, "ports", &format!("[\"{port}:{container}\"]"));
    }
    p.write_config(extra);
    // `write_config` puts `extra` last; `bind` is a top-level key, so it goes first.
    let text = std::fs::read_to_string(p.path().join("vibedev.toml")).unwrap();
    p.write("vibedev.toml", &format!("bind = \"{ENGINE_HOST}\"\n{text}"));
    p
}

/// A port between 15000 and 19999 that nothing listens on at 127.0.0.1 or at ENGINE_HOST.
fn free_on_both() -> u16 {
    loop {
        let port = 15000 + rand::random::<u16>() % 5000;
        let free = |host: &str| TcpListener::bind((host, port)).is_ok();
        if free("127.0.0.1") && free(ENGINE_HOST) {
            return port;
        }
    }
}

/// `relay PID N` in `status`'s forwards line.
fn relay_pid(status: &str) -> u32 {
    let start = status.find("relay PID ").expect("relay line in status") + "relay PID ".len();
    status[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("pid")
}

/// The `docker` check of `vibedev doctor --json`.
fn docker_check(p: &TestProject) -> serde_json::Value {
    let doctor = p.run(&["doctor", "--json"]);
    doctor.json()["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"] == "docker")
        .cloned()
        .unwrap_or_else(|| panic!("no docker check: {doctor}"))
}

#[test]
fn tcp_engine_ports_are_relayed_to_localhost_by_a_relay_that_up_restarts_and_down_ends() {
    let engine = EngineOnTcp::start();
    let p = tcp_project("remote-tcp", &engine, "[engine]\nforward = true\n");

    let up = p.ok(&["up", "postgres", "redis"]);
    // Postgres was probed and prepared from here: only possible through the relay.
    assert!(up.stderr.contains("created database vibesdk"), "{up}");

    let env = support::env(&p);
    let (redis_host, redis_port) = host_port(&env["REDIS_URL"]);
    let (pg_host, pg_port) = host_port(&env["DATABASE_URL"]);
    assert_eq!(
        (redis_host.as_str(), pg_host.as_str()),
        ("127.0.0.1", "127.0.0.1")
    );
    // The engine bound the ports on its own host, not where the clients connect.
    assert_eq!(
        engine_binding(&p, "redis", "6379/tcp"),
        format!("{ENGINE_HOST}:{redis_port}")
    );
    assert_eq!(
        engine_binding(&p, "postgres", "5432/tcp"),
        format!("{ENGINE_HOST}:{pg_port}")
    );

    // Real clients on 127.0.0.1.
    let mut conn = redis_conn(&env["REDIS_URL"]);
    redis::cmd("SET")
        .arg("relayed")
        .arg("kept")
        .query::<()>(&mut conn)
        .unwrap();
    drop(conn);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let one: i32 = rt.block_on(async {
        let (client, connection) =
            tokio_postgres::connect(&env["DATABASE_URL"], tokio_postgres::NoTls)
                .await
                .expect("postgres through the relay");
        tokio::spawn(connection);
        client.query_one("SELECT 1", &[]).await.unwrap().get(0)
    });
    assert_eq!(one, 1);
    let run = p.ok(&[
        "run",
        "--",
        "sh",
        "-c",
        "redis-cli -u \"$REDIS_URL\" GET relayed",
    ]);
    assert_eq!(run.stdout.trim(), "kept", "{run}");

    let status = p.ok(&["status"]);
    assert!(
        status
            .stdout
            .contains(&format!("relayed to 127.0.0.1 from {ENGINE_HOST}")),
        "{status}"
    );
    assert!(
        status.stdout.contains(&format!("redis {redis_port}"))
            && status.stdout.contains(&format!("postgres {pg_port}")),
        "{status}"
    );
    let first_relay = relay_pid(&status.stdout);
    let docker = docker_check(&p);
    assert_eq!(docker["status"], "pass", "{docker}");
    let message = docker["message"].as_str().unwrap();
    assert!(message.contains("on another machine"), "{message}");
    assert!(message.contains("relayed to 127.0.0.1"), "{message}");

    // The relay dies: the ports on 127.0.0.1 go with it, and status, doctor and env say so.
    let killed = std::process::Command::new("kill")
        .args(["-9", &first_relay.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        wait_for(|| !port_open("127.0.0.1", redis_port)),
        "127.0.0.1:{redis_port} still answers after the relay was killed"
    );
    let status = p.ok(&["status"]);
    assert!(
        status.stderr.contains("is not running: run `vibedev up`"),
        "{status}"
    );
    let docker = docker_check(&p);
    assert_eq!(docker["status"], "warn", "{docker}");
    assert!(
        docker["message"].as_str().unwrap().contains("not running"),
        "{docker}"
    );
    assert!(
        docker["hint"].as_str().unwrap().contains("vibedev up"),
        "{docker}"
    );
    let env_run = p.ok(&["env"]);
    assert!(env_run.stderr.contains("is not running"), "{env_run}");

    // `up` starts a new relay for the same ports; the data is the same container's.
    p.ok(&["up", "postgres", "redis"]);
    let mut conn = redis_conn(&env["REDIS_URL"]);
    let got: String = redis::cmd("GET").arg("relayed").query(&mut conn).unwrap();
    assert_eq!(got, "kept");
    drop(conn);
    let status = p.ok(&["status"]);
    let second_relay = relay_pid(&status.stdout);
    assert_ne!(first_relay, second_relay, "{status}");

    // `down` ends the relay: its ports are closed when it returns.
    p.ok(&["down"]);
    assert!(
        !port_open("127.0.0.1", redis_port),
        "the relay outlived down"
    );
    assert!(!port_open("127.0.0.1", pg_port), "the relay outlived down");
}

#[test]
fn without_the_opt_in_clients_go_to_the_tcp_engines_host() {
    let engine = EngineOnTcp::start();
    let p = tcp_project("remote-tcp-off", &engine, "");

    let up = p.ok(&["up", "redis"]);
    assert!(up.stderr.contains("redis"), "{up}");
    let env = support::env(&p);
    let (host, port) = host_port(&env["REDIS_URL"]);
    assert_eq!(host, ENGINE_HOST);
    let mut conn = redis_conn(&env["REDIS_URL"]);
    let pong: String = redis::cmd("PING").query(&mut conn).unwrap();
    assert_eq!(pong, "PONG");
    drop(conn);
    // Nothing relays to this machine's 127.0.0.1, and nothing says it does.
    assert!(
        !port_open("127.0.0.1", port),
        "a relay runs without the opt-in"
    );
    let status = p.ok(&["status"]);
    assert!(!status.stdout.contains("relay"), "{status}");
    let docker = docker_check(&p);
    let message = docker["message"].as_str().unwrap();
    assert!(
        message.contains("reached on the engine's host") && message.contains("VIBEDEV_FORWARD"),
        "{message}"
    );

    // A bad VIBEDEV_FORWARD is refused with what to write instead.
    let mut cmd = p.cmd(&["env"]);
    cmd.env("VIBEDEV_FORWARD", "sometimes");
    let bad = support::Run::from(cmd.output().unwrap());
    assert_eq!(bad.code, Some(2), "{bad}");
    assert!(bad.stderr.contains("VIBEDEV_FORWARD"), "{bad}");
}
