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
/// Kernel rows narrower than this run the AVX2 body even where AVX-512 is available.
/// Measured on an AMD EPYC of CPU family 26 (Zen 5), 2048x2048 float32, 2 threads, the
/// two bodies alternated in one process (narrow kernels are bound by loads, and every
/// unaligned 64-byte load splits a cache line where a 32-byte one splits every other):
/// 3x3 2.13 (AVX2) vs 2.27 ms (AVX-512), 5x5 3.35 vs 4.18, 7x7 5.68 vs 6.58, 9x9 8.76
/// vs 9.71, 11x11 16.3 vs 14.2, 15x15 29.1 vs 25.7.
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
    let kw = plan.k_shape[d - 1];
    let ctx = Ctx {
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
    };
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

impl<X: Widen<A>, A: Element> Ctx<'_, X, A> {
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
                (a, (self.iw as isize + off - t0 as isize - taps as isize + 1).clamp(a, hi))
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
    if crate::cpu::simd::has_avx512() && (!X::SAME || ws.first().map_or(0, |w| w.len()) >= AVX512_MIN_TAPS) {
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
    // Short rows and row ends: one vector of outputs at a time.
    while o + l <= n {
        let mut acc = if init { S::zero() } else { S::load(dp.add(o)) };
        for (src, w) in srcs.iter().zip(ws) {
            let sp = src.as_ptr().add(o);
            for (j, &wj) in w.iter().enumerate() {
                acc = S::fmadd(S::splat(wj), <X as Widen<A>>::vload::<S>(sp.add(j)), acc);
            }
        }
        if fp.is_null() {
            S::store(dp.add(o), acc);
        } else {
            <X as Widen<A>>::vstore::<S>(fp.add(o), acc);
        }
        o += l;
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
