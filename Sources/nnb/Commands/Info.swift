import ArgumentParser
import CKernels

/// `nnb info`: the version and what the kernels run on.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the version, the SIMD path (ISA) in use, the supported ones, threads and OpenMP.",
        discussion: "NNB_ISA=scalar|avx2|avx512|neon forces a path; OMP_NUM_THREADS sets the thread count."
    )

    func run() {
        let supported = [NNK_ISA_SCALAR, NNK_ISA_AVX2, NNK_ISA_AVX512, NNK_ISA_NEON]
            .filter { nnk_isa_supported($0) == 1 }
            .map { String(cString: nnk_isa_name($0)) }
        print("nnb \(NNB.version)")
        print("ISA: \(String(cString: nnk_isa_name(nnk_isa_active())))")
        print("supported: \(supported.joined(separator: " "))")
        print("OpenMP: \(nnk_openmp_enabled() != 0 ? "on" : "off")")
        print("threads: \(nnk_get_num_threads())")
        if let note = nnk_isa_env_note() { print("note: \(String(cString: note))") }
    }
}
