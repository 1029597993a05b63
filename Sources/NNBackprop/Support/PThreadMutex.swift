#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pthread mutex as a class (Foundation's NSLock would do, but the library uses only
/// FoundationEssentials, so that libnnbackprop.so does not carry ICU).
package final class PThreadMutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    package init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    package func lock() { pthread_mutex_lock(&m) }
    package func unlock() { pthread_mutex_unlock(&m) }
}

extension PThreadMutex {
    /// Runs `body` holding the lock.
    package func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
