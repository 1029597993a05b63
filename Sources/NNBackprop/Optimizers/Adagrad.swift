import CKernels

/// Adagrad as PyTorch's torch.optim.Adagrad (learning-rate decay, L2 weight decay, initial
/// accumulator value). Calls `nnk_adagrad_step`.
public final class Adagrad: OptimizerBase, Optimizer {
    public let learningRateDecay: Float
    public let weightDecay: Float
    public let initialAccumulatorValue: Float
    public let epsilon: Float

    public init(learningRate: Float = 0.01, learningRateDecay: Float = 0, weightDecay: Float = 0,
                initialAccumulatorValue: Float = 0, epsilon: Float = 1e-10) {
        self.learningRateDecay = learningRateDecay
        self.weightDecay = weightDecay
        self.initialAccumulatorValue = initialAccumulatorValue
        self.epsilon = epsilon
        super.init(learningRate: learningRate)
    }

    public var name: String { OptimizerName.adagrad.rawValue }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        buffers.ensure(["sum"], count: parameters.count, fill: initialAccumulatorValue)
        var p = nnk_adagrad_params(lr: learningRate, lr_decay: learningRateDecay, weight_decay: weightDecay, eps: epsilon)
        stepCount += 1
        nnk_adagrad_step(parameters.baseAddress, buffers.pointer("sum"), gradients.baseAddress, parameters.count,
                         &p, Int64(stepCount))
    }

    override var stateNames: [String] { ["sum"] }
}
