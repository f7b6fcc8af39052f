//! Decoding whole payloads: a Kinesis record, an S3 object or a file. The
//! payload may be gzip-compressed; it holds either a CloudWatch Logs
//! subscription document or raw flow-log text (one or many lines, possibly
//! with header lines). Which one is detected from the content.

use std::borrow::Cow;

use serde::Deserialize;
use thiserror::Error;

use super::format::Format;
use super::gzip::{is_gzip, Inflater};
use super::line::LineError;
use super::record::Record;
use super::value::{LogStatus, Value};

/// Default cap on decompressed size: a Kinesis record is at most 1 MiB, and
/// flow-log text compresses about 10-20x.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// How payloads are decoded.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Format of lines that no header line precedes.
    pub format: Format,
    /// Largest decompressed size accepted; larger input is refused, never
    /// expanded past the cap.
    pub max_decompressed: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions { format: Format::default_v2(), max_decompressed: DEFAULT_MAX_DECOMPRESSED }
    }
}

/// A whole payload that could not be decoded at all.
#[derive(Debug, Error)]
pub enum PayloadError {
    #[error("gzip: {0}")]
    Gzip(std::io::Error),
    #[error("decompresses to more than {max} bytes")]
    TooLarge { max: usize },
    #[error("not a CloudWatch Logs subscription document: {0}")]
    NotCloudWatchLogs(serde_json::Error),
    #[error("unknown CloudWatch Logs messageType `{0}`")]
    UnknownMessageType(String),
}

/// What the payload turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    Text,
    CloudWatchData,
    CloudWatchControl,
}

/// One outcome per non-blank line (or CloudWatch log event).
#[derive(Debug)]
pub enum Item<'r, 'a> {
    /// A decoded record; `line` is the 1-based line (or log event) number.
    Record { line: usize, record: Record<'r, 'a> },
    /// A rejected line and why.
    Rejected { line: usize, error: LineError },
}

/// Counters over everything decoded; `add` them across payloads. A payload
/// refused whole is not counted here: `decode` returns its error instead.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    /// Payloads that decoded (possibly with rejected lines).
    pub payloads: u64,
    /// CloudWatch Logs CONTROL_MESSAGE documents (reachability checks).
    pub control_messages: u64,
    /// Header lines that set a format.
    pub headers: u64,
    /// Records decoded, status-only ones included.
    pub records: u64,
    /// Records with log-status NODATA.
    pub no_data: u64,
    /// Records with log-status SKIPDATA.
    pub skip_data: u64,
    /// Lines rejected.
    pub rejected: u64,
    /// Flow-log text decoded, in bytes: each line (a raw payload's, or a
    /// log event's message) with its newline, blank and header lines
    /// included.
    pub text_bytes: u64,
}

impl DecodeStats {
    pub fn add(&mut self, other: &DecodeStats) {
        self.payloads += other.payloads;
        self.control_messages += other.control_messages;
        self.headers += other.headers;
        self.records += other.records;
        self.no_data += other.no_data;
        self.skip_data += other.skip_data;
        self.rejected += other.rejected;
        self.text_bytes += other.text_bytes;
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription<'a> {
    #[serde(borrow)]
    message_type: Cow<'a, str>,
    #[serde(default, borrow)]
    log_events: Vec<LogEvent<'a>>,
}

#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(borrow)]
    message: Cow<'a, str>,
}

/// Decodes payloads. Each payload reuses one value buffer across its lines.
#[derive(Debug, Default)]
pub struct Decoder {
    options: DecodeOptions,
}

impl Decoder {
    pub fn new(options: DecodeOptions) -> Self {
        Decoder { options }
    }

    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// Decodes one payload, calling `visit` for every record and rejected
    /// line, in order. A refused payload returns an error and visits nothing.
    pub fn decode(
        &self,
        bytes: &[u8],
        visit: &mut dyn FnMut(Item<'_, '_>),
    ) -> Result<(PayloadKind, DecodeStats), PayloadError> {
        self.decode_with(bytes, &mut Inflater::new(), visit)
    }

    /// [`Decoder::decode`] with a caller's [`Inflater`], reused across
    /// payloads: what a batch of many small gzip payloads wants.
    pub fn decode_with(
        &self,
        bytes: &[u8],
        inflater: &mut Inflater,
        visit: &mut dyn FnMut(Item<'_, '_>),
    ) -> Result<(PayloadKind, DecodeStats), PayloadError> {
        let bytes = if is_gzip(bytes) { inflater.gunzip(bytes, self.options.max_decompressed)? } else { bytes };
        let mut stats = DecodeStats { payloads: 1, ..DecodeStats::default() };
        let format = &self.options.format;
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let kind = if first == Some(&b'{') {
            // Validating the document's UTF-8 once, whole, is cheaper than
            // serde_json validating each string it borrows.
            let doc: Subscription<'_> = match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::from_str(text),
                Err(_) => serde_json::from_slice(bytes),
            }
            .map_err(PayloadError::NotCloudWatchLogs)?;
            match doc.message_type.as_ref() {
                "DATA_MESSAGE" => {
                    let mut lines = LineDecoder::new(format);
                    for (i, event) in doc.log_events.iter().enumerate() {
                        stats.text_bytes += event.message.len() as u64 + 1;
                        // JSON strings are UTF-8 already.
                        lines.text(i + 1, &event.message, &mut stats, visit);
                    }
                    PayloadKind::CloudWatchData
                }
                "CONTROL_MESSAGE" => {
                    stats.control_messages += 1;
                    PayloadKind::CloudWatchControl
                }
                other => return Err(PayloadError::UnknownMessageType(other.to_owned())),
            }
        } else {
            stats.text_bytes = (bytes.len() + usize::from(bytes.last().is_some_and(|&b| b != b'\n'))) as u64;
            let mut lines = LineDecoder::new(format);
            // Lines are long (a few hundred bytes): find their ends with
            // SIMD memchr rather than a byte-at-a-time split.
            let mut start = 0;
            let ends = memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len()));
            for (i, end) in ends.enumerate() {
                lines.line(i + 1, &bytes[start..end], &mut stats, visit);
                start = end + 1;
            }
            PayloadKind::Text
        };
        Ok((kind, stats))
    }
}

/// Decodes successive lines of one payload; a header line switches the
/// format for the lines after it. The value buffer is reused across lines.
struct LineDecoder<'f, 'a> {
    format: Cow<'f, Format>,
    values: Vec<Value<'a>>,
}

impl<'f, 'a> LineDecoder<'f, 'a> {
    fn new(format: &'f Format) -> Self {
        LineDecoder { format: Cow::Borrowed(format), values: Vec::with_capacity(format.len()) }
    }

    /// A line of raw text: checked to be UTF-8 first.
    fn line(&mut self, number: usize, raw: &'a [u8], stats: &mut DecodeStats, visit: &mut dyn FnMut(Item<'_, '_>)) {
        match std::str::from_utf8(raw) {
            Ok(text) => self.text(number, text, stats, visit),
            Err(_) => {
                stats.rejected += 1;
                visit(Item::Rejected { line: number, error: LineError::NotUtf8 });
            }
        }
    }

    fn text(&mut self, number: usize, text: &'a str, stats: &mut DecodeStats, visit: &mut dyn FnMut(Item<'_, '_>)) {
        let text = text.trim_ascii();
        if text.is_empty() {
            return;
        }
        let mut reject = |error: LineError, stats: &mut DecodeStats| {
            stats.rejected += 1;
            visit(Item::Rejected { line: number, error });
        };
        // Only a line starting with a letter or `${` can be a header; data
        // lines start with a digit, `-` or an id such as `eni-`, which the
        // field-name lookup then rules out.
        if text.as_bytes()[0].is_ascii_alphabetic() || text.starts_with("${") {
            if let Some(header) = Format::from_header(text) {
                match header {
                    Ok(format) => {
                        stats.headers += 1;
                        self.format = Cow::Owned(format);
                    }
                    Err(e) => reject(LineError::BadHeader(e), stats),
                }
                return;
            }
        }
        match self.format.decode(text, &mut self.values) {
            Ok(record) => {
                stats.records += 1;
                match record.log_status() {
                    Some(LogStatus::NoData) => stats.no_data += 1,
                    Some(LogStatus::SkipData) => stats.skip_data += 1,
                    _ => {}
                }
                visit(Item::Record { line: number, record });
            }
            Err(error) => reject(error, stats),
        }
    }
}
