//! Decoding whole payloads: a Kinesis record, an S3 object or a file. The
//! payload may be gzip-compressed; it holds either a CloudWatch Logs
//! subscription document or raw flow-log text (one or many lines, possibly
//! with header lines). Which one is detected from the content.

use std::borrow::Cow;

use serde::de::IgnoredAny;
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
    #[error("CloudWatch Logs document without `{0}`")]
    MissingField(&'static str),
}

impl PayloadError {
    /// A short name for the kind of error, for counting rejects by reason.
    pub fn kind(&self) -> &'static str {
        match self {
            PayloadError::Gzip(_) => "gzip",
            PayloadError::TooLarge { .. } => "too_large",
            PayloadError::NotCloudWatchLogs(_) => "not_cloudwatch_logs",
            PayloadError::UnknownMessageType(_) => "unknown_message_type",
            PayloadError::MissingField(_) => "missing_field",
        }
    }
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
    /// A rejected line, why, and its text (trimmed).
    Rejected { line: usize, error: LineError, text: &'a [u8] },
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

/// A CloudWatch Logs subscription document. Every real one carries all of
/// these fields (FORMATS.md); a document missing one is refused, not read as
/// empty. Unknown fields (`policyLevel`) are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subscription<'a> {
    #[serde(borrow)]
    message_type: Cow<'a, str>,
    // Required of a data message, never read: skipped, not parsed.
    #[serde(default)]
    owner: Option<IgnoredAny>,
    #[serde(default)]
    log_group: Option<IgnoredAny>,
    #[serde(default)]
    log_stream: Option<IgnoredAny>,
    #[serde(default)]
    subscription_filters: Option<IgnoredAny>,
    #[serde(default, borrow)]
    log_events: Option<Vec<LogEvent<'a>>>,
}

/// A log event: `id` and `timestamp` must be there (every real one has
/// them) and are skipped unread.
#[derive(Deserialize)]
struct LogEvent<'a> {
    #[serde(rename = "id")]
    _id: IgnoredAny,
    #[serde(rename = "timestamp")]
    _timestamp: IgnoredAny,
    #[serde(borrow)]
    message: Cow<'a, str>,
}

impl<'a> Subscription<'a> {
    /// The log events of a data message that has every field a real one has.
    fn into_events(self) -> Result<Vec<LogEvent<'a>>, PayloadError> {
        let missing = |field: &'static str| PayloadError::MissingField(field);
        self.owner.ok_or(missing("owner"))?;
        self.log_group.ok_or(missing("logGroup"))?;
        self.log_stream.ok_or(missing("logStream"))?;
        self.subscription_filters.ok_or(missing("subscriptionFilters"))?;
        self.log_events.ok_or(missing("logEvents"))
    }
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
        let mut payload = self.open(bytes, inflater)?;
        payload.decode_lines(usize::MAX, visit);
        Ok((payload.kind(), payload.stats()))
    }

    /// Opens one payload: inflates it (within the cap), finds out what it
    /// is, and checks a CloudWatch Logs document's envelope. Its lines are
    /// then decoded a bounded number at a time ([`Payload::decode_lines`]),
    /// so a caller can act on each part before decoding the next.
    pub fn open<'d, 'a>(
        &'d self,
        bytes: &'a [u8],
        inflater: &'a mut Inflater,
    ) -> Result<Payload<'d, 'a>, PayloadError> {
        let bytes = if is_gzip(bytes) { inflater.gunzip(bytes, self.options.max_decompressed)? } else { bytes };
        let mut stats = DecodeStats { payloads: 1, ..DecodeStats::default() };
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        let (kind, source) = if first == Some(&b'{') {
            // Validating the document's UTF-8 once, whole, is cheaper than
            // serde_json validating each string it borrows.
            let doc: Subscription<'_> = match std::str::from_utf8(bytes) {
                Ok(text) => serde_json::from_str(text),
                Err(_) => serde_json::from_slice(bytes),
            }
            .map_err(PayloadError::NotCloudWatchLogs)?;
            match doc.message_type.as_ref() {
                "DATA_MESSAGE" => {
                    let events: Vec<Cow<'a, str>> = doc.into_events()?.into_iter().map(|e| e.message).collect();
                    stats.text_bytes = events.iter().map(|m| m.len() as u64 + 1).sum();
                    (PayloadKind::CloudWatchData, Source::Events(events))
                }
                "CONTROL_MESSAGE" => {
                    stats.control_messages += 1;
                    (PayloadKind::CloudWatchControl, Source::Events(Vec::new()))
                }
                other => return Err(PayloadError::UnknownMessageType(other.to_owned())),
            }
        } else {
            stats.text_bytes = (bytes.len() + usize::from(bytes.last().is_some_and(|&b| b != b'\n'))) as u64;
            (PayloadKind::Text, Source::Text(bytes))
        };
        Ok(Payload { kind, source, lines: LineDecoder::new(&self.options.format), next: 0, number: 0, stats })
    }
}

/// Where an opened payload's lines come from.
#[derive(Debug)]
enum Source<'a> {
    /// Raw flow-log text: lines end at newlines.
    Text(&'a [u8]),
    /// A CloudWatch Logs document's log event messages.
    Events(Vec<Cow<'a, str>>),
}

/// A payload being decoded: its lines are visited in order, a bounded
/// number per call, and a header line sets the format for the lines after
/// it across calls.
#[derive(Debug)]
pub struct Payload<'d, 'a> {
    kind: PayloadKind,
    source: Source<'a>,
    lines: LineDecoder<'d>,
    /// Where the next line starts: a byte offset into text, or the next
    /// log event's index.
    next: usize,
    /// Lines (or log events) consumed so far, blank ones included.
    number: usize,
    stats: DecodeStats,
}

impl<'a> Payload<'_, 'a> {
    pub fn kind(&self) -> PayloadKind {
        self.kind
    }

    /// The counters so far; `text_bytes` is the whole payload's from the
    /// start.
    pub fn stats(&self) -> DecodeStats {
        self.stats
    }

    /// How many lines (or log events) the payload has, blank ones included:
    /// what a line budget is checked against before decoding any.
    pub fn line_count(&self) -> usize {
        match &self.source {
            Source::Text(bytes) => {
                memchr::memchr_iter(b'\n', bytes).count() + usize::from(bytes.last().is_some_and(|&b| b != b'\n'))
            }
            Source::Events(events) => events.len(),
        }
    }

    pub fn is_done(&self) -> bool {
        match &self.source {
            Source::Text(bytes) => self.next > bytes.len() || bytes.is_empty(),
            Source::Events(events) => self.next >= events.len(),
        }
    }

    /// Decodes up to `max_lines` more lines, calling `visit` for each record
    /// and rejected line. True when the payload is done.
    pub fn decode_lines(&mut self, max_lines: usize, visit: &mut dyn FnMut(Item<'_, '_>)) -> bool {
        let mut budget = max_lines;
        let mut values = Vec::with_capacity(self.lines.format.len());
        match &self.source {
            Source::Text(bytes) => {
                let bytes: &'a [u8] = bytes;
                // Lines are long (a few hundred bytes): find their ends with
                // SIMD memchr rather than a byte-at-a-time split.
                while budget > 0 && self.next <= bytes.len() && !bytes.is_empty() {
                    let rest = &bytes[self.next..];
                    let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
                    self.number += 1;
                    self.lines.line(self.number, &rest[..end], &mut values, &mut self.stats, visit);
                    self.next += end + 1;
                    budget -= 1;
                }
            }
            Source::Events(events) => {
                while budget > 0 && self.next < events.len() {
                    let message: &str = &events[self.next];
                    self.number += 1;
                    self.next += 1;
                    // JSON strings are UTF-8 already.
                    self.lines.text(self.number, message, &mut values, &mut self.stats, visit);
                    budget -= 1;
                }
            }
        }
        self.is_done()
    }
}

/// Raw flow-log text decoded a line at a time, for text that is never all
/// in memory (a file of any size, read as it streams): a header line sets
/// the format for the lines after it, as within a payload.
#[derive(Debug)]
pub struct TextLines<'f> {
    lines: LineDecoder<'f>,
    number: usize,
    stats: DecodeStats,
}

impl<'f> TextLines<'f> {
    pub fn new(format: &'f Format) -> Self {
        TextLines { lines: LineDecoder::new(format), number: 0, stats: DecodeStats::default() }
    }

    /// Decodes the next line (without its newline).
    pub fn line(&mut self, raw: &[u8], visit: &mut dyn FnMut(Item<'_, '_>)) {
        self.number += 1;
        self.stats.text_bytes += raw.len() as u64 + 1;
        let mut values = Vec::new();
        self.lines.line(self.number, raw, &mut values, &mut self.stats, visit);
    }

    /// Rejects a line of `len` bytes that was not held (longer than
    /// `max`), keeping the line numbers after it right.
    pub fn too_long(&mut self, len: u64, max: usize, visit: &mut dyn FnMut(Item<'_, '_>)) {
        self.number += 1;
        self.stats.text_bytes += len + 1;
        self.stats.rejected += 1;
        visit(Item::Rejected { line: self.number, error: LineError::LineTooLong { len, max }, text: b"" });
    }

    pub fn stats(&self) -> DecodeStats {
        self.stats
    }
}

/// Decodes successive lines of one payload; a header line switches the
/// format for the lines after it.
#[derive(Debug)]
struct LineDecoder<'f> {
    format: Cow<'f, Format>,
}

impl<'f> LineDecoder<'f> {
    fn new(format: &'f Format) -> Self {
        LineDecoder { format: Cow::Borrowed(format) }
    }

    /// A line of raw text: checked to be UTF-8 first.
    fn line<'x>(
        &mut self,
        number: usize,
        raw: &'x [u8],
        values: &mut Vec<Value<'x>>,
        stats: &mut DecodeStats,
        visit: &mut dyn FnMut(Item<'_, '_>),
    ) {
        match std::str::from_utf8(raw) {
            Ok(text) => self.text(number, text, values, stats, visit),
            Err(_) => {
                stats.rejected += 1;
                visit(Item::Rejected { line: number, error: LineError::NotUtf8, text: raw });
            }
        }
    }

    /// A line of text; `values` is the buffer reused across lines.
    fn text<'x>(
        &mut self,
        number: usize,
        text: &'x str,
        values: &mut Vec<Value<'x>>,
        stats: &mut DecodeStats,
        visit: &mut dyn FnMut(Item<'_, '_>),
    ) {
        let text = text.trim_ascii();
        if text.is_empty() {
            return;
        }
        let mut reject = |error: LineError, stats: &mut DecodeStats| {
            stats.rejected += 1;
            visit(Item::Rejected { line: number, error, text: text.as_bytes() });
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
        match self.format.decode(text, values) {
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
