#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one list of layer types: the model file, the C API (layer specs and the description
/// grammar), the CLI and Python all build layers through it.
public enum LayerRegistry {
    /// The layer types of the library. A new layer type is one more entry here.
    nonisolated(unsafe) public static let builtIn: [any Layer.Type] = [ // constant: metatypes are never mutated
        Dense.self, ActivationLayer.self, Softmax.self, LogSoftmax.self, Dropout.self, CustomActivationLayer.self,
        Flatten.self, Reshape.self, Sequential.self, Conv2D.self, MaxPool2D.self, AvgPool2D.self, GlobalAvgPool2D.self,
        BatchNorm1d.self, BatchNorm2d.self, LayerNorm.self,
    ]

    nonisolated(unsafe) private static var registered: [any Layer.Type] = []
    nonisolated(unsafe) private static var lock = pthread_mutex_t()
    private static let lockReady: Bool = {
        pthread_mutex_init(&lock, nil)
        return true
    }()

    /// Every known type: the built-in ones, then those `register` added.
    public static var types: [any Layer.Type] {
        _ = lockReady
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return builtIn + registered
    }

    /// Adds a layer type defined outside the library (an application's own layer) under its
    /// `typeName`; throws `duplicateName` when a type of that name (or alias) exists.
    public static func register(_ type: any Layer.Type) throws(NNError) {
        let names = Set([type.typeName.lowercased()] + type.aliases)
        for t in types where !names.isDisjoint(with: [t.typeName.lowercased()] + t.aliases) {
            throw .duplicateName("a layer type named '\(t.typeName)' is already registered")
        }
        _ = lockReady
        pthread_mutex_lock(&lock)
        registered.append(type)
        pthread_mutex_unlock(&lock)
    }

    /// The type called `name`: its exact type name, or (for the description grammar) its
    /// lower-case name or an alias.
    public static func type(named name: String) -> (any Layer.Type)? {
        let all = types
        if let t = all.first(where: { $0.typeName == name }) { return t }
        let lower = name.lowercased()
        return all.first { $0.typeName.lowercased() == lower || $0.aliases.contains(lower) }
    }

    /// The names of every known type, for error messages.
    public static var typeNames: [String] { types.map { $0.typeName } }

    /// The layer described by `spec` for samples of `inputShape`; throws `unknownName` for an
    /// unknown type or attribute, `invalidArgument` for a bad value, `shapeMismatch` for an
    /// input the layer cannot take. The layer comes back configured for `inputShape`.
    public static func make(_ spec: LayerSpec, inputShape: Shape) throws(NNError) -> any Layer {
        guard let type = type(named: spec.type) else {
            throw .unknownName("unknown layer type '\(spec.type)'; known: \(typeNames.joined(separator: ", "))")
        }
        let layer = try type.init(spec: spec, inputShape: inputShape)
        try layer.configure(inputShape: inputShape)
        return layer
    }

    /// Builds a chain of layers from specs, each on the previous one's output shape; errors
    /// name the layer (0-based) and its type.
    public static func makeChain(_ specs: [LayerSpec], inputShape: Shape) throws(NNError) -> [any Layer] {
        var layers: [any Layer] = []
        var shape = inputShape
        for (i, spec) in specs.enumerated() {
            do {
                let layer = try make(spec, inputShape: shape)
                shape = try layer.outputShape(for: shape)
                layers.append(layer)
            } catch {
                throw error.prefixed("layer \(i) (\(spec.type))")
            }
        }
        return layers
    }
}
