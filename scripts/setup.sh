#!/usr/bin/env bash
# Installs what NNBackprop's build, tests and benchmarks need, where it can:
#   libomp-dev             LLVM's OpenMP runtime (CKernels' threads)
#   zlib1g-dev             gzip for the IDX loader
#   dataset-fashion-mnist  the real data set for tests and benchmarks
#   gcc-aarch64-linux-gnu, qemu-user   the arm64 (NEON) kernel tests
#   valgrind               leak checks of the C tests
#   pkg-config             the installed C API's nnbackprop.pc
#   libopenblas-dev        the OpenBLAS GEMM example plugin
#   python3 numpy          the benchmark peer and the Python tests
#   python3-torch          optional: the PyTorch peer of the benchmarks and the test that loads a
#                          model file into PyTorch (installed separately; its failure is not fatal)
#   cmake                  optional: the CMake package config's test (find_package(nnbackprop))
#   libfann-dev            optional: the FANN import tests (networks trained and saved by FANN itself)
#   libopenmpi-dev openmpi-bin  optional: data-parallel training (NNBackpropMPI, nnb train
#                          --distributed) and its tests under mpirun; without them the build has
#                          "MPI: off" and the MPI tests skip
#   onnx onnxruntime scikit-learn (PyPI, optional): the ONNX export tests and the scikit-learn
#                          estimators' tests, which skip with a message without them
# As root with apt-get it installs what is missing; otherwise it says what is missing and
# carries on (the build falls back to one thread without libomp; tests that need a missing
# piece say so).
set -u
want=(libomp-dev zlib1g-dev dataset-fashion-mnist gcc-aarch64-linux-gnu qemu-user valgrind pkg-config libopenblas-dev python3-numpy)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# numpy from pip counts as present.
if python3 -c "import numpy" 2>/dev/null; then
  missing=("${missing[@]/python3-numpy}")
fi
missing=($(printf '%s\n' "${missing[@]}" | grep -v '^$' || true))
# Optional Python packages for the tests of the interop parts, from PyPI; a failure is not fatal.
if ! python3 -c "import onnx, onnxruntime, sklearn" 2>/dev/null; then
  python3 -m pip install -q onnx onnxruntime scikit-learn >/dev/null 2>&1 \
    || echo "setup: optional onnx, onnxruntime, scikit-learn not installed from PyPI; the tests that need them will skip" >&2
fi
# mpi4py (PyPI, optional): the MPI test's Python-alongside-mpi4py case, where Open MPI is
# installed (checked here and again after apt-get, which may have just installed it).
want_mpi4py() {
  if command -v mpicc >/dev/null 2>&1 && ! python3 -c "import mpi4py" 2>/dev/null; then
    python3 -m pip install -q mpi4py >/dev/null 2>&1 || echo "setup: optional mpi4py not installed from PyPI; its MPI test case will skip" >&2
  fi
}
want_mpi4py
optional=()
for p in python3-torch cmake libfann-dev libopenmpi-dev openmpi-bin; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || optional+=("$p")
done
if [ ${#missing[@]} -eq 0 ] && [ ${#optional[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || true
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get install -y -qq "${missing[@]}" >/dev/null \
      || echo "setup: apt-get could not install everything (${missing[*]}); continuing" >&2
  fi
  if [ ${#optional[@]} -gt 0 ]; then
    apt-get install -y -qq "${optional[@]}" >/dev/null 2>&1 \
      || echo "setup: optional ${optional[*]} not installed; the tests that need it will skip" >&2
  fi
elif [ ${#missing[@]} -gt 0 ]; then
  echo "setup: missing ${missing[*]} (run as root, or install them yourself); continuing" >&2
fi
want_mpi4py
