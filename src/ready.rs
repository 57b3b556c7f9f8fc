//! Readiness probes, run from the host the way a real client connects: Postgres over its wire
//! protocol (`SELECT 1`), Redis (`PING`), HTTP (the Firestore emulator's `GET /`, fake-gcs's
//! health check). Each wait backs off from 10 ms to 50 ms under a deadline.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One attempt's budget: a probe that hangs must not eat the deadline.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

pub use crate::backoff::Backoff;

/// A shared HTTP client for probes and emulator calls: short timeouts, never a proxy.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(ATTEMPT_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Sends one command over Redis's wire protocol and returns the first line of its reply.
pub async fn redis_command(
    host: &str,
    port: u16,
    args: &[&str],
    timeout: Duration,
) -> Result<String, String> {
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    let fut = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before a reply".to_string());
        }
        Ok(String::from_utf8_lossy(&buf[..n]).trim_end().to_string())
    };
    tokio::time::timeout(timeout, fut).await.map_err(|_| {
        format!(
            "no reply to {} within {} s",
            args.join(" "),
            timeout.as_secs()
        )
    })?
}

/// Sends `PING` and expects `+PONG` (or a NOAUTH error from a password-protected server).
pub async fn redis_ping(host: &str, port: u16) -> Result<(), String> {
    let reply = redis_command(host, port, &["PING"], ATTEMPT_TIMEOUT).await?;
    if reply.starts_with("+PONG") || reply.starts_with("-NOAUTH") {
        Ok(())
    } else {
        Err(format!("unexpected reply {reply:?}"))
    }
}

/// `GET url`, expecting a 2xx and, when given, a body that starts with `expect`.
pub async fn http_ok(
    client: &reqwest::Client,
    url: &str,
    expect: Option<&str>,
) -> Result<(), String> {
    let resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| describe_reqwest(&e))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    if let Some(expect) = expect {
        let body = resp.text().await.map_err(|e| describe_reqwest(&e))?;
        if !body.trim_start().starts_with(expect) {
            return Err(format!(
                "GET {url} answered {:?}, expected {expect:?}",
                truncate(&body, 80)
            ));
        }
    }
    Ok(())
}

/// Opens a TCP connection.
pub async fn tcp_open(host: &str, port: u16) -> Result<(), String> {
    tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|_| "connect timed out".to_string())?
    .map(|_| ())
    .map_err(|e| e.to_string())
}

/// reqwest's error with its cause chain (its Display alone hides the interesting part).
pub fn describe_reqwest(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Retries `attempt` with the probe backoff until it succeeds or `deadline` passes; returns the
/// last error.
pub async fn retry_until<F, Fut, T>(deadline: Instant, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let mut backoff = Backoff::probe();
    loop {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                let delay = backoff.next_delay();
                if Instant::now() + delay >= deadline {
                    return Err(e);
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn redis_probe_fails_clearly_on_a_closed_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let err = redis_ping("127.0.0.1", port).await.unwrap_err();
        assert!(err.contains("refused"), "{err}");
    }

    /// A server on the port that is not Redis (or a Redis that answers an error): the reply is
    /// named, not just "not ready".
    #[tokio::test]
    async fn redis_probe_names_an_unexpected_reply() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut conn, _) = listener.accept().unwrap();
            let mut buf = [0u8; 64];
            let n = conn.read(&mut buf).unwrap();
            conn.write_all(b"-LOADING dataset in memory\r\n").unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let err = redis_ping("127.0.0.1", port).await.unwrap_err();
        assert_eq!(err, r#"unexpected reply "-LOADING dataset in memory""#);
        assert_eq!(server.join().unwrap(), "*1\r\n$4\r\nPING\r\n");
    }

    #[tokio::test]
    async fn retry_until_returns_the_last_error_at_the_deadline() {
        let attempts = std::cell::Cell::new(0u32);
        let r: Result<(), String> =
            retry_until(Instant::now() + Duration::from_millis(100), || {
                attempts.set(attempts.get() + 1);
                let n = attempts.get();
                async move { Err(format!("nope {n}")) }
            })
            .await;
        let n = attempts.get();
        assert!(n >= 1);
        assert_eq!(r.unwrap_err(), format!("nope {n}"), "not the last error");
    }

    #[tokio::test]
    async fn retry_until_tries_once_when_the_deadline_has_passed() {
        let attempts = std::cell::Cell::new(0u32);
        let r: Result<(), String> = retry_until(Instant::now(), || {
            attempts.set(attempts.get() + 1);
            async { Err("nope".to_string()) }
        })
        .await;
        assert_eq!(r.unwrap_err(), "nope");
        assert_eq!(attempts.get(), 1);
    }

    #[tokio::test]
    async fn retry_until_retries_until_an_attempt_succeeds() {
        let attempts = std::cell::Cell::new(0u32);
        let r = retry_until(Instant::now() + Duration::from_secs(600), || {
            attempts.set(attempts.get() + 1);
            let n = attempts.get();
            async move {
                if n < 4 {
                    Err(format!("nope {n}"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r, Ok(4));
        assert_eq!(attempts.get(), 4);
    }
}
