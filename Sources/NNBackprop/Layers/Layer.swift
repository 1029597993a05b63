import CKernels

/// One step of a network: a forward map from (batch, inputSize) rows to (batch, outputSize)
/// rows, its backward map by the chain rule, and the parameters it owns.
///
/// Layers are classes that own their buffers: `prepare(batchSize:)` sizes the output and
/// gradient buffers once for the largest batch seen, and every later forward or backward with
/// at most that many rows reuses them, so a training step allocates nothing on the heap.
/// Parameters and their gradients live in flat float storage handed out by the model
/// (`bind(parameters:gradients:)`), so an optimizer updates every parameter of a model with
/// one call of a flat CKernels step. All matrices are row-major and contiguous.
public protocol Layer: AnyObject {
    /// The layer's type name and attributes, from which `LayerRegistry` rebuilds it.
    var spec: LayerSpec { get }
    /// The input width, or nil for a layer that takes any width (activations, dropout) until
    /// `configure(inputSize:)` fixes it.
    var inputSize: Int? { get }
    /// The output width for inputs of width `inputSize`.
    func outputSize(forInputSize inputSize: Int) -> Int
    /// Fixes the input width of a width-agnostic layer; throws `shapeMismatch` when a sized
    /// layer is given another width.
    func configure(inputSize: Int) throws(NNError)
    /// Number of trainable floats.
    var parameterCount: Int { get }
    /// Named parameter tensors as (name, shape, offset into this layer's parameter slice),
    /// in storage order ("weight" (out, in), "bias" (out) for `Dense`).
    var parameterLayout: [(name: String, shape: [Int], offset: Int)] { get }
    /// Moves the parameters into `parameters` (its current values are copied there first) and
    /// points gradients at `gradients`; both have `parameterCount` floats.
    func bind(parameters: ParameterSlice, gradients: ParameterSlice)
    /// Draws fresh parameters from the layer's initializer.
    func resetParameters(using generator: inout SeededGenerator)
    /// Sizes buffers for batches of up to `batchSize` rows (grows only; never shrinks).
    func prepare(batchSize: Int)
    /// Computes the output of `batch` rows of `input` (batch, inputSize) into the layer's own
    /// buffer and returns it (batch, outputSize). `input` must stay valid until `backward`.
    /// `training` switches dropout on.
    func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float>
    /// Given dLoss/dOutput (batch, outputSize), which it may overwrite, sets the parameter
    /// gradients (overwriting, not accumulating) and returns dLoss/dInput (batch, inputSize)
    /// in the layer's own buffer, or nil when `needsInputGradient` is false.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                  needsInputGradient: Bool) -> UnsafeMutablePointer<Float>?
    /// How many modules of the equivalent PyTorch `nn.Sequential` this layer stands for
    /// (2 for a `Dense` with a fused activation: Linear then the activation; else 1).
    var moduleCount: Int { get }
}

extension Layer {
    public var parameterCount: Int { 0 }
    public var parameterLayout: [(name: String, shape: [Int], offset: Int)] { [] }
    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {}
    public func resetParameters(using generator: inout SeededGenerator) {}
    public var moduleCount: Int { 1 }
}

/// A layer's description for the model file and the C API: a type name and attributes.
public struct LayerSpec: Sendable, Equatable, CustomStringConvertible {
    /// An attribute value.
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case int(Int)
        case float(Float)
        case string(String)

        public var description: String {
            switch self {
            case .int(let i): return String(i)
            case .float(let f): return "\(f)"
            case .string(let s): return s
            }
        }
    }

    /// "Dense", "Activation", "Softmax", "LogSoftmax", "Dropout".
    public var type: String
    public var attributes: [String: Value]

    public init(type: String, attributes: [String: Value] = [:]) {
        self.type = type
        self.attributes = attributes
    }

    public var description: String {
        let attrs = attributes.keys.sorted().map { "\($0): \(attributes[$0]!)" }.joined(separator: ", ")
        return "\(type)(\(attrs))"
    }

    func int(_ key: String) throws(NNError) -> Int {
        guard case .int(let v)? = attributes[key] else {
            throw .corruptFile("layer \(type): attribute '\(key)' missing or not an integer")
        }
        return v
    }

    func float(_ key: String, default d: Float? = nil) throws(NNError) -> Float {
        switch attributes[key] {
        case .float(let v)?: return v
        case .int(let v)?: return Float(v)
        case nil where d != nil: return d!
        default: throw .corruptFile("layer \(type): attribute '\(key)' missing or not a number")
        }
    }

    func string(_ key: String) throws(NNError) -> String {
        guard case .string(let v)? = attributes[key] else {
            throw .corruptFile("layer \(type): attribute '\(key)' missing or not a string")
        }
        return v
    }
}

/// A 64-byte-aligned float buffer, zero-filled, freed with its owner.
final class FloatStorage {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int

    init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A window of `count` floats into storage shared by a model's layers; keeps the storage alive.
public struct ParameterSlice {
    let storage: FloatStorage
    let offset: Int
    /// Floats in the window.
    public let count: Int

    init(storage: FloatStorage, offset: Int, count: Int) {
        precondition(offset >= 0 && offset + count <= storage.count, "ParameterSlice out of range")
        self.storage = storage
        self.offset = offset
        self.count = count
    }

    /// A slice over fresh zeroed storage of its own.
    init(count: Int) { self.init(storage: FloatStorage(count: count), offset: 0, count: count) }

    /// First float of the window.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    /// The window as a buffer.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
}

/// A reusable scratch buffer that grows to the largest size asked for.
struct GrowableBuffer {
    private(set) var storage: FloatStorage?

    var pointer: UnsafeMutablePointer<Float>? { storage?.pointer }
    var count: Int { storage?.count ?? 0 }

    /// Ensures at least `count` floats; returns true when it had to reallocate.
    @discardableResult
    mutating func reserve(_ count: Int) -> Bool {
        if let s = storage, s.count >= count { return false }
        storage = FloatStorage(count: count)
        return true
    }
}

/// An Int32 scratch buffer that grows like `GrowableBuffer`.
final class Int32Storage {
    private(set) var pointer: UnsafeMutablePointer<Int32>
    private(set) var count: Int

    init() {
        pointer = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        pointer.initialize(to: 0)
        count = 0
    }

    deinit { pointer.deallocate() }

    func reserve(_ n: Int) {
        guard n > count else { return }
        pointer.deallocate()
        pointer = UnsafeMutablePointer<Int32>.allocate(capacity: n)
        pointer.initialize(repeating: 0, count: n)
        count = n
    }
}

/// Rebuilds layers from their specs: the names a model file and the C API use.
public enum LayerRegistry {
    /// The layer described by `spec`; throws `unknownName` for an unknown type and
    /// `corruptFile`/`invalidArgument` for missing or bad attributes.
    public static func make(_ spec: LayerSpec) throws(NNError) -> any Layer {
        switch spec.type {
        case "Dense":
            let input = try spec.int("in_features"), output = try spec.int("out_features")
            guard input > 0, output > 0 else {
                throw .invalidArgument("Dense: sizes must be positive, got in_features \(input), out_features \(output)")
            }
            let act = try Activation(name: spec.string("activation"), alpha: spec.float("alpha", default: 0))
            return Dense(inputSize: input, outputSize: output, activation: act)
        case "Activation":
            let act = try Activation(name: spec.string("activation"), alpha: spec.float("alpha", default: 0))
            let layer = ActivationLayer(act)
            if case .int(let n)? = spec.attributes["features"] { try layer.configure(inputSize: n) }
            return layer
        case "Softmax", "LogSoftmax":
            let layer: any Layer = spec.type == "Softmax" ? Softmax() : LogSoftmax()
            if case .int(let n)? = spec.attributes["features"] { try layer.configure(inputSize: n) }
            return layer
        case "Dropout":
            let p = try spec.float("p")
            guard p >= 0 && p < 1 else { throw .invalidArgument("Dropout: p must be in [0, 1), got \(p)") }
            let layer = Dropout(p)
            if case .int(let n)? = spec.attributes["features"] { try layer.configure(inputSize: n) }
            return layer
        case "CustomActivation":
            let layer = try CustomActivationLayer(name: spec.string("name"))
            if case .int(let n)? = spec.attributes["features"] { try layer.configure(inputSize: n) }
            return layer
        default:
            throw .unknownName("unknown layer type '\(spec.type)'; known: Dense, Activation, Softmax, LogSoftmax, Dropout, CustomActivation")
        }
    }
}
