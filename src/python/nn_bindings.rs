//! Neural-network bindings: the forward and backward kernels the Python layers and the
//! fit loop call (convolution, dense, pooling with argmax, activations, losses and
//! accuracy, batch normalization, dropout, global pooling, optimizer steps).
//!
//! Conventions: arrays are numpy float32 or float64, dispatched on the dtype of the
//! first array argument, and every other float array must have that dtype (a TypeError
//! otherwise; targets and labels are converted). Shapes are checked here against the
//! kernel's layout and reported as ValueError naming the expected and received shapes.
//! Optimizer steps update C-contiguous writeable arrays in place.

use super::gpu_bindings as gpu;
use super::{contiguous, describe, lead_dtype, run_native, shape_error, to_numpy, Dt};
use crate::cpu;
use crate::cpu::nn::{Activation, Loss};
use crate::element::Element;
use crate::error::{try_filled, Error};
use crate::ops::conv::ConvPlan;
use crate::ops::pool::{Padding, PoolKind, PoolPlan};
use ndarray::{ArrayD, IxDyn};
use numpy::{
    IntoPyArray, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyReadwriteArrayDyn, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::IntoPyObjectExt;
use std::borrow::Cow;

/// One binding for every device: a GpuArray argument sends the call to the GPU
/// binding, anything else goes on to the CPU kernel.
macro_rules! on_gpu {
    ($py:expr, $lead:expr, $call:expr) => {
        if $lead.cast::<gpu::PyGpuArray>().is_ok() {
            return $call.and_then(|r| pyo3::IntoPyObjectExt::into_bound_py_any(r, $py));
        }
    };
}

fn value_error(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// A read-only view of an array that must have the dtype `T` of the lead array.
fn arr<'py, T: Element + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    fname: &str,
    what: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    let a = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: {what} must be a {} numpy array (the dtype of the other float inputs), got {}",
            T::NAME,
            describe(obj)
        ))
    })?;
    a.try_readonly().map_err(|e| {
        value_error(format!("{fname}: cannot read {what}: it is being written elsewhere ({e})"))
    })
}

/// A writeable view for an in-place update: dtype `T`, C-contiguous, writeable, and not
/// passed twice.
fn arr_mut<'py, T: Element + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    fname: &str,
    what: &str,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    let a = obj.cast::<PyArrayDyn<T>>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{fname}: {what} must be a {} numpy array (the parameter's dtype), got {}",
            T::NAME,
            describe(obj)
        ))
    })?;
    if !a.is_c_contiguous() {
        return Err(value_error(format!(
            "{fname}: {what} is updated in place and must be C-contiguous; got a non-contiguous view of \
             shape {:?} (pass np.ascontiguousarray(...) and keep that array)",
            a.shape()
        )));
    }
    a.try_readwrite().map_err(|e| {
        value_error(format!(
            "{fname}: {what} must be a writeable array that is not also passed as another argument ({e})"
        ))
    })
}

/// An array of any real numeric dtype as dtype `T` (copied by numpy when it differs):
/// targets may come as integers or the other float type.
fn arr_coerced<'py, T: Element + numpy::Element>(
    obj: &Bound<'py, PyAny>,
    fname: &str,
    what: &str,
) -> PyResult<PyReadonlyArrayDyn<'py, T>> {
    if obj.cast::<PyArrayDyn<T>>().is_err() {
        if let Ok(a) = obj.cast::<PyUntypedArray>() {
            let kind: String = a.dtype().getattr("kind")?.extract()?;
            if matches!(kind.as_str(), "b" | "i" | "u" | "f") {
                let conv = obj.call_method1("astype", (T::NAME,))?;
                return arr::<T>(&conv, fname, what);
            }
        }
    }
    arr::<T>(obj, fname, what)
}

/// Class labels as i64: integer arrays as they are, float arrays when every value is a
/// whole number (Keras accepts both).
fn labels(obj: &Bound<'_, PyAny>, fname: &str) -> PyResult<(Vec<i64>, Vec<usize>)> {
    fn ints(a: &PyReadonlyArrayDyn<'_, i64>) -> Result<Vec<i64>, Error> {
        let v = a.as_array();
        let mut out = try_filled(v.len(), 0i64, "the labels")?;
        for (o, &x) in out.iter_mut().zip(v.iter()) {
            *o = x;
        }
        Ok(out)
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<i64>>() {
        let r = a.try_readonly().map_err(|e| value_error(format!("{fname}: cannot read y_true ({e})")))?;
        return Ok((ints(&r)?, r.shape().to_vec()));
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f32>>() {
        let r = a.try_readonly().map_err(|e| value_error(format!("{fname}: cannot read y_true ({e})")))?;
        return Ok((cpu::nn::labels_from_floats(&contiguous(&r)?)?, r.shape().to_vec()));
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<f64>>() {
        let r = a.try_readonly().map_err(|e| value_error(format!("{fname}: cannot read y_true ({e})")))?;
        return Ok((cpu::nn::labels_from_floats(&contiguous(&r)?)?, r.shape().to_vec()));
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        let kind: String = a.dtype().getattr("kind")?.extract()?;
        if matches!(kind.as_str(), "b" | "i" | "u") {
            let conv = obj.call_method1("astype", ("int64",))?;
            return labels(&conv, fname);
        }
    }
    Err(PyTypeError::new_err(format!(
        "{fname}: y_true must be a numpy array of integer class labels (any integer dtype, or floats holding \
         whole numbers), got {}",
        describe(obj)
    )))
}

fn check_shape(fname: &str, what: &str, got: &[usize], want: &[usize]) -> PyResult<()> {
    if got != want {
        return Err(value_error(format!("{fname}: {what} must have shape {want:?}, got shape {got:?}")));
    }
    Ok(())
}

pub(crate) fn to_numpy_u32<'py>(py: Python<'py>, v: Vec<u32>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    let a = ArrayD::from_shape_vec(IxDyn(shape), v)
        .map_err(shape_error)?;
    Ok(a.into_pyarray(py).into_any())
}

fn out<'py, T: Element + numpy::Element>(py: Python<'py>, v: Vec<T>, shape: &[usize]) -> PyResult<Bound<'py, PyAny>> {
    Ok(to_numpy(py, v, shape)?.into_any())
}

fn spatial_params(nd: usize, v: Option<Vec<usize>>) -> Vec<usize> {
    v.unwrap_or_else(|| vec![1; nd])
}

// ---------------------------------------------------------------------------------
// Convolution and dense
// ---------------------------------------------------------------------------------

/// Validate x (batch, *spatial, c_in) and w (*kernel, c_in, c_out) and build the plan.
pub(crate) fn conv_plan(
    fname: &str,
    xs: &[usize],
    ws: &[usize],
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<ConvPlan> {
    if !(3..=5).contains(&xs.len()) {
        return Err(value_error(format!(
            "{fname}: x must have shape (batch, *spatial, channels) with 1 to 3 spatial axes, got shape {xs:?}"
        )));
    }
    let nd = xs.len() - 2;
    if ws.len() != nd + 2 || ws[nd] != xs[nd + 1] {
        return Err(value_error(format!(
            "{fname}: w must have shape (*kernel_size, in_channels, filters) with {nd} kernel axes and \
             in_channels = {} (x's last axis, x of shape {xs:?}), got shape {ws:?}",
            xs[nd + 1]
        )));
    }
    let plan = ConvPlan::new(
        xs[0],
        &xs[1..=nd],
        xs[nd + 1],
        ws[nd + 1],
        &ws[..nd],
        &spatial_params(nd, strides),
        &spatial_params(nd, dilation),
        Padding::parse(padding)?,
    )?;
    Ok(plan)
}

/// Keras Conv1D/2D/3D forward (channels-last): x (batch, *spatial, c_in), w (*kernel,
/// c_in, c_out), b (c_out,) or None; returns y (batch, *out_spatial, c_out).
#[pyfunction]
#[pyo3(signature = (x, w, b=None, strides=None, dilation=None, padding="valid"))]
fn conv_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_conv_forward(py, x, w, b, strides, dilation, padding));
    dispatch!(x, "conv_forward", "x",
              conv_act_forward_t(py, "conv_forward", x, w, b, Activation::Linear, strides, dilation, padding))
}

#[allow(clippy::too_many_arguments)]
fn conv_act_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    fname: &str,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
    act: Activation,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let f = fname;
    let (xa, wa) = (arr::<T>(x, f, "x")?, arr::<T>(w, f, "w")?);
    let ba = b.map(|b| arr::<T>(b, f, "b")).transpose()?;
    let plan = conv_plan(f, xa.shape(), wa.shape(), strides, dilation, padding)?;
    if let Some(ba) = &ba {
        check_shape(f, "b", ba.shape(), &[plan.c_out])?;
    }
    let (xs, ws) = (contiguous(&xa)?, contiguous(&wa)?);
    let bs = ba.as_ref().map(contiguous).transpose()?;
    let y = run_native(py, || cpu::conv::conv_forward_act(&xs, &ws, bs.as_deref(), act, &plan))?;
    out(py, y, &plan.out_shape())
}

/// `act(conv(x, w) + b)` in one pass on the CPU (numpy arrays), `act` one of 'linear',
/// 'relu', 'sigmoid', 'tanh': the activation is applied to each piece of the output in
/// cache. Its gradient is `conv_act_backward`, from the output.
#[pyfunction]
#[pyo3(signature = (x, w, b, activation, strides=None, dilation=None, padding="valid"))]
#[allow(clippy::too_many_arguments)]
fn conv_act_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
    activation: &str,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let act = Activation::parse(activation)?;
    dispatch!(x, "conv_act_forward", "x", conv_act_forward_t(py, "conv_act_forward", x, w, b, act, strides, dilation, padding))
}

#[allow(clippy::too_many_arguments)]
fn conv_act_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    fname: &str,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    y: Option<&Bound<'py, PyAny>>,
    dy: &Bound<'py, PyAny>,
    act: Activation,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
    need_dx: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let f = fname;
    let (xa, wa, ga) = (arr::<T>(x, f, "x")?, arr::<T>(w, f, "w")?, arr::<T>(dy, f, "dy")?);
    let ya = y.map(|y| arr::<T>(y, f, "y")).transpose()?;
    let plan = conv_plan(f, xa.shape(), wa.shape(), strides, dilation, padding)?;
    if let Some(ya) = &ya {
        check_shape(f, "y", ya.shape(), &plan.out_shape())?;
    }
    check_shape(f, "dy", ga.shape(), &plan.out_shape())?;
    let (xs, ws, gs) = (contiguous(&xa)?, contiguous(&wa)?, contiguous(&ga)?);
    let ys = ya.as_ref().map(contiguous).transpose()?;
    let g = run_native(py, || match ys.as_deref() {
        Some(ys) => cpu::conv::conv_backward_act(&xs, &ws, ys, &gs, act, &plan, need_dx),
        None => cpu::conv::conv_backward(&xs, &ws, &gs, &plan, need_dx),
    })?;
    let dx = g.dx.map(|d| out(py, d, &plan.in_shape())).transpose()?;
    let dw = out(py, g.dw, &plan.weight_shape())?;
    let db = out(py, g.db, &[plan.c_out])?;
    (dx, dw, db).into_bound_py_any(py)
}

/// (dx or None, dw, db) of `y = conv_act_forward(x, w, b, activation)` from `y` and `dy`.
#[pyfunction]
#[pyo3(signature = (x, w, y, dy, activation, strides=None, dilation=None, padding="valid", need_dx=true))]
#[allow(clippy::too_many_arguments)]
fn conv_act_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    activation: &str,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
    need_dx: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let act = Activation::parse(activation)?;
    dispatch!(x, "conv_act_backward", "x",
              conv_act_backward_t(py, "conv_act_backward", x, w, Some(y), dy, act, strides, dilation, padding, need_dx))
}

fn conv_input_grad_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x_shape: Vec<usize>,
    w: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "conv_input_grad";
    let (wa, ga) = (arr::<T>(w, F, "w")?, arr::<T>(dy, F, "dy")?);
    let plan = conv_plan(F, &x_shape, wa.shape(), strides, dilation, padding)?;
    crate::error::checked_numel(&x_shape).map_err(PyErr::from)?;
    check_shape(F, "dy", ga.shape(), &plan.out_shape())?;
    let (ws, gs) = (contiguous(&wa)?, contiguous(&ga)?);
    let dx = run_native(py, || cpu::conv::conv_input_grad(&ws, &gs, &plan))?;
    out(py, dx, &plan.in_shape())
}

/// The input gradient of a convolution whose input has shape `x_shape` (the transposed
/// convolution of `dy` with `w`), without the weight and bias gradients. CPU arrays.
#[pyfunction]
#[pyo3(signature = (x_shape, w, dy, strides=None, dilation=None, padding="valid"))]
fn conv_input_grad<'py>(
    py: Python<'py>,
    x_shape: Vec<usize>,
    w: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(w, "conv_input_grad", "w", conv_input_grad_t(py, x_shape, w, dy, strides, dilation, padding))
}

/// Convolution backward: returns (dx or None when need_dx is False, dw, db).
#[pyfunction]
#[pyo3(signature = (x, w, dy, strides=None, dilation=None, padding="valid", need_dx=true))]
#[allow(clippy::too_many_arguments)]
fn conv_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    strides: Option<Vec<usize>>,
    dilation: Option<Vec<usize>>,
    padding: &str,
    need_dx: bool,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_conv_backward(py, x, w, dy, strides, dilation, padding, need_dx));
    dispatch!(x, "conv_backward", "x", conv_act_backward_t(py, "conv_backward", x, w, None, dy, Activation::Linear,
                                                           strides, dilation, padding, need_dx))
}

/// (n, d_in, d_out) of a dense layer on x (*lead, d_in) with w (d_in, d_out).
fn dense_dims(fname: &str, xs: &[usize], ws: &[usize]) -> PyResult<(usize, usize, usize)> {
    let d = crate::ops::nn::DenseDims::new(fname, xs, ws)?;
    Ok((d.n, d.d_in, d.d_out))
}

fn dense_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "dense_forward";
    let (xa, wa) = (arr::<T>(x, F, "x")?, arr::<T>(w, F, "w")?);
    let ba = b.map(|b| arr::<T>(b, F, "b")).transpose()?;
    let (n, d_in, d_out) = dense_dims(F, xa.shape(), wa.shape())?;
    if let Some(ba) = &ba {
        check_shape(F, "b", ba.shape(), &[d_out])?;
    }
    let mut yshape = xa.shape().to_vec();
    *yshape.last_mut().unwrap_or(&mut 0) = d_out;
    let (xs, ws) = (contiguous(&xa)?, contiguous(&wa)?);
    let bs = ba.as_ref().map(contiguous).transpose()?;
    let y = run_native(py, || cpu::conv::dense_forward(&xs, &ws, bs.as_deref(), n, d_in, d_out))?;
    out(py, y, &yshape)
}

/// Keras Dense forward on the last axis: x (..., d_in), w (d_in, d_out), b (d_out,) or
/// None; returns y (..., d_out).
#[pyfunction]
#[pyo3(signature = (x, w, b=None))]
fn dense_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    b: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_dense_forward(py, x, w, b));
    dispatch!(x, "dense_forward", "x", dense_forward_t(py, x, w, b))
}

fn dense_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    need_dx: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "dense_backward";
    let (xa, wa, ga) = (arr::<T>(x, F, "x")?, arr::<T>(w, F, "w")?, arr::<T>(dy, F, "dy")?);
    let (n, d_in, d_out) = dense_dims(F, xa.shape(), wa.shape())?;
    let mut yshape = xa.shape().to_vec();
    *yshape.last_mut().unwrap_or(&mut 0) = d_out;
    check_shape(F, "dy", ga.shape(), &yshape)?;
    let xshape = xa.shape().to_vec();
    let (xs, ws, gs) = (contiguous(&xa)?, contiguous(&wa)?, contiguous(&ga)?);
    let (dx, dw, db) = run_native(py, || cpu::conv::dense_backward(&xs, &ws, &gs, n, d_in, d_out, need_dx))?;
    let dx = dx.map(|d| out(py, d, &xshape)).transpose()?;
    (dx, out(py, dw, &[d_in, d_out])?, out(py, db, &[d_out])?).into_bound_py_any(py)
}

/// Dense backward: returns (dx or None when need_dx is False, dw, db).
#[pyfunction]
#[pyo3(signature = (x, w, dy, need_dx=true))]
fn dense_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    w: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
    need_dx: bool,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_dense_backward(py, x, w, dy, need_dx));
    dispatch!(x, "dense_backward", "x", dense_backward_t(py, x, w, dy, need_dx))
}

// ---------------------------------------------------------------------------------
// Windowed pooling for training (argmax kept for the backward pass)
// ---------------------------------------------------------------------------------

pub(crate) fn pool_plan(
    fname: &str,
    x_shape: &[usize],
    kind: PoolKind,
    pool: &[usize],
    strides: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<PoolPlan> {
    if !(3..=5).contains(&x_shape.len()) {
        return Err(value_error(format!(
            "{fname}: x must have shape (batch, *spatial, channels) with 1 to 3 spatial axes, got shape {x_shape:?}"
        )));
    }
    let nd = x_shape.len() - 2;
    // Keras: strides default to pool_size.
    let strides = strides.unwrap_or_else(|| pool.to_vec());
    Ok(PoolPlan::new(kind, x_shape[0], &x_shape[1..=nd], x_shape[nd + 1], pool, &strides, Padding::parse(padding)?)?)
}

fn pool_train_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: PoolKind,
    pool: Vec<usize>,
    strides: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "pool_train_forward";
    let xa = arr::<T>(x, F, "x")?;
    let plan = pool_plan(F, xa.shape(), kind, &pool, strides, padding)?;
    let xs = contiguous(&xa)?;
    let shape = plan.out_shape();
    match kind {
        PoolKind::Max => {
            let (y, idx) = run_native(py, || cpu::pool::max_pool_forward_argmax(&xs, &plan))?;
            (out(py, y, &shape)?, to_numpy_u32(py, idx, &shape)?).into_bound_py_any(py)
        }
        PoolKind::Avg => {
            let y = run_native(py, || cpu::pool::pool_forward(&xs, &plan))?;
            (out(py, y, &shape)?, py.None()).into_bound_py_any(py)
        }
    }
}

/// Max or average pooling of x (batch, *spatial, channels) for training: returns
/// (y, argmax) where argmax (uint32, y's shape, flat indices into x) is None for 'avg'.
#[pyfunction]
#[pyo3(signature = (x, kind, pool, strides=None, padding="valid"))]
fn pool_train_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kind: &str,
    pool: Vec<usize>,
    strides: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_pool_forward(py, x, kind, pool.clone(), strides.clone(), padding));
    let kind = PoolKind::parse(kind)?;
    dispatch!(x, "pool_train_forward", "x", pool_train_forward_t(py, x, kind, pool, strides, padding))
}

/// Argmax indices as u32 from a uint32 array (what pool_train_forward returns) or int64.
fn argmax_indices(obj: &Bound<'_, PyAny>, fname: &str) -> PyResult<(Vec<u32>, Vec<usize>)> {
    if let Ok(a) = obj.cast::<PyArrayDyn<u32>>() {
        let r = a.try_readonly().map_err(|e| value_error(format!("{fname}: cannot read argmax ({e})")))?;
        let v = r.as_array();
        let mut o = try_filled(v.len(), 0u32, "the argmax indices")?;
        for (d, &s) in o.iter_mut().zip(v.iter()) {
            *d = s;
        }
        return Ok((o, r.shape().to_vec()));
    }
    if let Ok(a) = obj.cast::<PyArrayDyn<i64>>() {
        let r = a.try_readonly().map_err(|e| value_error(format!("{fname}: cannot read argmax ({e})")))?;
        let v = r.as_array();
        let mut o = try_filled(v.len(), 0u32, "the argmax indices")?;
        for (d, &s) in o.iter_mut().zip(v.iter()) {
            *d = u32::try_from(s)
                .map_err(|_| value_error(format!("{fname}: argmax index {s} is out of range")))?;
        }
        return Ok((o, r.shape().to_vec()));
    }
    Err(PyTypeError::new_err(format!(
        "{fname}: argmax must be the uint32 (or int64) index array pool_train_forward returned, got {}",
        describe(obj)
    )))
}

#[allow(clippy::too_many_arguments)]
fn pool_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    kind: PoolKind,
    argmax: Option<&Bound<'py, PyAny>>,
    x_shape: Vec<usize>,
    pool: Vec<usize>,
    strides: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "pool_backward";
    let ga = arr::<T>(dy, F, "dy")?;
    let plan = pool_plan(F, &x_shape, kind, &pool, strides, padding)?;
    check_shape(F, "dy", ga.shape(), &plan.out_shape())?;
    let gs = contiguous(&ga)?;
    let x_len = crate::error::checked_numel(&x_shape)?;
    let dx = match kind {
        PoolKind::Max => {
            let Some(argmax) = argmax else {
                return Err(value_error(format!(
                    "{F}: kind='max' needs the argmax array pool_train_forward returned, got None"
                )));
            };
            let batch = plan.batch;
            // The uint32 array pool_train_forward made is read in place (C order);
            // anything else is converted once.
            let ro = argmax.cast::<PyArrayDyn<u32>>().ok().and_then(|a| a.try_readonly().ok());
            let converted;
            let (idx, ishape): (&[u32], &[usize]) =
                match ro.as_ref().filter(|r| r.is_c_contiguous()).and_then(|r| r.as_slice().ok().map(|s| (s, r.shape()))) {
                    Some(borrowed) => borrowed,
                    None => {
                        converted = argmax_indices(argmax, F)?;
                        (&converted.0, &converted.1)
                    }
                };
            check_shape(F, "argmax", ishape, &plan.out_shape())?;
            run_native(py, || cpu::pool::max_pool_backward_batched(&gs, idx, x_len, batch))?
        }
        PoolKind::Avg => run_native(py, || cpu::pool::avg_pool_backward(&gs, &plan))?,
    };
    out(py, dx, &x_shape)
}

/// Pooling backward: dx of shape x_shape from dy (batch, *out_spatial, channels); 'max'
/// needs the argmax from pool_train_forward, 'avg' ignores it.
#[pyfunction]
#[pyo3(signature = (dy, kind, argmax, x_shape, pool, strides=None, padding="valid"))]
#[allow(clippy::too_many_arguments)]
fn pool_backward<'py>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    kind: &str,
    argmax: Option<&Bound<'py, PyAny>>,
    x_shape: Vec<usize>,
    pool: Vec<usize>,
    strides: Option<Vec<usize>>,
    padding: &str,
) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, dy, gpu::gpu_pool_backward(py, dy, kind, argmax, x_shape.clone(), pool.clone(), strides.clone(), padding));
    let kind = PoolKind::parse(kind)?;
    dispatch!(dy, "pool_backward", "dy", pool_backward_t(py, dy, kind, argmax, x_shape, pool, strides, padding))
}

// ---------------------------------------------------------------------------------
// Activations
// ---------------------------------------------------------------------------------

fn last_axis(fname: &str, act: Activation, shape: &[usize]) -> PyResult<usize> {
    match shape.last() {
        Some(&l) => Ok(l),
        None if act == Activation::Softmax => {
            Err(value_error(format!("{fname}: softmax needs an array with at least one axis, got a scalar")))
        }
        None => Ok(1),
    }
}

fn activation_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    act: Activation,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "activation_forward";
    let xa = arr::<T>(x, F, "x")?;
    let last = last_axis(F, act, xa.shape())?;
    let xs = contiguous(&xa)?;
    let y = run_native(py, || cpu::nn::activation_forward(act, &xs, last))?;
    out(py, y, xa.shape())
}

fn binary_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    op: cpu::elementwise::BinaryOp,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "binary";
    let aa = arr::<T>(a, F, "a")?;
    let ba = arr::<T>(b, F, "b")?;
    let (sa, sb) = (aa.shape().to_vec(), ba.shape().to_vec());
    // b of a's shape, or a vector along a's last axis (any leading 1s)
    let vector = !sa.is_empty() && sb.last() == sa.last() && sb.iter().rev().skip(1).all(|&d| d == 1)
        && sb.len() <= sa.len();
    if sb != sa && !vector {
        return Err(PyValueError::new_err(format!(
            "binary: b must have a's shape {sa:?} or be a vector along its last axis, got shape {sb:?}"
        )));
    }
    let xs = contiguous(&aa)?;
    let ys = contiguous(&ba)?;
    let y = run_native(py, || cpu::elementwise::binary(op, &xs, &ys))?;
    out(py, y, &sa)
}

/// `a op b` ('add', 'subtract', 'multiply', 'divide', 'maximum', 'minimum') for two
/// float arrays of one dtype, `b` of a's shape or a vector along a's last axis: numpy's
/// result, on every thread.
#[pyfunction]
fn binary<'py>(py: Python<'py>, name: &str, a: &Bound<'py, PyAny>, b: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let op = cpu::elementwise::BinaryOp::parse(name)?;
    dispatch!(a, "binary", "a", binary_t(py, op, a, b))
}

/// y = act(x) for 'linear', 'relu', 'sigmoid', 'tanh', 'softmax' (over the last axis).
#[pyfunction]
fn activation_forward<'py>(py: Python<'py>, name: &str, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let act = Activation::parse(name)?;
    on_gpu!(py, x, gpu::gpu_activation_forward(py, name, x));
    dispatch!(x, "activation_forward", "x", activation_forward_t(py, act, x))
}

fn activation_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    act: Activation,
    x: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "activation_backward";
    let ga = arr::<T>(dy, F, "dy")?;
    let xa = x.map(|x| arr::<T>(x, F, "x")).transpose()?;
    let ya = y.map(|y| arr::<T>(y, F, "y")).transpose()?;
    let shape = ga.shape().to_vec();
    if let Some(a) = &xa {
        check_shape(F, "x", a.shape(), &shape)?;
    }
    if let Some(a) = &ya {
        check_shape(F, "y", a.shape(), &shape)?;
    }
    let last = last_axis(F, act, &shape)?;
    let gs = contiguous(&ga)?;
    let xs = xa.as_ref().map(contiguous).transpose()?;
    let ys = ya.as_ref().map(contiguous).transpose()?;
    let dx = run_native(py, || cpu::nn::activation_backward(act, xs.as_deref(), ys.as_deref(), &gs, last))?;
    out(py, dx, &shape)
}

/// dx for y = act(x) from dy. x or y may be None where the activation does not need it
/// (relu: x or y; sigmoid, tanh, softmax: y, or x to recompute it; linear: neither).
#[pyfunction]
#[pyo3(signature = (name, x, y, dy))]
fn activation_backward<'py>(
    py: Python<'py>,
    name: &str,
    x: Option<&Bound<'py, PyAny>>,
    y: Option<&Bound<'py, PyAny>>,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let act = Activation::parse(name)?;
    if dy.cast::<gpu::PyGpuArray>().is_ok() {
        let (Some(x), Some(y)) = (x, y) else {
            return Err(value_error("activation_backward: on the GPU both x and y are required".into()));
        };
        return gpu::gpu_activation_backward(py, name, x, y, dy).and_then(|r| pyo3::IntoPyObjectExt::into_bound_py_any(r, py));
    }
    dispatch!(dy, "activation_backward", "dy", activation_backward_t(py, act, x, y, dy))
}

// ---------------------------------------------------------------------------------
// Losses and accuracy
// ---------------------------------------------------------------------------------

/// Sparse labels must have y_pred's shape without the last axis (or with it equal to 1).
fn check_sparse_shape(fname: &str, ls: &[usize], ps: &[usize]) -> PyResult<usize> {
    let Some((&k, lead)) = ps.split_last() else {
        return Err(value_error(format!("{fname}: y_pred must have a class axis (last), got a scalar")));
    };
    let ok = ls == lead || (ls.len() == ps.len() && ls[..lead.len()] == *lead && ls.last() == Some(&1));
    if !ok {
        return Err(value_error(format!(
            "{fname}: y_true (class labels) must have shape {lead:?} (y_pred's shape {ps:?} without the class \
             axis) or {:?}, got shape {ls:?}",
            [lead, &[1]].concat()
        )));
    }
    Ok(k)
}

/// Same shape, or one of them with an extra trailing axis of 1 ((n,) vs (n, 1)).
fn check_target_shape(fname: &str, ts: &[usize], ps: &[usize], strict: bool) -> PyResult<()> {
    let trailing_one = |a: &[usize], b: &[usize]| a.len() == b.len() + 1 && a[..b.len()] == *b && a.last() == Some(&1);
    if ts == ps || (!strict && (trailing_one(ts, ps) || trailing_one(ps, ts))) {
        return Ok(());
    }
    Err(value_error(format!("{fname}: y_true must have y_pred's shape {ps:?}, got shape {ts:?}")))
}

fn loss_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    kind: Loss,
    y_true: &Bound<'py, PyAny>,
    y_pred: &Bound<'py, PyAny>,
    from_logits: bool,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "loss";
    let pa = arr::<T>(y_pred, F, "y_pred")?;
    let ps = pa.shape().to_vec();
    let (l, g) = match kind {
        Loss::SparseCategoricalCrossentropy => {
            let (lab, ls) = labels(y_true, F)?;
            let k = check_sparse_shape(F, &ls, &ps)?;
            let p = contiguous(&pa)?;
            run_native(py, || cpu::nn::sparse_categorical_crossentropy(&lab, &p, k, from_logits))?
        }
        _ => {
            let ta = arr_coerced::<T>(y_true, F, "y_true")?;
            check_target_shape(F, ta.shape(), &ps, kind == Loss::CategoricalCrossentropy)?;
            let k = match (kind, ps.last()) {
                (Loss::CategoricalCrossentropy, Some(&k)) => k,
                (Loss::CategoricalCrossentropy, None) => {
                    return Err(value_error(format!("{F}: y_pred must have a class axis (last), got a scalar")))
                }
                _ => 1,
            };
            let (t, p) = (contiguous(&ta)?, contiguous(&pa)?);
            run_native(py, || match kind {
                Loss::CategoricalCrossentropy => cpu::nn::categorical_crossentropy(&t, &p, k, from_logits),
                Loss::BinaryCrossentropy => cpu::nn::binary_crossentropy(&t, &p, from_logits),
                _ => cpu::nn::mean_squared_error(&t, &p),
            })?
        }
    };
    (l, out(py, g, &ps)?).into_bound_py_any(py)
}

/// Mean loss over the batch and its gradient w.r.t. y_pred: (loss: float, grad).
/// name: 'sparse_categorical_crossentropy' (integer or whole-float labels of y_pred's
/// shape without the class axis), 'categorical_crossentropy', 'binary_crossentropy',
/// 'mse' / 'mean_squared_error'. from_logits=True: y_pred are logits and softmax /
/// sigmoid is fused into the loss (ignored by mse).
#[pyfunction]
#[pyo3(signature = (name, y_true, y_pred, from_logits=false))]
fn loss<'py>(
    py: Python<'py>,
    name: &str,
    y_true: &Bound<'py, PyAny>,
    y_pred: &Bound<'py, PyAny>,
    from_logits: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = Loss::parse(name)?;
    dispatch!(y_pred, "loss", "y_pred", loss_t(py, kind, y_true, y_pred, from_logits))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AccKind {
    Sparse,
    Categorical,
    Binary,
}

fn accuracy_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    kind: AccKind,
    y_true: &Bound<'py, PyAny>,
    y_pred: &Bound<'py, PyAny>,
    threshold: f64,
) -> PyResult<f64> {
    const F: &str = "accuracy";
    let pa = arr::<T>(y_pred, F, "y_pred")?;
    let ps = pa.shape().to_vec();
    if kind == AccKind::Sparse {
        let (lab, ls) = labels(y_true, F)?;
        let k = check_sparse_shape(F, &ls, &ps)?;
        let p = contiguous(&pa)?;
        return run_native(py, || cpu::nn::sparse_categorical_accuracy(&lab, &p, k));
    }
    let ta = arr_coerced::<T>(y_true, F, "y_true")?;
    check_target_shape(F, ta.shape(), &ps, kind == AccKind::Categorical)?;
    let (t, p) = (contiguous(&ta)?, contiguous(&pa)?);
    if kind == AccKind::Categorical {
        let Some(&k) = ps.last() else {
            return Err(value_error(format!("{F}: y_pred must have a class axis (last), got a scalar")));
        };
        run_native(py, || cpu::nn::categorical_accuracy(&t, &p, k))
    } else {
        run_native(py, || cpu::nn::binary_accuracy(&t, &p, threshold))
    }
}

/// Fraction of correct predictions. kind: 'sparse' / 'sparse_categorical' (argmax == label),
/// 'categorical' (argmax == argmax), 'binary' ((y_pred > threshold) == y_true); the
/// Keras metric names ('sparse_categorical_accuracy', ...) are accepted too.
#[pyfunction]
#[pyo3(signature = (kind, y_true, y_pred, threshold=0.5))]
fn accuracy<'py>(
    py: Python<'py>,
    kind: &str,
    y_true: &Bound<'py, PyAny>,
    y_pred: &Bound<'py, PyAny>,
    threshold: f64,
) -> PyResult<f64> {
    let k = match kind {
        "sparse" | "sparse_categorical" | "sparse_categorical_accuracy" => AccKind::Sparse,
        "categorical" | "categorical_accuracy" => AccKind::Categorical,
        "binary" | "binary_accuracy" => AccKind::Binary,
        _ => {
            return Err(value_error(format!(
                "accuracy: kind must be 'sparse_categorical', 'categorical' or 'binary', got {kind:?}"
            )))
        }
    };
    dispatch!(y_pred, "accuracy", "y_pred", accuracy_t(py, k, y_true, y_pred, threshold))
}

// ---------------------------------------------------------------------------------
// Batch normalization
// ---------------------------------------------------------------------------------

fn channels(fname: &str, xs: &[usize]) -> PyResult<usize> {
    xs.last().copied().ok_or_else(|| {
        value_error(format!("{fname}: x must have at least one axis (channels last), got a scalar"))
    })
}

fn channel_arr<'py, T: Element + numpy::Element>(
    obj: Option<&Bound<'py, PyAny>>,
    fname: &str,
    what: &str,
    c: usize,
) -> PyResult<Option<PyReadonlyArrayDyn<'py, T>>> {
    let a = obj.map(|o| arr::<T>(o, fname, what)).transpose()?;
    if let Some(a) = &a {
        check_shape(fname, what, a.shape(), &[c])?;
    }
    Ok(a)
}

fn cow<'a, T: Element + numpy::Element>(a: &'a Option<PyReadonlyArrayDyn<'_, T>>) -> PyResult<Option<Cow<'a, [T]>>> {
    Ok(a.as_ref().map(contiguous).transpose()?)
}

#[allow(clippy::too_many_arguments)]
fn batchnorm_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    beta: Option<&Bound<'py, PyAny>>,
    eps: f64,
    training: bool,
    moving_mean: Option<&Bound<'py, PyAny>>,
    moving_var: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "batchnorm_forward";
    let xa = arr::<T>(x, F, "x")?;
    let c = channels(F, xa.shape())?;
    let ga = channel_arr::<T>(gamma, F, "gamma", c)?;
    let ba = channel_arr::<T>(beta, F, "beta", c)?;
    let mma = channel_arr::<T>(moving_mean, F, "moving_mean", c)?;
    let mva = channel_arr::<T>(moving_var, F, "moving_var", c)?;
    let xs = contiguous(&xa)?;
    let (gs, bs) = (cow(&ga)?, cow(&ba)?);
    let (y, mean, var) = if training {
        run_native(py, || cpu::nn::batchnorm_train_forward(&xs, gs.as_deref(), bs.as_deref(), c, eps))?
    } else {
        let (Some(mm), Some(mv)) = (cow(&mma)?, cow(&mva)?) else {
            return Err(value_error(format!("{F}: training=False needs moving_mean and moving_var")));
        };
        let y = run_native(py, || {
            cpu::nn::batchnorm_infer_forward(&xs, gs.as_deref(), bs.as_deref(), &mm, &mv, c, eps)
        })?;
        (y, mm.into_owned(), mv.into_owned())
    };
    (out(py, y, xa.shape())?, out(py, mean, &[c])?, out(py, var, &[c])?).into_bound_py_any(py)
}

/// Batch normalization over every axis but the last. training=True: normalizes with the
/// batch statistics and returns (y, batch_mean, batch_var) with the biased variance
/// (Keras 3 uses the same biased variance for its moving-variance update, which the
/// caller does). training=False: uses moving_mean / moving_var and returns them as the
/// statistics. gamma / beta may be None (scale=False / center=False).
#[pyfunction]
#[pyo3(signature = (x, gamma, beta, eps=1e-3, training=true, moving_mean=None, moving_var=None))]
#[allow(clippy::too_many_arguments)]
fn batchnorm_forward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    beta: Option<&Bound<'py, PyAny>>,
    eps: f64,
    training: bool,
    moving_mean: Option<&Bound<'py, PyAny>>,
    moving_var: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    if x.cast::<gpu::PyGpuArray>().is_ok() {
        let (mm, mv) = match (moving_mean, moving_var) {
            (Some(a), Some(b)) => (a, b),
            _ => return Err(value_error("batchnorm_forward: on the GPU the moving statistics are required".into())),
        };
        return gpu::gpu_batchnorm_forward(py, x, gamma, beta, eps, training, mm, mv)
            .and_then(|r| pyo3::IntoPyObjectExt::into_bound_py_any(r, py));
    }
    dispatch!(x, "batchnorm_forward", "x", batchnorm_forward_t(py, x, gamma, beta, eps, training, moving_mean, moving_var))
}

#[allow(clippy::too_many_arguments)]
fn batchnorm_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    mean: &Bound<'py, PyAny>,
    var: &Bound<'py, PyAny>,
    eps: f64,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "batchnorm_backward";
    let xa = arr::<T>(x, F, "x")?;
    let c = channels(F, xa.shape())?;
    let da = arr::<T>(dy, F, "dy")?;
    check_shape(F, "dy", da.shape(), xa.shape())?;
    let ga = channel_arr::<T>(gamma, F, "gamma", c)?;
    let ma = channel_arr::<T>(Some(mean), F, "mean", c)?;
    let va = channel_arr::<T>(Some(var), F, "var", c)?;
    let (xs, ds) = (contiguous(&xa)?, contiguous(&da)?);
    let (gs, ms, vs) = (cow(&ga)?, cow(&ma)?, cow(&va)?);
    let (ms, vs) = (ms.unwrap_or_default(), vs.unwrap_or_default());
    let (dx, dg, db) = run_native(py, || cpu::nn::batchnorm_backward(&xs, gs.as_deref(), &ms, &vs, c, eps, &ds))?;
    (out(py, dx, xa.shape())?, out(py, dg, &[c])?, out(py, db, &[c])?).into_bound_py_any(py)
}

/// Backward of training-mode batch normalization given the batch mean and (biased) var
/// from batchnorm_forward: returns (dx, dgamma, dbeta). gamma may be None (scale=False).
#[pyfunction]
#[pyo3(signature = (x, gamma, mean, var, eps, dy))]
fn batchnorm_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    gamma: Option<&Bound<'py, PyAny>>,
    mean: &Bound<'py, PyAny>,
    var: &Bound<'py, PyAny>,
    eps: f64,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(x, "batchnorm_backward", "x", batchnorm_backward_t(py, x, gamma, mean, var, eps, dy))
}

// ---------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------

fn dropout_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    rate: f64,
    seed: u64,
) -> PyResult<Bound<'py, PyAny>> {
    let xa = arr::<T>(x, "dropout_forward", "x")?;
    let xs = contiguous(&xa)?;
    let (y, mask) = run_native(py, || cpu::nn::dropout_forward(&xs, rate, seed))?;
    (out(py, y, xa.shape())?, out(py, mask, xa.shape())?).into_bound_py_any(py)
}

/// Inverted dropout: returns (y, mask), mask in {0, 1/(1-rate)}, y = x * mask. The mask
/// is a pure function of (seed, flat index): the same seed gives the same mask whatever
/// the thread count.
#[pyfunction]
fn dropout_forward<'py>(py: Python<'py>, x: &Bound<'py, PyAny>, rate: f64, seed: u64) -> PyResult<Bound<'py, PyAny>> {
    on_gpu!(py, x, gpu::gpu_dropout_forward(py, x, rate, seed));
    dispatch!(x, "dropout_forward", "x", dropout_forward_t(py, x, rate, seed))
}

fn dropout_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    dy: &Bound<'py, PyAny>,
    mask: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "dropout_backward";
    let (da, ma) = (arr::<T>(dy, F, "dy")?, arr::<T>(mask, F, "mask")?);
    check_shape(F, "mask", ma.shape(), da.shape())?;
    let (ds, ms) = (contiguous(&da)?, contiguous(&ma)?);
    let dx = run_native(py, || cpu::nn::dropout_backward(&ds, &ms))?;
    out(py, dx, da.shape())
}

/// Dropout backward: dx = dy * mask.
#[pyfunction]
fn dropout_backward<'py>(py: Python<'py>, dy: &Bound<'py, PyAny>, mask: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    dispatch!(dy, "dropout_backward", "dy", dropout_backward_t(py, dy, mask))
}

// ---------------------------------------------------------------------------------
// Global pooling
// ---------------------------------------------------------------------------------

/// (batch, positions, channels) of x (batch, *spatial, channels).
fn global_dims(fname: &str, xs: &[usize]) -> PyResult<(usize, usize, usize)> {
    let d = crate::ops::nn::GlobalDims::new(fname, xs)?;
    Ok((d.batch, d.positions, d.channels))
}

fn global_pool_forward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    kind: PoolKind,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "global_pool_forward";
    let xa = arr::<T>(x, F, "x")?;
    let (b, s, c) = global_dims(F, xa.shape())?;
    let xs = contiguous(&xa)?;
    let y = run_native(py, || cpu::nn::global_pool_forward(kind, &xs, b, s, c))?;
    out(py, y, &[b, c])
}

/// GlobalAveragePooling / GlobalMaxPooling (kind 'avg' or 'max') of x (batch, *spatial,
/// channels): returns y (batch, channels).
#[pyfunction]
fn global_pool_forward<'py>(py: Python<'py>, kind: &str, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let kind = PoolKind::parse(kind)?;
    dispatch!(x, "global_pool_forward", "x", global_pool_forward_t(py, kind, x))
}

fn global_pool_backward_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    kind: PoolKind,
    x: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    const F: &str = "global_pool_backward";
    let (xa, da) = (arr::<T>(x, F, "x")?, arr::<T>(dy, F, "dy")?);
    let (b, s, c) = global_dims(F, xa.shape())?;
    // (batch, channels), or Keras keepdims=True's (batch, 1, ..., 1, channels).
    let mut keep = vec![1; xa.ndim()];
    keep[0] = b;
    keep[xa.ndim() - 1] = c;
    if da.shape() != [b, c] && da.shape() != keep.as_slice() {
        return Err(value_error(format!(
            "{F}: dy must have shape {:?} (or {keep:?}) for x of shape {:?}, got shape {:?}",
            [b, c],
            xa.shape(),
            da.shape()
        )));
    }
    let (xs, ds) = (contiguous(&xa)?, contiguous(&da)?);
    let dx = run_native(py, || cpu::nn::global_pool_backward(kind, &xs, &ds, b, s, c))?;
    out(py, dx, xa.shape())
}

/// Global pooling backward: dx of x's shape from dy (batch, channels). 'max' splits the
/// gradient evenly among tied maxima (TensorFlow's rule).
#[pyfunction]
fn global_pool_backward<'py>(
    py: Python<'py>,
    kind: &str,
    x: &Bound<'py, PyAny>,
    dy: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let kind = PoolKind::parse(kind)?;
    dispatch!(x, "global_pool_backward", "x", global_pool_backward_t(py, kind, x, dy))
}

// ---------------------------------------------------------------------------------
// Optimizer steps (in place)
// ---------------------------------------------------------------------------------

fn sgd_update_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    velocity: Option<&Bound<'py, PyAny>>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
) -> PyResult<()> {
    const F: &str = "sgd_update";
    let mut pa = arr_mut::<T>(param, F, "param")?;
    let shape = pa.shape().to_vec();
    let ga = arr::<T>(grad, F, "grad")?;
    check_shape(F, "grad", ga.shape(), &shape)?;
    let mut va = velocity.map(|v| arr_mut::<T>(v, F, "velocity")).transpose()?;
    if let Some(v) = &va {
        check_shape(F, "velocity", v.shape(), &shape)?;
    }
    let gs = contiguous(&ga)?;
    let ps = pa.as_slice_mut().map_err(|e| value_error(format!("{F}: param: {e}")))?;
    let vs = match va.as_mut() {
        Some(v) => Some(v.as_slice_mut().map_err(|e| value_error(format!("{F}: velocity: {e}")))?),
        None => None,
    };
    run_native(py, || cpu::nn::sgd_update(ps, &gs, vs, lr, momentum, nesterov))
}

/// Keras SGD step in place on param (and velocity when momentum > 0):
/// v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g); no velocity:
/// p -= lr*g. param and velocity must be C-contiguous and writeable.
#[pyfunction]
#[pyo3(signature = (param, grad, velocity=None, lr=0.01, momentum=0.0, nesterov=false, guard=None))]
#[allow(clippy::too_many_arguments)]
fn sgd_update<'py>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    velocity: Option<&Bound<'py, PyAny>>,
    lr: f64,
    momentum: f64,
    nesterov: bool,
    guard: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    if param.cast::<gpu::PyGpuArray>().is_ok() {
        return gpu::gpu_sgd_update(py, param, grad, velocity, lr, momentum, nesterov, guard);
    }
    if guard.is_some() {
        return Err(PyValueError::new_err("sgd_update: a step guard is a GPU flag; on the CPU the caller checks"));
    }
    dispatch!(param, "sgd_update", "param", sgd_update_t(py, param, grad, velocity, lr, momentum, nesterov))
}

#[allow(clippy::too_many_arguments)]
fn adam_update_t<'py, T: Element + numpy::Element>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: u64,
) -> PyResult<()> {
    const F: &str = "adam_update";
    let mut pa = arr_mut::<T>(param, F, "param")?;
    let shape = pa.shape().to_vec();
    let ga = arr::<T>(grad, F, "grad")?;
    check_shape(F, "grad", ga.shape(), &shape)?;
    let mut ma = arr_mut::<T>(m, F, "m")?;
    check_shape(F, "m", ma.shape(), &shape)?;
    let mut va = arr_mut::<T>(v, F, "v")?;
    check_shape(F, "v", va.shape(), &shape)?;
    let gs = contiguous(&ga)?;
    let ps = pa.as_slice_mut().map_err(|e| value_error(format!("{F}: param: {e}")))?;
    let ms = ma.as_slice_mut().map_err(|e| value_error(format!("{F}: m: {e}")))?;
    let vs = va.as_slice_mut().map_err(|e| value_error(format!("{F}: v: {e}")))?;
    run_native(py, || cpu::nn::adam_update(ps, &gs, ms, vs, lr, beta1, beta2, eps, t))
}

/// Keras 3 Adam step t (counting from 1) in place on param, m and v:
/// alpha = lr*sqrt(1-beta2^t)/(1-beta1^t); m += (g-m)(1-beta1); v += (g^2-v)(1-beta2);
/// p -= alpha*m/(sqrt(v)+eps). param, m and v must be C-contiguous and writeable.
#[pyfunction]
#[pyo3(signature = (param, grad, m, v, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-7, t=1, guard=None))]
#[allow(clippy::too_many_arguments)]
fn adam_update<'py>(
    py: Python<'py>,
    param: &Bound<'py, PyAny>,
    grad: &Bound<'py, PyAny>,
    m: &Bound<'py, PyAny>,
    v: &Bound<'py, PyAny>,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    t: u64,
    guard: Option<&Bound<'py, PyAny>>,
) -> PyResult<()> {
    if param.cast::<gpu::PyGpuArray>().is_ok() {
        return gpu::gpu_adam_update(py, param, grad, m, v, lr, beta1, beta2, eps, t, guard);
    }
    if guard.is_some() {
        return Err(PyValueError::new_err("adam_update: a step guard is a GPU flag; on the CPU the caller checks"));
    }
    dispatch!(param, "adam_update", "param", adam_update_t(py, param, grad, m, v, lr, beta1, beta2, eps, t))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv_forward, m)?)?;
    m.add_function(wrap_pyfunction!(binary, m)?)?;
    m.add_function(wrap_pyfunction!(conv_act_forward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_act_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_backward, m)?)?;
    m.add_function(wrap_pyfunction!(conv_input_grad, m)?)?;
    m.add_function(wrap_pyfunction!(dense_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dense_backward, m)?)?;
    m.add_function(wrap_pyfunction!(pool_train_forward, m)?)?;
    m.add_function(wrap_pyfunction!(pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_forward, m)?)?;
    m.add_function(wrap_pyfunction!(activation_backward, m)?)?;
    m.add_function(wrap_pyfunction!(loss, m)?)?;
    m.add_function(wrap_pyfunction!(accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(batchnorm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(batchnorm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(dropout_backward, m)?)?;
    m.add_function(wrap_pyfunction!(global_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(global_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(sgd_update, m)?)?;
    m.add_function(wrap_pyfunction!(adam_update, m)?)?;
    Ok(())
}
