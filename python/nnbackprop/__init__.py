"""nnbackprop: train and run feed-forward networks with libnnbackprop, from numpy arrays.

    import nnbackprop as nnb
    model = nnb.Model("2-8:tanh-2", seed=1)
    model.fit(x, y, epochs=500, batch_size=4, lr=0.05)
    model.predict_classes(x)

    images = nnb.Model([nnb.Flatten(), nnb.Dense(64, "relu"), nnb.Dense(10)], input_shape=(1, 28, 28))
    images.predict(x_images)                   # x_images is (rows, 1, 28, 28) or (rows, 784)

Only ctypes and numpy are needed; see _lib.py for where the library is looked for
(NNBACKPROP_LIB, next to this package, the checkout's build/lib, the system path).
"""

import ctypes

from . import _lib
from .errors import (
    BusyError,
    CapacityError,
    CorruptFileError,
    DivergedError,
    DuplicateError,
    InternalError,
    InvalidArgumentError,
    InvalidDataError,
    ModelFileError,
    NNBackpropError,
    NotReadyError,
    NullArgumentError,
    PluginError,
    ShapeError,
    UnknownNameError,
    UnsupportedError,
    VersionError,
    check,
    status_name,
)
from .layers import (
    Activation,
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    LayerNorm,
    LogSoftmax,
    MaxPool2D,
    Reshape,
    Softmax,
)
from .model import Model, ModelInfo
from .plugins import load_plugin, plugin_registered, raise_pending, register_activation, register_loss

_C = _lib.lib

ABI_VERSION = _lib.ABI_VERSION
HEADER_VERSION = f"{_lib.VERSION_MAJOR}.{_lib.VERSION_MINOR}.{_lib.VERSION_PATCH}"
__version__ = _C.nnb_version_string().decode()


def version():
    """The library's version string ("major.minor.patch")."""
    return _C.nnb_version_string().decode()


def version_number():
    """The library's NNB_VERSION_NUMBER (major * 10000 + minor * 100 + patch)."""
    return _C.nnb_version()


def abi_version():
    return _C.nnb_abi_version()


def set_num_threads(threads):
    """Sets the number of threads the kernels use (process-wide)."""
    check(_C.nnb_set_num_threads(int(threads)))


def num_threads():
    """The number of threads the kernels use."""
    return _C.nnb_get_num_threads()


def isa():
    """The SIMD path in use: "avx512", "avx2", "neon" or "scalar"."""
    return _C.nnb_isa().decode()


def openmp_enabled():
    return bool(_C.nnb_openmp_enabled())


def precision_supported(precision):
    """Whether training can run in `precision` ("fp32", or "bf16": AVX512_BF16) on this CPU."""
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a str ('fp32' or 'bf16'), got {type(precision).__name__}")
    return bool(_C.nnb_precision_supported(precision.encode()))


def status_string(status):
    """The library's description of a status code."""
    raw = _C.nnb_status_string(int(status))
    return raw.decode() if raw else status_name(status)


def library_path():
    """The path of the loaded libnnbackprop."""
    return _C._name


__all__ = [
    "Model",
    "ModelInfo",
    "Layer",
    "Dense",
    "Activation",
    "Dropout",
    "Flatten",
    "Conv2D",
    "MaxPool2D",
    "AvgPool2D",
    "GlobalAvgPool2D",
    "BatchNorm1d",
    "BatchNorm2d",
    "LayerNorm",
    "Reshape",
    "Softmax",
    "LogSoftmax",
    "version",
    "version_number",
    "abi_version",
    "set_num_threads",
    "num_threads",
    "isa",
    "openmp_enabled",
    "precision_supported",
    "status_string",
    "library_path",
    "NNBackpropError",
    "NullArgumentError",
    "InvalidArgumentError",
    "ShapeError",
    "InvalidDataError",
    "CapacityError",
    "ModelFileError",
    "CorruptFileError",
    "UnsupportedError",
    "UnknownNameError",
    "BusyError",
    "VersionError",
    "NotReadyError",
    "InternalError",
    "DuplicateError",
    "PluginError",
    "DivergedError",
]

del ctypes
