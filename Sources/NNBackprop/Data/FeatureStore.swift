import CKernels

/// Where a data set's features live. Floats, or, for 8-bit sources (IDX images), the bytes
/// themselves with the scale that turns each into its float (`Float(byte) * scale`, the value
/// the float store would hold, bit for bit): a quarter of the memory, converted a batch at a
/// time by the training loop's gather.
enum FeatureStore: Sendable {
    case floats([Float])
    /// `count` values from `bytes[offset...]` (an IDX file's bytes after its header, kept
    /// without a copy).
    case bytes([UInt8], offset: Int, count: Int, scale: Float)

    /// Values stored.
    var count: Int {
        switch self {
        case .floats(let v): return v.count
        case .bytes(_, _, let count, _): return count
        }
    }

    /// Bytes per value: 4 for floats, 1 for bytes.
    var bytesPerValue: Int {
        if case .bytes = self { return 1 }
        return 4
    }

    /// Every value as a float.
    var floats: [Float] {
        switch self {
        case .floats(let v): return v
        case .bytes: return values(rows: 0..<1, width: count)
        }
    }

    /// Rows `rows` of width `width` (a contiguous range) as floats.
    func values(rows: Range<Int>, width: Int) -> [Float] {
        let n = rows.count * width
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            copyRows(rows.lowerBound, rows.count, width: width, into: out.baseAddress!)
            initialized = n
        }
    }

    /// Copies rows [first, first + n) of width `width` as floats to `out`.
    func copyRows(_ first: Int, _ n: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        guard n > 0 else { return }
        switch self {
        case .floats(let v):
            v.withUnsafeBufferPointer { out.update(from: $0.baseAddress! + first * width, count: n * width) }
        case .bytes(let b, let offset, _, let scale):
            b.withUnsafeBufferPointer { nnk_u8_to_float(out, $0.baseAddress! + offset + first * width, n * width, scale) }
        }
    }

    /// The rows at `indices` (trusted), in that order, in the same kind of store.
    func gathered<C: Collection<Int>>(_ indices: C, width: Int) -> FeatureStore {
        let total = indices.count * width
        switch self {
        case .floats(let v):
            return .floats([Float](unsafeUninitializedCapacity: total) { out, initialized in
                v.withUnsafeBufferPointer { src in
                    var row = 0
                    for i in indices {
                        (out.baseAddress! + row * width).initialize(from: src.baseAddress! + i * width, count: width)
                        row += 1
                    }
                }
                initialized = total
            })
        case .bytes(let b, let offset, _, let scale):
            let rows = [UInt8](unsafeUninitializedCapacity: total) { out, initialized in
                b.withUnsafeBufferPointer { src in
                    var row = 0
                    for i in indices {
                        (out.baseAddress! + row * width).initialize(from: src.baseAddress! + offset + i * width, count: width)
                        row += 1
                    }
                }
                initialized = total
            }
            return .bytes(rows, offset: 0, count: total, scale: scale)
        }
    }
}

extension FeatureStore: Equatable {
    /// Equal when every value is: a byte store equals the float store of its values.
    static func == (a: FeatureStore, b: FeatureStore) -> Bool {
        switch (a, b) {
        case (.floats(let x), .floats(let y)): return x == y
        case (.bytes(let x, let ox, let nx, let sx), .bytes(let y, let oy, let ny, let sy)) where sx == sy:
            return nx == ny && x[ox..<(ox + nx)] == y[oy..<(oy + ny)]
        default: return a.count == b.count && a.floats == b.floats
        }
    }
}
