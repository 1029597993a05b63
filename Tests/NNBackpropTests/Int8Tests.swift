import CKernels
import XCTest
@testable import NNBackprop

/// Post-training int8 quantization (`quantizeInt8`): the layer's arithmetic against its
/// definition written out here in double, agreement with the fp32 model it came from, the two
/// inference paths, the model file (round trip and damaged files), and what it refuses. The
/// kernels are held to their twins in CKernelsCheck's int8 group; the Fashion-MNIST accuracy
/// bar is a heavy test.
final class Int8Tests: XCTestCase {
    /// Four Gaussian blobs in 6 dimensions, classes 0...3.
    private func blobs(_ n: Int, seed: UInt64) throws -> Dataset {
        var g = SeededGenerator(seed: seed)
        var x = [Float](), y = [Int32]()
        for i in 0..<n {
            let c = i % 4
            for d in 0..<6 { x.append(Float(d == c ? 3 : 0) + g.nextGaussian()) }
            y.append(Int32(c))
        }
        return try Dataset(features: x, featureCount: 6, targets: .classes(y, classCount: 4))
    }

    private func trained() throws -> (Sequential, Dataset) {
        let data = try blobs(800, seed: 1)
        let model = try Sequential(seed: 3) {
            try Dense(6, 48, activation: .relu)
            try Dense(48, 32, activation: .tanh)
            try Dense(32, 4)
        }
        try model.fit(data, epochs: 15, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 3e-3), seed: 2)
        return (model, data)
    }

    /// One quantized layer against y = act(sum_k (u_k - zp) q_jk * inScale * wScale_j + b_j),
    /// with u = clamp(round(x / inScale + zp), 0, 255), computed here in double.
    func testLayerMatchesItsDefinition() throws {
        let model = try Sequential(seed: 5) { try Dense(37, 11, activation: .relu) }
        let data = try blobs(60, seed: 4)
        let x = try Dataset(features: (0..<(60 * 37)).map { Float(sin(Double($0) * 0.37)) * 2 }, featureCount: 37,
                            targets: .values([Float](repeating: 0, count: 60), width: 1))
        _ = data
        try model.quantizeInt8(calibration: x, rows: 60)
        let dense = model.layers[0] as! Dense
        let q = try XCTUnwrap(dense.int8)
        XCTAssertEqual(q.zeroPoint, 128, "inputs in [-2, 2] put zero in the middle")
        let out = try model.predict(x.features)
        let w = Array(dense.weight), b = Array(dense.bias)
        var worst = 0.0
        for i in 0..<60 {
            for j in 0..<11 {
                // The weights: q = round(w / s) with s = max |w_j| / 127.
                let s = Double(q.weightScale[j])
                XCTAssertEqual(Double(q.weightScale[j]), Double(w[(j * 37)..<((j + 1) * 37)].map { abs($0) }.max()! / 127), accuracy: 1e-12)
                var acc = 0.0
                for k in 0..<37 {
                    let u = max(0, min(255, (Double(x.features[i * 37 + k]) / Double(q.inputScale) + Double(q.zeroPoint)).rounded(.toNearestOrEven)))
                    acc += (u - Double(q.zeroPoint)) * Double(q.weights[j * 37 + k])
                }
                let want = max(0, acc * Double(q.inputScale) * s + Double(b[j]))
                worst = max(worst, abs(want - Double(out[i * 11 + j])))
            }
        }
        XCTAssertLessThan(worst, 1e-4, "largest difference from the definition")
    }

    func testQuantizedModelAgreesWithFP32() throws {
        let (model, data) = try trained()
        let fp32 = try model.predict(data)
        let fp32Classes = try model.predictClasses(data.features)
        XCTAssertFalse(model.isQuantized)
        try model.quantizeInt8(calibration: data, rows: 200)
        XCTAssertTrue(model.isQuantized)
        let int8 = try model.predict(data)
        XCTAssertNotEqual(int8, fp32, "int8 inference must actually run")
        let agree = zip(try model.predictClasses(data.features), fp32Classes).filter { $0 == $1 }.count
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(data.count), 0.98, "classes agree on \(agree) of \(data.count) rows")
        let scale = fp32.map { abs($0) }.max()!
        XCTAssertLessThan(zip(int8, fp32).map { abs($0 - $1) }.max()!, 0.05 * scale)

        // The reentrant path (the C API's) gives the same bits as predict.
        var viaInfer = [Float](repeating: 0, count: int8.count)
        data.features.withUnsafeBufferPointer { x in
            viaInfer.withUnsafeMutableBufferPointer { model.infer(x.baseAddress!, rows: data.count, into: $0.baseAddress!) }
        }
        XCTAssertEqual(viaInfer, int8)
        // One sample (the single-row path) as well.
        XCTAssertEqual(try model.predict(sample: Array(data.features[0..<6])), Array(int8[0..<4]))

        model.removeQuantization()
        XCTAssertEqual(try model.predict(data), fp32, "the fp32 weights were kept")
    }

    func testFileRoundTripAndRefusals() throws {
        let (model, data) = try trained()
        try model.quantizeInt8(calibration: data)
        let int8 = try model.predict(data)
        let bytes = try model.serialized()
        let back = try Sequential(serialized: bytes)
        XCTAssertTrue(back.isQuantized)
        XCTAssertEqual(try back.predict(data), int8)
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try model.save(to: dir + "/q.safetensors")
        XCTAssertEqual(try Sequential.load(from: dir + "/q.safetensors").predict(data), int8)

        // Training refuses a quantized model, leaving it as it was.
        assertNNError(NNError.unsupported, mentions: ["int8"]) {
            try back.fit(data, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        }
        XCTAssertEqual(try back.predict(data), int8)

        // Damaged quantization in a file: each is an error naming the tensor, never a trap.
        let st = try SafeTensors(bytes: bytes)
        func damaged(_ edit: (inout SafeTensors) throws -> Void) throws -> SafeTensors {
            var copy = st
            try edit(&copy)
            return copy
        }
        let missing = try damaged { s in try s.set("0.weight_scale", SafeTensors.Tensor([Float](repeating: 1, count: 3), shape: [3])) }
        assertNNError(NNError.corruptFile, mentions: ["weight_scale"]) { try Sequential(safeTensors: missing) }
        let badZero = try damaged { s in try s.set("0.input_quant", SafeTensors.Tensor([Float(0.01), 300], shape: [2])) }
        assertNNError(NNError.invalidData, mentions: ["zero point"]) { try Sequential(safeTensors: badZero) }
        let badScale = try damaged { s in try s.set("0.input_quant", SafeTensors.Tensor([Float(-1), 3], shape: [2])) }
        assertNNError(NNError.invalidData, mentions: ["scale"]) { try Sequential(safeTensors: badScale) }
        let wrongType = try damaged { s in try s.set("0.weight_int8", SafeTensors.Tensor([Float](repeating: 0, count: 48 * 6), shape: [48, 6])) }
        assertNNError(NNError.shapeMismatch, mentions: ["weight_int8"]) { try Sequential(safeTensors: wrongType) }
        let unknown = try damaged { s in s.metadata["quantization"] = "int4" }
        assertNNError(NNError.unsupported, mentions: ["int4"]) { try Sequential(safeTensors: unknown) }
    }

    /// Quantizing after a trainer was made, or nested in another model, must not let training
    /// (or gradients) run on the int8 model; a nested quantized model is not silently dropped
    /// from a saved file.
    func testNoTrainingAroundQuantization() throws {
        let (model, data) = try trained()
        let trainer = try Trainer(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), targets: data.targets)
        try model.quantizeInt8(calibration: data)
        let staged = try trainer.stage(rows: 4)
        data.gatherBatch(indices: [0, 1, 2, 3][...], features: staged.features, labels: staged.labels)
        assertNNError(NNError.unsupported, mentions: ["int8"]) { try trainer.step(rows: 4) }
        assertNNError(NNError.unsupported, mentions: ["int8"]) { _ = try model.computeGradients(data, loss: .softmaxCrossEntropy()) }

        let outer = try Sequential(layers: [model, try Dense(4, 2)], inputShape: Shape([6]), seed: 1)
        XCTAssertTrue(outer.isQuantized)
        let twoClasses = try Dataset(features: data.features, featureCount: 6,
                                     targets: .classes(data.targets.classIndices!.map { $0 % 2 }, classCount: 2))
        assertNNError(NNError.unsupported, mentions: ["int8"]) {
            try outer.fit(twoClasses, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1))
        }
        assertNNError(NNError.unsupported, mentions: ["nested"]) { _ = try outer.serialized() }
    }

    func testTooManyInputsForExactSums() throws {
        let wide = try Sequential(seed: 1) { try Dense(Int8Dense.maxInputs + 1, 2) }
        let x = try Dataset(features: [Float](repeating: 0.5, count: Int8Dense.maxInputs + 1), featureCount: Int8Dense.maxInputs + 1,
                            targets: .values([0], width: 1))
        assertNNError(NNError.unsupported, mentions: ["exact"]) { try wide.quantizeInt8(calibration: x) }
        XCTAssertFalse(wide.isQuantized)
    }

    func testCalibrationRefusals() throws {
        let (model, data) = try trained()
        let wrong = try Dataset(features: [Float](repeating: 0, count: 14), featureCount: 7,
                                targets: .values([0, 0], width: 1))
        assertNNError(NNError.shapeMismatch, mentions: ["7 features"]) { try model.quantizeInt8(calibration: wrong) }
        assertNNError(NNError.invalidArgument, mentions: ["rows"]) { try model.quantizeInt8(calibration: data, rows: 0) }
        XCTAssertFalse(model.isQuantized)
        let conv = try Sequential(inputShape: Shape([1, 4, 4]), seed: 1) { try Conv2D(1, 2, 3); Flatten() }
        let images = try Dataset(features: [Float](repeating: 0.5, count: 32), featureCount: 16,
                                 targets: .values([Float](repeating: 0, count: 16), width: 8)).reshaped(to: Shape([1, 4, 4]))
        assertNNError(NNError.unsupported, mentions: ["Dense"]) { try conv.quantizeInt8(calibration: images) }
    }
}
