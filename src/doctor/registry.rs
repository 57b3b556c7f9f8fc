//! What an image's registry says about it before it is pulled: its download size and the
//! platforms it is built for (Docker Registry HTTP API v2, anonymous access only).

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use serde::Deserialize;

use crate::engine::images::split_reference;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(4);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where an image lives: registry API host, repository and tag or digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Base URL of the registry API (`https://registry-1.docker.io`).
    pub base: String,
    pub repository: String,
    pub reference: String,
}

/// Splits an image name as Docker does: the first component is a registry when it has a `.` or
/// `:` or is `localhost`; otherwise the image is on Docker Hub (`library/` for official images).
pub fn parse_reference(image: &str) -> Reference {
    let (name, tag) = split_reference(image);
    let reference = tag.unwrap_or("latest").to_string();
    let (host, repository) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let (host, repository) = if host == "docker.io" {
        let repo = if repository.contains('/') {
            repository
        } else {
            format!("library/{repository}")
        };
        ("registry-1.docker.io".to_string(), repo)
    } else {
        (host, repository)
    };
    let scheme = if is_loopback(&host) { "http" } else { "https" };
    Reference {
        base: format!("{scheme}://{host}"),
        repository,
        reference,
    }
}

/// Docker talks plain HTTP to registries on this machine; everything else is HTTPS.
fn is_loopback(host: &str) -> bool {
    let bare = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let bare = bare.trim_start_matches('[').trim_end_matches(']');
    bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// What the registry said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Compressed bytes to download for the engine's platform, when the registry tells.
    pub download_bytes: Option<u64>,
    /// `os/arch` of each variant, when the image is a multi-platform index.
    pub platforms: Option<Vec<String>>,
    /// Whether one of the variants matches the engine's platform (`None` for single-platform
    /// images, whose platform is known only after the pull).
    pub matches_engine: Option<bool>,
}

/// Why the registry could not tell.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered that the image (or tag) does not exist.
    #[error("the registry has no such image or tag")]
    NotFound,
    /// The registry wants credentials vibedev does not have (the engine may have them).
    #[error("the registry wants credentials")]
    Denied,
    #[error("the registry did not answer: {0}")]
    Unreachable(String),
    #[error("unexpected answer from the registry: {0}")]
    Other(String),
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    manifests: Option<Vec<IndexEntry>>,
    #[serde(default)]
    config: Option<Blob>,
    #[serde(default)]
    layers: Option<Vec<Blob>>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

#[derive(Debug, Deserialize)]
struct Blob {
    size: u64,
}

/// A client for registry look-ups with short deadlines: the doctor must stay quick offline.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Asks the image's registry for its manifest and sums the download size for `os/arch`.
pub async fn lookup(
    client: &reqwest::Client,
    image: &str,
    os: &str,
    arch: &str,
) -> Result<Remote, RegistryError> {
    let r = parse_reference(image);
    let mut token = None;
    let top: Manifest = get_manifest(client, &r, &r.reference, &mut token).await?;
    let Some(entries) = top.manifests else {
        return Ok(Remote {
            download_bytes: download_size(&top),
            platforms: None,
            matches_engine: None,
        });
    };
    let real: Vec<&IndexEntry> = entries
        .iter()
        .filter(|e| e.platform.as_ref().is_some_and(|p| p.os != "unknown"))
        .collect();
    let platforms: Vec<String> = real
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    let chosen = real.iter().find(|e| {
        e.platform
            .as_ref()
            .is_some_and(|p| p.os == os && normalize_arch(&p.architecture) == normalize_arch(arch))
    });
    let download_bytes = match chosen {
        Some(entry) => {
            let m: Manifest = get_manifest(client, &r, &entry.digest, &mut token).await?;
            download_size(&m)
        }
        None => None,
    };
    Ok(Remote {
        download_bytes,
        matches_engine: Some(chosen.is_some()),
        platforms: Some(platforms),
    })
}

fn download_size(m: &Manifest) -> Option<u64> {
    let layers = m.layers.as_ref()?;
    Some(layers.iter().map(|l| l.size).sum::<u64>() + m.config.as_ref().map_or(0, |c| c.size))
}

/// Go's architecture names, as Docker reports them (`x86_64` is `amd64`).
pub fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" | "arm64/v8" => "arm64",
        other => other,
    }
}

async fn get_manifest(
    client: &reqwest::Client,
    r: &Reference,
    reference: &str,
    token: &mut Option<String>,
) -> Result<Manifest, RegistryError> {
    let url = format!("{}/v2/{}/manifests/{reference}", r.base, r.repository);
    let send = |token: Option<&str>| {
        let mut req = client.get(&url).header(ACCEPT, MANIFEST_TYPES);
        if let Some(t) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        req.send()
    };
    let unreachable = |e: reqwest::Error| RegistryError::Unreachable(without_url(e));
    let mut resp = send(token.as_deref()).await.map_err(unreachable)?;
    if resp.status() == StatusCode::UNAUTHORIZED && token.is_none() {
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or(RegistryError::Denied)?;
        *token = Some(anonymous_token(client, &challenge).await?);
        resp = send(token.as_deref()).await.map_err(unreachable)?;
    }
    match resp.status() {
        s if s.is_success() => resp
            .json::<Manifest>()
            .await
            .map_err(|e| RegistryError::Other(without_url(e))),
        StatusCode::NOT_FOUND => Err(RegistryError::NotFound),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(RegistryError::Denied),
        s => Err(RegistryError::Other(format!("HTTP {s}"))),
    }
}

/// A short description of a failed request, without its URL.
fn without_url(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        e.without_url().to_string()
    }
}

/// Follows a `Bearer realm=...,service=...,scope=...` challenge for an anonymous pull token,
/// as Docker Hub and gcr.io hand out for public images.
async fn anonymous_token(
    client: &reqwest::Client,
    challenge: &str,
) -> Result<String, RegistryError> {
    let params = parse_challenge(challenge).ok_or(RegistryError::Denied)?;
    let realm = params
        .iter()
        .find(|(k, _)| k == "realm")
        .map(|(_, v)| v.clone())
        .ok_or(RegistryError::Denied)?;
    let query: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k == "service" || k == "scope")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let resp = client
        .get(&realm)
        .query(&query)
        .send()
        .await
        .map_err(|e| RegistryError::Unreachable(without_url(e)))?;
    if !resp.status().is_success() {
        return Err(RegistryError::Denied);
    }
    #[derive(Deserialize)]
    struct TokenAnswer {
        token: Option<String>,
        access_token: Option<String>,
    }
    let answer: TokenAnswer = resp
        .json()
        .await
        .map_err(|e| RegistryError::Other(without_url(e)))?;
    answer
        .token
        .or(answer.access_token)
        .ok_or(RegistryError::Denied)
}

/// `Bearer k="v",k2="v2"` into its parameters; `None` for other schemes.
pub fn parse_challenge(header: &str) -> Option<Vec<(String, String)>> {
    let rest = header.trim();
    let rest = rest
        .strip_prefix("Bearer ")
        .or_else(|| rest.strip_prefix("bearer "))?;
    let mut params = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let value: String = if chars.peek() == Some(&'"') {
            chars.next();
            let mut v = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => v.extend(chars.next()),
                    '"' => break,
                    c => v.push(c),
                }
            }
            v
        } else {
            chars.by_ref().take_while(|c| *c != ',').collect()
        };
        params.push((key.trim().to_string(), value));
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_resolve_like_docker() {
        assert_eq!(
            parse_reference("postgres:15-alpine"),
            Reference {
                base: "https://registry-1.docker.io".into(),
                repository: "library/postgres".into(),
                reference: "15-alpine".into()
            }
        );
        assert_eq!(
            parse_reference("fsouza/fake-gcs-server:1.54.0").repository,
            "fsouza/fake-gcs-server"
        );
        let gcr = parse_reference("gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators");
        assert_eq!(gcr.base, "https://gcr.io");
        assert_eq!(gcr.repository, "google.com/cloudsdktool/google-cloud-cli");
        let local = parse_reference("127.0.0.1:5000/vibedev-test/redis:7");
        assert_eq!(local.base, "http://127.0.0.1:5000");
        assert_eq!(local.reference, "7");
        assert_eq!(parse_reference("localhost:5000/x").reference, "latest");
        assert_eq!(parse_reference("localhost/x").base, "http://localhost");
        assert_eq!(parse_reference("[::1]:5000/x").base, "http://[::1]:5000");
    }

    #[test]
    fn bearer_challenges_parse() {
        let p = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull""#,
        )
        .unwrap();
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[2].1, "repository:library/redis:pull");
        assert!(parse_challenge("Basic realm=\"x\"").is_none());
    }

    #[test]
    fn download_size_sums_config_and_layers() {
        let m: Manifest = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"size":10,"digest":"d"},"layers":[{"size":100},{"size":5}]}"#,
        )
        .unwrap();
        assert_eq!(download_size(&m), Some(115));
        assert_eq!(normalize_arch("x86_64"), "amd64");
    }
}
