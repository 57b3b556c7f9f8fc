//! Google credentials from the same places gcloud and Google's client libraries look, in gcp_auth's
//! order: `GOOGLE_APPLICATION_CREDENTIALS`, application-default credentials, the metadata server, gcloud.
//!
//! Unlike gcp_auth's own search, the metadata server is asked only on a machine that is on Google
//! Cloud by the signs Google's libraries read first ([`residency`]), so a laptop without
//! credentials fails at once; and a service-account key's JWT grant is made here, so that a key the
//! token endpoint refuses is reported with the endpoint's own reason.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use super::SecretsError;
use super::credentials::{ADC_UNDER_HOME, GcpEnv, gcloud_source};

/// The OAuth scope Secret Manager needs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of the token request, the first included.
const TOKEN_TRIES: u32 = 3;

/// A bearer token. Never printed: `Debug` shows nothing of it.
#[derive(Clone)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: String) -> AccessToken {
        AccessToken(token)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// Whether this machine is on Google Cloud, decided without the network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Residency {
    /// On Google Cloud, and why it is believed so.
    Google(String),
    /// Not on Google Cloud: what was looked at.
    Elsewhere(String),
}

/// The signs Google's client libraries read before they ask the metadata server:
/// `GCE_METADATA_HOST` (Go's and Python's override: the user says a metadata server is there),
/// the variables Cloud Run, Cloud Functions and App Engine set, then the machine's DMI product
/// name or BIOS vendor (`/sys/class/dmi/id/product_name` is "Google Compute Engine" on Compute
/// Engine and GKE; Go's metadata package and google-auth's `detect_gce_residency_linux` read it).
/// `env` reads a variable, `dmi` a file under `/sys/class/dmi/id` (both injected for tests).
pub fn residency(
    env: &dyn Fn(&str) -> Option<String>,
    dmi: &dyn Fn(&str) -> Option<String>,
) -> Residency {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(host) = set("GCE_METADATA_HOST") {
        return Residency::Google(format!("GCE_METADATA_HOST={host}"));
    }
    for var in [
        "K_SERVICE",
        "CLOUD_RUN_JOB",
        "FUNCTION_TARGET",
        "GAE_APPLICATION",
    ] {
        if set(var).is_some() {
            return Residency::Google(format!("{var} is set"));
        }
    }
    let product = dmi("product_name").map(|s| s.trim().to_string());
    let vendor = dmi("bios_vendor").map(|s| s.trim().to_string());
    for (file, value) in [("product_name", &product), ("bios_vendor", &vendor)] {
        if let Some(v) = value
            && v.starts_with("Google")
        {
            return Residency::Google(format!("/sys/class/dmi/id/{file} is {v:?}"));
        }
    }
    Residency::Elsewhere(match product {
        Some(p) => format!("its product name is {p:?}, and GCE_METADATA_HOST is not set"),
        None => "it has no Google product name, and GCE_METADATA_HOST is not set".into(),
    })
}

/// [`residency`] of this process and machine.
pub fn this_machine() -> Residency {
    residency(&|k| std::env::var(k).ok(), &|f| {
        std::fs::read_to_string(Path::new("/sys/class/dmi/id").join(f)).ok()
    })
}

/// An access token for the cloud-platform scope, from the first credentials found.
pub async fn access_token() -> Result<AccessToken, SecretsError> {
    if let Some(path) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
        return service_account_token(Path::new(&path)).await;
    }
    let env = GcpEnv::from_process();
    let residency = this_machine();
    let provider: Arc<dyn gcp_auth::TokenProvider> = if let Some(adc) = env
        .home
        .as_ref()
        .map(|h| h.join(ADC_UNDER_HOME))
        .filter(|p| p.is_file())
    {
        Arc::new(
            gcp_auth::ConfigDefaultCredentials::new()
                .await
                .map_err(|source| SecretsError::UserCredentials { path: adc, source })?,
        )
    } else if let Residency::Google(why) = residency {
        Arc::new(
            gcp_auth::MetadataServiceAccount::new()
                .await
                .map_err(|source| SecretsError::Metadata { why, source })?,
        )
    } else {
        match gcloud_source(&env) {
            Ok(_) => Arc::new(
                gcp_auth::GCloudAuthorizedUser::new()
                    .await
                    .map_err(|source| SecretsError::Token { source })?,
            ),
            Err(gcloud) => {
                let Residency::Elsewhere(seen) = residency else {
                    return Err(SecretsError::NoCredentials {
                        checked: gcloud.to_string(),
                    });
                };
                return Err(SecretsError::NoCredentials {
                    checked: format!(
                        "GOOGLE_APPLICATION_CREDENTIALS is not set, there are no application-default credentials, {gcloud}, and the metadata server was not asked: this machine is not on Google Cloud ({seen})"
                    ),
                });
            }
        }
    };
    let token = provider
        .token(&[CLOUD_PLATFORM])
        .await
        .map_err(|source| SecretsError::Token { source })?;
    Ok(AccessToken(token.as_str().to_string()))
}

/// The fields of a service-account key the grant needs.
#[derive(serde::Deserialize)]
struct KeyFile {
    client_email: String,
    token_uri: String,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(serde::Deserialize, Default)]
struct TokenRefusal {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// The JWT-bearer grant (RFC 7523) with the key `path` names, signed by gcp_auth's signer.
async fn service_account_token(path: &Path) -> Result<AccessToken, SecretsError> {
    let file_error = |source| SecretsError::CredentialsFile {
        path: path.to_path_buf(),
        source,
    };
    let account = gcp_auth::CustomServiceAccount::from_file(path).map_err(file_error)?;
    let key: KeyFile = std::fs::read(path)
        .map_err(|e| gcp_auth::Error::Io("failed to read the key file", e))
        .and_then(|text| {
            serde_json::from_slice(&text)
                .map_err(|e| gcp_auth::Error::Json("failed to parse the key file", e))
        })
        .map_err(file_error)?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": CLOUD_PLATFORM,
        "aud": key.token_uri,
        "iat": now,
        "exp": now + 3600,
    });
    let mut jwt = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let signature = account.signer().sign(jwt.as_bytes()).map_err(file_error)?;
    jwt.push('.');
    jwt.push_str(&b64.encode(signature));

    let unreachable = |reason: String| SecretsError::TokenEndpoint {
        token_uri: key.token_uri.clone(),
        reason,
    };
    let http = reqwest::Client::builder()
        .timeout(TOKEN_TIMEOUT)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    // Only the grant type's colons need escaping: a JWT is base64url and dots.
    let body = format!(
        "grant_type={}&assertion={jwt}",
        JWT_BEARER.replace(':', "%3A")
    );
    // Transient failures (no connection, 429, 5xx) are tried again, twice, after 250 and 500 ms.
    let mut attempt = 1u32;
    let (status, text) = loop {
        let sent = http
            .post(&key.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await;
        let outcome = match sent {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(text) => Ok((status, text)),
                    Err(e) => Err(super::client::error_chain(&e)),
                }
            }
            Err(e) => Err(super::client::error_chain(&e)),
        };
        let transient = match &outcome {
            Ok((status, _)) => status.as_u16() == 429 || status.is_server_error(),
            Err(_) => true,
        };
        if !transient || attempt >= TOKEN_TRIES {
            match outcome {
                Ok(answer) => break answer,
                Err(reason) => return Err(unreachable(reason)),
            }
        }
        tokio::time::sleep(Duration::from_millis(250) * attempt).await;
        attempt += 1;
    };
    if status.is_success() {
        let answer: TokenAnswer = serde_json::from_slice(&text)
            .map_err(|e| unreachable(format!("the answer is not a token: {e}")))?;
        return Ok(AccessToken(answer.access_token));
    }
    if matches!(status.as_u16(), 400 | 401 | 403) {
        let refusal: TokenRefusal = serde_json::from_slice(&text).unwrap_or_default();
        let reason = match (refusal.error.as_str(), refusal.error_description.as_str()) {
            ("", "") => format!("HTTP {}", status.as_u16()),
            (e, "") => e.to_string(),
            ("", d) => d.to_string(),
            (e, d) => format!("{e}: {d}"),
        };
        return Err(SecretsError::KeyRejected {
            path: path.to_path_buf(),
            email: key.client_email.clone(),
            token_uri: key.token_uri.clone(),
            reason,
        });
    }
    Err(unreachable(format!("HTTP {}", status.as_u16())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide(vars: &[(&str, &str)], files: &[(&str, &str)]) -> Residency {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        residency(
            &|k| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            &|f| files.iter().find(|(n, _)| n == f).map(|(_, v)| v.clone()),
        )
    }

    #[test]
    fn google_cloud_is_recognised_by_its_signs() {
        assert!(matches!(
            decide(&[], &[("product_name", "Google Compute Engine\n")]),
            Residency::Google(_)
        ));
        assert!(matches!(
            decide(&[], &[("product_name", "x"), ("bios_vendor", "Google")]),
            Residency::Google(_)
        ));
        assert!(matches!(
            decide(&[("GCE_METADATA_HOST", "10.0.0.2:80")], &[]),
            Residency::Google(_)
        ));
        assert!(matches!(
            decide(&[("K_SERVICE", "api")], &[]),
            Residency::Google(_)
        ));
    }

    #[test]
    fn elsewhere_says_what_was_seen() {
        assert_eq!(
            decide(
                &[("GCE_METADATA_HOST", "")],
                &[("product_name", "ThinkPad X1\n")]
            ),
            Residency::Elsewhere(
                "its product name is \"ThinkPad X1\", and GCE_METADATA_HOST is not set".into()
            )
        );
        assert!(matches!(decide(&[], &[]), Residency::Elsewhere(_)));
    }
}
