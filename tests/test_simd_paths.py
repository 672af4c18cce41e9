"""Every instruction-set path of the CPU kernels, forced in turn.

The kernels pick AVX-512, AVX2 + FMA or portable code at run time (src/cpu/simd.rs).
``_core.set_simd_level`` lowers the path for the tests (``CONVCORE_SIMD`` does the same
for a whole process), so a machine with AVX-512 checks all three paths and an AVX2-only
machine the two it has; a path the CPU lacks is refused, never run.

On each path: the whole op table of test_ops.py (values against numpy / scipy, and
gradients against float64 finite differences), then the kernels that have hand- or
compiler-vectorised bodies at sizes that reach their vector loops and their tails
(the op table's inputs are tiny), against references, and the same bits on every path
where the arithmetic is the same (elementwise ops, the dropout mask, the fused
convolution against the unfused one).
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as sp_ndimage

import convcore
from convcore import _core, ops

import test_ops

LEVELS = _core.simd_levels()


@pytest.fixture(params=LEVELS)
def level(request):
    before = _core.set_simd_level(request.param)
    assert _core.simd_level() == request.param
    yield request.param
    _core.set_simd_level(before)


def test_the_cpu_paths_are_listed_from_portable_up():
    assert LEVELS[0] == "portable"
    assert set(LEVELS) <= {"portable", "avx2", "avx512"}
    assert _core.simd_level() in LEVELS
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    if " avx2 " in flags and " fma " in flags:
        assert "avx2" in LEVELS
    if all(f" {f} " in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        assert "avx512" in LEVELS


def test_a_path_the_cpu_lacks_or_an_unknown_name_is_refused():
    with pytest.raises(ValueError, match="expected one of"):
        _core.set_simd_level("sse9")
    if "avx512" not in LEVELS:
        with pytest.raises(ValueError, match="not available on this CPU"):
            _core.set_simd_level("avx512")
    assert _core.simd_level() in LEVELS


@pytest.mark.parametrize("env, want", [("portable", "portable"), ("avx2", "avx2"), ("avx512", "avx512"),
                                       ("nonsense", None)])
def test_the_environment_variable_picks_the_path_and_is_clamped_to_the_cpu(env, want):
    code = "from convcore import _core; print(_core.simd_level())"
    got = subprocess.run([sys.executable, "-c", code], env={**os.environ, "CONVCORE_SIMD": env},
                         capture_output=True, text=True, check=True).stdout.strip()
    best = LEVELS[-1]
    if want is None:
        assert got == best  # an unknown value leaves the best path
    else:
        order = ["portable", "avx2", "avx512"]
        assert got == order[min(order.index(want), order.index(best))]


@pytest.mark.parametrize("entry", test_ops.TABLE, ids=test_ops.IDS)
def test_op_table_values_on_every_path(level, entry):
    test_ops.test_op_matches_reference_on_cpu(entry)


@pytest.mark.parametrize("entry", test_ops.TABLE, ids=test_ops.IDS)
def test_op_table_gradients_on_every_path(level, entry):
    test_ops.test_gradient_matches_finite_differences(entry)


rng = np.random.default_rng(15)


def _conv_ref(x, w, b, padding):
    """float64 reference convolution through scipy (valid / same, stride 1)."""
    kh, kw, ci, co = w.shape
    if padding == "same":
        ph, pw = kh - 1, kw - 1
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    n, h, wd, _ = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    y = np.zeros((n, oh, ow, co))
    for i in range(kh):
        for j in range(kw):
            y += np.tensordot(x[:, i:i + oh, j:j + ow, :].astype(np.float64), w[i, j].astype(np.float64), 1)
    return y + b


@pytest.mark.parametrize("c_out", [16, 32, 64, 24])
def test_first_layer_convolution_on_every_path(level, c_out):
    # C_in = 1, K = 9: the small-K register kernel (16 / 32 / 64 filters are whole vectors
    # at both widths; 24 is not at 512 bits and takes the GEMM there)
    x = rng.standard_normal((3, 13, 11, 1)).astype(np.float32)
    w = rng.standard_normal((3, 3, 1, c_out)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    y = _core.conv_forward(x, w, b, [1, 1], [1, 1], "valid")
    np.testing.assert_allclose(y, _conv_ref(x, w, b, "valid"), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("act", ["linear", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("shape", [((2, 9, 7, 1), (3, 3, 1, 32)), ((2, 8, 6, 5), (3, 3, 5, 12)),
                                   ((1, 6, 6, 8), (1, 1, 8, 16))])
def test_fused_conv_activation_is_the_unfused_op_bit_for_bit(level, act, shape):
    xs, ws = shape
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[-1]).astype(np.float32)
    z = _core.conv_forward(x, w, b, [1, 1], [1, 1], "same")
    y = _core.conv_act_forward(x, w, b, act, [1, 1], [1, 1], "same")
    assert np.array_equal(y, _core.activation_forward(act, z))
    f = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
         "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[act]
    np.testing.assert_allclose(y, f(_conv_ref(x, w, b, "same")), rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    fused = _core.conv_act_backward(x, w, y, dy, act, [1, 1], [1, 1], "same", True)
    dz = _core.activation_backward(act, z, _core.activation_forward(act, z), dy)
    unfused = _core.conv_backward(x, w, dz, [1, 1], [1, 1], "same", True)
    for a, u in zip(fused, unfused):
        assert np.array_equal(a, u)


def test_fused_conv_activation_refuses_softmax_and_bad_shapes():
    x = np.zeros((1, 4, 4, 2), np.float32)
    w = np.zeros((3, 3, 2, 4), np.float32)
    with pytest.raises(ValueError, match="elementwise"):
        _core.conv_act_forward(x, w, None, "softmax", [1, 1], [1, 1], "valid")
    with pytest.raises(ValueError, match="activation"):
        _core.conv_act_forward(x, w, None, "gelu?", [1, 1], [1, 1], "valid")
    y = _core.conv_act_forward(x, w, None, "relu", [1, 1], [1, 1], "valid")
    with pytest.raises(ValueError, match="y"):
        _core.conv_act_backward(x, w, y[:, :1], y, "relu", [1, 1], [1, 1], "valid")
    with pytest.raises(TypeError, match="float32"):
        _core.conv_act_forward(x, w.astype(np.float64), None, "relu", [1, 1], [1, 1], "valid")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, k", [((37, 131), (3, 3)), ((64, 300), (5, 5)), ((21, 45), (15, 15)),
                                      ((5, 700), (2, 12)), ((4, 90), (1, 10)),
                                      ((9, 17, 23), (3, 3, 3))])
def test_direct_correlation_on_every_path(level, dtype, shape, k):
    a = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(k).astype(dtype)
    for mode in ("constant", "reflect"):
        got = convcore.ndimage.correlate(a, w, mode=mode)
        want = sp_ndimage.correlate(a.astype(np.float64), w.astype(np.float64), mode=mode)
        tol = 1e-4 if dtype == np.float32 else 1e-11
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize("shape, axis, taps", [((37, 131), 1, 17), ((64, 300), 0, 17), ((21, 45), 1, 3),
                                               ((5, 700), 1, 33), ((40, 9), 0, 21), ((3, 2100), 1, 1030)])
def test_float32_summed_in_float64_on_every_path(level, shape, axis, taps):
    """The float32-data, float64-sum kernel (Gaussians, long 1-D windows) on each path:
    scipy's float32 result (one rounding of a double sum), at most one ulp off near a
    tie, against a float64 filter of the same data rounded once."""
    a = (rng.standard_normal(shape) * 50).astype(np.float32)
    w = rng.standard_normal(taps)
    for mode, cval in (("constant", 0.1), ("reflect", 0.0), ("wrap", 0.0)):
        got = convcore.ndimage.correlate1d(a, w, axis=axis, mode=mode, cval=cval) if taps >= 16 else \
            convcore.ndimage.gaussian_filter1d(a, 0.5, axis=axis, mode=mode, cval=cval)
        ref = sp_ndimage.correlate1d(a.astype(np.float64), w, axis=axis, mode=mode, cval=cval) if taps >= 16 else \
            sp_ndimage.gaussian_filter1d(a.astype(np.float64), 0.5, axis=axis, mode=mode, cval=cval)
        ref = ref.astype(np.float32)
        assert got.dtype == np.float32
        # Neighbouring float32 values differ by one in their bit patterns (same sign).
        off = np.abs(got.view(np.int32).astype(np.int64) - ref.view(np.int32).astype(np.int64))
        off = np.where(np.sign(got) == np.sign(ref), off, np.abs(got - ref) > 0)
        assert off.max() <= 1 and (off == 0).mean() >= 0.98, (level, mode, off.max(), (off == 0).mean())


@pytest.mark.parametrize("channels, mult", [(16, 1), (40, 1), (24, 2), (7, 3)])
def test_depthwise_convolution_on_every_path(level, channels, mult):
    x = rng.standard_normal((2, 9, 8, channels)).astype(np.float32)
    w = rng.standard_normal((3, 3, channels, mult)).astype(np.float32)
    y = ops.depthwise_conv(ops.convert_to_tensor(x), ops.convert_to_tensor(w), padding="same").numpy()
    want = np.concatenate([_conv_ref(x[..., c:c + 1], w[:, :, c:c + 1, :], 0.0, "same") for c in range(channels)], -1)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk = _core.depthwise_conv_backward(x, w, dy, [1, 1], [1, 1], "same", True)
    # adjointness: <dy, f(x, w)> = <dx, x> = <dk, w>, in float64
    lhs = float(np.sum(dy.astype(np.float64) * want))
    assert abs(lhs - float(np.sum(dx.astype(np.float64) * x))) <= 1e-3 * max(1.0, abs(lhs))
    assert abs(lhs - float(np.sum(dk.astype(np.float64) * w))) <= 1e-3 * max(1.0, abs(lhs))


def _on_every_path(f):
    """f() on each path, restoring the path after."""
    out = []
    before = _core.simd_level()
    try:
        for lv in LEVELS:
            _core.set_simd_level(lv)
            out.append(f())
    finally:
        _core.set_simd_level(before)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [70001, 1 << 16, 100003])
def test_binary_ops_are_numpys_bits_on_every_path(dtype, n):
    a = rng.standard_normal(n).astype(dtype)
    b = rng.standard_normal(n).astype(dtype)
    a[::97] = np.nan
    b[5::89] = np.nan
    a[3::101], b[3::101] = 0.0, -0.0
    a[4::103] = np.inf
    vec = rng.standard_normal(7).astype(dtype)
    a2 = a[: n // 7 * 7].reshape(-1, 7)
    for name, ref in [("add", np.add), ("subtract", np.subtract), ("multiply", np.multiply),
                      ("divide", np.true_divide), ("maximum", np.maximum), ("minimum", np.minimum)]:
        with np.errstate(all="ignore"):
            want, want_rows = ref(a, b), ref(a2, vec)
        for got, got_rows in _on_every_path(lambda: (_core.binary(name, a, b), _core.binary(name, a2, vec))):
            assert got.dtype == want.dtype and got.shape == want.shape
            assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), name
            assert np.array_equal(got_rows.view(np.uint8), want_rows.view(np.uint8)), name


def test_binary_refuses_mismatched_operands():
    a = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="last axis"):
        _core.binary("add", a, np.zeros((4,), np.float32))
    with pytest.raises(TypeError, match="float32"):
        _core.binary("add", a, np.zeros((4, 5), np.float64))
    with pytest.raises(ValueError, match="expected one of"):
        _core.binary("power", a, a)


def test_the_cpu_backend_runs_large_binary_ops_natively_with_numpys_result():
    from convcore import device
    B = device.backend("cpu")
    a = rng.standard_normal((8, 64, 64, 16)).astype(np.float32)
    bias = rng.standard_normal(16).astype(np.float32)
    assert device._native_binary_fits(a, a) and device._native_binary_fits(a, bias)
    assert not device._native_binary_fits(a[:, :, :, :1], bias)  # broadcasting the other way: numpy
    assert not device._native_binary_fits(a[:2, :2], a[:2, :2])  # small: numpy
    assert np.array_equal(B.binary("add", a, bias), a + bias)
    assert np.array_equal(B.binary("maximum", a, a[::-1].copy()), np.maximum(a, a[::-1]))


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
def test_activations_at_vector_sizes_on_every_path(act):
    x = rng.standard_normal(100_003).astype(np.float32) * 4
    x[::1000] = np.nan
    ref = {"relu": lambda v: np.where(np.isnan(v) | (v > 0), v, 0),
           "sigmoid": lambda v: 1 / (1 + np.exp(-v.astype(np.float64))),
           "tanh": lambda v: np.tanh(v.astype(np.float64))}[act](x)
    outs = _on_every_path(lambda: _core.activation_forward(act, x))
    for y in outs:
        np.testing.assert_allclose(y, ref, rtol=2e-6, atol=1e-7)
        assert np.array_equal(y.view(np.uint32), outs[0].view(np.uint32))


def test_dropout_masks_are_the_same_bits_on_every_path():
    x = rng.standard_normal((64, 1000)).astype(np.float32)
    outs = _on_every_path(lambda: _core.dropout_forward(x, 0.3, 1234))
    for y, m in outs:
        assert np.array_equal(y, outs[0][0]) and np.array_equal(m, outs[0][1])
        assert abs((m > 0).mean() - 0.7) < 0.01
        np.testing.assert_array_equal(y, x * m)


def test_dropout_mask_is_the_documented_counter_based_stream():
    # element i is kept when uniform_at(seed, i) >= rate, uniform_at built of splitmix64
    # (src/cpu/nn.rs); recomputed here in Python for a few indices and rates
    M = (1 << 64) - 1

    def splitmix(z):
        z = (z + 0x9E3779B97F4A7C15) & M
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
        return z ^ (z >> 31)

    seed = 99
    key = splitmix(seed ^ 0x5851F42D4C957F2D)
    x = np.ones(5000, np.float64)
    for rate in (0.1, 0.5, 0.9):
        _, m = _core.dropout_forward(x, rate, seed)
        for i in range(0, 5000, 37):
            u = (splitmix((key + i * 0x9E3779B97F4A7C15) & M) >> 11) * 2.0 ** -53
            assert (m[i] > 0) == (u >= rate), (rate, i)


def test_a_training_step_is_reproducible_on_each_path():
    from convcore import layers

    def step():
        convcore.set_seed(3)
        m = convcore.Sequential([layers.Input((12, 12, 1)), layers.Conv2D(16, 3, activation="relu"),
                                 layers.MaxPooling2D(), layers.Dropout(0.3), layers.Flatten(), layers.Dense(4)])
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        x = np.random.default_rng(0).standard_normal((32, 12, 12, 1)).astype(np.float32)
        y = np.arange(32) % 4
        m.train_on_batch(x, y)
        m.train_on_batch(x, y)
        return [w.copy() for w in m.get_weights()]

    runs = _on_every_path(lambda: (step(), step()))
    for a, b in runs:
        for u, v in zip(a, b):
            assert np.array_equal(u, v)
    for a, _ in runs[1:]:  # the paths agree to float32 rounding
        for u, v in zip(a, runs[0][0]):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("shape", [(10, 13, 2048), (32, 7, 7, 512), (3, 5, 7), (1, 1, 1, 3)])
def test_batch_normalization_on_every_path_and_every_chunking(level, shape):
    # rows x channels chosen so the fixed split of the rows into (at most 64) chunks
    # leaves empty chunks at the end (130 rows of 2048, 1568 of 512), and tiny ones
    x = rng.standard_normal(shape) * 3 + 1.5
    c = shape[-1]
    g, b = rng.standard_normal(c), rng.standard_normal(c)
    dy = rng.standard_normal(shape)
    axes = tuple(range(len(shape) - 1))
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    xhat = (x - mean) / np.sqrt(var + 1e-3)
    m = x.size // c
    want_dx = g / np.sqrt(var + 1e-3) * (dy - dy.sum(axes) / m - xhat * (dy * xhat).sum(axes) / m)
    for dt, tol in ((np.float64, 1e-9), (np.float32, 2e-4)):
        y, mu, v = _core.batchnorm_forward(x.astype(dt), g.astype(dt), b.astype(dt), 1e-3, True)
        np.testing.assert_allclose(y, xhat * g + b, rtol=tol, atol=tol)
        np.testing.assert_allclose(mu, mean, rtol=tol, atol=tol)
        np.testing.assert_allclose(v, var, rtol=tol, atol=tol)
        dx, dg, db = _core.batchnorm_backward(x.astype(dt), g.astype(dt), mu, v, 1e-3, dy.astype(dt))
        np.testing.assert_allclose(db, dy.sum(axes), rtol=tol, atol=tol * m)
        np.testing.assert_allclose(dg, (dy * xhat).sum(axes), rtol=tol, atol=tol * m)
        np.testing.assert_allclose(dx, want_dx, rtol=tol, atol=tol * 10)
        yi = _core.batchnorm_forward(x.astype(dt), g.astype(dt), b.astype(dt), 1e-3, False, mu, v)
        yi = yi[0] if isinstance(yi, tuple) else yi
        np.testing.assert_allclose(yi, xhat * g + b, rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int16, np.int32, np.uint32, np.int64,
                                   np.uint64, np.float32, np.float64])
@pytest.mark.parametrize("size", [3, 5])
def test_box_medians_minima_and_maxima_are_scipys_on_every_path(level, dtype, size):
    # The 3x3 / 5x5 box medians run hand-vectorised networks over lines of keys (the
    # 3x3 two output rows at a time: even and odd numbers of rows; the one-byte 3x3,
    # in rows of three vectors or more, from the rows in place, down strips of rows),
    # the box minimum /
    # maximum hand-vectorised folds (src/cpu/rank_simd.rs): rows wider than a vector
    # and narrower (the kernels' outputs beyond the row dropped, or the scalar folds),
    # every mode, origins at both ends; few distinct values so that ties are common,
    # and scipy's result to the bit.
    r = np.random.default_rng(size)
    for shape in [(9, 203), (37, 200), (6, 70), (5, 17), (7, 3)]:
        if np.dtype(dtype).kind == "f":
            x = (r.integers(-4, 5, shape) * 0.75).astype(dtype)
        else:
            info = np.iinfo(dtype)
            # scipy orders in float64: its 64-bit results are exact within 2**53 only
            lo, hi = (max(info.min, -2 ** 53), min(info.max, 2 ** 53)) if info.bits == 64 else (info.min, info.max)
            x = r.choice(np.array([lo, lo + 1, 0, 7, hi - 1, hi], dtype=dtype), shape)
        for mode in ("reflect", "constant", "nearest", "mirror", "wrap"):
            for origin in (-(size // 2), 0, size // 2):
                for name in ("median_filter", "minimum_filter", "maximum_filter"):
                    got = getattr(convcore.ndimage, name)(x, size=size, mode=mode, cval=1, origin=origin)
                    want = getattr(sp_ndimage, name)(x, size=size, mode=mode, cval=1, origin=origin)
                    assert got.dtype == want.dtype
                    np.testing.assert_array_equal(got, want, err_msg=f"{name} {shape} {mode} origin {origin}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_gaussian_passes_are_the_passes_apart_on_every_path(level, dtype):
    """gaussian_filter / gaussian_laplace of a 2-D array run their passes fused in strips
    of rows (the Laplacian's two filters and their sum in the same call): the bits of the
    passes run one by one and added with numpy, on every path; float32 within one ulp of
    scipy."""
    from convcore import ndimage as cnd
    rng = np.random.default_rng(7)
    fused = cnd._gaussian2d
    for shape in [(67, 301), (9, 2100), (3, 5)]:
        a = (rng.standard_normal(shape) * 10).astype(dtype)
        a[1, 2] = np.inf if shape[0] > 3 else a[1, 2]
        for kw in [dict(sigma=1.5), dict(sigma=(2.0, 0.7), mode="constant", cval=0.5),
                   dict(sigma=3.0, mode=("wrap", "mirror"), cval=0.1), dict(sigma=1.0, order=(1, 2), mode="nearest"),
                   dict(sigma=2.0, mode="constant", cval=0.1)]:
            got = [cnd.gaussian_filter(a, **kw)]
            lap_kw = {k: v for k, v in kw.items() if k != "order"}
            got.append(cnd.gaussian_laplace(a, **lap_kw))
            cnd._gaussian2d = lambda *args: None
            try:
                want = [cnd.gaussian_filter(a, **kw), cnd.gaussian_laplace(a, **lap_kw)]
            finally:
                cnd._gaussian2d = fused
            for g, w in zip(got, want):
                assert g.dtype == w.dtype == dtype and g.shape == w.shape
                # the bits, any NaN counted as one (an add's NaN sign is not specified)
                g, w = (np.where(np.isnan(v), dtype(np.nan), v) for v in (g, w))
                np.testing.assert_array_equal(g.view(np.uint8), w.view(np.uint8), err_msg=f"{shape} {kw}")
            if dtype == np.float32:
                for g, ref in zip(got, [sp_ndimage.gaussian_filter(a, **kw), sp_ndimage.gaussian_laplace(a, **lap_kw)]):
                    both = np.isnan(g) & np.isnan(ref)
                    np.testing.assert_allclose(np.where(both, 0, g), np.where(both, 0, ref), rtol=1.2e-7, atol=1e-30,
                                               err_msg=f"{shape} {kw}")
