import Foundation
import CKernels
import NNBackprop
#if canImport(Glibc)
import Glibc
#endif

/// `nnb bench --cnn`: training throughput of the README's small CNN and of LeNet-5 on
/// Fashion-MNIST images beside PyTorch and JAX run by the same command, then the convolution
/// kernels' GFLOP/s against the measured FMA peak, one-image prediction latency, and the peak
/// resident memory of training.
struct CNNBench {
    /// The benchmarked networks, in the description grammar. `cnnPeerScript`'s MODELS holds the
    /// same networks for the peers.
    static let models: [(name: String, description: String)] = [
        ("cnn", "1x28x28-" + readmeCNN + "-10"),
        ("lenet5", "1x28x28-conv2d(6,5,padding=2):relu-maxpool2d(2)-conv2d(16,5):relu-maxpool2d(2)-flatten-120:relu-84:relu-10"),
    ]
    /// The README's CNN, without input and output ("--layers" of `nnb train`).
    static let readmeCNN = "conv2d(16,3,padding=1):relu-batchnorm2d-maxpool2d(2)-conv2d(32,3,padding=1):relu-batchnorm2d-maxpool2d(2)-flatten-128:relu-dropout:0.5"

    let samples: Int
    let threads: Int
    let repeats: Int
    let batchSizes: [Int]
    let noPeers: Bool
    /// Also train with bf16 products and print those figures.
    let bf16: Bool

    func run() throws {
        applyThreads(threads)
        let bench = try BenchData(samples: samples)
        let data = bench.data, n = data.count, images = bench.images, labels = bench.labels, dataName = bench.name

        var script: PeerScriptFile?
        var torch: Peer?, jax: Peer?
        if !noPeers {
            torch = Peer.find(.torch, candidates: peerInterpreters(system: true))
            jax = Peer.find(.jax, candidates: peerInterpreters(system: true))
            if torch != nil || jax != nil { script = try PeerScriptFile(cnnPeerScript, name: "cnn") }
        }
        defer { script?.remove() }

        let peak = nnk_fma_peak_gflops(Int32(threads), 0.5)
        print("nnb bench --cnn: training throughput of two CNNs, softmax cross-entropy, adam lr 0.001")
        for m in Self.models { print("  \(m.name): \(m.description)") }
        print("data: one epoch of \(grouped(n)) \(dataName) images (shuffled), median of \(repeats) epochs after a 20-batch warm-up")
        print("threads: \(threads) (OpenMP \(Runtime.openMPEnabled ? "on" : "off")), ISA \(Runtime.isa); measured FP32 FMA peak \(String(format: "%.1f", peak)) GFLOP/s on \(threads) thread\(threads == 1 ? "" : "s")")
        print("peers: \(describePeer(torch, "torch", skipped: noPeers)); \(describePeer(jax, "jax", skipped: noPeers))")
        print("")
        print(([pad("config", 18, left: true), pad("nnb samples/s", 14), pad("torch samples/s", 16), pad("ratio", 7),
                pad("jax samples/s", 14), pad("ratio", 7)]
               + (bf16 ? [pad("bf16 samples/s", 15), pad("vs fp32", 8), pad("vs best", 8)] : [])).joined(separator: " "))

        var failures: [String] = []
        var peerRSS: [String: Int] = [:], peerLatency: [String: Double] = [:]
        var trained: [String: Sequential] = [:]
        for m in Self.models {
            for batch in batchSizes {
                let (model, times) = try nnbEpochSeconds(m.description, data, batch: batch)
                trained[m.name] = model
                let ours = Double(n) / median(times)
                // The last batch size's peer run also measures latency (on its trained model).
                let latencyRuns = batch == batchSizes.last ? 2000 : 0
                func peer(_ p: Peer?) -> Double? {
                    guard let p, let script else { return nil }
                    let args = [p.kind.rawValue, m.name, images, labels, String(n), String(batch), String(threads),
                                String(repeats), String(latencyRuns)]
                    switch p.output(of: script.path, args, threads: threads) {
                    case .failure(let f):
                        failures.append("\(m.name) batch \(batch): \(f.message)")
                        return nil
                    case .success(let lines):
                        let times = lines.compactMap { Double($0.trimmingCharacters(in: .whitespaces)) }
                        for line in lines {
                            let parts = line.split(separator: " ")
                            guard parts.count == 2, let v = Double(parts[1]) else { continue }
                            let key = "\(p.kind.rawValue) \(m.name)"
                            if parts[0] == "rss_kib" && m.name == "cnn" && batch == batchSizes.last { peerRSS[key] = Int(v) }
                            if parts[0] == "latency_us" { peerLatency[key] = v }
                        }
                        guard times.count == repeats else {
                            failures.append("\(m.name) batch \(batch): \(p.kind.rawValue) printed \(times.count) epoch times, not \(repeats)")
                            return nil
                        }
                        return Double(n) / median(times)
                    }
                }
                let th = peer(torch), jx = peer(jax)
                func ratio(_ theirs: Double?) -> String { theirs.map { String(format: "%.2fx", ours / $0) } ?? "-" }
                var row = [pad("\(m.name) batch \(batch)", 18, left: true), pad(rate(ours), 14), pad(th.map(rate) ?? "-", 16),
                           pad(ratio(th), 7), pad(jx.map(rate) ?? "-", 14), pad(ratio(jx), 7)]
                if bf16 {
                    let half = Double(n) / median(try nnbEpochSeconds(m.description, data, batch: batch, precision: .bf16).1)
                    let best = [th, jx].compactMap { $0 }.max()
                    row += [pad(rate(half), 15), pad(String(format: "%.2fx", half / ours), 8),
                            pad(best.map { String(format: "%.2fx", half / $0) } ?? "-", 8)]
                }
                print(row.joined(separator: " "))
                fflush(nil)
            }
        }
        print("\nratio = nnb samples/s / peer samples/s (above 1: nnb is faster)")

        print("\nconvolution kernels (nnb, training, median of 20 calls), GFLOP/s and share of the \(String(format: "%.1f", peak)) GFLOP/s peak:")
        for m in Self.models {
            guard let model = trained[m.name] else { continue }
            for batch in batchSizes { try convolutionRates(model, name: m.name, batch: batch, peak: peak) }
        }

        print("\none-image prediction (eval mode), median of 2000 calls:")
        for m in Self.models {
            guard let model = trained[m.name] else { continue }
            let ours = try latencyMicroseconds(model, data)
            var line = "  \(pad(m.name, 7, left: true)) nnb \(String(format: "%.1f", ours)) us"
            for kind in ["torch", "jax"] {
                if let theirs = peerLatency["\(kind) \(m.name)"] {
                    line += String(format: "   %@ %.1f us (%.2fx)", kind, theirs, theirs / ours)
                }
            }
            print(line)
        }
        print("(x = peer time / nnb time: above 1, nnb answers sooner)")

        print("\npeak resident memory of training the cnn for one epoch at batch \(batchSizes.last!), data set included:")
        if n == 60000, dataName == "Fashion-MNIST" {
            switch childPeakRSS(layers: Self.readmeCNN, batch: batchSizes.last!, threads: threads) {
            case .success(let kib):
                var line = "  nnb train \(kib / 1024) MiB"
                for kind in ["torch", "jax"] {
                    if let theirs = peerRSS["\(kind) cnn"] { line += "   \(kind) \(theirs / 1024) MiB" }
                }
                print(line + "  (the peers: the whole Python process, interpreter and framework included)")
            case .failure(let f): print("  not measured: \(f.message)")
            }
        } else {
            print("  not measured: needs the full Fashion-MNIST training set (--samples 60000)")
        }
        for f in failures { print("note: \(f)") }
    }

    /// The trained model and the seconds of each of `repeats` epochs (after a 20-batch warm-up).
    private func nnbEpochSeconds(_ description: String, _ data: Dataset, batch: Int,
                                 precision: Precision = .fp32) throws -> (Sequential, [Double]) {
        let parsed = try ModelDescription.parse(description)
        let model = try Sequential(layers: parsed.layers, inputShape: parsed.shape, seed: 1)
        return (model, try epochSeconds(model, data, batch: batch, optimizer: Adam(learningRate: 1e-3), repeats: repeats,
                                        precision: precision))
    }

    /// Prints each convolution's forward and backward GFLOP/s at `batch`, timed on the layer
    /// itself with random inputs. A multiply-add counts 2 flops; backward computes the weight
    /// gradient and, except for the first layer, the input gradient (each as many flops as the
    /// forward pass).
    private func convolutionRates(_ model: Sequential, name: String, batch: Int, peak: Double) throws {
        model.prepare(batchSize: batch)
        model.zeroGradients()
        var shape = model.sampleShape
        for (i, layer) in model.layers.enumerated() {
            let out = try layer.outputShape(for: shape)
            defer { shape = out }
            guard let conv = layer as? Conv2D else { continue }
            let macs = Double(batch) * Double(out.count) * Double(conv.inChannels / conv.groups * conv.kernel.h * conv.kernel.w)
            var g = SeededGenerator(seed: UInt64(i))
            var x = [Float](repeating: 0, count: batch * shape.count)
            g.fillUniform(&x, in: -1...1)
            var dy = [Float](repeating: 0, count: batch * out.count)
            g.fillUniform(&dy, in: -1...1)
            let needsDx = i > 0
            var forward: [Double] = [], backward: [Double] = []
            x.withUnsafeBufferPointer { xp in
                dy.withUnsafeMutableBufferPointer { dp in
                    for r in 0..<21 {
                        var t = Terminal.now()
                        _ = conv.forward(xp.baseAddress!, batch: batch, training: true)
                        if r > 0 { forward.append(Terminal.now() - t) }
                        t = Terminal.now()
                        _ = conv.backward(dp.baseAddress!, batch: batch, needsInputGradient: needsDx)
                        if r > 0 { backward.append(Terminal.now() - t) }
                    }
                }
            }
            let f = 2 * macs / median(forward) * 1e-9, b = 2 * macs * (needsDx ? 2 : 1) / median(backward) * 1e-9
            let what = "\(shape)->\(out) k\(conv.kernel.h)x\(conv.kernel.w)"
            print("  \(pad("\(name) layer \(i)", 16, left: true)) \(pad(what, 26, left: true)) batch \(pad(String(batch), 4)): forward \(String(format: "%6.1f", f)) (\(String(format: "%4.1f", 100 * f / peak))%)   backward\(needsDx ? "" : " (no dx)") \(String(format: "%6.1f", b)) (\(String(format: "%4.1f", 100 * b / peak))%)")
        }
    }

    /// The median microseconds of `predict(sample:)` on the first 2000 images.
    private func latencyMicroseconds(_ model: Sequential, _ data: Dataset) throws -> Double {
        let width = data.featureCount
        var times: [Double] = []
        let rows = data.features
        for i in 0..<2050 {
            let r = i % data.count
            let sample = Array(rows[(r * width)..<((r + 1) * width)])
            let t = Terminal.now()
            _ = try model.predict(sample: sample)
            if i >= 50 { times.append(Terminal.now() - t) }
        }
        return median(times) * 1e6
    }

}
