//! Pooling bindings: `pool(x, kind, batch, spatial, channels, pool, strides, padding)`.

use super::{contiguous, run_native, to_numpy};
use crate::cpu;
use crate::element::Element;
use crate::ops::pool::{Padding, PoolKind, PoolPlan};
use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

fn pool_impl<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: PyReadonlyArrayDyn<'py, T>,
    plan: PoolPlan,
) -> PyResult<(Bound<'py, PyAny>, Vec<usize>)> {
    if x.len() != plan.in_shape().iter().product::<usize>() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "pool: array of shape {:?} does not hold batch {} x spatial {:?} x channels {}",
            x.shape(),
            plan.batch,
            plan.spatial,
            plan.channels
        )));
    }
    let xs = contiguous(&x)?;
    let out = run_native(py, || cpu::pool::pool_forward(&xs, &plan))?;
    let arr = to_numpy(py, out, &[out_len(&plan)])?;
    Ok((arr.into_any(), plan.out_spatial.clone()))
}

fn out_len(plan: &PoolPlan) -> usize {
    plan.out_shape().iter().product()
}

/// Max or average pooling of a channels-last buffer; returns (flat output, out_spatial).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn pool<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: &str,
    batch: usize,
    spatial: Vec<usize>,
    channels: usize,
    pool: Vec<usize>,
    strides: Vec<usize>,
    padding: &str,
) -> PyResult<(Bound<'py, PyAny>, Vec<usize>)> {
    let plan = PoolPlan::new(
        PoolKind::parse(kind)?,
        batch,
        &spatial,
        channels,
        &pool,
        &strides,
        Padding::parse(padding)?,
    )?;
    if let Ok(a) = x.extract::<PyReadonlyArrayDyn<f32>>() {
        pool_impl(py, a, plan)
    } else if let Ok(a) = x.extract::<PyReadonlyArrayDyn<f64>>() {
        pool_impl(py, a, plan)
    } else {
        Err(PyTypeError::new_err("pool: expected a float32 or float64 numpy array"))
    }
}

/// Output spatial shape of a pooling layer (the spec's rule, for Python's shape inference).
#[pyfunction]
fn pool_out_spatial(spatial: Vec<usize>, pool: Vec<usize>, strides: Vec<usize>, padding: &str) -> PyResult<Vec<usize>> {
    let plan = PoolPlan::new(PoolKind::Max, 1, &spatial, 1, &pool, &strides, Padding::parse(padding)?)?;
    Ok(plan.out_spatial)
}

/// Output spatial shape of a convolution layer.
#[pyfunction]
fn conv_out_spatial(
    spatial: Vec<usize>,
    kernel: Vec<usize>,
    strides: Vec<usize>,
    dilation: Vec<usize>,
    padding: &str,
) -> PyResult<Vec<usize>> {
    let plan = crate::ops::conv::ConvPlan::new(1, &spatial, 1, 1, &kernel, &strides, &dilation, Padding::parse(padding)?)?;
    Ok(plan.out_spatial)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(pool, m)?)?;
    m.add_function(wrap_pyfunction!(pool_out_spatial, m)?)?;
    m.add_function(wrap_pyfunction!(conv_out_spatial, m)?)
}
