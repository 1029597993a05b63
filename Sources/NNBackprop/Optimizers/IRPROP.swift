/// iRPROP- (Igel and Hüsken 2000), the resilient backpropagation variant FANN trains with by
/// default. For full-batch training: pass `batchSize: data.count` to `fit`.
///
/// Each weight has its own step size: it grows by `increase` while the gradient keeps its sign
/// and shrinks by `decrease` when the sign flips, in which case that weight skips the update
/// and its remembered gradient is set to 0. Only the sign of the gradient is used, so
/// `learningRate` is ignored. Defaults are FANN 2.2's (fann_create_standard): increase 1.2,
/// decrease 0.5, initial step 0.1 (`rprop_delta_zero`), minimum step 0 (`rprop_delta_min`),
/// maximum step 50 (`rprop_delta_max`).
///
/// The update is a plain Swift loop (CKernels has no RPROP step); it runs once per epoch.
public final class IRPROPMinus: OptimizerBase, Optimizer {
    public let increase: Float
    public let decrease: Float
    public let initialStep: Float
    public let minStep: Float
    public let maxStep: Float

    public init(increase: Float = 1.2, decrease: Float = 0.5, initialStep: Float = 0.1,
                minStep: Float = 0, maxStep: Float = 50) {
        self.increase = increase
        self.decrease = decrease
        self.initialStep = initialStep
        self.minStep = minStep
        self.maxStep = maxStep
        super.init(learningRate: 0)
    }

    public var name: String { OptimizerName.irprop.rawValue }

    public func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>) {
        precondition(parameters.count == gradients.count)
        let n = parameters.count
        if buffers.pointer("step") == nil { buffers.ensure(["step"], count: n, fill: initialStep) }
        buffers.ensure(["step", "previous"], count: n)
        let delta = buffers.pointer("step")!, prev = buffers.pointer("previous")!
        for i in 0..<n {
            var g = gradients[i]
            let s = g * prev[i]
            if s > 0 {
                delta[i] = min(delta[i] * increase, maxStep)
            } else if s < 0 {
                delta[i] = max(delta[i] * decrease, minStep)
                g = 0
            }
            if g > 0 { parameters[i] -= delta[i] } else if g < 0 { parameters[i] += delta[i] }
            prev[i] = g
        }
        stepCount += 1
    }

    override var stateNames: [String] { ["step", "previous"] }
}
