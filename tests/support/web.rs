//! A running `vibedev ui` for HTTP-level tests, and a raw HTTP/1.1 client that can send any
//! `Host`, `Origin` or cookie (a browser cannot be told to lie; a test has to).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use super::TestProject;

/// `vibedev ui --no-open --port 0` in a project, killed when dropped.
pub struct UiServer {
    child: Child,
    pub port: u16,
    pub token: String,
    /// The URL it printed.
    pub url: String,
    /// `vibedev_ui_PORT=TOKEN`, the cookie the URL trades for.
    pub cookie: String,
}

impl UiServer {
    /// Starts the UI and reads the URL it prints (`vibedev ui: http://127.0.0.1:PORT/?token=T`).
    pub fn start(project: &TestProject, extra: &[&str]) -> UiServer {
        let mut args = vec!["ui", "--no-open", "--port", "0"];
        args.extend_from_slice(extra);
        UiServer::spawn(project.cmd(&args))
    }

    /// Runs `cmd` (a `vibedev ui ...` command) and reads the URL it prints.
    pub fn spawn(mut cmd: std::process::Command) -> UiServer {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vibedev ui");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if let Some(url) = line.strip_prefix("vibedev ui: ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "vibedev ui printed no URL; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        };
        let rest = url
            .strip_prefix("http://127.0.0.1:")
            .expect("127.0.0.1 URL");
        let (port, query) = rest.split_once("/?token=").expect("token in URL");
        let port: u16 = port.parse().expect("port");
        let token = query.to_string();
        UiServer {
            child,
            port,
            cookie: format!("vibedev_ui_{port}={token}"),
            token,
            url,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A request with the right Host and the cookie.
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[("Cookie", &self.cookie)], "")
    }

    /// A form POST from the page itself (own Origin, the cookie).
    pub fn post(&self, path: &str, form: &str) -> Response {
        let origin = self.origin();
        self.request(
            "POST",
            path,
            &[
                ("Cookie", &self.cookie),
                ("Origin", &origin),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            form,
        )
    }

    /// Any request with the right Host unless `headers` names one.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(180)))
            .expect("timeout");
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            head.push_str(&format!("Host: {}\r\n", self.host()));
        }
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ));
        stream.write_all(head.as_bytes()).expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        Response::parse(&raw)
    }

    /// Opens a server-sent events stream; read it with [`Events::until`].
    pub fn events(&self, path: &str) -> Events {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
            self.host(),
            self.cookie
        );
        stream.write_all(head.as_bytes()).expect("send");
        let mut events = Events {
            stream,
            seen: String::new(),
        };
        // The server answers once the stream is set up (log followers attached).
        assert!(events.until("\r\n\r\n"), "no answer: {}", events.seen);
        assert!(events.seen.starts_with("HTTP/1.1 200"), "{}", events.seen);
        events
    }

    /// `text` as the templates write it (minijinja's HTML escaping).
    pub fn escaped(text: &str) -> String {
        text.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
            .replace('/', "&#x2f;")
    }

    /// Sends SIGINT (Ctrl-C) and waits for the exit; `None` if it did not end in time.
    pub fn interrupt(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: signalling our own child process by pid.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for UiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An open event stream (raw bytes as text, chunk sizes included).
pub struct Events {
    stream: TcpStream,
    pub seen: String,
}

impl Events {
    /// Reads until `what` has arrived (true) or the stream ends or stays silent past the read
    /// timeout (false).
    pub fn until(&mut self, what: &str) -> bool {
        let mut buf = [0u8; 65536];
        loop {
            if self.seen.contains(what) {
                return true;
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return false,
                Ok(n) => self.seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
    }
}

/// A whole response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    fn parse(raw: &[u8]) -> Response {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(raw.len());
        let head = String::from_utf8_lossy(&raw[..split]);
        let body = raw.get(split + 4..).unwrap_or(&[]);
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_vec()
        };
        Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Display for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "status {}", self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "{k}: {v}")?;
        }
        write!(f, "\n{}", self.body)
    }
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&body[..eol]);
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        let rest = &body[eol + 2..];
        if n == 0 || rest.len() < n {
            out.extend_from_slice(&rest[..n.min(rest.len())]);
            break;
        }
        out.extend_from_slice(&rest[..n]);
        body = rest[n..].strip_prefix(b"\r\n").unwrap_or(&rest[n..]);
    }
    out
}
