//! The ownership store conformance suite against the embedded reference
//! store, `MemoryStore`.

#[macro_use]
#[path = "../conformance/mod.rs"]
mod conformance;

use std::future::{ready, Ready};

use dredge_core::ownership::MemoryStore;

/// A fresh in-memory store per call; never skipped.
async fn memory(_case: &str) -> Option<impl Fn() -> Ready<MemoryStore>> {
    Some(|| ready(MemoryStore::new()))
}

conformance_suite!(memory);
