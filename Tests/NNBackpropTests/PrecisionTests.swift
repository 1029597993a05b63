import CKernels
import XCTest
@testable import NNBackprop

/// bf16 training (`Precision.bf16`): what it changes (the products' inputs are rounded to bf16)
/// and what it leaves alone (fp32 master weights, fp32 inference), and the refusal on a path
/// without AVX512_BF16. The kernels themselves are held to their reference twin in
/// CKernelsCheck's bf16 group; the Fashion-MNIST accuracy bar is in the heavy tests.
final class PrecisionTests: XCTestCase {
    private func mlp(seed: UInt64) throws -> Sequential {
        try Sequential(seed: seed) {
            try Dense(2, 96, activation: .relu)
            try Dense(96, 80, activation: .tanh)
            try Dense(80, 2)
        }
    }

    func testNames() throws {
        XCTAssertEqual(try Precision(name: "BF16"), .bf16)
        XCTAssertEqual(try Precision(name: "fp32"), .fp32)
        XCTAssertThrowsError(try Precision(name: "fp16")) { error in
            XCTAssertTrue("\(error)".contains("choose fp32 or bf16"), "\(error)")
        }
        XCTAssertTrue(Precision.fp32.isSupported)
    }

    /// A path without the kernel (avx2) refuses bf16 with a message naming what is missing, in
    /// `fit` and in `Trainer`, before touching the weights.
    func testRefusedWithoutAVX512BF16() throws {
        let saved = nnk_isa_active()
        guard nnk_set_isa(NNK_ISA_SCALAR) == 0 else { throw XCTSkip("cannot select the scalar path") }
        defer { nnk_set_isa(saved) }
        XCTAssertFalse(Precision.bf16.isSupported)
        let model = try mlp(seed: 3), before = Array(model.parameters)
        let data = try Dataset.spirals(count: 64, seed: 1)
        XCTAssertThrowsError(try model.fit(data, epochs: 1, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                                           precision: .bf16)) { error in
            guard case NNError.unsupported(let message) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(message.contains("AVX512_BF16") && message.contains("fp32"), message)
        }
        XCTAssertThrowsError(try Trainer(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                                         precision: .bf16, targets: data.targets))
        XCTAssertEqual(Array(model.parameters), before)
    }

    /// With the kernel: a bf16 step differs from the fp32 step by about bf16's rounding (not
    /// zero, not more than a few percent of the update), the weights stay fp32, and prediction
    /// afterwards is exactly the fp32 forward of those weights.
    func testBF16StepIsCloseToFP32AndInferenceStaysFP32() throws {
        guard Precision.bf16.isSupported else { throw XCTSkip("this CPU has no AVX512_BF16") }
        let data = try Dataset.spirals(count: 512, seed: 2)
        let a = try mlp(seed: 9), b = try mlp(seed: 9)
        let start = Array(a.parameters)
        // Batch 128: the first layer's forward (X * W^T with 128 rows) runs the bf16 kernel.
        try a.fit(data, epochs: 1, batchSize: 128, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.5), seed: 4)
        try b.fit(data, epochs: 1, batchSize: 128, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.5), seed: 4,
                  precision: .bf16)
        let pa = Array(a.parameters), pb = Array(b.parameters)
        var moved = 0.0, apart = 0.0, offGrid = 0
        for i in pa.indices {
            moved = max(moved, Double(abs(pa[i] - start[i])))
            apart = max(apart, Double(abs(pa[i] - pb[i])))
            if pb[i] != nnk_bf16_round(pb[i]) { offGrid += 1 }
        }
        XCTAssertGreaterThan(moved, 1e-3, "training moved the weights")
        XCTAssertGreaterThan(apart, 0, "bf16 products must change the result")
        XCTAssertLessThan(apart, 0.05 * moved, "bf16 must stay close to fp32 (largest difference \(apart), largest move \(moved))")
        XCTAssertGreaterThan(offGrid, pb.count / 2, "the master weights are fp32, not rounded to bf16")

        // Prediction: the fp32 forward, the same bits as a model that never trained in bf16.
        let twin = try mlp(seed: 1)
        for i in pb.indices { twin.parameters[i] = pb[i] }
        XCTAssertEqual(try b.predict(data), try twin.predict(data))
        let eval = try b.evaluate(data, loss: .softmaxCrossEntropy(), metrics: [.accuracy])
        XCTAssertEqual(eval["loss"], try twin.evaluate(data, loss: .softmaxCrossEntropy(), metrics: [.accuracy])["loss"])
    }

    /// What a bf16 trainer set does not carry over into later gradient computations.
    func testGradientsAfterBF16TrainingAreFP32() throws {
        guard Precision.bf16.isSupported else { throw XCTSkip("this CPU has no AVX512_BF16") }
        let data = try Dataset.spirals(count: 256, seed: 3)
        let a = try mlp(seed: 2)
        try a.fit(data, epochs: 1, batchSize: 128, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), precision: .bf16)
        let b = try mlp(seed: 2)
        for i in a.parameters.indices { b.parameters[i] = a.parameters[i] }
        _ = try a.computeGradients(data, loss: .softmaxCrossEntropy(), training: true)
        _ = try b.computeGradients(data, loss: .softmaxCrossEntropy(), training: true)
        XCTAssertEqual(Array(a.gradients), Array(b.gradients))
    }

    /// bf16 runs are reproducible and, like fp32, the same for any thread count.
    func testBF16IsDeterministicAcrossThreadCounts() throws {
        guard Precision.bf16.isSupported else { throw XCTSkip("this CPU has no AVX512_BF16") }
        let data = try Dataset.spirals(count: 600, seed: 5)
        let saved = nnk_get_num_threads()
        defer { nnk_set_num_threads(saved) }
        var results: [[Float]] = []
        for threads in [1, 3, 1] {
            nnk_set_num_threads(Int32(threads))
            let m = try mlp(seed: 11)
            try m.fit(data, epochs: 2, batchSize: 200, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 1e-2), seed: 6,
                      precision: .bf16)
            results.append(Array(m.parameters))
        }
        XCTAssertEqual(results[0], results[1], "1 and 3 threads")
        XCTAssertEqual(results[0], results[2], "run to run")
    }
}
