import Foundation
import NNBackprop
import XCTest

/// The nnb command against hostile files and careless options, as a user would hit them:
/// each case once ended in a signal, a runaway allocation, a silent NaN model, or a failure
/// reported only after training. Hostile inputs run under a 4 GB address-space limit, where an
/// allocation the input asked for would abort the process.
final class CLIReliabilityTests: XCTestCase {
    private static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    private func hostile(_ name: String) -> String { Self.tests.appendingPathComponent("hostile/\(name)").path }

    /// Runs nnb under `ulimit -v 4000000` (kilobytes: about 4 GB).
    private func runLimited(_ arguments: [String]) throws -> NNBCommand.Run {
        let nnb = try NNBCommand.executable().path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\"", nnb] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return NNBCommand.Run(status: p.terminationStatus, exited: p.terminationReason == .exit,
                              stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }

    private func assertCleanFailure(_ r: NNBCommand.Run, says: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(r.exited, "ended by a signal: \(r.stderr)", file: file, line: line)
        XCTAssertEqual(r.status, 1, r.stderr, file: file, line: line)
        XCTAssertTrue(r.stderr.contains(says), "stderr does not say '\(says)': \(r.stderr)", file: file, line: line)
    }

    func testHostileFilesFailCleanlyUnderAMemoryLimit() throws {
        assertCleanFailure(try runLimited(["train", "--data", hostile("idx-zero-dim-images.idx"),
                                           "--targets", hostile("idx-zero-dim-labels.idx")]),
                           says: "implausible element count")
        assertCleanFailure(try runLimited(["train", "--data", hostile("npy-zero-dim.npy"),
                                           "--targets", hostile("npy-zero-labels.npy")]),
                           says: "implausible element count")
        assertCleanFailure(try runLimited(["train", "--data", hostile("csv-isize-4gib.csv.gz")]), says: "gzip")
        assertCleanFailure(try runLimited(["train", "--data", hostile("csv-huge-label.csv"), "--layers", "none"]),
                           says: "2147483647 classes")
    }

    func testGzipBombFailsCleanlyUnderAMemoryLimit() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-bomb-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // 24 gzip members of 64 MiB of zeros: 1.5 MB that inflate to 1.5 GiB.
        let bomb = dir.appendingPathComponent("bomb.csv.gz").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import gzip, sys; m = gzip.compress(bytes(64 << 20), 9, mtime=0); open(sys.argv[1], 'wb').write(m * 24)", bomb]
        try p.run()
        p.waitUntilExit()
        try XCTSkipUnless(p.terminationStatus == 0, "python3 could not write the gzip bomb")
        assertCleanFailure(try runLimited(["train", "--data", bomb]), says: "gzip bomb")
    }

    func testAbsurdThreadCountIsAUsageError() throws {
        let r = try runLimited(["train", "--threads", "100000", "--epochs", "1"])
        XCTAssertTrue(r.exited)
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--threads must be in 1..."), r.stderr)
    }

    func testDivergenceFailsAndWritesNoModel() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nnb-diverge-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("m.safetensors").path
        let r = try NNBCommand.run(["train", "--optimizer", "sgd", "--lr", "1e6", "--epochs", "3", "--output", out])
        assertCleanFailure(r, says: "training diverged")
        XCTAssertFalse(r.stdout.contains("loss nan") || r.stdout.contains("loss -nan"), r.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no model file is written")
    }

    func testUnwritableOutputFailsBeforeTraining() throws {
        let dir = FileManager.default.temporaryDirectory
        let r = try NNBCommand.run(["train", "--epochs", "1", "--output", dir.path])
        XCTAssertEqual(r.status, 64, r.stderr)
        XCTAssertTrue(r.stderr.contains("is a directory"), r.stderr)
        XCTAssertFalse(r.stdout.contains("trained"), "it must fail before training: \(r.stdout)")
        let dev = try NNBCommand.run(["train", "--epochs", "1", "--output", "/dev/null"])
        XCTAssertEqual(dev.status, 64, dev.stderr)
        XCTAssertTrue(dev.stderr.contains("character device"), dev.stderr)
    }

    func testOptionsThatDoNotApplyAreRefused() throws {
        let r = try NNBCommand.run(["train", "--optimizer", "adam", "--momentum", "0.9", "--epochs", "1"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--momentum applies to sgd and rmsprop"), r.stderr)
    }

    func testEvaluateNeedsData() throws {
        let r = try NNBCommand.run(["evaluate", "--model", "whatever.safetensors"])
        XCTAssertEqual(r.status, 64)
        XCTAssertTrue(r.stderr.contains("--data is required"), r.stderr)
    }

    /// The README's iris example, on scikit-learn's copy of Fisher's iris data.
    func testReadmeIrisExampleLearns() throws {
        let iris = Self.tests.appendingPathComponent("data/iris.csv").path
        for seed in ["1", "42"] {
            let r = try NNBCommand.run(["train", "--data", iris, "--target", "species", "--standardize", "--epochs", "100",
                                        "--seed", seed, "--quiet"])
            XCTAssertEqual(r.status, 0, r.stderr)
            let accuracy = try XCTUnwrap(NNBCommand.number(in: r.stdout, line: "test:", after: "accuracy"), r.stdout)
            XCTAssertGreaterThanOrEqual(accuracy, 90, r.stdout)
        }
    }
}
