//! Google credentials through gcp_auth, from the same places gcloud and Google's client libraries
//! look: `GOOGLE_APPLICATION_CREDENTIALS`, application-default credentials, the metadata server, gcloud.

use super::SecretsError;

/// The OAuth scope Secret Manager needs.
pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

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

/// An access token for the cloud-platform scope, from the first credentials gcp_auth finds.
pub async fn access_token() -> Result<AccessToken, SecretsError> {
    let provider = gcp_auth::provider().await.map_err(|source| {
        match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
            Some(path) if !matches!(source, gcp_auth::Error::NoAuthMethod(..)) => {
                SecretsError::CredentialsFile {
                    path: path.into(),
                    source,
                }
            }
            _ => SecretsError::NoCredentials,
        }
    })?;
    let token = provider
        .token(&[CLOUD_PLATFORM])
        .await
        .map_err(|source| SecretsError::Token { source })?;
    Ok(AccessToken(token.as_str().to_string()))
}
