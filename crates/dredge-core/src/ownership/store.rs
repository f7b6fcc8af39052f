//! The ownership store: the one narrow interface between the ownership
//! logic and where the table lives (DynamoDB, or the embedded store).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::eni::Eni;
use super::owner::Owner;
use super::time::UnixTime;
use super::timeline::{AddressKey, Mark, Timeline};

/// What the store remembers of one ENI, to complete later partial events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EniRecord {
    pub eni: Eni,
    /// Time of the newest event that described the ENI.
    pub updated_at: UnixTime,
    /// When the ENI was deleted, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<UnixTime>,
    /// Public IP associations: association id to public address.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub associations: BTreeMap<String, IpAddr>,
}

impl EniRecord {
    pub fn new(eni: Eni, updated_at: UnixTime) -> Self {
        EniRecord { eni, updated_at, deleted_at: None, associations: BTreeMap::new() }
    }
}

/// What the store remembers of one instance's lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub instance_id: String,
    /// The newest state change seen, and when.
    pub running: bool,
    pub changed_at: UnixTime,
}

/// The latest part of an address's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Head {
    pub timeline: Timeline,
    /// Whether `timeline` is the whole history (nothing older exists).
    pub complete: bool,
}

/// How an ENI is found.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EniRef {
    Id(String),
    Attachment(String),
    Association(String),
}

/// A store failure: [`Failure`](crate::Failure), the one error type of
/// every backend.
pub type StoreError = crate::Failure;

pub type StoreResult<T> = Result<T, StoreError>;

/// The time-ranged IP ownership table. Writes are idempotent: replaying any
/// call leaves the table as it was after the first.
pub trait OwnershipStore: Send + Sync {
    /// Adds marks (facts) to address timelines.
    fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> impl Future<Output = StoreResult<()>> + Send;

    /// The owner of each (address, time), in order; `None` when nobody owned
    /// the address then, or nothing is known.
    fn lookup(
        &self,
        queries: &[(AddressKey, UnixTime)],
    ) -> impl Future<Output = StoreResult<Vec<Option<Owner>>>> + Send;

    /// The latest marks of each address, with whether they are its whole
    /// history: what a cache keeps. One round trip per 100 keys on DynamoDB.
    /// The default reads whole timelines.
    fn heads(&self, keys: &[AddressKey]) -> impl Future<Output = StoreResult<Vec<Head>>> + Send {
        async move {
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                out.push(Head { timeline: self.timeline(key).await?, complete: true });
            }
            Ok(out)
        }
    }

    /// The full timeline of one address.
    fn timeline(&self, key: &AddressKey) -> impl Future<Output = StoreResult<Timeline>> + Send;

    /// Every address with its timeline (for dump and reconcile).
    fn timelines(&self) -> impl Future<Output = StoreResult<Vec<(AddressKey, Timeline)>>> + Send;

    fn eni(&self, by: &EniRef) -> impl Future<Output = StoreResult<Option<EniRecord>>> + Send;

    /// Several ENI records by id, in order (`None` where unknown). One
    /// round trip per 100 ids on DynamoDB; the default asks one by one.
    fn enis_by_id(&self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<Option<EniRecord>>>> + Send {
        async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                out.push(self.eni(&EniRef::Id(id.clone())).await?);
            }
            Ok(out)
        }
    }

    /// The ENIs last seen attached to an instance.
    fn enis_of_instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send;

    /// Every ENI record (for reconcile).
    fn enis(&self) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send;

    fn put_eni(&self, record: &EniRecord) -> impl Future<Output = StoreResult<()>> + Send;

    fn instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Option<InstanceRecord>>> + Send;

    /// Stores the record unless a newer state change is already stored.
    fn put_instance(&self, record: &InstanceRecord) -> impl Future<Output = StoreResult<()>> + Send;

    /// How many requests (round trips) the store has made since it was
    /// made: a counter that only grows; callers diff it around the calls
    /// they measure. What one request is belongs to the store (DynamoDB:
    /// every request sent; the embedded store: every call). The default,
    /// for a store that does not count, stays 0.
    fn calls(&self) -> u64 {
        0
    }
}

/// A borrowed store is a store: lets a handler work on a store its caller
/// keeps (the CLI saves the embedded store afterwards).
impl<S: OwnershipStore> OwnershipStore for &S {
    fn put_marks(&self, marks: &[(AddressKey, Mark)]) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_marks(marks)
    }
    fn lookup(
        &self,
        queries: &[(AddressKey, UnixTime)],
    ) -> impl Future<Output = StoreResult<Vec<Option<Owner>>>> + Send {
        (**self).lookup(queries)
    }
    fn heads(&self, keys: &[AddressKey]) -> impl Future<Output = StoreResult<Vec<Head>>> + Send {
        (**self).heads(keys)
    }
    fn timeline(&self, key: &AddressKey) -> impl Future<Output = StoreResult<Timeline>> + Send {
        (**self).timeline(key)
    }
    fn timelines(&self) -> impl Future<Output = StoreResult<Vec<(AddressKey, Timeline)>>> + Send {
        (**self).timelines()
    }
    fn eni(&self, by: &EniRef) -> impl Future<Output = StoreResult<Option<EniRecord>>> + Send {
        (**self).eni(by)
    }
    fn enis_by_id(&self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<Option<EniRecord>>>> + Send {
        (**self).enis_by_id(ids)
    }
    fn enis_of_instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send {
        (**self).enis_of_instance(instance_id)
    }
    fn enis(&self) -> impl Future<Output = StoreResult<Vec<EniRecord>>> + Send {
        (**self).enis()
    }
    fn put_eni(&self, record: &EniRecord) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_eni(record)
    }
    fn instance(&self, instance_id: &str) -> impl Future<Output = StoreResult<Option<InstanceRecord>>> + Send {
        (**self).instance(instance_id)
    }
    fn put_instance(&self, record: &InstanceRecord) -> impl Future<Output = StoreResult<()>> + Send {
        (**self).put_instance(record)
    }
    fn calls(&self) -> u64 {
        (**self).calls()
    }
}
