import ArgumentParser
import CKernels

/// Checks a `--threads` value against the kernels' cap (`nnk_max_threads`), so that
/// `--threads 100000` is a usage error rather than a process that grows until it is killed.
func validateThreads(_ threads: Int?) throws {
    guard let threads else { return }
    let cap = Int(nnk_max_threads())
    guard threads >= 1 && threads <= cap else {
        throw ValidationError("--threads must be in 1...\(cap) (the most this machine allows), got \(threads)")
    }
}

/// Sets the kernels' thread count from a validated `--threads` value.
func applyThreads(_ threads: Int?) {
    if let threads { _ = nnk_set_num_threads(Int32(threads)) }
}
