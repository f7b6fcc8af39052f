//! `dredge parquet`: enriched NDJSON (what the enricher writes) to one zstd
//! Parquet file. Rejected lines go to stderr as `SOURCE:LINE: reason`; a
//! summary line (JSON) follows on stderr.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use dredge_columnar::{EncoderOptions, ParquetEncoder};

#[derive(clap::Args)]
pub struct Args {
    /// Output file (default: standard output).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Close a row group once its encoded size reaches this many bytes.
    #[arg(long, default_value_t = EncoderOptions::default().row_group_bytes)]
    row_group_bytes: usize,
    /// zstd compression level (1 to 22).
    #[arg(long, default_value_t = EncoderOptions::default().zstd_level,
          value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: i32,
    /// Enriched NDJSON inputs (`-` or none: standard input).
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let options =
        EncoderOptions { row_group_bytes: args.row_group_bytes, zstd_level: args.zstd_level, ..Default::default() };
    let out: Box<dyn Write + Send> = match &args.out {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(io::stdout()),
    };
    let mut encoder = ParquetEncoder::new(BufWriter::with_capacity(1 << 20, out), options)?;
    let mut err = io::stderr().lock();
    let inputs: Vec<Option<&PathBuf>> = if args.files.is_empty() {
        vec![None]
    } else {
        args.files.iter().map(|p| (p.as_os_str() != "-").then_some(p)).collect()
    };
    let mut buf = Vec::new();
    for input in inputs {
        let source = input.map_or_else(|| "-".to_owned(), |p| p.display().to_string());
        let mut reader: Box<dyn Read> = match input {
            Some(path) => Box::new(File::open(path).with_context(|| format!("opening {source}"))?),
            None => Box::new(io::stdin().lock()),
        };
        let mut number = 0u64;
        for_each_line(&mut reader, &mut buf, |line| {
            number += 1;
            if let Err(reason) = encoder.push_line(line)? {
                writeln!(err, "{source}:{number}: {reason}")?;
            }
            Ok(())
        })
        .with_context(|| format!("reading {source}"))?;
    }
    let (out, summary) = encoder.finish()?;
    out.into_inner().map_err(|e| e.into_error()).context("writing the output")?.flush()?;
    let report = serde_json::json!({
        "rows_written": summary.rows_written,
        "rows_rejected": summary.rows_rejected,
        "rejected_by_kind": summary.rejected_by_kind,
        "blank_lines": summary.blank_lines,
    });
    writeln!(err, "{report}")?;
    Ok(if summary.rows_rejected > 0 { ExitCode::from(crate::FAILED) } else { ExitCode::SUCCESS })
}

/// Calls `f` with each line of `reader` (without its newline), read in
/// blocks of at least 1 MiB into `buf` and split in place: no copy per
/// line. `buf` grows only for a line longer than the block, and is zeroed
/// only then, not before every read.
fn for_each_line(
    reader: &mut dyn Read,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    const BLOCK: usize = 1 << 20;
    // `buf[..filled]`: the start of a line that the last block cut.
    let mut filled = 0;
    loop {
        if buf.len() < filled + BLOCK {
            buf.resize(filled + BLOCK, 0);
        }
        let n = reader.read(&mut buf[filled..])?;
        let end = filled + n;
        let mut start = 0;
        while let Some(newline) = memchr::memchr(b'\n', &buf[start..end]).map(|p| start + p) {
            f(&buf[start..newline])?;
            start = newline + 1;
        }
        if n == 0 {
            if start < end {
                f(&buf[start..end])?;
            }
            return Ok(());
        }
        buf.copy_within(start..end, 0);
        filled = end - start;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_across_blocks() {
        let long = "x".repeat(3 << 20);
        let text = format!("a\n\n{long}\nb\r\nlast");
        let mut lines = Vec::new();
        for_each_line(&mut text.as_bytes(), &mut Vec::new(), |l| {
            lines.push(String::from_utf8(l.to_vec())?);
            Ok(())
        })
        .unwrap();
        assert_eq!(lines, ["a", "", long.as_str(), "b\r", "last"]);
    }
}
