//! Upsampling bindings: one function per direction for every device. The storage of the
//! argument decides the backend (a numpy array: the CPU kernel; a GpuArray: the WGSL
//! kernel), after one validation by the spec (`crate::ops::resize`).

use super::gpu_bindings::{run as run_gpu, wrap, PyGpuArray};
use super::{contiguous, describe, run_native, to_numpy};
use crate::cpu;
use crate::element::Element;
use crate::gpu;
use crate::ops::resize::{Interpolation, UpsamplePlan};
use numpy::{PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

fn cpu_apply<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    shape: &[usize],
    plan: &UpsamplePlan,
    backward: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let arr = a.extract::<PyReadonlyArrayDyn<T>>()?;
    let data = contiguous(&arr)?;
    let out = run_native(py, || {
        if backward {
            cpu::resize::upsample_backward(&data, plan)
        } else {
            cpu::resize::upsample_forward(&data, plan)
        }
    })?;
    Ok(to_numpy(py, out, shape)?.into_any())
}

fn apply<'py>(py: Python<'py>, a: &Bound<'py, PyAny>, plan: UpsamplePlan, backward: bool, fname: &str) -> PyResult<Bound<'py, PyAny>> {
    let (want, shape) = if backward { (plan.out_shape(), plan.in_shape()) } else { (plan.in_shape(), plan.out_shape()) };
    if let Ok(g) = a.cast::<PyGpuArray>() {
        let t = g.borrow().t.clone();
        if t.shape != want {
            return Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{fname}: expected an array of shape {want:?}, got {:?}",
                t.shape
            )));
        }
        let out = run_gpu(py, || {
            if backward {
                gpu::ops::upsample_backward(&t, &plan)
            } else {
                gpu::ops::upsample_forward(&t, &plan)
            }
        })?;
        return Ok(wrap(py, out)?.into_bound(py).into_any());
    }
    let got: Vec<usize> = match a.cast::<numpy::PyUntypedArray>() {
        Ok(u) => u.shape().to_vec(),
        Err(_) => {
            return Err(PyTypeError::new_err(format!(
                "{fname}: expected a float32/float64 numpy array or a GpuArray, got {}",
                describe(a)
            )))
        }
    };
    if got != want {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{fname}: expected an array of shape {want:?}, got {got:?}"
        )));
    }
    if a.cast::<PyArrayDyn<f32>>().is_ok() {
        cpu_apply::<f32>(py, a, &shape, &plan, backward)
    } else if a.cast::<PyArrayDyn<f64>>().is_ok() {
        cpu_apply::<f64>(py, a, &shape, &plan, backward)
    } else {
        Err(PyTypeError::new_err(format!("{fname}: expected float32 or float64 values, got {}", describe(a))))
    }
}

fn shape_of(a: &Bound<'_, PyAny>) -> Vec<usize> {
    if let Ok(g) = a.cast::<PyGpuArray>() {
        return g.borrow().t.shape.clone();
    }
    a.cast::<numpy::PyUntypedArray>().map(|u| u.shape().to_vec()).unwrap_or_default()
}

/// Upsample images (batch, h, w, c) by integer factors `size` ('nearest' or
/// 'bilinear'); a numpy array runs on the CPU, a GpuArray on the GPU.
#[pyfunction]
#[pyo3(signature = (x, size, interpolation="nearest"))]
fn upsample2d<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, size: Vec<usize>, interpolation: &str) -> PyResult<Bound<'py, PyAny>> {
    let plan = UpsamplePlan::new(&shape_of(x), &size, Interpolation::parse(interpolation)?)?;
    apply(py, x, plan, false, "upsample2d")
}

/// The gradient of `upsample2d` with respect to its input, from the output gradient.
#[pyfunction]
#[pyo3(signature = (dy, x_shape, size, interpolation="nearest"))]
fn upsample2d_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    x_shape: Vec<usize>,
    size: Vec<usize>,
    interpolation: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let plan = UpsamplePlan::new(&x_shape, &size, Interpolation::parse(interpolation)?)?;
    apply(py, dy, plan, true, "upsample2d_backward")
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(upsample2d, m)?)?;
    m.add_function(wrap_pyfunction!(upsample2d_backward, m)?)?;
    Ok(())
}
