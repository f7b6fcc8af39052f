//! Time-ranged IP ownership: who held an address at a given time.

mod change;
mod eni;
pub mod frigga;
mod owner;
mod scope;
mod time;

pub use change::Change;
pub use eni::Eni;
pub use owner::{Owner, OwnerKind, TagPolicy, ASG_TAG};
pub use scope::{is_private, BadScope, Scope};
pub use time::{BadTime, UnixTime};
