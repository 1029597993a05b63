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

/// The most parameters a model may have (2^31 floats, 8 GiB): larger requests are refused
/// with an error instead of failing to allocate.
let maxParameters = 1 << 31

/// Adds a dense layer's parameters (width x units + units) to `total`, refusing overflow and
/// models past `maxParameters`.
func countParameters(_ total: inout Int, width: Int, units: Int) throws {
    let (w, o1) = width.multipliedReportingOverflow(by: units)
    let (layer, o2) = w.addingReportingOverflow(units)
    let (sum, o3) = total.addingReportingOverflow(layer)
    guard !(o1 || o2 || o3), sum <= maxParameters else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "the model would have more than 2^31 parameters (a \(width) -> \(units) dense layer); refusing to allocate it")
    }
    total = sum
}

// MARK: - Model descriptions

/// One element of a compact description: "256:relu", "10", "dropout:0.5", "softmax".
private func layers(fromDescription text: String) throws -> (inputs: Int, layers: [any Layer]) {
    let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { String($0.filter { !$0.isWhitespace }) }
    guard parts.count >= 2 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)' needs an input size and at least one layer, e.g. \"784-256:relu-10\"")
    }
    guard let inputs = Int(parts[0]), inputs > 0 else {
        throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': the input size '\(parts[0])' is not a positive integer")
    }
    var out: [any Layer] = []
    var width = inputs
    var parameters = 0
    for (i, part) in parts.enumerated().dropFirst() {
        let fields = part.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let head = fields.first, !head.isEmpty else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) is empty")
        }
        if fields.count > 1 && fields[1].isEmpty {
            // "dropout:-0.1" splits at its minus sign into "dropout:" and "0.1".
            if head == "dropout" {
                throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) 'dropout:' has no rate (a negative rate is not allowed: rates are in [0, 1), as dropout:0.5)")
            }
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) '\(part)' has ':' but no activation after it")
        }
        if let units = Int(head) {
            guard units > 0 else {
                throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) has \(units) units; sizes must be positive")
            }
            try countParameters(&parameters, width: width, units: units)
            let named = fields.count > 1 ? try activationLayers(fields[1], alpha: 0) : (.identity, nil)
            out.append(Dense(inputSize: width, outputSize: units, activation: named.fused))
            if let extra = named.layer { out.append(extra) }
            width = units
        } else if head == "dropout" {
            guard fields.count > 1, let p = Float(fields[1]), p >= 0, p < 1 else {
                throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) '\(part)' needs a rate in [0, 1), as dropout:0.5")
            }
            out.append(Dropout(p))
        } else if head == "softmax" || head == "log_softmax" {
            out.append(head == "softmax" ? Softmax() : LogSoftmax())
        } else if let first = head.unicodeScalars.first, first.properties.isAlphabetic {
            let named = try activationLayers(head, alpha: 0)
            out.append(named.layer ?? ActivationLayer(named.fused))
        } else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "description '\(text)': element \(i) '\(part)' is neither a size, an activation nor dropout:RATE")
        }
    }
    return (inputs, out)
}

/// A built-in activation (to fuse into Dense), or a plugin's as a layer of its own.
private func activationLayers(_ name: String, alpha: Float) throws -> (fused: Activation, layer: (any Layer)?) {
    do {
        return (try Activation(name: name, alpha: alpha), nil)
    } catch {
        guard Plugins.activation(named: name) != nil else { throw error }
        return (.identity, try CustomActivationLayer(name: name))
    }
}

/// The compact description of a model (the inverse of `layers(fromDescription:)`).
func describe(_ model: Sequential) -> String {
    var parts = [String(model.inputSize)]
    for layer in model.layers {
        switch layer {
        case let d as Dense:
            parts.append(d.activation == .identity ? "\(d.outputSize)" : "\(d.outputSize):\(d.activation.name)")
        case let a as ActivationLayer: parts.append(a.activation.name)
        case let c as CustomActivationLayer: parts.append(c.name)
        case let p as Dropout: parts.append("dropout:\(p.p)")
        case is Softmax: parts.append("softmax")
        case is LogSoftmax: parts.append("log_softmax")
        default: parts.append(layer.spec.type)
        }
    }
    return parts.joined(separator: "-")
}

private func layers(from spec: nnb_layer_spec, index: Int, width: Int) throws -> [any Layer] {
    func activation() throws -> (fused: Activation, layer: (any Layer)?) {
        try activationLayers(spec.activation.map { String(cString: $0) } ?? "identity", alpha: spec.alpha)
    }
    switch spec.type {
    case NNB_LAYER_DENSE:
        guard spec.units > 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "layers[\(index)]: a dense layer needs units > 0, got \(spec.units)")
        }
        let a = try activation()
        return [Dense(inputSize: width, outputSize: Int(spec.units), activation: a.fused)] + (a.layer.map { [$0] } ?? [])
    case NNB_LAYER_ACTIVATION:
        switch spec.activation.map({ String(cString: $0) }) {
        case "softmax"?: return [Softmax()]
        case "log_softmax"?: return [LogSoftmax()]
        default:
            let a = try activation()
            return [a.layer ?? ActivationLayer(a.fused)]
        }
    case NNB_LAYER_DROPOUT:
        guard spec.rate >= 0 && spec.rate < 1 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "layers[\(index)]: dropout rate must be in [0, 1), got \(spec.rate)")
        }
        return [Dropout(spec.rate)]
    default:
        throw CAPIFailure(NNB_ERR_UNKNOWN_NAME, "layers[\(index)]: unknown layer type \(spec.type.rawValue) (expected NNB_LAYER_DENSE, NNB_LAYER_ACTIVATION or NNB_LAYER_DROPOUT)")
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
        guard inputs > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "inputs must be positive, got \(inputs)") }
        guard try size(count, "n_layers") > 0 else { throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "n_layers must be positive, got 0") }
        var built: [any Layer] = []
        var width = Int(inputs)
        var parameters = 0
        for i in 0..<count {
            var spec = nnb_layer_spec()
            nnbLayerSpecInit(&spec)
            try copyVersioned(specs + i, into: &spec, size: specs[i].struct_size, "nnb_layer_spec")
            if spec.type == NNB_LAYER_DENSE && spec.units > 0 {
                try countParameters(&parameters, width: width, units: Int(spec.units))
            }
            for l in try layers(from: spec, index: i, width: width) {
                try l.configure(inputSize: width)
                width = l.outputSize(forInputSize: width)
                built.append(l)
            }
        }
        publish(try Sequential(layers: built, inputSize: Int(inputs), seed: seed), out)
    }
}

@c(nnb_model_create_from_string)
public func nnbModelCreateFromString(_ out: UnsafeMutablePointer<OpaquePointer?>?, _ description: UnsafePointer<CChar>?,
                                     _ seed: UInt64) -> nnb_status {
    out?.pointee = nil
    return capiCall("nnb_model_create_from_string") {
        guard let out else { throw CAPIFailure.null("out") }
        let parsed = try layers(fromDescription: try string(description, "description"))
        publish(try Sequential(layers: parsed.layers, inputSize: parsed.inputs, seed: seed), out)
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

/// Mean loss and accuracy of predictions `p` (rows, outputs) against `t`.
func score(_ p: [Float], _ t: Dataset.Targets, loss: Loss, outputs: Int) throws -> (loss: Double, accuracy: Double) {
    let value = Double(try loss.evaluate(predictions: p, targets: t).loss)
    let rows = p.count / outputs
    switch (loss, t) {
    case (.softmaxCrossEntropy, _):
        guard let truth = t.classIndices else { return (value, .nan) }
        var right = 0
        for r in 0..<rows {
            let row = p[(r * outputs)..<((r + 1) * outputs)]
            if Int32(row.indices.max { row[$0] < row[$1] }! - r * outputs) == truth[r] { right += 1 }
        }
        return (value, Double(right) / Double(rows))
    case (.binaryCrossEntropy, .values(let v, _)):
        // Each output a separate yes/no: logit > 0 against target >= 0.5.
        var right = 0
        for i in 0..<p.count where (p[i] > 0) == (v[i] >= 0.5) { right += 1 }
        return (value, Double(right) / Double(p.count))
    default:
        return (value, .nan)
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
            let s = try score(p, t, loss: loss, outputs: h.model.outputSize)
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
        publish(try Sequential.load(from: p, allowNonFinite: flags & NNB_LOAD_ALLOW_NONFINITE != 0), out)
    }
}
