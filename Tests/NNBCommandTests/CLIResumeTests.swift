import Foundation
import NNBackprop
import XCTest

/// `nnb train --checkpoint` then `nnb train --resume` in a new process: the weights of 1 + 1
/// epochs equal those of 2 epochs straight, bitwise.
final class CLIResumeTests: XCTestCase {
    private var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-resume-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    private func train(_ extra: [String]) throws -> NNBCommand.Run {
        let common = ["train", "--data", "spirals", "--layers", "16,16", "--optimizer", "adam", "--lr", "0.01",
                      "--validation-split", "0.1", "--quiet", "--threads", "2"]
        let r = try NNBCommand.run(common + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return r
    }

    private func weights(_ name: String) throws -> [UInt32] {
        let st = try SafeTensors(contentsOf: dir.appendingPathComponent(name).path)
        return try st.names.filter { !$0.hasPrefix("optimizer.") }.sorted().flatMap { try st.floats($0) }.map(\.bitPattern)
    }

    func testLayersInTheDescriptionGrammar() throws {
        let r = try NNBCommand.run(["train", "--data", "spirals", "--layers", "32:relu-dropout:0.1-reshape(4x8)-flatten-16:tanh",
                                    "--epochs", "3", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("model: 2-32-4x8-32-16-2"), r.stdout)
        // nnb info --model: each layer with its output shape and parameter count.
        let path = dir.appendingPathComponent("g.safetensors").path
        _ = try train(["--layers", "8:relu-reshape(2x4)-flatten", "--epochs", "1", "--output", path])
        let info = try NNBCommand.run(["info", "--model", path])
        XCTAssertEqual(info.status, 0, info.stderr)
        for line in ["0 8:relu", "1 reshape(2x4)  2x4", "2 flatten", "3 2", "total: 42 trainable parameters"] { // 42 = 2*8+8 + 8*2+2
            XCTAssertTrue(info.stdout.contains(line), "'\(line)' in:\n\(info.stdout)")
        }
        let bad = try NNBCommand.run(["train", "--data", "spirals", "--layers", "32:relu-conv9d(3)", "--epochs", "1"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("conv9d"), bad.stderr)
    }

    func testResumeInANewProcessIsBitExact() throws {
        let path = { (name: String) in self.dir.appendingPathComponent(name).path }
        _ = try train(["--epochs", "2", "--output", path("straight.safetensors")])
        let first = try train(["--epochs", "1", "--checkpoint", "--output", path("one.safetensors")])
        XCTAssertTrue(first.stdout.contains("saved the checkpoint"), first.stdout)
        _ = try train(["--epochs", "2", "--resume", path("one.safetensors"), "--output", path("resumed.safetensors")])
        XCTAssertEqual(try weights("resumed.safetensors"), try weights("straight.safetensors"))
        XCTAssertNotEqual(try weights("one.safetensors"), try weights("straight.safetensors"))

        // Another architecture, another seed, nothing left to do, no --output for --checkpoint.
        let cases: [([String], String)] = [
            (["--layers", "8", "--epochs", "2", "--resume", path("one.safetensors")], "another architecture"),
            (["--seed", "7", "--epochs", "2", "--resume", path("one.safetensors")], "--seed 42"),
            (["--batch-size", "16", "--epochs", "2", "--resume", path("one.safetensors")], "batch size 32"),
            (["--epochs", "1", "--resume", path("one.safetensors")], "nothing is left"),
            (["--epochs", "2", "--resume", path("straight.safetensors")], "without a training checkpoint"),
            (["--epochs", "2", "--checkpoint"], "--output"),
        ]
        for (args, message) in cases {
            let r = try NNBCommand.run(["train", "--data", "spirals", "--layers", "16,16", "--lr", "0.01", "--validation-split", "0.1", "--quiet"]
                                       .filter { !(args.contains("--layers") && ($0 == "--layers" || $0 == "16,16")) } + args)
            XCTAssertNotEqual(r.status, 0, "\(args) should fail")
            XCTAssertTrue(r.stderr.contains(message), "\(args): \(r.stderr)")
        }
    }
}
