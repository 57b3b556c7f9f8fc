//! The env template language: which secrets go into `.env.gcp` under which names. The syntax is
//! documented in the header of the built-in template, `templates/env.gcp.tmpl`.

use std::collections::HashMap;

use crate::envfile::valid_key;

/// The built-in template, used when the config names none.
pub const BUILTIN: &str = include_str!("../../templates/env.gcp.tmpl");

/// How a secret's bytes become the variable's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The bytes as UTF-8 text (an error when they are not).
    Text,
    /// The bytes base64-encoded (standard alphabet, padded).
    Base64,
}

/// One meaningful line of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `KEY={{ secret "name" ... }}`
    Secret {
        key: String,
        secret: String,
        version: String,
        encoding: Encoding,
        /// `file="NAME"`: the value goes into this file of the files folder beside `.env.gcp`,
        /// and the variable holds the file's path.
        file: Option<String>,
        line: usize,
    },
    /// `KEY=value`, copied as written.
    Literal {
        key: String,
        value: String,
        line: usize,
    },
    /// `{{ secrets filter="..." ... }}`
    Filter {
        filter: String,
        prefix: String,
        version: String,
        encoding: Encoding,
        line: usize,
    },
}

/// A template error, at a line and column (1-based, in characters) of the named source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct TemplateError {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    /// Where it came from, for messages and the file header.
    pub source_name: String,
    pub entries: Vec<Entry>,
}

impl Template {
    /// The keys written out explicitly (secret and literal lines).
    pub fn explicit_keys(&self) -> Vec<&str> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Secret { key, .. } | Entry::Literal { key, .. } => Some(key.as_str()),
                Entry::Filter { .. } => None,
            })
            .collect()
    }
}

/// The variable name a `secrets filter` gives a secret: `prefix`, then the secret's name
/// upper-cased with `-` turned into `_`; `None` when that is not a valid name.
pub fn derived_key(prefix: &str, secret: &str) -> Option<String> {
    let key = format!("{prefix}{}", secret.to_uppercase().replace('-', "_"));
    valid_key(&key).then_some(key)
}

/// Secret ids as Secret Manager allows them.
pub fn valid_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// File names for `file="..."`: one plain name inside the files folder.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

fn valid_version(v: &str) -> bool {
    v == "latest" || (!v.is_empty() && v.chars().all(|c| c.is_ascii_digit()) && !v.starts_with('0'))
}

/// Parses template text; `source_name` names it in errors.
pub fn parse(source_name: &str, text: &str) -> Result<Template, TemplateError> {
    let err = |line: usize, raw: &str, at: usize, message: String| TemplateError {
        source_name: source_name.to_string(),
        line,
        column: column_of(raw, at),
        message,
    };
    let mut entries = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut files: HashMap<String, usize> = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let entry = parse_line(raw, line).map_err(|(at, m)| err(line, raw, at, m))?;
        if let Entry::Secret { key, .. } | Entry::Literal { key, .. } = &entry
            && let Some(first) = seen.insert(key.clone(), line)
        {
            let at = raw.len() - raw.trim_start().len();
            return Err(err(
                line,
                raw,
                at,
                format!("{key} is already defined on line {first}"),
            ));
        }
        if let Entry::Secret {
            file: Some(file), ..
        } = &entry
            && let Some(first) = files.insert(file.clone(), line)
        {
            let at = raw.rfind("file=").unwrap_or(0);
            return Err(err(
                line,
                raw,
                at,
                format!("file {file:?} is already used on line {first}"),
            ));
        }
        entries.push(entry);
    }
    Ok(Template {
        source_name: source_name.to_string(),
        entries,
    })
}

/// The 1-based column (in characters) of byte offset `at` of `line`.
fn column_of(line: &str, at: usize) -> usize {
    let at = at.min(line.len());
    line.char_indices().take_while(|(i, _)| *i < at).count() + 1
}

/// A mistake at a byte offset of the line.
type Located<T> = Result<T, (usize, String)>;

/// Parses one line; errors carry the byte offset (in `raw`) of what is wrong.
fn parse_line(raw: &str, number: usize) -> Located<Entry> {
    let start = raw.len() - raw.trim_start().len();
    let line = raw.trim();
    if line.starts_with("{{") {
        let expr = parse_expr(raw, start)?;
        if expr.word != "secrets" {
            return Err((
                expr.word_at,
                format!(
                    "`{{{{ {} ... }}}}` on a line of its own must be `{{{{ secrets filter=\"...\" }}}}`; a single secret is written KEY={{{{ secret \"name\" }}}}",
                    expr.word
                ),
            ));
        }
        if let Some((at, arg)) = expr.positional {
            return Err((
                at,
                format!("`secrets` takes attributes only (filter=\"...\"), not {arg:?}"),
            ));
        }
        let mut attrs = expr.attrs;
        let filter = match attrs.remove("filter") {
            Some((_, f)) if !f.trim().is_empty() => f,
            Some((at, _)) => return Err((at, "the filter is empty".into())),
            None => {
                return Err((
                    expr.word_at,
                    "`secrets` needs a filter, such as filter=\"labels.env=dev\"".into(),
                ));
            }
        };
        let prefix = match attrs.remove("prefix") {
            Some((at, prefix)) => {
                if !prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                {
                    return Err((
                        at,
                        format!("prefix {prefix:?} may only use A-Z, a-z, 0-9 and _"),
                    ));
                }
                prefix
            }
            None => String::new(),
        };
        let (version, encoding) = version_and_encoding(&mut attrs)?;
        no_other_attrs(attrs, "filter, prefix, version, encoding")?;
        return Ok(Entry::Filter {
            filter,
            prefix,
            version,
            encoding,
            line: number,
        });
    }
    let Some(eq) = raw.find('=') else {
        return Err((
            start,
            "expected KEY={{ secret \"name\" }}, KEY=value or {{ secrets filter=\"...\" }}".into(),
        ));
    };
    let key = raw[..eq].trim();
    if !valid_key(key) {
        return Err((
            start,
            format!(
                "{key:?} is not a valid variable name (A-Z, a-z, 0-9 and _, not starting with a digit)"
            ),
        ));
    }
    let after = &raw[eq + 1..];
    let value_at = eq + 1 + (after.len() - after.trim_start().len());
    let value = after.trim();
    if value.starts_with("{{") {
        let expr = parse_expr(raw, value_at)?;
        if expr.word != "secret" {
            return Err((
                expr.word_at,
                format!(
                    "a value must be {{{{ secret \"name\" }}}}, not {{{{ {} ... }}}}; `secrets filter` goes on a line of its own",
                    expr.word
                ),
            ));
        }
        let Some((secret_at, secret)) = expr.positional else {
            return Err((
                expr.word_at,
                "`secret` needs the secret's name: {{ secret \"name\" }}".into(),
            ));
        };
        if !valid_secret_name(&secret) {
            return Err((
                secret_at,
                format!(
                    "{secret:?} is not a Secret Manager secret name (1-255 of A-Z, a-z, 0-9, - and _)"
                ),
            ));
        }
        let mut attrs = expr.attrs;
        let (version, encoding) = version_and_encoding(&mut attrs)?;
        let file = match attrs.remove("file") {
            Some((at, name)) if !valid_file_name(&name) => {
                return Err((
                    at,
                    format!(
                        "file {name:?} must be a plain file name (A-Z, a-z, 0-9, ., - and _, not starting with .), such as \"service-account.json\""
                    ),
                ));
            }
            Some((_, name)) => Some(name),
            None => None,
        };
        no_other_attrs(attrs, "version, encoding, file")?;
        return Ok(Entry::Secret {
            key: key.to_string(),
            secret,
            version,
            encoding,
            file,
            line: number,
        });
    }
    if let Some(open) = value.find("{{") {
        return Err((
            value_at + open,
            format!(
                "{{{{ secret ... }}}} must be the whole value of {key}, with nothing around it"
            ),
        ));
    }
    Ok(Entry::Literal {
        key: key.to_string(),
        value: value.to_string(),
        line: number,
    })
}

/// Attribute values with the offset of their name.
type Attrs = HashMap<String, (usize, String)>;

fn version_and_encoding(attrs: &mut Attrs) -> Located<(String, Encoding)> {
    let version = match attrs.remove("version") {
        Some((at, v)) if !valid_version(&v) => {
            return Err((
                at,
                format!("version {v:?} must be \"latest\" or a version number such as \"3\""),
            ));
        }
        Some((_, v)) => v,
        None => "latest".to_string(),
    };
    let encoding = match attrs.remove("encoding") {
        None => Encoding::Text,
        Some((_, e)) if e == "text" => Encoding::Text,
        Some((_, e)) if e == "base64" => Encoding::Base64,
        Some((at, other)) => {
            return Err((
                at,
                format!("encoding {other:?} must be \"text\" or \"base64\""),
            ));
        }
    };
    Ok((version, encoding))
}

fn no_other_attrs(attrs: Attrs, known: &str) -> Located<()> {
    match attrs.into_iter().min_by_key(|(_, (at, _))| *at) {
        None => Ok(()),
        Some((name, (at, _))) => Err((at, format!("unknown attribute {name:?} (known: {known})"))),
    }
}

/// `{{ word "positional" name="value" ... }}`, with nothing after the closing braces; every
/// part with its byte offset in the line.
struct Expr {
    word: String,
    word_at: usize,
    positional: Option<(usize, String)>,
    attrs: Attrs,
}

/// Parses the expression that starts at byte `open` of `raw` (at its `{{`).
fn parse_expr(raw: &str, open: usize) -> Located<Expr> {
    let body_at = open + 2;
    let inner = &raw[body_at..];
    let close = find_close(inner).ok_or((open, "missing the closing }}".to_string()))?;
    let after = &inner[close + 2..];
    let rest = after.trim();
    if !rest.is_empty() {
        let at = body_at + close + 2 + (after.len() - after.trim_start().len());
        return Err((at, format!("unexpected text after }}}}: {rest:?}")));
    }
    let mut tokens = tokenize(&inner[..close], body_at)?.into_iter().peekable();
    let (word_at, word) = match tokens.next() {
        Some((at, Token::Word(w))) => (at, w),
        Some((at, _)) => return Err((at, "expected `secret` or `secrets` after {{".into())),
        None => return Err((open, "expected `secret` or `secrets` after {{".into())),
    };
    let positional = match tokens.peek() {
        Some((_, Token::Str(_))) => match tokens.next() {
            Some((at, Token::Str(s))) => Some((at, s)),
            _ => None,
        },
        _ => None,
    };
    let mut attrs = HashMap::new();
    while let Some((at, token)) = tokens.next() {
        let Token::Word(name) = token else {
            return Err((at, "expected name=\"value\"".into()));
        };
        if tokens.peek().map(|(_, t)| t) != Some(&Token::Equals) {
            if word == "secret" && positional.is_none() && attrs.is_empty() {
                return Err((
                    at,
                    format!(
                        "the name must be quoted: {{{{ {word} \"{name}\" }}}}, not {{{{ {word} {name} }}}}"
                    ),
                ));
            }
            return Err((at, format!("expected {name}=\"value\"")));
        }
        tokens.next();
        let Some((_, Token::Str(value))) = tokens.next() else {
            return Err((at, format!("the value of {name} must be double-quoted")));
        };
        if attrs.insert(name.clone(), (at, value)).is_some() {
            return Err((at, format!("{name} is given twice")));
        }
    }
    Ok(Expr {
        word,
        word_at,
        positional,
        attrs,
    })
}

/// The offset of the `}}` that closes the expression, skipping over quoted strings.
fn find_close(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut i = 0;
    let mut in_str = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_str => i += 1,
            b'"' => in_str = !in_str,
            b'}' if !in_str && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Str(String),
    Equals,
}

/// Splits an expression's inside into tokens, each with its byte offset (`base` is the offset of
/// `text` in the line).
fn tokenize(text: &str, base: usize) -> Located<Vec<(usize, Token)>> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        let at = base + i;
        if c.is_whitespace() {
            chars.next();
        } else if c == '=' {
            chars.next();
            out.push((at, Token::Equals));
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    None => return Err((at, "unterminated string".into())),
                    Some((_, '"')) => break,
                    Some((j, '\\')) => match chars.next() {
                        Some((_, e @ ('"' | '\\'))) => s.push(e),
                        _ => {
                            return Err((
                                base + j,
                                "only \\\" and \\\\ may follow a backslash in a string".into(),
                            ));
                        }
                    },
                    Some((_, c)) => s.push(c),
                }
            }
            out.push((at, Token::Str(s)));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let mut w = String::new();
            while let Some(&(_, c)) = chars.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    w.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            out.push((at, Token::Word(w)));
        } else if c == '\'' {
            return Err((
                at,
                "strings are written in double quotes (\"...\"), not single quotes".into(),
            ));
        } else {
            return Err((at, format!("unexpected {c:?}")));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Entry {
        let t = parse("t", text).unwrap();
        assert_eq!(t.entries.len(), 1);
        t.entries[0].clone()
    }

    fn fails(text: &str) -> String {
        parse("t.tmpl", text).unwrap_err().to_string()
    }

    #[test]
    fn builtin_template_lists_the_apps_secrets() {
        let t = parse("built-in", BUILTIN).unwrap();
        let keys = t.explicit_keys();
        for key in [
            "JWT_SECRET",
            "AI_PROXY_JWT_SECRET",
            "CF_OAUTH_ENCRYPTION_KEY",
            "GOOGLE_CLIENT_SECRET",
            "GITHUB_CLIENT_SECRET",
            "GITHUB_EXPORTER_CLIENT_SECRET",
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GOOGLE_AI_STUDIO_API_KEY",
            "OPENROUTER_API_KEY",
            "SERPAPI_KEY",
            "SANDBOX_SERVICE_API_KEY",
            "DB_PASSWORD",
        ] {
            assert!(keys.contains(&key), "{key} missing");
        }
        assert_eq!(keys.len(), 13);
    }

    #[test]
    fn secret_lines_parse_with_defaults_and_attributes() {
        assert_eq!(
            one("JWT_SECRET={{ secret \"jwt-secret\" }}"),
            Entry::Secret {
                key: "JWT_SECRET".into(),
                secret: "jwt-secret".into(),
                version: "latest".into(),
                encoding: Encoding::Text,
                file: None,
                line: 1
            }
        );
        assert_eq!(
            one("\n K = {{secret \"k\" version=\"3\" encoding=\"base64\"}}  "),
            Entry::Secret {
                key: "K".into(),
                secret: "k".into(),
                version: "3".into(),
                encoding: Encoding::Base64,
                file: None,
                line: 2
            }
        );
        assert_eq!(
            one("GOOGLE_APPLICATION_CREDENTIALS={{ secret \"sa-key\" file=\"sa-key.json\" }}"),
            Entry::Secret {
                key: "GOOGLE_APPLICATION_CREDENTIALS".into(),
                secret: "sa-key".into(),
                version: "latest".into(),
                encoding: Encoding::Text,
                file: Some("sa-key.json".into()),
                line: 1
            }
        );
    }

    #[test]
    fn filter_lines_parse() {
        assert_eq!(
            one("{{ secrets filter=\"labels.env=dev AND name:\\\"x\\\"\" prefix=\"APP_\" }}"),
            Entry::Filter {
                filter: "labels.env=dev AND name:\"x\"".into(),
                prefix: "APP_".into(),
                version: "latest".into(),
                encoding: Encoding::Text,
                line: 1
            }
        );
    }

    #[test]
    fn literal_lines_pass_through_and_comments_are_skipped() {
        let t = parse("t", "# c\n\nPORT=8787\nNAME='a b'\n").unwrap();
        assert_eq!(
            t.entries,
            [
                Entry::Literal {
                    key: "PORT".into(),
                    value: "8787".into(),
                    line: 3
                },
                Entry::Literal {
                    key: "NAME".into(),
                    value: "'a b'".into(),
                    line: 4
                }
            ]
        );
    }

    #[test]
    fn mistakes_are_reported_with_their_line() {
        assert_eq!(
            fails("A=1\nA={{ secret \"a\" }}"),
            "t.tmpl:2:1: A is already defined on line 1"
        );
        assert!(fails("1A=x").starts_with("t.tmpl:1:1: \"1A\" is not a valid variable name"));
        assert!(fails("A={{ secret \"a\" }} tail").contains("unexpected text after }}"));
        assert!(fails("A=x{{ secret \"a\" }}").contains("must be the whole value of A"));
        assert!(fails("A={{ secret \"a\" version=\"0\" }}").contains("version \"0\""));
        assert!(
            fails("A={{ secret \"a\" verison=\"1\" }}").contains("unknown attribute \"verison\"")
        );
        assert!(fails("A={{ secret \"a b\" }}").contains("not a Secret Manager secret name"));
        assert!(fails("A={{ secret }}").contains("needs the secret's name"));
        assert!(fails("A={{ secret \"a\"").contains("missing the closing }}"));
        assert!(fails("{{ secrets }}").contains("needs a filter"));
        assert!(fails("{{ secret \"a\" }}").contains("on a line of its own"));
        assert!(fails("A={{ secrets filter=\"x\" }}").contains("on a line of its own"));
        assert!(fails("just words").contains("expected KEY="));
        assert!(fails("A={{ secret \"a\" encoding=\"hex\" }}").contains("\"text\" or \"base64\""));
    }

    #[test]
    fn mistakes_are_reported_with_their_column() {
        assert_eq!(
            fails("A=1\n  B={{ secret \"b\" verison=\"2\" }}"),
            "t.tmpl:2:19: unknown attribute \"verison\" (known: version, encoding, file)"
        );
        assert!(fails("A = {{ secret \"a\" }} tail").starts_with("t.tmpl:1:22: unexpected text"));
        assert!(fails("A=x{{ secret \"a\" }}").starts_with("t.tmpl:1:4: "));
        assert!(fails("A={{ secret \"a b\" }}").starts_with("t.tmpl:1:13: "));
        assert!(fails("A={{ secret \"a\" version=\"x\" }}").starts_with("t.tmpl:1:17: "));
        assert!(fails("A={{ secret \"a\"").starts_with("t.tmpl:1:3: missing the closing }}"));
        // Columns count characters, not bytes.
        assert!(fails("# é\nÉ=1").starts_with("t.tmpl:2:1: "));
        assert!(fails("A=é{{ secret \"a\" }}").starts_with("t.tmpl:1:4: "));
    }

    #[test]
    fn file_names_are_plain_and_used_once() {
        for bad in ["../x", "a/b", ".gitignore", "", "a b"] {
            let text = format!("A={{{{ secret \"a\" file=\"{bad}\" }}}}");
            assert!(fails(&text).contains("must be a plain file name"), "{bad}");
        }
        assert_eq!(
            fails("A={{ secret \"a\" file=\"k.pem\" }}\nB={{ secret \"b\" file=\"k.pem\" }}"),
            "t.tmpl:2:17: file \"k.pem\" is already used on line 1"
        );
        assert!(
            fails("{{ secrets filter=\"x\" file=\"k\" }}").contains("unknown attribute \"file\"")
        );
    }

    #[test]
    fn unquoted_secret_name_says_it_must_be_quoted() {
        assert_eq!(
            fails("S={{ secret s01 }}"),
            "t.tmpl:1:13: the name must be quoted: {{ secret \"s01\" }}, not {{ secret s01 }}"
        );
        assert!(fails("S={{ secret s01 version=\"2\" }}").contains("must be quoted"));
        assert!(fails("S={{ secret 's01' }}").contains("double quotes"));
        assert!(!fails("{{ secrets prefix }}").contains("must be quoted"));
    }

    #[test]
    fn derived_names_follow_the_rule() {
        assert_eq!(
            derived_key("", "db-password").as_deref(),
            Some("DB_PASSWORD")
        );
        assert_eq!(derived_key("APP_", "x-1").as_deref(), Some("APP_X_1"));
        assert_eq!(derived_key("", "1password"), None);
        assert_eq!(
            derived_key("S_", "1password").as_deref(),
            Some("S_1PASSWORD")
        );
    }
}
