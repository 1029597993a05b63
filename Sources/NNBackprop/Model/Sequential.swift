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

/// A network that applies its layers in order, trained by backpropagation; itself a layer, so
/// models nest.
///
/// ```swift
/// let model = try Sequential(inputShape: Shape([1, 28, 28]), seed: 42) {
///     Flatten()
///     try Dense(784, 256, activation: .relu)
///     try Dense(256, 10)
/// }
/// ```
///
/// The input shape is per sample (batch excluded); each layer computes its output shape from
/// its input's, and the model checks the whole chain when it is built. All parameters live in
/// one flat buffer (`parameters`, with `gradients` beside it) so an optimizer updates the whole
/// model with one CKernels step; non-trainable buffers live in `buffers`. State-dict names
/// follow the equivalent PyTorch `nn.Sequential`: a `Dense` with a fused activation counts as
/// two modules (Linear, then the activation), so `Flatten, Dense(.relu), Dense` is
/// `nn.Sequential(Flatten, Linear, ReLU, Linear)` with tensors "1.weight", "1.bias",
/// "3.weight", "3.bias"; a nested model's tensors are "k.<its names>".
public final class Sequential: Layer {
    public static let typeName = "Sequential"

    /// The layers, in order.
    public let layers: [any Layer]
    /// The shape of one input sample.
    public let sampleShape: Shape
    /// The shape of one output sample.
    public let outputSampleShape: Shape
    /// Input floats per sample (`sampleShape.count`).
    public var inputSize: Int { sampleShape.count }
    /// Output floats per sample.
    public var outputSize: Int { outputSampleShape.count }
    /// Each layer's output shape, in order.
    public let layerOutputShapes: [Shape]
    /// The most floats any sample has on its way through (input included).
    let widestSample: Int
    /// The seed the parameters were drawn from.
    public let seed: UInt64
    /// A scaler applied to every input before the first layer (by fit, evaluate, predict and
    /// infer), saved with the model. Nil: inputs are used as given. A nested model's scaler is
    /// not applied.
    public var scaler: (any FeatureScaler)?
    /// The loss the model was last trained with: every trainer (fit, the C API, the CLI) sets
    /// it, the model file keeps it, and evaluations that name no loss use it. Nil: not trained
    /// since it was built, or loaded from a file that has none.
    public var loss: Loss?
    /// The name of each output class (index i names output i; a one-output bce model has two,
    /// for 0 and 1), saved in the model file. Nil: classes are known by index only. Set with
    /// `setClassNames(_:)`, which checks them.
    public internal(set) var classNames: [String]?

    /// Number of trainable floats.
    public let parameterCount: Int
    /// Number of non-trainable floats.
    public let bufferCount: Int
    /// The parameters, gradients and buffers: the enclosing model's windows once it binds this
    /// one, else this model's own, allocated on first use. A model built from a spec (nested in
    /// a model file) allocates nothing before the loader has checked its size.
    private var paramStore: (params: ParameterSlice, grads: ParameterSlice)?
    private var bufferStore: ParameterSlice?
    /// Whether storage allocated on first use is drawn from `seed` (else zeros, to be loaded).
    private let drawsOnAllocation: Bool
    private var paramSlice: ParameterSlice {
        if let paramStore { return paramStore.params }
        paramStore = (ParameterSlice(count: parameterCount), ParameterSlice(count: parameterCount))
        bindParameters()
        if drawsOnAllocation { resetParameters(seed: seed) }
        return paramStore!.params
    }
    private var gradSlice: ParameterSlice {
        _ = paramSlice
        return paramStore!.grads
    }
    private var bufferSlice: ParameterSlice {
        if let bufferStore { return bufferStore }
        let b = ParameterSlice(count: bufferCount)
        bufferStore = b
        bindBuffers()
        if drawsOnAllocation { resetParameters(seed: seed) }
        return b
    }
    private var capacity = 0
    private var inputBuffer = GrowableBuffer()

    /// A model from `layers`, checking that each layer takes the previous one's output shape,
    /// and drawing all parameters from `SeededGenerator(seed:)`.
    ///
    /// `inputShape` is needed when the first layer does not fix it (a `Flatten`, an
    /// activation); `Dense(784, ...)` first implies `[784]`. Throws `shapeMismatch` naming the
    /// first layer (0-based) that does not fit, with both shapes; `invalidArgument` for an
    /// empty model, one whose input shape cannot be known, or one of more than 2^31 parameters.
    public convenience init(inputShape: Shape? = nil, seed: UInt64 = 0,
                            @LayerBuilder _ build: () throws -> [any Layer]) throws(NNError) {
        try self.init(layers: Sequential.run(build), inputShape: inputShape, seed: seed, initialize: true)
    }

    /// `Sequential(inputSize: 784) { ... }`: a model taking feature vectors of `inputSize`.
    public convenience init(inputSize: Int, seed: UInt64 = 0,
                            @LayerBuilder _ build: () throws -> [any Layer]) throws(NNError) {
        try self.init(layers: Sequential.run(build), inputShape: Shape(features: inputSize), seed: seed, initialize: true)
    }

    /// The builder's layers; layer constructors throw `NNError` (a result-builder closure
    /// cannot declare its error type, so another error is passed on as `invalidArgument`).
    private static func run(_ build: () throws -> [any Layer]) throws(NNError) -> [any Layer] {
        do { return try build() } catch let e as NNError { throw e } catch { throw .invalidArgument("building the model's layers: \(error)") }
    }

    /// A model from an array of layers; see `init(inputShape:seed:_:)`.
    public convenience init(layers: [any Layer], inputShape: Shape? = nil, seed: UInt64 = 0) throws(NNError) {
        try self.init(layers: layers, inputShape: inputShape, seed: seed, initialize: true)
    }

    /// A model from an array of layers taking feature vectors of `inputSize`.
    public convenience init(layers: [any Layer], inputSize: Int, seed: UInt64 = 0) throws(NNError) {
        try self.init(layers: layers, inputShape: Shape(features: inputSize), seed: seed, initialize: true)
    }

    /// Rebuilds a nested model from its spec ("layers": the specs of its layers).
    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["layers"])
        guard case .layers(let specs)? = spec.attributes["layers"] else {
            throw .invalidArgument("layer Sequential: attribute 'layers' is missing or not a list of layers")
        }
        // Nothing is allocated until the enclosing model binds it (or it is used on its own).
        try self.init(layers: Sequential.layers(from: specs, inputShape: inputShape), inputShape: inputShape, seed: 0,
                      initialize: true, allocatesLazily: true)
    }

    init(layers: [any Layer], inputShape: Shape?, seed: UInt64, initialize: Bool, allocatesLazily: Bool = false) throws(NNError) {
        guard !layers.isEmpty else { throw .invalidArgument("a Sequential model needs at least one layer") }
        // Without inputShape, the first layer that fixes one gives it, when only layers that keep
        // the shape (activations, dropout) come before it.
        let fixing = layers.firstIndex { $0.inputShape != nil }
        guard let first = inputShape ?? fixing.flatMap({ i in layers[..<i].allSatisfy { $0 is any ShapePreserving } ? layers[i].inputShape : nil }) else {
            throw .invalidArgument("cannot tell the model's input shape: no layer fixes it before one that changes shapes; pass inputShape:")
        }
        var current = first
        var outputs: [Shape] = []
        var parameters = 0, buffers = 0
        for (i, layer) in layers.enumerated() {
            let from = i == 0 ? "the model input" : "layer \(i - 1) (\(type(of: layers[i - 1]).typeName))"
            do {
                try layer.configure(inputShape: current)
                current = try layer.outputShape(for: current)
                outputs.append(current)
            } catch {
                throw .shapeMismatch("layer \(i) (\(type(of: layer).typeName)) does not take samples of shape \(current) from \(from): \(error.message)")
            }
            let (p, o1) = parameters.addingReportingOverflow(layer.parameterCount)
            let (b, o2) = buffers.addingReportingOverflow(layer.bufferCount)
            guard !o1, !o2, p <= Shape.maxElements, b <= Shape.maxElements else {
                throw .invalidArgument("the model would have more than 2^31 parameters (at layer \(i), \(type(of: layer).typeName)); refusing to allocate it")
            }
            (parameters, buffers) = (p, b)
            if let d = layer as? Dense, let owner = d.owner, !layers[..<i].contains(where: { $0 === owner }) {
                throw .invalidArgument(layers.contains(where: { $0 === owner })
                    ? "layer \(i) (Dense) uses the weights of a later layer; tie a layer to one before it"
                    : "layer \(i) (Dense) uses the weights of a layer that is not in the model")
            }
            // A layer keeps its input and buffers for backward, and its weights live in its model's
            // storage: one object in two places, or in two models, would compute wrong gradients
            // or update weights nothing reads. Sharing weights is Dense(tiedTo:).
            if let j = layers[..<i].firstIndex(where: { $0 === layer }) {
                throw .invalidArgument("layer \(i) (\(type(of: layer).typeName)) is the same object as layer \(j); make a new layer for each place (Dense(tiedTo:) shares weights)")
            }
        }
        self.layers = layers
        sampleShape = first
        outputSampleShape = current
        layerOutputShapes = outputs
        widestSample = outputs.reduce(first.count) { max($0, $1.count) }
        self.seed = seed
        parameterCount = parameters
        bufferCount = buffers
        drawsOnAllocation = initialize && allocatesLazily
        try LayerOwners.claim(layers, for: ObjectIdentifier(self))
        if !allocatesLazily {
            _ = paramSlice
            _ = bufferSlice
            if initialize { resetParameters(seed: seed) }
        }
    }

    deinit { LayerOwners.release(layers, of: ObjectIdentifier(self)) }

    /// Points every layer at its window of the model's parameter slices (each layer copies its
    /// current values there).
    private func bindParameters() {
        guard let store = paramStore else { return }
        var offset = 0
        for layer in layers where layer.parameterCount > 0 {
            let n = layer.parameterCount
            layer.bind(parameters: store.params.subslice(offset, n), gradients: store.grads.subslice(offset, n))
            offset += n
        }
    }

    /// The same for the buffers.
    private func bindBuffers() {
        guard let store = bufferStore else { return }
        var offset = 0
        for layer in layers where layer.bufferCount > 0 {
            layer.bind(buffers: store.subslice(offset, layer.bufferCount))
            offset += layer.bufferCount
        }
    }

    /// Builds layers from specs, each on the previous one's output shape, resolving tied
    /// weights ("tied_to": the index of the layer whose weights a `Dense` uses).
    public static func layers(from specs: [LayerSpec], inputShape: Shape) throws(NNError) -> [any Layer] {
        var layers: [any Layer] = []
        var shape = inputShape
        for (i, original) in specs.enumerated() {
            var spec = original
            let tie = spec.attributes.removeValue(forKey: "tied_to")
            do throws(NNError) {
                let layer = try LayerRegistry.make(spec, inputShape: shape)
                if let tie {
                    guard case .int(let k) = tie, k >= 0, k < i, let d = layer as? Dense, let owner = layers[k] as? Dense else {
                        throw NNError.invalidArgument("'tied_to' must name an earlier Dense layer by index, got \(tie)")
                    }
                    try d.tie(to: owner)
                }
                shape = try layer.outputShape(for: shape)
                layers.append(layer)
            } catch {
                throw error.prefixed("layer \(i) (\(spec.type))")
            }
        }
        return layers
    }

    /// Redraws every layer's parameters from `SeededGenerator(seed:)`, each layer from its own
    /// fork in order.
    public func resetParameters(seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        resetParameters(using: &g)
    }

    public func resetParameters(using generator: inout SeededGenerator) {
        for layer in layers {
            var lg = generator.fork()
            layer.resetParameters(using: &lg)
        }
    }

    /// All trainable parameters, one flat buffer (layer by layer, each as its `parameterLayout`).
    public var parameters: UnsafeMutableBufferPointer<Float> { paramSlice.buffer }
    /// The gradients, laid out as `parameters`: after a training step (or `computeGradients`),
    /// that step's; backward passes run by hand add to them until `zeroGradients()`.
    public var gradients: UnsafeMutableBufferPointer<Float> { gradSlice.buffer }

    /// The non-trainable buffers (running statistics), layer by layer.
    public var buffers: UnsafeMutableBufferPointer<Float> { bufferSlice.buffer }

    /// A copy of all parameters.
    public var parameterValues: [Float] { Array(parameters) }

    /// Sets every gradient to zero; backward passes then add to them, as in PyTorch.
    public func zeroGradients() {
        gradients.update(repeating: 0)
        beginStep()
    }

    /// Starts a training step: every gradient tensor counts as unwritten, so the step's
    /// backward overwrites it on first touch and adds on the second (tied weights). Cheaper
    /// than `zeroGradients()` by a pass over the gradients, with the same result for a step
    /// whose backward reaches every parameter, as a Sequential's does.
    func beginStep() { gradSlice.clock.step &+= 1 }

    /// Where each layer's parameters (and gradients) start in `parameters` (`gradients`): layer
    /// i owns [offsets[i], offsets[i + 1]); the last entry is parameterCount.
    public var parameterOffsets: [Int] {
        var offsets = [0]
        for layer in layers { offsets.append(offsets.last! + layer.parameterCount) }
        return offsets
    }

    /// The state dict: (PyTorch name, shape, offset into `parameters`) for each tensor.
    public var stateDictLayout: [TensorLayout] { layout(\.parameterLayout, \.parameterCount) }
    /// The buffers of the state dict: (PyTorch name, shape, offset into `buffers`).
    public var bufferStateDictLayout: [TensorLayout] { layout(\.bufferLayout, \.bufferCount) }

    private func layout(_ tensors: KeyPath<any Layer, [TensorLayout]>, _ size: KeyPath<any Layer, Int>) -> [TensorLayout] {
        var out: [TensorLayout] = []
        var module = 0, offset = 0
        for layer in layers {
            for p in layer[keyPath: tensors] { out.append(("\(module).\(p.name)", p.shape, offset + p.offset)) }
            module += layer.moduleCount
            offset += layer[keyPath: size]
        }
        return out
    }

    /// The state dict as name -> (shape, values), in order.
    public func stateDict() -> [(name: String, shape: [Int], values: [Float])] {
        func values(_ e: TensorLayout, _ base: UnsafeMutablePointer<Float>) -> (name: String, shape: [Int], values: [Float]) {
            (e.name, e.shape, Array(UnsafeBufferPointer(start: base + e.offset, count: e.shape.reduce(1, *))))
        }
        return stateDictLayout.map { values($0, paramSlice.pointer) } + bufferStateDictLayout.map { values($0, bufferSlice.pointer) }
    }

    // MARK: - Layer

    public var spec: LayerSpec { LayerSpec(type: Sequential.typeName, attributes: ["layers": .layers(layerSpecs)]) }

    /// Each layer's spec, with "tied_to" for a `Dense` that uses another's weights.
    var layerSpecs: [LayerSpec] {
        layers.map { layer in
            var spec = layer.spec
            if let d = layer as? Dense, let owner = d.owner, let k = layers.firstIndex(where: { $0 === owner }) {
                spec.attributes["tied_to"] = .int(k)
            }
            return spec
        }
    }

    public var inputShape: Shape? { sampleShape }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard input == sampleShape else {
            throw .shapeMismatch("the nested model takes samples of shape \(sampleShape), got \(input)")
        }
        return outputSampleShape
    }

    public func configure(inputShape: Shape) throws(NNError) { _ = try outputShape(for: inputShape) }

    /// A nested model's layers as elements of the enclosing description (the flat equivalent).
    public var descriptionElement: String { layers.map(\.descriptionElement).joined(separator: "-") }

    public var parameterLayout: [TensorLayout] { stateDictLayout }
    public var bufferLayout: [TensorLayout] { bufferStateDictLayout }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        precondition(parameters.count == parameterCount && gradients.count == parameterCount)
        if let store = paramStore {
            parameters.pointer.update(from: store.params.pointer, count: parameterCount)
            gradients.pointer.update(from: store.grads.pointer, count: parameterCount)
        }
        paramStore = (parameters, gradients)
        bindParameters()
    }

    public func bind(buffers: ParameterSlice) {
        precondition(buffers.count == bufferCount)
        if let store = bufferStore { buffers.pointer.update(from: store.pointer, count: bufferCount) }
        bufferStore = buffers
        bindBuffers()
    }

    // MARK: - Forward and backward

    public func validate(batch: Int, training: Bool) throws(NNError) {
        for (i, layer) in layers.enumerated() {
            do { try layer.validate(batch: batch, training: training) } catch { throw error.prefixed("layer \(i) (\(type(of: layer).typeName))") }
        }
    }

    /// Sizes every layer's buffers for batches of up to `batchSize` samples.
    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        inputBuffer.reserve(batchSize * inputSize)
        for layer in layers { layer.prepare(batchSize: batchSize) }
    }

    public func setTrainingPrecision(_ precision: Precision) {
        for layer in layers { layer.setTrainingPrecision(precision) }
    }

    /// The staging buffer for `batch` input samples; valid until the next prepare.
    func inputPointer(batch: Int) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        return inputBuffer.pointer!
    }

    /// Runs the layers on `batch` samples at `input`; returns the output in the last layer's
    /// buffer. `training` reaches every layer. No scaling, no checks. One sample in inference
    /// runs on the calling thread only (see `infer`).
    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        let cap = !training && batch == 1 ? nnk_set_thread_cap(1) : -1
        defer { if cap >= 0 { nnk_set_thread_cap(cap) } }
        prepare(batchSize: batch)
        var x = input
        var out = UnsafeMutablePointer(mutating: input)
        for layer in layers {
            out = layer.forward(x, batch: batch, training: training)
            x = UnsafePointer(out)
        }
        return out
    }

    /// Backpropagates dLoss/dOutput (batch, outputSize), which is overwritten, adding to
    /// `gradients`.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int) {
        _ = backward(gradOutput, batch: batch, needsInputGradient: false)
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        backward(gradOutput, batch: batch, needsInputGradient: needsInputGradient, layerDone: nil)
    }

    /// backward, calling `layerDone(i)` as soon as layer i's gradients are final (last layer
    /// first), so a data-parallel step can start reducing them while earlier layers still run.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool,
                  layerDone: ((Int) -> Void)?) -> UnsafeMutablePointer<Float>? {
        var g = gradOutput
        // Without an input gradient, the first layer with parameters needs none either, nor
        // does anything before it.
        // (A tied Dense owns no parameters but adds to its owner's gradient.)
        let firstTrainable = needsInputGradient ? -1 : layers.firstIndex { $0.parameterCount > 0 || $0 is Dense } ?? layers.count
        for i in stride(from: layers.count - 1, through: 0, by: -1) {
            guard let next = layers[i].backward(g, batch: batch, needsInputGradient: i > firstTrainable) else {
                // Nothing before this layer needs a gradient: the rest are final as they are.
                if let layerDone { for j in stride(from: i, through: 0, by: -1) { layerDone(j) } }
                return nil
            }
            layerDone?(i)
            g = next
        }
        return g
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
        try validate(batch: data.count, training: training)
        try Precision.checkTrainable(self)
        setTrainingPrecision(.fp32) // what a trainer last set does not carry over
        var batcher = Batcher(model: self, data: data, loss: loss)
        batcher.prepare(batchSize: data.count)
        let all = Array(0..<data.count)
        return batcher.step(indices: all[...], training: training, backward: true)
    }

    /// Throws unless `data` fits the model's input and output and the loss.
    func checkCompatible(_ data: Dataset, loss: Loss) throws(NNError) {
        try checkSampleShape(data.sampleShape, "the data")
        try loss.validate(targets: data.targets, outputSize: outputSize)
    }

    /// Samples of `shape` fit the model when the shapes are equal, or when either is a plain
    /// feature vector of the same element count (an MLP on images, flattened features for an
    /// image model).
    func checkSampleShape(_ shape: Shape, _ what: String) throws(NNError) {
        guard shape == sampleShape || ((shape.rank == 1 || sampleShape.rank == 1) && shape.count == inputSize) else {
            if shape.count != inputSize {
                throw .shapeMismatch("\(what) has \(shape.count) features per sample (shape \(shape)), the model expects \(inputSize) (shape \(sampleShape))")
            }
            throw .shapeMismatch("\(what) has samples of shape \(shape), the model takes shape \(sampleShape)")
        }
    }

}

/// Stages mini-batches into the model's input buffer and the label, target and loss-gradient
/// buffers, and runs one forward (and backward) pass: the part of a training step that
/// `Trainer`, `evaluate` and `computeGradients` share.
struct Batcher {
    let model: Sequential
    let data: Dataset?
    let loss: Loss
    /// Whether the loss takes class indices (softmax cross-entropy on class targets).
    let usesLabels: Bool
    /// Whether the targets have class indices (for accuracy metrics).
    let hasClasses: Bool
    let targetWidth: Int
    var labels = Int32Storage()
    var targets = GrowableBuffer()
    var lossGrad = GrowableBuffer()
    /// The outputs of the last pass (batch, outputSize), in the last layer's buffer.
    private(set) var output: UnsafeMutablePointer<Float>?

    init(model: Sequential, data: Dataset, loss: Loss) {
        self.init(model: model, loss: loss, targets: data.targets, data: data)
    }

    /// A batcher for batches the caller stages (`stage`), with targets of `targets`' kind.
    init(model: Sequential, loss: Loss, targets: Dataset.Targets, data: Dataset? = nil) {
        self.model = model
        self.data = data
        self.loss = loss
        usesLabels = loss.usesLabels(targets)
        if case .values = targets { hasClasses = false } else { hasClasses = true }
        targetWidth = targets.width
    }

    mutating func prepare(batchSize: Int) {
        model.prepare(batchSize: batchSize)
        labels.reserve(batchSize)
        targets.reserve(batchSize * targetWidth)
        lossGrad.reserve(batchSize * model.outputSize)
    }

    /// The buffers a batch of `rows` is written to: features (rows, inputSize), and labels
    /// (rows) when the loss or the metrics use class indices, else targets (rows, width).
    mutating func stage(rows: Int) -> (features: UnsafeMutablePointer<Float>, labels: UnsafeMutablePointer<Int32>?,
                                       targets: UnsafeMutablePointer<Float>?) {
        prepare(batchSize: rows)
        return (model.inputPointer(batch: rows), usesLabels || hasClasses ? labels.pointer : nil,
                usesLabels ? nil : targets.pointer)
    }

    /// Gathers the rows at `indices` of the data set into the staging buffers.
    mutating func gather(_ indices: ArraySlice<Int>) {
        let b = stage(rows: indices.count)
        data!.gatherBatch(indices: indices, features: b.features, labels: b.labels, targets: b.targets)
    }

    /// Scales the staged batch of `rows`, runs forward and the loss; with `backward`, sets the
    /// model's gradients to this batch's (zeroed once, then accumulated by the layers). A
    /// non-finite loss skips backward: its gradients would be garbage.
    mutating func run(rows n: Int, training: Bool, backward: Bool) -> Float {
        let x = model.inputPointer(batch: n)
        model.scaler?.transformRows(UnsafeMutableBufferPointer(start: x, count: n * model.inputSize))
        let y = model.forward(x, batch: n, training: training)
        output = y
        let g = backward ? lossGrad.pointer : nil
        let value = loss.compute(grad: g, pred: y, rows: n, cols: model.outputSize,
                                 labels: usesLabels ? UnsafePointer(labels.pointer) : nil,
                                 targets: usesLabels ? nil : UnsafePointer(targets.pointer))
        if backward, let g, value.isFinite {
            model.beginStep()
            _ = model.backward(g, batch: n, needsInputGradient: false, layerDone: layerDone)
        }
        return value
    }

    /// Called by `run`'s backward as each layer's gradients become final (data-parallel steps).
    var layerDone: ((Int) -> Void)?

    /// `gather` then `run`.
    mutating func step(indices: ArraySlice<Int>, training: Bool, backward: Bool) -> Float {
        gather(indices)
        return run(rows: indices.count, training: training, backward: backward)
    }

    /// The staged class labels, for metrics (nil without class targets).
    var labelPointer: UnsafePointer<Int32>? { hasClasses ? UnsafePointer(labels.pointer) : nil }
    /// The staged targets, for metrics (nil when the loss takes labels).
    var targetPointer: UnsafePointer<Float>? { usesLabels ? nil : UnsafePointer(targets.pointer) }
}

/// Which model each layer object belongs to: a layer can be part of one model only.
enum LayerOwners {
    nonisolated(unsafe) private static var owners: [ObjectIdentifier: ObjectIdentifier] = [:]
    private static let lock = PThreadMutex()

    /// Records `layers` as `model`'s; throws `invalidArgument` for one another model has.
    static func claim(_ layers: [any Layer], for model: ObjectIdentifier) throws(NNError) {
        try lock.withLock { () throws(NNError) in
            for (i, layer) in layers.enumerated() {
                if let other = owners[ObjectIdentifier(layer)], other != model {
                    throw NNError.invalidArgument("layer \(i) (\(type(of: layer).typeName)) is part of another model already; make a new layer (Dense(tiedTo:) shares weights)")
                }
            }
            for layer in layers { owners[ObjectIdentifier(layer)] = model }
        }
    }

    /// Forgets the layers that are `model`'s (a model whose init failed claimed none).
    static func release(_ layers: [any Layer], of model: ObjectIdentifier) {
        lock.withLock {
            for layer in layers where owners[ObjectIdentifier(layer)] == model { owners[ObjectIdentifier(layer)] = nil }
        }
    }
}
