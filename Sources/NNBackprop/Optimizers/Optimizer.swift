import CKernels

/// Updates a flat parameter buffer from its gradient, keeping whatever state it needs.
///
/// Every optimizer works on the model's one flat `parameters` buffer with `gradients` beside
/// it, through a CKernels step (PyTorch semantics). State buffers are allocated on the first
/// step, sized to the parameter count, and reused. `state` and `restore(state:)` let a model
/// file carry the optimizer along.
public protocol Optimizer: AnyObject {
    /// The learning rate of the next step (a schedule sets it each epoch).
    var learningRate: Float { get set }
    /// Its `OptimizerName`'s raw value: "sgd", "adam", "adamw", "rmsprop", "adagrad", "irprop".
    var name: String { get }
    /// Steps taken since creation or `reset()`.
    var stepCount: Int { get }
    /// One update: parameters (n) from gradients (n).
    func step(parameters: UnsafeMutableBufferPointer<Float>, gradients: UnsafeBufferPointer<Float>)
    /// Forgets all state (as if new).
    func reset()
    /// The state buffers by name (empty before the first step).
    var state: [String: [Float]] { get }
    /// Restores state saved from `state` after `steps` steps; throws `shapeMismatch` or
    /// `corruptFile` for buffers that do not fit `parameterCount`.
    func restore(state: [String: [Float]], steps: Int, parameterCount: Int) throws(NNError)
}

extension Optimizer {
    /// Steps a model: its parameters from its current gradients.
    public func step(_ model: Sequential) {
        step(parameters: model.parameters, gradients: UnsafeBufferPointer(model.gradients))
    }
}

/// The optimizers by name: the one spelling set the CLI, the C API, Python and model files use.
public enum OptimizerName: String, CaseIterable, Sendable {
    case adam, adamw, sgd, rmsprop, adagrad, irprop

    /// The name as a user may write it: case-insensitive, and "irprop-" / "rprop" (the spelling
    /// of earlier model files and of FANN) for irprop. Throws `unknownName` listing the names.
    public init(parsing text: String) throws(NNError) {
        let lower = text.lowercased()
        if let name = OptimizerName(rawValue: lower) {
            self = name
        } else if lower == "irprop-" || lower == "rprop" {
            self = .irprop
        } else {
            throw .unknownName("unknown optimizer '\(text)'; known: \(OptimizerName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }
}

/// What every optimizer shares: its learning rate, its step count, and its named state buffers
/// (each one float per parameter), with reset, save (`state`) and restore written once.
/// A subclass says which buffers it keeps (`stateNames`) and implements `step`.
open class OptimizerBase {
    /// The learning rate of the next step (a schedule sets it each epoch).
    public var learningRate: Float
    /// Steps taken since creation, `reset()` or the step count `restore` set.
    public internal(set) var stepCount = 0
    var buffers = OptimizerState()

    init(learningRate: Float) { self.learningRate = learningRate }

    /// The state buffers this optimizer keeps with its current settings.
    var stateNames: [String] { [] }

    /// Forgets all state (as if new).
    public func reset() {
        buffers.reset()
        stepCount = 0
    }

    /// The state buffers by name (empty before the first step).
    public var state: [String: [Float]] { buffers.values }

    /// Restores state saved from `state` after `steps` steps; throws `shapeMismatch` or
    /// `corruptFile` for buffers that do not fit `parameterCount`.
    public func restore(state: [String: [Float]], steps: Int, parameterCount: Int) throws(NNError) {
        guard steps >= 0 else { throw .corruptFile("optimizer step count \(steps) is negative") }
        let name = (self as? any Optimizer)?.name ?? "optimizer"
        guard steps == 0 || !state.isEmpty || stateNames.isEmpty else {
            throw .corruptFile("\(name) state: \(steps) steps were taken but none of its buffers (\(stateNames.joined(separator: ", "))) is there")
        }
        try buffers.restore(state, expected: stateNames, parameterCount: parameterCount, optimizer: (self as? any Optimizer)?.name ?? "optimizer")
        stepCount = steps
    }
}

/// The named state buffers of an optimizer, each n floats, allocated on first use.
struct OptimizerState {
    private(set) var buffers: [String: FloatStorage] = [:]
    private(set) var size = 0

    /// Ensures buffers `names` of n floats exist (zero-filled, or `fill`); reallocates all when
    /// n changes.
    mutating func ensure(_ names: [String], count n: Int, fill: Float = 0) {
        if size != n { buffers = [:]; size = n }
        for name in names where buffers[name] == nil {
            let s = FloatStorage(count: n)
            if fill != 0 { s.pointer.update(repeating: fill, count: n) }
            buffers[name] = s
        }
    }

    func pointer(_ name: String) -> UnsafeMutablePointer<Float>? { buffers[name]?.pointer }

    mutating func reset() { buffers = [:]; size = 0 }

    var values: [String: [Float]] { buffers.mapValues { Array($0.buffer) } }

    mutating func restore(_ state: [String: [Float]], expected: [String], parameterCount n: Int,
                          optimizer: String) throws(NNError) {
        reset()
        guard !state.isEmpty else { return }
        for name in expected {
            guard let v = state[name] else { throw .corruptFile("\(optimizer) state lacks buffer '\(name)'") }
            guard v.count == n else {
                throw .shapeMismatch("\(optimizer) state buffer '\(name)' has \(v.count) values for \(n) parameters")
            }
        }
        size = n
        for (name, v) in state where expected.contains(name) {
            let s = FloatStorage(count: n)
            s.pointer.update(from: v, count: n)
            buffers[name] = s
        }
    }
}

/// Scales `gradients` so that their global L2 norm is at most `maxNorm` (PyTorch's
/// clip_grad_norm_); returns the norm before clipping.
@discardableResult
public func clipGradients(_ gradients: UnsafeMutableBufferPointer<Float>, maxNorm: Float) -> Float {
    let norm = Float(nnk_sum_squares(gradients.baseAddress, gradients.count).squareRoot())
    if norm > maxNorm && norm > 0 {
        nnk_scale(gradients.baseAddress, gradients.count, maxNorm / (norm + 1e-6))
    }
    return norm
}
