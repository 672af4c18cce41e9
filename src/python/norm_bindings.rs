//! Fused group / layer normalization bindings (spec: `crate::ops::norm`): a numpy array
//! runs the CPU kernel, a GpuArray the WGSL one. Statistics come back as (rows, groups).

use super::gpu_bindings::{run as run_gpu, wrap, PyGpuArray};
use super::{contiguous, describe, run_native, to_numpy};
use crate::cpu;
use crate::element::Element;
use crate::gpu::{self, GpuTensor};
use crate::ops::norm::NormPlan;
use numpy::{PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

type Any<'py> = Bound<'py, PyAny>;

fn gpu_of(a: &Bound<'_, PyAny>) -> Option<GpuTensor> {
    a.cast::<PyGpuArray>().ok().map(|g| g.borrow().t.clone())
}

fn present<'a, 'py>(a: Option<&'a Any<'py>>) -> Option<&'a Any<'py>> {
    a.filter(|v| !v.is_none())
}

fn numel_shape(a: &Any<'_>, fname: &str) -> PyResult<Vec<usize>> {
    if let Some(t) = gpu_of(a) {
        return Ok(t.shape);
    }
    a.cast::<numpy::PyUntypedArray>().map(|u| u.shape().to_vec()).map_err(|_| {
        PyTypeError::new_err(format!("{fname}: x must be a float numpy array or a GpuArray, got {}", describe(a)))
    })
}

fn is_f32(args: &[&Any<'_>], fname: &str) -> PyResult<bool> {
    if args.iter().all(|a| a.cast::<PyArrayDyn<f32>>().is_ok()) {
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

fn gpus(args: &[&Any<'_>], fname: &str) -> PyResult<Option<Vec<GpuTensor>>> {
    let g: Vec<Option<GpuTensor>> = args.iter().map(|a| gpu_of(a)).collect();
    if g.iter().all(|v| v.is_some()) {
        return Ok(Some(g.into_iter().flatten().collect()));
    }
    if g.iter().any(|v| v.is_some()) {
        return Err(PyValueError::new_err(format!("{fname}: every array must be on one device")));
    }
    Ok(None)
}

fn cpu_fwd<'py, T: Element + numpy::Element>(py: Python<'py>, x: &Any<'py>, gamma: Option<&Any<'py>>,
                                              beta: Option<&Any<'py>>, p: &NormPlan, shape: &[usize])
                                              -> PyResult<(Any<'py>, Any<'py>, Any<'py>)> {
    let xa = x.extract::<PyReadonlyArrayDyn<T>>()?;
    let ga = gamma.map(|a| a.extract::<PyReadonlyArrayDyn<T>>()).transpose()?;
    let ba = beta.map(|a| a.extract::<PyReadonlyArrayDyn<T>>()).transpose()?;
    let xs = contiguous(&xa)?;
    let gs = ga.as_ref().map(contiguous).transpose()?;
    let bs = ba.as_ref().map(contiguous).transpose()?;
    let (y, m, r) = run_native(py, || cpu::norm::norm_forward(&xs, gs.as_deref(), bs.as_deref(), p))?;
    let st = [p.rows, p.groups];
    Ok((to_numpy(py, y, shape)?.into_any(), to_numpy(py, m, &st)?.into_any(), to_numpy(py, r, &st)?.into_any()))
}

#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn cpu_bwd<'py, T: Element + numpy::Element>(py: Python<'py>, x: &Any<'py>, gamma: Option<&Any<'py>>, dy: &Any<'py>,
                                              mean: &Any<'py>, rstd: &Any<'py>, p: &NormPlan, need_dx: bool,
                                              shape: &[usize]) -> PyResult<(Option<Any<'py>>, Any<'py>, Any<'py>)> {
    let xa = x.extract::<PyReadonlyArrayDyn<T>>()?;
    let ga = gamma.map(|a| a.extract::<PyReadonlyArrayDyn<T>>()).transpose()?;
    let (da, ma, ra) = (dy.extract::<PyReadonlyArrayDyn<T>>()?, mean.extract::<PyReadonlyArrayDyn<T>>()?,
                        rstd.extract::<PyReadonlyArrayDyn<T>>()?);
    let (xs, ds, ms, rs) = (contiguous(&xa)?, contiguous(&da)?, contiguous(&ma)?, contiguous(&ra)?);
    let gs = ga.as_ref().map(contiguous).transpose()?;
    let (dx, dg, db) = run_native(py, || cpu::norm::norm_backward(&xs, gs.as_deref(), &ds, &ms, &rs, p, need_dx))?;
    let dx = if need_dx { Some(to_numpy(py, dx, shape)?.into_any()) } else { None };
    let c = [p.channels()];
    Ok((dx, to_numpy(py, dg, &c)?.into_any(), to_numpy(py, db, &c)?.into_any()))
}

fn check(p: &NormPlan, gamma: Option<&Any<'_>>, beta: Option<&Any<'_>>, fname: &str) -> PyResult<()> {
    for (what, a) in [("gamma", gamma), ("beta", beta)] {
        if let Some(a) = a {
            let s = numel_shape(a, fname)?;
            if s != [p.channels()] {
                return Err(PyValueError::new_err(format!(
                    "{fname}: {what} must have shape [{}], got {s:?}", p.channels()
                )));
            }
        }
    }
    Ok(())
}

/// `(y, mean, rstd)`: x viewed as (rows, pixels, groups, C / groups), each row's group
/// normalized over its pixels and channels, then `* gamma[c] + beta[c]` (each optional).
#[pyfunction]
#[pyo3(signature = (x, gamma, beta, rows, pixels, groups, epsilon))]
#[allow(clippy::too_many_arguments)]
fn group_norm<'py>(py: Python<'py>, x: &Any<'py>, gamma: Option<&Any<'py>>, beta: Option<&Any<'py>>, rows: usize,
                   pixels: usize, groups: usize, epsilon: f64) -> PyResult<(Any<'py>, Any<'py>, Any<'py>)> {
    let fname = "group_norm";
    let shape = numel_shape(x, fname)?;
    let p = NormPlan::new(shape.iter().product(), rows, pixels, groups, epsilon)?;
    let (gamma, beta) = (present(gamma), present(beta));
    check(&p, gamma, beta, fname)?;
    let mut all = vec![x];
    all.extend(gamma);
    all.extend(beta);
    if let Some(ts) = gpus(&all, fname)? {
        let mut it = ts.iter().skip(1);
        let gt = gamma.and_then(|_| it.next());
        let bt = beta.and_then(|_| it.next());
        let (y, m, r) = run_gpu(py, || gpu::ops::norm_forward(&ts[0], gt, bt, &p))?;
        let w = |t| -> PyResult<Any<'py>> { Ok(wrap(py, t)?.into_bound(py).into_any()) };
        return Ok((w(y)?, w(m)?, w(r)?));
    }
    if is_f32(&all, fname)? {
        cpu_fwd::<f32>(py, x, gamma, beta, &p, &shape)
    } else {
        cpu_fwd::<f64>(py, x, gamma, beta, &p, &shape)
    }
}

/// `(dx or None, dgamma, dbeta)` of `group_norm` from dy and the forward's statistics.
#[pyfunction]
#[pyo3(signature = (x, gamma, dy, mean, rstd, rows, pixels, groups, need_dx=true))]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn group_norm_backward<'py>(py: Python<'py>, x: &Any<'py>, gamma: Option<&Any<'py>>, dy: &Any<'py>, mean: &Any<'py>,
                            rstd: &Any<'py>, rows: usize, pixels: usize, groups: usize, need_dx: bool)
                            -> PyResult<(Option<Any<'py>>, Any<'py>, Any<'py>)> {
    let fname = "group_norm_backward";
    let shape = numel_shape(x, fname)?;
    let p = NormPlan::new(shape.iter().product(), rows, pixels, groups, 0.0)?;
    let gamma = present(gamma);
    check(&p, gamma, None, fname)?;
    if numel_shape(dy, fname)? != shape {
        return Err(PyValueError::new_err(format!("{fname}: dy must have x's shape {shape:?}")));
    }
    for (what, a) in [("mean", mean), ("rstd", rstd)] {
        if numel_shape(a, fname)?.iter().product::<usize>() != rows * groups {
            return Err(PyValueError::new_err(format!("{fname}: {what} must hold rows * groups = {} values",
                                                     rows * groups)));
        }
    }
    let mut all = vec![x, dy, mean, rstd];
    all.extend(gamma);
    if let Some(ts) = gpus(&all, fname)? {
        let gt = gamma.map(|_| &ts[4]);
        let (dx, dg, db) = run_gpu(py, || gpu::ops::norm_backward(&ts[0], gt, &ts[1], &ts[2], &ts[3], &p, need_dx))?;
        let w = |t| -> PyResult<Any<'py>> { Ok(wrap(py, t)?.into_bound(py).into_any()) };
        let dx = dx.map(w).transpose()?;
        return Ok((dx, w(dg)?, w(db)?));
    }
    if is_f32(&all, fname)? {
        cpu_bwd::<f32>(py, x, gamma, dy, mean, rstd, &p, need_dx, &shape)
    } else {
        cpu_bwd::<f64>(py, x, gamma, dy, mean, rstd, &p, need_dx, &shape)
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(group_norm, m)?)?;
    m.add_function(wrap_pyfunction!(group_norm_backward, m)?)?;
    Ok(())
}
