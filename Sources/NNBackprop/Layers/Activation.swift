import CKernels

/// An element-wise activation function, one per CKernels `nnk_act`.
///
/// Used fused into `Dense` (applied as the GEMM's epilogue) or as its own layer
/// (`ActivationLayer`). Names are CKernels' ("relu", "leaky_relu", "gelu", ...).
public enum Activation: Sendable, Equatable, CustomStringConvertible {
    case identity
    case sigmoid
    case tanh
    case relu
    /// x > 0 ? x : alpha x (PyTorch's default alpha is 0.01).
    case leakyReLU(alpha: Float = 0.01)
    /// x > 0 ? x : alpha (e^x - 1).
    case elu(alpha: Float = 1)
    /// x Phi(x), exact erf form.
    case gelu
    /// GELU's tanh approximation.
    case geluTanh
    /// x sigmoid(x).
    case silu
    /// log(1 + e^x).
    case softplus

    /// Every activation with its default parameter, for tests and help text.
    public static let all: [Activation] = [.identity, .sigmoid, .tanh, .relu, .leakyReLU(), .elu(), .gelu, .geluTanh, .silu, .softplus]

    var kernel: nnk_act {
        switch self {
        case .identity: return NNK_ACT_IDENTITY
        case .sigmoid: return NNK_ACT_SIGMOID
        case .tanh: return NNK_ACT_TANH
        case .relu: return NNK_ACT_RELU
        case .leakyReLU: return NNK_ACT_LEAKY_RELU
        case .elu: return NNK_ACT_ELU
        case .gelu: return NNK_ACT_GELU_ERF
        case .geluTanh: return NNK_ACT_GELU_TANH
        case .silu: return NNK_ACT_SILU
        case .softplus: return NNK_ACT_SOFTPLUS
        }
    }

    /// The parameter of leakyReLU and elu; 0 for the others.
    public var alpha: Float {
        switch self {
        case .leakyReLU(let a), .elu(let a): return a
        default: return 0
        }
    }

    /// The CKernels name: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu",
    /// "gelu_tanh", "silu", "softplus".
    public var name: String { String(cString: nnk_act_name(kernel)) }

    /// Whether the backward pass needs the pre-activation (else the output suffices).
    var needsInput: Bool { nnk_act_needs_input(kernel) != 0 }

    /// The activation called `name` (CKernels' names, see `name`); `alpha` is used by
    /// leaky_relu and elu (0 means their default). Throws `unknownName`, and `invalidArgument`
    /// for a non-finite alpha.
    public init(name: String, alpha: Float = 0) throws(NNError) {
        guard alpha.isFinite else { throw .invalidArgument("activation '\(name)': alpha must be finite, got \(alpha)") }
        let code = name.withCString { nnk_act_from_name($0) }
        guard code >= 0 else {
            if name == "softmax" || name == "log_softmax" {
                throw .unknownName("'\(name)' is not an elementwise activation but a layer of its own: \(name == "softmax" ? "Softmax()" : "LogSoftmax()") in Swift, a separate element in a description (\"4-3-\(name)\", not \"4-3:\(name)\"), NNB_LAYER_ACTIVATION in a layer spec")
            }
            throw .unknownName("unknown activation '\(name)'; known: \(Activation.all.map(\.name).joined(separator: ", "))")
        }
        switch nnk_act(rawValue: UInt32(code)) {
        case NNK_ACT_IDENTITY: self = .identity
        case NNK_ACT_SIGMOID: self = .sigmoid
        case NNK_ACT_TANH: self = .tanh
        case NNK_ACT_RELU: self = .relu
        case NNK_ACT_LEAKY_RELU: self = .leakyReLU(alpha: alpha == 0 ? 0.01 : alpha)
        case NNK_ACT_ELU: self = .elu(alpha: alpha == 0 ? 1 : alpha)
        case NNK_ACT_GELU_ERF: self = .gelu
        case NNK_ACT_GELU_TANH: self = .geluTanh
        case NNK_ACT_SILU: self = .silu
        default: self = .softplus
        }
    }

    public var description: String {
        switch self {
        case .leakyReLU(let a), .elu(let a): return "\(name)(\(a))"
        default: return name
        }
    }

    /// Applies the activation to every element of `x`.
    public func callAsFunction(_ x: [Float]) -> [Float] {
        var y = x
        y.withUnsafeMutableBufferPointer { nnk_act_forward(kernel, alpha, $0.baseAddress, $0.baseAddress, $0.count) }
        return y
    }

    /// Whether alpha differs from the default a name alone gives (leaky_relu 0.01, elu 1).
    var hasNonDefaultAlpha: Bool {
        switch self {
        case .leakyReLU(let a): return a != 0.01
        case .elu(let a): return a != 1
        default: return false
        }
    }

    /// The spec attributes that describe this activation.
    var specAttributes: [String: LayerSpec.Value] {
        var a: [String: LayerSpec.Value] = ["activation": .string(name)]
        if case .leakyReLU(let v) = self { a["alpha"] = .float(v) }
        if case .elu(let v) = self { a["alpha"] = .float(v) }
        return a
    }
}

/// A layer that applies an activation element-wise: y = f(x), any sample shape.
public final class ActivationLayer: ShapePreserving {
    public static let typeName = "Activation"
    public static let positionalAttributes = ["activation"]
    public let activation: Activation
    var configuredShape: Shape?
    private var output = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    /// An activation layer; its shape is taken from the layer before it.
    public init(_ activation: Activation) { self.activation = activation }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["activation", "alpha", "features"])
        try checkFeatures(spec, inputShape)
        self.init(try Activation(name: spec.string("activation"), alpha: spec.float("alpha", default: 0)))
    }

    public var spec: LayerSpec { LayerSpec(type: ActivationLayer.typeName, attributes: activation.specAttributes) }
    public var descriptionElement: String {
        activation.hasNonDefaultAlpha ? spec.descriptionElement(omitting: []) : activation.name
    }

    public func prepare(batchSize: Int) {
        output.reserve(batchSize * width)
        gradInput.reserve(batchSize * width)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = input
        nnk_act_forward(activation.kernel, activation.alpha, output.pointer, input, batch * width)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        nnk_act_backward(activation.kernel, activation.alpha, gradInput.pointer, gradOutput, lastInput,
                         output.pointer, batch * width)
        return gradInput.pointer
    }

    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        nnk_act_forward(activation.kernel, activation.alpha, output, input, rows * width)
    }
}

/// A version-1 model file gives shape-agnostic layers their width as "features": it must
/// agree with the input they are given.
func checkFeatures(_ spec: LayerSpec, _ inputShape: Shape) throws(NNError) {
    if let n = try spec.optionalInt("features"), n != inputShape.count {
        throw .shapeMismatch("layer \(spec.type) was saved for \(n) features but receives samples of shape \(inputShape)")
    }
}

/// The training buffers of a softmax layer.
final class SoftmaxBuffers {
    var output = GrowableBuffer()
    var gradInput = GrowableBuffer()
}

/// The shared body of `Softmax` and `LogSoftmax`: maps over the last dimension of each sample
/// (the classes), whose backward needs only the output.
protocol RowwiseSoftmax: ShapePreserving {
    static var isLog: Bool { get }
    var buffers: SoftmaxBuffers { get }
    init()
}

extension RowwiseSoftmax {
    public init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["features"])
        try checkFeatures(spec, inputShape)
        self.init()
    }

    public var spec: LayerSpec { LayerSpec(type: Self.typeName) }
    public var descriptionElement: String { Self.isLog ? "log_softmax" : "softmax" }

    private var classes: Int { configuredShape?.last ?? 0 }
    private func rows(_ batch: Int) -> Int { batch * (configuredShape?.leadingCount ?? 0) }

    public func prepare(batchSize: Int) {
        buffers.output.reserve(batchSize * width)
        buffers.gradInput.reserve(batchSize * width)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        infer(input, rows: batch, into: buffers.output.pointer!, scratch: nil)
        return buffers.output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        let c = classes, dx = buffers.gradInput.pointer, y = buffers.output.pointer
        if Self.isLog {
            nnk_log_softmax_backward(dx, gradOutput, y, c, rows(batch), c)
        } else {
            nnk_softmax_backward(dx, gradOutput, y, c, rows(batch), c)
        }
        return dx
    }

    public func infer(_ input: UnsafePointer<Float>, rows batch: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        let c = classes
        if Self.isLog {
            nnk_log_softmax_forward(output, c, input, c, rows(batch), c)
        } else {
            nnk_softmax_forward(output, c, input, c, rows(batch), c)
        }
    }
}

/// Softmax over the last dimension, y[i, j] = e^x[i, j] / sum_k e^x[i, k] (rows of classes).
///
/// For training a classifier, prefer a linear last layer with `Loss.softmaxCrossEntropy`, which
/// fuses this with the loss; this layer is for models that must output probabilities.
public final class Softmax: RowwiseSoftmax {
    public static let typeName = "Softmax"
    static let isLog = false
    var configuredShape: Shape?
    let buffers = SoftmaxBuffers()
    public init() {}
}

/// Log-softmax over the last dimension, y[i, j] = x[i, j] - log sum_k e^x[i, k].
public final class LogSoftmax: RowwiseSoftmax {
    public static let typeName = "LogSoftmax"
    public static let aliases = ["log_softmax"]
    static let isLog = true
    var configuredShape: Shape?
    let buffers = SoftmaxBuffers()
    public init() {}
}
