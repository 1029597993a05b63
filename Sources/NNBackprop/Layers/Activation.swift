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

    /// The spec attributes that describe this activation.
    var specAttributes: [String: LayerSpec.Value] {
        var a: [String: LayerSpec.Value] = ["activation": .string(name)]
        if case .leakyReLU(let v) = self { a["alpha"] = .float(v) }
        if case .elu(let v) = self { a["alpha"] = .float(v) }
        return a
    }
}

/// A layer that applies an activation element-wise: y = f(x), shape (batch, features).
public final class ActivationLayer: Layer {
    public let activation: Activation
    public private(set) var inputSize: Int?
    private var output = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    /// An activation layer; its width is taken from the layer before it.
    public init(_ activation: Activation) { self.activation = activation }

    public var spec: LayerSpec {
        var a = activation.specAttributes
        if let inputSize { a["features"] = .int(inputSize) }
        return LayerSpec(type: "Activation", attributes: a)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
    public func configure(inputSize: Int) throws(NNError) { try configureWidth(&self.inputSize, inputSize, "Activation(\(activation))") }

    public func prepare(batchSize: Int) {
        let n = batchSize * (inputSize ?? 0)
        output.reserve(n)
        gradInput.reserve(n)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        let n = batch * (inputSize ?? 0)
        prepare(batchSize: batch)
        lastInput = input
        nnk_act_forward(activation.kernel, activation.alpha, output.pointer, input, n)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        nnk_act_backward(activation.kernel, activation.alpha, gradInput.pointer, gradOutput, lastInput,
                         output.pointer, batch * (inputSize ?? 0))
        return gradInput.pointer
    }
}

/// The shared body of `Softmax` and `LogSoftmax`: row-wise maps over (batch, classes) whose
/// backward needs only the output.
public class RowwiseSoftmaxLayer: Layer {
    public private(set) var inputSize: Int?
    private let typeName: String
    private let log: Bool
    private var output = GrowableBuffer()
    private var gradInput = GrowableBuffer()

    init(log: Bool) {
        self.log = log
        typeName = log ? "LogSoftmax" : "Softmax"
    }

    public var spec: LayerSpec {
        LayerSpec(type: typeName, attributes: inputSize.map { ["features": .int($0)] } ?? [:])
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
    public func configure(inputSize: Int) throws(NNError) { try configureWidth(&self.inputSize, inputSize, typeName) }

    public func prepare(batchSize: Int) {
        output.reserve(batchSize * (inputSize ?? 0))
        gradInput.reserve(batchSize * (inputSize ?? 0))
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        let c = inputSize ?? 0
        if log {
            nnk_log_softmax_forward(output.pointer, c, input, c, batch, c)
        } else {
            nnk_softmax_forward(output.pointer, c, input, c, batch, c)
        }
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        let c = inputSize ?? 0
        if log {
            nnk_log_softmax_backward(gradInput.pointer, gradOutput, output.pointer, c, batch, c)
        } else {
            nnk_softmax_backward(gradInput.pointer, gradOutput, output.pointer, c, batch, c)
        }
        return gradInput.pointer
    }
}

/// Row-wise softmax, y[i, j] = e^x[i, j] / sum_k e^x[i, k], shape (batch, classes).
///
/// For training a classifier, prefer a linear last layer with `Loss.softmaxCrossEntropy`, which
/// fuses this with the loss; this layer is for models that must output probabilities.
public final class Softmax: RowwiseSoftmaxLayer {
    public init() { super.init(log: false) }
}

/// Row-wise log-softmax, y[i, j] = x[i, j] - log sum_k e^x[i, k], shape (batch, classes).
public final class LogSoftmax: RowwiseSoftmaxLayer {
    public init() { super.init(log: true) }
}

/// Sets a width-agnostic layer's width once; a second, different width is a shape mismatch.
func configureWidth(_ slot: inout Int?, _ width: Int, _ what: String) throws(NNError) {
    guard width > 0 else { throw .invalidArgument("\(what): width must be positive, got \(width)") }
    if let current = slot, current != width {
        throw .shapeMismatch("\(what) was built for \(current) features, got \(width)")
    }
    slot = width
}
