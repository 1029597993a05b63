import ArgumentParser
import NNBackprop
import NNBackpropMPI

/// `nnb info`: the version and what the kernels run on; with --model, a model's architecture.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the version, the SIMD path (ISA) in use, the supported ones, threads and OpenMP; with --model, a model's layers.",
        discussion: "NNB_ISA=scalar|avx2|avx512|neon forces a path; OMP_NUM_THREADS sets the thread count."
    )

    @Option(help: ArgumentHelp("A model file: print each layer with its output shape and parameter count (as Keras's summary()).", valueName: "file"))
    var model: String?

    func run() throws {
        print("nnb \(Runtime.versionString)")
        print("ISA: \(Runtime.isa)")
        print("supported: \(Runtime.supportedISAs.joined(separator: " "))")
        print("OpenMP: \(Runtime.openMPEnabled ? "on" : "off")")
        print("MPI: \(MPIGroup.libraryVersion.map { "on (\($0))" } ?? "off")")
        print("threads: \(Runtime.threads)")
        print("bf16 training: \(Precision.bf16.isSupported ? "yes (AVX512_BF16)" : "no (this SIMD path has no AVX512_BF16)")")
        if let note = Runtime.isaNote { print("note: \(note)") }
        guard let model else { return }
        let net: Sequential
        do { net = try Sequential.load(from: model) } catch { throw ValidationError("--model \(model): \(error.message)") }
        print("")
        print(summary(net))
    }
}

/// The model as a table: each layer's description element, output shape and parameter count.
func summary(_ model: Sequential) -> String {
    var rows = [("layer", "output shape", "parameters"), ("input", model.sampleShape.description, "")]
    for (i, (layer, shape)) in zip(model.layers, model.layerOutputShapes).enumerated() {
        rows.append(("\(i) \(layer.descriptionElement)", shape.description, grouped(layer.parameterCount)))
    }
    let w0 = rows.map(\.0.count).max()!, w1 = rows.map(\.1.count).max()!, w2 = rows.map(\.2.count).max()!
    func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: w - s.count) }
    func padLeft(_ s: String, _ w: Int) -> String { String(repeating: " ", count: w - s.count) + s }
    var lines = rows.map { pad($0.0, w0) + "  " + pad($0.1, w1) + "  " + padLeft($0.2, w2) }
    lines.insert(String(repeating: "-", count: w0 + w1 + w2 + 4), at: 1)
    lines.append("total: \(grouped(model.parameterCount)) trainable parameters, \(grouped(model.bufferCount)) buffer values")
    return lines.joined(separator: "\n")
}
