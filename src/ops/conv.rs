//! The convolution spec: Keras' Conv1D/Conv2D/Conv3D on channels-last data, with
//! TensorFlow's shape rules. `x` is `(batch, *spatial, c_in)`, the weights are in Keras
//! layout `(*kernel, c_in, c_out)`, the bias is `(c_out,)` and `y` is
//! `(batch, *out_spatial, c_out)`, all in C order.
//!
//! ```text
//! ke = (k - 1) * dilation + 1                         (effective kernel)
//! 'valid': out = floor((n - ke) / stride) + 1          (ke > n is an error)
//! 'same' : out = ceil(n / stride)
//!          pad = max((out - 1) * stride + ke - n, 0),  pad_before = pad / 2
//! y[b, o, co] = bias[co] + sum_{j, ci} x[b, o*stride + j*dilation - pad_before, ci] * w[j, ci, co]
//! ```
//!
//! with input cells outside the array counting as zero. Like every other deep-learning
//! "convolution" this is a correlation (the kernel is not flipped).

use crate::error::{checked_numel, Error, Result};
use crate::ops::pool::Padding;

/// One convolution, fully described and validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvPlan {
    pub batch: usize,
    /// Input spatial shape (1 to 3 axes).
    pub spatial: Vec<usize>,
    pub c_in: usize,
    pub c_out: usize,
    pub kernel: Vec<usize>,
    pub strides: Vec<usize>,
    pub dilation: Vec<usize>,
    pub padding: Padding,
    /// Output spatial shape.
    pub out_spatial: Vec<usize>,
    /// Per axis, how many zero cells precede the input (0 for 'valid').
    pub pad_before: Vec<usize>,
}

impl ConvPlan {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        batch: usize,
        spatial: &[usize],
        c_in: usize,
        c_out: usize,
        kernel: &[usize],
        strides: &[usize],
        dilation: &[usize],
        padding: Padding,
    ) -> Result<ConvPlan> {
        let nd = spatial.len();
        let in_shape = super::channels_last_shape(batch, spatial, c_in);
        if !(1..=3).contains(&nd) {
            return Err(Error::Value(format!(
                "convolution expects 1 to 3 spatial dimensions (input of shape (batch, *spatial, channels)), \
                 got {nd} in input shape {in_shape:?}"
            )));
        }
        if kernel.len() != nd || strides.len() != nd || dilation.len() != nd {
            return Err(Error::Value(format!(
                "kernel_size, strides and dilation_rate must have one entry per spatial dimension ({nd} for \
                 input shape {in_shape:?}), got kernel_size={kernel:?}, strides={strides:?}, \
                 dilation_rate={dilation:?}"
            )));
        }
        if kernel.contains(&0) {
            return Err(Error::Value(format!(
                "kernel_size entries must be >= 1, got kernel_size={kernel:?}"
            )));
        }
        if strides.contains(&0) {
            return Err(Error::Value(format!(
                "strides entries must be >= 1, got strides={strides:?}"
            )));
        }
        if dilation.contains(&0) {
            return Err(Error::Value(format!(
                "dilation_rate entries must be >= 1, got dilation_rate={dilation:?}"
            )));
        }
        if in_shape.contains(&0) {
            return Err(Error::Value(format!(
                "convolution needs a non-empty input, got shape {in_shape:?} (batch, *spatial, channels)"
            )));
        }
        if c_out == 0 {
            return Err(Error::Value(
                "convolution needs filters (c_out) >= 1, got 0".to_string(),
            ));
        }
        // Slices hold at most isize::MAX elements; bigger shapes cannot be real arrays.
        let fits = |shape: &[usize]| -> Result<()> {
            if checked_numel(shape)? > isize::MAX as usize {
                return Err(Error::Memory(format!(
                    "an array of shape {shape:?} has more elements than this machine can address"
                )));
            }
            Ok(())
        };
        fits(&in_shape)?;
        let mut w_shape = kernel.to_vec();
        w_shape.extend_from_slice(&[c_in, c_out]);
        fits(&w_shape)?;

        let mut out_spatial = Vec::with_capacity(nd);
        let mut pad_before = Vec::with_capacity(nd);
        for a in 0..nd {
            let (n, k, s, d) = (spatial[a], kernel[a], strides[a], dilation[a]);
            let ke = (k - 1)
                .checked_mul(d)
                .and_then(|v| v.checked_add(1))
                .filter(|&v| v <= isize::MAX as usize)
                .ok_or_else(|| {
                    Error::Value(format!(
                        "the effective kernel (kernel_size - 1) * dilation_rate + 1 overflows on spatial axis \
                         {a}: kernel_size={kernel:?}, dilation_rate={dilation:?}"
                    ))
                })?;
            let (out, pad) = padding.out_and_pad(n, ke, s).ok_or_else(|| {
                Error::Value(format!(
                    "the effective kernel ({ke} = (kernel_size - 1) * dilation_rate + 1 with \
                     kernel_size={kernel:?}, dilation_rate={dilation:?}) is larger than the input on \
                     spatial axis {a} ({ke} > {n}) with padding='valid'; input shape {in_shape:?} \
                     (batch, *spatial, channels)"
                ))
            })?;
            out_spatial.push(out);
            pad_before.push(pad);
        }
        let plan = ConvPlan {
            batch,
            spatial: spatial.to_vec(),
            c_in,
            c_out,
            kernel: kernel.to_vec(),
            strides: strides.to_vec(),
            dilation: dilation.to_vec(),
            padding,
            out_spatial,
            pad_before,
        };
        fits(&plan.out_shape())?;
        // The im2col matrix of one output row, and the work count, must be countable too.
        checked_numel(&[plan.batch, plan.out_positions(), plan.col_width(), plan.c_out, 2])?;
        Ok(plan)
    }

    /// Number of spatial axes.
    pub fn ndim(&self) -> usize {
        self.spatial.len()
    }

    /// `(batch, *spatial, c_in)`.
    pub fn in_shape(&self) -> Vec<usize> {
        super::channels_last_shape(self.batch, &self.spatial, self.c_in)
    }

    /// `(batch, *out_spatial, c_out)`.
    pub fn out_shape(&self) -> Vec<usize> {
        super::channels_last_shape(self.batch, &self.out_spatial, self.c_out)
    }

    /// Keras kernel layout `(*kernel, c_in, c_out)`.
    pub fn weight_shape(&self) -> Vec<usize> {
        let mut s = self.kernel.clone();
        s.push(self.c_in);
        s.push(self.c_out);
        s
    }

    /// Output positions per image: `prod(out_spatial)`.
    pub fn out_positions(&self) -> usize {
        self.out_spatial.iter().product()
    }

    /// Length of one im2col row, `prod(kernel) * c_in`: the weights seen as a
    /// `(col_width, c_out)` matrix.
    pub fn col_width(&self) -> usize {
        self.kernel.iter().product::<usize>() * self.c_in
    }

    /// Floating-point operations of the forward pass (a multiply-add counts 2; bias not
    /// counted). The backward pass costs the same for dW and again for dX.
    pub fn flops(&self) -> f64 {
        2.0 * self.batch as f64 * self.out_positions() as f64 * self.col_width() as f64 * self.c_out as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sp: &[usize], k: &[usize], s: &[usize], d: &[usize], pad: Padding) -> Result<ConvPlan> {
        ConvPlan::new(2, sp, 3, 4, k, s, d, pad)
    }

    #[test]
    fn conv_shapes_follow_tensorflow() {
        let p = plan(&[28, 28], &[3, 3], &[1, 1], &[1, 1], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![26, 26]);
        assert_eq!(p.out_shape(), vec![2, 26, 26, 4]);
        assert_eq!(p.weight_shape(), vec![3, 3, 3, 4]);
        assert_eq!(p.col_width(), 27);
        assert_eq!(p.flops(), 2.0 * 2.0 * 676.0 * 27.0 * 4.0);
        // valid, stride 2: floor((7 - 3) / 2) + 1 = 3
        let p = plan(&[7], &[3], &[2], &[1], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![3]);
        // valid, dilation 2: ke = 5, out = 7 - 5 + 1 = 3
        let p = plan(&[7], &[3], &[1], &[2], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![3]);
        // same: n=7, s=2 -> out 4, pad = 3*2 + 3 - 7 = 2, before 1
        let p = plan(&[7], &[3], &[2], &[1], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![4], vec![1]));
        // same, dilation 2, k=3: ke=5, n=6 s=1 -> out 6, pad 4, before 2
        let p = plan(&[6], &[3], &[1], &[2], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![6], vec![2]));
        // same, even kernel: n=5, k=4, s=1 -> pad 3, before 1 (TF puts the extra one after)
        let p = plan(&[5], &[4], &[1], &[1], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![5], vec![1]));
        // same, kernel larger than the input is fine
        let p = plan(&[3], &[8], &[2], &[1], Padding::Same).unwrap();
        assert_eq!((p.out_spatial.clone(), p.pad_before.clone()), (vec![2], vec![3]));
        // 3-D
        let p = plan(&[5, 6, 7], &[2, 3, 1], &[1, 2, 3], &[2, 1, 1], Padding::Valid).unwrap();
        assert_eq!(p.out_spatial, vec![3, 2, 3]);
        assert_eq!(p.in_shape(), vec![2, 5, 6, 7, 3]);
    }

    #[test]
    fn conv_bad_inputs() {
        let e = plan(&[4, 4], &[3, 3], &[1, 1], &[2, 1], Padding::Valid).unwrap_err();
        let m = e.to_string();
        assert!(matches!(e, Error::Value(_)));
        assert!(
            m.contains("5 > 4") && m.contains("[2, 4, 4, 3]") && m.contains("[3, 3]"),
            "{m}"
        );
        assert!(plan(&[], &[], &[], &[], Padding::Valid).is_err());
        assert!(plan(&[2; 4], &[1; 4], &[1; 4], &[1; 4], Padding::Valid).is_err());
        let e = plan(&[4, 4], &[2], &[1, 1], &[1, 1], Padding::Valid).unwrap_err();
        assert!(e.to_string().contains("kernel_size=[2]"), "{e}");
        assert!(plan(&[4, 4], &[2, 2], &[1], &[1, 1], Padding::Valid).is_err());
        assert!(plan(&[4, 4], &[2, 2], &[1, 1], &[1], Padding::Valid).is_err());
        assert!(plan(&[4, 4], &[0, 2], &[1, 1], &[1, 1], Padding::Same).is_err());
        assert!(plan(&[4, 4], &[2, 2], &[0, 1], &[1, 1], Padding::Same).is_err());
        assert!(plan(&[4, 4], &[2, 2], &[1, 1], &[1, 0], Padding::Same).is_err());
        let e = plan(&[4, 0], &[1, 1], &[1, 1], &[1, 1], Padding::Same).unwrap_err();
        assert!(e.to_string().contains("[2, 4, 0, 3]"), "{e}");
        assert!(ConvPlan::new(0, &[4], 1, 1, &[2], &[1], &[1], Padding::Valid).is_err());
        assert!(ConvPlan::new(1, &[4], 0, 1, &[2], &[1], &[1], Padding::Valid).is_err());
        assert!(ConvPlan::new(1, &[4], 1, 0, &[2], &[1], &[1], Padding::Valid).is_err());
        let big = usize::MAX / 2;
        let e = ConvPlan::new(big, &[big], 4, 1, &[1], &[1], &[1], Padding::Valid).unwrap_err();
        assert!(matches!(e, Error::Memory(_)), "{e:?}");
        let e = ConvPlan::new(1, &[4], 1 << 40, 1 << 40, &[1], &[1], &[1], Padding::Valid).unwrap_err();
        assert!(matches!(e, Error::Memory(_)), "{e:?}");
        let e = ConvPlan::new(1, &[4], 1, 1, &[1 << 20], &[1], &[usize::MAX / 2], Padding::Same).unwrap_err();
        assert!(matches!(e, Error::Value(_)), "{e:?}");
    }
}
