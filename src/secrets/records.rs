//! What `.env.gcp`'s header records about each secret: the version a pull resolved and a keyed
//! fingerprint of the value (HMAC-SHA256 under a per-machine key), so that `secrets diff` can
//! tell what changed while the file reveals nothing about a value beyond the value itself.

use std::io::Write;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::SecretsError;

/// The per-machine key's file name, in [`crate::dirs::state_dir`].
const KEY_FILE: &str = "fingerprint.key";
/// Bytes of the per-machine key.
const KEY_LEN: usize = 32;
/// Bytes of a fingerprint as recorded (128 bits, 32 hex digits).
const FINGERPRINT_LEN: usize = 16;
/// Prefix of the header line naming the key the fingerprints were made with.
const KEY_LINE: &str = "fingerprint key: ";

/// The machine's fingerprint key. `Debug` never shows it.
#[derive(Clone)]
pub struct MachineKey {
    bytes: [u8; KEY_LEN],
}

impl std::fmt::Debug for MachineKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MachineKey({})", self.id())
    }
}

impl MachineKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> MachineKey {
        MachineKey { bytes }
    }

    /// A short public name for the key (8 hex digits of a hash of it), recorded in the header
    /// so that fingerprints made with another machine's key are not compared.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"vibedev fingerprint key id\0")
            .chain_update(self.bytes)
            .finalize();
        hex::encode(&digest[..4])
    }

    /// The fingerprint of the value `secret` delivers (the variable's text, or the file's bytes
    /// for `file="..."`): HMAC-SHA256 of the secret's name and the bytes, cut to 128 bits.
    pub fn fingerprint(&self, secret: &str, delivered: &[u8]) -> String {
        let mac = hmac_sha256(
            &self.bytes,
            &[
                b"vibedev-fingerprint-v1\0",
                secret.as_bytes(),
                b"\0",
                delivered,
            ],
        );
        hex::encode(&mac[..FINGERPRINT_LEN])
    }

    /// The machine's key, made (32 random bytes, mode 0600 in a 0700 folder) the first time.
    pub fn load_or_create() -> Result<MachineKey, SecretsError> {
        let dir = crate::dirs::state_dir().ok_or(SecretsError::NoStateDir)?;
        load_or_create_in(&dir)
    }
}

fn load_or_create_in(dir: &Path) -> Result<MachineKey, SecretsError> {
    let path = dir.join(KEY_FILE);
    let bad = |why: String| SecretsError::FingerprintKey {
        path: path.clone(),
        why,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; KEY_LEN]>::try_from(b).ok())
                .ok_or_else(|| bad(format!("it does not hold {KEY_LEN} bytes in hex")))?;
            return Ok(MachineKey::from_bytes(bytes));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(bad(e.to_string())),
    }
    crate::dirs::create_private(dir).map_err(|e| bad(format!("cannot create its folder: {e}")))?;
    let bytes: [u8; KEY_LEN] = rand::random();
    // Written whole under a temporary name, then linked into place: a second vibedev making
    // its key at the same moment finds this one (or its own wins and this one is read back).
    let mut tmp = tempfile::Builder::new()
        .prefix(".fingerprint-")
        .tempfile_in(dir)
        .map_err(|e| bad(e.to_string()))?;
    set_mode(tmp.as_file(), 0o600).map_err(|e| bad(e.to_string()))?;
    tmp.write_all(format!("{}\n", hex::encode(bytes)).as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| bad(e.to_string()))?;
    match tmp.persist_noclobber(&path) {
        Ok(_) => Ok(MachineKey::from_bytes(bytes)),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => load_or_create_in(dir),
        Err(e) => Err(bad(e.error.to_string())),
    }
}

#[cfg(unix)]
fn set_mode(file: &std::fs::File, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36));
    for part in parts {
        inner.update(part);
    }
    Sha256::new()
        .chain_update(block.map(|b| b ^ 0x5c))
        .chain_update(inner.finalize())
        .finalize()
        .into()
}

/// One secret variable as a pull wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: String,
    pub secret: String,
    /// The version number served (`latest` resolved).
    pub version: String,
    pub fingerprint: String,
}

impl Record {
    fn line(&self) -> String {
        format!(
            "{}: secret {}, version {}, fingerprint {}",
            self.key, self.secret, self.version, self.fingerprint
        )
    }

    fn parse(line: &str) -> Option<Record> {
        let (key, rest) = line.split_once(": secret ")?;
        let (secret, rest) = rest.split_once(", version ")?;
        let (version, fingerprint) = rest.split_once(", fingerprint ")?;
        let ok = crate::envfile::valid_key(key)
            && !secret.is_empty()
            && !secret.contains(char::is_whitespace)
            && !version.is_empty()
            && fingerprint.len() == FINGERPRINT_LEN * 2
            && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| Record {
            key: key.to_string(),
            secret: secret.to_string(),
            version: version.to_string(),
            fingerprint: fingerprint.to_string(),
        })
    }
}

/// The header lines (without `# `) recording `records` made with `key`.
pub fn header_lines(key: &MachineKey, records: &[Record]) -> Vec<String> {
    if records.is_empty() {
        return Vec::new();
    }
    let mut lines = vec![format!(
        "{KEY_LINE}{} (each secret's version, and an HMAC-SHA256 of its value under this machine's key: `vibedev secrets diff`)",
        key.id()
    )];
    lines.extend(records.iter().map(Record::line));
    lines
}

/// What a file's header says: the records, the id of the key they were made with, and when it
/// was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub key_id: Option<String>,
    pub records: Vec<Record>,
    /// `written: ...` (UTC).
    pub written: Option<chrono::DateTime<chrono::Utc>>,
}

impl Header {
    /// Reads the comment lines of `text` (the managed part of `.env.gcp`).
    pub fn parse(text: &str) -> Header {
        let mut header = Header::default();
        for line in text.lines() {
            let Some(comment) = line.strip_prefix("# ") else {
                continue;
            };
            if let Some(rest) = comment.strip_prefix(KEY_LINE) {
                header.key_id = rest.split_whitespace().next().map(str::to_string);
            } else if let Some(record) = Record::parse(comment) {
                header.records.push(record);
            } else if let Some((_, when)) = comment.split_once("; written: ") {
                header.written = chrono::DateTime::parse_from_rfc3339(when.trim())
                    .ok()
                    .map(|t| t.with_timezone(&chrono::Utc));
            }
        }
        header
    }

    pub fn record(&self, key: &str) -> Option<&Record> {
        self.records.iter().find(|r| r.key == key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2: key "Jefe".
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn fingerprints_depend_on_key_secret_and_value() {
        let a = MachineKey::from_bytes([1; KEY_LEN]);
        let b = MachineKey::from_bytes([2; KEY_LEN]);
        let fp = a.fingerprint("jwt-secret", b"value-1");
        assert_eq!(fp.len(), 32);
        assert_eq!(fp, a.fingerprint("jwt-secret", b"value-1"));
        assert_ne!(fp, a.fingerprint("jwt-secret", b"value-2"));
        assert_ne!(fp, a.fingerprint("other-secret", b"value-1"));
        assert_ne!(fp, b.fingerprint("jwt-secret", b"value-1"));
        assert_ne!(a.id(), b.id());
        assert!(!format!("{a:?}").contains("0101"));
    }

    #[test]
    fn header_records_read_back() {
        let key = MachineKey::from_bytes([7; KEY_LEN]);
        let records = vec![
            Record {
                key: "JWT_SECRET".into(),
                secret: "jwt-secret".into(),
                version: "5".into(),
                fingerprint: key.fingerprint("jwt-secret", b"x"),
            },
            Record {
                key: "DB_PASSWORD".into(),
                secret: "db-password".into(),
                version: "1".into(),
                fingerprint: key.fingerprint("db-password", b"y"),
            },
        ];
        let mut header = vec!["project: p; template: t; written: 2026-01-02T03:04:05Z".to_string()];
        header.extend(header_lines(&key, &records));
        let text = crate::envfile::render(&header, &[("A".into(), "1".into())], None);
        let parsed = Header::parse(&text);
        assert_eq!(parsed.records, records);
        assert_eq!(parsed.key_id, Some(key.id()));
        assert_eq!(
            parsed.written.map(|t| t.to_rfc3339()),
            Some("2026-01-02T03:04:05+00:00".to_string())
        );
        assert_eq!(header_lines(&key, &[]), Vec::<String>::new());
    }

    #[test]
    fn the_machine_key_is_made_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state/vibedev");
        let first = load_or_create_in(&state).unwrap();
        let second = load_or_create_in(&state).unwrap();
        assert_eq!(first.id(), second.id());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&state.join(KEY_FILE)), 0o600);
        assert_eq!(mode(&state), 0o700);
        std::fs::write(state.join(KEY_FILE), "short\n").unwrap();
        let err = load_or_create_in(&state).unwrap_err().to_string();
        assert!(err.contains("fingerprint.key"), "{err}");
    }
}
