"""FANN import against the real FANN (Debian libfann-dev): networks trained and saved by a C
program using FANN (Tests/fann/make_nets.c) load here and give fann_run's outputs within 1e-5,
for sigmoid, symmetric sigmoid and linear outputs; its .data files load as data sets (through
nnb train). Skipped where fann.h or a C compiler is missing."""

import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import nnbackprop as nnb

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fann_files(tmp_path_factory):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not os.path.exists("/usr/include/fann.h"):
        pytest.skip("FANN is not installed (Debian: apt-get install libfann-dev)")
    folder = tmp_path_factory.mktemp("fann")
    exe = folder / "make_nets"
    subprocess.run([cc, "-O1", str(ROOT / "Tests/fann/make_nets.c"), "-o", str(exe), "-lfann", "-lm"], check=True)
    subprocess.run([str(exe), str(folder)], check=True)
    return folder


def read_data(path):
    """A FANN .data file as (x, y), parsed here independently of the library."""
    words = path.read_text().split()
    rows, inputs, outputs = (int(w) for w in words[:3])
    values = np.array(words[3:], dtype=np.float32).reshape(rows, inputs + outputs)
    return values[:, :inputs], values[:, inputs:]


@pytest.mark.parametrize("name", ["sigmoid", "symmetric", "linear"])
def test_fann_networks_give_fann_runs_outputs(fann_files, name):
    model = nnb.Model.from_fann(fann_files / f"{name}.net")
    x, y = read_data(fann_files / f"{name}.data")
    expected = np.loadtxt(fann_files / f"{name}.out", dtype=np.float32)
    assert model.input_shape == (3,) and model.outputs == 2
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-5, atol=1e-5)
    # FANN trained them: they are not at their initial weights (the outputs follow the targets).
    assert np.mean(np.sign(expected - expected.mean(axis=0)) == np.sign(y - y.mean(axis=0))) > 0.6


def test_the_imported_network_trains_on(fann_files):
    model = nnb.Model.from_fann(fann_files / "linear.net")
    x, y = read_data(fann_files / "linear.data")
    before = model.evaluate(x, y, loss="mse")["loss"]
    model.fit(x, y, loss="mse", epochs=50, lr=0.01)
    assert model.evaluate(x, y, loss="mse")["loss"] < before


def test_a_shortcut_network_is_refused_by_name(fann_files):
    with pytest.raises(nnb.UnsupportedError, match="shortcut"):
        nnb.Model.from_fann(fann_files / "shortcut.net")


def test_damaged_fann_files(tmp_path, fann_files):
    text = (fann_files / "sigmoid.net").read_text()
    (tmp_path / "cut.net").write_text(text[: len(text) - 200])
    with pytest.raises(nnb.CorruptFileError, match=r"line \d+: "):
        nnb.Model.from_fann(tmp_path / "cut.net")
    (tmp_path / "fix.net").write_text("FANN_FIX_2.0\n")
    with pytest.raises(nnb.UnsupportedError, match="fixed-point"):
        nnb.Model.from_fann(tmp_path / "fix.net")
    (tmp_path / "act.net").write_text(text.replace("(6, 5, ", "(6, 7, ", 1) if "(6, 5, " in text else text.replace("(4, 5, ", "(4, 7, ", 1))
    with pytest.raises(nnb.UnsupportedError, match="FANN_GAUSSIAN|one activation per layer"):
        nnb.Model.from_fann(tmp_path / "act.net")


def test_nnb_train_reads_fann_data_files(fann_files, tmp_path):
    nnb_exe = ROOT / ".build/release/nnb"
    if not nnb_exe.exists():
        nnb_exe = ROOT / ".build/debug/nnb"
    if not nnb_exe.exists():
        pytest.skip("the nnb command is not built (swift build --product nnb)")
    r = subprocess.run([str(nnb_exe), "train", "--data", str(fann_files / "sigmoid.data"), "--layers", "8:tanh",
                        "--epochs", "3", "--output", str(tmp_path / "m.safetensors")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "64" in r.stdout or "51" in r.stdout, r.stdout  # the rows (train part) are reported
    assert nnb.Model.load(str(tmp_path / "m.safetensors")).input_shape == (3,)
