import XCTest
@testable import NNBackprop

/// What a model file keeps besides its weights: the loss, the class names, and the scaler in
/// metadata (so the tensors are exactly the PyTorch state dict).
final class TrainingMetadataTests: XCTestCase {
    private func model(outputs: Int = 3) throws -> Sequential {
        try Sequential(inputSize: 2, seed: 1) { try Dense(2, 4, activation: .tanh); try Dense(4, outputs) }
    }

    func testFitRecordsTheLossAndTheFileKeepsItWithItsParameter() throws {
        let m = try model()
        XCTAssertNil(m.loss)
        let data = try Dataset(features: [0, 1, 1, 0, 1, 1, 0, 0], featureCount: 2, targets: .classes([0, 1, 2, 0], classCount: 3))
        _ = try m.fit(data, epochs: 1, batchSize: 2, loss: .softmaxCrossEntropy(labelSmoothing: 0.25), optimizer: SGD(learningRate: 0.1))
        XCTAssertEqual(m.loss, .softmaxCrossEntropy(labelSmoothing: 0.25))
        let back = try Sequential(serialized: m.serialized())
        XCTAssertEqual(back.loss, .softmaxCrossEntropy(labelSmoothing: 0.25))
        m.loss = .huber(delta: 2.5)
        XCTAssertEqual(try Sequential(serialized: m.serialized()).loss, .huber(delta: 2.5))
        // A plugin loss's name loads without the plugin; evaluating with it would need it.
        m.loss = .custom("my_loss")
        XCTAssertEqual(try Sequential(serialized: m.serialized()).loss, .custom("my_loss"))
        var st = try m.safeTensors()
        st.metadata["loss"] = "huber"
        st.metadata["loss_delta"] = "-1"
        assertNNError(NNError.corruptFile, mentions: ["loss_delta", "-1"]) { _ = try Sequential(safeTensors: st) }
    }

    func testClassNamesAreCheckedAndKept() throws {
        let m = try model()
        assertNNError(NNError.shapeMismatch, mentions: ["2 class names", "expected 3"]) { try m.setClassNames(["a", "b"]) }
        assertNNError(NNError.invalidArgument, mentions: ["'b'", "index 2"]) { try m.setClassNames(["a", "b", "b"]) }
        try m.setClassNames(["a", "b \"quoted\"", "ünïcode"])
        let back = try Sequential(serialized: m.serialized())
        XCTAssertEqual(back.classNames, ["a", "b \"quoted\"", "ünïcode"])
        try m.setClassNames(nil)
        XCTAssertNil(try Sequential(serialized: m.serialized()).classNames)
        try model(outputs: 1).setClassNames(["no", "yes"]) // a bce logit: two classes

        try m.setClassNames(["a", "b", "c"])
        var st = try m.safeTensors()
        st.metadata["classes"] = "[\"a\", \"b\"]"
        assertNNError(NNError.corruptFile, mentions: ["classes", "expected 3"]) { _ = try Sequential(safeTensors: st) }
        st.metadata["classes"] = "[\"a\", 2, \"c\"]"
        assertNNError(NNError.corruptFile, mentions: ["'classes'[1]", "a number"]) { _ = try Sequential(safeTensors: st) }
        st.metadata["classes"] = "{"
        assertNNError(NNError.corruptFile, mentions: ["classes"]) { _ = try Sequential(safeTensors: st) }
    }

    func testTheScalerIsMetadataSoTheTensorsAreTheStateDict() throws {
        let m = try model()
        let x: [Float] = [1, 200, 3, -400, 5.5, 0.001, 7, 8e6]
        m.scaler = try Standardizer(fitting: x, featureCount: 2)
        let st = try m.safeTensors()
        XCTAssertEqual(st.names, m.stateDict().map(\.name), "no tensor besides the state dict's")
        XCTAssertEqual(st.metadata["preprocessing"], "standardize")
        let back = try Sequential(serialized: m.serialized())
        XCTAssertEqual(back.scaler as? Standardizer, m.scaler as? Standardizer, "the scaler's floats come back exactly")
        var bad = st
        bad.metadata["preprocessing_state"] = "{\"mean\": [1, \"x\"], \"std\": [1, 1]}"
        assertNNError(NNError.corruptFile, mentions: ["preprocessing_state", "mean[1]"]) { _ = try Sequential(safeTensors: bad) }
        bad.metadata["preprocessing_state"] = "{\"mean\": [1, 2]}"
        assertNNError(NNError.invalidData, mentions: ["'std'"]) { _ = try Sequential(safeTensors: bad) }
    }

    func testAVersion2FileWithScalerTensorsStillLoads() throws {
        let m = try model()
        let s = try Standardizer(fitting: [1, 2, 3, 5], featureCount: 2)
        m.scaler = s
        var st = try m.safeTensors()
        st.metadata["format_version"] = "2"
        st.metadata["preprocessing_state"] = nil
        for (name, values) in s.tensors { try st.set("preprocessing." + name, SafeTensors.Tensor(values, shape: [values.count])) }
        let back = try Sequential(safeTensors: SafeTensors(bytes: st.serialized()))
        XCTAssertEqual(back.scaler as? Standardizer, s)
    }

    func testBytesRoundTripAndBadBytes() throws {
        let m = try model()
        let bytes = try m.serialized()
        XCTAssertEqual(try Sequential(serialized: bytes).parameterValues, m.parameterValues)
        assertNNError(NNError.corruptFile, mentions: ["the model bytes", "truncated"]) { _ = try Sequential(serialized: Array(bytes.prefix(bytes.count / 2))) }
        assertNNError(NNError.corruptFile, mentions: ["the model bytes"]) { _ = try Sequential(serialized: []) }
    }
}
