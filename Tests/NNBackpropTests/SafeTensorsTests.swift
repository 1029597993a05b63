import Foundation
import NNBackprop
import XCTest

final class SafeTensorsTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws { dir = try DataTestSupport.makeTempDirectory() }
    override func tearDown() { DataTestSupport.remove(dir) }

    /// A small model-like set: PyTorch nn.Sequential names, mixed dtypes, metadata.
    func sample() throws -> SafeTensors {
        var s = SafeTensors(metadata: ["format": "pt", "architecture": "{\"layers\": [\"dense\", \"relu\"]}"])
        try s.set("0.weight", .init([1, -2, 3.5, 0.25, 1e-8, -0.0] as [Float], shape: [3, 2]))
        try s.set("0.bias", .init([0.5, -0.5, 7] as [Float], shape: [3]))
        try s.set("steps", .init([Int64(3), -1, Int64.max], shape: [3]))
        try s.set("classes", .init([Int32(9)], shape: []))
        try s.set("mask", .init(dtype: .uint8, shape: [3], bytes: [1, 0, 255]))
        try s.set("scale", .init(float64: [Double.pi], shape: [1, 1]))
        return s
    }

    func testRoundTripKeepsOrderValuesAndMetadata() throws {
        let s = try sample()
        let path = dir + "/model.safetensors"
        try s.write(to: path)
        let back = try SafeTensors(contentsOf: path)
        XCTAssertEqual(back, s)
        XCTAssertEqual(back.names, ["0.weight", "0.bias", "steps", "classes", "mask", "scale"])
        XCTAssertEqual(try back.floats("0.weight", shape: [3, 2]).map(\.bitPattern),
                       ([1, -2, 3.5, 0.25, 1e-8, -0.0] as [Float]).map(\.bitPattern))
        XCTAssertEqual(try back["steps"]?.integers(), [3, -1, Int64.max])
        XCTAssertEqual(try back["classes"]?.integers(), [9])
        XCTAssertEqual(back["classes"]?.shape, [])
        XCTAssertEqual(try back["mask"]?.integers(), [1, 0, 255])
        XCTAssertEqual(try back.floats("scale"), [Float(Double.pi)])
        XCTAssertEqual(back.metadata["architecture"], "{\"layers\": [\"dense\", \"relu\"]}")

        // Layout: 8-byte aligned header; each tensor aligned to its element size.
        let bytes = try DataTestSupport.read(path)
        let n = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual((8 + n) % 8, 0)
        let header = bytes[8..<(8 + n)]
        XCTAssertEqual(header.reversed().first { $0 != 0x20 }, UInt8(ascii: "}")) // padded with spaces
    }

    func testPythonReadsWhatWeWrite() throws {
        let path = dir + "/ours.safetensors"
        try sample().write(to: path)
        // An independent reader: struct + json, checking the format's rules and the values.
        let script = """
        import json, struct, sys
        b = open(sys.argv[1], 'rb').read()
        (n,) = struct.unpack('<Q', b[:8])
        assert (8 + n) % 8 == 0, 'header not padded to 8'
        h = json.loads(b[8:8 + n].decode('utf-8'))
        meta = h.pop('__metadata__')
        data = b[8 + n:]
        spans = sorted(v['data_offsets'] for v in h.values())
        pos = 0
        for s, e in spans:
            assert s == pos, 'not contiguous'
            pos = e
        assert pos == len(data)
        size = {'F32': 4, 'F64': 8, 'I64': 8, 'I32': 4, 'U8': 1}
        fmt = {'F32': 'f', 'F64': 'd', 'I64': 'q', 'I32': 'i', 'U8': 'B'}
        for name, v in h.items():
            s, e = v['data_offsets']
            assert s % size[v['dtype']] == 0, 'misaligned ' + name
            count = (e - s) // size[v['dtype']]
            print(name, v['dtype'], v['shape'], list(struct.unpack('<%d%s' % (count, fmt[v['dtype']]), data[s:e])))
        print('meta', meta['format'], json.loads(meta['architecture'])['layers'])
        """
        let out = try DataTestSupport.python(script, [path]).split(separator: "\n").map(String.init)
        XCTAssertEqual(out, [
            "0.weight F32 [3, 2] [1.0, -2.0, 3.5, 0.25, 9.99999993922529e-09, -0.0]",
            "0.bias F32 [3] [0.5, -0.5, 7.0]",
            "steps I64 [3] [3, -1, 9223372036854775807]",
            "classes I32 [] [9]",
            "mask U8 [3] [1, 0, 255]",
            "scale F64 [1, 1] [3.141592653589793]",
            "meta pt ['dense', 'relu']",
        ])
    }

    func testWeReadWhatPythonWrites() throws {
        // Written the way the reference implementation lays files out (sorted, padded header),
        // with dtypes we only read: F16 and BF16.
        let script = """
        import json, struct, sys
        tensors = [
            ('a.weight', 'F32', [2, 2], struct.pack('<4f', 1.0, -1.5, 0.0, 65504.0)),
            ('b.half', 'F16', [3], struct.pack('<3e', 0.5, -2.0, 2.0 ** -14)),
            ('c.bf16', 'BF16', [2], bytes.fromhex('803f') + bytes.fromhex('c0c0')),
            ('d.ids', 'I64', [2], struct.pack('<2q', 5, -7)),
        ]
        header, data = {'__metadata__': {'format': 'pt'}}, b''
        for name, dtype, shape, raw in tensors:
            header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [len(data), len(data) + len(raw)]}
            data += raw
        h = json.dumps(header, separators=(',', ':')).encode()
        h += b' ' * ((8 - len(h) % 8) % 8)
        open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + data)
        """
        let path = dir + "/theirs.safetensors"
        try DataTestSupport.python(script, [path])
        let s = try SafeTensors(contentsOf: path)
        XCTAssertEqual(s.names, ["a.weight", "b.half", "c.bf16", "d.ids"])
        XCTAssertEqual(s.metadata, ["format": "pt"])
        XCTAssertEqual(try s.floats("a.weight", shape: [2, 2]), [1, -1.5, 0, 65504])
        XCTAssertEqual(try s.floats("b.half"), [0.5, -2, 0x1p-14])
        XCTAssertEqual(try s.floats("c.bf16"), [1, -6])
        XCTAssertEqual(try s["d.ids"]?.integers(), [5, -7])
        assertNNError(NNError.unsupported, mentions: ["I64", "floats"]) { try s.floats("d.ids") }
        assertNNError(NNError.unknownName, mentions: ["'missing'", "a.weight"]) { try s.floats("missing") }
        assertNNError(NNError.shapeMismatch, mentions: ["[2, 2]", "[4]"]) { try s.floats("a.weight", shape: [4]) }
    }

    func testHalfPrecisionConversion() {
        XCTAssertEqual(SafeTensors.halfToFloat(0x3C00), 1)
        XCTAssertEqual(SafeTensors.halfToFloat(0xC000), -2)
        XCTAssertEqual(SafeTensors.halfToFloat(0x7BFF), 65504)
        XCTAssertEqual(SafeTensors.halfToFloat(0x0001), 0x1p-24) // smallest subnormal
        XCTAssertEqual(SafeTensors.halfToFloat(0x0400), 0x1p-14) // smallest normal
        XCTAssertEqual(SafeTensors.halfToFloat(0xFC00), -.infinity)
        XCTAssertTrue(SafeTensors.halfToFloat(0x7E00).isNaN)
        XCTAssertEqual(SafeTensors.halfToFloat(0x8000).sign, .minus)
    }

    func testEveryTruncationThrowsCorruptFile() throws {
        let bytes = try sample().serialized()
        for cut in 0..<bytes.count {
            assertNNError(NNError.corruptFile) { try SafeTensors(bytes: Array(bytes[..<cut])) }
        }
        assertNNError(NNError.corruptFile, mentions: ["cover", "after the header"]) { try SafeTensors(bytes: bytes + [0]) }
    }

    func testRandomCorruptionNeverCrashes() throws {
        let bytes = try sample().serialized()
        var g = SeededGenerator(seed: 5)
        var rejected = 0
        for _ in 0..<3000 {
            var b = bytes
            for _ in 0..<(1 + g.nextInt(below: 3)) {
                b[g.nextInt(below: b.count)] = UInt8(truncatingIfNeeded: g.next())
            }
            do { _ = try SafeTensors(bytes: b) } catch { rejected += 1 }
        }
        XCTAssertGreaterThan(rejected, 1000) // most bytes are header bytes, so most flips are caught
    }

    /// Header JSON → file bytes, padded.
    func file(_ header: String, data: [UInt8] = []) -> [UInt8] { file(bytes: Array(header.utf8), data: data) }

    func file(bytes header: [UInt8], data: [UInt8] = []) -> [UInt8] {
        var h = header
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        return withUnsafeBytes(of: UInt64(h.count).littleEndian) { Array($0) } + h + data
    }

    func testGarbledHeadersHaveClearMessages() {
        let eight = [UInt8](repeating: 0, count: 8)
        assertNNError(NNError.corruptFile, mentions: ["header length", "exceeds"]) {
            try SafeTensors(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7B, 0x7D])
        }
        assertNNError(NNError.corruptFile, mentions: ["garbled"]) { try SafeTensors(bytes: file("{\"a\": ")) }
        assertNNError(NNError.corruptFile, mentions: ["start with '{'"]) { try SafeTensors(bytes: file("[1, 2]")) }
        assertNNError(NNError.corruptFile, mentions: ["overlaps"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["gap", "'b'"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["'a'", "F32", "takes 12 bytes", "span 8"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["outside", "8 data bytes"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[16],"data_offsets":[0,16]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["'a'", "shape"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[-8],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["'a'", "shape"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[8.0],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["too many"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["data_offsets"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,18446744073709551616]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["duplicate key 'a'"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["metadata 'k'", "string"]) {
            try SafeTensors(bytes: file(#"{"__metadata__":{"k":1}}"#))
        }
        assertNNError(NNError.corruptFile, mentions: ["has no 'dtype'"]) {
            try SafeTensors(bytes: file(#"{"a":{"shape":[8],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.unsupported, mentions: ["'F4'"]) {
            try SafeTensors(bytes: file(#"{"a":{"dtype":"F4","shape":[8],"data_offsets":[0,8]}}"#, data: eight))
        }
        assertNNError(NNError.corruptFile, mentions: ["nested"]) {
            try SafeTensors(bytes: file("{\"a\":" + String(repeating: "[", count: 100_000)))
        }
        let badUTF8: [UInt8] = [UInt8(ascii: "{"), UInt8(ascii: "\""), 0xC3, 0x28, UInt8(ascii: "\""), UInt8(ascii: ":"), UInt8(ascii: "{"), UInt8(ascii: "}"), UInt8(ascii: "}")]
        assertNNError(NNError.corruptFile, mentions: ["UTF-8"]) { try SafeTensors(bytes: file(bytes: badUTF8)) }
        // Empty files are valid: a header of {} and no data.
        XCTAssertEqual(try SafeTensors(bytes: file("{}")).count, 0)
        XCTAssertEqual(try SafeTensors(bytes: SafeTensors().serialized()), SafeTensors())
        // Escapes in names survive.
        XCTAssertEqual(try SafeTensors(bytes: file(#"{"\u00e9\"\\":{"dtype":"U8","shape":[],"data_offsets":[0,1]}}"#, data: [7])).names, ["é\"\\"])
    }

    func testTensorValidation() throws {
        XCTAssertEqual(try SafeTensors.Tensor([1.5, 2], shape: [2]).dtype, .float32) // literals make F32
        XCTAssertEqual(try SafeTensors.Tensor([1.5, 2], shape: [2]).bytes, [0, 0, 0xC0, 0x3F, 0, 0, 0, 0x40])
        assertNNError(NNError.shapeMismatch, mentions: ["[2, 2]", "4 elements", "3 float"]) {
            try SafeTensors.Tensor([1, 2, 3] as [Float], shape: [2, 2])
        }
        assertNNError(NNError.shapeMismatch, mentions: ["F32", "[2]", "7"]) {
            try SafeTensors.Tensor(dtype: .float32, shape: [2], bytes: [UInt8](repeating: 0, count: 7))
        }
        assertNNError(NNError.invalidArgument, mentions: ["negative"]) {
            try SafeTensors.Tensor([Float](), shape: [-1, 0])
        }
        var s = SafeTensors()
        assertNNError(NNError.invalidArgument, mentions: ["__metadata__"]) {
            try s.set("__metadata__", .init([Float(1)], shape: [1]))
        }
        try s.set("x", .init([Float(1)], shape: [1]))
        try s.set("y", .init([Float(2)], shape: [1]))
        try s.set("x", .init([Float(3), 4], shape: [2]))
        XCTAssertEqual(s.names, ["x", "y"])
        XCTAssertEqual(try s.floats("x"), [3, 4])
        s.remove("x")
        XCTAssertEqual(s.names, ["y"])
        XCTAssertNil(s["x"])
    }

    // MARK: - Atomic writes

    func directoryListing() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
    }

    func testSaveReplacesAndKeepsPermissions() throws {
        let path = dir + "/m.safetensors"
        try sample().write(to: path)
        chmod(path, 0o640)
        var s = SafeTensors()
        try s.set("only", .init([Float(42)], shape: [1]))
        try s.write(to: path)
        XCTAssertEqual(try SafeTensors(contentsOf: path), s)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o640)
        XCTAssertEqual(try directoryListing(), ["m.safetensors"]) // no temporary left behind
    }

    func testFailedWriteLeavesPreviousFileIntact() throws {
        let path = dir + "/m.safetensors"
        let original = try sample()
        try original.write(to: path)
        let before = try DataTestSupport.read(path)

        // A failure in the middle of writing (as a full disk would give): half the new bytes
        // are written, then the write throws.
        var replacement = SafeTensors()
        try replacement.set("big", .init([Float](repeating: 1, count: 10_000), shape: [10_000]))
        let newBytes = replacement.serialized()
        assertNNError(NNError.fileError, mentions: ["disk full"]) {
            try FileIO.writeAtomically(to: path) { (fd: Int32) throws(NNError) in
                let half = Array(newBytes.prefix(newBytes.count / 2))
                _ = half.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                throw NNError.fileError("disk full (simulated)")
            }
        }
        XCTAssertEqual(try DataTestSupport.read(path), before)
        XCTAssertEqual(try directoryListing(), ["m.safetensors"])

        // A target that is a directory, and a directory that does not exist.
        let sub = dir + "/sub"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: false)
        assertNNError(NNError.fileError, mentions: ["directory"]) { try replacement.write(to: sub) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: sub))
        assertNNError(NNError.fileError, mentions: ["'\(dir)/absent'", "does not exist"]) {
            try replacement.write(to: dir + "/absent/m.safetensors")
        }
        // A read-only directory (skipped when running as root, who may write anyway).
        if geteuid() != 0 {
            let ro = dir + "/ro"
            try FileManager.default.createDirectory(atPath: ro, withIntermediateDirectories: false)
            try original.write(to: ro + "/m.safetensors")
            chmod(ro, 0o555)
            defer { chmod(ro, 0o755) }
            assertNNError(NNError.fileError) { try replacement.write(to: ro + "/m.safetensors") }
            XCTAssertEqual(try DataTestSupport.read(ro + "/m.safetensors"), before)
        }
        XCTAssertEqual(try SafeTensors(contentsOf: path), original)
        XCTAssertEqual(try directoryListing(), ["m.safetensors", "sub"])
    }
}
