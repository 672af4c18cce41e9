//! The correlation spec. Every correlation the crate computes — scipy.signal's
//! full/valid/same, correlate2d's boundaries, scipy.ndimage's modes and origins — is one
//! `CorrPlan`: an output shape and, per axis, the offset that maps an output index and a
//! kernel index to an input index,
//!
//! ```text
//! out[o] = sum_j  x[ o + j - offset ] * k[j]
//! ```
//!
//! with input indices outside the array resolved by the boundary rule.

use crate::error::{checked_numel, Error, Result};

/// scipy.signal's output size rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Full,
    Valid,
    Same,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode> {
        match s {
            "full" => Ok(Mode::Full),
            "valid" => Ok(Mode::Valid),
            "same" => Ok(Mode::Same),
            _ => Err(Error::Value(format!("mode must be 'full', 'valid' or 'same', got {s:?}"))),
        }
    }
}

/// How an input index outside `[0, n)` is resolved (scipy.ndimage's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// The constant value `cval` (scipy.signal's zero fill, ndimage 'constant').
    Constant,
    /// `d c b a | a b c d | d c b a` (ndimage 'reflect', signal 'symm').
    Reflect,
    /// `d c b | a b c d | c b a` (ndimage 'mirror').
    Mirror,
    /// `a a a | a b c d | d d d` (ndimage 'nearest').
    Nearest,
    /// `a b c d | a b c d | a b c d` (ndimage 'wrap', signal 'wrap').
    Wrap,
}

impl Boundary {
    /// scipy.ndimage mode names, including the 'grid-' aliases filters treat alike.
    pub fn parse_ndimage(s: &str) -> Result<Boundary> {
        match s {
            "reflect" | "grid-mirror" => Ok(Boundary::Reflect),
            "mirror" => Ok(Boundary::Mirror),
            "constant" | "grid-constant" => Ok(Boundary::Constant),
            "nearest" => Ok(Boundary::Nearest),
            "wrap" | "grid-wrap" => Ok(Boundary::Wrap),
            _ => Err(Error::Value(format!(
                "mode must be one of 'reflect', 'constant', 'nearest', 'mirror', 'wrap' \
                 (or 'grid-mirror', 'grid-constant', 'grid-wrap'), got {s:?}"
            ))),
        }
    }

    /// scipy.signal.correlate2d boundary names.
    pub fn parse_signal2d(s: &str) -> Result<Boundary> {
        match s {
            "fill" | "pad" => Ok(Boundary::Constant),
            "wrap" | "circular" => Ok(Boundary::Wrap),
            "symm" | "symmetric" => Ok(Boundary::Reflect),
            _ => Err(Error::Value(format!("boundary must be 'fill', 'wrap' or 'symm', got {s:?}"))),
        }
    }

    /// Resolve input index `i` on an axis of length `n` (n >= 1). `None` means the
    /// constant value.
    #[inline]
    pub fn map(self, i: isize, n: usize) -> Option<usize> {
        let n_i = n as isize;
        if i >= 0 && i < n_i {
            return Some(i as usize);
        }
        match self {
            Boundary::Constant => None,
            Boundary::Nearest => Some(if i < 0 { 0 } else { n - 1 }),
            Boundary::Wrap => Some(i.rem_euclid(n_i) as usize),
            Boundary::Reflect => {
                let p = i.rem_euclid(2 * n_i);
                Some(if p < n_i { p } else { 2 * n_i - 1 - p } as usize)
            }
            Boundary::Mirror => {
                if n == 1 {
                    return Some(0);
                }
                let period = 2 * n_i - 2;
                let p = i.rem_euclid(period);
                Some(if p < n_i { p } else { period - p } as usize)
            }
        }
    }
}

/// One correlation, fully described.
#[derive(Clone, Debug, PartialEq)]
pub struct CorrPlan {
    pub in_shape: Vec<usize>,
    pub k_shape: Vec<usize>,
    pub out_shape: Vec<usize>,
    /// Per axis: input index = output index + kernel index - offset.
    pub offset: Vec<isize>,
    pub boundary: Boundary,
    /// Value outside the input when `boundary` is `Constant`.
    pub cval: f64,
    /// Products with positions outside the input are left out instead of multiplying
    /// the zero padding (numpy.correlate, and scipy.signal's 'valid' mode, which swaps
    /// the inputs rather than pad): it differs only when the kernel holds inf or NaN,
    /// since 0 * inf is NaN. Implies a zero `Constant` boundary.
    pub overlap_only: bool,
    /// Zero weights are left out (scipy.ndimage.correlate's footprint, which keeps only
    /// weights with |w| > DBL_EPSILON; the caller zeroes the others): again different
    /// only for inf/NaN inputs.
    pub skip_zero: bool,
}

fn check_shapes(what: &str, in_shape: &[usize], k_shape: &[usize]) -> Result<()> {
    if in_shape.is_empty() || k_shape.is_empty() {
        return Err(Error::Value(format!(
            "{what}: inputs must have at least one dimension, got shapes {in_shape:?} and {k_shape:?}"
        )));
    }
    if in_shape.len() != k_shape.len() {
        return Err(Error::Value(format!(
            "{what}: in1 and in2 should have the same dimensionality, got {}-D shape {in_shape:?} and {}-D shape {k_shape:?}",
            in_shape.len(),
            k_shape.len()
        )));
    }
    if in_shape.contains(&0) || k_shape.contains(&0) {
        return Err(Error::Value(format!(
            "{what}: inputs must not be empty, got shapes {in_shape:?} and {k_shape:?}"
        )));
    }
    checked_numel(in_shape)?;
    checked_numel(k_shape)?;
    Ok(())
}

impl CorrPlan {
    pub fn ndim(&self) -> usize {
        self.in_shape.len()
    }

    /// scipy.signal.correlate(in1, in2, mode) with zero fill. 'valid' needs one input at
    /// least as large as the other on every axis (scipy's rule); when in2 is the larger
    /// one the offsets below give scipy's swapped-and-reversed result directly.
    ///
    /// Where scipy goes through numpy.correlate (1-D, except 'same' with in1 the
    /// shorter) only overlapping products are summed (`overlap_only`).
    pub fn signal(in_shape: &[usize], k_shape: &[usize], mode: Mode) -> Result<CorrPlan> {
        let mut plan = Self::signal2d_like("correlate", in_shape, k_shape, mode, Boundary::Constant, 0.0)?;
        if in_shape.len() == 1 && (mode != Mode::Same || in_shape[0] >= k_shape[0]) {
            plan.overlap_only = true;
        }
        Ok(plan)
    }

    /// scipy.signal.correlate2d(in1, in2, mode, boundary, fillvalue).
    ///
    /// scipy computes correlate2d as convolve2d with the kernel rotated, so its 'same'
    /// window starts at `n2 // 2` of the full correlation, one later than `correlate`'s
    /// `(n2 - 1) // 2` for even kernel sizes. `convolve2d` (a correlation with the kernel
    /// already flipped by the caller) passes `flipped = true` to keep `correlate`'s start.
    pub fn signal2d(
        in_shape: &[usize],
        k_shape: &[usize],
        mode: Mode,
        boundary: Boundary,
        fillvalue: f64,
        flipped: bool,
    ) -> Result<CorrPlan> {
        if in_shape.len() != 2 || k_shape.len() != 2 {
            return Err(Error::Value(format!(
                "correlate2d: in1 and in2 must be 2-D arrays, got shapes {in_shape:?} and {k_shape:?}"
            )));
        }
        let mut plan = Self::signal2d_like("correlate2d", in_shape, k_shape, mode, boundary, fillvalue)?;
        if mode == Mode::Same && !flipped {
            for (off, &n2) in plan.offset.iter_mut().zip(k_shape) {
                *off = ((n2 - 1) / 2) as isize;
            }
        }
        Ok(plan)
    }

    fn signal2d_like(
        what: &str,
        in_shape: &[usize],
        k_shape: &[usize],
        mode: Mode,
        boundary: Boundary,
        cval: f64,
    ) -> Result<CorrPlan> {
        check_shapes(what, in_shape, k_shape)?;
        if mode == Mode::Valid {
            let in1_ge = in_shape.iter().zip(k_shape).all(|(a, b)| a >= b);
            let in2_ge = in_shape.iter().zip(k_shape).all(|(a, b)| b >= a);
            if !in1_ge && !in2_ge {
                return Err(Error::Value(format!(
                    "{what}: for 'valid' mode, one must be at least as large as the other in every dimension, \
                     got shapes {in_shape:?} and {k_shape:?}"
                )));
            }
        }
        // 'valid' reads only where the inputs overlap; when in2 is the larger input the
        // offsets below reach outside in1, and those products must count as zero.
        let (boundary, cval) = if mode == Mode::Valid { (Boundary::Constant, 0.0) } else { (boundary, cval) };
        let mut out_shape = Vec::with_capacity(in_shape.len());
        let mut offset = Vec::with_capacity(in_shape.len());
        for (&n1, &n2) in in_shape.iter().zip(k_shape) {
            let full = n1 + n2 - 1;
            let out = match mode {
                Mode::Full => full,
                Mode::Same => n1,
                Mode::Valid => n1.max(n2) - n1.min(n2) + 1,
            };
            // Position of this output inside the full correlation (scipy's `_centered`).
            let start = (full - out) / 2;
            out_shape.push(out);
            offset.push((n2 - 1) as isize - start as isize);
        }
        // scipy's 'valid' mode swaps the inputs when in2 is the larger: no padding.
        let overlap_only = mode == Mode::Valid;
        Ok(CorrPlan {
            in_shape: in_shape.to_vec(),
            k_shape: k_shape.to_vec(),
            out_shape,
            offset,
            boundary,
            cval,
            overlap_only,
            skip_zero: false,
        })
    }

    /// scipy.ndimage.correlate(input, weights, mode, cval, origin): output has the
    /// input's shape; the kernel centre is `n // 2 + origin`.
    pub fn ndimage(
        in_shape: &[usize],
        k_shape: &[usize],
        origin: &[isize],
        boundary: Boundary,
        cval: f64,
    ) -> Result<CorrPlan> {
        if in_shape.len() != k_shape.len() {
            return Err(Error::Value(format!(
                "correlate: weights must have the same number of dimensions as the input, \
                 got input shape {in_shape:?} and weights shape {k_shape:?}"
            )));
        }
        if in_shape.is_empty() {
            return Err(Error::Value("correlate: input must have at least one dimension, got a 0-d array".into()));
        }
        if k_shape.contains(&0) {
            return Err(Error::Value(format!("correlate: weights must not be empty, got shape {k_shape:?}")));
        }
        if origin.len() != in_shape.len() {
            return Err(Error::Value(format!(
                "correlate: origin must have one entry per axis ({}), got {origin:?}",
                in_shape.len()
            )));
        }
        let mut offset = Vec::with_capacity(in_shape.len());
        for (&n, &o) in k_shape.iter().zip(origin) {
            let lo = -((n / 2) as isize);
            let hi = ((n - 1) / 2) as isize;
            if o < lo || o > hi {
                return Err(Error::Value(format!(
                    "correlate: invalid origin {o} for a filter of size {n}: it must lie in [{lo}, {hi}]"
                )));
            }
            offset.push((n / 2) as isize + o);
        }
        checked_numel(in_shape)?;
        checked_numel(k_shape)?;
        Ok(CorrPlan {
            in_shape: in_shape.to_vec(),
            k_shape: k_shape.to_vec(),
            out_shape: in_shape.to_vec(),
            offset,
            boundary,
            cval,
            overlap_only: false,
            skip_zero: false,
        })
    }

    /// Multiply-adds a direct evaluation performs (ignores skipped constant rows).
    pub fn direct_cost(&self) -> f64 {
        let o: f64 = self.out_shape.iter().map(|&d| d as f64).product();
        let k: f64 = self.k_shape.iter().map(|&d| d as f64).product();
        o * k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundary_maps_like_ndimage() {
        // n = 4: a b c d
        let r: Vec<_> = (-5..9).map(|i| Boundary::Reflect.map(i, 4).unwrap()).collect();
        assert_eq!(r, vec![3, 3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0, 0]);
        let m: Vec<_> = (-4..8).map(|i| Boundary::Mirror.map(i, 4).unwrap()).collect();
        assert_eq!(m, vec![2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]);
        let w: Vec<_> = (-5..6).map(|i| Boundary::Wrap.map(i, 4).unwrap()).collect();
        assert_eq!(w, vec![3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1]);
        assert_eq!(Boundary::Nearest.map(-3, 4), Some(0));
        assert_eq!(Boundary::Nearest.map(9, 4), Some(3));
        assert_eq!(Boundary::Constant.map(-1, 4), None);
        assert_eq!(Boundary::Mirror.map(-3, 1), Some(0));
    }

    #[test]
    fn signal_shapes_follow_scipy() {
        let p = CorrPlan::signal(&[10], &[3], Mode::Valid).unwrap();
        assert_eq!(p.out_shape, vec![8]);
        assert_eq!(p.offset, vec![0]);
        let p = CorrPlan::signal(&[10], &[3], Mode::Full).unwrap();
        assert_eq!(p.out_shape, vec![12]);
        assert_eq!(p.offset, vec![2]);
        let p = CorrPlan::signal(&[10], &[4], Mode::Same).unwrap();
        assert_eq!(p.out_shape, vec![10]);
        assert_eq!(p.offset, vec![2]);
        let p = CorrPlan::signal(&[3, 7], &[5, 9], Mode::Valid).unwrap();
        assert_eq!(p.out_shape, vec![3, 3]);
        assert!(CorrPlan::signal(&[3, 9], &[5, 7], Mode::Valid).is_err());
        assert!(CorrPlan::signal(&[3], &[3, 1], Mode::Full).is_err());
        assert!(CorrPlan::signal(&[0], &[1], Mode::Full).is_err());
    }

    #[test]
    fn ndimage_origin_range() {
        assert!(CorrPlan::ndimage(&[5], &[3], &[1], Boundary::Reflect, 0.0).is_ok());
        assert!(CorrPlan::ndimage(&[5], &[3], &[2], Boundary::Reflect, 0.0).is_err());
        assert!(CorrPlan::ndimage(&[5], &[4], &[-2], Boundary::Reflect, 0.0).is_ok());
        assert!(CorrPlan::ndimage(&[5], &[4], &[2], Boundary::Reflect, 0.0).is_err());
    }
}
