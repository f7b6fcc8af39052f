//! The record sink: where enriched records go (a Kinesis Data Stream in
//! AWS). Encoding and batching live with the caller; a sink only carries
//! one PutRecords-sized batch and says, entry by entry, what happened.
//! Record data is bytes (`crate::stream_data` reads it).

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// PutRecords limits: records per call, bytes per call, bytes per record
/// (data and partition key, in both limits).
pub const MAX_RECORDS_PER_CALL: usize = 500;
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Partition keys are 1 to 256 characters.
pub const MAX_PARTITION_KEY_BYTES: usize = 256;

/// One record to put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutRecord {
    pub partition_key: String,
    /// Enriched NDJSON, compressed or not (`crate::stream_data`); base64 in
    /// the embedded stream's file, so any bytes round-trip.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl OutRecord {
    /// What the record counts for against Kinesis's limits.
    pub fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        base64::engine::general_purpose::STANDARD.decode(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Why Kinesis would refuse a PutRecords call whole, as it says it: a limit
/// broken anywhere in the call fails every entry, not just the offending one.
pub fn check_put_records(records: &[OutRecord]) -> Result<(), SinkError> {
    if records.len() > MAX_RECORDS_PER_CALL {
        return Err(SinkError::Permanent(format!(
            "ValidationException: 1 validation error detected: Value at 'records' failed to satisfy constraint: \
             Member must have length less than or equal to {MAX_RECORDS_PER_CALL} (got {})",
            records.len()
        )));
    }
    for (i, r) in records.iter().enumerate() {
        if r.partition_key.is_empty() || r.partition_key.len() > MAX_PARTITION_KEY_BYTES {
            return Err(SinkError::Permanent(format!(
                "ValidationException: Value at 'records.{}.member.partitionKey' failed to satisfy constraint: \
                 Member must have length between 1 and {MAX_PARTITION_KEY_BYTES}",
                i + 1
            )));
        }
        if r.size() > MAX_RECORD_BYTES {
            return Err(SinkError::Permanent(format!(
                "ValidationException: Value at 'records.{}.member.data' failed to satisfy constraint: \
                 the record (data and partition key, {} bytes) must be at most {MAX_RECORD_BYTES} bytes",
                i + 1,
                r.size()
            )));
        }
    }
    let total: usize = records.iter().map(OutRecord::size).sum();
    if total > MAX_BYTES_PER_CALL {
        return Err(SinkError::Permanent(format!(
            "InvalidArgumentException: Records size exceeds {MAX_BYTES_PER_CALL} bytes ({total})"
        )));
    }
    Ok(())
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

/// The embedded stream: records appended as JSON lines (`partition_key`,
/// `data` in base64) to `<state>/streams/<name>.jsonl`, read back with
/// [`read_stream`]. Refuses what Kinesis refuses ([`check_put_records`]).
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
        check_put_records(records)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, size: usize) -> OutRecord {
        OutRecord { partition_key: key.into(), data: vec![0x28; size] }
    }

    fn put(stream: &FileStream, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        crate::ownership::testing::ready(stream.put_records(records))
    }

    #[test]
    fn any_bytes_round_trip() {
        let dir = tempdir();
        let stream = FileStream::new(&dir, "enriched");
        let records = vec![
            OutRecord { partition_key: "a".into(), data: vec![0x28, 0xb5, 0x2f, 0xfd, 0xff, 0, b'\n'] },
            OutRecord { partition_key: "b".into(), data: b"{\"x\":1}\n".to_vec() },
        ];
        assert_eq!(put(&stream, &records).unwrap(), vec![Ok(()), Ok(())]);
        assert_eq!(read_stream(&dir, "enriched").unwrap(), records);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn refuses_whole_calls_as_kinesis_does() {
        let dir = tempdir();
        let stream = FileStream::new(&dir, "enriched");
        let refused = |records: &[OutRecord], code: &str| {
            let err = put(&stream, records).unwrap_err();
            assert!(!err.is_transient(), "{err}");
            assert!(err.to_string().contains(code), "{err}");
        };
        // A record over 1 MiB with its key, among good ones: the whole call.
        refused(&[record("k", 10), record("k", MAX_RECORD_BYTES), record("k", 10)], "ValidationException");
        refused(&[record("", 10)], "ValidationException");
        refused(&vec![record("k", 1); MAX_RECORDS_PER_CALL + 1], "ValidationException");
        refused(&vec![record("k", MAX_RECORD_BYTES - 1); 6], "InvalidArgumentException");
        assert!(read_stream(&dir, "enriched").unwrap().is_empty(), "nothing of a refused call is written");
        // At the limits exactly: accepted.
        assert!(put(&stream, &[record("k", MAX_RECORD_BYTES - 1)]).is_ok());
        assert!(put(&stream, &vec![record("k", 1); MAX_RECORDS_PER_CALL]).is_ok());
        let five = vec![record("k", MAX_BYTES_PER_CALL / 5 - 1); 5];
        assert!(put(&stream, &five).is_ok());
        assert_eq!(read_stream(&dir, "enriched").unwrap().len(), 1 + MAX_RECORDS_PER_CALL + 5);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let thread = std::thread::current().name().unwrap_or("").replace(':', "_");
        let dir = std::env::temp_dir().join(format!("dredge-sink-{}-{thread}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }
}
