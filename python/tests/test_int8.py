"""int8 inference from Python: Model.quantize_int8, is_quantized, remove_quantization, files.

The kernels and the Swift API have their own tests; here the surface: quantized predictions
stay close to fp32 and classes agree, the state survives save/load and pickling, training a
quantized model raises UnsupportedError, bad arguments raise.
"""

import pathlib
import pickle
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import nnbackprop as nnb  # noqa: E402


def blobs(n=600, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (4, 8))
    y = rng.integers(0, 4, n)
    return (centres[y] + rng.normal(0, 1, (n, 8))).astype(np.float32), y


@pytest.fixture
def trained():
    x, y = blobs()
    m = nnb.Model("8-64:relu-32:tanh-4", seed=5)
    m.fit(x, y, epochs=10, batch_size=32)
    return m, x, y


def test_quantize_agrees_with_fp32(trained, tmp_path):
    m, x, y = trained
    fp32 = m.predict(x)
    assert not m.is_quantized
    m.quantize_int8(x, rows=300)
    assert m.is_quantized
    q = m.predict(x)
    assert not np.array_equal(q, fp32)
    assert np.abs(q - fp32).max() < 0.05 * np.abs(fp32).max()
    assert (q.argmax(1) == fp32.argmax(1)).mean() > 0.98
    assert np.array_equal(m.predict(x[:1]), q[:1])  # one row: the same bits
    path = tmp_path / "q.safetensors"
    m.save(path)
    back = nnb.Model.load(path)
    assert back.is_quantized and np.array_equal(back.predict(x), q)
    copy = pickle.loads(pickle.dumps(m))
    assert copy.is_quantized and np.array_equal(copy.predict(x), q)
    with pytest.raises(nnb.UnsupportedError, match="int8"):
        m.fit(x, y, epochs=1)
    m.remove_quantization()
    assert not m.is_quantized and np.array_equal(m.predict(x), fp32)


def test_bad_arguments(trained):
    m, x, _ = trained
    with pytest.raises(ValueError):
        m.quantize_int8(x, rows=0)
    with pytest.raises(TypeError):
        m.quantize_int8(x, rows="all")
    with pytest.raises(nnb.ShapeError):
        m.quantize_int8(x[:, :5])
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(nnb.InvalidDataError):
        m.quantize_int8(bad)
    assert not m.is_quantized
