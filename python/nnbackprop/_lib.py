"""Loads libnnbackprop.so and declares every call of include/nnbackprop.h for ctypes.

The structs and prototypes here mirror the header field for field; ABI_VERSION and VERSION
mirror its macros, and loading fails unless the library reports the same ABI version.

Where the library is looked for, in order:
  1. the environment variable NNBACKPROP_LIB (a path to the .so),
  2. next to this module (python/nnbackprop/libnnbackprop.so),
  3. the build folder of the checkout this module lives in (build/lib/libnnbackprop.so),
  4. the system's search path (ctypes.util.find_library("nnbackprop")).
"""

import ctypes
import ctypes.util
import os
import sys
import warnings

# Mirrors of the header's macros.
VERSION_MAJOR, VERSION_MINOR, VERSION_PATCH = 0, 6, 0
VERSION_NUMBER = VERSION_MAJOR * 10000 + VERSION_MINOR * 100 + VERSION_PATCH
ABI_VERSION = 1

# nnb_status
OK = 0
ERR_NULL_ARGUMENT = 1
ERR_INVALID_ARGUMENT = 2
ERR_SHAPE_MISMATCH = 3
ERR_INVALID_DATA = 4
ERR_CAPACITY = 5
ERR_IO = 6
ERR_CORRUPT_FILE = 7
ERR_UNSUPPORTED = 8
ERR_UNKNOWN_NAME = 9
ERR_BUSY = 10
ERR_VERSION = 11
ERR_NOT_READY = 12
ERR_INTERNAL = 13
ERR_DUPLICATE = 14  # plugin registry (include/nnbackprop_plugin.h)
ERR_PLUGIN = 15
ERR_DIVERGED = 16
LOAD_ALLOW_NONFINITE = 1
SAVE_CHECKPOINT = 1

# nnb_layer_type
LAYER_DENSE = 1
LAYER_ACTIVATION = 2
LAYER_DROPOUT = 3
LAYER_NAMED = 4

status_t = ctypes.c_int  # nnb_status is a C enum: an int on every ABI this runs on
size_t = ctypes.c_size_t
float_p = ctypes.POINTER(ctypes.c_float)
double_p = ctypes.POINTER(ctypes.c_double)


class ModelHandle(ctypes.Structure):
    """The opaque struct nnb_model (only pointers to it are used)."""


model_p = ctypes.POINTER(ModelHandle)


class LayerSpec(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("type", ctypes.c_int),
        ("units", ctypes.c_int64),
        ("activation", ctypes.c_char_p),
        ("alpha", ctypes.c_float),
        ("rate", ctypes.c_float),
        ("type_name", ctypes.c_char_p),
        ("attributes", ctypes.c_char_p),
    ]


class ModelInfo(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("inputs", ctypes.c_int64),
        ("outputs", ctypes.c_int64),
        ("layers", ctypes.c_int64),
        ("parameters", ctypes.c_int64),
        ("input_rank", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
        ("input_shape", ctypes.c_int64 * 8),
    ]


class EpochReport(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("epoch", ctypes.c_int32),
        ("epochs", ctypes.c_int32),
        ("loss", ctypes.c_double),
        ("accuracy", ctypes.c_double),
        ("val_loss", ctypes.c_double),
        ("val_accuracy", ctypes.c_double),
        ("learning_rate", ctypes.c_double),
        ("seconds", ctypes.c_double),
        ("best_epoch", ctypes.c_int32),
        ("reserved", ctypes.c_int32),
    ]


EPOCH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(EpochReport), ctypes.c_void_p)


class TrainOptions(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("epochs", ctypes.c_int32),
        ("batch_size", ctypes.c_int32),
        ("loss", ctypes.c_char_p),
        ("optimizer", ctypes.c_char_p),
        ("learning_rate", ctypes.c_float),
        ("momentum", ctypes.c_float),
        ("nesterov", ctypes.c_int32),
        ("weight_decay", ctypes.c_float),
        ("beta1", ctypes.c_float),
        ("beta2", ctypes.c_float),
        ("eps", ctypes.c_float),
        ("label_smoothing", ctypes.c_float),
        ("huber_delta", ctypes.c_float),
        ("schedule", ctypes.c_char_p),
        ("step_size", ctypes.c_int32),
        ("gamma", ctypes.c_float),
        ("warmup_epochs", ctypes.c_int32),
        ("clip_norm", ctypes.c_float),
        ("validation_split", ctypes.c_float),
        ("shuffle", ctypes.c_int32),
        ("seed", ctypes.c_uint64),
        ("early_stopping_patience", ctypes.c_int32),
        ("restore_best", ctypes.c_int32),
        ("on_epoch", EPOCH_CALLBACK),
        ("user_data", ctypes.c_void_p),
        ("standardize", ctypes.c_int32),
        ("alpha", ctypes.c_float),
        ("resume", ctypes.c_int32),
        ("augment_shift", ctypes.c_int32),
        ("augment_flip", ctypes.c_int32),
        ("precision", ctypes.c_char_p),
        ("distributed", ctypes.c_int32),
        ("mpi_comm", ctypes.c_void_p),
    ]


# include/nnbackprop_plugin.h
PLUGIN_ABI_VERSION = 1
ACT_FORWARD = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float), size_t)
ACT_BACKWARD = ctypes.CFUNCTYPE(
    None,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_float),
    ctypes.POINTER(ctypes.c_float),
    ctypes.POINTER(ctypes.c_float),
    ctypes.POINTER(ctypes.c_float),
    size_t,
)
LOSS_FN = ctypes.CFUNCTYPE(
    ctypes.c_float,
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_float),
    ctypes.POINTER(ctypes.c_float),
    ctypes.POINTER(ctypes.c_float),
    size_t,
    size_t,
)


class ActivationPlugin(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("abi_version", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("forward", ACT_FORWARD),
        ("backward", ACT_BACKWARD),
        ("ctx", ctypes.c_void_p),
    ]


class LossPlugin(ctypes.Structure):
    _fields_ = [
        ("struct_size", ctypes.c_uint32),
        ("abi_version", ctypes.c_uint32),
        ("name", ctypes.c_char_p),
        ("loss", LOSS_FN),
        ("ctx", ctypes.c_void_p),
    ]


# name: (restype, argtypes)
PROTOTYPES = {
    "nnb_version": (ctypes.c_int, []),
    "nnb_abi_version": (ctypes.c_int, []),
    "nnb_version_string": (ctypes.c_char_p, []),
    "nnb_status_string": (ctypes.c_char_p, [status_t]),
    "nnb_last_error": (ctypes.c_char_p, []),
    "nnb_set_num_threads": (status_t, [ctypes.c_int]),
    "nnb_get_num_threads": (ctypes.c_int, []),
    "nnb_isa": (ctypes.c_char_p, []),
    "nnb_openmp_enabled": (ctypes.c_int, []),
    "nnb_precision_supported": (ctypes.c_int, [ctypes.c_char_p]),
    "nnb_layer_spec_init_sized": (None, [ctypes.POINTER(LayerSpec), ctypes.c_size_t]),
    "nnb_model_create": (
        status_t,
        [ctypes.POINTER(model_p), ctypes.c_int64, ctypes.POINTER(LayerSpec), size_t, ctypes.c_uint64],
    ),
    "nnb_model_create_from_string": (status_t, [ctypes.POINTER(model_p), ctypes.c_char_p, ctypes.c_uint64]),
    "nnb_model_free": (None, [model_p]),
    "nnb_model_get_info": (status_t, [model_p, ctypes.POINTER(ModelInfo)]),
    "nnb_model_describe": (status_t, [model_p, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)]),
    "nnb_train_options_init_sized": (None, [ctypes.POINTER(TrainOptions), ctypes.c_size_t]),
    "nnb_train": (
        status_t,
        [model_p, float_p, size_t, size_t, float_p, size_t, ctypes.POINTER(TrainOptions), ctypes.POINTER(EpochReport)],
    ),
    "nnb_compile": (status_t, [model_p, ctypes.POINTER(TrainOptions)]),
    "nnb_train_batch": (status_t, [model_p, float_p, size_t, size_t, float_p, size_t, double_p]),
    "nnb_train_epoch": (status_t, [model_p, float_p, size_t, size_t, float_p, size_t, ctypes.POINTER(EpochReport)]),
    "nnb_predict": (status_t, [model_p, float_p, size_t, size_t, float_p, size_t]),
    "nnb_evaluate": (
        status_t,
        [model_p, float_p, size_t, size_t, float_p, size_t, ctypes.c_char_p, double_p, double_p],
    ),
    "nnb_model_save": (status_t, [model_p, ctypes.c_char_p]),
    "nnb_model_save_checkpoint": (status_t, [model_p, ctypes.c_char_p]),
    "nnb_model_load": (status_t, [ctypes.POINTER(model_p), ctypes.c_char_p]),
    "nnb_model_load_with_flags": (status_t, [ctypes.POINTER(model_p), ctypes.c_char_p, ctypes.c_uint32]),
    "nnb_model_export_onnx": (status_t, [model_p, ctypes.c_char_p]),
    "nnb_model_import_onnx": (status_t, [ctypes.POINTER(model_p), ctypes.c_char_p, ctypes.c_uint64]),
    "nnb_model_import_fann": (status_t, [ctypes.POINTER(model_p), ctypes.c_char_p, ctypes.c_uint64]),
    "nnb_model_save_to_buffer": (status_t, [model_p, ctypes.c_uint32, ctypes.c_void_p, size_t, ctypes.POINTER(size_t)]),
    "nnb_model_load_from_buffer": (status_t, [ctypes.POINTER(model_p), ctypes.c_void_p, size_t, ctypes.c_uint32]),
    "nnb_model_get_loss": (status_t, [model_p, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)]),
    "nnb_model_set_class_names": (status_t, [model_p, ctypes.POINTER(ctypes.c_char_p), size_t]),
    "nnb_model_quantize_int8": (status_t, [model_p, float_p, size_t, size_t, size_t]),
    "nnb_model_remove_quantization": (status_t, [model_p]),
    "nnb_model_is_quantized": (ctypes.c_int, [model_p]),
    "nnb_model_class_count": (status_t, [model_p, ctypes.POINTER(size_t)]),
    "nnb_model_get_class_name": (status_t, [model_p, size_t, ctypes.c_char_p, size_t, ctypes.POINTER(size_t)]),
    "nnb_register_activation": (status_t, [ctypes.POINTER(ActivationPlugin)]),
    "nnb_register_loss": (status_t, [ctypes.POINTER(LossPlugin)]),
    "nnb_plugin_registered": (ctypes.c_int, [ctypes.c_char_p]),
    "nnb_plugin_load": (status_t, [ctypes.c_char_p]),
}


def _candidates():
    """The paths to try, in order, each with where it came from."""
    env = os.environ.get("NNBACKPROP_LIB")
    if env:
        yield env, "NNBACKPROP_LIB"
        return  # an explicit choice is not second-guessed
    here = os.path.dirname(os.path.abspath(__file__))
    names = ["libnnbackprop.dylib"] if sys.platform == "darwin" else ["libnnbackprop.so"]
    for name in names:
        yield os.path.join(here, name), "next to the module"
    for name in names:
        yield os.path.normpath(os.path.join(here, "..", "..", "build", "lib", name)), "the checkout's build folder"
    found = ctypes.util.find_library("nnbackprop")
    if found:
        yield found, "the system search path"


def load():
    """The loaded library, with every prototype declared and the ABI version checked."""
    tried = []
    lib = None
    for path, origin in _candidates():
        is_path = os.sep in path
        if is_path and not os.path.exists(path):
            tried.append(f"{path} ({origin}: not there)")
            continue
        try:
            lib = ctypes.CDLL(path)
            break
        except OSError as e:
            tried.append(f"{path} ({origin}: {e})")
    if lib is None:
        raise ImportError(
            "nnbackprop: cannot find libnnbackprop. Build it with scripts/build-lib.sh or set NNBACKPROP_LIB "
            "to its path. Tried: " + "; ".join(tried or ["nothing (find_library found no nnbackprop)"])
        )
    missing = []
    for name, (restype, argtypes) in PROTOTYPES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = restype
        fn.argtypes = argtypes
    if missing:
        raise ImportError(f"nnbackprop: {lib._name} lacks {', '.join(missing)}; it is not a matching libnnbackprop")
    abi = lib.nnb_abi_version()
    if abi != ABI_VERSION:
        raise ImportError(
            f"nnbackprop: {lib._name} has ABI version {abi}, this module was written for ABI version {ABI_VERSION}"
        )
    if lib.nnb_version() != VERSION_NUMBER:
        warnings.warn(
            f"nnbackprop: {lib._name} is version {lib.nnb_version_string().decode()}, this module was written for "
            f"{VERSION_MAJOR}.{VERSION_MINOR}.{VERSION_PATCH} (same ABI {ABI_VERSION}, so it should work)",
            stacklevel=2,
        )
    return lib


lib = load()
