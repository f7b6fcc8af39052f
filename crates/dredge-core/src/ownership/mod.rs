//! Time-ranged IP ownership: who held an address at a given time.
//!
//! The model only: EC2's wire formats (EventBridge and CloudTrail events,
//! describe JSON, SDK types) are read in `dredge-ownership`, each reader
//! filling an [`EniBuilder`].

mod apply;
mod cache;
mod change;
mod eni;
mod eni_builder;
mod evidence;
pub mod frigga;
mod memory;
mod owner;
mod scope;
mod store;
#[cfg(test)]
pub(crate) mod testing;
mod time;
mod timeline;

pub use apply::{Applier, ApplyStats, Outcome, ReconcileStats, SnapshotScope};
pub use cache::{make_room, CacheConfig, CacheStats, OwnerCache, Owners};
pub use change::Change;
pub use eni::{merge_tags, push_unique, Eni};
pub use eni_builder::{parse_address, region_of_az, tag_map, Association, BadAddress, EniBuilder};
pub use evidence::{horizon, known_at, known_free_at, scope_label, Attached, Sighting, MAX_SIGHTINGS};
pub use memory::{MemoryStore, STATE_FILE};
pub use owner::{Owner, OwnerKind, TagPolicy, ASG_TAG};
pub use scope::{is_private, BadScope, Scope};
pub use store::{
    AddTimes, Attachment, EniRecord, EniRef, EniWrite, Head, InstanceNote, InstanceNotes, InstanceRecord,
    OwnershipStore, Removal, StoreError, StoreResult, MAX_ADDED, MAX_ADD_TIMES, MAX_REMEMBERED,
};
pub use time::{BadTime, UnixTime};
pub use timeline::{AddressKey, Interval, Located, Mark, Resolution, Timeline};
