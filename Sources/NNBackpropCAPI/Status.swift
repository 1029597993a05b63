// Status codes and the per-thread last-error message of the C API.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CNNBackprop
import NNBackprop

/// A failure of a C API call: the status to return and the message for nnb_last_error.
struct CAPIFailure: Error {
    let status: nnb_status
    let message: String

    init(_ status: nnb_status, _ message: String) {
        self.status = status
        self.message = message
    }

    init(_ error: NNError) {
        switch error {
        case .shapeMismatch(let m): self.init(NNB_ERR_SHAPE_MISMATCH, m)
        case .invalidArgument(let m): self.init(NNB_ERR_INVALID_ARGUMENT, m)
        case .invalidData(let m): self.init(NNB_ERR_INVALID_DATA, m)
        case .fileError(let m): self.init(NNB_ERR_IO, m)
        case .corruptFile(let m): self.init(NNB_ERR_CORRUPT_FILE, m)
        case .unsupported(let m): self.init(NNB_ERR_UNSUPPORTED, m)
        case .unknownName(let m): self.init(NNB_ERR_UNKNOWN_NAME, m)
        case .duplicateName(let m): self.init(NNB_ERR_DUPLICATE, m)
        case .versionMismatch(let m): self.init(NNB_ERR_VERSION, m)
        case .pluginError(let m): self.init(NNB_ERR_PLUGIN, m)
        case .diverged(let m): self.init(NNB_ERR_DIVERGED, m)
        }
    }

    static func null(_ what: String) -> CAPIFailure { CAPIFailure(NNB_ERR_NULL_ARGUMENT, "\(what) is NULL") }
}

/// The calling thread's last error, a malloc'd C string owned by the thread-specific slot.
private let lastErrorKey: pthread_key_t = {
    var key = pthread_key_t()
    pthread_key_create(&key) { free($0) }
    return key
}()

private let emptyMessage: StaticString = ""

func setLastError(_ message: String) {
    free(pthread_getspecific(lastErrorKey))
    pthread_setspecific(lastErrorKey, strdup(message))
}

func lastErrorPointer() -> UnsafePointer<CChar> {
    guard let p = pthread_getspecific(lastErrorKey) else {
        return UnsafeRawPointer(emptyMessage.utf8Start).assumingMemoryBound(to: CChar.self)
    }
    return UnsafePointer(p.assumingMemoryBound(to: CChar.self))
}

/// Runs one C API call: NNB_OK, or the failure's status with "function: message" recorded as
/// the thread's last error.
func capiCall(_ function: StaticString, _ body: () throws -> Void) -> nnb_status {
    do {
        try body()
        return NNB_OK
    } catch let failure as CAPIFailure {
        setLastError("\(function): \(failure.message)")
        return failure.status
    } catch let failure as PluginFailure {
        setLastError("\(function): \(failure.message)")
        return failure.status
    } catch let error as NNError {
        let failure = CAPIFailure(error)
        setLastError("\(function): \(failure.message)")
        return failure.status
    } catch {
        setLastError("\(function): \(error)")
        return NNB_ERR_INTERNAL
    }
}

/// Text for each status, static for the life of the process.
private let statusStrings: [UInt32: StaticString] = [
    NNB_OK.rawValue: "NNB_OK: success",
    NNB_ERR_NULL_ARGUMENT.rawValue: "NNB_ERR_NULL_ARGUMENT: a required pointer was NULL",
    NNB_ERR_INVALID_ARGUMENT.rawValue: "NNB_ERR_INVALID_ARGUMENT: an argument is out of range",
    NNB_ERR_SHAPE_MISMATCH.rawValue: "NNB_ERR_SHAPE_MISMATCH: array sizes disagree",
    NNB_ERR_INVALID_DATA.rawValue: "NNB_ERR_INVALID_DATA: NaN, infinity or a class index out of range",
    NNB_ERR_CAPACITY.rawValue: "NNB_ERR_CAPACITY: the output buffer is too small",
    NNB_ERR_IO.rawValue: "NNB_ERR_IO: a file could not be read or written",
    NNB_ERR_CORRUPT_FILE.rawValue: "NNB_ERR_CORRUPT_FILE: the file is truncated, garbled or not a model",
    NNB_ERR_UNSUPPORTED.rawValue: "NNB_ERR_UNSUPPORTED: not supported by this build",
    NNB_ERR_UNKNOWN_NAME.rawValue: "NNB_ERR_UNKNOWN_NAME: an unknown layer, activation, loss or optimizer",
    NNB_ERR_BUSY.rawValue: "NNB_ERR_BUSY: the model is being trained by another thread",
    NNB_ERR_VERSION.rawValue: "NNB_ERR_VERSION: an options struct or file from an incompatible version",
    NNB_ERR_NOT_READY.rawValue: "NNB_ERR_NOT_READY: the model must be compiled first",
    NNB_ERR_INTERNAL.rawValue: "NNB_ERR_INTERNAL: an internal error (a bug; please report it)",
    NNB_ERR_DUPLICATE.rawValue: "NNB_ERR_DUPLICATE: a plugin with that name is registered already",
    NNB_ERR_PLUGIN.rawValue: "NNB_ERR_PLUGIN: a plugin library could not be loaded or initialised",
    NNB_ERR_DIVERGED.rawValue: "NNB_ERR_DIVERGED: training produced a non-finite loss or weights",
]

@c(nnb_status_string)
public func nnbStatusString(_ status: nnb_status) -> UnsafePointer<CChar> {
    let text: StaticString = statusStrings[status.rawValue] ?? "NNB_ERR_UNKNOWN: not a status code of this library"
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c(nnb_last_error)
public func nnbLastError() -> UnsafePointer<CChar> { lastErrorPointer() }
