"""bf16 training from Python: fit(precision=...) and nnbackprop.precision_supported.

The kernels and the Swift and C surfaces have their own tests; here: the option reaches the
library, "fp32" is the default's bits, "bf16" trains (or raises UnsupportedError where the CPU
lacks AVX512_BF16, leaving the weights), bad values raise, and prediction after bf16 training
is the fp32 forward of the trained weights.
"""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import nnbackprop as nnb  # noqa: E402


def blobs(n=512, seed=3):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (4, 8))
    y = rng.integers(0, 4, n)
    return (centres[y] + rng.normal(0, 1, (n, 8))).astype(np.float32), y


def model():
    return nnb.Model("8-96:relu-96:relu-4", seed=5)


def test_precision_supported():
    assert nnb.precision_supported("fp32")
    assert not nnb.precision_supported("fp16")
    assert isinstance(nnb.precision_supported("bf16"), bool)
    with pytest.raises(TypeError):
        nnb.precision_supported(16)


def test_fp32_is_the_default():
    x, y = blobs()
    a, b = model(), model()
    a.fit(x, y, epochs=3, batch_size=128)
    b.fit(x, y, epochs=3, batch_size=128, precision="fp32")
    assert np.array_equal(a.predict(x), b.predict(x))


def test_bf16_trains_or_is_refused():
    x, y = blobs()
    ref, m = model(), model()
    before = m.predict(x)
    ref.fit(x, y, epochs=5, batch_size=128)
    if not nnb.precision_supported("bf16"):
        with pytest.raises(nnb.UnsupportedError, match="AVX512_BF16"):
            m.fit(x, y, epochs=5, batch_size=128, precision="bf16")
        assert np.array_equal(m.predict(x), before)
        return
    m.fit(x, y, epochs=5, batch_size=128, precision="bf16")
    diff = np.abs(m.predict(x) - ref.predict(x)).max()
    assert 0 < diff < 0.5
    assert (m.predict_classes(x) == y).mean() > 0.9
    # Inference is fp32: the trained weights loaded into a fresh model predict the same bits.
    twin = model()
    twin.load_state_dict(m.state_dict())
    assert np.array_equal(twin.predict(x), m.predict(x))


def test_bad_precision():
    x, y = blobs(64)
    with pytest.raises(nnb.InvalidArgumentError, match="fp32 or bf16"):
        model().fit(x, y, epochs=1, precision="fp16")
    with pytest.raises(nnb.InvalidArgumentError):
        model().compile(precision="int8")
    with pytest.raises(TypeError, match="str"):
        model().fit(x, y, epochs=1, precision=16)
