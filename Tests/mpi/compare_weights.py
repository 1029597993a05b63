"""Compares the tensors of two safetensors model files (the MPI tests).

    compare_weights.py A B [--max-abs-diff T]

Prints the largest absolute difference over all tensors and exits 1 when the files hold
different tensor names or shapes, or (with --max-abs-diff) when the difference exceeds T;
without it the files must be bitwise equal.
"""
import json
import struct
import sys

import numpy as np


def tensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    body = data[8 + n:]
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        dtype = {"F32": np.float32, "I8": np.int8}[t["dtype"]]
        out[name] = np.frombuffer(body[a:b], dtype=dtype).reshape(t["shape"])
    return out


def main():
    args = sys.argv[1:]
    tol = None
    if "--max-abs-diff" in args:
        i = args.index("--max-abs-diff")
        tol = float(args[i + 1])
        del args[i:i + 2]
    x, y = tensors(args[0]), tensors(args[1])
    if x.keys() != y.keys():
        print(f"different tensors: {sorted(x)} vs {sorted(y)}")
        return 1
    worst, bitwise = 0.0, True
    for name in x:
        if x[name].shape != y[name].shape:
            print(f"{name}: shape {x[name].shape} vs {y[name].shape}")
            return 1
        bitwise &= x[name].tobytes() == y[name].tobytes()
        worst = max(worst, float(np.max(np.abs(x[name].astype(np.float64) - y[name].astype(np.float64)), initial=0)))
    print(f"largest difference {worst:.3g} over {sum(v.size for v in x.values())} values ({'bitwise equal' if bitwise else 'not bitwise equal'})")
    if tol is None:
        return 0 if bitwise else 1
    return 0 if worst <= tol else 1


if __name__ == "__main__":
    sys.exit(main())
