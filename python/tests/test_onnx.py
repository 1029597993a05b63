"""ONNX export: every layer kind and the scalers, checked by the onnx package's checker and run
in ONNX Runtime against the library's own predictions. Skipped where onnx or onnxruntime is
missing (scripts/setup.sh installs both from PyPI)."""

import json

import numpy as np
import pytest

import nnbackprop as nnb

onnx = pytest.importorskip("onnx", reason="the onnx package is not installed (pip install onnx)")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")

NETWORKS = {
    # every activation a Dense layer can carry, and the standalone activation layers
    "activations": ("4-8:relu-8:gelu-8:silu-8:gelu_tanh-8:tanh-8:elu-8:sigmoid-8:leaky_relu-8:softplus-3", (4,)),
    "softmax": ("4-8:tanh-dropout:0.3-3-softmax", (4,)),
    "log_softmax": ("4-8-3-log_softmax", (4,)),
    "cnn": ("1x8x8-conv2d(4,3,padding=1):relu-batchnorm2d-maxpool2d(2)-conv2d(6,3,stride=2,padding=1,bias=0)-"
            "avgpool2d(2,padding=1)-flatten-layernorm-6:relu-3", (1, 8, 8)),
    "grouped_global": ("2x6x6-conv2d(4,3,groups=2,dilation=2):relu-globalavgpool2d-flatten-batchnorm1d-3", (2, 6, 6)),
    "reshape": ("12-reshape(3x4)-5:relu-flatten-3", (12,)),
}


def trained(description, shape, standardize=True, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(32, *shape)).astype(np.float32) * 3 + 1
    model = nnb.Model(description, seed=seed)
    model.fit(x, rng.integers(0, model.outputs, 32), epochs=2, batch_size=8, standardize=standardize)
    return model, x


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_exported_models_pass_the_checker_and_match_in_onnx_runtime(tmp_path, name):
    description, shape = NETWORKS[name]
    model, x = trained(description, shape)
    path = tmp_path / f"{name}.onnx"
    model.export_onnx(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)  # full_check: shape inference too
    assert proto.opset_import[0].version >= 17 and proto.graph.input[0].name == "input"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    ours = model.predict(x)
    theirs = run_onnx(path, x)
    assert theirs.shape == ours.shape
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-5)
    # The batch is dynamic: one sample and an odd count run too.
    np.testing.assert_allclose(run_onnx(path, x[:1]), ours[:1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(run_onnx(path, x[:7]), ours[:7], rtol=1e-5, atol=1e-5)


def test_the_scalers_become_nodes(tmp_path):
    model, x = trained("3-5:tanh-2", (3,), standardize=True)
    model.export_onnx(tmp_path / "std.onnx")
    ops = [n.op_type for n in onnx.load(str(tmp_path / "std.onnx")).graph.node]
    assert ops[:2] == ["Sub", "Div"], ops
    np.testing.assert_allclose(run_onnx(tmp_path / "std.onnx", x), model.predict(x), rtol=1e-5, atol=1e-5)
    plain, _ = trained("3-5:tanh-2", (3,), standardize=False)
    plain.export_onnx(tmp_path / "plain.onnx")
    assert [n.op_type for n in onnx.load(str(tmp_path / "plain.onnx")).graph.node][0] == "Gemm"


def test_class_names_go_into_the_metadata(tmp_path):
    model = nnb.Model("2-4-3", seed=1)
    model.classes = ["ant", "bee", "cat"]
    model.export_onnx(tmp_path / "c.onnx")
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "c.onnx")).metadata_props}
    assert json.loads(meta["classes"]) == ["ant", "bee", "cat"]


def test_a_layer_without_an_onnx_form_is_named(tmp_path):
    def mish(x):
        return x * np.tanh(np.log1p(np.exp(x)))

    def mish_grad(x, y):
        return np.ones_like(x)

    nnb.register_activation("onnx_test_mish", mish, mish_grad)
    model = nnb.Model("2-4:onnx_test_mish-2")
    with pytest.raises(nnb.UnsupportedError, match="layer 1 .* has no ONNX form"):
        model.export_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(nnb.ModelFileError):
        nnb.Model("2-3").export_onnx(tmp_path / "no-such-folder" / "m.onnx")
