// Training through the C API: options, nnb_train, and the compile / batch / epoch calls.

import CNNBackprop
import NNBackprop
import NNBackpropMPI

/// The loss, optimizer and loop settings fixed by nnb_compile (or by nnb_train for its run).
struct CompiledTraining {
    var loss: Loss
    var optimizer: any Optimizer
    var batchSize: Int
    var shuffle: Bool
    var seed: UInt64
    var schedule: LearningRateSchedule
    var clipNorm: Float?
    /// options.augment_shift and augment_flip (nil: off).
    var augmentation: ImageAugmentation?
    /// options.precision.
    var precision: Precision
    /// The optimizer's rate before any schedule, which the schedule scales per epoch.
    var baseRate: Float
    /// options.epochs: the run's planned length (the cosine schedule spans it).
    var plannedEpochs: Int32
    var epochsRun = 0
    /// The step nnb_train_batch runs, made on its first call for the targets' kind (0 class
    /// indices, 1 probability rows, 2 values) and remade when the kind changes.
    var trainer: Trainer?
    var trainerKind = -1
    /// nnb_train_epoch's data order, carried from call to call (no replay of earlier epochs).
    let order = DataOrder()

    /// What a checkpoint records of this training.
    var progress: TrainingProgress {
        TrainingProgress(epochsCompleted: epochsRun, seed: seed, batchSize: batchSize, shuffle: shuffle)
    }
}

/// The defaults of the training options, in this library's full layout.
func defaultTrainOptions() -> nnb_train_options {
    var o = nnb_train_options()
    o.struct_size = UInt32(MemoryLayout<nnb_train_options>.size)
    o.epochs = 10
    o.batch_size = 32
    o.learning_rate = 1e-3
    o.beta1 = 0.9
    o.beta2 = 0.999
    o.eps = 1e-8
    o.huber_delta = 1
    o.step_size = 10
    o.gamma = 0 // 0: the schedule's own default (0.1 for step, 0.95 for exponential)
    o.shuffle = 1
    o.restore_best = 1
    o.weight_decay = -1 // -1: the optimizer's own default (0, or 0.01 for adamw)
    o.alpha = 0.99
    return o
}

@c(nnb_train_options_init_sized)
public func nnbTrainOptionsInitSized(_ options: UnsafeMutablePointer<nnb_train_options>?, _ size: Int) {
    guard let options, size >= 8, size <= MemoryLayout<nnb_train_options>.size else { return }
    initialize(options, with: defaultTrainOptions(), size: size)
}

/// The 0.1 symbol: programs built against that header have a struct ending before resume.
@c(nnb_train_options_init)
public func nnbTrainOptionsInit(_ options: UnsafeMutablePointer<nnb_train_options>?) {
    nnbTrainOptionsInitSized(options, MemoryLayout<nnb_train_options>.offset(of: \.resume)!)
}

/// The caller's options over the defaults, checked.
private func readOptions(_ options: UnsafePointer<nnb_train_options>?) throws -> nnb_train_options {
    guard let options else { throw CAPIFailure.null("options") }
    var o = defaultTrainOptions()
    try copyVersioned(options, into: &o, size: UnsafeRawPointer(options).load(as: UInt32.self), "nnb_train_options")
    func check(_ ok: Bool, _ message: @autoclosure () -> String) throws {
        if !ok { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, message()) }
    }
    try check(o.epochs >= 0, "epochs must be >= 0, got \(o.epochs)")
    try check(o.batch_size > 0, "batch_size must be positive, got \(o.batch_size)")
    try check(o.learning_rate > 0 && o.learning_rate.isFinite, "learning_rate must be positive, got \(o.learning_rate)")
    try check(o.momentum >= 0 && o.momentum < 1, "momentum must be in [0, 1), got \(o.momentum)")
    try check(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "beta1 and beta2 must be in [0, 1), got \(o.beta1), \(o.beta2)")
    try check(o.eps > 0, "eps must be positive, got \(o.eps)")
    try check(o.validation_split >= 0 && o.validation_split < 1, "validation_split must be in [0, 1), got \(o.validation_split)")
    try check(o.clip_norm >= 0 && o.clip_norm.isFinite, "clip_norm must be >= 0 (0 = off), got \(o.clip_norm)")
    try check(o.early_stopping_patience >= 0, "early_stopping_patience must be >= 0, got \(o.early_stopping_patience)")
    try check(o.warmup_epochs >= 0, "warmup_epochs must be >= 0, got \(o.warmup_epochs)")
    try check(o.label_smoothing >= 0 && o.label_smoothing < 1, "label_smoothing must be in [0, 1), got \(o.label_smoothing)")
    try check(o.nesterov == 0 || o.momentum > 0, "nesterov needs momentum > 0")
    try check(o.alpha >= 0 && o.alpha < 1, "alpha must be in [0, 1), got \(o.alpha)")
    try check(o.gamma >= 0 && o.gamma.isFinite, "gamma must be positive (0 = the schedule's default), got \(o.gamma)")
    try check(o.resume == 0 || o.resume == 1, "resume must be 0 or 1, got \(o.resume)")
    try check(o.augment_flip == 0 || o.augment_flip == 1, "augment_flip must be 0 or 1, got \(o.augment_flip)")
    try check(o.distributed == 0 || o.distributed == 1, "distributed must be 0 or 1, got \(o.distributed)")
    try check(o.mpi_comm == nil || o.distributed == 1, "mpi_comm is the communicator of distributed training; set distributed to 1 or leave mpi_comm NULL")
    try makePrecision(o).checkSupported()
    try checkApplicable(o)
    return o
}

/// Refuses an option changed from its default that the chosen optimizer, loss or schedule
/// would not use: every option takes effect or is an error, none is silently ignored.
private func checkApplicable(_ o: nnb_train_options) throws {
    let d = defaultTrainOptions()
    let written = o.optimizer.map { String(cString: $0) } ?? "adam"
    let optimizer = (try? OptimizerName(parsing: written))?.rawValue ?? written.lowercased()
    let loss = o.loss.map { String(cString: $0) } ?? "cross_entropy"
    let schedule = o.schedule.map { String(cString: $0) } ?? "constant"
    func only(_ option: String, _ changed: Bool, _ users: [String], _ chosen: String, _ kind: String) throws {
        guard changed, !users.contains(chosen) else { return }
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(option) applies to the \(users.joined(separator: ", ")) \(kind)\(users.count == 1 ? "" : "s"), not to \(kind) '\(chosen)'; leave it at its default")
    }
    let adams = ["adam", "adamw"]
    try only("nesterov", o.nesterov != d.nesterov, ["sgd"], optimizer, "optimizer")
    try only("momentum", o.momentum != d.momentum, ["sgd", "rmsprop"], optimizer, "optimizer")
    try only("beta1", o.beta1 != d.beta1, adams, optimizer, "optimizer")
    try only("beta2", o.beta2 != d.beta2, adams, optimizer, "optimizer")
    try only("eps", o.eps != d.eps, adams + ["rmsprop", "adagrad"], optimizer, "optimizer")
    try only("alpha", o.alpha != d.alpha, ["rmsprop"], optimizer, "optimizer")
    try only("weight_decay", o.weight_decay != d.weight_decay, adams + ["sgd", "rmsprop", "adagrad"], optimizer, "optimizer")
    try only("label_smoothing", o.label_smoothing != d.label_smoothing, ["cross_entropy"], loss, "loss")
    try only("huber_delta", o.huber_delta != d.huber_delta, ["huber"], loss, "loss")
    try only("step_size", o.step_size != d.step_size, ["step"], schedule, "schedule")
    try only("gamma", o.gamma != d.gamma, ["step", "exponential"], schedule, "schedule")
    let stepped = adams + ["sgd", "rmsprop", "adagrad"] // irprop adapts its own steps
    try only("schedule", schedule != "constant", stepped, optimizer, "optimizer")
    try only("warmup_epochs", o.warmup_epochs != d.warmup_epochs, stepped, optimizer, "optimizer")
    try only("restore_best", o.restore_best != d.restore_best && o.early_stopping_patience == 0, ["early stopping"], "none", "setting")
}

private func makeLoss(_ o: nnb_train_options) throws -> Loss {
    let name = o.loss.map { String(cString: $0) } ?? "cross_entropy"
    switch try Loss(name: name) {
    case .softmaxCrossEntropy: return .softmaxCrossEntropy(labelSmoothing: o.label_smoothing)
    case .huber:
        guard o.huber_delta > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "huber_delta must be positive, got \(o.huber_delta)") }
        return .huber(delta: o.huber_delta)
    case let other: return other
    }
}

private func makeOptimizer(_ o: nnb_train_options) throws -> any Optimizer {
    let name = (o.optimizer.map { String(cString: $0) } ?? "adam").lowercased()
    let wd = o.weight_decay
    guard wd == -1 || (wd >= 0 && wd.isFinite) else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "weight_decay must be >= 0, got \(wd)")
    }
    let decay = wd == -1 ? 0 : wd
    let kind: OptimizerName
    do { kind = try OptimizerName(parsing: name) } catch { throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, error.message) }
    switch kind {
    case .adam: return Adam(learningRate: o.learning_rate, beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: decay)
    case .adamw: return Adam.adamW(learningRate: o.learning_rate, beta1: o.beta1, beta2: o.beta2, epsilon: o.eps, weightDecay: wd == -1 ? 0.01 : wd)
    case .sgd: return SGD(learningRate: o.learning_rate, momentum: o.momentum, weightDecay: decay, nesterov: o.nesterov != 0)
    case .rmsprop:
        return RMSprop(learningRate: o.learning_rate, alpha: o.alpha, epsilon: o.eps, weightDecay: decay, momentum: o.momentum)
    case .adagrad: return Adagrad(learningRate: o.learning_rate, weightDecay: decay, epsilon: o.eps)
    case .irprop: return IRPROPMinus(initialStep: o.learning_rate)
    }
}

private func makeSchedule(_ o: nnb_train_options) throws -> LearningRateSchedule {
    let name = o.schedule.map { String(cString: $0) } ?? "constant"
    guard name != "step" || o.step_size > 0 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "step_size must be positive, got \(o.step_size)")
    }
    // checkApplicable has refused settings the schedule does not use; pass only the used ones.
    return try LearningRateSchedule.named(name, epochs: Int(o.epochs), stepSize: name == "step" ? Int(o.step_size) : nil,
                                          gamma: o.gamma == 0 || !["step", "exponential"].contains(name) ? nil : o.gamma,
                                          warmupEpochs: Int(o.warmup_epochs))
}

/// options.precision: NULL or "fp32", or "bf16".
private func makePrecision(_ o: nnb_train_options) throws(NNError) -> Precision {
    guard let name = o.precision else { return .fp32 }
    return try Precision(name: String(cString: name))
}

private func compile(_ o: nnb_train_options) throws -> CompiledTraining {
    let optimizer = try makeOptimizer(o)
    let augmentation = try ImageAugmentation(maxShift: Int(o.augment_shift), horizontalFlip: o.augment_flip != 0)
    return CompiledTraining(loss: try makeLoss(o), optimizer: optimizer, batchSize: Int(o.batch_size),
                            shuffle: o.shuffle != 0, seed: o.seed, schedule: try makeSchedule(o),
                            clipNorm: o.clip_norm > 0 ? o.clip_norm : nil,
                            augmentation: augmentation.isIdentity ? nil : augmentation, precision: try makePrecision(o),
                            baseRate: optimizer.learningRate, plannedEpochs: o.epochs)
}

/// Relays each epoch to the C callback; a nonzero return stops training.
private final class EpochRelay: TrainingCallback {
    let callback: nnb_epoch_callback
    let userData: UnsafeMutableRawPointer?
    let epochs: Int32
    /// The value early stopping watches ("val_loss" or "loss"), nil without early stopping:
    /// its best epoch so far goes into each report, by early stopping's rule (lower, first).
    let monitor: String?
    private var best: (value: Double, epoch: Int)?
    var started = ContinuousClock.now
    var last = nnb_epoch_report()

    init(_ callback: nnb_epoch_callback, _ userData: UnsafeMutableRawPointer?, epochs: Int32, monitor: String?) {
        self.callback = callback
        self.userData = userData
        self.epochs = epochs
        self.monitor = monitor
    }

    func batchEnded(_ progress: BatchProgress) -> TrainingControl { .proceed }

    func epochEnded(_ epoch: Int, logs: [String: Double]) -> TrainingControl {
        if let monitor, let value = logs[monitor], best == nil || value < best!.value { best = (value, epoch) }
        last = report(epoch: epoch, epochs: epochs, logs: logs, started: started, bestEpoch: best?.epoch)
        started = ContinuousClock.now
        return callback(&last, userData) != 0 ? .stop : .proceed
    }
}

func report(epoch: Int, epochs: Int32, logs: [String: Double], started: ContinuousClock.Instant,
            bestEpoch: Int? = nil) -> nnb_epoch_report {
    var r = nnb_epoch_report()
    r.best_epoch = bestEpoch.map { Int32($0 + 1) } ?? 0
    r.struct_size = UInt32(MemoryLayout<nnb_epoch_report>.size)
    r.epoch = Int32(epoch + 1)
    r.epochs = epochs
    r.loss = logs["loss"] ?? .nan
    r.accuracy = logs["accuracy"] ?? logs["binary_accuracy"] ?? .nan
    r.val_loss = logs["val_loss"] ?? .nan
    r.val_accuracy = logs["val_accuracy"] ?? logs["val_binary_accuracy"] ?? .nan
    r.learning_rate = logs["lr"] ?? .nan
    let d = ContinuousClock.now - started
    r.seconds = Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    return r
}

private func metrics(for loss: Loss) -> [Metric] {
    switch loss {
    case .softmaxCrossEntropy: return [.accuracy]
    case .binaryCrossEntropy: return [.binaryAccuracy]
    default: return []
    }
}

/// Copies a report into the caller's struct, honouring its struct_size when it set one.
private func deliver(_ r: nnb_epoch_report, to out: UnsafeMutablePointer<nnb_epoch_report>?) {
    guard let out else { return }
    var copy = r
    // Only the size field is read: the caller's struct may be smaller than this library's. One
    // left at 0 may be an ABI-1 struct, which ends before best_epoch; its size stays its own.
    let callerSize = UnsafeRawPointer(out).load(as: UInt32.self)
    copy.struct_size = callerSize
    let size = callerSize == 0 ? MemoryLayout<nnb_epoch_report>.offset(of: \.best_epoch)!
        : min(Int(callerSize), MemoryLayout<nnb_epoch_report>.size)
    withUnsafeBytes(of: &copy) { UnsafeMutableRawPointer(out).copyMemory(from: $0.baseAddress!, byteCount: size) }
}

/// The MPI group of a call with options.distributed = 1 (read from the caller's struct as it
/// is, before any check), else nil.
private func distributedGroup(_ options: UnsafePointer<nnb_train_options>?) throws -> MPIGroup? {
    guard let options else { return nil }
    let size = Int(UnsafeRawPointer(options).load(as: UInt32.self))
    guard size >= MemoryLayout<nnb_train_options>.offset(of: \.mpi_comm)! + MemoryLayout<UnsafeRawPointer?>.size,
          options.pointee.distributed == 1 else { return nil }
    return try MPIGroup(communicator: options.pointee.mpi_comm)
}

@c(nnb_train)
public func nnbTrain(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                     _ y: UnsafePointer<Float>?, _ yCols: Int, _ options: UnsafePointer<nnb_train_options>?,
                     _ last: UnsafeMutablePointer<nnb_epoch_report>?) -> nnb_status {
    return capiCall("nnb_train") {
        // Distributed: the group first, so that a check failing on some processes only is
        // reported to all (agree) instead of leaving the others waiting in fit's first sum.
        let group = try distributedGroup(options)
        var agreed = false
        do {
            try train(group: group, agreed: &agreed)
        } catch where group != nil && !agreed {
            let g = group!
            _ = try? g.agree(.invalidData("before training"), during: "its checks before training")
            let rank = "rank \(g.rank) of \(g.size)"
            switch error {
            case let f as CAPIFailure: throw CAPIFailure(f.status, "\(rank): \(f.message)")
            case let e as NNError: throw e.prefixed(rank)
            default: throw error
            }
        }
    }

    func train(group: MPIGroup?, agreed: inout Bool) throws {
        let h = try handle(model)
        let o = try readOptions(options)
        var training = try compile(o)
        let data = try dataset(h, x, rows, cols, y, yCols, loss: training.loss)
        try h.mutate("nnb_train") {
            if o.standardize != 0 {
                // Fitted on the rows that train, not on those validation_split holds out.
                let held = Int((Double(rows) * Double(o.validation_split)).rounded())
                h.model.scaler = Standardizer(fitting: held > 0 ? try data.subset(0..<(rows - held)) : data)
            }
            var initialEpoch = 0
            if o.resume != 0 {
                guard let checkpoint = h.checkpoint else {
                    throw CAPIFailure(NNB_ERR_NOT_READY, "options.resume is 1 but the model holds no checkpoint to resume: it was not loaded from one (nnb_model_save_checkpoint writes one), or an earlier resume used it")
                }
                let done = checkpoint.progress.epochsCompleted
                guard done < Int(o.epochs) else {
                    throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "the checkpoint has done \(done) epoch\(done == 1 ? "" : "s"); options.epochs (\(o.epochs)) is the total, so nothing is left to train")
                }
                guard o.seed == checkpoint.progress.seed else {
                    throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "options.seed is \(o.seed) but the checkpoint's run used seed \(checkpoint.progress.seed), which orders its data; give the same seed")
                }
                try checkpoint.progress.check(batchSize: Int(o.batch_size), shuffle: o.shuffle != 0)
                try checkpoint.restore(training.optimizer, parameterCount: h.model.parameterCount)
                initialEpoch = done
            }
            let monitor = o.early_stopping_patience > 0 ? (o.validation_split > 0 ? "val_loss" : "loss") : nil
            let relay = o.on_epoch.map { EpochRelay($0, o.user_data, epochs: o.epochs, monitor: monitor) }
            // Without a callback the last epoch's report is built here: its logs and its own time.
            var summary: [String: Double] = [:]
            var epochStarted = ContinuousClock.now, lastStarted = epochStarted
            let tracker = ClosureCallback(onEpochEnd: { _, logs in
                summary = logs
                lastStarted = epochStarted
                epochStarted = ContinuousClock.now
                return .proceed
            })
            if let group {
                agreed = true // this is the collective the other processes' failures meet; after it fit's errors are collective
                try group.agree(nil, during: "its checks before training")
            }
            // From here the weights move on from the checkpoint's: it is used (a refused call above
            // leaves it for the next one).
            h.checkpoint = nil
            let history = try h.model.fit(
                data, epochs: Int(o.epochs), batchSize: training.batchSize, loss: training.loss,
                optimizer: training.optimizer, validationSplit: Double(o.validation_split),
                metrics: metrics(for: training.loss), shuffle: training.shuffle, seed: training.seed,
                schedule: training.schedule, clipNorm: training.clipNorm,
                earlyStopping: o.early_stopping_patience > 0
                    ? EarlyStopping(monitor: monitor!,
                                    patience: Int(o.early_stopping_patience), restoreBest: o.restore_best != 0)
                    : nil,
                callbacks: [tracker] + (relay.map { [$0] } ?? []), initialEpoch: initialEpoch,
                augmentation: training.augmentation, precision: training.precision, group: group)
            training.epochsRun = initialEpoch + history.epochs.count
            h.compiled = training
            if !history.epochs.isEmpty {
                var r = relay?.last ?? report(epoch: training.epochsRun - 1, epochs: o.epochs, logs: summary, started: lastStarted)
                r.best_epoch = history.bestEpoch.map { Int32($0 + 1) } ?? 0
                deliver(r, to: last)
            }
        }
    }
}

@c(nnb_compile)
public func nnbCompile(_ model: OpaquePointer?, _ options: UnsafePointer<nnb_train_options>?) -> nnb_status {
    capiCall("nnb_compile") {
        let h = try handle(model)
        let o = try readOptions(options)
        // These act on the data nnb_train is given; nnb_compile has none, so they would be ignored.
        guard o.standardize == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "options.standardize fits a scaler on the training data, which nnb_compile does not see: use nnb_train (its first epoch fits it), or scale the rows yourself")
        }
        guard o.resume == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "options.resume continues a checkpoint in nnb_train; nnb_compile starts a new optimizer state")
        }
        guard o.distributed == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "options.distributed trains over MPI in nnb_train only; nnb_compile, nnb_train_batch and nnb_train_epoch run on one process")
        }
        let training = try compile(o)
        try h.mutate("nnb_compile") {
            h.compiled = training
            h.model.loss = training.loss
        }
    }
}

private func compiled(_ h: ModelHandle, _ function: String) throws -> CompiledTraining {
    guard let c = h.compiled else {
        throw CAPIFailure(NNB_ERR_NOT_READY, "call nnb_compile (or nnb_train) before \(function)")
    }
    return c
}

@c(nnb_train_batch)
public func nnbTrainBatch(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                          _ y: UnsafePointer<Float>?, _ yCols: Int, _ loss: UnsafeMutablePointer<Double>?) -> nnb_status {
    capiCall("nnb_train_batch") {
        let h = try handle(model)
        var c = try compiled(h, "nnb_train_batch")
        guard c.augmentation == nil else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "nnb_train_batch trains on the batch it is given as it is; augment_shift and augment_flip apply to nnb_train and nnb_train_epoch, which draw the batches (compile without them, or augment the batch yourself)")
        }
        let xs = try features(x, rows: rows, cols: cols, model: h.model)
        try h.mutate("nnb_train_batch") {
            h.checkpoint = nil // the weights move on from the checkpoint's
            // The batch goes straight into the compiled trainer's staging buffers: no data set,
            // and no allocation but y's checked copy once the buffers are large enough.
            let t = try targets(y, rows: rows, yCols: yCols, loss: c.loss, outputs: h.model.outputSize)
            try Dataset.validate(t, rows: rows)
            try c.loss.validate(targets: t, outputSize: h.model.outputSize)
            let kind: Int
            switch t {
            case .classes: kind = 0
            case .probabilities: kind = 1
            case .values: kind = 2
            }
            if c.trainer == nil || c.trainerKind != kind {
                c.trainer = try Trainer(model: h.model, loss: c.loss, optimizer: c.optimizer, clipNorm: c.clipNorm,
                                        precision: c.precision, targets: t)
                c.trainerKind = kind
                h.compiled = c
            }
            let trainer = c.trainer!
            let staged = try trainer.stage(rows: rows)
            staged.features.update(from: xs.baseAddress!, count: xs.count)
            switch t {
            case .classes(let labels, _): staged.labels!.update(from: labels, count: rows)
            case .probabilities(let v, _), .values(let v, _): staged.targets!.update(from: v, count: v.count)
            }
            // Not `loss?.pointee = try trainer.step(...)`: optional chaining would skip the step
            // itself when loss is NULL.
            let value = try trainer.step(rows: rows)
            loss?.pointee = Double(value)
        }
    }
}

@c(nnb_train_epoch)
public func nnbTrainEpoch(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                          _ y: UnsafePointer<Float>?, _ yCols: Int, _ out: UnsafeMutablePointer<nnb_epoch_report>?) -> nnb_status {
    capiCall("nnb_train_epoch") {
        let h = try handle(model)
        var c = try compiled(h, "nnb_train_epoch")
        let data = try dataset(h, x, rows, cols, y, yCols, loss: c.loss)
        try h.mutate("nnb_train_epoch") {
            h.checkpoint = nil // the weights move on from the checkpoint's
            let started = ContinuousClock.now
            // Epoch k of a run that nnb_train would have made: the data order of the epochs
            // before is replayed from the compiled seed, the schedule continues from the base rate.
            c.optimizer.learningRate = c.baseRate
            let history = try h.model.fit(data, epochs: c.epochsRun + 1, batchSize: c.batchSize, loss: c.loss,
                                          optimizer: c.optimizer, metrics: metrics(for: c.loss), shuffle: c.shuffle,
                                          seed: c.seed, schedule: c.schedule, clipNorm: c.clipNorm, initialEpoch: c.epochsRun,
                                          dataOrder: c.order, augmentation: c.augmentation, precision: c.precision)
            c.epochsRun += 1
            h.compiled = c
            deliver(report(epoch: c.epochsRun - 1, epochs: c.plannedEpochs, logs: history.epochs.last ?? [:], started: started), to: out)
        }
    }
}

@c(nnb_model_save_checkpoint)
public func nnbModelSaveCheckpoint(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> nnb_status {
    capiCall("nnb_model_save_checkpoint") {
        let h = try handle(model)
        let p = try string(path, "path")
        guard !p.isEmpty else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "path is empty") }
        try h.read {
            guard let c = h.compiled else {
                throw CAPIFailure(NNB_ERR_NOT_READY, "nothing to checkpoint: call nnb_compile or nnb_train first (nnb_model_save writes the model alone)")
            }
            try h.model.saveCheckpoint(to: p, optimizer: c.optimizer, progress: c.progress)
        }
    }
}
