import CKernels

/// Batch normalization, as PyTorch's nn.BatchNorm1d (samples (C) or (C, L)) and nn.BatchNorm2d
/// (samples (C, H, W)): in training each channel is normalised by the batch's mean and biased
/// variance, and the running statistics move by `momentum` (the running variance with the
/// unbiased batch variance); in inference the running statistics are used.
///
/// Parameters "weight" and "bias" (C, with `affine`); buffers "running_mean", "running_var" (C)
/// and "num_batches_tracked" (1), PyTorch's state-dict names. A training batch must hold more
/// than one value per channel (PyTorch raises too): `Trainer` and `fit` check it.
public class BatchNormBase: Layer {
    public class var typeName: String { "BatchNorm" }
    /// Sample ranks the layer takes (1d: 1 or 2; 2d: 3).
    class var ranks: [Int] { [] }

    public let features: Int
    public let eps: Float
    public let momentum: Float
    public let affine: Bool

    private var params: (params: ParameterSlice, grads: ParameterSlice)?
    private var state: ParameterSlice?
    private var input: Shape?
    private var capacity = 0
    private var y = GrowableBuffer(), dx = GrowableBuffer()
    private var saveMean = GrowableBuffer(), saveInvstd = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?
    private var trainedLast = false

    /// Normalization of `features` channels; throws `invalidArgument` for a count below 1, an eps
    /// that is not positive, or a momentum outside [0, 1].
    public required init(features: Int, eps: Float = 1e-5, momentum: Float = 0.1, affine: Bool = true) throws(NNError) {
        guard features > 0, features <= Shape.maxElements / 8 else { throw .invalidArgument("\(Self.typeName): num_features must be positive, got \(features)") }
        guard eps > 0, eps.isFinite else { throw .invalidArgument("\(Self.typeName): eps must be positive, got \(eps)") }
        guard momentum >= 0, momentum <= 1 else { throw .invalidArgument("\(Self.typeName): momentum must be in [0, 1], got \(momentum)") }
        self.features = features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
    }

    public required convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["num_features", "eps", "momentum", "affine"])
        let affine = try spec.int("affine", default: 1)
        guard affine == 0 || affine == 1 else { throw .invalidArgument("layer \(spec.type): affine is 0 or 1, got \(affine)") }
        try self.init(features: spec.int("num_features", default: inputShape.dimensions[0]),
                      eps: spec.float("eps", default: 1e-5), momentum: spec.float("momentum", default: 0.1), affine: affine == 1)
    }

    public var spec: LayerSpec {
        var a: [String: LayerSpec.Value] = ["num_features": .int(features)]
        if eps != 1e-5 { a["eps"] = .float(eps) }
        if momentum != 0.1 { a["momentum"] = .float(momentum) }
        if !affine { a["affine"] = .int(0) }
        return LayerSpec(type: Self.typeName, attributes: a)
    }

    public var descriptionElement: String { spec.descriptionElement(omitting: ["num_features"]) }
    public var inputShape: Shape? { input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard Self.ranks.contains(input.rank), input.dimensions[0] == features else {
            throw .shapeMismatch("\(Self.typeName)(\(features)) takes samples of \(features) channels (\(Self.ranks.map { "rank \($0)" }.joined(separator: " or "))), got shape \(input)")
        }
        return input
    }

    public func configure(inputShape: Shape) throws(NNError) {
        _ = try outputShape(for: inputShape)
        input = inputShape
        capacity = 0
    }

    /// Values per channel per sample (H * W, L, or 1).
    private var spatial: Int { (input?.count ?? features) / features }

    // MARK: Parameters and buffers

    public var parameterCount: Int { affine ? 2 * features : 0 }
    public var parameterLayout: [TensorLayout] { affine ? [("weight", [features], 0), ("bias", [features], features)] : [] }
    public var bufferCount: Int { 2 * features + 1 }
    public var bufferLayout: [TensorLayout] {
        [("running_mean", [features], 0), ("running_var", [features], features), ("num_batches_tracked", [], 2 * features)]
    }

    private var ownParams: (params: ParameterSlice, grads: ParameterSlice) {
        if let params { return params }
        params = (ParameterSlice(count: parameterCount), ParameterSlice(count: parameterCount))
        var g = SeededGenerator(seed: 0)
        resetParameters(using: &g)
        return params!
    }
    private var buffers: ParameterSlice {
        if let state { return state }
        let s = ParameterSlice(count: bufferCount)
        s.pointer.update(repeating: 0, count: features)
        (s.pointer + features).update(repeating: 1, count: features)
        state = s
        return s
    }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        params = ParameterSlice.rebind(params, to: parameters, gradients)
    }

    public func bind(buffers slice: ParameterSlice) {
        slice.pointer.update(from: buffers.pointer, count: bufferCount)
        state = slice
    }

    /// weight 1, bias 0, running mean 0, running variance 1, no batches tracked (PyTorch's reset).
    public func resetParameters(using generator: inout SeededGenerator) {
        if affine {
            let p = ownParams.params.pointer
            p.update(repeating: 1, count: features)
            (p + features).update(repeating: 0, count: features)
        }
        let b = buffers.pointer
        b.update(repeating: 0, count: features)
        (b + features).update(repeating: 1, count: features)
        b[2 * features] = 0
    }

    /// The running statistics and the count of training batches seen.
    public var runningMean: [Float] { Array(UnsafeBufferPointer(start: buffers.pointer, count: features)) }
    public var runningVariance: [Float] { Array(UnsafeBufferPointer(start: buffers.pointer + features, count: features)) }
    public var batchesTracked: Int { Int(buffers.pointer[2 * features]) }

    // MARK: Forward and backward

    public func validate(batch: Int, training: Bool) throws(NNError) {
        guard !training || batch * spatial > 1 else {
            throw .invalidArgument("\(Self.typeName): a training batch needs more than one value per channel, got a batch of \(batch) samples of shape \(input.map(\.description) ?? "?") (as PyTorch, which raises too); use a larger batch or drop the last partial one")
        }
    }

    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        y.reserve(batchSize * (input?.count ?? features))
        dx.reserve(batchSize * (input?.count ?? features))
        saveMean.reserve(features)
        saveInvstd.reserve(features)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = x
        trainedLast = training
        let gamma = affine ? UnsafePointer(ownParams.params.pointer) : nil
        let beta = affine ? UnsafePointer(ownParams.params.pointer + features) : nil
        let b = buffers.pointer
        if training && batch * spatial > 1 {
            _ = nnk_batchnorm_forward_train(y.pointer, saveMean.pointer, saveInvstd.pointer, b, b + features, x, gamma, beta,
                                            batch, features, spatial, momentum, eps)
            b[2 * features] += 1
        } else {
            nnk_batchnorm_forward_eval(y.pointer, x, gamma, beta, b, b + features, batch, features, spatial, eps)
        }
        return y.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        precondition(trainedLast, "\(Self.typeName): backward follows a training forward")
        let g = affine ? ownParams.grads : nil
        let accumulate: Int32 = (g?.beginAccumulating() ?? false) ? 1 : 0
        let gamma = affine ? UnsafePointer(ownParams.params.pointer) : nil
        let out = needsInputGradient ? dx.pointer : nil
        nnk_batchnorm_backward(out, g?.pointer, g.map { $0.pointer + features }, gradOutput, lastInput, saveMean.pointer,
                               saveInvstd.pointer, gamma, batch, features, spatial, accumulate)
        return out
    }

    public func infer(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<Float>?) {
        let gamma = affine ? UnsafePointer(ownParams.params.pointer) : nil
        let beta = affine ? UnsafePointer(ownParams.params.pointer + features) : nil
        let b = buffers.pointer
        nnk_batchnorm_forward_eval(out, x, gamma, beta, b, b + features, rows, features, spatial, eps)
    }
}

/// BatchNorm1d: samples (C) or (C, L), as PyTorch's nn.BatchNorm1d on (N, C) or (N, C, L).
public final class BatchNorm1d: BatchNormBase {
    public override class var typeName: String { "BatchNorm1d" }
    override class var ranks: [Int] { [1, 2] }
}

/// BatchNorm2d: samples (C, H, W), as PyTorch's nn.BatchNorm2d.
public final class BatchNorm2d: BatchNormBase {
    public override class var typeName: String { "BatchNorm2d" }
    override class var ranks: [Int] { [3] }
}

/// Layer normalization over the trailing dimensions of each sample, as PyTorch's nn.LayerNorm:
/// mean and biased variance of the last `normalizedShape` dimensions, then an elementwise
/// "weight" and "bias" of that shape (with `affine`).
public final class LayerNorm: Layer {
    public static let typeName = "LayerNorm"
    public static let positionalAttributes = ["normalized_shape"]
    public let normalizedShape: Shape
    public let eps: Float
    public let affine: Bool

    private var params: (params: ParameterSlice, grads: ParameterSlice)?
    private var input: Shape?
    private var capacity = 0
    private var y = GrowableBuffer(), dx = GrowableBuffer()
    private var saveMean = GrowableBuffer(), saveInvstd = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    public init(_ normalizedShape: Shape, eps: Float = 1e-5, affine: Bool = true) throws(NNError) {
        guard eps > 0, eps.isFinite else { throw .invalidArgument("LayerNorm: eps must be positive, got \(eps)") }
        self.normalizedShape = normalizedShape
        self.eps = eps
        self.affine = affine
    }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["normalized_shape", "eps", "elementwise_affine"])
        let affine = try spec.int("elementwise_affine", default: 1)
        guard affine == 0 || affine == 1 else { throw .invalidArgument("layer LayerNorm: elementwise_affine is 0 or 1, got \(affine)") }
        let dims = spec.attributes["normalized_shape"] == nil ? inputShape.dimensions : try spec.ints("normalized_shape")
        try self.init(Shape(dims), eps: spec.float("eps", default: 1e-5), affine: affine == 1)
    }

    public var spec: LayerSpec {
        var a: [String: LayerSpec.Value] = ["normalized_shape": .ints(normalizedShape.dimensions)]
        if eps != 1e-5 { a["eps"] = .float(eps) }
        if !affine { a["elementwise_affine"] = .int(0) }
        return LayerSpec(type: LayerNorm.typeName, attributes: a)
    }

    public var inputShape: Shape? { input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard input.rank >= normalizedShape.rank, Array(input.dimensions.suffix(normalizedShape.rank)) == normalizedShape.dimensions else {
            throw .shapeMismatch("LayerNorm(\(normalizedShape)) normalises the trailing dimensions \(normalizedShape), but samples have shape \(input)")
        }
        return input
    }

    public func configure(inputShape: Shape) throws(NNError) {
        _ = try outputShape(for: inputShape)
        input = inputShape
        capacity = 0
    }

    private var cols: Int { normalizedShape.count }
    private var rowsPerSample: Int { (input?.count ?? cols) / cols }

    public var parameterCount: Int { affine ? 2 * cols : 0 }
    public var parameterLayout: [TensorLayout] {
        affine ? [("weight", normalizedShape.dimensions, 0), ("bias", normalizedShape.dimensions, cols)] : []
    }

    private var own: (params: ParameterSlice, grads: ParameterSlice) {
        if let params { return params }
        params = (ParameterSlice(count: parameterCount), ParameterSlice(count: parameterCount))
        var g = SeededGenerator(seed: 0)
        resetParameters(using: &g)
        return params!
    }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        params = ParameterSlice.rebind(params, to: parameters, gradients)
    }

    /// weight 1, bias 0 (PyTorch's reset).
    public func resetParameters(using generator: inout SeededGenerator) {
        guard affine else { return }
        let p = own.params.pointer
        p.update(repeating: 1, count: cols)
        (p + cols).update(repeating: 0, count: cols)
    }

    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        y.reserve(batchSize * (input?.count ?? cols))
        dx.reserve(batchSize * (input?.count ?? cols))
        saveMean.reserve(batchSize * rowsPerSample)
        saveInvstd.reserve(batchSize * rowsPerSample)
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = x
        let p = affine ? UnsafePointer(own.params.pointer) : nil
        nnk_layernorm_forward(y.pointer, saveMean.pointer, saveInvstd.pointer, x, p, p.map { $0 + cols }, batch * rowsPerSample, cols, eps)
        return y.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        let g = affine ? own.grads : nil
        let accumulate: Int32 = (g?.beginAccumulating() ?? false) ? 1 : 0
        let p = affine ? UnsafePointer(own.params.pointer) : nil
        let out = needsInputGradient ? dx.pointer : nil
        nnk_layernorm_backward(out, g?.pointer, g.map { $0.pointer + cols }, gradOutput, lastInput, saveMean.pointer,
                               saveInvstd.pointer, p, batch * rowsPerSample, cols, accumulate)
        return out
    }

    /// Per-row mean and inverse deviation of an inference pass.
    public func inferenceScratchCount(rows: Int) -> Int { 2 * rows * rowsPerSample }

    public func infer(_ x: UnsafePointer<Float>, rows: Int, into out: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<Float>?) {
        let p = affine ? UnsafePointer(own.params.pointer) : nil
        let n = rows * rowsPerSample
        nnk_layernorm_forward(out, scratch?.baseAddress, scratch.map { $0.baseAddress! + n }, x, p, p.map { $0 + cols }, n, cols, eps)
    }
}
