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
    /// `self * a + b` rounded once: the FMA instruction where the CPU has it (checked at
    /// run time), else the (slower) library fused multiply-add.
    fn fused_mul_add(self, a: Self, b: Self) -> Self;

    /// A 256-bit AVX vector of this type, and the handful of operations the
    /// hand-vectorised kernels use. Only call these from functions compiled with
    /// `#[target_feature(enable = "avx2,fma")]` after checking the CPU has them.
    #[cfg(target_arch = "x86_64")]
    type V: Copy;
    #[cfg(target_arch = "x86_64")]
    const LANES: usize;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vzero() -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vsplat(x: Self) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vload(p: *const Self) -> Self::V;
    #[cfg(target_arch = "x86_64")]
    unsafe fn vstore(p: *mut Self, v: Self::V);
    /// a * b + c, fused.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vfmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `LANES` float32 values from `p` as a vector of this type (converted, exactly).
    #[cfg(target_arch = "x86_64")]
    unsafe fn vload_f32(p: *const f32) -> Self::V;
    /// The `LANES` values of `v` rounded to float32 (to nearest) and stored at `p`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vstore_f32(p: *mut f32, v: Self::V);

    /// The 512-bit AVX-512 vector of this type and the same operations. Only call these
    /// from functions compiled with AVX-512 enabled after checking the CPU has it
    /// (`crate::cpu::simd::has_avx512`).
    #[cfg(target_arch = "x86_64")]
    type W: Copy;
    #[cfg(target_arch = "x86_64")]
    const WLANES: usize;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wzero() -> Self::W;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wsplat(x: Self) -> Self::W;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wload(p: *const Self) -> Self::W;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wstore(p: *mut Self, v: Self::W);
    #[cfg(target_arch = "x86_64")]
    unsafe fn wfmadd(a: Self::W, b: Self::W, c: Self::W) -> Self::W;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wload_f32(p: *const f32) -> Self::W;
    #[cfg(target_arch = "x86_64")]
    unsafe fn wstore_f32(p: *mut f32, v: Self::W);
}

impl Element for f32 {
    const NAME: &'static str = "float32";
    #[cfg(target_arch = "x86_64")]
    type V = std::arch::x86_64::__m256;
    #[cfg(target_arch = "x86_64")]
    const LANES: usize = 8;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vzero() -> Self::V {
        std::arch::x86_64::_mm256_setzero_ps()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vsplat(x: Self) -> Self::V {
        std::arch::x86_64::_mm256_set1_ps(x)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload(p: *const Self) -> Self::V {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore(p: *mut Self, v: Self::V) {
        std::arch::x86_64::_mm256_storeu_ps(p, v)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vfmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::arch::x86_64::_mm256_fmadd_ps(a, b, c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload_f32(p: *const f32) -> Self::V {
        std::arch::x86_64::_mm256_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore_f32(p: *mut f32, v: Self::V) {
        std::arch::x86_64::_mm256_storeu_ps(p, v)
    }
    #[cfg(target_arch = "x86_64")]
    type W = std::arch::x86_64::__m512;
    #[cfg(target_arch = "x86_64")]
    const WLANES: usize = 16;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wzero() -> Self::W {
        std::arch::x86_64::_mm512_setzero_ps()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wsplat(x: Self) -> Self::W {
        std::arch::x86_64::_mm512_set1_ps(x)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wload(p: *const Self) -> Self::W {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wstore(p: *mut Self, v: Self::W) {
        std::arch::x86_64::_mm512_storeu_ps(p, v)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wfmadd(a: Self::W, b: Self::W, c: Self::W) -> Self::W {
        std::arch::x86_64::_mm512_fmadd_ps(a, b, c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wload_f32(p: *const f32) -> Self::W {
        std::arch::x86_64::_mm512_loadu_ps(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wstore_f32(p: *mut f32, v: Self::W) {
        std::arch::x86_64::_mm512_storeu_ps(p, v)
    }
    #[inline(always)]
    fn from_f64_lossy(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn fused_mul_add(self, a: Self, b: Self) -> Self {
        #[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
        {
            self.mul_add(a, b)
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "fma")))]
        {
            if crate::cpu::simd::has_avx2_fma() {
                // SAFETY: the CPU has FMA (checked at run time, cached).
                unsafe { fma_f32(self, a, b) }
            } else {
                self.mul_add(a, b)
            }
        }
    }
}

impl Element for f64 {
    const NAME: &'static str = "float64";
    #[cfg(target_arch = "x86_64")]
    type V = std::arch::x86_64::__m256d;
    #[cfg(target_arch = "x86_64")]
    const LANES: usize = 4;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vzero() -> Self::V {
        std::arch::x86_64::_mm256_setzero_pd()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vsplat(x: Self) -> Self::V {
        std::arch::x86_64::_mm256_set1_pd(x)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload(p: *const Self) -> Self::V {
        std::arch::x86_64::_mm256_loadu_pd(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore(p: *mut Self, v: Self::V) {
        std::arch::x86_64::_mm256_storeu_pd(p, v)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vfmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::arch::x86_64::_mm256_fmadd_pd(a, b, c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload_f32(p: *const f32) -> Self::V {
        std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm_loadu_ps(p))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore_f32(p: *mut f32, v: Self::V) {
        std::arch::x86_64::_mm_storeu_ps(p, std::arch::x86_64::_mm256_cvtpd_ps(v))
    }
    #[cfg(target_arch = "x86_64")]
    type W = std::arch::x86_64::__m512d;
    #[cfg(target_arch = "x86_64")]
    const WLANES: usize = 8;
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wzero() -> Self::W {
        std::arch::x86_64::_mm512_setzero_pd()
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wsplat(x: Self) -> Self::W {
        std::arch::x86_64::_mm512_set1_pd(x)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wload(p: *const Self) -> Self::W {
        std::arch::x86_64::_mm512_loadu_pd(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wstore(p: *mut Self, v: Self::W) {
        std::arch::x86_64::_mm512_storeu_pd(p, v)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wfmadd(a: Self::W, b: Self::W, c: Self::W) -> Self::W {
        std::arch::x86_64::_mm512_fmadd_pd(a, b, c)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wload_f32(p: *const f32) -> Self::W {
        std::arch::x86_64::_mm512_cvtps_pd(std::arch::x86_64::_mm256_loadu_ps(p))
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn wstore_f32(p: *mut f32, v: Self::W) {
        std::arch::x86_64::_mm256_storeu_ps(p, std::arch::x86_64::_mm512_cvtpd_ps(v))
    }
    #[inline(always)]
    fn from_f64_lossy(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn fused_mul_add(self, a: Self, b: Self) -> Self {
        #[cfg(all(target_arch = "x86_64", target_feature = "fma"))]
        {
            self.mul_add(a, b)
        }
        #[cfg(not(all(target_arch = "x86_64", target_feature = "fma")))]
        {
            if crate::cpu::simd::has_avx2_fma() {
                // SAFETY: the CPU has FMA (checked at run time, cached).
                unsafe { fma_f64(self, a, b) }
            } else {
                self.mul_add(a, b)
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "fma")]
unsafe fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    use std::arch::x86_64::*;
    _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)))
}

#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "fma")]
unsafe fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    use std::arch::x86_64::*;
    _mm_cvtsd_f64(_mm_fmadd_sd(_mm_set_sd(a), _mm_set_sd(b), _mm_set_sd(c)))
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fma_f32(a: f32, b: f32, c: f32) -> f32 {
    a.mul_add(b, c)
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn fma_f64(a: f64, b: f64, c: f64) -> f64 {
    a.mul_add(b, c)
}
