//! The rank-filter spec: scipy.ndimage's minimum, maximum, median, rank and percentile
//! filters. Output `o` (the input's shape) is the `rank`-th smallest (0-based) of the
//! input values at `o + f - before` over the footprint's true positions `f`, with
//! `before = fshape // 2 + origin` per axis and positions outside the input resolved by
//! `boundary` (scipy's filter modes; 'constant' gives `cval`).

use crate::error::{checked_numel, Error, Result};
use crate::ops::correlate::Boundary;

#[derive(Clone, Debug, PartialEq)]
pub struct RankPlan {
    pub shape: Vec<usize>,
    pub fshape: Vec<usize>,
    /// C-order footprint over `fshape`.
    pub footprint: Vec<bool>,
    /// Per axis: how far the window reaches before the output position.
    pub before: Vec<usize>,
    pub boundary: Boundary,
    pub rank: usize,
    /// Number of true footprint positions.
    pub count: usize,
}

impl RankPlan {
    pub fn new(
        shape: &[usize],
        fshape: &[usize],
        footprint: Vec<bool>,
        origin: &[isize],
        boundary: Boundary,
        rank: usize,
    ) -> Result<RankPlan> {
        let nd = shape.len();
        if nd == 0 {
            return Err(Error::Value("rank filter: input must have at least one dimension".into()));
        }
        if fshape.len() != nd || origin.len() != nd {
            return Err(Error::Value(format!(
                "rank filter: footprint shape {fshape:?} and origin {origin:?} must have one entry per input \
                 axis ({nd}, input shape {shape:?})"
            )));
        }
        checked_numel(shape)?;
        let fn_ = checked_numel(fshape)?;
        if footprint.len() != fn_ {
            return Err(Error::Value(format!(
                "rank filter: footprint of {} values does not fill shape {fshape:?}",
                footprint.len()
            )));
        }
        let mut before = Vec::with_capacity(nd);
        for a in 0..nd {
            let f = fshape[a] as isize;
            if f < 1 {
                return Err(Error::Value(format!("rank filter: footprint shape {fshape:?} has an empty axis")));
            }
            let b = f / 2 + origin[a];
            if b < 0 || b >= f {
                return Err(Error::Value(format!(
                    "rank filter: invalid origin {} for a footprint of size {f} on axis {a}: it must lie in \
                     [{}, {}]",
                    origin[a],
                    -(f / 2),
                    (f - 1) / 2
                )));
            }
            before.push(b as usize);
        }
        let count = footprint.iter().filter(|&&t| t).count();
        if count == 0 {
            return Err(Error::Value("rank filter: the footprint has no true position".into()));
        }
        if rank >= count {
            return Err(Error::Value(format!(
                "rank filter: rank {rank} is not within the footprint's {count} positions"
            )));
        }
        Ok(RankPlan { shape: shape.to_vec(), fshape: fshape.to_vec(), footprint, before, boundary, rank, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_and_rank_are_checked() {
        let fp = vec![true; 3];
        assert!(RankPlan::new(&[5], &[3], fp.clone(), &[1], Boundary::Reflect, 0).is_ok());
        assert!(RankPlan::new(&[5], &[3], fp.clone(), &[2], Boundary::Reflect, 0).is_err());
        assert!(RankPlan::new(&[5], &[3], fp.clone(), &[-2], Boundary::Reflect, 0).is_err());
        assert!(RankPlan::new(&[5], &[3], fp.clone(), &[0], Boundary::Reflect, 3).is_err());
        assert!(RankPlan::new(&[5], &[3], vec![false; 3], &[0], Boundary::Reflect, 0).is_err());
        let p = RankPlan::new(&[5, 4], &[2, 3], vec![true; 6], &[0, -1], Boundary::Wrap, 5).unwrap();
        assert_eq!(p.before, vec![1, 0]);
    }
}
