import Foundation
import NNBackprop
import NNBackpropMPI

/// `nnb bench --distributed`: the MLP's training throughput on 1, 2 and 4 MPI ranks of one
/// thread each against one process of two threads, on this machine, and the share of each
/// rank's time spent waiting for gradient sums that backward did not hide. It starts each
/// configuration as a child `mpirun -np N` of this executable in worker mode
/// (`--distributed-worker`), whose rank 0 prints one RESULT line.
struct DistributedBench {
    let samples: Int
    let repeats: Int
    let batch: Int

    /// The configurations: (ranks, threads per rank).
    static let configs = [(1, 2), (1, 1), (2, 1), (4, 1)]

    func run() throws {
        guard MPIGroup.isAvailable else {
            throw NNError.unsupported("nnb bench --distributed: this build of nnb has no MPI (install libopenmpi-dev and rebuild)")
        }
        guard let mpirun = findExecutable("mpirun") else {
            throw NNError.unsupported("nnb bench --distributed: mpirun is not on PATH (apt-get install openmpi-bin)")
        }
        print("nnb bench --distributed: the 784-256-128-10 ReLU MLP, sgd lr 0.01, global batch \(batch), one epoch of \(grouped(samples)) samples, median of \(repeats) epochs")
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) CPUs; \(MPIGroup.libraryVersion ?? "")")
        print("")
        print([pad("ranks x threads", 16, left: true), pad("samples/s", 12), pad("vs 1 x 2", 9), pad("waiting for sums", 17)].joined(separator: " "))
        var base: Double?
        for (ranks, threads) in Self.configs {
            var args = [mpirun]
            if getuid() == 0 { args.append("--allow-run-as-root") }
            // Unbound: mpirun binds each process to one core by default, which would put a 2-thread rank on one core.
            args += ["--oversubscribe", "--bind-to", "none", "-np", String(ranks), "/proc/self/exe".resolvedExecutable, "bench", "--distributed-worker",
                     "--samples", String(samples), "--repeats", String(repeats), "--batch-sizes", String(batch),
                     "--threads", String(threads)]
            let out = try capture(args)
            guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix("RESULT ") }) else {
                throw NNError.pluginError("nnb bench --distributed: \(ranks) ranks printed no result:\n\(out)")
            }
            let f = line.split(separator: " ").dropFirst().compactMap { Double($0) }
            guard f.count == 2 else { throw NNError.pluginError("nnb bench --distributed: unreadable result '\(line)'") }
            if base == nil { base = f[0] }
            print([pad("\(ranks) x \(threads)", 16, left: true), pad(rate(f[0]), 12), pad(String(format: "%.2fx", f[0] / base!), 9),
                   pad(String(format: "%.1f%%", 100 * f[1]), 17)].joined(separator: " "))
            fflush(nil)
        }
        print("\nwaiting for sums: rank 0's time blocked in gradient sums (MPI_Waitall) and the step's loss sum, as a share of its epoch time")
    }

    /// Worker mode, under mpirun: rank 0 prints "RESULT <samples/s> <waiting share>".
    static func worker(samples: Int, repeats: Int, batch: Int) throws {
        let group = try MPIGroup()
        if group.rank != 0 {
            let null = open("/dev/null", O_WRONLY)
            if null >= 0 { _ = dup2(null, STDOUT_FILENO) }
        }
        group.run {
            let data = try BenchData(samples: samples).data
            let model = try Sequential(seed: 1) {
                try Dense(784, 256, activation: .relu)
                try Dense(256, 128, activation: .relu)
                try Dense(128, 10)
            }
            let warm = try data.subset(0..<min(data.count, 20 * batch))
            try model.fit(warm, epochs: 1, batchSize: batch, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.01), group: group)
            var rates: [Double] = [], shares: [Double] = []
            for r in 0..<repeats {
                let waited = group.waitSeconds, start = Terminal.now()
                try model.fit(data, epochs: 1, batchSize: batch, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.01),
                              seed: UInt64(r + 1), group: group)
                let seconds = Terminal.now() - start
                rates.append(Double(data.count) / seconds)
                shares.append((group.waitSeconds - waited) / seconds)
            }
            print("RESULT \(median(rates)) \(median(shares))")
        }
        fflush(nil)
        group.finalize()
    }
}

private extension String {
    /// The target of a /proc/self/exe style link (mpirun needs a path it can exec on each rank).
    var resolvedExecutable: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: self)) ?? self }
}

private func findExecutable(_ name: String) -> String? {
    for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let p = "\(dir)/\(name)"
        if FileManager.default.isExecutableFile(atPath: p) { return p }
    }
    return nil
}

/// Runs `args` (args[0] a path) and returns its standard output; throws when it fails.
private func capture(_ args: [String]) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: args[0])
    p.arguments = Array(args.dropFirst())
    let pipe = Pipe()
    p.standardOutput = pipe
    try p.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let out = String(decoding: data, as: UTF8.self)
    guard p.terminationStatus == 0 else {
        throw NNError.pluginError("\(args.dropFirst(4).first ?? "") ranks: mpirun exited with status \(p.terminationStatus):\n\(out)")
    }
    return out
}
