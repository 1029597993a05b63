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

// MARK: - Model descriptions (the grammar lives in the core: ModelDescription)

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
        let attrs = try ModelDescription.attributes(text, for: type, "layers[\(index)] (\(typeName))")
        return [LayerSpec(type: type.typeName, attributes: attrs)]
    default:
        throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "layers[\(index)]: unknown layer type \(spec.type.rawValue) (expected NNB_LAYER_DENSE, NNB_LAYER_ACTIVATION, NNB_LAYER_DROPOUT or NNB_LAYER_NAMED)")
    }
}

private func publish(_ model: Sequential, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    out.pointee = OpaquePointer(Unmanaged.passRetained(ModelHandle(model)).toOpaque())
}

// MARK: - Creation

/// The defaults of a layer spec, in this library's full layout.
func defaultLayerSpec() -> nnb_layer_spec {
    var s = nnb_layer_spec()
    s.struct_size = UInt32(MemoryLayout<nnb_layer_spec>.size)
    s.type = NNB_LAYER_DENSE
    return s
}

/// Writes the first `size` bytes of `value` (with struct_size = size) to `target`: the init
/// functions fill exactly the struct the caller's header declares.
func initialize<T>(_ target: UnsafeMutablePointer<T>, with value: T, size: Int) {
    var v = value
    withUnsafeMutableBytes(of: &v) { $0.storeBytes(of: UInt32(size), toByteOffset: 0, as: UInt32.self) }
    withUnsafeBytes(of: &v) { UnsafeMutableRawPointer(target).copyMemory(from: $0.baseAddress!, byteCount: size) }
}

@c(nnb_layer_spec_init_sized)
public func nnbLayerSpecInitSized(_ spec: UnsafeMutablePointer<nnb_layer_spec>?, _ size: Int) {
    guard let spec, size >= 8, size <= MemoryLayout<nnb_layer_spec>.size else { return }
    initialize(spec, with: defaultLayerSpec(), size: size)
}

/// The 0.1 symbol: programs built against that header have a struct ending before type_name.
@c(nnb_layer_spec_init)
public func nnbLayerSpecInit(_ spec: UnsafeMutablePointer<nnb_layer_spec>?) {
    nnbLayerSpecInitSized(spec, MemoryLayout<nnb_layer_spec>.offset(of: \.type_name)!)
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
        // The caller's structs may be smaller than this library's (an older header): step by
        // the size the first one says, which every element must repeat.
        let stride = Int(UnsafeRawPointer(specs).load(as: UInt32.self))
        guard stride >= 8, stride % MemoryLayout<UInt32>.alignment == 0, stride <= MemoryLayout<nnb_layer_spec>.size else {
            throw CAPIFailure(NNB_ERR_VERSION, "layers[0].struct_size is \(stride); call nnb_layer_spec_init first (expected \(MemoryLayout<nnb_layer_spec>.size), or a smaller size of an older header)")
        }
        for i in 0..<count {
            let offset = try product(i, stride, "the layer specs' size")
            let element = UnsafeRawPointer(specs) + offset
            let size = element.load(as: UInt32.self)
            guard Int(size) == stride else {
                throw CAPIFailure(NNB_ERR_VERSION, "layers[\(i)].struct_size is \(size) but layers[0]'s is \(stride); every element of the array has the same size")
            }
            var spec = defaultLayerSpec()
            withUnsafeMutableBytes(of: &spec) { $0.copyMemory(from: UnsafeRawBufferPointer(start: element, count: stride)) }
            all += try layers(from: spec, index: i)
        }
        let shape = try Shape(features: Int(inputs))
        publish(try Sequential(layers: Sequential.layers(from: ModelDescription.expandingPluginActivations(all), inputShape: shape), inputShape: shape,
                               seed: seed), out)
    }
}

@c(nnb_model_create_from_string)
public func nnbModelCreateFromString(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ description: UnsafePointer<CChar>?,
                                     _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_create_from_string") {
        guard let out else { throw CAPIFailure.null("out") }
        let parsed = try ModelDescription.parse(try string(description, "description"))
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
        let size = UnsafeRawPointer(info).load(as: UInt32.self) // the caller's struct may be smaller
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
        let text = ModelDescription.describe(h.model) // the layers never change after creation
        try copyOut(Array(text.utf8CString).map { UInt8(bitPattern: $0) }, to: buf, capacity: capacity, needed: needed,
                    "the description", unit: "bytes with its NUL")
    }
}

/// Copies `bytes` to a caller's buffer of `capacity`: `needed` gets their count; a NULL buffer
/// with capacity 0 and a `needed` is a size query; a smaller capacity is NNB_ERR_CAPACITY.
func copyOut<T>(_ bytes: [UInt8], to buf: UnsafeMutablePointer<T>?, capacity: Int, needed: UnsafeMutablePointer<Int>?,
                _ what: String, unit: String = "bytes") throws {
    needed?.pointee = bytes.count
    let capacity = try size(capacity, "capacity")
    guard let buf else {
        if needed != nil && capacity == 0 { return }
        throw CAPIFailure.null("buf")
    }
    guard capacity >= bytes.count else {
        throw CAPIFailure(NNB_ERR_CAPACITY, "\(what) needs \(bytes.count) \(unit), capacity is \(capacity)")
    }
    bytes.withUnsafeBytes { UnsafeMutableRawPointer(buf).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
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
    if let i = Dataset.firstNonFinite(in: buffer) {
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
            let loss = try lossName.map { try Loss(name: String(cString: $0)) } ?? h.compiled?.loss ?? h.model.loss ?? .softmaxCrossEntropy()
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
        try checkLoadFlags(flags)
        let loaded = try Sequential.loadWithCheckpoint(from: p, allowNonFinite: flags & NNB_LOAD_ALLOW_NONFINITE != 0)
        out.pointee = adopt(loaded)
    }
}

private func checkLoadFlags(_ flags: UInt32) throws {
    guard flags & ~NNB_LOAD_ALLOW_NONFINITE == 0 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "unknown flag bits 0x\(String(flags & ~NNB_LOAD_ALLOW_NONFINITE, radix: 16)) (known: NNB_LOAD_ALLOW_NONFINITE)")
    }
}

/// A new handle holding a loaded model and its checkpoint.
private func adopt(_ loaded: (model: Sequential, checkpoint: Checkpoint?)) -> OpaquePointer {
    let h = ModelHandle(loaded.model)
    h.checkpoint = loaded.checkpoint
    return OpaquePointer(Unmanaged.passRetained(h).toOpaque())
}

@c(nnb_model_export_onnx)
public func nnbModelExportONNX(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> nnb_status {
    capiCall("nnb_model_export_onnx") {
        let h = try handle(model)
        let p = try string(path, "path")
        guard !p.isEmpty else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "path is empty") }
        try h.read { try h.model.exportONNX(to: p) }
    }
}

@c(nnb_model_import_onnx)
public func nnbModelImportONNX(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?, _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_import_onnx") {
        guard let out else { throw CAPIFailure.null("out") }
        let p = try string(path, "path")
        out.pointee = adopt((try Sequential.importONNX(from: p, seed: seed), nil))
    }
}

@c(nnb_model_import_fann)
public func nnbModelImportFANN(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ path: UnsafePointer<CChar>?, _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_import_fann") {
        guard let out else { throw CAPIFailure.null("out") }
        let p = try string(path, "path")
        out.pointee = adopt((try Sequential.importFANN(from: p, seed: seed), nil))
    }
}

@c(nnb_model_save_to_buffer)
public func nnbModelSaveToBuffer(_ model: OpaquePointer?, _ flags: UInt32, _ buf: UnsafeMutableRawPointer?, _ capacity: Int,
                                 _ needed: UnsafeMutablePointer<Int>?) -> nnb_status {
    capiCall("nnb_model_save_to_buffer") {
        let h = try handle(model)
        guard flags & ~NNB_SAVE_CHECKPOINT == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "unknown flag bits 0x\(String(flags & ~NNB_SAVE_CHECKPOINT, radix: 16)) (known: NNB_SAVE_CHECKPOINT)")
        }
        let bytes: [UInt8] = try h.read {
            guard flags & NNB_SAVE_CHECKPOINT != 0 else { return try h.model.serialized() }
            guard let c = h.compiled else {
                throw CAPIFailure(NNB_ERR_NOT_READY, "nothing to checkpoint: call nnb_compile or nnb_train first (flags 0 gives the model alone)")
            }
            return try h.model.safeTensors(optimizer: c.optimizer, progress: c.progress).serialized()
        }
        try copyOut(bytes, to: buf?.assumingMemoryBound(to: UInt8.self), capacity: capacity, needed: needed, "the model file")
    }
}

@c(nnb_model_load_from_buffer)
public func nnbModelLoadFromBuffer(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ data: UnsafeRawPointer?, _ count: Int,
                                   _ flags: UInt32) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_load_from_buffer") {
        guard let out else { throw CAPIFailure.null("out") }
        guard let data else { throw CAPIFailure.null("data") }
        let n = try size(count, "size")
        try checkLoadFlags(flags)
        let bytes = [UInt8](UnsafeRawBufferPointer(start: data, count: n))
        out.pointee = adopt(try Sequential.loadWithCheckpoint(bytes: bytes, allowNonFinite: flags & NNB_LOAD_ALLOW_NONFINITE != 0))
    }
}
