"""Model files load into PyTorch: the tensors of a saved model have nn.Sequential's state-dict
names and shapes, so load_state_dict(strict=True) takes them and the PyTorch model computes the
same outputs. Runs where some python3 on the machine imports torch (Debian python3-torch), in
that interpreter; skipped elsewhere."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import nnbackprop as nnb

TORCH_SIDE = r"""
import json, struct, sys
import numpy as np, torch

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        b, e = t["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"]).copy())
    return out

path, x_path = sys.argv[1], sys.argv[2]
model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
model.load_state_dict(read_safetensors(path), strict=True)
x = torch.from_numpy(np.load(x_path))
with torch.no_grad():
    print(json.dumps(model(x).numpy().tolist()))
"""


def torch_python():
    for candidate in [sys.executable, "python3", "/usr/bin/python3"]:
        exe = shutil.which(candidate) or candidate
        if os.path.exists(exe) and subprocess.run([exe, "-c", "import torch"], capture_output=True).returncode == 0:
            return exe
    return None


def test_saved_model_loads_into_pytorch_sequential(tmp_path):
    exe = torch_python()
    if exe is None:
        pytest.skip("no python3 here imports torch (Debian: apt-get install python3-torch)")
    model = nnb.Model("5-7:relu-4:tanh-3", seed=11)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    model.fit(x, rng.integers(0, 3, 6), epochs=3, batch_size=3)
    model.save(tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([exe, "-c", TORCH_SIDE, str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    torch_out = np.array(json.loads(r.stdout), dtype=np.float32)
    np.testing.assert_allclose(torch_out, model.predict(x), rtol=1e-5, atol=1e-6)


TORCH_IMAGE_SIDE = TORCH_SIDE.replace(
    "torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))",
    "torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))",
)


def test_image_model_file_version_2_loads_into_pytorch_strictly(tmp_path):
    """A (1, 4, 4) image model with Flatten: the version-2 file's tensors are named as
    nn.Sequential(Flatten, Linear, ReLU, Linear) names them ("1.weight", "3.weight"), and
    PyTorch on (N, 1, 4, 4) tensors computes what the library does."""
    exe = torch_python()
    if exe is None:
        pytest.skip("no python3 here imports torch (Debian: apt-get install python3-torch)")
    assert TORCH_IMAGE_SIDE != TORCH_SIDE, "the PyTorch model must be the image one"
    model = nnb.Model([nnb.Flatten(), nnb.Dense(8, "relu"), nnb.Dense(3)], input_shape=(1, 4, 4), seed=3)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 1, 4, 4)).astype(np.float32)
    model.fit(x, rng.integers(0, 3, 5), epochs=2, batch_size=5)
    model.save(tmp_path / "img.safetensors")
    np.save(tmp_path / "x.npy", x)
    r = subprocess.run([exe, "-c", TORCH_IMAGE_SIDE, str(tmp_path / "img.safetensors"), str(tmp_path / "x.npy")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.array(json.loads(r.stdout), dtype=np.float32), model.predict(x), rtol=1e-5, atol=1e-6)


TORCH_SCALED_SIDE = r"""
import json, struct, sys
import numpy as np, torch

path, x_path, state_path = sys.argv[1], sys.argv[2], sys.argv[3]
with open(path, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    data = f.read()
meta = header.pop("__metadata__")
tensors = {name: torch.from_numpy(np.frombuffer(data[t["data_offsets"][0]:t["data_offsets"][1]], dtype="<f4")
                                  .reshape(t["shape"]).copy()) for name, t in header.items()}
model = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
model.load_state_dict(tensors, strict=True)  # the file: its tensors are the state dict, nothing more
state = np.load(state_path)
again = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2))
again.load_state_dict({k: torch.from_numpy(state[k]) for k in state.files}, strict=True)  # Model.state_dict()
assert meta["preprocessing"] == "standardize", meta
scaler = json.loads(meta["preprocessing_state"])
x = (torch.from_numpy(np.load(x_path)) - torch.tensor(scaler["mean"])) / torch.tensor(scaler["std"])
with torch.no_grad():
    print(json.dumps([model(x).numpy().tolist(), again(x).numpy().tolist()]))
"""


def test_a_model_with_a_scaler_loads_into_pytorch_strictly(tmp_path):
    """The scaler lives in the file's metadata, not among its tensors: the file and
    Model.state_dict() both load with strict=True, and PyTorch on inputs standardized with the
    saved mean and std computes what the library does."""
    exe = torch_python()
    if exe is None:
        pytest.skip("no python3 here imports torch (Debian: apt-get install python3-torch)")
    rng = np.random.default_rng(5)
    x = (rng.normal(size=(40, 3)) * [1, 10, 100] + [0, 5, -50]).astype(np.float32)
    model = nnb.Model("3-6:relu-2", seed=2)
    model.fit(x, (x[:, 0] > 0).astype(int), epochs=3, standardize=True)
    model.save(tmp_path / "scaled.safetensors")
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "state.npz", **model.state_dict())
    r = subprocess.run([exe, "-c", TORCH_SCALED_SIDE, str(tmp_path / "scaled.safetensors"), str(tmp_path / "x.npy"),
                        str(tmp_path / "state.npz")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    from_file, from_state = (np.array(v, dtype=np.float32) for v in json.loads(r.stdout))
    np.testing.assert_allclose(from_file, model.predict(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(from_state, from_file)
