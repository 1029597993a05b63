/// A set of named tensors in the safetensors format, read and written whole.
///
/// File layout: an unsigned 64-bit little-endian header length N; N bytes of JSON,
/// `{"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [2, 3],
/// "data_offsets": [begin, end]}, ...}`, padded with spaces so the data starts 8-byte aligned;
/// then the tensors' raw little-endian bytes, offsets relative to the end of the header,
/// contiguous and without overlap. PyTorch (`safetensors.torch.load_file`), NumPy and the Rust
/// reference read what `write(to:)` writes, and this type reads what they write.
///
/// Tensors keep their insertion order (the header lists them in that order); the data section
/// is laid out by decreasing element size, then insertion order, so every tensor is aligned to
/// its element size, as the reference implementation does.
public struct SafeTensors: Sendable, Equatable {
    /// An element type, named as in the safetensors header.
    public enum DType: String, Sendable, CaseIterable {
        case bool = "BOOL", uint8 = "U8", int8 = "I8", float8E4M3 = "F8_E4M3", float8E5M2 = "F8_E5M2"
        case int16 = "I16", uint16 = "U16", float16 = "F16", bfloat16 = "BF16"
        case int32 = "I32", uint32 = "U32", float32 = "F32"
        case int64 = "I64", uint64 = "U64", float64 = "F64"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .bool, .uint8, .int8, .float8E4M3, .float8E5M2: return 1
            case .int16, .uint16, .float16, .bfloat16: return 2
            case .int32, .uint32, .float32: return 4
            case .int64, .uint64, .float64: return 8
            }
        }
    }

    /// One tensor: element type, shape and raw little-endian bytes, always consistent.
    public struct Tensor: Sendable, Equatable {
        /// The element type.
        public let dtype: DType
        /// The dimensions, outermost first; [] for a scalar.
        public let shape: [Int]
        /// The elements' bytes, little-endian, row-major: count * dtype.size bytes.
        public let bytes: [UInt8]

        /// Elements: the product of `shape` (1 for a scalar).
        public var count: Int { shape.reduce(1, *) }

        /// A tensor from raw little-endian bytes. Throws `shapeMismatch` when the byte count is
        /// not count(shape) * dtype.size, `invalidArgument` for a negative dimension.
        public init(dtype: DType, shape: [Int], bytes: [UInt8]) throws(NNError) {
            let n = try SafeTensors.elementCount(shape, what: "tensor shape")
            guard n.multipliedReportingOverflow(by: dtype.size) == (bytes.count, false) else {
                throw .shapeMismatch("a \(dtype.rawValue) tensor of shape \(shape) takes \(n) x \(dtype.size) bytes, got \(bytes.count)")
            }
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        /// An F32 tensor of the given shape; values.count must equal its element count.
        public init(_ values: [Float], shape: [Int]) throws(NNError) {
            try self.init(dtype: .float32, shape: shape, values: values, name: "float") { $0.bitPattern }
        }

        /// An F64 tensor of the given shape; values.count must equal its element count.
        /// (Labelled, so that an unannotated float literal array makes an F32 tensor.)
        public init(float64 values: [Double], shape: [Int]) throws(NNError) {
            try self.init(dtype: .float64, shape: shape, values: values, name: "double") { $0.bitPattern }
        }

        /// An I64 tensor of the given shape; values.count must equal its element count.
        public init(_ values: [Int64], shape: [Int]) throws(NNError) {
            try self.init(dtype: .int64, shape: shape, values: values, name: "Int64") { $0 }
        }

        /// An I32 tensor of the given shape; values.count must equal its element count.
        public init(_ values: [Int32], shape: [Int]) throws(NNError) {
            try self.init(dtype: .int32, shape: shape, values: values, name: "Int32") { $0 }
        }

        private init<T, B: FixedWidthInteger>(dtype: DType, shape: [Int], values: [T], name: String,
                                              bits: (T) -> B) throws(NNError) {
            let n = try SafeTensors.elementCount(shape, what: "tensor shape")
            guard n == values.count else {
                throw .shapeMismatch("shape \(shape) holds \(n) elements, got \(values.count) \(name) values")
            }
            let size = MemoryLayout<B>.size
            let bytes = [UInt8](unsafeUninitializedCapacity: n * size) { out, initialized in
                let raw = UnsafeMutableRawBufferPointer(out)
                for (i, v) in values.enumerated() { raw.storeBytes(of: bits(v).littleEndian, toByteOffset: i * size, as: B.self) }
                initialized = n * size
            }
            try self.init(dtype: dtype, shape: shape, bytes: bytes)
        }

        /// The elements as floats: F32 exactly; F64, F16 and BF16 converted. Throws
        /// `unsupported` for other dtypes.
        public func floats() throws(NNError) -> [Float] {
            let n = count
            switch dtype {
            case .float32:
                return bytes.withUnsafeBytes { raw in
                    (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
                }
            case .float64:
                return bytes.withUnsafeBytes { raw in
                    (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
                }
            case .float16:
                return bytes.withUnsafeBytes { raw in
                    (0..<n).map { SafeTensors.halfToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
                }
            case .bfloat16:
                return bytes.withUnsafeBytes { raw in
                    (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
                }
            default:
                throw .unsupported("a \(dtype.rawValue) tensor cannot be read as floats (F32, F64, F16 and BF16 can)")
            }
        }

        /// The elements as 64-bit integers, for integer and BOOL dtypes. Throws `unsupported`
        /// for floating-point dtypes and `invalidData` for a U64 value above Int64.max.
        public func integers() throws(NNError) -> [Int64] {
            let n = count
            let size = dtype.size
            var out = [Int64]()
            out.reserveCapacity(n)
            for i in 0..<n {
                var u: UInt64 = 0
                for b in 0..<size { u |= UInt64(bytes[i * size + b]) << (8 * b) }
                let v: Int64
                switch dtype {
                case .bool, .uint8, .uint16, .uint32: v = Int64(u)
                case .int8: v = Int64(Int8(truncatingIfNeeded: u))
                case .int16: v = Int64(Int16(truncatingIfNeeded: u))
                case .int32: v = Int64(Int32(truncatingIfNeeded: u))
                case .int64: v = Int64(bitPattern: u)
                case .uint64:
                    guard let s = Int64(exactly: u) else { throw .invalidData("U64 element \(i) is \(u), above Int64.max") }
                    v = s
                default:
                    throw .unsupported("a \(dtype.rawValue) tensor cannot be read as integers")
                }
                out.append(v)
            }
            return out
        }
    }

    /// Tensor names in order.
    public private(set) var names: [String] = []
    private var storage: [String: Tensor] = [:]
    /// Free-form string pairs stored under `__metadata__` (a model file puts its architecture
    /// here).
    public var metadata: [String: String]

    /// An empty set with the given metadata.
    public init(metadata: [String: String] = [:]) {
        self.metadata = metadata
    }

    /// Number of tensors.
    public var count: Int { names.count }

    /// The tensor called `name`, or nil.
    public subscript(name: String) -> Tensor? { storage[name] }

    /// Adds `tensor` under `name` at the end, or replaces the tensor of that name in place.
    /// Throws `invalidArgument` for the reserved name `__metadata__`.
    public mutating func set(_ name: String, _ tensor: Tensor) throws(NNError) {
        guard name != "__metadata__" else {
            throw .invalidArgument("'__metadata__' is reserved by the safetensors format and cannot name a tensor")
        }
        if storage.updateValue(tensor, forKey: name) == nil { names.append(name) }
    }

    /// Removes the tensor called `name`, if any.
    public mutating func remove(_ name: String) {
        if storage.removeValue(forKey: name) != nil { names.removeAll { $0 == name } }
    }

    /// The F32 (or convertible) values of tensor `name`. Throws `unknownName` when it is
    /// missing, `shapeMismatch` when `shape` is given and differs, and as `Tensor.floats()`.
    public func floats(_ name: String, shape: [Int]? = nil) throws(NNError) -> [Float] {
        guard let t = storage[name] else {
            throw .unknownName("no tensor named '\(name)'; the file has: \(names.joined(separator: ", "))")
        }
        if let shape, shape != t.shape {
            throw .shapeMismatch("tensor '\(name)' has shape \(t.shape), expected \(shape)")
        }
        do { return try t.floats() } catch { throw error.prefixed("tensor '\(name)'") }
    }

    // MARK: - Writing

    /// The file's bytes: header length, padded JSON header, data.
    public func serialized() -> [UInt8] {
        // Data order: larger elements first so every tensor is aligned to its element size.
        let order = names.indices.sorted { a, b in
            let sa = storage[names[a]]?.dtype.size ?? 0, sb = storage[names[b]]?.dtype.size ?? 0
            return sa != sb ? sa > sb : a < b
        }
        var offsets = [String: (Int, Int)]()
        var position = 0
        for i in order {
            let size = storage[names[i]]?.bytes.count ?? 0
            offsets[names[i]] = (position, position + size)
            position += size
        }
        var header = "{"
        var first = true
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted().map { "\(jsonQuoted($0)):\(jsonQuoted(metadata[$0] ?? ""))" }
            header += "\"__metadata__\":{" + pairs.joined(separator: ",") + "}"
            first = false
        }
        for name in names {
            guard let t = storage[name], let (begin, end) = offsets[name] else { continue }
            if !first { header += "," }
            first = false
            header += "\(jsonQuoted(name)):{\"dtype\":\"\(t.dtype.rawValue)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(begin),\(end)]}"
        }
        header += "}"
        var headerBytes = Array(header.utf8)
        headerBytes += [UInt8](repeating: 0x20, count: (8 - headerBytes.count % 8) % 8)

        var out = [UInt8]()
        out.reserveCapacity(8 + headerBytes.count + position)
        withUnsafeBytes(of: UInt64(headerBytes.count).littleEndian) { out.append(contentsOf: $0) }
        out += headerBytes
        for i in order { out += storage[names[i]]?.bytes ?? [] }
        return out
    }

    /// Writes the file atomically: a temporary file in the same directory, flushed to disk and
    /// renamed over `path`. On any failure the previous file at `path` is left as it was and
    /// no temporary file remains. Throws `fileError`.
    public func write(to path: String) throws(NNError) {
        try FileIO.writeAtomically(serialized(), to: path)
    }

    // MARK: - Reading

    /// Reads the safetensors file at `path`. Throws `fileError` when it cannot be read,
    /// `corruptFile` when it is truncated or its header is garbled or inconsistent (the message
    /// says which), `unsupported` for an unknown dtype.
    public init(contentsOf path: String) throws(NNError) {
        try self.init(bytes: FileIO.readAll(path), source: path)
    }

    /// Parses safetensors `bytes`; `source` names them in error messages.
    public init(bytes: [UInt8], source: String = "safetensors data") throws(NNError) {
        func corrupt(_ what: String) -> NNError { .corruptFile("\(source): \(what)") }
        guard bytes.count >= 8 else {
            throw corrupt("truncated: \(bytes.count) bytes, too short for the 8-byte header length")
        }
        var headerLength: UInt64 = 0
        for b in 0..<8 { headerLength |= UInt64(bytes[b]) << (8 * b) }
        guard headerLength <= UInt64(bytes.count - 8) else {
            throw corrupt("truncated or not safetensors: the header length \(headerLength) exceeds the \(bytes.count - 8) bytes that follow it")
        }
        guard headerLength <= 100_000_000 else {
            throw corrupt("the header length \(headerLength) exceeds the format's 100 MB limit")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = Array(bytes[8..<dataStart])
        guard headerBytes.first == UInt8(ascii: "{") else {
            throw corrupt("the header does not start with '{' (not a safetensors file?)")
        }
        let json: JSONValue
        do { json = try JSONParser.parse(headerBytes) } catch { throw corrupt("the JSON header is garbled: \(error.message)") }
        guard case .object(let entries) = json else { throw corrupt("the header is not a JSON object") }

        let dataSize = bytes.count - dataStart
        var spans = [(begin: Int, end: Int, name: String)]()
        var metadata = [String: String]()
        var parsed = [(String, DType, [Int], Int, Int)]()
        for (name, value) in entries {
            if name == "__metadata__" {
                guard case .object(let pairs) = value else { throw corrupt("'__metadata__' is \(value.kindName), expected an object of strings") }
                for (k, v) in pairs {
                    guard case .string(let s) = v else { throw corrupt("metadata '\(k)' is \(v.kindName), expected a string") }
                    metadata[k] = s
                }
                continue
            }
            guard case .object(let fields) = value else { throw corrupt("tensor '\(name)' is \(value.kindName), expected an object") }
            func field(_ key: String) throws(NNError) -> JSONValue {
                guard let v = fields.first(where: { $0.key == key })?.value else { throw corrupt("tensor '\(name)' has no '\(key)'") }
                return v
            }
            guard case .string(let dtypeName) = try field("dtype") else { throw corrupt("tensor '\(name)': 'dtype' is not a string") }
            guard let dtype = DType(rawValue: dtypeName) else {
                throw .unsupported("\(source): tensor '\(name)' has dtype '\(dtypeName)', which this reader does not know")
            }
            guard case .array(let dims) = try field("shape") else { throw corrupt("tensor '\(name)': 'shape' is not an array") }
            var shape = [Int]()
            for d in dims {
                guard let u = d.unsignedInteger, u <= UInt64(Int.max) else {
                    throw corrupt("tensor '\(name)': shape entries must be non-negative integers")
                }
                shape.append(Int(u))
            }
            guard case .array(let offs) = try field("data_offsets"), offs.count == 2,
                  let b = offs[0].unsignedInteger, let e = offs[1].unsignedInteger else {
                throw corrupt("tensor '\(name)': 'data_offsets' must be [begin, end] with non-negative integers")
            }
            guard b <= e, e <= UInt64(dataSize) else {
                throw corrupt("tensor '\(name)': data_offsets [\(b), \(e)] fall outside the \(dataSize) data bytes (truncated file?)")
            }
            let begin = Int(b), end = Int(e)
            let n: Int
            do { n = try SafeTensors.elementCount(shape, what: "shape") } catch { throw corrupt("tensor '\(name)': \(error.message)") }
            let (byteCount, overflow) = n.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, byteCount == end - begin else {
                throw corrupt("tensor '\(name)': a \(dtypeName) tensor of shape \(shape) takes \(overflow ? "too many" : "\(byteCount)") bytes, but data_offsets [\(begin), \(end)] span \(end - begin)")
            }
            spans.append((begin, end, name))
            parsed.append((name, dtype, shape, begin, end))
        }
        // The data section must be exactly covered: sorted by offset, each tensor starts where the
        // previous one ended, the first at 0 and the last at the end of the file.
        spans.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var expected = 0
        for s in spans {
            guard s.begin == expected else {
                throw corrupt(s.begin < expected
                    ? "tensor '\(s.name)' at data_offsets [\(s.begin), \(s.end)] overlaps the previous tensor, which ends at \(expected)"
                    : "a gap before tensor '\(s.name)': its data starts at \(s.begin), the previous tensor ends at \(expected)")
            }
            expected = s.end
        }
        guard expected == dataSize else {
            throw corrupt("the tensors cover \(expected) data bytes but the file holds \(dataSize) after the header")
        }
        self.metadata = metadata
        for (name, dtype, shape, begin, end) in parsed {
            let t = try Tensor(dtype: dtype, shape: shape, bytes: Array(bytes[(dataStart + begin)..<(dataStart + end)]))
            names.append(name)
            storage[name] = t
        }
    }

    // MARK: - Helpers

    /// The product of `shape`, checked for negative entries and overflow.
    static func elementCount(_ shape: [Int], what: String) throws(NNError) -> Int {
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidArgument("\(what) \(shape) has a negative dimension") }
        guard let n = Sizes.product(shape) else { throw .invalidArgument("\(what) \(shape) has too many elements") }
        return n
    }

    /// IEEE 754 half precision to single (exact).
    public static func halfToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exponent = Int(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0: return sign * Float(mantissa) * 0x1p-24
        case 31: return mantissa == 0 ? sign * .infinity : .nan
        default: return Float(bitPattern: UInt32(h & 0x8000) << 16 | UInt32(exponent - 15 + 127) << 23 | mantissa << 13)
        }
    }
}
