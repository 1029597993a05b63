// nnb_model: creation, description, queries, inference and files.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CNNBackprop
import NNBackprop

/// What an nnb_model handle points at: the Swift model plus what the C API adds to it.
///
/// Locking: `trainer` is taken with trylock by every call that changes the model, so a second
/// trainer gets NNB_ERR_BUSY. `weights` (a `WeightsLock`) is shared by predict/evaluate and
/// held exclusively while training, so inference never sees half-updated weights, and a
/// trainer is never starved by readers. The training thread's own callbacks may predict: the
/// lock lets its writer read without waiting for itself.
final class ModelHandle {
    var model: Sequential
    var compiled: CompiledTraining?
    /// The optimizer state and progress of the checkpoint the model was loaded from, for
    /// nnb_train with options.resume.
    var checkpoint: Checkpoint?
    private var trainer = pthread_mutex_t()
    private let weights = WeightsLock()

    init(_ model: Sequential) {
        self.model = model
        pthread_mutex_init(&trainer, nil)
    }

    deinit {
        pthread_mutex_destroy(&trainer)
    }

    /// Runs `body` as the model's only writer, or throws NNB_ERR_BUSY when another thread is.
    func mutate<T>(_ function: String, _ body: () throws -> T) throws -> T {
        guard pthread_mutex_trylock(&trainer) == 0 else {
            throw CAPIFailure(NNB_ERR_BUSY, "the model is being trained or changed by another thread; \(function) did not run")
        }
        defer { pthread_mutex_unlock(&trainer) }
        weights.lockExclusive()
        defer { weights.unlockExclusive() }
        return try body()
    }

    /// Runs `body` with the weights fixed (shared with other readers).
    func read<T>(_ body: () throws -> T) rethrows -> T {
        guard weights.lockShared() else { return try body() } // the trainer's own thread
        defer { weights.unlockShared() }
        return try body()
    }
}

func handle(_ model: OpaquePointer?, _ what: String = "model") throws -> ModelHandle {
    guard let model else { throw CAPIFailure.null(what) }
    return Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).takeUnretainedValue()
}

func string(_ p: UnsafePointer<CChar>?, default d: String? = nil, _ what: String) throws -> String {
    if let p { return String(cString: p) }
    if let d { return d }
    throw CAPIFailure.null(what)
}

/// Copies a versioned options struct: a struct from an older header (smaller) keeps the
/// defaults for its missing tail; one from a newer header (larger) is refused.
func copyVersioned<T>(_ source: UnsafePointer<T>, into target: inout T, size: UInt32, _ what: String) throws {
    let mine = MemoryLayout<T>.size
    guard size >= 8 else {
        throw CAPIFailure(NNB_ERR_VERSION, "\(what).struct_size is \(size); call \(what)_init first (expected \(mine))")
    }
    guard Int(size) <= mine else {
        throw CAPIFailure(NNB_ERR_VERSION, "\(what).struct_size is \(size) but this library (ABI \(NNB_ABI_VERSION)) knows \(mine) bytes: the header is newer than the library")
    }
    withUnsafeMutableBytes(of: &target) { dst in
        dst.copyMemory(from: UnsafeRawBufferPointer(start: source, count: Int(size)))
    }
}

/// A size_t argument, which Swift sees as Int: a value past Int.max (SIZE_MAX, or a negative
/// int passed as size_t) is refused by name, with the value the caller passed.
func size(_ value: Int, _ name: String) throws -> Int {
    guard value >= 0 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(name) is \(UInt(bitPattern: value)), more than any array holds (a negative number passed as size_t?)")
    }
    return value
}

/// a * b, or NNB_ERR_INVALID_ARGUMENT when it overflows (sizes from C are not trusted).
func product(_ a: Int, _ b: Int, _ what: String) throws -> Int {
    let (p, overflow) = a.multipliedReportingOverflow(by: b)
    guard !overflow else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(what) overflows (\(a) x \(b))") }
    return p
}

// MARK: - Model descriptions

/// Splits `text` at `separator` outside parentheses.
private func splitTopLevel(_ text: String, _ separator: Character) -> [String] {
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
private func attributeValue(_ text: String) -> LayerSpec.Value {
    if let i = Int(text) { return .int(i) }
    let sizes = text.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) }
    if sizes.count > 1, sizes.allSatisfy({ $0 != nil }) { return .ints(sizes.map { $0! }) }
    if let f = Float(text), f.isFinite, text.first.map({ $0.isNumber || $0 == "-" || $0 == "." }) == true { return .float(f) }
    return .string(text)
}

/// "key=value,key=value" or positional values, for a layer type, as attributes.
func attributes(_ text: String, for type: any Layer.Type, _ context: String) throws -> [String: LayerSpec.Value] {
    var out: [String: LayerSpec.Value] = [:]
    let items = splitTopLevel(text, ",").map { String($0.filter { !$0.isWhitespace }) }.filter { !$0.isEmpty }
    var position = 0
    for item in items {
        let kv = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let key: String, value: String
        if kv.count == 2 {
            (key, value) = (kv[0], kv[1])
            guard !key.isEmpty, !value.isEmpty else {
                throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context): '\(item)' needs a name and a value, as key=value")
            }
        } else {
            guard position < type.positionalAttributes.count else {
                throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context): '\(item)' is one value more than \(type.typeName) takes by position (\(type.positionalAttributes.isEmpty ? "none" : type.positionalAttributes.joined(separator: ", "))); name it as key=value")
            }
            (key, value) = (type.positionalAttributes[position], item)
            position += 1
        }
        guard out[key] == nil else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context): attribute '\(key)' is given twice") }
        out[key] = attributeValue(value)
    }
    return out
}

/// One element of a compact description as layer specs: "256:relu", "10", "dropout:0.5",
/// "softmax", "flatten", "reshape(1x28x28)", "dense(units=10):tanh".
private func specs(fromElement part: String, _ context: String) throws -> [LayerSpec] {
    let fields = splitTopLevel(part, ":")
    guard fields.count <= 2 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)' has more than one ':'")
    }
    let head = fields[0]
    guard !head.isEmpty else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) is empty") }
    if fields.count > 1 && fields[1].isEmpty {
        // "dropout:-0.1" splits at its minus sign into "dropout:" and "0.1".
        if head == "dropout" {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) 'dropout:' has no rate (a negative rate is not allowed: rates are in [0, 1), as dropout:0.5)")
        }
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)' has ':' but no activation after it")
    }
    let act = fields.count > 1 ? fields[1] : nil
    /// The activation suffix as the layer's attribute (a plugin's becomes a layer of its own in
    /// `expandingPluginActivations`).
    func withActivation(_ spec: LayerSpec) throws -> [LayerSpec] {
        guard let act else { return [spec] }
        var s = spec
        s.attributes["activation"] = .string(act)
        return [s]
    }
    if let units = Int(head) {
        guard units > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) has \(units) units; sizes must be positive") }
        return try withActivation(LayerSpec(type: Dense.typeName, attributes: ["out_features": .int(units)]))
    }
    if head == "dropout" {
        guard let act, let p = Float(act), p >= 0, p < 1 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)' needs a rate in [0, 1), as dropout:0.5")
        }
        return [LayerSpec(type: Dropout.typeName, attributes: ["p": .float(p)])]
    }
    if let open = head.firstIndex(of: "(") {
        guard head.last == ")" else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)' has '(' without a closing ')'") }
        let name = String(head[..<open])
        guard let type = LayerRegistry.type(named: name) else {
            throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "\(context): unknown layer type '\(name)'; known: \(LayerRegistry.typeNames.map { $0.lowercased() }.joined(separator: ", "))")
        }
        let inner = String(head[head.index(after: open)..<head.index(before: head.endIndex)])
        let spec = LayerSpec(type: type.typeName, attributes: try attributes(inner, for: type, context))
        return try withActivation(spec)
    }
    guard head.unicodeScalars.first?.properties.isAlphabetic == true else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)' is neither a size, an activation, dropout:RATE nor a layer type")
    }
    if act == nil, let type = LayerRegistry.type(named: head), type != ActivationLayer.self, type != CustomActivationLayer.self {
        return [LayerSpec(type: type.typeName)]
    }
    guard act == nil else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "\(context) '\(part)': only a dense layer or TYPE(ARGS) takes ':ACTIVATION'") }
    if (try? Activation(name: head)) != nil {
        return [LayerSpec(type: ActivationLayer.typeName, attributes: ["activation": .string(head)])]
    }
    if Plugins.activation(named: head) != nil {
        return [LayerSpec(type: CustomActivationLayer.typeName, attributes: ["name": .string(head)])]
    }
    throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "\(context) '\(head)' is neither a layer type (\(LayerRegistry.typeNames.map { $0.lowercased() }.joined(separator: ", "))) nor an activation (\(Activation.all.map(\.name).joined(separator: ", ")), or one a plugin registered)")
}

/// A dense or activation spec whose activation a plugin registered becomes the layer without
/// it (dense) or nothing (activation), then the plugin's layer: built-in activations fuse,
/// plugin ones are layers of their own.
func expandingPluginActivations(_ specs: [LayerSpec]) -> [LayerSpec] {
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
private func layers(fromDescription text: String) throws -> (shape: Shape, layers: [any Layer]) {
    let parts = splitTopLevel(text, "-").map { String($0.filter { !$0.isWhitespace }) }
    guard parts.count >= 2 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)' needs an input shape and at least one layer, e.g. \"784-256:relu-10\" or \"1x28x28-flatten-10\"")
    }
    let shape: Shape
    do { shape = try Shape(parsing: parts[0]) } catch {
        let shown = parts[0].isEmpty ? "is empty (a negative size?)" : "'\(parts[0])' is not a positive size or sizes joined by 'x'"
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': the input shape \(shown); write it as 784 or 1x28x28 (at most \(Shape.maxRank) dimensions)")
    }
    var all: [LayerSpec] = []
    for (i, part) in parts.enumerated().dropFirst() {
        all += try specs(fromElement: part, "description '\(text)': element \(i)")
    }
    return (shape, try Sequential.layers(from: expandingPluginActivations(all), inputShape: shape))
}

/// The compact description of a model (what `layers(fromDescription:)` reads).
func describe(_ model: Sequential) -> String {
    ([model.sampleShape.description] + model.layers.map(\.descriptionElement)).joined(separator: "-")
}

private func layers(from spec: nnb_layer_spec, index: Int) throws -> [LayerSpec] {
    let activation = spec.activation.map { String(cString: $0) }
    /// A built-in activation as attributes, or a plugin's as a layer of its own.
    func activationSpecs(_ base: LayerSpec, fusing: Bool) throws -> [LayerSpec] {
        let name = activation ?? "identity"
        if (try? Activation(name: name, alpha: spec.alpha)) != nil || Plugins.activation(named: name) == nil {
            var s = base
            s.attributes["activation"] = .string(name)
            if spec.alpha != 0 { s.attributes["alpha"] = .float(spec.alpha) }
            _ = try Activation(name: name, alpha: spec.alpha) // unknown names fail here, with the known ones
            return [s]
        }
        let plugin = LayerSpec(type: CustomActivationLayer.typeName, attributes: ["name": .string(name)])
        return fusing ? [base, plugin] : [plugin]
    }
    switch spec.type {
    case NNB_LAYER_DENSE:
        guard spec.units > 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "layers[\(index)]: a dense layer needs units > 0, got \(spec.units)")
        }
        guard spec.units <= Int64(Shape.maxElements) else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "layers[\(index)]: \(spec.units) units is more than 2^31")
        }
        return try activationSpecs(LayerSpec(type: Dense.typeName, attributes: ["out_features": .int(Int(spec.units))]), fusing: true)
    case NNB_LAYER_ACTIVATION:
        switch activation {
        case "softmax"?: return [LayerSpec(type: Softmax.typeName)]
        case "log_softmax"?: return [LayerSpec(type: LogSoftmax.typeName)]
        default: return try activationSpecs(LayerSpec(type: ActivationLayer.typeName), fusing: false)
        }
    case NNB_LAYER_DROPOUT:
        guard spec.rate >= 0 && spec.rate < 1 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "layers[\(index)]: dropout rate must be in [0, 1), got \(spec.rate)")
        }
        return [LayerSpec(type: Dropout.typeName, attributes: ["p": .float(spec.rate)])]
    case NNB_LAYER_NAMED:
        guard let typeName = spec.type_name.map({ String(cString: $0) }) else {
            throw CAPIFailure(NNB_ERR_NULL_ARGUMENT, "layers[\(index)]: NNB_LAYER_NAMED needs type_name")
        }
        guard let type = LayerRegistry.type(named: typeName) else {
            throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "layers[\(index)]: unknown layer type '\(typeName)'; known: \(LayerRegistry.typeNames.map { $0.lowercased() }.joined(separator: ", "))")
        }
        let text = spec.attributes.map { String(cString: $0) } ?? ""
        let attrs = try attributes(text, for: type, "layers[\(index)] (\(typeName))")
        return [LayerSpec(type: type.typeName, attributes: attrs)]
    default:
        throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "layers[\(index)]: unknown layer type \(spec.type.rawValue) (expected NNB_LAYER_DENSE, NNB_LAYER_ACTIVATION, NNB_LAYER_DROPOUT or NNB_LAYER_NAMED)")
    }
}

private func publish(_ model: Sequential, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(ModelHandle(model)).toOpaque())
}

// MARK: - Creation

@c(nnb_layer_spec_init)
public func nnbLayerSpecInit(_ spec: UnsafeMutablePointer<nnb_layer_spec>?) {
    guard let spec else { return }
    spec.pointee = nnb_layer_spec()
    spec.pointee.struct_size = UInt32(MemoryLayout<nnb_layer_spec>.size)
    spec.pointee.type = NNB_LAYER_DENSE
}

@c(nnb_model_create)
public func nnbModelCreate(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ inputs: Int64,
                           _ specs: UnsafePointer<nnb_layer_spec>?, _ count: Int, _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_create") {
        guard let out else { throw CAPIFailure.null("out") }
        guard let specs else { throw CAPIFailure.null("layers") }
        guard inputs > 0, inputs <= Int64(Shape.maxElements) else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "inputs must be in [1, 2^31], got \(inputs)")
        }
        guard try size(count, "n_layers") > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "n_layers must be positive, got 0") }
        var all: [LayerSpec] = []
        for i in 0..<count {
            var spec = nnb_layer_spec()
            nnbLayerSpecInit(&spec)
            try copyVersioned(specs + i, into: &spec, size: specs[i].struct_size, "nnb_layer_spec")
            all += try layers(from: spec, index: i)
        }
        let shape = try Shape(features: Int(inputs))
        publish(try Sequential(layers: Sequential.layers(from: expandingPluginActivations(all), inputShape: shape), inputShape: shape,
                               seed: seed), out)
    }
}

@c(nnb_model_create_from_string)
public func nnbModelCreateFromString(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ description: UnsafePointer<CChar>?,
                                     _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_create_from_string") {
        guard let out else { throw CAPIFailure.null("out") }
        let parsed = try layers(fromDescription: try string(description, "description"))
        publish(try Sequential(layers: parsed.layers, inputShape: parsed.shape, seed: seed), out)
    }
}

@c(nnb_model_free)
public func nnbModelFree(_ model: OpaquePointer?) {
    guard let model else { return }
    Unmanaged<ModelHandle>.fromOpaque(UnsafeRawPointer(model)).release()
}

// MARK: - Queries

@c(nnb_model_get_info)
public func nnbModelGetInfo(_ model: OpaquePointer?, _ info: UnsafeMutablePointer<nnb_model_info>?) -> nnb_status {
    capiCall("nnb_model_get_info") {
        let h = try handle(model)
        guard let info else { throw CAPIFailure.null("info") }
        let size = info.pointee.struct_size
        guard size >= 8 && Int(size) <= MemoryLayout<nnb_model_info>.size else {
            throw CAPIFailure(NNB_ERR_VERSION, "info->struct_size is \(size); set it to sizeof(nnb_model_info) (\(MemoryLayout<nnb_model_info>.size) here)")
        }
        var full = nnb_model_info()
        do { // The shape never changes after creation: no need to wait for a trainer.
            full.struct_size = size
            full.inputs = Int64(h.model.inputSize)
            full.outputs = Int64(h.model.outputSize)
            full.layers = Int64(h.model.layers.count)
            full.parameters = Int64(h.model.parameterCount)
            let dims = h.model.sampleShape.dimensions
            full.input_rank = Int32(dims.count)
            withUnsafeMutableBytes(of: &full.input_shape) { raw in
                let slots = raw.bindMemory(to: Int64.self)
                for (i, d) in dims.prefix(slots.count).enumerated() { slots[i] = Int64(d) }
            }
        }
        withUnsafeBytes(of: &full) { UnsafeMutableRawPointer(info).copyMemory(from: $0.baseAddress!, byteCount: Int(size)) }
    }
}

@c(nnb_model_describe)
public func nnbModelDescribe(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ capacity: Int,
                             _ needed: UnsafeMutablePointer<Int>?) -> nnb_status {
    capiCall("nnb_model_describe") {
        let h = try handle(model)
        let text = describe(h.model) // the layers never change after creation
        let bytes = Array(text.utf8CString)
        needed?.pointee = bytes.count
        let capacity = try size(capacity, "capacity")
        guard let buf else {
            if needed != nil && capacity == 0 { return } // size query
            throw CAPIFailure.null("buf")
        }
        guard capacity >= bytes.count else {
            throw CAPIFailure(NNB_ERR_CAPACITY, "the description needs \(bytes.count) bytes with its NUL, capacity is \(capacity)")
        }
        bytes.withUnsafeBufferPointer { buf.update(from: $0.baseAddress!, count: bytes.count) }
    }
}

// MARK: - Data from C arrays

/// Checks x (rows, cols) against the model and for finiteness; returns it as a buffer.
func features(_ x: UnsafePointer<Float>?, rows: Int, cols: Int, model: Sequential) throws -> UnsafeBufferPointer<Float> {
    guard let x else { throw CAPIFailure.null("x") }
    guard try size(rows, "rows") > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "rows must be positive, got 0") }
    guard try size(cols, "cols") == model.inputSize else {
        throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "x has \(cols) columns but the model takes \(model.inputSize) inputs")
    }
    let (total, overflow) = rows.multipliedReportingOverflow(by: cols)
    guard !overflow else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "rows * cols overflows (\(rows) x \(cols))") }
    let buffer = UnsafeBufferPointer(start: x, count: total)
    for i in 0..<total where !buffer[i].isFinite {
        throw CAPIFailure(NNB_ERR_INVALID_DATA, "x[row \(i / cols), column \(i % cols)] is \(buffer[i]); inputs must be finite")
    }
    return buffer
}

/// The targets y (rows, yCols) as the Swift library's `Dataset.Targets` for `loss`.
func targets(_ y: UnsafePointer<Float>?, rows: Int, yCols: Int, loss: Loss, outputs: Int) throws -> Dataset.Targets {
    guard let y else { throw CAPIFailure.null("y") }
    guard try size(yCols, "y_cols") > 0 else { throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "y_cols must be positive, got 0") }
    // The width is checked before anything is read, so a wild y_cols never sizes a read.
    if case .softmaxCrossEntropy = loss {
        guard yCols == 1 || yCols == outputs else {
            throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "y has \(yCols) columns; cross_entropy takes 1 (class indices) or \(outputs) (one row per output)")
        }
    } else if yCols != outputs {
        throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "y has \(yCols) columns but the model has \(outputs) outputs")
    }
    let values = Array(UnsafeBufferPointer(start: y, count: try product(rows, yCols, "rows * y_cols")))
    if let i = values.firstIndex(where: { !$0.isFinite }) {
        throw CAPIFailure(NNB_ERR_INVALID_DATA, "y[row \(i / yCols), column \(i % yCols)] is \(values[i]); targets must be finite")
    }
    if case .softmaxCrossEntropy = loss {
        if yCols == 1 {
            var labels = [Int32](repeating: 0, count: rows)
            for (r, v) in values.enumerated() {
                guard v == v.rounded(), v >= 0, v < Float(outputs) else {
                    throw CAPIFailure(NNB_ERR_INVALID_DATA, "y[row \(r)] is \(v); with y_cols == 1 cross_entropy needs class indices, whole numbers in [0, \(outputs))")
                }
                labels[r] = Int32(v)
            }
            return .classes(labels, classCount: outputs)
        }
        guard yCols == outputs else {
            throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "y has \(yCols) columns; cross_entropy takes 1 (class indices) or \(outputs) (one row per output)")
        }
        return .probabilities(values, width: yCols)
    }
    guard yCols == outputs else {
        throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "y has \(yCols) columns but the model has \(outputs) outputs")
    }
    return .values(values, width: yCols)
}

/// A Dataset from C arrays, validated.
func dataset(_ h: ModelHandle, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int, _ y: UnsafePointer<Float>?,
             _ yCols: Int, loss: Loss) throws -> Dataset {
    let xs = try features(x, rows: rows, cols: cols, model: h.model)
    let t = try targets(y, rows: rows, yCols: yCols, loss: loss, outputs: h.model.outputSize)
    return try Dataset(features: Array(xs), featureCount: cols, targets: t)
}

// MARK: - Inference

@c(nnb_predict)
public func nnbPredict(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                       _ out: UnsafeMutablePointer<Float>?, _ capacity: Int) -> nnb_status {
    capiCall("nnb_predict") {
        let h = try handle(model)
        guard let out else { throw CAPIFailure.null("out") }
        try h.read {
            let xs = try features(x, rows: rows, cols: cols, model: h.model)
            let need = try product(rows, h.model.outputSize, "rows * outputs")
            guard try size(capacity, "capacity") >= need else {
                throw CAPIFailure(NNB_ERR_CAPACITY, "out holds \(capacity) floats but \(rows) rows x \(h.model.outputSize) outputs need \(need)")
            }
            h.model.infer(xs.baseAddress!, rows: rows, into: out)
        }
    }
}

/// Mean loss and accuracy of predictions `p` (rows, outputs) against `t`, by the library's
/// metrics: arg-max accuracy for cross_entropy, per-output accuracy for bce, none (NaN) else.
func score(_ p: [Float], _ t: Dataset.Targets, loss: Loss) throws -> (loss: Double, accuracy: Double) {
    let metric = accuracyMetric(for: loss, t)
    let r = try Metrics.evaluate(predictions: p, targets: t, loss: loss, metrics: metric.map { [$0] } ?? [])
    return (r["loss"] ?? .nan, metric.flatMap { r[$0.name] } ?? .nan)
}

/// The accuracy metric nnb_evaluate and the epoch reports give for `loss` on targets `t`.
func accuracyMetric(for loss: Loss, _ t: Dataset.Targets) -> Metric? {
    switch loss {
    case .softmaxCrossEntropy: return t.classIndices == nil ? nil : .accuracy
    case .binaryCrossEntropy: return .binaryAccuracy
    default: return nil
    }
}

@c(nnb_evaluate)
public func nnbEvaluate(_ model: OpaquePointer?, _ x: UnsafePointer<Float>?, _ rows: Int, _ cols: Int,
                        _ y: UnsafePointer<Float>?, _ yCols: Int, _ lossName: UnsafePointer<CChar>?,
                        _ lossOut: UnsafeMutablePointer<Double>?, _ accuracyOut: UnsafeMutablePointer<Double>?) -> nnb_status {
    capiCall("nnb_evaluate") {
        let h = try handle(model)
        try h.read {
            let loss = try lossName.map { try Loss(name: String(cString: $0)) } ?? h.compiled?.loss ?? .softmaxCrossEntropy()
            // Validated as nnb_train validates them: soft targets outside [0, 1] are refused here too.
            let data = try dataset(h, x, rows, cols, y, yCols, loss: loss)
            let t = data.targets
            try loss.validate(targets: t, outputSize: h.model.outputSize)
            var p = [Float](repeating: 0, count: try product(rows, h.model.outputSize, "rows * outputs"))
            data.features.withUnsafeBufferPointer { xs in
                p.withUnsafeMutableBufferPointer { h.model.infer(xs.baseAddress!, rows: rows, into: $0.baseAddress!) }
            }
            let s = try score(p, t, loss: loss)
            lossOut?.pointee = s.loss
            accuracyOut?.pointee = s.accuracy
        }
    }
}

// MARK: - Files

@c(nnb_model_save)
public func nnbModelSave(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> nnb_status {
    capiCall("nnb_model_save") {
        let h = try handle(model)
        let p = try string(path, "path")
        guard !p.isEmpty else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "path is empty") }
        try h.read { try h.model.save(to: p) }
    }
}

@c(nnb_model_load)
public func nnbModelLoad(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?) -> nnb_status {
    load(out, path, flags: 0, "nnb_model_load")
}

@c(nnb_model_load_with_flags)
public func nnbModelLoadWithFlags(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?,
                                  _ flags: UInt32) -> nnb_status {
    load(out, path, flags: flags, "nnb_model_load_with_flags")
}

private func load(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?, flags: UInt32,
                  _ function: StaticString) -> nnb_status {
    out?.pointee = nil
    return capiCall(function) {
        guard let out else { throw CAPIFailure.null("out") }
        let p = try string(path, "path")
        guard flags & ~NNB_LOAD_ALLOW_NONFINITE == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "unknown flag bits 0x\(String(flags & ~NNB_LOAD_ALLOW_NONFINITE, radix: 16)) (known: NNB_LOAD_ALLOW_NONFINITE)")
        }
        let loaded = try Sequential.loadWithCheckpoint(from: p, allowNonFinite: flags & NNB_LOAD_ALLOW_NONFINITE != 0)
        let h = ModelHandle(loaded.model)
        h.checkpoint = loaded.checkpoint
        out.pointee = OpaquePointer(Unmanaged.passRetained(h).toOpaque())
    }
}
