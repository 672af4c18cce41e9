//! Rank-filter bindings: `rank_filter(input, footprint, rank, origin, mode, cval)` for
//! bool-free integer and float arrays (the Python layer views bool as uint8).

use super::{contiguous, run_native, shape_error};
use crate::cpu::rank::{rank_filter as rank_kernel, Rank};
use crate::ops::correlate::Boundary;
use crate::ops::rank::RankPlan;
use ndarray::{ArrayD, IxDyn};
use numpy::{IntoPyArray, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

#[allow(clippy::too_many_arguments)]
fn rank_impl<'py, T: Rank + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, T>,
    fshape: &[usize],
    footprint: Vec<bool>,
    rank: usize,
    origin: &[isize],
    boundary: Boundary,
    cval: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let plan = RankPlan::new(x.shape(), fshape, footprint, origin, boundary, rank)?;
    let c: T = match cval.extract::<PyReadonlyArrayDyn<T>>() {
        Ok(a) if a.len() == 1 => *a.as_array().iter().next().unwrap(),
        _ => {
            return Err(PyTypeError::new_err(format!(
                "rank filter: cval must be a one-element array of the input's dtype, got {}",
                super::describe(cval)
            )))
        }
    };
    let xs = contiguous(&x)?;
    let out = run_native(py, || rank_kernel(&xs, &plan, c))?;
    let a = ArrayD::from_shape_vec(IxDyn(&plan.shape), out).map_err(shape_error)?;
    Ok(a.into_pyarray(py).into_any())
}

/// scipy.ndimage's rank filter (minimum, maximum, median, any rank) of `input` over the
/// boolean `footprint` (as uint8, one dimension per input axis), `origin` per axis;
/// `cval` is a one-element array of the input's dtype (every int64 / uint64 exactly).
#[pyfunction]
#[pyo3(signature = (input, footprint, rank, origin, mode, cval))]
fn rank_filter<'py>(
    py: Python<'py>,
    input: &Bound<'py, PyAny>,
    footprint: PyReadonlyArrayDyn<'py, u8>,
    rank: usize,
    origin: Vec<isize>,
    mode: &str,
    cval: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let boundary = Boundary::parse_ndimage(mode)?;
    let fshape = footprint.shape().to_vec();
    let fp: Vec<bool> = footprint.as_array().iter().map(|&v| v != 0).collect();
    macro_rules! try_types {
        ($($t:ty),*) => {
            $(
                if let Ok(a) = input.extract::<PyReadonlyArrayDyn<$t>>() {
                    return rank_impl(py, a, &fshape, fp, rank, &origin, boundary, cval);
                }
            )*
        };
    }
    try_types!(u8, i8, u16, i16, u32, i32, u64, i64, f32, f64);
    Err(PyTypeError::new_err(format!(
        "rank filter: expected an integer, float32 or float64 numpy array, got {}",
        super::describe(input)
    )))
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(rank_filter, m)?)?;
    Ok(())
}
