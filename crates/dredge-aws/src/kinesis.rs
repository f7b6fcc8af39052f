//! [`RecordSink`] on a Kinesis Data Stream (PutRecords).

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use dredge_core::sink::{EntryError, OutRecord, RecordSink, SinkError};
use dredge_lambda::sdk_error::classify;

/// Puts records on one stream, named by name or ARN.
#[derive(Debug, Clone)]
pub struct KinesisSink {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisSink {
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        KinesisSink { client, stream: stream.into() }
    }
}

impl RecordSink for KinesisSink {
    async fn put_records(&self, records: &[OutRecord]) -> Result<Vec<Result<(), EntryError>>, SinkError> {
        let entries = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&r.partition_key)
                    .data(Blob::new(r.data.clone()))
                    .build()
                    .map_err(|e| SinkError::Permanent(format!("building a PutRecords entry: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let request = self.client.put_records().set_records(Some(entries));
        let request = if self.stream.starts_with("arn:") {
            request.stream_arn(&self.stream)
        } else {
            request.stream_name(&self.stream)
        };
        let output = request.send().await.map_err(|e| classify(&format!("Kinesis PutRecords {}", self.stream), &e))?;
        let results = output.records();
        if results.len() != records.len() {
            return Err(SinkError::Transient(format!(
                "Kinesis PutRecords answered {} entries for {}",
                results.len(),
                records.len()
            )));
        }
        Ok(results
            .iter()
            .map(|r| match r.error_code() {
                None => Ok(()),
                Some(code) => {
                    Err(EntryError { code: code.to_owned(), message: r.error_message().unwrap_or_default().to_owned() })
                }
            })
            .collect())
    }
}
