//! Redis' keys as a person looks at them: found by pattern with `SCAN` (never `KEYS`), each
//! with its type and time to live, a bounded look at a value of every type, and a key deleted.
//! Reads database 0, the one `REDIS_URL` names.

use serde::Serialize;

use crate::resp::{Connection, Reply};
use crate::services::Store;
use crate::services::browse::{BrowseError, PAGE_SIZE, VALUE_CHARS, clip};

/// Keys `SCAN` is asked to look at per call.
const SCAN_COUNT: usize = PAGE_SIZE;

/// `SCAN` calls for one page at most: a pattern that matches little still answers quickly
/// (the page may then be short, with a next page).
const SCAN_CALLS: usize = 100;

/// Items of a hash, list, set, sorted set or stream shown.
pub const ITEMS: usize = 100;

/// Redis as a client reaches it from the host.
pub struct Target {
    service: String,
    host: String,
    port: u16,
}

/// One key in a listing.
#[derive(Debug, Clone, Serialize)]
pub struct KeyRow {
    /// The key as text (invalid UTF-8 shown as U+FFFD).
    pub key: String,
    /// The query that names the key exactly (`key=...` or `hex=...`).
    pub param: KeyParam,
    pub kind: String,
    /// Milliseconds to live; `None`: no expiry.
    pub ttl_ms: Option<i64>,
    pub ttl: String,
}

/// A key as a URL or form names it: itself when it is UTF-8, else its bytes in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyParam {
    pub name: &'static str,
    pub value: String,
}

/// A page of keys and the cursor of the next (`None`: the scan is complete).
#[derive(Debug, Clone, Serialize)]
pub struct KeyPage {
    pub keys: Vec<KeyRow>,
    pub next: Option<String>,
}

/// One key's value, bounded.
#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    pub row: KeyRow,
    /// Length as Redis counts it (bytes for a string, items otherwise).
    pub length: i64,
    /// Column titles of `items`.
    pub columns: Vec<&'static str>,
    pub items: Vec<Vec<String>>,
    /// True when the value holds more than is shown (or a string was cut).
    pub clipped: bool,
}

impl KeyParam {
    pub fn of(key: &[u8]) -> KeyParam {
        match std::str::from_utf8(key) {
            Ok(s) => KeyParam {
                name: "key",
                value: s.to_string(),
            },
            Err(_) => KeyParam {
                name: "hex",
                value: hex::encode(key),
            },
        }
    }

    /// The key named by a `key` or a `hex` parameter.
    pub fn parse(key: Option<&str>, hex_key: Option<&str>) -> Result<Vec<u8>, BrowseError> {
        match (key, hex_key) {
            (Some(k), None) => Ok(k.as_bytes().to_vec()),
            (None, Some(h)) => hex::decode(h)
                .map_err(|e| BrowseError::invalid(format!("hex={h:?} is not hex: {e}"))),
            _ => Err(BrowseError::invalid("name the key with key=... or hex=...")),
        }
    }
}

/// A SCAN cursor as a page token: digits only.
pub fn parse_cursor(token: Option<&str>) -> Result<String, BrowseError> {
    match token {
        None | Some("") => Ok("0".into()),
        Some(t) if t.len() <= 20 && t.bytes().all(|b| b.is_ascii_digit()) => Ok(t.to_string()),
        Some(t) => Err(BrowseError::invalid(format!("{t:?} is not a scan cursor"))),
    }
}

/// A time to live as `PTTL` gives it, as people read it.
pub fn ttl_text(ms: Option<i64>) -> String {
    match ms {
        None => "no expiry".into(),
        Some(ms) if ms < 1000 => format!("{ms} ms"),
        Some(ms) => crate::text::uptime(std::time::Duration::from_millis(ms as u64)),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl Target {
    pub fn of(store: &Store<'_>) -> Target {
        Target {
            service: store.service.to_string(),
            host: store.host.clone(),
            port: store.port,
        }
    }

    fn api(&self, message: impl Into<String>) -> BrowseError {
        BrowseError::api(&self.service, message)
    }

    async fn connect(&self) -> Result<Connection, BrowseError> {
        Connection::connect(&self.host, self.port)
            .await
            .map_err(|e| self.api(format!("cannot connect: {e}")))
    }

    fn io(&self) -> impl Fn(std::io::Error) -> BrowseError + '_ {
        move |e| self.api(e.to_string())
    }

    /// Keys matching `pattern` (glob, as `SCAN MATCH` takes it), from the cursor `token`.
    pub async fn scan(&self, pattern: &str, token: Option<&str>) -> Result<KeyPage, BrowseError> {
        let mut cursor = parse_cursor(token)?;
        let pattern = if pattern.is_empty() { "*" } else { pattern };
        let mut conn = self.connect().await?;
        let mut keys: Vec<Vec<u8>> = Vec::new();
        for _ in 0..SCAN_CALLS {
            let reply = conn
                .command(&[
                    b"SCAN",
                    cursor.as_bytes(),
                    b"MATCH",
                    pattern.as_bytes(),
                    b"COUNT",
                    SCAN_COUNT.to_string().as_bytes(),
                ])
                .await
                .map_err(self.io())?;
            let Reply::Array(Some(parts)) = &reply else {
                return Err(self.api(format!("SCAN answered {reply:?}")));
            };
            let [Reply::Bulk(Some(next)), Reply::Array(Some(found))] = parts.as_slice() else {
                return Err(self.api(format!("SCAN answered {reply:?}")));
            };
            for k in found {
                if let Reply::Bulk(Some(k)) = k
                    && !keys.contains(k)
                {
                    keys.push(k.clone());
                }
            }
            cursor = text(next);
            if cursor == "0" || keys.len() >= PAGE_SIZE {
                break;
            }
        }
        keys.sort();
        let rows = self.rows(&mut conn, &keys).await?;
        Ok(KeyPage {
            keys: rows.into_iter().flatten().collect(),
            next: (cursor != "0").then_some(cursor),
        })
    }

    /// `TYPE` and `PTTL` of each key, pipelined; `None` for a key gone meanwhile.
    async fn rows(
        &self,
        conn: &mut Connection,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<KeyRow>>, BrowseError> {
        for k in keys {
            conn.send(&[b"TYPE", k]).await.map_err(self.io())?;
            conn.send(&[b"PTTL", k]).await.map_err(self.io())?;
        }
        conn.flush().await.map_err(self.io())?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let kind = conn.read().await.map_err(self.io())?;
            let ttl = conn.read().await.map_err(self.io())?;
            let kind = match kind {
                Reply::Status(s) => s,
                other => return Err(self.api(format!("TYPE answered {other:?}"))),
            };
            let ttl_ms = match ttl {
                Reply::Int(-1) => None,
                Reply::Int(ms) if ms >= 0 => Some(ms),
                Reply::Int(_) => {
                    out.push(None);
                    continue;
                }
                other => return Err(self.api(format!("PTTL answered {other:?}"))),
            };
            if kind == "none" {
                out.push(None);
                continue;
            }
            out.push(Some(KeyRow {
                key: text(k),
                param: KeyParam::of(k),
                kind,
                ttl_ms,
                ttl: ttl_text(ttl_ms),
            }));
        }
        Ok(out)
    }

    /// One key with its value's first items.
    pub async fn value(&self, key: &[u8]) -> Result<KeyValue, BrowseError> {
        let mut conn = self.connect().await?;
        let Some(row) = self.rows(&mut conn, &[key.to_vec()]).await?.remove(0) else {
            return Err(BrowseError::NotFound {
                what: format!("key {}", text(key)),
            });
        };
        let last = (ITEMS - 1).to_string();
        let count = ITEMS.to_string();
        let (len_cmd, read): (&[u8], Vec<&[u8]>) = match row.kind.as_str() {
            "string" => (&b"STRLEN"[..], vec![&b"GETRANGE"[..], key, b"0", b"65535"]),
            "hash" => (
                &b"HLEN"[..],
                vec![&b"HSCAN"[..], key, b"0", b"COUNT", count.as_bytes()],
            ),
            "list" => (
                &b"LLEN"[..],
                vec![&b"LRANGE"[..], key, b"0", last.as_bytes()],
            ),
            "set" => (
                &b"SCARD"[..],
                vec![&b"SSCAN"[..], key, b"0", b"COUNT", count.as_bytes()],
            ),
            "zset" => (
                &b"ZCARD"[..],
                vec![&b"ZRANGE"[..], key, b"0", last.as_bytes(), b"WITHSCORES"],
            ),
            "stream" => (
                &b"XLEN"[..],
                vec![&b"XRANGE"[..], key, b"-", b"+", b"COUNT", count.as_bytes()],
            ),
            _ => {
                return Ok(KeyValue {
                    row,
                    length: 0,
                    columns: Vec::new(),
                    items: Vec::new(),
                    clipped: false,
                });
            }
        };
        conn.send(&[len_cmd, key]).await.map_err(self.io())?;
        conn.send(&read).await.map_err(self.io())?;
        conn.flush().await.map_err(self.io())?;
        let length = match conn.read().await.map_err(self.io())? {
            Reply::Int(n) => n,
            other => return Err(self.api(format!("{} answered {other:?}", text(len_cmd)))),
        };
        let reply = conn.read().await.map_err(self.io())?;
        if let Some(e) = reply.error() {
            return Err(self.api(format!("reading {}: {e}", row.key)));
        }
        let (columns, items, cut) = value_items(&row.kind, reply);
        let clipped = cut || length > items.len() as i64 && row.kind != "string";
        let clipped = clipped || (row.kind == "string" && length > 65536);
        Ok(KeyValue {
            row,
            length,
            columns,
            items,
            clipped,
        })
    }

    /// Deletes a key; true when it existed.
    pub async fn delete(&self, key: &[u8]) -> Result<bool, BrowseError> {
        let mut conn = self.connect().await?;
        match conn.command(&[b"DEL", key]).await.map_err(self.io())? {
            Reply::Int(n) => Ok(n > 0),
            other => Err(self.api(format!("DEL answered {other:?}"))),
        }
    }
}

/// A value's reply as table rows (each cell cut), and whether a cell was cut.
pub fn value_items(kind: &str, reply: Reply) -> (Vec<&'static str>, Vec<Vec<String>>, bool) {
    let mut cut = false;
    let mut cell = |b: &[u8]| {
        let (s, c) = clip(&text(b), VALUE_CHARS * 5);
        cut |= c;
        s
    };
    let flat = |r: &Reply| -> Vec<Vec<u8>> {
        match r {
            Reply::Array(Some(items)) => items
                .iter()
                .map(|i| match i {
                    Reply::Bulk(Some(b)) => b.clone(),
                    other => format!("{other:?}").into_bytes(),
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    // HSCAN and SSCAN answer [cursor, items].
    let scanned = |r: &Reply| match r {
        Reply::Array(Some(parts)) if parts.len() == 2 => flat(&parts[1]),
        _ => Vec::new(),
    };
    match kind {
        "string" => {
            let Reply::Bulk(Some(b)) = &reply else {
                return (vec!["value"], Vec::new(), false);
            };
            (vec!["value"], vec![vec![cell(b)]], cut)
        }
        "hash" => {
            let items = scanned(&reply);
            let rows = items
                .chunks(2)
                .take(ITEMS)
                .map(|p| vec![cell(&p[0]), p.get(1).map(|v| cell(v)).unwrap_or_default()])
                .collect();
            (vec!["field", "value"], rows, cut)
        }
        "set" => {
            let mut items = scanned(&reply);
            items.sort();
            let rows = items.iter().take(ITEMS).map(|m| vec![cell(m)]).collect();
            (vec!["member"], rows, cut)
        }
        "list" => {
            let rows = flat(&reply)
                .iter()
                .enumerate()
                .map(|(i, v)| vec![i.to_string(), cell(v)])
                .collect();
            (vec!["index", "value"], rows, cut)
        }
        "zset" => {
            let items = flat(&reply);
            let rows = items
                .chunks(2)
                .map(|p| vec![cell(&p[0]), p.get(1).map(|v| text(v)).unwrap_or_default()])
                .collect();
            (vec!["member", "score"], rows, cut)
        }
        "stream" => {
            let mut rows = Vec::new();
            if let Reply::Array(Some(entries)) = &reply {
                for e in entries {
                    if let Reply::Array(Some(parts)) = e
                        && let [Reply::Bulk(Some(id)), fields] = parts.as_slice()
                    {
                        let pairs: Vec<String> = flat(fields)
                            .chunks(2)
                            .map(|p| {
                                format!(
                                    "{}={}",
                                    text(&p[0]),
                                    p.get(1).map(|v| text(v)).unwrap_or_default()
                                )
                            })
                            .collect();
                        rows.push(vec![text(id), cell(pairs.join(" ").as_bytes())]);
                    }
                }
            }
            (vec!["id", "fields"], rows, cut)
        }
        _ => (Vec::new(), Vec::new(), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(Some(s.as_bytes().to_vec()))
    }

    #[test]
    fn keys_are_named_as_text_or_hex() {
        assert_eq!(KeyParam::of(b"user:1").name, "key");
        let bin = KeyParam::of(&[0xff, 0x00]);
        assert_eq!((bin.name, bin.value.as_str()), ("hex", "ff00"));
        assert_eq!(KeyParam::parse(None, Some("ff00")).unwrap(), vec![0xff, 0]);
        assert_eq!(KeyParam::parse(Some("a b"), None).unwrap(), b"a b");
        assert!(KeyParam::parse(None, None).is_err());
        assert!(KeyParam::parse(None, Some("zz")).is_err());
    }

    #[test]
    fn scan_cursors_are_digits() {
        assert_eq!(parse_cursor(None).unwrap(), "0");
        assert_eq!(parse_cursor(Some("1234")).unwrap(), "1234");
        assert!(parse_cursor(Some("1; FLUSHALL")).is_err());
    }

    #[test]
    fn ttls_read_as_durations() {
        assert_eq!(ttl_text(None), "no expiry");
        assert_eq!(ttl_text(Some(250)), "250 ms");
        assert_eq!(ttl_text(Some(90_000)), "1m30s");
    }

    #[test]
    fn values_of_each_type_become_rows() {
        let hash = Reply::Array(Some(vec![
            bulk("0"),
            Reply::Array(Some(vec![bulk("f"), bulk("v")])),
        ]));
        let (cols, rows, _) = value_items("hash", hash);
        assert_eq!(cols, ["field", "value"]);
        assert_eq!(rows, [["f", "v"]]);
        let z = Reply::Array(Some(vec![bulk("a"), bulk("1.5"), bulk("b"), bulk("2")]));
        assert_eq!(value_items("zset", z).1, [["a", "1.5"], ["b", "2"]]);
        let l = Reply::Array(Some(vec![bulk("x"), bulk("y")]));
        assert_eq!(value_items("list", l).1, [["0", "x"], ["1", "y"]]);
        let long = "x".repeat(VALUE_CHARS * 5 + 1);
        let (_, rows, cut) = value_items("string", bulk(&long));
        assert!(cut && rows[0][0].len() == VALUE_CHARS * 5);
    }
}
