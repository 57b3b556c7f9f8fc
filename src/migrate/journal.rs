//! A drizzle-kit migrations folder read exactly as drizzle-orm's migrator reads it: `meta/_journal.json`
//! entries in array order, each `<tag>.sql` split on `--> statement-breakpoint` (nothing trimmed).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The marker drizzle-kit writes between statements; drizzle-orm splits on it whatever the
/// journal entry's `breakpoints` says.
pub const BREAKPOINT: &str = "--> statement-breakpoint";

/// Where the journal lives inside the migrations folder.
pub const JOURNAL_FILE: &str = "meta/_journal.json";

/// Why a migrations folder cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("no migrations journal at {path}")]
    Missing { path: PathBuf },
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: the journal is for {dialect:?}, vibedev applies PostgreSQL migrations")]
    Dialect { path: PathBuf, dialect: String },
    #[error("{journal} lists {tag:?}, but {path} does not exist")]
    MissingFile {
        journal: PathBuf,
        tag: String,
        path: PathBuf,
    },
    #[error("{path} is not valid UTF-8 (byte {offset})")]
    NotUtf8 { path: PathBuf, offset: usize },
}

impl JournalError {
    pub fn hint(&self) -> Option<String> {
        match self {
            JournalError::Missing { .. } => Some(
                "generate migrations with `drizzle-kit generate`, or point `[migrations] dir` in vibedev.toml at the folder holding meta/_journal.json".into(),
            ),
            JournalError::MissingFile { .. } => Some(
                "restore the file, or regenerate the migrations with drizzle-kit so the journal and the folder agree".into(),
            ),
            JournalError::Syntax { .. } => {
                Some("the journal is written by drizzle-kit: restore it from version control".into())
            }
            JournalError::NotUtf8 { .. } => Some("save the file as UTF-8".into()),
            JournalError::Dialect { .. } | JournalError::Read { .. } => None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct JournalFile {
    #[serde(default)]
    dialect: Option<String>,
    entries: Vec<JournalEntry>,
}

#[derive(Debug, Deserialize)]
struct JournalEntry {
    when: i64,
    tag: String,
}

/// One statement of a migration: the text between breakpoints, as sent to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based position in the file.
    pub number: usize,
    /// Byte offset of the statement's first byte in the file.
    pub offset: usize,
    pub sql: String,
}

/// One journal entry with its file.
#[derive(Debug, Clone)]
pub struct Migration {
    pub tag: String,
    /// The entry's `when` (milliseconds): drizzle's `created_at`.
    pub when: i64,
    pub path: PathBuf,
    /// The path as shown to the user (relative to the project when inside it).
    pub display: String,
    /// Lowercase hex SHA-256 of the file's bytes: drizzle's `hash`.
    pub hash: String,
    pub text: String,
    pub statements: Vec<Statement>,
}

/// A migrations folder.
#[derive(Debug, Clone)]
pub struct Journal {
    pub dir: PathBuf,
    pub migrations: Vec<Migration>,
}

impl Journal {
    /// True when `dir` holds a journal (a folder without one is not a migrations folder).
    pub fn exists(dir: &Path) -> bool {
        dir.join(JOURNAL_FILE).is_file()
    }

    /// Reads the journal and every file it lists. `base` is the folder paths are shown relative to.
    pub fn load(dir: &Path, base: &Path) -> Result<Journal, JournalError> {
        let journal_path = dir.join(JOURNAL_FILE);
        if !journal_path.is_file() {
            return Err(JournalError::Missing { path: journal_path });
        }
        let text = read(&journal_path)?;
        let file: JournalFile = parse_journal(&journal_path, &text)?;
        if let Some(dialect) = &file.dialect
            && !matches!(dialect.as_str(), "postgresql" | "pg" | "postgres")
        {
            return Err(JournalError::Dialect {
                path: journal_path,
                dialect: dialect.clone(),
            });
        }
        let mut migrations = Vec::with_capacity(file.entries.len());
        for entry in file.entries {
            let path = dir.join(format!("{}.sql", entry.tag));
            let bytes = std::fs::read(&path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    JournalError::MissingFile {
                        journal: journal_path.clone(),
                        tag: entry.tag.clone(),
                        path: path.clone(),
                    }
                } else {
                    JournalError::Read {
                        path: path.clone(),
                        source,
                    }
                }
            })?;
            let hash = sha256_hex(&bytes);
            let text = String::from_utf8(bytes).map_err(|e| JournalError::NotUtf8 {
                path: path.clone(),
                offset: e.utf8_error().valid_up_to(),
            })?;
            migrations.push(Migration {
                statements: split_statements(&text),
                display: display_path(&path, base),
                tag: entry.tag,
                when: entry.when,
                path,
                hash,
                text,
            });
        }
        Ok(Journal {
            dir: dir.to_path_buf(),
            migrations,
        })
    }
}

fn read(path: &Path) -> Result<String, JournalError> {
    std::fs::read_to_string(path).map_err(|source| JournalError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn parse_journal(path: &Path, text: &str) -> Result<JournalFile, JournalError> {
    serde_json::from_str(text).map_err(|e| JournalError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })
}

/// Splits a migration exactly as drizzle-orm does (`sql.split('--> statement-breakpoint')`):
/// every piece is kept, whitespace and all, so the server sees the same text.
pub fn split_statements(text: &str) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut offset = 0;
    for (i, piece) in text.split(BREAKPOINT).enumerate() {
        out.push(Statement {
            number: i + 1,
            offset,
            sql: piece.to_string(),
        });
        offset += piece.len() + BREAKPOINT.len();
    }
    out
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `path` relative to `base` when inside it, for messages.
pub fn display_path(path: &Path, base: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    crate::config::line_column(text, offset)
}

/// Maps the server's error position (1-based, in characters, into the text sent) within a
/// statement back to a byte offset in the whole file.
pub fn file_offset(statement: &Statement, position: u32) -> usize {
    let chars = position.saturating_sub(1) as usize;
    let within = statement
        .sql
        .char_indices()
        .nth(chars)
        .map_or(statement.sql.len(), |(i, _)| i);
    statement.offset + within
}

/// Byte offset of the first non-blank character of a statement (where it "starts" for a reader).
pub fn statement_start(statement: &Statement) -> usize {
    let skipped = statement.sql.len() - statement.sql.trim_start().len();
    statement.offset + skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name)
    }

    #[test]
    fn split_keeps_every_piece_untrimmed() {
        let text = "CREATE TABLE a();--> statement-breakpoint\nCREATE TABLE b();\n--> statement-breakpoint\n";
        let parts = split_statements(text);
        let sqls: Vec<&str> = parts.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(sqls, ["CREATE TABLE a();", "\nCREATE TABLE b();\n", "\n"]);
        assert_eq!(
            parts[1].offset,
            "CREATE TABLE a();".len() + BREAKPOINT.len()
        );
        // The pieces and markers rebuild the file byte for byte.
        assert_eq!(sqls.join(BREAKPOINT), text);
    }

    #[test]
    fn fixture_journal_loads_in_array_order_with_file_hashes() {
        let dir = fixture("drizzle-pg");
        let j = Journal::load(&dir, &dir).unwrap();
        let tags: Vec<&str> = j.migrations.iter().map(|m| m.tag.as_str()).collect();
        assert_eq!(
            tags,
            [
                "0000_initial_schema",
                "0001_apps_fork_count",
                "0002_app_deployments"
            ]
        );
        assert_eq!(j.migrations[0].when, 1795690293510);
        let bytes = std::fs::read(dir.join("0000_initial_schema.sql")).unwrap();
        assert_eq!(j.migrations[0].hash, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(j.migrations[0].statements.len(), 127);
        assert_eq!(j.migrations[0].display, "0000_initial_schema.sql");
    }

    #[test]
    fn entries_are_not_sorted_by_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            r#"{"dialect":"postgresql","entries":[{"idx":0,"when":2,"tag":"b","breakpoints":true},{"idx":1,"when":1,"tag":"a","breakpoints":false}]}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.path().join("b.sql"), "SELECT 2;").unwrap();
        let j = Journal::load(dir.path(), dir.path()).unwrap();
        assert_eq!(j.migrations[0].tag, "b");
        assert_eq!(j.migrations[1].tag, "a");
    }

    #[test]
    fn a_missing_file_names_the_tag() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            r#"{"entries":[{"when":1,"tag":"0000_gone"}]}"#,
        )
        .unwrap();
        let err = Journal::load(dir.path(), dir.path()).unwrap_err();
        assert!(matches!(err, JournalError::MissingFile { ref tag, .. } if tag == "0000_gone"));
        assert!(err.hint().is_some());
    }

    #[test]
    fn a_broken_journal_names_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(dir.path().join(JOURNAL_FILE), "{\n  \"entries\": [,]\n}").unwrap();
        match Journal::load(dir.path(), dir.path()).unwrap_err() {
            JournalError::Syntax { line, .. } => assert_eq!(line, 2),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_mysql_journal_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("meta")).unwrap();
        std::fs::write(
            dir.path().join(JOURNAL_FILE),
            r#"{"dialect":"mysql","entries":[]}"#,
        )
        .unwrap();
        assert!(matches!(
            Journal::load(dir.path(), dir.path()),
            Err(JournalError::Dialect { .. })
        ));
    }

    #[test]
    fn server_positions_map_to_file_lines() {
        let text = "CREATE TABLE a();\n--> statement-breakpoint\nALTER TABLE \"é\"\n  ADD COLUMN x integr;";
        let parts = split_statements(text);
        let stmt = &parts[1];
        // Postgres counts characters from 1 within the text it was sent.
        let pos = stmt.sql.chars().position(|c| c == 'i').unwrap() as u32 + 1;
        let (line, column) = line_column(text, file_offset(stmt, pos));
        assert_eq!((line, column), (4, 16));
        assert_eq!(line_column(text, statement_start(stmt)).0, 3);
    }
}
