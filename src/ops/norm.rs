//! The fused group / layer normalization spec. `x` is viewed as `(rows, pixels, groups,
//! cg)` in C order: each row's group is normalized by its own mean and variance over its
//! `pixels * cg` values, then channel `c = g * cg + j` is scaled by `gamma[c]` and shifted
//! by `beta[c]`. Layer normalization over the last axis is `pixels = groups = 1`;
//! channels-last group normalization is `rows = batch`, `pixels = spatial size`.

use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct NormPlan {
    pub rows: usize,
    pub pixels: usize,
    pub groups: usize,
    pub cg: usize,
    pub epsilon: f64,
}

impl NormPlan {
    pub fn new(numel: usize, rows: usize, pixels: usize, groups: usize, epsilon: f64) -> Result<NormPlan> {
        let per = rows.checked_mul(pixels).filter(|&v| v > 0);
        let c = match per {
            Some(p) if numel % p == 0 => numel / p,
            _ => 0,
        };
        if c == 0 || groups == 0 || c % groups != 0 {
            return Err(Error::Value(format!(
                "group_norm: {numel} values cannot be viewed as (rows={rows}, pixels={pixels}, channels) with \
                 channels a positive multiple of groups={groups}"
            )));
        }
        if !(epsilon >= 0.0) {
            return Err(Error::Value(format!("group_norm: epsilon must be >= 0, got {epsilon}")));
        }
        Ok(NormPlan { rows, pixels, groups, cg: c / groups, epsilon })
    }
    pub fn channels(&self) -> usize {
        self.groups * self.cg
    }
    /// Values of one row.
    pub fn row_len(&self) -> usize {
        self.pixels * self.channels()
    }
    /// Values per normalized group.
    pub fn group_len(&self) -> usize {
        self.pixels * self.cg
    }
}
