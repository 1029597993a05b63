"""PyTorch parity of the shaped layers: a model with BatchNorm2d, MaxPool2d, AvgPool2d, LayerNorm
(and, where the library has it, Conv2d) loads into the equivalent torch.nn.Sequential with
strict=True and computes the same outputs in eval mode; one SGD step and one Adam step on the
same batch, in train mode (batch statistics, running statistics updated), give the same weights
and running statistics as PyTorch's. Runs where some python3 imports torch (Debian
python3-torch), in that interpreter; skipped elsewhere."""

import json
import subprocess

import numpy as np
import pytest

import nnbackprop as nnb
from test_torch_interop import torch_python

TORCH_SIDE = r"""
import json, struct, sys
import numpy as np, torch

def read(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(data[b:e], dtype="<f4").reshape(t["shape"]).copy()
        out[name] = torch.from_numpy(a)
    return out

modules, before, x_path, y_path, optimizer, lr = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], float(sys.argv[6])
model = eval(modules, {"nn": torch.nn})
state = read(before)
# num_batches_tracked is an int64 buffer in PyTorch; load_state_dict copies the float into it.
model.load_state_dict(state, strict=True)
x = torch.from_numpy(np.load(x_path))
y = torch.from_numpy(np.load(y_path)).long()
model.eval()
with torch.no_grad():
    eval_out = model(x).numpy().tolist()
model.train()
opt = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=lr)
opt.zero_grad()
loss = torch.nn.functional.cross_entropy(model(x), y)
loss.backward()
opt.step()
after = {k: v.detach().double().numpy().ravel().tolist() for k, v in model.state_dict().items()}
print(json.dumps({"eval": eval_out, "after": after, "loss": loss.item()}))
"""


def tensors(path):
    import struct

    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or name.startswith("optimizer."):
            continue
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(data[b:e], dtype="<f4").astype(np.float64)
    return out


CASES = [
    (
        "pool-norm",
        (2, 6, 6),
        lambda: [nnb.BatchNorm2d(), nnb.MaxPool2D(2), nnb.AvgPool2D(3, stride=1, padding=1), nnb.LayerNorm(),
                 nnb.Flatten(), nnb.Dense(4)],
        "nn.Sequential(nn.BatchNorm2d(2), nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.LayerNorm([2, 3, 3]), nn.Flatten(), nn.Linear(18, 4))",
    ),
    (
        "conv",
        (2, 8, 8),
        lambda: [nnb.Conv2D(4, 3, padding=1, activation="relu"), nnb.BatchNorm2d(), nnb.MaxPool2D(2),
                 nnb.Conv2D(6, (3, 2), stride=(2, 1), groups=2, activation="tanh"), nnb.Conv2D(6, 1, groups=6, bias=False),
                 nnb.Flatten(), nnb.Dense(4)],
        "nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.BatchNorm2d(4), nn.MaxPool2d(2), "
        "nn.Conv2d(4, 6, (3, 2), stride=(2, 1), groups=2), nn.Tanh(), nn.Conv2d(6, 6, 1, groups=6, bias=False), "
        "nn.Flatten(), nn.Linear(18, 4))",
    ),
    (
        "norm-1d",
        (6,),
        # BatchNorm first: a bias just before a batch norm has a gradient of zero in exact
        # arithmetic, which Adam's first step turns into +-lr from rounding noise alone.
        lambda: [nnb.BatchNorm1d(), nnb.Dense(5, "relu"), nnb.Dense(4)],
        "nn.Sequential(nn.BatchNorm1d(6), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 4))",
    ),
]


@pytest.mark.parametrize("optimizer,lr", [("sgd", 0.1), ("adam", 0.01)])
@pytest.mark.parametrize("name,shape,layers,modules", CASES, ids=[c[0] for c in CASES])
def test_layers_match_pytorch(tmp_path, name, shape, layers, modules, optimizer, lr):
    exe = torch_python()
    if exe is None:
        pytest.skip("no python3 here imports torch (Debian: apt-get install python3-torch)")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, *shape)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    model = nnb.Model(layers(), input_shape=shape, seed=5)
    # Give the running statistics values of their own first (one training epoch), so that eval
    # mode is not the identity of fresh statistics.
    model.fit(rng.normal(size=(16, *shape)).astype(np.float32) * 2 + 1, rng.integers(0, 4, 16), epochs=1, batch_size=16,
              optimizer="sgd", lr=0.05)
    before = tmp_path / "before.safetensors"
    model.save(before)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    r = subprocess.run([exe, "-c", TORCH_SIDE, modules, str(before), str(tmp_path / "x.npy"), str(tmp_path / "y.npy"),
                        optimizer, str(lr)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    torch_side = json.loads(r.stdout)
    np.testing.assert_allclose(model.predict(x), np.array(torch_side["eval"], dtype=np.float32), rtol=1e-5, atol=1e-5)
    # One step on the same batch, in train mode.
    history = model.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, lr=lr, shuffle=0)
    assert abs(history[-1]["loss"] - torch_side["loss"]) <= 1e-5 * max(1, abs(torch_side["loss"]))
    after = tmp_path / "after.safetensors"
    model.save(after)
    ours = tensors(after)
    assert set(ours) == set(torch_side["after"]), (sorted(ours), sorted(torch_side["after"]))
    for key, theirs in torch_side["after"].items():
        np.testing.assert_allclose(ours[key], np.array(theirs), rtol=1e-5, atol=1e-6, err_msg=f"{name}: {key} after one {optimizer} step")
