//! Specs of the network operations whose parameters are names or shapes: activations
//! and losses (parsed once, here, into enums every backend takes), and the shape rules
//! of dense layers and global pooling. Bindings validate with these; kernels receive
//! the parsed values and never re-validate.

use crate::error::{Error, Result};

/// Keras activation identifiers with a native kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Linear,
    Relu,
    Sigmoid,
    Tanh,
    /// Over the last axis.
    Softmax,
}

impl Activation {
    pub fn parse(s: &str) -> Result<Activation> {
        match s {
            "linear" => Ok(Activation::Linear),
            "relu" => Ok(Activation::Relu),
            "sigmoid" => Ok(Activation::Sigmoid),
            "tanh" => Ok(Activation::Tanh),
            "softmax" => Ok(Activation::Softmax),
            _ => Err(Error::Value(format!(
                "activation must be one of 'linear', 'relu', 'sigmoid', 'tanh', 'softmax', got {s:?}"
            ))),
        }
    }
}

impl Activation {
    /// The number the WGSL kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            Activation::Linear => 0,
            Activation::Relu => 1,
            Activation::Sigmoid => 2,
            Activation::Tanh => 3,
            Activation::Softmax => 4,
        }
    }
}

/// Keras loss identifiers with a native kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    SparseCategoricalCrossentropy,
    CategoricalCrossentropy,
    BinaryCrossentropy,
    MeanSquaredError,
}

impl Loss {
    pub fn parse(s: &str) -> Result<Loss> {
        match s {
            "sparse_categorical_crossentropy" => Ok(Loss::SparseCategoricalCrossentropy),
            "categorical_crossentropy" => Ok(Loss::CategoricalCrossentropy),
            "binary_crossentropy" => Ok(Loss::BinaryCrossentropy),
            "mse" | "mean_squared_error" => Ok(Loss::MeanSquaredError),
            _ => Err(Error::Value(format!(
                "loss must be one of 'sparse_categorical_crossentropy', 'categorical_crossentropy', \
                 'binary_crossentropy', 'mse' (or 'mean_squared_error'), got {s:?}"
            ))),
        }
    }
}

impl Loss {
    /// The number the WGSL kernels switch on.
    pub fn code(self) -> u32 {
        match self {
            Loss::SparseCategoricalCrossentropy => 0,
            Loss::CategoricalCrossentropy => 1,
            Loss::BinaryCrossentropy => 2,
            Loss::MeanSquaredError => 3,
        }
    }
}

/// A dense layer on x (..., d_in) with kernel (d_in, d_out): `n` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DenseDims {
    pub n: usize,
    pub d_in: usize,
    pub d_out: usize,
}

impl DenseDims {
    pub fn new(fname: &str, x_shape: &[usize], w_shape: &[usize]) -> Result<Self> {
        let Some((&d_in, lead)) = x_shape.split_last() else {
            return Err(Error::Value(format!("{fname}: x must have at least one axis (..., features), got a scalar")));
        };
        if w_shape.len() != 2 || w_shape[0] != d_in {
            return Err(Error::Value(format!(
                "{fname}: w must have shape ({d_in}, units) for x of shape {x_shape:?}, got shape {w_shape:?}"
            )));
        }
        Ok(DenseDims { n: crate::error::checked_numel(lead)?, d_in, d_out: w_shape[1] })
    }
}

/// Global pooling of x (batch, *spatial, channels): `positions` cells per channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalDims {
    pub batch: usize,
    pub positions: usize,
    pub channels: usize,
}

impl GlobalDims {
    pub fn new(fname: &str, shape: &[usize]) -> Result<Self> {
        if shape.len() < 3 {
            return Err(Error::Value(format!(
                "{fname}: x must have shape (batch, *spatial, channels) with at least one spatial axis, got shape \
                 {shape:?}"
            )));
        }
        Ok(GlobalDims {
            batch: shape[0],
            positions: crate::error::checked_numel(&shape[1..shape.len() - 1])?,
            channels: shape[shape.len() - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_once_and_codes_are_distinct() {
        let acts = ["linear", "relu", "sigmoid", "tanh", "softmax"].map(|n| Activation::parse(n).unwrap().code());
        assert_eq!(acts, [0, 1, 2, 3, 4]);
        assert_eq!(Loss::parse("mean_squared_error").unwrap(), Loss::parse("mse").unwrap());
        assert!(Activation::parse("gelu").is_err() && Loss::parse("hinge").is_err());
    }

    #[test]
    fn dense_and_global_shapes() {
        assert_eq!(DenseDims::new("d", &[2, 3, 4], &[4, 5]).unwrap(), DenseDims { n: 6, d_in: 4, d_out: 5 });
        assert!(DenseDims::new("d", &[2, 3], &[4, 5]).is_err());
        assert_eq!(GlobalDims::new("g", &[2, 3, 4, 5]).unwrap(), GlobalDims { batch: 2, positions: 12, channels: 5 });
        assert!(GlobalDims::new("g", &[2, 5]).is_err());
    }
}
