/// What a callback tells the training loop.
public enum TrainingControl: Sendable {
    case proceed
    /// Stop after this batch or epoch (the history keeps the epochs finished so far).
    case stop
}

/// Progress after one mini-batch.
public struct BatchProgress: Sendable {
    /// 0-based epoch.
    public let epoch: Int
    /// 0-based batch within the epoch.
    public let batch: Int
    public let batchesPerEpoch: Int
    /// Rows in this batch.
    public let size: Int
    /// The batch's mean loss (before this step's update).
    public let loss: Float
    /// The mean loss over the epoch's batches so far, this one included.
    public internal(set) var epochLoss: Double = .nan
    /// The accuracy over the epoch's batches so far when `.accuracy` is among fit's metrics,
    /// else nil.
    public internal(set) var epochAccuracy: Double?
}

/// Hooks called by `fit`; return `.stop` to end training.
public protocol TrainingCallback: AnyObject {
    /// After each optimizer step. Keep it cheap: it runs in the training loop.
    func batchEnded(_ progress: BatchProgress) -> TrainingControl
    /// After each epoch, with that epoch's logs ("loss", metrics, "val_loss", "val_<metric>",
    /// "lr").
    func epochEnded(_ epoch: Int, logs: [String: Double]) -> TrainingControl
}

extension TrainingCallback {
    public func batchEnded(_ progress: BatchProgress) -> TrainingControl { .proceed }
    public func epochEnded(_ epoch: Int, logs: [String: Double]) -> TrainingControl { .proceed }
}

/// A callback from closures.
public final class ClosureCallback: TrainingCallback {
    private let onBatch: ((BatchProgress) -> TrainingControl)?
    private let onEpoch: ((Int, [String: Double]) -> TrainingControl)?

    public init(onBatchEnd: ((BatchProgress) -> TrainingControl)? = nil,
                onEpochEnd: ((Int, [String: Double]) -> TrainingControl)? = nil) {
        onBatch = onBatchEnd
        onEpoch = onEpochEnd
    }

    public func batchEnded(_ progress: BatchProgress) -> TrainingControl { onBatch?(progress) ?? .proceed }
    public func epochEnded(_ epoch: Int, logs: [String: Double]) -> TrainingControl { onEpoch?(epoch, logs) ?? .proceed }
}

/// Stops training when a monitored value has not improved for `patience` epochs.
public struct EarlyStopping: Sendable {
    /// The log key to watch ("val_loss", "val_accuracy", "loss", ...).
    public var monitor: String
    /// Epochs without improvement before stopping.
    public var patience: Int
    /// The smallest change that counts as an improvement.
    public var minDelta: Double
    /// Put back the parameters of the best epoch when training ends.
    public var restoreBest: Bool

    /// Higher is better for accuracies and r2, lower for losses and errors.
    public var maximize: Bool { monitor.hasSuffix("accuracy") || monitor.hasSuffix("r2") }

    public init(monitor: String = "val_loss", patience: Int = 5, minDelta: Double = 0, restoreBest: Bool = true) {
        self.monitor = monitor
        self.patience = patience
        self.minDelta = minDelta
        self.restoreBest = restoreBest
    }
}

/// The logs of a training run, one dictionary per finished epoch.
public struct History: Sendable {
    /// Per epoch: "loss", each metric, "val_loss" and "val_<metric>" with validation data, "lr".
    public internal(set) var epochs: [[String: Double]] = []
    /// True when early stopping or a callback ended training before the last epoch.
    public internal(set) var stoppedEarly = false
    /// The 0-based best epoch by the early-stopping monitor, when early stopping was used.
    public internal(set) var bestEpoch: Int?

    /// The values of `key` over the epochs (NaN where an epoch lacks it).
    public subscript(key: String) -> [Double] { epochs.map { $0[key] ?? .nan } }
}
