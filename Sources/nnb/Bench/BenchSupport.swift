import Foundation
import NNBackprop

/// What `nnb bench` and `nnb bench --cnn` share: the data both train on and hand to the peers,
/// the peers' script file, and the table helpers.
struct BenchData {
    /// The first `samples` training images (at most 60,000), samples of shape 1x28x28.
    let data: Dataset
    /// The IDX files the peer scripts read, or "random" for both.
    let images: String, labels: String
    /// "Fashion-MNIST", or what stands in for it.
    let name: String

    /// Fashion-MNIST's first `samples` training images, or seeded uniform random images of that
    /// shape with random labels when the data set is not installed.
    init(samples: Int) throws {
        let full: Dataset
        do {
            full = try Dataset.fashionMNIST(split: .train)
            let dir = Dataset.fashionMNISTDirectory
            images = "\(dir)/train-images-idx3-ubyte.gz"
            labels = "\(dir)/train-labels-idx1-ubyte.gz"
            name = "Fashion-MNIST"
        } catch {
            let rows = min(samples, 60000)
            var g = SeededGenerator(seed: 0)
            var x = [Float](repeating: 0, count: rows * 784)
            g.fillUniform(&x, in: 0...1)
            full = try Dataset(features: x, featureCount: 784,
                               targets: .classes((0..<rows).map { _ in Int32(g.nextInt(below: 10)) }, classCount: 10))
                .reshaped(to: Shape([1, 28, 28]))
            images = "random"
            labels = "random"
            name = "random data (Fashion-MNIST is not installed)"
        }
        let n = min(samples, full.count)
        data = n == full.count ? full : try full.subset(0..<n)
    }
}

/// A peer script written to a temporary file for the life of the value's owner (`remove()`).
struct PeerScriptFile {
    let path: String

    init(_ script: String, name: String) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-bench-\(name)-\(getpid()).py").path
        try FileIO.writeAtomically(Array(script.utf8), to: path)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The interpreters to try for a peer: NNB_PYTHON first, then `python3` (and Debian's
/// /usr/bin/python3, where python3-torch lives, when `system` is true).
func peerInterpreters(system: Bool) -> [String] {
    [ProcessInfo.processInfo.environment["NNB_PYTHON"], "python3", system ? "/usr/bin/python3" : nil].compactMap { $0 }
}

/// "name version (interpreter)", or why there is none.
func describePeer(_ p: Peer?, _ name: String, skipped: Bool) -> String {
    guard let p else { return skipped ? "\(name): not run" : "\(name): not available" }
    return "\(name) \(p.version) (\(p.python))"
}

func median(_ values: [Double]) -> Double {
    let s = values.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

/// `text` padded with spaces to `width`, on the left (right-aligned) unless `left`.
func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return left ? text + fill : fill + text
}

/// Seconds of each of `repeats` one-epoch `fit`s of `model` on `data` (softmax cross-entropy,
/// a new shuffle each) with `precision` products, after an untimed warm-up of 20 batches.
func epochSeconds(_ model: Sequential, _ data: Dataset, batch: Int, optimizer: any Optimizer, repeats: Int,
                  precision: Precision = .fp32) throws -> [Double] {
    let warm = min(data.count, 20 * batch)
    try model.fit(warm == data.count ? data : try data.subset(0..<warm), epochs: 1, batchSize: batch,
                  loss: .softmaxCrossEntropy(), optimizer: optimizer, seed: 0, precision: precision)
    var times: [Double] = []
    for r in 0..<repeats {
        let start = Terminal.now()
        try model.fit(data, epochs: 1, batchSize: batch, loss: .softmaxCrossEntropy(), optimizer: optimizer, seed: UInt64(r + 1),
                      precision: precision)
        times.append(Terminal.now() - start)
    }
    return times
}

/// The peak resident set (KiB) of `nnb train` training `layers` on Fashion-MNIST for one epoch,
/// run as a child process of this one (the same executable), from wait4's resource usage.
func childPeakRSS(layers: String, batch: Int, threads: Int) -> Result<Int, PeerFailure> {
    let path = "/proc/self/exe" // this executable, however it was started (argv[0] may be a bare name)
    let args = [path, "train", "--data", "fashion-mnist", "--layers", layers, "--epochs", "1",
                "--batch-size", String(batch), "--threads", String(threads), "--quiet"]
    var cArgs = args.map { strdup($0) }
    cArgs.append(nil)
    defer { for a in cArgs { free(a) } }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    guard posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0) == 0 else {
        return .failure(PeerFailure(message: "could not redirect the child's output"))
    }
    var pid = pid_t()
    let rc = posix_spawn(&pid, path, &actions, nil, cArgs, environ)
    guard rc == 0 else { return .failure(PeerFailure(message: "could not start \(path): \(String(cString: strerror(rc)))")) }
    var status: Int32 = 0
    var usage = rusage()
    var waited = wait4(pid, &status, 0, &usage)
    while waited == -1 && errno == EINTR { waited = wait4(pid, &status, 0, &usage) }
    guard waited == pid else { return .failure(PeerFailure(message: "wait4 failed: \(String(cString: strerror(errno)))")) }
    // WIFEXITED / WEXITSTATUS, which Swift does not import.
    guard status & 0x7F == 0 else { return .failure(PeerFailure(message: "nnb train was killed by signal \(status & 0x7F)")) }
    guard (status >> 8) & 0xFF == 0 else { return .failure(PeerFailure(message: "nnb train exited with status \((status >> 8) & 0xFF)")) }
    return .success(Int(usage.ru_maxrss))
}
