//! Direct correlation for any number of axes and any boundary rule: the one kernel
//! behind scipy.signal's correlate/convolve (zero fill), correlate2d's boundaries and
//! every scipy.ndimage filter.
//!
//! An output "row" is a line along the last axis. For each row, the kernel rows (lines
//! of the kernel along its last axis) are paired with the input rows they touch; each
//! input row is read straight from the input when no boundary is crossed, or else copied
//! once into a small padded scratch line. Outputs are then accumulated in register
//! blocks of `BLOCK` values over all kernel taps, so each output is stored once per group
//! of kernel rows. Rows, or chunks of a long row, are spread over the rayon pool.
//! Scratch is bounded (`GROUP` lines of `CHUNK + TAPS` values per worker), whatever the
//! image or kernel size: no padded copy of the input is ever made.
//!
//! A 1-D window along a leading axis (the vertical passes of the separable filters)
//! takes its own path, `leading_axis_pass`: blocks of `LINES` output lines at once, so
//! each input vector loaded feeds every output line whose window it is in (the general
//! path reloads each input row once per kernel row). `separable2` runs scipy.ndimage's
//! two passes over a 2-D array (axis 0, then axis 1) a strip of rows at a time, the
//! first pass's strip staying in cache for the second. Both give the general path's
//! bits.

use crate::cpu::simd::has_avx2_fma;
use crate::element::Element;
use crate::error::{assume_init_vec, checked_numel, try_uninit, try_zeroed, Result};
use std::mem::MaybeUninit;
use crate::ops::correlate::CorrPlan;
use rayon::prelude::*;

/// Outputs accumulated in registers at once.
const BLOCK: usize = 32;
/// Outputs of one row handled per work item.
const CHUNK: usize = 2048;
/// Kernel taps along the last axis handled per pass (bounds scratch for long kernels).
const TAPS: usize = 1024;
/// Kernel rows accumulated per pass over a block.
const GROUP: usize = 16;
/// Rows at least this long read their interior in place and pad only the edges.
const SPLIT_MIN: usize = 512;
/// Shortest edge piece of a split row: a whole AVX-512 vector of float32.
const EDGE_MIN: isize = 16;
/// Kernel rows narrower than this run the AVX2 body even where AVX-512 is available.
/// Measured on an AMD EPYC of CPU family 26 (Zen 5), 2048x2048 float32, 2 threads, the
/// two bodies alternated in one process (narrow kernels are bound by loads, and every
/// unaligned 64-byte load splits a cache line where a 32-byte one splits every other):
/// 3x3 2.13 (AVX2) vs 2.27 ms (AVX-512), 5x5 3.35 vs 4.18, 7x7 5.68 vs 6.58, 9x9 8.76
/// vs 9.71, 11x11 16.3 vs 14.2, 15x15 29.1 vs 25.7. float32 data summed in float64
/// runs the AVX2 body at every width: measured on an AMD EPYC of family 25 (Zen 4),
/// 2048x2048, the 1-D Gaussian along the rows alternated between the two bodies in one
/// process (1 thread; 2 threads in brackets): sigma 1 2.75 (1.49) vs 3.45 (1.81) ms,
/// sigma 2 4.37 (2.41) vs 5.88 (3.19), sigma 5 10.65 (5.38) vs 13.95 (7.09). (Its 512-bit
/// body converts 8 values per instruction where the 256-bit one converts 4 from half
/// the bytes; the same-type bodies of those widths, 15 taps: AVX-512 ahead, 2.61 vs 2.95
/// ms for float32 and 5.12 vs 5.96 for float64.)
const AVX512_MIN_TAPS: usize = 10;

/// An input element type read into accumulators of type `A`: `A` itself, or float32
/// data summed in float64 (scipy.ndimage's rule: it converts every line to double).
pub(crate) trait Widen<A: Element>: Element {
    /// Whether `Self` is `A` (then the output is written in place, no conversion).
    const SAME: bool;
    fn widen(self) -> A;
    /// The accumulator rounded to the input's type (C's cast: to nearest).
    fn narrow(a: A) -> Self;
    /// `S::LANES` values from `p`, as a vector of `A`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn vload<S: crate::cpu::vector::Simd<A>>(p: *const Self) -> S::V;
    /// A vector of `A` rounded to `Self` and stored at `p` (`S::LANES` values).
    #[cfg(target_arch = "x86_64")]
    unsafe fn vstore<S: crate::cpu::vector::Simd<A>>(p: *mut Self, v: S::V);
    /// `dst[i] = narrow(src[i])` for every `i` (the lengths are equal).
    fn narrow_into(dst: &mut [MaybeUninit<Self>], src: &[A]) {
        for (d, &a) in dst.iter_mut().zip(src) {
            *d = MaybeUninit::new(Self::narrow(a));
        }
    }
}

impl<A: Element> Widen<A> for A {
    const SAME: bool = true;
    #[inline(always)]
    fn widen(self) -> A {
        self
    }
    #[inline(always)]
    fn narrow(a: A) -> A {
        a
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload<S: crate::cpu::vector::Simd<A>>(p: *const A) -> S::V {
        S::load(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore<S: crate::cpu::vector::Simd<A>>(p: *mut A, v: S::V) {
        S::store(p, v)
    }
}

impl Widen<f64> for f32 {
    const SAME: bool = false;
    #[inline(always)]
    fn widen(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn narrow(a: f64) -> f32 {
        a as f32
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vload<S: crate::cpu::vector::Simd<f64>>(p: *const f32) -> S::V {
        S::load_f32(p)
    }
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn vstore<S: crate::cpu::vector::Simd<f64>>(p: *mut f32, v: S::V) {
        S::store_f32(p, v)
    }
}

/// Where one kernel row reads from, for one output row.
#[derive(Clone, Copy)]
enum Source {
    /// Flat index of an input row.
    Row(usize),
    /// Entirely outside the input under a constant boundary: every value is cval.
    Constant,
}

struct Scratch<X, A> {
    /// (kernel row, source) pairs active for the current output row.
    active: Vec<(usize, Source)>,
    /// GROUP padded lines.
    lines: Vec<X>,
    /// The accumulators of one chunk when they are wider than the output (else empty).
    acc: Vec<MaybeUninit<A>>,
}

impl<X: Widen<A>, A: Element> Scratch<X, A> {
    fn new() -> Self {
        let acc = if X::SAME { Vec::new() } else { vec![MaybeUninit::uninit(); CHUNK] };
        Scratch { active: Vec::new(), lines: vec![X::zero(); GROUP * (CHUNK + TAPS)], acc }
    }
}

struct Ctx<'a, X, A> {
    x: &'a [X],
    k: &'a [A],
    plan: &'a CorrPlan,
    iw: usize,
    kw: usize,
    k_rows: usize,
    cval: X,
    kernel_finite: bool,
    /// Row strides (in rows) of the leading axes of input, output and kernel.
    in_row_strides: Vec<usize>,
    out_row_strides: Vec<usize>,
    k_row_strides: Vec<usize>,
}

fn row_strides(shape: &[usize]) -> Vec<usize> {
    // Strides in units of rows for the leading axes (all but the last).
    let lead = &shape[..shape.len() - 1];
    let mut s = vec![1usize; lead.len()];
    for e in (0..lead.len().saturating_sub(1)).rev() {
        s[e] = s[e + 1] * lead[e + 1];
    }
    s
}

/// Direct evaluation of `plan`: `out[o] = sum_j x[o + j - offset] * k[j]`, with input
/// indices outside `x` resolved by `plan.boundary`. `x` and `k` are C-order buffers of
/// `plan.in_shape` and `plan.k_shape`. Runs on the current rayon pool.
pub fn correlate_direct<T: Element>(x: &[T], k: &[T], plan: &CorrPlan) -> Result<Vec<T>> {
    direct::<T, T>(x, k, plan)
}

/// `correlate_direct` of float32 data with float64 weights, summed in float64 and
/// rounded once to float32, as scipy.ndimage computes float32 (its lines are double):
/// results within half a float32 ulp of the exact sum, where float32 accumulation
/// drifts by a few ulps over long kernels. A constant boundary whose `cval` is not a
/// float32 pads with the double itself, through a float64 copy of the input.
pub fn correlate_direct_wide(x: &[f32], k: &[f64], plan: &CorrPlan) -> Result<Vec<f32>> {
    if plan.boundary == crate::ops::correlate::Boundary::Constant
        && (plan.cval as f32) as f64 != plan.cval
        && !plan.cval.is_nan()
    {
        let mut xw = try_uninit::<f64>(x.len(), "the float64 copy of the input")?;
        xw.par_iter_mut().zip(x.par_iter()).for_each(|(d, &v)| *d = MaybeUninit::new(v as f64));
        // SAFETY: every element was written just above.
        let xw = unsafe { assume_init_vec(xw) };
        let out = direct::<f64, f64>(&xw, k, plan)?;
        drop(xw);
        let mut o = try_uninit::<f32>(out.len(), "the correlation output")?;
        o.par_iter_mut().zip(out.par_iter()).for_each(|(d, &v)| *d = MaybeUninit::new(v as f32));
        // SAFETY: as above.
        return Ok(unsafe { assume_init_vec(o) });
    }
    direct::<f32, f64>(x, k, plan)
}

fn direct<X: Widen<A>, A: Element>(x: &[X], k: &[A], plan: &CorrPlan) -> Result<Vec<X>> {
    let d = plan.ndim();
    let out_n = checked_numel(&plan.out_shape)?;
    if out_n == 0 || x.is_empty() {
        return try_zeroed(out_n, "the correlation output");
    }
    // inf/NaN make 0 * inf observable: the rules that leave products out take a
    // per-tap path (rare inputs; the fast path multiplies every tap).
    if (plan.overlap_only && !k.iter().all(|v| v.is_finite()))
        || (plan.skip_zero
            && k.iter().any(|&v| v == A::zero())
            && (!plan.cval.is_finite() || !x.iter().all(|v| v.is_finite())))
    {
        return correlate_taps(x, k, plan);
    }
    // Every output is written by `chunk` before it is read, so the buffer starts
    // uninitialised: no memset, and a recycled heap block costs no page faults.
    let mut out: Vec<MaybeUninit<X>> = try_uninit(out_n, "the correlation output")?;
    let ow = plan.out_shape[d - 1];
    let ctx = Ctx::new(x, k, plan);
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() && !general_only() {
        if let Some(ax) = leading_axis(plan) {
            leading_axis_pass(x, k, plan, ax, &mut out);
            // SAFETY: `leading_axis_pass` writes every output (each block of lines over
            // every column), and MaybeUninit<X> has X's layout.
            return Ok(unsafe { assume_init_vec(out) });
        }
    }
    let out_rows = out_n / ow;
    let threads = rayon::current_num_threads();
    if out_rows >= 4 * threads || ow <= CHUNK {
        out.par_chunks_mut(ow).enumerate().for_each_init(Scratch::new, |s, (r, row)| {
            for (c, dst) in row.chunks_mut(CHUNK).enumerate() {
                ctx.chunk_out(r, c * CHUNK, dst, s);
            }
        });
    } else {
        for (r, row) in out.chunks_mut(ow).enumerate() {
            row.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each_init(Scratch::new, |s, (c, dst)| ctx.chunk_out(r, c * CHUNK, dst, s));
        }
    }
    // SAFETY: every element was written (each row is covered by its chunks, and each
    // chunk writes all of its elements), and MaybeUninit<X> has X's layout.
    Ok(unsafe { assume_init_vec(out) })
}

#[cfg(test)]
thread_local! {
    /// Tests: `direct` on this thread takes the general path for every plan (to hold the
    /// leading-axis path to it bit for bit).
    static GENERAL_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[cfg(test)]
fn general_only() -> bool {
    GENERAL_ONLY.with(|g| g.get())
}

#[cfg(not(test))]
#[inline(always)]
fn general_only() -> bool {
    false
}

/// The axis a kernel extends along when it is a 1-D window along a leading axis (every
/// other extent 1, the last axis included, and those axes neither shifted nor resized):
/// the vertical passes of the separable filters. None otherwise.
fn leading_axis(plan: &CorrPlan) -> Option<usize> {
    let d = plan.ndim();
    if d < 2 || plan.k_shape[d - 1] != 1 {
        return None;
    }
    let mut ax = None;
    for e in 0..d - 1 {
        if plan.k_shape[e] != 1 {
            if ax.is_some() {
                return None;
            }
            ax = Some(e);
        }
    }
    let ax = ax?;
    (0..d)
        .all(|e| e == ax || (plan.out_shape[e] == plan.in_shape[e] && plan.offset[e] == 0))
        .then_some(ax)
}

/// Output lines computed together by `leading_axis_pass`: each input vector loaded feeds
/// up to this many accumulators (one per output line it falls in the window of).
const LINES: usize = 4;
/// Columns (values along the contiguous axes) per work item of `leading_axis_pass`.
const COLUMNS: usize = 4096;

/// Where one input position along the filtered axis reads from, for `leading_axis_pass`.
#[derive(Clone, Copy)]
enum Line {
    /// The flat index of the line's first value.
    At(usize),
    /// Outside the input under a constant boundary: cval everywhere.
    Constant,
    /// Outside the input under a zero boundary with a finite kernel: adds nothing, left
    /// out (as `collect_sources` leaves such rows out).
    Skip,
}

/// A pointer the workers of `leading_axis_pass` write disjoint parts through.
#[derive(Clone, Copy)]
struct OutPtr<X>(*mut X);
// SAFETY: every work item writes its own lines and columns only.
unsafe impl<X> Send for OutPtr<X> {}
unsafe impl<X> Sync for OutPtr<X> {}

impl<X> OutPtr<X> {
    /// The pointer `i` values on (a method, so closures capture the whole Sync wrapper).
    unsafe fn add(&self, i: usize) -> *mut X {
        self.0.add(i)
    }
}

/// `direct` for a kernel along one leading axis `ax` (`leading_axis`): the input is
/// `outer x n x inner` (`n` along `ax`, `inner` the contiguous values after it), the
/// output `outer x m x inner`. Blocks of `LINES` output lines are computed together over
/// a strip of columns, so each input vector is loaded once per block instead of once per
/// tap (the general path reads every kernel row's input row for every output row). The
/// sums are those of the general path, bit for bit: the taps in kernel order, each a fused
/// multiply-add from +0, rows outside a zero boundary left out, rounded once.
#[cfg(target_arch = "x86_64")]
fn leading_axis_pass<X: Widen<A>, A: Element>(x: &[X], k: &[A], plan: &CorrPlan, ax: usize, out: &mut [MaybeUninit<X>]) {
    let n = plan.in_shape[ax];
    let m = plan.out_shape[ax];
    let inner: usize = plan.in_shape[ax + 1..].iter().product();
    let outer: usize = plan.in_shape[..ax].iter().product();
    let kl = k.len();
    let off = plan.offset[ax];
    let cval = X::from_f64_lossy(plan.cval);
    let skip_constant = cval == X::zero() && k.iter().all(|v| v.is_finite());
    let blocks = m.div_ceil(LINES);
    let strips = inner.div_ceil(COLUMNS);
    let items = outer * blocks * strips;
    let dst = OutPtr(out.as_mut_ptr() as *mut X);
    let avx512 = crate::cpu::simd::has_avx512();
    (0..items).into_par_iter().for_each_init(Vec::new, |lines: &mut Vec<Line>, item| {
        let strip = item % strips;
        let block = (item / strips) % blocks;
        let ob = item / (strips * blocks);
        let o0 = block * LINES;
        let r = LINES.min(m - o0);
        let c0 = strip * COLUMNS;
        let c1 = (c0 + COLUMNS).min(inner);
        window_lines(lines, plan.boundary, n, inner, off, kl, skip_constant, ob, o0, r);
        let mut outs = [std::ptr::null_mut(); LINES];
        for (t, o) in outs.iter_mut().enumerate().take(r) {
            // SAFETY: line o0 + t < m of slab ob lies inside the output.
            *o = unsafe { dst.add((ob * m + o0 + t) * inner) };
        }
        // SAFETY: the CPU has the path (checked by the caller); every line in `lines` is
        // a whole input line of `inner` values and every pointer in `outs` a whole output
        // line; columns c0..c1 lie inside both.
        unsafe { leading_lines(avx512, x, k, lines, cval, &outs[..r], c0, c1) };
    });
}

/// The input lines that output lines `o0 .. o0 + r` of slab `ob` read along the filtered
/// axis (`n` long, `inner` values per line, window `kl` shifted by `off`), in order, into
/// `lines`: o0 - off ..= o0 + r - 1 + kl - 1 - off, resolved by `boundary`.
#[allow(clippy::too_many_arguments)]
fn window_lines(
    lines: &mut Vec<Line>,
    boundary: crate::ops::correlate::Boundary,
    n: usize,
    inner: usize,
    off: isize,
    kl: usize,
    skip_constant: bool,
    ob: usize,
    o0: usize,
    r: usize,
) {
    lines.clear();
    for pi in 0..r + kl - 1 {
        let p = o0 as isize + pi as isize - off;
        lines.push(match boundary.map(p, n) {
            Some(i) => Line::At((ob * n + i) * inner),
            None if skip_constant => Line::Skip,
            None => Line::Constant,
        });
    }
}

/// `leading_block` on the widest path the CPU has (AVX2 at least: the caller checked).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
unsafe fn leading_lines<X: Widen<A>, A: Element>(
    avx512: bool,
    x: &[X],
    k: &[A],
    lines: &[Line],
    cval: X,
    outs: &[*mut X],
    c0: usize,
    c1: usize,
) {
    if avx512 {
        leading_block_avx512(x, k, lines, cval, outs, c0, c1);
    } else {
        leading_block_avx2(x, k, lines, cval, outs, c0, c1);
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn leading_block_avx2<X: Widen<A>, A: Element>(x: &[X], k: &[A], lines: &[Line], cval: X, outs: &[*mut X], c0: usize, c1: usize) {
    leading_block::<X, A, crate::cpu::vector::Avx2, 2>(x, k, lines, cval, outs, c0, c1)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn leading_block_avx512<X: Widen<A>, A: Element>(x: &[X], k: &[A], lines: &[Line], cval: X, outs: &[*mut X], c0: usize, c1: usize) {
    leading_block::<X, A, crate::cpu::vector::Avx512, 4>(x, k, lines, cval, outs, c0, c1)
}

/// Columns `c0..c1` of the output lines `outs` (at most `LINES`; line `t` sums
/// `k[j] * lines[t + j]`): blocks of `NV` vectors, then single vectors, then the last
/// vector moved back to end at `c1` (it recomputes a few columns to the same bits), and
/// scalars only where the strip is narrower than a vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn leading_block<X: Widen<A>, A: Element, S: crate::cpu::vector::Simd<A>, const NV: usize>(
    x: &[X],
    k: &[A],
    lines: &[Line],
    cval: X,
    outs: &[*mut X],
    c0: usize,
    c1: usize,
) {
    let l = S::LANES;
    let r = outs.len();
    debug_assert!(r <= LINES && lines.len() + 1 == r + k.len());
    let xp = x.as_ptr();
    let cv = S::splat(cval.widen());
    let mut c = c0;
    while c + NV * l <= c1 {
        leading_run::<X, A, S, NV>(xp, k, lines, cv, outs, c, NV);
        c += NV * l;
    }
    while c + l <= c1 {
        leading_run::<X, A, S, NV>(xp, k, lines, cv, outs, c, 1);
        c += l;
    }
    if c < c1 {
        if c1 - c0 >= l {
            leading_run::<X, A, S, NV>(xp, k, lines, cv, outs, c1 - l, 1);
        } else {
            for c in c..c1 {
                let mut acc = [A::zero(); LINES];
                for (pi, line) in lines.iter().enumerate() {
                    let v = match *line {
                        Line::Skip => continue,
                        Line::Constant => cval.widen(),
                        Line::At(base) => (*xp.add(base + c)).widen(),
                    };
                    for (t, a) in acc.iter_mut().enumerate().take(r) {
                        let j = pi.wrapping_sub(t);
                        if j < k.len() {
                            *a = k.get_unchecked(j).fused_mul_add(v, *a);
                        }
                    }
                }
                for (t, a) in acc.iter().enumerate().take(r) {
                    *outs[t].add(c) = X::narrow(*a);
                }
            }
        }
    }
}

/// Output columns `c .. c + nv * S::LANES` of the lines `outs` (`nv <= NV` vectors each).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn leading_run<X: Widen<A>, A: Element, S: crate::cpu::vector::Simd<A>, const NV: usize>(
    xp: *const X,
    k: &[A],
    lines: &[Line],
    cv: S::V,
    outs: &[*mut X],
    c: usize,
    nv: usize,
) {
    let l = S::LANES;
    let r = outs.len();
    let mut acc = [[S::zero(); NV]; LINES];
    for (pi, line) in lines.iter().enumerate() {
        let mut v = [cv; NV];
        match *line {
            Line::Skip => continue,
            Line::Constant => {}
            Line::At(base) => {
                for (q, vq) in v.iter_mut().enumerate().take(nv) {
                    *vq = <X as Widen<A>>::vload::<S>(xp.add(base + c + q * l));
                }
            }
        }
        for (t, acc_t) in acc.iter_mut().enumerate().take(r) {
            // This position is tap j = pi - t of output line t.
            let j = pi.wrapping_sub(t);
            if j < k.len() {
                let w = S::splat(*k.get_unchecked(j));
                for q in 0..nv {
                    acc_t[q] = S::fmadd(w, v[q], acc_t[q]);
                }
            }
        }
    }
    for (t, acc_t) in acc.iter().enumerate().take(r) {
        for (q, a) in acc_t.iter().enumerate().take(nv) {
            <X as Widen<A>>::vstore::<S>(outs[t].add(c + q * l), *a);
        }
    }
}

/// Rows of the first pass `separable2` keeps per strip, at most.
const STRIP_ROWS: usize = 16;

/// One separable filter of a 2-D array as scipy.ndimage runs it: `k0` along axis 0
/// (`plan0`, kernel shape `k0.len() x 1`), its sums rounded to the data's type as if
/// stored (scipy stores each pass in the output dtype), then `k1` along axis 1 (`plan1`,
/// `1 x k1.len()`).
#[derive(Clone, Copy, Debug)]
pub struct Passes<'a, A> {
    pub k0: &'a [A],
    pub plan0: &'a CorrPlan,
    pub k1: &'a [A],
    pub plan1: &'a CorrPlan,
}

/// The sum of separable filters over one 2-D array: `f[0] + f[1] + ...` added in that
/// order in the data's type (numpy's adds, as gaussian_laplace sums its axes), then with
/// `add_to` (an array of the same shape) `add_to[i] + r[i]`. Bit for bit the separate
/// `correlate_direct` (or `correlate_direct_wide`) passes and numpy adds, computed a
/// strip of rows at a time: each first pass's strip stays in cache for its second pass,
/// and each input row is read from memory once for all the filters, where separate
/// passes write whole intermediate arrays and read them back (and each sum reads two).
pub fn separable2<T: Element>(x: &[T], filters: &[Passes<T>], add_to: Option<&[T]>) -> Result<Vec<T>> {
    separable(x, filters, add_to, correlate_direct::<T>)
}

/// `separable2` of float32 data with float64 weights, summed in float64 (each pass as
/// `correlate_direct_wide`).
pub fn separable2_wide(x: &[f32], filters: &[Passes<f64>], add_to: Option<&[f32]>) -> Result<Vec<f32>> {
    separable(x, filters, add_to, correlate_direct_wide)
}

/// `separable2`; `pass` is one separate pass (for the cases the fused strips leave out).
fn separable<X: Widen<A>, A: Element>(
    x: &[X],
    filters: &[Passes<A>],
    add_to: Option<&[X]>,
    pass: impl Fn(&[X], &[A], &CorrPlan) -> Result<Vec<X>>,
) -> Result<Vec<X>> {
    use crate::error::Error;
    let Some(first) = filters.first() else {
        return Err(Error::Value("separable2: expected at least one filter, got none".into()));
    };
    let shape = &first.plan0.in_shape;
    for f in filters {
        let ok = shape.len() == 2
            && f.plan0.in_shape == *shape
            && f.plan0.out_shape == *shape
            && f.plan1.in_shape == *shape
            && f.plan1.out_shape == *shape
            && f.plan0.k_shape == [f.k0.len(), 1]
            && f.plan1.k_shape == [1, f.k1.len()]
            && f.plan0.offset[1] == 0
            && f.plan1.offset[0] == 0;
        if !ok {
            return Err(Error::Value(format!(
                "separable2: expected 1-D passes along axes 0 and 1 of one 2-D shape, got {:?} and {:?}",
                f.plan0, f.plan1
            )));
        }
    }
    if x.len() != shape[0] * shape[1] || add_to.is_some_and(|t| t.len() != x.len()) {
        return Err(Error::Value(format!(
            "separable2: expected data (and add_to) of shape {shape:?}, got {} values",
            x.len()
        )));
    }
    let (rows, cols) = (shape[0], shape[1]);
    // A cval that X cannot hold under a constant boundary (float32 data summed in float64
    // pads with the double), the rules that leave products out, and CPUs without the
    // vector paths: the separate passes.
    let exact_cval = |p: &CorrPlan| {
        p.boundary != crate::ops::correlate::Boundary::Constant
            || p.cval.is_nan()
            || X::from_f64_lossy(p.cval).widen() == A::from_f64_lossy(p.cval)
    };
    let plain = |p: &CorrPlan| exact_cval(p) && !p.overlap_only && !p.skip_zero;
    let fused = filters.iter().all(|f| plain(f.plan0) && plain(f.plan1))
        && !x.is_empty()
        && has_avx2_fma()
        && !general_only();
    #[cfg(target_arch = "x86_64")]
    if fused {
        return separable_strips(x, filters, add_to, rows, cols);
    }
    let _ = (fused, rows, cols);
    let mut out: Option<Vec<X>> = None;
    for f in filters {
        let mid = pass(x, f.k0, f.plan0)?;
        let r = pass(&mid, f.k1, f.plan1)?;
        drop(mid);
        out = Some(match out {
            None => r,
            Some(mut o) => {
                o.par_iter_mut().zip(r.par_iter()).for_each(|(o, &v)| *o += v);
                o
            }
        });
    }
    let mut out = out.expect("at least one filter (checked above)");
    if let Some(t) = add_to {
        out.par_iter_mut().zip(t.par_iter()).for_each(|(o, &a)| *o = a + *o);
    }
    Ok(out)
}

/// One filter of `separable_strips` over the strip of rows `r0 .. r0 + hs` into `dst`
/// (`hs x cols` values); `mid` holds the strip's first pass.
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn strip_filter<X: Widen<A>, A: Element>(
    x: &[X],
    f: &Passes<A>,
    rows: usize,
    cols: usize,
    r0: usize,
    hs: usize,
    mid: &mut [X],
    lines: &mut Vec<Line>,
    scratch: &mut Scratch<X, A>,
    dst: &mut [MaybeUninit<X>],
) {
    let cval = X::from_f64_lossy(f.plan0.cval);
    let skip_constant = cval == X::zero() && f.k0.iter().all(|v| v.is_finite());
    let avx512 = crate::cpu::simd::has_avx512();
    // The first pass of the strip into `mid`, LINES rows at a time.
    let mp = mid.as_mut_ptr();
    for b0 in (0..hs).step_by(LINES) {
        let r = LINES.min(hs - b0);
        window_lines(lines, f.plan0.boundary, rows, cols, f.plan0.offset[0], f.k0.len(), skip_constant, 0, r0 + b0, r);
        let mut outs = [std::ptr::null_mut(); LINES];
        for (t, o) in outs.iter_mut().enumerate().take(r) {
            // SAFETY: row b0 + t < hs of the strip buffer.
            *o = unsafe { mp.add((b0 + t) * cols) };
        }
        // SAFETY: the CPU has the path (checked by `separable`); every line in `lines` is
        // a whole input row and every pointer in `outs` a whole row of `mid`.
        unsafe { leading_lines(avx512, x, f.k0, lines, cval, &outs[..r], 0, cols) };
    }
    // The second pass over the strip, as `direct` runs it over a whole array.
    let mut p = f.plan1.clone();
    p.in_shape = vec![hs, cols];
    p.out_shape = vec![hs, cols];
    let ctx = Ctx::new(&mid[..hs * cols], f.k1, &p);
    for (t, row) in dst.chunks_mut(cols).enumerate() {
        for (c, d) in row.chunks_mut(CHUNK).enumerate() {
            ctx.chunk_out(t, c * CHUNK, d, scratch);
        }
    }
}

/// `separable` in strips of rows (the CPU has AVX2 at least: the caller checked).
#[cfg(target_arch = "x86_64")]
fn separable_strips<X: Widen<A>, A: Element>(
    x: &[X],
    filters: &[Passes<A>],
    add_to: Option<&[X]>,
    rows: usize,
    cols: usize,
) -> Result<Vec<X>> {
    let mut out: Vec<MaybeUninit<X>> = try_uninit(x.len(), "the filtered array")?;
    let threads = rayon::current_num_threads();
    // Strips of whole blocks of LINES rows, short enough to give every worker several.
    let h = (rows / (4 * threads)).clamp(LINES, STRIP_ROWS) / LINES * LINES;
    let strips = rows.div_ceil(h);
    let dst = OutPtr(out.as_mut_ptr() as *mut X);
    let more = filters.len() > 1;
    (0..strips).into_par_iter().for_each_init(
        || {
            let res = if more { vec![MaybeUninit::<X>::uninit(); h * cols] } else { Vec::new() };
            (Vec::<Line>::new(), vec![X::zero(); h * cols], Scratch::<X, A>::new(), res)
        },
        |(lines, mid, scratch, res), strip| {
            let r0 = strip * h;
            let hs = h.min(rows - r0);
            // SAFETY: rows r0 .. r0 + hs of the output belong to this strip alone.
            let orows = unsafe { std::slice::from_raw_parts_mut(dst.add(r0 * cols) as *mut MaybeUninit<X>, hs * cols) };
            strip_filter(x, &filters[0], rows, cols, r0, hs, mid, lines, scratch, orows);
            for f in &filters[1..] {
                let res = &mut res[..hs * cols];
                strip_filter(x, f, rows, cols, r0, hs, mid, lines, scratch, res);
                for (o, r) in orows.iter_mut().zip(res.iter()) {
                    // SAFETY: `strip_filter` wrote every value of both.
                    *o = MaybeUninit::new(unsafe { o.assume_init() + r.assume_init() });
                }
            }
            if let Some(add) = add_to {
                for (o, &a) in orows.iter_mut().zip(&add[r0 * cols..(r0 + hs) * cols]) {
                    // SAFETY: as above.
                    *o = MaybeUninit::new(a + unsafe { o.assume_init() });
                }
            }
        },
    );
    // SAFETY: every strip wrote its rows, and MaybeUninit<X> has X's layout.
    Ok(unsafe { assume_init_vec(out) })
}

/// Direct correlation tap by tap, leaving out the products `plan` says to leave out:
/// positions outside the input (`overlap_only`) and zero weights (`skip_zero`). They
/// differ from multiplying every tap only when an input holds inf or NaN, the one case
/// this slow path is used for.
fn correlate_taps<X: Widen<A>, A: Element>(x: &[X], k: &[A], plan: &CorrPlan) -> Result<Vec<X>> {
    let out_n = checked_numel(&plan.out_shape)?;
    let mut out = try_zeroed(out_n, "the correlation output")?;
    let d = plan.ndim();
    let strides = |shape: &[usize]| {
        let mut s = vec![1usize; shape.len()];
        for e in (0..shape.len().saturating_sub(1)).rev() {
            s[e] = s[e + 1] * shape[e + 1];
        }
        s
    };
    let (in_strides, out_strides, k_strides) = (strides(&plan.in_shape), strides(&plan.out_shape), strides(&plan.k_shape));
    let cval = A::from_f64_lossy(plan.cval);
    out.par_iter_mut().enumerate().for_each(|(o, y)| {
        let mut acc = A::zero();
        'taps: for (j, &w) in k.iter().enumerate() {
            if plan.skip_zero && w == A::zero() {
                continue;
            }
            let mut src = Some(0usize);
            for e in 0..d {
                let oe = (o / out_strides[e]) % plan.out_shape[e];
                let je = (j / k_strides[e]) % plan.k_shape[e];
                let i = oe as isize + je as isize - plan.offset[e];
                match plan.boundary.map(i, plan.in_shape[e]) {
                    Some(ii) => src = src.map(|s| s + ii * in_strides[e]),
                    None if plan.overlap_only => continue 'taps,
                    None => src = None,
                }
            }
            acc += match src {
                Some(s) => x[s].widen() * w,
                None => cval * w,
            };
        }
        *y = X::narrow(acc);
    });
    Ok(out)
}

impl<'a, X: Widen<A>, A: Element> Ctx<'a, X, A> {
    fn new(x: &'a [X], k: &'a [A], plan: &'a CorrPlan) -> Self {
        let d = plan.ndim();
        let kw = plan.k_shape[d - 1];
        Ctx {
            x,
            k,
            plan,
            iw: plan.in_shape[d - 1],
            kw,
            k_rows: k.len() / kw,
            cval: X::from_f64_lossy(plan.cval),
            kernel_finite: k.iter().all(|v| v.is_finite()),
            in_row_strides: row_strides(&plan.in_shape),
            out_row_strides: row_strides(&plan.out_shape),
            k_row_strides: row_strides(&plan.k_shape),
        }
    }

    /// Fill `s.active` with the kernel rows that contribute to output row `r`.
    fn collect_sources(&self, r: usize, s: &mut Scratch<X, A>) {
        s.active.clear();
        let lead = self.plan.ndim() - 1;
        // Rows that are all zero padding add nothing, unless the kernel holds inf or NaN
        // (0 * inf is NaN, and scipy's N-D direct method multiplies the padding too).
        let skip_constant = self.cval == X::zero() && self.kernel_finite;
        // Output row multi-index.
        let mut o_idx = [0usize; 16];
        let mut o_vec;
        let o_idx: &mut [usize] = if lead <= 16 {
            &mut o_idx[..lead]
        } else {
            o_vec = vec![0usize; lead];
            &mut o_vec
        };
        let mut rem = r;
        for e in 0..lead {
            o_idx[e] = rem / self.out_row_strides[e];
            rem %= self.out_row_strides[e];
        }
        'rows: for q in 0..self.k_rows {
            let mut rem = q;
            let mut src = 0usize;
            let mut constant = false;
            for e in 0..lead {
                let j = rem / self.k_row_strides[e];
                rem %= self.k_row_strides[e];
                let i = o_idx[e] as isize + j as isize - self.plan.offset[e];
                match self.plan.boundary.map(i, self.plan.in_shape[e]) {
                    Some(ii) => src += ii * self.in_row_strides[e],
                    None => constant = true,
                }
            }
            if constant {
                if skip_constant {
                    continue 'rows;
                }
                s.active.push((q, Source::Constant));
            } else {
                s.active.push((q, Source::Row(src)));
            }
        }
    }

    /// Output row `r`, columns `o0 .. o0 + dst.len()`, into `dst`: accumulated there
    /// when the accumulators have the output's type, else in `s.acc`, the last pass
    /// storing its sums rounded into `dst`.
    fn chunk_out(&self, r: usize, o0: usize, dst: &mut [MaybeUninit<X>], s: &mut Scratch<X, A>) {
        if X::SAME {
            // SAFETY: X is A (`Widen::SAME`), so the two slices have one layout.
            let dst = unsafe { std::slice::from_raw_parts_mut(dst.as_mut_ptr() as *mut MaybeUninit<A>, dst.len()) };
            self.chunk(r, o0, dst, None, s);
        } else {
            let n = dst.len();
            let mut acc = std::mem::take(&mut s.acc);
            // The last accumulation of each output stores it rounded into `dst`.
            self.chunk(r, o0, &mut acc[..n], Some(dst), s);
            s.acc = acc;
        }
    }

    /// Compute output row `r`, columns `o0 .. o0 + n`, into `dst` (uninitialised on
    /// entry: the first pass writes, later passes accumulate); with `fin`, the last pass
    /// stores the sums rounded to `X` there instead.
    fn chunk(&self, r: usize, o0: usize, dst: &mut [MaybeUninit<A>], mut fin: Option<&mut [MaybeUninit<X>]>, s: &mut Scratch<X, A>) {
        self.collect_sources(r, s);
        let n = dst.len();
        if s.active.is_empty() {
            dst.fill(MaybeUninit::new(A::zero()));
            if let Some(f) = fin {
                f.fill(MaybeUninit::new(X::zero()));
            }
            return;
        }
        let off = self.plan.offset[self.plan.ndim() - 1];
        let line_len = CHUNK + TAPS;
        let Scratch { active, lines, .. } = s;
        let mut first = true;
        for t0 in (0..self.kw).step_by(TAPS) {
            let taps = TAPS.min(self.kw - t0);
            // Outputs whose taps all read inside the input row read it in place; only the
            // edges (left, right) go through padded scratch lines.
            let lo = o0 as isize;
            let hi = (o0 + n) as isize;
            let (a, b) = if n >= SPLIT_MIN {
                let a = (off - t0 as isize).clamp(lo, hi);
                let b = (self.iw as isize + off - t0 as isize - taps as isize + 1).clamp(a, hi);
                // An edge piece, where there is one, is at least EDGE_MIN outputs long (a
                // padded line costs little), so that its vectors cover it with no scalar
                // remainder.
                let a = if a > lo { a.max(lo + EDGE_MIN).min(hi) } else { a };
                let b = if b < hi { b.min(hi - EDGE_MIN).max(a) } else { b };
                (a, b)
            } else {
                // Short rows: one padded copy per line costs less than vector-unfriendly
                // edge pieces.
                (lo, lo)
            };
            let groups = active.len().div_ceil(GROUP);
            for (gi, group) in active.chunks(GROUP).enumerate() {
                let last_group = gi + 1 == groups;
                for (r0, r1) in [(lo, a), (a, b), (b, hi)] {
                    if r1 <= r0 {
                        continue;
                    }
                    let (r0, r1) = (r0 as usize, r1 as usize);
                    // Input column of the first value this pass reads.
                    let start = r0 as isize + t0 as isize - off;
                    let span = r1 - r0 + taps - 1;
                    let mut direct: [Option<usize>; GROUP] = [None; GROUP];
                    for (g, &(_, src)) in group.iter().enumerate() {
                        let line = &mut lines[g * line_len..g * line_len + span];
                        match src {
                            Source::Row(row) => {
                                let base = row * self.iw;
                                if start >= 0 && start as usize + span <= self.iw {
                                    direct[g] = Some(base + start as usize);
                                } else {
                                    self.fill_line(line, &self.x[base..base + self.iw], start);
                                }
                            }
                            Source::Constant => line.fill(self.cval),
                        }
                    }
                    let mut srcs: [&[X]; GROUP] = [&[]; GROUP];
                    let mut ws: [&[A]; GROUP] = [&[]; GROUP];
                    for (g, &(q, _)) in group.iter().enumerate() {
                        srcs[g] = match direct[g] {
                            Some(b) => &self.x[b..b + span],
                            None => &lines[g * line_len..g * line_len + span],
                        };
                        let kb = q * self.kw + t0;
                        ws[g] = &self.k[kb..kb + taps];
                    }
                    let last = t0 + TAPS >= self.kw && last_group;
                    let out = &mut dst[r0 - o0..r1 - o0];
                    let fin = if last { fin.as_deref_mut().map(|f| &mut f[r0 - o0..r1 - o0]) } else { None };
                    accumulate(out, &srcs[..group.len()], &ws[..group.len()], first, fin);
                }
                first = false;
            }
        }
    }

    /// line[t] = row value at column `start + t`, resolved by the boundary rule.
    fn fill_line(&self, line: &mut [X], row: &[X], start: isize) {
        let n = row.len() as isize;
        let len = line.len() as isize;
        // Interior part: columns in [0, n).
        let lo = (-start).clamp(0, len);
        let hi = (n - start).clamp(lo, len);
        if hi > lo {
            let a = (start + lo) as usize;
            line[lo as usize..hi as usize].copy_from_slice(&row[a..a + (hi - lo) as usize]);
        }
        let b = self.plan.boundary;
        for t in (0..lo).chain(hi..len) {
            line[t as usize] = match b.map(start + t, row.len()) {
                Some(i) => row[i],
                None => self.cval,
            };
        }
    }
}

/// dst[o] (+)= sum_g sum_j ws[g][j] * srcs[g][o + j]; with `init` the old contents of
/// `dst` (possibly uninitialised) are ignored and overwritten.
fn accumulate<X: Widen<A>, A: Element>(
    dst: &mut [MaybeUninit<A>],
    srcs: &[&[X]],
    ws: &[&[A]],
    init: bool,
    fin: Option<&mut [MaybeUninit<X>]>,
) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::simd::has_avx512() && X::SAME && ws.first().map_or(0, |w| w.len()) >= AVX512_MIN_TAPS {
        // SAFETY: the CPU supports AVX-512 (checked at run time).
        unsafe { accumulate_avx512(dst, srcs, ws, init, fin) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        unsafe { accumulate_avx2(dst, srcs, ws, init, fin) };
        return;
    }
    accumulate_generic::<X, A, false>(dst, srcs, ws, init);
    if let Some(f) = fin {
        // SAFETY: `accumulate_generic` wrote every element of `dst`.
        X::narrow_into(f, unsafe { std::slice::from_raw_parts(dst.as_ptr() as *const A, dst.len()) });
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_avx2<X: Widen<A>, A: Element>(
    dst: &mut [MaybeUninit<A>],
    srcs: &[&[X]],
    ws: &[&[A]],
    init: bool,
    fin: Option<&mut [MaybeUninit<X>]>,
) {
    accumulate_simd::<X, A, crate::cpu::vector::Avx2>(dst, srcs, ws, init, fin)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn accumulate_avx512<X: Widen<A>, A: Element>(
    dst: &mut [MaybeUninit<A>],
    srcs: &[&[X]],
    ws: &[&[A]],
    init: bool,
    fin: Option<&mut [MaybeUninit<X>]>,
) {
    accumulate_simd::<X, A, crate::cpu::vector::Avx512>(dst, srcs, ws, init, fin)
}

/// Hand-vectorised `accumulate`: blocks of 8 AVX vectors of outputs stay in registers
/// over every tap of every kernel row in the group.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn accumulate_simd<X: Widen<A>, A: Element, S: crate::cpu::vector::Simd<A>>(
    dst: &mut [MaybeUninit<A>],
    srcs: &[&[X]],
    ws: &[&[A]],
    init: bool,
    mut fin: Option<&mut [MaybeUninit<X>]>,
) {
    const NV: usize = 8;
    let l = S::LANES;
    let block = NV * l;
    let n = dst.len();
    for (src, w) in srcs.iter().zip(ws) {
        // Every read below stays inside `src`: the last one is at n - 1 + w.len() - 1.
        assert!(src.len() + 1 >= n + w.len(), "accumulate: source line too short");
    }
    if let Some(f) = &fin {
        assert_eq!(f.len(), n, "accumulate: rounded output of another length");
    }
    let dp = dst.as_mut_ptr() as *mut A;
    // Where the sums go: rounded into `fin`, or as they are into `dst`.
    let fp = fin.as_deref_mut().map_or(std::ptr::null_mut(), |f| f.as_mut_ptr() as *mut X);
    // A tail shorter than a vector is summed as the vector ending at n (see below), from
    // the old contents of its outputs, read before the loops overwrite some of them.
    let tail_from = if !n.is_multiple_of(l) && n > l && !init { S::load(dp.add(n - l)) } else { S::zero() };
    let mut o = 0;
    while o + block <= n {
        let mut acc = [S::zero(); NV];
        if !init {
            for (v, a) in acc.iter_mut().enumerate() {
                *a = S::load(dp.add(o + v * l));
            }
        }
        for (src, w) in srcs.iter().zip(ws) {
            let sp = src.as_ptr().add(o);
            for (j, &wj) in w.iter().enumerate() {
                let wv = S::splat(wj);
                let p = sp.add(j);
                for (v, a) in acc.iter_mut().enumerate() {
                    *a = S::fmadd(wv, <X as Widen<A>>::vload::<S>(p.add(v * l)), *a);
                }
            }
        }
        for (v, a) in acc.iter().enumerate() {
            if fp.is_null() {
                S::store(dp.add(o + v * l), *a);
            } else {
                <X as Widen<A>>::vstore::<S>(fp.add(o + v * l), *a);
            }
        }
        o += block;
    }
    // Short rows and row ends: one vector of outputs at a time; then a tail shorter than
    // a vector as the last vector moved back to end at n (its first outputs are summed
    // again, in the same order from the same old contents, to the same bits).
    loop {
        let (at, mut acc) = if o + l <= n {
            (o, if init { S::zero() } else { S::load(dp.add(o)) })
        } else if o < n && n > l {
            (n - l, tail_from)
        } else {
            break;
        };
        for (src, w) in srcs.iter().zip(ws) {
            let sp = src.as_ptr().add(at);
            for (j, &wj) in w.iter().enumerate() {
                acc = S::fmadd(S::splat(wj), <X as Widen<A>>::vload::<S>(sp.add(j)), acc);
            }
        }
        if fp.is_null() {
            S::store(dp.add(at), acc);
        } else {
            <X as Widen<A>>::vstore::<S>(fp.add(at), acc);
        }
        o = at + l;
    }
    if o < n {
        accumulate_generic::<X, A, true>(&mut dst[o..], &shifted(srcs, o)[..srcs.len()], ws, init);
        if let Some(f) = fin {
            // SAFETY: `accumulate_generic` wrote `dst[o..]`.
            X::narrow_into(&mut f[o..], std::slice::from_raw_parts(dst.as_ptr().add(o) as *const A, n - o));
        }
    }
}

/// The source lines advanced by `o` values (for the tail of a block loop).
#[cfg(target_arch = "x86_64")]
fn shifted<'a, T>(srcs: &[&'a [T]], o: usize) -> [&'a [T]; GROUP] {
    let mut out: [&[T]; GROUP] = [&[]; GROUP];
    for (d, s) in out.iter_mut().zip(srcs) {
        *d = &s[o..];
    }
    out
}

#[inline(always)]
fn madd<T: Element, const FMA: bool>(w: T, x: T, acc: T) -> T {
    if FMA {
        w.fused_mul_add(x, acc)
    } else {
        acc + w * x
    }
}

#[inline(always)]
fn accumulate_generic<X: Widen<A>, A: Element, const FMA: bool>(
    dst: &mut [MaybeUninit<A>],
    srcs: &[&[X]],
    ws: &[&[A]],
    init: bool,
) {
    let n = dst.len();
    let mut o = 0;
    while o + BLOCK <= n {
        let mut acc = [A::zero(); BLOCK];
        if !init {
            for v in 0..BLOCK {
                // SAFETY: without `init`, an earlier pass wrote every element of `dst`.
                acc[v] = unsafe { dst[o + v].assume_init() };
            }
        }
        for (src, w) in srcs.iter().zip(ws) {
            for (j, &wj) in w.iter().enumerate() {
                let s: &[X; BLOCK] = src[o + j..o + j + BLOCK].try_into().unwrap();
                for v in 0..BLOCK {
                    acc[v] = madd::<A, FMA>(wj, s[v].widen(), acc[v]);
                }
            }
        }
        for v in 0..BLOCK {
            dst[o + v] = MaybeUninit::new(acc[v]);
        }
        o += BLOCK;
    }
    for oo in o..n {
        // SAFETY: as above.
        let mut a = if init { A::zero() } else { unsafe { dst[oo].assume_init() } };
        for (src, w) in srcs.iter().zip(ws) {
            for (j, &wj) in w.iter().enumerate() {
                a = madd::<A, FMA>(wj, src[oo + j].widen(), a);
            }
        }
        dst[oo] = MaybeUninit::new(a);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::correlate::{Boundary, Mode};

    /// Textbook evaluation of a plan, for reference.
    pub(crate) fn naive(x: &[f64], k: &[f64], p: &CorrPlan) -> Vec<f64> {
        let d = p.ndim();
        let on: usize = p.out_shape.iter().product();
        let kn: usize = p.k_shape.iter().product();
        let unravel = |mut i: usize, shape: &[usize]| {
            let mut idx = vec![0usize; shape.len()];
            for e in (0..shape.len()).rev() {
                idx[e] = i % shape[e];
                i /= shape[e];
            }
            idx
        };
        (0..on)
            .map(|oi| {
                let o = unravel(oi, &p.out_shape);
                let mut acc = 0.0;
                for ki in 0..kn {
                    let j = unravel(ki, &p.k_shape);
                    let mut flat = 0usize;
                    let mut constant = false;
                    for e in 0..d {
                        let i = o[e] as isize + j[e] as isize - p.offset[e];
                        match p.boundary.map(i, p.in_shape[e]) {
                            Some(ii) => flat = flat * p.in_shape[e] + ii,
                            None => constant = true,
                        }
                    }
                    let v = if constant { p.cval } else { x[flat] };
                    acc += v * k[ki];
                }
                acc
            })
            .collect()
    }

    fn lcg(seed: &mut u64) -> f64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }

    fn check(p: &CorrPlan, seed: u64) {
        let mut s = seed;
        let x: Vec<f64> = (0..p.in_shape.iter().product::<usize>()).map(|_| lcg(&mut s)).collect();
        let k: Vec<f64> = (0..p.k_shape.iter().product::<usize>()).map(|_| lcg(&mut s)).collect();
        let want = naive(&x, &k, p);
        let got = correlate_direct(&x, &k, p).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-12 * (1.0 + w.abs()), "{p:?}: {g} vs {w}");
        }
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let k32: Vec<f32> = k.iter().map(|&v| v as f32).collect();
        let got32 = correlate_direct(&x32, &k32, p).unwrap();
        let scale: f64 = k.iter().map(|v| v.abs()).sum::<f64>() * 1.0;
        for (g, w) in got32.iter().zip(&want) {
            assert!((*g as f64 - w).abs() <= 1e-5 * (scale + 1.0), "{p:?}: {g} vs {w}");
        }
    }

    #[test]
    fn worked_examples() {
        let x = [1.0, 4.0, 3.0, -1.0, 2.0, -4.0, 1.0, 0.0, 2.0, -1.0];
        let w = [1.0, 2.0, 1.0];
        let p = CorrPlan::signal(&[10], &[3], Mode::Valid).unwrap();
        assert_eq!(correlate_direct(&x, &w, &p).unwrap(), vec![12.0, 9.0, 3.0, -1.0, -5.0, -2.0, 3.0, 3.0]);
        let x2 = [3., 3., 2., 1., 0., 0., 0., 1., 3., 1., 3., 1., 2., 2., 3., 2., 0., 0., 2., 2., 2., 0., 0., 0., 1.];
        let w2 = [0., 1., 2., 2., 2., 0., 0., 1., 2.];
        let p = CorrPlan::signal(&[5, 5], &[3, 3], Mode::Valid).unwrap();
        assert_eq!(
            correlate_direct(&x2, &w2, &p).unwrap(),
            vec![12., 12., 17., 10., 17., 19., 9., 6., 14.]
        );
    }

    #[test]
    fn matches_naive_signal_modes() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[37], &[5]),
            (&[5000], &[70]),
            (&[3], &[8]),
            (&[9, 40], &[3, 4]),
            (&[4, 3], &[6, 7]),
            (&[70, 2100], &[5, 3]),
            (&[5, 6, 7], &[3, 2, 4]),
            (&[2, 3, 4, 5], &[2, 2, 3, 1]),
            (&[3, 2500], &[2, 1200]),
        ];
        for (i, (a, b)) in cases.iter().enumerate() {
            for mode in [Mode::Full, Mode::Same, Mode::Valid] {
                if let Ok(p) = CorrPlan::signal(a, b, mode) {
                    check(&p, i as u64 + 1);
                }
            }
        }
    }

    #[test]
    fn matches_naive_every_boundary() {
        for b in [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap] {
            for (i, (a, k)) in [(&[11usize, 13][..], &[3usize, 5][..]), (&[4, 3, 5], &[5, 3, 9]), (&[2], &[7])]
                .iter()
                .enumerate()
            {
                let origin = vec![0isize; a.len()];
                let mut p = CorrPlan::ndimage(a, k, &origin, b, 0.0).unwrap();
                p.cval = 1.5;
                check(&p, 100 + i as u64);
            }
        }
    }

    /// float32 data with float64 weights, summed in float64: every output within half a
    /// float32 ulp of the exact sum (plus the float64 rounding of a long sum), on every
    /// boundary, a non-float32 `cval`, more kernel rows than a group and more taps than
    /// a pass, row tails, and inf / NaN inputs.
    #[test]
    fn wide_sums_round_once() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[3000], &[17]),
            (&[37, 203], &[17, 1]),
            (&[9, 70], &[1, 33]),
            (&[40, 13], &[3, 5]),
            (&[2, 3000], &[1, 1100]),
            (&[5, 6, 7], &[3, 2, 4]),
        ];
        for b in [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap] {
            for (i, (a, kshape)) in cases.iter().enumerate() {
                for cval in [0.0, 1.5, 0.1] {
                    let origin = vec![0isize; a.len()];
                    let mut p = CorrPlan::ndimage(a, kshape, &origin, b, cval).unwrap();
                    p.cval = cval;
                    let mut s = 7 + i as u64;
                    let mut x: Vec<f32> =
                        (0..a.iter().product::<usize>()).map(|_| (lcg(&mut s) * 100.0) as f32).collect();
                    let k: Vec<f64> = (0..kshape.iter().product::<usize>()).map(|_| lcg(&mut s)).collect();
                    if i == 1 {
                        x[5] = f32::INFINITY;
                        x[400] = f32::NAN;
                    }
                    let xw: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                    let want = naive(&xw, &k, &p);
                    let got = correlate_direct_wide(&x, &k, &p).unwrap();
                    assert_eq!(got.len(), want.len());
                    let scale: f64 = 100.0 * k.iter().map(|v| v.abs()).sum::<f64>() + cval.abs();
                    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
                        if w.is_nan() || w.is_infinite() {
                            assert!(g.is_nan() == w.is_nan() && (*g as f64 == *w || w.is_nan()), "{p:?} at {o}: {g} vs {w}");
                            continue;
                        }
                        let half_ulp = (w.abs() as f32).max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64 / 2.0;
                        let err = (*g as f64 - w).abs();
                        assert!(err <= half_ulp * (1.0 + 1e-6) + 1e-14 * scale, "{p:?} at {o}: {g} vs {w}");
                    }
                }
            }
        }
    }

    /// The leading-axis path gives the general path's bits: float64, float32 and float32
    /// summed in float64, every boundary, zero and non-zero cval, shifted origins, strips
    /// narrower than a vector, partial blocks of lines and of vectors, several slabs
    /// (a middle axis), a kernel longer than the axis, signal modes that resize the
    /// axis, and inf / NaN in the input.
    #[test]
    fn leading_axis_path_matches_the_general_path() {
        let cases: &[(&[usize], &[usize])] = &[
            (&[37, 203], &[17, 1]),
            (&[64, 130], &[5, 1]),
            (&[9, 3], &[4, 1]),
            (&[6, 7, 9], &[1, 3, 1]),
            (&[5, 6, 35], &[7, 1, 1]),
            (&[3, 4100], &[2, 1]),
            (&[11, 1], &[9, 1]),
            (&[4, 21], &[12, 1]),
        ];
        let bits32 = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let bits64 = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let mut plans = Vec::new();
        for b in [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap] {
            for (a, kshape) in cases {
                let ax = kshape.iter().position(|&e| e > 1).unwrap();
                for cval in [0.0, 1.5] {
                    for shift in [-1isize, 0, 1] {
                        let mut origin = vec![0isize; a.len()];
                        origin[ax] = (shift * (kshape[ax] as isize / 2)).clamp(-(kshape[ax] as isize / 2), (kshape[ax] as isize - 1) / 2);
                        let p = CorrPlan::ndimage(a, kshape, &origin, b, cval).unwrap();
                        plans.push(p);
                    }
                }
            }
        }
        for (a, kshape) in cases {
            for mode in [Mode::Full, Mode::Same, Mode::Valid] {
                if let Ok(p) = CorrPlan::signal(a, kshape, mode) {
                    plans.push(p);
                }
            }
        }
        for (i, p) in plans.iter().enumerate() {
            assert!(leading_axis(p).is_some(), "{p:?}");
            let mut s = 11 + i as u64;
            let mut x: Vec<f64> = (0..p.in_shape.iter().product::<usize>()).map(|_| lcg(&mut s) * 100.0).collect();
            if i % 7 == 3 {
                x[1] = f64::INFINITY;
                let l = x.len();
                x[l / 2] = f64::NAN;
            }
            let k: Vec<f64> = (0..p.k_shape.iter().product::<usize>()).map(|_| lcg(&mut s)).collect();
            let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let k32: Vec<f32> = k.iter().map(|&v| v as f32).collect();
            let fast = (
                correlate_direct(&x, &k, p).unwrap(),
                correlate_direct(&x32, &k32, p).unwrap(),
                correlate_direct_wide(&x32, &k, p).unwrap(),
            );
            GENERAL_ONLY.with(|g| g.set(true));
            let general = (
                correlate_direct(&x, &k, p).unwrap(),
                correlate_direct(&x32, &k32, p).unwrap(),
                correlate_direct_wide(&x32, &k, p).unwrap(),
            );
            GENERAL_ONLY.with(|g| g.set(false));
            assert_eq!(bits64(&fast.0), bits64(&general.0), "float64 {p:?}");
            assert_eq!(bits32(&fast.1), bits32(&general.1), "float32 {p:?}");
            assert_eq!(bits32(&fast.2), bits32(&general.2), "float32 wide {p:?}");
            if i % 7 != 3 {
                let want = naive(&x, &k, p);
                for (g, w) in fast.0.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-10 * (1.0 + w.abs()), "{p:?}: {g} vs {w}");
                }
            }
        }
    }

    /// The fused two passes give the separate passes' bits (and the add's): every pair of
    /// boundaries, zero / float32 / non-float32 cval, shifted origins, strips and blocks
    /// cut short, rows narrower than a vector and longer than a chunk, float64, float32
    /// and float32 summed in float64, with and without `add_to`, inf / NaN inputs.
    #[test]
    fn separable2_matches_the_separate_passes() {
        let bs = [Boundary::Constant, Boundary::Reflect, Boundary::Mirror, Boundary::Nearest, Boundary::Wrap];
        let shapes: &[(usize, usize)] = &[(37, 203), (64, 130), (5, 3), (9, 2100), (70, 17), (1, 40), (40, 1)];
        let mut case = 0u64;
        for &(rows, cols) in shapes {
            for (bi, &b0) in bs.iter().enumerate() {
                let b1 = bs[(bi + 2) % bs.len()];
                for (kl0, kl1, o0, o1) in [(5usize, 9usize, 0isize, 0isize), (17, 3, 1, -1), (2, 4, 0, 1)] {
                    for cval in [0.0, 1.5, 0.1] {
                        case += 1;
                        let p0 = CorrPlan::ndimage(&[rows, cols], &[kl0, 1], &[o0, 0], b0, cval).unwrap();
                        let p1 = CorrPlan::ndimage(&[rows, cols], &[1, kl1], &[0, o1], b1, cval).unwrap();
                        // a second filter (the Laplacian's other axis): its own taps and boundaries
                        let q0 = CorrPlan::ndimage(&[rows, cols], &[kl1.min(3), 1], &[0, 0], b1, cval).unwrap();
                        let q1 = CorrPlan::ndimage(&[rows, cols], &[1, kl0.min(2)], &[0, 0], b0, cval).unwrap();
                        let mut s = 5 + case;
                        let mut x: Vec<f64> = (0..rows * cols).map(|_| lcg(&mut s) * 100.0).collect();
                        if case % 5 == 2 {
                            x[0] = f64::INFINITY;
                            x[rows * cols / 2] = f64::NAN;
                        }
                        let k0: Vec<f64> = (0..kl0).map(|_| lcg(&mut s)).collect();
                        let k1: Vec<f64> = (0..kl1).map(|_| lcg(&mut s)).collect();
                        let add: Vec<f64> = (0..rows * cols).map(|_| lcg(&mut s)).collect();
                        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
                        let add32: Vec<f32> = add.iter().map(|&v| v as f32).collect();
                        let (k032, k132): (Vec<f32>, Vec<f32>) =
                            (k0.iter().map(|&v| v as f32).collect(), k1.iter().map(|&v| v as f32).collect());
                        let f64s = [Passes { k0: &k0, plan0: &p0, k1: &k1, plan1: &p1 }, Passes { k0: &k1[..kl1.min(3)], plan0: &q0, k1: &k0[..kl0.min(2)], plan1: &q1 }];
                        let f32s = [Passes { k0: &k032, plan0: &p0, k1: &k132, plan1: &p1 }, Passes { k0: &k132[..kl1.min(3)], plan0: &q0, k1: &k032[..kl0.min(2)], plan1: &q1 }];
                        let run = || {
                            (
                                separable2(&x, &f64s[..1], None).unwrap(),
                                separable2(&x, &f64s, Some(&add)).unwrap(),
                                separable2(&x32, &f32s, Some(&add32)).unwrap(),
                                separable2_wide(&x32, &f64s[..1], None).unwrap(),
                                separable2_wide(&x32, &f64s, Some(&add32)).unwrap(),
                            )
                        };
                        let fused = run();
                        GENERAL_ONLY.with(|g| g.set(true));
                        let apart = run();
                        GENERAL_ONLY.with(|g| g.set(false));
                        // (a NaN's sign and payload from an add are not specified: any NaN)
                        let b64 = |v: &Vec<f64>| v.iter().map(|x| if x.is_nan() { 1 } else { x.to_bits() }).collect::<Vec<_>>();
                        let b32 = |v: &Vec<f32>| v.iter().map(|x| if x.is_nan() { 1 } else { x.to_bits() }).collect::<Vec<_>>();
                        let what = format!("{rows}x{cols} {b0:?}/{b1:?} taps {kl0},{kl1} origins {o0},{o1} cval {cval}");
                        assert_eq!(b64(&fused.0), b64(&apart.0), "float64 {what}");
                        assert_eq!(b64(&fused.1), b64(&apart.1), "float64, two filters + add {what}");
                        assert_eq!(b32(&fused.2), b32(&apart.2), "float32 + add {what}");
                        assert_eq!(b32(&fused.3), b32(&apart.3), "wide {what}");
                        assert_eq!(b32(&fused.4), b32(&apart.4), "wide + add {what}");
                        if case % 5 != 2 {
                            // and the separate passes are the textbook passes
                            let mid = naive(&x, &k0, &p0);
                            let want = naive(&mid, &k1, &p1);
                            for (g, w) in fused.0.iter().zip(&want) {
                                assert!((g - w).abs() <= 1e-9 * (1.0 + w.abs()), "{what}: {g} vs {w}");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod timing {
    use super::*;
    use crate::ops::correlate::Boundary;

    /// `cargo test --release --lib timing -- --ignored --nocapture`: rough single-thread
    /// throughput of the direct kernel, for tuning.
    #[test]
    #[ignore]
    fn direct_throughput() {
        let n = 2048;
        let x: Vec<f32> = (0..n * n).map(|i| (i % 97) as f32).collect();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for (kh, kw) in [(1, 1), (3, 3), (5, 5), (9, 9), (1, 25), (25, 1)] {
            let k = vec![0.5f32; kh * kw];
            let p = CorrPlan::ndimage(&[n, n], &[kh, kw], &[0, 0], Boundary::Constant, 0.0).unwrap();
            let mut best = f64::MAX;
            for _ in 0..5 {
                let t = std::time::Instant::now();
                let out = pool.install(|| correlate_direct(&x, &k, &p).unwrap());
                best = best.min(t.elapsed().as_secs_f64());
                std::hint::black_box(out);
            }
            println!("{kh}x{kw}: {:.2} ms, {:.2} GFMA/s", best * 1e3, (n * n * kh * kw) as f64 / best / 1e9);
        }
    }
}
