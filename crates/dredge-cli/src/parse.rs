//! `dredge parse`: one JSON object per record on stdout, rejected lines on
//! stderr as `SOURCE:LINE: reason`. Raw text (gzip'd or not) streams a line
//! at a time, so memory stays flat on a file of any size; a CloudWatch Logs
//! document is one JSON value and is read whole, up to the decompression cap.
//! On a terminal, a progress line counts what each input has given so far.

use std::cell::Cell;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use dredge_core::flowlog::{is_gzip, DecodeOptions, Decoder, Format, Item, TextLines, DEFAULT_MAX_DECOMPRESSED};
use dredge_demo::report::human_bytes;
use flate2::bufread::MultiGzDecoder;

use crate::progress::{clear_line, thousands, Progress};
use crate::usage;

#[derive(clap::Args)]
pub struct Args {
    /// Format of lines no header precedes: `${version} ${srcaddr} ...` as
    /// given to CreateFlowLogs, or field names separated by spaces.
    /// Default: the version 2 default format.
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// Refuse CloudWatch Logs documents that decompress to more than this
    /// many bytes (raw text streams, whatever its size).
    #[arg(long, default_value_t = DEFAULT_MAX_DECOMPRESSED)]
    max_decompressed: usize,
    /// Input files (`-` or none: standard input).
    files: Vec<PathBuf>,
}

/// The longest line held: a valid flow-log line is a few kilobytes at most
/// (every field is bounded), so a longer one is rejected unread.
const MAX_LINE: usize = 1024 * 1024;

/// Read buffer size.
const READ_BUFFER: usize = 256 * 1024;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = match &args.format {
        Some(spec) => Format::parse(spec).map_err(|e| usage(format!("--format `{spec}`: {e}")))?,
        None => Format::default_v2(),
    };
    let decoder = Decoder::new(DecodeOptions { format, max_decompressed: args.max_decompressed });
    let stdout = io::stdout().lock();
    let mut out =
        Output { out: BufWriter::with_capacity(1 << 16, stdout), line: Vec::with_capacity(1024), error: None };
    let mut err = io::stderr().lock();
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|p| (p.as_os_str() != "-").then(|| p.clone())).collect()
    };

    let mut rejected = false;
    // Records streaming to the terminal are their own progress.
    let progress = if io::stdout().is_terminal() { Progress::hidden() } else { Progress::on_terminal() };
    for input in inputs {
        let source = input.as_ref().map_or_else(|| "-".to_owned(), |p| p.display().to_string());
        let (reader, size): (Box<dyn Read>, Option<u64>) = match &input {
            Some(p) => match std::fs::File::open(p) {
                Ok(f) => {
                    let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                    (Box::new(f), size)
                }
                Err(e) => {
                    writeln!(err, "{source}:0: {e}")?;
                    rejected = true;
                    continue;
                }
            },
            None => (Box::new(io::stdin().lock()), None),
        };
        let counts = Counts::default();
        let reader: Box<dyn Read + '_> = if progress.is_shown() {
            Box::new(Counted { inner: reader, counts: &counts, size, source: &source, progress: &progress })
        } else {
            reader
        };
        let mut visit = |item: Item<'_, '_>| match item {
            Item::Record { record, .. } => {
                counts.records.set(counts.records.get() + 1);
                out.record(&record)
            }
            Item::Rejected { line, error, .. } => {
                rejected = true;
                counts.rejected.set(counts.rejected.get() + 1);
                clear_line();
                let _ = writeln!(io::stderr(), "{source}:{line}: {error}");
            }
        };
        let parsed = parse_one(reader, &decoder, &mut visit);
        progress.finish(|took| format!("{source}: {}, {:.1} s", counts.summary(), took.as_secs_f64()));
        if let Err(e) = parsed {
            writeln!(err, "{source}:0: {e}")?;
            rejected = true;
        }
        if let Some(e) = out.error.take() {
            return broken_pipe_ok(e);
        }
    }
    if let Err(e) = out.out.flush() {
        return broken_pipe_ok(e);
    }
    Ok(if rejected { ExitCode::from(crate::FAILED) } else { ExitCode::SUCCESS })
}

/// Where records go, and the first write error.
struct Output<W: Write> {
    out: W,
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl<W: Write> Output<W> {
    fn record(&mut self, record: &dredge_core::flowlog::Record<'_, '_>) {
        self.line.clear();
        record.write_json(&mut self.line);
        self.line.push(b'\n');
        if let Err(e) = self.out.write_all(&self.line) {
            self.error.get_or_insert(e);
        }
    }
}

/// What one input has given so far, for its progress line.
#[derive(Default)]
struct Counts {
    bytes: Cell<u64>,
    records: Cell<u64>,
    rejected: Cell<u64>,
}

impl Counts {
    fn summary(&self) -> String {
        format!(
            "{} read, {} records, {} rejected",
            human_bytes(self.bytes.get()),
            thousands(self.records.get()),
            thousands(self.rejected.get())
        )
    }
}

/// The input as read (before gunzip, so its size gives the share done),
/// ticking the progress line at each block read (256 KiB at a time, a
/// clock read per block rather than per line).
struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    counts: &'a Counts,
    /// The file's size, when the input is a file.
    size: Option<u64>,
    source: &'a str,
    progress: &'a Progress,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counts.bytes.set(self.counts.bytes.get() + n as u64);
        self.progress.tick(|| {
            let share = match self.size {
                Some(size) if size > 0 => format!(" ({}%)", self.counts.bytes.get() * 100 / size),
                _ => String::new(),
            };
            format!("{}: {}{share}", self.source, self.counts.summary())
        });
        Ok(n)
    }
}

/// Decodes one input: gzip'd or not, a CloudWatch Logs document or text.
fn parse_one(reader: Box<dyn Read + '_>, decoder: &Decoder, visit: &mut dyn FnMut(Item<'_, '_>)) -> anyhow::Result<()> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let mut text: Box<dyn BufRead> = if is_gzip(reader.fill_buf()?) {
        Box::new(BufReader::with_capacity(READ_BUFFER, MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    };
    if starts_with_brace(&mut text)? {
        // One JSON document: read whole, within the cap.
        let max = decoder.options().max_decompressed;
        let mut doc = Vec::new();
        text.take(max as u64 + 1).read_to_end(&mut doc)?;
        anyhow::ensure!(doc.len() <= max, "decompresses to more than {max} bytes");
        decoder.decode(&doc, visit)?;
        return Ok(());
    }
    let mut lines = TextLines::new(&decoder.options().format);
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        match read_line(&mut text, &mut line)? {
            Line::End => return Ok(()),
            Line::Read => lines.line(&line, visit),
            Line::TooLong(len) => lines.too_long(len, MAX_LINE, visit),
        }
    }
}

fn starts_with_brace(text: &mut dyn BufRead) -> io::Result<bool> {
    loop {
        let buf = text.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => return Ok(buf[i] == b'{'),
            // Only whitespace so far: it is not a line's worth, drop it.
            None => {
                let n = buf.len();
                text.consume(n);
            }
        }
    }
}

/// What reading a line gave.
enum Line {
    End,
    Read,
    /// A line longer than [`MAX_LINE`], skipped: its length.
    TooLong(u64),
}

/// Reads one line (without its newline) into `line`, holding at most
/// [`MAX_LINE`] bytes of it.
fn read_line(text: &mut dyn BufRead, line: &mut Vec<u8>) -> io::Result<Line> {
    let mut len: u64 = 0;
    loop {
        let buf = text.fill_buf()?;
        if buf.is_empty() {
            return Ok(match len {
                0 => Line::End,
                n if n > MAX_LINE as u64 => Line::TooLong(n),
                _ => Line::Read,
            });
        }
        let (chunk, newline) = match memchr::memchr(b'\n', buf) {
            Some(i) => (&buf[..i], true),
            None => (buf, false),
        };
        len += chunk.len() as u64;
        if len <= MAX_LINE as u64 {
            line.extend_from_slice(chunk);
        }
        let used = chunk.len() + usize::from(newline);
        text.consume(used);
        if newline {
            return Ok(if len > MAX_LINE as u64 { Line::TooLong(len) } else { Line::Read });
        }
    }
}

/// `dredge parse ... | head` closes the pipe early: that is not an error.
fn broken_pipe_ok(e: io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(e.into())
    }
}
