/// A per-feature transform fitted on training data, applied to every later input (validation,
/// test, prediction) and saved with the model.
///
/// A scaler's state is a few named float vectors (`tensors`) plus its `kind`, so a model file
/// can store it as safetensors tensors and restore it with `Preprocessing.scaler(kind:tensors:)`.
/// Conformers map each column by a strictly increasing function (the checks below rely on it).
public protocol FeatureScaler: Sendable {
    /// The name stored in a model file ("standardize", "minmax").
    static var kind: String { get }
    /// Columns this scaler was fitted on.
    var featureCount: Int { get }
    /// The state to save: tensor name to values.
    var tensors: [String: [Float]] { get }
    /// Restores a scaler from `tensors` as saved; throws when tensors are missing or wrong.
    init(tensors: [String: [Float]]) throws(NNError)
    /// Scales rows in place: `rows` holds (n, featureCount) floats, row-major. No checks.
    func transformRows(_ rows: UnsafeMutableBufferPointer<Float>)
    /// Undoes `transformRows` in place (up to rounding).
    func inverseTransformRows(_ rows: UnsafeMutableBufferPointer<Float>)
}

extension FeatureScaler {
    /// The name stored in a model file.
    public var kind: String { Self.kind }

    /// Scales `features`, flat row-major (n, featureCount), in place.
    ///
    /// Throws `shapeMismatch` when the count is not a multiple of featureCount and
    /// `invalidData` for a NaN or infinite input, or an input so far outside the fitted range
    /// that its result overflows; `features` is then left unchanged.
    public func transform(_ features: inout [Float]) throws(NNError) {
        try checkShape(features.count)
        try checkFinite(features, inverse: false)
        features.withUnsafeMutableBufferPointer { transformRows($0) }
    }

    /// Undoes `transform` on `features`, flat row-major (n, featureCount), in place (e.g. to
    /// turn scaled regression outputs back into the original units). Throws as `transform`.
    public func inverseTransform(_ features: inout [Float]) throws(NNError) {
        try checkShape(features.count)
        try checkFinite(features, inverse: true)
        features.withUnsafeMutableBufferPointer { inverseTransformRows($0) }
    }

    /// Scales the features of `dataset` in place; its targets are untouched. Throws
    /// `shapeMismatch` when the dataset's featureCount differs from the fitted one, or
    /// `invalidData` as `transform(_:)`; the dataset is then left unchanged.
    public func transform(_ dataset: inout Dataset) throws(NNError) {
        guard dataset.featureCount == featureCount else {
            throw .shapeMismatch("\(Self.kind) scaler was fitted on \(featureCount) features, the data set has \(dataset.featureCount)")
        }
        try transform(&dataset.features)
    }

    private func checkShape(_ count: Int) throws(NNError) {
        guard count % featureCount == 0 else {
            throw .shapeMismatch("\(Self.kind) scaler: \(count) values is not a whole number of rows of \(featureCount) features")
        }
    }

    /// One read-only pass for each column's minimum and maximum; as the map is increasing per
    /// column, the results are all finite exactly when those two map to finite values.
    private func checkFinite(_ features: [Float], inverse: Bool) throws(NNError) {
        let f = featureCount
        let rows = features.count / f
        guard rows > 0 else { return }
        if let bad = Dataset.firstNonFinite(features) {
            throw .invalidData("features[row \(bad / f), column \(bad % f)] is \(features[bad]); features must be finite")
        }
        var extremes = [Float](features[0..<f]) + [Float](features[0..<f]) // (2, f): min row, max row
        features.withUnsafeBufferPointer { x in
            extremes.withUnsafeMutableBufferPointer { e in
                for r in 1..<rows {
                    for j in 0..<f {
                        let v = x[r * f + j]
                        e[j] = Swift.min(e[j], v)
                        e[f + j] = Swift.max(e[f + j], v)
                    }
                }
            }
        }
        let original = extremes
        extremes.withUnsafeMutableBufferPointer { inverse ? inverseTransformRows($0) : transformRows($0) }
        if let bad = Dataset.firstNonFinite(extremes) {
            let j = bad % f
            let v = original[bad]
            var row = 0
            for r in 0..<rows where features[r * f + j] == v { row = r; break }
            throw .invalidData("features[row \(row), column \(j)] = \(v) overflows to \(extremes[bad]) when scaled by the \(Self.kind) scaler")
        }
    }
}

/// Standardization: each feature becomes (x - mean) / std, with the mean and the population
/// standard deviation (ddof 0, as scikit-learn's StandardScaler) of the training data.
/// A constant feature (std 0) is divided by 1 instead.
public struct Standardizer: FeatureScaler, Equatable {
    public static let kind = "standardize"
    /// Per-feature means, shape (featureCount).
    public let mean: [Float]
    /// Per-feature divisors, shape (featureCount): the standard deviation, or 1 where it is 0.
    public let std: [Float]

    public var featureCount: Int { mean.count }

    /// Fits on the features of `dataset`.
    public init(fitting dataset: Dataset) {
        (mean, std) = Standardizer.fit(dataset.features, featureCount: dataset.featureCount)
    }

    /// Fits on `features`, flat row-major (n, featureCount). Throws for empty, ragged or
    /// non-finite input.
    public init(fitting features: [Float], featureCount: Int) throws(NNError) {
        try Preprocessing.checkFitInput(features, featureCount: featureCount, kind: Self.kind)
        (mean, std) = Standardizer.fit(features, featureCount: featureCount)
    }

    /// A standardizer with the given statistics (shape (featureCount) each; std > 0, finite).
    public init(mean: [Float], std: [Float]) throws(NNError) {
        guard !mean.isEmpty, mean.count == std.count else {
            throw .shapeMismatch("standardize: mean has \(mean.count) values and std \(std.count); they must be equal and non-zero")
        }
        if let j = mean.firstIndex(where: { !$0.isFinite }) {
            throw .invalidData("standardize: mean[\(j)] is \(mean[j]); it must be finite")
        }
        if let j = std.firstIndex(where: { !($0.isFinite && $0 > 0) }) {
            throw .invalidData("standardize: std[\(j)] is \(std[j]); it must be finite and positive")
        }
        self.mean = mean
        self.std = std
    }

    /// Restores from tensors "mean" and "std".
    public init(tensors: [String: [Float]]) throws(NNError) {
        try self.init(mean: Preprocessing.tensor("mean", in: tensors, kind: Self.kind),
                      std: Preprocessing.tensor("std", in: tensors, kind: Self.kind))
    }

    public var tensors: [String: [Float]] { ["mean": mean, "std": std] }

    private static func fit(_ x: [Float], featureCount f: Int) -> (mean: [Float], std: [Float]) {
        let rows = x.count / f
        var sum = [Double](repeating: 0, count: f)
        var squares = [Double](repeating: 0, count: f)
        x.withUnsafeBufferPointer { p in
            for r in 0..<rows { for j in 0..<f { sum[j] += Double(p[r * f + j]) } }
            for j in 0..<f { sum[j] /= Double(rows) } // now the mean
            for r in 0..<rows {
                for j in 0..<f {
                    let d = Double(p[r * f + j]) - sum[j]
                    squares[j] += d * d
                }
            }
        }
        let mean = sum.map { Float($0) }
        let std = squares.map { s -> Float in
            let v = Float((s / Double(rows)).squareRoot())
            return v > 0 && v.isFinite ? v : 1
        }
        return (mean, std)
    }

    public func transformRows(_ rows: UnsafeMutableBufferPointer<Float>) {
        Preprocessing.mapColumns(rows, mean, std) { x, m, s in (x - m) / s }
    }

    public func inverseTransformRows(_ rows: UnsafeMutableBufferPointer<Float>) {
        Preprocessing.mapColumns(rows, mean, std) { y, m, s in y * s + m }
    }
}

/// Min-max scaling: each feature is mapped linearly from its training [min, max] onto `range`
/// (default [0, 1]), as scikit-learn's MinMaxScaler. A constant feature (max == min) is
/// shifted to range.lowerBound. Values outside the training range map outside `range`.
public struct MinMaxScaler: FeatureScaler, Equatable {
    public static let kind = "minmax"
    /// Per-feature minimum of the training data, shape (featureCount).
    public let dataMin: [Float]
    /// Per-feature maximum of the training data, shape (featureCount).
    public let dataMax: [Float]
    /// The target interval.
    public let range: ClosedRange<Float>

    public var featureCount: Int { dataMin.count }

    /// Fits on the features of `dataset`; throws `invalidArgument` for an empty or non-finite
    /// `range`.
    public init(fitting dataset: Dataset, range: ClosedRange<Float> = 0...1) throws(NNError) {
        try self.init(fitting: dataset.features, featureCount: dataset.featureCount, range: range)
    }

    /// Fits on `features`, flat row-major (n, featureCount). Throws for empty, ragged or
    /// non-finite input, or an empty `range`.
    public init(fitting features: [Float], featureCount: Int, range: ClosedRange<Float> = 0...1) throws(NNError) {
        try Preprocessing.checkFitInput(features, featureCount: featureCount, kind: Self.kind)
        let f = featureCount
        var lo = [Float](features[0..<f])
        var hi = lo
        features.withUnsafeBufferPointer { x in
            lo.withUnsafeMutableBufferPointer { lo in
                hi.withUnsafeMutableBufferPointer { hi in
                    for r in 1..<(x.count / f) {
                        for j in 0..<f {
                            lo[j] = Swift.min(lo[j], x[r * f + j])
                            hi[j] = Swift.max(hi[j], x[r * f + j])
                        }
                    }
                }
            }
        }
        try self.init(dataMin: lo, dataMax: hi, range: range)
    }

    /// A scaler with the given training extremes (shape (featureCount) each, min <= max).
    public init(dataMin: [Float], dataMax: [Float], range: ClosedRange<Float> = 0...1) throws(NNError) {
        guard range.lowerBound < range.upperBound, range.lowerBound.isFinite, range.upperBound.isFinite else {
            throw .invalidArgument("minmax: range \(range) must be finite with lower bound < upper bound")
        }
        guard !dataMin.isEmpty, dataMin.count == dataMax.count else {
            throw .shapeMismatch("minmax: dataMin has \(dataMin.count) values and dataMax \(dataMax.count); they must be equal and non-zero")
        }
        for j in 0..<dataMin.count where !(dataMin[j].isFinite && dataMax[j].isFinite && dataMin[j] <= dataMax[j]) {
            throw .invalidData("minmax: feature \(j) has min \(dataMin[j]) and max \(dataMax[j]); they must be finite with min <= max")
        }
        self.dataMin = dataMin
        self.dataMax = dataMax
        self.range = range
    }

    /// Restores from tensors "data_min", "data_max" and "feature_range" ([lower, upper]).
    public init(tensors: [String: [Float]]) throws(NNError) {
        let r = try Preprocessing.tensor("feature_range", in: tensors, kind: Self.kind)
        guard r.count == 2, r[0] <= r[1] else {
            throw .invalidData("minmax: tensor 'feature_range' must hold [lower, upper] with lower <= upper, got \(r)")
        }
        try self.init(dataMin: Preprocessing.tensor("data_min", in: tensors, kind: Self.kind),
                      dataMax: Preprocessing.tensor("data_max", in: tensors, kind: Self.kind),
                      range: r[0]...r[1])
    }

    public var tensors: [String: [Float]] {
        ["data_min": dataMin, "data_max": dataMax, "feature_range": [range.lowerBound, range.upperBound]]
    }

    /// Per-feature max - min, or 1 for a constant feature.
    private var spans: [Float] {
        zip(dataMin, dataMax).map { lo, hi in hi - lo > 0 ? hi - lo : 1 }
    }

    public func transformRows(_ rows: UnsafeMutableBufferPointer<Float>) {
        let width = range.upperBound - range.lowerBound, lower = range.lowerBound
        Preprocessing.mapColumns(rows, dataMin, spans) { x, m, s in (x - m) / s * width + lower }
    }

    public func inverseTransformRows(_ rows: UnsafeMutableBufferPointer<Float>) {
        let width = range.upperBound - range.lowerBound, lower = range.lowerBound
        Preprocessing.mapColumns(rows, dataMin, spans) { y, m, s in (y - lower) / width * s + m }
    }
}

/// Restoring saved scalers, and checks shared by the scalers.
public enum Preprocessing {
    /// The scaler kinds a model file may name.
    public static let scalerTypes: [any FeatureScaler.Type] = [Standardizer.self, MinMaxScaler.self]

    /// The scaler of the given `kind` restored from its saved `tensors`. Throws `unknownName`
    /// for a kind not in `scalerTypes`, and the scaler's own errors for bad tensors.
    public static func scaler(kind: String, tensors: [String: [Float]]) throws(NNError) -> any FeatureScaler {
        guard let type = scalerTypes.first(where: { $0.kind == kind }) else {
            throw .unknownName("unknown preprocessing kind '\(kind)'; known kinds: \(scalerTypes.map { $0.kind }.joined(separator: ", "))")
        }
        return try type.init(tensors: tensors)
    }

    /// rows[r, j] = op(rows[r, j], p[j], q[j]) over rows (n, p.count), row-major: the loop of
    /// every per-column scaler.
    @inline(__always)
    static func mapColumns(_ rows: UnsafeMutableBufferPointer<Float>, _ p: [Float], _ q: [Float],
                           _ op: (Float, Float, Float) -> Float) {
        let f = p.count
        p.withUnsafeBufferPointer { p in
            q.withUnsafeBufferPointer { q in
                for r in 0..<(rows.count / f) {
                    for j in 0..<f { rows[r * f + j] = op(rows[r * f + j], p[j], q[j]) }
                }
            }
        }
    }

    static func tensor(_ name: String, in tensors: [String: [Float]], kind: String) throws(NNError) -> [Float] {
        guard let t = tensors[name] else {
            throw .invalidData("\(kind) scaler state has no tensor '\(name)' (it has: \(tensors.keys.sorted().joined(separator: ", ")))")
        }
        return t
    }

    static func checkFitInput(_ features: [Float], featureCount: Int, kind: String) throws(NNError) {
        guard featureCount > 0 else { throw .invalidArgument("\(kind): featureCount must be positive, got \(featureCount)") }
        guard !features.isEmpty else { throw .invalidData("\(kind): cannot fit on empty data") }
        guard features.count % featureCount == 0 else {
            throw .shapeMismatch("\(kind): \(features.count) values is not a whole number of rows of \(featureCount) features")
        }
        if let bad = Dataset.firstNonFinite(features) {
            throw .invalidData("\(kind): features[row \(bad / featureCount), column \(bad % featureCount)] is \(features[bad]); features must be finite")
        }
    }
}
