//! The pooling spec: Keras' MaxPooling/AveragePooling 1D/2D/3D on channels-last data,
//! `x` of shape `(batch, *spatial, channels)` in C order, with TensorFlow's shape rules.
//!
//! ```text
//! 'valid': out = floor((n - pool) / stride) + 1            (pool > n is an error)
//! 'same' : out = ceil(n / stride)
//!          pad = max((out - 1) * stride + pool - n, 0),  pad_before = pad / 2
//! ```
//!
//! Output cell `o` on an axis covers input indices `o*stride - pad_before ..` (pool of
//! them); padded cells are not values: max ignores them and average divides by the
//! number of real cells in the window, as TensorFlow does. Every window holds at least
//! one real cell (for 'same', `pad_before < pool` and `(out-1)*stride < n`).

use crate::error::{checked_numel, Error, Result};

/// Which reduction a pooling window applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    Max,
    Avg,
}

impl PoolKind {
    pub fn parse(s: &str) -> Result<PoolKind> {
        match s {
            "max" => Ok(PoolKind::Max),
            "avg" => Ok(PoolKind::Avg),
            _ => Err(Error::Value(format!("pooling kind must be 'max' or 'avg', got {s:?}"))),
        }
    }
}

/// Keras' padding rule for pooling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    Valid,
    Same,
}

impl Padding {
    /// Case-insensitive, like Keras (`standardize_padding` lowercases).
    pub fn parse(s: &str) -> Result<Padding> {
        match s.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            _ => Err(Error::Value(format!("padding must be 'valid' or 'same', got {s:?}"))),
        }
    }

    /// Keras/TensorFlow window arithmetic on one axis of length `n` for a window of
    /// `window` cells (a pool, or a dilated kernel) moving by `stride`: the output
    /// length and the padding before the input. 'valid': `floor((n - window) / stride) + 1`
    /// and no padding, `None` when the window is longer than the axis; 'same':
    /// `ceil(n / stride)` outputs and `total / 2` padding before, with
    /// `total = max((out - 1) * stride + window - n, 0)`. Shared by pooling and
    /// convolution specs. `stride >= 1`.
    pub fn out_and_pad(self, n: usize, window: usize, stride: usize) -> Option<(usize, usize)> {
        match self {
            Padding::Valid => (window <= n).then(|| ((n - window) / stride + 1, 0)),
            Padding::Same => {
                // ceil(n / stride) without overflow for huge strides; (out - 1) * stride < n.
                let out = n / stride + usize::from(n % stride != 0);
                let total = ((out - 1) * stride).saturating_add(window).saturating_sub(n);
                Some((out, total / 2))
            }
        }
    }
}

/// One pooling, fully described and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolPlan {
    pub kind: PoolKind,
    pub batch: usize,
    /// Input spatial shape (1 to 3 axes).
    pub spatial: Vec<usize>,
    pub channels: usize,
    pub pool: Vec<usize>,
    pub strides: Vec<usize>,
    pub padding: Padding,
    /// Output spatial shape.
    pub out_spatial: Vec<usize>,
    /// Per axis, how many padded cells precede the input (0 for 'valid').
    pub pad_before: Vec<usize>,
}

impl PoolPlan {
    pub fn new(
        kind: PoolKind,
        batch: usize,
        spatial: &[usize],
        channels: usize,
        pool: &[usize],
        strides: &[usize],
        padding: Padding,
    ) -> Result<PoolPlan> {
        let nd = spatial.len();
        let in_shape = super::channels_last_shape(batch, spatial, channels);
        if !(1..=3).contains(&nd) {
            return Err(Error::Value(format!(
                "pooling expects 1 to 3 spatial dimensions (input of shape (batch, *spatial, channels)), \
                 got {nd} in input shape {in_shape:?}"
            )));
        }
        if pool.len() != nd || strides.len() != nd {
            return Err(Error::Value(format!(
                "pool_size and strides must have one entry per spatial dimension ({nd} for input shape \
                 {in_shape:?}), got pool_size={pool:?} and strides={strides:?}"
            )));
        }
        if pool.contains(&0) {
            return Err(Error::Value(format!("pool_size entries must be >= 1, got pool_size={pool:?}")));
        }
        if strides.contains(&0) {
            return Err(Error::Value(format!("strides entries must be >= 1, got strides={strides:?}")));
        }
        if in_shape.contains(&0) {
            return Err(Error::Value(format!(
                "pooling needs a non-empty input, got shape {in_shape:?} (batch, *spatial, channels)"
            )));
        }
        // Slices hold at most isize::MAX elements; bigger shapes cannot be real arrays.
        if checked_numel(&in_shape)? > isize::MAX as usize {
            return Err(Error::Memory(format!(
                "an array of shape {in_shape:?} has more elements than this machine can address"
            )));
        }

        let mut out_spatial = Vec::with_capacity(nd);
        let mut pad_before = Vec::with_capacity(nd);
        for a in 0..nd {
            let (n, p) = (spatial[a], pool[a]);
            let (out, pad) = padding.out_and_pad(n, p, strides[a]).ok_or_else(|| {
                Error::Value(format!(
                    "pool_size {pool:?} is larger than the input on spatial axis {a} \
                     ({p} > {n}) with padding='valid'; input shape {in_shape:?} \
                     (batch, *spatial, channels)"
                ))
            })?;
            out_spatial.push(out);
            pad_before.push(pad);
        }
        let plan = PoolPlan {
            kind,
            batch,
            spatial: spatial.to_vec(),
            channels,
            pool: pool.to_vec(),
            strides: strides.to_vec(),
            padding,
            out_spatial,
            pad_before,
        };
        checked_numel(&plan.out_shape())?;
        Ok(plan)
    }

    /// Number of spatial axes.
    pub fn ndim(&self) -> usize {
        self.spatial.len()
    }

    /// `(batch, *spatial, channels)`.
    pub fn in_shape(&self) -> Vec<usize> {
        super::channels_last_shape(self.batch, &self.spatial, self.channels)
    }

    /// `(batch, *out_spatial, channels)`.
    pub fn out_shape(&self) -> Vec<usize> {
        super::channels_last_shape(self.batch, &self.out_spatial, self.channels)
    }

    /// The real (non-padded) input indices `start..end` that output index `o` covers on
    /// spatial axis `axis`. Never empty for `o < out_spatial[axis]`.
    #[inline]
    pub fn window(&self, axis: usize, o: usize) -> (usize, usize) {
        let start = (o * self.strides[axis]) as isize - self.pad_before[axis] as isize;
        let end = start.saturating_add(self.pool[axis].min(isize::MAX as usize) as isize);
        let n = self.spatial[axis] as isize;
        (start.clamp(0, n) as usize, end.clamp(0, n) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sp: &[usize], pool: &[usize], st: &[usize], pad: Padding) -> Result<PoolPlan> {
        PoolPlan::new(PoolKind::Max, 2, sp, 3, pool, st, pad)
    }

    #[test]
    fn parse_names() {
        assert_eq!(PoolKind::parse("max").unwrap(), PoolKind::Max);
        assert_eq!(PoolKind::parse("avg").unwrap(), PoolKind::Avg);
        assert!(PoolKind::parse("mean").is_err());
        assert_eq!(Padding::parse("valid").unwrap(), Padding::Valid);
        assert_eq!(Padding::parse("SAME").unwrap(), Padding::Same);
        let e = Padding::parse("full").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("'valid'") && m.contains("'same'") && m.contains("full"), "{m}");
    }

    #[test]
    fn shapes_follow_tensorflow() {
        // valid
        let p = plan(&[5], &[2], &[2], Padding::Valid).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![2], vec![0]));
        let p = plan(&[4, 4], &[2, 2], &[2, 2], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![2, 2]);
        let p = plan(&[7, 5, 6], &[3, 2, 1], &[1, 3, 2], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![5, 2, 3]);
        assert_eq!(p.out_shape(), vec![2, 5, 2, 3, 3]);
        assert_eq!(p.in_shape(), vec![2, 7, 5, 6, 3]);
        // same: n=5, pool 2, stride 2 -> out 3, pad 1 (0 before, 1 after)
        let p = plan(&[5], &[2], &[2], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![3], vec![0]));
        // n=5, pool 3, stride 1 -> out 5, pad 2 (1 before)
        let p = plan(&[5], &[3], &[1], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![5], vec![1]));
        // n=4, pool 4, stride 1 -> out 4, pad 3 (1 before, 2 after)
        let p = plan(&[4], &[4], &[1], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![4], vec![1]));
        // pool larger than input is fine with 'same'
        let p = plan(&[3], &[8], &[2], Padding::Same).unwrap();
        assert_eq!(p.out_spatial, vec![2]);
        assert_eq!(p.pad_before, vec![(2 + 8 - 3) / 2]);
        // windows
        assert_eq!(p.window(0, 0), (0, 3));
        assert_eq!(p.window(0, 1), (0, 3));
        let p = plan(&[5], &[3], &[1], Padding::Same).unwrap();
        assert_eq!(p.window(0, 0), (0, 2));
        assert_eq!(p.window(0, 4), (3, 5));
        // huge stride, huge pool: no overflow
        let p = plan(&[5], &[usize::MAX], &[usize::MAX], Padding::Same).unwrap();
        assert_eq!(p.out_spatial, vec![1]);
    }

    #[test]
    fn bad_inputs() {
        let e = plan(&[3, 4], &[4, 2], &[1, 1], Padding::Valid).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Value(_)));
        assert!(m.contains("[4, 2]") && m.contains("[2, 3, 4, 3]"), "{m}");
        assert!(plan(&[], &[], &[], Padding::Valid).is_err());
        assert!(plan(&[2, 2, 2, 2], &[1; 4], &[1; 4], Padding::Valid).is_err());
        assert!(plan(&[4, 4], &[2], &[2, 2], Padding::Valid).is_err());
        assert!(plan(&[4, 4], &[2, 2], &[2], Padding::Valid).is_err());
        assert!(plan(&[4, 4], &[0, 2], &[1, 1], Padding::Same).is_err());
        assert!(plan(&[4, 4], &[2, 2], &[1, 0], Padding::Same).is_err());
        let e = plan(&[4, 0], &[1, 1], &[1, 1], Padding::Same).unwrap_err();
        assert!(e.to_string().contains("[2, 4, 0, 3]"), "{e}");
        assert!(PoolPlan::new(PoolKind::Avg, 0, &[4], 1, &[2], &[2], Padding::Valid).is_err());
        assert!(PoolPlan::new(PoolKind::Avg, 1, &[4], 0, &[2], &[2], Padding::Valid).is_err());
        let big = usize::MAX / 2;
        let e = PoolPlan::new(PoolKind::Max, big, &[big], 4, &[1], &[1], Padding::Valid).unwrap_err();
        assert!(matches!(e, Error::Memory(_)), "{e:?}");
    }
}
