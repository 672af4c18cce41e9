//! Fused group / layer normalization on the CPU (spec: `crate::ops::norm`): the forward
//! saves each group's mean and 1 / sqrt(var + eps); the backward gives dx, dgamma and
//! dbeta in one pass over each row (rayon over fixed chunks of rows; the per-chunk
//! dgamma / dbeta partials are added in order, the same for any thread count).
//! Statistics accumulate in f64; the variance is the mean squared deviation (two passes).

use crate::element::Element;
use crate::error::{try_filled, Result};
use crate::ops::norm::NormPlan;
use rayon::prelude::*;

/// `s` as a float32 slice when `T` is f32 (the hand-vectorised rows), else None.
#[inline(always)]
fn f32s<T: Element>(s: &[T]) -> Option<&[f32]> {
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() {
        // SAFETY: T is f32 (same type, same layout).
        Some(unsafe { std::slice::from_raw_parts(s.as_ptr() as *const f32, s.len()) })
    } else {
        None
    }
}

/// A float32 vector as `Vec<T>` when `T` is f32 (only called then).
fn from_f32<T: Element>(v: Vec<f32>) -> Vec<T> {
    assert!(std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>());
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: T is f32 (checked above): same layout, same allocation.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}

/// Whether the float32 rows run hand-vectorised (AVX2 + FMA).
fn fast_f32<T: Element>() -> bool {
    cfg!(target_arch = "x86_64") && std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && crate::cpu::simd::has_avx2_fma()
}

fn chunk_rows(p: &NormPlan) -> usize {
    // about 16K values per task, and at most 64 tasks' partials for the weight gradients
    (16384 / p.row_len().max(1)).max(p.rows.div_ceil(64)).max(1)
}

/// Per-channel copies of a row's group statistics (so the channel loops need no division).
#[inline(always)]
fn spread<T: Element>(per_group: &[T], cg: usize, out: &mut [T]) {
    for (o, v) in out.chunks_exact_mut(cg).zip(per_group) {
        o.fill(*v);
    }
}

/// `sum f(i)` over `0..n` in f64 with eight interleaved partial sums (a reduction the
/// compiler can vectorize; the order is fixed, so the result is too).
#[inline(always)]
fn lanes_sum(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut acc = [0.0f64; 8];
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        for (l, a) in acc.iter_mut().enumerate() {
            *a += f(i + l);
        }
        i += 8;
    }
    for (l, a) in acc.iter_mut().enumerate().take(n - full) {
        *a += f(full + l);
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// One row of one pixel (layer normalization, or groups of a single position): each group
/// is a contiguous run, normalized in place with no per-channel buffers.
#[inline(always)]
fn row1_forward<T: Element>(xr: &[T], yr: &mut [T], gm: &[T], bt: &[T], cg: usize, eps: f64, mc: &mut [T],
                            rc: &mut [T]) {
    let k = cg as f64;
    for (gi, (xs, ys)) in xr.chunks_exact(cg).zip(yr.chunks_exact_mut(cg)).enumerate() {
        let f = |i: usize| xs[i].to_f64().unwrap_or(f64::NAN);
        let m = lanes_sum(cg, f) / k;
        let q = lanes_sum(cg, |i| {
            let d = f(i) - m;
            d * d
        });
        let (mt, rt) = (T::from_f64_lossy(m), T::from_f64_lossy(1.0 / (q / k + eps).sqrt()));
        mc[gi] = mt;
        rc[gi] = rt;
        let (g, b) = (&gm[gi * cg..(gi + 1) * cg], &bt[gi * cg..(gi + 1) * cg]);
        for (((o, &xv), &gv), &bv) in ys.iter_mut().zip(xs).zip(g).zip(b) {
            *o = (xv - mt) * (rt * gv) + bv;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn row1_forward_avx2<T: Element>(xr: &[T], yr: &mut [T], gm: &[T], bt: &[T], cg: usize, eps: f64,
                                        mc: &mut [T], rc: &mut [T]) {
    row1_forward(xr, yr, gm, bt, cg, eps, mc, rc)
}

/// `(y, mean, rstd)`, the statistics of shape (rows, groups).
pub fn norm_forward<T: Element>(x: &[T], gamma: Option<&[T]>, beta: Option<&[T]>, p: &NormPlan)
                                -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
    let ones = vec![T::one(); c];
    let zeros = vec![T::zero(); c];
    let gm = gamma.unwrap_or(&ones);
    let bt = beta.unwrap_or(&zeros);
    #[cfg(target_arch = "x86_64")]
    if fast_f32::<T>() {
        let (y, m, r) = crate::cpu::norm_f32::forward(f32s(x).unwrap(), f32s(gm).unwrap(), f32s(bt).unwrap(), p,
                                                       chunk_rows(p))?;
        return Ok((from_f32(y), from_f32(m), from_f32(r)));
    }
    let mut y = try_filled(x.len(), T::zero(), "the normalization's output")?;
    let mut mean = try_filled(p.rows * g, T::zero(), "the normalization's means")?;
    let mut rstd = try_filled(p.rows * g, T::zero(), "the normalization's scales")?;
    let k = p.group_len() as f64;
    let cr = chunk_rows(p);
    y.par_chunks_mut(rl * cr)
        .zip(mean.par_chunks_mut(g * cr))
        .zip(rstd.par_chunks_mut(g * cr))
        .enumerate()
        .for_each(|(ci, ((yc, mc), rc))| {
            if p.pixels == 1 {
                let fast = crate::cpu::simd::has_avx2_fma();
                for (r, yr) in yc.chunks_exact_mut(rl).enumerate() {
                    let row = ci * cr + r;
                    let xr = &x[row * rl..(row + 1) * rl];
                    let (mr, rr) = (&mut mc[r * g..(r + 1) * g], &mut rc[r * g..(r + 1) * g]);
                    #[cfg(target_arch = "x86_64")]
                    if fast {
                        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                        unsafe { row1_forward_avx2(xr, yr, gm, bt, cg, p.epsilon, mr, rr) };
                        continue;
                    }
                    let _ = fast;
                    row1_forward(xr, yr, gm, bt, cg, p.epsilon, mr, rr);
                }
                return;
            }
            let mut sums = vec![0.0f64; g];
            let mut m = vec![0.0f64; g];
            let mut acc = vec![0.0f64; c];
            let mut mf = vec![0.0f64; c];
            let mut mean_c = vec![T::zero(); c];
            let mut scale = vec![T::zero(); c];
            for (r, yr) in yc.chunks_exact_mut(rl).enumerate() {
                let row = ci * cr + r;
                let xr = &x[row * rl..(row + 1) * rl];
                // per-channel sums over the pixels, then per group
                acc.fill(0.0);
                for px in xr.chunks_exact(c) {
                    for (a, v) in acc.iter_mut().zip(px) {
                        *a += v.to_f64().unwrap_or(f64::NAN);
                    }
                }
                for ((mg, s), grp) in m.iter_mut().zip(sums.iter_mut()).zip(acc.chunks_exact(cg)) {
                    *s = grp.iter().sum::<f64>();
                    *mg = *s / k;
                }
                acc.fill(0.0);
                for (gi, grp) in acc.chunks_exact_mut(cg).enumerate() {
                    grp.fill(m[gi]);
                }
                mf.copy_from_slice(&acc);
                acc.fill(0.0);
                for px in xr.chunks_exact(c) {
                    for ((a, v), &mv) in acc.iter_mut().zip(px).zip(&mf) {
                        let d = v.to_f64().unwrap_or(f64::NAN) - mv;
                        *a += d * d;
                    }
                }
                for gi in 0..g {
                    let var = acc[gi * cg..(gi + 1) * cg].iter().sum::<f64>() / k;
                    mc[r * g + gi] = T::from_f64_lossy(m[gi]);
                    rc[r * g + gi] = T::from_f64_lossy(1.0 / (var + p.epsilon).sqrt());
                }
                spread(&mc[r * g..(r + 1) * g], cg, &mut mean_c);
                spread(&rc[r * g..(r + 1) * g], cg, &mut scale);
                for (s, &gv) in scale.iter_mut().zip(gm) {
                    *s *= gv;
                }
                for (yp, xp) in yr.chunks_exact_mut(c).zip(xr.chunks_exact(c)) {
                    for ((((o, &xv), &mv), &sv), &bv) in yp.iter_mut().zip(xp).zip(&mean_c).zip(&scale).zip(bt) {
                        *o = (xv - mv) * sv + bv;
                    }
                }
            }
        });
    Ok((y, mean, rstd))
}

/// The backward of one one-pixel row: dx (if given) and the dgamma / dbeta partials.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row1_backward<T: Element>(xr: &[T], dr: &[T], gm: &[T], mr: &[T], rr: &[T], cg: usize, dg: &mut [T],
                             db: &mut [T], dx: Option<&mut [T]>) {
    let k = cg as f64;
    let mut dx = dx;
    for gi in 0..mr.len() {
        let span = gi * cg..(gi + 1) * cg;
        let (xs, ds, g) = (&xr[span.clone()], &dr[span.clone()], &gm[span.clone()]);
        let (m, r) = (mr[gi], rr[gi]);
        for (((&xv, &dv), dgv), dbv) in xs.iter().zip(ds).zip(&mut dg[span.clone()]).zip(&mut db[span.clone()]) {
            *dgv += dv * ((xv - m) * r);
            *dbv += dv;
        }
        let s1 = lanes_sum(cg, |i| (ds[i] * g[i]).to_f64().unwrap_or(f64::NAN));
        let s2 = lanes_sum(cg, |i| (ds[i] * g[i] * ((xs[i] - m) * r)).to_f64().unwrap_or(f64::NAN));
        if let Some(out) = dx.as_deref_mut() {
            let (a, b) = (T::from_f64_lossy(s1 / k), T::from_f64_lossy(s2 / k));
            for (((o, &xv), &dv), &gv) in out[span].iter_mut().zip(xs).zip(ds).zip(g) {
                let xh = (xv - m) * r;
                *o = r * (dv * gv - a - xh * b);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn row1_backward_avx2<T: Element>(xr: &[T], dr: &[T], gm: &[T], mr: &[T], rr: &[T], cg: usize, dg: &mut [T],
                                         db: &mut [T], dx: Option<&mut [T]>) {
    row1_backward(xr, dr, gm, mr, rr, cg, dg, db, dx)
}

/// `(dx, dgamma, dbeta)` from dy and the forward's statistics (dx empty unless `need_dx`).
pub fn norm_backward<T: Element>(x: &[T], gamma: Option<&[T]>, dy: &[T], mean: &[T], rstd: &[T], p: &NormPlan,
                                 need_dx: bool) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
    let ones = vec![T::one(); c];
    let gm = gamma.unwrap_or(&ones);
    let cr = chunk_rows(p);
    #[cfg(target_arch = "x86_64")]
    if fast_f32::<T>() {
        let (dx, dg, db) = crate::cpu::norm_f32::backward(f32s(x).unwrap(), f32s(gm).unwrap(), f32s(dy).unwrap(),
                                                          f32s(mean).unwrap(), f32s(rstd).unwrap(), p, cr, need_dx)?;
        return Ok((from_f32(dx), from_f32(dg), from_f32(db)));
    }
    let mut dx = try_filled(if need_dx { x.len() } else { 0 }, T::zero(), "the normalization's dx")?;
    let k = p.group_len() as f64;
    let nchunks = p.rows.div_ceil(cr);
    let work = |ci: usize, dxc: Option<&mut [T]>| -> Vec<T> {
        // partial dgamma (0..c) and dbeta (c..2c) of this chunk's rows
        let mut part = vec![T::zero(); 2 * c];
        let mut dxc = dxc;
        if p.pixels == 1 {
            let fast = crate::cpu::simd::has_avx2_fma();
            let (dg, db) = part.split_at_mut(c);
            for row in ci * cr..((ci + 1) * cr).min(p.rows) {
                let (xr, dr) = (&x[row * rl..(row + 1) * rl], &dy[row * rl..(row + 1) * rl]);
                let (mr, rr) = (&mean[row * g..(row + 1) * g], &rstd[row * g..(row + 1) * g]);
                let base = (row - ci * cr) * rl;
                let o = dxc.as_deref_mut().map(|d| &mut d[base..base + rl]);
                #[cfg(target_arch = "x86_64")]
                if fast {
                    // SAFETY: the CPU has AVX2 and FMA (checked at run time).
                    unsafe { row1_backward_avx2(xr, dr, gm, mr, rr, cg, dg, db, o) };
                    continue;
                }
                let _ = fast;
                row1_backward(xr, dr, gm, mr, rr, cg, dg, db, o);
            }
            return part;
        }
        let (mut mean_c, mut rstd_c) = (vec![T::zero(); c], vec![T::zero(); c]);
        let (mut s1, mut s2) = (vec![0.0f64; c], vec![0.0f64; c]);
        let (mut a, mut b) = (vec![T::zero(); c], vec![T::zero(); c]);
        for row in ci * cr..((ci + 1) * cr).min(p.rows) {
            let xr = &x[row * rl..(row + 1) * rl];
            let dr = &dy[row * rl..(row + 1) * rl];
            spread(&mean[row * g..(row + 1) * g], cg, &mut mean_c);
            spread(&rstd[row * g..(row + 1) * g], cg, &mut rstd_c);
            s1.fill(0.0);
            s2.fill(0.0);
            {
                let (dg, db) = part.split_at_mut(c);
                for (xp, dp) in xr.chunks_exact(c).zip(dr.chunks_exact(c)) {
                    for ch in 0..c {
                        let xh = (xp[ch] - mean_c[ch]) * rstd_c[ch];
                        dg[ch] += dp[ch] * xh;
                        db[ch] += dp[ch];
                        let dxh = dp[ch] * gm[ch];
                        s1[ch] += dxh.to_f64().unwrap_or(f64::NAN);
                        s2[ch] += (dxh * xh).to_f64().unwrap_or(f64::NAN);
                    }
                }
            }
            if let Some(out) = dxc.as_deref_mut() {
                for gi in 0..g {
                    let (t1, t2) = (s1[gi * cg..(gi + 1) * cg].iter().sum::<f64>(),
                                    s2[gi * cg..(gi + 1) * cg].iter().sum::<f64>());
                    a[gi * cg..(gi + 1) * cg].fill(T::from_f64_lossy(t1 / k));
                    b[gi * cg..(gi + 1) * cg].fill(T::from_f64_lossy(t2 / k));
                }
                let base = (row - ci * cr) * rl;
                let o = &mut out[base..base + rl];
                for ((op, xp), dp) in o.chunks_exact_mut(c).zip(xr.chunks_exact(c)).zip(dr.chunks_exact(c)) {
                    for ch in 0..c {
                        let xh = (xp[ch] - mean_c[ch]) * rstd_c[ch];
                        let dxh = dp[ch] * gm[ch];
                        op[ch] = rstd_c[ch] * (dxh - a[ch] - xh * b[ch]);
                    }
                }
            }
        }
        part
    };
    let parts: Vec<Vec<T>> = if need_dx {
        dx.par_chunks_mut(rl * cr).enumerate().map(|(ci, d)| work(ci, Some(d))).collect()
    } else {
        (0..nchunks).into_par_iter().map(|ci| work(ci, None)).collect()
    };
    let mut dg = vec![T::zero(); c];
    let mut db = vec![T::zero(); c];
    for part in parts {
        for ch in 0..c {
            dg[ch] += part[ch];
            db[ch] += part[c + ch];
        }
    }
    Ok((dx, dg, db))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_groups_have_zero_mean_and_unit_variance_and_dx_is_orthogonal() {
        let p = NormPlan::new(2 * 3 * 4, 2, 3, 2, 0.0).unwrap();
        let x: Vec<f64> = (0..24).map(|i| ((i * 7919) % 23) as f64 / 7.0).collect();
        let (y, _, _) = norm_forward(&x, None, None, &p).unwrap();
        for row in 0..2 {
            for gi in 0..2 {
                let vals: Vec<f64> = (0..3).flat_map(|s| (0..2).map(move |j| (s, j)))
                    .map(|(s, j)| y[row * 12 + s * 4 + gi * 2 + j]).collect();
                let m = vals.iter().sum::<f64>() / 6.0;
                let v = vals.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 6.0;
                assert!(m.abs() < 1e-12 && (v - 1.0).abs() < 1e-9);
            }
        }
        // a dy equal to a constant per group gives dx = 0 (the mean is removed)
        let (_, mean, rstd) = norm_forward(&x, None, None, &p).unwrap();
        let dy: Vec<f64> = (0..24).map(|i| if (i % 4) < 2 { 1.0 } else { -2.0 }).collect();
        let (dx, _, db) = norm_backward(&x, None, &dy, &mean, &rstd, &p, true).unwrap();
        assert!(dx.iter().all(|v| v.abs() < 1e-9), "{dx:?}");
        assert_eq!(db, vec![6.0, 6.0, -12.0, -12.0]);
    }
}
