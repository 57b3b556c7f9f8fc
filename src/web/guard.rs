//! Who may use the UI: a request must name this server as its `Host`, come from its own origin
//! when it says one, and carry the run's token (in the printed URL once, then in a cookie).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;

/// The per-run secret: 32 random bytes, hex. Never logged; compared in constant time.
#[derive(Clone)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn new() -> Token {
        Token(hex::encode(rand::random::<[u8; 32]>()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `given` is this token; the time taken does not depend on where they differ.
    pub fn matches(&self, given: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), given.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Default for Token {
    fn default() -> Token {
        Token::new()
    }
}

/// The cookie's name: per port, since browsers share cookies across ports of one host.
pub fn cookie_name(port: u16) -> String {
    format!("vibedev_ui_{port}")
}

/// Why a request was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ForeignHost,
    ForeignOrigin,
    CrossSite,
    NoToken,
    WrongToken,
}

impl Refusal {
    fn status(self) -> StatusCode {
        match self {
            Refusal::NoToken => StatusCode::UNAUTHORIZED,
            _ => StatusCode::FORBIDDEN,
        }
    }

    fn reason(self) -> &'static str {
        match self {
            Refusal::ForeignHost => "This server answers only to 127.0.0.1 or localhost.",
            Refusal::ForeignOrigin => "Requests from another web page are refused.",
            Refusal::CrossSite => "Requests from another site are refused.",
            Refusal::NoToken => "This page needs the token of this run of vibedev ui.",
            Refusal::WrongToken => "The token is not this run's.",
        }
    }
}

/// What the guard decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let it through.
    Pass,
    /// The token came in the URL: set the cookie and send the browser to this location.
    Trade {
        location: String,
    },
    Refuse(Refusal),
}

/// The decision, from the request's method, path and query, and headers alone.
pub fn judge(
    token: &Token,
    port: u16,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Verdict {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let hosts = [format!("127.0.0.1:{port}"), format!("localhost:{port}")];
    if !host.is_some_and(|h| hosts.iter().any(|ok| ok == h)) {
        return Verdict::Refuse(Refusal::ForeignHost);
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !hosts.iter().any(|h| origin == format!("http://{h}")) {
            return Verdict::Refuse(Refusal::ForeignOrigin);
        }
    }
    let site = headers
        .get("sec-fetch-site")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    // A top-level navigation from elsewhere may only read (and then needs the token); a page
    // of another site cannot make this one act.
    if site == "cross-site" && !matches!(*method, Method::GET | Method::HEAD) {
        return Verdict::Refuse(Refusal::CrossSite);
    }
    let (given, rest) = split_token(query);
    if let Some(given) = given {
        if !token.matches(&given) {
            return Verdict::Refuse(Refusal::WrongToken);
        }
        if matches!(*method, Method::GET | Method::HEAD) {
            // `//host/...` would be read as another site by the browser: back to the start.
            let path = if path.starts_with("//") { "/" } else { path };
            let location = match rest {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            };
            return Verdict::Trade { location };
        }
        return Verdict::Pass;
    }
    match cookie(headers, &cookie_name(port)) {
        Some(given) if token.matches(&given) => Verdict::Pass,
        Some(_) => Verdict::Refuse(Refusal::WrongToken),
        None => Verdict::Refuse(Refusal::NoToken),
    }
}

/// The `token` parameter of a query and the query without it.
fn split_token(query: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(query) = query else {
        return (None, None);
    };
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("token", value)) => token = Some(value.to_string()),
            _ if pair == "token" => token = Some(String::new()),
            _ => rest.push(pair),
        }
    }
    let rest = (!rest.is_empty()).then(|| rest.join("&"));
    (token, rest)
}

/// A cookie's value from the `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The middleware on every route.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let verdict = judge(
        &state.token,
        state.port,
        req.method(),
        req.uri().path(),
        req.uri().query(),
        req.headers(),
    );
    let mut response = match verdict {
        Verdict::Pass => next.run(req).await,
        Verdict::Trade { location } => {
            let cookie = format!(
                "{}={}; Path=/; HttpOnly; SameSite=Strict",
                cookie_name(state.port),
                state.token.as_str()
            );
            let mut r = StatusCode::SEE_OTHER.into_response();
            if let (Ok(loc), Ok(cookie)) = (
                HeaderValue::from_str(&location),
                HeaderValue::from_str(&cookie),
            ) {
                r.headers_mut().insert(header::LOCATION, loc);
                r.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            r
        }
        Verdict::Refuse(why) => refused(why),
    };
    protect(response.headers_mut());
    response
}

/// The short page a refused request gets.
fn refused(why: Refusal) -> Response {
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>vibedev ui: refused</title><main><h1>Refused</h1><p id=\"refusal\">{}</p><p>Open the URL that <code>vibedev ui</code> printed (it carries this run's token).</p></main>",
        why.reason()
    );
    (why.status(), Html(body)).into_response()
}

/// Headers every answer carries: no framing, no foreign scripts, no referrer to other sites
/// (`same-origin`: with `no-referrer` a browser sends `Origin: null` on its own forms), no caching.
fn protect(headers: &mut HeaderMap) {
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in set {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn judge_get(token: &Token, query: Option<&str>, h: &[(&str, &str)]) -> Verdict {
        judge(token, 4000, &Method::GET, "/logs", query, &headers(h))
    }

    #[test]
    fn token_is_64_hex_digits_and_new_each_run() {
        let (a, b) = (Token::new(), Token::new());
        assert_eq!(a.as_str().len(), 64);
        assert!(a.as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(""));
    }

    #[test]
    fn url_token_is_traded_for_a_cookie_keeping_other_parameters() {
        let t = Token::new();
        let q = format!("service=db&token={}", t.as_str());
        assert_eq!(
            judge_get(&t, Some(&q), &[("host", "127.0.0.1:4000")]),
            Verdict::Trade {
                location: "/logs?service=db".into()
            }
        );
        let q = format!("token={}", t.as_str());
        assert_eq!(
            judge_get(&t, Some(&q), &[("host", "localhost:4000")]),
            Verdict::Trade {
                location: "/logs".into()
            }
        );
        // A path the browser would read as another host goes back to the start instead.
        let h = headers(&[("host", "127.0.0.1:4000")]);
        assert_eq!(
            judge(&t, 4000, &Method::GET, "//evil.example/x", Some(&q), &h),
            Verdict::Trade {
                location: "/".into()
            }
        );
    }

    #[test]
    fn cookie_passes_and_anything_else_is_refused() {
        let t = Token::new();
        let good = format!("a=b; vibedev_ui_4000={}", t.as_str());
        let host = ("host", "127.0.0.1:4000");
        assert_eq!(
            judge_get(&t, None, &[host, ("cookie", &good)]),
            Verdict::Pass
        );
        assert_eq!(
            judge_get(&t, None, &[host]),
            Verdict::Refuse(Refusal::NoToken)
        );
        // Another port's cookie is not this server's.
        let other = format!("vibedev_ui_4001={}", t.as_str());
        assert_eq!(
            judge_get(&t, None, &[host, ("cookie", &other)]),
            Verdict::Refuse(Refusal::NoToken)
        );
        assert_eq!(
            judge_get(&t, None, &[host, ("cookie", "vibedev_ui_4000=00")]),
            Verdict::Refuse(Refusal::WrongToken)
        );
        assert_eq!(
            judge_get(&t, Some("token=abc"), &[host]),
            Verdict::Refuse(Refusal::WrongToken)
        );
    }

    #[test]
    fn foreign_host_and_origin_are_refused_even_with_the_token() {
        let t = Token::new();
        let good = format!("vibedev_ui_4000={}", t.as_str());
        let cookie = ("cookie", good.as_str());
        for host in [
            "evil.example:4000",
            "127.0.0.1:4001",
            "127.0.0.1",
            "0.0.0.0:4000",
        ] {
            assert_eq!(
                judge_get(&t, None, &[("host", host), cookie]),
                Verdict::Refuse(Refusal::ForeignHost),
                "{host}"
            );
        }
        assert_eq!(
            judge_get(&t, None, &[cookie]),
            Verdict::Refuse(Refusal::ForeignHost)
        );
        for origin in [
            "http://evil.example",
            "http://127.0.0.1:4001",
            "null",
            "https://127.0.0.1:4000",
        ] {
            let h = headers(&[("host", "127.0.0.1:4000"), ("origin", origin), cookie]);
            assert_eq!(
                judge(&t, 4000, &Method::POST, "/stack/db/stop", None, &h),
                Verdict::Refuse(Refusal::ForeignOrigin),
                "{origin}"
            );
        }
        let h = headers(&[
            ("host", "127.0.0.1:4000"),
            ("origin", "http://localhost:4000"),
            cookie,
        ]);
        assert_eq!(
            judge(&t, 4000, &Method::POST, "/x", None, &h),
            Verdict::Pass
        );
        let h = headers(&[
            ("host", "127.0.0.1:4000"),
            ("sec-fetch-site", "cross-site"),
            cookie,
        ]);
        assert_eq!(
            judge(&t, 4000, &Method::POST, "/x", None, &h),
            Verdict::Refuse(Refusal::CrossSite)
        );
    }
}
