import Foundation
import NNBackprop
import XCTest

/// Model files of format version 1, written by the library before shaped layers
/// (`Tests/fixtures/v1`, made by `nnb train` and the Python binding of that code), must keep
/// loading. Each is checked against a forward pass computed here in double precision from the
/// file's own tensors, not against outputs the library printed.
final class FormatV1FixtureTests: XCTestCase {
    private static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("fixtures/v1").path

    /// The reference forward pass: Linear layers from "N.weight"/"N.bias" and the named
    /// elementwise steps between them, as the file's architecture metadata spells them.
    private func reference(_ st: SafeTensors, steps: [String], input: [Double]) throws -> [Double] {
        var x = input
        for step in steps {
            if step.hasPrefix("linear:") {
                let index = String(step.dropFirst("linear:".count))
                let w = try st.floats(index + ".weight").map(Double.init)
                let b = try st.floats(index + ".bias").map(Double.init)
                let out = b.count, inp = x.count
                XCTAssertEqual(w.count, out * inp)
                x = (0..<out).map { o in b[o] + (0..<inp).reduce(0.0) { $0 + w[o * inp + $1] * x[$1] } }
            } else {
                switch step {
                case "tanh": x = x.map { Foundation.tanh($0) }
                case "relu": x = x.map { max($0, 0) }
                case "sigmoid": x = x.map { 1 / (1 + Foundation.exp(-$0)) }
                case "leaky_relu": x = x.map { $0 > 0 ? $0 : 0.01 * $0 }
                case "softmax", "log_softmax":
                    let m = x.max()!
                    let s = x.reduce(0.0) { $0 + Foundation.exp($1 - m) }
                    x = step == "softmax" ? x.map { Foundation.exp($0 - m) / s } : x.map { $0 - m - Foundation.log(s) }
                default: XCTFail("unknown step \(step)")
                }
            }
        }
        return x
    }

    private func check(_ file: String, steps: [String], standardized: Bool = false,
                       line: UInt = #line) throws {
        let path = Self.fixtures + "/" + file
        let st = try SafeTensors(contentsOf: path)
        XCTAssertEqual(st.metadata["format_version"], "1", "the fixture is a version-1 file", line: line)
        let model = try Sequential.load(from: path)
        var g = SeededGenerator(seed: 5)
        let rows = 9
        let x = (0..<(rows * model.inputSize)).map { _ in g.nextFloat(in: -3...3) }
        let got = try model.predict(x)
        let mean = standardized ? try st.floats("preprocessing.mean").map(Double.init) : []
        let std = standardized ? try st.floats("preprocessing.std").map(Double.init) : []
        for r in 0..<rows {
            var row = x[(r * model.inputSize)..<((r + 1) * model.inputSize)].map(Double.init)
            if standardized { row = row.indices.map { (row[$0] - mean[$0]) / std[$0] } }
            let want = try reference(st, steps: steps, input: row)
            XCTAssertEqual(want.count, model.outputSize, line: line)
            for (j, w) in want.enumerated() {
                XCTAssertEqual(Double(got[r * model.outputSize + j]), w, accuracy: 1e-5 * max(1, abs(w)),
                               "\(file) row \(r) output \(j)", line: line)
            }
        }
    }

    func testTanhMLPWithStandardizer() throws {
        try check("iris-tanh-standardized.safetensors", steps: ["linear:0", "tanh", "linear:2", "tanh", "linear:4"],
                  standardized: true)
    }

    func testReLUMLP() throws {
        try check("iris-sgd-momentum.safetensors", steps: ["linear:0", "relu", "linear:2"])
    }

    func testDropoutIsIdentityAndLogSoftmax() throws {
        // Linear(0) LeakyReLU(1) try Dropout(2) Linear(3) LogSoftmax(4)
        try check("dropout-logsoftmax.safetensors", steps: ["linear:0", "leaky_relu", "linear:3", "log_softmax"])
    }

    func testActivationLayerAndSoftmax() throws {
        try check("activation-softmax.safetensors", steps: ["linear:0", "sigmoid", "linear:2", "softmax"])
    }
}
