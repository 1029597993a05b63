"""The plugin API from Python: numpy activations and losses through ctypes callbacks, and the C
example plugin libraries loaded with nnb.load_plugin (the same .so the C and Swift tests use)."""

import os
import pathlib
import subprocess
import tempfile

import numpy as np
import pytest

import nnbackprop as nnb

ROOT = pathlib.Path(__file__).resolve().parents[2]
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])


def softplus(x):
    return np.logaddexp(0, x)


def mish(x):
    return x * np.tanh(softplus(x))


def mish_grad(dy, x, y):
    t, s = np.tanh(softplus(x)), 1 / (1 + np.exp(-x))
    return dy * (t + x * s * (1 - t * t))


def squared_error(pred, target):
    d = pred - target
    return float(np.mean(d * d)), 2 * d / d.size


@pytest.fixture(scope="module", autouse=True)
def registered():
    nnb.register_activation("py_mish", mish, mish_grad)
    nnb.register_loss("py_squared_error", squared_error)


def test_python_activation_learns_xor():
    model = nnb.Model("2-8:py_mish-2", seed=1)
    model.fit(XOR_X, XOR_Y, epochs=300, batch_size=4, lr=0.05)
    assert list(model.predict_classes(XOR_X)) == [0, 1, 1, 0]
    assert "py_mish" in model.describe()


def test_python_activation_in_layer_classes():
    """Dense(..., "py_mish") and Activation("py_mish") are the model "2-8:py_mish-2" is."""
    x = np.random.default_rng(2).normal(size=(5, 2))
    want = nnb.Model("2-8:py_mish-2", seed=4)
    lists = ([nnb.Dense(8, "py_mish"), nnb.Dense(2)], [nnb.Dense(8), nnb.Activation("py_mish"), 2], ["8:py_mish", 2])
    for layers in lists:
        model = nnb.Model(layers, inputs=2, seed=4)
        assert model.describe() == want.describe()
        np.testing.assert_array_equal(model.predict(x), want.predict(x))
    image = nnb.Model([nnb.Flatten(), nnb.Dense(3, "py_mish")], input_shape=(1, 2, 2))
    assert image.input_shape == (1, 2, 2) and "py_mish" in image.describe()


def test_sgd_step_through_python_activation_descends():
    """Backprop runs through the Python derivative: the batch loss reported by the step is the
    loss before it, and a small SGD step lowers it. (Finite-difference checks of plugin
    activations are in the Swift tests, on the same C plugins.)"""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (16, 3)).astype(np.float32)
    y = rng.uniform(-1, 1, (16, 2)).astype(np.float32)
    m = nnb.Model("3-5:py_mish-2", seed=3)
    m.compile(loss="mse", optimizer="sgd", lr=1e-3, batch_size=16)
    before = m.evaluate(x, y, loss="mse")["loss"]
    first = m.train_batch(x, y)
    after = m.evaluate(x, y, loss="mse")["loss"]
    assert first == pytest.approx(before, rel=1e-6)
    assert after < before  # a descent step through the plugin's derivative


def test_python_loss_matches_builtin_mse():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (20, 4)).astype(np.float32)
    y = rng.uniform(-1, 1, (20, 2)).astype(np.float32)
    a = nnb.Model("4-6:tanh-2", seed=5)
    b = nnb.Model("4-6:tanh-2", seed=5)
    ha = a.fit(x, y, epochs=5, batch_size=5, loss="mse", optimizer="sgd", lr=0.1, shuffle=0)
    hb = b.fit(x, y, epochs=5, batch_size=5, loss="py_squared_error", optimizer="sgd", lr=0.1, shuffle=0)
    assert [r["loss"] for r in hb] == pytest.approx([r["loss"] for r in ha], rel=1e-5)
    np.testing.assert_allclose(b.predict(x), a.predict(x), rtol=1e-5, atol=1e-6)


def test_registration_errors():
    with pytest.raises(nnb.DuplicateError, match="py_mish"):
        nnb.register_activation("py_mish", mish, mish_grad)
    with pytest.raises(nnb.InvalidArgumentError):
        nnb.register_activation("relu", mish, mish_grad)
    with pytest.raises(nnb.InvalidArgumentError):
        nnb.register_activation("Not Valid", mish, mish_grad)
    assert not nnb.plugin_registered("Not Valid")
    with pytest.raises(TypeError):
        nnb.register_activation("py_other", None, mish_grad)
    with pytest.raises(nnb.UnknownNameError):
        nnb.Model("2-4:py_nothing-2")


def test_exception_in_a_callback_is_raised_not_swallowed():
    def broken(x):
        raise ValueError("boom")

    nnb.register_activation("py_broken", broken, mish_grad)
    model = nnb.Model("2-3:py_broken-2", seed=1)
    with pytest.raises(RuntimeError, match="boom"):
        model.predict(XOR_X)
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(XOR_X, XOR_Y, epochs=1, batch_size=4)


@pytest.fixture(scope="module")
def plugin_dir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="nnb-py-plugins-"))
    try:
        subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "plugins"), f"OUT={d}"], check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot build the example plugins: {e}")
    return d


def test_c_plugin_library_from_python(plugin_dir, tmp_path):
    nnb.load_plugin(plugin_dir / "libnnb_mish.so")
    assert nnb.plugin_registered("mish")
    with pytest.raises(nnb.DuplicateError):
        nnb.load_plugin(plugin_dir / "libnnb_mish.so")
    with pytest.raises(nnb.PluginError):
        nnb.load_plugin(tmp_path / "missing.so")
    model = nnb.Model("2-8:mish-2", seed=1)
    model.fit(XOR_X, XOR_Y, epochs=300, batch_size=4, lr=0.05)
    assert list(model.predict_classes(XOR_X)) == [0, 1, 1, 0]
    path = tmp_path / "mish.safetensors"
    model.save(path)
    np.testing.assert_array_equal(nnb.Model.load(path).predict(XOR_X), model.predict(XOR_X))
    # A fresh interpreter without the plugin cannot load it, and the error names the plugin.
    code = (
        "import nnbackprop as nnb, sys\n"
        "try:\n    nnb.Model.load(sys.argv[1])\nexcept nnb.UnknownNameError as e:\n"
        "    print('refused:', e); sys.exit(0 if 'mish' in str(e) else 1)\nsys.exit(2)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run(["python3", "-c", code, str(path)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
