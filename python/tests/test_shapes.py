"""Input shapes and layer classes from Python: image-shaped models from a description and from
Layer classes, arrays that keep their shape (and are checked against the model's before the
library sees them), Flatten and Reshape checked against numpy, and the errors a layer list can
cause."""

import json
import math
import struct

import numpy as np
import pytest

import nnbackprop as nnb
import nnbackprop.model


def read_weights(model, tmp_path):
    """The (weight, bias) pairs of a model's dense layers, in order, from its saved file
    (safetensors, with nn.Sequential's names: "1.weight" is layer 1's)."""
    path = tmp_path / "weights.safetensors"
    model.save(path)
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    tensors = {}
    for name, t in header.items():
        if name != "__metadata__":
            b, e = t["data_offsets"]
            tensors[name] = np.frombuffer(data[8 + n + b : 8 + n + e], dtype="<f4").reshape(t["shape"])
    layers = sorted({int(name.split(".")[0]) for name in tensors})
    return [(tensors[f"{i}.weight"], tensors[f"{i}.bias"]) for i in layers]


def raises(cls, fn, *args, **kwargs):
    """The error fn raises: of class cls, with cls's status and a message."""
    with pytest.raises(cls) as info:
        fn(*args, **kwargs)
    err = info.value
    assert err.status == cls.status, (err.status, cls.status)
    assert err.message and str(err) == err.message
    return err


def library_error(cls, fn, *args, **kwargs):
    """The error fn raises, which must be the library's (its messages name the C call)."""
    err = raises(cls, fn, *args, **kwargs)
    assert err.message.startswith("nnb_model_create"), err.message
    return err


class NoLibrary:
    """Stands in for the C library: a call that reaches it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"{name} was called: the shape should have been refused in Python")


def quadrant_images(n, seed):
    """(n, 1, 8, 8) noise images; class 1 has a brighter top-left quadrant."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 2, n)
    x[y == 1, 0, :4, :4] += 0.4  # no single pixel tells the classes apart; the quadrant does
    return x, y


# -- building image models ------------------------------------------------------------------


def test_image_model_from_description_and_from_layer_classes():
    params = 784 * 64 + 64 + 64 * 10 + 10
    a = nnb.Model("1x28x28-flatten-64:relu-10", seed=3)
    b = nnb.Model([nnb.Flatten(), nnb.Dense(64, "relu"), nnb.Dense(10)], input_shape=(1, 28, 28), seed=3)
    c = nnb.Model(["flatten", "64:relu", 10], input_shape=(1, 28, 28), seed=3)
    d = nnb.Model("flatten-64:relu-10", input_shape=(1, 28, 28), seed=3)
    for model in (a, b, c, d):
        assert model.input_shape == (1, 28, 28)
        assert model.inputs == 784 and model.outputs == 10
        assert model.info == nnb.ModelInfo(784, 10, 3, params, (1, 28, 28))
        assert model.describe() == a.describe()
    x = np.random.default_rng(0).uniform(size=(4, 1, 28, 28))
    for model in (b, c, d):  # one seed, one set of weights
        np.testing.assert_array_equal(model.predict(x), a.predict(x))


def test_feature_models_have_a_flat_input_shape():
    assert nnb.Model("784-10").input_shape == (784,)
    assert nnb.Model([10], inputs=784).input_shape == (784,)
    assert nnb.Model([10], input_shape=784).info == nnb.ModelInfo(784, 10, 1, 7850)  # (inputs,) by default
    # A model built from a leading Reshape keeps a flat input (its file says so too).
    model = nnb.Model([nnb.Reshape((1, 28, 28)), nnb.Flatten(), nnb.Dense(10)], inputs=784)
    assert model.input_shape == (784,)
    assert model.predict(np.zeros((2, 1, 28, 28))).shape == (2, 10)


def test_input_shape_of_more_than_eight_dimensions_is_refused():
    """nnb_model_info holds 8 sizes; the library refuses longer shapes by name."""
    with pytest.raises(nnb.InvalidArgumentError, match="at most 8"):
        nnb.Model([nnb.Flatten(), nnb.Dense(2)], input_shape=(1, 1, 1, 1, 1, 1, 1, 2, 3))


# -- arrays keep their shape ------------------------------------------------------------------


def test_predict_on_images_equals_predict_on_the_same_data_flat():
    model = nnb.Model([nnb.Flatten(), nnb.Dense(32, "tanh"), nnb.Dense(10)], input_shape=(1, 28, 28), seed=5)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 6)
    flat = x.reshape(6, 784)
    np.testing.assert_array_equal(model.predict(x), model.predict(flat))
    one = model.predict(x[2])  # exactly input_shape: one sample
    assert one.shape == (10,)
    # One row may take another kernel path than six: equal to rounding, as for flat models.
    np.testing.assert_allclose(one, model.predict(flat)[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(one, model.predict(flat[2]))
    assert model.evaluate(x, y) == model.evaluate(flat, y)


def test_flatten_of_an_image_is_row_major(tmp_path):
    model = nnb.Model([nnb.Flatten(), nnb.Dense(3)], input_shape=(2, 3, 4), seed=2)
    x = np.random.default_rng(3).normal(size=(5, 2, 3, 4)).astype(np.float32)
    (w, b), = read_weights(model, tmp_path)
    assert w.shape == (3, 24)
    np.testing.assert_allclose(model.predict(x), x.reshape(5, 24) @ w.T + b, rtol=1e-5, atol=1e-5)


def test_reshape_then_dense_then_flatten(tmp_path):
    """Reshape gives each sample (2, 3); Dense acts on the last dimension, (2, 3) -> (2, 4);
    Flatten makes that 8 values for the last Dense."""
    model = nnb.Model([nnb.Reshape((2, 3)), nnb.Dense(4), nnb.Flatten(), nnb.Dense(2)], inputs=6, seed=1)
    assert model.info == nnb.ModelInfo(6, 2, 4, (3 * 4 + 4) + (8 * 2 + 2))
    (w1, b1), (w2, b2) = read_weights(model, tmp_path)
    x = np.random.default_rng(4).normal(size=(7, 6)).astype(np.float32)
    want = ((x.reshape(7, 2, 3) @ w1.T + b1).reshape(7, 8)) @ w2.T + b2
    np.testing.assert_allclose(model.predict(x), want, rtol=1e-5, atol=1e-5)


def test_reshape_between_flattens(tmp_path):
    model = nnb.Model(
        [nnb.Flatten(), nnb.Reshape((4, 196)), nnb.Flatten(), nnb.Dense(10)], input_shape=(1, 28, 28), seed=7
    )
    assert model.describe() == nnb.Model("1x28x28-flatten-reshape(4x196)-flatten-10", seed=7).describe()
    inferred = nnb.Model([nnb.Reshape((-1, 28)), nnb.Flatten(), nnb.Dense(10)], input_shape=(1, 28, 28), seed=7)
    x = np.random.default_rng(5).normal(size=(3, 1, 28, 28)).astype(np.float32)
    # Reshape and Flatten move no values: each model is one Dense(784, 10) on the image's rows.
    for m in (model, inferred):
        (w, b), = read_weights(m, tmp_path)
        np.testing.assert_allclose(m.predict(x), x.reshape(3, 784) @ w.T + b, rtol=1e-5, atol=1e-5)


def test_x_whose_trailing_dimensions_do_not_match_is_refused_before_the_library(monkeypatch):
    model = nnb.Model([nnb.Flatten(), nnb.Dense(10)], input_shape=(1, 28, 28))
    flat = nnb.Model("4-3")
    y = np.zeros(4)
    monkeypatch.setattr(nnbackprop.model, "_C", NoLibrary())
    for x in (np.zeros((4, 28, 28, 1)), np.zeros((4, 785)), np.zeros((4, 1, 28, 27)), np.zeros((4, 28, 28))):
        for call in (model.predict, model.predict_classes):
            err = raises(nnb.ShapeError, call, x)
            assert str(x.shape) in err.message and "(1, 28, 28)" in err.message, err.message
        for call in (model.fit, model.evaluate, model.train_batch, model.train_epoch):
            err = raises(nnb.ShapeError, call, x, y)
            assert str(x.shape) in err.message and "(1, 28, 28)" in err.message, err.message
    raises(nnb.ShapeError, model.predict, np.zeros((28, 28)))  # neither one sample nor rows of them
    err = raises(nnb.ShapeError, flat.predict, np.zeros((2, 5)))
    assert "(2, 5)" in err.message and "(4,)" in err.message


def test_small_image_model_learns_a_bright_quadrant():
    x, y = quadrant_images(400, seed=0)
    x_test, y_test = quadrant_images(200, seed=1)
    model = nnb.Model([nnb.Flatten(), nnb.Dense(16, "relu"), nnb.Dense(2)], input_shape=(1, 8, 8), seed=1)
    before = model.evaluate(x_test, y_test)
    history = model.fit(x, y, epochs=15, batch_size=16, lr=0.01, seed=3)
    after = model.evaluate(x_test, y_test)
    assert after["accuracy"] > 0.9 and after["loss"] < before["loss"]
    assert np.mean(model.predict_classes(x_test) == y_test) > 0.9
    assert history[-1]["accuracy"] > 0.9
    # The same training on the flat rows gives the same model, bit for bit.
    twin = nnb.Model([nnb.Flatten(), nnb.Dense(16, "relu"), nnb.Dense(2)], input_shape=(1, 8, 8), seed=1)
    twin.fit(x.reshape(400, 64), y, epochs=15, batch_size=16, lr=0.01, seed=3)
    np.testing.assert_array_equal(twin.predict(x_test), model.predict(x_test))


def test_save_and_load_keep_the_input_shape(tmp_path):
    model = nnb.Model([nnb.Flatten(), nnb.Dense(8, "relu"), nnb.Dense(2)], input_shape=(1, 8, 8), seed=2)
    path = tmp_path / "image.safetensors"
    model.save(path)
    loaded = nnb.Model.load(path)
    assert loaded.input_shape == (1, 8, 8)
    assert loaded.info == model.info and loaded.describe() == model.describe()
    x, _ = quadrant_images(5, seed=4)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    raises(nnb.ShapeError, loaded.predict, x.reshape(5, 8, 8, 1))
    assert loaded.__copy__().input_shape == (1, 8, 8)


# -- layer classes ------------------------------------------------------------------------------


def test_any_registered_layer_type_through_layer():
    zeros = nnb.Model([nnb.Layer("dense", units=3, initializer="zeros")], inputs=4)
    np.testing.assert_array_equal(zeros.predict(np.ones((2, 4))), np.zeros((2, 3)))
    alias = nnb.Model([nnb.Layer("dense", out_features=3, activation="tanh")], inputs=4, seed=1)
    ones = np.ones((2, 4))
    np.testing.assert_array_equal(alias.predict(ones), nnb.Model("4-3:tanh", seed=1).predict(ones))


def test_softmax_layers():
    x = np.random.default_rng(6).normal(size=(5, 4))
    for last in (nnb.Softmax(), nnb.Activation("softmax"), "softmax"):
        p = nnb.Model([nnb.Dense(3), last], inputs=4).predict(x)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
        assert (p > 0).all()
    for last in (nnb.LogSoftmax(), nnb.Activation("log_softmax"), "log_softmax"):
        logp = nnb.Model([nnb.Dense(3), last], inputs=4).predict(x)
        np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, rtol=1e-5)


def test_activation_alpha_reaches_the_library():
    x = -np.ones((1, 3), np.float32)  # leaky_relu of -1 is -alpha
    np.testing.assert_allclose(nnb.Model([nnb.Activation("leaky_relu", alpha=0.25)], inputs=3).predict(x), -0.25)
    np.testing.assert_allclose(nnb.Model([nnb.Activation("leaky_relu")], inputs=3).predict(x), -0.01, rtol=1e-6)
    dense = nnb.Model([nnb.Layer("dense", units=2, initializer="zeros", activation="leaky_relu", alpha=0.5)], inputs=3)
    np.testing.assert_array_equal(dense.predict(x), np.zeros((1, 2)))  # zero weights: leaky_relu(0) = 0


def test_layer_classes_keep_their_fields():
    dense, act = nnb.Dense(8, "relu", alpha=0.1), nnb.Activation("elu")
    drop, reshape = nnb.Dropout(0.2), nnb.Reshape([2, 4])
    assert (dense.units, dense.activation, dense.alpha) == (8, "relu", 0.1)
    assert (act.name, act.alpha, drop.rate, reshape.shape) == ("elu", 0.0, 0.2, (2, 4))
    assert all(isinstance(layer, nnb.Layer) for layer in (dense, act, drop, reshape, nnb.Flatten(), nnb.Softmax()))
    assert "dense" in repr(dense) and "units=8" in repr(dense)


# -- errors ---------------------------------------------------------------------------------------


def test_unknown_layer_type_and_attribute():
    err = library_error(nnb.UnknownNameError, nnb.Model, [nnb.Layer("bogus"), nnb.Dense(2)], inputs=4)
    assert "bogus" in err.message
    err = library_error(nnb.UnknownNameError, nnb.Model, [nnb.Layer("dense", units=3, foo=1)], inputs=4)
    assert "foo" in err.message
    err = library_error(nnb.UnknownNameError, nnb.Model, [nnb.Layer("dropout", rate=0.5)], inputs=4)
    assert "rate" in err.message
    err = library_error(nnb.UnknownNameError, nnb.Model, [nnb.Dense(3, "nosuch")], input_shape=(1, 4))
    assert "nosuch" in err.message
    library_error(nnb.UnknownNameError, nnb.Model, "1x4-bogus()-2")


def test_bad_attribute_values():
    err = library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Layer("dense", units="abc")], inputs=4)
    assert "abc" in err.message
    err = library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Dropout(1.5)], input_shape=(2, 2))
    assert "1.5" in err.message
    library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Layer("dense", units=2.5)], inputs=4)
    library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Layer("dense", units=3, initializer="nosuch")], inputs=4)
    library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Layer("dropout", p=math.nan)], inputs=4)
    library_error(nnb.InvalidArgumentError, nnb.Model, [nnb.Reshape((2, 0))], inputs=4)
    library_error(nnb.InvalidArgumentError, nnb.Model, [], inputs=4)  # no layers
    # Refused in Python: values the description grammar would misread.
    misread = nnb.Layer("dense", units=3, activation="relu,units=4")
    err = raises(nnb.InvalidArgumentError, nnb.Model, [misread], inputs=4)
    assert "relu,units=4" in err.message
    raises(nnb.InvalidArgumentError, nnb.Layer, "flatten-10")
    raises(nnb.InvalidArgumentError, nnb.Model, [nnb.Dense(2)], input_shape=(2, -1))
    raises(nnb.InvalidArgumentError, nnb.Model, [nnb.Dense(2)], input_shape=0)
    with pytest.raises(TypeError):
        nnb.Model([nnb.Layer("dense", units=True)], inputs=4)
    with pytest.raises(TypeError):
        nnb.Model([nnb.Reshape((2.5, 2))], inputs=5)
    with pytest.raises(TypeError):
        nnb.Model([nnb.Dense(2)], inputs=4, input_shape=4)
    with pytest.raises(TypeError):
        nnb.Model([nnb.Dense(2)], input_shape=(1.5, 2))


def test_layers_that_do_not_take_their_input():
    err = library_error(nnb.ShapeError, nnb.Model, [nnb.Reshape((3, 3))], inputs=4)
    assert "3x3" in err.message
    too_few = [nnb.Flatten(), nnb.Reshape((5, 5)), nnb.Dense(2)]
    library_error(nnb.ShapeError, nnb.Model, too_few, input_shape=(1, 28, 28))
    library_error(nnb.ShapeError, nnb.Model, [nnb.Layer("dense", units=3, in_features=5)], input_shape=(2, 4))
    library_error(nnb.ShapeError, nnb.Model, "1x28x28-flatten-reshape(5x5)-10")


def test_a_newer_model_file_version_is_refused_by_name(tmp_path):
    """A version-4 file (written by a later library) is UnsupportedError naming the version."""
    path = tmp_path / "m.safetensors"
    nnb.Model([nnb.Flatten(), nnb.Dense(3)], input_shape=(1, 2, 2)).save(str(path))
    data = bytearray(path.read_bytes())
    header_len = struct.unpack("<Q", bytes(data[:8]))[0]
    header = json.loads(bytes(data[8 : 8 + header_len]))
    assert header["__metadata__"]["format_version"] == "3"
    old = b'"format_version":"3"'
    at = bytes(data[: 8 + header_len]).find(old)
    assert at > 0
    data[at : at + len(old)] = b'"format_version":"4"'
    (tmp_path / "v4.safetensors").write_bytes(bytes(data))
    with pytest.raises(nnb.UnsupportedError, match="version 4"):
        nnb.Model.load(str(tmp_path / "v4.safetensors"))
