//! The element types the kernels compute in. Integer and bool inputs are converted to
//! float64 by the Python layer before they reach Rust.

use num_traits::{Float, FromPrimitive, NumAssign, ToPrimitive};
use rustfft::FftNum;

pub trait Element:
    Float + NumAssign + FromPrimitive + ToPrimitive + FftNum + Default + Send + Sync + std::fmt::Debug + 'static
{
    /// Human name used in messages ("float32").
    const NAME: &'static str;
    fn from_f64_lossy(v: f64) -> Self;
}

impl Element for f32 {
    const NAME: &'static str = "float32";
    #[inline(always)]
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }
}

impl Element for f64 {
    const NAME: &'static str = "float64";
    #[inline(always)]
    fn from_f64_lossy(v: f64) -> Self {
        v
    }
}
