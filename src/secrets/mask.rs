//! Secret values out of a stream: `vibedev run --mask` passes a command's output through a
//! [`Masker`], which replaces every value with `<secret:KEY>` as the bytes arrive, including a
//! value split across writes, and holds back no more than the start of a possible value.

use std::collections::HashMap;

/// Values shorter than this are not masked: they occur in ordinary output too often (`true`,
/// `admin`, a port) for their replacement to hide anything or leave the output readable.
pub const MIN_MASKED: usize = 6;

/// What a masked value is shown as.
pub fn replacement(key: &str) -> String {
    format!("<secret:{key}>")
}

/// The streaming replacer for one output stream.
pub struct Masker {
    /// The values, longest first (so the longest of two overlapping values wins); `None`
    /// when there is nothing to mask.
    regex: Option<regex::bytes::Regex>,
    /// Each value's replacement.
    names: HashMap<Vec<u8>, Vec<u8>>,
    values: Vec<Vec<u8>>,
    /// The values in byte order, to find those starting with given bytes.
    sorted: Vec<Vec<u8>>,
    /// Bytes a value can start with.
    first: [bool; 256],
    longest: usize,
    /// Received, not yet passed on: the start of what may be a value.
    pending: Vec<u8>,
}

impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Masker({} values)", self.values.len())
    }
}

impl Masker {
    /// A masker for `(key, value)` pairs. A multi-line value is masked whole and also line by
    /// line (a program printing one line of a key still hides it); values and lines under
    /// [`MIN_MASKED`] bytes are left out.
    pub fn new(secrets: &[(String, String)]) -> Masker {
        let mut names: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        for (key, value) in secrets {
            let pieces = std::iter::once(value.as_str()).chain(value.lines().map(str::trim_end));
            for piece in pieces {
                if piece.len() >= MIN_MASKED {
                    names
                        .entry(piece.as_bytes().to_vec())
                        .or_insert_with(|| replacement(key).into_bytes());
                }
            }
        }
        let mut values: Vec<Vec<u8>> = names.keys().cloned().collect();
        values.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let regex = (!values.is_empty())
            .then(|| {
                let pattern = values
                    .iter()
                    .map(|v| regex::escape(&String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>()
                    .join("|");
                regex::bytes::RegexBuilder::new(&pattern)
                    .unicode(false)
                    .size_limit(256 << 20)
                    .dfa_size_limit(256 << 20)
                    .build()
                    .ok()
            })
            .flatten();
        let mut first = [false; 256];
        for v in &values {
            first[v[0] as usize] = true;
        }
        let mut sorted = values.clone();
        sorted.sort();
        Masker {
            regex,
            sorted,
            longest: values.first().map_or(0, Vec::len),
            names,
            values,
            first,
            pending: Vec::new(),
        }
    }

    /// Takes the next bytes read and appends to `out` what can be passed on now.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.regex.is_none() {
            out.extend_from_slice(input);
            return;
        }
        if self.pending.is_empty() {
            let hold = self.scan(input, out);
            self.pending.extend_from_slice(&input[hold..]);
        } else {
            let mut buf = std::mem::take(&mut self.pending);
            buf.extend_from_slice(input);
            let hold = self.scan(&buf, out);
            buf.drain(..hold);
            self.pending = buf;
        }
    }

    /// Masks `buf` into `out` up to the returned position; what follows it may be the start
    /// of a value, to be looked at again with the next bytes.
    fn scan(&self, buf: &[u8], out: &mut Vec<u8>) -> usize {
        let Some(regex) = &self.regex else {
            out.extend_from_slice(buf);
            return buf.len();
        };
        let mut done = 0;
        for m in regex.find_iter(buf) {
            // A value at the very end may be the start of a longer one: wait for more.
            if m.end() == buf.len() && self.starts_longer(m.as_bytes()) {
                out.extend_from_slice(&buf[done..m.start()]);
                return m.start();
            }
            out.extend_from_slice(&buf[done..m.start()]);
            out.extend_from_slice(self.names.get(m.as_bytes()).map_or(b"", |n| n));
            done = m.end();
        }
        let hold = self.partial_start(buf, done);
        out.extend_from_slice(&buf[done..hold]);
        hold
    }

    /// The stream ended: what is held back is no value.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        let rest = std::mem::take(&mut self.pending);
        match &self.regex {
            Some(regex) => {
                let mut done = 0;
                for m in regex.find_iter(&rest) {
                    out.extend_from_slice(&rest[done..m.start()]);
                    out.extend_from_slice(self.names.get(m.as_bytes()).map_or(b"", |n| n));
                    done = m.end();
                }
                out.extend_from_slice(&rest[done..]);
            }
            None => out.extend_from_slice(&rest),
        }
    }

    /// Whether some value is longer than `bytes` and starts with them.
    fn starts_longer(&self, bytes: &[u8]) -> bool {
        // `sorted` is in byte order: the values starting with `bytes` follow the point where
        // `bytes` would go.
        let from = self.sorted.partition_point(|v| v.as_slice() < bytes);
        self.sorted[from..]
            .iter()
            .take_while(|v| v.starts_with(bytes))
            .any(|v| v.len() > bytes.len())
    }

    /// The first position at or after `from` where the rest of `buf` is the start of a value
    /// (the buffer's length when there is none).
    fn partial_start(&self, buf: &[u8], from: usize) -> usize {
        let len = buf.len();
        let from = from.max(len.saturating_sub(self.longest.saturating_sub(1)));
        (from..len)
            .find(|&p| self.first[buf[p] as usize] && self.starts_longer(&buf[p..]))
            .unwrap_or(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masker() -> Masker {
        Masker::new(&[
            ("JWT_SECRET".into(), "jwt-s3cret-value".into()),
            ("API_KEY".into(), "sk-live-123456".into()),
            ("SHORT".into(), "abc12".into()),
            (
                "PEM".into(),
                "-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n".into(),
            ),
        ])
    }

    fn run(m: &mut Masker, writes: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for w in writes {
            m.push(w, &mut out);
        }
        m.finish(&mut out);
        out
    }

    #[test]
    fn whole_values_in_longer_lines_are_replaced() {
        let out = run(
            &mut masker(),
            &[b"token=jwt-s3cret-value; key sk-live-123456!\n"],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "token=<secret:JWT_SECRET>; key <secret:API_KEY>!\n"
        );
    }

    #[test]
    fn a_value_split_across_writes_is_replaced() {
        let mut m = masker();
        let mut out = Vec::new();
        m.push(b"before jwt-s3c", &mut out);
        assert_eq!(out, b"before ", "the start of a value is held back");
        m.push(b"ret-value after", &mut out);
        assert_eq!(out, b"before <secret:JWT_SECRET> after");
        // One byte at a time.
        let text = b"x sk-live-123456 y";
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(run(&mut masker(), &bytes), b"x <secret:API_KEY> y");
    }

    #[test]
    fn what_only_looked_like_a_value_is_passed_on() {
        let mut m = masker();
        let mut out = Vec::new();
        m.push(b"jwt-s3", &mut out);
        m.push(b"x", &mut out);
        assert_eq!(out, b"jwt-s3x");
        m.push(b"sk-live", &mut out);
        m.finish(&mut out);
        assert_eq!(out, b"jwt-s3xsk-live");
    }

    #[test]
    fn short_values_are_not_masked_and_lines_of_long_ones_are() {
        let out = run(&mut masker(), &[b"abc12 MIIBOgIBAAJBAK\n"]);
        assert_eq!(String::from_utf8(out).unwrap(), "abc12 <secret:PEM>\n");
        let pem = b"-----BEGIN KEY-----\nMIIBOgIBAAJBAK\n-----END KEY-----\n";
        assert_eq!(run(&mut masker(), &[pem]), b"<secret:PEM>");
    }

    #[test]
    fn unicode_values_are_masked() {
        let mut m = Masker::new(&[("U".into(), "pässwörd-✓🔑".into())]);
        let out = run(&mut m, &["[pässwörd-✓🔑]".as_bytes()]);
        assert_eq!(out, b"[<secret:U>]");
    }

    #[test]
    fn nothing_to_mask_passes_everything_at_once() {
        let mut m = Masker::new(&[("A".into(), "tiny".into())]);
        let mut out = Vec::new();
        m.push(b"tiny output", &mut out);
        assert_eq!(out, b"tiny output");
    }

    proptest! {
        /// However the output is cut into writes, no value gets through and the rest is
        /// unchanged.
        #[test]
        fn any_split_hides_every_value(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just(b"jwt-s3cret-value".to_vec()),
                    Just(b"sk-live-123456".to_vec()),
                    Just(b"jwt-s3".to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..20),
                ],
                0..12,
            ),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let input: Vec<u8> = parts.concat();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut writes = Vec::new();
            let mut at = 0;
            for c in cuts.into_iter().chain([input.len()]) {
                writes.push(&input[at..c]);
                at = c;
            }
            let out = run(&mut masker(), &writes);
            let whole = run(&mut masker(), &[&input]);
            prop_assert_eq!(&out, &whole);
            let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
            prop_assert!(!find(&out, b"jwt-s3cret-value"));
            prop_assert!(!find(&out, b"sk-live-123456"));
        }
    }
}
