"""One process of the Python data-parallel test (scripts/test-mpi.sh runs it under mpirun):
trains a small model on fixed data through the C API's options.distributed, then writes this
process's weights to OUT/rank<R>.npz (R from Open MPI's OMPI_COMM_WORLD_RANK; 0 alone).

    train_python.py OUT [--single | --nan-on-rank1 | --mpi4py]

With --mpi4py the script imports mpi4py first (so MPI is the program's), trains on a duplicate of
COMM_WORLD passed as mpi_comm, and checks with mpi4py's allgather that every rank holds the same
weights (exit 4 otherwise).

With --nan-on-rank1 rank 1's features hold a NaN: both ranks must raise (rank 1 its own
InvalidDataError, rank 0 one naming rank 1); each prints "rank R: <error>" and exits 3.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "python"))
import nnbackprop as nnb  # noqa: E402


def main():
    out = sys.argv[1]
    single = "--single" in sys.argv
    rank = int(os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((150, 6)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] + x[:, 2] > 0).astype(np.int64)
    # Every rank builds the model with its own seed: distributed training starts from rank 0's.
    model = nnb.Model("6-16:tanh-2", seed=5 if single or rank == 0 else 50 + rank)
    options = {} if single else {"distributed": 1}
    comm = None
    if "--mpi4py" in sys.argv:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD.Dup()
        rank = comm.Get_rank()
        options["mpi_comm"] = comm
    if "--nan-on-rank1" in sys.argv and rank == 1:
        x[7, 2] = np.nan
    try:
        model.fit(x, y, epochs=8, batch_size=20, optimizer="sgd", lr=0.1, seed=11, **options)
    except nnb.NNBackpropError as error:
        print(f"rank {rank}: {type(error).__name__}: {error}", flush=True)
        sys.exit(3)
    weights = model.state_dict()
    if comm is not None:
        everyone = comm.allgather(weights)
        same = all(all(np.array_equal(w[k], everyone[0][k]) for k in w) for w in everyone)
        print(f"mpi4py rank {rank}: {comm.Get_size()} ranks hold {'the same' if same else 'different'} weights", flush=True)
        comm.Free()
        sys.exit(0 if same else 4)
    np.savez(os.path.join(out, "single.npz" if single else f"rank{rank}.npz"), **weights)


if __name__ == "__main__":
    main()
