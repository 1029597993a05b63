/// Inverted dropout: in training each element is zeroed with probability p and the survivors
/// are scaled by 1 / (1 - p); in inference it is the identity. Any sample shape.
///
/// The mask comes from the layer's own `SeededGenerator`, redrawn from the model's seed by
/// `resetParameters(using:)`, so training runs stay reproducible; its state is part of a
/// training checkpoint (`randomState`).
public final class Dropout: ShapePreserving {
    public static let typeName = "Dropout"
    public static let positionalAttributes = ["p"]
    /// The probability of zeroing an element, in [0, 1).
    public let p: Float
    var configuredShape: Shape?
    var generator = SeededGenerator(seed: 0)
    private var output = GrowableBuffer()
    private var mask = GrowableBuffer()
    private var active = false

    /// Dropout with drop probability `p` in [0, 1); throws `invalidArgument` for another.
    public init(_ p: Float = 0.5) throws(NNError) {
        guard p >= 0 && p < 1 else { throw .invalidArgument("Dropout: p must be in [0, 1), got \(p)") }
        self.p = p
    }

    /// `Dropout(probability: 0.2)`.
    public convenience init(probability: Float) throws(NNError) { try self.init(probability) }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["p", "features"])
        try checkFeatures(spec, inputShape)
        try self.init(spec.float("p"))
    }

    public var spec: LayerSpec { LayerSpec(type: Dropout.typeName, attributes: ["p": .float(p)]) }
    public var descriptionElement: String { "dropout:\(p)" }

    public func resetParameters(using generator: inout SeededGenerator) { self.generator = generator.fork() }

    public var randomState: [UInt64]? {
        get { generator.stateWords }
        set { if let newValue, let g = try? SeededGenerator(stateWords: newValue) { generator = g } }
    }

    public func prepare(batchSize: Int) {
        output.reserve(batchSize * width)
        mask.reserve(batchSize * width)
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        let n = batch * width
        let y = output.pointer!, m = mask.pointer!
        active = training && p > 0
        if !active {
            y.update(from: input, count: n)
            return y
        }
        let keep = 1 / (1 - p)
        for i in 0..<n {
            let s: Float = generator.nextFloat() >= p ? keep : 0
            m[i] = s
            y[i] = input[i] * s
        }
        return y
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        if active {
            let m = mask.pointer!
            for i in 0..<(batch * width) { gradOutput[i] *= m[i] }
        }
        return gradOutput
    }

    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        output.update(from: input, count: rows * width)
    }
}
