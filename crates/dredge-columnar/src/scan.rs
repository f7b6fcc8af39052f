//! A JSON scanner for enriched lines: one flat object whose keys are
//! column names. It reads each value as its column's type straight into
//! its column ([`Columns`]: no JSON tree, no row in between, no allocation
//! per value), which is what makes the encoder several times faster than a
//! general JSON reader.
//!
//! Keys usually come in column order (the enricher writes them so), so a
//! key is first looked for after the previous one's column, then anywhere.

use std::collections::HashMap;

use dredge_core::enrich::{Column, ColumnType};

use crate::row::{Columns, RowError};

/// Where a string value is: unescaped strings are borrowed from the line,
/// strings with escapes are decoded into a scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Line(usize, usize),
    Scratch(usize, usize),
}

impl Text {
    fn get<'a>(self, line: &'a str, scratch: &'a str) -> &'a str {
        match self {
            Text::Line(from, to) => &line[from..to],
            Text::Scratch(from, to) => &scratch[from..to],
        }
    }

    /// The bytes, without `get`'s char-boundary checks: both ends are
    /// next to ASCII quotes or escapes, so they are whole characters.
    #[inline(always)]
    fn bytes<'a>(self, line: &'a [u8], scratch: &'a str) -> &'a [u8] {
        match self {
            Text::Line(from, to) => &line[from..to],
            Text::Scratch(from, to) => &scratch.as_bytes()[from..to],
        }
    }
}

#[derive(Debug)]
pub(crate) struct Scanner {
    names: Vec<&'static str>,
    keys: Vec<Key>,
    types: Vec<ColumnType>,
    timestamp: usize,
    index: HashMap<&'static [u8], usize>,
}

type Scan<T> = Result<T, RowError>;

fn syntax(at: usize, what: &'static str) -> RowError {
    RowError::Syntax { at, what }
}

impl Scanner {
    pub(crate) fn new(columns: &'static [Column]) -> Self {
        let names: Vec<&'static str> = columns.iter().map(|c| c.name.as_str()).collect();
        let index = names.iter().enumerate().map(|(i, n)| (n.as_bytes(), i)).collect();
        let timestamp = columns
            .iter()
            .position(|c| c.ty == ColumnType::TimestampMillis)
            .expect("the schema has a timestamp column");
        let keys = names.iter().map(|n| Key::new(n)).collect();
        Scanner { names, keys, types: columns.iter().map(|c| c.ty).collect(), timestamp, index }
    }

    /// Reads one line (without its newline) as the next row of `out`, or
    /// leaves `out` as it was. `scratch` holds decoded escapes.
    pub(crate) fn scan(&self, line: &str, out: &mut Columns, scratch: &mut String) -> Scan<()> {
        scratch.clear();
        match self.fields(line, out, scratch) {
            Ok(()) => {
                out.end_row();
                Ok(())
            }
            Err(e) => {
                out.discard_row();
                Err(e)
            }
        }
    }

    fn fields(&self, line: &str, out: &mut Columns, scratch: &mut String) -> Scan<()> {
        let b = line.as_bytes();
        let mut i = skip_ws(b, 0);
        if b.get(i) != Some(&b'{') {
            return Err(syntax(i, "expected an object"));
        }
        i = skip_ws(b, i + 1);
        let mut next_column = 0;
        if b.get(i) == Some(&b'}') {
            i += 1;
        } else {
            loop {
                if b.get(i) != Some(&b'"') {
                    return Err(syntax(i, "expected a key"));
                }
                let (column, after) = match self.next_key(&b[i + 1..], next_column) {
                    Some(column) => (column, i + 1 + self.keys[column].quoted.len()),
                    None => self.any_key(line, i + 1, scratch)?,
                };
                next_column = column + 1;
                i = skip_ws(b, after);
                if b.get(i) != Some(&b':') {
                    return Err(syntax(i, "expected ':'"));
                }
                i = skip_ws(b, i + 1);
                if out.has(column) {
                    return Err(RowError::Duplicate(self.names[column]));
                }
                i = skip_ws(b, self.value(line, i, column, out, scratch)?);
                match b.get(i) {
                    Some(b',') => i = skip_ws(b, i + 1),
                    Some(b'}') => {
                        i += 1;
                        break;
                    }
                    _ => return Err(syntax(i, "expected ',' or '}'")),
                }
            }
        }
        if skip_ws(b, i) != b.len() {
            return Err(syntax(i, "text after the object"));
        }
        if !out.has_value(self.timestamp) {
            return Err(RowError::MissingTimestamp);
        }
        Ok(())
    }

    /// The column whose quoted name `rest` starts with, looking from
    /// column `from` on: in-order keys (nulls left out) match here.
    #[inline(always)]
    fn next_key(&self, rest: &[u8], from: usize) -> Option<usize> {
        let ahead = self.keys.get(from..).unwrap_or_default();
        ahead.iter().position(|k| k.starts(rest)).map(|p| from + p)
    }

    /// Any key, escaped or out of order, at `i` (after its opening quote).
    #[cold]
    fn any_key(&self, line: &str, i: usize, scratch: &mut String) -> Scan<(usize, usize)> {
        let (key, after) = read_str(line.as_bytes(), i, scratch)?;
        let name = key.get(line, scratch);
        match self.index.get(name.as_bytes()) {
            Some(&column) => Ok((column, after)),
            None => Err(RowError::UnknownColumn(name.to_string())),
        }
    }

    /// Reads the value at `i` as `column`'s type into `out`; returns the
    /// position after it. Inlined: called once a value, the call would
    /// cost more than most values.
    #[inline(always)]
    fn value(&self, line: &str, i: usize, column: usize, out: &mut Columns, scratch: &mut String) -> Scan<usize> {
        let b = line.as_bytes();
        if b.get(i) == Some(&b'n') && b[i..].starts_with(b"null") {
            out.push_null(column);
            return Ok(i + 4);
        }
        let name = self.names[column];
        let wrong = |expected| RowError::WrongType { column: name, expected };
        match self.types[column] {
            ColumnType::TimestampMillis | ColumnType::Long => match b.get(i) {
                Some(b'-' | b'0'..=b'9') => {
                    let (v, after) = read_int(b, i, name)?;
                    out.push_int(column, v);
                    Ok(after)
                }
                _ => Err(wrong("number")),
            },
            ColumnType::String => match b.get(i) {
                Some(b'"') => {
                    let (text, after) = read_str(b, i + 1, scratch)?;
                    out.push_str(column, text.bytes(b, scratch));
                    Ok(after)
                }
                _ => Err(wrong("string")),
            },
            ColumnType::Bool => {
                let (v, after) = if b[i..].starts_with(b"true") {
                    (true, i + 4)
                } else if b[i..].starts_with(b"false") {
                    (false, i + 5)
                } else {
                    return Err(wrong("boolean"));
                };
                out.push_bool(column, v);
                Ok(after)
            }
        }
    }
}

fn word(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"))
}

/// A column name with its closing quote, as a key in a line starts with
/// it, and its first eight bytes as a masked word: most candidate columns
/// are told apart by one comparison, without a call to `memcmp` (names are
/// short: the call would cost more than the comparison).
#[derive(Debug)]
struct Key {
    quoted: Box<[u8]>,
    head: u64,
    mask: u64,
}

impl Key {
    fn new(name: &str) -> Self {
        let quoted = format!("{name}\"").into_bytes().into_boxed_slice();
        let mut head = [0u8; 8];
        let n = quoted.len().min(8);
        head[..n].copy_from_slice(&quoted[..n]);
        let mask = if n == 8 { u64::MAX } else { (1u64 << (8 * n)) - 1 };
        Key { head: u64::from_le_bytes(head), mask, quoted }
    }

    /// `hay` starts with the quoted name.
    #[inline(always)]
    fn starts(&self, hay: &[u8]) -> bool {
        let n = self.quoted.len();
        if hay.len() < n.max(8) {
            return hay.starts_with(&self.quoted);
        }
        if (word(hay, 0) ^ self.head) & self.mask != 0 {
            return false;
        }
        let mut k = 8;
        while k + 8 < n {
            if word(hay, k) != word(&self.quoted, k) {
                return false;
            }
            k += 8;
        }
        // The last eight bytes, overlapping what was compared.
        n <= 8 || word(hay, n - 8) == word(&self.quoted, n - 8)
    }
}

/// Position of the first `"` or `\` in `b`, eight bytes per step (SWAR):
/// values are short, so this beats a SIMD search's setup per call.
#[inline(always)]
fn find_quote_or_escape(b: &[u8]) -> Option<usize> {
    const LO: u64 = u64::from_ne_bytes([0x01; 8]);
    const HI: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    const ESCAPES: u64 = u64::from_ne_bytes([b'\\'; 8]);
    let mut chunks = b.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunk of 8"));
        let (q, e) = (word ^ QUOTES, word ^ ESCAPES);
        // The lowest set bit of each marks its first zero byte exactly.
        let found = ((q.wrapping_sub(LO) & !q) | (e.wrapping_sub(LO) & !e)) & HI;
        if found != 0 {
            return Some(offset + (found.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks.remainder().iter().position(|&c| c == b'"' || c == b'\\').map(|p| offset + p)
}

#[inline(always)]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\r' | b'\n') = b.get(i) {
        i += 1;
    }
    i
}

/// A JSON integer at `i` that fits in i64. Fractions and exponents are
/// refused rather than rounded: a counter is never written as a wrong number.
#[inline(always)]
fn read_int(b: &[u8], mut i: usize, column: &'static str) -> Scan<(i64, usize)> {
    let negative = b[i] == b'-';
    if negative {
        i += 1;
    }
    let start = i;
    let mut magnitude: u64 = 0;
    let mut overflow = false;
    while let Some(&d @ b'0'..=b'9') = b.get(i) {
        match magnitude.checked_mul(10).and_then(|m| m.checked_add(u64::from(d - b'0'))) {
            Some(m) => magnitude = m,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return Err(syntax(i, "expected a digit"));
    }
    if let Some(b'.' | b'e' | b'E') = b.get(i) {
        return Err(RowError::NotInteger(column));
    }
    let value = if negative {
        0i64.checked_sub_unsigned(magnitude).filter(|_| !overflow)
    } else {
        i64::try_from(magnitude).ok().filter(|_| !overflow)
    };
    value.map(|v| (v, i)).ok_or(RowError::OutOfRange(column))
}

/// The string whose content starts at `i` (after its opening quote), and
/// the position after its closing quote.
#[inline(always)]
fn read_str(b: &[u8], i: usize, scratch: &mut String) -> Scan<(Text, usize)> {
    match find_quote_or_escape(&b[i..]).map(|p| i + p) {
        Some(end) if b[end] == b'"' => Ok((Text::Line(i, end), end + 1)),
        Some(end) => read_escaped(b, i, end, scratch),
        None => Err(syntax(b.len(), "unterminated string")),
    }
}

/// The rest of `read_str` once an escape is found at `end`: decoded into
/// `scratch`.
#[cold]
fn read_escaped(b: &[u8], i: usize, end: usize, scratch: &mut String) -> Scan<(Text, usize)> {
    let from = scratch.len();
    let mut i = i;
    let mut run = end;
    loop {
        // `b` is the bytes of a `str` and `i..run` stops at ASCII bytes,
        // so the run is whole characters.
        scratch.push_str(std::str::from_utf8(&b[i..run]).map_err(|_| RowError::NotUtf8)?);
        match b[run] {
            b'"' => return Ok((Text::Scratch(from, scratch.len()), run + 1)),
            _ => {
                let (c, after) = read_escape(b, run)?;
                scratch.push(c);
                i = after;
            }
        }
        run = match find_quote_or_escape(&b[i..]) {
            Some(p) => i + p,
            None => return Err(syntax(b.len(), "unterminated string")),
        };
    }
}

/// The escape sequence at `i` (a backslash).
fn read_escape(b: &[u8], i: usize) -> Scan<(char, usize)> {
    let c = match b.get(i + 1) {
        Some(b'"') => '"',
        Some(b'\\') => '\\',
        Some(b'/') => '/',
        Some(b'b') => '\u{8}',
        Some(b'f') => '\u{c}',
        Some(b'n') => '\n',
        Some(b'r') => '\r',
        Some(b't') => '\t',
        Some(b'u') => {
            let high = hex4(b, i + 2)?;
            if !(0xD800..0xDC00).contains(&high) {
                let c = char::from_u32(high).ok_or_else(|| syntax(i, "lone low surrogate"))?;
                return Ok((c, i + 6));
            }
            if !b[i + 6..].starts_with(b"\\u") {
                return Err(syntax(i, "lone high surrogate"));
            }
            let low = hex4(b, i + 8)?;
            if !(0xDC00..0xE000).contains(&low) {
                return Err(syntax(i, "bad surrogate pair"));
            }
            let c = char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                .ok_or_else(|| syntax(i, "bad surrogate pair"))?;
            return Ok((c, i + 12));
        }
        _ => return Err(syntax(i, "bad escape")),
    };
    Ok((c, i + 2))
}

fn hex4(b: &[u8], i: usize) -> Scan<u32> {
    let digits = b.get(i..i + 4).ok_or_else(|| syntax(i, "short \\u escape"))?;
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16).ok_or_else(|| syntax(i, "bad \\u escape"))?;
        Ok(acc * 16 + v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::arrow_schema;
    use arrow_array::{Array, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use dredge_core::enrich::columns;

    /// The line as a one-row batch, after a rejected line (which must
    /// leave no trace).
    fn scan(line: &str) -> Result<RecordBatch, RowError> {
        let scanner = Scanner::new(columns());
        let mut out = Columns::new(arrow_schema(), columns(), 4);
        let mut scratch = String::new();
        let bad = r#"{"timestamp":7,"srcaddr":"x","cross_az":true,"bytes":1,"bytes":2}"#;
        assert!(scanner.scan(bad, &mut out, &mut scratch).is_err());
        scanner.scan(line, &mut out, &mut scratch)?;
        assert_eq!(out.rows(), 1);
        Ok(out.finish().unwrap())
    }

    fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> &'a T {
        batch.column_by_name(name).unwrap().as_any().downcast_ref::<T>().unwrap()
    }

    #[test]
    fn finds_quotes_escapes_and_prefixes_at_every_offset() {
        for len in 0..40 {
            for at in 0..len {
                for c in [b'"', b'\\'] {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    assert_eq!(find_quote_or_escape(&b), Some(at));
                }
            }
            assert_eq!(find_quote_or_escape(&vec![b'a'; len]), None);
            let name: String = (0..len as u8).map(|i| char::from(b'a' + i % 26)).collect();
            let key = Key::new(&name);
            for tail in ["", ":1,\"timestamp\":1}"] {
                let hay = format!("{name}\"{tail}");
                assert!(key.starts(hay.as_bytes()), "{hay}");
                assert!(!key.starts(&hay.as_bytes()[..len]));
                for k in 0..=len {
                    let mut other = hay.clone().into_bytes();
                    other[k] = b'_';
                    assert!(!key.starts(&other), "{len} {k}");
                }
            }
        }
    }

    #[test]
    fn reads_each_type_in_any_key_order() {
        let line =
            r#" {"bytes": 9223372036854775807, "timestamp":-5,"srcaddr":"10.0.0.1","cross_az":false,"action":null} "#;
        let batch = scan(line).unwrap();
        assert_eq!(column::<TimestampMillisecondArray>(&batch, "timestamp").value(0), -5);
        assert_eq!(column::<Int64Array>(&batch, "bytes").value(0), i64::MAX);
        assert!(!column::<BooleanArray>(&batch, "cross_az").value(0));
        assert!(column::<StringArray>(&batch, "action").is_null(0));
        assert!(column::<Int64Array>(&batch, "packets").is_null(0));
        assert_eq!(column::<StringArray>(&batch, "srcaddr").value(0), "10.0.0.1");
    }

    #[test]
    fn decodes_escapes() {
        let line = r#"{"timestamp":1,"\u0073rcport":2,"src_app":"a\"b\\c\u00e9\ud83d\ude00\n/","dst_app":"plain é"}"#;
        let batch = scan(line).unwrap();
        assert_eq!(column::<Int64Array>(&batch, "srcport").value(0), 2);
        assert_eq!(column::<StringArray>(&batch, "src_app").value(0), "a\"b\\cé😀\n/");
        assert_eq!(column::<StringArray>(&batch, "dst_app").value(0), "plain é");
    }

    #[test]
    fn rejects_what_it_cannot_write_exactly() {
        let cases = [
            (r#"{"timestamp":1,"bytes":9223372036854775808}"#, RowError::OutOfRange("bytes")),
            (r#"{"timestamp":1,"bytes":18446744073709551616}"#, RowError::OutOfRange("bytes")),
            (r#"{"timestamp":1,"bytes":-9223372036854775809}"#, RowError::OutOfRange("bytes")),
            (r#"{"timestamp":1,"bytes":1.5}"#, RowError::NotInteger("bytes")),
            (r#"{"timestamp":1,"bytes":1e3}"#, RowError::NotInteger("bytes")),
            (r#"{"timestamp":1,"bytes":"12"}"#, RowError::WrongType { column: "bytes", expected: "number" }),
            (r#"{"timestamp":1,"srcaddr":12}"#, RowError::WrongType { column: "srcaddr", expected: "string" }),
            (r#"{"timestamp":1,"cross_az":"true"}"#, RowError::WrongType { column: "cross_az", expected: "boolean" }),
            (r#"{"timestamp":1,"bytes":1,"bytes":2}"#, RowError::Duplicate("bytes")),
            (r#"{"timestamp":1,"nope":2}"#, RowError::UnknownColumn("nope".into())),
            (r#"{"bytes":1}"#, RowError::MissingTimestamp),
            (r#"{"timestamp":null}"#, RowError::MissingTimestamp),
        ];
        for (line, want) in cases {
            assert_eq!(scan(line).err(), Some(want), "{line}");
        }
        for line in [r#"{"timestamp":1"#, r#"{"timestamp":1} x"#, r#"{"timestamp":-}"#, r#"{"src_app":"a"#, "[]", ""] {
            assert!(matches!(scan(line), Err(RowError::Syntax { .. })), "{line}");
        }
        let batch = scan(r#"{"timestamp":-9223372036854775808}"#).unwrap();
        assert_eq!(column::<TimestampMillisecondArray>(&batch, "timestamp").value(0), i64::MIN);
    }
}
