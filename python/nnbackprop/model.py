"""The Model class: a feed-forward network in libnnbackprop, driven with numpy arrays."""

import ctypes
import json
import math
import operator
import os
import struct
from collections import namedtuple

import numpy as np

from . import _lib
from .errors import InvalidArgumentError, NNBackpropError, ShapeError, check
from .layers import Activation, Dense, Dropout, _layer  # the first three: nnbackprop.model had them
from .plugins import raise_pending

_C = _lib.lib


class ModelInfo(namedtuple("ModelInfo", "inputs outputs layers parameters input_shape")):
    """What a model is: inputs (values per sample), outputs, layers, parameters (trainable
    scalars) and input_shape (the shape of one sample, a tuple: (1, 28, 28) for an image,
    (inputs,) for a feature vector, which is also the default when it is left out)."""

    __slots__ = ()

    def __new__(cls, inputs, outputs, layers, parameters, input_shape=None):
        shape = (inputs,) if input_shape is None else tuple(input_shape)
        return super().__new__(cls, inputs, outputs, layers, parameters, shape)


def _shape(input_shape):
    """input_shape (an int, or a tuple of sizes) as a tuple of positive ints."""
    try:
        if np.ndim(input_shape) == 0:
            shape = (int(input_shape),)  # as inputs= always took it: 784, np.int64(784), "784"
        else:
            shape = tuple(operator.index(n) for n in input_shape)
    except (TypeError, ValueError):
        raise TypeError(f"input_shape is an int or a tuple of ints, not {input_shape!r}") from None
    # Checked here, not left to the library: a negative size would read as a '-' between elements.
    if not shape or any(n <= 0 for n in shape):
        message = f"input_shape {input_shape!r}: one or more positive sizes, e.g. 784 or (1, 28, 28)"
        raise InvalidArgumentError(message, _lib.ERR_INVALID_ARGUMENT)
    return shape


def _floats(a, name):
    """`a` as a C-contiguous float32 array, converting (once) only when needed."""
    try:
        return np.ascontiguousarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be convertible to a float32 array: {e}") from None


def _ptr(a):
    return a.ctypes.data_as(_lib.float_p)


def _features(x, shape, name="x"):
    """x as a (rows, cols) float32 array for a model whose samples have shape `shape`.

    x is (rows, *shape), or flat (rows, cols) with cols the values per sample; x of exactly
    `shape` (or a 1-D x of cols values) is one sample; for a one-input model a 1-D x is a
    column of samples. A feature-vector model (shape (cols,)) also takes (rows, ...) of cols
    values per row (images, flattened). Any other x raises ShapeError naming both shapes.
    Returns (array, was_one_row)."""
    x = _floats(x, name)
    cols = math.prod(shape)
    if x.shape == shape or (x.ndim == 1 and x.size == cols):
        return x.reshape(1, cols), True
    if x.ndim == 1 and cols == 1:
        return x.reshape(-1, 1), False  # one feature: a 1-D x is a column of samples
    if x.ndim >= 2:
        rows, sample = x.shape[0], x.shape[1:]
        if sample == shape or sample == (cols,) or (len(shape) == 1 and math.prod(sample) == cols):
            return x.reshape(rows, cols), False
    if len(shape) == 1:
        wanted = f"(rows, {cols})"
    else:
        wanted = f"(rows, {', '.join(map(str, shape))}) or flat (rows, {cols})"
    raise ShapeError(
        f"{name} has shape {x.shape}, but the model takes samples of shape {shape}: give {name} as {wanted}",
        _lib.ERR_SHAPE_MISMATCH,
    )


def _targets(y, rows, name="y"):
    """y as a (rows, y_cols) float32 array: a 1-D y (class indices, or one target per row) is
    one column."""
    y = _floats(y, name)
    if y.ndim == 0:
        raise ShapeError(f"{name} is a scalar; expected {rows} rows", _lib.ERR_SHAPE_MISMATCH)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    elif y.ndim > 2:
        y = y.reshape(y.shape[0], -1)
    if y.shape[0] != rows:
        raise ShapeError(f"{name} has {y.shape[0]} rows but x has {rows}", _lib.ERR_SHAPE_MISMATCH)
    return y


_IncompatibleKeys = namedtuple("IncompatibleKeys", "missing_keys unexpected_keys")


def _unpickle(cls, data):
    return cls.from_bytes(data)


def _text(call, missing_ok=False):
    """A string the library writes into a caller's buffer: call(buf, capacity, needed)."""
    needed = ctypes.c_size_t(0)
    status = call(None, 0, ctypes.byref(needed))
    if missing_ok and status == _lib.ERR_NOT_READY:
        return None
    check(status)
    buf = ctypes.create_string_buffer(needed.value)
    check(call(buf, len(buf), ctypes.byref(needed)))
    return buf.value.decode()


def _safetensors(data):
    """(header dict, tensor bytes) of a safetensors blob (a model file's bytes)."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def _report_dict(r):
    return {
        "epoch": r.epoch,
        "epochs": r.epochs,
        "loss": r.loss,
        "accuracy": r.accuracy,
        "val_loss": r.val_loss,
        "val_accuracy": r.val_accuracy,
        "learning_rate": r.learning_rate,
        "seconds": r.seconds,
        "best_epoch": int(r.best_epoch),
    }


def _fmt(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4f}"


# Options of nnb_train_options that fit/compile take as keyword arguments, and their C types.
_OPTION_FIELDS = {
    "momentum": float,
    "nesterov": int,
    "weight_decay": float,
    "beta1": float,
    "beta2": float,
    "eps": float,
    "label_smoothing": float,
    "huber_delta": float,
    "schedule": str,
    "step_size": int,
    "gamma": float,
    "warmup_epochs": int,
    "clip_norm": float,
    "shuffle": int,
    "seed": int,
    "early_stopping_patience": int,
    "restore_best": int,
    "standardize": int,
    "alpha": float,
    "augment_shift": int,
    "augment_flip": int,
    "precision": str,
    "distributed": int,
    "mpi_comm": "comm",
}


def _comm_address(comm):
    """The address of an MPI_Comm: an mpi4py communicator's, or an int address; None: NULL."""
    if comm is None:
        return None
    if isinstance(comm, int) and not isinstance(comm, bool):
        return comm
    try:
        from mpi4py import MPI
    except ImportError:
        raise TypeError(f"training option 'mpi_comm' takes an mpi4py communicator or an int address, got {type(comm).__name__}") from None
    if not isinstance(comm, MPI.Comm):
        raise TypeError(f"training option 'mpi_comm' takes an mpi4py communicator or an int address, got {type(comm).__name__}")
    return MPI._addressof(comm)


def _options(epochs, batch_size, loss, optimizer, lr, validation_split, options):
    o = _lib.TrainOptions()
    _C.nnb_train_options_init_sized(ctypes.byref(o), ctypes.sizeof(o))  # the struct this module declares
    if epochs is not None:
        o.epochs = int(epochs)
    if batch_size is not None:
        o.batch_size = int(batch_size)
    if loss is not None:
        o.loss = loss.encode()
    if optimizer is not None:
        o.optimizer = optimizer.encode()
    if lr is not None:
        o.learning_rate = float(lr)
    if validation_split is not None:
        o.validation_split = float(validation_split)
    for key, value in options.items():
        kind = _OPTION_FIELDS.get(key)
        if kind is None:
            raise TypeError(f"unknown training option {key!r}; known: {', '.join(sorted(_OPTION_FIELDS))}")
        if kind == "comm":
            o.mpi_comm = _comm_address(value)
        elif kind is str:
            if value is not None and not isinstance(value, str):
                raise TypeError(f"training option {key!r} takes a str, got {type(value).__name__}")
            setattr(o, key, value.encode() if value is not None else None)
        else:
            setattr(o, key, kind(value))
    return o


class Model:
    """A feed-forward network trained by backpropagation in libnnbackprop.

    Model("784-256:relu-128:relu-10")                    the compact form: the input first
    Model("256:relu-128:relu-10", inputs=784)            the same, inputs given apart
    Model([Dense(256, "relu"), Dropout(0.2), Dense(10)], inputs=784)
    Model(["256:relu", "dropout:0.2", 10], inputs=784)   the same, in shorthand
    Model("1x28x28-flatten-256:relu-10")                 an image input: channels x height x width
    Model([Flatten(), Dense(256, "relu"), Dense(10)], input_shape=(1, 28, 28))

    `inputs` (a count) and `input_shape` (an int or a tuple of sizes) both give the shape of
    one input sample; give one of them with a layer list or a description that lacks its input.
    Weights start as PyTorch initialises them, from `seed`. Many threads may call predict and
    evaluate on one model at once (they wait while another thread trains it); training it from
    two threads at once raises BusyError.
    """

    def __init__(self, layers, inputs=None, seed=0, input_shape=None):
        self._handle = None
        if inputs is not None and input_shape is not None:
            raise TypeError("Model(...) takes inputs= or input_shape=, not both")
        given = inputs if input_shape is None else input_shape
        shape = None if given is None else _shape(given)
        if isinstance(layers, str):
            elements = [layers]
        else:
            if shape is None:
                raise TypeError("Model(layers=[...]) needs input_shape= (or inputs=, the number of features)")
            elements = [element for item in layers for element in _layer(item)._elements()]
        if shape is not None:
            elements.insert(0, "x".join(map(str, shape)))
        description = "-".join(elements)
        handle = _lib.model_p()
        check(_C.nnb_model_create_from_string(ctypes.byref(handle), description.encode(), int(seed)))
        self._adopt(handle)

    def _adopt(self, handle):
        self._handle = handle
        # A handle's shape never changes, so it is read once, for every call that checks x.
        info = self.info
        self._inputs, self._outputs, self._input_shape = info.inputs, info.outputs, info.input_shape

    @classmethod
    def _from_handle(cls, handle):
        model = cls.__new__(cls)
        model._handle = None
        model._adopt(handle)
        return model

    @classmethod
    def load(cls, path, allow_non_finite=False):
        """A model read from a file written by save() (or by NNBackprop's Swift and C APIs).
        A file with NaN or infinite weights raises InvalidDataError unless allow_non_finite."""
        handle = _lib.model_p()
        flags = _lib.LOAD_ALLOW_NONFINITE if allow_non_finite else 0
        check(_C.nnb_model_load_with_flags(ctypes.byref(handle), os.fsencode(path), flags))
        return cls._from_handle(handle)

    @classmethod
    def from_bytes(cls, data, allow_non_finite=False):
        """A model from the bytes of a model file (what to_bytes() returns, or a file's
        contents); raises as load() does."""
        data = bytes(data)
        handle = _lib.model_p()
        flags = _lib.LOAD_ALLOW_NONFINITE if allow_non_finite else 0
        check(_C.nnb_model_load_from_buffer(ctypes.byref(handle), data, len(data), flags))
        return cls._from_handle(handle)

    @classmethod
    def from_onnx(cls, path, seed=0):
        """A trainable model from an ONNX file of this library's layer kinds, as
        torch.onnx.export writes an nn.Sequential MLP or CNN (Gemm or MatMul + Add, Conv, the
        activations, Softmax, LogSoftmax, pooling, BatchNormalization, LayerNormalization,
        Flatten, Reshape, Dropout). UnsupportedError names the first node outside that subset
        and its op."""
        handle = _lib.model_p()
        check(_C.nnb_model_import_onnx(ctypes.byref(handle), os.fsencode(path), int(seed)))
        return cls._from_handle(handle)

    @classmethod
    def from_fann(cls, path, seed=0):
        """A trainable model from a FANN 2.x float network file (.net) that computes what
        fann_run does: each layer a Dense, FANN_LINEAR / FANN_SIGMOID / FANN_SIGMOID_SYMMETRIC
        with the steepness folded into the weights. UnsupportedError names what is not read
        (shortcut or sparse networks, other activations, scaling parameters)."""
        handle = _lib.model_p()
        check(_C.nnb_model_import_fann(ctypes.byref(handle), os.fsencode(path), int(seed)))
        return cls._from_handle(handle)

    def to_bytes(self, checkpoint=False):
        """The bytes save(path, checkpoint) would write, as a bytes object."""
        flags = _lib.SAVE_CHECKPOINT if checkpoint else 0
        needed = ctypes.c_size_t(0)
        check(_C.nnb_model_save_to_buffer(self._h, flags, None, 0, ctypes.byref(needed)))
        buf = ctypes.create_string_buffer(needed.value)
        check(_C.nnb_model_save_to_buffer(self._h, flags, buf, len(buf), ctypes.byref(needed)))
        return buf.raw[: needed.value]

    # -- lifetime ---------------------------------------------------------------------------

    def close(self):
        """Frees the model now (it is freed anyway when garbage-collected)."""
        handle, self._handle = self._handle, None
        if handle:
            _C.nnb_model_free(handle)

    def __del__(self):
        # At interpreter exit the module globals may be gone already.
        if getattr(self, "_handle", None) and _C is not None:
            self.close()

    def __copy__(self):
        """An independent model with the same layers, weights, scaler, loss and class names
        (through its model file's bytes, in memory). Training options set by compile() are not
        copied. A copy never shares the C handle, so freeing or training one leaves the other
        as it was."""
        return type(self).from_bytes(self.to_bytes())

    def __deepcopy__(self, memo):
        return self.__copy__()

    def __reduce__(self):
        # Pickled as its model file's bytes (the architecture, weights, scaler, loss and class
        # names; not a compile() state or a checkpoint): the file format is the stable form.
        return (_unpickle, (type(self), self.to_bytes()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    @property
    def _h(self):
        if not self._handle:
            raise ValueError("the model is closed")
        return self._handle

    # -- shape ------------------------------------------------------------------------------

    @property
    def info(self):
        """ModelInfo(inputs, outputs, layers, parameters, input_shape)."""
        info = _lib.ModelInfo()
        info.struct_size = ctypes.sizeof(info)
        check(_C.nnb_model_get_info(self._h, ctypes.byref(info)))
        rank = info.input_rank  # at most 8: the library refuses longer shapes
        shape = tuple(info.input_shape[:rank]) if rank > 0 else None  # 0: a library before 0.2
        return ModelInfo(info.inputs, info.outputs, info.layers, info.parameters, shape)

    @property
    def inputs(self):
        """Values per input sample (the product of input_shape)."""
        return self._inputs

    @property
    def input_shape(self):
        """The shape of one input sample: (1, 28, 28) for an image, (inputs,) for features."""
        return self._input_shape

    @property
    def outputs(self):
        return self._outputs

    def describe(self):
        """The compact description ("784-256:relu-128:relu-10") that Model(...) takes."""
        needed = ctypes.c_size_t(0)
        buf = ctypes.create_string_buffer(256)
        status = _C.nnb_model_describe(self._h, buf, len(buf), ctypes.byref(needed))
        if status == _lib.ERR_CAPACITY and needed.value > len(buf):
            buf = ctypes.create_string_buffer(needed.value)
            status = _C.nnb_model_describe(self._h, buf, len(buf), ctypes.byref(needed))
        check(status)
        return buf.value.decode()

    @property
    def loss(self):
        """The name of the loss the model was last trained with ("cross_entropy", "bce", ...),
        kept in its file; None when it has none (never trained, or an older file)."""
        text = _text(lambda buf, cap, needed: _C.nnb_model_get_loss(self._h, buf, cap, needed), missing_ok=True)
        return text

    @property
    def classes(self):
        """The class names (a numpy array of str, index i naming output i; two for a one-output
        bce model), kept in the model file; None when classes are known by index only.
        fit() with string labels sets them; so does assigning a list (None removes them)."""
        count = ctypes.c_size_t(0)
        check(_C.nnb_model_class_count(self._h, ctypes.byref(count)))
        if count.value == 0:
            return None
        names = [
            _text(lambda buf, cap, needed, i=i: _C.nnb_model_get_class_name(self._h, i, buf, cap, needed))
            for i in range(count.value)
        ]
        return np.array(names, dtype=str)

    @classes.setter
    def classes(self, names):
        if names is None:
            check(_C.nnb_model_set_class_names(self._h, None, 0))
            return
        names = [str(n) for n in names]
        array = (ctypes.c_char_p * len(names))(*[n.encode() for n in names])
        check(_C.nnb_model_set_class_names(self._h, array, len(names)))

    def _labels_to_indices(self, y, learn=True):
        """y's labels as class indices: string (or object) labels map through the model's class
        names, which the first training call with them sets (sorted, as numpy.unique gives
        them)."""
        y = np.asarray(y)
        if y.dtype.kind not in "USO":
            return y
        if y.ndim != 1:
            raise ShapeError(f"string labels must be one per row (1-D), got shape {y.shape}", _lib.ERR_SHAPE_MISMATCH)
        labels = y.astype(str)
        classes = self.classes
        if classes is None:
            if not learn:
                raise InvalidArgumentError(
                    "y holds string labels but the model has no class names (train it on them first, or set classes)",
                    _lib.ERR_INVALID_ARGUMENT,
                )
            classes = np.unique(labels)
            self.classes = classes  # raises ShapeError when their count is not the outputs'
        index = {str(name): i for i, name in enumerate(classes)}
        unknown = sorted(set(labels.tolist()) - set(index))
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise InvalidArgumentError(
                f"labels {shown} are not among the model's classes ({', '.join(repr(str(c)) for c in classes)})",
                _lib.ERR_INVALID_ARGUMENT,
            )
        return np.array([index[name] for name in labels.tolist()], dtype=np.float32)

    def state_dict(self):
        """The weights and buffers as a dict of float32 numpy arrays (copies), named and shaped
        as the equivalent PyTorch nn.Sequential's state dict, in its order: what
        torch_model.load_state_dict({k: torch.from_numpy(v) ...}, strict=True) takes. The scaler
        is not in it (see save())."""
        header, data = _safetensors(self.to_bytes())
        out = {}
        for name, entry in header.items():
            if name == "__metadata__":
                continue
            begin, end = entry["data_offsets"]
            out[name] = np.frombuffer(data[begin:end], dtype="<f4").reshape(entry["shape"]).astype(np.float32)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Sets the weights and buffers from a dict of arrays named as state_dict() names them
        (numpy arrays, PyTorch tensors or anything numpy takes). With strict, a missing or
        unexpected name raises KeyError naming it; a wrong shape always raises ShapeError.
        Returns (missing_keys, unexpected_keys) as PyTorch does. The model keeps its layers,
        scaler, loss and class names; a compile() state is dropped (call compile() again)."""
        header, data = _safetensors(self.to_bytes())
        names = [n for n in header if n != "__metadata__"]
        missing = [n for n in names if n not in state_dict]
        unexpected = [k for k in state_dict if k not in header or k == "__metadata__"]
        if strict and (missing or unexpected):
            raise KeyError(
                f"load_state_dict(strict=True): missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
            )
        blobs = []
        for name in names:
            entry = header[name]
            begin, end = entry["data_offsets"]
            if name in state_dict:
                value = state_dict[name]
                if hasattr(value, "detach"):  # a torch tensor
                    value = value.detach().cpu().numpy()
                value = np.asarray(value, dtype="<f4")
                if tuple(value.shape) != tuple(entry["shape"]):
                    raise ShapeError(
                        f"state_dict[{name!r}] has shape {tuple(value.shape)}, the model's is {tuple(entry['shape'])}",
                        _lib.ERR_SHAPE_MISMATCH,
                    )
                blob = np.ascontiguousarray(value).tobytes()
            else:
                blob = data[begin:end]
            entry = dict(entry, data_offsets=[0, 0])
            header[name] = entry
            blobs.append((name, blob))
        offset = 0
        for name, blob in blobs:
            header[name]["data_offsets"] = [offset, offset + len(blob)]
            offset += len(blob)
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        replacement = type(self).from_bytes(struct.pack("<Q", len(text)) + text + b"".join(b for _, b in blobs))
        old, self._handle = self._handle, replacement._handle
        replacement._handle = None
        _C.nnb_model_free(old)
        return _IncompatibleKeys(missing, unexpected)

    def __repr__(self):
        if not self._handle:
            return "<nnbackprop.Model (closed)>"
        return f"<nnbackprop.Model {self.describe()!r}, {self.info.parameters} parameters>"

    # -- training ---------------------------------------------------------------------------

    def fit(
        self,
        x,
        y,
        epochs=10,
        batch_size=32,
        loss="cross_entropy",
        optimizer="adam",
        lr=1e-3,
        validation_split=0.0,
        callback=None,
        verbose=False,
        resume=False,
        **options,
    ):
        """Trains on (x, y) and returns the history: one dict per epoch run (epoch, epochs, loss,
        accuracy, val_loss, val_accuracy, learning_rate, seconds, best_epoch). best_epoch is an
        int: with early stopping, the 1-based epoch whose weights the model kept (restore_best)
        or that was best, else 0. The history's last dict always has it; the earlier ones, and
        the dicts callback sees, have what the library reported after that epoch.

        x is (rows, *input_shape) or flat (rows, inputs), as predict takes it. y holds class
        indices (1-D, or one column) or one-hot/soft rows for cross_entropy, else (rows,
        outputs) targets.
        validation_split holds out that fraction of the last rows. callback(report_dict) runs
        after every epoch; returning True stops training. An exception raised in it stops
        training and is re-raised here. Other keyword options: momentum, nesterov,
        weight_decay, beta1, beta2, eps, label_smoothing, huber_delta, schedule, step_size,
        gamma, warmup_epochs, clip_norm, shuffle, seed, early_stopping_patience, restore_best,
        standardize (fit a per-feature standardizer on the training rows; the model keeps it),
        alpha (rmsprop's smoothing constant), precision ("fp32" or "bf16": the arithmetic of
        the Dense and Conv2D products in training, see precision_supported), augment_shift and augment_flip (for image
        models: move each training sample by up to that many pixels, mirror it left to right
        with probability 1/2; seeded, never the validation rows). An option the chosen optimizer, loss or schedule
        does not use raises InvalidArgumentError rather than being ignored.

        resume=True continues the checkpoint this model was loaded from (save(path,
        checkpoint=True), then Model.load(path)): its optimizer state and data order, from the
        epoch after the ones it had done. `epochs` is then the total wanted, counting the epochs
        done before the checkpoint, and every other argument must be what the first run used
        (the library refuses another optimizer, seed, batch size or shuffle setting); the result
        is bitwise the uninterrupted run's, and the history holds only the epochs run now. A
        model not loaded from a checkpoint, or one whose checkpoint a call already used (a
        resume or any other training; a refused call leaves it), raises NotReadyError; another
        optimizer than the checkpoint's raises ShapeError; another seed or batch size
        InvalidArgumentError.
        """
        x, _ = _features(x, self._input_shape)
        y = _targets(self._labels_to_indices(y), x.shape[0])
        opts = _options(epochs, batch_size, loss, optimizer, lr, validation_split, options)
        opts.resume = int(resume)  # the library refuses anything but 0 and 1
        history = []
        raised = []

        def on_epoch(report_p, _user_data):
            # Nothing may propagate into C: any exception is kept and re-raised after nnb_train.
            try:
                report = _report_dict(report_p.contents)
                history.append(report)
                if verbose:
                    print(
                        f"epoch {report['epoch']}/{report['epochs']}  loss {_fmt(report['loss'])}"
                        f"  accuracy {_fmt(report['accuracy'])}  val_loss {_fmt(report['val_loss'])}"
                        f"  val_accuracy {_fmt(report['val_accuracy'])}  {report['seconds']:.2f} s",
                        flush=True,
                    )
                if callback is not None and callback(dict(report)):
                    return 1
                return 0
            except BaseException as e:  # noqa: B036 - KeyboardInterrupt too must not cross into C
                raised.append(e)
                return 1

        c_callback = _lib.EPOCH_CALLBACK(on_epoch)  # referenced until nnb_train returns
        opts.on_epoch = c_callback
        last = _lib.EpochReport()
        last.struct_size = ctypes.sizeof(last)
        status = _C.nnb_train(
            self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(opts), ctypes.byref(last)
        )
        del c_callback
        if raised:
            raise raised[0]
        raise_pending()
        check(status)
        if history:
            # nnb_train's own last report is the one that knows the outcome of early stopping.
            history[-1]["best_epoch"] = int(last.best_epoch)
        return history

    def compile(self, loss="cross_entropy", optimizer="adam", lr=1e-3, batch_size=32, **options):
        """Sets loss and optimizer for train_batch / train_epoch (a new optimizer state)."""
        opts = _options(None, batch_size, loss, optimizer, lr, None, options)
        check(_C.nnb_compile(self._h, ctypes.byref(opts)))
        return self

    def train_batch(self, x, y):
        """One optimizer step on (x, y); returns the batch's mean loss. Needs compile()."""
        x, _ = _features(x, self._input_shape)
        y = _targets(self._labels_to_indices(y), x.shape[0])
        loss = ctypes.c_double(math.nan)
        check(_C.nnb_train_batch(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(loss)))
        return loss.value

    def train_epoch(self, x, y):
        """One epoch over (x, y) in compiled-size mini-batches; returns the epoch's report dict."""
        x, _ = _features(x, self._input_shape)
        y = _targets(self._labels_to_indices(y), x.shape[0])
        report = _lib.EpochReport()
        report.struct_size = ctypes.sizeof(report)
        check(_C.nnb_train_epoch(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(y), y.shape[1], ctypes.byref(report)))
        return _report_dict(report)

    # -- inference --------------------------------------------------------------------------

    def predict(self, x):
        """The raw outputs (logits for classifiers), (rows, outputs) float32.

        x is (rows, *input_shape), e.g. (rows, 1, 28, 28), or flat (rows, inputs); x of exactly
        input_shape (or 1-D with `inputs` values) is one sample and gives a 1-D result. A model
        of feature vectors also takes (rows, ...) with `inputs` values a row (images, flattened).
        Any other x raises ShapeError before the library sees it."""
        x, one = _features(x, self._input_shape)
        out = np.empty((x.shape[0], self.outputs), dtype=np.float32)
        check(_C.nnb_predict(self._h, _ptr(x), x.shape[0], x.shape[1], _ptr(out), out.size))
        raise_pending()
        return out[0] if one else out

    def predict_classes(self, x):
        """Class indices: the argmax of the outputs, or for one output (a bce logit) 1 where it
        is positive; the class names instead when the model has them (see classes)."""
        out = self.predict(x)
        if out.shape[-1] == 1:
            index = (out[..., 0] > 0).astype(np.int64)
        else:
            index = np.argmax(out, axis=-1)
        classes = self.classes
        return index if classes is None else classes[index]

    def predict_proba(self, x):
        """Probabilities: softmax of the outputs; sigmoid of each output for a model trained
        with bce (each is the probability of its label) or with one output."""
        out = self.predict(x).astype(np.float64)
        if out.shape[-1] == 1 or self.loss == "bce":
            return 1.0 / (1.0 + np.exp(-out))
        out = out - out.max(axis=-1, keepdims=True)
        e = np.exp(out)
        return e / e.sum(axis=-1, keepdims=True)

    def evaluate(self, x, y, loss=None):
        """{"loss": mean loss, "accuracy": accuracy (NaN for regression losses)} on (x, y) under
        `loss` (None: the compiled loss, else the one the model was trained with (its file
        keeps it), else cross_entropy). y may hold class names (see classes)."""
        x, _ = _features(x, self._input_shape)
        y = _targets(self._labels_to_indices(y, learn=False), x.shape[0])
        value, accuracy = ctypes.c_double(math.nan), ctypes.c_double(math.nan)
        check(
            _C.nnb_evaluate(
                self._h,
                _ptr(x),
                x.shape[0],
                x.shape[1],
                _ptr(y),
                y.shape[1],
                loss.encode() if loss is not None else None,
                ctypes.byref(value),
                ctypes.byref(accuracy),
            )
        )
        raise_pending()
        return {"loss": value.value, "accuracy": accuracy.value}

    # -- int8 inference ---------------------------------------------------------------------

    def quantize_int8(self, x, rows=1000):
        """Post-training int8 quantization: every top-level Dense layer runs in int8 from now on
        (weights per output channel, each layer's input calibrated on the first `rows` rows of
        x, as the model sees them), with fp32 bias and activation; predict, evaluate and save
        use it. The fp32 weights are kept (remove_quantization). fit raises UnsupportedError
        on a quantized model."""
        if isinstance(rows, bool) or not isinstance(rows, int):
            raise TypeError(f"rows must be an int, got {type(rows).__name__}")
        if rows < 1:
            raise ValueError(f"rows must be at least 1, got {rows}")
        x, _ = _features(x, self._input_shape)
        check(_C.nnb_model_quantize_int8(self._h, _ptr(x), x.shape[0], x.shape[1], rows))

    def remove_quantization(self):
        """Back to fp32 inference (the fp32 weights were kept)."""
        check(_C.nnb_model_remove_quantization(self._h))

    @property
    def is_quantized(self):
        """Whether inference runs int8 layers (quantize_int8, or a quantized file)."""
        return bool(_C.nnb_model_is_quantized(self._h))

    # -- files ------------------------------------------------------------------------------

    def export_onnx(self, path):
        """Writes the model (and its scaler) as an ONNX model for ONNX Runtime: opset 17,
        float32, input "input" (N, *input_shape), output "output" (N, outputs), N dynamic; the
        class names, if any, in its metadata_props. UnsupportedError names a layer that has
        no ONNX form (a plugin activation, tied weights)."""
        check(_C.nnb_model_export_onnx(self._h, os.fsencode(path)))

    def save(self, path, checkpoint=False):
        """Writes the model (a safetensors file that PyTorch's load_state_dict reads too).

        checkpoint=True also writes what fit(..., resume=True) needs to continue training
        bitwise as if never interrupted: the optimizer of the last fit() or compile() (its
        state and step count), the epochs done, the data-order seed and dropout's random state.
        It raises NotReadyError before any fit() or compile(). The file still loads as a model
        (its "optimizer.*" tensors are extra keys to PyTorch)."""
        save = _C.nnb_model_save_checkpoint if checkpoint else _C.nnb_model_save
        check(save(self._h, os.fsencode(path)))


__all__ = ["Model", "ModelInfo", "Dense", "Activation", "Dropout", "NNBackpropError"]
