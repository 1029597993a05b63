import Foundation
import NNBackprop
import XCTest

/// `Dataset.spirals` (the nnb command's built-in data) and `Dataset.csvFeatures` (its predict input).
final class SpiralsTests: XCTestCase {
    func testShapeBalanceAndDeterminism() throws {
        let d = try Dataset.spirals(count: 1001, classes: 3, seed: 4)
        XCTAssertEqual(d.count, 999, "count is rounded down to a multiple of the class count")
        XCTAssertEqual(d.featureCount, 2)
        XCTAssertEqual(d.featureNames, ["x", "y"])
        XCTAssertEqual(d.classNames, ["spiral 0", "spiral 1", "spiral 2"])
        let labels = try XCTUnwrap(d.targets.classIndices)
        XCTAssertEqual((0..<3).map { c in labels.filter { $0 == c }.count }, [333, 333, 333])
        // Shuffled: the last fifth (a validation split) holds every class.
        XCTAssertEqual(Set(labels.suffix(200)), [0, 1, 2])
        XCTAssertEqual(try Dataset.spirals(count: 1001, classes: 3, seed: 4), d)
        XCTAssertNotEqual(try Dataset.spirals(count: 1001, classes: 3, seed: 5), d)
    }

    /// Without noise every point lies on its arm: radius t and angle 2 pi (turns t + c / classes).
    func testPointsLieOnTheirArms() throws {
        let d = try Dataset.spirals(count: 200, classes: 2, turns: 1.5, noise: 0, seed: 1)
        let labels = try XCTUnwrap(d.targets.classIndices)
        for r in 0..<d.count {
            let x = Double(d.features[2 * r]), y = Double(d.features[2 * r + 1])
            let t = (x * x + y * y).squareRoot()
            XCTAssertGreaterThan(t, 0)
            XCTAssertLessThanOrEqual(t, 1 + 1e-6)
            let expected = 2 * Double.pi * (1.5 * t + Double(labels[r]) / 2)
            let turn = (atan2(y, x) - expected) / (2 * Double.pi)
            XCTAssertEqual(turn, turn.rounded(), accuracy: 1e-4, "row \(r)")
        }
    }

    func testBadArgumentsThrow() {
        assertNNError(NNError.invalidArgument, mentions: ["classes"]) { try Dataset.spirals(classes: 1) }
        assertNNError(NNError.invalidArgument, mentions: ["count 3"]) { try Dataset.spirals(count: 3, classes: 4) }
        assertNNError(NNError.invalidArgument, mentions: ["turns"]) { try Dataset.spirals(turns: 0) }
        assertNNError(NNError.invalidArgument, mentions: ["noise"]) { try Dataset.spirals(noise: -1) }
    }
}

final class CSVFeaturesTests: XCTestCase {
    var dir = ""
    override func setUpWithError() throws { dir = try DataTestSupport.makeTempDirectory() }
    override func tearDown() { DataTestSupport.remove(dir) }

    func testReadsEveryColumnOrDropsTheTarget() throws {
        let path = dir + "/f.csv"
        try DataTestSupport.write("a,label,b\n1,x,2\n3,y,4.5\n", to: path)
        let kept = try Dataset.csvFeatures(path: path, dropping: "label")
        XCTAssertEqual(kept.features, [1, 2, 3, 4.5])
        XCTAssertEqual(kept.featureCount, 2)
        XCTAssertEqual(kept.featureNames, ["a", "b"])
        XCTAssertEqual(try Dataset.csvFeatures(path: path, dropping: .index(1)).features, [1, 2, 3, 4.5])

        let numeric = dir + "/n.csv"
        try DataTestSupport.write("a,b,c\n1,2,3\n4,5,6\n", to: numeric)
        XCTAssertEqual(try Dataset.csvFeatures(path: numeric).featureCount, 3)
        XCTAssertEqual(try Dataset.csvFeatures(path: numeric, dropping: .last).features, [1, 2, 4, 5])
        // A target name the file lacks: the file holds features only.
        XCTAssertEqual(try Dataset.csvFeatures(path: numeric, dropping: "label").features, [1, 2, 3, 4, 5, 6])
        let headerless = dir + "/h.csv"
        try DataTestSupport.write("1,2\n3,4\n", to: headerless)
        XCTAssertEqual(try Dataset.csvFeatures(path: headerless, hasHeader: false).features, [1, 2, 3, 4])
        XCTAssertNil(try Dataset.csvFeatures(path: headerless, hasHeader: false).featureNames)
    }

    func testBadCellsAndRaggedRowsNameTheirPlace() throws {
        let path = dir + "/bad.csv"
        try DataTestSupport.write("a,b\n1,2\n3,oops\n", to: path)
        assertNNError(NNError.invalidData, mentions: ["bad.csv:3:2", "'oops'", "'b'"]) { try Dataset.csvFeatures(path: path) }
        try DataTestSupport.write("a,b\n1,2\n3\n", to: path)
        assertNNError(NNError.shapeMismatch, mentions: ["bad.csv:3", "1 fields, expected 2"]) { try Dataset.csvFeatures(path: path) }
        assertNNError(NNError.fileError, mentions: ["missing.csv"]) { try Dataset.csvFeatures(path: dir + "/missing.csv") }
        assertNNError(NNError.invalidArgument, mentions: ["index 5"]) { try Dataset.csvFeatures(path: path, dropping: .index(5)) }
    }
}
