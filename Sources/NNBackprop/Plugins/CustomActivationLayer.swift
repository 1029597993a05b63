/// A layer applying a registered `CustomActivation` elementwise, any sample shape.
///
/// Created by name; the name is what the model file stores, so loading a model that uses it
/// needs the same plugin registered first (the error says which).
public final class CustomActivationLayer: ShapePreserving {
    public static let typeName = "CustomActivation"
    public static let positionalAttributes = ["name"]
    /// The activation's registered name.
    public let name: String
    public let activation: any CustomActivation
    var configuredShape: Shape?
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

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["name", "features"])
        try checkFeatures(spec, inputShape)
        try self.init(name: spec.string("name"))
    }

    public var spec: LayerSpec { LayerSpec(type: CustomActivationLayer.typeName, attributes: ["name": .string(name)]) }
    public var descriptionElement: String { name }

    public func prepare(batchSize: Int) {
        let n = batchSize * width
        output.reserve(n)
        gradInput.reserve(n)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        let n = batch * width
        output.reserve(n)
        lastInput = input
        activation.forward(output.pointer!, input, count: n)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient, let x = lastInput else { return nil }
        let n = batch * width
        gradInput.reserve(n)
        activation.backward(gradInput.pointer!, gradOutput, x, output.pointer!, count: n)
        return gradInput.pointer!
    }

    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        activation.forward(output, input, count: rows * width)
    }
}
