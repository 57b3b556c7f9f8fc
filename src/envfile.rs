//! Writing variables for other programs to read: dotenv lines and shell `export` lines, quoted so
//! that the reader gets back exactly the bytes written.

/// Characters that need no quoting in either format.
fn is_plain(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@%+,=".contains(&b))
}

/// A dotenv value: bare when plain, single-quoted (literal) when it has no `'` or newline,
/// otherwise double-quoted with `\\`, `\"`, `\$` and `\n` escaped.
pub fn quote_dotenv(value: &str) -> String {
    if is_plain(value) {
        return value.to_string();
    }
    if !value.contains('\'') && !value.contains('\n') && !value.contains('\r') {
        return format!("'{value}'");
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell word: single-quoted, with `'` written as `'\''`.
pub fn quote_shell(value: &str) -> String {
    if is_plain(value) {
        return value.to_string();
    }
    format!("'{}'", value.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_bare() {
        assert_eq!(
            quote_dotenv("postgres://u:p@127.0.0.1:5432/db"),
            "postgres://u:p@127.0.0.1:5432/db"
        );
        assert_eq!(
            quote_shell("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn awkward_values_are_quoted() {
        assert_eq!(quote_dotenv("a b"), "'a b'");
        assert_eq!(quote_dotenv("it's $x"), "\"it's \\$x\"");
        assert_eq!(quote_shell("it's"), "'it'\\''s'");
    }

    #[test]
    fn dotenv_reads_back_what_was_written() {
        for value in [
            "plain",
            "a b",
            "it's",
            "$HOME and ${X}",
            "line1\nline2",
            "back\\slash",
            "q\"uote",
            "#hash",
        ] {
            let text = format!("K={}\n", quote_dotenv(value));
            let parsed: Vec<(String, String)> = dotenvy::from_read_iter(text.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(parsed, [("K".to_string(), value.to_string())], "{text}");
        }
    }

    #[test]
    fn shell_reads_back_what_was_written() {
        for value in ["it's", "$HOME `x` \"y\"", "a\nb", "-n"] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote_shell(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
        }
    }
}
