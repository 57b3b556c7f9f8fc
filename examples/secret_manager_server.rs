//! The local Secret Manager and OAuth token test server as a process, for `scripts/bench-secrets`.
//! Not part of the vibedev binary: it is the test support server (tests/support/secret_manager.rs).
//!
//! `secret_manager_server --dir DIR [--secrets N] [--latency-ms MS] [--project ID]` fills the server
//! with N secrets (`bench-secret-000`, ...), writes into DIR a service-account key (`key.json`), an
//! access token for `gcloud --access-token-file` (`token`), an env template naming every secret
//! (`env.gcp.tmpl`) and the expected values (`expected.env`), prints `endpoint=URL`, then serves
//! until killed.

#[path = "../tests/support/secret_manager.rs"]
mod secret_manager;

use std::path::PathBuf;
use std::time::Duration;

use secret_manager::SecretManagerServer;

fn main() {
    let mut dir: Option<PathBuf> = None;
    let mut secrets = 200usize;
    let mut latency_ms = 30u64;
    let mut project = "bench-project".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--dir" => dir = Some(PathBuf::from(value())),
            "--secrets" => secrets = value().parse().unwrap_or_else(|_| usage("--secrets N")),
            "--latency-ms" => {
                latency_ms = value().parse().unwrap_or_else(|_| usage("--latency-ms MS"))
            }
            "--project" => project = value(),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let dir = dir.unwrap_or_else(|| usage("--dir DIR is required"));
    std::fs::create_dir_all(&dir).expect("create --dir");

    let server = SecretManagerServer::start(&project);
    let mut template = String::from("# every benchmark secret, one line each\n");
    let mut expected = String::new();
    for i in 0..secrets {
        let name = format!("bench-secret-{i:03}");
        let value = format!("value-{i:03}-{:032x}", rand::random::<u128>());
        server.add_secret(&name, &[("bench", "yes")], &[value.as_bytes()]);
        let key = name.to_uppercase().replace('-', "_");
        template.push_str(&format!("{key}={{{{ secret \"{name}\" }}}}\n"));
        expected.push_str(&format!("{key}={value}\n"));
    }
    server.write_key_file(&dir);
    std::fs::rename(dir.join("service-account.json"), dir.join("key.json")).expect("key.json");
    std::fs::write(dir.join("token"), server.issue_token()).expect("token");
    std::fs::write(dir.join("env.gcp.tmpl"), template).expect("template");
    std::fs::write(dir.join("expected.env"), expected).expect("expected.env");
    // Latency only once the setup (token requests included) is done by the clients.
    server.set_latency(Duration::from_millis(latency_ms));
    println!("endpoint={}", server.endpoint());
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "secret_manager_server: {msg}\nusage: secret_manager_server --dir DIR [--secrets N] [--latency-ms MS] [--project ID]"
    );
    std::process::exit(2)
}
