//! `dredge parse`: one JSON object per record on stdout, rejected lines on
//! stderr as `SOURCE:LINE: reason`.

use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dredge_core::flowlog::{DecodeOptions, Decoder, Format, Item, DEFAULT_MAX_DECOMPRESSED};

#[derive(clap::Args)]
pub struct Args {
    /// Format of lines no header precedes: `${version} ${srcaddr} ...` as
    /// given to CreateFlowLogs, or field names separated by spaces.
    /// Default: the version 2 default format.
    #[arg(long, short = 'f')]
    format: Option<String>,
    /// Refuse inputs that decompress to more than this many bytes.
    #[arg(long, default_value_t = DEFAULT_MAX_DECOMPRESSED)]
    max_decompressed: usize,
    /// Input files (`-` or none: standard input).
    files: Vec<PathBuf>,
}

/// Exit code when some line or input was rejected.
const REJECTED: u8 = 1;

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format = match &args.format {
        Some(spec) => Format::parse(spec).with_context(|| format!("--format `{spec}`"))?,
        None => Format::default_v2(),
    };
    let decoder = Decoder::new(DecodeOptions { format, max_decompressed: args.max_decompressed });
    let stdout = io::stdout().lock();
    let mut out = BufWriter::with_capacity(1 << 16, stdout);
    let mut err = io::stderr().lock();
    let inputs: Vec<Option<PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|p| (p.as_os_str() != "-").then(|| p.clone())).collect()
    };

    let mut rejected = false;
    let mut line_buf = Vec::with_capacity(1024);
    for input in inputs {
        let source = input.as_ref().map_or_else(|| "-".to_owned(), |p| p.display().to_string());
        let bytes = match read_input(input.as_ref()) {
            Ok(b) => b,
            Err(e) => {
                writeln!(err, "{source}:0: {e}")?;
                rejected = true;
                continue;
            }
        };
        let mut write_error = None;
        let outcome = decoder.decode(&bytes, &mut |item| match item {
            Item::Record { record, .. } => {
                line_buf.clear();
                record.write_json(&mut line_buf);
                line_buf.push(b'\n');
                if let Err(e) = out.write_all(&line_buf) {
                    write_error.get_or_insert(e);
                }
            }
            Item::Rejected { line, error } => {
                rejected = true;
                let _ = writeln!(err, "{source}:{line}: {error}");
            }
        });
        if let Some(e) = write_error {
            return broken_pipe_ok(e);
        }
        if let Err(e) = outcome {
            writeln!(err, "{source}:0: {e}")?;
            rejected = true;
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_ok(e);
    }
    Ok(if rejected { ExitCode::from(REJECTED) } else { ExitCode::SUCCESS })
}

fn read_input(path: Option<&PathBuf>) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match path {
        Some(p) => bytes = std::fs::read(p)?,
        None => {
            io::stdin().lock().read_to_end(&mut bytes)?;
        }
    }
    Ok(bytes)
}

/// `dredge parse ... | head` closes the pipe early: that is not an error.
fn broken_pipe_ok(e: io::Error) -> anyhow::Result<ExitCode> {
    if e.kind() == io::ErrorKind::BrokenPipe {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(e.into())
    }
}
