import ArgumentParser
import Foundation
import CKernels
import NNBackprop
import NNBackpropMPI

/// `nnb bench`: training throughput of the 784-256-128-10 ReLU network on Fashion-MNIST,
/// beside a numpy MLP and PyTorch run by the same command on the same data and thread count.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure training throughput (samples/s) beside numpy, PyTorch and JAX peers.",
        discussion: """
            Trains the 784-256-128-10 ReLU network with softmax cross-entropy for one epoch over \
            the first --samples Fashion-MNIST training images (random data when the data set is \
            not installed), for each optimizer and batch size, and prints the median samples per \
            second of --repeats epochs. Each configuration then runs a plain numpy MLP (python3 \
            with numpy), PyTorch (the first of python3, /usr/bin/python3 that imports torch; \
            NNB_PYTHON names another interpreter) and JAX (jax.jit of the whole step; the first \
            interpreter that imports jax) with the same thread count, and each figure as a share \
            of the compute limit: the measured FMA peak over the FLOPs of a training sample. OpenBLAS's \
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

    @Flag(help: "Also train with bf16 products (AVX512_BF16) and print that figure and its ratio to nnb's fp32 one.")
    var bf16 = false

    @Flag(help: "Data-parallel training over MPI: the MLP on 1, 2 and 4 ranks of one thread against 1 rank of 2 threads (each as a child mpirun), and the share of time spent waiting for gradient sums. One batch size (default 128).")
    var distributed = false

    @Flag(help: .hidden)
    var distributedWorker = false

    func validate() throws {
        guard samples >= 1 else { throw ValidationError("--samples must be at least 1, got \(samples)") }
        try validateThreads(threads)
        guard repeats >= 1 else { throw ValidationError("--repeats must be at least 1, got \(repeats)") }
        _ = try parsedBatchSizes()
        _ = try parsedOptimizers()
        if distributed && (cnn || bf16 || optimizers != nil) {
            throw ValidationError("--distributed benchmarks the MLP with sgd in fp32; leave out --cnn, --bf16 and --optimizers")
        }
        if cnn && optimizers != nil { throw ValidationError("--cnn trains with adam only; leave out --optimizers") }
        if bf16 && !Precision.bf16.isSupported {
            throw ValidationError("--bf16: this CPU's SIMD path (\(Runtime.isa)) has no AVX512_BF16")
        }
    }

    private func parsedBatchSizes(default fallback: String? = nil) throws(ValidationError) -> [Int] {
        let sizes = try parseLayerSizes(batchSizes ?? fallback ?? (cnn ? "32,128" : "32,128,256"))
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
        if distributed || distributedWorker {
            let sizes = try parsedBatchSizes(default: "128")
            guard sizes.count == 1 else { throw ValidationError("--distributed takes one batch size, got \(sizes.count)") }
            if distributedWorker {
                applyThreads(threads)
                return try DistributedBench.worker(samples: samples, repeats: repeats, batch: sizes[0])
            }
            return try DistributedBench(samples: samples, repeats: repeats, batch: sizes[0]).run()
        }
        if cnn {
            try CNNBench(samples: samples, threads: threads, repeats: repeats, batchSizes: try parsedBatchSizes(), noPeers: noPeers,
                         bf16: bf16).run()
            return
        }
        applyThreads(threads)
        let batchList = try parsedBatchSizes(), optimizerList = try parsedOptimizers()

        let bench = try BenchData(samples: samples)
        let data = bench.data, n = data.count, images = bench.images, labels = bench.labels, dataName = bench.name

        // Peers.
        var script: PeerScriptFile?
        var peers: [(name: String, peer: Peer?)] = []
        if !noPeers {
            peers = [("numpy", Peer.find(.numpy, candidates: peerInterpreters(system: false))),
                     ("torch", Peer.find(.torch, candidates: peerInterpreters(system: true))),
                     ("jax", Peer.find(.jax, candidates: peerInterpreters(system: false)))]
            if peers.contains(where: { $0.peer != nil }) { script = try PeerScriptFile(peerScript, name: "peer") }
        } else {
            peers = [("numpy", nil), ("torch", nil), ("jax", nil)]
        }
        defer { script?.remove() }

        let peak = nnk_fma_peak_gflops(Int32(threads), 0.5)
        let limit = peak * 1e9 / Self.trainingFlopsPerSample
        print("nnb bench: training throughput of the 784-256-128-10 ReLU MLP, softmax cross-entropy")
        print("data: one epoch of \(grouped(n)) \(dataName) samples (shuffled), median of \(repeats) epochs after a 20-batch warm-up")
        print("threads: \(threads) (OpenMP \(Runtime.openMPEnabled ? "on" : "off")), ISA \(Runtime.isa); sgd lr 0.01, adam lr 0.001")
        let mflops = String(format: "%.3f", Self.trainingFlopsPerSample / 1e6), peakText = String(format: "%.1f", peak)
        print("compute limit: measured FP32 FMA peak \(peakText) GFLOP/s on \(threads) thread\(threads == 1 ? "" : "s") / \(mflops) MFLOP a training sample = \(rate(limit)) samples/s")
        print("peers: " + peers.map { describePeer($0.peer, $0.name, skipped: noPeers) }.joined(separator: "; "))
        print("")
        var header = [pad("config", 16, left: true), pad("nnb samples/s", 14), pad("limit", 6)]
        for p in peers { header += [pad("\(p.name) samples/s", 16), pad("ratio", 7)] }
        header.append(pad("vs best", 8))
        if bf16 { header += [pad("bf16 samples/s", 15), pad("vs fp32", 8), pad("vs best", 8)] }
        print(header.joined(separator: " "))

        var failures: [String] = []
        for opt in optimizerList {
            for batch in batchList {
                let ours = Double(n) / median(try nnbEpochSeconds(data, batch: batch, optimizer: opt))
                func measure(_ p: Peer?) -> Double? {
                    guard let p, let script else { return nil }
                    switch p.epochSeconds(script: script.path, images: images, labels: labels, samples: n, batch: batch,
                                          threads: threads, repeats: repeats, optimizer: opt) {
                    case .success(let times): return Double(n) / median(times)
                    case .failure(let f): failures.append(f.message); return nil
                    }
                }
                let theirs = peers.map { measure($0.peer) }
                func ratio(_ t: Double?) -> String { t.map { String(format: "%.2fx", ours / $0) } ?? "-" }
                var row = [pad("\(opt) batch \(batch)", 16, left: true), pad(rate(ours), 14),
                           pad(String(format: "%.0f%%", 100 * ours / limit), 6)]
                for t in theirs { row += [pad(t.map(rate) ?? "-", 16), pad(ratio(t), 7)] }
                let best = theirs.compactMap { $0 }.max()
                row.append(pad(ratio(best), 8))
                if bf16 {
                    let half = Double(n) / median(try nnbEpochSeconds(data, batch: batch, optimizer: opt, precision: .bf16))
                    row += [pad(rate(half), 15), pad(String(format: "%.2fx", half / ours), 8),
                            pad(best.map { String(format: "%.2fx", half / $0) } ?? "-", 8)]
                }
                print(row.joined(separator: " "))
                fflush(nil)
            }
        }
        print("\nratio = nnb samples/s / peer samples/s (above 1: nnb is faster); limit = share of the compute limit")
        if bf16 { print("bf16: the same training with bf16 products (fp32 accumulation and master weights); vs fp32 = bf16 / nnb fp32") }
        for f in failures { print("note: \(f)") }

        let rssBatch = batchList.contains(128) ? 128 : batchList[0]
        let storage = data.bytesPerFeature == 1 ? "features kept as bytes" : "features as floats"
        print("\npeak resident memory of `nnb train` of this MLP for one epoch at batch \(rssBatch), data set included (\(storage)):")
        if n == 60000, dataName == "Fashion-MNIST" {
            switch childPeakRSS(layers: "256,128", batch: rssBatch, threads: threads) {
            case .success(let kib): print("  nnb train \(kib / 1024) MiB")
            case .failure(let f): print("  not measured: \(f.message)")
            }
        } else {
            print("  not measured: needs the 60,000 Fashion-MNIST training images (--samples 60000, dataset-fashion-mnist)")
        }
    }

    /// FLOPs of one training sample of the 784-256-128-10 network: the forward products
    /// (2 * 235,776 multiply-adds), the weight gradients (the same again) and the input
    /// gradients of the second and third layers (the first layer's is not needed).
    static let trainingFlopsPerSample: Double = 2 * Double(235_776 + 235_776 + 256 * 128 + 128 * 10)

    /// Seconds of each of `repeats` epochs of nnb training (after a 20-batch warm-up).
    private func nnbEpochSeconds(_ data: Dataset, batch: Int, optimizer: String, precision: Precision = .fp32) throws -> [Double] {
        let model = try Sequential(seed: 1) {
            try Dense(784, 256, activation: .relu)
            try Dense(256, 128, activation: .relu)
            try Dense(128, 10)
        }
        let opt: any Optimizer = optimizer == "sgd" ? SGD(learningRate: 0.01) : Adam(learningRate: 1e-3)
        return try epochSeconds(model, data, batch: batch, optimizer: opt, repeats: repeats, precision: precision)
    }
}
