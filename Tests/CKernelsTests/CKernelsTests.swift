import CKernels
import CKernelsCheck
import Foundation
import XCTest

/// Drives the C kernel suite (Tests/CKernelsCheck) from XCTest: each group runs every ISA path
/// this CPU supports against its reference and reports how many assertions failed.
final class CKernelsTests: XCTestCase {
    private func run(_ group: (UnsafeMutablePointer<nnk_check>?) -> Void, _ name: String) {
        var result = nnk_check()
        group(&result)
        XCTAssertGreaterThan(result.passed, 0, "\(name): no assertion ran")
        XCTAssertEqual(result.failed, 0, "\(name): first failure: \(String(cString: nnk_check_first_failure(&result)))")
    }

    func testDispatch() { run(nnk_check_dispatch, "dispatch") }
    func testGEMM() { run(nnk_check_gemm, "gemm") }
    func testDense() { run(nnk_check_dense, "dense") }
    func testActivations() { run(nnk_check_activations, "activations") }
    func testLosses() { run(nnk_check_losses, "losses") }
    func testOptimizers() { run(nnk_check_optim, "optim") }
    func testPooling() { run(nnk_check_pool, "pool") }
    func testNormalization() { run(nnk_check_norm, "norm") }
    func testKernelOverrides() { run(nnk_check_overrides, "overrides") }
    func testConvolution() { run(nnk_check_conv, "conv") }
    func testBF16() { run(nnk_check_bf16, "bf16") }
    func testInt8() { run(nnk_check_int8, "int8") }

    /// The Swift side sees the same dispatch the C side does.
    func testInfoThroughModuleMap() {
        XCTAssertEqual(nnk_isa_supported(nnk_isa_active()), 1)
        XCTAssertEqual(nnk_openmp_enabled(), 1, "this package is expected to find libomp (libomp-dev)")
        XCTAssertGreaterThanOrEqual(nnk_get_num_threads(), 1)
    }

    /// NNB_ISA forces a path at start-up and an unknown value falls back with a note: checked on
    /// the nnb-kernels binary built beside this test bundle, in a child process per setting.
    func testEnvironmentForcesISA() throws {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var tool = dir.appendingPathComponent("nnb-kernels")
        if !FileManager.default.fileExists(atPath: tool.path) {
            tool = dir.deletingLastPathComponent().appendingPathComponent("nnb-kernels")
        }
        guard FileManager.default.isExecutableFile(atPath: tool.path) else {
            throw XCTSkip("nnb-kernels is not built beside the tests (run swift build first)")
        }
        func info(_ isa: String) throws -> String {
            let p = Process()
            p.executableURL = tool
            p.arguments = ["info"]
            p.environment = ["NNB_ISA": isa, "OMP_NUM_THREADS": "3"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            p.waitUntilExit()
            return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }
        for isa in [NNK_ISA_SCALAR, NNK_ISA_AVX2, NNK_ISA_AVX512, NNK_ISA_NEON] where nnk_isa_supported(isa) == 1 {
            let name = String(cString: nnk_isa_name(isa))
            let text = try info(name)
            XCTAssertTrue(text.contains("ISA: \(name)\n"), "NNB_ISA=\(name) gave:\n\(text)")
            XCTAssertTrue(text.contains("threads: 3"), "OMP_NUM_THREADS=3 gave:\n\(text)")
        }
        let bogus = try info("sse9")
        XCTAssertTrue(bogus.contains("NNB_ISA names no known path"), bogus)
        XCTAssertTrue(bogus.contains("ISA: \(String(cString: nnk_isa_name(nnk_isa_active())))\n") || ProcessInfo.processInfo.environment["NNB_ISA"] != nil, bogus)
    }
}
