import Foundation
@testable import NNBackprop
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Regression tests for hostile and careless input: each reproduces a defect that once ended
/// in a trap, a huge allocation, silent NaN or a replaced file. The tiny hostile files are in
/// Tests/hostile/.
final class ReliabilityTests: XCTestCase {
    private static let hostile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("hostile").path

    private func hostile(_ name: String) -> String { Self.hostile + "/" + name }

    private func assertThrows(_ expected: (NNError) -> Bool, _ contains: String, file: StaticString = #filePath,
                              line: UInt = #line, _ body: () throws -> Void) {
        do {
            try body()
            XCTFail("no error thrown", file: file, line: line)
        } catch let error as NNError {
            XCTAssertTrue(expected(error), "unexpected kind: \(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(contains), "'\(error.message)' does not say '\(contains)'", file: file, line: line)
        } catch {
            XCTFail("not an NNError: \(error)", file: file, line: line)
        }
    }

    // MARK: - Sizes from files

    func testIDXWithLeadingZeroDimensionAndOverflowingRestIsCorrupt() {
        // (0, 2^32-1, 2^32-1): 0 elements, but a row width past Int.max; it used to trap.
        assertThrows({ if case .corruptFile = $0 { return true } else { return false } }, "implausible element count") {
            _ = try Dataset.idx(images: hostile("idx-zero-dim-images.idx"), labels: hostile("idx-zero-dim-labels.idx"))
        }
    }

    func testNPYWithLeadingZeroDimensionAndOverflowingRestIsCorrupt() {
        assertThrows({ if case .corruptFile = $0 { return true } else { return false } }, "implausible element count") {
            _ = try Dataset.npy(features: hostile("npy-zero-dim.npy"), targets: hostile("npy-zero-labels.npy"))
        }
    }

    func testCheckedShapeProduct() {
        XCTAssertEqual(Sizes.product([3, 4, 5]), 60)
        XCTAssertEqual(Sizes.product([0, 7]), 0)
        XCTAssertEqual(Sizes.product([Int]()), 1)
        XCTAssertNil(Sizes.product([0, 1 << 32, 1 << 32]), "a zero must not hide an overflowing product")
        XCTAssertNil(Sizes.product([3, -1]))
        XCTAssertNil(Sizes.product([1 << 20, 1 << 21], limit: 1 << 40))
        XCTAssertEqual(Sizes.product([1 << 20, 1 << 20], limit: 1 << 40), 1 << 40)
    }

    func testSafeTensorsShapeWithZeroAndOverflowIsRefused() {
        XCTAssertThrowsError(try SafeTensors.Tensor(dtype: .float32, shape: [0, 1 << 40, 1 << 40], bytes: []))
    }

    // MARK: - Allocations driven by the input

    func testGzipTrailerClaimingFourGiBIsNotTrusted() {
        // 32 bytes whose ISIZE says 4 GiB - 1: the reservation is bounded by what 32 bytes can
        // inflate to. The stream's own length check then fails: a corrupt file, not a crash.
        assertThrows({ if case .corruptFile = $0 { return true } else { return false } }, "csv-isize-4gib.csv.gz") {
            _ = try FileIO.readAllDecompressing(hostile("csv-isize-4gib.csv.gz"))
        }
    }

    func testGzipBombStopsAtTheLimit() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        // 8 members of 1 MiB of zeros each: about 8 KB that inflate to 8 MiB.
        let member = try DataTestSupport.python("""
            import gzip, sys
            sys.stdout.buffer.write(gzip.compress(bytes(1 << 20), mtime=0).hex().encode())
            """)
        let bytes = stride(from: 0, to: member.count - 1, by: 2).map { i -> UInt8 in
            let s = member.utf8.dropFirst(i).prefix(2)
            return UInt8(String(decoding: s, as: UTF8.self), radix: 16)!
        }
        let path = dir + "/bomb.csv.gz"
        try DataTestSupport.write(Array(repeating: bytes, count: 8).flatMap { $0 }, to: path)
        XCTAssertEqual(try FileIO.readAllDecompressing(path, maxDecompressedBytes: 8 << 20).count, 8 << 20)
        assertThrows({ if case .unsupported = $0 { return true } else { return false } }, "gzip bomb") {
            _ = try FileIO.readAllDecompressing(path, maxDecompressedBytes: 3 << 20)
        }
    }

    func testHugeClassLabelIsRefusedBeforeSizingALayer() {
        assertThrows({ if case .invalidData = $0 { return true } else { return false } }, "2147483647 classes") {
            _ = try Dataset.csv(path: hostile("csv-huge-label.csv"), target: .name("label"))
        }
        assertThrows({ if case .invalidData = $0 { return true } else { return false } }, "maxClassCount") {
            _ = try Dataset(features: [0], featureCount: 1, targets: .classes([0], classCount: Dataset.maxClassCount + 1))
        }
    }

    // MARK: - Divergence

    private func spirals() throws -> Dataset { try Dataset.spirals(count: 200, seed: 3) }

    func testDivergenceStopsTrainingAndKeepsTheLastFiniteWeights() throws {
        // `nnb train --optimizer sgd --lr 1e6`, which printed "loss -nan" and saved NaN weights.
        let data = try Dataset.spirals(seed: 42)
        let model = try Sequential(seed: 42) {
            try Dense(2, 64, activation: .relu)
            try Dense(64, 64, activation: .relu)
            try Dense(64, 2)
        }
        let initial = model.parameterValues
        let sgd = SGD(learningRate: 1e6)
        assertThrows({ if case .diverged = $0 { return true } else { return false } }, "epoch 1") {
            try model.fit(data, epochs: 3, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: sgd)
        }
        XCTAssertTrue(model.parameterValues.allSatisfy(\.isFinite))
        XCTAssertEqual(model.parameterValues, initial, "the weights of the start of the diverging epoch (here the first)")
        // A sane rate then trains the same model normally.
        sgd.learningRate = 0.05
        let history = try model.fit(data, epochs: 2, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: sgd)
        XCTAssertEqual(history.epochs.count, 2)
    }

    func testDivergenceInALaterEpochRestoresThatEpochsStart() throws {
        let data = try spirals()
        let model = try Sequential(seed: 2) { try Dense(2, 2) }
        let sgd = SGD(learningRate: 0.1)
        var afterFirst: [Float] = []
        // A weight that overflows in the first step of epoch 2 (as a huge step would make it).
        let poison = ClosureCallback(onBatchEnd: { p in
            if p.epoch == 1 && p.batch == 0 { model.parameters[0] = .infinity }
            return .proceed
        }, onEpochEnd: { epoch, _ in
            if epoch == 0 { afterFirst = model.parameterValues }
            return .proceed
        })
        assertThrows({ if case .diverged = $0 { return true } else { return false } }, "epoch 2") {
            try model.fit(data, epochs: 3, batchSize: 50, loss: .softmaxCrossEntropy(), optimizer: sgd, shuffle: false,
                          callbacks: [poison])
        }
        XCTAssertEqual(model.parameterValues, afterFirst)
    }

    func testPluginActivationReturningNaNIsDivergence() throws {
        final class NaNActivation: CustomActivation {
            let name = "nan_after_start"
            func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
                for i in 0..<count { y[i] = .nan }
            }
            func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                          _ y: UnsafePointer<Float>, count: Int) {
                for i in 0..<count { dx[i] = dy[i] }
            }
        }
        if Plugins.activation(named: "nan_after_start") == nil { try Plugins.register(activation: NaNActivation()) }
        let model = try Sequential(layers: [try Dense(2, 4), try CustomActivationLayer(name: "nan_after_start"), try Dense(4, 2)],
                                   seed: 3)
        assertThrows({ if case .diverged = $0 { return true } else { return false } }, "nan") {
            try model.fit(try spirals(), epochs: 1, loss: .softmaxCrossEntropy(), optimizer: Adam())
        }
    }

    func testNonFiniteWeightsAreRefusedOnLoadUnlessAsked() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let model = try Sequential(seed: 4) { try Dense(3, 2) }
        model.parameters[4] = .nan
        let path = dir + "/nan.safetensors"
        try model.save(to: path)
        assertThrows({ if case .invalidData = $0 { return true } else { return false } }, "0.weight") {
            _ = try Sequential.load(from: path)
        }
        let loaded = try Sequential.load(from: path, allowNonFinite: true)
        XCTAssertTrue(loaded.parameters[4].isNaN)
    }

    // MARK: - Saving

    func testSaveRefusesDevicesDirectoriesAndPipes() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let model = try Sequential(seed: 5) { try Dense(2, 2) }
        assertThrows({ if case .fileError = $0 { return true } else { return false } }, "character device") {
            try model.save(to: "/dev/null")
        }
        var info = stat()
        XCTAssertEqual(lstat("/dev/null", &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR, "/dev/null is still a device")
        assertThrows({ if case .fileError = $0 { return true } else { return false } }, "is a directory") {
            try model.save(to: dir)
        }
        XCTAssertEqual(mkfifo(dir + "/pipe", 0o600), 0)
        assertThrows({ if case .fileError = $0 { return true } else { return false } }, "named pipe") {
            try model.save(to: dir + "/pipe")
        }
        XCTAssertThrowsError(try FileIO.checkWritable(dir + "/missing/m.safetensors"))
        XCTAssertNoThrow(try FileIO.checkWritable(dir + "/new.safetensors"))
    }

    func testSaveWritesThroughSymlinksAndKeepsPermissions() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let model = try Sequential(seed: 6) { try Dense(2, 2) }
        let target = dir + "/target.safetensors", link = dir + "/link.safetensors"
        try DataTestSupport.write("old", to: target)
        XCTAssertEqual(chmod(target, 0o640), 0)
        XCTAssertEqual(symlink("target.safetensors", link), 0) // relative, as `ln -s` makes
        try model.save(to: link)
        var info = stat()
        XCTAssertEqual(lstat(link, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFLNK, "the link is still a link")
        XCTAssertEqual(lstat(target, &info), 0)
        XCTAssertEqual(info.st_mode & 0o7777, 0o640, "the target keeps its permissions")
        XCTAssertEqual(try Sequential.load(from: target).parameterValues, model.parameterValues)
        XCTAssertEqual(try Sequential.load(from: link).parameterValues, model.parameterValues)
    }

    func testStaleTemporariesOfKilledWritersAreRemoved() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let model = try Sequential(seed: 7) { try Dense(2, 2) }
        // The pid of a process that has exited: its temporary is stale.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let prefix = dir + "/" + FileIO.temporaryPrefix(for: "m.safetensors")
        let stale = prefix + "\(child.processIdentifier)-1.2-0", live = prefix + "\(getpid())-1.2-0"
        let other = dir + "/" + FileIO.temporaryPrefix(for: "other.safetensors") + "\(child.processIdentifier)-1.2-0"
        for p in [stale, live, other] { try DataTestSupport.write("partial", to: p) }
        try model.save(to: dir + "/m.safetensors")
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale), "a dead writer's temporary is removed")
        XCTAssertTrue(FileManager.default.fileExists(atPath: live), "a live writer's temporary is kept")
        XCTAssertTrue(FileManager.default.fileExists(atPath: other), "another file's temporaries are not touched")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir)
        XCTAssertEqual(names.filter { $0.contains(".nnb-tmp-") }.count, 2, "the save leaves no temporary of its own: \(names)")
    }

    // MARK: - Fuzzing findings

    /// Every model-file input the fuzzer found a problem with (Tests/fuzz/crashes/model_file-*)
    /// now either fails to load with an NNError or loads, saves and loads again unchanged.
    func testModelFilesFoundByFuzzingLoadOrFailCleanly() throws {
        let dir = URL(fileURLWithPath: Self.hostile).deletingLastPathComponent().appendingPathComponent("fuzz/crashes").path
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("model_file-") }.sorted()
        XCTAssertFalse(names.isEmpty, "no model_file findings in \(dir)")
        let tmp = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(tmp) }
        for name in names {
            let model: Sequential
            do { model = try Sequential.load(from: dir + "/" + name) } catch { continue } // refused with a message: fine
            try model.save(to: tmp + "/again.safetensors")
            let again = try Sequential.load(from: tmp + "/again.safetensors")
            XCTAssertEqual(again.parameterValues, model.parameterValues, name)
            XCTAssertEqual(again.layers.map(\.spec), model.layers.map(\.spec), name)
        }
    }

    func testNonFiniteActivationAlphaIsRefused() {
        XCTAssertThrowsError(try Activation(name: "elu", alpha: .infinity))
        XCTAssertThrowsError(try Activation(name: "leaky_relu", alpha: .nan))
    }

    // MARK: - Options and messages

    func testScheduleValidation() {
        XCTAssertThrowsError(try LearningRateSchedule.step(stepSize: 2, gamma: -5).validate())
        XCTAssertThrowsError(try LearningRateSchedule.exponential(gamma: .nan).validate())
        XCTAssertThrowsError(try LearningRateSchedule.linearWarmup(epochs: 1, then: .step(stepSize: 0, gamma: 0.5)).validate())
        XCTAssertNoThrow(try LearningRateSchedule.linearWarmup(epochs: 0, then: .cosine(epochs: 3)).validate())
        let model = try? Sequential(seed: 8) { try Dense(2, 2) }
        XCTAssertThrowsError(try model?.fit(try spirals(), epochs: 1, loss: .softmaxCrossEntropy(), optimizer: SGD(),
                                            schedule: .step(stepSize: 1, gamma: -5)))
    }

    func testSoftmaxAsADenseActivationSaysItIsALayer() {
        assertThrows({ if case .unknownName = $0 { return true } else { return false } }, "layer of its own") {
            _ = try Activation(name: "softmax")
        }
    }
}
