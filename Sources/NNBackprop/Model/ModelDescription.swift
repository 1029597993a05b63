/// The compact model description: the C API's nnb_model_create_from_string and
/// nnb_model_describe, the CLI's --layers and Python's layer lists all read and write it.
///
///     784-256:relu-128:relu-10
///     1x28x28-conv2d(32,3,padding=1):relu-maxpool2d(2)-flatten-128:relu-10
///
/// The first element is the input shape of one sample; then one element per layer: N (a dense
/// layer of N units), N:ACT (with a fused activation), ACT (an activation layer), dropout:P,
/// TYPE (a registered layer type without attributes), TYPE(ARGS) (with attributes by position
/// or key=value; a list of sizes written AxB), and TYPE(ARGS):ACT. Types come from
/// `LayerRegistry`, so a new layer type needs nothing here.
public enum ModelDescription {
    /// Splits `text` at `separator` outside parentheses.
    static func splitTopLevel(_ text: String, _ separator: Character) -> [String] {
        var parts: [String] = [], current = "", depth = 0
        for c in text {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            if c == separator && depth == 0 {
                parts.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        parts.append(current)
        return parts
    }

    /// An attribute value as the grammar writes it: an integer, a number, a list of sizes
    /// ("1x28x28", "-1x28"), or a name.
    static func attributeValue(_ text: String) -> LayerSpec.Value {
        if let i = Int(text) { return .int(i) }
        let sizes = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
        if sizes.count > 1, sizes.allSatisfy({ $0 != nil }) { return .ints(sizes.map { $0! }) }
        if let f = Float(text), f.isFinite, text.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true { return .float(f) }
        return .string(text)
    }

    /// "key=value,key=value" or positional values, for a layer type, as attributes.
    public static func attributes(_ text: String, for type: any Layer.Type, _ context: String) throws(NNError) -> [String: LayerSpec.Value] {
        var out: [String: LayerSpec.Value] = [:]
        let items = splitTopLevel(text, ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
        var position = 0
        for item in items {
            let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key: String, value: String
            if kv.count == 2 {
                (key, value) = (kv[0], kv[1])
                guard !key.isEmpty, !value.isEmpty else {
                    throw NNError.invalidArgument("\(context): '\(item)' needs a name and a value, as key=value")
                }
            } else {
                guard position < type.positionalAttributes.count else {
                    throw NNError.invalidArgument("\(context): '\(item)' is one value more than \(type.typeName) takes by position (\(type.positionalAttributes.isEmpty ? "none" : type.positionalAttributes.joined(separator: ", "))); name it as key=value")
                }
                (key, value) = (type.positionalAttributes[position], item)
                position += 1
            }
            guard out[key] == nil else { throw NNError.invalidArgument("\(context): attribute '\(key)' is given twice") }
            out[key] = attributeValue(value)
        }
        return out
    }

    /// One element of a compact description as layer specs: "256:relu", "10", "dropout:0.5",
    /// "softmax", "flatten", "reshape(1x28x28)", "dense(units=10):tanh".
    static func specs(fromElement part: String, _ context: String) throws(NNError) -> [LayerSpec] {
        let fields = splitTopLevel(part, ":")
        guard fields.count <= 2 else {
            throw NNError.invalidArgument("\(context) '\(part)' has more than one ':'")
        }
        let head = fields[0]
        guard !head.isEmpty else { throw NNError.invalidArgument("\(context) is empty") }
        if fields.count > 1 && fields[1].isEmpty {
            // "dropout:-0.1" splits at its minus sign into "dropout:" and "0.1".
            if head == "dropout" {
                throw NNError.invalidArgument("\(context) 'dropout:' has no rate (a negative rate is not allowed: rates are in [0, 1), as dropout:0.5)")
            }
            throw NNError.invalidArgument("\(context) '\(part)' has ':' but no activation after it")
        }
        let act = fields.count > 1 ? fields[1] : nil
        /// The activation suffix as the layer's attribute (a plugin's becomes a layer of its own in
        /// `expandingPluginActivations`).
        func withActivation(_ spec: LayerSpec) -> [LayerSpec] {
            guard let act else { return [spec] }
            var s = spec
            s.attributes["activation"] = .string(act)
            return [s]
        }
        if let units = Int(head) {
            guard units > 0 else { throw NNError.invalidArgument("\(context) has \(units) units; sizes must be positive") }
            return withActivation(LayerSpec(type: Dense.typeName, attributes: ["out_features": .int(units)]))
        }
        if head == "dropout" {
            guard let act, let p = Float(act), p >= 0, p < 1 else {
                throw NNError.invalidArgument("\(context) '\(part)' needs a rate in [0, 1), as dropout:0.5")
            }
            return [LayerSpec(type: Dropout.typeName, attributes: ["p": .float(p)])]
        }
        if let open = head.firstIndex(of: "(") {
            guard head.last == ")" else { throw NNError.invalidArgument("\(context) '\(part)' has '(' without a closing ')'") }
            let name = String(head[..<open])
            guard let type = LayerRegistry.type(named: name) else {
                throw NNError.unknownName("\(context): unknown layer type '\(name)'; known: \(LayerRegistry.typeNames.map { $0.lowercased() }.joined(separator: ", "))")
            }
            let inner = String(head[head.index(after: open)..<head.index(before: head.endIndex)])
            let spec = LayerSpec(type: type.typeName, attributes: try attributes(inner, for: type, context))
            return withActivation(spec)
        }
        guard head.unicodeScalars.first?.properties.isAlphabetic == true else {
            throw NNError.invalidArgument("\(context) '\(part)' is neither a size, an activation, dropout:RATE nor a layer type")
        }
        if act == nil, let type = LayerRegistry.type(named: head), type != ActivationLayer.self, type != CustomActivationLayer.self {
            return [LayerSpec(type: type.typeName)]
        }
        guard act == nil else { throw NNError.invalidArgument("\(context) '\(part)': only a dense layer or TYPE(ARGS) takes ':ACTIVATION'") }
        if (try? Activation(name: head)) != nil {
            return [LayerSpec(type: ActivationLayer.typeName, attributes: ["activation": .string(head)])]
        }
        if Plugins.activation(named: head) != nil {
            return [LayerSpec(type: CustomActivationLayer.typeName, attributes: ["name": .string(head)])]
        }
        throw NNError.unknownName("\(context) '\(head)' is neither a layer type (\(LayerRegistry.typeNames.map { $0.lowercased() }.joined(separator: ", "))) nor an activation (\(Activation.all.map(\.name).joined(separator: ", ")), or one a plugin registered)")
    }

    /// A dense or activation spec whose activation a plugin registered becomes the layer without
    /// it (dense) or nothing (activation), then the plugin's layer: built-in activations fuse,
    /// plugin ones are layers of their own.
    public static func expandingPluginActivations(_ specs: [LayerSpec]) -> [LayerSpec] {
        specs.flatMap { spec -> [LayerSpec] in
            guard spec.type == Dense.typeName || spec.type == ActivationLayer.typeName,
                  case .string(let name)? = spec.attributes["activation"],
                  (try? Activation(name: name)) == nil, Plugins.activation(named: name) != nil else { return [spec] }
            let plugin = LayerSpec(type: CustomActivationLayer.typeName, attributes: ["name": .string(name)])
            guard spec.type == Dense.typeName else { return [plugin] }
            var dense = spec
            dense.attributes["activation"] = nil
            return [dense, plugin]
        }
    }

    /// A compact description as the model's input shape and layers.
    public static func parse(_ text: String) throws(NNError) -> (shape: Shape, layers: [any Layer]) {
        let parts = splitTopLevel(text, "-").map { String($0.filter { !$0.isWhitespace }) }
        guard parts.count >= 2 else {
            throw NNError.invalidArgument("description '\(text)' needs an input shape and at least one layer, e.g. \"784-256:relu-10\" or \"1x28x28-flatten-10\"")
        }
        let shape: Shape
        do { shape = try Shape(parsing: parts[0]) } catch {
            let shown = parts[0].isEmpty ? "is empty (a negative size?)" : "'\(parts[0])' is not a positive size or sizes joined by 'x'"
            throw NNError.invalidArgument("description '\(text)': the input shape \(shown); write it as 784 or 1x28x28 (at most \(Shape.maxRank) dimensions)")
        }
        var all: [LayerSpec] = []
        for (i, part) in parts.enumerated().dropFirst() {
            all += try specs(fromElement: part, "description '\(text)': element \(i)")
        }
        return (shape, try Sequential.layers(from: expandingPluginActivations(all), inputShape: shape))
    }

    /// The compact description of a model (what `layers(fromDescription:)` reads).
    public static func describe(_ model: Sequential) -> String {
        ([model.sampleShape.description] + model.layers.map(\.descriptionElement)).joined(separator: "-")
    }
}
