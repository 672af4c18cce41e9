"""Inspection tools and adversarial attacks on a trained convnet and on small float64
models (where their gradients are checked against finite differences)."""
import numpy as np
import pytest

import convcore
from convcore import Input, Model, Sequential, adversarial, inspect, layers, mnist_demo


@pytest.fixture(scope="module")
def trained():
    convcore.set_seed(0)
    (xtr, ytr), (xts, yts) = mnist_demo.load_scaled()
    m = mnist_demo.build_convnet()
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(xtr[:4000], ytr[:4000], epochs=2, batch_size=128, verbose=0)
    return m, xts[:400], yts[:400]


@pytest.fixture
def f64():
    convcore.set_floatx("float64")
    yield
    convcore.set_floatx("float32")


def small_model(seed=0):
    convcore.set_seed(seed)
    m = Sequential([Input((7, 6, 2)), layers.Conv2D(3, 3, activation="tanh", name="c1"),
                    layers.Conv2D(4, 2, activation="sigmoid", name="c2"), layers.Flatten(),
                    layers.Dense(5, activation="softmax", name="out")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return m


def fd_grad(f, x, eps=1e-6):
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        g[i] = (f(xp) - f(xm)) / (2 * eps)
    return g


def rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-12)


# ------------------------------------------------------------------ gradients vs finite differences
def test_saliency_matches_finite_differences(f64):
    m = small_model()
    x = np.random.default_rng(1).standard_normal((2, 7, 6, 2))
    cls = np.array([1, 3])
    out_layer = m.get_layer("out")
    pre = Model(m.inputs, m._output_of(m.layers[-2]))

    def score(xx, n):
        feats = pre.predict(xx[None])[0]
        z = feats @ out_layer.kernel + out_layer.bias
        return z[cls[n]]

    s = inspect.saliency(m, x, cls)
    for n in range(2):
        assert rel_err(s[n], fd_grad(lambda v: score(v, n), x[n])) < 1e-6


def test_unit_gradient_matches_finite_differences(f64):
    m = small_model()
    sub = inspect.activation_model(m, "c2")
    x = np.random.default_rng(2).standard_normal((1, 7, 6, 2))
    h, g = inspect._objective_and_grad(sub, x, 2)
    num = fd_grad(lambda v: sub.predict(v)[..., 2].mean(), x)
    assert rel_err(g, num) < 1e-6
    assert h[0] == pytest.approx(sub.predict(x)[..., 2].mean())


def test_attack_gradient_is_the_loss_gradient(f64):
    m = small_model()
    rng = np.random.default_rng(3)
    x = rng.uniform(0.2, 0.8, (3, 7, 6, 2))
    y = np.array([0, 2, 4])
    g = adversarial._grad(m, x, y, 2)
    num = fd_grad(lambda v: m.evaluate(v, y, verbose=0) * len(y), x)
    # evaluate returns the mean loss; _grad is the gradient of each sample's own loss
    assert rel_err(g, num) < 1e-6


# ------------------------------------------------------------------ feature maps, top activating
def test_feature_maps_by_name_index_and_functional_model(trained):
    m, x, _ = trained
    a = inspect.feature_maps(m, x[:5], "conv1")
    b = inspect.feature_maps(m, x[:5], 0)
    c = Model(inputs=m.inputs, outputs=m.get_layer("conv1").output).predict(x[:5])
    assert a.shape == (5, 26, 26, 32)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-6)
    z = convcore.correlate(x[0, :, :, 0], m.get_layer("conv1").kernel[:, :, 0, 7], mode="valid")
    np.testing.assert_allclose(a[0, :, :, 7], np.maximum(z + m.get_layer("conv1").bias[7], 0), rtol=1e-5, atol=1e-6)


def test_top_activating(trained):
    m, x, _ = trained
    idx, scores = inspect.top_activating(m, "conv2", 5, x, k=9, batch_size=64)
    assert len(idx) == 9 and np.all(np.diff(scores) <= 0)
    full = np.abs(inspect.feature_maps(m, x, "conv2")[..., 5]).reshape(len(x), -1).max(axis=1)
    np.testing.assert_allclose(scores, np.sort(full)[::-1][:9], rtol=1e-6)
    assert full[idx[0]] == pytest.approx(full.max())
    idx, _ = inspect.top_activating(m, "output", 3, x, k=5)
    np.testing.assert_array_equal(np.sort(idx), np.sort(np.argsort(-m.predict(x)[:, 3])[:5]))


def test_plots_return_figures(trained):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    m, x, _ = trained
    fig = inspect.plot_filters(m.get_layer("conv1"))
    assert len([a for a in fig.axes if a.images]) == 32
    fig2 = inspect.plot_feature_maps(inspect.feature_maps(m, x[:1], "conv2"))
    assert len([a for a in fig2.axes if a.images]) == 64


# ------------------------------------------------------------------ activation maximization
def test_maximize_activation_climbs_and_beats_random(trained):
    m, _, _ = trained
    img, trace = inspect.maximize_activation(m, "conv2", 3, steps=40, lr=0.05, l2=1e-3, seed=0)
    assert img.shape == (28, 28, 1) and len(trace) == 41
    assert trace[-1] > trace[0]
    drops = np.diff(trace) < -0.02 * abs(trace[-1])
    assert drops.mean() < 0.2, f"activation fell too often: {trace}"
    # Best of 100 random inputs of the same norm.
    rng = np.random.default_rng(1)
    r = rng.standard_normal((100, 28, 28, 1))
    r *= np.linalg.norm(img) / np.linalg.norm(r.reshape(100, -1), axis=1)[:, None, None, None]
    h = np.abs(inspect.feature_maps(m, r.astype(np.float32), "conv2")[..., 3].reshape(100, -1).mean(axis=1))
    assert abs(trace[-1]) > h.max()


def test_maximize_activation_regularizers_run(trained):
    m, _, _ = trained
    img, trace = inspect.maximize_activation(m, "output", 7, steps=10, lr=0.05, tv=0.01, blur_every=3,
                                             jitter=2, seed=0, value_range=(0, 1))
    assert img.min() >= 0 and img.max() <= 1 and np.isfinite(trace).all()
    img2, trace2 = inspect.maximize_activation(m, "output", 7, steps=10, lr=0.05, tv=0.01, blur_every=3,
                                               jitter=2, seed=0, value_range=(0, 1))
    np.testing.assert_array_equal(img, img2)


# ------------------------------------------------------------------ attacks
def _acc(m, x, y):
    return float(np.mean(m.predict(x).argmax(1) == y))


def test_attacks_stay_in_the_ball_and_range_and_hurt_more_than_random(trained):
    m, x, y = trained
    eps = 0.1
    clean = _acc(m, x, y)
    rnd = adversarial.random_perturbation(x, eps, seed=0)
    f = adversarial.fgsm(m, x, y, eps)
    p = adversarial.pgd(m, x, y, eps, steps=10, seed=0)
    p2 = adversarial.pgd(m, x, y, 1.5, norm="2", steps=10, seed=0)
    for adv in (rnd, f, p):
        assert np.abs(adv.astype(np.float64) - x).max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    assert np.sqrt(((p2.astype(np.float64) - x) ** 2).reshape(len(x), -1).sum(1)).max() <= 1.5 + 1e-4
    a_rnd, a_f, a_p = _acc(m, rnd, y), _acc(m, f, y), _acc(m, p, y)
    assert clean - a_rnd < 0.05
    assert a_f < a_rnd - 0.05
    assert a_p <= a_f + 0.01
    assert adversarial.robust_accuracy(m, x, y, "none") == pytest.approx(clean)
    assert adversarial.robust_accuracy(m, x, y, "fgsm", eps=eps) == pytest.approx(a_f)


def test_larger_eps_breaks_the_model(trained):
    m, x, y = trained
    assert _acc(m, adversarial.pgd(m, x[:200], y[:200], 0.3, steps=10, seed=0), y[:200]) < 0.1


# ------------------------------------------------------------------ bad input
def test_bad_inputs(trained):
    m, x, y = trained
    with pytest.raises(ValueError, match="eps"):
        adversarial.fgsm(m, x, y, -0.1)
    with pytest.raises(ValueError, match="steps"):
        adversarial.pgd(m, x, y, 0.1, steps=0)
    with pytest.raises(ValueError, match="labels|inputs"):
        adversarial.fgsm(m, x, y[:-1], 0.1)
    with pytest.raises(ValueError, match="label 12"):
        adversarial.fgsm(m, x[:2], np.array([1, 12]), 0.1)
    with pytest.raises(ValueError, match=r"pixel range \[0.0, 1.0\]"):
        adversarial.fgsm(m, x * 255, y, 0.1)
    with pytest.raises(ValueError, match="norm"):
        adversarial.pgd(m, x, y, 0.1, norm="1")
    with pytest.raises(ValueError, match="conv1"):
        inspect.feature_maps(m, x, "nope")
    with pytest.raises(ValueError, match="64 units"):
        inspect.top_activating(m, "conv2", 64, x)
    with pytest.raises(ValueError, match="steps"):
        inspect.maximize_activation(m, "conv2", 0, steps=0)
    with pytest.raises(ValueError, match="10 outputs"):
        inspect.saliency(m, x[:2], 10)
    with pytest.raises(ValueError, match="attack"):
        adversarial.robust_accuracy(m, x, y, "deepfool")
