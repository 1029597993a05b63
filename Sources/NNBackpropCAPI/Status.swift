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

    init(_ error: NNError) { self.init(error.status, error.message) }

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


@c(nnb_status_string)
public func nnbStatusString(_ status: nnb_status) -> UnsafePointer<CChar> {
    statusText(status)
}

@c(nnb_last_error)
public func nnbLastError() -> UnsafePointer<CChar> { lastErrorPointer() }
