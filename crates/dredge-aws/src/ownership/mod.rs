//! The ownership table in DynamoDB: [`DynamoOwnershipStore`] implements
//! [`OwnershipStore`] with the semantics of the embedded
//! [`MemoryStore`](dredge_core::ownership::MemoryStore). The table design
//! (keys, items, index, TTL, cost per access pattern) is described in the
//! README, section "The ownership table (DynamoDB)".
//!
//! By job: `requests` sends the SDK requests (pagination, batching,
//! concurrency), `heads` keeps address timelines (the head-merge protocol
//! and lookups), `enis` the ENI and instance records; this module holds
//! the store's options and its [`OwnershipStore`] implementation.

mod enis;
mod errors;
mod expiry;
mod heads;
mod items;
mod pending;
mod requests;
mod table;

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use dredge_core::ownership::{
    AddressKey, Change, EniRecord, EniRef, EniWrite, Head, InstanceNote, InstanceNotes, InstanceRecord, Mark, Owner,
    OwnershipStore, Sighting, StoreResult, Timeline, UnixTime,
};
use dredge_lambda::RetryPolicy;

use requests::Requests;
pub use table::{create_table, INSTANCE_INDEX};

/// How long closed intervals stay in the table by default.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How many of an address's latest marks its head item holds by default:
/// four release/reuse cycles, about 3 KB with typical owners (one 4 KB read
/// unit).
pub const DEFAULT_HEAD_MARKS: usize = 8;

/// The time-ranged IP ownership table in DynamoDB (design: the README,
/// section "The ownership table (DynamoDB)").
///
/// Cheap to clone (the client is shared); build one per process from one
/// client.
#[derive(Debug, Clone)]
pub struct DynamoOwnershipStore {
    requests: Requests,
    /// Seconds.
    retention: i64,
    head_marks: usize,
}

impl DynamoOwnershipStore {
    /// A store on `table` (which must exist: see [`create_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoOwnershipStore {
            requests: Requests::new(client, table.into()),
            retention: DEFAULT_RETENTION.as_secs() as i64,
            head_marks: DEFAULT_HEAD_MARKS,
        }
    }

    /// How long an ended interval's marks stay (DynamoDB TTL on
    /// `expires_at`; the service deletes expired items within days, not at
    /// once). Default [`DEFAULT_RETENTION`].
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
        self
    }

    /// How many of an address's latest marks its head item keeps (at least
    /// one). Lookups at times the head does not explain cost an extra Query.
    /// Default [`DEFAULT_HEAD_MARKS`].
    pub fn with_head_marks(mut self, n: usize) -> Self {
        self.head_marks = n.max(1);
        self
    }

    pub fn table(&self) -> &str {
        self.requests.table()
    }

    pub fn client(&self) -> &Client {
        self.requests.client()
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention as u64)
    }

    pub fn head_marks(&self) -> usize {
        self.head_marks
    }

    /// Creates the table (see the free function [`create_table`]).
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        create_table(client, table).await
    }

    fn expires(&self, at: UnixTime) -> i64 {
        at.0.saturating_add(self.retention)
    }
}

impl OwnershipStore for DynamoOwnershipStore {
    /// One conditional PutItem per new mark (`attribute_not_exists`: a
    /// duplicate is a success), one BatchGetItem for the heads of up to 100
    /// addresses, one conditional PutItem per changed head (retried on
    /// version conflicts), and one conditional UpdateItem per open an input
    /// ends.
    async fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> StoreResult<()> {
        self.merge_marks(marks).await
    }

    /// One BatchGetItem per 100 distinct addresses; a Query (usually one
    /// page) only for an (address, time) its head does not explain.
    async fn lookup(&self, queries: &[(AddressKey, UnixTime)]) -> StoreResult<Vec<Option<Owner>>> {
        self.owners(queries).await
    }

    /// One BatchGetItem of head items per 100 addresses: what the
    /// enricher's cache holds. An address without a head has no marks.
    async fn heads(&self, keys: &[AddressKey]) -> StoreResult<Vec<Head>> {
        self.heads_of(keys).await
    }

    /// One BatchGetItem per 100 ENIs (run concurrently).
    async fn enis_by_id(&self, ids: &[String]) -> StoreResult<Vec<Option<EniRecord>>> {
        self.enis_by_ids(ids).await
    }

    /// One conditional UpdateItem per address, ENI and attachment.
    async fn put_seen(&self, seen: &[(AddressKey, Sighting)]) -> StoreResult<()> {
        self.record_seen(seen).await
    }

    /// One conditional UpdateItem.
    async fn note_reconciled(&self, scope: &str, at: UnixTime) -> StoreResult<()> {
        self.record_reconciled(scope, at).await
    }

    /// One GetItem.
    async fn reconciled(&self) -> StoreResult<Vec<(String, UnixTime)>> {
        self.all_reconciled().await
    }

    /// One Query of the address's partition (paginated).
    async fn timeline(&self, key: &AddressKey) -> StoreResult<Timeline> {
        self.timeline_of(key).await
    }

    /// A full table Scan (paginated): for dump and reconcile only, never on
    /// a per-record path. Costs the whole table's size in read units.
    async fn timelines(&self) -> StoreResult<Vec<(AddressKey, Timeline)>> {
        self.all_timelines().await
    }

    /// By id: one GetItem. By attachment or association: two (the alias
    /// item, then the record), and the record must still name the alias.
    async fn eni(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        self.eni_by(by).await
    }

    /// One Query of the instance index (eventually consistent, as every GSI
    /// read: an ENI written a moment ago may be missing).
    async fn enis_of_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        self.enis_on_instance(instance_id).await
    }

    /// A full table Scan (paginated): for reconcile only.
    async fn enis(&self) -> StoreResult<Vec<EniRecord>> {
        self.all_enis().await
    }

    /// The alias items first (PutItem each), then the record (PutItem,
    /// replacing it whole, as the embedded store does); aliases the previous
    /// version had and this one lacks are deleted (conditional on still
    /// naming this ENI). A deleted ENI's items expire `retention` after its
    /// deletion.
    /// The record's PutItem is conditional on its version.
    async fn put_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        self.store_eni(record).await
    }

    async fn put_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        self.keep_pending(reference, change).await
    }

    async fn pending(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        self.pending_of(reference).await
    }

    async fn forget_pending(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        self.forget(reference, changes).await
    }

    /// One UpdateItem adding to a set.
    async fn note_instance(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        self.add_note(instance_id, note).await
    }

    /// One GetItem.
    async fn instance_notes(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        self.notes_of(instance_id).await
    }

    /// One GetItem.
    async fn instance(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        self.instance_by_id(instance_id).await
    }

    /// One PutItem, conditional on no newer state change being stored.
    async fn put_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        self.store_instance(record).await
    }

    /// Every request sent to DynamoDB, by this store and its clones: each
    /// page of a Query or Scan and each BatchGetItem retry of unprocessed
    /// keys count; the SDK's own retries of a request do not.
    fn calls(&self) -> u64 {
        self.requests.sent()
    }
}

/// Retries within the store (head conflicts, unprocessed keys): about
/// 25 ms, 50 ms, ... up to 1.6 s, half of each wait random.
fn retry_policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::new(attempts, Duration::from_millis(25), Duration::from_millis(1600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_have_floors() {
        let client = Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
                .build(),
        );
        let store = DynamoOwnershipStore::new(client, "t").with_head_marks(0).with_retention(Duration::from_secs(60));
        assert_eq!(store.head_marks(), 1);
        assert_eq!(store.retention(), Duration::from_secs(60));
        assert_eq!(store.table(), "t");
        assert_eq!(store.expires(UnixTime(100)), 160);
    }
}
