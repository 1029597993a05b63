import CKernels

/// RMSprop as PyTorch's torch.optim.RMSprop (smoothing `alpha`, optional momentum and the
/// centered variant). Calls `nnk_rmsprop_step`.
public final class RMSprop: OptimizerBase, Optimizer {
    public let alpha: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let momentum: Float
    public let centered: Bool

    public init(learningRate: Float = 0.01, alpha: Float = 0.99, epsilon: Float = 1e-8, weightDecay: Float = 0,
                momentum: Float = 0, centered: Bool = false) {
        self.alpha = alpha
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.momentum = momentum
        self.centered = centered
        super.init(learningRate: learningRate)
    }

    public var name: String { OptimizerName.rmsprop.rawValue }

    private var bufferNames: [String] { ["sq"] + (momentum > 0 ? ["buf"] : []) + (centered ? ["gavg"] : []) }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        buffers.ensure(bufferNames, count: parameters.count)
        var p = nnk_rmsprop_params(lr: learningRate, alpha: alpha, eps: epsilon, weight_decay: weightDecay,
                                   momentum: momentum, centered: centered ? 1 : 0)
        nnk_rmsprop_step(parameters.baseAddress, buffers.pointer("sq"), buffers.pointer("buf"), buffers.pointer("gavg"),
                         gradients.baseAddress, parameters.count, &p)
        stepCount += 1
    }

    override var stateNames: [String] { bufferNames }
}
