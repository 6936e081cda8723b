//! Schema Registry migration (`flows[].schemas`).
//!
//! # Layout
//! - `client`: the Confluent REST API of one registry (blocking; callers
//!   run it off the async workers).
//! - `sync`: what to copy (a [`Plan`]) and copying it, in either mode.
//! - `wire`: the Confluent wire format's schema ID (magic byte 0, then a
//!   4-byte big-endian ID).
//! - `gate`: the IDs the target knows, which the data plane checks before
//!   writing a record, so no record reaches the target before its schema.

#![warn(missing_docs)]

mod client;
mod gate;
mod sync;
pub mod wire;

pub use client::{Reference, RegistryClient, RegistryError, SchemaBody, SubjectVersion};
pub use gate::{GateView, SchemaIds, Verdict};
pub use sync::{apply, plan, Conflict, Plan, PlanItem, SyncError, SyncOutcome};
