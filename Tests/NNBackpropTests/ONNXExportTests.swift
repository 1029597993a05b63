import XCTest
@testable import NNBackprop

/// The protobuf writer against bytes encoded by hand from the wire-format specification, and
/// the exporter's refusals. (Exported models are checked with the onnx package and run in ONNX
/// Runtime by python/tests/test_onnx.py.)
final class ONNXExportTests: XCTestCase {
    func testProtobufWireFormat() {
        var w = ProtobufWriter()
        w.int(1, 150)               // the specification's example: 08 96 01
        XCTAssertEqual(w.bytes, [0x08, 0x96, 0x01])
        w = ProtobufWriter()
        w.string(2, "testing")      // 12 07 74 65 73 74 69 6e 67
        XCTAssertEqual(w.bytes, [0x12, 0x07] + Array("testing".utf8))
        w = ProtobufWriter()
        w.int(3, -1)                // int64 -1: ten bytes of varint
        XCTAssertEqual(w.bytes, [0x18] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        w = ProtobufWriter()
        w.float(2, 1)               // wire type 5, 1.0f little-endian
        XCTAssertEqual(w.bytes, [0x15, 0x00, 0x00, 0x80, 0x3F])
        w = ProtobufWriter()
        w.message(3) { $0.int(1, 150) } // nested: 1a 03 08 96 01
        XCTAssertEqual(w.bytes, [0x1A, 0x03, 0x08, 0x96, 0x01])
        w = ProtobufWriter()
        w.int(20, 7)                // a two-byte key: (20 << 3) | 0 = 160 -> a0 01
        XCTAssertEqual(w.bytes, [0xA0, 0x01, 0x07])
        w = ProtobufWriter()
        w.data(9, [UInt8](repeating: 1, count: 300)) // a two-byte length: 300 -> ac 02
        XCTAssertEqual(Array(w.bytes.prefix(3)), [0x4A, 0xAC, 0x02])
        XCTAssertEqual(w.bytes.count, 303)
    }

    func testTheModelStartsWithItsIRVersionAndNamesItsProducer() throws {
        let model = try Sequential(inputSize: 2, seed: 1) { try Dense(2, 3, activation: .relu) }
        let bytes = try model.onnxModel()
        XCTAssertEqual(Array(bytes.prefix(2)), [0x08, 0x08], "ModelProto.ir_version = 8 comes first")
        XCTAssertEqual(Array(bytes[2..<4]), [0x12, 0x0A])
        XCTAssertEqual(String(decoding: bytes[4..<14], as: UTF8.self), "NNBackprop")
    }

    func testLayersWithoutAnONNXFormAreNamed() throws {
        let a = try Dense(2, 2)
        let tied = try Sequential(inputSize: 2, seed: 1) { a; try Dense(tiedTo: a) }
        assertNNError(NNError.unsupported, mentions: ["layer 1 (Dense)", "tied"]) { _ = try tied.onnxModel() }
    }

    func testExportThenImportGivesTheSameModel() throws {
        let model = try Sequential(inputShape: Shape([1, 6, 6]), seed: 4) {
            try Conv2D(inChannels: 1, outChannels: 3, kernel: (3, 3), padding: (1, 1), activation: .relu)
            try MaxPool2D(2)
            Flatten()
            try Dense(27, 5, activation: .tanh)
            try Dense(5, 2)
        }
        let back = try Sequential.importONNX(bytes: model.onnxModel())
        XCTAssertEqual(back.layerSpecs, model.layerSpecs)
        XCTAssertEqual(back.parameterValues, model.parameterValues)
    }

    func testHostileBytesAreCorruptFileErrors() throws {
        let good = try Sequential(inputSize: 2, seed: 1) { try Dense(2, 3) }.onnxModel()
        // Every cut inside the graph (the last 6 bytes are the opset import, which may be absent).
        for cut in stride(from: 1, to: good.count - 6, by: 7) {
            XCTAssertThrowsError(try Sequential.importONNX(bytes: Array(good.prefix(cut))), "cut at \(cut)")
        }
        assertNNError(NNError.corruptFile, mentions: ["varint"]) { _ = try Sequential.importONNX(bytes: [UInt8](repeating: 0xFF, count: 20)) }
        assertNNError(NNError.corruptFile, mentions: ["past the end"]) { _ = try Sequential.importONNX(bytes: [0x3A, 0xFF, 0xFF, 0xFF, 0x0F]) }
        assertNNError(NNError.corruptFile, mentions: ["no graph"]) { _ = try Sequential.importONNX(bytes: []) }
    }

    func testHostileTensorsAndNodesAreErrorsNotTraps() {
        // An INT64 initializer holding Int64.min.
        var w = ProtobufWriter()
        w.message(7) { g in
            g.message(5) { t in t.int(1, 1); t.int(2, 7); t.string(8, "s"); t.data(9, [0, 0, 0, 0, 0, 0, 0, 0x80]) }
        }
        assertNNError(NNError.unsupported, mentions: ["'s'", "2^24"]) { _ = try Sequential.importONNX(bytes: w.bytes) }
        // A Gemm whose weight has no columns (and no bias): refused before a bias is made for it.
        w = ProtobufWriter()
        w.message(7) { g in
            g.message(1) { n in n.string(1, "x"); n.string(1, "W"); n.string(2, "y"); n.string(4, "Gemm") }
            g.message(5) { t in t.int(1, 2_147_483_647); t.int(1, 0); t.int(2, 1); t.string(8, "W"); t.data(9, []) }
            g.message(11) { v in
                v.string(1, "x")
                v.message(2) { $0.message(1) { $0.int(1, 1); $0.message(2) { $0.message(1) { $0.string(2, "N") }; $0.message(1) { $0.int(1, 4) } } } }
            }
            g.message(12) { $0.string(1, "y") }
        }
        assertNNError(NNError.unsupported, mentions: ["Gemm", "no features"]) { _ = try Sequential.importONNX(bytes: w.bytes) }
    }
}
