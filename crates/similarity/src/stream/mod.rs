//! Comparisons one batch of examples at a time: the CCA family's feature-space sums
//! ([`covariance_stream`]) and sharded comparisons with exact merges ([`shard`]).

pub mod covariance_stream;
pub mod shard;
