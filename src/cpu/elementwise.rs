//! Elementwise maps at memory bandwidth: the output is written once (never zero-filled
//! first), the work is split into chunks of `CHUNK` values over the pool, and each
//! chunk's loop is compiled for every instruction-set path (the same loop, vectorised by
//! the compiler at 128, 256 or 512 bits) and taken by `crate::cpu::simd::level()`.
//! The results do not depend on the path or the thread count: each value is computed
//! alone, by the same scalar expression.

use crate::element::Element;
use crate::error::{assume_init_vec, try_uninit, Error, Result};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Values per task: large enough that a task's overhead (about a microsecond) is small
/// against its memory traffic, small enough to spread a layer's output over the pool.
pub(crate) const CHUNK: usize = 1 << 15;

#[inline(always)]
fn body1<T: Copy, U: Copy, F: Fn(T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], op: &F) {
    for (o, &u) in o.iter_mut().zip(a) {
        o.write(op(u));
    }
}

#[inline(always)]
fn body2<T: Copy, U: Copy, F: Fn(T, T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], b: &[T], op: &F) {
    for ((o, &u), &v) in o.iter_mut().zip(a).zip(b) {
        o.write(op(u, v));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body1_avx2<T: Copy, U: Copy, F: Fn(T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], op: &F) {
    body1(o, a, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn body1_avx512<T: Copy, U: Copy, F: Fn(T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], op: &F) {
    body1(o, a, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body2_avx2<T: Copy, U: Copy, F: Fn(T, T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], b: &[T], op: &F) {
    body2(o, a, b, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn body2_avx512<T: Copy, U: Copy, F: Fn(T, T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], b: &[T], op: &F) {
    body2(o, a, b, op)
}

#[inline(always)]
fn body_indexed<U: Copy, F: Fn(u64) -> U>(o: &mut [MaybeUninit<U>], base: u64, op: &F) {
    for (j, o) in o.iter_mut().enumerate() {
        o.write(op(base + j as u64));
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_indexed_avx2<U: Copy, F: Fn(u64) -> U>(o: &mut [MaybeUninit<U>], base: u64, op: &F) {
    body_indexed(o, base, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn body_indexed_avx512<U: Copy, F: Fn(u64) -> U>(o: &mut [MaybeUninit<U>], base: u64, op: &F) {
    body_indexed(o, base, op)
}

/// `o[j] = op(base + j)` for one chunk (a counter-based generator), on the path taken.
#[inline]
pub(crate) fn apply_indexed<U: Copy, F: Fn(u64) -> U>(o: &mut [MaybeUninit<U>], base: u64, op: &F) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{level, Level};
        match level() {
            // SAFETY: as in apply1.
            Level::Avx512 => return unsafe { body_indexed_avx512(o, base, op) },
            Level::Avx2 => return unsafe { body_indexed_avx2(o, base, op) },
            Level::Portable => {}
        }
    }
    body_indexed(o, base, op)
}

#[inline(always)]
fn body_inplace<T: Copy, F: Fn(T) -> T>(x: &mut [T], op: &F) {
    for v in x.iter_mut() {
        *v = op(*v);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn body_inplace_avx2<T: Copy, F: Fn(T) -> T>(x: &mut [T], op: &F) {
    body_inplace(x, op)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn body_inplace_avx512<T: Copy, F: Fn(T) -> T>(x: &mut [T], op: &F) {
    body_inplace(x, op)
}

/// `x[i] = op(x[i])` for one chunk (in cache, e.g. a convolution's piece), on the path
/// taken; single-threaded.
#[inline]
pub(crate) fn apply_inplace<T: Copy, F: Fn(T) -> T>(x: &mut [T], op: &F) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{level, Level};
        match level() {
            // SAFETY: as in apply1.
            Level::Avx512 => return unsafe { body_inplace_avx512(x, op) },
            Level::Avx2 => return unsafe { body_inplace_avx2(x, op) },
            Level::Portable => {}
        }
    }
    body_inplace(x, op)
}

/// `o[i] = op(a[i])` for one chunk, on the path taken.
#[inline]
pub(crate) fn apply1<T: Copy, U: Copy, F: Fn(T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], op: &F) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{level, Level};
        match level() {
            // SAFETY: the CPU has the path's instruction set (level() never exceeds it).
            Level::Avx512 => return unsafe { body1_avx512(o, a, op) },
            Level::Avx2 => return unsafe { body1_avx2(o, a, op) },
            Level::Portable => {}
        }
    }
    body1(o, a, op)
}

/// `o[i] = op(a[i], b[i])` for one chunk, on the path taken.
#[inline]
pub(crate) fn apply2<T: Copy, U: Copy, F: Fn(T, T) -> U>(o: &mut [MaybeUninit<U>], a: &[T], b: &[T], op: &F) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{level, Level};
        match level() {
            // SAFETY: as in apply1.
            Level::Avx512 => return unsafe { body2_avx512(o, a, b, op) },
            Level::Avx2 => return unsafe { body2_avx2(o, a, b, op) },
            Level::Portable => {}
        }
    }
    body2(o, a, b, op)
}

/// `y[i] = op(x[i])`, on every thread of the pool.
pub fn map1<T: Element, F: Fn(T) -> T + Sync + Send>(x: &[T], what: &str, op: F) -> Result<Vec<T>> {
    let mut y = try_uninit::<T>(x.len(), what)?;
    y.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, a)| apply1(o, a, &op));
    // SAFETY: the chunks cover y and each was written whole.
    Ok(unsafe { assume_init_vec(y) })
}

/// `y[i] = op(a[i], b[i])` (equal lengths, checked by the caller), on every thread.
pub fn map2<T: Element, F: Fn(T, T) -> T + Sync + Send>(a: &[T], b: &[T], what: &str, op: F) -> Result<Vec<T>> {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    let mut y = try_uninit::<T>(n, what)?;
    y.par_chunks_mut(CHUNK)
        .zip(a[..n].par_chunks(CHUNK).zip(b[..n].par_chunks(CHUNK)))
        .for_each(|(o, (u, v))| apply2(o, u, v, &op));
    // SAFETY: as in map1.
    Ok(unsafe { assume_init_vec(y) })
}

/// `y[i] = op(x[i], v[i % v.len()])` for a vector `v` along the last axis (a bias or a
/// per-channel factor; `x.len()` a multiple of `v.len()`, checked by the caller), on
/// every thread.
pub fn map_rows<T: Element, F: Fn(T, T) -> T + Sync + Send>(x: &[T], v: &[T], what: &str, op: F) -> Result<Vec<T>> {
    let c = v.len().max(1);
    let per = (CHUNK / c).max(1) * c;
    let mut y = try_uninit::<T>(x.len(), what)?;
    y.par_chunks_mut(per).zip(x.par_chunks(per)).for_each(|(o, a)| {
        for (orow, arow) in o.chunks_mut(c).zip(a.chunks(c)) {
            apply2(orow, arow, &v[..arow.len()], &op);
        }
    });
    // SAFETY: as in map1.
    Ok(unsafe { assume_init_vec(y) })
}

/// The binary operations the CPU backend runs natively on two arrays of one shape (or
/// an array and a vector along its last axis): numpy's results bit for bit (IEEE
/// arithmetic; maximum / minimum propagate NaN as numpy's do).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Maximum,
    Minimum,
}

impl BinaryOp {
    pub fn parse(name: &str) -> Result<BinaryOp> {
        Ok(match name {
            "add" => BinaryOp::Add,
            "subtract" => BinaryOp::Subtract,
            "multiply" => BinaryOp::Multiply,
            "divide" => BinaryOp::Divide,
            "maximum" => BinaryOp::Maximum,
            "minimum" => BinaryOp::Minimum,
            _ => {
                return Err(Error::Value(format!(
                    "binary: expected one of 'add', 'subtract', 'multiply', 'divide', 'maximum', 'minimum', got {name:?}"
                )))
            }
        })
    }
}

/// numpy's maximum: `a > b || isnan(a) ? a : b` (NaN if either is NaN; of two equal
/// values, +0 and -0 included, the second, as numpy 2's loops give).
#[inline(always)]
fn max_nan<T: Element>(a: T, b: T) -> T {
    if a > b || a != a {
        a
    } else {
        b
    }
}

/// numpy's minimum: `a < b || isnan(a) ? a : b`.
#[inline(always)]
fn min_nan<T: Element>(a: T, b: T) -> T {
    if a < b || a != a {
        a
    } else {
        b
    }
}

/// `a op b` for `b` of a's length, or of length a's last axis (`b` repeated per row).
pub fn binary<T: Element>(op: BinaryOp, a: &[T], b: &[T]) -> Result<Vec<T>> {
    if b.len() == a.len() {
        return match op {
            BinaryOp::Add => map2(a, b, "the sum", |u, v| u + v),
            BinaryOp::Subtract => map2(a, b, "the difference", |u, v| u - v),
            BinaryOp::Multiply => map2(a, b, "the product", |u, v| u * v),
            BinaryOp::Divide => map2(a, b, "the quotient", |u, v| u / v),
            BinaryOp::Maximum => map2(a, b, "the maximum", max_nan),
            BinaryOp::Minimum => map2(a, b, "the minimum", min_nan),
        };
    }
    if b.is_empty() || a.len() % b.len() != 0 {
        return Err(Error::Value(format!(
            "binary: the second operand must have the first's {} values or divide them along the last axis, got {}",
            a.len(),
            b.len()
        )));
    }
    match op {
        BinaryOp::Add => map_rows(a, b, "the sum", |u, v| u + v),
        BinaryOp::Subtract => map_rows(a, b, "the difference", |u, v| u - v),
        BinaryOp::Multiply => map_rows(a, b, "the product", |u, v| u * v),
        BinaryOp::Divide => map_rows(a, b, "the quotient", |u, v| u / v),
        BinaryOp::Maximum => map_rows(a, b, "the maximum", max_nan),
        BinaryOp::Minimum => map_rows(a, b, "the minimum", min_nan),
    }
}
