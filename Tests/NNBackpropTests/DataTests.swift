import Foundation
import NNBackprop
import XCTest

// MARK: - Seeded generator

final class SeededGeneratorTests: XCTestCase {
    func testSplitMix64MatchesPublishedOutput() {
        // First outputs of SplitMix64 from state 0, as published with the algorithm.
        var state: UInt64 = 0
        XCTAssertEqual(SeededGenerator.splitMix64(&state), 0xE220_A839_7B1D_CDAF)
        XCTAssertEqual(SeededGenerator.splitMix64(&state), 0x6E78_9E6A_A1B9_65F4)
    }

    func testXoshiroMatchesIndependentPythonImplementation() throws {
        // xoshiro256** written out from the paper in Python, seeded by SplitMix64.
        let script = """
        import sys
        M = (1 << 64) - 1
        def splitmix(state):
            state = (state + 0x9E3779B97F4A7C15) & M
            z = state
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
            return state, z ^ (z >> 31)
        rotl = lambda x, k: ((x << k) | (x >> (64 - k))) & M
        for seed in map(int, sys.argv[1:]):
            st, s = seed, []
            for _ in range(4):
                st, v = splitmix(st)
                s.append(v)
            out = []
            for _ in range(6):
                out.append((rotl((s[1] * 5) & M, 7) * 9) & M)
                t = (s[1] << 17) & M
                s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 45)
            print(" ".join(map(str, out)))
        """
        let seeds: [UInt64] = [0, 42, 0xFFFF_FFFF_FFFF_FFFF]
        let lines = try DataTestSupport.python(script, seeds.map { String($0) }).split(separator: "\n")
        XCTAssertEqual(lines.count, seeds.count)
        for (seed, line) in zip(seeds, lines) {
            var g = SeededGenerator(seed: seed)
            let ours = (0..<6).map { _ in g.next() }
            XCTAssertEqual(ours, line.split(separator: " ").compactMap { UInt64($0) }, "seed \(seed)")
        }
    }

    func testSameSeedSameStreamDifferentSeedDifferentStream() {
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7), c = SeededGenerator(seed: 8)
        let sa = (0..<100).map { _ in a.nextGaussian() + a.nextFloat() + Float(a.nextInt(below: 1000)) }
        let sb = (0..<100).map { _ in b.nextGaussian() + b.nextFloat() + Float(b.nextInt(below: 1000)) }
        let sc = (0..<100).map { _ in c.nextGaussian() + c.nextFloat() + Float(c.nextInt(below: 1000)) }
        XCTAssertEqual(sa, sb)
        XCTAssertNotEqual(sa, sc)
        // A copy continues the same stream; a fork does not.
        var copy = a
        XCTAssertEqual(copy.next(), a.next())
        var fork = a.fork()
        XCTAssertNotEqual(fork.next(), a.next())
    }

    func testUniformHelpersStayInRangeAndAreUnbiased() {
        var g = SeededGenerator(seed: 1)
        var counts = [Int](repeating: 0, count: 7)
        for _ in 0..<70_000 {
            let f = g.nextFloat()
            XCTAssertTrue(f >= 0 && f < 1)
            let r = g.nextFloat(in: -0.5..<0.25)
            XCTAssertTrue(r >= -0.5 && r < 0.25)
            let c = g.nextFloat(in: -2...2)
            XCTAssertTrue(c >= -2 && c <= 2)
            counts[g.nextInt(below: 7)] += 1
        }
        // 10000 expected per bucket, standard deviation about 93: 5 sigma is 465.
        for n in counts { XCTAssertEqual(Double(n), 10_000, accuracy: 465, "\(counts)") }
    }

    func testGaussianMomentsAndBoxMullerPairs() {
        var g = SeededGenerator(seed: 3)
        let n = 200_000
        var sum = 0.0, squares = 0.0, within1 = 0
        for _ in 0..<n {
            let z = Double(g.nextGaussian())
            sum += z
            squares += z * z
            if abs(z) < 1 { within1 += 1 }
        }
        let mean = sum / Double(n)
        XCTAssertEqual(mean, 0, accuracy: 0.01)
        XCTAssertEqual((squares / Double(n) - mean * mean).squareRoot(), 1, accuracy: 0.01)
        XCTAssertEqual(Double(within1) / Double(n), 0.6827, accuracy: 0.005) // P(|Z| < 1)
        var h = SeededGenerator(seed: 3)
        XCTAssertEqual(h.nextGaussian(mean: 5, standardDeviation: 2), 5 + 2 * SeededGenerator(seed: 3).firstGaussian)
    }

    func testShuffleIsAUniformDeterministicPermutation() {
        var g = SeededGenerator(seed: 11)
        let p = g.permutation(1000)
        XCTAssertEqual(p.sorted(), Array(0..<1000))
        XCTAssertNotEqual(p, Array(0..<1000))
        var g2 = SeededGenerator(seed: 11)
        XCTAssertEqual(g2.permutation(1000), p)
        // All 6 orders of 3 elements, 60000 shuffles: 10000 each, sigma about 91.
        var seen = [[Int]: Int]()
        for _ in 0..<60_000 {
            var a = [0, 1, 2]
            g.shuffle(&a)
            seen[a, default: 0] += 1
        }
        XCTAssertEqual(seen.count, 6)
        for (_, n) in seen { XCTAssertEqual(Double(n), 10_000, accuracy: 460) }
        // Shuffling a slice touches only the slice.
        var a = Array(0..<10)
        g.shuffle(&a[3..<7])
        XCTAssertEqual(Array(a[0..<3]) + Array(a[7...]), [0, 1, 2, 7, 8, 9])
        XCTAssertEqual(a[3..<7].sorted(), [3, 4, 5, 6])
    }
}

private extension SeededGenerator {
    var firstGaussian: Float {
        var copy = self
        return copy.nextGaussian()
    }
}

// MARK: - Dataset

final class DatasetTests: XCTestCase {
    /// Rows whose single feature is the row number, so any reordering is visible.
    func numbered(_ n: Int, classes: Int = 3) throws -> Dataset {
        try Dataset(features: (0..<n).flatMap { [Float($0), Float(-$0)] }, featureCount: 2,
                    targets: .classes((0..<n).map { Int32($0 % classes) }, classCount: classes))
    }

    func testValidDatasetShapes() throws {
        let d = try Dataset(rows: [[1, 2, 3], [4, 5, 6]], targets: .values([0.5, -1, 2, 3], width: 2))
        XCTAssertEqual(d.count, 2)
        XCTAssertEqual(d.featureCount, 3)
        XCTAssertEqual(d.targets.width, 2)
        XCTAssertEqual(d.targets.rowCount, 2)
        XCTAssertEqual(d.features, [1, 2, 3, 4, 5, 6])
        XCTAssertNil(d.targets.classIndices)
    }

    func testInvalidDataNamesRowAndColumn() {
        assertNNError(NNError.invalidData, mentions: ["row 2, column 1", "nan"]) {
            try Dataset(features: [0, 0, 0, 0, 0, .nan], featureCount: 2, targets: .classes([0, 1, 0], classCount: 2))
        }
        assertNNError(NNError.invalidData, mentions: ["row 1, column 0", "inf"]) {
            try Dataset(features: [0, 0], featureCount: 1, targets: .values([1, .infinity], width: 1))
        }
        assertNNError(NNError.invalidData, mentions: ["class index 5", "row 1", "0..<3"]) {
            try Dataset(features: [0, 0], featureCount: 1, targets: .classes([0, 5], classCount: 3))
        }
        assertNNError(NNError.invalidData, mentions: ["class index -1", "row 0"]) {
            try Dataset(features: [0], featureCount: 1, targets: .classes([-1], classCount: 3))
        }
        assertNNError(NNError.invalidData, mentions: ["row 0, column 1", "[0, 1]"]) {
            try Dataset(features: [0], featureCount: 1, targets: .probabilities([0.5, 1.5], width: 2))
        }
        assertNNError(NNError.invalidData, mentions: ["empty"]) {
            try Dataset(features: [], featureCount: 4, targets: .classes([], classCount: 2))
        }
        assertNNError(NNError.invalidData, mentions: ["empty"]) { try Dataset(rows: [], targets: .values([], width: 1)) }
        // A NaN far into a large matrix is found at the right place.
        var big = [Float](repeating: 1, count: 100_000 * 10)
        big[987_654] = -.infinity
        assertNNError(NNError.invalidData, mentions: ["row 98765, column 4"]) {
            try Dataset(features: big, featureCount: 10, targets: .values([Float](repeating: 0, count: 100_000), width: 1))
        }
    }

    func testShapeMismatchesAreReported() {
        assertNNError(NNError.shapeMismatch, mentions: ["7 values", "featureCount 2"]) {
            try Dataset(features: [Float](repeating: 0, count: 7), featureCount: 2, targets: .classes([0], classCount: 1))
        }
        assertNNError(NNError.shapeMismatch, mentions: ["2 class labels for 3 feature rows"]) {
            try Dataset(features: [0, 0, 0], featureCount: 1, targets: .classes([0, 1], classCount: 2))
        }
        assertNNError(NNError.shapeMismatch, mentions: ["expected 3 rows x 2 = 6"]) {
            try Dataset(features: [0, 0, 0], featureCount: 1, targets: .values([0, 1, 2, 3, 4], width: 2))
        }
        assertNNError(NNError.shapeMismatch, mentions: ["row 1 has 1 features, expected 2"]) {
            try Dataset(rows: [[1, 2], [3]], targets: .classes([0, 0], classCount: 1))
        }
        assertNNError(NNError.invalidArgument, mentions: ["featureCount"]) {
            try Dataset(features: [1], featureCount: 0, targets: .classes([0], classCount: 1))
        }
        assertNNError(NNError.invalidArgument, mentions: ["classCount"]) {
            try Dataset(features: [1], featureCount: 1, targets: .classes([0], classCount: 0))
        }
        assertNNError(NNError.shapeMismatch, mentions: ["classNames"]) {
            try Dataset(features: [1], featureCount: 1, targets: .classes([0], classCount: 2), classNames: ["a"])
        }
    }

    func testSubsetKeepsOrderAndRejectsBadIndices() throws {
        let d = try numbered(6)
        let s = try d.subset([5, 0, 5])
        XCTAssertEqual(s.features, [5, -5, 0, 0, 5, -5])
        XCTAssertEqual(s.targets, .classes([2, 0, 2], classCount: 3))
        assertNNError(NNError.invalidArgument, mentions: ["row index 6", "0..<6"]) { try d.subset([1, 6]) }
        assertNNError(NNError.invalidArgument, mentions: ["no indices"]) { try d.subset([Int]()) }
    }

    func testGatherBatchFillsCallerBuffers() throws {
        let d = try numbered(5)
        let order = [4, 1, 3, 0, 2]
        var x = [Float](repeating: -99, count: 3 * 2)
        var labels = [Int32](repeating: -1, count: 3)
        var onehot = [Float](repeating: -99, count: 3 * 3)
        x.withUnsafeMutableBufferPointer { xb in
            labels.withUnsafeMutableBufferPointer { lb in
                onehot.withUnsafeMutableBufferPointer { ob in
                    d.gatherBatch(indices: order[1..<4], features: xb.baseAddress!, labels: lb.baseAddress!,
                                  targets: ob.baseAddress!)
                }
            }
        }
        XCTAssertEqual(x, [1, -1, 3, -3, 0, 0])
        XCTAssertEqual(labels, [1, 0, 0])
        XCTAssertEqual(onehot, [0, 1, 0, 1, 0, 0, 1, 0, 0])

        let r = try Dataset(features: [1, 2, 3], featureCount: 1, targets: .values([10, 11, 20, 21, 30, 31], width: 2))
        var rx = [Float](repeating: 0, count: 2), ry = [Float](repeating: 0, count: 4)
        rx.withUnsafeMutableBufferPointer { xb in
            ry.withUnsafeMutableBufferPointer { yb in
                r.gatherBatch(indices: [2, 0][...], features: xb.baseAddress!, targets: yb.baseAddress!)
            }
        }
        XCTAssertEqual(rx, [3, 1])
        XCTAssertEqual(ry, [30, 31, 10, 11])
    }

    func testOneHotAndArgMax() throws {
        XCTAssertEqual(try Dataset.oneHot([2, 0], classCount: 3), [0, 0, 1, 1, 0, 0])
        assertNNError(NNError.invalidData, mentions: ["row 1"]) { try Dataset.oneHot([0, 3], classCount: 3) }
        let d = try numbered(4).oneHotEncoded()
        XCTAssertEqual(d.targets, .probabilities([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0], width: 3))
        XCTAssertEqual(d.targets.classIndices, [0, 1, 2, 0])
        let soft = Dataset.Targets.probabilities([0.2, 0.7, 0.1, 0.5, 0.5, 0], width: 3)
        XCTAssertEqual(soft.classIndices, [1, 0]) // first maximum on ties
    }

    func testSplitIsSeededDisjointAndComplete() throws {
        let d = try numbered(100)
        let (train, test) = try d.split(testFraction: 0.25, seed: 42)
        XCTAssertEqual(train.count, 75)
        XCTAssertEqual(test.count, 25)
        let ids = { (s: Dataset) in stride(from: 0, to: s.features.count, by: 2).map { Int(s.features[$0]) } }
        XCTAssertEqual(Set(ids(train)).intersection(ids(test)), [])
        XCTAssertEqual((ids(train) + ids(test)).sorted(), Array(0..<100))
        // Targets travel with their rows.
        let trainLabels = train.targets.classIndices ?? []
        XCTAssertEqual(trainLabels, ids(train).map { Int32($0 % 3) })
        // Same seed, same split; another seed, another split.
        let again = try d.split(testFraction: 0.25, seed: 42)
        XCTAssertEqual(again.train, train)
        XCTAssertEqual(again.test, test)
        XCTAssertNotEqual(try d.split(testFraction: 0.25, seed: 43).test, test)
        // The split is the generator's permutation: test rows come first in it.
        var g = SeededGenerator(seed: 42)
        XCTAssertEqual(ids(test), Array(g.permutation(100).prefix(25)))

        assertNNError(NNError.invalidArgument, mentions: ["strictly between 0 and 1"]) { try d.split(testFraction: 1, seed: 0) }
        assertNNError(NNError.invalidArgument, mentions: ["0 test"]) { try d.split(testFraction: 0.001, seed: 0) }
    }
}

// MARK: - Preprocessing

final class PreprocessingTests: XCTestCase {
    // Columns: 1,2,3,4 (mean 2.5, population std sqrt(1.25)); constant 7; -10,0,10,20.
    let x: [Float] = [1, 7, -10, 2, 7, 0, 3, 7, 10, 4, 7, 20]

    func testStandardizerStatisticsAndTransform() throws {
        let s = try Standardizer(fitting: x, featureCount: 3)
        XCTAssertEqual(s.mean, [2.5, 7, 5])
        XCTAssertEqual(s.std[0], Float(1.25.squareRoot()), accuracy: 1e-6)
        XCTAssertEqual(s.std[1], 1) // constant column: divide by 1
        XCTAssertEqual(s.std[2], Float(125.0.squareRoot()), accuracy: 1e-5)
        var y = x
        try s.transform(&y)
        for j in 0..<3 {
            let col = (0..<4).map { Double(y[$0 * 3 + j]) }
            let mean = col.reduce(0, +) / 4
            let variance = col.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 4
            XCTAssertEqual(mean, 0, accuracy: 1e-6)
            XCTAssertEqual(variance, j == 1 ? 0 : 1, accuracy: 1e-5)
        }
        try s.inverseTransform(&y)
        for (a, b) in zip(y, x) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testMinMaxScalerMapsTrainingRangeOntoTarget() throws {
        let m = try MinMaxScaler(fitting: x, featureCount: 3, range: -1...1)
        XCTAssertEqual(m.dataMin, [1, 7, -10])
        XCTAssertEqual(m.dataMax, [4, 7, 20])
        var y = x
        try m.transform(&y)
        XCTAssertEqual(y[0], -1)
        XCTAssertEqual(y[9], 1)
        XCTAssertEqual(y[3], -1.0 / 3.0, accuracy: 1e-6)
        XCTAssertEqual(y[1], -1) // constant column goes to the lower bound
        XCTAssertEqual(y[2], -1)
        XCTAssertEqual(y[11], 1)
        var outside: [Float] = [7, 7, 50]
        try m.transform(&outside)
        XCTAssertEqual(outside[0], 3, accuracy: 1e-6) // beyond the training max maps beyond 1
        XCTAssertEqual(outside[2], 3, accuracy: 1e-6)
        try m.inverseTransform(&y)
        for (a, b) in zip(y, x) { XCTAssertEqual(a, b, accuracy: 1e-5) }
    }

    func testScalersRoundTripThroughTheirSavedTensors() throws {
        let s = try Standardizer(fitting: x, featureCount: 3)
        let m = try MinMaxScaler(fitting: x, featureCount: 3)
        let s2 = try Preprocessing.scaler(kind: s.kind, tensors: s.tensors)
        let m2 = try Preprocessing.scaler(kind: m.kind, tensors: m.tensors)
        XCTAssertEqual(s2 as? Standardizer, s)
        XCTAssertEqual(m2 as? MinMaxScaler, m)
        // Through a safetensors file too, as a model file would store them.
        var file = SafeTensors(metadata: ["preprocessing": s.kind])
        for (name, values) in s.tensors.sorted(by: { $0.key < $1.key }) {
            try file.set("preprocessing.\(name)", SafeTensors.Tensor(values, shape: [values.count]))
        }
        let back = try SafeTensors(bytes: file.serialized())
        let tensors = try Dictionary(uniqueKeysWithValues: ["mean", "std"].map { ($0, try back.floats("preprocessing.\($0)")) })
        XCTAssertEqual(try Preprocessing.scaler(kind: back.metadata["preprocessing"] ?? "", tensors: tensors) as? Standardizer, s)

        assertNNError(NNError.unknownName, mentions: ["'robust'", "standardize", "minmax"]) {
            try Preprocessing.scaler(kind: "robust", tensors: [:])
        }
        assertNNError(NNError.invalidData, mentions: ["'std'"]) { try Standardizer(tensors: ["mean": [1]]) }
        assertNNError(NNError.invalidData, mentions: ["std[1]"]) { try Standardizer(mean: [0, 0], std: [1, 0]) }
        assertNNError(NNError.invalidArgument, mentions: ["range"]) { try MinMaxScaler(dataMin: [0], dataMax: [1], range: 1...1) }
    }

    func testTransformChecksShapesAndLeavesDataUnchangedOnError() throws {
        let s = try Standardizer(fitting: x, featureCount: 3)
        var wrong: [Float] = [1, 2, 3, 4]
        assertNNError(NNError.shapeMismatch, mentions: ["4 values", "3 features"]) { try s.transform(&wrong) }
        var d = try Dataset(features: [1, 2], featureCount: 2, targets: .values([0], width: 1))
        assertNNError(NNError.shapeMismatch, mentions: ["fitted on 3 features", "has 2"]) { try s.transform(&d) }
        // Scaling by a tiny std overflows for a far-away value: refused, input untouched.
        let tiny = try Standardizer(mean: [0, 0], std: [1, 1e-30])
        var far: [Float] = [1, 1, 2, 1e10]
        assertNNError(NNError.invalidData, mentions: ["row 1, column 1", "overflows"]) { try tiny.transform(&far) }
        XCTAssertEqual(far, [1, 1, 2, 1e10])
        var nan: [Float] = [1, .nan, 0]
        assertNNError(NNError.invalidData, mentions: ["row 0, column 1"]) { try s.transform(&nan) }

        var ok = try Dataset(features: x, featureCount: 3, targets: .values([1, 2, 3, 4], width: 1))
        try MinMaxScaler(fitting: ok).transform(&ok)
        XCTAssertEqual(ok.features.min(), 0)
        XCTAssertEqual(ok.features.max(), 1)
        XCTAssertEqual(ok.targets, .values([1, 2, 3, 4], width: 1))
    }
}

// MARK: - IDX and Fashion-MNIST

final class IDXLoaderTests: XCTestCase {
    func skipUnlessFashionMNIST() throws {
        guard FileManager.default.fileExists(atPath: Dataset.fashionMNISTDirectory + "/t10k-labels-idx1-ubyte.gz") else {
            throw XCTSkip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
        }
    }

    func testFashionMNISTTrainingSet() throws {
        try skipUnlessFashionMNIST()
        let d = try Dataset.fashionMNIST(split: .train)
        XCTAssertEqual(d.count, 60_000)
        XCTAssertEqual(d.featureCount, 784)
        XCTAssertEqual(d.targets.width, 10)
        XCTAssertEqual(d.classNames?.first, "T-shirt/top")
        guard case .classes(let labels, 10) = d.targets else { return XCTFail("expected 10 classes") }
        var perClass = [Int](repeating: 0, count: 10)
        for l in labels { perClass[Int(l)] += 1 }
        XCTAssertEqual(perClass, [Int](repeating: 6000, count: 10)) // Fashion-MNIST is balanced
        XCTAssertEqual(d.features.min(), 0)
        XCTAssertEqual(d.features.max(), 1)

        // The same facts read independently by python's gzip and struct.
        let script = """
        import gzip, struct, sys
        d = sys.argv[1]
        lab = gzip.open(d + '/train-labels-idx1-ubyte.gz').read()
        img = gzip.open(d + '/train-images-idx3-ubyte.gz').read()
        assert struct.unpack('>IIII', img[:16]) == (2051, 60000, 28, 28)
        print(' '.join(str(b) for b in lab[8:18]))
        print(sum(img[16:16 + 784]), sum(img[16 + 59999 * 784:]))
        """
        let out = try DataTestSupport.python(script, [Dataset.fashionMNISTDirectory]).split(separator: "\n")
        XCTAssertEqual(labels.prefix(10).map { String($0) }.joined(separator: " "), String(out[0]))
        let sums = out[1].split(separator: " ").compactMap { Double($0) }
        let first = d.features[0..<784].reduce(0.0) { $0 + Double($1) * 255 }
        let last = d.features[(59_999 * 784)...].reduce(0.0) { $0 + Double($1) * 255 }
        XCTAssertEqual(first, sums[0], accuracy: 1e-2)
        XCTAssertEqual(last, sums[1], accuracy: 1e-2)
    }

    func testFashionMNISTTestSet() throws {
        try skipUnlessFashionMNIST()
        let d = try Dataset.fashionMNIST(split: .test)
        XCTAssertEqual(d.count, 10_000)
        XCTAssertEqual(d.featureCount, 784)
        let labels = d.targets.classIndices ?? []
        XCTAssertEqual(labels.count, 10_000)
        XCTAssertTrue(labels.allSatisfy { $0 >= 0 && $0 < 10 })
        XCTAssertEqual(Set(labels).count, 10)
        XCTAssertEqual(labels.filter { $0 == 9 }.count, 1000)
    }

    /// A 3-image 2x2 uint8 IDX pair written by python, plain and gzipped.
    func writeSmallIDX(in dir: String) throws {
        let script = """
        import gzip, struct, sys
        d = sys.argv[1]
        images = struct.pack('>BBBBIII', 0, 0, 8, 3, 3, 2, 2) + bytes(range(0, 120, 10))
        labels = struct.pack('>BBBBI', 0, 0, 8, 1, 3) + bytes([2, 0, 1])
        open(d + '/train-images-idx3-ubyte', 'wb').write(images)
        open(d + '/train-labels-idx1-ubyte', 'wb').write(labels)
        gzip.open(d + '/t10k-images-idx3-ubyte.gz', 'wb').write(images)
        gzip.open(d + '/t10k-labels-idx1-ubyte.gz', 'wb').write(labels)
        open(d + '/floats.idx', 'wb').write(struct.pack('>BBBBII', 0, 0, 0x0D, 2, 2, 2) + struct.pack('>4f', 1.5, -2, 0.25, 8))
        open(d + '/shorts.idx', 'wb').write(struct.pack('>BBBBI', 0, 0, 0x0B, 1, 3) + struct.pack('>3h', -300, 0, 7))
        """
        try DataTestSupport.python(script, [dir])
    }

    func testPlainAndGzippedIDXAgree() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try writeSmallIDX(in: dir)
        let plain = try Dataset.mnistFamily(split: .train, directory: dir)
        let gz = try Dataset.mnistFamily(split: .test, directory: dir)
        XCTAssertEqual(plain, gz)
        XCTAssertEqual(plain.featureCount, 4)
        XCTAssertEqual(plain.count, 3)
        XCTAssertEqual(plain.features.map { ($0 * 255).rounded() }, (0..<12).map { Float($0 * 10) })
        XCTAssertEqual(plain.targets, .classes([2, 0, 1], classCount: 10))
        XCTAssertEqual(try IDXArray(contentsOf: dir + "/floats.idx").floats(), [1.5, -2, 0.25, 8])
        XCTAssertEqual(try IDXArray(contentsOf: dir + "/floats.idx").shape, [2, 2])
        XCTAssertEqual(try IDXArray(contentsOf: dir + "/shorts.idx").integers(), [-300, 0, 7])
        let byCount = try Dataset.idx(images: dir + "/train-images-idx3-ubyte", labels: dir + "/train-labels-idx1-ubyte", scale: 1)
        XCTAssertEqual(byCount.targets, .classes([2, 0, 1], classCount: 3))
        XCTAssertEqual(byCount.features[11], 110)
    }

    /// 8-bit IDX images stay bytes (a quarter of the memory): every view of them (features,
    /// the batch gather, subsets, splits, equality) gives the floats the float store would
    /// hold, bit for bit; a transform turns them into floats.
    func testEightBitIDXImagesStayBytes() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try writeSmallIDX(in: dir)
        let data = try Dataset.mnistFamily(split: .train, directory: dir)
        XCTAssertEqual(data.bytesPerFeature, 1)
        let images = try IDXArray(contentsOf: dir + "/train-images-idx3-ubyte")
        let floats = images.floats(scale: 1.0 / 255.0)
        XCTAssertEqual(data.features.map(\.bitPattern), floats.map(\.bitPattern))
        let twin = try Dataset(features: floats, featureCount: 4, targets: data.targets, classNames: data.classNames)
            .reshaped(to: data.sampleShape)
        XCTAssertEqual(twin.bytesPerFeature, 4)
        XCTAssertEqual(data, twin, "a byte store equals the float store of its values")
        XCTAssertNotEqual(data, try Dataset(features: floats.map { $0 + 1 }, featureCount: 4, targets: data.targets,
                                            classNames: data.classNames).reshaped(to: data.sampleShape))

        var batch = [Float](repeating: .nan, count: 12), labels = [Int32](repeating: -1, count: 3)
        data.gatherBatch(indices: [2, 0, 2][...], features: &batch, labels: &labels)
        XCTAssertEqual(batch, Array(floats[8..<12]) + Array(floats[0..<4]) + Array(floats[8..<12]))
        XCTAssertEqual(labels, [1, 2, 1])

        let sub = try data.subset([1, 2])
        XCTAssertEqual(sub.bytesPerFeature, 1)
        XCTAssertEqual(sub.features, Array(floats[4..<12]))
        XCTAssertEqual(sub.sampleShape, data.sampleShape)
        let (train, test) = try data.split(testFraction: 1.0 / 3.0, seed: 5)
        XCTAssertEqual(train.bytesPerFeature + test.bytesPerFeature, 2)
        XCTAssertEqual(Set(train.features + test.features), Set(floats))
        XCTAssertEqual(data.oneHotEncoded().bytesPerFeature, 1)

        assertNNError(NNError.invalidData, mentions: ["finite"]) {
            _ = try Dataset.idx(images: dir + "/train-images-idx3-ubyte", labels: dir + "/train-labels-idx1-ubyte", scale: 1e37)
        }

        var scaled = data
        try Standardizer(fitting: data).transform(&scaled)
        XCTAssertEqual(scaled.bytesPerFeature, 4, "a transform writes floats")
        XCTAssertNotEqual(scaled.features, data.features)
    }

    func testConcatenatedGzipMembersAndPlainFilesAreRead() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try DataTestSupport.python("""
        import gzip, sys
        d = sys.argv[1]
        open(d + '/two.gz', 'wb').write(gzip.compress(b'hello, ') + gzip.compress(b'world' * 100000))
        open(d + '/plain', 'wb').write(b'not gzipped')
        """, [dir])
        let two = try FileIO.readAllDecompressing(dir + "/two.gz")
        XCTAssertEqual(two.count, 7 + 500_000)
        XCTAssertEqual(String(decoding: two.prefix(12), as: UTF8.self), "hello, world")
        XCTAssertEqual(String(decoding: try FileIO.readAllDecompressing(dir + "/plain"), as: UTF8.self), "not gzipped")
    }

    func testBrokenIDXFilesThrow() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        try writeSmallIDX(in: dir)
        let images = try DataTestSupport.read(dir + "/train-images-idx3-ubyte")
        for cut in 0..<images.count {
            assertNNError(NNError.corruptFile) { try IDXArray(bytes: Array(images[..<cut])) }
        }
        assertNNError(NNError.corruptFile, mentions: ["trailing"]) { try IDXArray(bytes: images + [0]) }
        assertNNError(NNError.corruptFile, mentions: ["magic"]) { try IDXArray(bytes: [1, 0, 8, 1, 0, 0, 0, 0]) }
        assertNNError(NNError.corruptFile, mentions: ["element type"]) { try IDXArray(bytes: [0, 0, 7, 1, 0, 0, 0, 0]) }
        // Dimensions whose product overflows are rejected, not trapped on.
        assertNNError(NNError.corruptFile) { try IDXArray(bytes: [0, 0, 8, 3] + [UInt8](repeating: 0xFF, count: 12)) }

        let gz = try DataTestSupport.read(dir + "/t10k-images-idx3-ubyte.gz")
        for cut in [2, 10, gz.count / 2, gz.count - 8, gz.count - 1] {
            try DataTestSupport.write(Array(gz[..<cut]), to: dir + "/cut.gz")
            assertNNError(NNError.corruptFile) { try IDXArray(contentsOf: dir + "/cut.gz") }
        }
        // A flipped byte in the compressed data or in the CRC-32 trailer is caught by zlib.
        for position in [gz.count - 10, gz.count - 6] {
            var garbled = gz
            garbled[position] ^= 0x5A
            try DataTestSupport.write(garbled, to: dir + "/garbled.gz")
            assertNNError(NNError.corruptFile, mentions: ["gzip"]) { try IDXArray(contentsOf: dir + "/garbled.gz") }
        }

        assertNNError(NNError.fileError, mentions: ["nope"]) { try IDXArray(contentsOf: dir + "/nope") }
        assertNNError(NNError.fileError, mentions: ["directory"]) { try IDXArray(contentsOf: dir) }
        assertNNError(NNError.fileError, mentions: ["t10k-images-idx3-ubyte"]) {
            try Dataset.mnistFamily(split: .test, directory: dir + "/missing")
        }
        assertNNError(NNError.shapeMismatch, mentions: ["3 images", "1 labels"]) {
            try DataTestSupport.write([0, 0, 8, 1, 0, 0, 0, 1, 4], to: dir + "/one-label")
            return try Dataset.idx(images: dir + "/train-images-idx3-ubyte", labels: dir + "/one-label")
        }
        assertNNError(NNError.invalidData, mentions: ["class index 2", "row 0"]) {
            try Dataset.idx(images: dir + "/train-images-idx3-ubyte", labels: dir + "/train-labels-idx1-ubyte", classCount: 2)
        }
    }
}

// MARK: - CSV

final class CSVLoaderTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try DataTestSupport.makeTempDirectory() }
    override func tearDown() { DataTestSupport.remove(dir) }

    func csv(_ text: String, name: String = "data.csv") throws -> String {
        let path = dir + "/" + name
        try DataTestSupport.write(text, to: path)
        return path
    }

    func testHeaderQuotedFieldsAndStringLabels() throws {
        let path = try csv("""
        "sepal length",width,"species, common name",petal\r
        5.1, 3.5 ,"setosa",1.4\r
        \r
        7.0,3.2,"versi""color",4.7\r
        6.3,3.3,virginica,"6.0"\r

        """)
        let d = try Dataset.csv(path: path, target: "species, common name")
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(d.featureCount, 3)
        XCTAssertEqual(d.featureNames, ["sepal length", "width", "petal"])
        XCTAssertEqual(d.features, [5.1, 3.5, 1.4, 7.0, 3.2, 4.7, 6.3, 3.3, 6.0])
        XCTAssertEqual(d.classNames, ["setosa", "versi\"color", "virginica"]) // sorted
        XCTAssertEqual(d.targets, .classes([0, 1, 2], classCount: 3))
    }

    func testLabelMappingRules() throws {
        // Non-negative integer labels are the indices themselves.
        let ints = try Dataset.csv(path: csv("a,y\n1,3\n2,0\n"))
        XCTAssertEqual(ints.targets, .classes([3, 0], classCount: 4))
        XCTAssertNil(ints.classNames)
        // Other numbers are mapped in numeric order, not string order.
        let nums = try Dataset.csv(path: csv("a,y\n1,10.5\n2,-1\n3,9\n4,-1\n"))
        XCTAssertEqual(nums.classNames, ["-1", "9", "10.5"])
        XCTAssertEqual(nums.targets, .classes([2, 0, 1, 0], classCount: 3))
        // A test file reuses the training file's mapping.
        let train = try Dataset.csv(path: csv("x,label\n1,cat\n2,dog\n3,bird\n", name: "train.csv"))
        XCTAssertEqual(train.classNames, ["bird", "cat", "dog"])
        let test = try Dataset.csv(path: csv("x,label\n5,dog\n", name: "test.csv"), classNames: train.classNames)
        XCTAssertEqual(test.targets, .classes([2], classCount: 3))
        assertNNError(NNError.invalidData, mentions: ["test.csv:3:2", "'fish'"]) {
            try Dataset.csv(path: csv("x,label\n5,dog\n6,fish\n", name: "test.csv"), classNames: train.classNames)
        }
    }

    func testRegressionTargetByIndexAndNoHeader() throws {
        let path = try csv("0.5;1;-2e3\n1.5;2;4\n")
        let d = try Dataset.csv(path: path, target: 0, kind: .values, delimiter: ";", hasHeader: false)
        XCTAssertEqual(d.targets, .values([0.5, 1.5], width: 1))
        XCTAssertEqual(d.features, [1, -2000, 2, 4])
        XCTAssertNil(d.featureNames)
        let last = try Dataset.csv(path: csv("a,b,y\n1,2,0.25\n3,4,0.75"), kind: .values)
        XCTAssertEqual(last.targets, .values([0.25, 0.75], width: 1))
    }

    func testErrorsNameFileRowAndColumn() throws {
        var p = try csv("a,b,y\n1,2,0\n3,abc,1\n")
        assertNNError(NNError.invalidData, mentions: ["\(p):3:2", "'abc'", "'b'", "not a number"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,,0\n")
        assertNNError(NNError.invalidData, mentions: [":2:2", "empty"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,2,0\n1,2\n")
        assertNNError(NNError.shapeMismatch, mentions: ["\(p):3", "2 fields, expected 3"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,2,0,9\n")
        assertNNError(NNError.shapeMismatch, mentions: [":2", "4 fields"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,nan,0\n")
        assertNNError(NNError.invalidData, mentions: [":2:2", "finite"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,2,x\n", name: "r.csv")
        assertNNError(NNError.invalidData, mentions: ["r.csv:2:3", "'y'"]) { try Dataset.csv(path: p, kind: .values) }
        p = try csv("")
        assertNNError(NNError.invalidData, mentions: [p, "empty"]) { try Dataset.csv(path: p) }
        p = try csv("\n\n")
        assertNNError(NNError.invalidData, mentions: ["empty"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n")
        assertNNError(NNError.invalidData, mentions: ["no data rows"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,\"2,0\n")
        assertNNError(NNError.invalidData, mentions: [":2:2", "never closed"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,\"2\"x,0\n")
        assertNNError(NNError.invalidData, mentions: [":2:2", "after a closing quote"]) { try Dataset.csv(path: p) }
        p = try csv("a,b,y\n1,2,0\n")
        assertNNError(NNError.unknownName, mentions: ["'label'", "a, b, y"]) { try Dataset.csv(path: p, target: "label") }
        assertNNError(NNError.invalidArgument, mentions: ["index 3"]) { try Dataset.csv(path: p, target: 3) }
        assertNNError(NNError.invalidArgument, mentions: ["probabilities"]) { try Dataset.csv(path: p, kind: .probabilities) }
        assertNNError(NNError.fileError, mentions: ["missing.csv"]) { try Dataset.csv(path: dir + "/missing.csv") }
        p = try csv("y\n1\n")
        assertNNError(NNError.invalidData, mentions: ["feature column"]) { try Dataset.csv(path: p) }
    }

    func testQuotedFieldWithLineBreakKeepsLineNumbers() throws {
        let p = try csv("note,v,y\n\"two\nlines\",1,0\n")
        assertNNError(NNError.invalidData, mentions: [":2:1", "'two\nlines'", "'note'"]) { try Dataset.csv(path: p) }
        // Record 1 spans lines 2-3, so the third record is on line 5.
        let q = try csv("v,note,y\n1,\"a\nb\",0\n2,x,1\n3,z,oops\n")
        assertNNError(NNError.invalidData, mentions: [":5:3", "'oops'"]) { try Dataset.csv(path: q, target: "note") }
        let d = try Dataset.csv(path: csv("v,note,y\n1,\"a\nb\",0\n2,x,1\n"), target: "note")
        XCTAssertEqual(d.classNames, ["a\nb", "x"])
        XCTAssertEqual(d.features, [1, 0, 2, 1])
    }
}

// MARK: - NPY

final class NPYLoaderTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = try DataTestSupport.makeTempDirectory()
        let script = """
        import sys, numpy as np
        d = sys.argv[1]
        x = np.arange(12, dtype=np.float64).reshape(3, 4) / 8 - 0.5
        np.save(d + '/f4.npy', x.astype('<f4'))
        np.save(d + '/f8.npy', x)
        np.save(d + '/f4flat.npy', x.astype('<f4').ravel())
        np.save(d + '/u1.npy', (np.arange(3 * 2 * 2) * 20).astype(np.uint8).reshape(3, 2, 2))
        np.save(d + '/i8.npy', np.array([2, 0, 1], dtype='<i8'))
        np.save(d + '/i4.npy', np.array([[1], [1], [0]], dtype='<i4'))
        np.save(d + '/y.npy', np.array([[0.5, 1.0], [-2.0, 3.0], [4.0, 1e-3]], dtype='<f4'))
        np.save(d + '/fortran.npy', np.asfortranarray(x.astype('<f4')))
        np.save(d + '/fortran1d.npy', np.asfortranarray(np.arange(3, dtype='<f4')))
        np.save(d + '/big.npy', x.astype('>f4'))
        np.save(d + '/c8.npy', x.astype(np.complex64))
        np.save(d + '/frac.npy', np.array([0.0, 1.5, 2.0], dtype='<f8'))
        np.save(d + '/nan.npy', np.array([[1, 2], [np.nan, 4], [5, 6]], dtype='<f4'))
        for v in [(2, 0), (3, 0)]:
            with open(d + '/v%d.npy' % v[0], 'wb') as f:
                np.lib.format.write_array(f, x.astype('<f4'), version=v)
        """
        try DataTestSupport.python(script, [dir], requires: ["numpy"])
    }

    override func tearDown() { DataTestSupport.remove(dir) }

    let expected: [Float] = (0..<12).map { Float($0) / 8 - 0.5 }

    func testEachDTypeAndVersion() throws {
        for name in ["f4", "f8", "v2", "v3"] {
            let a = try NPYArray(contentsOf: "\(dir)/\(name).npy")
            XCTAssertEqual(a.shape, [3, 4], name)
            XCTAssertEqual(a.floats(), expected, name)
        }
        let u1 = try NPYArray(contentsOf: dir + "/u1.npy")
        XCTAssertEqual(u1.elementType, .uint8)
        XCTAssertEqual(u1.shape, [3, 2, 2])
        XCTAssertEqual(u1.floats(scale: 0.5), (0..<12).map { Float($0 * 10) })
        XCTAssertEqual(try NPYArray(contentsOf: dir + "/i8.npy").integers(), [2, 0, 1])
        XCTAssertEqual(try NPYArray(contentsOf: dir + "/i4.npy").integers(), [1, 1, 0])
        XCTAssertEqual(try NPYArray(contentsOf: dir + "/fortran1d.npy").floats(), [0, 1, 2]) // 1-D: same in both orders
        assertNNError(NNError.invalidData, mentions: ["[1]", "1.5"]) { try NPYArray(contentsOf: dir + "/frac.npy").integers() }
    }

    func testDatasetFromNPYFiles() throws {
        let images = try Dataset.npy(features: dir + "/u1.npy", targets: dir + "/i8.npy", scale: 1.0 / 255)
        XCTAssertEqual(images.featureCount, 4)
        XCTAssertEqual(images.sampleShape.dimensions, [1, 2, 2], "(3, 2, 2) gives one-channel 2x2 images, as IDX")
        XCTAssertEqual(images.targets, .classes([2, 0, 1], classCount: 3))
        XCTAssertEqual(images.features[11], 220.0 / 255, accuracy: 1e-7)
        let withCount = try Dataset.npy(features: dir + "/f4.npy", targets: dir + "/i4.npy", classCount: 5)
        XCTAssertEqual(withCount.targets, .classes([1, 1, 0], classCount: 5))
        let regression = try Dataset.npy(features: dir + "/f8.npy", targets: dir + "/y.npy", kind: .values)
        XCTAssertEqual(regression.targets, .values([0.5, 1, -2, 3, 4, 1e-3], width: 2))
        XCTAssertEqual(regression.features, expected)
        XCTAssertEqual(regression.sampleShape.dimensions, [4], "(3, 4) gives vectors of 4")
        assertNNError(NNError.invalidData, mentions: ["nan.npy", "row 1, column 0"]) {
            try Dataset.npy(features: dir + "/nan.npy", targets: dir + "/i8.npy")
        }
        assertNNError(NNError.shapeMismatch, mentions: ["(3) or (3, 1)"]) {
            try Dataset.npy(features: dir + "/f4.npy", targets: dir + "/y.npy")
        }
        assertNNError(NNError.shapeMismatch, mentions: ["has 3 rows", "[12]"]) {
            try Dataset.npy(features: dir + "/f4.npy", targets: dir + "/f4flat.npy")
        }
    }

    func testUnsupportedLayoutsAreClearErrors() {
        assertNNError(NNError.unsupported, mentions: ["Fortran order", "np.ascontiguousarray"]) {
            try NPYArray(contentsOf: dir + "/fortran.npy")
        }
        assertNNError(NNError.unsupported, mentions: ["big-endian", "'>f4'"]) { try NPYArray(contentsOf: dir + "/big.npy") }
        assertNNError(NNError.unsupported, mentions: ["'<c8'", "<f4"]) { try NPYArray(contentsOf: dir + "/c8.npy") }
        assertNNError(NNError.fileError, mentions: ["absent.npy"]) { try NPYArray(contentsOf: dir + "/absent.npy") }
    }

    func testTruncatedAndGarbledFilesThrowCorruptFile() throws {
        for name in ["f4", "v2", "v3", "i8"] {
            let bytes = try DataTestSupport.read("\(dir)/\(name).npy")
            for cut in 0..<bytes.count {
                assertNNError(NNError.corruptFile) { try NPYArray(bytes: Array(bytes[..<cut]), source: name) }
            }
        }
        let good = try DataTestSupport.read(dir + "/f4.npy")
        assertNNError(NNError.corruptFile, mentions: ["trailing"]) { try NPYArray(bytes: good + [0, 0, 0, 0]) }
        assertNNError(NNError.corruptFile, mentions: ["x93NUMPY"]) { try NPYArray(bytes: [UInt8]("PK\u{3}\u{4}xxxxxxxx".utf8)) }
        // Garble the header text byte by byte: every variant must throw or parse, never crash.
        let headerEnd = 10 + (Int(good[8]) | Int(good[9]) << 8)
        for i in 10..<headerEnd {
            for replacement: UInt8 in [0x00, UInt8(ascii: "("), UInt8(ascii: "'"), UInt8(ascii: "9"), UInt8(ascii: "}")] {
                var b = good
                b[i] = replacement
                _ = try? NPYArray(bytes: b)
            }
        }
        func header(_ dict: String) -> [UInt8] {
            var h = Array(dict.utf8)
            while (10 + h.count + 1) % 64 != 0 { h.append(0x20) }
            h.append(0x0A)
            return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(h.count & 0xFF), UInt8(h.count >> 8)] + h
        }
        assertNNError(NNError.corruptFile, mentions: ["'shape'"]) {
            try NPYArray(bytes: header("{'descr': '<f4', 'fortran_order': False}"))
        }
        assertNNError(NNError.corruptFile, mentions: ["non-negative"]) {
            try NPYArray(bytes: header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"))
        }
        assertNNError(NNError.corruptFile, mentions: ["garbled"]) {
            try NPYArray(bytes: header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"))
        }
        assertNNError(NNError.corruptFile, mentions: ["nested"]) {
            try NPYArray(bytes: header(String(repeating: "(", count: 5000)))
        }
        assertNNError(NNError.unsupported, mentions: ["version 4.0"]) {
            var b = good
            b[6] = 4
            return try NPYArray(bytes: b)
        }
    }
}
