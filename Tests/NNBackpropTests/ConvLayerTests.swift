import Foundation
@testable import NNBackprop
import XCTest

/// Convolution, pooling and normalization layers: shapes, errors, gradients against central
/// finite differences (in training mode for batch normalization), the model file, and training.
final class ConvLayerTests: XCTestCase {
    func testShapesFlowThroughConvolutionsAndPooling() throws {
        let model = try Sequential(inputShape: Shape([1, 28, 28]), seed: 1) {
            try Conv2D(1, 8, 3, padding: 1, activation: .relu)   // 8x28x28
            try MaxPool2D(2)                                      // 8x14x14
            try Conv2D(inChannels: 8, outChannels: 16, kernel: (3, 5), stride: (2, 1), padding: (1, 2), dilation: (1, 1), groups: 2)
            try AvgPool2D(3, stride: 2, padding: 1)              // 16x4x7
            try BatchNorm2d(features: 16)
            GlobalAvgPool2D()                                    // 16x1x1
            Flatten()
            try Dense(16, 10)
        }
        XCTAssertEqual(model.layerOutputShapes.map(\.dimensions),
                       [[8, 28, 28], [8, 14, 14], [16, 7, 14], [16, 4, 7], [16, 4, 7], [16, 1, 1], [16], [10]])
        // nn.Sequential(Conv2d, ReLU, MaxPool2d, Conv2d, AvgPool2d, BatchNorm2d, AdaptiveAvgPool2d, Flatten, Linear)
        XCTAssertEqual(model.stateDictLayout.map(\.name), ["0.weight", "0.bias", "3.weight", "3.bias", "5.weight", "5.bias", "8.weight", "8.bias"])
        XCTAssertEqual(model.bufferStateDictLayout.map(\.name), ["5.running_mean", "5.running_var", "5.num_batches_tracked"])
        XCTAssertEqual(model.stateDictLayout[2].shape, [16, 4, 3, 5], "weight (out, in / groups, kh, kw)")
    }

    func testBadConvolutionsAndPoolsAreClearErrors() {
        assertNNError(NNError.shapeMismatch, mentions: ["5x5", "1x3x3"]) {
            _ = try Sequential(inputShape: Shape([1, 3, 3])) { try Conv2D(1, 2, 5) }
        }
        assertNNError(NNError.invalidArgument, mentions: ["stride"]) { _ = try Conv2D(1, 2, 3, stride: 0) }
        assertNNError(NNError.invalidArgument, mentions: ["groups 2", "3"]) { _ = try Conv2D(3, 4, 3, groups: 2) }
        assertNNError(NNError.shapeMismatch, mentions: ["Conv2D(3, 4)", "1x8x8"]) {
            _ = try Sequential(inputShape: Shape([1, 8, 8])) { try Conv2D(3, 4, 3) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["channels, height, width", "64"]) {
            _ = try Sequential(inputSize: 64) { try MaxPool2D(2) }
        }
        assertNNError(NNError.invalidArgument, mentions: ["half the kernel"]) { _ = try MaxPool2D(2, padding: 2) }
        assertNNError(NNError.invalidArgument, mentions: ["same", "stride 1"]) {
            _ = try Conv2D(inChannels: 1, outChannels: 1, kernel: (3, 3), stride: (2, 2), samePadding: true)
        }
    }

    func testConvolutionGradientsMatchFiniteDifferences() throws {
        let model = try Sequential(inputShape: Shape([2, 7, 6]), seed: 4) {
            try Conv2D(inChannels: 2, outChannels: 4, kernel: (3, 2), stride: (2, 1), padding: (2, 1), dilation: (2, 1), groups: 2,
                       activation: .tanh)
            try Conv2D(4, 4, 1, groups: 4, bias: false)              // depthwise 1x1
            Flatten()
            try Dense(4 * 4 * 7, 3) // (7 + 4 - 2*2 - 1) / 2 + 1 = 4 rows, (6 + 2 - 1 - 1) + 1 = 7 columns
        }
        try finiteDifferences(model, try images(5, [2, 7, 6], classes: 3, seed: 2), training: false)
    }

    func testPoolingGradientsMatchFiniteDifferences() throws {
        let model = try Sequential(inputShape: Shape([3, 7, 7]), seed: 5) {
            // Max pooling's finite differences cross its kinks at this step size; PoolNormLayerTests
            // checks it on well-separated inputs.
            try Conv2D(3, 4, 3, padding: 1, activation: .elu(alpha: 1))
            try AvgPool2D(3, stride: 2, padding: 1)
            try AvgPool2D(kernel: (2, 2), stride: (1, 1), padding: (1, 0), countIncludePad: false)
            GlobalAvgPool2D()
            Flatten()
            try Dense(4, 3)
        }
        try finiteDifferences(model, try images(4, [3, 7, 7], classes: 3, seed: 7), training: false)
    }

    func testNormalizationGradientsMatchFiniteDifferencesInTraining() throws {
        let model = try Sequential(inputShape: Shape([3, 4, 5]), seed: 6) {
            try Conv2D(3, 4, 3, padding: 1)
            try BatchNorm2d(features: 4)
            try LayerNorm(Shape([4, 5]))
            Flatten()
            try Dense(80, 6)
            try BatchNorm1d(features: 6)
            try Dense(6, 3)
        }
        try finiteDifferences(model, try images(6, [3, 4, 5], classes: 3, seed: 8), training: true)
    }

    func testModelFileKeepsEveryLayerAndItsBuffers() throws {
        let model = try Sequential(inputShape: Shape([1, 8, 8]), seed: 9) {
            try Conv2D(inChannels: 1, outChannels: 4, kernel: (3, 3), activation: .relu, samePadding: true)
            try BatchNorm2d(features: 4, eps: 1e-3, momentum: 0.2)
            try MaxPool2D(2)
            try AvgPool2D(2, countIncludePad: false)
            try LayerNorm(Shape([4, 2, 2]), eps: 1e-4)
            GlobalAvgPool2D()
            Flatten()
            try Dense(4, 3)
        }
        let loaded = try assertModelFileRoundTrip(model, try images(16, [1, 8, 8], classes: 3, seed: 4))
        XCTAssertEqual((loaded.layers[1] as! BatchNorm2d).batchesTracked, 4)
    }

    func testSmallCNNLearnsBrightQuadrants() throws {
        // Class k: quadrant k of an 8x8 image is brighter; noise elsewhere.
        var g = SeededGenerator(seed: 11)
        var x: [Float] = [], y: [Int32] = []
        for i in 0..<400 {
            let k = i % 4
            for r in 0..<8 {
                for c in 0..<8 {
                    let inside = (r < 4) == (k < 2) && (c < 4) == (k % 2 == 0)
                    x.append(g.nextFloat(in: -0.5...0.5) + (inside ? 1 : 0))
                }
            }
            y.append(Int32(k))
        }
        let data = try Dataset(features: x, featureCount: 64, targets: .classes(y, classCount: 4)).reshaped(to: Shape([1, 8, 8]))
        let (train, test) = (try data.subset(0..<300), try data.subset(300..<400))
        let model = try Sequential(inputShape: Shape([1, 8, 8]), seed: 2) {
            try Conv2D(1, 4, 3, padding: 1, activation: .relu)
            try BatchNorm2d(features: 4)
            try MaxPool2D(2)
            Flatten()
            try Dense(64, 4)
        }
        try model.fit(train, epochs: 10, batchSize: 20, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.01))
        let acc = try model.evaluate(test, loss: .softmaxCrossEntropy(), metrics: [.accuracy])["accuracy"]!
        XCTAssertGreaterThan(acc, 0.95)
    }
}
