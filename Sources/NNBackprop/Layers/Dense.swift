import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// How a layer's parameters are drawn at creation.
public enum Initializer: String, Sendable, CaseIterable {
    /// PyTorch's nn.Linear default: kaiming_uniform(a = sqrt(5)) for the weight, which is
    /// U(-1/sqrt(fanIn), 1/sqrt(fanIn)), and the same range for the bias.
    case pytorchDefault = "pytorch_default"
    /// U(-a, a), a = sqrt(6 / (fanIn + fanOut)); bias zero.
    case glorotUniform = "glorot_uniform"
    /// N(0, 2 / (fanIn + fanOut)); bias zero.
    case glorotNormal = "glorot_normal"
    /// U(-a, a), a = sqrt(6 / fanIn) (kaiming_uniform, ReLU gain, fan-in mode); bias zero.
    case heUniform = "he_uniform"
    /// N(0, 2 / fanIn); bias zero.
    case heNormal = "he_normal"
    /// All zeros (weight and bias).
    case zeros
}

/// A fully connected layer: y = act(x W^T + b), on the last dimension of each sample.
///
/// Shapes: a sample of shape [..., inputSize] gives [..., outputSize] (as PyTorch's nn.Linear:
/// a [T, F] sequence maps each of its T rows); W (outputSize, inputSize) as nn.Linear stores
/// it, b (outputSize). Forward and backward are the fused CKernels steps `nnk_dense_forward`
/// (bias and activation applied as the GEMM's epilogue) and `nnk_dense_backward`, over
/// batch x leading rows.
///
/// A layer made with `init(tiedTo:activation:)` uses another `Dense`'s weight and bias: it owns
/// no parameters, and its gradient adds to the owner's (tied weights).
public final class Dense: Layer {
    public static let typeName = "Dense"
    public static let aliases = ["linear"]
    public static let positionalAttributes = ["out_features"]

    /// Input features per row.
    public let inputFeatures: Int
    /// Output features per row.
    public let outputSize: Int
    public let activation: Activation
    public let initializer: Initializer
    /// The layer whose parameters this one uses, for tied weights.
    public private(set) var owner: Dense?

    /// The parameters and gradients: a model's slices once bound, else the layer's own,
    /// allocated (and drawn from `seed`) on first use, so building a model allocates its
    /// parameters once, after their count was checked.
    private var slices: (params: ParameterSlice, grads: ParameterSlice)?
    private let seed: UInt64
    private var own: (params: ParameterSlice, grads: ParameterSlice) {
        if let slices { return slices }
        let n = outputSize * inputFeatures + outputSize
        slices = (ParameterSlice(count: n), ParameterSlice(count: n))
        var g = SeededGenerator(seed: seed)
        resetParameters(using: &g)
        return slices!
    }
    private var params: ParameterSlice { owner?.own.params ?? own.params }
    private var grads: ParameterSlice { owner?.own.grads ?? own.grads }
    private var shape: Shape
    private var capacity = 0
    private var output = GrowableBuffer()
    private var preActivation = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var work = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?
    /// int8 inference state (`Sequential.quantizeInt8`): when set, inference-mode forward and
    /// `infer` run the int8 layer; training refuses the model.
    public internal(set) var int8: Int8Dense?

    /// A dense layer from `input` to `output` features, parameters drawn by `initializer`
    /// from `SeededGenerator(seed:)` (a `Sequential` redraws them from its own seed). Throws
    /// `invalidArgument` for a size below 1 or a weight of more than 2^31 floats.
    public init(inputSize input: Int, outputSize output: Int, activation: Activation = .identity,
                initializer: Initializer = .pytorchDefault, seed: UInt64 = 0) throws(NNError) {
        guard input > 0, output > 0 else {
            throw .invalidArgument("Dense: sizes must be positive, got in_features \(input), out_features \(output)")
        }
        let (w, o1) = input.multipliedReportingOverflow(by: output)
        let (n, o2) = w.addingReportingOverflow(output)
        guard !o1, !o2, n <= Shape.maxElements else {
            throw .invalidArgument("Dense(\(input), \(output)) would have more than 2^31 parameters")
        }
        inputFeatures = input
        outputSize = output
        self.activation = activation
        self.initializer = initializer
        shape = Shape.vector(input)
        self.seed = seed
    }

    /// `Dense(784, 256, activation: .relu)`: the same as `init(inputSize:outputSize:...)`.
    public convenience init(_ input: Int, _ output: Int, activation: Activation = .identity,
                            initializer: Initializer = .pytorchDefault, seed: UInt64 = 0) throws(NNError) {
        try self.init(inputSize: input, outputSize: output, activation: activation, initializer: initializer, seed: seed)
    }

    /// A layer that uses `other`'s weight and bias (same sizes) with its own activation.
    public convenience init(tiedTo other: Dense, activation: Activation = .identity) throws(NNError) {
        guard other.owner == nil else { throw .invalidArgument("Dense(tiedTo:): tie to the layer that owns the weights") }
        try self.init(inputSize: other.inputFeatures, outputSize: other.outputSize, activation: activation,
                      initializer: .zeros)
        owner = other
    }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["in_features", "out_features", "units", "activation", "alpha", "initializer"])
        guard spec.attributes["units"] == nil || spec.attributes["out_features"] == nil else {
            throw .invalidArgument("Dense: give units or out_features, not both")
        }
        let units = try spec.int(spec.attributes["units"] != nil ? "units" : "out_features")
        let input = try spec.int("in_features", default: inputShape.last)
        let act = try Activation(name: spec.string("activation", default: "identity"), alpha: spec.float("alpha", default: 0))
        let initName = try spec.string("initializer", default: Initializer.pytorchDefault.rawValue)
        guard let initializer = Initializer(rawValue: initName) else {
            throw .invalidArgument("Dense: unknown initializer '\(initName)'; known: \(Initializer.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try self.init(inputSize: input, outputSize: units, activation: act, initializer: initializer)
    }

    /// Ties this layer to `other` after both are built (the model file's "tied_to").
    func tie(to other: Dense) throws(NNError) {
        guard other !== self, other.owner == nil, other.inputFeatures == inputFeatures, other.outputSize == outputSize else {
            throw .shapeMismatch("Dense(\(inputFeatures), \(outputSize)) cannot use the weights of Dense(\(other.inputFeatures), \(other.outputSize))")
        }
        owner = other
        slices = nil
    }

    public var inputSize: Int? { inputFeatures }
    public var inputShape: Shape? { shape }

    /// The weight, (outputSize, inputSize) row-major.
    public var weight: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: params.pointer, count: outputSize * inputFeatures)
    }
    /// The bias, (outputSize).
    public var bias: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: params.pointer + outputSize * inputFeatures, count: outputSize)
    }
    /// dLoss/dWeight of the last step (see `Sequential.gradients`), (outputSize, inputSize).
    public var weightGradient: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: grads.pointer, count: outputSize * inputFeatures)
    }
    /// dLoss/dBias of the last step, (outputSize).
    public var biasGradient: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: grads.pointer + outputSize * inputFeatures, count: outputSize)
    }

    public var spec: LayerSpec {
        var a = activation.specAttributes
        a["in_features"] = .int(inputFeatures)
        a["out_features"] = .int(outputSize)
        if initializer != .pytorchDefault && owner == nil { a["initializer"] = .string(initializer.rawValue) }
        return LayerSpec(type: Dense.typeName, attributes: a)
    }

    public var moduleCount: Int { activation == .identity ? 1 : 2 }

    public var descriptionElement: String {
        if activation.hasNonDefaultAlpha { return spec.descriptionElement(omitting: ["in_features"]) }
        return activation == .identity ? "\(outputSize)" : "\(outputSize):\(activation.name)"
    }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard input.last == inputFeatures else {
            throw .shapeMismatch("Dense(\(inputFeatures), \(outputSize)) expects samples whose last dimension is \(inputFeatures), got shape \(input)")
        }
        return try Shape(Array(input.dimensions.dropLast()) + [outputSize])
    }

    public func configure(inputShape: Shape) throws(NNError) {
        _ = try outputShape(for: inputShape)
        if inputShape != shape {
            shape = inputShape
            capacity = 0 // rows per sample changed: buffers are resized at the next prepare
        }
    }

    public var parameterCount: Int { owner == nil ? outputSize * inputFeatures + outputSize : 0 }

    public var parameterLayout: [TensorLayout] {
        owner == nil ? [("weight", [outputSize, inputFeatures], 0), ("bias", [outputSize], outputSize * inputFeatures)] : []
    }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        guard owner == nil else { return }
        precondition(parameters.count == parameterCount && gradients.count == parameterCount)
        slices = ParameterSlice.rebind(slices, to: parameters, gradients)
    }

    public func resetParameters(using generator: inout SeededGenerator) {
        guard owner == nil else { return }
        if slices == nil { _ = own } // allocates (drawing from the layer's seed), then redraws below
        let fanIn = Float(inputFeatures), fanOut = Float(outputSize)
        let w = weight, b = bias
        func uniform(_ buf: UnsafeMutableBufferPointer<Float>, _ a: Float) {
            for i in buf.indices { buf[i] = generator.nextFloat(in: -a...a) }
        }
        func normal(_ buf: UnsafeMutableBufferPointer<Float>, _ std: Float) {
            for i in buf.indices { buf[i] = generator.nextGaussian(mean: 0, standardDeviation: std) }
        }
        switch initializer {
        case .pytorchDefault:
            let a = 1 / fanIn.squareRoot()
            uniform(w, a)
            uniform(b, a)
        case .glorotUniform:
            uniform(w, (6 / (fanIn + fanOut)).squareRoot()); b.update(repeating: 0)
        case .glorotNormal:
            normal(w, (2 / (fanIn + fanOut)).squareRoot()); b.update(repeating: 0)
        case .heUniform:
            uniform(w, (6 / fanIn).squareRoot()); b.update(repeating: 0)
        case .heNormal:
            normal(w, (2 / fanIn).squareRoot()); b.update(repeating: 0)
        case .zeros:
            w.update(repeating: 0); b.update(repeating: 0)
        }
    }

    /// GEMM rows for `batch` samples.
    private func rows(_ batch: Int) -> Int { batch * shape.leadingCount }

    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        let m = rows(batchSize)
        let threads = nnk_get_num_threads()
        output.reserve(m * outputSize)
        if activation.needsInput { preActivation.reserve(m * outputSize) }
        gradInput.reserve(m * inputFeatures)
        // Work for any row count up to the capacity: the GEMM work size is monotone in M
        // for the packed path, so take the max over the capacity and a single row.
        var need = 0
        for rows in [1, m] {
            need = max(need, nnk_sgemm_work_size(rows, outputSize, inputFeatures, threads))
            need = max(need, nnk_dense_backward_work_size(rows, outputSize, inputFeatures, threads))
        }
        work.reserve(need)
    }

    /// The products' arithmetic in training mode (`setTrainingPrecision`).
    private var trainingPrecision = Precision.fp32

    public func setTrainingPrecision(_ precision: Precision) { trainingPrecision = precision }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = input
        let p = params.pointer
        let z = activation.needsInput ? preActivation.pointer : nil
        if !training, let q = int8 {
            let bytes = q.workBytes(rows: rows(batch))
            work.reserve((bytes + 3) / 4)
            q.forward(input, rows: rows(batch), into: output.pointer!, bias: p + outputSize * inputFeatures,
                      activation: activation, work: UnsafeMutableRawPointer(work.pointer!), workBytes: bytes)
            return output.pointer!
        }
        nnk_dense_forward((training ? trainingPrecision : .fp32).kernel, output.pointer, z, outputSize, input, inputFeatures, p, inputFeatures,
                          p + outputSize * inputFeatures, rows(batch), outputSize, inputFeatures,
                          activation.kernel, activation.alpha, work.pointer, work.count)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        let dx = needsInputGradient ? gradInput.pointer : nil
        let z = activation.needsInput ? UnsafePointer(preActivation.pointer) : nil
        let g = grads
        let accumulate: Int32 = g.beginAccumulating() ? 1 : 0
        nnk_dense_backward(trainingPrecision.kernel, dx, g.pointer, g.pointer + outputSize * inputFeatures, gradOutput, outputSize,
                           lastInput, inputFeatures, params.pointer, inputFeatures, z, output.pointer,
                           rows(batch), outputSize, inputFeatures, activation.kernel, activation.alpha, accumulate,
                           work.pointer, work.count)
        return dx
    }

    /// This layer as a link of a one-sample dense chain (`nnk_dense_chain_forward_row`): fp32
    /// weights and samples of one row; nil for an int8 layer or samples of several rows.
    var chainLink: nnk_dense_link? {
        guard int8 == nil, shape.leadingCount == 1 else { return nil }
        let p = params.pointer
        return nnk_dense_link(W: p, b: p + outputSize * inputFeatures, in: inputFeatures, out: outputSize,
                              act: activation.kernel, alpha: activation.alpha)
    }

    public func inferenceScratchCount(rows batch: Int) -> Int {
        let m = rows(batch)
        if let q = int8 { return (q.workBytes(rows: m) + 3) / 4 }
        return m <= 4 ? 0 : nnk_sgemm_work_size(m, outputSize, inputFeatures, nnk_get_num_threads()) // X W^T with up to 4 rows never packs
    }

    public func infer(_ input: UnsafePointer<Float>, rows batch: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        let p = params.pointer
        if let q = int8 {
            let bytes = q.workBytes(rows: rows(batch))
            func run(_ work: UnsafeMutableRawPointer) {
                q.forward(input, rows: rows(batch), into: output, bias: p + outputSize * inputFeatures, activation: activation,
                          work: work, workBytes: bytes)
            }
            if let scratch, scratch.count * 4 >= bytes { return run(UnsafeMutableRawPointer(scratch.baseAddress!)) }
            return withUnsafeTemporaryAllocation(byteCount: bytes, alignment: 64) { run($0.baseAddress!) }
        }
        nnk_dense_forward(NNK_PRECISION_FP32, output, nil, outputSize, input, inputFeatures, p, inputFeatures, p + outputSize * inputFeatures,
                          rows(batch), outputSize, inputFeatures, activation.kernel, activation.alpha, scratch?.baseAddress,
                          scratch?.count ?? 0)
    }
}
