"""Layer classes: each one a registered layer type of the library, by name and attributes.

    Layer("dense", units=256, activation="relu")    any type the library registers
    Dense(256, "relu"), Flatten(), Reshape((4, 196)), Dropout(0.2), Softmax(), ...

A layer becomes an element of the library's model description ("dense(units=256,
activation=relu)"); a layer list and its input shape become one description
("1x28x28-flatten()-dense(units=10)"), which carries the input shape where
nnb_model_create's flat input count cannot. The library checks the type, its attributes and
whether the layer takes the previous layer's output. The classes below only give the common
types Python names and signatures: adding a type to the library needs nothing here, since
Layer(type_name, ...) reaches it.
"""

import operator
import re

import numpy as np

from . import _lib
from .errors import InvalidArgumentError
from .plugins import plugin_registered

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters the description grammar gives a meaning: a string value holding one would be read
# as another element or attribute.
_GRAMMAR = set(",=():")


def _invalid(message):
    return InvalidArgumentError(message, _lib.ERR_INVALID_ARGUMENT)


def _value(layer, key, value):
    """One attribute value as the description grammar writes it: 256, 0.2, relu, 1x28x28."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer} attribute {key}={value!r}: the description grammar has no booleans; give 0 or 1")
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))  # the shortest text that reads back as the same double
    if isinstance(value, str):
        if not value or _GRAMMAR.intersection(value):
            raise _invalid(f"{layer} attribute {key}={value!r}: a name may not be empty or hold any of , = ( ) :")
        return value
    if isinstance(value, (tuple, list, np.ndarray)):
        try:
            sizes = [operator.index(v) for v in value]
        except TypeError:
            raise TypeError(f"{layer} attribute {key}={value!r}: a list of sizes holds integers only") from None
        if not sizes:
            raise _invalid(f"{layer} attribute {key}={value!r}: a list of sizes may not be empty")
        return "x".join(str(s) for s in sizes)
    raise TypeError(
        f"{layer} attribute {key}={value!r}: a value is an int, float, str or a tuple of sizes, "
        f"not {type(value).__name__}"
    )


class Layer:
    """A layer of any type the library registers, by its type name and attributes:
    Layer("dense", units=10, activation="tanh"), Layer("reshape", shape=(4, 196)).

    Attributes are ints, floats, names, or tuples of sizes (written AxB); None leaves one
    out (the library's default). Unknown types or attributes raise UnknownNameError and bad
    values InvalidArgumentError when the model is built."""

    def __init__(self, type_name, **attributes):
        if not isinstance(type_name, str) or not _NAME.fullmatch(type_name):
            raise _invalid(f"layer type {type_name!r} is not a name (letters, digits and _)")
        self.type_name = type_name
        self.attributes = {key: value for key, value in attributes.items() if value is not None}

    def _element(self):
        """This layer as an element of a model description: "dense(units=256,activation=relu)",
        "flatten()" (the parentheses make it a layer type even without attributes: a bare word
        would be read as an activation)."""
        pairs = ",".join(f"{key}={_value(self.type_name, key, value)}" for key, value in self.attributes.items())
        return f"{self.type_name}({pairs})"

    def _elements(self):
        """The description elements of this layer. The library's dense and activation types
        take built-in activation names only, so a plugin activation is written as a layer of
        its own after the layer (what "8:mish" means in a description)."""
        activation = self.attributes.get("activation")
        if not (isinstance(activation, str) and plugin_registered(activation)):
            return [self._element()]
        plugin = Layer("customactivation", name=activation)._element()
        if self.type_name.lower() == "activation":
            return [plugin]
        rest = {key: value for key, value in self.attributes.items() if key != "activation"}
        return [Layer(self.type_name, **rest)._element(), plugin]

    def __repr__(self):
        pairs = "".join(f", {key}={value!r}" for key, value in self.attributes.items())
        return f"Layer({self.type_name!r}{pairs})"


class Dense(Layer):
    """A fully connected layer with `units` outputs and an optional fused activation
    ("relu", "tanh", ... or a plugin's; `alpha` is leaky_relu's slope or elu's alpha, 0 for the
    default). (rows, ..., in) -> (rows, ..., units): it acts on the last dimension."""

    def __init__(self, units, activation=None, alpha=0.0):
        self.units, self.activation, self.alpha = int(units), activation, float(alpha)
        super().__init__("dense", units=self.units, activation=activation, alpha=self.alpha or None)


class Activation(Layer):
    """An activation on its own: "relu", "tanh", ..., a plugin's, or "softmax" and
    "log_softmax" (which are layer types of their own, Softmax and LogSoftmax)."""

    def __init__(self, name, alpha=0.0):
        self.name, self.alpha = name, float(alpha)
        if isinstance(name, str) and name.lower() in ("softmax", "log_softmax"):
            super().__init__(name.lower(), alpha=self.alpha or None)
        else:
            super().__init__("activation", activation=name, alpha=self.alpha or None)


class Dropout(Layer):
    """Inverted dropout with drop probability `rate` in [0, 1); the identity at inference."""

    def __init__(self, rate):
        self.rate = float(rate)
        super().__init__("dropout", p=self.rate)


class Flatten(Layer):
    """Flattens each sample: (rows, C, H, W) -> (rows, C*H*W)."""

    def __init__(self):
        super().__init__("flatten")


class Reshape(Layer):
    """Gives each sample the shape `shape` (one size may be -1: inferred), e.g. Reshape((1, 28, 28))."""

    def __init__(self, shape):
        self.shape = (operator.index(shape),) if np.ndim(shape) == 0 else tuple(operator.index(s) for s in shape)
        super().__init__("reshape", shape=self.shape)


class Softmax(Layer):
    """Softmax over the last dimension."""

    def __init__(self):
        super().__init__("softmax")


class LogSoftmax(Layer):
    """Log-softmax over the last dimension."""

    def __init__(self):
        super().__init__("log_softmax")


# Shorthand words that name a layer without attributes (any other word is an activation).
_WORDS = {"flatten": Flatten, "softmax": Softmax, "log_softmax": LogSoftmax}


def _layer(item):
    """A Layer from the shorthand a layer list may hold: 256 -> Dense(256);
    "256:relu" -> Dense(256, "relu"); "relu" -> Activation("relu"); "dropout:0.2" -> Dropout(0.2);
    "flatten" -> Flatten()."""
    if isinstance(item, Layer):
        return item
    if isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
        return Dense(int(item))
    if isinstance(item, str):
        head, _, tail = item.partition(":")
        if head.strip().isdigit():
            return Dense(int(head), tail or None)
        if head == "dropout":
            return Dropout(float(tail))
        word = _WORDS.get(item.lower())
        return word() if word else Activation(item)
    raise TypeError(f"a layer is a Layer (Dense, Flatten, ...), an int or a str, not {type(item).__name__}: {item!r}")


__all__ = ["Layer", "Dense", "Activation", "Dropout", "Flatten", "Reshape", "Softmax", "LogSoftmax"]


def _flag(value):
    """A bool option as the grammar's 0 / 1 (None: the library's default)."""
    return None if value is None else int(bool(value))


class Conv2D(Layer):
    """A 2-D convolution on (C, H, W) samples, as torch.nn.Conv2d: `out_channels`, a
    `kernel_size` (an int or (h, w)), stride, padding (sizes, or "same" / "valid"), dilation,
    groups, bias, and an optional fused activation. The input channels come from the input."""

    def __init__(self, out_channels, kernel_size, stride=None, padding=None, dilation=None, groups=None, bias=None,
                 activation=None, alpha=0.0):
        self.out_channels, self.kernel_size, self.activation = int(out_channels), kernel_size, activation
        super().__init__("conv2d", out_channels=self.out_channels, kernel_size=kernel_size, stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=_flag(bias), activation=activation, alpha=float(alpha) or None)


class MaxPool2D(Layer):
    """Max pooling over windows of `kernel_size` (stride: the kernel's size unless given)."""

    def __init__(self, kernel_size, stride=None, padding=None):
        super().__init__("maxpool2d", kernel_size=kernel_size, stride=stride, padding=padding)


class AvgPool2D(Layer):
    """Average pooling; count_include_pad as PyTorch's (True by default)."""

    def __init__(self, kernel_size, stride=None, padding=None, count_include_pad=None):
        super().__init__("avgpool2d", kernel_size=kernel_size, stride=stride, padding=padding,
                         count_include_pad=_flag(count_include_pad))


class GlobalAvgPool2D(Layer):
    """The mean of each channel: (C, H, W) -> (C, 1, 1), as torch.nn.AdaptiveAvgPool2d(1)."""

    def __init__(self):
        super().__init__("globalavgpool2d")


class BatchNorm1d(Layer):
    """Batch normalization of (C) or (C, L) samples, as torch.nn.BatchNorm1d."""

    def __init__(self, eps=None, momentum=None, affine=None):
        super().__init__("batchnorm1d", eps=eps, momentum=momentum, affine=_flag(affine))


class BatchNorm2d(Layer):
    """Batch normalization of (C, H, W) samples, as torch.nn.BatchNorm2d."""

    def __init__(self, eps=None, momentum=None, affine=None):
        super().__init__("batchnorm2d", eps=eps, momentum=momentum, affine=_flag(affine))


class LayerNorm(Layer):
    """Layer normalization over the trailing dimensions `normalized_shape` (default: the whole
    sample), as torch.nn.LayerNorm."""

    def __init__(self, normalized_shape=None, eps=None, elementwise_affine=None):
        shape = None if normalized_shape is None else (
            (operator.index(normalized_shape),) if np.ndim(normalized_shape) == 0 else tuple(normalized_shape))
        super().__init__("layernorm", normalized_shape=shape, eps=eps, elementwise_affine=_flag(elementwise_affine))
