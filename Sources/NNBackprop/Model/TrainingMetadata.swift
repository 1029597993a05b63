/// What a model file keeps besides its tensors: the loss it was trained with, its class names,
/// and its scaler's state.
///
/// Metadata keys (all strings, in the safetensors `__metadata__`):
/// - "loss": the loss's `name`; "loss_delta" (huber) and "loss_label_smoothing"
///   (cross_entropy, when not 0) its parameter;
/// - "classes": a JSON array of the class names;
/// - "preprocessing": the scaler kind and "preprocessing_state": a JSON object of its named
///   float vectors (format version 3). Versions 1 and 2 kept that state as "preprocessing.<name>"
///   tensors, which made the file's tensor names differ from the PyTorch state dict's; in
///   metadata, `load_state_dict(load_file(path), strict=True)` takes a model with a scaler too.
extension Sequential {
    /// Names the output classes: one name per output (two for a one-output model, whose
    /// output is the logit of class 1), all different. Nil removes them. Throws
    /// `shapeMismatch` for the wrong count and `invalidArgument` for a repeated name.
    public func setClassNames(_ names: [String]?) throws(NNError) {
        guard let names else { classNames = nil; return }
        let wanted = outputSize == 1 ? 2 : outputSize
        guard names.count == wanted else {
            throw .shapeMismatch("\(names.count) class names for a model with \(outputSize) output\(outputSize == 1 ? " (a bce logit: two classes)" : "s"); expected \(wanted)")
        }
        var seen = Set<String>()
        for (i, name) in names.enumerated() where !seen.insert(name).inserted {
            throw .invalidArgument("class name '\(name)' (index \(i)) appears twice")
        }
        classNames = names
    }

    /// The loss and class names as metadata entries.
    var trainingMetadata: [String: String] {
        var meta: [String: String] = [:]
        if let loss {
            meta["loss"] = loss.name
            switch loss {
            case .huber(let delta): meta["loss_delta"] = "\(delta)"
            case .softmaxCrossEntropy(let s) where s != 0: meta["loss_label_smoothing"] = "\(s)"
            default: break
            }
        }
        if let classNames { meta["classes"] = "[" + classNames.map(jsonQuoted).joined(separator: ", ") + "]" }
        return meta
    }

    /// Restores the loss and class names from a model file's metadata.
    func restoreTrainingMetadata(_ meta: [String: String]) throws(NNError) {
        if let name = meta["loss"] {
            func parameter(_ key: String) throws(NNError) -> Float? {
                guard let text = meta[key] else { return nil }
                guard let v = Float(text), v.isFinite, v >= 0 else { throw .corruptFile("metadata '\(key)' is not a non-negative number: \(text)") }
                return v
            }
            // A plugin loss need not be registered to load the model; evaluating with it does.
            var loss = (try? Loss(name: name)) ?? .custom(name)
            if case .huber = loss, let d = try parameter("loss_delta") { loss = .huber(delta: d) }
            if case .softmaxCrossEntropy = loss, let s = try parameter("loss_label_smoothing") { loss = .softmaxCrossEntropy(labelSmoothing: s) }
            self.loss = loss
        }
        if let text = meta["classes"] {
            let value: JSONValue
            do { value = try JSONParser.parse(Array(text.utf8)) } catch { throw error.prefixed("metadata 'classes'") }
            guard case .array(let items) = value else { throw .corruptFile("metadata 'classes' is \(value.kindName), expected an array of strings") }
            var names: [String] = []
            for (i, item) in items.enumerated() {
                guard case .string(let s) = item else { throw .corruptFile("metadata 'classes'[\(i)] is \(item.kindName), expected a string") }
                names.append(s)
            }
            do { try setClassNames(names) } catch { throw NNError.corruptFile("metadata 'classes': " + error.message) }
        }
    }

    /// The scaler's state as the JSON object "preprocessing_state" holds.
    static func scalerStateJSON(_ scaler: any FeatureScaler) -> String {
        let fields = scaler.tensors.sorted { $0.key < $1.key }.map { name, values in
            jsonQuoted(name) + ": [" + values.map { "\($0)" }.joined(separator: ", ") + "]"
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// The scaler's named vectors from "preprocessing_state".
    static func scalerTensors(fromJSON text: String) throws(NNError) -> [String: [Float]] {
        let value: JSONValue
        do { value = try JSONParser.parse(Array(text.utf8)) } catch { throw error.prefixed("metadata 'preprocessing_state'") }
        guard case .object(let fields) = value else { throw .corruptFile("metadata 'preprocessing_state' is \(value.kindName), expected an object") }
        var tensors: [String: [Float]] = [:]
        for (name, item) in fields {
            guard case .array(let items) = item else { throw .corruptFile("metadata 'preprocessing_state'.\(name) is \(item.kindName), expected an array of numbers") }
            var values: [Float] = []
            values.reserveCapacity(items.count)
            for (i, v) in items.enumerated() {
                guard case .number(let t) = v, let f = Float(t), f.isFinite else {
                    throw .corruptFile("metadata 'preprocessing_state'.\(name)[\(i)] is not a finite float32 number")
                }
                values.append(f)
            }
            tensors[name] = values
        }
        return tensors
    }
}
