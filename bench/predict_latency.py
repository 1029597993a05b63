"""One-sample predict latency of a 784-256-128-10 ReLU network in numpy, PyTorch eager and
nnbackprop's Python module (ctypes over the C API).

    python3 bench/predict_latency.py [--only numpy,nnb-python,onnxruntime,torch,numpy-batch] [--calls 20000]

Prints one line per method: "RESULT <name> <median us> <p10 us> <p90 us> <calls>", the format
of bench/predict_latency.c ("BATCH <name> <median us> <calls>" for numpy-batch, one (1000, 784)
batch a call); bench/predict_latency.sh runs both and prints the tables. A method
whose package is missing prints "SKIP <name> <why>".
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

SIZES = (784, 256, 128, 10)


def timed(name, fn, inputs, calls, rounds=10):
    """Median, p10 and p90 of single calls of fn(row), over `calls` calls in `rounds` rounds."""
    for i in range(2000):
        fn(inputs[i % len(inputs)])
    clock = time.perf_counter_ns
    samples = []
    per_round = max(calls // rounds, 1)
    for _ in range(rounds):
        for i in range(per_round):
            row = inputs[i % len(inputs)]
            t0 = clock()
            fn(row)
            samples.append(clock() - t0)
    samples.sort()
    n = len(samples)
    print(f"RESULT {name} {samples[n // 2] / 1e3:.3f} {samples[n // 10] / 1e3:.3f} {samples[n * 9 // 10] / 1e3:.3f} {n}", flush=True)


def weights(rng):
    """PyTorch-style [out, in] weights and biases, uniform(-1/sqrt(in), 1/sqrt(in))."""
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        layers.append((w, b))
    return layers


def numpy_mlp():
    """The network in numpy: x @ W^T with W stored [out, in] (the transposes are views, so BLAS
    reads them transposed)."""
    (w1, b1), (w2, b2), (w3, b3) = weights(np.random.default_rng(0))
    w1t, w2t, w3t = w1.T, w2.T, w3.T

    def predict(x):
        h = np.maximum(x @ w1t + b1, 0)
        h = np.maximum(h @ w2t + b2, 0)
        return h @ w3t + b3

    return predict


def bench_numpy(inputs, calls):
    timed(f"numpy {np.__version__} (3 matmuls)", numpy_mlp(), inputs, calls)


def batch_numpy(batch=1000, calls=200):
    """numpy's time for one (1000, 784) batch through the same three matmuls."""
    predict = numpy_mlp()
    x = np.random.default_rng(2).random((batch, 784), dtype=np.float32)
    for _ in range(10):
        predict(x)
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter_ns()
        predict(x)
        samples.append(time.perf_counter_ns() - t0)
    samples.sort()
    print(f"BATCH numpy {np.__version__} (3 matmuls) {samples[len(samples) // 2] / 1e3:.3f} {calls}", flush=True)


def bench_nnb_python(inputs, calls):
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
    try:
        import nnbackprop as nnb
    except ImportError as e:
        print(f"SKIP nnbackprop-python {e}")
        return
    model = nnb.Model("784-256:relu-128:relu-10", seed=1)
    timed("nnbackprop Python (ctypes)", model.predict, inputs, calls)


def bench_onnxruntime(inputs, calls):
    """The same network exported by nnbackprop (Model.export_onnx), run by ONNX Runtime on one
    thread (intra- and inter-op), as a served model would be."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "python"))
    try:
        import onnxruntime as ort

        import nnbackprop as nnb
    except ImportError as e:
        print(f"SKIP onnxruntime {e}")
        return
    model = nnb.Model("784-256:relu-128:relu-10", seed=1)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "mlp.onnx")
        model.export_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    worst = max(float(np.abs(session.run(None, {"input": x})[0] - model.predict(x)).max()) for x in inputs[:8])
    print(f"# onnxruntime {ort.__version__}: largest difference from nnbackprop's outputs {worst:.2e}")
    timed(f"ONNX Runtime {ort.__version__} (1 thread)", lambda x: session.run(None, {"input": x}), inputs, calls)


def bench_torch(inputs, calls):
    try:
        import torch
    except ImportError as e:
        print(f"SKIP torch {e}")
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)
    ).eval()
    tensors = [torch.from_numpy(x) for x in inputs]

    def predict(x):
        with torch.inference_mode():
            return net(x)

    timed(f"PyTorch {torch.__version__} eager (1 thread)", predict, tensors, calls)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="numpy,nnb-python,onnxruntime,torch,numpy-batch")
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    inputs = [rng.uniform(0, 1, (1, 784)).astype(np.float32) for _ in range(64)]
    chosen = args.only.split(",")
    print(f"# python {sys.version.split()[0]} ({sys.executable}), OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '-')}")
    for name, fn in (("numpy", bench_numpy), ("nnb-python", bench_nnb_python), ("onnxruntime", bench_onnxruntime),
                     ("torch", bench_torch)):
        if name in chosen:
            fn(inputs, args.calls)
    if "numpy-batch" in chosen:
        batch_numpy()


if __name__ == "__main__":
    main()
