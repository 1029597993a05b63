/// One training step, the one that `fit`, the C API (`nnb_train`, `nnb_train_batch`,
/// `nnb_train_epoch`) and the CLI all run: stage a batch, start the step's gradients, forward
/// in training mode, the loss, a finite-loss check, backward, optional clipping of the global
/// gradient norm, and the optimizer's update. After `prepare(batchSize:)` a step allocates
/// nothing.
public final class Trainer {
    public let model: Sequential
    public let loss: Loss
    public let optimizer: any Optimizer
    /// The global gradient norm is clipped to this before each update (nil: no clipping).
    public let clipNorm: Float?
    /// The arithmetic of the layers' products in each step (`Precision`).
    public let precision: Precision
    var batcher: Batcher

    /// A trainer for `model` with targets of `targets`' kind (class labels, probabilities or
    /// values); throws `invalidArgument` for a clip norm that is not positive and
    /// `unsupported` for a precision this CPU cannot run.
    public init(model: Sequential, loss: Loss, optimizer: any Optimizer, clipNorm: Float? = nil,
                precision: Precision = .fp32, targets: Dataset.Targets) throws(NNError) {
        if let clipNorm, !(clipNorm > 0 && clipNorm.isFinite) {
            throw .invalidArgument("clipNorm must be positive, got \(clipNorm)")
        }
        try precision.checkSupported()
        try Precision.checkTrainable(model)
        try loss.validate(targets: targets, outputSize: model.outputSize)
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.clipNorm = clipNorm
        self.precision = precision
        batcher = Batcher(model: model, loss: loss, targets: targets)
        model.loss = loss
    }

    /// Rows of the batch `stage` last made room for (0: none staged).
    private var staged = 0

    /// fit's trainer; the caller has checked the precision.
    init(model: Sequential, loss: Loss, optimizer: any Optimizer, clipNorm: Float?, precision: Precision, data: Dataset) {
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
        self.clipNorm = clipNorm
        self.precision = precision
        batcher = Batcher(model: model, data: data, loss: loss)
        model.loss = loss
    }

    /// Sizes every buffer for batches of up to `batchSize` rows.
    public func prepare(batchSize: Int) { batcher.prepare(batchSize: batchSize) }

    /// Where the next batch of `rows` goes: features (rows, inputSize), class labels (rows) when
    /// the targets are classes, else targets (rows, width). Fill them, then call `step(rows:)`.
    public func stage(rows: Int) throws(NNError) -> (features: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>?,
                                                 targets: UnsafeMutablePointer<Float>?) {
        guard rows > 0 else { throw .invalidArgument("Trainer.stage: rows must be positive, got \(rows)") }
        staged = rows
        return batcher.stage(rows: rows)
    }

    /// One step on the staged batch of `rows`; returns its mean loss. A NaN or infinite loss
    /// leaves the weights and the optimizer as they were and throws `diverged`.
    @discardableResult
    public func step(rows: Int) throws(NNError) -> Float {
        guard rows == staged else {
            throw .invalidArgument("Trainer.step(rows: \(rows)): stage(rows:) made room for \(staged) rows; stage the batch first")
        }
        if batcher.usesLabels {
            let labels = batcher.labels.pointer
            for r in 0..<rows where labels[r] < 0 || Int(labels[r]) >= model.outputSize {
                throw .invalidData("Trainer.step: the label of row \(r) is \(labels[r]), outside 0..<\(model.outputSize)")
            }
        }
        try model.validate(batch: rows, training: true)
        try Precision.checkTrainable(model) // quantized since the trainer was made?
        model.setTrainingPrecision(precision)
        let value = batcher.run(rows: rows, training: true, backward: true)
        guard value.isFinite else {
            throw .diverged("the loss is \(value) (learning rate \(optimizer.learningRate) with \(optimizer.name): try a smaller rate, clipNorm, or standardized inputs); the weights were not updated")
        }
        update()
        return value
    }

    /// One image plane of scratch for `augment`, sized by `prepare(augmentation:)`.
    private var plane = FloatStorage(count: 0)

    /// Sizes the scratch that `step(indices:augmenting:)` needs for `augmentation`.
    func prepare(augmentation: ImageAugmentation) {
        let d = model.sampleShape.dimensions
        if d.count >= 2 { plane = FloatStorage(count: d[d.count - 2] * d[d.count - 1]) }
    }

    /// One step on the rows at `indices` of the data set the trainer was made for (fit's loop),
    /// moved and mirrored by `augmentation` with `generator` first (after
    /// `prepare(augmentation:)`); returns the loss without the finite check, which `fit` makes
    /// with its own recovery.
    func step(indices: ArraySlice<Int>, augmenting augmentation: ImageAugmentation? = nil,
              generator: inout SeededGenerator) throws(NNError) -> Float {
        try model.validate(batch: indices.count, training: true)
        try Precision.checkTrainable(model)
        batcher.gather(indices)
        if let augmentation {
            augmentation.apply(model.inputPointer(batch: indices.count), rows: indices.count, shape: model.sampleShape,
                               generator: &generator, plane: plane.pointer)
        }
        model.setTrainingPrecision(precision)
        let value = batcher.run(rows: indices.count, training: true, backward: true)
        if value.isFinite { update() }
        return value
    }

    /// The data-parallel step's reducer and sums (fit with a group); nil otherwise.
    private var reducer: GradientReducer?
    private var stepSums: [Double] = []

    /// Sets up data-parallel steps over `group`: backward hands each layer's gradients to the
    /// reducer as they become final.
    func join(_ group: any DataParallelGroup) {
        let r = GradientReducer(group: group, model: model)
        reducer = r
        batcher.layerDone = { r.layerDone($0) }
    }

    /// One data-parallel step: this process's `indices`, a slice of a global batch of
    /// `globalRows` (possibly empty), forward and backward, gradients summed over the group
    /// (each scaled by its share of the rows), the same update everywhere. Returns the global
    /// batch's mean loss (NaN or infinite on every process when any process's is: the update
    /// is then skipped everywhere) and this process's own.
    func step(indices: ArraySlice<Int>, globalRows: Int, augmenting augmentation: ImageAugmentation? = nil,
              generator: inout SeededGenerator) throws(NNError) -> (global: Float, local: Float) {
        guard let reducer else { preconditionFailure("Trainer.step(globalRows:) without join") }
        let n = indices.count, group = reducer.group
        reducer.begin(rows: n, globalRows: globalRows)
        var local: Float = 0
        // An error here must not leave the other processes waiting in the sums: it is reported
        // through them, so every process throws at the same step.
        var failure: NNError?
        if n > 0 {
            do throws(NNError) {
                try model.validate(batch: n, training: true)
                try Precision.checkTrainable(model)
                batcher.gather(indices)
                if let augmentation {
                    augmentation.apply(model.inputPointer(batch: n), rows: n, shape: model.sampleShape, generator: &generator,
                                       plane: plane.pointer)
                }
                model.setTrainingPrecision(precision)
                local = batcher.run(rows: n, training: true, backward: true)
            } catch {
                failure = error
            }
        }
        try reducer.finish(computed: failure == nil && n > 0 && local.isFinite)
        if stepSums.count != 2 + group.size { stepSums = [Double](repeating: 0, count: 2 + group.size) }
        for i in stepSums.indices { stepSums[i] = 0 }
        stepSums[0] = failure == nil ? Double(local) * Double(n) : 0
        stepSums[1] = failure == nil && !local.isFinite ? 1 : 0
        stepSums[2 + group.rank] = failure == nil ? 0 : 1
        try stepSums.withUnsafeMutableBufferPointer { (b) throws(NNError) in try group.sum(b) }
        if let failure { throw failure.prefixed("rank \(group.rank) of \(group.size)") }
        if let other = (0..<group.size).first(where: { stepSums[2 + $0] > 0 }) {
            throw .invalidData("data-parallel training: rank \(other) of \(group.size) failed at this step (its own error says why); rank \(group.rank) stops too")
        }
        let global = stepSums[1] > 0 ? Float.nan : Float(stepSums[0] / Double(max(globalRows, 1)))
        if global.isFinite { update() }
        return (global, local)
    }

    private func update() {
        if let clipNorm { clipGradients(model.gradients, maxNorm: clipNorm) }
        optimizer.step(parameters: model.parameters, gradients: UnsafeBufferPointer(model.gradients))
    }

    /// The outputs of the last step (rows, outputSize).
    var output: UnsafeMutablePointer<Float>? { batcher.output }
}
