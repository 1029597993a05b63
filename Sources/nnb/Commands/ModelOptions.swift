import ArgumentParser
import Foundation
import NNBackprop
import NNBackpropCAPI // C plugin libraries (--plugin)

/// The optimizers `nnb train --optimizer` offers: the library's names.
typealias OptimizerKind = OptimizerName

extension OptimizerName: ExpressibleByArgument {
    public init?(argument: String) { try? self.init(parsing: argument) }

    /// The optimizer with learning rate `lr` (the optimizer's own default when nil; for
    /// iRPROP- the initial step size, FANN's 0.1 by default) and `momentum` (SGD and RMSprop;
    /// `validate(momentum:)` refuses it for the others).
    func make(learningRate lr: Float?, momentum: Float) -> any Optimizer {
        switch self {
        case .adam: return Adam(learningRate: lr ?? 1e-3)
        case .adamw: return Adam.adamW(learningRate: lr ?? 1e-3)
        case .sgd: return SGD(learningRate: lr ?? 0.01, momentum: momentum)
        case .rmsprop: return RMSprop(learningRate: lr ?? 0.01, momentum: momentum)
        case .adagrad: return Adagrad(learningRate: lr ?? 0.01)
        case .irprop: return IRPROPMinus(initialStep: lr ?? 0.1)
        }
    }

    /// Throws when `momentum` is set for an optimizer without one.
    func validate(momentum: Float) throws(ValidationError) {
        guard momentum != 0, self != .sgd, self != .rmsprop else { return }
        throw ValidationError("--momentum applies to sgd and rmsprop, not to --optimizer \(rawValue)")
    }
}

/// "256,128" -> [256, 128]; "none" or "" -> [] (a linear model). Throws a message naming the bad part.
func parseLayerSizes(_ text: String) throws(ValidationError) -> [Int] {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if trimmed.isEmpty || trimmed.lowercased() == "none" { return [] }
    var sizes: [Int] = []
    for part in trimmed.split(separator: ",", omittingEmptySubsequences: false) {
        let p = part.trimmingCharacters(in: .whitespaces)
        guard let n = Int(p), n > 0 else {
            throw ValidationError("--layers takes positive layer sizes separated by commas (e.g. 256,128); '\(p)' is not one")
        }
        sizes.append(n)
    }
    return sizes
}

/// "2-64-64-2": the model's input shape and each output shape that differs from the one
/// before, or that a layer with parameters produced.
func architectureSummary(_ model: Sequential) -> String {
    var parts = [model.sampleShape.description]
    var previous = model.sampleShape
    for (layer, shape) in zip(model.layers, model.layerOutputShapes) {
        if shape != previous || layer.parameterCount > 0 { parts.append(shape.description) }
        previous = shape
    }
    return parts.joined(separator: "-")
}

/// Loads each plugin library (`--plugin FILE`, repeatable) before anything names what it
/// provides; a library that cannot be loaded is a usage error with the library's message.
func loadPlugins(_ paths: [String]) throws(ValidationError) {
    for path in paths {
        do { try Plugins.loadLibrary(path: path) } catch {
            // A second --plugin for the same library is harmless: its names are taken already.
            if case .duplicateName = error, paths.filter({ $0 == path }).count > 1 { continue }
            throw ValidationError("--plugin \(path): \(error.message)")
        }
    }
}

/// A hidden layer of `size` units with activation `name`: a built-in activation is fused into
/// the Dense layer; one a plugin registered follows it as a layer of its own.
func hiddenLayer(_ width: Int, _ size: Int, activation name: String) throws(NNError) -> [any Layer] {
    if let builtIn = try? Activation(name: name) { return [try Dense(width, size, activation: builtIn)] }
    return [try Dense(width, size), try CustomActivationLayer(name: name)]
}
