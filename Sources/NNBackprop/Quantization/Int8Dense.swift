import CKernels

/// A Dense layer's int8 inference state (post-training quantization, `Sequential.quantizeInt8`):
/// weights as int8 with one scale per output channel (symmetric: `w ~ weightScale[j] * q`,
/// q in -127...127), the input as uint8 with a scale and zero point calibrated on sample rows
/// (`x ~ inputScale * (u - zeroPoint)`), products summed exactly in int32 (AVX512-VNNI where
/// the CPU has it) and dequantized in fp32 with the layer's fp32 bias and activation.
public final class Int8Dense: Sendable {
    /// The int8 weights (outputs, inputs), row-major as the fp32 weight.
    public let weights: [Int8]
    /// One scale per output channel.
    public let weightScale: [Float]
    /// The input's scale and zero point.
    public let inputScale: Float
    public let zeroPoint: Int32
    let outputs: Int, inputs: Int
    /// The most inputs a layer may have: 2 * 255 * 128 * 32768 < 2^31, so every int32 sum is exact.
    public static let maxInputs = 32768
    /// The weights packed for the kernel, their per-channel sums, and inputScale * weightScale.
    let packed: [Int8]
    let columnSums: [Int32]
    let scale: [Float]

    /// The state from its saved parts; throws `invalidData` for a scale that is not positive
    /// and finite or a zero point outside 0...255, `shapeMismatch` for wrong sizes.
    init(weights: [Int8], weightScale: [Float], inputScale: Float, zeroPoint: Int32, outputs: Int, inputs: Int) throws(NNError) {
        // Exact int32 sums: |acc - zeroPoint * colsum| <= 2 * 255 * 128 * inputs must stay below 2^31.
        guard inputs <= Int8Dense.maxInputs else {
            throw .unsupported("int8 quantization: a Dense layer of \(inputs) inputs is past the \(Int8Dense.maxInputs) whose int32 sums stay exact")
        }
        guard weights.count == outputs * inputs, weightScale.count == outputs else {
            throw .shapeMismatch("int8 weights: \(weights.count) values and \(weightScale.count) scales for a (\(outputs), \(inputs)) layer")
        }
        // Normal scales (no subnormal, so 1 / inputScale is finite) whose products are normal too.
        guard inputScale.isNormal, inputScale > 0, (1 / inputScale).isFinite, (0...255).contains(zeroPoint) else {
            throw .invalidData("int8 input quantization: scale \(inputScale) must be a positive normal number, zero point \(zeroPoint) in 0...255")
        }
        if let j = weightScale.firstIndex(where: { !($0.isNormal && $0 > 0 && (inputScale * $0).isNormal) }) {
            throw .invalidData("int8 weight scale of output \(j) is \(weightScale[j]) (times the input scale: \(inputScale * weightScale[j])); scales and their products must be positive normal numbers")
        }
        self.weights = weights
        self.weightScale = weightScale
        self.inputScale = inputScale
        self.zeroPoint = zeroPoint
        self.outputs = outputs
        self.inputs = inputs
        var packed = [Int8](repeating: 0, count: nnk_qweights_packed_size(outputs, inputs))
        weights.withUnsafeBufferPointer { w in nnk_qweights_pack(&packed, w.baseAddress!, inputs, outputs, inputs) }
        self.packed = packed
        columnSums = (0..<outputs).map { j in weights[(j * inputs)..<((j + 1) * inputs)].reduce(Int32(0)) { $0 + Int32($1) } }
        scale = weightScale.map { inputScale * $0 }
    }

    /// Quantizes `weight` (outputs, inputs) per output channel for inputs seen in [low, high]
    /// (widened to hold 0, so a zero input is exact).
    convenience init(weight: UnsafePointer<Float>, outputs: Int, inputs: Int, low: Float, high: Float) throws(NNError) {
        var q = [Int8](repeating: 0, count: outputs * inputs), ws = [Float](repeating: 1, count: outputs)
        for j in 0..<outputs {
            let row = UnsafeBufferPointer(start: weight + j * inputs, count: inputs)
            let m = row.reduce(Float(0)) { max($0, abs($1)) }
            guard m.isFinite else { throw .invalidData("int8 quantization: output \(j)'s weights are not finite") }
            guard (m / 127).isNormal else { continue } // an all-zero (or vanishing) channel: scale 1, weights 0
            ws[j] = m / 127
            for k in 0..<inputs { q[j * inputs + k] = Int8(max(-127, min(127, (row[k] / ws[j]).rounded(.toNearestOrEven)))) }
        }
        guard low.isFinite, high.isFinite else {
            throw .invalidData("int8 calibration: the layer's inputs reached \(low)...\(high); they must be finite")
        }
        let lo = min(low, 0), hi = max(high, 0)
        let range = (hi - lo) / 255
        let s = range.isNormal ? range : 1 // a constant (or vanishing) input range
        let zp = Int32(max(0, min(255, (-lo / s).rounded(.toNearestOrEven))))
        try self.init(weights: q, weightScale: ws, inputScale: s, zeroPoint: zp, outputs: outputs, inputs: inputs)
    }

    /// Bytes of work `forward` needs for `rows` rows.
    func workBytes(rows: Int) -> Int { nnk_qdense_work_size(rows, outputs, inputs) }

    /// y (rows, outputs) = the int8 layer on x (rows, inputs) with `bias` (outputs) and the activation.
    func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>,
                 activation: Activation, work: UnsafeMutableRawPointer, workBytes: Int) {
        packed.withUnsafeBufferPointer { p in
            columnSums.withUnsafeBufferPointer { c in
                scale.withUnsafeBufferPointer { s in
                    nnk_qdense_forward(y, outputs, x, inputs, rows, outputs, inputs, p.baseAddress!, c.baseAddress!, s.baseAddress!,
                                       bias, inputScale, zeroPoint, activation.kernel, activation.alpha, work, workBytes)
                }
            }
        }
    }
}
