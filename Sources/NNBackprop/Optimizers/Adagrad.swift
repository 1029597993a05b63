import CKernels

/// Adagrad as PyTorch's torch.optim.Adagrad (learning-rate decay, L2 weight decay, initial
/// accumulator value). Calls `nnk_adagrad_step`.
public final class Adagrad: Optimizer {
    public var learningRate: Float
    public let learningRateDecay: Float
    public let weightDecay: Float
    public let initialAccumulatorValue: Float
    public let epsilon: Float
    public private(set) var stepCount = 0
    private var buffers = OptimizerState()

    public init(learningRate: Float = 0.01, learningRateDecay: Float = 0, weightDecay: Float = 0,
                initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10) {
        self.learningRate = learningRate
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
    }

    public var name: String { "adagrad" }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        buffers.ensure(["sum"], count: parameters.count, fill: initialAccumulatorValue)
        var p = nnk_adagrad_params(lr: learningRate, lr_decay: learningRateDecay, weight_decay: weightDecay, eps: epsilon)
        stepCount += 1
        nnk_adagrad_step(parameters.baseAddress, buffers.pointer("sum"), gradients.baseAddress, parameters.count,
                         &p, Int64(stepCount))
    }

    public func reset() { buffers.reset(); stepCount = 0 }
    public var state: [String: [Float]] { buffers.values }
    public func restore(state: [String: [Float]], steps: Int, parameterCount: Int) throws(NNError) {
        try buffers.restore(state, expected: ["sum"], parameterCount: parameterCount, optimizer: name)
        stepCount = steps
    }
}
