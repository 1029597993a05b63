import ArgumentParser
import NNBackprop

/// Checks a `--threads` value against the kernels' cap (`Runtime.maxThreads`), so that
/// `--threads 100000` is a usage error rather than a process that grows until it is killed.
func validateThreads(_ threads: Int?) throws {
    guard let threads else { return }
    let cap = Runtime.maxThreads
    guard threads >= 1 && threads <= cap else {
        throw ValidationError("--threads must be in 1...\(cap) (the most this machine allows), got \(threads)")
    }
}

/// Sets the kernels' thread count from a validated `--threads` value.
func applyThreads(_ threads: Int?) {
    if let threads { try? Runtime.setThreads(threads) } // validated by validateThreads
}
