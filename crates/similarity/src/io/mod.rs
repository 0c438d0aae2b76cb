//! Activations in and out: `.npy`, `.npz` and directories of `.npy` files whole ([`files`]) or
//! by row ranges in place ([`row_source`]), and how convolutional layers become matrices
//! ([`conv`]).

pub mod conv;
pub mod files;
pub mod row_source;
