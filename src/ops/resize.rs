//! Spec of 2-D upsampling by integer factors (Keras `UpSampling2D`, and
//! `keras.ops.image.resize` to a multiple of the size): parameters, shape rules and
//! validation, shared by the CPU and GPU kernels.
//!
//! Layout: channels-last `(batch, height, width, channels)`. 'nearest' repeats each pixel
//! `size_h x size_w` times. 'bilinear' samples at half-pixel centres, the source
//! coordinate `(o + 0.5) / size - 0.5` clamped to the image (what Keras's
//! `image.resize` gives when upsampling: the edge weights renormalise to the clamped
//! pixel).

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    Nearest,
    Bilinear,
}

impl Interpolation {
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            _ => Err(Error::Value(format!("interpolation must be 'nearest' or 'bilinear', got {s:?}"))),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct UpsamplePlan {
    pub batch: usize,
    pub in_h: usize,
    pub in_w: usize,
    pub channels: usize,
    pub size_h: usize,
    pub size_w: usize,
    pub interpolation: Interpolation,
}

impl UpsamplePlan {
    /// Validate `x_shape` (batch, height, width, channels) and the factors.
    pub fn new(x_shape: &[usize], size: &[usize], interpolation: Interpolation) -> Result<Self> {
        if x_shape.len() != 4 {
            return Err(Error::Value(format!(
                "upsampling expects images of shape (batch, height, width, channels), got shape {x_shape:?}"
            )));
        }
        if size.len() != 2 || size.iter().any(|&s| s == 0) {
            return Err(Error::Value(format!("upsampling size must be two positive integers, got {size:?}")));
        }
        let out = [x_shape[1].checked_mul(size[0]), x_shape[2].checked_mul(size[1])];
        // Every axis, and the product of the non-zero ones (an array's rule even when it
        // is empty), must fit.
        let fits = match out {
            [Some(h), Some(w)] => [x_shape[0], h, w, x_shape[3]]
                .iter()
                .filter(|&&d| d != 0)
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_some_and(|n| n <= isize::MAX as usize),
            _ => false,
        };
        if !fits {
            return Err(Error::Memory(format!("upsampling {x_shape:?} by {size:?} overflows")));
        }
        let plan = UpsamplePlan {
            batch: x_shape[0],
            in_h: x_shape[1],
            in_w: x_shape[2],
            channels: x_shape[3],
            size_h: size[0],
            size_w: size[1],
            interpolation,
        };
        crate::error::checked_numel(&plan.out_shape())?;
        Ok(plan)
    }

    pub fn out_h(&self) -> usize {
        self.in_h * self.size_h
    }
    pub fn out_w(&self) -> usize {
        self.in_w * self.size_w
    }
    pub fn in_shape(&self) -> Vec<usize> {
        vec![self.batch, self.in_h, self.in_w, self.channels]
    }
    pub fn out_shape(&self) -> Vec<usize> {
        vec![self.batch, self.out_h(), self.out_w(), self.channels]
    }
}

/// The two source rows (or columns) an output row samples, and the second one's weight:
/// `(i0, i1, w1)` with the value `(1 - w1) * x[i0] + w1 * x[i1]`. Nearest: `(o / s, o / s, 0)`.
#[inline]
pub fn taps(o: usize, size: usize, n: usize, interpolation: Interpolation) -> (usize, usize, f64) {
    match interpolation {
        Interpolation::Nearest => (o / size, o / size, 0.0),
        Interpolation::Bilinear => {
            let src = ((o as f64 + 0.5) / size as f64 - 0.5).clamp(0.0, (n - 1) as f64);
            let i0 = src.floor() as usize;
            let i1 = (i0 + 1).min(n - 1);
            (i0, i1, src - i0 as f64)
        }
    }
}

/// The outputs along one axis that read input `i`: a range that contains every `o` with
/// `i` among its taps (the gather form of the backward pass).
#[inline]
pub fn readers(i: usize, size: usize, n_out: usize) -> std::ops::Range<usize> {
    let lo = i.saturating_sub(1) * size;
    let hi = ((i + 2) * size).min(n_out);
    lo..hi
}

/// The weight output `o` gives input `i` along one axis.
#[inline]
pub fn weight(o: usize, i: usize, size: usize, n: usize, interpolation: Interpolation) -> f64 {
    let (i0, i1, w1) = taps(o, size, n, interpolation);
    let mut w = 0.0;
    if i0 == i {
        w += 1.0 - w1;
    }
    if i1 == i {
        w += w1;
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_cover_every_tap() {
        for interp in [Interpolation::Nearest, Interpolation::Bilinear] {
            for (n, s) in [(1, 3), (4, 2), (5, 3), (7, 1)] {
                for o in 0..n * s {
                    let (i0, i1, _) = taps(o, s, n, interp);
                    assert!(readers(i0, s, n * s).contains(&o) && readers(i1, s, n * s).contains(&o));
                }
            }
        }
    }

    #[test]
    fn weights_of_an_output_sum_to_one() {
        for (n, s) in [(1, 2), (3, 2), (5, 4)] {
            for o in 0..n * s {
                let t: f64 = (0..n).map(|i| weight(o, i, s, n, Interpolation::Bilinear)).sum();
                assert!((t - 1.0).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn bad_shapes_are_value_errors() {
        assert!(UpsamplePlan::new(&[1, 2, 3], &[2, 2], Interpolation::Nearest).is_err());
        assert!(UpsamplePlan::new(&[1, 2, 3, 1], &[0, 2], Interpolation::Nearest).is_err());
        assert!(Interpolation::parse("bicubic").is_err());
    }
}
