/// A supervised data set: a feature matrix and one target per row.
///
/// Features are a flat row-major `[Float]` of shape (count, featureCount), kept as bytes with
/// a scale when they come from an 8-bit source (IDX images: a quarter of the memory; see
/// `bytesPerFeature`), converted a batch at a time by the training loop. Targets are class
/// indices, probability rows (one-hot or soft), or real values; see `Targets`. A `Dataset` is
/// always valid: its initializer rejects empty data, mismatched sizes, NaN or infinite values
/// and class indices out of range, so code that receives one need not check again.
public struct Dataset: Sendable, Equatable {
    /// The most classes a data set may have: 65,536. A class count sizes the output layer, so
    /// a label read from a file (say 2147483646 in one CSV cell) must not be able to ask for a
    /// many-GiB weight matrix; loaders that infer the count as the largest label + 1 refuse
    /// labels past this bound.
    public static let maxClassCount = 1 << 16

    /// The targets of a data set, one per row.
    public enum Targets: Sendable, Equatable {
        /// Class indices in 0..<classCount, shape (count).
        case classes([Int32], classCount: Int)
        /// Probability rows in [0, 1] (one-hot or soft labels), flat row-major (count, width).
        case probabilities([Float], width: Int)
        /// Real-valued targets for regression, flat row-major (count, width).
        case values([Float], width: Int)

        /// The width of a network output that matches these targets: the class count for
        /// `.classes`, the row width otherwise.
        public var width: Int {
            switch self {
            case .classes(_, let classCount): return classCount
            case .probabilities(_, let width), .values(_, let width): return width
            }
        }

        /// The number of rows these targets describe (0 when a width is not positive).
        public var rowCount: Int {
            switch self {
            case .classes(let labels, _): return labels.count
            case .probabilities(let v, let width), .values(let v, let width): return width > 0 ? v.count / width : 0
            }
        }

        /// The class index of each row: the labels of `.classes`, the arg-max of each row of
        /// `.probabilities` (first maximum on ties), nil for `.values`. Shape (count).
        public var classIndices: [Int32]? {
            switch self {
            case .classes(let labels, _):
                return labels
            case .probabilities(let p, let width):
                guard width > 0 else { return nil }
                return Metrics.argmaxRows(p, width: width)
            case .values:
                return nil
            }
        }
    }

    /// Where the features live (floats, or bytes with a scale).
    var store: FeatureStore

    /// Features, flat row-major (count, featureCount), as floats (made from the bytes of an
    /// 8-bit store on each read; the training loop converts a batch at a time instead).
    public internal(set) var features: [Float] {
        get { store.floats }
        set { store = .floats(newValue) }
    }

    /// Bytes of memory per feature value: 4 (floats), or 1 for 8-bit sources kept as bytes.
    public var bytesPerFeature: Int { store.bytesPerValue }
    /// Columns per row.
    public let featureCount: Int
    /// The shape of one sample (`[featureCount]` unless the source had one, as IDX images'
    /// `[1, 28, 28]`, or `reshaped(to:)` gave one); its element count is `featureCount`.
    public internal(set) var sampleShape: Shape
    /// One target per row.
    public let targets: Targets
    /// Names of the feature columns when the source had them (a CSV header), else nil.
    public internal(set) var featureNames: [String]?
    /// Names of the classes, index i naming class i, when the source had them (string labels
    /// of a CSV file, Fashion-MNIST's class names), else nil.
    public internal(set) var classNames: [String]?

    /// Rows.
    public var count: Int { store.count / featureCount }

    /// A data set from a flat row-major feature matrix (count, featureCount) and its targets.
    ///
    /// Throws `shapeMismatch` when sizes disagree, `invalidData` for empty data, a NaN or
    /// infinite value (naming its row and column), a probability outside [0, 1], or a class
    /// index outside 0..<classCount (naming its row), and `invalidArgument` for a non-positive
    /// width or class count.
    public init(features: [Float], featureCount: Int, targets: Targets,
                featureNames: [String]? = nil, classNames: [String]? = nil) throws(NNError) {
        guard featureCount > 0 else {
            throw .invalidArgument("featureCount must be positive, got \(featureCount)")
        }
        guard features.count % featureCount == 0 else {
            throw .shapeMismatch("features has \(features.count) values, not a multiple of featureCount \(featureCount)")
        }
        let rows = features.count / featureCount
        guard rows > 0 else { throw .invalidData("the data set is empty: features has no rows") }
        try Dataset.validate(targets, rows: rows)
        if let featureNames, featureNames.count != featureCount {
            throw .shapeMismatch("featureNames has \(featureNames.count) names for \(featureCount) features")
        }
        if let classNames, classNames.count != targets.width {
            throw .shapeMismatch("classNames has \(classNames.count) names for \(targets.width) classes")
        }
        if let bad = Dataset.firstNonFinite(features) {
            throw .invalidData("features[row \(bad / featureCount), column \(bad % featureCount)] is \(features[bad]); features must be finite")
        }
        guard featureCount <= Shape.maxElements else {
            throw .invalidArgument("featureCount \(featureCount) is more than 2^31")
        }
        store = .floats(features)
        self.featureCount = featureCount
        sampleShape = Shape.vector(featureCount)
        self.targets = targets
        self.featureNames = featureNames
        self.classNames = classNames
    }

    /// A data set of 8-bit features kept as bytes: value i is `Float(bytes[offset + i]) * scale`
    /// (255 * scale finite), flat row-major (count, featureCount) from `offset` to the end of `bytes`.
    /// Validation as in `init(features:featureCount:targets:)`.
    init(bytes: [UInt8], offset: Int, scale: Float, featureCount: Int, targets: Targets,
         featureNames: [String]? = nil, classNames: [String]? = nil) throws(NNError) {
        precondition(offset >= 0 && offset <= bytes.count)
        // With 255 * scale finite every value is finite, so only sizes and targets need checking.
        guard (255 * scale).isFinite else {
            throw .invalidData("a byte scale of \(scale) makes features that are not finite")
        }
        let n = bytes.count - offset
        guard featureCount > 0 else { throw .invalidArgument("featureCount must be positive, got \(featureCount)") }
        guard n % featureCount == 0 else {
            throw .shapeMismatch("features has \(n) values, not a multiple of featureCount \(featureCount)")
        }
        guard n > 0 else { throw .invalidData("the data set is empty: features has no rows") }
        try Dataset.validate(targets, rows: n / featureCount)
        if let featureNames, featureNames.count != featureCount {
            throw .shapeMismatch("featureNames has \(featureNames.count) names for \(featureCount) features")
        }
        if let classNames, classNames.count != targets.width {
            throw .shapeMismatch("classNames has \(classNames.count) names for \(targets.width) classes")
        }
        guard featureCount <= Shape.maxElements else {
            throw .invalidArgument("featureCount \(featureCount) is more than 2^31")
        }
        self.init(validatedStore: .bytes(bytes, offset: offset, count: n, scale: scale), featureCount: featureCount,
                  targets: targets, featureNames: featureNames, classNames: classNames)
    }

    /// The same rows with each sample seen as `shape` (the same number of floats, in the same
    /// row-major order); throws `shapeMismatch` when its element count is not `featureCount`.
    public func reshaped(to shape: Shape) throws(NNError) -> Dataset {
        guard shape.count == featureCount else {
            throw .shapeMismatch("cannot view samples of \(featureCount) features as shape \(shape) (\(shape.count) elements)")
        }
        var d = self
        d.sampleShape = shape
        return d
    }

    /// A data set from feature rows (arrays already in memory): every row must have the same
    /// length. Validation as in `init(features:featureCount:targets:)`.
    public init(rows: [[Float]], targets: Targets) throws(NNError) {
        guard let first = rows.first else { throw .invalidData("the data set is empty: no rows") }
        let width = first.count
        var flat = [Float]()
        flat.reserveCapacity(rows.count * width)
        for (r, row) in rows.enumerated() {
            guard row.count == width else {
                throw .shapeMismatch("row \(r) has \(row.count) features, expected \(width) as in row 0")
            }
            flat.append(contentsOf: row)
        }
        try self.init(features: flat, featureCount: width, targets: targets)
    }

    /// For code in this module that builds a data set from parts it already validated.
    init(validatedFeatures features: [Float], featureCount: Int, targets: Targets,
         featureNames: [String]?, classNames: [String]?, sampleShape: Shape? = nil) {
        self.init(validatedStore: .floats(features), featureCount: featureCount, targets: targets, featureNames: featureNames,
                  classNames: classNames, sampleShape: sampleShape)
    }

    init(validatedStore store: FeatureStore, featureCount: Int, targets: Targets,
         featureNames: [String]?, classNames: [String]?, sampleShape: Shape? = nil) {
        self.store = store
        self.featureCount = featureCount
        self.sampleShape = sampleShape ?? Shape.vector(featureCount)
        self.targets = targets
        self.featureNames = featureNames
        self.classNames = classNames
    }

    // MARK: - Validation

    /// Index of the first NaN or infinity in `values`, or nil.
    static func firstNonFinite(_ values: [Float]) -> Int? {
        values.withUnsafeBufferPointer { firstNonFinite(in: $0) }
    }

    /// Index of the first NaN or infinity in `floats`, or nil (vectorised: for input checks
    /// on every call, as the C API's).
    public static func firstNonFinite(in floats: UnsafeBufferPointer<Float>) -> Int? {
        // Checked on the bits, in blocks: an exponent field of all ones (NaN or infinity)
        // sets bit 31 of (exponent + one exponent step). The OR-reduction vectorises; only
        // a block that fails is searched element by element.
        floats.withMemoryRebound(to: UInt32.self) { bits -> Int? in
            let n = bits.count
            let block = 4096
            var start = 0
            while start < n {
                let end = min(start + block, n)
                var acc: UInt32 = 0
                for i in start..<end { acc |= ((bits[i] & 0x7F80_0000) &+ 0x0080_0000) & 0x8000_0000 }
                if acc != 0 {
                    for i in start..<end where !floats[i].isFinite { return i }
                }
                start = end
            }
            return nil
        }
    }

    public static func validate(_ targets: Targets, rows: Int) throws(NNError) {
        switch targets {
        case .classes(let labels, let classCount):
            guard classCount > 0 else { throw .invalidArgument("classCount must be positive, got \(classCount)") }
            guard classCount <= Dataset.maxClassCount else {
                throw .invalidData("\(classCount) classes is more than the \(Dataset.maxClassCount) a data set may have (Dataset.maxClassCount); class labels are indices counted from 0")
            }
            guard labels.count == rows else {
                throw .shapeMismatch("\(labels.count) class labels for \(rows) feature rows")
            }
            for (r, label) in labels.enumerated() where label < 0 || Int(label) >= classCount {
                throw .invalidData("class index \(label) at row \(r) is outside 0..<\(classCount)")
            }
        case .probabilities(let p, let width):
            guard width > 0 else { throw .invalidArgument("probability width must be positive, got \(width)") }
            guard p.count == rows * width else {
                throw .shapeMismatch("probability targets have \(p.count) values, expected \(rows) rows x \(width) = \(rows * width)")
            }
            for (i, v) in p.enumerated() where !(v >= 0 && v <= 1) {
                throw .invalidData("targets[row \(i / width), column \(i % width)] is \(v); probabilities must be in [0, 1]")
            }
        case .values(let v, let width):
            guard width > 0 else { throw .invalidArgument("target width must be positive, got \(width)") }
            guard v.count == rows * width else {
                throw .shapeMismatch("regression targets have \(v.count) values, expected \(rows) rows x \(width) = \(rows * width)")
            }
            if let bad = firstNonFinite(v) {
                throw .invalidData("targets[row \(bad / width), column \(bad % width)] is \(v[bad]); targets must be finite")
            }
        }
    }

    // MARK: - Rows

    /// The rows at `indices`, in that order (repeats allowed). Throws `invalidArgument` for
    /// an empty selection or an index outside 0..<count.
    public func subset<C: Collection<Int>>(_ indices: C) throws(NNError) -> Dataset {
        guard !indices.isEmpty else { throw .invalidArgument("subset: no indices given; a data set cannot be empty") }
        for i in indices where i < 0 || i >= count {
            throw .invalidArgument("subset: row index \(i) is outside 0..<\(count)")
        }
        return uncheckedSubset(indices)
    }

    func uncheckedSubset<C: Collection<Int>>(_ indices: C) -> Dataset {
        let t: Targets
        switch targets {
        case .classes(let labels, let classCount):
            t = .classes(indices.map { labels[$0] }, classCount: classCount)
        case .probabilities(let p, let width):
            t = .probabilities(Dataset.gatherRows(p, width: width, indices), width: width)
        case .values(let v, let width):
            t = .values(Dataset.gatherRows(v, width: width, indices), width: width)
        }
        return Dataset(validatedStore: store.gathered(indices, width: featureCount),
                       featureCount: featureCount, targets: t, featureNames: featureNames, classNames: classNames,
                       sampleShape: sampleShape)
    }

    /// Rows `indices` of a row-major (n, width) matrix, copied row by row. Indices are trusted.
    private static func gatherRows<C: Collection<Int>>(_ values: [Float], width: Int, _ indices: C) -> [Float] {
        let total = indices.count * width
        return [Float](unsafeUninitializedCapacity: total) { out, initialized in
            values.withUnsafeBufferPointer { src in
                guard let from = src.baseAddress, let to = out.baseAddress else { return }
                var row = 0
                for i in indices {
                    (to + row * width).initialize(from: from + i * width, count: width)
                    row += 1
                }
            }
            initialized = total
        }
    }

    /// Copies the rows at `indices` into caller-owned buffers, allocating nothing: the training
    /// loop's mini-batch gather.
    ///
    /// - `features` receives (indices.count, featureCount) floats, row-major.
    /// - `labels`, when not nil, receives (indices.count) class indices; the targets must be
    ///   `.classes` (or `.probabilities`, whose rows then give their arg-max).
    /// - `targets`, when not nil, receives (indices.count, targets.width) floats: the rows of
    ///   `.probabilities` or `.values`, or one-hot rows for `.classes`.
    ///
    /// Indices come from the library's own shuffles, so an index outside 0..<count, or labels
    /// requested for `.values`, is a programmer error and traps.
    public func gatherBatch(indices: ArraySlice<Int>, features out: UnsafeMutablePointer<Float>,
                            labels: UnsafeMutablePointer<Int32>? = nil,
                            targets targetOut: UnsafeMutablePointer<Float>? = nil) {
        let f = featureCount
        let n = count
        var row = 0
        for i in indices {
            precondition(i >= 0 && i < n, "gatherBatch: row index \(i) is outside 0..<\(n)")
            store.copyRows(i, 1, width: f, into: out + row * f)
            row += 1
        }
        switch targets {
        case .classes(let classes, let classCount):
            classes.withUnsafeBufferPointer { src in
                var row = 0
                for i in indices {
                    labels?[row] = src[i]
                    if let targetOut {
                        let dst = targetOut + row * classCount
                        dst.update(repeating: 0, count: classCount)
                        dst[Int(src[i])] = 1
                    }
                    row += 1
                }
            }
        case .probabilities(let p, let width), .values(let p, let width):
            if case .values = targets {
                precondition(labels == nil, "gatherBatch: labels requested for regression targets")
            }
            p.withUnsafeBufferPointer { src in
                guard let base = src.baseAddress else { return }
                var row = 0
                for i in indices {
                    if let targetOut { (targetOut + row * width).update(from: base + i * width, count: width) }
                    if let labels {
                        var best = 0
                        for j in 1..<max(width, 1) where base[i * width + j] > base[i * width + best] { best = j }
                        labels[row] = Int32(best)
                    }
                    row += 1
                }
            }
        }
    }

    // MARK: - Conversions

    /// One-hot rows (count, classCount) for class indices: row r has 1 at labels[r], else 0.
    /// Throws `invalidData` for an index outside 0..<classCount, naming its row.
    public static func oneHot(_ labels: [Int32], classCount: Int) throws(NNError) -> [Float] {
        guard classCount > 0 else { throw .invalidArgument("classCount must be positive, got \(classCount)") }
        var out = [Float](repeating: 0, count: labels.count * classCount)
        for (r, label) in labels.enumerated() {
            guard label >= 0 && Int(label) < classCount else {
                throw .invalidData("class index \(label) at row \(r) is outside 0..<\(classCount)")
            }
            out[r * classCount + Int(label)] = 1
        }
        return out
    }

    /// This data set with `.classes` targets turned into one-hot `.probabilities` of width
    /// classCount; other targets are returned unchanged.
    public func oneHotEncoded() -> Dataset {
        guard case .classes(let labels, let classCount) = targets else { return self }
        var p = [Float](repeating: 0, count: labels.count * classCount)
        for (r, label) in labels.enumerated() { p[r * classCount + Int(label)] = 1 }
        return Dataset(validatedStore: store, featureCount: featureCount,
                       targets: .probabilities(p, width: classCount),
                       featureNames: featureNames, classNames: classNames, sampleShape: sampleShape)
    }

    // MARK: - Splitting

    /// A seeded random split into training and test rows.
    ///
    /// The test part has round(count * testFraction) rows, drawn by a Fisher–Yates permutation
    /// from `SeededGenerator(seed:)`: the same seed gives the same split everywhere. Both parts
    /// keep the permuted order. Throws `invalidArgument` when testFraction is not strictly
    /// between 0 and 1 or when either part would be empty.
    public func split(testFraction: Double, seed: UInt64) throws(NNError) -> (train: Dataset, test: Dataset) {
        guard testFraction > 0 && testFraction < 1 else {
            throw .invalidArgument("testFraction must be strictly between 0 and 1, got \(testFraction)")
        }
        let testCount = Int((Double(count) * testFraction).rounded())
        guard testCount >= 1 && testCount < count else {
            throw .invalidArgument("split of \(count) rows with testFraction \(testFraction) leaves \(testCount) test and \(count - testCount) training rows; both must be non-empty")
        }
        var rng = SeededGenerator(seed: seed)
        let order = rng.permutation(count)
        return (uncheckedSubset(order[testCount...]), uncheckedSubset(order[..<testCount]))
    }
}
