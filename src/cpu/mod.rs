//! CPU backend: rayon-parallel kernels for the specs in `crate::ops`.

pub mod correlate;
pub mod fft;
pub mod pool;
pub(crate) mod simd;
