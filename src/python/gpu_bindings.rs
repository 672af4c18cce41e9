//! Bindings of the GPU backend: the `GpuArray` handle (a float32 or uint32 tensor that
//! stays on the device) and one function per GPU operation. Validation uses the same
//! specs as the CPU bindings; native work runs without the GIL.

use numpy::{PyArrayDescrMethods, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::{contiguous, describe, to_numpy};
use crate::error::Error;
use crate::gpu::{self, ops, GpuTensor};
use crate::ops::correlate::{Boundary, CorrPlan, Mode};
use crate::ops::nn::{Activation, DenseDims, GlobalDims, Loss};
use crate::ops::pool::PoolKind;

/// An array that lives on the GPU (float32, or uint32 for indices). `numpy()` reads it
/// back; arithmetic happens through the convcore functions.
#[pyclass(frozen, name = "GpuArray", module = "convcore._core")]
pub struct PyGpuArray {
    pub t: GpuTensor,
}

pub(super) fn wrap(py: Python<'_>, t: GpuTensor) -> PyResult<Py<PyGpuArray>> {
    Py::new(py, PyGpuArray { t })
}

/// Run device work without the GIL; panics become RuntimeError.
pub(super) fn run<R: Send>(py: Python<'_>, f: impl FnOnce() -> Result<R, Error> + Send) -> PyResult<R> {
    match py.detach(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(PyRuntimeError::new_err(
            "convcore internal error: the GPU backend panicked (please report this with the input shapes)",
        )),
    }
}

fn t<'a>(obj: &'a Bound<'_, PyAny>, fname: &str, what: &str) -> PyResult<PyRef<'a, PyGpuArray>> {
    obj.cast::<PyGpuArray>().map(|b| b.borrow()).map_err(|_| {
        PyTypeError::new_err(format!("{fname}: {what} must be a GpuArray (on the GPU), got {}", describe(obj)))
    })
}

fn opt_t<'a>(obj: Option<&'a Bound<'_, PyAny>>, fname: &str, what: &str) -> PyResult<Option<PyRef<'a, PyGpuArray>>> {
    match obj {
        None => Ok(None),
        Some(o) if o.is_none() => Ok(None),
        Some(o) => t(o, fname, what).map(Some),
    }
}

#[pymethods]
impl PyGpuArray {
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.t.shape.iter())
    }
    #[getter]
    fn ndim(&self) -> usize {
        self.t.shape.len()
    }
    #[getter]
    fn size(&self) -> usize {
        self.t.numel()
    }
    #[getter]
    fn dtype(&self) -> &'static str {
        if self.t.int {
            "uint32"
        } else {
            "float32"
        }
    }
    #[getter]
    fn device(&self) -> &'static str {
        "gpu"
    }
    fn __len__(&self) -> PyResult<usize> {
        self.t.shape.first().copied().ok_or_else(|| PyTypeError::new_err("len() of a 0-d GpuArray"))
    }
    fn __repr__(&self) -> String {
        format!("<GpuArray shape={:?} dtype={}>", self.t.shape, self.dtype())
    }
    /// Read the array back into a new numpy array.
    fn numpy<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let tt = self.t.clone();
        let g = gpu::gpu()?;
        if tt.int {
            let v = run(py, || g.download_words(&tt, tt.numel()))?;
            super::nn_bindings::to_numpy_u32(py, v, &tt.shape).map(|a| a.into_any())
        } else {
            let v = run(py, || g.download_f32(&tt))?;
            to_numpy(py, v, &tt.shape).map(|a| a.into_any())
        }
    }
    #[pyo3(signature = (dtype=None, copy=None))]
    fn __array__<'py>(&self, py: Python<'py>, dtype: Option<&Bound<'py, PyAny>>, copy: Option<bool>) -> PyResult<Bound<'py, PyAny>> {
        let _ = copy;
        let a = self.numpy(py)?;
        match dtype {
            Some(d) if !d.is_none() => a.call_method1("astype", (d,)),
            _ => Ok(a),
        }
    }
    /// A view with another shape (one entry may be -1).
    #[pyo3(signature = (*shape))]
    fn reshape(&self, py: Python<'_>, shape: &Bound<'_, PyTuple>) -> PyResult<Py<PyGpuArray>> {
        let dims: Vec<isize> = if shape.len() == 1 && shape.get_item(0)?.extract::<isize>().is_err() {
            shape.get_item(0)?.extract()?
        } else {
            shape.extract()?
        };
        let n = self.t.numel();
        let known: usize = dims.iter().filter(|&&d| d >= 0).map(|&d| d as usize).product();
        let holes = dims.iter().filter(|&&d| d < 0).count();
        if holes > 1 || dims.iter().any(|&d| d < -1) {
            return Err(PyValueError::new_err(format!("reshape: invalid shape {dims:?}")));
        }
        let out: Vec<usize> = dims
            .iter()
            .map(|&d| if d < 0 { if known == 0 { 0 } else { n / known } } else { d as usize })
            .collect();
        wrap(py, self.t.reshaped(out)?)
    }
    fn __add__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
        let o = t(other, "GpuArray +", "the other operand")?;
        if o.t.shape != self.t.shape {
            return Err(PyValueError::new_err(format!(
                "GpuArray +: shapes {:?} and {:?} differ (no broadcasting on the GPU)",
                self.t.shape, o.t.shape
            )));
        }
        let (a, b) = (self.t.clone(), o.t.clone());
        wrap(py, run(py, || ops::axpby(&a, &b, 1.0, 1.0))?)
    }
    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
        let o = t(other, "GpuArray *", "the other operand")?;
        let (a, b) = (self.t.clone(), o.t.clone());
        wrap(py, run(py, || ops::mul(&a, &b))?)
    }
}

fn float32_only(obj: &Bound<'_, PyAny>, fname: &str) -> PyResult<()> {
    if obj.cast::<PyArrayDyn<f64>>().is_ok() {
        return Err(PyTypeError::new_err(format!(
            "{fname}: the GPU computes in float32 but got a float64 array; convert it with \
             x.astype(np.float32), or use device='cpu' for float64"
        )));
    }
    Ok(())
}

/// Upload a float32 array (or an integer array as uint32 indices) to the GPU.
#[pyfunction]
pub(super) fn gpu_upload(py: Python<'_>, a: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
    if let Ok(g) = a.cast::<PyGpuArray>() {
        return Ok(g.clone().unbind());
    }
    float32_only(a, "gpu_upload")?;
    let g = gpu::gpu()?;
    if let Ok(x) = a.extract::<PyReadonlyArrayDyn<f32>>() {
        let shape = x.shape().to_vec();
        let data = contiguous(&x)?;
        let tt = run(py, || g.upload_f32(&data, &shape))?;
        return wrap(py, tt);
    }
    if let Ok(arr) = a.cast::<numpy::PyUntypedArray>() {
        let kind = arr.dtype().kind();
        if kind == b'i' || kind == b'u' || kind == b'b' {
            let np = py.import("numpy")?;
            let asu = np.call_method1("ascontiguousarray", (a, "int64"))?;
            let x = asu.extract::<PyReadonlyArrayDyn<i64>>()?;
            let shape = x.shape().to_vec();
            let mut v = Vec::with_capacity(x.len());
            for &d in x.as_array().iter() {
                v.push(u32::try_from(d).map_err(|_| {
                    PyValueError::new_err(format!("gpu_upload: integer value {d} does not fit uint32"))
                })?);
            }
            let tt = run(py, || g.upload_u32(&v, &shape))?;
            return wrap(py, tt);
        }
    }
    Err(PyTypeError::new_err(format!("gpu_upload: expected a float32 or integer numpy array, got {}", describe(a))))
}

/// Overwrite a GpuArray in place from a float32 numpy array of the same size.
#[pyfunction]
pub(super) fn gpu_write(py: Python<'_>, dst: &Bound<'_, PyAny>, a: &Bound<'_, PyAny>) -> PyResult<()> {
    let d = t(dst, "gpu_write", "dst")?;
    float32_only(a, "gpu_write")?;
    let x = a.extract::<PyReadonlyArrayDyn<f32>>()?;
    let data = contiguous(&x)?;
    let g = gpu::gpu()?;
    let tt = d.t.clone();
    run(py, || g.write_f32(&tt, &data))
}

#[pyfunction]
pub(super) fn gpu_zeros(py: Python<'_>, shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    let g = gpu::gpu()?;
    wrap(py, run(py, || g.zeros(&shape, "a zero array"))?)
}

#[pyfunction]
pub(super) fn gpu_available() -> bool {
    gpu::available()
}

/// The adapters wgpu can see, best first.
#[pyfunction]
pub(super) fn gpu_adapters<'py>(py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let list = py.detach(gpu::adapters);
    list.into_iter()
        .map(|a| {
            let d = PyDict::new(py);
            d.set_item("name", a.name.clone())?;
            d.set_item("backend", a.backend.clone())?;
            d.set_item("type", a.device_type.clone())?;
            d.set_item("driver", a.driver.clone())?;
            d.set_item("hardware", a.is_hardware())?;
            Ok(d)
        })
        .collect()
}

/// The adapter in use (creating the device): name, backend, type, limits.
#[pyfunction]
pub(super) fn gpu_info<'py>(py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
    let g = run(py, gpu::gpu)?;
    let d = PyDict::new(py);
    d.set_item("name", g.info.name.clone())?;
    d.set_item("backend", g.info.backend.clone())?;
    d.set_item("type", g.info.device_type.clone())?;
    d.set_item("driver", g.info.driver.clone())?;
    d.set_item("hardware", g.info.is_hardware())?;
    d.set_item("max_binding_bytes", g.binding_limit())?;
    d.set_item("max_buffer_bytes", g.limits.max_buffer_size)?;
    Ok(d)
}

/// Lower (or with None restore) the largest binding window; tests use it to exercise
/// the chunked paths on small tensors.
#[pyfunction]
#[pyo3(signature = (nbytes=None))]
pub(super) fn gpu_set_binding_limit(nbytes: Option<u64>) -> PyResult<()> {
    Ok(gpu::gpu()?.set_binding_limit(nbytes)?)
}

/// Device buffers created so far (pool misses).
#[pyfunction]
pub(super) fn gpu_allocations() -> PyResult<u64> {
    Ok(gpu::gpu()?.allocations())
}

/// Read-backs to the host so far (each waits for the device).
#[pyfunction]
pub(super) fn gpu_readbacks() -> PyResult<u64> {
    Ok(gpu::gpu()?.readbacks())
}

#[pyfunction]
pub(super) fn gpu_build_all_pipelines(py: Python<'_>) -> PyResult<usize> {
    run(py, gpu::build_all_pipelines)
}

#[pyfunction]
pub(super) fn gpu_sync(py: Python<'_>) -> PyResult<()> {
    let g = gpu::gpu()?;
    run(py, || g.sync())
}

/// Free the pooled device buffers.
#[pyfunction]
pub(super) fn gpu_trim() -> PyResult<()> {
    gpu::gpu()?.trim();
    Ok(())
}

#[pyfunction]
pub(super) fn gpu_axpby(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, alpha: f64, beta: f64) -> PyResult<Py<PyGpuArray>> {
    let (a, b) = (t(a, "gpu_axpby", "a")?.t.clone(), t(b, "gpu_axpby", "b")?.t.clone());
    wrap(py, run(py, || ops::axpby(&a, &b, alpha, beta))?)
}

/// `p = alpha * p + beta * v` in place (not once `guard`, a training step's flag, is set).
#[pyfunction]
#[pyo3(signature = (p, v, alpha, beta, guard=None))]
pub(super) fn gpu_axpby_inplace(py: Python<'_>, p: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>, alpha: f64, beta: f64, guard: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    let (p, v) = (t(p, "gpu_axpby_inplace", "p")?.t.clone(), t(v, "gpu_axpby_inplace", "v")?.t.clone());
    let guard = opt_t(guard, "gpu_axpby_inplace", "guard")?.map(|g| g.t.clone());
    run(py, || ops::axpby_inplace(&p, &v, alpha, beta, guard.as_ref()))
}

/// Set `flag[0]` (a GpuArray) to NaN if any of `xs` (GpuArrays) holds inf or NaN: the
/// guard of a training step, read by the in-place updates.
#[pyfunction]
pub(super) fn gpu_flag_nonfinite(py: Python<'_>, xs: Vec<Bound<'_, PyAny>>, flag: &Bound<'_, PyAny>) -> PyResult<()> {
    let ts = xs.iter().map(|x| Ok(t(x, "gpu_flag_nonfinite", "x")?.t.clone())).collect::<PyResult<Vec<_>>>()?;
    let flag = t(flag, "gpu_flag_nonfinite", "flag")?.t.clone();
    run(py, || ops::flag_nonfinite(&ts.iter().collect::<Vec<_>>(), &flag))
}

#[pyfunction]
pub(super) fn gpu_activation_forward(py: Python<'_>, name: &str, x: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
    let act = Activation::parse(name)?;
    let x = t(x, "activation_forward", "x")?.t.clone();
    wrap(py, run(py, || ops::activation_forward(act, &x))?)
}

#[pyfunction]
pub(super) fn gpu_activation_backward(py: Python<'_>, name: &str, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>, dy: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "activation_backward";
    let act = Activation::parse(name)?;
    let (x, y, dy) = (t(x, F, "x")?.t.clone(), t(y, F, "y")?.t.clone(), t(dy, F, "dy")?.t.clone());
    wrap(py, run(py, || ops::activation_backward(act, &x, &y, &dy))?)
}

#[pyfunction]
pub(super) fn gpu_dropout_forward(py: Python<'_>, x: &Bound<'_, PyAny>, rate: f64, seed: u64) -> PyResult<(Py<PyGpuArray>, Py<PyGpuArray>)> {
    let x = t(x, "dropout_forward", "x")?.t.clone();
    let (y, m) = run(py, || ops::dropout_forward(&x, rate, seed))?;
    Ok((wrap(py, y)?, wrap(py, m)?))
}

#[pyfunction]
#[pyo3(signature = (p, g, v, lr, momentum=0.0, nesterov=false, guard=None))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_sgd_update(py: Python<'_>, p: &Bound<'_, PyAny>, g: &Bound<'_, PyAny>, v: Option<&Bound<'_, PyAny>>, lr: f64, momentum: f64, nesterov: bool, guard: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    const F: &str = "sgd_update";
    let (p, g) = (t(p, F, "param")?.t.clone(), t(g, F, "grad")?.t.clone());
    let v = opt_t(v, F, "velocity")?.map(|v| v.t.clone());
    let guard = opt_t(guard, F, "guard")?.map(|g| g.t.clone());
    run(py, || ops::sgd_update(&p, &g, v.as_ref(), lr, momentum, nesterov, guard.as_ref()))
}

#[pyfunction]
#[allow(clippy::too_many_arguments)]
#[pyo3(signature = (p, g, m, v, lr, beta_1, beta_2, epsilon, t_step, guard=None))]
pub(super) fn gpu_adam_update(py: Python<'_>, p: &Bound<'_, PyAny>, g: &Bound<'_, PyAny>, m: &Bound<'_, PyAny>, v: &Bound<'_, PyAny>, lr: f64, beta_1: f64, beta_2: f64, epsilon: f64, t_step: u64, guard: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
    const F: &str = "adam_update";
    let (p, g, m, v) = (t(p, F, "param")?.t.clone(), t(g, F, "grad")?.t.clone(), t(m, F, "m")?.t.clone(), t(v, F, "v")?.t.clone());
    let guard = opt_t(guard, F, "guard")?.map(|g| g.t.clone());
    run(py, || ops::adam_update(&p, &g, &m, &v, lr, beta_1, beta_2, epsilon, t_step, guard.as_ref()))
}

fn dense_dims(x: &GpuTensor, w: &GpuTensor, fname: &str) -> PyResult<(usize, usize)> {
    let d = DenseDims::new(fname, &x.shape, &w.shape)?;
    Ok((d.d_in, d.d_out))
}

#[pyfunction]
#[pyo3(signature = (x, w, b=None))]
pub(super) fn gpu_dense_forward(py: Python<'_>, x: &Bound<'_, PyAny>, w: &Bound<'_, PyAny>, b: Option<&Bound<'_, PyAny>>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "dense_forward";
    let (x, w) = (t(x, F, "x")?.t.clone(), t(w, F, "kernel")?.t.clone());
    let b = opt_t(b, F, "bias")?.map(|b| b.t.clone());
    let (k, m) = dense_dims(&x, &w, F)?;
    wrap(py, run(py, || ops::dense_forward(&x, &w, b.as_ref(), k, m))?)
}

type Grads3 = (Option<Py<PyGpuArray>>, Py<PyGpuArray>, Py<PyGpuArray>);

fn grads3(py: Python<'_>, r: (Option<GpuTensor>, GpuTensor, GpuTensor)) -> PyResult<Grads3> {
    Ok((r.0.map(|d| wrap(py, d)).transpose()?, wrap(py, r.1)?, wrap(py, r.2)?))
}

#[pyfunction]
#[pyo3(signature = (x, w, dz, need_dx=true))]
pub(super) fn gpu_dense_backward(py: Python<'_>, x: &Bound<'_, PyAny>, w: &Bound<'_, PyAny>, dz: &Bound<'_, PyAny>, need_dx: bool) -> PyResult<Grads3> {
    const F: &str = "dense_backward";
    let (x, w, dz) = (t(x, F, "x")?.t.clone(), t(w, F, "kernel")?.t.clone(), t(dz, F, "dz")?.t.clone());
    let (k, m) = dense_dims(&x, &w, F)?;
    let r = run(py, || ops::dense_backward(&x, &w, &dz, k, m, need_dx))?;
    grads3(py, r)
}

#[pyfunction]
#[pyo3(signature = (x, w, b=None, strides=None, dilation=None, padding="valid"))]
pub(super) fn gpu_conv_forward(py: Python<'_>, x: &Bound<'_, PyAny>, w: &Bound<'_, PyAny>, b: Option<&Bound<'_, PyAny>>, strides: Option<Vec<usize>>, dilation: Option<Vec<usize>>, padding: &str) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "conv_forward";
    let (x, w) = (t(x, F, "x")?.t.clone(), t(w, F, "kernel")?.t.clone());
    let b = opt_t(b, F, "bias")?.map(|b| b.t.clone());
    let plan = super::nn_bindings::conv_plan(F, &x.shape, &w.shape, strides, dilation, padding)?;
    wrap(py, run(py, || ops::conv_forward(&x, &w, b.as_ref(), &plan))?)
}

#[pyfunction]
#[pyo3(signature = (x, w, dz, strides=None, dilation=None, padding="valid", need_dx=true))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_conv_backward(py: Python<'_>, x: &Bound<'_, PyAny>, w: &Bound<'_, PyAny>, dz: &Bound<'_, PyAny>, strides: Option<Vec<usize>>, dilation: Option<Vec<usize>>, padding: &str, need_dx: bool) -> PyResult<Grads3> {
    const F: &str = "conv_backward";
    let (x, w, dz) = (t(x, F, "x")?.t.clone(), t(w, F, "kernel")?.t.clone(), t(dz, F, "dz")?.t.clone());
    let plan = super::nn_bindings::conv_plan(F, &x.shape, &w.shape, strides, dilation, padding)?;
    if dz.shape != plan.out_shape() {
        return Err(PyValueError::new_err(format!("{F}: dz must have shape {:?}, got {:?}", plan.out_shape(), dz.shape)));
    }
    let r = run(py, || ops::conv_backward(&x, &w, &dz, &plan, need_dx))?;
    grads3(py, r)
}

#[pyfunction]
#[pyo3(signature = (x, kind, pool, strides=None, padding="valid"))]
pub(super) fn gpu_pool_forward(py: Python<'_>, x: &Bound<'_, PyAny>, kind: &str, pool: Vec<usize>, strides: Option<Vec<usize>>, padding: &str) -> PyResult<(Py<PyGpuArray>, Option<Py<PyGpuArray>>)> {
    const F: &str = "pool_forward";
    let x = t(x, F, "x")?.t.clone();
    let plan = super::nn_bindings::pool_plan(F, &x.shape, PoolKind::parse(kind)?, &pool, strides, padding)?;
    let (y, am) = run(py, || ops::pool_forward(&x, &plan))?;
    Ok((wrap(py, y)?, am.map(|a| wrap(py, a)).transpose()?))
}

#[pyfunction]
#[pyo3(signature = (dy, kind, argmax, x_shape, pool, strides=None, padding="valid"))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_pool_backward(py: Python<'_>, dy: &Bound<'_, PyAny>, kind: &str, argmax: Option<&Bound<'_, PyAny>>, x_shape: Vec<usize>, pool: Vec<usize>, strides: Option<Vec<usize>>, padding: &str) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "pool_backward";
    let dy = t(dy, F, "dy")?.t.clone();
    let am = opt_t(argmax, F, "argmax")?.map(|a| a.t.clone());
    let plan = super::nn_bindings::pool_plan(F, &x_shape, PoolKind::parse(kind)?, &pool, strides, padding)?;
    wrap(py, run(py, || ops::pool_backward(&dy, am.as_ref(), &plan))?)
}

fn global_dims(shape: &[usize], fname: &str) -> PyResult<(usize, usize, usize)> {
    let d = GlobalDims::new(fname, shape)?;
    Ok((d.batch, d.positions, d.channels))
}

#[pyfunction]
pub(super) fn gpu_global_pool_forward(py: Python<'_>, kind: &str, x: &Bound<'_, PyAny>) -> PyResult<(Py<PyGpuArray>, Py<PyGpuArray>)> {
    const F: &str = "global_pool_forward";
    let x = t(x, F, "x")?.t.clone();
    let kind = PoolKind::parse(kind)?;
    let (b, p, c) = global_dims(&x.shape, F)?;
    let (y, am) = run(py, || ops::global_pool_forward(kind, &x, b, p, c))?;
    Ok((wrap(py, y)?, wrap(py, am)?))
}

#[pyfunction]
pub(super) fn gpu_global_pool_backward(py: Python<'_>, kind: &str, dy: &Bound<'_, PyAny>, argmax: &Bound<'_, PyAny>, x_shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "global_pool_backward";
    let (dy, am) = (t(dy, F, "dy")?.t.clone(), t(argmax, F, "argmax")?.t.clone());
    let kind = PoolKind::parse(kind)?;
    let (b, p, c) = global_dims(&x_shape, F)?;
    let dx = run(py, || ops::global_pool_backward(kind, &dy, &am, b, p, c))?;
    wrap(py, dx.reshaped(x_shape)?)
}

/// Global max pooling backward from x (batch, ..., C) itself: dy (batch, C) shared among
/// tied maxima, the CPU kernel's rule.
#[pyfunction]
pub(super) fn gpu_global_max_pool_backward(py: Python<'_>, dy: &Bound<'_, PyAny>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "global_pool_backward";
    let (dy, x) = (t(dy, F, "dy")?.t.clone(), t(x, F, "x")?.t.clone());
    let (b, p, c) = global_dims(&x.shape, F)?;
    let shape = x.shape.clone();
    let dx = run(py, || ops::global_max_pool_backward(&dy, &x, b, p, c))?;
    wrap(py, dx.reshaped(shape)?)
}

#[pyfunction]
#[pyo3(signature = (x, gamma, beta, epsilon, training, moving_mean, moving_variance))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_batchnorm_forward(py: Python<'_>, x: &Bound<'_, PyAny>, gamma: Option<&Bound<'_, PyAny>>, beta: Option<&Bound<'_, PyAny>>, epsilon: f64, training: bool, moving_mean: &Bound<'_, PyAny>, moving_variance: &Bound<'_, PyAny>) -> PyResult<(Py<PyGpuArray>, Py<PyGpuArray>, Py<PyGpuArray>)> {
    const F: &str = "batchnorm_forward";
    let x = t(x, F, "x")?.t.clone();
    let gm = opt_t(gamma, F, "gamma")?.map(|v| v.t.clone());
    let bt = opt_t(beta, F, "beta")?.map(|v| v.t.clone());
    let (mm, mv) = (t(moving_mean, F, "moving_mean")?.t.clone(), t(moving_variance, F, "moving_variance")?.t.clone());
    let (y, m, v) = run(py, || ops::batchnorm_forward(&x, gm.as_ref(), bt.as_ref(), epsilon, training, &mm, &mv))?;
    Ok((wrap(py, y)?, wrap(py, m)?, wrap(py, v)?))
}

#[pyfunction]
#[pyo3(signature = (x, gamma, mean, var, epsilon, dy, training=true))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_batchnorm_backward(py: Python<'_>, x: &Bound<'_, PyAny>, gamma: Option<&Bound<'_, PyAny>>, mean: &Bound<'_, PyAny>, var: &Bound<'_, PyAny>, epsilon: f64, dy: &Bound<'_, PyAny>, training: bool) -> PyResult<(Py<PyGpuArray>, Py<PyGpuArray>, Py<PyGpuArray>)> {
    const F: &str = "batchnorm_backward";
    let (x, dy) = (t(x, F, "x")?.t.clone(), t(dy, F, "dy")?.t.clone());
    let gm = opt_t(gamma, F, "gamma")?.map(|v| v.t.clone());
    let (m, v) = (t(mean, F, "mean")?.t.clone(), t(var, F, "var")?.t.clone());
    let (dx, dg, db) = run(py, || ops::batchnorm_backward(&x, gm.as_ref(), &m, &v, epsilon, &dy, training))?;
    Ok((wrap(py, dx)?, wrap(py, dg)?, wrap(py, db)?))
}

/// `(stats, grad)` with stats a GpuArray `[mean loss, accuracy]`.
#[pyfunction]
pub(super) fn gpu_loss(py: Python<'_>, name: &str, y: &Bound<'_, PyAny>, pred: &Bound<'_, PyAny>, from_logits: bool) -> PyResult<(Py<PyGpuArray>, Py<PyGpuArray>)> {
    const F: &str = "loss";
    let kind = Loss::parse(name)?;
    let (y, p) = (t(y, F, "y_true")?.t.clone(), t(pred, F, "y_pred")?.t.clone());
    let (s, g) = run(py, || ops::loss(kind, &y, &p, from_logits))?;
    Ok((wrap(py, s)?, wrap(py, g)?))
}

/// Concatenate GpuArrays on the last axis.
#[pyfunction]
pub(super) fn gpu_concat_last(py: Python<'_>, xs: Vec<Bound<'_, PyAny>>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "concatenate";
    let ts: Vec<GpuTensor> = xs.iter().map(|x| t(x, F, "input").map(|v| v.t.clone())).collect::<PyResult<_>>()?;
    let first = ts.first().ok_or_else(|| PyValueError::new_err("concatenate: no inputs"))?;
    let lead = &first.shape[..first.shape.len().saturating_sub(1)];
    for x in &ts {
        if x.shape.is_empty() || &x.shape[..x.shape.len() - 1] != lead {
            return Err(PyValueError::new_err(format!("{F}: inputs must agree on all axes but the last, got {:?}", x.shape)));
        }
    }
    let rows: usize = lead.iter().product();
    let total: usize = ts.iter().map(|x| *x.shape.last().unwrap()).sum();
    let mut shape = lead.to_vec();
    shape.push(total);
    let out = run(py, || {
        let g = gpu::gpu()?;
        let out = g.empty(&shape, "the concatenation")?;
        let mut col = 0;
        for x in &ts {
            let w = *x.shape.last().unwrap();
            ops::copy_cols(x, w, 0, &out, total, col, rows, w)?;
            col += w;
        }
        Ok(out)
    })?;
    wrap(py, out)
}

/// Columns `[start, start + width)` of the last axis.
#[pyfunction]
pub(super) fn gpu_slice_last(py: Python<'_>, x: &Bound<'_, PyAny>, start: usize, width: usize) -> PyResult<Py<PyGpuArray>> {
    let x = t(x, "slice", "x")?.t.clone();
    let last = *x.shape.last().unwrap_or(&0);
    if start + width > last {
        return Err(PyValueError::new_err(format!("slice [{start}, {}) is outside the last axis of {:?}", start + width, x.shape)));
    }
    let rows = if last == 0 { 0 } else { x.numel() / last };
    let mut shape = x.shape.clone();
    *shape.last_mut().unwrap() = width;
    let out = run(py, || {
        let g = gpu::gpu()?;
        let out = g.empty(&shape, "a slice")?;
        ops::copy_cols(&x, last, start, &out, width, 0, rows, width)?;
        Ok(out)
    })?;
    wrap(py, out)
}

/// Correlation on the GPU with the CPU's plans: `kind` is 'signal' (scipy.signal.correlate
/// modes), 'signal2d' (correlate2d boundaries) or 'ndimage' (modes, cval, origin).
/// Inputs may be numpy float32 arrays or GpuArrays; returns a GpuArray.
#[pyfunction]
#[pyo3(signature = (x, k, kind, mode="full", boundary="fill", fillvalue=0.0, flipped=false, origin=None, footprint=false))]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_correlate(py: Python<'_>, x: &Bound<'_, PyAny>, k: &Bound<'_, PyAny>, kind: &str, mode: &str, boundary: &str, fillvalue: f64, flipped: bool, origin: Option<Vec<isize>>, footprint: bool) -> PyResult<Py<PyGpuArray>> {
    let xg = gpu_upload(py, x)?;
    let kg = gpu_upload(py, k)?;
    let (xt, kt) = (xg.get().t.clone(), kg.get().t.clone());
    let plan = match kind {
        "signal" => CorrPlan::signal(&xt.shape, &kt.shape, Mode::parse(mode)?)?,
        "signal2d" => CorrPlan::signal2d(&xt.shape, &kt.shape, Mode::parse(mode)?, Boundary::parse_signal2d(boundary)?, fillvalue, flipped)?,
        "ndimage" => {
            let origin = origin.unwrap_or_else(|| vec![0; xt.shape.len()]);
            let mut plan = CorrPlan::ndimage(&xt.shape, &kt.shape, &origin, Boundary::parse_ndimage(mode)?, fillvalue)?;
            plan.skip_zero = footprint;
            plan
        }
        other => return Err(PyValueError::new_err(format!("gpu_correlate: unknown kind {other:?}"))),
    };
    wrap(py, run(py, || ops::correlate(&xt, &kt, &plan))?)
}


// ------------------------------------------------------------------ generic array algebra

/// Check a strided view stays inside a tensor of `numel` elements.
fn view(fname: &str, numel: usize, shape: &[usize], strides: &[isize], base: usize) -> PyResult<ops::Strided> {
    if strides.len() != shape.len() {
        return Err(PyValueError::new_err(format!("{fname}: {} strides for {} axes", strides.len(), shape.len())));
    }
    let (mut lo, mut hi) = (base as i128, base as i128);
    for (&n, &st) in shape.iter().zip(strides) {
        if n == 0 {
            return Ok(ops::Strided { base, strides: strides.to_vec() });
        }
        let span = (n as i128 - 1) * st as i128;
        if span < 0 { lo += span } else { hi += span }
    }
    if lo < 0 || hi >= numel as i128 {
        return Err(PyValueError::new_err(format!(
            "{fname}: the view (shape {shape:?}, strides {strides:?}, start {base}) leaves the {numel} elements"
        )));
    }
    Ok(ops::Strided { base, strides: strides.to_vec() })
}

/// `op(x)` elementwise on the GPU (codes in shaders/array.wgsl; 16 is clip to
/// [lo, hi]; 17..20 give uint32 truth values).
#[pyfunction]
#[pyo3(signature = (op, x, lo=f64::NEG_INFINITY, hi=f64::INFINITY))]
pub(super) fn gpu_unary(py: Python<'_>, op: u32, x: &Bound<'_, PyAny>, lo: f64, hi: f64) -> PyResult<Py<PyGpuArray>> {
    let x = t(x, "unary", "x")?.t.clone();
    wrap(py, run(py, || ops::unary(op, &x, lo as f32, hi as f32))?)
}

/// `where(c, a, b)` with broadcasting: the output `shape`, each operand's strides and start.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_where(py: Python<'_>, c: &Bound<'_, PyAny>, c_strides: Vec<isize>, c_base: usize, a: &Bound<'_, PyAny>,
                        a_strides: Vec<isize>, a_base: usize, b: &Bound<'_, PyAny>, b_strides: Vec<isize>, b_base: usize,
                        shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "where";
    let (c, a, b) = (t(c, F, "condition")?.t.clone(), t(a, F, "x1")?.t.clone(), t(b, F, "x2")?.t.clone());
    let vc = view(F, c.numel(), &shape, &c_strides, c_base)?;
    let (va, vb) = (view(F, a.numel(), &shape, &a_strides, a_base)?, view(F, b.numel(), &shape, &b_strides, b_base)?);
    wrap(py, run(py, || ops::select(&c, &vc, &a, &va, &b, &vb, &shape))?)
}

/// `x` padded per axis with `before` / `after` entries of the value with bits `fill_bits`.
#[pyfunction]
pub(super) fn gpu_pad(py: Python<'_>, x: &Bound<'_, PyAny>, before: Vec<usize>, after: Vec<usize>, fill_bits: u32)
                      -> PyResult<Py<PyGpuArray>> {
    let x = t(x, "pad", "x")?.t.clone();
    wrap(py, run(py, || ops::pad(&x, &before, &after, fill_bits))?)
}

/// Write `src` into the strided view (`strides`, `base`, of `src`'s shape) of `dst`, in
/// place; the view must not repeat an element.
#[pyfunction]
pub(super) fn gpu_scatter(py: Python<'_>, dst: &Bound<'_, PyAny>, src: &Bound<'_, PyAny>, strides: Vec<isize>, base: usize)
                          -> PyResult<()> {
    const F: &str = "scatter";
    let (d, sr) = (t(dst, F, "dst")?.t.clone(), t(src, F, "src")?.t.clone());
    if d.int != sr.int {
        return Err(PyTypeError::new_err("scatter: dst and src must both be float32 or both uint32"));
    }
    let v = view(F, d.numel(), &sr.shape, &strides, base)?;
    for (&n, &st) in sr.shape.iter().zip(&strides) {
        if n > 1 && st == 0 {
            return Err(PyValueError::new_err("scatter: the view repeats elements (a zero stride)"));
        }
    }
    run(py, || ops::scatter(&d, &v, &sr))
}

/// `x` seen as (outer, n, inner) taken along the middle axis at `idx` (a uint32 GpuArray,
/// each index < n), as a tensor of `shape` (outer, idx's shape, inner).
#[pyfunction]
pub(super) fn gpu_take(py: Python<'_>, x: &Bound<'_, PyAny>, idx: &Bound<'_, PyAny>, outer: usize, n: usize, inner: usize,
                       shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    let (x, i) = (t(x, "take", "x")?.t.clone(), t(idx, "take", "indices")?.t.clone());
    if !i.int {
        return Err(PyTypeError::new_err("take: the indices must be a uint32 GpuArray"));
    }
    wrap(py, run(py, || ops::take(&x, &i, outer, n, inner, &shape))?)
}

/// The adjoint of take: g (outer, m, inner) summed into (outer, n, inner); `order` the
/// index positions sorted by index (stable), `starts` the n + 1 offsets into it.
#[pyfunction]
pub(super) fn gpu_index_add(py: Python<'_>, g: &Bound<'_, PyAny>, order: &Bound<'_, PyAny>, starts: &Bound<'_, PyAny>,
                            outer: usize, n: usize, inner: usize) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "index_add";
    let (g, o, s) = (t(g, F, "g")?.t.clone(), t(order, F, "order")?.t.clone(), t(starts, F, "starts")?.t.clone());
    if !o.int || !s.int {
        return Err(PyTypeError::new_err("index_add: order and starts must be uint32 GpuArrays"));
    }
    wrap(py, run(py, || ops::index_add(&g, &o, &s, outer, n, inner))?)
}

/// Batched matrix products: result i (batch, n, m) is a[a_index[i]] (n, k) @ b[b_index[i]]
/// (k, m), with a and b contiguous stacks of matrices.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_matmul(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>, n: usize, k: usize, m: usize,
                         a_index: Vec<usize>, b_index: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    let (a, b) = (t(a, "matmul", "a")?.t.clone(), t(b, "matmul", "b")?.t.clone());
    if a.int || b.int {
        return Err(PyTypeError::new_err("matmul: the GPU multiplies float32 matrices"));
    }
    wrap(py, run(py, || ops::matmul(&a, &b, n, k, m, &a_index, &b_index))?)
}

/// `op(a, b)` with broadcasting: the output `shape`, each operand's strides and start.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub(super) fn gpu_binary(py: Python<'_>, op: u32, a: &Bound<'_, PyAny>, a_strides: Vec<isize>, a_base: usize, b: &Bound<'_, PyAny>, b_strides: Vec<isize>, b_base: usize, shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    const F: &str = "binary";
    let (a, b) = (t(a, F, "a")?.t.clone(), t(b, F, "b")?.t.clone());
    let (va, vb) = (view(F, a.numel(), &shape, &a_strides, a_base)?, view(F, b.numel(), &shape, &b_strides, b_base)?);
    wrap(py, run(py, || ops::binary(op, &a, &va, &b, &vb, &shape))?)
}

/// The elements of `a` at a strided view, as a new tensor of `shape`.
#[pyfunction]
pub(super) fn gpu_gather(py: Python<'_>, a: &Bound<'_, PyAny>, strides: Vec<isize>, base: usize, shape: Vec<usize>) -> PyResult<Py<PyGpuArray>> {
    let a = t(a, "gather", "a")?.t.clone();
    let va = view("gather", a.numel(), &shape, &strides, base)?;
    wrap(py, run(py, || ops::gather(&a, &va, &shape))?)
}

/// Reduce the middle axis of x seen as (outer, n, inner): op 0 sum, 1 max, 2 min.
#[pyfunction]
pub(super) fn gpu_reduce_axis(py: Python<'_>, op: u32, x: &Bound<'_, PyAny>, outer: usize, n: usize, inner: usize) -> PyResult<Py<PyGpuArray>> {
    let x = t(x, "reduce", "x")?.t.clone();
    wrap(py, run(py, || ops::reduce_axis(op, &x, outer, n, inner))?)
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(gpu_unary, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_where, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_pad, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_scatter, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_take, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_index_add, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_matmul, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_binary, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_gather, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_reduce_axis, m)?)?;
    m.add_class::<PyGpuArray>()?;
    m.add_function(wrap_pyfunction!(gpu_upload, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_write, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_zeros, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_available, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_adapters, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_info, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_set_binding_limit, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_flag_nonfinite, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_allocations, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_readbacks, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_build_all_pipelines, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_sync, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_trim, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_axpby, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_axpby_inplace, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_activation_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_activation_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_dropout_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_sgd_update, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_adam_update, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_dense_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_dense_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_conv_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_conv_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_global_pool_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_global_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_global_max_pool_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_batchnorm_forward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_batchnorm_backward, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_loss, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_concat_last, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_slice_last, m)?)?;
    m.add_function(wrap_pyfunction!(gpu_correlate, m)?)?;
    Ok(())
}
