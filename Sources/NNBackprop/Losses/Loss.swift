import CKernels

/// A training loss over a batch of network outputs, with PyTorch's reduction = 'mean'.
///
/// Each case calls its CKernels `nnk_loss_*`, which returns the loss and writes its gradient
/// with respect to the outputs. Outputs are (batch, width) rows; targets come from a
/// `Dataset`'s `Targets`:
/// - `mse`, `mae`, `huber`: real-valued targets (`.values` or `.probabilities`; `.classes` are
///   compared as one-hot rows), mean over every element.
/// - `softmaxCrossEntropy`: logits against class indices (`.classes`) or probability rows
///   (`.probabilities`); mean over rows. Real-valued `.values` targets are rejected.
/// - `binaryCrossEntropy`: logits against targets in [0, 1] (`.probabilities`, `.classes` as
///   one-hot, or `.values` within [0, 1]); mean over every element.
public enum Loss: Sendable, Equatable, CustomStringConvertible {
    case mse
    case mae
    /// 0.5 d^2 when |d| <= delta, else delta (|d| - 0.5 delta).
    case huber(delta: Float = 1)
    /// Softmax cross-entropy from logits; labelSmoothing in [0, 1) as in PyTorch.
    case softmaxCrossEntropy(labelSmoothing: Float = 0)
    /// Binary cross-entropy from logits (PyTorch's BCEWithLogitsLoss).
    case binaryCrossEntropy
    /// A loss registered by a plugin (`Plugins.register(loss:)`), by name; targets arrive as
    /// float rows (classes one-hot).
    case custom(String)

    /// Every loss with default parameters.
    public static let all: [Loss] = [.mse, .mae, .huber(), .softmaxCrossEntropy(), .binaryCrossEntropy]

    /// "mse", "mae", "huber", "cross_entropy", "bce".
    public var name: String {
        switch self {
        case .mse: return "mse"
        case .mae: return "mae"
        case .huber: return "huber"
        case .softmaxCrossEntropy: return "cross_entropy"
        case .binaryCrossEntropy: return "bce"
        case .custom(let name): return name
        }
    }

    public var description: String {
        switch self {
        case .huber(let d): return "huber(delta: \(d))"
        case .softmaxCrossEntropy(let s) where s != 0: return "cross_entropy(label_smoothing: \(s))"
        default: return name
        }
    }

    /// The loss called `name` (see `name`; "ce", "crossentropy" and "softmax_cross_entropy"
    /// are accepted too). Throws `unknownName`.
    public init(name: String) throws(NNError) {
        switch name.lowercased() {
        case "mse": self = .mse
        case "mae", "l1": self = .mae
        case "huber": self = .huber()
        case "cross_entropy", "ce", "crossentropy", "softmax_cross_entropy": self = .softmaxCrossEntropy()
        case "bce", "binary_cross_entropy": self = .binaryCrossEntropy
        default:
            guard Plugins.loss(named: name) != nil else {
                let plugins = Plugins.names
                throw .unknownName("unknown loss '\(name)'; known: mse, mae, huber, cross_entropy, bce\(plugins.isEmpty ? "" : ", and from plugins: " + plugins.joined(separator: ", "))")
            }
            self = .custom(name)
        }
    }

    /// Whether this loss reads class indices for `targets` (cross-entropy on `.classes`);
    /// otherwise it reads float target rows.
    func usesLabels(_ targets: Dataset.Targets) -> Bool {
        if case .softmaxCrossEntropy = self, case .classes = targets { return true }
        return false
    }

    /// Turns raw outputs (rows, width) into what the loss models them as: class probabilities
    /// (softmax of each row) for cross_entropy, per-output probabilities (sigmoid) for bce; for
    /// other losses the outputs are left as they are. Returns whether they are probabilities now.
    @discardableResult
    public func toProbabilities(_ outputs: inout [Float], width: Int) -> Bool {
        let rows = width > 0 ? outputs.count / width : 0
        switch self {
        case .softmaxCrossEntropy:
            outputs.withUnsafeMutableBufferPointer { o in nnk_softmax_forward(o.baseAddress, width, o.baseAddress, width, rows, width) }
            return true
        case .binaryCrossEntropy:
            outputs.withUnsafeMutableBufferPointer { o in nnk_act_forward(NNK_ACT_SIGMOID, 0, o.baseAddress, o.baseAddress, o.count) }
            return true
        default:
            return false
        }
    }

    /// Throws unless `targets` suit this loss and a network output of width `outputSize`.
    public func validate(targets: Dataset.Targets, outputSize: Int) throws(NNError) {
        guard targets.width == outputSize else {
            throw .shapeMismatch("the model outputs \(outputSize) values per row but the targets have width \(targets.width)")
        }
        switch (self, targets) {
        case (.softmaxCrossEntropy(let s), _):
            guard s >= 0 && s < 1 else { throw .invalidArgument("label smoothing must be in [0, 1), got \(s)") }
            if case .values = targets {
                throw .invalidData("softmax cross-entropy needs class indices or probability rows, got real-valued targets")
            }
            guard outputSize >= 2 else { throw .shapeMismatch("softmax cross-entropy needs at least 2 outputs, got \(outputSize)") }
        case (.binaryCrossEntropy, .values(let v, let width)):
            if let i = v.firstIndex(where: { !($0 >= 0 && $0 <= 1) }) {
                throw .invalidData("binary cross-entropy needs targets in [0, 1]; targets[row \(i / width), column \(i % width)] is \(v[i])")
            }
        case (.huber(let d), _):
            guard d > 0 && d.isFinite else { throw .invalidArgument("huber delta must be positive, got \(d)") }
        case (.custom(let name), _):
            guard Plugins.loss(named: name) != nil else { throw .unknownName("loss '\(name)' is not registered by any plugin") }
        default:
            break
        }
    }

    /// The loss of `rows` output rows `pred` (rows, cols); when `grad` is not nil it receives
    /// dLoss/dPred (rows, cols). `labels` (rows) for class-index cross-entropy, else `targets`
    /// (rows, cols).
    func compute(grad: UnsafeMutablePointer<Float>?, pred: UnsafePointer<Float>, rows: Int, cols: Int,
                 labels: UnsafePointer<Int32>?, targets: UnsafePointer<Float>?) -> Float {
        switch self {
        case .mse: return nnk_loss_mse(grad, pred, targets, rows, cols)
        case .mae: return nnk_loss_mae(grad, pred, targets, rows, cols)
        case .huber(let d): return nnk_loss_huber(grad, pred, targets, rows, cols, d)
        case .softmaxCrossEntropy(let s):
            if let labels { return nnk_loss_softmax_ce_index(grad, pred, labels, rows, cols, s) }
            return nnk_loss_softmax_ce_soft(grad, pred, targets, rows, cols, s)
        case .binaryCrossEntropy: return nnk_loss_bce_logits(grad, pred, targets, rows, cols)
        case .custom(let name):
            // Validated when the loss was made; a plugin cannot be unregistered.
            guard let plugin = Plugins.loss(named: name), let targets else { return .nan }
            return plugin.loss(gradient: grad, predictions: pred, targets: targets, rows: rows, cols: cols)
        }
    }

    /// The loss of `predictions` (rows, targets.width) against `targets`, and its gradient
    /// with respect to the predictions (same shape).
    public func evaluate(predictions: [Float], targets: Dataset.Targets) throws(NNError) -> (loss: Float, gradient: [Float]) {
        let width = targets.width, rows = targets.rowCount
        try validate(targets: targets, outputSize: width)
        guard predictions.count == rows * width else {
            throw .shapeMismatch("\(predictions.count) predictions for \(rows) rows x \(width) targets")
        }
        var grad = [Float](repeating: 0, count: predictions.count)
        let loss: Float
        switch targets {
        case .classes(let labels, let classCount):
            if usesLabels(targets) {
                loss = labels.withUnsafeBufferPointer { l in
                    compute(grad: &grad, pred: predictions, rows: rows, cols: width, labels: l.baseAddress, targets: nil)
                }
            } else {
                var onehot = [Float](repeating: 0, count: rows * classCount)
                for (r, c) in labels.enumerated() { onehot[r * classCount + Int(c)] = 1 }
                loss = compute(grad: &grad, pred: predictions, rows: rows, cols: width, labels: nil, targets: onehot)
            }
        case .probabilities(let t, _), .values(let t, _):
            loss = compute(grad: &grad, pred: predictions, rows: rows, cols: width, labels: nil, targets: t)
        }
        return (loss, grad)
    }
}
