"""ONNX import: nn.Sequential MLPs and CNNs exported by torch.onnx.export (Debian's
python3-torch, in a subprocess) load as trainable models that compute what PyTorch computes;
a node outside the subset is named with its op. Skipped where no python3 imports torch."""

import subprocess

import numpy as np
import pytest

import nnbackprop as nnb
from test_torch_interop import torch_python

EXPORT = r"""
import sys
import numpy as np, torch
torch.manual_seed(0)
nn = torch.nn
models = {
    "mlp": (nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 8), nn.Tanh(), nn.Linear(8, 3)), (6,)),
    "mlp_act": (nn.Sequential(nn.Linear(6, 8), nn.LeakyReLU(0.2), nn.Linear(8, 8), nn.ELU(0.7), nn.Linear(8, 8),
                               nn.Sigmoid(), nn.Linear(8, 8), nn.Softplus(), nn.Dropout(0.3), nn.Linear(8, 3),
                               nn.LogSoftmax(dim=1)), (6,)),
    "cnn": (nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2),
                          nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.ReLU(), nn.AvgPool2d(2),
                          nn.Flatten(), nn.Linear(6, 10), nn.LayerNorm(10), nn.Linear(10, 3), nn.Softmax(dim=1)), (1, 8, 8)),
    "gap": (nn.Sequential(nn.Conv2d(2, 4, 3, groups=2, dilation=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.BatchNorm1d(4), nn.Linear(4, 2)), (2, 7, 7)),
    "hardswish": (nn.Sequential(nn.Linear(4, 4), nn.Hardswish(), nn.Linear(4, 2)), (4,)),
}
name, folder = sys.argv[1], sys.argv[2]
model, shape = models[name]
model.train()
model(torch.randn(16, *shape))  # batch norm statistics that are not the initial ones
model.eval()
torch.onnx.export(model, torch.zeros(1, *shape), f"{folder}/{name}.onnx", opset_version=17, input_names=["input"],
                  output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
x = np.random.default_rng(1).normal(size=(9, *shape)).astype(np.float32)
np.save(f"{folder}/x.npy", x)
with torch.no_grad():
    np.save(f"{folder}/y.npy", model(torch.from_numpy(x)).numpy())
"""


def export(name, folder):
    exe = torch_python()
    if exe is None:
        pytest.skip("no python3 here imports torch (Debian: apt-get install python3-torch)")
    r = subprocess.run([exe, "-c", EXPORT, name, str(folder)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return folder / f"{name}.onnx", np.load(folder / "x.npy"), np.load(folder / "y.npy")


@pytest.mark.parametrize("name", ["mlp", "mlp_act", "cnn", "gap"])
def test_pytorch_exports_import_and_match_pytorch(tmp_path, name):
    path, x, y = export(name, tmp_path)
    model = nnb.Model.from_onnx(path)
    np.testing.assert_allclose(model.predict(x), y, rtol=1e-5, atol=1e-5)
    # Trainable: a few steps move the weights and lower the loss on a fixed batch.
    labels = np.arange(len(x)) % model.outputs
    if name in ("mlp_act", "cnn"):
        return  # ends in (log)softmax: trained with nll-style losses this library leaves to the last layer
    before = model.evaluate(x, labels)["loss"]
    model.fit(x, labels, epochs=20, batch_size=9, lr=0.01)
    assert model.evaluate(x, labels)["loss"] < before


def test_the_state_dict_keeps_pytorchs_names(tmp_path):
    path, _, _ = export("cnn", tmp_path)
    names = list(nnb.Model.from_onnx(path).state_dict())
    assert names[:4] == ["0.weight", "0.bias", "2.weight", "2.bias"] and "2.running_mean" in names


def test_a_node_outside_the_subset_is_named(tmp_path):
    path, _, _ = export("hardswish", tmp_path)
    with pytest.raises(nnb.UnsupportedError, match="op HardSwish is not in the subset"):
        nnb.Model.from_onnx(path)


def test_damaged_onnx_files_are_refused(tmp_path):
    path, _, _ = export("mlp", tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    with pytest.raises(nnb.CorruptFileError, match="past the end"):
        nnb.Model.from_onnx(tmp_path / "cut.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\xff" * 64)
    with pytest.raises(nnb.CorruptFileError):
        nnb.Model.from_onnx(tmp_path / "junk.onnx")
    with pytest.raises(nnb.ModelFileError):
        nnb.Model.from_onnx(tmp_path / "none.onnx")
