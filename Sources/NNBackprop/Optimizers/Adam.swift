import CKernels

/// Adam (Kingma and Ba 2015) as PyTorch's torch.optim.Adam, with L2 weight decay added to the
/// gradient; `decoupled: true` gives AdamW (Loshchilov and Hutter), whose decay is applied to
/// the weights directly. Calls `nnk_adam_step`.
public final class Adam: OptimizerBase, Optimizer {
    public let beta1: Float
    public let beta2: Float
    public let epsilon: Float
    public let weightDecay: Float
    public let decoupled: Bool

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-8,
                weightDecay: Float = 0, decoupled: Bool = false) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.weightDecay = weightDecay
        self.decoupled = decoupled
        super.init(learningRate: learningRate)
    }

    /// AdamW: Adam with decoupled weight decay (PyTorch's default decay 0.01).
    public static func adamW(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                             epsilon: Float = 1e-8, weightDecay: Float = 0.01) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
             weightDecay: weightDecay, decoupled: true)
    }

    public var name: String { (decoupled ? OptimizerName.adamw : .adam).rawValue }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        buffers.ensure(["m", "v"], count: parameters.count)
        var p = nnk_adam_params(lr: learningRate, beta1: beta1, beta2: beta2, eps: epsilon,
                                weight_decay: weightDecay, decoupled: decoupled ? 1 : 0)
        stepCount += 1
        nnk_adam_step(parameters.baseAddress, buffers.pointer("m"), buffers.pointer("v"), gradients.baseAddress,
                      parameters.count, &p, Int64(stepCount))
    }

    override var stateNames: [String] { ["m", "v"] }
}
