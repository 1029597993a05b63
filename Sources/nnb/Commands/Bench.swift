import ArgumentParser
import Foundation
import NNBackprop

/// `nnb bench`: training throughput of the 784-256-128-10 ReLU network on Fashion-MNIST,
/// beside a numpy MLP and PyTorch run by the same command on the same data and thread count.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training throughput (samples/s) beside numpy and PyTorch peers.",
        discussion: """
            Trains the 784-256-128-10 ReLU network with softmax cross-entropy for one epoch over \
            the first --samples Fashion-MNIST training images (random data when the data set is \
            not installed), for each optimizer and batch size, and prints the median samples per \
            second of --repeats epochs. Each configuration then runs a plain numpy MLP (python3 \
            with numpy) and PyTorch (the first of python3, /usr/bin/python3 that imports torch; \
            NNB_PYTHON names another interpreter) with the same thread count. OpenBLAS's \
            OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are cleared for the peers and PyTorch runs with \
            OMP_WAIT_POLICY=passive.

            --cnn benchmarks convolutional networks instead: the README's small CNN and LeNet-5 \
            (adam, batch sizes 32 and 128 by default) beside PyTorch and JAX (the first \
            interpreter that imports jax), then each convolution's forward and backward GFLOP/s \
            against the measured FMA peak, one-image prediction latency, and the peak resident \
            memory of a one-epoch `nnb train` of the CNN beside the peers'.
            """
    )

    @Option(parsing: .unconditional, help: "Training samples per epoch (at most 60000).")
    var samples: Int = 60000

    @Option(parsing: .unconditional, help: "Threads for nnb and for each peer.")
    var threads: Int = 2

    @Option(parsing: .unconditional, help: "Timed epochs per configuration (the median is reported).")
    var repeats: Int = 3

    @Option(help: ArgumentHelp("Batch sizes, comma-separated (default 32,128,256; with --cnn 32,128).", valueName: "sizes"))
    var batchSizes: String?

    @Option(help: ArgumentHelp("Optimizers, comma-separated: sgd (lr 0.01), adam (lr 0.001). Default: both; --cnn uses adam only.", valueName: "names"))
    var optimizers: String?

    @Flag(help: "Benchmark the CNNs (the README's and LeNet-5) beside PyTorch and JAX instead of the MLP.")
    var cnn = false

    @Flag(help: "Run nnb alone, without the Python peers.")
    var noPeers = false

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        try validateThreads(threads)
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        _ = try parsedBatchSizes()
        _ = try parsedOptimizers()
        if cnn && optimizers != nil { throw ValidationError("--cnn trains with adam only; leave out --optimizers") }
    }

    private func parsedBatchSizes() throws(ValidationError) -> [Int] {
        let sizes = try parseLayerSizes(batchSizes ?? (cnn ? "32,128" : "32,128,256"))
        guard !sizes.isEmpty else { throw ValidationError("--batch-sizes needs at least one size") }
        return sizes
    }

    private func parsedOptimizers() throws(ValidationError) -> [String] {
        let names = (optimizers ?? "sgd,adam").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard !names.isEmpty, names.allSatisfy({ $0 == "sgd" || $0 == "adam" }) else {
            throw ValidationError("--optimizers takes sgd and adam, comma-separated; got '\(optimizers ?? "")'")
        }
        return names
    }

    func run() throws {
        if cnn {
            try CNNBench(samples: samples, threads: threads, repeats: repeats, batchSizes: try parsedBatchSizes(), noPeers: noPeers).run()
            return
        }
        applyThreads(threads)
        let batchList = try parsedBatchSizes(), optimizerList = try parsedOptimizers()

        let bench = try BenchData(samples: samples)
        let data = bench.data, n = data.count, images = bench.images, labels = bench.labels, dataName = bench.name

        // Peers.
        var script: PeerScriptFile?
        var numpy: Peer?, torch: Peer?
        if !noPeers {
            numpy = Peer.find(.numpy, candidates: peerInterpreters(system: false))
            torch = Peer.find(.torch, candidates: peerInterpreters(system: true))
            if numpy != nil || torch != nil { script = try PeerScriptFile(peerScript, name: "peer") }
        }
        defer { script?.remove() }

        print("nnb bench: training throughput of the 784-256-128-10 ReLU MLP, softmax cross-entropy")
        print("data: one epoch of \(grouped(n)) \(dataName) samples (shuffled), median of \(repeats) epochs after a 20-batch warm-up")
        print("threads: \(threads) (OpenMP \(Runtime.openMPEnabled ? "on" : "off")), ISA \(Runtime.isa); sgd lr 0.01, adam lr 0.001")
        print("peers: \(describePeer(numpy, "numpy", skipped: noPeers)); \(describePeer(torch, "torch", skipped: noPeers))")
        print("")
        let header = [pad("config", 16, left: true), pad("nnb samples/s", 14), pad("numpy samples/s", 16), pad("ratio", 7),
                      pad("torch samples/s", 16), pad("ratio", 7)]
        print(header.joined(separator: " "))

        var failures: [String] = []
        for opt in optimizerList {
            for batch in batchList {
                let ours = Double(n) / median(try nnbEpochSeconds(data, batch: batch, optimizer: opt))
                func peer(_ p: Peer?) -> Double? {
                    guard let p, let script else { return nil }
                    switch p.epochSeconds(script: script.path, images: images, labels: labels, samples: n, batch: batch,
                                          threads: threads, repeats: repeats, optimizer: opt) {
                    case .success(let times): return Double(n) / median(times)
                    case .failure(let f): failures.append(f.message); return nil
                    }
                }
                let np = peer(numpy), th = peer(torch)
                func ratio(_ theirs: Double?) -> String { theirs.map { String(format: "%.2fx", ours / $0) } ?? "-" }
                let row = [pad("\(opt) batch \(batch)", 16, left: true), pad(rate(ours), 14),
                           pad(np.map(rate) ?? "-", 16), pad(ratio(np), 7), pad(th.map(rate) ?? "-", 16), pad(ratio(th), 7)]
                print(row.joined(separator: " "))
                fflush(nil)
            }
        }
        print("\nratio = nnb samples/s / peer samples/s (above 1: nnb is faster)")
        for f in failures { print("note: \(f)") }
    }

    /// Seconds of each of `repeats` epochs of nnb training (after a 20-batch warm-up).
    private func nnbEpochSeconds(_ data: Dataset, batch: Int, optimizer: String) throws -> [Double] {
        let model = try Sequential(seed: 1) {
            try Dense(784, 256, activation: .relu)
            try Dense(256, 128, activation: .relu)
            try Dense(128, 10)
        }
        let opt: any Optimizer = optimizer == "sgd" ? SGD(learningRate: 0.01) : Adam(learningRate: 1e-3)
        return try epochSeconds(model, data, batch: batch, optimizer: opt, repeats: repeats)
    }
}
