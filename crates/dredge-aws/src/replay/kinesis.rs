//! The records a Kinesis on-failure record points at, read back from their
//! shard.

use std::cmp::Ordering;
use std::time::Duration;

use aws_sdk_kinesis::error::ProvideErrorMetadata;
use aws_sdk_kinesis::types::ShardIteratorType;
use dredge_core::Failure;
use dredge_lambda::sdk_error::classify;

/// One shard's records from `start` to `end` (sequence numbers, both
/// included), on the stream named by `stream_arn`.
#[derive(Debug, Clone, Copy)]
pub struct ShardRange<'a> {
    pub stream_arn: &'a str,
    pub shard_id: &'a str,
    pub start: &'a str,
    pub end: &'a str,
    /// How many records the range held: GetRecords asks for no more.
    pub batch_size: u64,
}

/// A record as GetRecords returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub partition_key: String,
    pub sequence_number: String,
    pub data: Vec<u8>,
    /// When Kinesis received it, epoch seconds.
    pub arrival: f64,
}

/// What the shard still holds of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Reread {
    /// The range's records the shard returned, in order.
    pub records: Vec<StreamRecord>,
    /// The first record returned is the range's start. When it is later,
    /// the records before it are gone (the stream's retention trimmed
    /// them).
    pub from_start: bool,
    /// The range's last record was read. Not when the shard ended (closed
    /// by a reshard) or the reader caught up with its tip first.
    pub to_end: bool,
}

impl Reread {
    /// Both ends of the range were read: every record it held is here.
    pub fn is_whole(&self) -> bool {
        self.from_start && self.to_end
    }
}

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RereadError {
    /// Kinesis refuses to read from the range's start: the stream or shard
    /// no longer exists (retention outlived a reshard, the stack was
    /// replaced), or the sequence number is not that shard's. Nothing of
    /// the range can be read.
    #[error("the stream refuses to read from the range's start: {0}")]
    Refused(String),
    /// The service failed (access denied, throttled past the SDK's own
    /// retries, ...): trying later may do.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// GetRecords asks for at most this many records (Kinesis's own limit).
const MAX_GET_RECORDS: u64 = 10_000;

/// The pause between pages: Kinesis serves 5 GetRecords a second per
/// shard, shared with the live event source mapping reading the same shard,
/// so a replay takes at most one of them. (An empty page behind the tip
/// only means a quiet stretch of the shard: read on.)
const PAGE_PAUSE: Duration = Duration::from_millis(200);

/// Reads `range` back from its shard: an iterator at the start's sequence
/// number, then GetRecords until the end's.
pub async fn reread(client: &aws_sdk_kinesis::Client, range: &ShardRange<'_>) -> Result<Reread, RereadError> {
    // A start that retention already removed may be refused with
    // InvalidArgumentException rather than served from the trim horizon:
    // then read what the shard still holds from its oldest record, and the
    // first record read (later than the start) tells what was lost. Were
    // the start from another shard, this reads only this shard's records
    // within the range's numbers: at worst repeats, dropped downstream.
    let mut iterator = match shard_iterator(client, range, ShardIteratorType::AtSequenceNumber).await {
        Err(RereadError::Refused(why)) => {
            tracing::warn!(shard = range.shard_id, start = range.start, %why, "start refused; reading from the trim horizon");
            shard_iterator(client, range, ShardIteratorType::TrimHorizon).await?
        }
        other => other?,
    };
    let limit = range.batch_size.clamp(1, MAX_GET_RECORDS) as i32;
    let mut read = Reread { records: Vec::new(), from_start: false, to_end: false };
    let mut first = true;
    while let Some(current) = iterator.take() {
        let page = client
            .get_records()
            .stream_arn(range.stream_arn)
            .shard_iterator(current)
            .limit(limit)
            .send()
            .await
            .map_err(|e| classify(&format!("Kinesis GetRecords {} {}", range.stream_arn, range.shard_id), &e))?;
        let caught_up = page.millis_behind_latest == Some(0);
        let empty = page.records.is_empty();
        for record in page.records {
            if sequence_cmp(&record.sequence_number, range.start) == Ordering::Less {
                continue;
            }
            if first {
                read.from_start = sequence_cmp(&record.sequence_number, range.start) == Ordering::Equal;
                first = false;
            }
            match sequence_cmp(&record.sequence_number, range.end) {
                Ordering::Greater => {
                    // Past the end: the end itself is behind us (or gone).
                    read.to_end = true;
                    return Ok(read);
                }
                order => {
                    read.to_end = order == Ordering::Equal;
                    read.records.push(StreamRecord {
                        partition_key: record.partition_key.unwrap_or_default(),
                        sequence_number: record.sequence_number,
                        data: record.data.into_inner(),
                        arrival: record.approximate_arrival_timestamp.map_or(0.0, |t| t.as_secs_f64()),
                    });
                    if read.to_end {
                        return Ok(read);
                    }
                }
            }
        }
        if empty && caught_up {
            // At the tip without reaching the end: it is not in this shard.
            return Ok(read);
        }
        iterator = page.next_shard_iterator;
        if iterator.is_some() {
            tokio::time::sleep(PAGE_PAUSE).await;
        }
    }
    Ok(read)
}

/// An iterator on the range's shard: at its start, or at the shard's oldest
/// record. A refusal (unknown stream or shard, a bad or expired sequence
/// number) is `Refused`; anything else is the service failing.
async fn shard_iterator(
    client: &aws_sdk_kinesis::Client,
    range: &ShardRange<'_>,
    kind: ShardIteratorType,
) -> Result<Option<String>, RereadError> {
    let at_start = kind == ShardIteratorType::AtSequenceNumber;
    let out = client
        .get_shard_iterator()
        .stream_arn(range.stream_arn)
        .shard_id(range.shard_id)
        .shard_iterator_type(kind)
        .set_starting_sequence_number(at_start.then(|| range.start.to_owned()))
        .send()
        .await
        .map_err(|e| match e.code() {
            Some("InvalidArgumentException" | "ResourceNotFoundException") => {
                RereadError::Refused(e.message().unwrap_or("no reason given").to_owned())
            }
            _ => classify(&format!("Kinesis GetShardIterator {} {}", range.stream_arn, range.shard_id), &e).into(),
        })?;
    Ok(out.shard_iterator)
}

/// Orders Kinesis sequence numbers: decimal integers of up to 129 digits,
/// wider than any machine integer.
fn sequence_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.trim_start_matches('0'), b.trim_start_matches('0'));
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_order_as_integers() {
        let big = "49601189658422359378836298521827638475320189012309704722";
        let bigger = "49601189658422359378836298522902373528957594348623495186";
        assert_eq!(sequence_cmp(big, bigger), Ordering::Less);
        assert_eq!(sequence_cmp(bigger, big), Ordering::Greater);
        assert_eq!(sequence_cmp(big, big), Ordering::Equal);
        assert_eq!(sequence_cmp("9", "10"), Ordering::Less, "by value, not by text");
        assert_eq!(sequence_cmp("007", "7"), Ordering::Equal);
        assert_eq!(sequence_cmp("0", "1"), Ordering::Less);
    }
}
