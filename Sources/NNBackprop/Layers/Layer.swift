import CKernels

/// A tensor of a layer: its name in the state dict, its shape, and its offset into the
/// layer's flat slice.
public typealias TensorLayout = (name: String, shape: [Int], offset: Int)

/// One step of a network: a forward map from (batch, inputShape) samples to (batch,
/// outputShape) samples, its backward map by the chain rule, its parameters, its non-trainable
/// buffers, and a reentrant inference path.
///
/// Samples are contiguous row-major blocks (`Shape.count` floats each), so every buffer is an
/// (batch, count) matrix. Layers are classes that own their training buffers:
/// `prepare(batchSize:)` sizes them once for the largest batch seen, and every later forward
/// or backward with at most that many samples reuses them, so a training step allocates
/// nothing. Parameters, their gradients and the buffers live in flat float storage handed out
/// by the model (`bind(parameters:gradients:)`, `bind(buffers:)`), so an optimizer updates a
/// whole model with one flat CKernels step.
///
/// Adding a layer type: a class conforming to `Layer` in a file of its own (its kernels in
/// CKernels), its type in `LayerRegistry.builtIn`, and its tests. Nothing else names it.
public protocol Layer: AnyObject {
    /// The type name the model file, the C API and the registry use ("Dense", "Flatten").
    static var typeName: String { get }
    /// Lower-case names the C description grammar also accepts for the type ("linear").
    static var aliases: [String] { get }
    /// The attributes a description element may give by position, in order
    /// ("reshape(1x28x28)" sets "shape").
    static var positionalAttributes: [String] { get }
    /// Rebuilds a layer from its spec for samples of `inputShape`: attributes the shape
    /// implies (a `Dense` layer's "in_features") may be left out and are checked when present.
    /// Throws `unknownName` for an unknown attribute, `invalidArgument` for a bad value and
    /// `shapeMismatch` for an input the layer cannot take.
    init(spec: LayerSpec, inputShape: Shape) throws(NNError)

    /// The layer's type name and attributes, from which `LayerRegistry` rebuilds it.
    var spec: LayerSpec { get }
    /// The input shape the layer is built for, or nil for a layer that takes any shape
    /// (activations, dropout) until `configure(inputShape:)` fixes it.
    var inputShape: Shape? { get }
    /// The output shape for samples of `input`; throws `shapeMismatch` for one it cannot take.
    func outputShape(for input: Shape) throws(NNError) -> Shape
    /// Fixes the input shape (a shape-agnostic layer takes it; a shaped one checks it).
    func configure(inputShape: Shape) throws(NNError)

    /// Number of trainable floats (0 for a layer whose parameters another layer owns).
    var parameterCount: Int { get }
    /// The trainable tensors in storage order ("weight" (out, in), "bias" (out) for `Dense`).
    var parameterLayout: [TensorLayout] { get }
    /// Moves the parameters into `parameters` (current values are copied there first) and
    /// points gradients at `gradients`; both have `parameterCount` floats.
    func bind(parameters: ParameterSlice, gradients: ParameterSlice)
    /// Number of non-trainable floats (running statistics): state that no optimizer or weight
    /// decay touches but that is saved with the model.
    var bufferCount: Int { get }
    /// The buffers in storage order, named as PyTorch's state dict names them.
    var bufferLayout: [TensorLayout] { get }
    /// Moves the buffers into `buffers` (`bufferCount` floats; current values copied first).
    func bind(buffers: ParameterSlice)
    /// Draws fresh parameters (and buffer initial values) from the layer's initializer.
    func resetParameters(using generator: inout SeededGenerator)
    /// The state of the layer's own random generator (dropout's masks), which a training
    /// checkpoint carries so that a resumed run draws what an uninterrupted one would; nil
    /// for a layer without one.
    var randomState: [UInt64]? { get set }

    /// Throws when the layer cannot run a batch of `batch` samples in this mode (batch
    /// normalization needs more than one value per channel to train); the trainer asks before
    /// each step, so that forward itself need not fail.
    func validate(batch: Int, training: Bool) throws(NNError)
    /// Sizes the training buffers for batches of up to `batchSize` samples (grows only).
    func prepare(batchSize: Int)
    /// The arithmetic of the layer's products in training-mode forward and backward passes
    /// (the trainer sets it before each step); layers without products ignore it.
    func setTrainingPrecision(_ precision: Precision)
    /// The output of `batch` samples of `input` into the layer's own buffer. `input` must stay
    /// valid until `backward`. `training` is the mode: dropout drops and batch statistics are
    /// used only in training; the model passes the same mode to every layer.
    func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float>
    /// Given dLoss/dOutput (batch, output count), which it may overwrite, adds the parameter
    /// gradients into the bound gradient slice (`ParameterSlice.beginAccumulating()` says whether
    /// this step already wrote there) and returns dLoss/dInput in the layer's own buffer, or
    /// nil when `needsInputGradient` is false.
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                  needsInputGradient: Bool) -> UnsafeMutablePointer<Float>?

    /// Floats of scratch `infer` needs for `rows` samples.
    func inferenceScratchCount(rows: Int) -> Int
    /// The inference-mode output of `rows` samples written to `output`, reading parameters and
    /// buffers only and writing nothing but `output` and `scratch` (at least
    /// `inferenceScratchCount` floats when that was not 0; a kernel's work size is the buffer's
    /// count): any number of threads may run it at once.
    func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
               scratch: UnsafeMutableBufferPointer<Float>?)

    /// How many modules of the equivalent PyTorch `nn.Sequential` this layer stands for
    /// (2 for a `Dense` with a fused activation: Linear then the activation; else 1).
    var moduleCount: Int { get }
    /// The layer as one element of the C description grammar ("256:relu", "flatten").
    var descriptionElement: String { get }
}

extension Layer {
    public static var aliases: [String] { [] }
    public static var positionalAttributes: [String] { [] }
    public var parameterCount: Int { 0 }
    public var parameterLayout: [TensorLayout] { [] }
    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {}
    public var bufferCount: Int { 0 }
    public var bufferLayout: [TensorLayout] { [] }
    public func bind(buffers: ParameterSlice) {}
    public func resetParameters(using generator: inout SeededGenerator) {}
    public var randomState: [UInt64]? {
        get { nil }
        set {} // a layer without a generator has nothing to restore
    }
    public func inferenceScratchCount(rows: Int) -> Int { 0 }
    public func validate(batch: Int, training: Bool) throws(NNError) {}
    public func setTrainingPrecision(_ precision: Precision) {}
    public var moduleCount: Int { 1 }

    /// `typename(key=value, ...)` with the attributes the input shape does not imply.
    public var descriptionElement: String { spec.descriptionElement(omitting: ["features"]) }

    /// The output shape for the input shape the layer is configured with.
    public var outputShape: Shape? { inputShape.flatMap { try? outputShape(for: $0) } }
}

/// A layer that maps each element on its own and keeps the shape: activations and dropout.
/// They take any input shape; the first `configure` fixes it.
protocol ShapePreserving: Layer {
    var configuredShape: Shape? { get set }
}

extension ShapePreserving {
    public var inputShape: Shape? { configuredShape }
    public func outputShape(for input: Shape) throws(NNError) -> Shape { input }
    public func configure(inputShape: Shape) throws(NNError) {
        if let current = configuredShape, current != inputShape {
            throw .shapeMismatch("\(Self.typeName) was built for samples of shape \(current), got \(inputShape)")
        }
        configuredShape = inputShape
    }
    /// Elements per sample (0 before configuration).
    var width: Int { configuredShape?.count ?? 0 }
}

/// A layer's description for the model file and the C API: a type name and attributes.
public struct LayerSpec: Sendable, Equatable, CustomStringConvertible {
    /// An attribute value.
    public indirect enum Value: Sendable, Equatable, CustomStringConvertible {
        case int(Int)
        case float(Float)
        case string(String)
        /// A list of sizes (a shape, a kernel size).
        case ints([Int])
        /// The layers of a nested model.
        case layers([LayerSpec])

        public var description: String {
            switch self {
            case .int(let i): return String(i)
            case .float(let f): return "\(f)"
            case .string(let s): return s
            case .ints(let v): return Shape.text(v)
            case .layers(let l): return "[" + l.map(\.description).joined(separator: ", ") + "]"
            }
        }
    }

    /// The registered type name ("Dense", "Flatten", ...).
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

    /// `name(key=value, ...)` in lower case, leaving out `omitting`.
    func descriptionElement(omitting: Set<String>) -> String {
        let keys = attributes.keys.filter { !omitting.contains($0) }.sorted()
        let head = type.lowercased()
        return keys.isEmpty ? head : head + "(" + keys.map { "\($0)=\(attributes[$0]!)" }.joined(separator: ",") + ")"
    }

    /// Throws `unknownName` for an attribute outside `known`, naming the type and the known ones.
    public func checkAttributes(_ known: Set<String>) throws(NNError) {
        for key in attributes.keys.sorted() where !known.contains(key) {
            throw .unknownName("layer \(type): unknown attribute '\(key)'; \(type) takes \(known.isEmpty ? "none" : known.sorted().joined(separator: ", "))")
        }
    }

    /// The attribute `key` as `extract` reads it, or `d` when absent; throws `invalidArgument`
    /// naming the layer type, the attribute and what it should have been.
    private func attribute<T>(_ key: String, _ d: T?, _ kind: String, _ extract: (Value) -> T?) throws(NNError) -> T {
        guard let value = attributes[key] else {
            if let d { return d }
            throw .invalidArgument("layer \(type): attribute '\(key)' is missing")
        }
        guard let x = extract(value) else { throw .invalidArgument("layer \(type): attribute '\(key)' is \(value), not \(kind)") }
        return x
    }

    /// The integer attribute `key`, or `d` when absent.
    public func int(_ key: String, default d: Int? = nil) throws(NNError) -> Int {
        try attribute(key, d, "an integer") { if case .int(let v) = $0 { v } else { nil } }
    }

    /// The integer attribute `key`, or nil when absent.
    public func optionalInt(_ key: String) throws(NNError) -> Int? {
        attributes[key] == nil ? nil : try int(key)
    }

    /// The number attribute `key` (an integer reads as a float), or `d` when absent.
    public func float(_ key: String, default d: Float? = nil) throws(NNError) -> Float {
        try attribute(key, d, "a number") {
            switch $0 {
            case .float(let v): v
            case .int(let v): Float(v)
            default: nil
            }
        }
    }

    /// The name attribute `key`, or `d` when absent.
    public func string(_ key: String, default d: String? = nil) throws(NNError) -> String {
        try attribute(key, d, "a name") { if case .string(let v) = $0 { v } else { nil } }
    }

    /// The list-of-sizes attribute `key` (a single integer is a list of one).
    public func ints(_ key: String) throws(NNError) -> [Int] {
        try attribute(key, nil, "a list of sizes") {
            switch $0 {
            case .ints(let v): v
            case .int(let v): [v]
            default: nil
            }
        }
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

/// The step counter of a model's gradients: `Sequential.zeroGradients()` advances it, which
/// makes every gradient tensor "not yet written this step".
final class GradientClock {
    var step = 1
}

/// Which step last wrote one gradient tensor. Layers that share a tensor (tied weights) share
/// its mark, so the second writer of a step adds to what the first wrote.
final class GradientMark {
    var step = 0
}

/// A window of `count` floats into storage shared by a model's layers; keeps the storage alive.
public struct ParameterSlice {
    let storage: FloatStorage
    let offset: Int
    /// Floats in the window.
    public let count: Int
    let clock: GradientClock
    let mark: GradientMark

    init(storage: FloatStorage, offset: Int, count: Int, clock: GradientClock = GradientClock()) {
        precondition(offset >= 0 && offset + count <= storage.count, "ParameterSlice out of range")
        self.storage = storage
        self.offset = offset
        self.count = count
        self.clock = clock
        mark = GradientMark()
    }

    /// A slice over fresh zeroed storage of its own.
    init(count: Int) { self.init(storage: FloatStorage(count: count), offset: 0, count: count) }

    /// A layer's `bind(parameters:gradients:)`: the model's `parameters` and `gradients` take
    /// over from the layer's `current` pair, whose values they get first (a layer that has none
    /// yet starts from the model's).
    static func rebind(_ current: (params: ParameterSlice, grads: ParameterSlice)?, to parameters: ParameterSlice,
                       _ gradients: ParameterSlice) -> (params: ParameterSlice, grads: ParameterSlice) {
        precondition(parameters.count == gradients.count && (current == nil || current!.params.count == parameters.count))
        if let current {
            parameters.pointer.update(from: current.params.pointer, count: parameters.count)
            gradients.pointer.update(from: current.grads.pointer, count: gradients.count)
        }
        return (parameters, gradients)
    }

    /// The window [start, start + n) of this one, on the same clock, with its own mark.
    func subslice(_ start: Int, _ n: Int) -> ParameterSlice {
        ParameterSlice(storage: storage, offset: offset + start, count: n, clock: clock)
    }

    /// First float of the window.
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer + offset }
    /// The window as a buffer.
    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }

    /// For a gradient slice, at the start of a layer's backward: true when this step already
    /// wrote the tensor (add to it), false when it holds a previous step's values (overwrite
    /// them). Gradients accumulate from one zeroGradients() to the next, as in PyTorch; a
    /// step that writes every tensor need not clear them first, which saves a pass over
    /// all gradients per step.
    public func beginAccumulating() -> Bool {
        let written = mark.step == clock.step
        mark.step = clock.step
        return written
    }
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
