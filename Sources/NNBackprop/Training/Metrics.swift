/// A quantity reported by `fit` and `evaluate` besides the loss.
public enum Metric: Sendable, Hashable, CustomStringConvertible {
    /// Fraction of rows whose arg-max output is the target class.
    case accuracy
    /// Fraction of rows whose target class is among the k largest outputs.
    case topKAccuracy(Int)
    /// Mean squared error over every output (targets as float rows; classes as one-hot).
    case mse
    /// Mean absolute error over every output.
    case mae
    /// Coefficient of determination, 1 - SS_res / SS_tot per output column, averaged over
    /// columns (scikit-learn's r2_score with multioutput='uniform_average').
    case r2
    /// For yes/no outputs given as logits (binary cross-entropy): the fraction of outputs on the
    /// right side of 0, i.e. (output > 0) == (target >= 0.5), over every output.
    case binaryAccuracy

    /// The key in logs and history: "accuracy", "top5_accuracy", "mse", "mae", "r2".
    public var name: String {
        switch self {
        case .accuracy: return "accuracy"
        case .topKAccuracy(let k): return "top\(k)_accuracy"
        case .mse: return "mse"
        case .mae: return "mae"
        case .r2: return "r2"
        case .binaryAccuracy: return "binary_accuracy"
        }
    }

    public var description: String { name }

    var needsClasses: Bool {
        switch self {
        case .accuracy, .topKAccuracy: return true
        default: return false
        }
    }
}

/// Metric helpers.
public enum Metrics {
    /// The index of the largest of `width` values at `row` (the first on ties): the one
    /// arg-max every prediction of a class uses.
    @inline(__always)
    public static func argmax(_ row: UnsafePointer<Float>, width: Int) -> Int {
        var best = 0
        for j in 1..<max(width, 1) where row[j] > row[best] { best = j }
        return best
    }

    /// The arg-max of each row of `values` (rows, width), (rows).
    public static func argmaxRows(_ values: [Float], width: Int) -> [Int32] {
        let rows = width > 0 ? values.count / width : 0
        return values.withUnsafeBufferPointer { v in (0..<rows).map { Int32(argmax(v.baseAddress! + $0 * width, width: width)) } }
    }

    /// The mean loss and `metrics` of `predictions` (rows, width) against `targets`, as
    /// `Sequential.evaluate` reports them ("loss" and each metric's name). Throws as
    /// `Loss.evaluate` for targets that do not fit, and `invalidArgument` for a metric that
    /// needs class targets the data does not have.
    public static func evaluate(predictions: [Float], targets: Dataset.Targets, loss: Loss,
                                metrics: [Metric]) throws(NNError) -> [String: Double] {
        let value = try loss.evaluate(predictions: predictions, targets: targets).loss
        for m in metrics where m.needsClasses && targets.classIndices == nil {
            throw .invalidArgument("metric '\(m.name)' needs class targets, but the data has real-valued targets")
        }
        var acc = MetricAccumulator(metrics: metrics, width: targets.width)
        let labels = targets.classIndices
        var values: [Float]? = nil
        switch targets {
        case .probabilities(let v, _), .values(let v, _): values = v
        case .classes: break
        }
        let l = labels ?? [], t = values ?? []
        predictions.withUnsafeBufferPointer { p in
            l.withUnsafeBufferPointer { lb in
                t.withUnsafeBufferPointer { tb in
                    acc.add(loss: value, outputs: p.baseAddress!, n: targets.rowCount, labels: labels == nil ? nil : lb.baseAddress,
                            targets: values == nil ? nil : tb.baseAddress)
                }
            }
        }
        return acc.results()
    }
}

/// Sums over batches from which the metrics of a whole pass are computed; allocates once.
struct MetricAccumulator {
    let metrics: [Metric]
    let width: Int
    private(set) var rows = 0
    private var lossSum = 0.0
    private var correct = [Int](), topK = [Int]()
    private var sqErr = 0.0, absErr = 0.0
    private var binaryRight = 0
    private var colSum: [Double], colSq: [Double], colRes: [Double]

    init(metrics: [Metric], width: Int) {
        var unique: [Metric] = []
        for m in metrics where !unique.contains(m) { unique.append(m) }
        self.metrics = unique
        self.width = width
        correct = [0]
        topK = unique.map { _ in 0 }
        let r2 = metrics.contains(.r2)
        colSum = [Double](repeating: 0, count: r2 ? width : 0)
        colSq = colSum
        colRes = colSum
    }

    /// Adds a batch: outputs (n, width), class labels (n) when the targets have classes, float
    /// target rows (n, width) when available (else labels are read as one-hot rows).
    mutating func add(loss: Float, outputs: UnsafePointer<Float>, n: Int, labels: UnsafePointer<Int32>?,
                      targets: UnsafePointer<Float>?) {
        rows += n
        lossSum += Double(loss) * Double(n)
        for (mi, m) in metrics.enumerated() {
            switch m {
            case .accuracy:
                guard let labels else { continue }
                for r in 0..<n where Metrics.argmax(outputs + r * width, width: width) == Int(labels[r]) { correct[0] += 1 }
            case .topKAccuracy(let k):
                guard let labels else { continue }
                for r in 0..<n {
                    let row = outputs + r * width
                    let v = row[Int(labels[r])]
                    // Rank of the target: how many outputs beat it (ties resolved in its favour).
                    var above = 0
                    for j in 0..<width where row[j] > v { above += 1 }
                    if above < k { topK[mi] += 1 }
                }
            case .binaryAccuracy:
                for r in 0..<n {
                    for j in 0..<width {
                        let t: Float = targets.map { $0[r * width + j] } ?? (labels.map { Int($0[r]) == j ? 1 : 0 } ?? 0)
                        if (outputs[r * width + j] > 0) == (t >= 0.5) { binaryRight += 1 }
                    }
                }
            case .mse, .mae, .r2:
                let needR2 = m == .r2
                if m != .r2, let first = metrics.firstIndex(where: { $0 == .mse || $0 == .mae }), first < mi { continue }
                for r in 0..<n {
                    for j in 0..<width {
                        let t: Float
                        if let targets { t = targets[r * width + j] } else if let labels { t = Int(labels[r]) == j ? 1 : 0 } else { t = 0 }
                        let d = Double(outputs[r * width + j] - t)
                        if needR2 {
                            colSum[j] += Double(t); colSq[j] += Double(t) * Double(t); colRes[j] += d * d
                        } else {
                            sqErr += d * d; absErr += abs(d)
                        }
                    }
                }
            }
        }
    }

    /// Adds the running sums of every process of `group` (rows, losses, counts, errors), so
    /// the results are those of all the rows the group added. Collective.
    mutating func sum(over group: any DataParallelGroup) throws(NNError) {
        let k = correct.count, t = topK.count, c = colSum.count
        var v = [Double(rows), lossSum, sqErr, absErr, Double(binaryRight)] + correct.map(Double.init) + topK.map(Double.init)
            + colSum + colSq + colRes
        try v.withUnsafeMutableBufferPointer { (b) throws(NNError) in try group.sum(b) }
        rows = Int(v[0]); lossSum = v[1]; sqErr = v[2]; absErr = v[3]; binaryRight = Int(v[4])
        correct = v[5..<(5 + k)].map { Int($0) }
        topK = v[(5 + k)..<(5 + k + t)].map { Int($0) }
        let r = 5 + k + t
        colSum = Array(v[r..<(r + c)]); colSq = Array(v[(r + c)..<(r + 2 * c)]); colRes = Array(v[(r + 2 * c)..<(r + 3 * c)])
    }

    /// The mean loss of the rows added so far (NaN before any).
    var meanLoss: Double { rows > 0 ? lossSum / Double(rows) : .nan }

    /// The accuracy of the rows added so far, when `.accuracy` is among the metrics.
    var accuracy: Double? { metrics.contains(.accuracy) && rows > 0 ? Double(correct[0]) / Double(rows) : nil }

    /// "loss" and each metric's value.
    func results() -> [String: Double] {
        var out = ["loss": rows > 0 ? lossSum / Double(rows) : .nan]
        let n = Double(max(rows, 1))
        for (mi, m) in metrics.enumerated() {
            switch m {
            case .accuracy: out[m.name] = Double(correct[0]) / n
            case .topKAccuracy: out[m.name] = Double(topK[mi]) / n
            case .mse: out[m.name] = sqErr / (n * Double(width))
            case .mae: out[m.name] = absErr / (n * Double(width))
            case .binaryAccuracy: out[m.name] = Double(binaryRight) / (n * Double(max(width, 1)))
            case .r2:
                var total = 0.0
                for j in 0..<width {
                    let mean = colSum[j] / n
                    let ssTot = colSq[j] - n * mean * mean
                    total += ssTot > 0 ? 1 - colRes[j] / ssTot : (colRes[j] == 0 ? 1 : 0)
                }
                out[m.name] = total / Double(max(width, 1))
            }
        }
        return out
    }
}
