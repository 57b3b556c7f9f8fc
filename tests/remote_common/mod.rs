//! What the remote-engine tests share: reaching a port, waiting, reading URLs and the engine's own
//! port bindings, a Redis client.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{self, TestProject};

pub fn port_open(host: &str, port: u16) -> bool {
    let addr = format!("{host}:{port}").parse().expect("address");
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

/// Polls `check` until it holds or 60 s pass; returns whether it held.
pub fn wait_for(mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// Host and port of a `scheme://[user[:pw]@]host:port[/...]` URL.
pub fn host_port(url: &str) -> (String, u16) {
    let rest = url.split_once("://").expect("scheme").1;
    let authority = rest.split('/').next().expect("authority");
    let hp = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (h, p) = hp.rsplit_once(':').expect("port");
    (h.to_string(), p.parse().expect("port number"))
}

/// The host side of a container port as the engine published it (`docker port`).
pub fn engine_binding(p: &TestProject, service: &str, port: &str) -> String {
    let id = support::container_id(p, service);
    support::docker(&["port", &id, port])
}

pub fn redis_conn(url: &str) -> redis::Connection {
    redis::Client::open(url)
        .expect("redis url")
        .get_connection()
        .expect("redis connection")
}
