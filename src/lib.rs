//! convcore: correlation, filtering and pooling kernels (and, on top of them,
//! convolutional networks) in plain Rust. The PyO3 bindings live behind the `python`
//! feature so `cargo test` and `cargo bench` need no Python.
//!
//! Layers: `ops` holds one spec per operation (shape rules, validation); `cpu` holds the
//! rayon kernels that execute a validated spec.

pub mod cpu;
pub mod element;
pub mod error;
pub mod gpu;
pub mod ops;
pub mod threads;

pub use element::Element;
pub use error::{Error, Result};

#[cfg(feature = "python")]
mod python;
