import Foundation
import NNBackprop
import XCTest

/// Train 2 epochs, against train 1, save a checkpoint, load it into new objects, train 1 more:
/// the weights must be the same bitwise (data order, dropout masks, optimizer state and the
/// learning-rate schedule all carried).
final class CheckpointTests: XCTestCase {
    private func makeModel() throws -> Sequential {
        try Sequential(inputSize: 6, seed: 13) {
            try Dense(6, 16, activation: .relu)
            try Dropout(0.3)
            try Dense(16, 3)
        }
    }

    private func data() throws -> Dataset {
        try randomDataset(rows: 90, features: 6, targets: .classes((0..<90).map { Int32($0 % 3) }, classCount: 3), seed: 6)
    }

    private func train(_ model: Sequential, _ optimizer: any Optimizer, epochs: Int, from start: Int = 0) throws {
        try model.fit(data(), epochs: epochs, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: optimizer, seed: 77,
                      schedule: .step(stepSize: 1, gamma: 0.5), initialEpoch: start)
    }

    func testResumeIsBitExact() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        for makeOptimizer in [{ Adam(learningRate: 0.01) as any Optimizer }, { SGD(learningRate: 0.05, momentum: 0.9) }] {
            let straight = try makeModel()
            try train(straight, makeOptimizer(), epochs: 2)

            let first = try makeModel()
            let optimizer = makeOptimizer()
            try train(first, optimizer, epochs: 1)
            try first.saveCheckpoint(to: dir + "/c.safetensors", optimizer: optimizer,
                                     progress: TrainingProgress(epochsCompleted: 1, seed: 77))

            let restored = makeOptimizer()
            let (resumed, progress) = try Sequential.loadCheckpoint(from: dir + "/c.safetensors", optimizer: restored)
            XCTAssertEqual(progress, TrainingProgress(epochsCompleted: 1, seed: 77))
            XCTAssertEqual(restored.stepCount, optimizer.stepCount)
            try train(resumed, restored, epochs: 2, from: progress.epochsCompleted)
            XCTAssertEqual(resumed.parameterValues.map(\.bitPattern), straight.parameterValues.map(\.bitPattern),
                           "\(restored.name): 1 + 1 epochs through a checkpoint equal 2 epochs")
            XCTAssertNotEqual(first.parameterValues, straight.parameterValues, "the second epoch changed the weights")

            // Resuming into a model built in code, of the same architecture, gives the same.
            let rebuilt = try makeModel()
            let again = makeOptimizer()
            let p = try rebuilt.resume(from: dir + "/c.safetensors", optimizer: again)
            try train(rebuilt, again, epochs: 2, from: p.epochsCompleted)
            XCTAssertEqual(rebuilt.parameterValues.map(\.bitPattern), straight.parameterValues.map(\.bitPattern))
        }
    }

    func testBadResumesAreClearErrors() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let model = try makeModel()
        let adam = Adam()
        try train(model, adam, epochs: 1)
        try model.saveCheckpoint(to: dir + "/c.safetensors", optimizer: adam, progress: TrainingProgress(epochsCompleted: 1, seed: 77))
        try model.save(to: dir + "/plain.safetensors")
        // Another architecture, another optimizer, a plain model file, a bad initial epoch.
        let other = try Sequential(inputSize: 6) { try Dense(6, 8, activation: .relu); try Dense(8, 3) }
        assertNNError(NNError.shapeMismatch, mentions: ["another architecture", "Dropout"]) {
            _ = try other.resume(from: dir + "/c.safetensors", optimizer: Adam())
        }
        assertNNError(NNError.shapeMismatch, mentions: ["'adam'", "'sgd'"]) {
            _ = try Sequential.loadCheckpoint(from: dir + "/c.safetensors", optimizer: SGD())
        }
        assertNNError(NNError.corruptFile, mentions: ["plain.safetensors", "without a training checkpoint"]) {
            _ = try Sequential.loadCheckpoint(from: dir + "/plain.safetensors", optimizer: Adam())
        }
        assertNNError(NNError.invalidArgument, mentions: ["initialEpoch", "3"]) { try train(model, adam, epochs: 2, from: 3) }
        // A random state for an empty or malformed layer path is a corrupt file, not a trap.
        for bad in ["\"\": [", "\".\": [", "\"1..\": [", "\"9\": ["] {
            var cut = try SafeTensors(contentsOf: dir + "/c.safetensors")
            cut.metadata["training"] = cut.metadata["training"]!.replacingOccurrences(of: "\"1\": [", with: bad)
            try cut.write(to: dir + "/path.safetensors")
            assertNNError(NNError.corruptFile, mentions: ["random state"]) {
                _ = try Sequential.loadCheckpoint(from: dir + "/path.safetensors", optimizer: Adam())
            }
        }
        // A corrupt random state is refused, not silently ignored.
        var st = try SafeTensors(contentsOf: dir + "/c.safetensors")
        st.metadata["training"] = st.metadata["training"]!.replacingOccurrences(of: "\"1\": [", with: "\"0\": [")
        try st.write(to: dir + "/bad.safetensors")
        assertNNError(NNError.corruptFile, mentions: ["layer '0'", "Dense"]) {
            _ = try Sequential.loadCheckpoint(from: dir + "/bad.safetensors", optimizer: Adam())
        }
    }
}
