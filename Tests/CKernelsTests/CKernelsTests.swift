import CKernels
import CKernelsCheck
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

    /// The Swift side sees the same dispatch the C side does.
    func testInfoThroughModuleMap() {
        XCTAssertEqual(nnk_isa_supported(nnk_isa_active()), 1)
        XCTAssertEqual(nnk_openmp_enabled(), 1, "this package is expected to find libomp (libomp-dev)")
        XCTAssertGreaterThanOrEqual(nnk_get_num_threads(), 1)
    }
}
