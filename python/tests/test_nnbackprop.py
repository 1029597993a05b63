"""Tests of the nnbackprop Python module (ctypes over libnnbackprop.so).

    python3 -m pytest python/tests            # after scripts/build-lib.sh
    NNB_HEAVY_TESTS=1 python3 -m pytest python/tests -k fashion   # + Fashion-MNIST (a minute or two)

The module is imported from this checkout's python/ folder and finds build/lib/libnnbackprop.so
itself (or the library NNBACKPROP_LIB names).
"""

import copy
import ctypes
import gzip
import math
import os
import pickle
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import nnbackprop as nnb  # noqa: E402
from nnbackprop import _lib  # noqa: E402

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def two_moons(n, noise=0.1, seed=0):
    """scikit-learn's make_moons, in numpy: two interleaved half circles, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], axis=1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0, np.int64), np.ones(n - n0, np.int64)])
    order = rng.permutation(n)
    return x[order], y[order]


def blobs(n, features, classes, spread=0.5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-3, 3, (classes, features))
    y = np.arange(n) % classes
    x = centres[y] + rng.normal(0, spread, (n, features))
    return x, y


# -- the module ----------------------------------------------------------------------------


def test_version_matches_header_mirror():
    assert nnb.version() == nnb.HEADER_VERSION == nnb.__version__
    assert nnb.abi_version() == nnb.ABI_VERSION == 1
    assert nnb.version_number() == _lib.VERSION_NUMBER


def test_library_lookup(tmp_path):
    python_dir = str(pathlib.Path(__file__).resolve().parents[1])
    probe = "import nnbackprop; print(nnbackprop.library_path())"
    env = dict(os.environ, NNBACKPROP_LIB=nnb.library_path())
    ok = subprocess.run([sys.executable, "-c", probe], cwd=python_dir, env=env, capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.strip() == nnb.library_path(), ok.stderr
    env["NNBACKPROP_LIB"] = str(tmp_path / "libnnbackprop.so")  # not there
    bad = subprocess.run([sys.executable, "-c", probe], cwd=python_dir, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "ImportError" in bad.stderr and "NNBACKPROP_LIB" in bad.stderr
    not_lib = tmp_path / "not-a-library.so"
    not_lib.write_bytes(b"not an ELF file")
    env["NNBACKPROP_LIB"] = str(not_lib)
    bad = subprocess.run([sys.executable, "-c", probe], cwd=python_dir, env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "ImportError" in bad.stderr and "not-a-library.so" in bad.stderr


def test_runtime_queries():
    assert nnb.isa() in {"avx512", "avx2", "neon", "scalar"}
    assert isinstance(nnb.openmp_enabled(), bool)
    original = nnb.num_threads()
    assert original >= 1
    try:
        nnb.set_num_threads(1)
        assert nnb.num_threads() == 1
        with pytest.raises(nnb.InvalidArgumentError) as e:
            nnb.set_num_threads(-1)
        assert e.value.status == _lib.ERR_INVALID_ARGUMENT and e.value.message
        assert nnb.num_threads() == 1
    finally:
        nnb.set_num_threads(original)
    assert nnb.num_threads() == original


def test_status_strings():
    for code in range(_lib.OK, _lib.ERR_INTERNAL + 1):
        text = nnb.status_string(code)
        assert text.startswith(nnb.errors.status_name(code)), text


def test_every_status_has_its_exception_class():
    expected = {
        _lib.ERR_NULL_ARGUMENT: (nnb.NullArgumentError, ValueError),
        _lib.ERR_INVALID_ARGUMENT: (nnb.InvalidArgumentError, ValueError),
        _lib.ERR_SHAPE_MISMATCH: (nnb.ShapeError, ValueError),
        _lib.ERR_INVALID_DATA: (nnb.InvalidDataError, ValueError),
        _lib.ERR_CAPACITY: (nnb.CapacityError, ValueError),
        _lib.ERR_IO: (nnb.ModelFileError, OSError),
        _lib.ERR_CORRUPT_FILE: (nnb.CorruptFileError, nnb.ModelFileError),
        _lib.ERR_UNSUPPORTED: (nnb.UnsupportedError, nnb.NNBackpropError),
        _lib.ERR_UNKNOWN_NAME: (nnb.UnknownNameError, ValueError),
        _lib.ERR_BUSY: (nnb.BusyError, RuntimeError),
        _lib.ERR_VERSION: (nnb.VersionError, nnb.NNBackpropError),
        _lib.ERR_NOT_READY: (nnb.NotReadyError, RuntimeError),
        _lib.ERR_INTERNAL: (nnb.InternalError, RuntimeError),
        _lib.ERR_DUPLICATE: (nnb.DuplicateError, ValueError),
        _lib.ERR_PLUGIN: (nnb.PluginError, ImportError),
        _lib.ERR_DIVERGED: (nnb.DivergedError, ArithmeticError),
    }
    for status, (cls, base) in expected.items():
        err = nnb.errors.error_for(status, "the message")
        assert type(err) is cls and isinstance(err, base) and isinstance(err, nnb.NNBackpropError)
        assert err.status == status and err.message == "the message" and str(err) == "the message"
    unknown = nnb.errors.error_for(99, "odd")
    assert type(unknown) is nnb.NNBackpropError and unknown.status == 99


# -- learning ------------------------------------------------------------------------------


def test_xor_cross_entropy():
    with nnb.Model("2-8:tanh-2", seed=42) as model:
        history = model.fit(XOR_X, XOR_Y, epochs=1000, batch_size=4, lr=0.05, seed=1)
        assert len(history) == 1000
        assert history[-1]["loss"] < history[0]["loss"]
        np.testing.assert_array_equal(model.predict_classes(XOR_X), XOR_Y)
        result = model.evaluate(XOR_X, XOR_Y)
        assert result["accuracy"] == 1.0 and result["loss"] < 0.1
        # The loss recomputed from the logits.
        z = model.predict(XOR_X).astype(np.float64)
        lse = np.log(np.exp(z).sum(axis=1))
        assert result["loss"] == pytest.approx(np.mean(lse - z[np.arange(4), XOR_Y]), rel=1e-4, abs=1e-6)
        p = model.predict_proba(XOR_X)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)


def test_xor_bce_one_logit():
    model = nnb.Model("2-8:tanh-1", seed=42)
    model.fit(XOR_X, XOR_Y.astype(np.float32), epochs=1000, batch_size=4, loss="bce", lr=0.05, seed=1)
    logits = model.predict(XOR_X)
    assert logits.shape == (4, 1)
    np.testing.assert_array_equal(model.predict_classes(XOR_X), XOR_Y)
    assert model.evaluate(XOR_X, XOR_Y, loss="bce")["accuracy"] == 1.0
    model.close()


def test_two_moons():
    x, y = two_moons(600, noise=0.1, seed=3)
    model = nnb.Model("2-32:relu-32:relu-2", seed=7)
    history = model.fit(x[:500], y[:500], epochs=60, batch_size=32, lr=0.01, seed=2)
    assert history[-1]["accuracy"] > 0.95
    assert model.evaluate(x[500:], y[500:])["accuracy"] >= 0.95


def test_sklearn_digits_if_available():
    datasets = pytest.importorskip("sklearn.datasets")
    digits = datasets.load_digits()
    x, y = digits.data / 16.0, digits.target
    model = nnb.Model([nnb.Dense(64, "relu"), nnb.Dropout(0.1), nnb.Dense(10)], inputs=64, seed=1)
    model.fit(x[:1500], y[:1500], epochs=30, batch_size=32, lr=3e-3)
    assert model.evaluate(x[1500:], y[1500:])["accuracy"] > 0.9


def test_regression_mse():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 3))
    y = np.stack([x[:, 0] * 2 - x[:, 1], np.sin(x[:, 2] * 3)], axis=1)
    model = nnb.Model("3-32:tanh-2", seed=4)
    history = model.fit(x, y, epochs=80, batch_size=32, loss="mse", lr=0.01)
    assert history[-1]["loss"] < 0.1 * history[0]["loss"]
    result = model.evaluate(x, y, loss="mse")
    assert math.isnan(result["accuracy"])
    assert result["loss"] == pytest.approx(np.mean((model.predict(x) - y) ** 2), rel=1e-4)


def test_compile_train_batch_train_epoch():
    x, y = blobs(200, 5, 3, seed=1)
    model = nnb.Model("5-16:relu-3", seed=0)
    with pytest.raises(nnb.NotReadyError) as e:
        model.train_batch(x[:16], y[:16])
    assert e.value.message
    with pytest.raises(nnb.NotReadyError):
        model.train_epoch(x, y)
    model.compile(loss="cross_entropy", optimizer="adam", lr=0.01, batch_size=16)
    before = model.evaluate(x[:16], y[:16])["loss"]
    loss = model.train_batch(x[:16], y[:16])
    assert loss == pytest.approx(before, rel=1e-5)
    first = model.evaluate(x, y)["loss"]
    for _ in range(20):
        report = model.train_epoch(x, y)
    assert report["loss"] >= 0 and 0 <= report["accuracy"] <= 1
    assert model.evaluate(x, y)["loss"] < 0.5 * first


# -- models and files ----------------------------------------------------------------------


def test_model_forms_and_info():
    a = nnb.Model("784-256:relu-128:relu-10")
    assert a.info == nnb.ModelInfo(784, 10, 3, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10)
    b = nnb.Model("8:tanh-2", inputs=2)
    assert b.info.parameters == 42 and b.describe() == nnb.Model(b.describe()).describe()
    c = nnb.Model([nnb.Dense(8, "tanh"), nnb.Dropout(0.5), nnb.Dense(2)], inputs=2)
    assert c.info == nnb.ModelInfo(2, 2, 3, 42)
    d = nnb.Model(["8:tanh", "dropout:0.5", 2], inputs=2)
    assert d.info == c.info
    e = nnb.Model([4, "relu", nnb.Dense(3), nnb.Activation("softmax")], inputs=5)
    assert e.info == nnb.ModelInfo(5, 3, 4, 5 * 4 + 4 + 4 * 3 + 3)
    np.testing.assert_allclose(e.predict(np.ones((2, 5))).sum(axis=1), 1.0, rtol=1e-5)
    # Same seed, same weights; the list and string forms give one model.
    x = np.random.default_rng(0).normal(size=(5, 2))
    np.testing.assert_array_equal(nnb.Model("2-8:tanh-2", seed=3).predict(x), nnb.Model([nnb.Dense(8, "tanh"), 2], inputs=2, seed=3).predict(x))
    assert not np.array_equal(nnb.Model("2-8:tanh-2", seed=3).predict(x), nnb.Model("2-8:tanh-2", seed=4).predict(x))
    with pytest.raises(TypeError):
        nnb.Model([8, 2])  # needs inputs=
    with pytest.raises(TypeError):
        nnb.Model([8.5], inputs=2)


def test_save_load_bit_identical(tmp_path):
    x, y = blobs(120, 4, 3, seed=2)
    model = nnb.Model("4-16:relu-8:tanh-3", seed=5)
    model.fit(x, y, epochs=5)
    path = tmp_path / "model.safetensors"
    model.save(path)  # a pathlib.Path
    loaded = nnb.Model.load(str(path))
    np.testing.assert_array_equal(model.predict(x), loaded.predict(x))
    assert loaded.describe() == model.describe() and loaded.info == model.info
    loaded.fit(x, y, epochs=1)  # a loaded model trains


def test_context_manager_and_close():
    with nnb.Model("2-2") as model:
        assert model.predict(XOR_X).shape == (4, 2)
    with pytest.raises(ValueError, match="closed"):
        model.predict(XOR_X)
    model.close()  # twice is fine
    assert "closed" in repr(model)


# -- inputs of any dtype and layout --------------------------------------------------------


def test_predict_any_dtype_and_layout():
    model = nnb.Model("6-16:relu-3", seed=9)
    rng = np.random.default_rng(1)
    base = rng.normal(size=(7, 6)).astype(np.float32)
    want = model.predict(base)
    assert want.dtype == np.float32 and want.shape == (7, 3)
    variants = {
        "float64": base.astype(np.float64),
        "fortran": np.asfortranarray(base),
        "strided": np.repeat(base, 2, axis=1)[:, ::2],
        "transposed view": np.ascontiguousarray(base.T).T,
        "list": base.tolist(),
        "read-only": np.frombuffer(base.tobytes(), dtype=np.float32).reshape(7, 6),
    }
    assert not variants["strided"].flags.c_contiguous and not variants["fortran"].flags.c_contiguous
    for name, x in variants.items():
        np.testing.assert_array_equal(model.predict(x), want, err_msg=name)
    ints = rng.integers(-3, 3, size=(4, 6))
    np.testing.assert_array_equal(model.predict(ints), model.predict(ints.astype(np.float32)))
    one = model.predict(base[2].astype(np.float64))
    assert one.shape == (3,)
    np.testing.assert_allclose(one, want[2], rtol=1e-5, atol=1e-6)
    assert model.predict_classes(base[2]).shape == ()


def test_images_are_flattened_and_labels_any_dtype():
    x = np.random.default_rng(0).uniform(size=(30, 4, 4))
    y = (np.arange(30) % 2).astype(np.uint8)
    model = nnb.Model("16-8:relu-2")
    history = model.fit(x, y, epochs=2)
    assert len(history) == 2
    np.testing.assert_array_equal(model.predict(x), model.predict(x.reshape(30, 16)))
    y_fortran = np.asfortranarray(np.eye(2)[y])  # one-hot, Fortran order
    assert model.evaluate(x, y_fortran)["loss"] == pytest.approx(model.evaluate(x, y)["loss"], rel=1e-6)


def test_fit_leaves_inputs_untouched():
    x = np.asfortranarray(np.random.default_rng(0).normal(size=(20, 3)))
    y = np.arange(20) % 2
    x0, y0 = x.copy(), y.copy()
    nnb.Model("3-4:relu-2").fit(x, y, epochs=3)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


# -- callbacks -----------------------------------------------------------------------------


def test_callback_sees_every_epoch():
    x, y = blobs(90, 4, 3, seed=3)
    seen = []
    history = nnb.Model("4-8:relu-3").fit(x, y, epochs=5, callback=lambda r: seen.append(r) and False)
    assert [r["epoch"] for r in seen] == [1, 2, 3, 4, 5]
    assert all(r["epochs"] == 5 for r in seen)
    assert history == seen
    assert all(math.isnan(r["val_loss"]) for r in seen)
    assert all(0 <= r["accuracy"] <= 1 and r["seconds"] >= 0 for r in seen)


def test_callback_stops_training():
    x, y = blobs(90, 4, 3, seed=3)
    calls = []

    def stop_after_two(report):
        calls.append(report["epoch"])
        return report["epoch"] == 2

    history = nnb.Model("4-8:relu-3").fit(x, y, epochs=10, callback=stop_after_two)
    assert calls == [1, 2] and len(history) == 2 and history[-1]["epoch"] == 2


def test_validation_split_reports_val_metrics():
    x, y = blobs(200, 4, 3, seed=4)
    history = nnb.Model("4-16:relu-3").fit(x, y, epochs=3, validation_split=0.25)
    for r in history:
        assert r["val_loss"] >= 0 and 0 <= r["val_accuracy"] <= 1


def test_callback_exception_is_reraised_after_training():
    class Boom(Exception):
        pass

    x, y = blobs(60, 4, 3, seed=5)
    model = nnb.Model("4-8:relu-3")
    epochs = []

    def explode(report):
        epochs.append(report["epoch"])
        if report["epoch"] == 3:
            raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        model.fit(x, y, epochs=10, callback=explode)
    assert epochs == [1, 2, 3]  # training stopped at the exception
    assert np.isfinite(model.predict(x)).all()
    model.fit(x, y, epochs=1)  # not left busy

    def interrupt(report):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=10, callback=interrupt)


def test_verbose_prints_progress(capsys):
    nnb.Model("2-4:tanh-2").fit(XOR_X, XOR_Y, epochs=3, batch_size=4, verbose=True)
    out = capsys.readouterr().out
    assert "epoch 1/3" in out and "epoch 3/3" in out


# -- errors --------------------------------------------------------------------------------


def raises(cls, fn, *args, **kwargs):
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, nnb.NNBackpropError)
    assert err.status == cls.status, (err.status, cls.status)
    assert err.message and str(err) == err.message
    return err


def test_shape_errors():
    model = nnb.Model("4-8:relu-3")
    x, y = blobs(20, 4, 3)
    raises(nnb.ShapeError, model.predict, np.zeros((2, 5)))
    raises(nnb.ShapeError, model.predict, np.zeros(5))
    raises(nnb.ShapeError, model.fit, np.zeros((20, 5)), y)
    raises(nnb.ShapeError, model.fit, x, y[:10])  # rows disagree: caught before the library reads y
    raises(nnb.ShapeError, model.fit, x, np.zeros((20, 2)))  # neither indices nor 3 columns
    raises(nnb.ShapeError, model.fit, x, np.zeros((20, 1)), loss="mse")
    raises(nnb.ShapeError, model.evaluate, x, np.zeros((20, 4)))
    err = raises(nnb.ShapeError, model.predict, np.zeros((2, 5)))
    assert isinstance(err, ValueError)


def test_invalid_data_errors():
    model = nnb.Model("4-8:relu-3")
    x, y = blobs(20, 4, 3)
    bad = x.copy()
    bad[3, 1] = np.nan
    err = raises(nnb.InvalidDataError, model.fit, bad, y)
    assert isinstance(err, ValueError)
    bad[3, 1] = np.inf
    raises(nnb.InvalidDataError, model.fit, bad, y)
    raises(nnb.InvalidDataError, model.fit, x, np.where(np.arange(20) == 7, 3, y))  # class 3 of 3
    raises(nnb.InvalidDataError, model.fit, x, np.where(np.arange(20) == 7, -1, y))
    raises(nnb.InvalidDataError, model.evaluate, bad, y)
    raises(nnb.InvalidDataError, model.fit, x, y + 0.5)


def test_invalid_argument_errors():
    model = nnb.Model("4-8:relu-3")
    x, y = blobs(20, 4, 3)
    raises(nnb.InvalidArgumentError, model.fit, x, y, batch_size=0)
    raises(nnb.InvalidArgumentError, model.fit, x, y, lr=-1.0)
    raises(nnb.InvalidArgumentError, model.fit, x, y, validation_split=1.0)
    raises(nnb.InvalidArgumentError, model.predict, np.zeros((0, 4)))
    raises(nnb.InvalidArgumentError, nnb.Model, "0-5")
    raises(nnb.InvalidArgumentError, nnb.Model, "10-0")
    raises(nnb.InvalidArgumentError, nnb.Model, [nnb.Dropout(1.5)], inputs=3)
    with pytest.raises(TypeError, match="unknown training option"):
        model.fit(x, y, momentun=0.9)


def test_unknown_name_errors():
    model = nnb.Model("4-8:relu-3")
    x, y = blobs(20, 4, 3)
    raises(nnb.UnknownNameError, nnb.Model, "10-5:nosuch")
    raises(nnb.UnknownNameError, nnb.Model, [nnb.Dense(5, "nosuch")], inputs=10)
    raises(nnb.UnknownNameError, model.fit, x, y, loss="nosuch")
    raises(nnb.UnknownNameError, model.fit, x, y, optimizer="nosuch")
    raises(nnb.UnknownNameError, model.fit, x, y, schedule="nosuch")
    raises(nnb.UnknownNameError, model.evaluate, x, y, loss="nosuch")
    raises(nnb.UnknownNameError, model.compile, optimizer="nosuch")


def test_file_errors(tmp_path):
    err = raises(nnb.ModelFileError, nnb.Model.load, tmp_path / "missing.safetensors")
    assert isinstance(err, OSError) and "missing.safetensors" in err.message
    model = nnb.Model("3-4:relu-2")
    raises(nnb.ModelFileError, model.save, tmp_path / "no-such-dir" / "m.safetensors")
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    for cut in (0, 5, 8, 20, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        err = raises(nnb.CorruptFileError, nnb.Model.load, bad)
        assert isinstance(err, nnb.ModelFileError) and isinstance(err, OSError)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(bytes(range(256)) * 4)
    raises(nnb.CorruptFileError, nnb.Model.load, garbage)


def test_low_level_statuses_map_to_exceptions():
    """Statuses the Model class never provokes, raised through the raw calls."""
    model = nnb.Model("3-2")
    c = _lib.lib
    info = _lib.ModelInfo()
    info.struct_size = ctypes.sizeof(info) + 64
    raises(nnb.VersionError, nnb.check, c.nnb_model_get_info(model._handle, ctypes.byref(info)))
    raises(nnb.NullArgumentError, nnb.check, c.nnb_model_get_info(model._handle, None))
    x = np.zeros((2, 3), np.float32)
    out = np.zeros(3, np.float32)
    raises(
        nnb.CapacityError,
        nnb.check,
        c.nnb_predict(model._handle, x.ctypes.data_as(_lib.float_p), 2, 3, out.ctypes.data_as(_lib.float_p), 3),
    )


def test_busy_when_trained_from_two_threads():
    x, y = blobs(128, 8, 4, seed=6)
    model = nnb.Model("8-32:relu-4", seed=1)
    model.compile(batch_size=16)
    inside, release = threading.Event(), threading.Event()

    def wait_in_callback(report):
        if report["epoch"] == 1:
            inside.set()
            release.wait(20)

    result = {}

    def trainer():
        try:
            result["history"] = model.fit(x, y, epochs=3, callback=wait_in_callback)
        except BaseException as e:  # reported below
            result["error"] = e

    t = threading.Thread(target=trainer)
    t.start()
    try:
        assert inside.wait(20), "the trainer never reached its callback"
        err = raises(nnb.BusyError, model.train_batch, x[:16], y[:16])
        assert isinstance(err, RuntimeError)
        raises(nnb.BusyError, model.fit, x, y, epochs=1)
        raises(nnb.BusyError, model.compile)
    finally:
        release.set()
        t.join()
    assert "error" not in result, result.get("error")
    assert len(result["history"]) == 3
    assert np.isfinite(model.predict(x)).all()
    model.train_batch(x[:16], y[:16])  # free again


def test_predict_from_many_threads_matches():
    model = nnb.Model("64-128:relu-64:tanh-10", seed=2)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(rows, 64)).astype(np.float32) for rows in (1, 37, 300)]
    wanted = [model.predict(x) for x in inputs]
    failures = []

    def worker(k):
        for i in range(150):
            j = (i + k) % 3
            if not np.array_equal(model.predict(inputs[j]), wanted[j]):
                failures.append((k, i))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


# -- Fashion-MNIST (NNB_HEAVY_TESTS=1) ------------------------------------------------------


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


@pytest.mark.skipif(os.environ.get("NNB_HEAVY_TESTS") != "1", reason="set NNB_HEAVY_TESTS=1 to train on Fashion-MNIST")
@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST is not installed (Debian dataset-fashion-mnist)")
def test_fashion_mnist_reaches_88_percent():
    x_train = load_idx(FASHION / "train-images-idx3-ubyte.gz").reshape(-1, 784) * np.float32(1 / 255)
    y_train = load_idx(FASHION / "train-labels-idx1-ubyte.gz")
    x_test = load_idx(FASHION / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) * np.float32(1 / 255)
    y_test = load_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    model = nnb.Model("784-256:relu-128:relu-10", seed=42)
    # The settings of the Swift library's test (Tests/NNBackpropTests, FashionMNIST): the same
    # seeds, batches and per-pixel standardization, so the same accuracy.
    model.fit(x_train, y_train, epochs=10, batch_size=128, lr=1e-3, seed=42, standardize=1)
    accuracy = model.evaluate(x_test, y_test)["accuracy"]
    print(f"Fashion-MNIST test accuracy {accuracy:.4f}")
    assert accuracy >= 0.885


@pytest.mark.skipif(os.environ.get("NNB_HEAVY_TESTS") != "1", reason="set NNB_HEAVY_TESTS=1 to train on Fashion-MNIST")
@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST is not installed (Debian dataset-fashion-mnist)")
def test_fashion_mnist_cnn_reaches_92_percent():
    """The README's CNN on (N, 1, 28, 28) arrays, with the settings of the Swift heavy test."""
    x_train = load_idx(FASHION / "train-images-idx3-ubyte.gz")[:, None] * np.float32(1 / 255)
    y_train = load_idx(FASHION / "train-labels-idx1-ubyte.gz")
    x_test = load_idx(FASHION / "t10k-images-idx3-ubyte.gz")[:, None] * np.float32(1 / 255)
    y_test = load_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert x_train.shape == (60000, 1, 28, 28) and x_train.dtype == np.float32
    model = nnb.Model(
        [
            nnb.Conv2D(16, 3, padding=1, activation="relu"), nnb.BatchNorm2d(), nnb.MaxPool2D(2),
            nnb.Conv2D(32, 3, padding=1, activation="relu"), nnb.BatchNorm2d(), nnb.MaxPool2D(2),
            nnb.Flatten(), nnb.Dense(128, "relu"), nnb.Dropout(0.5), nnb.Dense(10),
        ],
        input_shape=(1, 28, 28),
        seed=42,
    )
    model.fit(x_train, y_train, epochs=10, batch_size=128, lr=2e-3, seed=42, schedule="cosine", verbose=True)
    accuracy = model.evaluate(x_test, y_test)["accuracy"]
    print(f"Fashion-MNIST CNN test accuracy {accuracy:.4f}")
    assert accuracy >= 0.920


# -- reliability ---------------------------------------------------------------------------


def test_copies_are_independent_models():
    """copy.copy used to share the C handle: freeing either copy made the other segfault."""
    x, y = two_moons(200, seed=3)
    model = nnb.Model("2-16:tanh-2", seed=4)
    model.fit(x, y, epochs=3, batch_size=20)
    reference = model.predict(x[:5])
    for make in (copy.copy, copy.deepcopy):
        twin = make(model)
        assert twin is not model and ctypes.addressof(twin._handle.contents) != ctypes.addressof(model._handle.contents)
        np.testing.assert_array_equal(twin.predict(x[:5]), reference)
        twin.close()
        np.testing.assert_array_equal(model.predict(x[:5]), reference)  # still alive
        twin = make(model)
        model.fit(x, y, epochs=1, batch_size=20)  # training one leaves the other as it was
        np.testing.assert_array_equal(twin.predict(x[:5]), reference)
        reference = model.predict(x[:5])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x[:5]), reference)


def test_divergence_raises_and_keeps_finite_weights():
    x, y = two_moons(256, seed=5)
    model = nnb.Model("2-64:relu-64:relu-2", seed=42)
    before = model.predict(x)
    with pytest.raises(nnb.DivergedError, match="epoch 1"):
        model.fit(x, y, epochs=3, batch_size=32, optimizer="sgd", lr=1e6)
    after = model.predict(x)
    assert np.isfinite(after).all()
    np.testing.assert_array_equal(after, before)


def test_options_that_do_not_apply_are_refused():
    x, y = two_moons(64, seed=6)
    model = nnb.Model("2-4-2", seed=1)
    with pytest.raises(nnb.InvalidArgumentError, match="momentum.*adam"):
        model.fit(x, y, epochs=1, optimizer="adam", momentum=0.9)
    with pytest.raises(nnb.InvalidArgumentError, match="beta2.*rmsprop"):
        model.fit(x, y, epochs=1, optimizer="rmsprop", beta2=0.9)
    with pytest.raises(nnb.InvalidArgumentError, match="gamma"):
        model.fit(x, y, epochs=1, schedule="step", gamma=-5)
    model.fit(x, y, epochs=1, optimizer="rmsprop", alpha=0.9)  # alpha is rmsprop's own


def test_thread_count_is_capped():
    before = nnb.num_threads()
    with pytest.raises(nnb.InvalidArgumentError, match="100000"):
        nnb.set_num_threads(100000)
    assert nnb.num_threads() == before


def test_non_finite_weights_are_refused_unless_asked(tmp_path):
    path = tmp_path / "nan.safetensors"
    nnb.Model("2-3", seed=1).save(path)
    data = bytearray(path.read_bytes())
    data[-4:] = np.array([np.nan], dtype="<f4").tobytes()  # the last float: the last bias
    path.write_bytes(bytes(data))
    with pytest.raises(nnb.InvalidDataError, match="not finite"):
        nnb.Model.load(path)
    model = nnb.Model.load(path, allow_non_finite=True)
    assert np.isnan(model.predict(np.zeros((1, 2), dtype=np.float32))[0, 2])
