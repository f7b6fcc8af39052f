//! The record sink: where enriched records go (a Kinesis Data Stream in
//! AWS). Encoding and batching live with the caller; a sink only carries
//! one PutRecords-sized batch and says, entry by entry, what happened.

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// PutRecords limits: records per call, bytes per call, bytes per record.
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutRecord {
    pub partition_key: String,
    /// Newline-delimited enriched JSON.
    #[serde(with = "text")]
    pub data: Vec<u8>,
}

mod text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&String::from_utf8_lossy(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// Why one entry of a batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct EntryError {
    pub code: String,
    pub message: String,
}

/// The whole call failed: [`Failure`](crate::Failure).
pub type SinkError = crate::Failure;

/// A stream that takes batches of records.
pub trait RecordSink: Send + Sync {
    /// Puts one batch (at most [`MAX_RECORDS_PER_CALL`] records and
    /// [`MAX_BYTES_PER_CALL`] bytes). The result has one entry per record,
    /// in order: entries can fail while others succeed.
    fn put_records(
        &self,
        records: &[OutRecord],
    ) -> impl Future<Output = Result<Vec<Result<(), EntryError>>, SinkError>> + Send;
}

/// The embedded stream: records appended as JSON lines to
/// `<state>/streams/<name>.jsonl`, read back with [`read_stream`].
#[derive(Debug)]
pub struct FileStream {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileStream {
    pub fn new(state_dir: &Path, name: &str) -> Self {
        FileStream { path: stream_path(state_dir, name), lock: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn stream_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("streams").join(format!("{name}.jsonl"))
}

impl RecordSink for FileStream {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let write = || -> std::io::Result<()> {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
            let mut out = std::io::BufWriter::new(file);
            for r in records {
                serde_json::to_writer(&mut out, r)?;
                out.write_all(b"\n")?;
            }
            out.flush()
        };
        write().map_err(|e| SinkError::Permanent(format!("{}: {e}", self.path.display())))?;
        Ok(vec![Ok(()); records.len()])
    }
}

/// Every record of an embedded stream, oldest first (empty if none yet).
pub fn read_stream(state_dir: &Path, name: &str) -> std::io::Result<Vec<OutRecord>> {
    let path = stream_path(state_dir, name);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    std::io::BufReader::new(file)
        .lines()
        .map(|line| {
            serde_json::from_str(&line?)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())))
        })
        .collect()
}
