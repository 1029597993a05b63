import NNBackprop

/// Reports training as it goes: on a terminal a bar per epoch redrawn in place (batches done,
/// loss and accuracy so far, samples per second, time left in the epoch) at most ten times a
/// second, then the epoch's line; elsewhere only the epoch's line; nothing when quiet.
final class ProgressReporter: TrainingCallback {
    enum Style { case bar, lines, quiet }

    let style: Style
    let epochs: Int
    /// Training seconds of each finished epoch (batches only, without validation).
    private(set) var epochSeconds: [Double] = []
    private var epochStart = 0.0
    private var lastBatchEnd = 0.0
    private var lastDraw = -1.0
    private var samples = 0
    private var totalSamples = 0.0
    private let width: Int?

    /// How the epoch lines name the logs' "val_" keys ("val_", or "test_" when the held-out
    /// rows are the test set).
    let heldOutPrefix: String

    init(style: Style, epochs: Int, heldOutPrefix: String = "val_") {
        self.style = style
        self.epochs = epochs
        self.heldOutPrefix = heldOutPrefix
        width = style == .bar ? Terminal.columns : nil
    }

    /// Call right before `fit`.
    func start() {
        epochStart = Terminal.now()
        lastBatchEnd = epochStart
    }

    /// Training samples per second over all finished epochs.
    var samplesPerSecond: Double { totalSamples / epochSeconds.reduce(0, +) }

    func batchEnded(_ p: BatchProgress) -> TrainingControl {
        samples += p.size
        let now = Terminal.now()
        lastBatchEnd = now
        let last = p.batch + 1 == p.batchesPerEpoch
        if style == .bar && (now - lastDraw >= 0.1 || last) {
            lastDraw = now
            draw(p, elapsed: now - epochStart)
        }
        return .proceed
    }

    func epochEnded(_ epoch: Int, logs: [String: Double]) -> TrainingControl {
        let seconds = lastBatchEnd - epochStart
        epochSeconds.append(seconds)
        totalSamples += Double(samples)
        var line = "epoch \(pad(epoch + 1))/\(epochs)"
        for key in ProgressReporter.order(logs.keys) {
            let name = key.hasPrefix("val_") ? heldOutPrefix + key.dropFirst(4) : key
            line += "  \(name) \(formatMetric(key, logs[key]!))"
        }
        line += "  \(duration(seconds))  \(rate(Double(samples) / seconds)) samples/s"
        switch style {
        case .bar: Terminal.write("\r" + line + "\u{1B}[K\n")
        case .lines: Terminal.write(line + "\n")
        case .quiet: break
        }
        samples = 0
        epochStart = Terminal.now()
        lastBatchEnd = epochStart
        return .proceed
    }

    private func draw(_ p: BatchProgress, elapsed: Double) {
        let done = p.batch + 1
        let barWidth = 24
        let filled = done * barWidth / max(p.batchesPerEpoch, 1)
        var line = "epoch \(pad(p.epoch + 1))/\(epochs) ["
        line += String(repeating: "=", count: filled) + (filled < barWidth ? ">" : "")
        line += String(repeating: " ", count: max(0, barWidth - filled - 1)) + "]"
        let total = String(p.batchesPerEpoch)
        line += " \(String(repeating: " ", count: max(0, total.count - String(done).count)))\(done)/\(total)"
        line += "  loss \(formatMetric("loss", p.epochLoss))"
        if let a = p.epochAccuracy { line += "  acc \(formatMetric("accuracy", a))" }
        line += "  \(rate(Double(samples) / max(elapsed, 1e-9))) samples/s"
        let left = elapsed / Double(done) * Double(p.batchesPerEpoch - done)
        line += "  ETA \(duration(left))"
        if let width, line.count >= width { line = String(line.prefix(width - 1)) }
        Terminal.write("\r" + line + "\u{1B}[K")
    }

    private func pad(_ epoch: Int) -> String {
        let w = String(epochs).count
        let s = String(epoch)
        return String(repeating: " ", count: max(0, w - s.count)) + s
    }

    /// Log keys in report order: loss and metrics, then their validation twins ("lr" left out).
    static func order<S: Sequence<String>>(_ keys: S) -> [String] {
        let all = Set(keys).subtracting(["lr"])
        func sorted(_ part: [String]) -> [String] {
            part.sorted { ($0.hasSuffix("loss") ? 0 : 1, $0) < ($1.hasSuffix("loss") ? 0 : 1, $1) }
        }
        return sorted(all.filter { !$0.hasPrefix("val_") }) + sorted(all.filter { $0.hasPrefix("val_") })
    }
}
