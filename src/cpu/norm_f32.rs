//! The float32 rows of the fused group / layer normalization (`crate::cpu::norm`), hand-
//! vectorised with AVX2 + FMA: eight channels per vector, the statistics accumulated in
//! float64 (each float32 vector widened to two of four doubles).
//!
//! One row of `pixels` positions of `c` channels, groups of `cg` consecutive channels:
//! - `pixels == 1` (layer normalization): each group is a contiguous run; its mean and
//!   its mean squared deviation are two f64 sums over the run (in L1).
//! - `pixels > 1` (group normalization, channels last): one pass over the row gives each
//!   channel's sum and squared sum shifted by the channel's first value (no cancellation),
//!   combined per group as Chan et al.'s parallel variance; a second pass writes y.
//! The backward keeps per channel `A = sum dy` and `B = sum dy * xhat` (f64), from which
//! dgamma, dbeta and each group's two dx terms follow; a second pass writes dx.
//!
//! Only call these after checking the CPU has AVX2 and FMA.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

#[inline(always)]
unsafe fn lo(v: __m256) -> __m256d {
    _mm256_cvtps_pd(_mm256_castps256_ps128(v))
}

#[inline(always)]
unsafe fn hi(v: __m256) -> __m256d {
    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v))
}

#[inline(always)]
unsafe fn hsum(v: __m256d) -> f64 {
    let a: [f64; 4] = std::mem::transmute(v);
    (a[0] + a[2]) + (a[1] + a[3])
}

/// (sum (x - k), sum (x - k)^2) of a contiguous run in f64, shifted by its first value
/// `k` (one pass, no cancellation).
#[inline(always)]
unsafe fn run_moments(x: &[f32]) -> (f64, f64) {
    let n = x.len();
    let p = x.as_ptr();
    let k = _mm256_set1_ps(x[0]);
    let z = _mm256_setzero_pd();
    let (mut a0, mut a1, mut a2, mut a3) = (z, z, z, z);
    let (mut q0, mut q1, mut q2, mut q3) = (z, z, z, z);
    let mut i = 0;
    while i + 16 <= n {
        let (v0, v1) = (_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), k), _mm256_sub_ps(_mm256_loadu_ps(p.add(i + 8)), k));
        let (d0, d1, d2, d3) = (lo(v0), hi(v0), lo(v1), hi(v1));
        a0 = _mm256_add_pd(a0, d0);
        a1 = _mm256_add_pd(a1, d1);
        a2 = _mm256_add_pd(a2, d2);
        a3 = _mm256_add_pd(a3, d3);
        q0 = _mm256_fmadd_pd(d0, d0, q0);
        q1 = _mm256_fmadd_pd(d1, d1, q1);
        q2 = _mm256_fmadd_pd(d2, d2, q2);
        q3 = _mm256_fmadd_pd(d3, d3, q3);
        i += 16;
    }
    if i + 8 <= n {
        let v0 = _mm256_sub_ps(_mm256_loadu_ps(p.add(i)), k);
        let (d0, d1) = (lo(v0), hi(v0));
        a0 = _mm256_add_pd(a0, d0);
        a1 = _mm256_add_pd(a1, d1);
        q0 = _mm256_fmadd_pd(d0, d0, q0);
        q1 = _mm256_fmadd_pd(d1, d1, q1);
        i += 8;
    }
    let mut s = hsum(_mm256_add_pd(_mm256_add_pd(a0, a2), _mm256_add_pd(a1, a3)));
    let mut q = hsum(_mm256_add_pd(_mm256_add_pd(q0, q2), _mm256_add_pd(q1, q3)));
    let k = x[0];
    for &v in &x[i..] {
        let d = (v - k) as f64;
        s += d;
        q += d * d;
    }
    (s, q)
}

/// `v` clamped at 0 (rounding can take a variance just below), NaN kept.
#[inline(always)]
fn nonneg(v: f64) -> f64 {
    if v < 0.0 { 0.0 } else { v }
}

fn rstd(var: f64, eps: f64) -> f32 {
    (1.0 / (var + eps).sqrt()) as f32
}

/// `y[i] = (x[i] - m[i]) * s[i] + b[i]` over one pixel's channels (m, s, b per channel);
/// `y` points at `x.len()` writable values.
#[inline(always)]
unsafe fn affine(x: &[f32], y: *mut f32, m: &[f32], s: &[f32], b: &[f32]) {
    let n = x.len();
    let mut i = 0;
    while i + 8 <= n {
        let d = _mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), _mm256_loadu_ps(m.as_ptr().add(i)));
        let v = _mm256_fmadd_ps(d, _mm256_loadu_ps(s.as_ptr().add(i)), _mm256_loadu_ps(b.as_ptr().add(i)));
        _mm256_storeu_ps(y.add(i), v);
        i += 8;
    }
    for j in i..n {
        *y.add(j) = (x[j] - m[j]).mul_add(s[j], b[j]);
    }
}

/// Pixels per tile of the group-normalization sums (float32 partials over a tile).
const TILE: usize = 16;

/// The tiles of the group-normalization sums: `body(p0, pe, c0, nblk)` for pixels
/// `p0..pe` (at most TILE, from `first` to `pixels`) and up to four blocks of eight
/// channels from channel `c0` (`nb` blocks in all).
#[inline(always)]
unsafe fn tiles(first: usize, pixels: usize, nb: usize, mut body: impl FnMut(usize, usize, usize, usize)) {
    let mut p0 = first;
    while p0 < pixels {
        let pe = (p0 + TILE).min(pixels);
        let mut bg = 0;
        while bg < nb {
            body(p0, pe, bg * 8, (nb - bg).min(4));
            bg += 4;
        }
        p0 = pe;
    }
}

/// `d[0..8] += v` (widened to f64).
#[inline(always)]
unsafe fn flush(d: *mut f64, v: __m256) {
    _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), lo(v)));
    _mm256_storeu_pd(d.add(4), _mm256_add_pd(_mm256_loadu_pd(d.add(4)), hi(v)));
}

/// Work buffers of one task (sized for `c` channels).
pub struct Scratch {
    d1: Vec<f64>,
    d2: Vec<f64>,
    m: Vec<f32>,
    s: Vec<f32>,
    b: Vec<f32>,
    t: Vec<f32>,
}

impl Scratch {
    pub fn new(c: usize) -> Scratch {
        Scratch { d1: vec![0.0; c], d2: vec![0.0; c], m: vec![0.0; c], s: vec![0.0; c], b: vec![0.0; c],
                  t: vec![0.0; c] }
    }
}

/// One row forward of group normalization (`pixels > 1`): y (`yr` points at the row's
/// writable values), and the groups' mean and 1 / sqrt(var + eps) into `mr` / `rr`.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn forward_row(xr: &[f32], yr: *mut f32, gm: &[f32], bt: &[f32], pixels: usize, cg: usize, eps: f64,
                          mr: &mut [f32], rr: &mut [f32], w: &mut Scratch) {
    let g = mr.len();
    let c = g * cg;
    // per channel: shifted sums over the pixels (shift: the first pixel's value)
    let x = xr.as_ptr();
    let full = c / 8 * 8;
    // Tiles of TILE pixels by four blocks of eight channels: float32 partial sums in
    // registers (reading the tile's rows in order), added to the f64 totals per tile.
    w.d1.fill(0.0);
    w.d2.fill(0.0);
    tiles(1, pixels, full / 8, |p0, pe, c0, nblk| {
        let z = _mm256_setzero_ps();
        let (mut s1, mut s2) = ([z; 4], [z; 4]);
        let mut k = [z; 4];
        for j in 0..nblk {
            k[j] = _mm256_loadu_ps(x.add(c0 + 8 * j));
        }
        if nblk == 4 {
            for p in p0..pe {
                let q = x.add(p * c + c0);
                let d0 = _mm256_sub_ps(_mm256_loadu_ps(q), k[0]);
                let d1 = _mm256_sub_ps(_mm256_loadu_ps(q.add(8)), k[1]);
                let d2 = _mm256_sub_ps(_mm256_loadu_ps(q.add(16)), k[2]);
                let d3 = _mm256_sub_ps(_mm256_loadu_ps(q.add(24)), k[3]);
                s1[0] = _mm256_add_ps(s1[0], d0);
                s1[1] = _mm256_add_ps(s1[1], d1);
                s1[2] = _mm256_add_ps(s1[2], d2);
                s1[3] = _mm256_add_ps(s1[3], d3);
                s2[0] = _mm256_fmadd_ps(d0, d0, s2[0]);
                s2[1] = _mm256_fmadd_ps(d1, d1, s2[1]);
                s2[2] = _mm256_fmadd_ps(d2, d2, s2[2]);
                s2[3] = _mm256_fmadd_ps(d3, d3, s2[3]);
            }
        } else {
            for p in p0..pe {
                let q = x.add(p * c + c0);
                for j in 0..nblk {
                    let d = _mm256_sub_ps(_mm256_loadu_ps(q.add(8 * j)), k[j]);
                    s1[j] = _mm256_add_ps(s1[j], d);
                    s2[j] = _mm256_fmadd_ps(d, d, s2[j]);
                }
            }
        }
        for j in 0..nblk {
            flush(w.d1.as_mut_ptr().add(c0 + 8 * j), s1[j]);
            flush(w.d2.as_mut_ptr().add(c0 + 8 * j), s2[j]);
        }
    });
    for ch in full..c {
        let k = xr[ch];
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for p in 1..pixels {
            let d = (xr[p * c + ch] - k) as f64;
            s1 += d;
            s2 += d * d;
        }
        w.d1[ch] = s1;
        w.d2[ch] = s2;
    }
    // per group: the channels' means and squared deviations combined
    let pf = pixels as f64;
    for gi in 0..g {
        let span = gi * cg..(gi + 1) * cg;
        let mut msum = 0.0;
        for ch in span.clone() {
            let mu = xr[ch] as f64 + w.d1[ch] / pf;
            w.d2[ch] -= w.d1[ch] * w.d1[ch] / pf; // the channel's sum of squared deviations
            w.d1[ch] = mu;
            msum += mu;
        }
        let mg = msum / cg as f64;
        let mut m2 = 0.0;
        for ch in span.clone() {
            let dm = w.d1[ch] - mg;
            m2 += nonneg(w.d2[ch]) + pf * dm * dm;
        }
        let (m, r) = (mg as f32, rstd(m2 / (pf * cg as f64), eps));
        mr[gi] = m;
        rr[gi] = r;
        w.m[span.clone()].fill(m);
        for (o, &gv) in w.s[span.clone()].iter_mut().zip(&gm[span]) {
            *o = r * gv;
        }
    }
    for (p, xp) in xr.chunks_exact(c).enumerate() {
        affine(xp, yr.add(p * c), &w.m, &w.s, bt);
    }
}

/// One row backward: adds the row's dgamma / dbeta to `dg` / `db` and writes dx (when
/// given). `mr` / `rr` are the row's group statistics from the forward.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn backward_row(xr: &[f32], dr: &[f32], gm: &[f32], mr: &[f32], rr: &[f32], pixels: usize, cg: usize,
                           dg: &mut [f32], db: &mut [f32], dx: Option<*mut f32>, w: &mut Scratch) {
    let g = mr.len();
    let c = g * cg;
    for gi in 0..g {
        w.m[gi * cg..(gi + 1) * cg].fill(mr[gi]);
        w.s[gi * cg..(gi + 1) * cg].fill(rr[gi]);
    }
    let (x, dy) = (xr.as_ptr(), dr.as_ptr());
    let full = c / 8 * 8;
    // A = sum over pixels of dy, B = sum of dy * xhat, per channel: float32 partials
    // over tiles of pixels by four channel blocks, added to f64 totals per tile
    w.d1.fill(0.0);
    w.d2.fill(0.0);
    tiles(0, pixels, full / 8, |p0, pe, c0, nblk| {
        let z = _mm256_setzero_ps();
        let (mut sa, mut sb) = ([z; 4], [z; 4]);
        let (mut mv, mut rv) = ([z; 4], [z; 4]);
        for j in 0..nblk {
            mv[j] = _mm256_loadu_ps(w.m.as_ptr().add(c0 + 8 * j));
            rv[j] = _mm256_loadu_ps(w.s.as_ptr().add(c0 + 8 * j));
        }
        for p in p0..pe {
            let o = p * c + c0;
            if nblk == 4 {
                for j in 0..4 {
                    let d = _mm256_loadu_ps(dy.add(o + 8 * j));
                    let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.add(o + 8 * j)), mv[j]), rv[j]);
                    sa[j] = _mm256_add_ps(sa[j], d);
                    sb[j] = _mm256_fmadd_ps(d, h, sb[j]);
                }
            } else {
                for j in 0..nblk {
                    let d = _mm256_loadu_ps(dy.add(o + 8 * j));
                    let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.add(o + 8 * j)), mv[j]), rv[j]);
                    sa[j] = _mm256_add_ps(sa[j], d);
                    sb[j] = _mm256_fmadd_ps(d, h, sb[j]);
                }
            }
        }
        for j in 0..nblk {
            flush(w.d1.as_mut_ptr().add(c0 + 8 * j), sa[j]);
            flush(w.d2.as_mut_ptr().add(c0 + 8 * j), sb[j]);
        }
    });
    for ch in full..c {
        let (m, r) = (w.m[ch], w.s[ch]);
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for p in 0..pixels {
            let d = dr[p * c + ch];
            a += d as f64;
            b += (d * ((xr[p * c + ch] - m) * r)) as f64;
        }
        w.d1[ch] = a;
        w.d2[ch] = b;
    }
    let k = (pixels * cg) as f64;
    for gi in 0..g {
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for ch in gi * cg..(gi + 1) * cg {
            dg[ch] += w.d2[ch] as f32;
            db[ch] += w.d1[ch] as f32;
            s1 += gm[ch] as f64 * w.d1[ch];
            s2 += gm[ch] as f64 * w.d2[ch];
        }
        // dx = r * (gamma * dy - s1 / k - xhat * s2 / k): b holds s1 / k, t holds s2 / k
        w.b[gi * cg..(gi + 1) * cg].fill((s1 / k) as f32);
        w.t[gi * cg..(gi + 1) * cg].fill((s2 / k) as f32);
    }
    let Some(o) = dx else { return };
    let bterm = &w.t;
    for p in 0..pixels {
        let mut i = 0;
        while i < full {
            let at = p * c + i;
            let (m, r) = (_mm256_loadu_ps(w.m.as_ptr().add(i)), _mm256_loadu_ps(w.s.as_ptr().add(i)));
            let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.add(at)), m), r);
            let gd = _mm256_mul_ps(_mm256_loadu_ps(dy.add(at)), _mm256_loadu_ps(gm.as_ptr().add(i)));
            let t = _mm256_sub_ps(gd, _mm256_loadu_ps(w.b.as_ptr().add(i)));
            let t = _mm256_fnmadd_ps(h, _mm256_loadu_ps(bterm.as_ptr().add(i)), t);
            _mm256_storeu_ps(o.add(at), _mm256_mul_ps(r, t));
            i += 8;
        }
        for ch in full..c {
            let at = p * c + ch;
            let (m, r) = (w.m[ch], w.s[ch]);
            let h = (xr[at] - m) * r;
            *o.add(at) = r * ((dr[at] * gm[ch] - w.b[ch]) - h * bterm[ch]);
        }
    }
}

/// `y = (x - m) * (r * gamma) + beta` over one contiguous group (m, r scalars).
#[inline(always)]
unsafe fn affine_run(x: *const f32, y: *mut f32, n: usize, m: f32, r: f32, gm: *const f32, bt: *const f32) {
    let (vm, vr) = (_mm256_set1_ps(m), _mm256_set1_ps(r));
    let mut i = 0;
    while i + 8 <= n {
        let s = _mm256_mul_ps(vr, _mm256_loadu_ps(gm.add(i)));
        let d = _mm256_sub_ps(_mm256_loadu_ps(x.add(i)), vm);
        _mm256_storeu_ps(y.add(i), _mm256_fmadd_ps(d, s, _mm256_loadu_ps(bt.add(i))));
        i += 8;
    }
    while i < n {
        *y.add(i) = (*x.add(i) - m).mul_add(r * *gm.add(i), *bt.add(i));
        i += 1;
    }
}

/// Layer normalization (`pixels == 1`) of `runs` consecutive groups of `cg` values
/// (several rows): the moments of every group first, then every group's mean and
/// 1 / sqrt(var + eps) four at a time (the square roots and divisions overlap instead of
/// each row waiting on its own), then y. `gm` / `bt` are the row's `runs_per_row * cg`
/// channel weights. `y` points at `runs * cg` writable values.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn forward_runs(x: &[f32], y: *mut f32, gm: &[f32], bt: &[f32], cg: usize, eps: f64, mr: &mut [f32],
                           rr: &mut [f32], stats: &mut Vec<f64>) {
    let runs = mr.len();
    let per_row = gm.len() / cg;
    stats.clear();
    stats.resize(2 * runs, 0.0);
    let (ss, qs) = stats.split_at_mut(runs);
    for j in 0..runs {
        let (s, q) = run_moments(&x[j * cg..(j + 1) * cg]);
        ss[j] = s;
        qs[j] = q;
    }
    let inv = 1.0 / cg as f64;
    let (vi, ve, one, zero) = (_mm256_set1_pd(inv), _mm256_set1_pd(eps), _mm256_set1_pd(1.0), _mm256_setzero_pd());
    let mut j = 0;
    while j + 4 <= runs {
        let d = _mm256_mul_pd(_mm256_loadu_pd(ss.as_ptr().add(j)), vi);
        // (max_pd gives its second operand when one is NaN: a NaN variance stays NaN)
        let v = _mm256_max_pd(zero, _mm256_fnmadd_pd(d, d, _mm256_mul_pd(_mm256_loadu_pd(qs.as_ptr().add(j)), vi)));
        let r = _mm256_div_pd(one, _mm256_sqrt_pd(_mm256_add_pd(v, ve)));
        _mm256_storeu_pd(ss.as_mut_ptr().add(j), d);
        _mm256_storeu_pd(qs.as_mut_ptr().add(j), r);
        j += 4;
    }
    while j < runs {
        let d = ss[j] * inv;
        ss[j] = d;
        qs[j] = 1.0 / (nonneg((qs[j] * inv) - d * d) + eps).sqrt();
        j += 1;
    }
    for j in 0..runs {
        let m = (x[j * cg] as f64 + ss[j]) as f32;
        let r = qs[j] as f32;
        mr[j] = m;
        rr[j] = r;
        let w = (j % per_row) * cg;
        affine_run(x.as_ptr().add(j * cg), y.add(j * cg), cg, m, r, gm.as_ptr().add(w), bt.as_ptr().add(w));
    }
}

/// Layer normalization backward of one contiguous group: adds dgamma / dbeta, writes dx
/// (when given) from `s1 = sum gamma dy`, `s2 = sum gamma dy xhat` (f64).
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn backward_run(x: &[f32], dy: &[f32], gm: &[f32], m: f32, r: f32, dg: &mut [f32], db: &mut [f32],
                           dx: Option<*mut f32>) {
    let n = x.len();
    let (vm, vr) = (_mm256_set1_ps(m), _mm256_set1_ps(r));
    let z = _mm256_setzero_pd();
    let (mut a0, mut a1, mut b0, mut b1) = (z, z, z, z);
    // float32 partial sums over blocks of BLOCK values (two independent chains), added
    // to the f64 totals per block
    const BLOCK: usize = 128;
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        let end = (i + BLOCK).min(full);
        let zs = _mm256_setzero_ps();
        let (mut sa, mut sb, mut ta, mut tb) = (zs, zs, zs, zs);
        let mut one = |i: usize, sa: &mut __m256, sb: &mut __m256| {
            let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), vm), vr);
            let d = _mm256_loadu_ps(dy.as_ptr().add(i));
            _mm256_storeu_ps(dg.as_mut_ptr().add(i), _mm256_fmadd_ps(d, h, _mm256_loadu_ps(dg.as_ptr().add(i))));
            _mm256_storeu_ps(db.as_mut_ptr().add(i), _mm256_add_ps(_mm256_loadu_ps(db.as_ptr().add(i)), d));
            let gd = _mm256_mul_ps(d, _mm256_loadu_ps(gm.as_ptr().add(i)));
            *sa = _mm256_add_ps(*sa, gd);
            *sb = _mm256_fmadd_ps(gd, h, *sb);
        };
        while i + 16 <= end {
            one(i, &mut sa, &mut sb);
            one(i + 8, &mut ta, &mut tb);
            i += 16;
        }
        if i < end {
            one(i, &mut sa, &mut sb);
            i += 8;
        }
        let (sa, sb) = (_mm256_add_ps(sa, ta), _mm256_add_ps(sb, tb));
        a0 = _mm256_add_pd(a0, lo(sa));
        a1 = _mm256_add_pd(a1, hi(sa));
        b0 = _mm256_add_pd(b0, lo(sb));
        b1 = _mm256_add_pd(b1, hi(sb));
    }
    let (mut s1, mut s2) = (hsum(_mm256_add_pd(a0, a1)), hsum(_mm256_add_pd(b0, b1)));
    for j in i..n {
        let h = (x[j] - m) * r;
        dg[j] += dy[j] * h;
        db[j] += dy[j];
        let gd = dy[j] * gm[j];
        s1 += gd as f64;
        s2 += (gd * h) as f64;
    }
    let Some(o) = dx else { return };
    let k = n as f64;
    let (a, b) = ((s1 / k) as f32, (s2 / k) as f32);
    let (va, vb) = (_mm256_set1_ps(a), _mm256_set1_ps(b));
    let mut i = 0;
    while i + 8 <= n {
        let h = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x.as_ptr().add(i)), vm), vr);
        let gd = _mm256_mul_ps(_mm256_loadu_ps(dy.as_ptr().add(i)), _mm256_loadu_ps(gm.as_ptr().add(i)));
        let t = _mm256_fnmadd_ps(h, vb, _mm256_sub_ps(gd, va));
        _mm256_storeu_ps(o.add(i), _mm256_mul_ps(vr, t));
        i += 8;
    }
    for j in i..n {
        let h = (x[j] - m) * r;
        *o.add(j) = r * ((dy[j] * gm[j] - a) - h * b);
    }
}

/// `(y, mean, rstd)` of the whole normalization in float32 (the spec's layout; see
/// `crate::cpu::norm`): rayon over chunks of rows; y is written once (never zeroed
/// first).
pub fn forward(x: &[f32], gm: &[f32], bt: &[f32], p: &crate::ops::norm::NormPlan, cr: usize)
               -> crate::error::Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    use crate::error::{assume_init_vec, try_filled, try_uninit};
    use rayon::prelude::*;
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
    let mut y = try_uninit::<f32>(x.len(), "the normalization's output")?;
    let mut mean = try_filled(p.rows * g, 0.0f32, "the normalization's means")?;
    let mut rstd_ = try_filled(p.rows * g, 0.0f32, "the normalization's scales")?;
    y.par_chunks_mut(rl * cr)
        .zip(mean.par_chunks_mut(g * cr))
        .zip(rstd_.par_chunks_mut(g * cr))
        .enumerate()
        .for_each(|(ci, ((yc, mc), rc))| {
            let rows = yc.len() / rl;
            let xc = &x[ci * cr * rl..][..rows * rl];
            let yp = yc.as_mut_ptr() as *mut f32;
            // SAFETY: the caller checked the CPU has AVX2 and FMA; yp points at this
            // chunk's rows * rl values, each written once below.
            unsafe {
                if p.pixels == 1 {
                    let mut stats = Vec::new();
                    forward_runs(xc, yp, gm, bt, cg, p.epsilon, mc, rc, &mut stats);
                } else {
                    let mut w = Scratch::new(c);
                    for r in 0..rows {
                        forward_row(&xc[r * rl..(r + 1) * rl], yp.add(r * rl), gm, bt, p.pixels, cg, p.epsilon,
                                    &mut mc[r * g..(r + 1) * g], &mut rc[r * g..(r + 1) * g], &mut w);
                    }
                }
            }
        });
    // SAFETY: every chunk wrote all of its values (runs or rows above).
    Ok((unsafe { assume_init_vec(y) }, mean, rstd_))
}

/// `(dx, dgamma, dbeta)` in float32 (dx empty unless `need_dx`): rayon over chunks of
/// rows, each chunk's dgamma / dbeta partials added in chunk order (the same for any
/// thread count); dx written once.
pub fn backward(x: &[f32], gm: &[f32], dy: &[f32], mean: &[f32], rstd_: &[f32], p: &crate::ops::norm::NormPlan,
                cr: usize, need_dx: bool) -> crate::error::Result<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    use crate::error::{assume_init_vec, try_uninit};
    use rayon::prelude::*;
    let (rl, g, cg, c) = (p.row_len(), p.groups, p.cg, p.channels());
    let mut dx = try_uninit::<f32>(if need_dx { x.len() } else { 0 }, "the normalization's dx")?;
    let nchunks = p.rows.div_ceil(cr);
    let work = |ci: usize, o: Option<*mut f32>| -> Vec<f32> {
        let mut part = vec![0.0f32; 2 * c];
        let (dg, db) = part.split_at_mut(c);
        let mut w = Scratch::new(c);
        for row in ci * cr..((ci + 1) * cr).min(p.rows) {
            let (xr, dr) = (&x[row * rl..(row + 1) * rl], &dy[row * rl..(row + 1) * rl]);
            let (mr, rr) = (&mean[row * g..(row + 1) * g], &rstd_[row * g..(row + 1) * g]);
            // SAFETY: AVX2 + FMA checked by the caller; o points at this chunk's dx rows.
            let orow = o.map(|q| unsafe { q.add((row - ci * cr) * rl) });
            unsafe {
                if p.pixels == 1 {
                    for gi in 0..g {
                        let sp = gi * cg..(gi + 1) * cg;
                        backward_run(&xr[sp.clone()], &dr[sp.clone()], &gm[sp.clone()], mr[gi], rr[gi],
                                     &mut dg[sp.clone()], &mut db[sp.clone()], orow.map(|q| q.add(gi * cg)));
                    }
                } else {
                    backward_row(xr, dr, gm, mr, rr, p.pixels, cg, dg, db, orow, &mut w);
                }
            }
        }
        part
    };
    let parts: Vec<Vec<f32>> = if need_dx {
        dx.par_chunks_mut(rl * cr).enumerate().map(|(ci, d)| work(ci, Some(d.as_mut_ptr() as *mut f32))).collect()
    } else {
        (0..nchunks).into_par_iter().map(|ci| work(ci, None)).collect()
    };
    let mut dg = vec![0.0f32; c];
    let mut db = vec![0.0f32; c];
    for part in parts {
        for ch in 0..c {
            dg[ch] += part[ch];
            db[ch] += part[c + ch];
        }
    }
    // SAFETY: every chunk wrote all of its dx rows.
    Ok((unsafe { assume_init_vec(dx) }, dg, db))
}
