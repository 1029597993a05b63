#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A learning rate as a function of the epoch (0-based), applied by `fit` before each epoch.
public indirect enum LearningRateSchedule: Sendable, Equatable {
    /// The base rate throughout.
    case constant
    /// base * gamma^(epoch / stepSize) (PyTorch StepLR).
    case step(stepSize: Int, gamma: Float)
    /// base * gamma^epoch (ExponentialLR).
    case exponential(gamma: Float)
    /// minRate + (base - minRate) (1 + cos(pi epoch / epochs)) / 2 (CosineAnnealingLR, one
    /// half-period over `epochs`, then minRate).
    case cosine(epochs: Int, minRate: Float = 0)
    /// Linear ramp from base / (epochs + 1) up to base over `epochs` epochs, then `then`
    /// (whose epochs count from the end of the warm-up).
    case linearWarmup(epochs: Int, then: LearningRateSchedule = .constant)

    /// Throws `invalidArgument` for a schedule that would make a rate negative, zero or
    /// non-finite: gamma must be positive and finite, step sizes and epoch counts positive
    /// (warm-up epochs may be 0), and a cosine's minRate non-negative and finite.
    public func validate() throws(NNError) {
        switch self {
        case .constant:
            return
        case .step(let size, let gamma):
            guard size > 0 else { throw .invalidArgument("step schedule: stepSize must be positive, got \(size)") }
            guard gamma > 0 && gamma.isFinite else { throw .invalidArgument("step schedule: gamma must be positive and finite, got \(gamma)") }
        case .exponential(let gamma):
            guard gamma > 0 && gamma.isFinite else { throw .invalidArgument("exponential schedule: gamma must be positive and finite, got \(gamma)") }
        case .cosine(let epochs, let minRate):
            guard epochs > 0 else { throw .invalidArgument("cosine schedule: epochs must be positive, got \(epochs)") }
            guard minRate >= 0 && minRate.isFinite else { throw .invalidArgument("cosine schedule: minRate must be >= 0 and finite, got \(minRate)") }
        case .linearWarmup(let epochs, let then):
            guard epochs >= 0 else { throw .invalidArgument("warm-up: epochs must be >= 0, got \(epochs)") }
            try then.validate()
        }
    }

    /// The names `named(_:...)` knows.
    public static let names = ["constant", "step", "exponential", "cosine"]

    /// The schedule a name and its settings describe (the C API's and `nnb train`'s options):
    /// `step` (stepSize epochs, gamma default 0.1), `exponential` (gamma default 0.95), `cosine`
    /// (over the run's `epochs` after the warm-up, down to 0), or `constant`; `warmupEpochs > 0`
    /// puts a linear warm-up first. A setting the named schedule does not use is refused, not
    /// ignored. Throws `unknownName` for another name and `invalidArgument` for a bad setting.
    public static func named(_ name: String, epochs: Int, stepSize: Int? = nil, gamma: Float? = nil,
                             warmupEpochs: Int = 0) throws(NNError) -> LearningRateSchedule {
        if stepSize != nil && name != "step" {
            throw .invalidArgument("a step size applies to the step schedule, not to '\(name)'")
        }
        if gamma != nil && name != "step" && name != "exponential" {
            throw .invalidArgument("gamma applies to the step and exponential schedules, not to '\(name)'")
        }
        guard warmupEpochs >= 0 else { throw .invalidArgument("warm-up epochs must be >= 0, got \(warmupEpochs)") }
        var base: LearningRateSchedule
        switch name {
        case "constant": base = .constant
        case "step": base = .step(stepSize: stepSize ?? 10, gamma: gamma ?? 0.1)
        case "exponential": base = .exponential(gamma: gamma ?? 0.95)
        case "cosine": base = .cosine(epochs: max(epochs - warmupEpochs, 1))
        default: throw .unknownName("unknown schedule '\(name)'; known: \(names.joined(separator: ", "))")
        }
        if warmupEpochs > 0 { base = .linearWarmup(epochs: warmupEpochs, then: base) }
        try base.validate()
        return base
    }

    /// The rate for `epoch` given the optimizer's base rate.
    public func rate(epoch: Int, base: Float) -> Float {
        switch self {
        case .constant:
            return base
        case .step(let size, let gamma):
            return base * pow(gamma, Float(epoch / max(size, 1)))
        case .exponential(let gamma):
            return base * pow(gamma, Float(epoch))
        case .cosine(let epochs, let minRate):
            guard epochs > 0, epoch < epochs else { return epochs > 0 ? minRate : base }
            return minRate + (base - minRate) * Float((1 + cos(Double.pi * Double(epoch) / Double(epochs))) / 2)
        case .linearWarmup(let epochs, let then):
            if epoch < epochs { return base * Float(epoch + 1) / Float(epochs + 1) }
            return then.rate(epoch: epoch - epochs, base: base)
        }
    }
}
