//! Depthwise convolution on the CPU (spec: `crate::ops::depthwise`): forward and input
//! gradient as gathers over rows of the output / input (rayon over batch x rows, no
//! atomics), the kernel gradient as fixed per-chunk partial sums added in order (the
//! same result for any number of threads). The inner loops run over the contiguous
//! channel axis; they are compiled a second time with AVX2 and picked at run time.
//! A padding cell is a row of zeros multiplied like any input (0 * inf is NaN).

use crate::cpu::simd::has_avx2_fma;
use crate::element::Element;
use crate::error::{try_filled, Result};
use crate::ops::depthwise::DepthwisePlan;
use rayon::prelude::*;

/// `acc[c*M + m] += x[c] * w[c*M + m]`.
#[inline(always)]
fn mac<T: Element>(acc: &mut [T], x: &[T], w: &[T], m: usize) {
    if m == 1 {
        for ((a, &xv), &wv) in acc.iter_mut().zip(x).zip(w) {
            *a += xv * wv;
        }
    } else {
        for ((a, &xv), ws) in acc.chunks_exact_mut(m).zip(x).zip(w.chunks_exact(m)) {
            for (av, &wv) in a.iter_mut().zip(ws) {
                *av += xv * wv;
            }
        }
    }
}

/// `acc[c] += sum_m dy[c*M + m] * w[c*M + m]`.
#[inline(always)]
fn mac_in<T: Element>(acc: &mut [T], dy: &[T], w: &[T], m: usize) {
    if m == 1 {
        for ((a, &d), &wv) in acc.iter_mut().zip(dy).zip(w) {
            *a += d * wv;
        }
    } else {
        for ((a, ds), ws) in acc.iter_mut().zip(dy.chunks_exact(m)).zip(w.chunks_exact(m)) {
            let mut s = T::zero();
            for (&d, &wv) in ds.iter().zip(ws) {
                s += d * wv;
            }
            *a += s;
        }
    }
}

/// The input channels under each tap of the window of output position `o` of sample
/// `n`: `f(tap, row of C input values)`, a row of `zeros` where the window lies in the
/// padding (the forward and the kernel gradient walk the same windows).
#[inline(always)]
fn each_tap<'a, T: Element>(x: &'a [T], p: &DepthwisePlan, zeros: &'a [T], n: usize, o: [usize; 3],
                            mut f: impl FnMut(usize, &'a [T])) {
    let c = p.channels;
    let [i0n, i1n, i2n] = [p.spatial[0], p.spatial[1], p.spatial[2]];
    for j0 in 0..p.kernel[0] {
        let i0 = p.input_at(0, o[0], j0);
        for j1 in 0..p.kernel[1] {
            let i1 = p.input_at(1, o[1], j1);
            for j2 in 0..p.kernel[2] {
                let i2 = p.input_at(2, o[2], j2);
                let tap = (j0 * p.kernel[1] + j1) * p.kernel[2] + j2;
                let inside = i0 >= 0 && (i0 as usize) < i0n && i1 >= 0 && (i1 as usize) < i1n && i2 >= 0
                    && (i2 as usize) < i2n;
                let xs = if inside {
                    let at = (((n * i0n + i0 as usize) * i1n + i1 as usize) * i2n + i2 as usize) * c;
                    &x[at..at + c]
                } else {
                    zeros
                };
                f(tap, xs);
            }
        }
    }
}

/// One row of an output-shaped (forward) or input-shaped (dx) array, and the kernel
/// gradient's partial sums over a range of output rows.
#[inline(always)]
fn fwd_row<T: Element>(x: &[T], k: &[T], p: &DepthwisePlan, zeros: &[T], row: usize, out: &mut [T]) {
    let (cm, m) = (p.c_out(), p.mult);
    let (o0n, o1n) = (p.out_spatial[0], p.out_spatial[1]);
    let (o1, o0, n) = (row % o1n, (row / o1n) % o0n, row / (o1n * o0n));
    for (o2, acc) in out.chunks_exact_mut(cm).enumerate() {
        acc.fill(T::zero());
        each_tap(x, p, zeros, n, [o0, o1, o2], |tap, xs| mac(acc, xs, &k[tap * cm..(tap + 1) * cm], m));
    }
}

#[inline(always)]
fn dx_row<T: Element>(dy: &[T], k: &[T], p: &DepthwisePlan, row: usize, out: &mut [T]) {
    let (cm, m) = (p.c_out(), p.mult);
    let (i0n, i1n) = (p.spatial[0], p.spatial[1]);
    let [o0n, o1n, o2n] = [p.out_spatial[0], p.out_spatial[1], p.out_spatial[2]];
    let (i1, i0, n) = (row % i1n, (row / i1n) % i0n, row / (i1n * i0n));
    for (i2, acc) in out.chunks_exact_mut(p.channels).enumerate() {
        acc.fill(T::zero());
        for j0 in 0..p.kernel[0] {
            let Some(o0) = p.output_at(0, i0, j0) else { continue };
            for j1 in 0..p.kernel[1] {
                let Some(o1) = p.output_at(1, i1, j1) else { continue };
                for j2 in 0..p.kernel[2] {
                    let Some(o2) = p.output_at(2, i2, j2) else { continue };
                    let tap = (j0 * p.kernel[1] + j1) * p.kernel[2] + j2;
                    let at = (((n * o0n + o0) * o1n + o1) * o2n + o2) * cm;
                    mac_in(acc, &dy[at..at + cm], &k[tap * cm..(tap + 1) * cm], m);
                }
            }
        }
    }
}

#[inline(always)]
fn dk_rows<T: Element>(x: &[T], dy: &[T], p: &DepthwisePlan, zeros: &[T], rows: std::ops::Range<usize>, part: &mut [T]) {
    let (cm, m) = (p.c_out(), p.mult);
    let (o0n, o1n, o2n) = (p.out_spatial[0], p.out_spatial[1], p.out_spatial[2]);
    for row in rows {
        let (o1, o0, n) = (row % o1n, (row / o1n) % o0n, row / (o1n * o0n));
        for o2 in 0..o2n {
            let d = &dy[(row * o2n + o2) * cm..(row * o2n + o2 + 1) * cm];
            // dk[tap, c, m] += x[c] * dy[c*M + m]: the forward's product with w <- dy
            each_tap(x, p, zeros, n, [o0, o1, o2], |tap, xs| mac(&mut part[tap * cm..(tap + 1) * cm], xs, d, m));
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fwd_row_avx2<T: Element>(x: &[T], k: &[T], p: &DepthwisePlan, zeros: &[T], row: usize, out: &mut [T]) {
    fwd_row(x, k, p, zeros, row, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dx_row_avx2<T: Element>(dy: &[T], k: &[T], p: &DepthwisePlan, row: usize, out: &mut [T]) {
    dx_row(dy, k, p, row, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dk_rows_avx2<T: Element>(x: &[T], dy: &[T], p: &DepthwisePlan, zeros: &[T], rows: std::ops::Range<usize>,
                                   part: &mut [T]) {
    dk_rows(x, dy, p, zeros, rows, part)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn fwd_row_avx512<T: Element>(x: &[T], k: &[T], p: &DepthwisePlan, zeros: &[T], row: usize, out: &mut [T]) {
    fwd_row(x, k, p, zeros, row, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn dx_row_avx512<T: Element>(dy: &[T], k: &[T], p: &DepthwisePlan, row: usize, out: &mut [T]) {
    dx_row(dy, k, p, row, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
unsafe fn dk_rows_avx512<T: Element>(x: &[T], dy: &[T], p: &DepthwisePlan, zeros: &[T], rows: std::ops::Range<usize>,
                                     part: &mut [T]) {
    dk_rows(x, dy, p, zeros, rows, part)
}

/// The path taken: 0 portable, 1 AVX2 + FMA, 2 AVX-512 (the same loops, compiled for
/// each instruction set).
fn path() -> u8 {
    if !cfg!(target_arch = "x86_64") {
        0
    } else if crate::cpu::simd::has_avx512() {
        2
    } else if has_avx2_fma() {
        1
    } else {
        0
    }
}

/// y = depthwise_conv(x, k).
pub fn depthwise_forward<T: Element>(x: &[T], k: &[T], p: &DepthwisePlan) -> Result<Vec<T>> {
    let cm = p.c_out();
    let row_len = p.out_spatial[2] * cm;
    let mut y = try_filled(p.batch * p.out_pixels() * cm, T::zero(), "the depthwise convolution's output")?;
    let zeros = vec![T::zero(); p.channels];
    let fast = path();
    y.par_chunks_mut(row_len.max(1)).enumerate().for_each(|(row, out)| {
        #[cfg(target_arch = "x86_64")]
        if fast > 0 {
            // SAFETY: the CPU has the path's instruction set (checked at run time).
            unsafe {
                if fast == 2 { fwd_row_avx512(x, k, p, &zeros, row, out) } else { fwd_row_avx2(x, k, p, &zeros, row, out) }
            };
            return;
        }
        let _ = fast;
        fwd_row(x, k, p, &zeros, row, out)
    });
    Ok(y)
}

/// dL/dx from dL/dy.
pub fn depthwise_backward_input<T: Element>(dy: &[T], k: &[T], p: &DepthwisePlan) -> Result<Vec<T>> {
    let row_len = p.spatial[2] * p.channels;
    let mut dx = try_filled(p.batch * p.in_pixels() * p.channels, T::zero(), "the depthwise convolution's dx")?;
    let fast = path();
    dx.par_chunks_mut(row_len.max(1)).enumerate().for_each(|(row, out)| {
        #[cfg(target_arch = "x86_64")]
        if fast > 0 {
            // SAFETY: the CPU has the path's instruction set (checked at run time).
            unsafe { if fast == 2 { dx_row_avx512(dy, k, p, row, out) } else { dx_row_avx2(dy, k, p, row, out) } };
            return;
        }
        let _ = fast;
        dx_row(dy, k, p, row, out)
    });
    Ok(dx)
}

/// dL/dk from x and dL/dy: partial sums over a fixed split of the output rows (a
/// function of the shapes only), added in order.
pub fn depthwise_backward_kernel<T: Element>(x: &[T], dy: &[T], p: &DepthwisePlan) -> Result<Vec<T>> {
    let kn = p.taps() * p.c_out();
    let rows = p.batch * p.out_spatial[0] * p.out_spatial[1];
    // at most 32 partials, and no more than ~16M partial elements in all
    let chunks = rows.min(32).min((1usize << 24) / kn.max(1)).max(1);
    let per = rows.div_ceil(chunks);
    let zeros = vec![T::zero(); p.channels];
    let fast = path();
    let parts: Vec<Result<Vec<T>>> = (0..chunks)
        .into_par_iter()
        .map(|ci| {
            let mut part = try_filled(kn, T::zero(), "the depthwise kernel gradient's partial sums")?;
            let r = ci * per..((ci + 1) * per).min(rows);
            #[cfg(target_arch = "x86_64")]
            if fast > 0 {
                // SAFETY: the CPU has the path's instruction set (checked at run time).
                unsafe {
                    if fast == 2 {
                        dk_rows_avx512(x, dy, p, &zeros, r, &mut part)
                    } else {
                        dk_rows_avx2(x, dy, p, &zeros, r, &mut part)
                    }
                };
                return Ok(part);
            }
            let _ = fast;
            dk_rows(x, dy, p, &zeros, r, &mut part);
            Ok(part)
        })
        .collect();
    let mut dk = try_filled(kn, T::zero(), "the depthwise kernel gradient")?;
    for part in parts {
        for (a, b) in dk.iter_mut().zip(part?) {
            *a += b;
        }
    }
    Ok(dk)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::pool::Padding;

    fn naive(x: &[f64], k: &[f64], p: &DepthwisePlan) -> Vec<f64> {
        let (c, m) = (p.channels, p.mult);
        let mut y = vec![0.0; p.batch * p.out_pixels() * c * m];
        for n in 0..p.batch {
            for o in 0..p.out_pixels() {
                let oc = [o / (p.out_spatial[1] * p.out_spatial[2]), (o / p.out_spatial[2]) % p.out_spatial[1],
                          o % p.out_spatial[2]];
                for t in 0..p.taps() {
                    let jc = [t / (p.kernel[1] * p.kernel[2]), (t / p.kernel[2]) % p.kernel[1], t % p.kernel[2]];
                    let ic: Vec<isize> = (0..3).map(|a| p.input_at(a, oc[a], jc[a])).collect();
                    if (0..3).any(|a| ic[a] < 0 || ic[a] as usize >= p.spatial[a]) {
                        continue;
                    }
                    let ip = (ic[0] as usize * p.spatial[1] + ic[1] as usize) * p.spatial[2] + ic[2] as usize;
                    for ci in 0..c {
                        for mi in 0..m {
                            y[(n * p.out_pixels() + o) * c * m + ci * m + mi] +=
                                x[(n * p.in_pixels() + ip) * c + ci] * k[t * c * m + ci * m + mi];
                        }
                    }
                }
            }
        }
        y
    }

    fn vals(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n).map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64) - 0.5
        }).collect()
    }

    #[test]
    fn forward_matches_naive_and_backwards_are_adjoint() {
        for (xs, ks, s, d, pad) in [
            (vec![2, 7, 6, 3], vec![3, 3, 3, 2], vec![2, 1], vec![1, 2], Padding::Same),
            (vec![1, 9, 4], vec![3, 4, 1], vec![1], vec![1], Padding::Valid),
            (vec![2, 5, 4], vec![2, 4, 3], vec![3], vec![1], Padding::Same),
            (vec![1, 4, 3, 5, 2], vec![2, 2, 3, 2, 1], vec![1, 2, 1], vec![1, 1, 2], Padding::Same),
        ] {
            let p = DepthwisePlan::new(&xs, &ks, &s, &d, pad).unwrap();
            let x = vals(xs.iter().product(), 1);
            let k = vals(ks.iter().product(), 2);
            let y = depthwise_forward(&x, &k, &p).unwrap();
            let want = naive(&x, &k, &p);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12);
            }
            // <dy, f(x, k)> = <dx, x> = <dk, k>
            let dy = vals(y.len(), 3);
            let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
            let lhs = dot(&dy, &y);
            let dx = depthwise_backward_input(&dy, &k, &p).unwrap();
            let dk = depthwise_backward_kernel(&x, &dy, &p).unwrap();
            assert!((lhs - dot(&dx, &x)).abs() < 1e-10, "{lhs} {}", dot(&dx, &x));
            assert!((lhs - dot(&dk, &k)).abs() < 1e-10);
        }
    }
}
