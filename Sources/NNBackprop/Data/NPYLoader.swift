/// An array read from a NumPy `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// Layout: the magic `\x93NUMPY`, a major and minor version byte, the header length (uint16
/// little-endian in version 1, uint32 in versions 2 and 3), a header that is a Python dict
/// literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`, then the raw
/// elements. Supported element types: float32, float64, uint8, int32 and int64, little-endian,
/// in C (row-major) order.
public struct NPYArray: Sendable, Equatable {
    /// A supported element type, with its NumPy type string (without the byte-order mark).
    public enum ElementType: String, Sendable, CaseIterable {
        case float32 = "f4", float64 = "f8", uint8 = "u1", int32 = "i4", int64 = "i8"

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .uint8: return 1
            case .float32, .int32: return 4
            case .float64, .int64: return 8
            }
        }

        /// True for the floating-point types.
        public var isFloatingPoint: Bool { self == .float32 || self == .float64 }
    }

    /// The element type.
    public let elementType: ElementType
    /// The dimensions, outermost first; [] for a scalar.
    public let shape: [Int]
    /// The element bytes, little-endian, C order.
    let payload: [UInt8]

    /// Elements: the product of `shape` (1 for a scalar; checked when the file was read).
    public let count: Int

    /// Reads the `.npy` file at `path`. Throws `fileError` when it cannot be read,
    /// `corruptFile` when it is truncated or its header is garbled, and `unsupported` for
    /// Fortran order, big-endian data, or another element type.
    public init(contentsOf path: String) throws(NNError) {
        try self.init(bytes: FileIO.readAll(path), source: path)
    }

    /// Parses `.npy` `bytes`; `source` names them in error messages.
    public init(bytes: [UInt8], source: String = ".npy data") throws(NNError) {
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59] // \x93NUMPY
        guard bytes.count >= 10 else {
            throw .corruptFile("\(source) is truncated: \(bytes.count) bytes, shorter than an .npy preamble")
        }
        guard bytes.starts(with: magic) else {
            throw .corruptFile("\(source) is not an .npy file: it does not start with \\x93NUMPY")
        }
        let major = Int(bytes[6]), minor = Int(bytes[7])
        let headerLength: Int, headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else {
                throw .corruptFile("\(source) is truncated: \(bytes.count) bytes, shorter than an .npy \(major).\(minor) preamble")
            }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw .unsupported("\(source): .npy format version \(major).\(minor) is not supported (1.0, 2.0 and 3.0 are)")
        }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw .corruptFile("\(source) is truncated: the header says it is \(headerLength) bytes long, the file ends \(bytes.count - headerStart) bytes after its start")
        }
        let text = String(decoding: bytes[headerStart..<dataStart], as: UTF8.self)
        var parser = PythonLiteralParser(text: text)
        let header: PythonLiteral
        do {
            header = try parser.parseDocument()
        } catch {
            throw .corruptFile("\(source): the .npy header is garbled: \(error.message)")
        }
        guard case .dict(let entries) = header else {
            throw .corruptFile("\(source): the .npy header is not a dict: \(text)")
        }
        func entry(_ key: String) throws(NNError) -> PythonLiteral {
            guard let v = entries.first(where: { $0.0 == key })?.1 else {
                throw .corruptFile("\(source): the .npy header has no '\(key)' key: \(text)")
            }
            return v
        }
        guard case .string(let descr) = try entry("descr") else {
            throw .unsupported("\(source): structured dtypes are not supported (descr is not a type string): \(text)")
        }
        guard case .bool(let fortranOrder) = try entry("fortran_order") else {
            throw .corruptFile("\(source): 'fortran_order' in the .npy header is not True or False: \(text)")
        }
        guard case .tuple(let dims) = try entry("shape") else {
            throw .corruptFile("\(source): 'shape' in the .npy header is not a tuple: \(text)")
        }
        var shape = [Int]()
        for d in dims {
            guard case .int(let n) = d, n >= 0 else {
                throw .corruptFile("\(source): 'shape' in the .npy header must hold non-negative integers: \(text)")
            }
            shape.append(n)
        }
        guard let elements = Sizes.product(shape, limit: 1 << 40) else {
            throw .corruptFile("\(source): the .npy shape \(shape) gives an implausible element count")
        }

        var typeCode = Substring(descr)
        var order: Character = "|"
        if let first = typeCode.first, "<>|=".contains(first) {
            order = first
            typeCode = typeCode.dropFirst()
        }
        guard let type = ElementType(rawValue: String(typeCode)) else {
            let supported = ElementType.allCases.map { "<" + $0.rawValue }.joined(separator: ", ")
            throw .unsupported("\(source): .npy dtype '\(descr)' is not supported; supported dtypes: \(supported)")
        }
        if order == ">" && type.size > 1 {
            throw .unsupported("\(source): .npy dtype '\(descr)' is big-endian; save it little-endian (e.g. arr.astype('<\(type.rawValue)'))")
        }
        if fortranOrder && shape.filter({ $0 > 1 }).count > 1 {
            throw .unsupported("\(source): the .npy array of shape \(shape) is in Fortran order; save it in C order (np.ascontiguousarray(arr))")
        }
        let expected = elements * type.size
        let available = bytes.count - dataStart
        guard available == expected else {
            let what = available < expected ? "is truncated" : "has \(available - expected) unexpected trailing bytes"
            throw .corruptFile("\(source) \(what): an array of shape \(shape) and dtype '\(descr)' takes \(expected) bytes of data, the file has \(available)")
        }
        elementType = type
        self.shape = shape
        count = elements
        payload = Array(bytes[dataStart...])
    }

    /// The elements as floats, each multiplied by `scale` (float64 and int64 are rounded).
    public func floats(scale: Float = 1) -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            payload.withUnsafeBytes { raw in
                switch elementType {
                case .float32:
                    #if _endian(little)
                    if scale == 1, let dst = out.baseAddress, let src = raw.baseAddress {
                        UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: 4 * n)
                        break
                    }
                    #endif
                    for i in 0..<n {
                        out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) * scale
                    }
                case .float64:
                    for i in 0..<n {
                        out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) * scale
                    }
                case .uint8:
                    for i in 0..<n { out[i] = Float(raw[i]) * scale }
                case .int32:
                    for i in 0..<n { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) * scale }
                case .int64:
                    for i in 0..<n { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))) * scale }
                }
            }
            initialized = n
        }
    }

    /// The elements as 32-bit integers (class labels). Float elements must be whole numbers.
    /// Throws `invalidData` naming the index of the first value that is fractional, not
    /// finite, or outside the Int32 range; `source` names the array in that message.
    public func integers(source: String = "array") throws(NNError) -> [Int32] {
        let n = count
        var out = [Int32]()
        out.reserveCapacity(n)
        let values: [Double] = payload.withUnsafeBytes { raw in
            (0..<n).map { i -> Double in
                switch elementType {
                case .uint8: return Double(raw[i])
                case .int32: return Double(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                case .int64: return Double(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                case .float32:
                    return Double(Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))))
                case .float64:
                    return Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))
                }
            }
        }
        for (i, v) in values.enumerated() {
            guard let k = Int32(exactly: v) else {
                throw .invalidData("\(source)[\(i)] is \(v); a class label must be a whole number in the Int32 range")
            }
            out.append(k)
        }
        return out
    }
}

extension Dataset {
    /// A data set from two `.npy` files: `features` of shape (n, ...), each value multiplied by
    /// `scale`, whose samples keep the rest of the shape ((n, 1, 28, 28) gives samples of shape
    /// 1x28x28, for image models, and (n, 28, 28) too, as the IDX loader reads (n, 28, 28); (n, k)
    /// gives vectors; beyond 8 dimensions a sample is a flat vector), and `targets`
    /// of shape (n) or (n, width).
    ///
    /// `kind` `.classes` reads whole-number labels (any supported dtype) with `classCount`
    /// classes (default: largest label + 1); `.probabilities` and `.values` read rows of floats.
    /// Throws as `NPYArray.init(contentsOf:)`, plus `shapeMismatch` when the row counts differ
    /// and `invalidData` as `Dataset.init`, each naming the file.
    public static func npy(features: String, targets: String, kind: TargetKind = .classes,
                           classCount: Int? = nil, scale: Float = 1) throws(NNError) -> Dataset {
        let x = try NPYArray(contentsOf: features)
        let y = try NPYArray(contentsOf: targets)
        guard let n = x.shape.first else {
            throw .shapeMismatch("\(features): features must have a row dimension, got a scalar")
        }
        guard y.shape.first == n else {
            throw .shapeMismatch("\(features) has \(n) rows but \(targets) has shape \(y.shape); their first dimensions must agree")
        }
        // Each shape's product was checked when its file was read, so its tail's is safe.
        let width = Sizes.product(x.shape.dropFirst()) ?? 0
        let targetWidth = Sizes.product(y.shape.dropFirst()) ?? 0
        guard n > 0, width > 0 else { throw .invalidData("\(features): the data set is empty (shape \(x.shape))") }
        let t: Targets
        switch kind {
        case .classes:
            guard targetWidth == 1 else {
                throw .shapeMismatch("\(targets): class labels must have shape (\(n)) or (\(n), 1), got \(y.shape)")
            }
            let labels = try y.integers(source: targets)
            t = .classes(labels, classCount: classCount ?? Int(labels.max() ?? 0) + 1)
        case .probabilities:
            t = .probabilities(y.floats(), width: targetWidth)
        case .values:
            t = .values(y.floats(), width: targetWidth)
        }
        do {
            let data = try Dataset(features: x.floats(scale: scale), featureCount: width, targets: t)
            // (n, H, W) gives (1, H, W) images, as the IDX loader reads them.
            let sample = x.shape.count == 3 ? [1] + x.shape.dropFirst() : Array(x.shape.dropFirst())
            guard sample.count >= 2 && sample.count <= Shape.maxRank else { return data }
            return try data.reshaped(to: Shape(sample))
        } catch {
            throw error.prefixed("\(features), \(targets)")
        }
    }
}

/// The few Python literals an .npy header holds.
indirect enum PythonLiteral {
    case string(String)
    case int(Int)
    case bool(Bool)
    case none
    case tuple([PythonLiteral])
    case list([PythonLiteral])
    case dict([(String, PythonLiteral)])
}

/// A recursive-descent parser for the Python literal of an .npy header (depth-limited, so a
/// hostile header cannot exhaust the stack).
struct PythonLiteralParser {
    private let chars: [UInt8]
    private var i = 0
    private var depth = 0

    init(text: String) { chars = Array(text.utf8) }

    mutating func parseDocument() throws(NNError) -> PythonLiteral {
        let v = try parseValue()
        skipSpace()
        guard i == chars.count else { throw fail("unexpected text after the literal") }
        return v
    }

    private func fail(_ what: String) -> NNError { .corruptFile("\(what) at character \(i)") }

    private mutating func skipSpace() {
        while i < chars.count, chars[i] == 0x20 || chars[i] == 0x0A || chars[i] == 0x0D || chars[i] == 0x09 { i += 1 }
    }

    private mutating func parseValue() throws(NNError) -> PythonLiteral {
        skipSpace()
        guard i < chars.count else { throw fail("unexpected end of the header") }
        switch chars[i] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "("):
            return .tuple(try parseSequence(close: UInt8(ascii: ")")))
        case UInt8(ascii: "["):
            return .list(try parseSequence(close: UInt8(ascii: "]")))
        case UInt8(ascii: "{"):
            return try parseDict()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = i
            if chars[i] == UInt8(ascii: "-") { i += 1 }
            while i < chars.count, chars[i] >= UInt8(ascii: "0") && chars[i] <= UInt8(ascii: "9") { i += 1 }
            if i < chars.count, chars[i] == UInt8(ascii: "L") { i += 1 } // Python 2 long
            let digits = String(decoding: chars[start..<i], as: UTF8.self).filter { $0 != "L" }
            guard let v = Int(digits) else { throw fail("bad integer '\(digits)'") }
            return .int(v)
        default:
            for (word, value) in [("True", PythonLiteral.bool(true)), ("False", .bool(false)), ("None", .none)]
            where chars[i...].starts(with: word.utf8) {
                i += word.utf8.count
                return value
            }
            throw fail("unexpected character '\(Character(Unicode.Scalar(chars[i])))'")
        }
    }

    private mutating func parseString() throws(NNError) -> String {
        let quote = chars[i]
        i += 1
        var out = [UInt8]()
        while i < chars.count, chars[i] != quote {
            if chars[i] == UInt8(ascii: "\\"), i + 1 < chars.count { i += 1 }
            out.append(chars[i])
            i += 1
        }
        guard i < chars.count else { throw fail("unterminated string") }
        i += 1
        return String(decoding: out, as: UTF8.self)
    }

    private mutating func enter() throws(NNError) {
        depth += 1
        guard depth <= 32 else { throw fail("literal nested too deeply") }
    }

    private mutating func parseSequence(close: UInt8) throws(NNError) -> [PythonLiteral] {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items = [PythonLiteral]()
        while true {
            skipSpace()
            guard i < chars.count else { throw fail("unexpected end of the header inside a sequence") }
            if chars[i] == close { i += 1; return items }
            items.append(try parseValue())
            skipSpace()
            guard i < chars.count else { throw fail("unexpected end of the header inside a sequence") }
            if chars[i] == UInt8(ascii: ",") { i += 1 } else if chars[i] != close { throw fail("expected ',' or a closing bracket") }
        }
    }

    private mutating func parseDict() throws(NNError) -> PythonLiteral {
        try enter()
        defer { depth -= 1 }
        i += 1
        var entries = [(String, PythonLiteral)]()
        while true {
            skipSpace()
            guard i < chars.count else { throw fail("unexpected end of the header inside a dict") }
            if chars[i] == UInt8(ascii: "}") { i += 1; return .dict(entries) }
            guard chars[i] == UInt8(ascii: "'") || chars[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let key = try parseString()
            skipSpace()
            guard i < chars.count, chars[i] == UInt8(ascii: ":") else { throw fail("expected ':' after key '\(key)'") }
            i += 1
            entries.append((key, try parseValue()))
            skipSpace()
            guard i < chars.count else { throw fail("unexpected end of the header inside a dict") }
            if chars[i] == UInt8(ascii: ",") { i += 1 } else if chars[i] != UInt8(ascii: "}") { throw fail("expected ',' or '}'") }
        }
    }
}
