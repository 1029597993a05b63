"""Training checkpoints from Python: Model.save(path, checkpoint=True), then Model.load and
fit(..., resume=True) in another process, trains bitwise as one uninterrupted run; the errors
of resuming; and best_epoch in the reports of fit."""

import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

import nnbackprop as nnb
from nnbackprop import _lib

PYTHON_DIR = str(pathlib.Path(__file__).resolve().parents[1])

# Dropout (so dropout's random state must be restored), adam (moments and step count) and a
# step schedule that halves the rate every epoch (so the epoch count must be restored too).
DESCRIPTION = "6-24:relu-dropout:0.3-12:tanh-3"
OPTIONS = dict(
    batch_size=16, optimizer="adam", lr=0.01, schedule="step", step_size=1, gamma=0.5, seed=7, shuffle=1
)

# Run by a fresh interpreter: argv is python_dir, checkpoint, x.npy, y.npy, out folder, threads.
RESUME_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import numpy as np
import nnbackprop as nnb

checkpoint, x, y, out, threads = sys.argv[2], np.load(sys.argv[3]), np.load(sys.argv[4]), sys.argv[5], sys.argv[6]
options = json.loads(sys.argv[7])
nnb.set_num_threads(int(threads))
resumed = nnb.Model.load(checkpoint)
history = resumed.fit(x, y, epochs=2, resume=True, **options)
resumed.save(out + "/resumed.safetensors")
# The control: the same checkpoint trained one more epoch without resume (a new optimizer).
control = nnb.Model.load(checkpoint)
control.fit(x, y, epochs=1, **options)
control.save(out + "/control.safetensors")
print(json.dumps({"library": nnb.library_path(), "epochs": [r["epoch"] for r in history],
                  "learning_rates": [r["learning_rate"] for r in history]}))
"""


def data(rows=160, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] > 0).astype(np.int64) + (x[:, 3] > 1)
    return x, y


def tensors(path):
    """The float32 tensors of a safetensors file, by name."""
    raw = pathlib.Path(path).read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", (name, t)
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(t["shape"])
    return out


def assert_same_tensors(a, b):
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name].tobytes() == b[name].tobytes(), f"tensor {name} differs"


def raises_with_library_message(cls, status, fn):
    """fn() raises cls with `status`, carrying the message nnb_last_error gives on this thread."""
    with pytest.raises(cls) as e:
        fn()
    assert type(e.value) is cls and e.value.status == status
    assert e.value.message and e.value.message == _lib.lib.nnb_last_error().decode()
    return e.value.message


def test_resume_in_a_new_process_is_bitwise_the_uninterrupted_run(tmp_path):
    x, y = data()
    straight = nnb.Model(DESCRIPTION, seed=3)
    straight_history = straight.fit(x, y, epochs=2, **OPTIONS)
    straight.save(tmp_path / "straight.safetensors")

    first = nnb.Model(DESCRIPTION, seed=3)
    first_history = first.fit(x, y, epochs=1, **OPTIONS)
    assert first_history[0]["loss"] == straight_history[0]["loss"]
    first.save(tmp_path / "checkpoint.safetensors", checkpoint=True)
    checkpoint = tensors(tmp_path / "checkpoint.safetensors")
    assert any(name.startswith("optimizer.") for name in checkpoint), sorted(checkpoint)

    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    env = dict(os.environ, NNBACKPROP_LIB=nnb.library_path())
    args = [tmp_path / "checkpoint.safetensors", tmp_path / "x.npy", tmp_path / "y.npy", tmp_path]
    run = subprocess.run(
        [sys.executable, "-c", RESUME_SCRIPT, PYTHON_DIR, *map(str, args), str(nnb.num_threads()), json.dumps(OPTIONS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    child = json.loads(run.stdout)
    assert child["library"] == nnb.library_path()
    # Only the second epoch ran, at the rate the schedule gives it.
    assert child["epochs"] == [2]
    assert child["learning_rates"] == [straight_history[1]["learning_rate"]] == [pytest.approx(0.005)]

    resumed = nnb.Model.load(tmp_path / "resumed.safetensors")
    assert_same_tensors(tensors(tmp_path / "resumed.safetensors"), tensors(tmp_path / "straight.safetensors"))
    assert resumed.predict(x).tobytes() == straight.predict(x).tobytes()
    # The comparison can tell: a second epoch without resume (new optimizer) ends elsewhere.
    control = nnb.Model.load(tmp_path / "control.safetensors")
    assert not np.array_equal(control.predict(x), straight.predict(x))
    # And the resumed epoch changed the weights: they are not the checkpoint's.
    assert not np.array_equal(resumed.predict(x), nnb.Model.load(tmp_path / "checkpoint.safetensors").predict(x))


def test_a_checkpoint_file_loads_as_a_plain_model(tmp_path):
    x, y = data()
    model = nnb.Model(DESCRIPTION, seed=3)
    model.fit(x, y, epochs=1, **OPTIONS)
    model.save(tmp_path / "checkpoint.safetensors", checkpoint=True)
    model.save(tmp_path / "plain.safetensors")
    plain, checkpoint = tensors(tmp_path / "plain.safetensors"), tensors(tmp_path / "checkpoint.safetensors")
    assert not any(name.startswith("optimizer.") for name in plain)
    assert_same_tensors(plain, {k: v for k, v in checkpoint.items() if not k.startswith("optimizer.")})
    loaded = nnb.Model.load(tmp_path / "checkpoint.safetensors")
    assert loaded.predict(x).tobytes() == model.predict(x).tobytes()


def test_checkpoint_before_any_training_is_not_ready(tmp_path):
    model = nnb.Model(DESCRIPTION, seed=3)
    message = raises_with_library_message(
        nnb.NotReadyError, _lib.ERR_NOT_READY, lambda: model.save(tmp_path / "c.safetensors", checkpoint=True)
    )
    assert "nnb_model_save_checkpoint" in message
    assert not (tmp_path / "c.safetensors").exists()
    model.save(tmp_path / "plain.safetensors")  # a plain save needs no training


def test_resume_errors(tmp_path):
    x, y = data()
    model = nnb.Model(DESCRIPTION, seed=3)
    # A model that was not loaded from a checkpoint: a new one, and one loaded from a plain save.
    raises_with_library_message(
        nnb.NotReadyError, _lib.ERR_NOT_READY, lambda: model.fit(x, y, epochs=2, resume=True, **OPTIONS)
    )
    model.fit(x, y, epochs=1, **OPTIONS)
    model.save(tmp_path / "plain.safetensors")
    plain = nnb.Model.load(tmp_path / "plain.safetensors")
    raises_with_library_message(
        nnb.NotReadyError, _lib.ERR_NOT_READY, lambda: plain.fit(x, y, epochs=2, resume=True, **OPTIONS)
    )

    model.save(tmp_path / "checkpoint.safetensors", checkpoint=True)
    loaded = nnb.Model.load(tmp_path / "checkpoint.safetensors")
    sgd = dict(OPTIONS, optimizer="sgd")
    message = raises_with_library_message(
        nnb.ShapeError, _lib.ERR_SHAPE_MISMATCH, lambda: loaded.fit(x, y, epochs=2, resume=True, **sgd)
    )
    assert "adam" in message and "sgd" in message
    for bad in (2, -1):
        message = raises_with_library_message(
            nnb.InvalidArgumentError,
            _lib.ERR_INVALID_ARGUMENT,
            lambda: loaded.fit(x, y, epochs=2, resume=bad, **OPTIONS),
        )
        assert "resume" in message and str(bad) in message

    # The refused calls left the checkpoint in place: it resumes once, then it is consumed.
    history = loaded.fit(x, y, epochs=2, resume=True, **OPTIONS)
    assert [r["epoch"] for r in history] == [2]
    raises_with_library_message(
        nnb.NotReadyError, _lib.ERR_NOT_READY, lambda: loaded.fit(x, y, epochs=3, resume=True, **OPTIONS)
    )


def test_best_epoch_with_early_stopping():
    x, y = data(rows=200)
    # A high rate on little data: the validation loss turns up after a few epochs.
    options = dict(OPTIONS, lr=0.05, gamma=0.9, seed=1)
    model = nnb.Model(DESCRIPTION, seed=3)
    history = model.fit(x, y, epochs=60, validation_split=0.25, early_stopping_patience=3, **options)
    assert len(history) < 60, "early stopping never stopped this run, so it tests nothing"
    val_losses = [r["val_loss"] for r in history]
    best = int(np.argmin(val_losses)) + 1  # the first lowest: a later equal loss is no improvement
    assert best < len(history)
    last = history[-1]
    assert type(last["best_epoch"]) is int and last["best_epoch"] == best
    assert all(type(r["best_epoch"]) is int and 0 <= r["best_epoch"] <= r["epoch"] for r in history)
    # restore_best (the default) kept that epoch's weights: the held-out rows score as it did.
    held = x[-50:], y[-50:]
    assert model.evaluate(*held)["loss"] == pytest.approx(val_losses[best - 1], rel=1e-5)


def test_best_epoch_is_zero_without_early_stopping():
    x, y = data()
    with_validation = nnb.Model(DESCRIPTION, seed=3).fit(x, y, epochs=3, validation_split=0.25, **OPTIONS)
    without = nnb.Model(DESCRIPTION, seed=3).fit(x, y, epochs=3, **OPTIONS)
    for history in (with_validation, without):
        assert [r["best_epoch"] for r in history] == [0, 0, 0]
        assert all(type(r["best_epoch"]) is int for r in history)
    model = nnb.Model(DESCRIPTION, seed=3).compile(batch_size=16)
    report = model.train_epoch(x, y)
    assert report["best_epoch"] == 0 and type(report["best_epoch"]) is int
