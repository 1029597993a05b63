"""One Python exception per nnb_status, each carrying the library's message.

    NNBackpropError                  every error of the library: .status (int), .message (str)
      NullArgumentError (ValueError)     NNB_ERR_NULL_ARGUMENT
      InvalidArgumentError (ValueError)  NNB_ERR_INVALID_ARGUMENT
      ShapeError (ValueError)            NNB_ERR_SHAPE_MISMATCH
      InvalidDataError (ValueError)      NNB_ERR_INVALID_DATA
      CapacityError (ValueError)         NNB_ERR_CAPACITY
      ModelFileError (OSError)           NNB_ERR_IO
        CorruptFileError                 NNB_ERR_CORRUPT_FILE
      UnsupportedError                   NNB_ERR_UNSUPPORTED
      UnknownNameError (ValueError)      NNB_ERR_UNKNOWN_NAME
      BusyError (RuntimeError)           NNB_ERR_BUSY
      VersionError                       NNB_ERR_VERSION
      NotReadyError (RuntimeError)       NNB_ERR_NOT_READY
      InternalError (RuntimeError)       NNB_ERR_INTERNAL
      DuplicateError (ValueError)        NNB_ERR_DUPLICATE (plugin registry)
      PluginError (ImportError)          NNB_ERR_PLUGIN (a plugin library that cannot be loaded)
      DivergedError (ArithmeticError)    NNB_ERR_DIVERGED (training produced NaN or infinity)
"""

from . import _lib

_STATUS_NAMES = {
    _lib.OK: "NNB_OK",
    _lib.ERR_NULL_ARGUMENT: "NNB_ERR_NULL_ARGUMENT",
    _lib.ERR_INVALID_ARGUMENT: "NNB_ERR_INVALID_ARGUMENT",
    _lib.ERR_SHAPE_MISMATCH: "NNB_ERR_SHAPE_MISMATCH",
    _lib.ERR_INVALID_DATA: "NNB_ERR_INVALID_DATA",
    _lib.ERR_CAPACITY: "NNB_ERR_CAPACITY",
    _lib.ERR_IO: "NNB_ERR_IO",
    _lib.ERR_CORRUPT_FILE: "NNB_ERR_CORRUPT_FILE",
    _lib.ERR_UNSUPPORTED: "NNB_ERR_UNSUPPORTED",
    _lib.ERR_UNKNOWN_NAME: "NNB_ERR_UNKNOWN_NAME",
    _lib.ERR_BUSY: "NNB_ERR_BUSY",
    _lib.ERR_VERSION: "NNB_ERR_VERSION",
    _lib.ERR_NOT_READY: "NNB_ERR_NOT_READY",
    _lib.ERR_INTERNAL: "NNB_ERR_INTERNAL",
    _lib.ERR_DUPLICATE: "NNB_ERR_DUPLICATE",
    _lib.ERR_PLUGIN: "NNB_ERR_PLUGIN",
    _lib.ERR_DIVERGED: "NNB_ERR_DIVERGED",
}


def status_name(status):
    """"NNB_ERR_SHAPE_MISMATCH" for 3; "status N" for a code this module does not know."""
    return _STATUS_NAMES.get(status, f"status {status}")


class NNBackpropError(Exception):
    """An error reported by libnnbackprop: `status` is the nnb_status code, `message` the
    library's own description of what was wrong."""

    status = None

    def __init__(self, message, status=None):
        if status is not None:
            self.status = status
        self.message = message
        # One argument only: OSError(a, b) would read the pair as (errno, strerror).
        super().__init__(message)

    def __str__(self):
        return self.message

    def __reduce__(self):
        return (type(self), (self.message, self.status))


class NullArgumentError(NNBackpropError, ValueError):
    status = _lib.ERR_NULL_ARGUMENT


class InvalidArgumentError(NNBackpropError, ValueError):
    status = _lib.ERR_INVALID_ARGUMENT


class ShapeError(NNBackpropError, ValueError):
    status = _lib.ERR_SHAPE_MISMATCH


class InvalidDataError(NNBackpropError, ValueError):
    status = _lib.ERR_INVALID_DATA


class CapacityError(NNBackpropError, ValueError):
    status = _lib.ERR_CAPACITY


class ModelFileError(NNBackpropError, OSError):
    status = _lib.ERR_IO


class CorruptFileError(ModelFileError):
    status = _lib.ERR_CORRUPT_FILE


class UnsupportedError(NNBackpropError):
    status = _lib.ERR_UNSUPPORTED


class UnknownNameError(NNBackpropError, ValueError):
    status = _lib.ERR_UNKNOWN_NAME


class BusyError(NNBackpropError, RuntimeError):
    status = _lib.ERR_BUSY


class VersionError(NNBackpropError):
    status = _lib.ERR_VERSION


class NotReadyError(NNBackpropError, RuntimeError):
    status = _lib.ERR_NOT_READY


class InternalError(NNBackpropError, RuntimeError):
    status = _lib.ERR_INTERNAL


class DuplicateError(NNBackpropError, ValueError):
    status = _lib.ERR_DUPLICATE


class PluginError(NNBackpropError, ImportError):
    status = _lib.ERR_PLUGIN


class DivergedError(NNBackpropError, ArithmeticError):
    """Training produced a non-finite loss or weights; the model keeps its last finite weights."""

    status = _lib.ERR_DIVERGED


_BY_STATUS = {
    cls.status: cls
    for cls in (
        NullArgumentError,
        InvalidArgumentError,
        ShapeError,
        InvalidDataError,
        CapacityError,
        ModelFileError,
        CorruptFileError,
        UnsupportedError,
        UnknownNameError,
        BusyError,
        VersionError,
        NotReadyError,
        InternalError,
        DuplicateError,
        PluginError,
        DivergedError,
    )
}


def error_for(status, message):
    """The exception for `status` (NNBackpropError for a code this module does not know)."""
    cls = _BY_STATUS.get(status, NNBackpropError)
    return cls(message, status)


def check(status):
    """Raises the exception for a failed call, with the calling thread's last error message.

    Call it right after the C call, on the same thread (the message is per thread)."""
    if status == _lib.OK:
        return
    raw = _lib.lib.nnb_last_error()
    message = raw.decode("utf-8", "replace") if raw else ""
    if not message:
        raw = _lib.lib.nnb_status_string(status)
        message = raw.decode("utf-8", "replace") if raw else status_name(status)
    raise error_for(status, message)
