//! Where Google credentials and gcloud's settings are, found the way `gcp_auth` looks for them, by
//! reading variables and files only: no token is requested here and nothing of a key is kept.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// gcloud's user credentials file, where `gcp_auth` reads it: always under `$HOME/.config`.
pub const ADC_UNDER_HOME: &str = ".config/gcloud/application_default_credentials.json";
const ADC_FILE: &str = "application_default_credentials.json";

/// The variables that decide where credentials and the project come from.
#[derive(Debug, Clone, Default)]
pub struct GcpEnv {
    /// `GOOGLE_APPLICATION_CREDENTIALS`.
    pub credentials: Option<OsString>,
    pub home: Option<PathBuf>,
    /// `CLOUDSDK_CONFIG`: gcloud's configuration folder.
    pub cloudsdk_config: Option<PathBuf>,
    /// `CLOUDSDK_ACTIVE_CONFIG_NAME`.
    pub active_config: Option<String>,
    /// `CLOUDSDK_CORE_PROJECT`.
    pub core_project: Option<String>,
    /// `CLOUDSDK_CORE_ACCOUNT`.
    pub core_account: Option<String>,
    /// `GOOGLE_CLOUD_PROJECT`.
    pub google_cloud_project: Option<String>,
    /// `PATH`, to find `gcloud`.
    pub path: Option<OsString>,
}

impl GcpEnv {
    pub fn from_process() -> GcpEnv {
        let text = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        GcpEnv {
            credentials: std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS"),
            home: std::env::var_os("HOME").map(PathBuf::from),
            cloudsdk_config: text("CLOUDSDK_CONFIG").map(PathBuf::from),
            active_config: text("CLOUDSDK_ACTIVE_CONFIG_NAME"),
            core_project: text("CLOUDSDK_CORE_PROJECT"),
            core_account: text("CLOUDSDK_CORE_ACCOUNT"),
            google_cloud_project: text("GOOGLE_CLOUD_PROJECT"),
            path: std::env::var_os("PATH"),
        }
    }

    /// gcloud's configuration folder.
    pub fn gcloud_dir(&self) -> Option<PathBuf> {
        self.cloudsdk_config
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".config/gcloud")))
    }

    /// The active gcloud configuration's name.
    pub fn gcloud_config_name(&self) -> String {
        self.active_config
            .clone()
            .or_else(|| {
                let dir = self.gcloud_dir()?;
                let name = std::fs::read_to_string(dir.join("active_config")).ok()?;
                Some(name.trim().to_string()).filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| "default".to_string())
    }

    /// A `[core]` property of the active gcloud configuration.
    pub fn gcloud_core(&self, key: &str) -> Option<String> {
        let dir = self.gcloud_dir()?;
        let file = dir
            .join("configurations")
            .join(format!("config_{}", self.gcloud_config_name()));
        let text = std::fs::read_to_string(file).ok()?;
        ini_value(&text, "core", key)
    }
}

/// A `key = value` from an INI section, as gcloud writes its configurations.
pub fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string()).filter(|v| !v.is_empty());
        }
    }
    None
}

/// Where `gcp_auth` would get its tokens from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `GOOGLE_APPLICATION_CREDENTIALS` names a service-account key.
    ServiceAccountKey { path: PathBuf, email: String },
    /// gcloud's application-default user credentials.
    ApplicationDefault { path: PathBuf },
    /// The Google Cloud metadata server (on a Google Cloud machine).
    MetadataServer,
    /// `gcloud auth print-access-token` with gcloud's signed-in account.
    GcloudCli { account: String },
}

/// What looking at the files found before the metadata server would be asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileFinding {
    Found(Source),
    /// A source `gcp_auth` would use and fail on (it does not fall back to the next one).
    Broken {
        message: String,
        hint: String,
    },
    /// Nothing usable; notes on what was seen, for the message.
    NotFound(Vec<String>),
}

/// `GOOGLE_APPLICATION_CREDENTIALS`, then gcloud's application-default credentials file.
pub fn file_source(env: &GcpEnv) -> FileFinding {
    let mut notes = Vec::new();
    if let Some(var) = &env.credentials {
        return service_account_key(Path::new(var));
    }
    if let Some(home) = &env.home {
        let path = home.join(ADC_UNDER_HOME);
        match read_json(&path) {
            Ok(Some(json)) => {
                let has = |k: &str| json.get(k).and_then(|v| v.as_str()).is_some();
                if has("client_id") && has("client_secret") && has("refresh_token") {
                    return FileFinding::Found(Source::ApplicationDefault { path });
                }
                notes.push(format!(
                    "{} is a {:?} file, which gcp_auth does not read there (it wants `gcloud auth application-default login` user credentials)",
                    path.display(),
                    json.get("type").and_then(|t| t.as_str()).unwrap_or("unknown")
                ));
            }
            Ok(None) => {}
            Err(e) => notes.push(format!("{} cannot be read: {e}", path.display())),
        }
        if let Some(dir) = &env.cloudsdk_config {
            let elsewhere = dir.join(ADC_FILE);
            if elsewhere.is_file() && elsewhere != path {
                notes.push(format!(
                    "{} exists, but gcp_auth reads only {}",
                    elsewhere.display(),
                    path.display()
                ));
            }
        }
    }
    FileFinding::NotFound(notes)
}

/// `GOOGLE_APPLICATION_CREDENTIALS`: gcp_auth reads it as a service-account key and fails
/// (without trying anything else) when it is not one.
fn service_account_key(path: &Path) -> FileFinding {
    let broken = |message: String| {
        FileFinding::Broken {
        message,
        hint: "point GOOGLE_APPLICATION_CREDENTIALS at a service-account key file (JSON, \"type\": \"service_account\"), or unset it and run `gcloud auth application-default login`".into(),
    }
    };
    let shown = path.display();
    let json = match read_json(path) {
        Ok(Some(json)) => json,
        Ok(None) => {
            return broken(format!(
                "GOOGLE_APPLICATION_CREDENTIALS names {shown}, which does not exist"
            ));
        }
        Err(e) => {
            return broken(format!(
                "GOOGLE_APPLICATION_CREDENTIALS names {shown}, which cannot be read: {e}"
            ));
        }
    };
    let kind = json.get("type").and_then(|t| t.as_str()).unwrap_or("");
    if !kind.is_empty() && kind != "service_account" {
        return broken(format!(
            "GOOGLE_APPLICATION_CREDENTIALS names {shown}, a {kind:?} file; gcp_auth reads only service-account keys from it"
        ));
    }
    let field = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
    };
    let missing: Vec<&str> = ["client_email", "private_key", "token_uri"]
        .into_iter()
        .filter(|k| field(k).is_none())
        .collect();
    if !missing.is_empty() {
        return broken(format!(
            "GOOGLE_APPLICATION_CREDENTIALS names {shown}, which lacks {} (not a service-account key)",
            missing.join(", ")
        ));
    }
    FileFinding::Found(Source::ServiceAccountKey {
        path: path.to_path_buf(),
        email: field("client_email").unwrap_or_default().to_string(),
    })
}

/// The file as JSON; `Ok(None)` when it does not exist. Only the structure is kept in memory
/// long enough to look at key names and the account's e-mail; nothing of it is printed.
fn read_json(path: &Path) -> Result<Option<serde_json::Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("not JSON (line {}, column {})", e.line(), e.column()))
}

/// Why gcloud cannot give tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoGcloud {
    #[error("gcloud is not on PATH")]
    NotOnPath,
    #[error("gcloud has no signed-in account")]
    NoAccount,
}

/// gcloud on `PATH` with a signed-in account, as gcp_auth's last resort.
pub fn gcloud_source(env: &GcpEnv) -> Result<Source, NoGcloud> {
    let on_path = env
        .path
        .as_ref()
        .is_some_and(|p| std::env::split_paths(p).any(|d| d.join("gcloud").is_file()));
    if !on_path {
        return Err(NoGcloud::NotOnPath);
    }
    match env
        .core_account
        .clone()
        .or_else(|| env.gcloud_core("account"))
    {
        Some(account) => Ok(Source::GcloudCli { account }),
        None => Err(NoGcloud::NoAccount),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_in(dir: &Path) -> GcpEnv {
        GcpEnv {
            home: Some(dir.join("home")),
            cloudsdk_config: Some(dir.join("gcloud")),
            path: Some(OsString::new()),
            ..GcpEnv::default()
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn service_account_key_is_the_first_source() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        write(
            &key,
            r#"{"type":"service_account","client_email":"ci@p.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n","token_uri":"https://oauth2.googleapis.com/token"}"#,
        );
        // An ADC file too: the key still wins, as in gcp_auth.
        write(
            &dir.path().join("home").join(ADC_UNDER_HOME),
            r#"{"type":"authorized_user","client_id":"a","client_secret":"b","refresh_token":"c"}"#,
        );
        let mut env = env_in(dir.path());
        env.credentials = Some(key.clone().into());
        assert_eq!(
            file_source(&env),
            FileFinding::Found(Source::ServiceAccountKey {
                path: key,
                email: "ci@p.iam.gserviceaccount.com".into()
            })
        );
    }

    #[test]
    fn a_user_credentials_file_in_google_application_credentials_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("adc.json");
        write(
            &file,
            r#"{"type":"authorized_user","client_id":"a","client_secret":"b","refresh_token":"c"}"#,
        );
        let mut env = env_in(dir.path());
        env.credentials = Some(file.into());
        let FileFinding::Broken { message, hint } = file_source(&env) else {
            panic!("expected broken")
        };
        assert!(message.contains("\"authorized_user\""), "{message}");
        assert!(hint.contains("application-default login"), "{hint}");
        env.credentials = Some(dir.path().join("missing.json").into());
        assert!(
            matches!(file_source(&env), FileFinding::Broken { message, .. } if message.contains("does not exist"))
        );
    }

    #[test]
    fn application_default_credentials_are_read_under_home_only() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_in(dir.path());
        let elsewhere = dir.path().join("gcloud").join(ADC_FILE);
        write(
            &elsewhere,
            r#"{"type":"authorized_user","client_id":"a","client_secret":"b","refresh_token":"c"}"#,
        );
        let FileFinding::NotFound(notes) = file_source(&env) else {
            panic!("CLOUDSDK_CONFIG's copy is not where gcp_auth looks")
        };
        assert!(notes[0].contains("gcp_auth reads only"), "{notes:?}");
        let home_adc = dir.path().join("home").join(ADC_UNDER_HOME);
        std::fs::create_dir_all(home_adc.parent().unwrap()).unwrap();
        std::fs::copy(&elsewhere, &home_adc).unwrap();
        assert_eq!(
            file_source(&env),
            FileFinding::Found(Source::ApplicationDefault { path: home_adc })
        );
    }

    #[test]
    fn ini_values_come_from_their_section() {
        let text = "[auth]\naccount = no\n[core]\n account = yes@x \n";
        assert_eq!(ini_value(text, "core", "account").as_deref(), Some("yes@x"));
        assert_eq!(ini_value(text, "core", "project"), None);
    }

    #[test]
    fn gcloud_counts_only_with_a_signed_in_account() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        write(&bin.join("gcloud"), "#!/bin/sh\n");
        let mut env = env_in(dir.path());
        assert_eq!(gcloud_source(&env), Err(NoGcloud::NotOnPath));
        env.path = Some(bin.into_os_string());
        assert_eq!(gcloud_source(&env), Err(NoGcloud::NoAccount));
        write(&dir.path().join("gcloud/active_config"), "work\n");
        write(
            &dir.path().join("gcloud/configurations/config_work"),
            "[core]\naccount = dev@example.com\nproject = work-proj\n",
        );
        assert_eq!(
            gcloud_source(&env),
            Ok(Source::GcloudCli {
                account: "dev@example.com".into()
            })
        );
        assert_eq!(env.gcloud_config_name(), "work");
        assert_eq!(env.gcloud_core("project").as_deref(), Some("work-proj"));
    }
}
