/// Saving and loading a `Sequential` as a safetensors model file.
///
/// Layout:
/// - tensors named as the equivalent PyTorch `nn.Sequential` state dict ("0.weight" (out, in),
///   "0.bias" (out), "2.weight", ...; see `Sequential`), F32, so
///   `model.load_state_dict(safetensors.torch.load_file(path))` works in PyTorch;
/// - "preprocessing.<name>" tensors for the scaler, when the model has one;
/// - "optimizer.<buffer>" tensors for optimizer state, when saved with an optimizer;
/// - `__metadata__`: "format" = "nnbackprop.sequential", "format_version" = "1",
///   "architecture" = JSON `{"input_size": n, "seed": s, "layers": [{"type": "Dense",
///   "in_features": 784, "out_features": 256, "activation": "relu"}, ...]}`, and when present
///   "preprocessing" = the scaler kind, "optimizer" = its name, "optimizer_steps" = its step count.
///
/// Writes are atomic (`FileIO.writeAtomically`): a failed save leaves the previous file.
extension Sequential {
    static let fileFormat = "nnbackprop.sequential"
    static let fileFormatVersion = "1"

    /// The plugin activations the model uses, in layer order, each once.
    public var pluginNames: [String] {
        var seen: [String] = []
        for case let layer as CustomActivationLayer in layers where !seen.contains(layer.name) { seen.append(layer.name) }
        return seen
    }

    /// The architecture as JSON text.
    public var architectureJSON: String {
        let layerTexts = layers.map { layer -> String in
            let spec = layer.spec
            var fields = ["\"type\": " + jsonQuoted(spec.type)]
            for key in spec.attributes.keys.sorted() {
                let v: String
                switch spec.attributes[key]! {
                case .int(let i): v = String(i)
                case .float(let f): v = f.isFinite ? "\(f)" : "null"
                case .string(let s): v = jsonQuoted(s)
                }
                fields.append(jsonQuoted(key) + ": " + v)
            }
            return "{" + fields.joined(separator: ", ") + "}"
        }
        return "{\"input_size\": \(inputSize), \"seed\": \(seed), \"layers\": [" + layerTexts.joined(separator: ", ") + "]}"
    }

    /// The model (and optionally `optimizer`'s state) as safetensors tensors and metadata.
    public func safeTensors(optimizer: (any Optimizer)? = nil) throws(NNError) -> SafeTensors {
        var meta = ["format": Sequential.fileFormat, "format_version": Sequential.fileFormatVersion,
                    "architecture": architectureJSON]
        if !pluginNames.isEmpty { meta["plugins"] = pluginNames.joined(separator: ",") }
        var st = SafeTensors()
        for e in stateDict() { try st.set(e.name, SafeTensors.Tensor(e.values, shape: e.shape)) }
        if let scaler {
            meta["preprocessing"] = scaler.kind
            for (name, values) in scaler.tensors.sorted(by: { $0.key < $1.key }) {
                try st.set("preprocessing." + name, SafeTensors.Tensor(values, shape: [values.count]))
            }
        }
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
        guard st.metadata["format_version"] == Sequential.fileFormatVersion else {
            throw .unsupported("model file format version \(st.metadata["format_version"] ?? "missing") is not supported (this library reads \(Sequential.fileFormatVersion))")
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
        guard let inputSize = member("input_size")?.unsignedInteger, inputSize > 0, inputSize < 1 << 31 else {
            throw .corruptFile("architecture metadata: 'input_size' missing or not a positive integer")
        }
        let seed = member("seed")?.unsignedInteger ?? 0
        guard case .array(let layerValues)? = member("layers") else {
            throw .corruptFile("architecture metadata: 'layers' missing or not an array")
        }
        var layers: [any Layer] = []
        // A garbled architecture must not make the loader allocate far more than the file holds:
        // claimed parameters are bounded by twice its stored values (a missing tensor is then
        // reported by name below).
        let available = st.names.reduce(0) { $0 &+ (st[$1]?.count ?? 0) }
        var claimed = 0
        for (i, lv) in layerValues.enumerated() {
            guard case .object(let fields) = lv else { throw .corruptFile("architecture metadata: layer \(i) is \(lv.kindName), expected an object") }
            var spec = LayerSpec(type: "")
            for (key, value) in fields {
                switch value {
                case .string(let s) where key == "type": spec.type = s
                case .string(let s): spec.attributes[key] = .string(s)
                case .number(let text):
                    // Float("5e+38") is infinity, which a save would write back as null.
                    if let n = Int(text) { spec.attributes[key] = .int(n) } else if let f = Float(text), f.isFinite { spec.attributes[key] = .float(f) } else {
                        throw .corruptFile("architecture metadata: layer \(i) attribute '\(key)' is not a finite float32 number: \(text)")
                    }
                default: throw .corruptFile("architecture metadata: layer \(i) attribute '\(key)' is \(value.kindName)")
                }
            }
            if spec.type == "Dense", case .int(let inputs)? = spec.attributes["in_features"],
               case .int(let outputs)? = spec.attributes["out_features"] {
                let (w, o1) = inputs.multipliedReportingOverflow(by: outputs &+ 1)
                let (sum, o2) = claimed.addingReportingOverflow(w)
                guard !o1, !o2, inputs > 0, outputs > 0, sum <= 2 * available + 4096 else {
                    throw .corruptFile("architecture metadata: layer \(i) (Dense \(inputs) -> \(outputs)) needs more parameters than the file's \(available) stored values")
                }
                claimed = sum
            }
            do { layers.append(try LayerRegistry.make(spec)) } catch { throw error.prefixed("architecture metadata: layer \(i)") }
        }
        try self.init(layers: layers, inputSize: Int(inputSize), seed: seed, initialize: false)
        for e in stateDictLayout {
            let values: [Float]
            do { values = try st.floats(e.name, shape: e.shape) } catch {
                // A tensor the architecture needs is missing or misnamed: the file is damaged.
                if case .unknownName(let m) = error { throw .corruptFile(m) }
                throw error
            }
            if !allowNonFinite, let i = values.firstIndex(where: { !$0.isFinite }) {
                throw .invalidData("tensor '\(e.name)' holds \(values[i]) at index \(i): the weights are not finite (saved from a diverged run?); load with allowNonFinite: true to inspect them")
            }
            (parameterStorage.pointer + e.offset).update(from: values, count: values.count)
        }
        if let kind = st.metadata["preprocessing"] {
            var tensors: [String: [Float]] = [:]
            for name in st.names where name.hasPrefix("preprocessing.") {
                tensors[String(name.dropFirst("preprocessing.".count))] = try st.floats(name)
            }
            let s = try Preprocessing.scaler(kind: kind, tensors: tensors)
            guard s.featureCount == self.inputSize else {
                throw .shapeMismatch("the saved \(kind) scaler has \(s.featureCount) features, the model takes \(self.inputSize)")
            }
            scaler = s
        }
        if let optimizer {
            guard let saved = st.metadata["optimizer"] else { throw .unknownName("the model file holds no optimizer state") }
            guard saved == optimizer.name else {
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
