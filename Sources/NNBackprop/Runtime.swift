import CKernels

/// The library's version and the kernel engine's run-time settings, for programs that use the
/// library without reaching into CKernels (the nnb command, the C API).
public enum Runtime {
    /// The version, "major.minor.patch": the one source of it (the C header's NNB_VERSION_*
    /// macros must agree; the C tests check them against it).
    public static let version: StaticString = "0.6.0"
    /// `version` as a String.
    public static var versionString: String { version.description }

    /// Threads the kernels use.
    public static var threads: Int { Int(nnk_get_num_threads()) }
    /// The most threads `setThreads` accepts: 256, or the machine's hardware threads when more.
    public static var maxThreads: Int { Int(nnk_max_threads()) }
    /// Sets the kernels' thread count; throws `invalidArgument` outside 1...maxThreads.
    public static func setThreads(_ n: Int) throws(NNError) {
        guard n >= 1, n <= maxThreads, nnk_set_num_threads(Int32(n)) == 0 else {
            throw .invalidArgument("threads must be in 1...\(maxThreads) (256, or the machine's hardware threads when more), got \(n)")
        }
    }

    /// The SIMD path in use: "scalar", "avx2", "avx512" or "neon".
    public static var isa: String { String(cString: nnk_isa_name(nnk_isa_active())) }
    /// The paths this CPU and OS can run.
    public static var supportedISAs: [String] {
        [NNK_ISA_SCALAR, NNK_ISA_AVX2, NNK_ISA_AVX512, NNK_ISA_NEON].filter { nnk_isa_supported($0) == 1 }
            .map { String(cString: nnk_isa_name($0)) }
    }
    /// Why NNB_ISA was not followed, when it was set and could not be.
    public static var isaNote: String? { nnk_isa_env_note().map { String(cString: $0) } }
    /// Whether the kernels were built with OpenMP.
    public static var openMPEnabled: Bool { nnk_openmp_enabled() != 0 }
}
