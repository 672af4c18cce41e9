//! Pooling kernels for a validated `PoolPlan` (channels-last, 1 to 3 spatial axes).
//!
//! Every spatial shape is seen as 3-D `(d, h, w)` with missing leading axes of size 1
//! and pool 1, so one code path serves 1-D, 2-D and 3-D. The forward pass is done per
//! output row `(batch, od, oh)` in two steps: the input rows of the window are first
//! reduced elementwise into one row of `w * channels` values (a contiguous loop that
//! vectorizes whatever the channel count), then that row is reduced along `w`. This
//! keeps channels == 1 (plain images) as fast as wide channel counts.

use crate::element::Element;
use crate::error::{assume_init_vec, checked_numel, try_uninit, try_zeros, Error, Result};
use std::mem::MaybeUninit;
use crate::ops::pool::{PoolKind, PoolPlan};
use rayon::prelude::*;

/// The plan's geometry padded to three spatial axes.
struct Geo {
    batch: usize,
    n: [usize; 3],
    o: [usize; 3],
    /// Per axis and output index, the real input range `start..end` of its window.
    win: [Vec<(usize, usize)>; 3],
    c: usize,
}

impl Geo {
    fn new(plan: &PoolPlan) -> Geo {
        let nd = plan.ndim();
        let lead = 3 - nd;
        let mut n = [1; 3];
        let mut o = [1; 3];
        let mut win: [Vec<(usize, usize)>; 3] = [vec![(0, 1)], vec![(0, 1)], vec![(0, 1)]];
        for a in 0..nd {
            n[lead + a] = plan.spatial[a];
            o[lead + a] = plan.out_spatial[a];
            win[lead + a] = (0..plan.out_spatial[a]).map(|i| plan.window(a, i)).collect();
        }
        Geo { batch: plan.batch, n, o, win, c: plan.channels }
    }

    fn row_in(&self) -> usize {
        self.n[2] * self.c
    }

    fn row_out(&self) -> usize {
        self.o[2] * self.c
    }

    fn in_len(&self) -> usize {
        self.batch * self.n[0] * self.n[1] * self.row_in()
    }

    fn out_len(&self) -> usize {
        self.batch * self.o[0] * self.o[1] * self.row_out()
    }

    /// `(batch, od, oh)` of output row `r`.
    #[inline]
    fn split_out_row(&self, r: usize) -> (usize, usize, usize) {
        (r / (self.o[0] * self.o[1]), (r / self.o[1]) % self.o[0], r % self.o[1])
    }

    /// Offset of input row `(b, d, h)` in `x`.
    #[inline]
    fn in_row(&self, b: usize, d: usize, h: usize) -> usize {
        ((b * self.n[0] + d) * self.n[1] + h) * self.row_in()
    }

    /// Rayon granularity: enough rows per task that tiny rows are not one task each.
    fn min_rows(&self, work_per_row: usize) -> usize {
        (16384 / work_per_row.max(1)).max(1)
    }
}

fn check_len(what: &str, got: usize, want: usize, plan: &PoolPlan, shape: &[usize]) -> Result<()> {
    if got != want {
        return Err(Error::Value(format!(
            "{what} has {got} elements but the pooling plan (input shape {:?}) expects shape {shape:?} ({want} elements)",
            plan.in_shape()
        )));
    }
    Ok(())
}

/// `acc = max(acc, v)` elementwise, NaN-propagating (as numpy's max): once `acc` is NaN
/// no `v > acc` holds, and a NaN `v` always replaces.
#[inline(always)]
fn max_into<T: Element>(acc: &mut [T], v: &[T]) {
    for (a, &v) in acc.iter_mut().zip(v) {
        if v > *a || v.is_nan() {
            *a = v;
        }
    }
}

#[inline(always)]
fn add_into<T: Element>(acc: &mut [T], v: &[T]) {
    for (a, &v) in acc.iter_mut().zip(v) {
        *a += v;
    }
}

/// Reduce the window rows `(d0..d1) x (h0..h1)` of batch `b` into one row: either a
/// borrowed input row (single-row windows) or `tmp`.
fn reduce_rows<'a, T: Element>(
    x: &'a [T],
    g: &Geo,
    kind: PoolKind,
    b: usize,
    (d0, d1): (usize, usize),
    (h0, h1): (usize, usize),
    tmp: &'a mut Vec<T>,
) -> &'a [T] {
    let ri = g.row_in();
    let first = &x[g.in_row(b, d0, h0)..][..ri];
    if (d1 - d0) * (h1 - h0) == 1 {
        return first;
    }
    tmp.clear();
    tmp.extend_from_slice(first);
    for d in d0..d1 {
        for h in h0..h1 {
            if (d, h) == (d0, h0) {
                continue;
            }
            let row = &x[g.in_row(b, d, h)..][..ri];
            match kind {
                PoolKind::Max => max_into(tmp, row),
                PoolKind::Avg => add_into(tmp, row),
            }
        }
    }
    tmp
}

/// Max pooling along `w` of one reduced row into one output row.
fn max_along_w<T: Element>(src: &[T], orow: &mut [T], win: &[(usize, usize)], c: usize, pairs: usize) {
    if c == 1 {
        // Leading outputs whose window is exactly (2*ow, 2*ow+2) — the 2-wide, stride-2
        // case — go pairwise, which LLVM vectorizes with a deinterleave.
        for (o, ab) in orow[..pairs].iter_mut().zip(src.chunks_exact(2)) {
            let (a, b) = (ab[0], ab[1]);
            *o = if b > a || b.is_nan() { b } else { a };
        }
        for (o, &(w0, w1)) in orow[pairs..].iter_mut().zip(&win[pairs..]) {
            let mut a = src[w0];
            for &v in &src[w0 + 1..w1] {
                if v > a || v.is_nan() {
                    a = v;
                }
            }
            *o = a;
        }
        return;
    }
    for (cell, &(w0, w1)) in orow.chunks_exact_mut(c).zip(win) {
        cell.copy_from_slice(&src[w0 * c..][..c]);
        for w in w0 + 1..w1 {
            max_into(cell, &src[w * c..][..c]);
        }
    }
}

/// Average pooling along `w`: sums, divided by the real cell count `rows * (w1 - w0)`.
fn avg_along_w<T: Element>(src: &[T], orow: &mut [T], win: &[(usize, usize)], c: usize, rows: usize) {
    if c == 1 {
        for (o, &(w0, w1)) in orow.iter_mut().zip(win) {
            let mut a = src[w0];
            for &v in &src[w0 + 1..w1] {
                a += v;
            }
            *o = a / count::<T>(rows * (w1 - w0));
        }
        return;
    }
    for (cell, &(w0, w1)) in orow.chunks_exact_mut(c).zip(win) {
        cell.copy_from_slice(&src[w0 * c..][..c]);
        for w in w0 + 1..w1 {
            add_into(cell, &src[w * c..][..c]);
        }
        let n = count::<T>(rows * (w1 - w0));
        for a in cell.iter_mut() {
            *a /= n;
        }
    }
}

#[inline(always)]
fn count<T: Element>(n: usize) -> T {
    T::from_usize(n).unwrap_or_else(T::infinity)
}

/// Max or average pooling; output of shape `(batch, *out_spatial, channels)`.
pub fn pool_forward<T: Element>(x: &[T], plan: &PoolPlan) -> Result<Vec<T>> {
    let g = Geo::new(plan);
    check_len("x", x.len(), g.in_len(), plan, &plan.in_shape())?;
    let mut out = try_zeros::<T>(&plan.out_shape(), "the pooled output")?;
    let (ro, c, kind) = (g.row_out(), g.c, plan.kind);
    if ro == 0 {
        return Ok(out);
    }
    let pairs = g.win[2].iter().enumerate().take_while(|&(i, &w)| w == (2 * i, 2 * i + 2)).count();
    out.par_chunks_mut(ro)
        .enumerate()
        .with_min_len(g.min_rows(g.row_in()))
        .for_each_init(Vec::new, |tmp, (r, orow)| {
            let (b, od, oh) = g.split_out_row(r);
            let (dw, hw) = (g.win[0][od], g.win[1][oh]);
            let src = reduce_rows(x, &g, kind, b, dw, hw, tmp);
            match kind {
                PoolKind::Max => max_along_w(src, orow, &g.win[2], c, pairs),
                PoolKind::Avg => avg_along_w(src, orow, &g.win[2], c, (dw.1 - dw.0) * (hw.1 - hw.0)),
            }
        });
    Ok(out)
}

/// One output row of [`max_pool_forward_argmax`]: every window cell's channels are
/// compared with selects, not branches, so the compiler vectorises the channel loop.
#[inline(always)]
fn argmax_row_body<T: Element>(x: &[T], g: &Geo, r: usize, orow: &mut [T], irow: &mut [u32]) {
    let c = g.c;
    let (b, od, oh) = g.split_out_row(r);
    let ((d0, d1), (h0, h1)) = (g.win[0][od], g.win[1][oh]);
    let cells = orow.chunks_exact_mut(c).zip(irow.chunks_exact_mut(c));
    for ((vcell, icell), &(w0, w1)) in cells.zip(&g.win[2]) {
        // Blocks of BLOCK channels, each kept in registers over the whole window (a
        // store and reload per window cell stalls on store forwarding); then the tail.
        const BLOCK: usize = 16;
        let mut c0 = 0;
        while c0 < c {
            let n = BLOCK.min(c - c0);
            if n == BLOCK {
                let mut bv = [T::zero(); BLOCK];
                let mut bi = [0u32; BLOCK];
                window_max::<T, BLOCK>(x, g, b, (d0, d1), (h0, h1), (w0, w1), c0, &mut bv, &mut bi);
                vcell[c0..c0 + BLOCK].copy_from_slice(&bv);
                icell[c0..c0 + BLOCK].copy_from_slice(&bi);
            } else {
                for k in c0..c {
                    let mut bv = [T::zero(); 1];
                    let mut bi = [0u32; 1];
                    window_max::<T, 1>(x, g, b, (d0, d1), (h0, h1), (w0, w1), k, &mut bv, &mut bi);
                    vcell[k] = bv[0];
                    icell[k] = bi[0];
                }
            }
            c0 += n;
        }
    }
}

/// The maximum and its flat index over one window, for channels `c0 .. c0 + N`: the
/// first maximum in C order, the first NaN once one is seen.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn window_max<T: Element, const N: usize>(
    x: &[T],
    g: &Geo,
    b: usize,
    (d0, d1): (usize, usize),
    (h0, h1): (usize, usize),
    (w0, w1): (usize, usize),
    c0: usize,
    bv: &mut [T; N],
    bi: &mut [u32; N],
) {
    let c = g.c;
    let mut first = true;
    for d in d0..d1 {
        for h in h0..h1 {
            let row = g.in_row(b, d, h);
            for w in w0..w1 {
                let base = row + w * c + c0;
                let src: &[T; N] = x[base..base + N].try_into().unwrap();
                if first {
                    *bv = *src;
                    for (k, i) in bi.iter_mut().enumerate() {
                        *i = (base + k) as u32;
                    }
                    first = false;
                    continue;
                }
                let base = base as u32;
                for k in 0..N {
                    let (old, v) = (bv[k], src[k]);
                    let take = v > old || (v != v && old == old);
                    bv[k] = if take { v } else { old };
                    bi[k] = if take { base + k as u32 } else { bi[k] };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn argmax_row_avx2<T: Element>(x: &[T], g: &Geo, r: usize, orow: &mut [T], irow: &mut [u32]) {
    argmax_row_body(x, g, r, orow, irow)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn argmax_row_avx512<T: Element>(x: &[T], g: &Geo, r: usize, orow: &mut [T], irow: &mut [u32]) {
    argmax_row_body(x, g, r, orow, irow)
}

fn argmax_row<T: Element>(x: &[T], g: &Geo, r: usize, orow: &mut [T], irow: &mut [u32]) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::cpu::simd::{level, Level};
        match level() {
            // SAFETY: the CPU has the path's instruction set (level() never exceeds it).
            Level::Avx512 => return unsafe { argmax_row_avx512(x, g, r, orow, irow) },
            Level::Avx2 => return unsafe { argmax_row_avx2(x, g, r, orow, irow) },
            Level::Portable => {}
        }
    }
    argmax_row_body(x, g, r, orow, irow)
}

/// Max pooling that also returns, per output element, the flat index into `x` of the
/// chosen cell: the first maximum in C order on ties, the first NaN if the window holds
/// one. Indices are 32-bit, so `x` may hold at most 2^32 elements.
pub fn max_pool_forward_argmax<T: Element>(x: &[T], plan: &PoolPlan) -> Result<(Vec<T>, Vec<u32>)> {
    let g = Geo::new(plan);
    check_len("x", x.len(), g.in_len(), plan, &plan.in_shape())?;
    if x.len() as u64 > 1u64 << 32 {
        return Err(Error::Value(format!(
            "max pooling with argmax indices supports inputs of at most 2^32 elements, got shape {:?}",
            plan.in_shape()
        )));
    }
    let n = checked_numel(&plan.out_shape())?;
    // Uninitialised buffers, each row zeroed by the worker that then fills it (in its
    // cache): no single-threaded memset of the whole output first.
    let mut out = try_uninit::<T>(n, "the pooled output")?;
    let mut idx = try_uninit::<u32>(n, "the argmax indices")?;
    let ro = g.row_out();
    if ro > 0 {
        out.par_chunks_mut(ro)
            .zip(idx.par_chunks_mut(ro))
            .enumerate()
            .with_min_len(g.min_rows(ro * 4))
            .for_each(|(r, (orow, irow))| {
                let orow = init_zero(orow, T::zero());
                let irow = init_zero(irow, 0u32);
                argmax_row(x, &g, r, orow, irow)
            });
    }
    // SAFETY: with ro > 0 every row was initialised above; with ro == 0 there are no
    // elements (n = rows * ro).
    Ok(unsafe { (assume_init_vec(out), assume_init_vec(idx)) })
}

/// Fill an uninitialised slice with `zero` and hand it back initialised.
fn init_zero<T: Copy>(s: &mut [MaybeUninit<T>], zero: T) -> &mut [T] {
    s.fill(MaybeUninit::new(zero));
    // SAFETY: every element was just written; MaybeUninit<T> has T's layout.
    unsafe { &mut *(s as *mut [MaybeUninit<T>] as *mut [T]) }
}

/// Gradient of max pooling: `dx[argmax[i]] += dy[i]`, `dx` of `x_len` zeros otherwise.
pub fn max_pool_backward<T: Element>(dy: &[T], argmax: &[u32], x_len: usize) -> Result<Vec<T>> {
    max_pool_backward_batched(dy, argmax, x_len, 1)
}

/// [`max_pool_backward`] for a batch of `batch` images, in parallel over the images:
/// pooling windows never cross images, so image `b`'s outputs scatter only into image
/// `b`'s part of `dx` (an index outside it is an error).
pub fn max_pool_backward_batched<T: Element>(dy: &[T], argmax: &[u32], x_len: usize, batch: usize) -> Result<Vec<T>> {
    if batch > 1 && x_len % batch == 0 && dy.len() % batch == 0 && dy.len() == argmax.len() {
        let (img, oimg) = (x_len / batch, dy.len() / batch);
        if img == 0 || oimg == 0 {
            return try_zeros::<T>(&[x_len], "the max pooling gradient");
        }
        // Each image's part is zeroed by the worker that scatters into it, while it is
        // in that worker's cache (no whole-buffer memset first).
        let mut dx = try_uninit::<T>(x_len, "the max pooling gradient")?;
        dx.par_chunks_mut(img).zip(dy.par_chunks(oimg).zip(argmax.par_chunks(oimg))).enumerate().try_for_each(
            |(b, (dxi, (dyi, ai)))| -> Result<()> {
                let dxi = init_zero(dxi, T::zero());
                let base = b * img;
                for (&g, &i) in dyi.iter().zip(ai) {
                    match dxi.get_mut((i as usize).wrapping_sub(base)) {
                        Some(d) => *d += g,
                        None => {
                            return Err(Error::Value(format!(
                                "max pooling backward: argmax index {i} of image {b} lies outside that image \
                                 (elements {base}..{})",
                                base + img
                            )))
                        }
                    }
                }
                Ok(())
            },
        )?;
        // SAFETY: x_len = batch * img, so the chunks of `img` cover dx, and each was
        // initialised by init_zero before anything else (an error returns before this).
        return Ok(unsafe { assume_init_vec(dx) });
    }
    max_pool_backward_sequential(dy, argmax, x_len)
}

fn max_pool_backward_sequential<T: Element>(dy: &[T], argmax: &[u32], x_len: usize) -> Result<Vec<T>> {
    if dy.len() != argmax.len() {
        return Err(Error::Value(format!(
            "max pooling backward: dy has {} elements but argmax has {}",
            dy.len(),
            argmax.len()
        )));
    }
    let mut dx = try_zeros::<T>(&[x_len], "the max pooling gradient")?;
    for (&g, &i) in dy.iter().zip(argmax) {
        match dx.get_mut(i as usize) {
            Some(d) => *d += g,
            None => {
                return Err(Error::Value(format!(
                    "max pooling backward: argmax index {i} out of range for an input of {x_len} elements"
                )))
            }
        }
    }
    Ok(dx)
}

/// Output indices `o` (a range) whose window on an axis covers input index `i`.
fn covering(win: &[(usize, usize)], i: usize) -> std::ops::Range<usize> {
    // Window starts and ends are non-decreasing in `o`: binary search both ends.
    let lo = win.partition_point(|&(_, e)| e <= i);
    let hi = win.partition_point(|&(s, _)| s <= i);
    lo..hi.max(lo)
}

/// Gradient of average pooling: each output's `dy` spread evenly over the real cells
/// of its window. Output of shape `(batch, *spatial, channels)`.
pub fn avg_pool_backward<T: Element>(dy: &[T], plan: &PoolPlan) -> Result<Vec<T>> {
    let g = Geo::new(plan);
    check_len("dy", dy.len(), g.out_len(), plan, &plan.out_shape())?;
    let mut dx = try_zeros::<T>(&plan.in_shape(), "the average pooling gradient")?;
    let (ri, ro, c) = (g.row_in(), g.row_out(), g.c);
    if ri == 0 {
        return Ok(dx);
    }
    dx.par_chunks_mut(ri)
        .enumerate()
        .with_min_len(g.min_rows(ri))
        .for_each(|(r, drow)| {
            let (b, d, h) = (r / (g.n[0] * g.n[1]), (r / g.n[1]) % g.n[0], r % g.n[1]);
            for od in covering(&g.win[0], d) {
                let (d0, d1) = g.win[0][od];
                for oh in covering(&g.win[1], h) {
                    let (h0, h1) = g.win[1][oh];
                    let rows = (d1 - d0) * (h1 - h0);
                    let dyrow = &dy[((b * g.o[0] + od) * g.o[1] + oh) * ro..][..ro];
                    for (gcell, &(w0, w1)) in dyrow.chunks_exact(c).zip(&g.win[2]) {
                        let n = count::<T>(rows * (w1 - w0));
                        for w in w0..w1 {
                            for (a, &gv) in drow[w * c..][..c].iter_mut().zip(gcell) {
                                *a += gv / n;
                            }
                        }
                    }
                }
            }
        });
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::pool::Padding;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        }
    }

    fn example() -> Vec<f64> {
        vec![29., 15., 28., 184., 0., 100., 70., 38., 12., 12., 7., 2., 12., 12., 45., 6.]
    }

    #[test]
    fn worked_examples() {
        let p = PoolPlan::new(PoolKind::Max, 1, &[4, 4], 1, &[2, 2], &[2, 2], Padding::Valid).unwrap();
        assert_eq!(pool_forward(&example(), &p).unwrap(), vec![100., 184., 12., 45.]);
        let xf: Vec<f32> = example().iter().map(|&v| v as f32).collect();
        assert_eq!(pool_forward(&xf, &p).unwrap(), vec![100f32, 184., 12., 45.]);
        let (v, i) = max_pool_forward_argmax(&example(), &p).unwrap();
        assert_eq!(v, vec![100., 184., 12., 45.]);
        assert_eq!(i, vec![5, 3, 8, 14]); // first max on the tie of 12s
        let mut x = example();
        x[0] = 31.;
        let p = PoolPlan::new(PoolKind::Avg, 1, &[4, 4], 1, &[2, 2], &[2, 2], Padding::Valid).unwrap();
        assert_eq!(pool_forward(&x, &p).unwrap(), vec![36.5, 80., 12., 15.]);
    }

    /// Straightforward N-D reference: every output element walks its unclipped window
    /// and skips padded cells.
    fn naive(x: &[f64], p: &PoolPlan) -> Vec<f64> {
        let nd = p.ndim();
        let oshape = p.out_shape();
        let total: usize = oshape.iter().product();
        let mut out = vec![0.0; total];
        let in_strides: Vec<usize> = {
            let s = p.in_shape();
            let mut st = vec![1; s.len()];
            for a in (0..s.len() - 1).rev() {
                st[a] = st[a + 1] * s[a + 1];
            }
            st
        };
        for (flat, o) in out.iter_mut().enumerate() {
            let mut rem = flat;
            let mut oi = vec![0; nd + 2];
            for a in (0..nd + 2).rev() {
                oi[a] = rem % oshape[a];
                rem /= oshape[a];
            }
            let (b, ch) = (oi[0], oi[nd + 1]);
            let cells: usize = p.pool.iter().product();
            let (mut mx, mut sum, mut cnt, mut nan) = (f64::NEG_INFINITY, 0.0, 0usize, false);
            for k in 0..cells {
                let mut kr = k;
                let mut off = b * in_strides[0] + ch;
                let mut inside = true;
                for a in (0..nd).rev() {
                    let kk = kr % p.pool[a];
                    kr /= p.pool[a];
                    let i = (oi[a + 1] * p.strides[a] + kk) as isize - p.pad_before[a] as isize;
                    if i < 0 || i >= p.spatial[a] as isize {
                        inside = false;
                        break;
                    }
                    off += i as usize * in_strides[a + 1];
                }
                if inside {
                    let v = x[off];
                    nan |= v.is_nan();
                    mx = mx.max(v);
                    sum += v;
                    cnt += 1;
                }
            }
            assert!(cnt > 0);
            *o = match p.kind {
                PoolKind::Max if nan => f64::NAN,
                PoolKind::Max => mx,
                PoolKind::Avg => sum / cnt as f64,
            };
        }
        out
    }

    fn random_plan(rng: &mut Rng, kind: PoolKind) -> PoolPlan {
        loop {
            let nd = 1 + rng.below(3);
            let spatial: Vec<usize> = (0..nd).map(|_| 1 + rng.below(if nd == 3 { 6 } else { 11 })).collect();
            let pool: Vec<usize> = (0..nd).map(|_| 1 + rng.below(4)).collect();
            let strides: Vec<usize> = (0..nd).map(|_| 1 + rng.below(4)).collect();
            let padding = if rng.below(2) == 0 { Padding::Valid } else { Padding::Same };
            let batch = 1 + rng.below(3);
            let channels = [1, 1, 2, 3, 5, 8][rng.below(6)];
            if let Ok(p) = PoolPlan::new(kind, batch, &spatial, channels, &pool, &strides, padding) {
                return p;
            }
        }
    }

    fn close(a: &[f64], b: &[f64], tol: f64) -> bool {
        a.len() == b.len()
            && a.iter().zip(b).all(|(x, y)| (x.is_nan() && y.is_nan()) || (x - y).abs() <= tol * (1.0 + y.abs()))
    }

    #[test]
    fn matches_naive_reference() {
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for t in 0..600 {
            let kind = if t % 2 == 0 { PoolKind::Max } else { PoolKind::Avg };
            let p = random_plan(&mut rng, kind);
            let n: usize = p.in_shape().iter().product();
            let mut x: Vec<f64> = (0..n).map(|_| rng.unit() * 10.0).collect();
            if t % 7 == 0 {
                let k = rng.below(n);
                x[k] = f64::NAN;
            }
            let want = naive(&x, &p);
            let got = pool_forward(&x, &p).unwrap();
            assert!(close(&got, &want, 1e-12), "{p:?}\n got {got:?}\nwant {want:?}");
            let xf: Vec<f32> = x.iter().map(|&v| v as f32).collect();
            let gotf: Vec<f64> = pool_forward(&xf, &p).unwrap().iter().map(|&v| v as f64).collect();
            assert!(close(&gotf, &want, 1e-5), "f32 {p:?}");
            if kind == PoolKind::Max {
                let (v, idx) = max_pool_forward_argmax(&x, &p).unwrap();
                assert!(close(&v, &want, 0.0), "argmax values {p:?}");
                for (&vi, &ii) in v.iter().zip(&idx) {
                    let xi = x[ii as usize];
                    assert!(xi == vi || (xi.is_nan() && vi.is_nan()));
                }
            }
        }
    }

    #[test]
    fn same_average_counts_only_real_cells() {
        // 1-D, n=5, pool 3, stride 1, 'same': pad 1 before, 1 after.
        let p = PoolPlan::new(PoolKind::Avg, 1, &[5], 1, &[3], &[1], Padding::Same).unwrap();
        let x = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(pool_forward(&x, &p).unwrap(), vec![1.5, 2.0, 3.0, 4.0, 4.5]);
        // 2-D 3x3, pool 2, stride 2, 'same': out 2x2, pad 0 before, 1 after.
        let p = PoolPlan::new(PoolKind::Avg, 1, &[3, 3], 1, &[2, 2], &[2, 2], Padding::Same).unwrap();
        let x: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(pool_forward(&x, &p).unwrap(), vec![3.0, 4.5, 7.5, 9.0]);
        // Max ignores padding even when every real value is negative.
        let p = PoolPlan::new(PoolKind::Max, 1, &[3, 3], 1, &[2, 2], &[2, 2], Padding::Same).unwrap();
        let x: Vec<f64> = (1..=9).map(|v| -f64::from(v)).collect();
        assert_eq!(pool_forward(&x, &p).unwrap(), vec![-1.0, -3.0, -7.0, -9.0]);
    }

    #[test]
    fn max_propagates_nan() {
        let p = PoolPlan::new(PoolKind::Max, 1, &[4], 2, &[2], &[2], Padding::Valid).unwrap();
        let x = [1.0, f64::NAN, f64::NAN, 0.0, 3.0, 4.0, 5.0, 6.0];
        let y = pool_forward(&x, &p).unwrap();
        assert!(y[0].is_nan() && y[1].is_nan());
        assert_eq!(&y[2..], &[5.0, 6.0]);
        let (v, i) = max_pool_forward_argmax(&x, &p).unwrap();
        assert!(v[0].is_nan() && v[1].is_nan());
        assert_eq!(i, vec![2, 1, 6, 7]);
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn backward_matches_finite_differences() {
        let mut rng = Rng(12345);
        for t in 0..200 {
            let kind = if t % 2 == 0 { PoolKind::Max } else { PoolKind::Avg };
            let p = random_plan(&mut rng, kind);
            let n: usize = p.in_shape().iter().product();
            if n > 400 {
                continue;
            }
            // Distinct values well apart, so no max is within eps of a tie.
            let mut x: Vec<f64> = (0..n).map(|i| i as f64 * 0.37).collect();
            for i in (1..n).rev() {
                x.swap(i, rng.below(i + 1));
            }
            let m: usize = p.out_shape().iter().product();
            let wts: Vec<f64> = (0..m).map(|_| rng.unit()).collect();
            let dx = match kind {
                PoolKind::Max => {
                    let (_, idx) = max_pool_forward_argmax(&x, &p).unwrap();
                    max_pool_backward(&wts, &idx, n).unwrap()
                }
                PoolKind::Avg => avg_pool_backward(&wts, &p).unwrap(),
            };
            let eps = 1e-4;
            for i in 0..n {
                let mut xp = x.clone();
                xp[i] += eps;
                let mut xm = x.clone();
                xm[i] -= eps;
                let fd = (dot(&pool_forward(&xp, &p).unwrap(), &wts) - dot(&pool_forward(&xm, &p).unwrap(), &wts))
                    / (2.0 * eps);
                assert!((fd - dx[i]).abs() < 1e-7, "{p:?} i={i} fd={fd} dx={}", dx[i]);
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let p = PoolPlan::new(PoolKind::Max, 1, &[4, 4], 1, &[2, 2], &[2, 2], Padding::Valid).unwrap();
        assert!(pool_forward(&[0.0f64; 15], &p).is_err());
        assert!(max_pool_forward_argmax(&[0.0f32; 17], &p).is_err());
        let pa = PoolPlan { kind: PoolKind::Avg, ..p.clone() };
        assert!(avg_pool_backward(&[0.0f64; 3], &pa).is_err());
        assert!(max_pool_backward(&[1.0f64; 2], &[0], 16).is_err());
        assert!(max_pool_backward(&[1.0f64], &[16], 16).is_err());
        assert_eq!(max_pool_backward(&[1.0f64, 2.0], &[3, 3], 4).unwrap(), vec![0.0, 0.0, 0.0, 3.0]);
    }

    #[test]
    fn large_image_runs_in_crate_pool() {
        let n = 2048;
        let x: Vec<f32> = (0..n * n).map(|i| ((i * 7919) % 1000) as f32).collect();
        let p = PoolPlan::new(PoolKind::Max, 1, &[n, n], 1, &[2, 2], &[2, 2], Padding::Valid).unwrap();
        let pa = PoolPlan { kind: PoolKind::Avg, ..p.clone() };
        let y = crate::threads::install(|| pool_forward(&x, &p)).unwrap().unwrap();
        let ya = crate::threads::install(|| pool_forward(&x, &pa)).unwrap().unwrap();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let (want, wanta) = (naive(&x64, &p), naive(&x64, &pa));
        assert!(y.iter().zip(&want).all(|(&a, &b)| a as f64 == b));
        assert!(ya.iter().zip(&wanta).all(|(&a, &b)| (a as f64 - b).abs() < 1e-3));
        let reps = 20;
        for (name, plan) in [("max", &p), ("avg", &pa)] {
            let t = std::time::Instant::now();
            for _ in 0..reps {
                std::hint::black_box(crate::threads::install(|| pool_forward(&x, plan)).unwrap().unwrap());
            }
            eprintln!(
                "pool_forward {name} 2048x2048 f32 2x2: {:.2} ms/call on {} threads",
                t.elapsed().as_secs_f64() * 1e3 / reps as f64,
                crate::threads::get_num_threads()
            );
        }
    }

    #[test]
    fn batched_max_backward_equals_sequential() {
        use crate::ops::pool::{Padding, PoolKind, PoolPlan};
        for (pool, strides, pad) in [([2, 2], [2, 2], Padding::Valid), ([3, 2], [1, 2], Padding::Same)] {
            let plan = PoolPlan::new(PoolKind::Max, 3, &[7, 6], 2, &pool, &strides, pad).unwrap();
            let n: usize = plan.in_shape().iter().product();
            let x: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
            let (y, idx) = max_pool_forward_argmax(&x, &plan).unwrap();
            let dy: Vec<f64> = (0..y.len()).map(|i| (i % 13) as f64 + 0.5).collect();
            let a = max_pool_backward(&dy, &idx, n).unwrap();
            let b = max_pool_backward_batched(&dy, &idx, n, 3).unwrap();
            assert_eq!(a, b);
        }
        // An index outside its image is an error, not a write into another image.
        assert!(max_pool_backward_batched(&[1.0f64, 1.0], &[0, 0], 4, 2).is_err());
    }
}
