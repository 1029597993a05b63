/// Post-training int8 quantization of a trained model (`quantizeInt8`), and what the model file
/// keeps of it.
extension Sequential {
    /// Whether inference runs any int8 layer (nested models included).
    public var isQuantized: Bool {
        layers.contains { ($0 as? Dense)?.int8 != nil || ($0 as? Sequential)?.isQuantized == true }
    }

    /// Quantizes every top-level Dense layer for int8 inference: weights per output channel
    /// (symmetric int8), each layer's input per tensor (uint8 with a zero point) from the range
    /// it takes on the first `rows` rows of `calibration` (seen as the model sees them: after
    /// the scaler, through the layers before it, those already int8). From then on inference
    /// (`predict`, `evaluate`, `infer`, the C API, saved files) runs those layers in int8 with
    /// the fp32 bias and activation; other layers (Conv2D, normalization, nested models) stay
    /// fp32. The fp32 weights are kept (state dict, ONNX export, `removeQuantization()`).
    /// Training refuses a quantized model.
    ///
    /// Throws `shapeMismatch` when the data does not fit the model, `invalidArgument` for
    /// `rows` below 1, `invalidData` for non-finite weights or activations, and `unsupported`
    /// for a model without a top-level Dense layer.
    public func quantizeInt8(calibration: Dataset, rows: Int = 1000) throws(NNError) {
        guard calibration.featureCount == inputSize else {
            throw .shapeMismatch("quantizeInt8: the calibration data has \(calibration.featureCount) features, the model takes \(inputSize)")
        }
        guard rows >= 1 else { throw .invalidArgument("quantizeInt8: rows must be at least 1, got \(rows)") }
        guard layers.contains(where: { $0 is Dense }) else {
            throw .unsupported("quantizeInt8: the model has no top-level Dense layer to quantize (Conv2D and nested models stay fp32)")
        }
        removeQuantization()
        let n = min(rows, calibration.count)
        var current = calibration.store.values(rows: 0..<n, width: inputSize)
        if let scaler { current.withUnsafeMutableBufferPointer { scaler.transformRows($0) } }
        var states: [(Dense, Int8Dense)] = []
        do throws(NNError) {
            for layer in layers {
                if let dense = layer as? Dense {
                    var low = Float.infinity, high = -Float.infinity
                    for v in current {
                        guard v.isFinite else { throw NNError.invalidData("quantizeInt8: an input of a Dense layer is \(v) on the calibration rows; inputs must be finite") }
                        low = min(low, v); high = max(high, v)
                    }
                    let q = try Int8Dense(weight: dense.weight.baseAddress!, outputs: dense.outputSize, inputs: dense.inputFeatures,
                                          low: low, high: high)
                    dense.int8 = q
                    states.append((dense, q))
                }
                let width = layer.outputShape.map(\.count) ?? 0
                var next = [Float](repeating: 0, count: n * width)
                let scratch = layer.inferenceScratchCount(rows: n)
                current.withUnsafeBufferPointer { x in
                    next.withUnsafeMutableBufferPointer { y in
                        withUnsafeTemporaryAllocation(of: Float.self, capacity: scratch + 1) { s in
                            layer.infer(x.baseAddress!, rows: n, into: y.baseAddress!, scratch: scratch > 0 ? s : nil)
                        }
                    }
                }
                current = next
            }
        } catch {
            removeQuantization()
            throw error
        }
    }

    /// Back to fp32 inference everywhere (the fp32 weights were kept).
    public func removeQuantization() {
        for case let dense as Dense in layers { dense.int8 = nil }
    }

    /// The int8 state of each quantized top-level Dense layer, by its state-dict prefix
    /// ("0." for module 0): what the model file keeps.
    var int8States: [(prefix: String, state: Int8Dense)] {
        var out: [(String, Int8Dense)] = []
        var module = 0
        for layer in layers {
            if let q = (layer as? Dense)?.int8 { out.append(("\(module).", q)) }
            module += layer.moduleCount
        }
        return out
    }

    /// Writes the int8 states into `st` ("<prefix>weight_int8" I8, "<prefix>weight_scale" F32,
    /// "<prefix>input_quant" F32 [scale, zero point]) and metadata quantization = int8.
    func saveQuantization(into st: inout SafeTensors, metadata: inout [String: String]) throws(NNError) {
        if layers.contains(where: { ($0 as? Sequential)?.isQuantized == true }) {
            throw .unsupported("a nested model is quantized; the file keeps the int8 state of top-level Dense layers only: quantize the outer model instead (removeQuantization on the nested one)")
        }
        let states = int8States
        guard !states.isEmpty else { return }
        metadata["quantization"] = "int8"
        for (prefix, q) in states {
            try st.set(prefix + "weight_int8", SafeTensors.Tensor(dtype: .int8, shape: [q.outputs, q.inputs],
                                                                  bytes: q.weights.map { UInt8(bitPattern: $0) }))
            try st.set(prefix + "weight_scale", SafeTensors.Tensor(q.weightScale, shape: [q.outputs]))
            try st.set(prefix + "input_quant", SafeTensors.Tensor([q.inputScale, Float(q.zeroPoint)], shape: [2]))
        }
    }

    /// Restores the int8 states `saveQuantization` wrote (a file without quantization metadata
    /// has none). Throws `corruptFile` for a missing tensor, `shapeMismatch` for a wrong shape,
    /// `invalidData` for a bad scale or zero point, `unsupported` for another quantization.
    func restoreQuantization(from st: SafeTensors) throws(NNError) {
        guard let kind = st.metadata["quantization"] else { return }
        guard kind == "int8" else { throw .unsupported("the model file's quantization '\(kind)' is not known (this library reads int8)") }
        var module = 0, found = 0
        for layer in layers {
            defer { module += layer.moduleCount }
            guard let dense = layer as? Dense else { continue }
            let prefix = "\(module)."
            // quantizeInt8 quantizes every top-level Dense layer: one without its tensors is damage.
            guard let w = st[prefix + "weight_int8"] else {
                throw .corruptFile("the model file says quantization int8 but Dense layer '\(prefix)' has no tensor '\(prefix)weight_int8'")
            }
            guard w.dtype == .int8, w.shape == [dense.outputSize, dense.inputFeatures] else {
                throw .shapeMismatch("tensor '\(prefix)weight_int8' is \(w.dtype.rawValue) \(w.shape), expected I8 [\(dense.outputSize), \(dense.inputFeatures)]")
            }
            guard let scales = try? st.floats(prefix + "weight_scale", shape: [dense.outputSize]),
                  let input = try? st.floats(prefix + "input_quant", shape: [2]) else {
                throw .corruptFile("int8 layer '\(prefix)': tensors weight_scale [\(dense.outputSize)] and input_quant [2] are missing or misshapen")
            }
            guard input[1] == input[1].rounded(), abs(input[1]) <= 255 else {
                throw .invalidData("int8 layer '\(prefix)': the zero point \(input[1]) is not a whole number in 0...255")
            }
            dense.int8 = try Int8Dense(weights: w.bytes.map { Int8(bitPattern: $0) }, weightScale: scales, inputScale: input[0],
                                       zeroPoint: Int32(input[1]), outputs: dense.outputSize, inputs: dense.inputFeatures)
            found += 1
        }
        guard found > 0 else { throw .corruptFile("the model file says quantization int8 but has no Dense layer to hold it") }
    }
}
