#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where a training run stands, as a checkpoint records it: how many epochs are done, the seed
/// of the data order, and the random state of every layer that draws (dropout).
///
/// With the optimizer's state (saved beside it), this is all `fit` needs to go on exactly as an
/// uninterrupted run would: `fit(..., seed: progress.seed, initialEpoch:
/// progress.epochsCompleted)` replays the data order of the epochs done (one Fisher–Yates
/// shuffle per epoch from the seed) and continues the learning-rate schedule from there, and
/// the weights come out bitwise the same. Early stopping's best weights are not part of it.
public struct TrainingProgress: Sendable, Equatable {
    /// Epochs finished before the checkpoint.
    public var epochsCompleted: Int
    /// The `seed` `fit` was given (it orders the data).
    public var seed: UInt64
    /// The batch size and whether the data was shuffled, when the writer recorded them: a
    /// resume with other ones would not continue the same run, so the C API and `nnb train
    /// --resume` refuse it.
    public var batchSize: Int?
    public var shuffle: Bool?

    public init(epochsCompleted: Int, seed: UInt64, batchSize: Int? = nil, shuffle: Bool? = nil) {
        self.epochsCompleted = epochsCompleted
        self.seed = seed
        self.batchSize = batchSize
        self.shuffle = shuffle
    }

    /// Throws `invalidArgument` naming both when a recorded batch size or shuffle differs.
    public func check(batchSize: Int, shuffle: Bool) throws(NNError) {
        if let b = self.batchSize, b != batchSize {
            throw .invalidArgument("the checkpoint's run used batch size \(b), not \(batchSize); resume with the same batch size")
        }
        if let s = self.shuffle, s != shuffle {
            throw .invalidArgument("the checkpoint's run \(s ? "shuffled" : "did not shuffle") the data; resume with the same shuffle setting")
        }
    }
}

/// What a checkpoint file holds beyond the model: the optimizer (its name, state and step
/// count) and the training progress.
public struct Checkpoint: Sendable {
    public var optimizerName: String
    public var optimizerState: [String: [Float]]
    public var optimizerSteps: Int
    public var progress: TrainingProgress

    /// Restores `optimizer` from the checkpoint; throws `shapeMismatch` when it is of another
    /// kind than the one saved, or its buffers do not fit `parameterCount`.
    public func restore(_ optimizer: any Optimizer, parameterCount: Int) throws(NNError) {
        guard (try? OptimizerName(parsing: optimizerName))?.rawValue == optimizer.name else {
            throw .shapeMismatch("the checkpoint holds '\(optimizerName)' optimizer state, not '\(optimizer.name)'")
        }
        try optimizer.restore(state: optimizerState, steps: optimizerSteps, parameterCount: parameterCount)
    }
}

extension Sequential {
    /// Every layer's random state by layer path ("2", "1.0" inside a nested model).
    var randomStates: [(path: String, words: [UInt64])] {
        var out: [(path: String, words: [UInt64])] = []
        for (i, layer) in layers.enumerated() {
            if let nested = layer as? Sequential {
                out += nested.randomStates.map { ("\(i).\($0.path)", $0.words) }
            } else if let words = layer.randomState {
                out.append((String(i), words))
            }
        }
        return out
    }

    /// Sets the random state of the layer at `path`; throws `corruptFile` for a path that
    /// names no layer with a generator, or words that are not a state.
    func setRandomState(_ words: [UInt64], path: String) throws(NNError) {
        let parts = path.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let head = parts.first, let i = Int(head), layers.indices.contains(i) else {
            throw .corruptFile("checkpoint: random state for layer '\(path)', which the model does not have")
        }
        if parts.count == 2, let nested = layers[i] as? Sequential { return try nested.setRandomState(words, path: parts[1]) }
        guard parts.count == 1, layers[i].randomState != nil else {
            throw .corruptFile("checkpoint: random state for layer '\(path)' (\(type(of: layers[i]).typeName)), which draws no random numbers")
        }
        layers[i].randomState = try SeededGenerator(stateWords: words).stateWords
    }

    /// The "training" metadata of a checkpoint.
    func progressJSON(_ progress: TrainingProgress) -> String {
        let states = randomStates.map { "\(jsonQuoted($0.path)): [" + $0.words.map(String.init).joined(separator: ", ") + "]" }
        var fields = ["\"epochs_completed\": \(progress.epochsCompleted)", "\"seed\": \(progress.seed)"]
        if let b = progress.batchSize { fields.append("\"batch_size\": \(b)") }
        if let s = progress.shuffle { fields.append("\"shuffle\": \(s ? 1 : 0)") }
        fields.append("\"random_states\": {" + states.joined(separator: ", ") + "}")
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// Writes the model with `optimizer`'s state and `progress`: a checkpoint `resume` (or
    /// `loadCheckpoint`) continues bit-exactly. Atomic, as `save(to:)`.
    public func saveCheckpoint(to path: String, optimizer: any Optimizer, progress: TrainingProgress) throws(NNError) {
        try safeTensors(optimizer: optimizer, progress: progress).write(to: path)
    }

    /// The checkpoint `saveCheckpoint` writes, as safetensors (to add metadata before writing).
    public func safeTensors(optimizer: any Optimizer, progress: TrainingProgress) throws(NNError) -> SafeTensors {
        guard progress.epochsCompleted >= 0 else {
            throw .invalidArgument("epochsCompleted must be non-negative, got \(progress.epochsCompleted)")
        }
        var st = try safeTensors(optimizer: optimizer)
        st.metadata["training"] = progressJSON(progress)
        return st
    }

    /// The checkpoint part of a model file (nil for a plain model file), its random states
    /// applied to this model when `apply` is true.
    static func checkpoint(in st: SafeTensors, applyingTo model: Sequential?) throws(NNError) -> Checkpoint? {
        guard let text = st.metadata["training"] else { return nil }
        let value: JSONValue
        do { value = try JSONParser.parse(Array(text.utf8)) } catch { throw error.prefixed("checkpoint 'training' metadata") }
        guard case .object(let fields) = value else { throw .corruptFile("checkpoint 'training' metadata is \(value.kindName), expected an object") }
        func member(_ key: String) -> JSONValue? { fields.first { $0.key == key }?.value }
        guard let done = member("epochs_completed")?.unsignedInteger, done < 1 << 31, let seed = member("seed")?.unsignedInteger else {
            throw .corruptFile("checkpoint 'training' metadata: 'epochs_completed' or 'seed' missing or not a count")
        }
        guard let name = st.metadata["optimizer"] else { throw .corruptFile("the checkpoint holds no optimizer") }
        guard let steps = st.metadata["optimizer_steps"].flatMap({ Int($0) }), steps >= 0 else {
            throw .corruptFile("the checkpoint's 'optimizer_steps' is missing or not a count")
        }
        var state: [String: [Float]] = [:]
        for tensor in st.names where tensor.hasPrefix("optimizer.") {
            state[String(tensor.dropFirst("optimizer.".count))] = try st.floats(tensor)
        }
        if let model, case .object(let states)? = member("random_states") {
            for (path, words) in states {
                guard case .array(let items) = words else { throw .corruptFile("checkpoint: random state '\(path)' is \(words.kindName)") }
                let values = items.compactMap { $0.unsignedInteger }
                guard values.count == items.count else { throw .corruptFile("checkpoint: random state '\(path)' holds a value that is not a 64-bit word") }
                try model.setRandomState(values, path: path)
            }
        }
        let batch = member("batch_size")?.unsignedInteger.map { Int(clamping: $0) }
        let shuffle = member("shuffle")?.unsignedInteger
        guard shuffle == nil || shuffle! <= 1 else { throw .corruptFile("checkpoint 'training' metadata: 'shuffle' is 0 or 1") }
        return Checkpoint(optimizerName: name, optimizerState: state, optimizerSteps: steps,
                          progress: TrainingProgress(epochsCompleted: Int(done), seed: seed, batchSize: batch,
                                                     shuffle: shuffle.map { $0 == 1 }))
    }

    /// Loads a checkpoint written by `saveCheckpoint`: the model (with its layers' random
    /// states), `optimizer` restored, and the progress to pass to `fit`. Throws as `load`, and
    /// `corruptFile` when the file is a plain model file without a checkpoint.
    public static func loadCheckpoint(from path: String, optimizer: any Optimizer) throws(NNError) -> (model: Sequential, progress: TrainingProgress) {
        do throws(NNError) {
            let st = try SafeTensors(contentsOf: path)
            let model = try Sequential(safeTensors: st)
            guard let c = try checkpoint(in: st, applyingTo: model) else {
                throw NNError.corruptFile("the file is a model without a training checkpoint (save one with saveCheckpoint, nnb train --checkpoint or nnb_model_save_checkpoint)")
            }
            try c.restore(optimizer, parameterCount: model.parameterCount)
            return (model, c.progress)
        } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// Loads a model file and, when it is a checkpoint, what it holds beyond the model (the
    /// layers' random states already applied); throws as `load`.
    public static func loadWithCheckpoint(from path: String, allowNonFinite: Bool = false) throws(NNError) -> (model: Sequential, checkpoint: Checkpoint?) {
        do throws(NNError) {
            return try loadWithCheckpoint(safeTensors: SafeTensors(contentsOf: path), allowNonFinite: allowNonFinite)
        } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// `loadWithCheckpoint(from:)` of a model file's contents (as `serialized` gives them).
    public static func loadWithCheckpoint(bytes: [UInt8], allowNonFinite: Bool = false) throws(NNError) -> (model: Sequential, checkpoint: Checkpoint?) {
        try loadWithCheckpoint(safeTensors: SafeTensors(bytes: bytes, source: "the model bytes"), allowNonFinite: allowNonFinite)
    }

    static func loadWithCheckpoint(safeTensors st: SafeTensors, allowNonFinite: Bool) throws(NNError) -> (model: Sequential, checkpoint: Checkpoint?) {
        let model = try Sequential(safeTensors: st, allowNonFinite: allowNonFinite)
        return (model, try checkpoint(in: st, applyingTo: model))
    }

    /// Reads the checkpoint at `path` into this model, which must have the same architecture:
    /// its parameters, buffers, scaler and random states, and `optimizer`'s state. Returns the
    /// progress. Throws `shapeMismatch` naming both architectures when they differ.
    public func resume(from path: String, optimizer: any Optimizer) throws(NNError) -> TrainingProgress {
        let (saved, progress) = try Sequential.loadCheckpoint(from: path, optimizer: optimizer)
        try adopt(saved, from: path)
        return progress
    }

    /// Takes `saved`'s weights, buffers, scaler and random states; its architecture must be this one's.
    func adopt(_ saved: Sequential, from path: String) throws(NNError) {
        guard saved.sampleShape == sampleShape, saved.layerSpecs == layerSpecs else {
            throw .shapeMismatch("\(path) is a checkpoint of another architecture: it has input \(saved.sampleShape) and layers \(saved.layerSpecs.map(\.description).joined(separator: ", ")); this model has input \(sampleShape) and layers \(layerSpecs.map(\.description).joined(separator: ", "))")
        }
        parameters.baseAddress!.update(from: saved.parameters.baseAddress!, count: parameterCount)
        if bufferCount > 0 { buffers.baseAddress!.update(from: saved.buffers.baseAddress!, count: bufferCount) }
        for s in saved.randomStates { try setRandomState(s.words, path: s.path) }
        scaler = saved.scaler
        loss = saved.loss
        try setClassNames(saved.classNames)
    }
}
