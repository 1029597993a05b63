import Foundation
@testable import NNBackprop
import XCTest

/// Data-parallel `fit(group:)` without MPI: `ThreadGroup` runs the ranks as threads of this
/// process and sums in rank order (so every rank gets the same bits, as MPI's allreduce gives),
/// which tests the sharding, gradient scaling, bucketing and reductions of the core. The MPI
/// group itself is tested by scripts/test-mpi.sh under mpirun.
final class DataParallelTests: XCTestCase {
    /// The collectives of `size` threads: each one deposits, waits for all, reads, waits again.
    final class Hub: @unchecked Sendable {
        let size: Int
        private let cond = NSCondition()
        private var arrived = 0, generation = 0
        var floats: [[Float]]
        var doubles: [[Double]]
        /// Each rank's last collective, (kind, count): they must agree, or the ranks have lost
        /// step (with MPI: a hang or garbage). The first disagreement seen.
        var tags: [String]
        private(set) var mismatch: String?
        init(size: Int) {
            self.size = size
            floats = Array(repeating: [], count: size)
            doubles = Array(repeating: [], count: size)
            tags = Array(repeating: "", count: size)
        }
        /// Deposits this rank's tag, waits for all, and records a disagreement.
        func enter(_ rank: Int, _ tag: String) {
            tags[rank] = tag
            barrier()
            cond.lock()
            if mismatch == nil, Set(tags).count > 1 { mismatch = "ranks disagree on a collective: \(tags)" }
            cond.unlock()
        }
        func barrier() {
            cond.lock()
            let g = generation
            arrived += 1
            if arrived == size {
                arrived = 0
                generation += 1
                cond.broadcast()
            } else {
                while g == generation { cond.wait() }
            }
            cond.unlock()
        }
    }

    final class ThreadGroup: DataParallelGroup {
        let rank: Int
        let hub: Hub
        var size: Int { hub.size }
        /// Added to this rank's hash check (a test of the check).
        var sums = 0, gradientSums = 0
        init(rank: Int, hub: Hub) {
            self.rank = rank
            self.hub = hub
        }
        func broadcast(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError) {
            hub.enter(rank, "broadcast \(values.count)")
            if let m = hub.mismatch { fatalError("ThreadGroup: \(m)") } // would hang or mix buffers under MPI
            if rank == 0 { hub.floats[0] = Array(values) }
            hub.barrier()
            if rank != 0 { _ = values.update(fromContentsOf: hub.floats[0]) }
            hub.barrier()
        }
        func sum(_ values: UnsafeMutableBufferPointer<Double>) throws(NNError) {
            sums += 1
            hub.enter(rank, "sum \(values.count)")
            if let m = hub.mismatch { fatalError("ThreadGroup: \(m)") } // would hang or mix buffers under MPI
            hub.doubles[rank] = Array(values)
            hub.barrier()
            for i in values.indices { values[i] = (0..<size).reduce(0.0) { $0 + hub.doubles[$1][i] } }
            hub.barrier()
        }
        func startSum(_ values: UnsafeMutableBufferPointer<Float>) throws(NNError) {
            gradientSums += 1
            hub.enter(rank, "gradient sum \(values.count)")
            if let m = hub.mismatch { fatalError("ThreadGroup: \(m)") } // would hang or mix buffers under MPI
            hub.floats[rank] = Array(values)
            hub.barrier()
            for i in values.indices { values[i] = (0..<size).reduce(Float(0)) { $0 + hub.floats[$1][i] } }
            hub.barrier()
        }
        func progress() {}
        func finishSums() throws(NNError) {}
    }

    private func data(rows: Int = 203) throws -> Dataset {
        try Dataset.spirals(count: rows, seed: 4)
    }

    private static func model(seed: UInt64) throws -> Sequential {
        try Sequential(seed: seed) {
            try Dense(2, 24, activation: .tanh)
            try Dense(24, 16, activation: .relu)
            try Dense(16, 2)
        }
    }

    /// Runs `body(rank, group)` on `size` threads; returns what each returned, in rank order.
    private func ranks<T>(_ size: Int, _ body: @escaping (Int, ThreadGroup) throws -> T) -> [Result<T, Error>] {
        let hub = Hub(size: size)
        nonisolated(unsafe) let body = body
        nonisolated(unsafe) var results = [Result<T, Error>?](repeating: nil, count: size)
        let lock = NSLock()
        var threads: [Thread] = []
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let t = Thread {
                let group = ThreadGroup(rank: r, hub: hub)
                let out = Result { try body(r, group) }
                lock.lock(); results[r] = out; lock.unlock()
                done.leave()
            }
            t.stackSize = 8 << 20
            threads.append(t)
            t.start()
        }
        done.wait()
        XCTAssertNil(hub.mismatch)
        return results.map { $0! }
    }

    /// 2 and 3 ranks (batches that do not divide evenly, a last batch of 11 rows) give the
    /// weights of one process on the same global batches within float summation error, the
    /// same bits on every rank, and the same training and test figures.
    func testMatchesOneProcessAndAgreesAcrossRanks() throws {
        let train = try data(), test = try Dataset.spirals(count: 60, seed: 9)
        let single = try Self.model(seed: 1)
        let h1 = try single.fit(train, epochs: 6, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.01),
                                validation: test, metrics: [.accuracy], seed: 3)
        for size in [2, 3] {
            let out = ranks(size) { r, g in
                // Each rank starts from other weights: rank 0's are broadcast.
                let m = try Self.model(seed: r == 0 ? 1 : 100 + UInt64(r))
                let h = try m.fit(train, epochs: 6, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: Adam(learningRate: 0.01),
                                  validation: test, metrics: [.accuracy], seed: 3, group: g)
                return (Array(m.parameters), h, g.gradientSums)
            }
            let got = try out.map { try $0.get() }
            for r in 1..<size { XCTAssertEqual(got[r].0, got[0].0, "\(size) ranks: rank \(r)'s weights differ from rank 0's") }
            let worst = zip(got[0].0, Array(single.parameters)).map { abs($0 - $1) }.max()!
            XCTAssertLessThan(worst, 1e-5, "\(size) ranks against one process")
            XCTAssertGreaterThan(got[0].2, 0, "no gradient was summed")
            for (e, logs) in h1.epochs.enumerated() {
                for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
                    XCTAssertEqual(got[0].1.epochs[e][key]!, logs[key]!, accuracy: 1e-5, "\(size) ranks, epoch \(e + 1), \(key)")
                }
            }
        }
    }

    /// A global batch smaller than the group leaves some ranks without rows: they still take
    /// part in every sum and end with the same weights as the others and as one process.
    func testRanksWithoutRows() throws {
        let train = try data(rows: 10)
        let single = try Self.model(seed: 2)
        try single.fit(train, epochs: 3, batchSize: 4, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), seed: 5)
        let got = try ranks(3) { _, g in
            let m = try Self.model(seed: 2)
            try m.fit(train, epochs: 3, batchSize: 4, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), seed: 5, group: g)
            return Array(m.parameters)
        }.map { try $0.get() }
        XCTAssertEqual(got[1], got[0])
        XCTAssertEqual(got[2], got[0])
        XCTAssertLessThan(zip(got[0], Array(single.parameters)).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// A loss that overflows on any rank is seen by all: every rank throws `diverged` at the
    /// same step (no rank waits for another), with the weights restored alike.
    func testDivergenceEndsEveryRank() throws {
        let train = try data()
        let out = ranks(2) { _, g in
            let m = try Self.model(seed: 1)
            do {
                try m.fit(train, epochs: 3, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 1e30), seed: 1, group: g)
                return "trained"
            } catch let e as NNError {
                if case .diverged = e { return "diverged \(Array(m.parameters).count)" }
                return "\(e)"
            }
        }
        let first = try out[0].get()
        XCTAssertEqual(first, try out[1].get())
        XCTAssertTrue(first.hasPrefix("diverged"), first)
    }

    /// Ranks given different data would run different numbers of steps (and wait forever):
    /// fit refuses on every rank before the first step.
    func testDifferentDataIsRefusedOnEveryRank() throws {
        let a = try data(rows: 100), b = try data(rows: 90)
        let out = ranks(2) { r, g in
            let m = try Self.model(seed: 1)
            do {
                try m.fit(r == 0 ? a : b, epochs: 2, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), group: g)
                return "trained"
            } catch let e as NNError {
                return e.message
            }
        }
        for r in 0..<2 {
            let msg = try out[r].get()
            XCTAssertTrue(msg.contains("rank \(r) of 2 has other data sizes") && msg.contains("rows \(r == 0 ? 100 : 90)"), msg)
        }
    }

    /// Many buckets a step (a 256-byte bucket size): still one process's weights; and a rank
    /// whose loss overflows (its rows are huge) contributes the same buckets as the others, so
    /// every rank stops with `diverged` at the same step, in step with each other.
    func testManyBucketsAndOneRankDiverging() throws {
        let saved = GradientReducer.bucketBytes
        GradientReducer.bucketBytes = 256
        defer { GradientReducer.bucketBytes = saved }
        let train = try data()
        let single = try Self.model(seed: 1)
        try single.fit(train, epochs: 3, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), seed: 2)
        let got = try ranks(3) { _, g in
            let m = try Self.model(seed: 1)
            try m.fit(train, epochs: 3, batchSize: 32, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1), seed: 2, group: g)
            return (Array(m.parameters), g.gradientSums)
        }.map { try $0.get() }
        XCTAssertGreaterThanOrEqual(got[0].1, 2 * 3 * 7, "expected two buckets in each of the 21 steps, got \(got[0].1) sums")
        XCTAssertEqual(got[1].0, got[0].0)
        XCTAssertLessThan(zip(got[0].0, Array(single.parameters)).map { abs($0 - $1) }.max()!, 1e-5)

        // Rank 1's targets are so large that its squared error overflows on the first step.
        let x = Array(train.features)
        let small = try Dataset(features: x, featureCount: 2, targets: .values(x.map { $0 * 0.5 }, width: 2))
        let huge = try Dataset(features: x, featureCount: 2, targets: .values(x.map { $0 * 1e30 + 1e30 }, width: 2))
        let out = ranks(2) { r, g in
            let m = try Self.model(seed: 1)
            do {
                try m.fit(r == 1 ? huge : small, epochs: 2, batchSize: 32, loss: .mse, optimizer: SGD(learningRate: 0.1),
                          seed: 2, group: g)
                return "trained"
            } catch let e as NNError {
                if case .diverged = e { return "diverged" }
                return e.message
            }
        }
        XCTAssertEqual(try out.map { try $0.get() }, ["diverged", "diverged"])
    }

    /// A check that fails on one rank only (its validation split leaves no rows) is reported
    /// to all: that rank throws its own error, the others name it; none waits.
    func testSetupErrorOnOneRankEndsAll() throws {
        let train = try data(rows: 40)
        let out = ranks(2) { r, g in
            let m = try Self.model(seed: 1)
            do {
                try m.fit(train, epochs: 2, batchSize: 8, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                          validationSplit: r == 1 ? 0.001 : 0.25, group: g)
                return "trained"
            } catch let e as NNError {
                return e.message
            }
        }
        let messages = try out.map { try $0.get() }
        XCTAssertTrue(messages[1].hasPrefix("rank 1 of 2: validationSplit"), messages[1])
        XCTAssertTrue(messages[0].contains("rank 1 of 2 failed its checks before training"), messages[0])
    }

    /// A callback that stops training on one rank stops every rank at the same step.
    func testStopOnOneRankStopsAll() throws {
        final class StopAt: TrainingCallback {
            let batch: Int
            init(_ batch: Int) { self.batch = batch }
            func batchEnded(_ p: BatchProgress) -> TrainingControl { p.batch == batch ? .stop : .proceed }
        }
        let train = try data()
        let got = try ranks(2) { r, g in
            let m = try Self.model(seed: 1)
            let h = try m.fit(train, epochs: 3, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: SGD(learningRate: 0.1),
                              callbacks: r == 1 ? [StopAt(4)] : [StopAt(-1)], group: g)
            return (Array(m.parameters), h.epochs.count)
        }.map { try $0.get() }
        XCTAssertEqual(got[0].1, 1)
        XCTAssertEqual(got[1].1, 1)
        XCTAssertEqual(got[0].0, got[1].0)
    }

    /// The epoch-end check catches ranks whose weights drifted apart.
    func testHashCheckCatchesDifferentWeights() throws {
        let out = ranks(2) { r, g in try g.agrees(on: r == 0 ? 42 : 43) }
        XCTAssertEqual(try out.map { try $0.get() }, [false, false])
        let same = ranks(3) { _, g in try g.agrees(on: 0xdead_beef_1234_5678) }
        XCTAssertEqual(try same.map { try $0.get() }, [true, true, true])
    }

    /// Shares cover 0..<count in rank order, disjoint, sizes within one of each other.
    func testShares() {
        let hub = Hub(size: 4)
        let shares = (0..<4).map { ThreadGroup(rank: $0, hub: hub).share(of: 10) }
        XCTAssertEqual(shares, [0..<2, 2..<5, 5..<7, 7..<10])
        XCTAssertEqual((0..<4).map { ThreadGroup(rank: $0, hub: hub).share(of: 2) }, [0..<0, 0..<1, 1..<1, 1..<2])
    }
}
