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
