"""The two code blocks of the networks issue, verbatim, run as a user would run them."""
import numpy as np

ISSUE_BLOCK_1 = """
from convcore import Sequential, Model, Input, layers, optimizers
model = Sequential()
model.add(layers.Dense(units=nh, input_shape=(nin,), activation='sigmoid', name='hidden'))
model.add(layers.Dense(units=nout, activation='softmax', name='output'))
opt = optimizers.Adam(lr=0.001)              # `learning_rate=` too; `lr` is an alias
model.compile(optimizer=opt, loss='sparse_categorical_crossentropy', metrics=['accuracy'])
hist = model.fit(Xtr, ytr, epochs=30, batch_size=100, validation_data=(Xts, yts))
hist.history['val_accuracy']                 # also 'loss', 'accuracy', 'val_loss'
"""

ISSUE_BLOCK_2 = """
model = Sequential([Input((28, 28, 1)),
    layers.Conv2D(32, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
    layers.Conv2D(64, (3, 3), activation='relu'), layers.MaxPooling2D((2, 2)),
    layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation='softmax')])
"""


def test_issue_blocks_run_unchanged(capsys):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 12)) * 3
    ytr = rng.integers(0, 3, 300)
    yts = rng.integers(0, 3, 100)
    Xtr = (centers[ytr] + rng.standard_normal((300, 12))).astype(np.float32)
    Xts = (centers[yts] + rng.standard_normal((100, 12))).astype(np.float32)
    ns = {"nh": 16, "nin": 12, "nout": 3, "Xtr": Xtr, "ytr": ytr, "Xts": Xts, "yts": yts}
    exec(ISSUE_BLOCK_1, ns)
    hist = ns["hist"]
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist.history["val_accuracy"]) == 30
    # Well-separated clusters: the network must actually learn them.
    assert hist.history["val_accuracy"][-1] > 0.9
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    assert "Epoch 30/30" in capsys.readouterr().out

    exec(ISSUE_BLOCK_2, ns)
    model = ns["model"]
    assert model.count_params() == 34826
    assert model.output_shape == (None, 10)
    out = model.predict(rng.random((3, 28, 28, 1)).astype(np.float32))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
