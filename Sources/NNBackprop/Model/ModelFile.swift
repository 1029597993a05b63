/// Saving and loading a `Sequential` as a safetensors model file.
///
/// Layout:
/// - tensors named as the equivalent PyTorch `nn.Sequential` state dict ("0.weight" (out, in),
///   "0.bias" (out), "2.weight", ...; see `Sequential`), F32, so
///   `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch;
/// - "optimizer.<buffer>" tensors for optimizer state, when saved with an optimizer;
/// - the layers' non-trainable buffers under their state-dict names too ("1.running_mean");
/// - `__metadata__`: "format" = "nnbackprop.sequential", "format_version" = "2",
///   "architecture" = JSON `{"input_shape": [1, 28, 28], "input_size": 784, "seed": s,
///   "layers": [{"type": "Flatten"}, {"type": "Dense", "in_features": 784, "out_features": 256,
///   "activation": "relu"}, ...]}` (every layer's spec: lists of sizes are arrays of numbers, a
///   nested model's layers an array of specs), and when present "preprocessing" = the scaler
///   kind and "preprocessing_state" its state, "optimizer" = its name, "optimizer_steps" = its
///   step count; "loss" and "classes" (see `TrainingMetadata.swift`).
///
/// Version 1 (before shaped layers) had no "input_shape" and gave shape-agnostic layers a
/// "features" width; such files load as the vector-input models they describe. Versions 1 and
/// 2 kept the scaler as "preprocessing.<name>" tensors (version 3 moved it into metadata, so
/// the tensors are exactly PyTorch's state dict); both still load.
///
/// Writes are atomic (`FileIO.writeAtomically`): a failed save leaves the previous file.
extension Sequential {
    static let fileFormat = "nnbackprop.sequential"
    static let fileFormatVersion = "3"
    /// The versions `load` reads.
    static let readableVersions = ["1", "2", "3"]

    /// The plugin activations the model uses, in layer order, each once.
    public var pluginNames: [String] {
        var seen: [String] = []
        for layer in layers {
            let names = (layer as? CustomActivationLayer).map { [$0.name] } ?? (layer as? Sequential)?.pluginNames ?? []
            for name in names where !seen.contains(name) { seen.append(name) }
        }
        return seen
    }

    /// The architecture as JSON text.
    public var architectureJSON: String {
        let dims = sampleShape.dimensions.map(String.init).joined(separator: ", ")
        return "{\"input_shape\": [\(dims)], \"input_size\": \(inputSize), \"seed\": \(seed), \"layers\": \(Sequential.json(layerSpecs))}"
    }

    static func json(_ specs: [LayerSpec]) -> String {
        "[" + specs.map(json).joined(separator: ", ") + "]"
    }

    static func json(_ spec: LayerSpec) -> String {
        var fields = ["\"type\": " + jsonQuoted(spec.type)]
        for key in spec.attributes.keys.sorted() {
            let v: String
            switch spec.attributes[key]! {
            case .int(let i): v = String(i)
            case .float(let f): v = f.isFinite ? "\(f)" : "null"
            case .string(let s): v = jsonQuoted(s)
            case .ints(let list): v = "[" + list.map(String.init).joined(separator: ", ") + "]"
            case .layers(let specs): v = json(specs)
            }
            fields.append(jsonQuoted(key) + ": " + v)
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// A layer spec from its JSON object (`path` names it in errors).
    static func spec(from value: JSONValue, _ path: String) throws(NNError) -> LayerSpec {
        guard case .object(let fields) = value else { throw .corruptFile("architecture metadata: \(path) is \(value.kindName), expected an object") }
        var spec = LayerSpec(type: "")
        for (key, value) in fields {
            switch value {
            case .string(let s) where key == "type": spec.type = s
            case .string(let s): spec.attributes[key] = .string(s)
            case .number(let text):
                // Float("5e+38") is infinity, which a save would write back as null.
                if let n = Int(text) { spec.attributes[key] = .int(n) } else if let f = Float(text), f.isFinite { spec.attributes[key] = .float(f) } else {
                    throw .corruptFile("architecture metadata: \(path) attribute '\(key)' is not a finite float32 number: \(text)")
                }
            case .array(let items) where items.allSatisfy({ if case .number = $0 { return true } else { return false } }) && !items.isEmpty:
                var list: [Int] = []
                for case .number(let text) in items {
                    guard let n = Int(text) else { throw .corruptFile("architecture metadata: \(path) attribute '\(key)' holds \(text), not an integer") }
                    list.append(n)
                }
                spec.attributes[key] = .ints(list)
            case .array(let items):
                var specs: [LayerSpec] = []
                for (j, item) in items.enumerated() { specs.append(try Sequential.spec(from: item, "\(path).\(key)[\(j)]")) }
                spec.attributes[key] = .layers(specs)
            default: throw .corruptFile("architecture metadata: \(path) attribute '\(key)' is \(value.kindName)")
            }
        }
        guard !spec.type.isEmpty else { throw .corruptFile("architecture metadata: \(path) has no 'type'") }
        return spec
    }

    /// The model (and optionally `optimizer`'s state) as safetensors tensors and metadata.
    public func safeTensors(optimizer: (any Optimizer)? = nil) throws(NNError) -> SafeTensors {
        var meta = ["format": Sequential.fileFormat, "format_version": Sequential.fileFormatVersion,
                    "architecture": architectureJSON]
        if !pluginNames.isEmpty { meta["plugins"] = pluginNames.joined(separator: ",") }
        var st = SafeTensors()
        for e in stateDict() { try st.set(e.name, SafeTensors.Tensor(e.values, shape: e.shape)) } // parameters, then buffers
        try saveQuantization(into: &st, metadata: &meta)
        if let scaler {
            meta["preprocessing"] = scaler.kind
            meta["preprocessing_state"] = Sequential.scalerStateJSON(scaler)
        }
        meta.merge(trainingMetadata) { a, _ in a }
        if let optimizer {
            meta["optimizer"] = optimizer.name
            meta["optimizer_steps"] = String(optimizer.stepCount)
            for (name, values) in optimizer.state.sorted(by: { $0.key < $1.key }) {
                try st.set("optimizer." + name, SafeTensors.Tensor(values, shape: [values.count]))
            }
        }
        st.metadata = meta
        return st
    }

    /// Writes the model file atomically; see the extension's comment for the layout.
    public func save(to path: String, optimizer: (any Optimizer)? = nil) throws(NNError) {
        try safeTensors(optimizer: optimizer).write(to: path)
    }

    /// The bytes `save(to:)` writes, in memory (to keep, send or pickle a model without a file).
    public func serialized(optimizer: (any Optimizer)? = nil) throws(NNError) -> [UInt8] {
        try safeTensors(optimizer: optimizer).serialized()
    }

    /// A model from bytes `serialized` (or a model file) holds; throws as `load(from:)`.
    public convenience init(serialized bytes: [UInt8], allowNonFinite: Bool = false) throws(NNError) {
        try self.init(safeTensors: SafeTensors(bytes: bytes, source: "the model bytes"), allowNonFinite: allowNonFinite)
    }

    /// Loads a model file written by `save(to:)`. When `optimizer` is given, its state is
    /// restored from the file (it must be of the kind saved).
    ///
    /// Throws `fileError` for an unreadable file, `corruptFile` for a truncated or garbled one
    /// or a bad architecture, `shapeMismatch` when a tensor's shape disagrees with the
    /// architecture, `unknownName` for a missing tensor or unknown layer type, and
    /// `invalidData` for NaN or infinite weights (what a diverged run would have saved) unless
    /// `allowNonFinite` is true.
    public static func load(from path: String, optimizer: (any Optimizer)? = nil,
                            allowNonFinite: Bool = false) throws(NNError) -> Sequential {
        do {
            let st = try SafeTensors(contentsOf: path)
            return try Sequential(safeTensors: st, optimizer: optimizer, allowNonFinite: allowNonFinite)
        } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// A model from safetensors written by `safeTensors(optimizer:)`; throws as `load(from:)`.
    public convenience init(safeTensors st: SafeTensors, optimizer: (any Optimizer)? = nil,
                            allowNonFinite: Bool = false) throws(NNError) {
        guard st.metadata["format"] == Sequential.fileFormat else {
            throw .corruptFile("not an NNBackprop model file: __metadata__ 'format' is \(st.metadata["format"].map { "'\($0)'" } ?? "missing"), expected '\(Sequential.fileFormat)'")
        }
        let version = st.metadata["format_version"] ?? "missing"
        guard Sequential.readableVersions.contains(version) else {
            throw .unsupported("model file format version \(version) is not supported (this library reads versions \(Sequential.readableVersions.dropLast().joined(separator: ", ")) and \(Sequential.readableVersions.last!); a newer file needs a newer library)")
        }
        guard let archText = st.metadata["architecture"] else { throw .corruptFile("the model file has no 'architecture' metadata") }
        if let needed = st.metadata["plugins"] {
            let missing = needed.split(separator: ",").map(String.init).filter { Plugins.activation(named: $0) == nil }
            guard missing.isEmpty else {
                throw .unknownName("the model needs plugin activation\(missing.count == 1 ? "" : "s") \(missing.map { "'\($0)'" }.joined(separator: ", ")), not registered in this process; load the plugin that provides \(missing.count == 1 ? "it" : "them") first (Plugins.register, nnb_plugin_load, nnb train --plugin)")
            }
        }
        let arch: JSONValue
        do { arch = try JSONParser.parse(Array(archText.utf8)) } catch { throw error.prefixed("architecture metadata") }
        guard case .object(let top) = arch else { throw .corruptFile("architecture metadata is \(arch.kindName), expected an object") }
        func member(_ key: String) -> JSONValue? { top.first { $0.key == key }?.value }
        let inputShape: Shape
        if case .array(let dims)? = member("input_shape") {
            let sizes = dims.compactMap { $0.unsignedInteger }.map { Int(clamping: $0) }
            guard sizes.count == dims.count, let shape = try? Shape(sizes) else {
                throw .corruptFile("architecture metadata: 'input_shape' is not a list of positive sizes of at most 2^31 elements")
            }
            inputShape = shape
        } else {
            guard version == "1", let n = member("input_size")?.unsignedInteger, n > 0, n < 1 << 31 else {
                throw .corruptFile("architecture metadata: 'input_shape' missing or not a list of positive sizes")
            }
            inputShape = Shape.vector(Int(n))
        }
        let seed = member("seed")?.unsignedInteger ?? 0
        guard case .array(let layerValues)? = member("layers") else {
            throw .corruptFile("architecture metadata: 'layers' missing or not an array")
        }
        var specs: [LayerSpec] = []
        for (i, lv) in layerValues.enumerated() { specs.append(try Sequential.spec(from: lv, "layer \(i)")) }
        // Layers allocate nothing until the model binds them: a garbled architecture is refused
        // before it can make the loader allocate far more than the file holds (claimed floats
        // are bounded by twice its stored values; a missing tensor is then reported by name).
        let layers: [any Layer]
        do { layers = try Sequential.layers(from: specs, inputShape: inputShape) } catch {
            if case .unknownName = error { throw error.prefixed("architecture metadata") }
            throw NNError.corruptFile(error.prefixed("architecture metadata").message)
        }
        let available = st.names.reduce(0) { $0 &+ (st[$1]?.count ?? 0) }
        var claimed = 0
        for layer in layers {
            let (sum, overflow) = claimed.addingReportingOverflow(layer.parameterCount &+ layer.bufferCount)
            guard !overflow, sum <= 2 * available + 4096 else {
                throw .corruptFile("architecture metadata: the layers need more parameters than the file's \(available) stored values")
            }
            claimed = sum
        }
        do { try self.init(layers: layers, inputShape: inputShape, seed: seed, initialize: false) } catch {
            throw NNError.corruptFile(error.prefixed("architecture metadata").message)
        }
        func read(_ layout: [TensorLayout], into base: UnsafeMutablePointer<Float>) throws(NNError) {
            for e in layout {
                let values: [Float]
                do { values = try st.floats(e.name, shape: e.shape) } catch {
                    // A tensor the architecture needs is missing or misnamed: the file is damaged.
                    if case .unknownName(let m) = error { throw .corruptFile(m) }
                    throw error
                }
                if !allowNonFinite, let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw .invalidData("tensor '\(e.name)' holds \(values[i]) at index \(i): the weights are not finite (saved from a diverged run?); load with allowNonFinite: true to inspect them")
                }
                (base + e.offset).update(from: values, count: values.count)
            }
        }
        try read(stateDictLayout, into: parameters.baseAddress!)
        if bufferCount > 0 { try read(bufferStateDictLayout, into: buffers.baseAddress!) }
        if let kind = st.metadata["preprocessing"] {
            var tensors: [String: [Float]] = [:]
            if let state = st.metadata["preprocessing_state"] {
                tensors = try Sequential.scalerTensors(fromJSON: state)
            } else {
                for name in st.names where name.hasPrefix("preprocessing.") { // versions 1 and 2
                    tensors[String(name.dropFirst("preprocessing.".count))] = try st.floats(name)
                }
            }
            let s = try Preprocessing.scaler(kind: kind, tensors: tensors)
            guard s.featureCount == self.inputSize else {
                throw .shapeMismatch("the saved \(kind) scaler has \(s.featureCount) features, the model takes \(self.inputSize)")
            }
            scaler = s
        }
        try restoreTrainingMetadata(st.metadata)
        try restoreQuantization(from: st)
        if let optimizer {
            guard let saved = st.metadata["optimizer"] else { throw .unknownName("the model file holds no optimizer state") }
            guard (try? OptimizerName(parsing: saved))?.rawValue == optimizer.name else {
                throw .shapeMismatch("the model file holds '\(saved)' optimizer state, not '\(optimizer.name)'")
            }
            var state: [String: [Float]] = [:]
            for name in st.names where name.hasPrefix("optimizer.") {
                state[String(name.dropFirst("optimizer.".count))] = try st.floats(name)
            }
            guard let steps = st.metadata["optimizer_steps"].flatMap({ Int($0) }), steps >= 0 else {
                throw .corruptFile("the model file's 'optimizer_steps' is missing or not a count")
            }
            try optimizer.restore(state: state, steps: steps, parameterCount: parameterCount)
        }
    }
}
