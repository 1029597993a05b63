extension Sequential {
    /// Trains the model by mini-batch backpropagation and returns the per-epoch logs.
    ///
    /// Each epoch shuffles the rows (Fisher–Yates from `SeededGenerator(seed:)`, one
    /// permutation carried over from epoch to epoch) unless `shuffle` is false, then for each
    /// batch of `batchSize` rows (the last may be smaller) runs forward, the loss, backward,
    /// optional clipping of the global gradient norm to `clipNorm`, and `optimizer`'s step.
    /// The learning rate of epoch e is `schedule.rate(epoch: e, base:)` of the optimizer's rate
    /// at the start. Validation uses `validation`, or else the last `validationSplit` fraction
    /// of `data` (taken before shuffling, as Keras does). Training metrics are accumulated over
    /// the epoch's batches. The same seed and thread count give bit-identical weights.
    ///
    /// Divergence stops training: when a batch's loss is NaN or infinite, or the parameters
    /// are at the end of an epoch, `fit` restores the parameters of the latest epoch start
    /// that gave a finite loss on its first batch (finite weights can still overflow the
    /// forward pass, so finiteness alone proves nothing), resets `optimizer`'s state and
    /// throws `diverged` naming that epoch.
    ///
    /// `initialEpoch` resumes a run (as Keras's initial_epoch): epochs `initialEpoch..<epochs`
    /// run, after replaying the data order of the epochs before; with the optimizer and the
    /// layers' random states restored from a checkpoint (`Sequential.loadCheckpoint`) the
    /// weights come out bitwise as an uninterrupted run's.
    ///
    /// `augmentation` moves and mirrors the image samples of each training batch (never the
    /// validation rows), drawing from a generator seeded by `seed`, the epoch and the batch.
    ///
    /// `precision` is the arithmetic of the layers' products in training (`.bf16`: bf16 inputs,
    /// fp32 accumulation, fp32 master weights); evaluation and prediction stay fp32.
    ///
    /// `group` trains data-parallel (`DataParallelGroup`): every process calls fit with the same
    /// model, data, seed and options; the weights (and buffers) start as rank 0's, each process
    /// takes its share of every shuffled global batch of `batchSize` rows, gradients are summed
    /// over the group as backward finishes each layer (each scaled by its share, so the update
    /// is the global batch's), and every process applies the same update. Training and
    /// validation metrics cover all processes' rows, and the weights are checked to be
    /// identical on every process at the end of each epoch. Batch normalization uses each
    /// process's own rows; augmentation draws per process.
    ///
    /// Throws `shapeMismatch` when the data does not fit the model (or `augmentation` the sample shape), `invalidData` for targets
    /// the loss cannot use, `invalidArgument` for bad sizes or fractions, `unsupported` for a
    /// precision this CPU lacks, and `diverged`.
    @discardableResult
    public func fit(_ data: Dataset, epochs: Int, batchSize: Int = 32, loss: Loss, optimizer: any Optimizer,
                    validation: Dataset? = nil, validationSplit: Double = 0, metrics: [Metric] = [],
                    shuffle: Bool = true, seed: UInt64 = 0, schedule: LearningRateSchedule = .constant,
                    clipNorm: Float? = nil, earlyStopping: EarlyStopping? = nil,
                    callbacks: [any TrainingCallback] = [], initialEpoch: Int = 0,
                    dataOrder: DataOrder? = nil, augmentation: ImageAugmentation? = nil,
                    precision: Precision = .fp32, group: (any DataParallelGroup)? = nil) throws(NNError) -> History {
        func setup() throws(NNError) -> (Dataset, Dataset?, ImageAugmentation?) {
            try fitSetup(data, epochs: epochs, batchSize: batchSize, loss: loss, validation: validation, validationSplit: validationSplit,
                         metrics: metrics, schedule: schedule, clipNorm: clipNorm, earlyStopping: earlyStopping,
                         initialEpoch: initialEpoch, augmentation: augmentation, precision: precision)
        }
        let (train, valid, augmentation): (Dataset, Dataset?, ImageAugmentation?)
        if let group {
            // A check that fails on some processes only must not leave the others waiting.
            var prepared: (Dataset, Dataset?, ImageAugmentation?)?, failure: NNError?
            do { prepared = try setup() } catch { failure = error }
            try group.agree(failure, during: "its checks before training")
            (train, valid, augmentation) = prepared!
        } else {
            (train, valid, augmentation) = try setup()
        }

        var history = History()
        // The data order: a caller's DataOrder continued (one fit call per epoch, as
        // nnb_train_epoch makes, then costs one shuffle per epoch), else replayed from the seed.
        let carried = dataOrder.flatMap { $0.seed == seed && $0.epochs == initialEpoch && $0.order.count == train.count ? $0 : nil }
        var rng = carried?.rng ?? SeededGenerator(seed: seed)
        var order = carried?.order ?? Array(0..<train.count)
        let batch = min(batchSize, train.count)
        let trainer = Trainer(model: self, loss: loss, optimizer: optimizer, clipNorm: clipNorm, precision: precision,
                              data: train)
        trainer.prepare(batchSize: batch)
        if let augmentation { trainer.prepare(augmentation: augmentation) }
        if let group {
            // Every process must run the same loop (the same number of steps and sums), or the
            // group waits forever: the sizes that set it are checked first, on every process alike.
            var h: UInt64 = 0xcbf2_9ce4_8422_2325
            let stopping = earlyStopping.map { [$0.patience, Int(truncatingIfNeeded: $0.minDelta.bitPattern)] + $0.monitor.utf8.map(Int.init) } ?? [-1]
            for v in [train.count, valid?.count ?? -1, parameterCount, bufferCount, batch, epochs, initialEpoch, shuffle ? 1 : 0,
                      metrics.count, callbacks.isEmpty ? 0 : 1, Int(truncatingIfNeeded: seed)] + stopping {
                h = (h ^ UInt64(bitPattern: Int64(v))) &* 0x100_0000_01b3
            }
            guard try group.agrees(on: h) else {
                throw .invalidArgument("data-parallel training: rank \(group.rank) of \(group.size) has other data sizes, model size or options (rows \(train.count), validation rows \(valid?.count ?? 0), \(parameterCount) parameters, batch \(batch), epochs \(initialEpoch)..<\(epochs), seed \(seed)) than rank 0; every process must call fit alike")
            }
            trainer.join(group)
            try group.broadcast(parameters) // every process starts from rank 0's weights
            if buffers.count > 0 { try group.broadcast(buffers) }
            // Dropout draws its own masks on each process (rank 0 keeps the model's stream).
            if group.rank > 0 {
                for state in randomStates {
                    var g = SeededGenerator(seed: state.words.reduce(UInt64(group.rank)) { ($0 ^ $1) &* 0x100_0000_01b3 })
                    try setRandomState(g.fork().stateWords, path: state.path)
                }
            }
        }
        let baseRate = optimizer.learningRate
        let batchesPerEpoch = (train.count + batch - 1) / batch
        var best: (value: Double, epoch: Int, parameters: [Float])?
        var sinceBest = 0
        var stop = false
        // The weights of this epoch's start, and of the latest start that a finite loss vouched for.
        var epochStart = FloatStorage(count: epochs > 0 ? parameterCount : 0)
        var verified = FloatStorage(count: epochs > 0 ? parameterCount : 0)
        var verifiedEpoch = 0 // 1-based; 0: none yet (the weights are still the initial ones)
        if shuffle && carried == nil { for _ in 0..<initialEpoch { rng.shuffle(&order) } } // the order the done epochs saw
        defer {
            if let dataOrder {
                dataOrder.seed = seed
                dataOrder.rng = rng
                dataOrder.order = order
                dataOrder.epochs = initialEpoch + history.epochs.count
            }
        }

        epochLoop: for epoch in initialEpoch..<epochs {
            optimizer.learningRate = schedule.rate(epoch: epoch, base: baseRate)
            if shuffle { rng.shuffle(&order) }
            epochStart.pointer.update(from: parameters.baseAddress!, count: parameterCount)
            func diverged(_ what: String) -> NNError {
                if verifiedEpoch > 0 { parameters.baseAddress!.update(from: verified.pointer, count: parameterCount) }
                optimizer.reset()
                return .diverged("in epoch \(epoch + 1), \(what) (learning rate \(optimizer.learningRate) with \(optimizer.name): try a smaller rate, clipNorm, or standardized inputs); the weights are back to those of the start of epoch \(max(verifiedEpoch, 1)), the last that gave a finite loss, and the optimizer's state is reset")
            }
            var acc = MetricAccumulator(metrics: metrics, width: outputSize)
            var localLoss: Float = 0
            var b = 0
            var start = 0
            while start < train.count {
                let end = min(start + batch, train.count)
                // Each process draws its own moves (rank 0 the single process's stream).
                var moves = ImageAugmentation.generator(seed: seed &+ UInt64(group?.rank ?? 0) &* 0x9e37_79b9_7f4a_7c15, epoch: epoch, batch: b)
                let lossValue: Float, rows: ArraySlice<Int>
                if let group {
                    let share = group.share(of: end - start)
                    rows = order[(start + share.lowerBound)..<(start + share.upperBound)]
                    let losses = try trainer.step(indices: rows, globalRows: end - start, augmenting: augmentation,
                                                  generator: &moves)
                    lossValue = losses.global
                    localLoss = losses.local
                } else {
                    rows = order[start..<end]
                    lossValue = try trainer.step(indices: rows, augmenting: augmentation, generator: &moves)
                    localLoss = lossValue
                }
                guard lossValue.isFinite else { throw diverged("the loss of batch \(b + 1) is \(lossValue)") }
                if b == 0 {
                    swap(&epochStart, &verified)
                    verifiedEpoch = epoch + 1
                }
                if !rows.isEmpty {
                    acc.add(loss: localLoss, outputs: trainer.output!, n: rows.count,
                            labels: trainer.batcher.labelPointer, targets: trainer.batcher.targetPointer)
                }
                if !callbacks.isEmpty {
                    var p = BatchProgress(epoch: epoch, batch: b, batchesPerEpoch: batchesPerEpoch, size: end - start, loss: lossValue)
                    p.epochLoss = acc.meanLoss
                    p.epochAccuracy = acc.accuracy
                    for cb in callbacks where cb.batchEnded(p) == .stop { stop = true }
                    if let group { stop = try group.any(stop) } // every process stops at the same step
                }
                b += 1
                start = end
                if stop { break }
            }
            if let i = parameters.firstIndex(where: { !$0.isFinite }) {
                throw diverged("parameter \(i) is \(parameters[i]) after the epoch's last step")
            }
            if let group {
                try acc.sum(over: group)
                guard try group.agrees(on: parameterHash) else {
                    throw .invalidData("data-parallel training: the weights of rank \(group.rank) of \(group.size) differ from rank 0's after epoch \(epoch + 1) (the processes must run the same model, data, seed and options)")
                }
            }
            // Batch normalization's running statistics: rank 0's, on every process, for the
            // evaluation and the saved model.
            if let group, buffers.count > 0 { try group.broadcast(buffers) }
            var logs = acc.results()
            logs["lr"] = Double(optimizer.learningRate)
            if let valid {
                let v = try evaluate(valid, loss: loss, metrics: metrics, batchSize: max(batch, 256), group: group)
                for (k, x) in v { logs["val_" + k] = x }
            }
            history.epochs.append(logs)
            for cb in callbacks where cb.epochEnded(epoch, logs: logs) == .stop { stop = true }
            if let group { stop = try group.any(stop) }

            if let es = earlyStopping {
                guard let value = logs[es.monitor] else {
                    throw .unknownName("early stopping monitors '\(es.monitor)', which is not logged; logged: \(logs.keys.sorted().joined(separator: ", "))")
                }
                let better: Bool
                if let best { better = es.maximize ? value > best.value + es.minDelta : value < best.value - es.minDelta } else { better = true }
                if better {
                    best = (value, epoch, es.restoreBest ? parameterValues : [])
                    sinceBest = 0
                } else {
                    sinceBest += 1
                    if sinceBest >= es.patience { stop = true } // as Keras: stop after `patience` epochs without improvement
                }
            }
            if stop {
                history.stoppedEarly = epoch < epochs - 1
                break epochLoop
            }
        }
        if let es = earlyStopping, let best {
            history.bestEpoch = best.epoch
            if es.restoreBest { parameters.baseAddress!.update(from: best.parameters, count: parameterCount) }
        }
        return history
    }

    /// fit's checks of its arguments, and the training and validation rows they give.
    private func fitSetup(_ data: Dataset, epochs: Int, batchSize: Int, loss: Loss, validation: Dataset?, validationSplit: Double,
                          metrics: [Metric], schedule: LearningRateSchedule, clipNorm: Float?, earlyStopping: EarlyStopping?,
                          initialEpoch: Int, augmentation: ImageAugmentation?,
                          precision: Precision) throws(NNError) -> (Dataset, Dataset?, ImageAugmentation?) {
        guard epochs >= 0 else { throw .invalidArgument("epochs must be non-negative, got \(epochs)") }
        guard initialEpoch >= 0 && initialEpoch <= epochs else {
            throw .invalidArgument("initialEpoch must be in [0, epochs] (\(epochs)), got \(initialEpoch)")
        }
        guard batchSize > 0 else { throw .invalidArgument("batchSize must be positive, got \(batchSize)") }
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw .invalidArgument("validationSplit must be in [0, 1), got \(validationSplit)")
        }
        if let clipNorm, !(clipNorm > 0) { throw .invalidArgument("clipNorm must be positive, got \(clipNorm)") }
        try precision.checkSupported()
        try Precision.checkTrainable(self)
        try schedule.validate()
        try checkCompatible(data, loss: loss)
        try checkMetrics(metrics, data.targets)
        let augmentation = augmentation.flatMap { $0.isIdentity ? nil : $0 }
        if let augmentation { try augmentation.check(sampleShape: sampleShape) }

        var train = data
        var valid = validation
        if validationSplit > 0 {
            guard validation == nil else { throw .invalidArgument("give either validation data or validationSplit, not both") }
            let vCount = Int((Double(data.count) * validationSplit).rounded())
            guard vCount >= 1 && vCount < data.count else {
                throw .invalidArgument("validationSplit \(validationSplit) of \(data.count) rows leaves \(vCount) validation rows and \(data.count - vCount) training rows; both must be non-empty")
            }
            train = data.uncheckedSubset(0..<(data.count - vCount))
            valid = data.uncheckedSubset((data.count - vCount)..<data.count)
        }
        if let valid { try checkCompatible(valid, loss: loss) }
        if let es = earlyStopping, es.monitor.hasPrefix("val_"), valid == nil {
            throw .invalidArgument("early stopping monitors '\(es.monitor)' but there is no validation data")
        }
        return (train, valid, augmentation)
    }

    /// The loss and `metrics` of the model on `data` (inference mode: dropout off):
    /// "loss" plus each metric's name.
    ///
    /// With `group`, each process evaluates its share of the rows (`DataParallelGroup.share`)
    /// and the sums are added over the group, so every process gets the figures of all rows.
    public func evaluate(_ data: Dataset, loss: Loss, metrics: [Metric] = [], batchSize: Int = 256,
                         group: (any DataParallelGroup)? = nil) throws(NNError) -> [String: Double] {
        guard batchSize > 0 else { throw .invalidArgument("batchSize must be positive, got \(batchSize)") }
        try checkCompatible(data, loss: loss)
        try checkMetrics(metrics, data.targets)
        var batcher = Batcher(model: self, data: data, loss: loss)
        let batch = max(1, min(batchSize, data.count))
        batcher.prepare(batchSize: batch)
        var acc = MetricAccumulator(metrics: metrics, width: outputSize)
        let mine = group?.share(of: data.count) ?? 0..<data.count
        let all = Array(0..<data.count)
        var start = mine.lowerBound
        while start < mine.upperBound {
            let end = min(start + batch, mine.upperBound)
            let l = batcher.step(indices: all[start..<end], training: false, backward: false)
            acc.add(loss: l, outputs: batcher.output!, n: end - start, labels: batcher.labelPointer, targets: batcher.targetPointer)
            start = end
        }
        if let group { try acc.sum(over: group) }
        return acc.results()
    }

    func checkMetrics(_ metrics: [Metric], _ targets: Dataset.Targets) throws(NNError) {
        for m in metrics {
            if m.needsClasses, case .values = targets {
                throw .invalidArgument("metric '\(m.name)' needs class targets, but the data has real-valued targets")
            }
            if case .topKAccuracy(let k) = m, k < 1 {
                throw .invalidArgument("top-k accuracy needs k >= 1, got \(k)")
            }
        }
    }
}

/// The data order of a run that `fit` is called for again and again (one epoch per call): the
/// shuffle generator and the permutation after the epochs so far. Passed to `fit(dataOrder:)`,
/// it saves replaying the shuffles of the epochs before; the order is the same either way.
public final class DataOrder {
    var seed: UInt64 = 0
    var epochs = -1
    var rng = SeededGenerator(seed: 0)
    var order: [Int] = []

    public init() {}
}
