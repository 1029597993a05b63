// libFuzzer harness: the safetensors model-file loader, Sequential.load(from:).
//
// The input is the file. Whatever SafeTensors(bytes:) parses must survive serialized() -> parse
// unchanged. A file that loads is also loaded with the optimizer its metadata
// names (when that is a built-in one), then saved, reloaded and run: save -> load must give the
// same architecture, the same parameters and optimizer state bit for bit, and the same output
// for a row of zeros from both the layer path (predict) and the reentrant path (infer).
// Anything else aborts as a finding. (NNB_FUZZ_SKIP: no known findings to step around; the one
// found so far, crashes/model_file-alpha-inf-save-unloadable, is fixed and in the corpus.)

import NNBackprop
#if canImport(Glibc)
import Glibc
#endif

/// The optimizer a file's "optimizer" metadata names, in a configuration with state buffers.
private func makeOptimizer(named name: String) -> (any Optimizer)? {
    switch try? OptimizerName(parsing: name) {
    case .sgd?: return SGD(learningRate: 0.01, momentum: 0.9)
    case .adam?: return Adam()
    case .adamw?: return Adam.adamW()
    case .rmsprop?: return RMSprop()
    case .adagrad?: return Adagrad()
    case .irprop?: return IRPROPMinus()
    case nil: return nil
    }
}

/// Whether one row through `model` stays within NNB_FUZZ_MAX_WIDTH floats per activation
/// (default 2^20; the loader accepts input_size up to 2^31 for a model without weights, and a
/// row of that many zeros is the harness's allocation, not the loader's).
private func runnable(_ model: Sequential) -> Bool {
    model.layerOutputShapes.reduce(model.inputSize) { max($0, $1.count) } <= Fuzz.limit("NNB_FUZZ_MAX_WIDTH", default: 1 << 20)
}

private func outputs(_ model: Sequential) -> (predict: [Float]?, infer: [Float]) {
    let zeros = [Float](repeating: 0, count: model.inputSize)
    let p = try? model.predict(sample: zeros)
    var y = [Float](repeating: 0, count: model.outputSize)
    zeros.withUnsafeBufferPointer { x in
        y.withUnsafeMutableBufferPointer { model.infer(x.baseAddress!, rows: 1, into: $0.baseAddress!) }
    }
    return (p, y)
}

private func roundTrip(_ model: Sequential, optimizer: (any Optimizer)?, _ what: String) {
    let saved = Fuzz.path("saved.safetensors")
    do {
        try model.save(to: saved, optimizer: optimizer)
    } catch {
        Fuzz.fail("\(what): a model that loaded cannot be saved: \(error)")
    }
    let optimizer2 = optimizer.flatMap { makeOptimizer(named: $0.name) }
    let again: Sequential
    do {
        again = try Sequential.load(from: saved, optimizer: optimizer2)
    } catch {
        Fuzz.fail("\(what): the file saved from a loaded model does not load: \(error)")
    }
    guard model.architectureJSON == again.architectureJSON else {
        Fuzz.fail("\(what): architecture changed by save -> load:\n  \(model.architectureJSON)\n  \(again.architectureJSON)")
    }
    guard Fuzz.sameBits(model.parameterValues, again.parameterValues) else {
        Fuzz.fail("\(what): parameters changed by save -> load")
    }
    let s1 = model.scaler?.tensors ?? [:], s2 = again.scaler?.tensors ?? [:]
    guard model.scaler?.kind == again.scaler?.kind, s1.keys.sorted() == s2.keys.sorted(),
          s1.allSatisfy({ Fuzz.sameBits($0.value, s2[$0.key] ?? []) }) else {
        Fuzz.fail("\(what): the scaler changed by save -> load")
    }
    if let optimizer, let optimizer2 {
        guard optimizer.stepCount == optimizer2.stepCount, optimizer.state.keys.sorted() == optimizer2.state.keys.sorted(),
              optimizer.state.allSatisfy({ Fuzz.sameBits($0.value, optimizer2.state[$0.key] ?? []) }) else {
            Fuzz.fail("\(what): \(optimizer.name) state changed by save -> load")
        }
    }
    guard runnable(model) else { return }
    let a = outputs(model), b = outputs(again)
    guard (a.predict == nil) == (b.predict == nil), Fuzz.sameBits(a.predict ?? [], b.predict ?? []) else {
        Fuzz.fail("\(what): predict(sample: zeros) differs after save -> load: \(a.predict.map { "\($0)" } ?? "threw") vs \(b.predict.map { "\($0)" } ?? "threw")")
    }
    guard Fuzz.sameBits(a.infer, b.infer) else {
        Fuzz.fail("\(what): infer(zeros) differs after save -> load: \(a.infer) vs \(b.infer)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzModelFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Fuzz.bytes(data, size)
    // The container first: whatever parses must serialize to bytes that parse to the same set.
    if let st = try? SafeTensors(bytes: bytes) {
        let again: SafeTensors
        do { again = try SafeTensors(bytes: st.serialized()) } catch {
            Fuzz.fail("safetensors: serialized() of a parsed file does not parse: \(error)")
        }
        guard again == st else { Fuzz.fail("safetensors: parse -> serialized() -> parse changed the tensors or metadata") }
    }
    let path = Fuzz.write(bytes, to: "input.safetensors")
    // The loader with its checkpoint part (optimizer metadata, training progress, random states).
    guard let model = try? Sequential.loadWithCheckpoint(from: path).model else { return 0 }
    roundTrip(model, optimizer: nil, "model")
    if let st = try? SafeTensors(contentsOf: path), let name = st.metadata["optimizer"],
       let opt = makeOptimizer(named: name), let withState = try? Sequential.load(from: path, optimizer: opt) {
        roundTrip(withState, optimizer: opt, "model with \(name) state")
    }
    return 0
}

/// NNB_FUZZ_MAKE_SEEDS=DIR: write the seed model files (2-3-2 networks saved by the library)
/// into DIR and exit, instead of fuzzing. Tests/fuzz/corpus/model_file was made so.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzModelFileInitialize(_ argc: UnsafeMutablePointer<CInt>?,
                                    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>?) -> CInt {
    guard let dir = getenv("NNB_FUZZ_MAKE_SEEDS").map({ String(cString: $0) }) else { return 0 }
    do {
        let data = try Dataset(features: [0, 0, 1, 0, 0, 1, 1, 1], featureCount: 2,
                               targets: .classes([0, 1, 1, 0], classCount: 2))
        let plain = try Sequential(layers: [try Dense(2, 3, activation: .relu), try Dense(3, 2)], seed: 1)
        try plain.save(to: dir + "/relu-2-3-2.safetensors")

        let adam = Adam()
        let scaled = try Sequential(layers: [try Dense(2, 3, activation: .tanh), try Dense(3, 2)], seed: 2)
        scaled.scaler = Standardizer(fitting: data)
        try scaled.computeGradients(data, loss: .softmaxCrossEntropy())
        adam.step(scaled)
        try scaled.save(to: dir + "/tanh-standardize-adam.safetensors", optimizer: adam)

        let sgd = SGD(learningRate: 0.1, momentum: 0.9)
        let mixed = try Sequential(layers: [try Dense(2, 3, activation: .leakyReLU(alpha: 0.2)), try Dropout(0.25),
                                            try Dense(3, 2), Softmax()], seed: 3)
        mixed.scaler = try MinMaxScaler(fitting: data)
        try mixed.computeGradients(data, loss: .softmaxCrossEntropy())
        sgd.step(mixed)
        try mixed.save(to: dir + "/leaky-dropout-softmax-minmax-sgd.safetensors", optimizer: sgd)

        // Float attributes at the edge of the range (3e+38, one digit from infinity) and a
        // width-agnostic activation layer with its own width.
        let edge = try Sequential(layers: [try Dense(2, 3, activation: .elu(alpha: 3e38)), ActivationLayer(.leakyReLU(alpha: 1e-38)),
                                           try Dense(3, 2, activation: .sigmoid), LogSoftmax()], seed: 4)
        try edge.save(to: dir + "/elu-edge-alpha-logsoftmax.safetensors")
    } catch {
        Fuzz.log("seeds: \(error)")
        exit(1)
    }
    exit(0)
}
