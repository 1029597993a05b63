"""Train small networks on scikit-learn's toy data sets with nnbackprop.

    python3 examples/python/toy.py

With scikit-learn installed: the digits (8x8 images, 10 classes) and two moons. Without it, two
moons from a numpy copy of sklearn.datasets.make_moons. Shows the layer-list form of Model, a
validation split, early stopping, a progress callback, save/load and predict_proba.
"""

import pathlib
import sys
import tempfile

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import nnbackprop as nnb  # noqa: E402
from nnbackprop import Dense, Dropout  # noqa: E402

try:
    from sklearn import datasets
except ImportError:
    datasets = None


def make_moons(n, noise, seed):
    """sklearn.datasets.make_moons in numpy (for machines without scikit-learn)."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0, t1 = rng.uniform(0, np.pi, n0), rng.uniform(0, np.pi, n - n0)
    x = np.concatenate([np.stack([np.cos(t0), np.sin(t0)], 1), np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)])
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n - n0, np.int64)])
    order = rng.permutation(n)
    return x[order] + rng.normal(0, noise, (n, 2))[order], y[order]


def split(x, y, test_fraction=0.25, seed=0):
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - test_fraction))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


def moons():
    if datasets is not None:
        x, y = datasets.make_moons(1000, noise=0.15, random_state=0)
    else:
        x, y = make_moons(1000, noise=0.15, seed=0)
    x_train, y_train, x_test, y_test = split(x, y)
    model = nnb.Model("2-32:relu-32:relu-2", seed=1)

    def progress(report):
        if report["epoch"] % 20 == 0:
            print(f"  epoch {report['epoch']:3d}  loss {report['loss']:.4f}  val_accuracy {report['val_accuracy']:.3f}")

    history = model.fit(x_train, y_train, epochs=200, batch_size=32, lr=0.01, validation_split=0.2,
                        early_stopping_patience=15, callback=progress)
    result = model.evaluate(x_test, y_test)
    print(f"two moons: {len(history)} epochs, test accuracy {result['accuracy']:.3f}")
    grid = np.array([[-1.0, 0.5], [0.0, 1.0], [1.0, -0.5], [2.0, 0.5]])
    for point, p in zip(grid, model.predict_proba(grid)):
        print(f"  P(class 1 | {point}) = {p[1]:.3f}")


def digits():
    if datasets is None:
        print("digits: skipped (pip install scikit-learn to run it)")
        return
    data = datasets.load_digits()
    x_train, y_train, x_test, y_test = split(data.data / 16.0, data.target)
    model = nnb.Model([Dense(128, "relu"), Dropout(0.2), Dense(64, "relu"), Dense(10)], inputs=64, seed=2)
    model.fit(x_train, y_train, epochs=40, batch_size=32, optimizer="adamw", lr=2e-3, schedule="cosine")
    result = model.evaluate(x_test, y_test)
    print(f"digits: {model.describe()}, {model.info.parameters} parameters, test accuracy {result['accuracy']:.3f}")
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "digits.safetensors"
        model.save(path)
        loaded = nnb.Model.load(path)
        assert np.array_equal(loaded.predict(x_test), model.predict(x_test))
        print(f"  saved and loaded back: {path.stat().st_size} bytes, identical predictions")


if __name__ == "__main__":
    print(f"nnbackprop {nnb.version()} ({nnb.library_path()}), ISA {nnb.isa()}")
    moons()
    digits()
