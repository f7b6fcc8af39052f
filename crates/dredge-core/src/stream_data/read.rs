//! Reading record data: whatever the encoding, its NDJSON lines. The
//! encoding is detected from the bytes (zstd and gzip by their magic
//! numbers; anything else is plain text), and decompression stops at a cap
//! so that a small record cannot expand without bound.

use std::borrow::Cow;
use std::io::Read;

use crate::flowlog::{gunzip_bounded, is_gzip, PayloadError};

/// Default cap on a record's decompressed lines: far above what the
/// enricher writes per record (a few MiB), far below a worry.
pub const DEFAULT_MAX_LINES_BYTES: usize = 64 * 1024 * 1024;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// How record data is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Zstd,
    Gzip,
    Plain,
}

/// The encoding of record data, from its first bytes.
pub fn detect(data: &[u8]) -> Encoding {
    if data.starts_with(&ZSTD_MAGIC) {
        Encoding::Zstd
    } else if is_gzip(data) {
        Encoding::Gzip
    } else {
        Encoding::Plain
    }
}

/// Record data that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("zstd: {0}")]
    Zstd(std::io::Error),
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    #[error("decompresses to more than {max} bytes")]
    TooLarge { max: usize },
}

/// A record's NDJSON text, decompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lines<'a> {
    text: Cow<'a, [u8]>,
}

impl Lines<'_> {
    /// The whole text, newlines included.
    pub fn text(&self) -> &[u8] {
        &self.text
    }

    /// Each non-empty line, without its newline.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.text.split(|b| *b == b'\n').filter(|l| !l.is_empty())
    }
}

/// The lines of one record's data, whatever its encoding; compressed data
/// that would expand past `max` bytes is refused without being expanded
/// further.
pub fn read_lines(data: &[u8], max: usize) -> Result<Lines<'_>, ReadError> {
    let text = match detect(data) {
        Encoding::Plain => Cow::Borrowed(data),
        Encoding::Gzip => Cow::Owned(gunzip_bounded(data, max).map_err(|e| match e {
            PayloadError::TooLarge { max } => ReadError::TooLarge { max },
            PayloadError::Gzip(e) => ReadError::Gzip(e),
            other => ReadError::Gzip(std::io::Error::other(other.to_string())),
        })?),
        Encoding::Zstd => Cow::Owned(unzstd_bounded(data, max)?),
    };
    Ok(Lines { text })
}

/// Every frame of `data`, reading at most `max + 1` bytes of output.
fn unzstd_bounded(data: &[u8], max: usize) -> Result<Vec<u8>, ReadError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(ReadError::Zstd)?;
    let mut out = Vec::new();
    decoder.take(max as u64 + 1).read_to_end(&mut out).map_err(ReadError::Zstd)?;
    if out.len() > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::stream_data::{Compression, RecordEncoder};

    const LINES: &[u8] = b"{\"flow_id\":\"a:1:1\"}\n{\"flow_id\":\"a:1:2\"}\n";

    fn collect(lines: &Lines<'_>) -> Vec<String> {
        lines.iter().map(|l| String::from_utf8(l.to_vec()).unwrap()).collect()
    }

    #[test]
    fn every_encoding_reads_as_the_same_lines() {
        let want = vec![r#"{"flow_id":"a:1:1"}"#.to_string(), r#"{"flow_id":"a:1:2"}"#.to_string()];
        let mut zstd = Vec::new();
        RecordEncoder::new(Compression::Zstd).encode(LINES, 1 << 20, &mut zstd).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(LINES).unwrap();
        let gzip = gz.finish().unwrap();
        for (data, encoding) in [(LINES.to_vec(), Encoding::Plain), (zstd, Encoding::Zstd), (gzip, Encoding::Gzip)] {
            assert_eq!(detect(&data), encoding);
            let lines = read_lines(&data, 1 << 20).unwrap();
            assert_eq!(collect(&lines), want, "{encoding:?}");
            assert_eq!(lines.text(), LINES);
        }
    }

    #[test]
    fn concatenated_frames_read_as_one_text() {
        let mut data = zstd::bulk::compress(b"{\"a\":1}\n", 1).unwrap();
        data.extend(zstd::bulk::compress(b"{\"a\":2}\n", 1).unwrap());
        assert_eq!(collect(&read_lines(&data, 100).unwrap()), [r#"{"a":1}"#, r#"{"a":2}"#]);
    }

    #[test]
    fn a_bomb_is_refused_at_the_cap() {
        let big = vec![b'\n'; 10 << 20];
        let zstd = zstd::bulk::compress(&big, 1).unwrap();
        assert!(zstd.len() < 4096);
        assert!(matches!(read_lines(&zstd, 1 << 20), Err(ReadError::TooLarge { max: 1_048_576 })));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&big).unwrap();
        assert!(matches!(read_lines(&gz.finish().unwrap(), 1 << 20), Err(ReadError::TooLarge { .. })));
        // Exactly at the cap is fine.
        assert_eq!(read_lines(&zstd, 10 << 20).unwrap().text().len(), 10 << 20);
    }

    #[test]
    fn corrupt_frames_are_errors() {
        let mut data = zstd::bulk::compress(LINES, 1).unwrap();
        data.truncate(data.len() - 3);
        assert!(matches!(read_lines(&data, 1 << 20), Err(ReadError::Zstd(_))));
        assert!(matches!(read_lines(&[0x1f, 0x8b, 0, 0], 1 << 20), Err(ReadError::Gzip(_))));
    }
}
