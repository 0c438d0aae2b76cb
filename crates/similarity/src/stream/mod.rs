//! Comparisons one batch of examples at a time: the comparison driver every path feeds
//! ([`comparison`]), the CCA family's feature-space sums ([`covariance_stream`]) and sharded
//! comparisons with exact merges ([`shard`]).

pub mod comparison;
pub mod covariance_stream;
pub mod shard;
