//! The depthwise convolution spec (Keras's DepthwiseConv1D/2D, `ops.depthwise_conv`),
//! channels-last: `x` is `(batch, *spatial, C)`, the kernel `(*k, C, M)` and `y`
//! `(batch, *out_spatial, C * M)`, output channel `c * M + m` from input channel `c`
//! only. Window arithmetic is the convolution's (`crate::ops::conv`): input cells
//! outside the array count as zeros that are multiplied by the weights (0 * inf is NaN,
//! as in the zero-padded reference and the dense convolution).

use crate::error::{Error, Result};
use crate::ops::conv::ConvPlan;
use crate::ops::pool::Padding;

/// One depthwise convolution, validated; geometry padded to three spatial axes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepthwisePlan {
    pub batch: usize,
    pub channels: usize,
    pub mult: usize,
    /// Original number of spatial axes (1 to 3).
    pub ndim: usize,
    pub spatial: Vec<usize>,
    pub out_spatial: Vec<usize>,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilation: Vec<usize>,
    pub pad_before: Vec<usize>,
}

impl DepthwisePlan {
    /// From the input's and the kernel's shapes.
    pub fn new(x_shape: &[usize], k_shape: &[usize], strides: &[usize], dilation: &[usize], padding: Padding)
               -> Result<DepthwisePlan> {
        let nd = k_shape.len().saturating_sub(2);
        if !(1..=3).contains(&nd) || x_shape.len() != nd + 2 {
            return Err(Error::Value(format!(
                "depthwise_conv: inputs (batch, *spatial, C) and a kernel (*k, C, M) with 1 to 3 spatial axes, \
                 got inputs {x_shape:?} and kernel {k_shape:?}"
            )));
        }
        let (c, m) = (k_shape[nd], k_shape[nd + 1]);
        if x_shape[nd + 1] != c {
            return Err(Error::Value(format!(
                "depthwise_conv: the input's channels ({}) must equal the kernel's (shape {k_shape:?}), got inputs \
                 {x_shape:?}", x_shape[nd + 1]
            )));
        }
        if m == 0 {
            return Err(Error::Value(format!("depthwise_conv: the depth multiplier must be >= 1, got kernel {k_shape:?}")));
        }
        let c_out = c.checked_mul(m).ok_or_else(|| Error::Memory("depthwise_conv: C * M overflows".into()))?;
        // the dense convolution's plan gives the window arithmetic and the size checks
        let cp = ConvPlan::new(x_shape[0], &x_shape[1..=nd], c, c_out, &k_shape[..nd], strides, dilation, padding)?;
        let pad3 = |v: &[usize], fill: usize| -> Vec<usize> {
            let mut o = vec![fill; 3 - nd];
            o.extend_from_slice(v);
            o
        };
        Ok(DepthwisePlan {
            batch: x_shape[0],
            channels: c,
            mult: m,
            ndim: nd,
            spatial: pad3(&cp.spatial, 1),
            out_spatial: pad3(&cp.out_spatial, 1),
            kernel: pad3(&cp.kernel, 1),
            strides: pad3(&cp.strides, 1),
            dilation: pad3(&cp.dilation, 1),
            pad_before: pad3(&cp.pad_before, 0),
        })
    }

    pub fn c_out(&self) -> usize {
        self.channels * self.mult
    }
    pub fn in_pixels(&self) -> usize {
        self.spatial.iter().product()
    }
    pub fn out_pixels(&self) -> usize {
        self.out_spatial.iter().product()
    }
    pub fn taps(&self) -> usize {
        self.kernel.iter().product()
    }
    pub fn in_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch];
        s.extend_from_slice(&self.spatial[3 - self.ndim..]);
        s.push(self.channels);
        s
    }
    pub fn out_shape(&self) -> Vec<usize> {
        let mut s = vec![self.batch];
        s.extend_from_slice(&self.out_spatial[3 - self.ndim..]);
        s.push(self.c_out());
        s
    }
    pub fn kernel_shape(&self) -> Vec<usize> {
        let mut s = self.kernel[3 - self.ndim..].to_vec();
        s.extend_from_slice(&[self.channels, self.mult]);
        s
    }
    /// The input coordinate read by output `o` through tap `j` on axis `a` (may be
    /// outside `0..spatial[a]`: a padding cell).
    #[inline(always)]
    pub fn input_at(&self, a: usize, o: usize, j: usize) -> isize {
        (o * self.strides[a] + j * self.dilation[a]) as isize - self.pad_before[a] as isize
    }
    /// The output coordinate that reads input `i` through tap `j` on axis `a`, if any.
    #[inline(always)]
    pub fn output_at(&self, a: usize, i: usize, j: usize) -> Option<usize> {
        let t = (i + self.pad_before[a]) as isize - (j * self.dilation[a]) as isize;
        if t < 0 || t as usize % self.strides[a] != 0 {
            return None;
        }
        let o = t as usize / self.strides[a];
        (o < self.out_spatial[a]).then_some(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_convolution() {
        let p = DepthwisePlan::new(&[2, 7, 6, 3], &[3, 3, 3, 2], &[2, 1], &[1, 2], Padding::Same).unwrap();
        assert_eq!(p.out_shape(), vec![2, 4, 6, 6]);
        assert_eq!(p.kernel_shape(), vec![3, 3, 3, 2]);
        assert_eq!(p.pad_before, vec![0, 1, 2]);
        let p = DepthwisePlan::new(&[1, 9, 4], &[3, 4, 1], &[1], &[1], Padding::Valid).unwrap();
        assert_eq!((p.out_shape(), p.in_shape()), (vec![1, 7, 4], vec![1, 9, 4]));
        assert!(DepthwisePlan::new(&[1, 9, 4], &[3, 3, 1], &[1], &[1], Padding::Valid).is_err());
        assert!(DepthwisePlan::new(&[1, 2, 4], &[3, 4, 1], &[1], &[1], Padding::Valid).is_err());
    }

    #[test]
    fn output_at_inverts_input_at() {
        let p = DepthwisePlan::new(&[1, 9, 2], &[3, 2, 1], &[2], &[2], Padding::Same).unwrap();
        for o in 0..p.out_spatial[2] {
            for j in 0..3 {
                let i = p.input_at(2, o, j);
                if i >= 0 && (i as usize) < 9 {
                    assert_eq!(p.output_at(2, i as usize, j), Some(o));
                }
            }
        }
    }
}
