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

/// A fully connected layer: y = act(x W^T + b).
///
/// Shapes: x (batch, inputSize), W (outputSize, inputSize) as PyTorch's nn.Linear stores it,
/// b (outputSize), y (batch, outputSize). Forward and backward are the fused CKernels steps
/// `nnk_dense_forward` (bias and activation applied as the GEMM's epilogue) and
/// `nnk_dense_backward`.
public final class Dense: Layer {
    /// Input features per row.
    public let inputFeatures: Int
    /// Output features per row.
    public let outputSize: Int
    public let activation: Activation
    public let initializer: Initializer

    private var params: ParameterSlice
    private var grads: ParameterSlice
    private var capacity = 0
    private var output = GrowableBuffer()
    private var preActivation = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var work = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    /// A dense layer from `input` to `output` features, parameters drawn by `initializer`
    /// from `SeededGenerator(seed:)` (a `Sequential` redraws them from its own seed).
    public init(inputSize input: Int, outputSize output: Int, activation: Activation = .identity,
                initializer: Initializer = .pytorchDefault, seed: UInt64 = 0) {
        precondition(input > 0 && output > 0, "Dense: sizes must be positive, got \(input) -> \(output)")
        inputFeatures = input
        outputSize = output
        self.activation = activation
        self.initializer = initializer
        params = ParameterSlice(count: output * input + output)
        grads = ParameterSlice(count: output * input + output)
        var g = SeededGenerator(seed: seed)
        resetParameters(using: &g)
    }

    /// `Dense(784, 256, activation: .relu)`: the same as `init(inputSize:outputSize:...)`.
    public convenience init(_ input: Int, _ output: Int, activation: Activation = .identity,
                            initializer: Initializer = .pytorchDefault, seed: UInt64 = 0) {
        self.init(inputSize: input, outputSize: output, activation: activation, initializer: initializer, seed: seed)
    }

    public var inputSize: Int? { inputFeatures }

    /// The weight, (outputSize, inputSize) row-major.
    public var weight: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: params.pointer, count: outputSize * inputFeatures)
    }
    /// The bias, (outputSize).
    public var bias: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: params.pointer + outputSize * inputFeatures, count: outputSize)
    }
    /// dLoss/dWeight from the last backward, (outputSize, inputSize).
    public var weightGradient: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: grads.pointer, count: outputSize * inputFeatures)
    }
    /// dLoss/dBias from the last backward, (outputSize).
    public var biasGradient: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: grads.pointer + outputSize * inputFeatures, count: outputSize)
    }

    public var spec: LayerSpec {
        var a = activation.specAttributes
        a["in_features"] = .int(inputFeatures)
        a["out_features"] = .int(outputSize)
        return LayerSpec(type: "Dense", attributes: a)
    }

    public var moduleCount: Int { activation == .identity ? 1 : 2 }

    public func outputSize(forInputSize inputSize: Int) -> Int { outputSize }

    public func configure(inputSize: Int) throws(NNError) {
        guard inputSize == inputFeatures else {
            throw .shapeMismatch("Dense(\(inputFeatures), \(outputSize)) expects \(inputFeatures) input features, got \(inputSize)")
        }
    }

    public var parameterCount: Int { outputSize * inputFeatures + outputSize }

    public var parameterLayout: [(name: String, shape: [Int], offset: Int)] {
        [("weight", [outputSize, inputFeatures], 0), ("bias", [outputSize], outputSize * inputFeatures)]
    }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        precondition(parameters.count == parameterCount && gradients.count == parameterCount)
        parameters.pointer.update(from: params.pointer, count: parameterCount)
        gradients.pointer.update(from: grads.pointer, count: parameterCount)
        params = parameters
        grads = gradients
    }

    public func resetParameters(using generator: inout SeededGenerator) {
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

    public func prepare(batchSize: Int) {
        guard batchSize > capacity else { return }
        capacity = batchSize
        let threads = nnk_get_num_threads()
        output.reserve(batchSize * outputSize)
        if activation.needsInput { preActivation.reserve(batchSize * outputSize) }
        gradInput.reserve(batchSize * inputFeatures)
        // Work for any batch size up to the capacity: the GEMM work size is monotone in M
        // for the packed path, so take the max over the capacity and a single row.
        var need = 0
        for m in [1, batchSize] {
            need = max(need, nnk_sgemm_work_size(m, outputSize, inputFeatures, threads))
            need = max(need, nnk_dense_backward_work_size(m, outputSize, inputFeatures, threads))
        }
        work.reserve(need)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = input
        let z = activation.needsInput ? preActivation.pointer : nil
        nnk_dense_forward(output.pointer, z, outputSize, input, inputFeatures, params.pointer, inputFeatures,
                          params.pointer + outputSize * inputFeatures, batch, outputSize, inputFeatures,
                          activation.kernel, activation.alpha, work.pointer, work.count)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        let dx = needsInputGradient ? gradInput.pointer : nil
        let z = activation.needsInput ? UnsafePointer(preActivation.pointer) : nil
        nnk_dense_backward(dx, grads.pointer, grads.pointer + outputSize * inputFeatures, gradOutput, outputSize,
                           lastInput, inputFeatures, params.pointer, inputFeatures, z, output.pointer,
                           batch, outputSize, inputFeatures, activation.kernel, activation.alpha, 0,
                           work.pointer, work.count)
        return dx
    }
}
