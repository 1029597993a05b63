import Foundation
import NNBackprop
import Synchronization
import XCTest

/// `Sequential.infer`, the reentrant inference path behind the C API's nnb_predict.
final class InferenceTests: XCTestCase {
    private func model(seed: UInt64 = 3) throws -> Sequential {
        try Sequential(seed: seed) {
            try Dense(13, 32, activation: .relu)
            try Dropout(0.3)
            try Dense(32, 17, activation: .tanh)
            ActivationLayer(.gelu)
            try Dense(17, 5)
            Softmax()
        }
    }

    private func inputs(rows: Int, seed: UInt64 = 9) -> [Float] {
        var g = SeededGenerator(seed: seed)
        return (0..<(rows * 13)).map { _ in g.nextFloat(in: -2..<2) }
    }

    /// The same numbers as `predict`, which runs through the layers' own buffers, for batch
    /// sizes on both sides of the unpacked small-row GEMM path.
    func testMatchesPredictBitwise() throws {
        let m = try model()
        for rows in [1, 3, 4, 5, 31, 64, 200] {
            let x = inputs(rows: rows)
            let want = try m.predict(x, batchSize: rows)
            var got = [Float](repeating: .nan, count: rows * 5)
            x.withUnsafeBufferPointer { xs in got.withUnsafeMutableBufferPointer { m.infer(xs.baseAddress!, rows: rows, into: $0.baseAddress!) } }
            XCTAssertEqual(got, want, "rows \(rows)")
        }
    }

    /// One sample through a model of Dense layers only runs as one chain in one parallel region
    /// (split over the threads by the weights' bytes): the same numbers as `predict`'s layer by
    /// layer pass, on 1 to 3 threads, and for a chain too small to split.
    func testDenseChainMatchesPredictBitwise() throws {
        let saved = Runtime.threads
        defer { try? Runtime.setThreads(saved) }
        let big = try Sequential(seed: 5) {
            try Dense(784, 256, activation: .relu)
            try Dense(256, 130, activation: .gelu)
            try Dense(130, 10, activation: .sigmoid)
        }
        let small = try Sequential(seed: 6) { try Dense(7, 3, activation: .tanh) }
        for (m, width) in [(big, 784), (small, 7)] {
            var g = SeededGenerator(seed: 11)
            let x = (0..<width).map { _ in g.nextFloat(in: -1..<1) }
            for threads in 1...3 where threads <= Runtime.maxThreads {
                try Runtime.setThreads(threads)
                let want = try m.predict(x, batchSize: 1)
                var got = [Float](repeating: .nan, count: m.outputSize)
                x.withUnsafeBufferPointer { xs in got.withUnsafeMutableBufferPointer { m.infer(xs.baseAddress!, rows: 1, into: $0.baseAddress!) } }
                XCTAssertEqual(got, want, "\(width) inputs, \(threads) threads")
            }
        }
    }

    /// With a scaler the inputs are standardized first, as predict does.
    func testAppliesScaler() throws {
        let m = try model()
        let x = inputs(rows: 40)
        m.scaler = try Standardizer(fitting: x, featureCount: 13)
        let want = try m.predict(x)
        var got = [Float](repeating: 0, count: 40 * 5)
        x.withUnsafeBufferPointer { xs in got.withUnsafeMutableBufferPointer { m.infer(xs.baseAddress!, rows: 40, into: $0.baseAddress!) } }
        XCTAssertEqual(got, want)
    }

    /// Eight threads predicting with one model at once each get the single-threaded answer.
    func testConcurrentCallsAgree() throws {
        /// The model is shared read-only: that is the point of `infer`.
        struct Shared: @unchecked Sendable { let model: Sequential }
        let shared = Shared(model: try model())
        let rows = 7
        let x = inputs(rows: rows)
        let want = try shared.model.predict(x)
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var out = [Float](repeating: 0, count: rows * 5)
            for _ in 0..<200 {
                x.withUnsafeBufferPointer { xs in out.withUnsafeMutableBufferPointer { shared.model.infer(xs.baseAddress!, rows: rows, into: $0.baseAddress!) } }
                if out != want { mismatches.withLock { $0 += 1 } }
            }
        }
        XCTAssertEqual(mismatches.withLock { $0 }, 0)
    }
}
