import ArgumentParser
import NNBackprop

/// `nnb info`: the version and what the kernels run on.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the version, the SIMD path (ISA) in use, the supported ones, threads and OpenMP.",
        discussion: "NNB_ISA=scalar|avx2|avx512|neon forces a path; OMP_NUM_THREADS sets the thread count."
    )

    func run() {
        print("nnb \(Runtime.versionString)")
        print("ISA: \(Runtime.isa)")
        print("supported: \(Runtime.supportedISAs.joined(separator: " "))")
        print("OpenMP: \(Runtime.openMPEnabled ? "on" : "off")")
        print("threads: \(Runtime.threads)")
        if let note = Runtime.isaNote { print("note: \(note)") }
    }
}
