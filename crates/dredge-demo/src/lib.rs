//! `dredge demo`: a simulated AWS fleet whose addresses churn between
//! applications, run through the real ownership, enricher and writer
//! handlers on simulated time, every flow side scored against the
//! simulator's ground truth.

pub mod delays;
pub mod report;
pub mod rng;
pub mod run;
pub mod score;
pub mod summary;
pub mod traffic;
pub mod wire;
pub mod world;
