import Foundation
@testable import NNBackprop
import XCTest

/// Pooling and normalization layers: shapes, errors, gradients against central
/// finite differences (in training mode for batch normalization), the model file, and training.
final class PoolNormLayerTests: XCTestCase {
    func testPoolingShapesAndErrors() throws {
        let model = try Sequential(inputShape: Shape([3, 9, 8]), seed: 1) {
            try MaxPool2D(2)                                     // 3x4x4
            try AvgPool2D(kernel: (3, 2), stride: (1, 2), padding: (1, 1)) // 3x4x3
            GlobalAvgPool2D()                                    // 3x1x1
            Flatten()
            try Dense(3, 2)
        }
        XCTAssertEqual(model.layerOutputShapes.map(\.dimensions), [[3, 4, 4], [3, 4, 3], [3, 1, 1], [3], [2]])
        XCTAssertEqual(model.stateDictLayout.map(\.name), ["4.weight", "4.bias"])
        assertNNError(NNError.shapeMismatch, mentions: ["channels, height, width", "64"]) {
            _ = try Sequential(inputSize: 64) { try MaxPool2D(2) }
        }
        assertNNError(NNError.invalidArgument, mentions: ["half the kernel"]) { _ = try MaxPool2D(2, padding: 2) }
        assertNNError(NNError.invalidArgument, mentions: ["positive"]) { _ = try AvgPool2D(2, stride: 0) }
        assertNNError(NNError.shapeMismatch, mentions: ["5x5", "1x3x3"]) {
            _ = try Sequential(inputShape: Shape([1, 3, 3])) { try MaxPool2D(5) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["BatchNorm2d(4)", "3x2x2"]) {
            _ = try Sequential(inputShape: Shape([3, 2, 2])) { try BatchNorm2d(features: 4) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["LayerNorm", "3x2"]) {
            _ = try Sequential(inputShape: Shape([3, 2])) { try LayerNorm(Shape([2, 3])) }
        }
    }

    func testPoolingGradientsMatchFiniteDifferences() throws {
        let model = try Sequential(inputShape: Shape([28]), seed: 5) {
            try Dense(28, 4 * 7 * 7, activation: .tanh)
            try Reshape([4, 7, 7])
            try MaxPool2D(3, stride: 2, padding: 1)
            try AvgPool2D(kernel: (2, 2), stride: (1, 1), padding: (1, 0), countIncludePad: false)
            GlobalAvgPool2D()
            Flatten()
            try Dense(4, 3)
        }
        try finiteDifferences(model, try images(4, [28], classes: 3, seed: 7), training: false)
    }

    func testNormalizationGradientsMatchFiniteDifferencesInTraining() throws {
        let model = try Sequential(inputShape: Shape([12]), seed: 6) {
            try Dense(12, 4 * 4 * 5)
            try Reshape([4, 4, 5])
            try BatchNorm2d(features: 4)
            try LayerNorm(Shape([4, 5]))
            Flatten()
            try Dense(80, 6)
            try BatchNorm1d(features: 6)
            try Dense(6, 3)
        }
        try finiteDifferences(model, try images(6, [12], classes: 3, seed: 8), training: true)
    }

    func testBatchNormRunningStatisticsAndModes() throws {
        let bn = try BatchNorm1d(features: 2, momentum: 0.5)
        let model = try Sequential(inputSize: 2, seed: 1) { bn }
        // Feature 0: 1, 3 (mean 2, biased var 1, unbiased 2); feature 1: 0, 4 (mean 2, var 4, unbiased 8).
        let x: [Float] = [1, 0, 3, 4]
        let data = try Dataset(features: x, featureCount: 2, targets: .values([0, 0, 0, 0], width: 2))
        try model.computeGradients(data, loss: .mse, training: true)
        XCTAssertEqual(bn.runningMean, [1, 1])           // 0.5 * 0 + 0.5 * 2
        XCTAssertEqual(bn.runningVariance, [1.5, 4.5])   // 0.5 * 1 + 0.5 * unbiased
        XCTAssertEqual(bn.batchesTracked, 1)
        // Inference uses the running statistics: (x - 1) / sqrt(1.5 + 1e-5).
        let y = try model.predict([1, 1])
        XCTAssertEqual(y[0], 0, accuracy: 1e-6)
        XCTAssertEqual(y[1], 0, accuracy: 1e-6)
        let z = try model.predict([2.5, 1])
        XCTAssertEqual(Double(z[0]), 1.5 / (1.5 + 1e-5).squareRoot(), accuracy: 1e-5)
        // A training batch of one value per channel is refused, as PyTorch refuses it.
        let one = try Dataset(features: [1, 2], featureCount: 2, targets: .values([0, 0], width: 2))
        assertNNError(NNError.invalidArgument, mentions: ["layer 0 (BatchNorm1d)", "more than one value per channel"]) {
            try model.fit(one, epochs: 1, batchSize: 1, loss: .mse, optimizer: SGD())
        }
        XCTAssertNoThrow(try model.predict([1, 2]), "inference on one sample is fine")
    }

    func testModelFileKeepsPoolingAndNormalizationLayersAndBuffers() throws {
        let model = try Sequential(inputShape: Shape([1, 8, 8]), seed: 9) {
            try BatchNorm2d(features: 1, eps: 1e-3, momentum: 0.2)
            try MaxPool2D(2)
            try AvgPool2D(2, countIncludePad: false)
            try LayerNorm(Shape([1, 2, 2]), eps: 1e-4)
            GlobalAvgPool2D()
            Flatten()
            try Dense(1, 3)
        }
        let loaded = try assertModelFileRoundTrip(model, try images(16, [1, 8, 8], classes: 3, seed: 4))
        XCTAssertEqual((loaded.layers[0] as! BatchNorm2d).batchesTracked, 4)
        XCTAssertEqual(model.bufferStateDictLayout.map(\.name), ["0.running_mean", "0.running_var", "0.num_batches_tracked"])
    }
}
