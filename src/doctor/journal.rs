//! Just enough of drizzle-kit's `meta/_journal.json` for the doctor: the entries' tags and times,
//! with parse errors at line and column. Kept apart so the full migrations module can replace it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// One journal entry: the migration `<tag>.sql` and its `when` (milliseconds).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub tag: String,
    pub when: u64,
}

#[derive(Debug, Deserialize)]
struct Journal {
    entries: Vec<Entry>,
}

/// Why a journal could not be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path} does not exist")]
    Missing { path: PathBuf },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// The journal of the migrations folder `dir`.
pub fn read(dir: &Path) -> Result<Vec<Entry>, JournalError> {
    let path = dir.join("meta").join("_journal.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(JournalError::Missing { path });
        }
        Err(source) => return Err(JournalError::Read { path, source }),
    };
    parse(&path, &text)
}

/// Parses journal text; `path` is for messages.
pub fn parse(path: &Path, text: &str) -> Result<Vec<Entry>, JournalError> {
    serde_json::from_str::<Journal>(text)
        .map(|j| j.entries)
        .map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the position is shown in front instead.
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_string();
            JournalError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                message,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tags_and_times_in_array_order() {
        let text = r#"{"version":"7","dialect":"postgresql","entries":[
            {"idx":1,"version":"7","when":1700000000002,"tag":"0001_b","breakpoints":true},
            {"idx":0,"version":"7","when":1700000000001,"tag":"0000_a","breakpoints":true}]}"#;
        let entries = parse(Path::new("j.json"), text).unwrap();
        assert_eq!(entries[0].tag, "0001_b");
        assert_eq!(entries[1].when, 1700000000001);
    }

    #[test]
    fn a_broken_journal_names_line_and_column() {
        let err = parse(
            Path::new("d/meta/_journal.json"),
            "{\"entries\": [\n  {\"tag\": 3}]}",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("d/meta/_journal.json:2:"), "{err}");
        assert!(err.contains("invalid type"), "{err}");
    }
}
