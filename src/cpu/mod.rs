//! CPU backend: rayon-parallel kernels for the specs in `crate::ops`.

pub mod augment;
pub mod conv;
pub mod depthwise;
pub mod elementwise;
pub mod correlate;
pub mod fft;
pub mod gemm;
pub mod nn;
pub mod norm;
#[cfg(target_arch = "x86_64")]
mod norm_f32;
pub mod optim;
pub mod pool;
pub mod rank;
pub mod resize;
pub mod simd;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vector;
