//! Bounded gzip decompression with state reused across payloads.
//!
//! A Kinesis batch holds thousands of small gzip payloads (CloudWatch Logs
//! compresses each subscription document). Setting up an inflate state and
//! a fresh output buffer per payload cost more than inflating them, so an
//! [`Inflater`] keeps one raw-deflate state and one buffer and resets them:
//! the gzip framing (RFC 1952 header, CRC-32 and size trailer) is read
//! here, the deflate data by flate2.

use std::io;

use flate2::{Decompress, FlushDecompress, Status};

use super::payload::PayloadError;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const DEFLATE: u8 = 8;
const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const RESERVED: u8 = 0b1110_0000;

/// Whether `bytes` starts like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Decompresses gzip (all members), refusing output larger than `max`
/// without producing more than `max + 1` bytes of it.
pub fn gunzip_bounded(bytes: &[u8], max: usize) -> Result<Vec<u8>, PayloadError> {
    let mut inflater = Inflater::new();
    inflater.gunzip(bytes, max)?;
    Ok(std::mem::take(&mut inflater.out))
}

fn invalid(msg: &str) -> PayloadError {
    PayloadError::Gzip(io::Error::new(io::ErrorKind::InvalidData, msg.to_owned()))
}

/// A reusable gzip decompressor: one inflate state and one output buffer.
pub struct Inflater {
    state: Decompress,
    out: Vec<u8>,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").field("capacity", &self.out.capacity()).finish()
    }
}

impl Inflater {
    pub fn new() -> Self {
        Inflater { state: Decompress::new(false), out: Vec::new() }
    }

    /// Decompresses every gzip member of `bytes` into the inflater's buffer
    /// and returns it. Output past `max` bytes is refused as soon as it is
    /// produced; CRC-32 and size trailers are checked.
    pub fn gunzip(&mut self, bytes: &[u8], max: usize) -> Result<&[u8], PayloadError> {
        self.out.clear();
        let mut rest = bytes;
        loop {
            rest = self.member(rest, max)?;
            if rest.is_empty() {
                return Ok(&self.out);
            }
        }
    }

    /// Inflates one member onto the buffer; returns the input after it.
    fn member<'b>(&mut self, bytes: &'b [u8], max: usize) -> Result<&'b [u8], PayloadError> {
        let body = header_len(bytes).map(|n| &bytes[n..])?;
        let start = self.out.len();
        self.state.reset(false);
        let mut consumed = 0usize;
        loop {
            if self.out.len() == self.out.capacity() {
                // Grow geometrically, from a guess of the usual 8x ratio,
                // never past one byte over the cap.
                let want =
                    (self.out.capacity() * 2).max(body.len().saturating_mul(8)).max(4096).min(max.saturating_add(1));
                if want <= self.out.len() {
                    return Err(PayloadError::TooLarge { max });
                }
                self.out.reserve_exact(want - self.out.len());
            }
            let before = self.state.total_in();
            let status = self
                .state
                .decompress_vec(&body[consumed..], &mut self.out, FlushDecompress::None)
                .map_err(|e| invalid(&format!("deflate: {e}")))?;
            consumed += (self.state.total_in() - before) as usize;
            if self.out.len() > max {
                return Err(PayloadError::TooLarge { max });
            }
            match status {
                Status::StreamEnd => break,
                Status::Ok => {}
                // No progress: either the output is full (grown above) or
                // the input ended before the deflate stream did.
                Status::BufError if self.out.len() < self.out.capacity() => {
                    return Err(invalid("truncated deflate stream"));
                }
                Status::BufError => {}
            }
        }
        let trailer = body.get(consumed..consumed + 8).ok_or_else(|| invalid("truncated gzip trailer"))?;
        let crc = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes"));
        let size = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes"));
        let member = &self.out[start..];
        if crc32fast::hash(member) != crc {
            return Err(invalid("CRC-32 mismatch"));
        }
        if member.len() as u32 != size {
            return Err(invalid("size mismatch"));
        }
        Ok(&body[consumed + 8..])
    }
}

/// The length of the member header at the start of `bytes` (RFC 1952 2.3).
fn header_len(bytes: &[u8]) -> Result<usize, PayloadError> {
    if bytes.len() < 10 || !is_gzip(bytes) {
        return Err(invalid("invalid gzip header"));
    }
    if bytes[2] != DEFLATE {
        return Err(invalid("unsupported gzip compression method"));
    }
    let flags = bytes[3];
    if flags & RESERVED != 0 {
        return Err(invalid("reserved gzip flags set"));
    }
    let mut at = 10;
    if flags & FEXTRA != 0 {
        let len = bytes.get(at..at + 2).ok_or_else(|| invalid("truncated gzip header"))?;
        at += 2 + usize::from(u16::from_le_bytes([len[0], len[1]]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            let text = bytes.get(at..).ok_or_else(|| invalid("truncated gzip header"))?;
            at += memchr::memchr(0, text).ok_or_else(|| invalid("truncated gzip header"))? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if at > bytes.len() {
        return Err(invalid("truncated gzip header"));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::{Compression, GzBuilder};

    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn one_inflater_serves_many_payloads() {
        let mut inflater = Inflater::new();
        for i in 0..50 {
            let text = format!("payload {i} ").repeat(i * 40 + 1);
            assert_eq!(inflater.gunzip(&gz(text.as_bytes()), 1 << 20).unwrap(), text.as_bytes());
        }
        // An empty member and several members in a row.
        let two = [gz(b""), gz(b"ab"), gz(b"cd")].concat();
        assert_eq!(inflater.gunzip(&two, 100).unwrap(), b"abcd");
    }

    #[test]
    fn reads_optional_header_fields() {
        let mut e = GzBuilder::new()
            .filename("flows.log")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::default());
        e.write_all(b"hello").unwrap();
        let bytes = e.finish().unwrap();
        assert_eq!(Inflater::new().gunzip(&bytes, 100).unwrap(), b"hello");
    }

    #[test]
    fn refuses_corruption_truncation_and_trailing_bytes() {
        let good = gz(&b"some flow log text ".repeat(100));
        let mut inflater = Inflater::new();
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let mut bad_size = good.clone();
        bad_size[n - 1] ^= 1;
        for (name, bytes) in [
            ("crc", bad_crc),
            ("size", bad_size),
            ("truncated body", good[..n / 2].to_vec()),
            ("truncated trailer", good[..n - 3].to_vec()),
            ("trailing bytes", [good.clone(), b"xyz".to_vec()].concat()),
            ("header only", good[..10].to_vec()),
            ("not gzip", b"plain text".to_vec()),
        ] {
            assert!(matches!(inflater.gunzip(&bytes, 1 << 20), Err(PayloadError::Gzip(_))), "{name}");
        }
        // Still good for the next payload after every refusal.
        assert_eq!(inflater.gunzip(&good, 1 << 20).unwrap().len(), 1900);
    }

    #[test]
    fn stops_at_the_cap() {
        let bytes = gz(&vec![b'a'; 10_000]);
        assert!(matches!(Inflater::new().gunzip(&bytes, 9_999), Err(PayloadError::TooLarge { max: 9_999 })));
        assert_eq!(Inflater::new().gunzip(&bytes, 10_000).unwrap().len(), 10_000);
        // No cap at all.
        assert_eq!(Inflater::new().gunzip(&bytes, usize::MAX).unwrap().len(), 10_000);
    }
}
