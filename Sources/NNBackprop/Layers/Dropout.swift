/// Inverted dropout: in training each element is zeroed with probability p and the survivors
/// are scaled by 1 / (1 - p); in inference it is the identity. Shape (batch, features).
///
/// The mask comes from the layer's own `SeededGenerator`, redrawn from the model's seed by
/// `resetParameters(using:)`, so training runs stay reproducible.
public final class Dropout: Layer {
    /// The probability of zeroing an element, in [0, 1).
    public let p: Float
    public private(set) var inputSize: Int?
    private var generator = SeededGenerator(seed: 0)
    private var output = GrowableBuffer()
    private var mask = GrowableBuffer()
    private var active = false

    /// Dropout with drop probability `p` in [0, 1).
    public init(_ p: Float = 0.5) {
        precondition(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got \(p)")
        self.p = p
    }

    /// `Dropout(probability: 0.2)`.
    public convenience init(probability: Float) { self.init(probability) }

    public var spec: LayerSpec {
        var a: [String: LayerSpec.Value] = ["p": .float(p)]
        if let inputSize { a["features"] = .int(inputSize) }
        return LayerSpec(type: "Dropout", attributes: a)
    }

    public func outputSize(forInputSize inputSize: Int) -> Int { inputSize }
    public func configure(inputSize: Int) throws(NNError) { try configureWidth(&self.inputSize, inputSize, "Dropout") }

    public func resetParameters(using generator: inout SeededGenerator) { self.generator = generator.fork() }

    public func prepare(batchSize: Int) {
        output.reserve(batchSize * (inputSize ?? 0))
        mask.reserve(batchSize * (inputSize ?? 0))
    }

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        let n = batch * (inputSize ?? 0)
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
        let n = batch * (inputSize ?? 0)
        if active {
            let m = mask.pointer!
            for i in 0..<n { gradOutput[i] *= m[i] }
        }
        return gradOutput
    }
}
