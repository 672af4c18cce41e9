//! 2-D upsampling by integer factors on the CPU (spec: `crate::ops::resize`): forward
//! and its exact adjoint, both as gathers (each output value is computed by one task, so
//! the backward needs no atomics), parallel over output rows.

use crate::element::Element;
use crate::error::{try_filled, Result};
use crate::ops::resize::{readers, taps, weight, Interpolation, UpsamplePlan};
use rayon::prelude::*;

pub fn upsample_forward<T: Element>(x: &[T], p: &UpsamplePlan) -> Result<Vec<T>> {
    let (c, oh, ow) = (p.channels, p.out_h(), p.out_w());
    let mut y = try_filled(p.batch * oh * ow * c, T::zero(), "the upsampling output")?;
    if y.is_empty() {
        return Ok(y);
    }
    let img = p.in_h * p.in_w * c;
    y.par_chunks_mut(ow * c).enumerate().for_each(|(row, out)| {
        let (n, oy) = (row / oh, row % oh);
        let (y0, y1, wy) = taps(oy, p.size_h, p.in_h, p.interpolation);
        let base = &x[n * img..(n + 1) * img];
        for ox in 0..ow {
            let (x0, x1, wx) = taps(ox, p.size_w, p.in_w, p.interpolation);
            let w = [(1.0 - wy) * (1.0 - wx), (1.0 - wy) * wx, wy * (1.0 - wx), wy * wx];
            let at = [(y0, x0), (y0, x1), (y1, x0), (y1, x1)];
            // Bilinear multiplies all four taps, zero weights too, as PyTorch and the GPU
            // kernel do (a NaN or inf neighbour gives NaN); nearest reads its one pixel.
            let every = p.interpolation == Interpolation::Bilinear;
            for ch in 0..c {
                let mut acc = 0.0f64;
                for (&(yy, xx), &ww) in at.iter().zip(&w) {
                    if every || ww != 0.0 {
                        acc += ww * base[(yy * p.in_w + xx) * c + ch].to_f64().unwrap_or(f64::NAN);
                    }
                }
                out[ox * c + ch] = T::from_f64_lossy(acc);
            }
        }
    });
    Ok(y)
}

/// dL/dx from dL/dy: `dx[i, j] = sum over outputs of weight_h * weight_w * dy`.
pub fn upsample_backward<T: Element>(dy: &[T], p: &UpsamplePlan) -> Result<Vec<T>> {
    let (c, oh, ow) = (p.channels, p.out_h(), p.out_w());
    let mut dx = try_filled(p.batch * p.in_h * p.in_w * c, T::zero(), "the upsampling gradient")?;
    if dx.is_empty() {
        return Ok(dx);
    }
    let oimg = oh * ow * c;
    // (output, weight) pairs with a non-zero weight, per input column; each channel sums
    // its terms in the same order as a per-channel loop would, over rows of channels
    let cols: Vec<Vec<(usize, f64)>> = (0..p.in_w)
        .map(|ix| readers(ix, p.size_w, ow).map(|ox| (ox, weight(ox, ix, p.size_w, p.in_w, p.interpolation)))
             .filter(|&(_, w)| w != 0.0).collect())
        .collect();
    dx.par_chunks_mut(p.in_w * c).enumerate().for_each(|(row, out)| {
        let (n, iy) = (row / p.in_h, row % p.in_h);
        let g = &dy[n * oimg..(n + 1) * oimg];
        let rows: Vec<(usize, f64)> = readers(iy, p.size_h, oh)
            .map(|oy| (oy, weight(oy, iy, p.size_h, p.in_h, p.interpolation)))
            .filter(|&(_, w)| w != 0.0)
            .collect();
        let mut acc = vec![0.0f64; c];
        for (ix, o) in out.chunks_exact_mut(c).enumerate() {
            acc.fill(0.0);
            for &(oy, wy) in &rows {
                for &(ox, wx) in &cols[ix] {
                    let w = wy * wx;
                    let src = &g[(oy * ow + ox) * c..(oy * ow + ox + 1) * c];
                    for (a, &v) in acc.iter_mut().zip(src) {
                        *a += w * v.to_f64().unwrap_or(f64::NAN);
                    }
                }
            }
            for (d, &a) in o.iter_mut().zip(&acc) {
                *d = T::from_f64_lossy(a);
            }
        }
    });
    Ok(dx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_repeats_and_backward_sums_blocks() {
        let p = UpsamplePlan::new(&[1, 2, 2, 1], &[2, 3], Interpolation::Nearest).unwrap();
        let y = upsample_forward(&[1.0f64, 2.0, 3.0, 4.0], &p).unwrap();
        assert_eq!(&y[..6], &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        assert_eq!(&y[18..], &[3.0, 3.0, 3.0, 4.0, 4.0, 4.0]);
        let dx = upsample_backward(&vec![1.0f64; 24], &p).unwrap();
        assert_eq!(dx, vec![6.0; 4]);
    }

    #[test]
    fn backward_is_the_adjoint() {
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            let p = UpsamplePlan::new(&[2, 3, 4, 2], &[2, 3], interp).unwrap();
            let x: Vec<f64> = (0..48).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
            let g: Vec<f64> = (0..2 * 6 * 12 * 2).map(|i| ((i * 13 % 7) as f64) - 3.0).collect();
            let y = upsample_forward(&x, &p).unwrap();
            let dx = upsample_backward(&g, &p).unwrap();
            let lhs: f64 = y.iter().zip(&g).map(|(a, b)| a * b).sum();
            let rhs: f64 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert!((lhs - rhs).abs() < 1e-9 * lhs.abs().max(1.0), "{interp:?}: {lhs} vs {rhs}");
        }
    }
}
