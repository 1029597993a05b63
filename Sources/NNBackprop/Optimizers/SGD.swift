import CKernels

/// Stochastic gradient descent with optional momentum, dampening, L2 weight decay and
/// Nesterov momentum, as PyTorch's torch.optim.SGD (`nnk_sgd_step`).
public final class SGD: OptimizerBase, Optimizer {
    public let momentum: Float
    public let dampening: Float
    public let weightDecay: Float
    public let nesterov: Bool

    /// Nesterov requires momentum > 0 and dampening 0 (PyTorch's rule); violating it traps.
    public init(learningRate: Float = 0.01, momentum: Float = 0, dampening: Float = 0,
                weightDecay: Float = 0, nesterov: Bool = false) {
        precondition(!nesterov || (momentum > 0 && dampening == 0), "SGD: nesterov needs momentum > 0 and dampening 0")
        self.momentum = momentum
        self.dampening = dampening
        self.weightDecay = weightDecay
        self.nesterov = nesterov
        super.init(learningRate: learningRate)
    }

    public var name: String { OptimizerName.sgd.rawValue }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        var p = nnk_sgd_params(lr: learningRate, momentum: momentum, dampening: dampening,
                               weight_decay: weightDecay, nesterov: nesterov ? 1 : 0)
        if momentum != 0 { buffers.ensure(["velocity"], count: parameters.count) }
        nnk_sgd_step(parameters.baseAddress, buffers.pointer("velocity"), gradients.baseAddress, parameters.count,
                     &p, stepCount == 0 ? 1 : 0)
        stepCount += 1
    }

    override var stateNames: [String] { momentum != 0 ? ["velocity"] : [] }
}
