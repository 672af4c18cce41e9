//! Fused group / layer normalization on the CPU (spec: `crate::ops::norm`): the forward
//! saves each group's mean and 1 / sqrt(var + eps); the backward gives dx, dgamma and
//! dbeta in one pass over each row (rayon over fixed chunks of rows; the per-chunk
//! dgamma / dbeta partials are added in order, the same for any thread count).
//! Statistics accumulate in f64; the variance is the mean squared deviation (two passes).

use crate::element::Element;
use crate::error::{try_filled, Result};
use crate::ops::norm::NormPlan;
use rayon::prelude::*;

fn chunk_rows(p: &NormPlan) -> usize {
    // about 16K values per task, and at most 64 tasks' partials for the weight gradients
    (16384 / p.row_len().max(1)).max(p.rows.div_ceil(64)).max(1)
}

/// `(y, mean, rstd)`, the statistics of shape (rows, groups).
pub fn norm_forward<T: Element>(x: &[T], gamma: Option<&[T]>, beta: Option<&[T]>, p: &NormPlan)
                                -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
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
            let mut sums = vec![0.0f64; g];
            let mut scale = vec![T::zero(); c];
            for (r, yr) in yc.chunks_exact_mut(rl).enumerate() {
                let row = ci * cr + r;
                let xr = &x[row * rl..(row + 1) * rl];
                sums.fill(0.0);
                for px in xr.chunks_exact(c) {
                    for (s, grp) in sums.iter_mut().zip(px.chunks_exact(cg)) {
                        *s += grp.iter().map(|v| v.to_f64().unwrap_or(f64::NAN)).sum::<f64>();
                    }
                }
                let m: Vec<f64> = sums.iter().map(|s| s / k).collect();
                sums.fill(0.0);
                for px in xr.chunks_exact(c) {
                    for ((s, grp), &mg) in sums.iter_mut().zip(px.chunks_exact(cg)).zip(&m) {
                        *s += grp.iter().map(|v| { let d = v.to_f64().unwrap_or(f64::NAN) - mg; d * d }).sum::<f64>();
                    }
                }
                for gi in 0..g {
                    let rs = 1.0 / (sums[gi] / k + p.epsilon).sqrt();
                    mc[r * g + gi] = T::from_f64_lossy(m[gi]);
                    rc[r * g + gi] = T::from_f64_lossy(rs);
                    for j in 0..cg {
                        let ch = gi * cg + j;
                        scale[ch] = rc[r * g + gi] * gamma.map_or(T::one(), |gm| gm[ch]);
                    }
                }
                for (yp, xp) in yr.chunks_exact_mut(c).zip(xr.chunks_exact(c)) {
                    for ch in 0..c {
                        let v = (xp[ch] - mc[r * g + ch / cg]) * scale[ch];
                        yp[ch] = match beta { Some(b) => v + b[ch], None => v };
                    }
                }
            }
        });
    Ok((y, mean, rstd))
}

/// `(dx, dgamma, dbeta)` from dy and the forward's statistics (dx empty unless `need_dx`).
pub fn norm_backward<T: Element>(x: &[T], gamma: Option<&[T]>, dy: &[T], mean: &[T], rstd: &[T], p: &NormPlan,
                                 need_dx: bool) -> Result<(Vec<T>, Vec<T>, Vec<T>)> {
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
    let mut dx = try_filled(if need_dx { x.len() } else { 0 }, T::zero(), "the normalization's dx")?;
    let k = p.group_len() as f64;
    let cr = chunk_rows(p);
    let nchunks = p.rows.div_ceil(cr);
    let work = |ci: usize, dxc: Option<&mut [T]>| -> Vec<T> {
        // partial dgamma (0..c) and dbeta (c..2c) of this chunk's rows
        let mut part = vec![T::zero(); 2 * c];
        let mut dxc = dxc;
        let mut s1 = vec![0.0f64; g];
        let mut s2 = vec![0.0f64; g];
        for row in ci * cr..((ci + 1) * cr).min(p.rows) {
            let xr = &x[row * rl..(row + 1) * rl];
            let dr = &dy[row * rl..(row + 1) * rl];
            let (mr, rr) = (&mean[row * g..(row + 1) * g], &rstd[row * g..(row + 1) * g]);
            s1.fill(0.0);
            s2.fill(0.0);
            for (xp, dp) in xr.chunks_exact(c).zip(dr.chunks_exact(c)) {
                for ch in 0..c {
                    let gi = ch / cg;
                    let xh = (xp[ch] - mr[gi]) * rr[gi];
                    part[ch] += dp[ch] * xh;
                    part[c + ch] += dp[ch];
                    let dxh = dp[ch] * gamma.map_or(T::one(), |gm| gm[ch]);
                    s1[gi] += dxh.to_f64().unwrap_or(f64::NAN);
                    s2[gi] += (dxh * xh).to_f64().unwrap_or(f64::NAN);
                }
            }
            if let Some(out) = dxc.as_deref_mut() {
                let a: Vec<T> = s1.iter().map(|v| T::from_f64_lossy(v / k)).collect();
                let b: Vec<T> = s2.iter().map(|v| T::from_f64_lossy(v / k)).collect();
                let base = (row - ci * cr) * rl;
                let o = &mut out[base..base + rl];
                for ((op, xp), dp) in o.chunks_exact_mut(c).zip(xr.chunks_exact(c)).zip(dr.chunks_exact(c)) {
                    for ch in 0..c {
                        let gi = ch / cg;
                        let xh = (xp[ch] - mr[gi]) * rr[gi];
                        let dxh = dp[ch] * gamma.map_or(T::one(), |gm| gm[ch]);
                        op[ch] = rr[gi] * (dxh - a[gi] - xh * b[gi]);
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
