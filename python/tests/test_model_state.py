"""A Model as a Python object: pickle, copy and deepcopy, bytes in memory, the state dict, and
what it was trained with (its loss and class names), which its file keeps."""

import copy
import pickle
import re

import numpy as np
import pytest

import nnbackprop as nnb


def blobs(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[2.0, 0.0], [-2.0, 0.0], [0.0, 2.5]])
    x = (centres[y] + rng.normal(0, 0.5, (n, 2))).astype(np.float32)
    return x, y


def test_pickle_copy_and_deepcopy_give_independent_models():
    x, y = blobs()
    model = nnb.Model("2-8:relu-3", seed=1)
    model.fit(x, y, epochs=5, standardize=True)
    before = model.predict(x)
    for other in (pickle.loads(pickle.dumps(model)), copy.copy(model), copy.deepcopy(model)):
        assert type(other) is nnb.Model
        np.testing.assert_array_equal(other.predict(x), before)
        assert other.loss == "cross_entropy"
        # Training the copy leaves the original; closing it leaves the original usable.
        other.fit(x, y, epochs=3, lr=0.05)
        assert not np.array_equal(other.predict(x), before)
        other.close()
        np.testing.assert_array_equal(model.predict(x), before)


def test_bytes_round_trip_and_bad_bytes():
    x, y = blobs()
    model = nnb.Model("2-8:relu-3", seed=1)
    model.fit(x, y, epochs=2)
    data = model.to_bytes()
    assert isinstance(data, bytes) and len(data) > 8
    np.testing.assert_array_equal(nnb.Model.from_bytes(data).predict(x), model.predict(x))
    np.testing.assert_array_equal(nnb.Model.from_bytes(bytearray(data)).predict(x), model.predict(x))
    with pytest.raises(nnb.CorruptFileError, match="truncated"):
        nnb.Model.from_bytes(data[: len(data) // 2])
    with pytest.raises(nnb.CorruptFileError):
        nnb.Model.from_bytes(b"\x00" * 3)
    with pytest.raises(nnb.NotReadyError, match="nothing to checkpoint"):
        nnb.Model("2-3").to_bytes(checkpoint=True)
    # A checkpoint in memory resumes as one in a file does.
    resumed = nnb.Model.from_bytes(model.to_bytes(checkpoint=True))
    resumed.fit(x, y, epochs=4, resume=True)


def test_state_dict_has_pytorch_names_and_loads_back():
    model = nnb.Model([nnb.Flatten(), nnb.Dense(6, "relu"), nnb.Dense(3)], input_shape=(1, 2, 2), seed=3)
    state = model.state_dict()
    assert list(state) == ["1.weight", "1.bias", "3.weight", "3.bias"]
    assert state["1.weight"].shape == (6, 4) and state["1.weight"].dtype == np.float32
    x = np.random.default_rng(1).normal(size=(5, 1, 2, 2)).astype(np.float32)
    # The outputs computed from the state dict by hand (nn.Sequential(Flatten, Linear, ReLU, Linear)).
    h = np.maximum(x.reshape(5, 4) @ state["1.weight"].T + state["1.bias"], 0)
    np.testing.assert_allclose(model.predict(x), h @ state["3.weight"].T + state["3.bias"], rtol=1e-5, atol=1e-6)

    other = nnb.Model([nnb.Flatten(), nnb.Dense(6, "relu"), nnb.Dense(3)], input_shape=(1, 2, 2), seed=99)
    assert not np.array_equal(other.predict(x), model.predict(x))
    result = other.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(other.predict(x), model.predict(x))
    # The arrays are copies: changing one changes neither model.
    state["1.bias"][:] = 100
    np.testing.assert_array_equal(other.predict(x), model.predict(x))


def test_load_state_dict_refuses_missing_unexpected_and_misshaped_tensors():
    model = nnb.Model("4-3:relu-2", seed=1)
    state = model.state_dict()
    with pytest.raises(KeyError, match="missing \\['2.bias'\\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "2.bias"})
    with pytest.raises(KeyError, match="unexpected \\['extra'\\]"):
        model.load_state_dict(dict(state, extra=np.zeros(1)))
    with pytest.raises(nnb.ShapeError, match=re.escape("['0.weight'] has shape (4, 3), the model's is (3, 4)")):
        model.load_state_dict(dict(state, **{"0.weight": np.zeros((4, 3))}))
    with pytest.raises(nnb.InvalidDataError, match="not finite"):
        model.load_state_dict(dict(state, **{"0.bias": np.full(3, np.nan)}))
    # Not strict: a partial dict sets what it names, and says what was missing or unexpected.
    before = model.state_dict()
    result = model.load_state_dict({"2.bias": np.array([5.0, -5.0]), "nope": np.zeros(2)}, strict=False)
    assert result.missing_keys == ["0.weight", "0.bias", "2.weight"] and result.unexpected_keys == ["nope"]
    after = model.state_dict()
    np.testing.assert_array_equal(after["2.bias"], [5.0, -5.0])
    np.testing.assert_array_equal(after["0.weight"], before["0.weight"])


def test_string_labels_set_class_names_that_the_file_keeps(tmp_path):
    x, y = blobs(seed=2)
    names = np.array(["ant", "bee", "cat"])[y]
    model = nnb.Model("2-16:relu-3", seed=1)
    model.fit(x, names, epochs=30, lr=0.01)
    assert list(model.classes) == ["ant", "bee", "cat"]
    predicted = model.predict_classes(x)
    assert predicted.dtype.kind == "U"
    assert np.mean(predicted == names) > 0.9
    assert model.evaluate(x, names)["accuracy"] > 0.9
    path = tmp_path / "m.safetensors"
    model.save(str(path))
    loaded = nnb.Model.load(str(path))
    assert list(loaded.classes) == ["ant", "bee", "cat"]
    np.testing.assert_array_equal(loaded.predict_classes(x), predicted)
    with pytest.raises(nnb.InvalidArgumentError, match="'dog' are not among the model's classes"):
        loaded.fit(x[:3], ["ant", "dog", "cat"], epochs=1)


def test_class_name_errors():
    model = nnb.Model("2-4-3")
    with pytest.raises(nnb.ShapeError, match="expected 3"):
        model.classes = ["a", "b"]
    with pytest.raises(nnb.InvalidArgumentError, match="'a' .* appears twice"):
        model.classes = ["a", "b", "a"]
    with pytest.raises(nnb.InvalidArgumentError, match="no class names"):
        model.evaluate(np.zeros((2, 2)), ["a", "b"])
    with pytest.raises(nnb.ShapeError, match="2 class names for a model with 3 outputs"):
        model.fit(np.zeros((4, 2)), ["a", "b", "a", "b"], epochs=1)  # two labels seen, three outputs
    model.classes = ["x", "y", "z"]
    assert list(model.classes) == ["x", "y", "z"]
    model.classes = None
    assert model.classes is None
    bce = nnb.Model("2-4-1")
    bce.classes = ["no", "yes"]  # a one-output model has two classes
    assert list(bce.predict_classes(np.zeros((1, 2)))) in (["no"], ["yes"])


def test_a_bce_model_keeps_its_loss_after_loading(tmp_path):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] > 0], axis=1).astype(np.float32)  # two labels per row
    model = nnb.Model("3-8:tanh-2", seed=2)
    assert model.loss is None
    model.fit(x, y, loss="bce", epochs=5)
    assert model.loss == "bce"
    path = tmp_path / "bce.safetensors"
    model.save(str(path))
    loaded = nnb.Model.load(str(path))
    assert loaded.loss == "bce"
    # Probabilities are per-label sigmoids (rows need not sum to 1), as for the trained model.
    logits = loaded.predict(x).astype(np.float64)
    np.testing.assert_allclose(loaded.predict_proba(x), 1 / (1 + np.exp(-logits)), rtol=1e-12)
    # evaluate with no loss named uses bce, the same as naming it.
    assert loaded.evaluate(x, y) == loaded.evaluate(x, y, loss="bce")
    assert loaded.evaluate(x, y)["loss"] != loaded.evaluate(x, y, loss="mse")["loss"]


def test_unknown_keyword_arguments_raise_type_error_naming_the_accepted_ones():
    model = nnb.Model("2-3")
    with pytest.raises(TypeError, match="unknown training option 'learning_rat'.*momentum"):
        model.fit(np.zeros((2, 2)), [0, 1], learning_rat=0.1)
    with pytest.raises(TypeError, match="unknown training option 'epoch'"):
        model.compile(epoch=3)
