import Foundation
import NNBackprop
import XCTest

/// `nnb train` on images: an .npy file of (n, 1, 6, 6) keeps its shape, so convolutions take it;
/// --augment-shift / --augment-flip are seeded and change the weights; --schedule; and the
/// options' errors.
final class CLIImageTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-images-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // 64 noise images with a bright left or right half; the label says which.
        var g = SeededGenerator(seed: 3)
        var x: [Float] = []
        var y: [Float] = []
        for i in 0..<64 {
            for r in 0..<6 {
                for c in 0..<6 { x.append(g.nextFloat() * 0.3 + ((c < 3) == (i % 2 == 0) ? 1 : 0)); _ = r }
            }
            y.append(Float(i % 2))
        }
        try Self.npy(x, shape: [64, 1, 6, 6]).write(to: dir.appendingPathComponent("x.npy"))
        try Self.npy(y, shape: [64]).write(to: dir.appendingPathComponent("y.npy"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A version-1 .npy file of little-endian float32 values of `shape`.
    private static func npy(_ values: [Float], shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(dims), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        d.append(contentsOf: Array(header.utf8))
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    private func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    private func train(_ extra: [String], output: String) throws -> NNBCommand.Run {
        let r = try NNBCommand.run(["train", "--data", path("x.npy"), "--targets", path("y.npy"), "--layers",
                                    "conv2d(2,3,padding=1):relu-maxpool2d(2)-flatten", "--epochs", "3", "--batch-size", "16",
                                    "--lr", "0.01", "--threads", "1", "--output", path(output)] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    private func weights(_ name: String) throws -> [UInt32] {
        let st = try SafeTensors(contentsOf: path(name))
        return try st.names.sorted().flatMap { try st.floats($0) }.map(\.bitPattern)
    }

    func testAugmentationAndScheduleOnImages() throws {
        let a = try train(["--augment-shift", "1", "--augment-flip", "--schedule", "cosine"], output: "a.safetensors")
        XCTAssertTrue(a.stdout.contains("model: 1x6x6-2x6x6-2x3x3-18-2"), a.stdout)
        XCTAssertTrue(a.stdout.contains("cosine schedule, shifts up to 1 px, flips"), a.stdout)
        _ = try train(["--augment-shift", "1", "--augment-flip", "--schedule", "cosine"], output: "b.safetensors")
        _ = try train(["--schedule", "cosine"], output: "c.safetensors")
        _ = try train([], output: "d.safetensors")
        XCTAssertEqual(try weights("a.safetensors"), try weights("b.safetensors"), "one seed, one augmented run")
        XCTAssertNotEqual(try weights("a.safetensors"), try weights("c.safetensors"), "augmentation changes training")
        XCTAssertNotEqual(try weights("c.safetensors"), try weights("d.safetensors"), "the schedule changes training")
    }

    func testBadImageAndScheduleOptionsAreUsageErrors() throws {
        let cases: [([String], String)] = [
            (["--data", "spirals", "--augment-flip"], "(C, H, W)"),
            (["--data", "spirals", "--augment-shift", "65"], "65"),
            (["--data", "spirals", "--augment-shift", "-1"], "-1"),
            (["--data", path("x.npy"), "--targets", path("y.npy"), "--layers", "flatten-8", "--augment-shift", "6"], "6x6"),
            (["--data", "spirals", "--schedule", "cosine", "--gamma", "0.5"], "gamma"),
            (["--data", "spirals", "--schedule", "warp"], "unknown schedule 'warp'"),
            (["--data", "spirals", "--step-size", "3"], "step size"),
            (["--data", "spirals", "--optimizer", "irprop", "--schedule", "cosine"], "irprop"),
        ]
        for (args, mention) in cases {
            let r = try NNBCommand.run(["train", "--epochs", "1", "--quiet"] + args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(mention), "\(args): '\(mention)' in \(r.stderr)")
        }
    }
}
