//! One vector interface over the two x86-64 widths, so a hand-vectorised kernel is
//! written once (generic over `S: Simd<T>`, `#[inline(always)]`) and compiled twice:
//! inside a `#[target_feature(enable = "avx2,fma")]` wrapper with `Avx2` and inside an
//! AVX-512 wrapper with `Avx512`. The wrappers are the only place a path is entered,
//! after `crate::cpu::simd` said the CPU has it.

#![cfg(target_arch = "x86_64")]

use crate::element::Element;

/// A vector register of `LANES` values of `T` and the operations the kernels use.
pub(crate) trait Simd<T: Element>: Copy {
    type V: Copy;
    const LANES: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn splat(x: T) -> Self::V;
    unsafe fn load(p: *const T) -> Self::V;
    unsafe fn store(p: *mut T, v: Self::V);
    /// a * b + c, fused.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    /// `LANES` float32 values from `p`, converted to `T` (exactly).
    unsafe fn load_f32(p: *const f32) -> Self::V;
    /// The `LANES` values of `v` rounded to float32 (to nearest) and stored at `p`.
    unsafe fn store_f32(p: *mut f32, v: Self::V);
}

/// 256-bit AVX2 + FMA.
#[derive(Clone, Copy)]
pub(crate) struct Avx2;
/// 512-bit AVX-512F.
#[derive(Clone, Copy)]
pub(crate) struct Avx512;

impl<T: Element> Simd<T> for Avx2 {
    type V = T::V;
    const LANES: usize = T::LANES;
    #[inline(always)]
    unsafe fn zero() -> T::V {
        T::vzero()
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> T::V {
        T::vsplat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> T::V {
        T::vload(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut T, v: T::V) {
        T::vstore(p, v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: T::V, b: T::V, c: T::V) -> T::V {
        T::vfmadd(a, b, c)
    }
    #[inline(always)]
    unsafe fn load_f32(p: *const f32) -> T::V {
        T::vload_f32(p)
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: T::V) {
        T::vstore_f32(p, v)
    }
}

impl<T: Element> Simd<T> for Avx512 {
    type V = T::W;
    const LANES: usize = T::WLANES;
    #[inline(always)]
    unsafe fn zero() -> T::W {
        T::wzero()
    }
    #[inline(always)]
    unsafe fn splat(x: T) -> T::W {
        T::wsplat(x)
    }
    #[inline(always)]
    unsafe fn load(p: *const T) -> T::W {
        T::wload(p)
    }
    #[inline(always)]
    unsafe fn store(p: *mut T, v: T::W) {
        T::wstore(p, v)
    }
    #[inline(always)]
    unsafe fn fmadd(a: T::W, b: T::W, c: T::W) -> T::W {
        T::wfmadd(a, b, c)
    }
    #[inline(always)]
    unsafe fn load_f32(p: *const f32) -> T::W {
        T::wload_f32(p)
    }
    #[inline(always)]
    unsafe fn store_f32(p: *mut f32, v: T::W) {
        T::wstore_f32(p, v)
    }
}
