//! ENI records, the alias items that find them by attachment or
//! association, and instance records.

use std::collections::{BTreeSet, HashMap};

use dredge_core::ownership::{EniRecord, EniRef, EniWrite, InstanceRecord, StoreResult};

use super::items::{self, Item};
use super::requests::{run_all, Written};
use super::{DynamoOwnershipStore, INSTANCE_INDEX};

impl DynamoOwnershipStore {
    /// Several ENI records by id, in order.
    pub(super) async fn enis_by_ids(&self, ids: &[String]) -> StoreResult<Vec<Option<EniRecord>>> {
        // BatchGetItem refuses duplicate keys; answers may repeat.
        let distinct: BTreeSet<&String> = ids.iter().collect();
        let keys: Vec<Item> = distinct.into_iter().map(|id| items::key(items::eni_pk(id), items::ENI_SK)).collect();
        let mut found: HashMap<String, EniRecord> = HashMap::with_capacity(ids.len());
        for item in self.requests.batch_get(keys).await? {
            let record = items::parse_eni(&item)?;
            found.insert(record.eni.eni_id.clone(), record);
        }
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// By attachment or association, the record must still name the alias.
    pub(super) async fn eni_by(&self, by: &EniRef) -> StoreResult<Option<EniRecord>> {
        match by {
            EniRef::Id(id) => self.eni_by_id(id).await,
            EniRef::Attachment(a) => {
                Ok(self.eni_by_alias(items::attachment_pk(a)).await?.filter(|r| r.has_attachment(a)))
            }
            EniRef::Association(a) => {
                Ok(self.eni_by_alias(items::association_pk(a)).await?.filter(|r| r.associations.contains_key(a)))
            }
        }
    }

    /// The ENIs the instance index lists for an instance, still attached to
    /// it.
    pub(super) async fn enis_on_instance(&self, instance_id: &str) -> StoreResult<Vec<EniRecord>> {
        let found = self
            .requests
            .query(|q| {
                q.index_name(INSTANCE_INDEX)
                    .key_condition_expression("#g = :g")
                    .expression_attribute_names("#g", items::GSI1PK)
                    .expression_attribute_values(":g", items::s(items::instance_pk(instance_id)))
            })
            .all()
            .await?;
        let mut records = Vec::with_capacity(found.len());
        for item in &found {
            let record = items::parse_eni(item)?;
            if record.eni.instance_id.as_deref() == Some(instance_id) {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// Every ENI record, from a Scan of the whole table, by id.
    pub(super) async fn all_enis(&self) -> StoreResult<Vec<EniRecord>> {
        let found =
            self.requests.scan("#sk = :e", &[("#sk", items::SK)], vec![(":e", items::s(items::ENI_SK))]).await?;
        let mut records = found.iter().map(items::parse_eni).collect::<StoreResult<Vec<_>>>()?;
        records.sort_by(|a, b| a.eni.eni_id.cmp(&b.eni.eni_id));
        Ok(records)
    }

    /// The alias items first, then the record, replacing it whole if its
    /// stored version is still the one read; then the aliases only the
    /// previous version had, unless they name another ENI by now.
    pub(super) async fn store_eni(&self, record: &EniRecord) -> StoreResult<EniWrite> {
        let eni_id = record.eni.eni_id.clone();
        let expires_at = record.deleted_at.map(|d| self.expires(d));
        let aliases = items::alias_pks(record);
        let puts: Vec<_> = aliases
            .iter()
            .map(|pk| {
                let me = self.clone();
                let item = items::alias_item(pk.clone(), &eni_id, expires_at);
                async move { me.requests.put(item).await }
            })
            .collect();
        run_all(puts).await?;
        let next = EniRecord { version: record.version + 1, ..record.clone() };
        let item = items::eni_item(&next, expires_at)?;
        let names = [("#pk", items::PK), ("#v", items::VERSION)];
        let written = if record.version == 0 {
            // A record written before versions counts as version 0.
            self.requests.put_if(item, "attribute_not_exists(#pk) OR attribute_not_exists(#v)", &names, vec![]).await?
        } else {
            self.requests.put_if(item, "#v = :v", &names[1..], vec![(":v", items::n(record.version as i64))]).await?
        };
        // An alias written for a refused record names this ENI, and the
        // record decides (aliases are checked against it on reading).
        let old = match written {
            Written::Done(old) => old,
            Written::Refused(_) => return Ok(EniWrite::Conflict),
        };
        let Some(old) = old else { return Ok(EniWrite::Written) };
        let old = items::parse_eni(&old)?;
        let stale: Vec<_> = items::alias_pks(&old)
            .into_iter()
            .filter(|pk| !aliases.contains(pk))
            .map(|pk| {
                let me = self.clone();
                let eni_id = eni_id.clone();
                async move { me.delete_alias(pk, eni_id).await }
            })
            .collect();
        run_all(stale).await?;
        Ok(EniWrite::Written)
    }

    pub(super) async fn instance_by_id(&self, instance_id: &str) -> StoreResult<Option<InstanceRecord>> {
        self.requests
            .get_item(items::key(items::instance_pk(instance_id), items::INSTANCE_SK))
            .await?
            .map(|item| items::parse_instance(instance_id, &item))
            .transpose()
    }

    /// Conditional on the record superseding what is stored
    /// ([`InstanceRecord::supersedes`]).
    pub(super) async fn store_instance(&self, record: &InstanceRecord) -> StoreResult<()> {
        let expires_at = (!record.running).then(|| self.expires(record.changed_at));
        let item = items::instance_item(record, expires_at);
        let condition = if record.running {
            "attribute_not_exists(#pk) OR (#r = :t AND #c <= :c)"
        } else {
            "attribute_not_exists(#pk) OR #r = :t OR #c > :c"
        };
        self.requests
            .put_if(
                item,
                condition,
                &[("#pk", items::PK), ("#r", items::RUNNING), ("#c", items::CHANGED_AT)],
                vec![
                    (":c", items::n(record.changed_at.0)),
                    (":t", aws_sdk_dynamodb::types::AttributeValue::Bool(true)),
                ],
            )
            .await
            .map(drop)
    }

    async fn eni_by_id(&self, eni_id: &str) -> StoreResult<Option<EniRecord>> {
        self.requests
            .get_item(items::key(items::eni_pk(eni_id), items::ENI_SK))
            .await?
            .as_ref()
            .map(items::parse_eni)
            .transpose()
    }

    async fn eni_by_alias(&self, alias_pk: String) -> StoreResult<Option<EniRecord>> {
        let Some(alias) = self.requests.get_item(items::key(alias_pk, items::ALIAS_SK)).await? else {
            return Ok(None);
        };
        self.eni_by_id(&items::alias_target(&alias)?).await
    }

    async fn delete_alias(&self, alias_pk: String, eni_id: String) -> StoreResult<()> {
        self.requests
            .delete_if(
                items::key(alias_pk, items::ALIAS_SK),
                "#e = :e",
                &[("#e", items::ALIAS_ENI_ID)],
                vec![(":e", items::s(eni_id))],
            )
            .await
    }
}
