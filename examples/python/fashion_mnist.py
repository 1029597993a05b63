"""Train a 784-256-128-10 network on Fashion-MNIST with nnbackprop and print its test accuracy.

    python3 examples/python/fashion_mnist.py [--epochs 10] [--data /usr/share/datasets/fashion-mnist]

Needs libnnbackprop (scripts/build-lib.sh) and numpy; the data is Debian's dataset-fashion-mnist.
The settings are those of examples/c/fashion_mnist.c: pixels scaled to [0, 1], Adam at 1e-3,
batches of 128, seed 42.
"""

import argparse
import gzip
import pathlib
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "python"))
import nnbackprop as nnb  # noqa: E402


def load_idx(path):
    """A gzip IDX file of unsigned bytes as a numpy array of its shape."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--save", type=pathlib.Path, help="write the trained model here (safetensors)")
    args = parser.parse_args()

    x_train = load_idx(args.data / "train-images-idx3-ubyte.gz").reshape(-1, 784) * np.float32(1 / 255)
    y_train = load_idx(args.data / "train-labels-idx1-ubyte.gz")
    x_test = load_idx(args.data / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) * np.float32(1 / 255)
    y_test = load_idx(args.data / "t10k-labels-idx1-ubyte.gz")
    print(
        f"Fashion-MNIST: {len(x_train)} training and {len(x_test)} test images; "
        f"nnbackprop {nnb.version()}, ISA {nnb.isa()}, {nnb.num_threads()} threads"
    )

    model = nnb.Model("784-256:relu-128:relu-10", seed=42)
    started = time.perf_counter()
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=128, optimizer="adam", lr=1e-3, seed=42,
              standardize=1, verbose=True)
    seconds = time.perf_counter() - started
    result = model.evaluate(x_test, y_test)
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  ({seconds:.1f} s training)")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
