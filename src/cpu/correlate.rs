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

/// Where one kernel row reads from, for one output row.
#[derive(Clone, Copy)]
enum Source {
    /// Flat index of an input row.
    Row(usize),
    /// Entirely outside the input under a constant boundary: every value is cval.
    Constant,
}

struct Scratch<T> {
    /// (kernel row, source) pairs active for the current output row.
    active: Vec<(usize, Source)>,
    /// GROUP padded lines.
    lines: Vec<T>,
}

impl<T: Element> Scratch<T> {
    fn new() -> Self {
        Scratch { active: Vec::new(), lines: vec![T::zero(); GROUP * (CHUNK + TAPS)] }
    }
}

struct Ctx<'a, T> {
    x: &'a [T],
    k: &'a [T],
    plan: &'a CorrPlan,
    iw: usize,
    kw: usize,
    k_rows: usize,
    cval: T,
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
    let d = plan.ndim();
    let out_n = checked_numel(&plan.out_shape)?;
    if out_n == 0 || x.is_empty() {
        return try_zeroed(out_n, "the correlation output");
    }
    // inf/NaN make 0 * inf observable: the rules that leave products out take a
    // per-tap path (rare inputs; the fast path multiplies every tap).
    if (plan.overlap_only && !k.iter().all(|v| v.is_finite()))
        || (plan.skip_zero
            && k.iter().any(|&v| v == T::zero())
            && (!plan.cval.is_finite() || !x.iter().all(|v| v.is_finite())))
    {
        return correlate_taps(x, k, plan);
    }
    // Every output is written by `chunk` before it is read, so the buffer starts
    // uninitialised: no memset, and a recycled heap block costs no page faults.
    let mut out: Vec<MaybeUninit<T>> = try_uninit(out_n, "the correlation output")?;
    let ow = plan.out_shape[d - 1];
    let kw = plan.k_shape[d - 1];
    let ctx = Ctx {
        x,
        k,
        plan,
        iw: plan.in_shape[d - 1],
        kw,
        k_rows: k.len() / kw,
        cval: T::from_f64_lossy(plan.cval),
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
                ctx.chunk(r, c * CHUNK, dst, s);
            }
        });
    } else {
        for (r, row) in out.chunks_mut(ow).enumerate() {
            row.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each_init(Scratch::new, |s, (c, dst)| ctx.chunk(r, c * CHUNK, dst, s));
        }
    }
    // SAFETY: every element was written (each row is covered by its chunks, and each
    // chunk writes all of its elements), and MaybeUninit<T> has T's layout.
    Ok(unsafe { assume_init_vec(out) })
}

/// Direct correlation tap by tap, leaving out the products `plan` says to leave out:
/// positions outside the input (`overlap_only`) and zero weights (`skip_zero`). They
/// differ from multiplying every tap only when an input holds inf or NaN, the one case
/// this slow path is used for.
fn correlate_taps<T: Element>(x: &[T], k: &[T], plan: &CorrPlan) -> Result<Vec<T>> {
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
    let cval = T::from_f64_lossy(plan.cval);
    out.par_iter_mut().enumerate().for_each(|(o, y)| {
        let mut acc = T::zero();
        'taps: for (j, &w) in k.iter().enumerate() {
            if plan.skip_zero && w == T::zero() {
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
                Some(s) => x[s] * w,
                None => cval * w,
            };
        }
        *y = acc;
    });
    Ok(out)
}

impl<T: Element> Ctx<'_, T> {
    /// Fill `s.active` with the kernel rows that contribute to output row `r`.
    fn collect_sources(&self, r: usize, s: &mut Scratch<T>) {
        s.active.clear();
        let lead = self.plan.ndim() - 1;
        // Rows that are all zero padding add nothing, unless the kernel holds inf or NaN
        // (0 * inf is NaN, and scipy's N-D direct method multiplies the padding too).
        let skip_constant = self.cval == T::zero() && self.kernel_finite;
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

    /// Compute output row `r`, columns `o0 .. o0 + n`, into `dst` (uninitialised on
    /// entry: the first pass writes, later passes accumulate).
    fn chunk(&self, r: usize, o0: usize, dst: &mut [MaybeUninit<T>], s: &mut Scratch<T>) {
        self.collect_sources(r, s);
        let n = dst.len();
        if s.active.is_empty() {
            dst.fill(MaybeUninit::new(T::zero()));
            return;
        }
        let off = self.plan.offset[self.plan.ndim() - 1];
        let line_len = CHUNK + TAPS;
        let Scratch { active, lines } = s;
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
            for group in active.chunks(GROUP) {
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
                    let mut srcs: [&[T]; GROUP] = [&[]; GROUP];
                    let mut ws: [&[T]; GROUP] = [&[]; GROUP];
                    for (g, &(q, _)) in group.iter().enumerate() {
                        srcs[g] = match direct[g] {
                            Some(b) => &self.x[b..b + span],
                            None => &lines[g * line_len..g * line_len + span],
                        };
                        let kb = q * self.kw + t0;
                        ws[g] = &self.k[kb..kb + taps];
                    }
                    accumulate(&mut dst[r0 - o0..r1 - o0], &srcs[..group.len()], &ws[..group.len()], first);
                }
                first = false;
            }
        }
    }

    /// line[t] = row value at column `start + t`, resolved by the boundary rule.
    fn fill_line(&self, line: &mut [T], row: &[T], start: isize) {
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
fn accumulate<T: Element>(dst: &mut [MaybeUninit<T>], srcs: &[&[T]], ws: &[&[T]], init: bool) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::simd::has_avx512() && ws.first().map_or(0, |w| w.len()) >= AVX512_MIN_TAPS {
        // SAFETY: the CPU supports AVX-512 (checked at run time).
        unsafe { accumulate_avx512(dst, srcs, ws, init) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked at run time).
        unsafe { accumulate_avx2(dst, srcs, ws, init) };
        return;
    }
    accumulate_generic::<T, false>(dst, srcs, ws, init)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate_avx2<T: Element>(dst: &mut [MaybeUninit<T>], srcs: &[&[T]], ws: &[&[T]], init: bool) {
    accumulate_simd::<T, crate::cpu::vector::Avx2>(dst, srcs, ws, init)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn accumulate_avx512<T: Element>(dst: &mut [MaybeUninit<T>], srcs: &[&[T]], ws: &[&[T]], init: bool) {
    accumulate_simd::<T, crate::cpu::vector::Avx512>(dst, srcs, ws, init)
}

/// Hand-vectorised `accumulate`: blocks of 8 AVX vectors of outputs stay in registers
/// over every tap of every kernel row in the group.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn accumulate_simd<T: Element, S: crate::cpu::vector::Simd<T>>(
    dst: &mut [MaybeUninit<T>],
    srcs: &[&[T]],
    ws: &[&[T]],
    init: bool,
) {
    const NV: usize = 8;
    let l = S::LANES;
    let block = NV * l;
    let n = dst.len();
    for (src, w) in srcs.iter().zip(ws) {
        // Every read below stays inside `src`: the last one is at n - 1 + w.len() - 1.
        assert!(src.len() + 1 >= n + w.len(), "accumulate: source line too short");
    }
    let dp = dst.as_mut_ptr() as *mut T;
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
                    *a = S::fmadd(wv, S::load(p.add(v * l)), *a);
                }
            }
        }
        for (v, a) in acc.iter().enumerate() {
            S::store(dp.add(o + v * l), *a);
        }
        o += block;
    }
    // Short rows and row ends: one vector of outputs at a time.
    while o + l <= n {
        let mut acc = if init { S::zero() } else { S::load(dp.add(o)) };
        for (src, w) in srcs.iter().zip(ws) {
            let sp = src.as_ptr().add(o);
            for (j, &wj) in w.iter().enumerate() {
                acc = S::fmadd(S::splat(wj), S::load(sp.add(j)), acc);
            }
        }
        S::store(dp.add(o), acc);
        o += l;
    }
    if o < n {
        accumulate_generic::<T, true>(&mut dst[o..], &shifted(srcs, o)[..srcs.len()], ws, init);
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
fn accumulate_generic<T: Element, const FMA: bool>(
    dst: &mut [MaybeUninit<T>],
    srcs: &[&[T]],
    ws: &[&[T]],
    init: bool,
) {
    let n = dst.len();
    let mut o = 0;
    while o + BLOCK <= n {
        let mut acc = [T::zero(); BLOCK];
        if !init {
            for v in 0..BLOCK {
                // SAFETY: without `init`, an earlier pass wrote every element of `dst`.
                acc[v] = unsafe { dst[o + v].assume_init() };
            }
        }
        for (src, w) in srcs.iter().zip(ws) {
            for (j, &wj) in w.iter().enumerate() {
                let s: &[T; BLOCK] = src[o + j..o + j + BLOCK].try_into().unwrap();
                for v in 0..BLOCK {
                    acc[v] = madd::<T, FMA>(wj, s[v], acc[v]);
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
        let mut a = if init { T::zero() } else { unsafe { dst[oo].assume_init() } };
        for (src, w) in srcs.iter().zip(ws) {
            for (j, &wj) in w.iter().enumerate() {
                a = madd::<T, FMA>(wj, src[oo + j], a);
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
