import CKernels

/// Builds the layer list of a `Sequential` from a block of layer expressions.
@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ layer: any Layer) -> [any Layer] { [layer] }
    public static func buildExpression(_ layers: [any Layer]) -> [any Layer] { layers }
    public static func buildBlock(_ parts: [any Layer]...) -> [any Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Layer]?) -> [any Layer] { part ?? [] }
    public static func buildEither(first part: [any Layer]) -> [any Layer] { part }
    public static func buildEither(second part: [any Layer]) -> [any Layer] { part }
    public static func buildArray(_ parts: [[any Layer]]) -> [any Layer] { parts.flatMap { $0 } }
}

/// A network that applies its layers in order, trained by backpropagation.
///
/// ```swift
/// let model = try Sequential(seed: 42) {
///     Dense(784, 256, activation: .relu)
///     Dense(256, 128, activation: .relu)
///     Dense(128, 10)
/// }
/// ```
///
/// All parameters live in one flat buffer (`parameters`, with `gradients` beside it) so an
/// optimizer updates the whole model with one CKernels step. State-dict names follow the
/// equivalent PyTorch `nn.Sequential`: a `Dense` with a fused activation counts as two modules
/// (Linear, then the activation), so the model above is `nn.Sequential(Linear, ReLU, Linear,
/// ReLU, Linear)` and its tensors are "0.weight", "0.bias", "2.weight", "2.bias", "4.weight",
/// "4.bias".
public final class Sequential {
    /// The layers, in order.
    public let layers: [any Layer]
    /// Input features per row.
    public let inputSize: Int
    /// Outputs per row.
    public let outputSize: Int
    /// The seed the parameters were drawn from.
    public let seed: UInt64
    /// A scaler applied to every input before the first layer (by fit, evaluate and predict),
    /// saved with the model. Nil: inputs are used as given.
    public var scaler: (any FeatureScaler)?

    let parameterStorage: FloatStorage
    let gradientStorage: FloatStorage
    private var capacity = 0
    private var inputBuffer = GrowableBuffer()

    /// A model from `layers`, checking that each layer's input width matches the previous
    /// output width and drawing all parameters from `SeededGenerator(seed:)`.
    ///
    /// `inputSize` is needed only when the first sized layer is not first. Throws
    /// `shapeMismatch` naming the first layer (0-based) whose input does not fit, and
    /// `invalidArgument` for an empty model or one whose input width cannot be known.
    public convenience init(inputSize: Int? = nil, seed: UInt64 = 0, @LayerBuilder _ build: () -> [any Layer]) throws(NNError) {
        try self.init(layers: build(), inputSize: inputSize, seed: seed, initialize: true)
    }

    /// A model from an array of layers; see `init(inputSize:seed:_:)`.
    public convenience init(layers: [any Layer], inputSize: Int? = nil, seed: UInt64 = 0) throws(NNError) {
        try self.init(layers: layers, inputSize: inputSize, seed: seed, initialize: true)
    }

    init(layers: [any Layer], inputSize: Int?, seed: UInt64, initialize: Bool) throws(NNError) {
        guard !layers.isEmpty else { throw .invalidArgument("a Sequential model needs at least one layer") }
        guard let width = inputSize ?? layers.lazy.compactMap({ $0.inputSize }).first else {
            throw .invalidArgument("cannot tell the model's input width: no layer has a fixed input size; pass inputSize:")
        }
        // Width-agnostic layers before the first sized one take the first sized layer's width.
        var current = width
        for (i, layer) in layers.enumerated() {
            if let expected = layer.inputSize, expected != current {
                throw .shapeMismatch("layer \(i) (\(layer.spec.type)) expects \(expected) input features but receives \(current)\(i == 0 ? " (the model input)" : " from layer \(i - 1)")")
            }
            do { try layer.configure(inputSize: current) } catch { throw error.prefixed("layer \(i)") }
            current = layer.outputSize(forInputSize: current)
        }
        self.layers = layers
        self.inputSize = width
        self.outputSize = current
        self.seed = seed
        let total = layers.reduce(0) { $0 + $1.parameterCount }
        parameterStorage = FloatStorage(count: total)
        gradientStorage = FloatStorage(count: total)
        var offset = 0
        for layer in layers where layer.parameterCount > 0 {
            let n = layer.parameterCount
            layer.bind(parameters: ParameterSlice(storage: parameterStorage, offset: offset, count: n),
                       gradients: ParameterSlice(storage: gradientStorage, offset: offset, count: n))
            offset += n
        }
        if initialize { resetParameters(seed: seed) }
    }

    /// Redraws every layer's parameters from `SeededGenerator(seed:)`, each layer from its own
    /// fork in order.
    public func resetParameters(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        for layer in layers {
            var lg = g.fork()
            layer.resetParameters(using: &lg)
        }
    }

    /// All trainable parameters, one flat buffer (layer by layer, each as its `parameterLayout`).
    public var parameters: UnsafeMutableBufferPointer<Float> { parameterStorage.buffer }
    /// The gradients of the last backward pass, laid out as `parameters`.
    public var gradients: UnsafeMutableBufferPointer<Float> { gradientStorage.buffer }
    /// Number of trainable floats.
    public var parameterCount: Int { parameterStorage.count }

    /// A copy of all parameters.
    public var parameterValues: [Float] { Array(parameters) }

    /// The state dict: (PyTorch name, shape, offset into `parameters`) for each tensor.
    public var stateDictLayout: [(name: String, shape: [Int], offset: Int)] {
        var out: [(name: String, shape: [Int], offset: Int)] = []
        var module = 0, offset = 0
        for layer in layers {
            for p in layer.parameterLayout { out.append(("\(module).\(p.name)", p.shape, offset + p.offset)) }
            module += layer.moduleCount
            offset += layer.parameterCount
        }
        return out
    }

    /// The state dict as name -> (shape, values), in order.
    public func stateDict() -> [(name: String, shape: [Int], values: [Float])] {
        stateDictLayout.map { e in
            let n = e.shape.reduce(1, *)
            return (e.name, e.shape, Array(UnsafeBufferPointer(start: parameterStorage.pointer + e.offset, count: n)))
        }
    }

    // MARK: - Forward and backward

    /// Sizes every layer's buffers for batches of up to `batchSize` rows.
    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        inputBuffer.reserve(batchSize * inputSize)
        for layer in layers { layer.prepare(batchSize: batchSize) }
    }

    /// The staging buffer for `batch` input rows (batch, inputSize); valid until the next prepare.
    func inputPointer(batch: Int) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        return inputBuffer.pointer!
    }

    /// Runs the layers on `batch` rows at `input` (batch, inputSize); returns the output
    /// (batch, outputSize) in the last layer's buffer. No scaling, no checks.
    func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        var x = input
        var out = UnsafeMutablePointer(mutating: input)
        for layer in layers {
            out = layer.forward(x, batch: batch, training: training)
            x = UnsafePointer(out)
        }
        return out
    }

    /// Backpropagates dLoss/dOutput (batch, outputSize), which is overwritten, filling
    /// `gradients`.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        var g = gradOutput
        // The first layer with parameters needs no input gradient, nor does anything before it.
        let firstTrainable = layers.firstIndex { $0.parameterCount > 0 } ?? layers.count
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            guard let next = layers[i].backward(g, batch: batch, needsInputGradient: i > firstTrainable) else { break }
            g = next
        }
    }

    // MARK: - Prediction

    /// The outputs for `features`, flat row-major (n, inputSize); returns (n, outputSize).
    ///
    /// Applies `scaler` first; processes `batchSize` rows at a time. Throws `shapeMismatch`
    /// when the count is not a multiple of inputSize and `invalidData` for NaN or infinity.
    public func predict(_ features: [Float], batchSize: Int = 256) throws(NNError) -> [Float] {
        guard features.count % inputSize == 0 else {
            throw .shapeMismatch("predict: \(features.count) values is not a whole number of rows of \(inputSize) features")
        }
        if let bad = Dataset.firstNonFinite(features) {
            throw .invalidData("predict: features[row \(bad / inputSize), column \(bad % inputSize)] is \(features[bad]); features must be finite")
        }
        guard batchSize > 0 else { throw .invalidArgument("predict: batchSize must be positive, got \(batchSize)") }
        let rows = features.count / inputSize
        var out = [Float](repeating: 0, count: rows * outputSize)
        let chunk = min(batchSize, max(rows, 1))
        features.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                var start = 0
                while start < rows {
                    let n = min(chunk, rows - start)
                    let x = inputPointer(batch: n)
                    x.update(from: src.baseAddress! + start * inputSize, count: n * inputSize)
                    scaler?.transformRows(UnsafeMutableBufferPointer(start: x, count: n * inputSize))
                    let y = forward(x, batch: n, training: false)
                    (dst.baseAddress! + start * outputSize).update(from: y, count: n * outputSize)
                    start += n
                }
            }
        }
        return out
    }

    /// The outputs for `data`'s features, (count, outputSize).
    public func predict(_ data: Dataset, batchSize: Int = 256) throws(NNError) -> [Float] {
        guard data.featureCount == inputSize else {
            throw .shapeMismatch("predict: the data has \(data.featureCount) features, the model expects \(inputSize)")
        }
        return try predict(data.features, batchSize: batchSize)
    }

    /// The output for one sample of inputSize features: the fast path, one forward pass of
    /// one row with no chunking (the GEMMs take their matrix-vector path).
    public func predict(sample: [Float]) throws(NNError) -> [Float] {
        guard sample.count == inputSize else {
            throw .shapeMismatch("predict(sample:): got \(sample.count) features, the model expects \(inputSize)")
        }
        for (i, v) in sample.enumerated() where !v.isFinite {
            throw .invalidData("predict(sample:): feature \(i) is \(v); features must be finite")
        }
        let x = inputPointer(batch: 1)
        x.update(from: sample, count: inputSize)
        scaler?.transformRows(UnsafeMutableBufferPointer(start: x, count: inputSize))
        let y = forward(x, batch: 1, training: false)
        return Array(UnsafeBufferPointer(start: y, count: outputSize))
    }

    /// The arg-max class of each row's output, for classifiers.
    public func predictClasses(_ features: [Float]) throws(NNError) -> [Int32] {
        let out = try predict(features)
        return Metrics.argmaxRows(out, width: outputSize)
    }

    // MARK: - Gradients

    /// The mean loss of the model on `data` and, in `gradients`, its gradient with respect
    /// to every parameter: one full-batch forward and backward (dropout active when
    /// `training`). Used by full-batch optimizers and gradient checks.
    @discardableResult
    public func computeGradients(_ data: Dataset, loss: Loss, training: Bool = false) throws(NNError) -> Float {
        try checkCompatible(data, loss: loss)
        var batcher = Batcher(model: self, data: data, loss: loss)
        batcher.prepare(batchSize: data.count)
        let all = Array(0..<data.count)
        return batcher.step(indices: all[...], training: training, backward: true)
    }

    /// Throws unless `data` fits the model's input and output and the loss.
    func checkCompatible(_ data: Dataset, loss: Loss) throws(NNError) {
        guard data.featureCount == inputSize else {
            throw .shapeMismatch("the data has \(data.featureCount) features per row, the model expects \(inputSize)")
        }
        try loss.validate(targets: data.targets, outputSize: outputSize)
    }
}

/// Stages mini-batches of a data set into the model's buffers and runs one forward (and
/// backward) pass; holds the label, target and loss-gradient buffers of the fit loop.
struct Batcher {
    let model: Sequential
    let data: Dataset
    let loss: Loss
    let usesLabels: Bool
    /// Whether the targets have class indices (for accuracy metrics).
    let hasClasses: Bool
    var labels = Int32Storage()
    var targets = GrowableBuffer()
    var lossGrad = GrowableBuffer()
    /// The outputs of the last step (batch, outputSize), in the last layer's buffer.
    private(set) var output: UnsafeMutablePointer<Float>?

    init(model: Sequential, data: Dataset, loss: Loss) {
        self.model = model
        self.data = data
        self.loss = loss
        usesLabels = loss.usesLabels(data.targets)
        if case .values = data.targets { hasClasses = false } else { hasClasses = true }
    }

    mutating func prepare(batchSize: Int) {
        model.prepare(batchSize: batchSize)
        labels.reserve(batchSize)
        targets.reserve(batchSize * data.targets.width)
        lossGrad.reserve(batchSize * model.outputSize)
    }

    /// Loads the rows at `indices`, runs forward, returns the mean loss; with `backward`, fills
    /// the model's gradients.
    mutating func step(indices: ArraySlice<Int>, training: Bool, backward: Bool) -> Float {
        let n = indices.count
        prepare(batchSize: n)
        let x = model.inputPointer(batch: n)
        let needsLabels = usesLabels || hasClasses
        data.gatherBatch(indices: indices, features: x, labels: needsLabels ? labels.pointer : nil,
                         targets: usesLabels ? nil : targets.pointer)
        model.scaler?.transformRows(UnsafeMutableBufferPointer(start: x, count: n * model.inputSize))
        let y = model.forward(x, batch: n, training: training)
        output = y
        let g = backward ? lossGrad.pointer : nil
        let value = loss.compute(grad: g, pred: y, rows: n, cols: model.outputSize,
                                 labels: usesLabels ? UnsafePointer(labels.pointer) : nil,
                                 targets: usesLabels ? nil : UnsafePointer(targets.pointer))
        if backward, let g { model.backward(g, batch: n) }
        return value
    }
}
