/// The protocol-buffer wire format, as much of it as ONNX files need: varints, 32-bit floats
/// and length-delimited fields (strings, bytes, nested messages).
///
/// Written here rather than with swift-protobuf: ONNX export needs a dozen message types, each
/// a few fields, and generated code for onnx.proto would be ~10,000 lines plus a dependency
/// whose plugin build takes minutes. Tests check the bytes against hand-encoded examples and
/// against the `onnx` package's own parser.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    private mutating func varint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

    /// An int64 (or int32, enum) field: wire type 0; negative values take ten bytes, as protobuf says.
    mutating func int(_ field: Int, _ value: Int) {
        key(field, 0)
        varint(UInt64(bitPattern: Int64(value)))
    }

    /// A float field: wire type 5, little-endian.
    mutating func float(_ field: Int, _ value: Float) {
        key(field, 5)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    /// A bytes field (wire type 2).
    mutating func data(_ field: Int, _ value: [UInt8]) {
        key(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String) { data(field, Array(value.utf8)) }

    /// A nested message field, written by `body`.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        data(field, inner.bytes)
    }
}

/// Reads protocol-buffer messages, checking every length against the bytes that are there: a
/// truncated or hostile file is `corruptFile` naming the byte offset, never a trap.
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed32(UInt32)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
    }

    private let bytes: ArraySlice<UInt8>
    private var i: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        i = bytes.startIndex
    }

    private func corrupt(_ what: String) -> NNError { .corruptFile("protobuf: \(what) at byte \(i)") }

    private mutating func varint() throws(NNError) -> UInt64 {
        var v: UInt64 = 0, shift: UInt64 = 0
        while true {
            guard i < bytes.endIndex else { throw corrupt("a varint runs past the end") }
            let b = bytes[i]
            i += 1
            guard shift < 64 else { throw corrupt("a varint longer than 10 bytes") }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    private mutating func fixed(_ n: Int) throws(NNError) -> UInt64 {
        guard bytes.endIndex - i >= n else { throw corrupt("a \(n)-byte value runs past the end") }
        var v: UInt64 = 0
        for k in 0..<n { v |= UInt64(bytes[i + k]) << (8 * UInt64(k)) }
        i += n
        return v
    }

    /// The next (field number, value), or nil at the end of the message.
    mutating func next() throws(NNError) -> (field: Int, value: Value)? {
        guard i < bytes.endIndex else { return nil }
        let key = try varint()
        let field = Int(truncatingIfNeeded: key >> 3)
        guard field > 0, field < 1 << 29 else { throw corrupt("field number \(key >> 3)") }
        switch key & 7 {
        case 0: return (field, .varint(try varint()))
        case 1: return (field, .fixed64(try fixed(8)))
        case 5: return (field, .fixed32(UInt32(try fixed(4))))
        case 2:
            let n = try varint()
            guard n <= UInt64(bytes.endIndex - i) else { throw corrupt("a field of \(n) bytes, past the end") }
            let start = i
            i += Int(n)
            return (field, .bytes(bytes[start..<i]))
        default: throw corrupt("wire type \(key & 7) (groups are not used by ONNX)")
        }
    }
}

extension ProtobufReader.Value {
    var int: Int? {
        if case .varint(let v) = self { return Int(truncatingIfNeeded: Int64(bitPattern: v)) }
        return nil
    }

    var float: Float? {
        if case .fixed32(let v) = self { return Float(bitPattern: v) }
        return nil
    }

    var data: ArraySlice<UInt8>? {
        if case .bytes(let b) = self { return b }
        return nil
    }

    var string: String? { data.map { String(decoding: $0, as: UTF8.self) } }

    /// A repeated int64 field's values: one varint, or a packed run of them.
    func ints() throws(NNError) -> [Int] {
        if let v = int { return [v] }
        guard let d = data else { throw .corruptFile("protobuf: a repeated integer field of another wire type") }
        // A packed field is a run of varints with no keys.
        var out: [Int] = []
        var k = d.startIndex
        while k < d.endIndex {
            var v: UInt64 = 0, shift: UInt64 = 0
            while true {
                guard k < d.endIndex, shift < 64 else { throw .corruptFile("protobuf: a packed varint runs past its field") }
                let byte = d[k]
                k += 1
                v |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { break }
                shift += 7
            }
            out.append(Int(truncatingIfNeeded: Int64(bitPattern: v)))
        }
        return out
    }
}
