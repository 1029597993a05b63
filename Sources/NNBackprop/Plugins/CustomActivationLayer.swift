/// A layer applying a registered `CustomActivation` elementwise, shape (batch, features).
///
/// Created by name; the name is what the model file stores, so loading a model that uses it
/// needs the same plugin registered first (the error says which).
public final class CustomActivationLayer: Layer {
    /// The activation's registered name.
    public let name: String
    public let activation: any CustomActivation
    public private(set) var inputSize: Int?
    private var output = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    /// The layer for the activation registered as `name`; throws `unknownName` when no plugin
    /// registered it.
    public init(name: String) throws(NNError) {
        guard let a = Plugins.activation(named: name) else {
            let known = Plugins.names
            throw .unknownName("activation '\(name)' is not built in and no plugin registered it; load the plugin that provides it first (Plugins.register, nnb_plugin_load, nnb train --plugin)\(known.isEmpty ? "" : "; registered: " + known.joined(separator: ", "))")
        }
        self.name = name
        self.activation = a
    }

    public var spec: LayerSpec {
        var a: [String: LayerSpec.Value] = ["name": .string(name)]
        if let inputSize { a["features"] = .int(inputSize) }
        return LayerSpec(type: "CustomActivation", attributes: a)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }

    public func configure(inputSize: Int) throws(NNError) {
        if let current = self.inputSize, current != inputSize {
            throw .shapeMismatch("activation '\(name)' was set up for \(current) features, got \(inputSize)")
        }
        self.inputSize = inputSize
    }

    public func prepare(batchSize: Int) {
        let n = batchSize * (inputSize ?? 0)
        output.reserve(n)
        gradInput.reserve(n)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        let n = batch * (inputSize ?? 0)
        output.reserve(n)
        lastInput = input
        activation.forward(output.pointer!, input, count: n)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient, let x = lastInput else { return nil }
        let n = batch * (inputSize ?? 0)
        gradInput.reserve(n)
        activation.backward(gradInput.pointer!, gradOutput, x, output.pointer!, count: n)
        return gradInput.pointer!
    }

    /// The plugin-backed forward into caller-owned memory, for reentrant inference.
    func apply(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        activation.forward(y, x, count: count)
    }
}
