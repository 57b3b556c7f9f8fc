//! Just enough of PostgreSQL's lexer to find where the statements of a piece of SQL begin and end
//! (outside comments, strings, quoted names and dollar quotes) and which ones control transactions.

/// What a statement does to the transaction it runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxControl {
    /// `BEGIN`, `START TRANSACTION`: opens a transaction block.
    Begin,
    /// `COMMIT`, `END`: commits what ran since the block began.
    Commit,
    /// `COMMIT AND CHAIN`: commits, then opens a new block at once.
    CommitAndChain,
    /// `ROLLBACK`, `ABORT` (not `ROLLBACK TO SAVEPOINT`): discards it.
    Rollback,
}

impl TxControl {
    /// Closes the block that was open (what ran since its start is committed or discarded).
    pub fn closes(self) -> bool {
        !matches!(self, TxControl::Begin)
    }
}

/// One statement found in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlStatement {
    /// Byte offset of its first word (after blanks and comments).
    pub start: usize,
    /// Byte offset just past its last character (before the `;`).
    pub end: usize,
    pub tx: Option<TxControl>,
}

impl SqlStatement {
    /// The statement's first line, blanks collapsed and cut to `max` characters, for messages.
    pub fn excerpt(&self, text: &str, max: usize) -> String {
        let first = text[self.start..self.end]
            .lines()
            .next()
            .unwrap_or_default();
        let words: Vec<&str> = first.split_whitespace().collect();
        let line = words.join(" ");
        if line.chars().count() > max {
            let cut: String = line.chars().take(max.saturating_sub(3)).collect();
            format!("{cut}...")
        } else {
            line
        }
    }
}

/// The statements of `text` in order; pieces holding only blanks and comments are not statements
/// (the server skips them too).
pub fn statements(text: &str) -> Vec<SqlStatement> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start: Option<usize> = None;
    let mut last_end = 0;
    // `BEGIN ATOMIC ... END` bodies (SQL-standard function bodies) hold semicolons.
    let mut atomic_depth = 0usize;
    let mut prev_word = String::new();
    let mut word_count = 0usize;
    let mut i = 0;
    let finish =
        |out: &mut Vec<SqlStatement>, words: &mut Vec<String>, start: usize, end: usize| {
            out.push(SqlStatement {
                start,
                end,
                tx: classify(words),
            });
            words.clear();
        };
    while i < bytes.len() {
        let c = bytes[i];
        let token_start = i;
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                i += 1;
                continue;
            }
            b';' if atomic_depth == 0 => {
                if let Some(s) = start.take() {
                    finish(&mut out, &mut words, s, last_end);
                }
                word_count = 0;
                prev_word.clear();
                i += 1;
                continue;
            }
            b'\'' => {
                let escapes =
                    i > 0 && matches!(bytes[i - 1], b'e' | b'E') && is_escape_prefix(bytes, i - 1);
                i = skip_quoted(bytes, i, b'\'', escapes);
            }
            b'"' => i = skip_quoted(bytes, i, b'"', false),
            b'$' if !(i > 0 && is_ident(bytes[i - 1])) => {
                i = match dollar_tag(bytes, i) {
                    Some(tag_end) => skip_dollar_quoted(bytes, i, tag_end),
                    None => i + 1,
                };
            }
            c if is_ident_start(c) => {
                while i < bytes.len() && is_ident(bytes[i]) {
                    i += 1;
                }
                let word = text[token_start..i].to_ascii_uppercase();
                if atomic_depth > 0 {
                    match word.as_str() {
                        "CASE" => atomic_depth += 1,
                        "END" => atomic_depth -= 1,
                        _ => {}
                    }
                } else if word == "ATOMIC" && word_count > 1 && prev_word == "BEGIN" {
                    atomic_depth = 1;
                }
                if words.len() < 3 {
                    words.push(word.clone());
                }
                word_count += 1;
                prev_word = word;
            }
            _ => i += char_len(c),
        }
        start.get_or_insert(token_start);
        last_end = i;
    }
    if let Some(s) = start {
        finish(&mut out, &mut words, s, last_end);
    }
    out
}

/// The statements committed before a failure, as `(piece, statement)` indexes, for a file sent
/// piece by piece inside one transaction block that the file's own control statements may end.
///
/// The server's rules: a `COMMIT` commits what ran since the block began; outside a block, the
/// rest of a piece runs as one implicit transaction, committed when the piece completes (and
/// rolled back with it when a later statement of the same piece fails); a `BEGIN` opens a block
/// that takes in what the piece ran before it. The failing statement and everything still
/// uncommitted at that point are rolled back.
pub fn committed_before(
    pieces: &[Vec<SqlStatement>],
    failed_piece: usize,
    failed_statement: usize,
) -> Vec<(usize, usize)> {
    let mut committed = Vec::new();
    let mut open: Vec<(usize, usize)> = Vec::new();
    // The runner's own BEGIN.
    let mut explicit = true;
    for (p, piece) in pieces.iter().enumerate().take(failed_piece + 1) {
        for (s, statement) in piece.iter().enumerate() {
            if (p, s) == (failed_piece, failed_statement) {
                return committed;
            }
            match statement.tx {
                Some(TxControl::Begin) => explicit = true,
                Some(TxControl::Commit) | Some(TxControl::CommitAndChain) => {
                    committed.append(&mut open);
                    explicit = statement.tx == Some(TxControl::CommitAndChain);
                }
                Some(TxControl::Rollback) => {
                    open.clear();
                    explicit = false;
                }
                None => open.push((p, s)),
            }
        }
        if !explicit {
            committed.append(&mut open);
        }
    }
    committed
}

/// The transaction control a statement's first words make, if any.
fn classify(words: &[String]) -> Option<TxControl> {
    let w = |n: usize| words.get(n).map(String::as_str);
    match (w(0)?, w(1), w(2)) {
        ("BEGIN", _, _) => Some(TxControl::Begin),
        ("START", Some("TRANSACTION"), _) => Some(TxControl::Begin),
        ("COMMIT" | "END", Some("PREPARED"), _) => None,
        ("COMMIT" | "END", Some("AND"), Some("CHAIN")) => Some(TxControl::CommitAndChain),
        ("COMMIT" | "END", Some("WORK" | "TRANSACTION"), Some("AND")) => {
            Some(TxControl::CommitAndChain)
        }
        ("COMMIT" | "END", _, _) => Some(TxControl::Commit),
        ("ROLLBACK" | "ABORT", Some("PREPARED" | "TO"), _) => None,
        ("ROLLBACK" | "ABORT", Some("WORK" | "TRANSACTION"), Some("TO")) => None,
        ("ROLLBACK" | "ABORT", _, _) => Some(TxControl::Rollback),
        _ => None,
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

fn char_len(c: u8) -> usize {
    match c {
        0xf0..=0xff => 4,
        0xe0..=0xef => 3,
        0xc0..=0xdf => 2,
        _ => 1,
    }
}

/// True when the `e`/`E` at `i` stands alone (`E'...'`), not at the end of a longer word.
fn is_escape_prefix(bytes: &[u8], i: usize) -> bool {
    i == 0 || !is_ident(bytes[i - 1])
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    // Block comments nest in PostgreSQL.
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Past the closing quote (a doubled quote is part of the text).
fn skip_quoted(bytes: &[u8], mut i: usize, quote: u8, backslash_escapes: bool) -> usize {
    i += 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// The end (exclusive) of a dollar-quote opening tag at `i` (`$$`, `$body$`), if it is one.
fn dollar_tag(bytes: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    if bytes.get(j).is_some_and(|c| c.is_ascii_digit()) {
        return None; // `$1`: a parameter
    }
    while j < bytes.len()
        && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] >= 0x80)
    {
        j += 1;
    }
    (bytes.get(j) == Some(&b'$')).then_some(j + 1)
}

fn skip_dollar_quoted(bytes: &[u8], i: usize, tag_end: usize) -> usize {
    let tag = &bytes[i..tag_end];
    let body = &bytes[tag_end..];
    match body.windows(tag.len()).position(|w| w == tag) {
        Some(p) => tag_end + p + tag.len(),
        None => bytes.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(text: &str) -> Vec<Option<TxControl>> {
        statements(text).iter().map(|s| s.tx).collect()
    }

    fn firsts(text: &str) -> Vec<&str> {
        statements(text)
            .iter()
            .map(|s| text[s.start..s.end].split_whitespace().next().unwrap_or(""))
            .collect()
    }

    #[test]
    fn statements_skip_comments_and_blanks() {
        let text = "-- a comment; not a statement\n/* block; /* nested; */ still */\nBEGIN;\n\nCREATE TABLE a (x int);\n  ;\n";
        let s = statements(text);
        assert_eq!(s.len(), 2);
        assert_eq!(&text[s[0].start..s[0].end], "BEGIN");
        assert_eq!(&text[s[1].start..s[1].end], "CREATE TABLE a (x int)");
        assert_eq!(tx(text), [Some(TxControl::Begin), None]);
    }

    #[test]
    fn transaction_control_is_found_only_outside_quotes() {
        let text = "COMMIT;\nCREATE INDEX CONCURRENTLY i ON t (x);\nbegin;\n\
            SELECT 'COMMIT; ROLLBACK;', E'it\\'s; END', \"end;\";\n\
            CREATE FUNCTION f() RETURNS trigger AS $body$ BEGIN; COMMIT; END; $body$ LANGUAGE plpgsql;\n\
            DO $$ BEGIN ROLLBACK; END $$;\n\
            ROLLBACK TO SAVEPOINT s; END; abort; start transaction; COMMIT AND CHAIN; COMMIT PREPARED 'x'";
        assert_eq!(
            tx(text),
            [
                Some(TxControl::Commit),
                None,
                Some(TxControl::Begin),
                None,
                None,
                None,
                None,
                Some(TxControl::Commit),
                Some(TxControl::Rollback),
                Some(TxControl::Begin),
                Some(TxControl::CommitAndChain),
                None,
            ]
        );
    }

    #[test]
    fn atomic_function_bodies_keep_their_semicolons() {
        let text = "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN a > 0 THEN 1 END;\n  SELECT 2;\nEND;\nCOMMIT;";
        assert_eq!(firsts(text), ["CREATE", "COMMIT"]);
        assert_eq!(tx(text), [None, Some(TxControl::Commit)]);
    }

    #[test]
    fn parameters_and_dollar_names_are_not_quotes() {
        let text = "SELECT $1, a$b$ FROM t; COMMIT";
        assert_eq!(tx(text), [None, Some(TxControl::Commit)]);
        // An unterminated quote swallows the rest, as the server would refuse it anyway.
        assert_eq!(statements("SELECT 'x; COMMIT").len(), 1);
    }

    fn pieces(texts: &[&str]) -> Vec<Vec<SqlStatement>> {
        texts.iter().map(|t| statements(t)).collect()
    }

    #[test]
    fn without_transaction_control_nothing_is_committed_before_a_failure() {
        let p = pieces(&[
            "CREATE TABLE a ();",
            "CREATE TABLE b (); SELECT 1;",
            "BROKEN",
        ]);
        assert!(committed_before(&p, 2, 0).is_empty());
        assert!(committed_before(&p, 1, 1).is_empty());
    }

    #[test]
    fn a_commit_keeps_what_ran_before_it_and_what_ran_after_it_in_completed_pieces() {
        // drizzle-kit's breakpoints around CREATE INDEX CONCURRENTLY.
        let p = pieces(&[
            "CREATE TABLE a ();",
            "COMMIT;",
            "CREATE INDEX CONCURRENTLY i ON a (x);",
            "BEGIN;",
            "CREATE TABLE b ();",
            "BROKEN",
        ]);
        assert_eq!(committed_before(&p, 5, 0), [(0, 0), (2, 0)]);
        assert_eq!(committed_before(&p, 2, 0), [(0, 0)]);
        assert!(committed_before(&p, 0, 0).is_empty());
    }

    #[test]
    fn statements_after_a_commit_in_the_failing_piece_roll_back_with_it() {
        let p = pieces(&["CREATE TABLE a (); COMMIT; CREATE TABLE b (); BROKEN;"]);
        assert_eq!(committed_before(&p, 0, 3), [(0, 0)]);
        // In a later piece, the implicit transaction of the completed piece was committed.
        let p = pieces(&["CREATE TABLE a (); COMMIT; CREATE TABLE b ();", "BROKEN"]);
        assert_eq!(committed_before(&p, 1, 0), [(0, 0), (0, 2)]);
    }

    #[test]
    fn a_rollback_discards_and_a_begin_takes_in_the_piece_so_far() {
        let p = pieces(&[
            "CREATE TABLE a (); ROLLBACK; CREATE TABLE b (); BEGIN; CREATE TABLE c ();",
            "BROKEN",
        ]);
        assert!(committed_before(&p, 1, 0).is_empty());
        let p = pieces(&["COMMIT AND CHAIN; CREATE TABLE a ();", "BROKEN"]);
        assert!(committed_before(&p, 1, 0).is_empty());
    }

    #[test]
    fn excerpts_are_one_short_line() {
        let text = "  CREATE   INDEX CONCURRENTLY \"idx\"\n ON t (x);";
        let s = &statements(text)[0];
        assert_eq!(s.excerpt(text, 80), "CREATE INDEX CONCURRENTLY \"idx\"");
        assert_eq!(s.excerpt(text, 12), "CREATE IN...");
    }
}
