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
