//! Changes kept for ENIs the table does not know yet, and the notes of
//! instances (stops, interfaces): what makes one history out of any
//! delivery order.

use aws_sdk_dynamodb::types::AttributeValue;
use dredge_core::ownership::{Change, EniRef, InstanceNote, InstanceNotes, StoreResult, UnixTime};

use super::items;
use super::requests::run_all;
use super::DynamoOwnershipStore;

impl DynamoOwnershipStore {
    /// One PutItem; a change kept twice is one item.
    pub(super) async fn keep_pending(&self, reference: &EniRef, change: &Change) -> StoreResult<()> {
        let item = items::pending_item(reference, change, self.expires(change.at()))?;
        self.requests.put(item).await.map(drop)
    }

    /// One Query of the reference's partition (paginated).
    pub(super) async fn pending_of(&self, reference: &EniRef) -> StoreResult<Vec<Change>> {
        let found = self
            .requests
            .query(|q| {
                q.key_condition_expression("#pk = :pk")
                    .expression_attribute_names("#pk", items::PK)
                    .expression_attribute_values(":pk", items::s(items::pending_pk(reference)))
                    .consistent_read(true)
            })
            .all()
            .await?;
        found.iter().map(items::parse_pending).collect()
    }

    /// One DeleteItem per change (concurrently).
    pub(super) async fn forget(&self, reference: &EniRef, changes: &[Change]) -> StoreResult<()> {
        let deletes = changes
            .iter()
            .map(|c| items::pending_key(reference, c))
            .collect::<StoreResult<Vec<_>>>()?
            .into_iter()
            .map(|key| {
                let me = self.clone();
                async move { me.requests.delete_if(key, "attribute_exists(#pk)", &[("#pk", items::PK)], vec![]).await }
            })
            .collect::<Vec<_>>();
        run_all(deletes).await.map(drop)
    }

    /// One UpdateItem adding to one of the sets of the instance's notes
    /// item (commutative: concurrent and repeated notes all stay). The item
    /// expires `retention` after the note last written.
    pub(super) async fn add_note(&self, instance_id: &str, note: &InstanceNote) -> StoreResult<()> {
        let key = items::key(items::instance_pk(instance_id), items::NOTES_SK);
        let (set, value) = match note {
            InstanceNote::Stopped(at) => (items::STOPS, AttributeValue::Ns(vec![at.0.to_string()])),
            InstanceNote::Interface(id) => (items::INTERFACES, AttributeValue::Ss(vec![id.clone()])),
        };
        let now = UnixTime(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64),
        );
        let at = match note {
            InstanceNote::Stopped(at) => (*at).max(now),
            InstanceNote::Interface(_) => now,
        };
        self.requests
            .update(
                key,
                "ADD #s :s SET #e = :e",
                &[("#s", set), ("#e", items::EXPIRES_AT)],
                vec![(":s", value), (":e", items::n(self.expires(at)))],
            )
            .await
    }

    /// One GetItem.
    pub(super) async fn notes_of(&self, instance_id: &str) -> StoreResult<InstanceNotes> {
        let key = items::key(items::instance_pk(instance_id), items::NOTES_SK);
        Ok(self.requests.get_item(key).await?.as_ref().map(items::parse_notes).unwrap_or_default())
    }
}
