"""convcore.initializers against Keras 3: the deterministic initializers value for value,
the random ones by their distributions (formula limits and moments, and Keras's own
output statistics for the same shape: the random generators differ, so values cannot
match bit for bit), Keras 3's seed semantics, the fans, configs and the identifiers
``get`` accepts."""
from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras.src.initializers.random_initializers import compute_fans as keras_fans

import convcore
from convcore import initializers as I
from convcore import layers

TRUNC = 0.87962566103423978  # std of a unit normal truncated at +-2


def _keras(init_cls, kwargs, shape):
    return np.asarray(getattr(keras.initializers, init_cls)(**kwargs)(shape, dtype="float32"))


# ------------------------------------------------------------------ the random ones
# (class, kwargs, shape, distribution, the std the formula gives, the mean)
def _vs(scale, mode, shape):
    fi, fo = keras_fans(shape)
    n = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2}[mode]
    return scale / max(1.0, n)


CONV = (3, 3, 16, 32)  # a Conv2D kernel: fans 144 / 288
DENSE = (96, 64)
RANDOM_CASES = [
    ("GlorotUniform", {}, CONV, "uniform", math.sqrt(_vs(1, "fan_avg", CONV)), 0.0),
    ("GlorotNormal", {}, CONV, "truncated", math.sqrt(_vs(1, "fan_avg", CONV)) / TRUNC, 0.0),
    ("HeNormal", {}, CONV, "truncated", math.sqrt(_vs(2, "fan_in", CONV)) / TRUNC, 0.0),
    ("HeUniform", {}, DENSE, "uniform", math.sqrt(_vs(2, "fan_in", DENSE)), 0.0),
    ("LecunNormal", {}, DENSE, "truncated", math.sqrt(_vs(1, "fan_in", DENSE)) / TRUNC, 0.0),
    ("LecunUniform", {}, CONV, "uniform", math.sqrt(_vs(1, "fan_in", CONV)), 0.0),
    ("RandomNormal", {"mean": 0.5, "stddev": 0.2}, DENSE, "normal", 0.2, 0.5),
    ("RandomUniform", {"minval": -0.3, "maxval": 0.1}, DENSE, "uniform_ab", None, None),
    ("TruncatedNormal", {"mean": -1.0, "stddev": 0.3}, DENSE, "truncated", 0.3, -1.0),
    ("VarianceScaling", {"scale": 3.0, "mode": "fan_out", "distribution": "uniform"}, CONV, "uniform",
     math.sqrt(_vs(3, "fan_out", CONV)), 0.0),
    ("VarianceScaling", {"scale": 0.5, "mode": "fan_avg", "distribution": "untruncated_normal"}, CONV, "normal",
     math.sqrt(_vs(0.5, "fan_avg", CONV)), 0.0),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_in", "distribution": "normal"}, DENSE, "truncated",
     math.sqrt(_vs(2, "fan_in", DENSE)) / TRUNC, 0.0),
]
# Sample statistics of ~4600-6100 draws: the sample std of n draws has a relative spread
# of about 1/sqrt(2n) (~1%), the sample mean sigma/sqrt(n) (~1.5% of sigma). The bounds
# below are 5 such spreads.
STD_RTOL, MEAN_ATOL_SIGMAS = 0.05, 0.08


@pytest.mark.parametrize("cls,kw,shape,dist,std,mean", RANDOM_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(RANDOM_CASES)])
def test_random_initializers_follow_keras_distributions(cls, kw, shape, dist, std, mean):
    ours = getattr(I, cls)(seed=7, **kw)(shape, "float32")
    ref = _keras(cls, {**kw, "seed": 7}, shape)
    assert ours.shape == ref.shape == shape and ours.dtype == np.float32
    if dist == "uniform_ab":  # RandomUniform in [minval, maxval)
        lo, hi = kw["minval"], kw["maxval"]
        std, mean = (hi - lo) / math.sqrt(12), (lo + hi) / 2
        for a in (ours, ref):
            assert lo <= a.min() and a.max() < hi
            assert a.min() < lo + 0.01 * (hi - lo) and a.max() > hi - 0.01 * (hi - lo)
    elif dist == "uniform":  # [-limit, limit], limit = sqrt(3) * std
        lim = math.sqrt(3) * std
        for a in (ours, ref):
            assert np.abs(a).max() <= lim * (1 + 1e-6)
            assert np.abs(a).max() > 0.99 * lim
    elif dist == "truncated":  # redrawn outside mean +- 2 stddev: the sample std is 0.88 stddev
        for a in (ours, ref):
            assert np.abs(a - mean).max() <= 2 * std * (1 + 1e-6)
            assert np.abs(a - mean).max() > 1.9 * std
        std = std * TRUNC
    else:  # untruncated normal: draws beyond 3 sigma exist (p ~ 0.27% each, ~12 of ~5000)
        for a in (ours, ref):
            assert np.abs(a - mean).max() > 3 * std
    for a in (ours, ref):
        np.testing.assert_allclose(a.std(), std, rtol=STD_RTOL)
        assert abs(a.mean() - mean) < MEAN_ATOL_SIGMAS * std
    # ours and Keras's output describe the same distribution (std within both spreads)
    np.testing.assert_allclose(ours.std(), ref.std(), rtol=2 * STD_RTOL)


@pytest.mark.parametrize("shape", [(5,), (4, 7), (3, 4, 5), (3, 3, 16, 32), (2, 3, 4, 5, 6), (0, 3), ()])
def test_fans_are_kerass(shape):
    assert I._fans(shape) == keras_fans(shape)


def test_fans_of_explicit_axes_are_kerass():
    shape = (3, 4, 5, 6)
    assert I._fans(shape, [0, 1], [2, 3]) == keras_fans(shape, [0, 1], [2, 3])
    ours = I.VarianceScaling(mode="fan_in", distribution="uniform", input_axes=[0, 1], output_axes=[2, 3],
                             seed=1)(shape)
    assert np.abs(ours).max() <= math.sqrt(3.0 / 12)


def test_a_zero_fan_kernel_is_drawn_with_fan_one():
    # Keras divides by max(1, fan): a (0, 3) kernel has no entries, a (1, 0) neither
    assert I.GlorotUniform(seed=1)((0, 3)).shape == (0, 3)
    assert I.HeNormal(seed=1)((1, 0)).shape == (1, 0)


# ------------------------------------------------------------------ deterministic ones: Keras's values
DET_CASES = [("Zeros", {}, (3, 4)), ("Ones", {}, (2, 5)), ("Constant", {"value": 0.75}, (3, 2, 2)),
             ("Constant", {}, (4,)), ("Identity", {}, (4, 4)), ("Identity", {"gain": 2.5}, (3, 5)),
             ("Identity", {"gain": -1.0}, (5, 2))]


@pytest.mark.parametrize("cls,kw,shape", DET_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(DET_CASES)])
def test_deterministic_initializers_equal_keras(cls, kw, shape):
    np.testing.assert_array_equal(getattr(I, cls)(**kw)(shape, "float32"), _keras(cls, kw, shape))
    assert getattr(I, cls)(**kw)(shape, "float64").dtype == np.float64


def test_an_array_constant_round_trips_and_loads_kerass_config():
    c = I.Constant(np.array([1.0, 2.0]))
    assert c.get_config() == {"value": [1.0, 2.0]}
    np.testing.assert_array_equal(I.deserialize(I.serialize(c))((3, 2)), [[1, 2]] * 3)
    saved = keras.initializers.serialize(keras.initializers.Constant(np.array([1.0, 2.0])))
    assert saved["config"]["value"]["class_name"] == "__numpy__"
    np.testing.assert_array_equal(I.deserialize(saved)((2, 2), "float32"), [[1, 2]] * 2)


def test_constant_zeros_ones_keep_integer_dtypes():
    assert I.Constant(3)((2,), "int32").tolist() == [3, 3]
    assert I.Zeros()((2,), "int64").dtype == np.int64 and I.Ones()((2,), "int32").tolist() == [1, 1]


# ------------------------------------------------------------------ orthogonal
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5), (3, 3, 4, 8), (2, 2, 3, 20)])
@pytest.mark.parametrize("gain", [1.0, 1.7])
def test_orthogonal_is_orthogonal_as_kerass(shape, gain):
    ours = I.Orthogonal(gain=gain, seed=3)(shape, "float64")
    assert ours.shape == shape
    flat = ours.reshape(-1, shape[-1])
    rows, cols = flat.shape
    # the fewer of rows / columns are orthonormal (times gain)
    g = flat.T @ flat if rows >= cols else flat @ flat.T
    np.testing.assert_allclose(g, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_float32_and_kerass_output_have_the_same_gram_matrix():
    shape = (3, 3, 4, 8)
    ours = I.Orthogonal(gain=1.5, seed=3)(shape, "float32").reshape(-1, 8)
    ref = _keras("Orthogonal", {"gain": 1.5, "seed": 3}, shape).reshape(-1, 8)
    # float32 QR: the Gram matrix is gain^2 I to float32 rounding of 36-term sums
    for a in (ours, ref):
        np.testing.assert_allclose(a.T @ a, 2.25 * np.eye(8), atol=1e-5)


def test_orthogonal_signs_are_r_diagonals():
    # Keras's construction: Q of the QR of a normal draw, times sign(diag(R)), so
    # diag(Q^T A) = |diag(R)| > 0 for the draw A the seed gives
    init = I.Orthogonal(seed=11)
    a = np.random.default_rng(init._seed).normal(0.0, 1.0, size=(6, 4))
    q = init((6, 4), "float64")
    assert (np.diag(q.T @ a) > 0).all()


# ------------------------------------------------------------------ seeds (Keras 3 semantics)
SEEDED = ["GlorotUniform", "GlorotNormal", "HeNormal", "HeUniform", "LecunNormal", "LecunUniform", "RandomNormal",
          "RandomUniform", "TruncatedNormal", "VarianceScaling", "Orthogonal"]


def test_kerass_seeded_and_unseeded_initializers_repeat_their_values():
    # what Keras 3.15 does, checked here so a change in Keras is noticed
    for seed in (5, None):
        k = keras.initializers.GlorotUniform(seed=seed)
        np.testing.assert_array_equal(np.asarray(k((3, 4))), np.asarray(k((3, 4))))


@pytest.mark.parametrize("cls", SEEDED)
def test_seeds_as_keras3(cls):
    c = getattr(I, cls)
    a = c(seed=5)
    np.testing.assert_array_equal(a((6, 4)), a((6, 4)))  # one seeded object: the same values every call
    np.testing.assert_array_equal(a((6, 4)), c(seed=5)((6, 4)))  # same seed, same values
    assert not np.array_equal(a((6, 4)), c(seed=6)((6, 4)))
    u = c()
    np.testing.assert_array_equal(u((6, 4)), u((6, 4)))  # unseeded: its seed is drawn once, at construction
    assert not np.array_equal(u((6, 4)), c()((6, 4)))  # two unseeded objects differ
    convcore.set_seed(123)
    first = c()((6, 4))
    convcore.set_seed(123)
    np.testing.assert_array_equal(c()((6, 4)), first)  # set_seed makes unseeded ones reproducible


def test_seeded_layers_are_reproducible_and_unseeded_layers_differ():
    d1 = layers.Dense(3, kernel_initializer=I.GlorotUniform(seed=9))
    d2 = layers.Dense(3, kernel_initializer=I.GlorotUniform(seed=9))
    d3 = layers.Dense(3)
    d4 = layers.Dense(3)
    x = np.ones((1, 4), np.float32)
    for d in (d1, d2, d3, d4):
        d(x)
    np.testing.assert_array_equal(d1.kernel.numpy(), d2.kernel.numpy())
    assert not np.array_equal(d3.kernel.numpy(), d4.kernel.numpy())


# ------------------------------------------------------------------ configs
CONFIG_CASES = [
    ("GlorotUniform", {"seed": 3}), ("GlorotNormal", {}), ("HeNormal", {"seed": 1}), ("HeUniform", {}),
    ("LecunNormal", {}), ("LecunUniform", {"seed": 2}), ("RandomNormal", {"mean": 1.0, "stddev": 0.5, "seed": 4}),
    ("RandomUniform", {"minval": -1.0, "maxval": 2.0}), ("TruncatedNormal", {"stddev": 0.1, "seed": 8}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "uniform", "seed": 1}),
    ("VarianceScaling", {"input_axes": [0], "output_axes": [1], "seed": 2}),
    ("Orthogonal", {"gain": 2.0, "seed": 6}), ("Identity", {"gain": 3.0}), ("Constant", {"value": 2.5}),
    ("Zeros", {}), ("Ones", {}),
]


@pytest.mark.parametrize("cls,kw", CONFIG_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CONFIG_CASES)])
def test_config_equals_kerass_and_round_trips(cls, kw):
    ours = getattr(I, cls)(**kw)
    ref = getattr(keras.initializers, cls)(**kw)
    if cls == "Identity":
        # Keras 3.15's Identity has no get_config: its gain is lost in a save (a known
        # difference: ours keeps it)
        assert ref.get_config() == {} and ours.get_config() == kw
    else:
        assert ours.get_config() == ref.get_config()
    ser = I.serialize(ours)
    assert ser == {"class_name": cls, "config": ours.get_config()}
    # Keras 3's own serialized form (module / registered_name) loads too
    for cfg in (ser, {**keras.initializers.serialize(ref), "config": ours.get_config()}):
        again = I.deserialize(cfg)
        assert type(again) is type(ours) and again.get_config() == ours.get_config()
    again = type(ours).from_config(ours.get_config())
    shape = (4, 3)
    if "seed" in kw or cls in ("Identity", "Constant", "Zeros", "Ones"):
        np.testing.assert_array_equal(again(shape), ours(shape))
    clone = ours.clone()
    assert type(clone) is type(ours) and clone.get_config() == ours.get_config()


def test_keras_names_resolve_to_the_same_classes():
    from keras.src.initializers import ALL_OBJECTS_DICT
    names = [n for n, c in ALL_OBJECTS_DICT.items() if c.__name__ not in ("STFT", "Initializer")]
    assert len(names) >= 30
    for n in names:
        if n in ("constant", "Constant"):
            # Keras 3.15 cannot make a Constant from its name (from_config({}) needs
            # "value"); ours is Constant(0.0), the class's default
            with pytest.raises(KeyError):
                keras.initializers.get(n)
            assert I.get(n).get_config() == {"value": 0.0}
            continue
        assert type(I.get(n)).__name__ == type(keras.initializers.get(n)).__name__, n


def test_get_accepts_what_keras_get_accepts():
    assert I.get(None) is None and keras.initializers.get(None) is None
    assert isinstance(I.get(I.HeNormal), I.HeNormal)  # a class: instantiated
    obj = I.Orthogonal(seed=1)
    assert I.get(obj) is obj

    def halves(shape, dtype=None):
        return np.full(shape, 0.5, dtype)

    assert I.get(halves) is halves
    arr = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(I.get(arr)((2, 3), "float32"), arr)
    with pytest.raises(ValueError, match=r"Expected `shape` to be \(2, 3\)"):
        I.get(arr)((3, 2))
    assert isinstance(I.get({"class_name": "Ones", "config": {}}), I.Ones)


def test_initialize_keeps_old_names_and_callables():
    convcore.set_seed(0)
    for name in ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
                 "zeros", "ones", "random_normal", "random_uniform"):
        a = I.initialize(name, (3, 4), np.float32)
        assert a.shape == (3, 4) and a.dtype == np.float32 and a.flags.c_contiguous
        b = I.initialize(I.get(name), (3, 4), "float64")
        assert b.dtype == np.float64
    np.testing.assert_array_equal(I.initialize(lambda s, d: np.ones(s, d), (2,), np.float32), [1, 1])
    # None: Keras's add_weight default (glorot_uniform for floats, zeros otherwise)
    assert np.abs(I.initialize(None, (50, 50), "float32")).max() <= math.sqrt(6 / 100)
    np.testing.assert_array_equal(I.initialize(None, (3,), "int32"), [0, 0, 0])


def test_an_old_config_with_plain_names_still_loads():
    d = layers.Dense.from_config({"name": "old", "units": 3, "activation": "linear", "use_bias": True,
                                  "kernel_initializer": "he_uniform", "bias_initializer": "ones"})
    d(np.ones((2, 5), np.float32))
    assert np.abs(d.kernel.numpy()).max() <= math.sqrt(6 / 5)
    np.testing.assert_array_equal(d.bias.numpy(), np.ones(3))


def test_a_registered_callable_is_saved_by_its_name():
    from convcore.saving import register_keras_serializable

    @register_keras_serializable(package="test_initializers")
    def fives(shape, dtype=None):
        return np.full(shape, 5.0, dtype)

    assert I.serialize(fives) == "fives"
    assert I.deserialize("fives") is fives
    # what Keras 3 writes for the same function registered the same way loads as ours
    @keras.saving.register_keras_serializable(package="test_initializers", name="fives")
    def keras_fives(shape, dtype=None):
        return keras.ops.full(shape, 5.0)

    saved = keras.layers.Dense(2, kernel_initializer=keras_fives).get_config()["kernel_initializer"]
    assert saved["class_name"] == "function" and saved["config"] == "test_initializers>fives"
    assert I.deserialize(saved) is fives

    @register_keras_serializable(package="test_initializers")
    class Threes(I.Initializer):
        def __call__(self, shape, dtype=None):
            return np.full(shape, 3.0, dtype or "float32")

    ser = I.serialize(Threes())
    assert ser == {"class_name": "Threes", "config": {}, "registered_name": "test_initializers>Threes"}
    np.testing.assert_array_equal(I.deserialize(ser)((2,)), [3.0, 3.0])

    def local(shape, dtype=None):
        return np.zeros(shape, dtype)

    assert I.serialize(local) == "local"  # unregistered: its own name (loads with custom_objects)
    assert I.deserialize("local", custom_objects={"local": local}) is local
    with pytest.raises(ValueError, match="lambda"):
        I.serialize(lambda shape, dtype=None: None)


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("make,err,match", [
    (lambda: I.get("glorot"), ValueError, r"Unknown initializer 'glorot'; valid initializers are .*glorot_uniform"),
    (lambda: I.get(5), ValueError, "Could not interpret initializer identifier: 5"),
    (lambda: I.get({"class_name": "Nope", "config": {}}), ValueError, "Unknown initializer 'Nope'"),
    (lambda: I.get({"class_name": "Ones", "config": 3}), ValueError, "'config' must be a dict"),
    (lambda: I.get({"class_name": "GlorotUniform", "config": {"bad": 1}}), TypeError, "bad"),
    (lambda: I.get({"class_name": "Dense", "config": {"units": 2}}), ValueError,
     "class 'Dense' is not a subclass of convcore.initializers.Initializer"),
    (lambda: I.get({"class_name": "os.system", "config": {}}), ValueError, "Unknown initializer 'os.system'"),
    (lambda: I.VarianceScaling(scale=0), ValueError, "VarianceScaling: scale must be > 0"),
    (lambda: I.VarianceScaling(mode="fan"), ValueError, "VarianceScaling: mode must be one of"),
    (lambda: I.VarianceScaling(distribution="gamma"), ValueError, "VarianceScaling: distribution must be one of"),
    (lambda: I.RandomNormal(stddev=-1), ValueError, "RandomNormal: stddev must be >= 0"),
    (lambda: I.RandomUniform(minval=1, maxval=0), ValueError, "RandomUniform: maxval must be >= minval"),
    (lambda: I.GlorotUniform(seed=1.5), TypeError, "GlorotUniform: seed must be an integer"),
    (lambda: I.Identity()((2, 2, 2)), ValueError, "only be used for 2D matrices"),
    (lambda: I.Orthogonal()((4,)), ValueError, "at least two-dimensional"),
    (lambda: I.HeNormal()((2, 2), "int32"), TypeError, "HeNormal: random values need a float dtype"),
    (lambda: I.Zeros()((2, -1)), ValueError, "Zeros: shape must be a tuple of non-negative integers"),
    (lambda: I.Constant("a"), TypeError, "Constant: value must be a number"),
    (lambda: I.Constant([1, 2])((3,)), ValueError, "cannot fill shape"),
])
def test_bad_input_is_a_clear_error(make, err, match):
    with pytest.raises(err, match=match):
        make()
