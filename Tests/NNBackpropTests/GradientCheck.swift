import NNBackprop
import XCTest

/// Analytic gradients of `model` on `data` against central finite differences in float; the
/// step and tolerance are explained in GradientCheckTests.
func gradientCheck(_ model: Sequential, _ data: Dataset, _ loss: Loss, file: StaticString = #filePath, line: UInt = #line) throws {
    try model.computeGradients(data, loss: loss)
    let analytic = Array(model.gradients)
    let params = model.parameters
    let h: Float = 1e-2
    for i in 0..<params.count {
        let saved = params[i]
        params[i] = saved + h
        let up = try model.computeGradients(data, loss: loss)
        params[i] = saved - h
        let down = try model.computeGradients(data, loss: loss)
        params[i] = saved
        let numeric = (up - down) / (2 * h)
        let err = abs(analytic[i] - numeric)
        XCTAssertLessThanOrEqual(err, 2e-3 + 5e-2 * abs(numeric),
                                 "parameter \(i): analytic \(analytic[i]) numeric \(numeric) (\(loss))", file: file, line: line)
    }
    XCTAssertGreaterThan(analytic.map { abs($0) }.max() ?? 0, 0, "all gradients are zero", file: file, line: line)
}

/// `rows` rows of `features` uniform features in [-1, 1] from a fixed seed, with `targets`.
func randomDataset(rows: Int, features: Int, targets: Dataset.Targets, seed: UInt64 = 1) throws -> Dataset {
    var g = SeededGenerator(seed: seed)
    let x = (0..<(rows * features)).map { _ in g.nextFloat(in: -1...1) }
    return try Dataset(features: x, featureCount: features, targets: targets)
}

/// `rows` samples of `shape`, uniform in [-1, 1], with `classes` classes in turn.
func images(_ rows: Int, _ shape: [Int], classes: Int, seed: UInt64) throws -> Dataset {
    let s = try Shape(shape)
    return try randomDataset(rows: rows, features: s.count, targets: .classes((0..<rows).map { Int32($0 % classes) }, classCount: classes),
                             seed: seed).reshaped(to: s)
}

/// Analytic gradients of `model` against central differences of its mean softmax cross-entropy on
/// `data`, in `training` mode (batch statistics for batch normalization); every parameter of a
/// small model, 400 drawn ones of a larger one.
func finiteDifferences(_ model: Sequential, _ data: Dataset, training: Bool, file: StaticString = #filePath, line: UInt = #line) throws {
    let loss = Loss.softmaxCrossEntropy()
    try model.computeGradients(data, loss: loss, training: training)
    let analytic = Array(model.gradients)
    let p = model.parameters
    let h: Float = 1e-2
    var g = SeededGenerator(seed: 3)
    // Every parameter of a small model; a sample of a larger one.
    let picks = p.count <= 400 ? Array(0..<p.count) : (0..<400).map { _ in Int(g.next() % UInt64(p.count)) }
    for i in picks {
        let saved = p[i]
        p[i] = saved + h
        let up = try model.computeGradients(data, loss: loss, training: training)
        p[i] = saved - h
        let down = try model.computeGradients(data, loss: loss, training: training)
        p[i] = saved
        let numeric = (up - down) / (2 * h)
        XCTAssertLessThanOrEqual(abs(analytic[i] - numeric), 2e-3 + 5e-2 * abs(numeric),
                                 "parameter \(i): analytic \(analytic[i]), numeric \(numeric)", file: file, line: line)
    }
    XCTAssertGreaterThan(analytic.map { abs($0) }.max() ?? 0, 0, "all gradients are zero", file: file, line: line)
}


/// Trains `model` 2 epochs on `data`, saves it, loads it back and checks that the loaded model
/// has the same layer specs, the same buffers (running statistics, num_batches_tracked) and
/// bitwise the same predictions; returns the loaded model for further checks.
@discardableResult
func assertModelFileRoundTrip(_ model: Sequential, _ data: Dataset, file: StaticString = #filePath,
                              line: UInt = #line) throws -> Sequential {
    try model.fit(data, epochs: 2, batchSize: 8, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.01))
    let dir = try DataTestSupport.makeTempDirectory()
    defer { DataTestSupport.remove(dir) }
    try model.save(to: dir + "/model.safetensors")
    let loaded = try Sequential.load(from: dir + "/model.safetensors")
    XCTAssertEqual(loaded.layers.map(\.spec), model.layers.map(\.spec), file: file, line: line)
    XCTAssertEqual(Array(loaded.buffers), Array(model.buffers), "running statistics and num_batches_tracked", file: file, line: line)
    XCTAssertEqual(try loaded.predict(data).map(\.bitPattern), try model.predict(data).map(\.bitPattern), file: file, line: line)
    return loaded
}
