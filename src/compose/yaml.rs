//! YAML with positions: a small tree built from the parser's events, with anchors and aliases
//! resolved and merge keys (`<<: *x`) applied, so every node keeps the file, line and column it
//! came from for error messages.

use std::path::PathBuf;

use indexmap::IndexMap;
use saphyr_parser::{Event, Parser, ScalarStyle, Span};

/// Where a node was written: an index into the loader's file table, a line and a column (1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub file: usize,
    pub line: usize,
    pub column: usize,
}

/// A YAML node and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A mapping key and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A YAML error with its position (never the text of a value).
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

impl Node {
    pub fn new(pos: Pos, value: Value) -> Node {
        Node { pos, value }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&Vec<(Key, Node)>> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(Key, Node)>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The value of a key of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?
            .iter_mut()
            .find(|(k, _)| k.name == key)
            .map(|(_, v)| v)
    }

    /// The key entry of a mapping (for its position).
    pub fn key(&self, key: &str) -> Option<&Key> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == key)
            .map(|(k, _)| k)
    }

    /// Removes a key from a mapping, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<(Key, Node)> {
        let map = self.as_map_mut()?;
        let idx = map.iter().position(|(k, _)| k.name == key)?;
        Some(map.remove(idx))
    }

    /// Sets a key of a mapping (replacing its value in place, or appending it).
    pub fn set(&mut self, key: &str, value: Node) {
        if let Some(map) = self.as_map_mut() {
            if let Some(slot) = map.iter_mut().find(|(k, _)| k.name == key) {
                slot.1 = value;
            } else {
                let pos = value.pos;
                map.push((
                    Key {
                        name: key.to_string(),
                        pos,
                    },
                    value,
                ));
            }
        }
    }

    /// The node at a JSON-pointer-like path (`services/db/ports/0`), the deepest one found.
    pub fn locate(&self, path: &[String]) -> Pos {
        let mut node = self;
        let mut pos = self.pos;
        for seg in path {
            let next = match &node.value {
                Value::Map(m) => m.iter().find(|(k, _)| &k.name == seg).map(|(k, v)| {
                    pos = k.pos;
                    v
                }),
                Value::Seq(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => {
                    if !matches!(node.value, Value::Map(_)) {
                        pos = n.pos;
                    }
                    node = n;
                }
                None => break,
            }
        }
        pos
    }

    /// The node as JSON (keys in file order).
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => (*b).into(),
            Value::Int(i) => (*i).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => s.clone().into(),
            Value::Seq(items) => items.iter().map(Node::to_json).collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (k.name.clone(), v.to_json()))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }

    /// A node from JSON, every node at `pos`.
    pub fn from_json(v: &serde_json::Value, pos: Pos) -> Node {
        let value = match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or_default()),
            },
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Seq(items.iter().map(|i| Node::from_json(i, pos)).collect())
            }
            serde_json::Value::Object(m) => Value::Map(
                m.iter()
                    .map(|(k, v)| {
                        (
                            Key {
                                name: k.clone(),
                                pos,
                            },
                            Node::from_json(v, pos),
                        )
                    })
                    .collect(),
            ),
        };
        Node { pos, value }
    }
}

/// The files nodes came from (a node's `pos.file` indexes this).
#[derive(Debug, Default, Clone)]
pub struct Files(pub Vec<PathBuf>);

impl Files {
    pub fn add(&mut self, path: PathBuf) -> usize {
        if let Some(i) = self.0.iter().position(|p| *p == path) {
            return i;
        }
        self.0.push(path);
        self.0.len() - 1
    }

    pub fn path(&self, pos: Pos) -> PathBuf {
        self.0.get(pos.file).cloned().unwrap_or_default()
    }
}

/// Parses one YAML document (an empty text is an empty mapping), resolving aliases and merge keys.
pub fn parse(text: &str, file: usize) -> Result<Node, YamlError> {
    let mut builder = Builder {
        file,
        anchors: IndexMap::new(),
        events: Parser::new_from_str(text),
    };
    let first = Pos {
        file,
        line: 1,
        column: 1,
    };
    loop {
        let (ev, span) = builder.next()?;
        match ev {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => continue,
            Event::StreamEnd | Event::DocumentEnd => {
                return Ok(Node::new(first, Value::Map(Vec::new())));
            }
            ev => {
                let node = builder.node(ev, span)?;
                // A second document in the same file is not Compose.
                loop {
                    match builder.next()?.0 {
                        Event::DocumentEnd | Event::Nothing => continue,
                        Event::StreamEnd => break,
                        _ => {
                            return Err(YamlError {
                                pos: builder.pos(span),
                                message: "a Compose file holds one YAML document".into(),
                            });
                        }
                    }
                }
                return Ok(node);
            }
        }
    }
}

struct Builder<'a> {
    file: usize,
    anchors: IndexMap<usize, Node>,
    events: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Builder<'a> {
    fn pos(&self, span: Span) -> Pos {
        Pos {
            file: self.file,
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), YamlError> {
        match self.events.next() {
            Some(Ok(x)) => Ok(x),
            Some(Err(e)) => Err(YamlError {
                pos: Pos {
                    file: self.file,
                    line: e.marker().line(),
                    column: e.marker().col() + 1,
                },
                message: e.info().to_string(),
            }),
            None => Err(YamlError {
                pos: Pos {
                    file: self.file,
                    line: 1,
                    column: 1,
                },
                message: "unexpected end of the YAML text".into(),
            }),
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span) -> Result<Node, YamlError> {
        let pos = self.pos(span);
        let (node, anchor) = match ev {
            Event::Alias(id) => {
                let mut node = self.anchors.get(&id).cloned().ok_or(YamlError {
                    pos,
                    message: "alias to an unknown anchor".into(),
                })?;
                node.pos = pos;
                return Ok(node);
            }
            Event::Scalar(text, style, anchor, tag) => {
                let tagged_str = tag
                    .as_ref()
                    .is_some_and(|t| t.is_yaml_core_schema() && t.suffix == "str");
                let value = if style == ScalarStyle::Plain && !tagged_str {
                    plain_scalar(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                (Node::new(pos, value), anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(ev, span)?);
                }
                (Node::new(pos, Value::Seq(items)), anchor)
            }
            Event::MappingStart(anchor, _) => {
                let mut entries: Vec<(Key, Node)> = Vec::new();
                let mut merges: Vec<Node> = Vec::new();
                loop {
                    let (ev, kspan) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, kspan)?;
                    let (ev, vspan) = self.next()?;
                    let value = self.node(ev, vspan)?;
                    let name = match key.value {
                        Value::Str(s) => s,
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".into(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(YamlError {
                                pos: key.pos,
                                message: "a mapping key must be a string".into(),
                            });
                        }
                    };
                    if name == "<<" {
                        merges.push(value);
                        continue;
                    }
                    if entries.iter().any(|(k, _)| k.name == name) {
                        return Err(YamlError {
                            pos: key.pos,
                            message: format!("duplicate key {name:?}"),
                        });
                    }
                    entries.push((Key { name, pos: key.pos }, value));
                }
                for merge in merges {
                    apply_merge(&mut entries, merge)?;
                }
                (Node::new(pos, Value::Map(entries)), anchor)
            }
            _ => {
                return Err(YamlError {
                    pos,
                    message: "unexpected YAML event".into(),
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

/// `<<: *x` or `<<: [*x, *y]`: keys the mapping lacks come from the merged mappings, the first
/// one listed winning.
fn apply_merge(entries: &mut Vec<(Key, Node)>, merge: Node) -> Result<(), YamlError> {
    let sources = match merge.value {
        Value::Map(m) => vec![m],
        Value::Seq(items) => items
            .into_iter()
            .map(|n| match n.value {
                Value::Map(m) => Ok(m),
                _ => Err(YamlError {
                    pos: n.pos,
                    message: "a merge key (<<) takes a mapping or a list of mappings".into(),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => {
            return Err(YamlError {
                pos: merge.pos,
                message: "a merge key (<<) takes a mapping or a list of mappings".into(),
            });
        }
    };
    for source in sources {
        for (k, v) in source {
            if !entries.iter().any(|(e, _)| e.name == k.name) {
                entries.push((k, v));
            }
        }
    }
    Ok(())
}

/// A plain scalar typed by the YAML 1.2 core schema (as Compose reads it).
fn plain_scalar(s: &str) -> Value {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    // `mode: 0440` is octal, as compose reads it.
    if s.len() > 1
        && s.starts_with('0')
        && s.bytes().all(|b| (b'0'..=b'7').contains(&b))
        && let Ok(i) = i64::from_str_radix(&s[1..], 8)
    {
        return Value::Int(i);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = s.parse::<i64>()
    {
        return Value::Int(i);
    }
    if let Some(hex) = s.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if let Some(oct) = s.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(oct, 8)
    {
        return Value::Int(i);
    }
    let looks_float = digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'))
        && digits.bytes().any(|b| b.is_ascii_digit());
    if looks_float && let Ok(f) = s.parse::<f64>() {
        return Value::Float(f);
    }
    Value::Str(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        parse(text, 0).unwrap()
    }

    #[test]
    fn nodes_keep_line_and_column() {
        let n = p("services:\n  db:\n    image: x\n");
        let pos = n.locate(&["services".into(), "db".into(), "image".into()]);
        assert_eq!((pos.line, pos.column), (3, 5));
    }

    #[test]
    fn scalars_are_typed_by_the_core_schema() {
        let n = p("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: yes\ng: 0x10\n");
        let j = n.to_json();
        assert_eq!(
            j,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": null, "e": 1.5, "f": "yes", "g": 16})
        );
    }

    #[test]
    fn merge_keys_fill_in_missing_keys_first_source_winning() {
        let n = p("x: &a {p: 1, q: 1}\ny: &b {q: 2, r: 2}\nz:\n  <<: [*a, *b]\n  p: 0\n");
        assert_eq!(
            n.get("z").unwrap().to_json(),
            serde_json::json!({"p": 0, "q": 1, "r": 2})
        );
    }

    #[test]
    fn duplicate_keys_are_errors_at_the_second_key() {
        let e = parse("a: 1\na: 2\n", 0).unwrap_err();
        assert_eq!((e.pos.line, e.pos.column), (2, 1));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1\n", 0).unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
    }
}
