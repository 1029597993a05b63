import NNBackprop
import XCTest

final class LayerTests: XCTestCase {
    func testDenseForwardMatchesHandComputation() throws {
        let model = try Sequential { try Dense(inputSize: 2, outputSize: 2, activation: .relu) }
        let p = model.parameters
        // W = [[1, 2], [-3, 1]], b = [0.5, -1]
        for (i, v) in [Float(1), 2, -3, 1, 0.5, -1].enumerated() { p[i] = v }
        XCTAssertEqual(try model.predict([1, 1, 2, -1]), [3.5, 0, 0.5, 0])
        XCTAssertEqual(try model.predict(sample: [1, 1]), [3.5, 0])
    }

    func testPyTorchDefaultInitRange() throws {
        let d = try Dense(100, 50, seed: 3)
        let bound = 1 / Float(100).squareRoot()
        XCTAssertTrue(d.weight.allSatisfy { abs($0) <= bound })
        XCTAssertTrue(d.bias.allSatisfy { abs($0) <= bound })
        XCTAssertGreaterThan(d.weight.map { abs($0) }.max()!, bound * 0.9)
        let z = try Dense(4, 3, initializer: .zeros)
        XCTAssertTrue(z.weight.allSatisfy { $0 == 0 })
        let he = try Dense(400, 300, initializer: .heNormal, seed: 1)
        let std = (he.weight.reduce(0) { $0 + Double($1 * $1) } / Double(he.weight.count)).squareRoot()
        XCTAssertEqual(std, (2.0 / 400).squareRoot(), accuracy: 0.003)
        XCTAssertTrue(he.bias.allSatisfy { $0 == 0 })
    }

    func testShapeMismatchNamesTheLayer() {
        XCTAssertThrowsError(try Sequential {
            try Dense(4, 8, activation: .relu)
            try Dense(7, 2)
        }) { e in
            guard case NNError.shapeMismatch(let m) = e else { return XCTFail("\(e)") }
            XCTAssertTrue(m.contains("layer 1"), m)
        }
        XCTAssertThrowsError(try Sequential { ActivationLayer(.relu) })
    }

    func testBadTrainingInputThrows() throws {
        let model = try Sequential { try Dense(2, 3) }
        let regression = try Dataset(features: [1, 2, 3, 4], featureCount: 2, targets: .values([1, 2, 3, 4, 5, 6], width: 3))
        XCTAssertThrowsError(try model.fit(regression, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD())) { e in
            guard case NNError.invalidData = e else { return XCTFail("\(e)") }
        }
        let wrongWidth = try Dataset(features: [1, 2, 3], featureCount: 3, targets: .classes([0], classCount: 3))
        XCTAssertThrowsError(try model.fit(wrongWidth, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD())) { e in
            guard case NNError.shapeMismatch = e else { return XCTFail("\(e)") }
        }
        let fourClasses = try Dataset(features: [1, 2], featureCount: 2, targets: .classes([3], classCount: 4))
        XCTAssertThrowsError(try model.fit(fourClasses, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD()))
        XCTAssertThrowsError(try model.predict([1, 2, 3]))
        XCTAssertThrowsError(try model.predict([1, .nan])) { e in
            guard case NNError.invalidData = e else { return XCTFail("\(e)") }
        }
        XCTAssertThrowsError(try model.predict(sample: [1]))
        let ok = try Dataset(features: [1, 2], featureCount: 2, targets: .classes([1], classCount: 3))
        XCTAssertThrowsError(try model.fit(ok, epochs: 1, batchSize: 0, loss: .softmaxCrossEntropy(), optimizer: SGD()))
        XCTAssertThrowsError(try model.fit(ok, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(), validationSplit: 0.5))
        XCTAssertThrowsError(try model.fit(ok, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(),
                                           earlyStopping: EarlyStopping(monitor: "val_loss")))
        XCTAssertThrowsError(try Loss(name: "hinge"))
        XCTAssertThrowsError(try Activation(name: "swish2"))
        XCTAssertThrowsError(try LayerRegistry.make(LayerSpec(type: "Conv9D"), inputShape: Shape([4])))
    }

    func testDropoutIsIdentityInInference() throws {
        let model = try Sequential(seed: 1) { try Dense(3, 3); try Dropout(0.5) }
        let x: [Float] = [1, 2, 3]
        let a = try model.predict(x), b = try model.predict(x)
        XCTAssertEqual(a, b)
    }
}

final class OptimizerTests: XCTestCase {
    /// Minimizes 0.5 |w - target|^2 (gradient w - target) with each optimizer.
    func testEveryOptimizerConvergesOnAQuadratic() {
        let target: [Float] = [1, -2, 3]
        let optimizers: [any Optimizer] = [SGD(learningRate: 0.1), SGD(learningRate: 0.05, momentum: 0.9, nesterov: true),
                                           Adam(learningRate: 0.1), Adam.adamW(learningRate: 0.1, weightDecay: 0),
                                           RMSprop(learningRate: 0.05), Adagrad(learningRate: 0.5), IRPROPMinus()]
        for opt in optimizers {
            var w: [Float] = [0, 0, 0]
            var g: [Float] = [0, 0, 0]
            for _ in 0..<500 {
                for i in 0..<3 { g[i] = w[i] - target[i] }
                w.withUnsafeMutableBufferPointer { wp in g.withUnsafeBufferPointer { opt.step(parameters: wp, gradients: $0) } }
            }
            for i in 0..<3 { XCTAssertEqual(w[i], target[i], accuracy: 0.05, "\(opt.name)") }
        }
    }

    func testSchedules() {
        XCTAssertEqual(LearningRateSchedule.step(stepSize: 2, gamma: 0.5).rate(epoch: 5, base: 1), 0.25)
        XCTAssertEqual(LearningRateSchedule.exponential(gamma: 0.9).rate(epoch: 2, base: 1), 0.81, accuracy: 1e-6)
        XCTAssertEqual(LearningRateSchedule.cosine(epochs: 10).rate(epoch: 5, base: 1), 0.5, accuracy: 1e-6)
        XCTAssertEqual(LearningRateSchedule.cosine(epochs: 10).rate(epoch: 0, base: 1), 1)
        let warm = LearningRateSchedule.linearWarmup(epochs: 3, then: .exponential(gamma: 0.5))
        XCTAssertEqual([0, 1, 2, 3, 4].map { warm.rate(epoch: $0, base: 1) }, [0.25, 0.5, 0.75, 1, 0.5])
    }

    func testClipGradientsToGlobalNorm() {
        var g: [Float] = [3, 4]
        let norm = g.withUnsafeMutableBufferPointer { clipGradients($0, maxNorm: 1) }
        XCTAssertEqual(norm, 5)
        XCTAssertEqual(g[0], 0.6, accuracy: 1e-5)
        XCTAssertEqual(g[1], 0.8, accuracy: 1e-5)
    }
}

final class FitFeatureTests: XCTestCase {
    func noisyData() throws -> Dataset {
        var g = SeededGenerator(seed: 4)
        let x = (0..<(300 * 4)).map { _ in g.nextFloat(in: -1...1) }
        let y = (0..<300).map { r -> Int32 in x[r * 4] + x[r * 4 + 1] > 0 ? 1 : 0 }
        return try Dataset(features: x, featureCount: 4, targets: .classes(y, classCount: 2))
    }

    func testEarlyStoppingRestoresBest() throws {
        let model = try Sequential(seed: 2) { try Dense(4, 16, activation: .relu); try Dense(16, 2) }
        let h = try model.fit(noisyData(), epochs: 200, batchSize: 8, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.05),
                              validationSplit: 0.3, metrics: [.accuracy],
                              earlyStopping: EarlyStopping(monitor: "val_loss", patience: 3, restoreBest: true))
        XCTAssertTrue(h.stoppedEarly)
        let best = try XCTUnwrap(h.bestEpoch)
        XCTAssertEqual(h["val_loss"][best], h["val_loss"].min()!)
        XCTAssertEqual(h.epochs.count, best + 1 + 3, "patience 3: training stops 3 epochs after the best one")
        let data = try noisyData()
        let valid = try data.subset(210..<300)
        let r = try model.evaluate(valid, loss: .softmaxCrossEntropy())
        XCTAssertEqual(r["loss"]!, h["val_loss"][best], accuracy: 1e-9)
    }

    func testCallbackCanStopAndSeesBatches() throws {
        var batches = 0
        let cb = ClosureCallback(onBatchEnd: { _ in batches += 1; return .proceed },
                                 onEpochEnd: { epoch, _ in epoch == 2 ? .stop : .proceed })
        let model = try Sequential(seed: 2) { try Dense(4, 2) }
        let h = try model.fit(noisyData(), epochs: 10, batchSize: 100, loss: .softmaxCrossEntropy(), optimizer: SGD(), callbacks: [cb])
        XCTAssertEqual(h.epochs.count, 3)
        XCTAssertEqual(batches, 9)
        XCTAssertTrue(h.stoppedEarly)
    }

    func testMetrics() throws {
        let model = try Sequential { try Dense(2, 3) }
        let p = model.parameters
        for i in 0..<p.count { p[i] = 0 }
        p[6] = 1; p[7] = 2; p[8] = 3 // biases: outputs always [1, 2, 3]
        let d = try Dataset(features: [0, 0, 0, 0, 0, 0, 0, 0], featureCount: 2, targets: .classes([2, 1, 0, 2], classCount: 3))
        let r = try model.evaluate(d, loss: .softmaxCrossEntropy(), metrics: [.accuracy, .topKAccuracy(2), .mse, .mae])
        XCTAssertEqual(r["accuracy"], 0.5)
        XCTAssertEqual(r["top2_accuracy"], 0.75)
        // Targets one-hot; errors per row: class 2 -> (1, 2, 2) ...
        XCTAssertEqual(r["mae"]!, (5.0 + 5 + 5 + 5) / 12, accuracy: 1e-9)
        XCTAssertEqual(r["mse"]!, (9.0 + 11 + 13 + 9) / 12, accuracy: 1e-9)
    }
}
