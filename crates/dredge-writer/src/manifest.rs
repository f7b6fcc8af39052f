//! An hour's manifest: the final objects of the hour, their row counts and
//! the schema version, so that a scheduler can start Druid ingestion for
//! exactly that hour. It is the commit point of compaction: a final object
//! not in the manifest is a leftover of a run that died, and is removed.

use serde::{Deserialize, Serialize};

/// `{prefix}/dt=YYYY-MM-DD/hour=HH/_manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    /// `dt=YYYY-MM-DD/hour=HH`.
    pub partition: String,
    /// Every final object of the hour, in the order they were written.
    pub objects: Vec<FinalObject>,
    /// The rows of every object.
    pub rows: u64,
    /// When a compaction last changed it (epoch seconds).
    pub updated_at: i64,
}

/// One final object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalObject {
    /// The object's key in the bucket.
    pub key: String,
    pub rows: u64,
    pub bytes: u64,
}

impl Manifest {
    pub fn contains(&self, key: &str) -> bool {
        self.objects.iter().any(|o| o.key == key)
    }

    pub fn add(&mut self, object: FinalObject) {
        self.rows += object.rows;
        self.objects.push(object);
    }
}
