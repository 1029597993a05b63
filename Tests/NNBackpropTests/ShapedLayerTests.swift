import Foundation
@testable import NNBackprop
import XCTest

/// A layer defined outside the library, registered by name: it passes its input through and
/// keeps, as a non-trainable buffer, the running mean of each input feature seen in training
/// (momentum 0.5), the kind of state BatchNorm's running statistics are.
final class RunningMeanProbe: Layer {
    static let typeName = "RunningMeanProbe"
    var shape: Shape?
    private var slice = ParameterSlice(count: 0)
    private var output = GrowableBuffer()

    init() {}
    convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes([])
        self.init()
    }

    var spec: LayerSpec { LayerSpec(type: Self.typeName) }
    var inputShape: Shape? { shape }
    func outputShape(for input: Shape) throws(NNError) -> Shape { input }
    func configure(inputShape: Shape) throws(NNError) { shape = inputShape }
    var bufferCount: Int { shape?.count ?? 0 }
    var bufferLayout: [TensorLayout] { [("running_mean", [bufferCount], 0)] }
    func bind(buffers: ParameterSlice) { slice = buffers }
    var runningMean: [Float] { Array(slice.buffer) }

    func prepare(batchSize: Int) { output.reserve(batchSize * bufferCount) }
    func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        let n = bufferCount
        output.pointer!.update(from: input, count: batch * n)
        if training {
            for j in 0..<n {
                var mean: Float = 0
                for r in 0..<batch { mean += input[r * n + j] }
                slice.pointer[j] = 0.5 * slice.pointer[j] + 0.5 * mean / Float(batch)
            }
        }
        return output.pointer!
    }
    func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        needsInputGradient ? gradOutput : nil
    }
    func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<Float>?) {
        output.update(from: input, count: rows * bufferCount)
    }
}

final class ShapedLayerTests: XCTestCase {
    override class func setUp() {
        super.setUp()
        try? LayerRegistry.register(RunningMeanProbe.self)
    }

    private func classes(_ rows: Int, _ k: Int) -> Dataset.Targets {
        .classes((0..<rows).map { Int32($0 % k) }, classCount: k)
    }

    // MARK: Shapes

    func testChainCheckNamesTheFirstLayerThatDoesNotFitWithBothShapes() throws {
        assertNNError(NNError.shapeMismatch, mentions: ["layer 1 (Dense)", "784", "layer 0 (Flatten)", "100"]) {
            _ = try Sequential(inputShape: Shape([1, 28, 28])) { Flatten(); try Dense(100, 10) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["layer 0 (Dense)", "1x28x28", "the model input"]) {
            _ = try Sequential(inputShape: Shape([1, 28, 28])) { try Dense(784, 10) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["layer 1 (Reshape)", "1x28x28", "10"]) {
            _ = try Sequential(inputSize: 4) { try Dense(4, 10); try Reshape([1, 28, 28]) }
        }
        assertNNError(NNError.invalidArgument, mentions: ["2^31"]) { _ = try Shape([1 << 16, 1 << 16]) }
        assertNNError(NNError.invalidArgument, mentions: ["positive"]) { _ = try Shape([3, 0]) }
    }

    func testShapesFlowThroughTheModel() throws {
        let model = try Sequential(inputShape: Shape([1, 28, 28]), seed: 3) {
            Flatten()
            try Reshape([-1, 28])
            try Dense(28, 5, activation: .tanh)
            Flatten()
            try Dense(140, 3)
        }
        XCTAssertEqual(model.layerOutputShapes.map(\.dimensions), [[784], [28, 28], [28, 5], [140], [3]])
        XCTAssertEqual(model.sampleShape.dimensions, [1, 28, 28])
        XCTAssertEqual(model.inputSize, 784)
        XCTAssertEqual(model.parameterCount, 28 * 5 + 5 + 140 * 3 + 3)
        XCTAssertThrowsError(try Reshape([0, 3]))
        XCTAssertThrowsError(try Reshape([-1, -1]))
    }

    func testDenseMapsTheLastDimensionOfASequence() throws {
        // [4, 3] samples: Dense(3, 2) maps each of the 4 rows with the same weight, as nn.Linear.
        let model = try Sequential(inputSize: 12, seed: 9) { try Reshape([4, 3]); try Dense(3, 2) }
        let dense = model.layers[1] as! Dense
        var g = SeededGenerator(seed: 4)
        let x = (0..<24).map { _ in g.nextFloat(in: -1...1) } // two samples
        let y = try model.predict(x)
        XCTAssertEqual(y.count, 2 * 8)
        for row in 0..<8 {
            for o in 0..<2 {
                var want = Double(dense.bias[o])
                for i in 0..<3 { want += Double(dense.weight[o * 3 + i]) * Double(x[row * 3 + i]) }
                XCTAssertEqual(Double(y[row * 2 + o]), want, accuracy: 1e-5)
            }
        }
    }

    func testReshapeAndFlattenChangeNothingButTheShape() throws {
        let plain = try Sequential(inputSize: 12, seed: 5) { try Dense(12, 4, activation: .relu); try Dense(4, 3) }
        let shaped = try Sequential(inputShape: Shape([3, 2, 2]), seed: 5) {
            Flatten(); try Dense(12, 4, activation: .relu); try Reshape([2, 2]); Flatten(); try Dense(4, 3)
        }
        XCTAssertEqual(plain.parameterCount, shaped.parameterCount)
        _ = shaped.parameters.update(fromContentsOf: plain.parameters) // each layer draws from its own fork: copy
        let data = try randomDataset(rows: 20, features: 12, targets: classes(20, 3))
        XCTAssertEqual(try plain.predict(data).map(\.bitPattern), try shaped.predict(data).map(\.bitPattern))
        let lp = try plain.computeGradients(data, loss: .softmaxCrossEntropy())
        let ls = try shaped.computeGradients(data.reshaped(to: Shape([3, 2, 2])), loss: .softmaxCrossEntropy())
        XCTAssertEqual(lp, ls)
        XCTAssertEqual(Array(plain.gradients).map(\.bitPattern), Array(shaped.gradients).map(\.bitPattern))
        // Data of another shape with the same count is refused; a flat vector is accepted.
        assertNNError(NNError.shapeMismatch, mentions: ["2x6", "3x2x2"]) {
            _ = try shaped.evaluate(data.reshaped(to: Shape([2, 6])), loss: .softmaxCrossEntropy())
        }
        XCTAssertNoThrow(try shaped.evaluate(data, loss: .softmaxCrossEntropy()))
    }

    // MARK: Registry and constructors

    func testConstructorsThrowInsteadOfTrapping() {
        assertNNError(NNError.invalidArgument, mentions: ["Dense", "0"]) { _ = try Dense(0, 3) }
        assertNNError(NNError.invalidArgument, mentions: ["Dropout", "1.5"]) { _ = try Dropout(1.5) }
        assertNNError(NNError.invalidArgument, mentions: ["2^31"]) { _ = try Dense(1 << 20, 1 << 12) }
        // A model whose layers sum past 2^31 parameters is refused before anything is allocated.
        assertNNError(NNError.invalidArgument, mentions: ["2^31", "layer 1"]) {
            _ = try Sequential(inputSize: 1 << 15) { try Dense(1 << 15, 1 << 15); try Dense(1 << 15, 1 << 15) }
        }
    }

    func testRegistryRebuildsEveryLayerFromItsSpecAndNamesWhatIsWrong() throws {
        let shape = try Shape([6])
        for layer: any Layer in [try Dense(6, 3, activation: .elu(alpha: 0.5)), ActivationLayer(.gelu), Softmax(), LogSoftmax(),
                                 try Dropout(0.25), Flatten(), try Reshape([2, 3])] {
            let rebuilt = try LayerRegistry.make(layer.spec, inputShape: shape)
            XCTAssertEqual(rebuilt.spec, layer.spec)
            XCTAssertTrue(type(of: rebuilt) == type(of: layer))
        }
        assertNNError(NNError.unknownName, mentions: ["Conv9D", "Dense", "Flatten", "RunningMeanProbe"]) {
            _ = try LayerRegistry.make(LayerSpec(type: "Conv9D"), inputShape: shape)
        }
        assertNNError(NNError.unknownName, mentions: ["Dense", "'kernel'", "out_features"]) {
            _ = try LayerRegistry.make(LayerSpec(type: "Dense", attributes: ["out_features": .int(3), "kernel": .int(3)]), inputShape: shape)
        }
        assertNNError(NNError.invalidArgument, mentions: ["Dropout", "'p'", "relu"]) {
            _ = try LayerRegistry.make(LayerSpec(type: "Dropout", attributes: ["p": .string("relu")]), inputShape: shape)
        }
        assertNNError(NNError.invalidArgument, mentions: ["Dropout", "2"]) {
            _ = try LayerRegistry.make(LayerSpec(type: "Dropout", attributes: ["p": .float(2)]), inputShape: shape)
        }
        assertNNError(NNError.shapeMismatch, mentions: ["Dense", "5", "6"]) {
            _ = try LayerRegistry.make(LayerSpec(type: "Dense", attributes: ["in_features": .int(5), "out_features": .int(2)]), inputShape: shape)
        }
        assertNNError(NNError.duplicateName, mentions: ["Dense"]) { try LayerRegistry.register(Dense.self) }
    }

    // MARK: Gradients accumulate; tied weights

    func testGradientsAccumulateUntilZeroed() throws {
        let model = try Sequential(inputSize: 4, seed: 2) { try Dense(4, 3, activation: .tanh); try Dense(3, 2) }
        let data = try randomDataset(rows: 8, features: 4, targets: classes(8, 2))
        try model.computeGradients(data, loss: .softmaxCrossEntropy())
        let once = Array(model.gradients)
        // Without zeroing, a second backward of the same batch adds the same gradient again.
        let loss = Loss.softmaxCrossEntropy()
        var batcher = Batcher(model: model, data: data, loss: loss)
        batcher.prepare(batchSize: data.count)
        let x = model.inputPointer(batch: data.count)
        data.gatherBatch(indices: Array(0..<data.count)[...], features: x, labels: batcher.labels.pointer, targets: nil)
        let y = model.forward(x, batch: data.count, training: false)
        let g = batcher.lossGrad.pointer!
        _ = loss.compute(grad: g, pred: y, rows: data.count, cols: 2, labels: UnsafePointer(batcher.labels.pointer), targets: nil)
        model.backward(g, batch: data.count)
        for (a, b) in zip(model.gradients, once) { XCTAssertEqual(a, 2 * b, accuracy: 1e-6 * max(1, abs(b))) }
        model.zeroGradients()
        XCTAssertTrue(model.gradients.allSatisfy { $0 == 0 })
    }

    func testTiedWeightsShareOneTensorAndTheirGradientMatchesFiniteDifferences() throws {
        let encoder = try Dense(4, 4, activation: .tanh)
        let model = try Sequential(inputSize: 4, seed: 7) {
            encoder
            try Dense(tiedTo: encoder, activation: .sigmoid)
            try Dense(4, 3)
        }
        XCTAssertEqual(model.parameterCount, (16 + 4) + (12 + 3), "the tied layer owns no parameters")
        XCTAssertEqual(model.stateDictLayout.map(\.name), ["0.weight", "0.bias", "4.weight", "4.bias"])
        let data = try randomDataset(rows: 10, features: 4, targets: classes(10, 3), seed: 3)
        try gradientCheck(model, data, .softmaxCrossEntropy())
        // Training moves one tensor that both layers use.
        let before = Array(encoder.weight)
        try model.fit(data, epochs: 3, batchSize: 5, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.05))
        let tied = model.layers[1] as! Dense
        XCTAssertNotEqual(Array(encoder.weight), before)
        XCTAssertEqual(tied.weight.baseAddress, encoder.weight.baseAddress)
        // The tie survives the model file.
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try model.save(to: dir + "/tied.safetensors")
        let loaded = try Sequential.load(from: dir + "/tied.safetensors")
        XCTAssertTrue((loaded.layers[1] as! Dense).owner === loaded.layers[0])
        XCTAssertEqual(try loaded.predict(data).map(\.bitPattern), try model.predict(data).map(\.bitPattern))
        // A tie to a layer outside the model is refused.
        let stranger = try Dense(4, 4)
        assertNNError(NNError.invalidArgument, mentions: ["not in the model"]) {
            _ = try Sequential(inputSize: 4) { try Dense(tiedTo: stranger) }
        }
    }

    func testOneLayerObjectBelongsToOnePlaceInOneModel() throws {
        let d = try Dense(4, 4, activation: .tanh)
        assertNNError(NNError.invalidArgument, mentions: ["layer 2 (Dense)", "same object as layer 0", "tiedTo"]) {
            _ = try Sequential(inputSize: 4) { d; ActivationLayer(.relu); d }
        }
        let first = try Sequential(inputSize: 4) { d }
        assertNNError(NNError.invalidArgument, mentions: ["layer 0 (Dense)", "another model"]) {
            _ = try Sequential(inputShape: Shape([5, 4])) { d }
        }
        XCTAssertEqual(first.layerOutputShapes.map(\.dimensions), [[4]], "the first model is untouched")
        let a = try Dense(4, 4)
        assertNNError(NNError.invalidArgument, mentions: ["later layer"]) {
            _ = try Sequential(inputSize: 4) { try Dense(tiedTo: a); a }
        }
        // A reshape whose sizes overflow is an error, not a trap, with or without a -1.
        assertNNError(NNError.shapeMismatch, mentions: ["Reshape"]) {
            _ = try Sequential(inputSize: 4) { try Reshape([1 << 31, 1 << 31, 2]) }
        }
        assertNNError(NNError.shapeMismatch, mentions: ["Reshape"]) {
            _ = try Sequential(inputSize: 4) { try Reshape([1 << 31, 1 << 31, -1]) }
        }
    }

    func testTrainerStepsOnlyWhatWasStaged() throws {
        let model = try Sequential(inputSize: 3, seed: 1) { try Dense(3, 2) }
        let trainer = try Trainer(model: model, loss: .softmaxCrossEntropy(), optimizer: SGD(),
                                  targets: .classes([], classCount: 2))
        let b = try trainer.stage(rows: 2)
        b.features.update(from: [1, 2, 3, 4, 5, 6], count: 6)
        b.labels!.update(from: [0, 1], count: 2)
        XCTAssertNoThrow(try trainer.step(rows: 2))
        assertNNError(NNError.invalidArgument, mentions: ["10", "2 rows"]) { try trainer.step(rows: 10) }
        b.labels![1] = 7
        assertNNError(NNError.invalidData, mentions: ["row 1", "7"]) { try trainer.step(rows: 2) }
        assertNNError(NNError.invalidArgument, mentions: ["rows"]) { _ = try trainer.stage(rows: 0) }
        assertNNError(NNError.shapeMismatch, mentions: ["2", "1"]) {
            _ = try Trainer(model: model, loss: .mse, optimizer: SGD(), targets: .values([], width: 1))
        }
    }

    // MARK: Buffers, nesting

    func testBuffersAreStateThatNoOptimizerTouchesAndThatTheModelFileKeeps() throws {
        let model = try Sequential(inputSize: 3, seed: 1) { RunningMeanProbe(); try Dense(3, 2) }
        XCTAssertEqual(model.bufferCount, 3)
        XCTAssertEqual(model.bufferStateDictLayout.map(\.name), ["0.running_mean"])
        let x: [Float] = [1, 2, 3, 3, 4, 5] // feature means 2, 3, 4
        let data = try Dataset(features: x, featureCount: 3, targets: .classes([0, 1], classCount: 2))
        try model.fit(data, epochs: 2, batchSize: 2, loss: .softmaxCrossEntropy(),
                      optimizer: Adam(learningRate: 0.1, weightDecay: 0.5), shuffle: false)
        let probe = model.layers[0] as! RunningMeanProbe
        // Two training steps of momentum 0.5 from 0: 0.75 of the mean; weight decay did not shrink it.
        XCTAssertEqual(probe.runningMean, [1.5, 2.25, 3])
        _ = try model.predict(x) // inference does not update it
        XCTAssertEqual(probe.runningMean, [1.5, 2.25, 3])
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try model.save(to: dir + "/b.safetensors")
        let st = try SafeTensors(contentsOf: dir + "/b.safetensors")
        XCTAssertEqual(try st.floats("0.running_mean"), [1.5, 2.25, 3])
        let loaded = try Sequential.load(from: dir + "/b.safetensors")
        XCTAssertEqual((loaded.layers[0] as! RunningMeanProbe).runningMean, [1.5, 2.25, 3])
    }

    func testNestedModelsAreLayers() throws {
        let block = try Sequential(inputSize: 6) { try Dense(6, 5, activation: .relu); try Dense(5, 4, activation: .tanh) }
        let model = try Sequential(inputShape: Shape([2, 3]), seed: 11) {
            Flatten()
            block
            try Dense(4, 3)
        }
        // nn.Sequential(Flatten, nn.Sequential(Linear, ReLU, Linear, Tanh), Linear)
        XCTAssertEqual(model.stateDictLayout.map(\.name), ["1.0.weight", "1.0.bias", "1.2.weight", "1.2.bias", "2.weight", "2.bias"])
        XCTAssertEqual(model.parameterCount, 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3)
        let data = try randomDataset(rows: 12, features: 6, targets: classes(12, 3), seed: 8)
        try gradientCheck(model, data, .softmaxCrossEntropy())
        let first = try model.evaluate(data, loss: .softmaxCrossEntropy())["loss"]!
        try model.fit(data, epochs: 30, batchSize: 4, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.02))
        XCTAssertLessThan(try model.evaluate(data, loss: .softmaxCrossEntropy())["loss"]!, first * 0.8)
        XCTAssertEqual(block.parameters.baseAddress, model.parameters.baseAddress! + 0, "the block's parameters live in the model's buffer")
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try model.save(to: dir + "/nested.safetensors")
        let loaded = try Sequential.load(from: dir + "/nested.safetensors")
        XCTAssertTrue(loaded.layers[1] is Sequential)
        XCTAssertEqual(loaded.sampleShape, model.sampleShape)
        XCTAssertEqual(try loaded.predict(data).map(\.bitPattern), try model.predict(data).map(\.bitPattern))
        var out = [Float](repeating: 0, count: 12 * 3)
        data.features.withUnsafeBufferPointer { x in out.withUnsafeMutableBufferPointer { model.infer(x.baseAddress!, rows: 12, into: $0.baseAddress!) } }
        XCTAssertEqual(out.map(\.bitPattern), try model.predict(data).map(\.bitPattern), "infer and predict agree bitwise")
    }

    // MARK: Model file version 2

    func testTheFileRecordsTheInputShapeAndANewerVersionIsRefused() throws {
        let model = try Sequential(inputShape: Shape([1, 4, 4]), seed: 2) { Flatten(); try Dense(16, 3) }
        var st = try model.safeTensors()
        XCTAssertEqual(st.metadata["format_version"], "3")
        XCTAssertTrue(st.metadata["architecture"]!.contains("\"input_shape\": [1, 4, 4]"))
        XCTAssertEqual(try Sequential(safeTensors: st).sampleShape.dimensions, [1, 4, 4])
        st.metadata["format_version"] = "4"
        assertNNError(NNError.unsupported, mentions: ["version 4", "1, 2 and 3"]) { _ = try Sequential(safeTensors: st) }
        st = try model.safeTensors()
        st.metadata["architecture"] = st.metadata["architecture"]!.replacingOccurrences(of: "\"Flatten\"", with: "\"Flatten\", \"start_dim\": 2")
        assertNNError(NNError.unknownName, mentions: ["Flatten", "start_dim"]) { _ = try Sequential(safeTensors: st) }
        st = try model.safeTensors()
        st.metadata["architecture"] = st.metadata["architecture"]!.replacingOccurrences(of: "[1, 4, 4]", with: "[1, 4, 5]")
        assertNNError(NNError.corruptFile, mentions: ["layer 1 (Dense)", "20"]) { _ = try Sequential(safeTensors: st) }
    }

    // MARK: Fashion-MNIST images, shape kept

    func testFashionMNISTImagesTrainThroughFlatten() throws {
        let dir = Dataset.fashionMNISTDirectory
        guard FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed (scripts/setup.sh installs dataset-fashion-mnist)")
        }
        let train = try Dataset.fashionMNIST(split: .train).subset(0..<6000)
        let test = try Dataset.fashionMNIST(split: .test).subset(0..<2000)
        XCTAssertEqual(train.sampleShape.dimensions, [1, 28, 28], "IDX images keep their shape")
        let model = try Sequential(inputShape: train.sampleShape, seed: 42) {
            Flatten()
            try Dense(784, 64, activation: .relu)
            try Dense(64, 10)
        }
        try model.fit(train, epochs: 3, batchSize: 64, loss: .softmaxCrossEntropy(), optimizer: Adam())
        let accuracy = try model.evaluate(test, loss: .softmaxCrossEntropy(), metrics: [.accuracy])["accuracy"]!
        XCTAssertGreaterThan(accuracy, 0.78, "[1, 28, 28] -> Flatten -> Dense on 6000 images, 3 epochs")
    }
}
