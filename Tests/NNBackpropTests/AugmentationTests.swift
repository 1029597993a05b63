import XCTest
@testable import NNBackprop

/// Image augmentation: the moves by hand, their spread, seeding inside `fit`, and the errors.
final class AugmentationTests: XCTestCase {
    /// `move` on one 2x3 plane (values 1...6 row by row), against the images drawn by hand.
    func testMovesAndFlipsByHand() {
        let cases: [(dy: Int, dx: Int, flip: Bool, want: [Float])] = [
            (0, 0, false, [1, 2, 3, 4, 5, 6]),
            (1, 0, false, [4, 5, 6, 0, 0, 0]),   // out(y, x) = in(y + 1, x): the image moves up
            (-1, 0, false, [0, 0, 0, 1, 2, 3]),
            (0, 1, false, [2, 3, 0, 5, 6, 0]),   // moves left
            (0, -2, false, [0, 0, 1, 0, 0, 4]),
            (0, 0, true, [3, 2, 1, 6, 5, 4]),    // mirrored
            (0, 1, true, [0, 3, 2, 0, 6, 5]),    // mirrored, then in(y, (2 - x) + 1)
            (1, -1, true, [5, 4, 0, 0, 0, 0]),
        ]
        var plane = [Float](repeating: .nan, count: 6)
        for c in cases {
            var image: [Float] = [1, 2, 3, 4, 5, 6]
            ImageAugmentation.move(&image, planes: 1, height: 2, width: 3, dy: c.dy, dx: c.dx, flip: c.flip, plane: &plane)
            XCTAssertEqual(image, c.want, "dy \(c.dy), dx \(c.dx), flip \(c.flip)")
        }
        // Two planes of one sample move together.
        var two: [Float] = [1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60]
        ImageAugmentation.move(&two, planes: 2, height: 2, width: 3, dy: 0, dx: 1, flip: false, plane: &plane)
        XCTAssertEqual(two, [2, 3, 0, 5, 6, 0, 20, 30, 0, 50, 60, 0])
    }

    /// With maxShift 2 every one of the 25 moves appears, evenly enough, and about half the
    /// samples are mirrored; the moves are read back from where a single lit pixel lands.
    func testMovesSpreadUniformly() throws {
        let aug = try ImageAugmentation(maxShift: 2, horizontalFlip: true)
        let (h, w) = (7, 11)
        let shape = try Shape([1, h, w])
        let rows = 5000
        var x = [Float](repeating: 0, count: rows * h * w)
        for r in 0..<rows { x[r * h * w + 3 * w + 2] = 1 } // pixel (3, 2)
        var plane = [Float](repeating: 0, count: h * w)
        var g = SeededGenerator(seed: 9)
        aug.apply(&x, rows: rows, shape: shape, generator: &g, plane: &plane)
        var moves: [String: Int] = [:]
        var flips = 0
        for r in 0..<rows {
            let lit = (0..<(h * w)).filter { x[r * h * w + $0] != 0 }
            XCTAssertEqual(lit.count, 1, "row \(r): a move of at most 2 keeps the pixel inside")
            guard let at = lit.first else { continue }
            let (y, col) = (at / w, at % w)
            // out(y, x) = in(y + dy, x' + dx): the pixel lands at y = 3 - dy and, unmirrored, at
            // x = 2 - dx (0...4), mirrored (x' = 10 - x) at x = 8 + dx (6...10).
            let flipped = col >= 6
            let dy = 3 - y, dx = flipped ? col - 8 : 2 - col
            if flipped { flips += 1 }
            XCTAssert((-2...2).contains(dy) && (-2...2).contains(dx), "row \(r): move \(dy), \(dx)")
            moves["\(dy),\(dx)", default: 0] += 1
        }
        XCTAssertEqual(moves.count, 25)
        // 200 expected per move: 120...280 is 5.8 standard deviations either side.
        for (move, count) in moves { XCTAssert((120...280).contains(count), "move \(move) drawn \(count) times of 5000") }
        XCTAssert((2300...2700).contains(flips), "\(flips) of 5000 mirrored")
    }

    /// Inside `fit`: the same seed gives the same weights, augmentation changes them, and an
    /// identity augmentation is no augmentation.
    func testFitIsSeededAndAugments() throws {
        var g = SeededGenerator(seed: 4)
        var x = [Float](repeating: 0, count: 64 * 36)
        g.fillUniform(&x, in: 0...1)
        let data = try Dataset(features: x, featureCount: 36,
                               targets: .classes((0..<64).map { Int32($0 % 3) }, classCount: 3)).reshaped(to: Shape([1, 6, 6]))
        func trained(_ aug: ImageAugmentation?, seed: UInt64 = 1, shuffle: Bool = true) throws -> [Float] {
            let model = try Sequential(inputShape: Shape([1, 6, 6]), seed: 3) {
                try Conv2D(1, 4, 3, padding: 1, activation: .relu)
                Flatten()
                try Dense(144, 3)
            }
            try model.fit(data, epochs: 2, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.01),
                          shuffle: shuffle, seed: seed, augmentation: aug)
            return Array(model.parameters)
        }
        let aug = try ImageAugmentation(maxShift: 1, horizontalFlip: true)
        let plain = try trained(nil)
        XCTAssertEqual(try trained(aug), try trained(aug))
        XCTAssertNotEqual(try trained(aug), plain)
        // Without shuffling the seed reaches training through the moves alone.
        XCTAssertEqual(try trained(nil, seed: 2, shuffle: false), try trained(nil, seed: 1, shuffle: false))
        XCTAssertNotEqual(try trained(aug, seed: 2, shuffle: false), try trained(aug, seed: 1, shuffle: false))
        XCTAssertEqual(try trained(try ImageAugmentation()), plain)
    }

    func testBadSettingsAndShapesAreErrors() throws {
        for shift in [-1, 65] {
            XCTAssertThrowsError(try ImageAugmentation(maxShift: shift)) { e in
                guard case NNError.invalidArgument(let m) = e else { return XCTFail("\(e)") }
                XCTAssert(m.contains("maxShift"), m)
            }
        }
        let flat = try Dataset(features: [Float](repeating: 0.5, count: 8 * 4), featureCount: 4,
                               targets: .classes([0, 1, 0, 1, 0, 1, 0, 1], classCount: 2))
        let mlp = try Sequential(seed: 1) { try Dense(4, 2) }
        XCTAssertThrowsError(try mlp.fit(flat, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                                         augmentation: try ImageAugmentation(horizontalFlip: true))) { e in
            guard case NNError.shapeMismatch(let m) = e else { return XCTFail("\(e)") }
            XCTAssert(m.contains("(C, H, W)") && m.contains("4"), m)
        }
        let tiny = try flat.reshaped(to: Shape([1, 2, 2]))
        let conv = try Sequential(inputShape: Shape([1, 2, 2]), seed: 1) { Flatten(); try Dense(4, 2) }
        XCTAssertThrowsError(try conv.fit(tiny, epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                                          augmentation: try ImageAugmentation(maxShift: 2))) { e in
            guard case NNError.shapeMismatch(let m) = e else { return XCTFail("\(e)") }
            XCTAssert(m.contains("2x2"), m)
        }
    }
}
