import NNBackprop
import XCTest

/// Analytic gradients of small networks against central finite differences, in float.
///
/// Step h = 1e-2 on each parameter; the loss is a float mean accumulated in double by the
/// kernels. Tolerance: |analytic - numeric| <= 2e-3 + 5e-2 |numeric| for every parameter
/// (float round-off of the loss divided by 2h is ~1e-5 here; the h^2 truncation term of smooth
/// activations stays well under the relative part). Inputs are kept away from ReLU's kink by
/// drawing them from a fixed seed and checking that the result holds; a parameter whose
/// perturbation crosses a kink would show as one outlier.
final class GradientCheckTests: XCTestCase {
    func check(_ model: Sequential, _ data: Dataset, _ loss: Loss, file: StaticString = #filePath, line: UInt = #line) throws {
        try gradientCheck(model, data, loss, file: file, line: line)
    }

    func data(rows: Int, features: Int, targets: Dataset.Targets, seed: UInt64 = 1) throws -> Dataset {
        try randomDataset(rows: rows, features: features, targets: targets, seed: seed)
    }

    func testEveryFusedActivationWithCrossEntropy() throws {
        let d = try data(rows: 6, features: 4, targets: .classes([0, 1, 2, 1, 0, 2], classCount: 3))
        for act in Activation.all {
            let model = try Sequential(seed: 3) {
                try Dense(4, 5, activation: act)
                try Dense(5, 3)
            }
            try check(model, d, .softmaxCrossEntropy())
        }
    }

    func testEveryActivationLayer() throws {
        let d = try data(rows: 5, features: 3, targets: .values((0..<10).map { Float($0 % 3) * 0.3 }, width: 2))
        for act in Activation.all {
            let model = try Sequential(seed: 4) {
                try Dense(3, 4)
                ActivationLayer(act)
                try Dense(4, 2)
            }
            try check(model, d, .mse)
        }
    }

    func testEveryLoss() throws {
        var g = SeededGenerator(seed: 9)
        let probs = (0..<12).map { _ in g.nextFloat(in: 0...1) }
        var soft = [Float](repeating: 0, count: 12)
        for r in 0..<4 {
            let s = probs[(r * 3)..<(r * 3 + 3)].reduce(0, +)
            for j in 0..<3 { soft[r * 3 + j] = probs[r * 3 + j] / s }
        }
        let cases: [(Loss, Dataset.Targets)] = [
            (.mse, .values(probs.map { $0 * 2 - 1 }, width: 3)),
            (.mae, .values(probs.map { $0 * 4 - 2 }, width: 3)),
            (.huber(delta: 0.5), .values(probs.map { $0 * 4 - 2 }, width: 3)),
            (.softmaxCrossEntropy(), .classes([0, 2, 1, 1], classCount: 3)),
            (.softmaxCrossEntropy(labelSmoothing: 0.1), .classes([0, 2, 1, 1], classCount: 3)),
            (.softmaxCrossEntropy(), .probabilities(soft, width: 3)),
            (.binaryCrossEntropy, .probabilities(probs, width: 3)),
        ]
        for (loss, targets) in cases {
            let d = try data(rows: 4, features: 3, targets: targets)
            let model = try Sequential(seed: 5) {
                try Dense(3, 4, activation: .tanh)
                try Dense(4, 3)
            }
            try check(model, d, loss)
        }
    }

    func testSoftmaxAndLogSoftmaxLayers() throws {
        let d = try data(rows: 4, features: 3, targets: .values([0.1, 0.7, 0.2, 0.3, 0.3, 0.4, 0.9, 0.05, 0.05, 0.2, 0.2, 0.6], width: 3))
        for layer in [Softmax(), LogSoftmax()] as [any Layer] {
            let model = try Sequential(seed: 6) {
                try Dense(3, 3)
                layer
            }
            try check(model, d, .mse)
        }
    }

    func testDenseLayerGradientsAgreeWithHandComputation() throws {
        // One try Dense(2, 1) with identity and MSE on one row: dL/dw = 2 (w.x + b - t) x.
        let model = try Sequential { try Dense(2, 1) }
        let p = model.parameters
        p[0] = 0.5; p[1] = -1; p[2] = 0.25
        let d = try Dataset(features: [2, 3], featureCount: 2, targets: .values([1], width: 1))
        let l = try model.computeGradients(d, loss: .mse)
        let r: Float = 0.5 * 2 - 3 + 0.25 - 1 // -2.75
        XCTAssertEqual(l, r * r, accuracy: 1e-6)
        XCTAssertEqual(Array(model.gradients), [2 * r * 2, 2 * r * 3, 2 * r])
    }
}
