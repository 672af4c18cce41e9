//! Depthwise convolution bindings: one function per direction for every device (a numpy
//! array runs the CPU kernel, a GpuArray the WGSL one), validated once by the spec
//! (`crate::ops::depthwise`).

use super::gpu_bindings::{run as run_gpu, wrap, PyGpuArray};
use super::{contiguous, describe, run_native, to_numpy};
use crate::cpu;
use crate::element::Element;
use crate::gpu;
use crate::ops::depthwise::DepthwisePlan;
use crate::ops::pool::Padding;
use numpy::{PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

fn shape_of(a: &Bound<'_, PyAny>, fname: &str, what: &str) -> PyResult<Vec<usize>> {
    if let Ok(g) = a.cast::<PyGpuArray>() {
        return Ok(g.borrow().t.shape.clone());
    }
    a.cast::<numpy::PyUntypedArray>().map(|u| u.shape().to_vec()).map_err(|_| {
        PyTypeError::new_err(format!("{fname}: {what} must be a float numpy array or a GpuArray, got {}", describe(a)))
    })
}

fn plan(x: &Bound<'_, PyAny>, k: &Bound<'_, PyAny>, strides: &[usize], dilation: &[usize], padding: &str,
        fname: &str) -> PyResult<DepthwisePlan> {
    Ok(DepthwisePlan::new(&shape_of(x, fname, "x")?, &shape_of(k, fname, "kernel")?, strides, dilation,
                          Padding::parse(padding)?)?)
}

fn gpu_of(a: &Bound<'_, PyAny>) -> Option<gpu::GpuTensor> {
    a.cast::<PyGpuArray>().ok().map(|g| g.borrow().t.clone())
}

fn check_shape(got: &[usize], want: &[usize], fname: &str, what: &str) -> PyResult<()> {
    if got != want {
        return Err(PyValueError::new_err(format!("{fname}: {what} must have shape {want:?}, got {got:?}")));
    }
    Ok(())
}

fn cpu_forward<'py, T: Element + numpy::Element>(py: Python<'py>, x: &Bound<'py, PyAny>, k: &Bound<'py, PyAny>,
                                                  p: &DepthwisePlan) -> PyResult<Bound<'py, PyAny>> {
    let (xa, ka) = (x.extract::<PyReadonlyArrayDyn<T>>()?, k.extract::<PyReadonlyArrayDyn<T>>()?);
    let (xs, ks) = (contiguous(&xa)?, contiguous(&ka)?);
    let y = run_native(py, || cpu::depthwise::depthwise_forward(&xs, &ks, p))?;
    Ok(to_numpy(py, y, &p.out_shape())?.into_any())
}

#[allow(clippy::type_complexity)]
fn cpu_backward<'py, T: Element + numpy::Element>(py: Python<'py>, x: &Bound<'py, PyAny>, k: &Bound<'py, PyAny>,
                                                   dy: &Bound<'py, PyAny>, p: &DepthwisePlan, need_dx: bool)
                                                   -> PyResult<(Option<Bound<'py, PyAny>>, Bound<'py, PyAny>)> {
    let (xa, ka, da) = (x.extract::<PyReadonlyArrayDyn<T>>()?, k.extract::<PyReadonlyArrayDyn<T>>()?,
                        dy.extract::<PyReadonlyArrayDyn<T>>()?);
    let (xs, ks, ds) = (contiguous(&xa)?, contiguous(&ka)?, contiguous(&da)?);
    let (dx, dk) = run_native(py, || {
        let dx = if need_dx { Some(cpu::depthwise::depthwise_backward_input(&ds, &ks, p)?) } else { None };
        Ok((dx, cpu::depthwise::depthwise_backward_kernel(&xs, &ds, p)?))
    })?;
    let dx = match dx {
        Some(v) => Some(to_numpy(py, v, &p.in_shape())?.into_any()),
        None => None,
    };
    Ok((dx, to_numpy(py, dk, &p.kernel_shape())?.into_any()))
}

/// The float type shared by every CPU argument.
fn same_float(args: &[&Bound<'_, PyAny>], fname: &str) -> PyResult<bool> {
    let f32s = args.iter().all(|a| a.cast::<PyArrayDyn<f32>>().is_ok());
    if f32s {
        return Ok(true);
    }
    if args.iter().all(|a| a.cast::<PyArrayDyn<f64>>().is_ok()) {
        return Ok(false);
    }
    let got: Vec<String> = args.iter().map(|a| describe(a)).collect();
    Err(PyTypeError::new_err(format!(
        "{fname}: expected numpy arrays of one dtype (float32 or float64) or GpuArrays, got {}", got.join(", ")
    )))
}

/// Depthwise convolution of channels-last `x` (batch, *spatial, C) with `kernel`
/// (*k, C, M): output channel `c * M + m` from input channel `c` only.
#[pyfunction]
#[pyo3(signature = (x, kernel, strides, dilation, padding="valid"))]
fn depthwise_conv<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, kernel: &Bound<'py, PyAny>, strides: Vec<usize>,
                       dilation: Vec<usize>, padding: &str) -> PyResult<Bound<'py, PyAny>> {
    let fname = "depthwise_conv";
    let p = plan(x, kernel, &strides, &dilation, padding, fname)?;
    match (gpu_of(x), gpu_of(kernel)) {
        (Some(xt), Some(kt)) => {
            let y = run_gpu(py, || gpu::ops::depthwise_forward(&xt, &kt, &p))?;
            Ok(wrap(py, y)?.into_bound(py).into_any())
        }
        (None, None) => {
            if same_float(&[x, kernel], fname)? {
                cpu_forward::<f32>(py, x, kernel, &p)
            } else {
                cpu_forward::<f64>(py, x, kernel, &p)
            }
        }
        _ => Err(PyValueError::new_err(format!("{fname}: x and kernel must be on one device (both numpy arrays or \
                                                both GpuArrays)"))),
    }
}

/// `(dx or None, dkernel)` of `depthwise_conv` from the output gradient `dy`.
#[pyfunction]
#[pyo3(signature = (x, kernel, dy, strides, dilation, padding="valid", need_dx=true))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn depthwise_conv_backward<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, kernel: &Bound<'py, PyAny>,
                                dy: &Bound<'py, PyAny>, strides: Vec<usize>, dilation: Vec<usize>, padding: &str,
                                need_dx: bool) -> PyResult<(Option<Bound<'py, PyAny>>, Bound<'py, PyAny>)> {
    let fname = "depthwise_conv_backward";
    let p = plan(x, kernel, &strides, &dilation, padding, fname)?;
    check_shape(&shape_of(dy, fname, "dy")?, &p.out_shape(), fname, "dy")?;
    match (gpu_of(x), gpu_of(kernel), gpu_of(dy)) {
        (Some(xt), Some(kt), Some(dt)) => {
            let (dx, dk) = run_gpu(py, || {
                let dx = if need_dx { Some(gpu::ops::depthwise_backward_input(&dt, &kt, &p)?) } else { None };
                Ok((dx, gpu::ops::depthwise_backward_kernel(&xt, &dt, &p)?))
            })?;
            let dx = match dx {
                Some(t) => Some(wrap(py, t)?.into_bound(py).into_any()),
                None => None,
            };
            Ok((dx, wrap(py, dk)?.into_bound(py).into_any()))
        }
        (None, None, None) => {
            if same_float(&[x, kernel, dy], fname)? {
                cpu_backward::<f32>(py, x, kernel, dy, &p, need_dx)
            } else {
                cpu_backward::<f64>(py, x, kernel, dy, &p, need_dx)
            }
        }
        _ => Err(PyValueError::new_err(format!("{fname}: x, kernel and dy must be on one device"))),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(depthwise_conv, m)?)?;
    m.add_function(wrap_pyfunction!(depthwise_conv_backward, m)?)?;
    Ok(())
}
