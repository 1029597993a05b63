import Foundation
import NNBackprop
import XCTest

final class ModelFileTests: XCTestCase {
    func trainedModel() throws -> (Sequential, Adam, Dataset) {
        var g = SeededGenerator(seed: 21)
        let x = (0..<(64 * 6)).map { _ in g.nextFloat(in: -2...2) }
        let data = try Dataset(features: x, featureCount: 6, targets: .classes((0..<64).map { Int32($0 % 4) }, classCount: 4))
        let model = try Sequential(seed: 8) {
            try Dense(6, 12, activation: .leakyReLU(alpha: 0.1))
            try Dropout(0.1)
            try Dense(12, 8, activation: .gelu)
            ActivationLayer(.elu(alpha: 0.5))
            try Dense(8, 4)
        }
        model.scaler = Standardizer(fitting: data)
        let adam = Adam()
        try model.fit(data, epochs: 3, batchSize: 16, loss: .softmaxCrossEntropy(), optimizer: adam)
        return (model, adam, data)
    }

    func testRoundTripGivesBitIdenticalPredictions() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let (model, adam, data) = try trainedModel()
        let path = dir + "/m.safetensors"
        try model.save(to: path, optimizer: adam)
        let restored = Adam()
        let loaded = try Sequential.load(from: path, optimizer: restored)
        XCTAssertEqual(try model.predict(data).map(\.bitPattern), try loaded.predict(data).map(\.bitPattern))
        let sample = Array(data.features[0..<6])
        XCTAssertEqual(try model.predict(sample: sample).map(\.bitPattern), try loaded.predict(sample: sample).map(\.bitPattern))
        XCTAssertEqual(loaded.layers.map(\.spec), model.layers.map(\.spec))
        XCTAssertEqual(restored.stepCount, adam.stepCount)
        XCTAssertEqual(restored.state["m"], adam.state["m"])
    }

    func testStateDictNamesFollowPyTorchSequential() throws {
        let (model, _, _) = try trainedModel()
        // Linear(0) LeakyReLU(1) try Dropout(2) Linear(3) GELU(4) ELU(5) Linear(6)
        XCTAssertEqual(model.stateDictLayout.map(\.name), ["0.weight", "0.bias", "3.weight", "3.bias", "6.weight", "6.bias"])
        XCTAssertEqual(model.stateDictLayout.map(\.shape), [[12, 6], [12], [8, 12], [8], [4, 8], [4]])
    }

    func testTruncatedAndCorruptFilesThrow() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let (model, _, _) = try trainedModel()
        let path = dir + "/m.safetensors"
        try model.save(to: path)
        let bytes = try FileIO.readAll(path)
        for cut in [0, 4, 8, 20, bytes.count / 2, bytes.count - 1] {
            try FileIO.writeAtomically(Array(bytes[0..<cut]), to: dir + "/t.safetensors")
            XCTAssertThrowsError(try Sequential.load(from: dir + "/t.safetensors"), "cut at \(cut)")
        }
        XCTAssertThrowsError(try Sequential.load(from: dir + "/missing.safetensors")) { e in
            guard case NNError.fileError = e else { return XCTFail("\(e)") }
        }
        // A weight with the wrong shape for the architecture.
        var st = try model.safeTensors()
        try st.set("0.weight", SafeTensors.Tensor([Float](repeating: 0, count: 12 * 5), shape: [12, 5]))
        XCTAssertThrowsError(try Sequential(safeTensors: st)) { e in
            guard case NNError.shapeMismatch = e else { return XCTFail("\(e)") }
        }
        // A missing tensor, an unknown layer, a foreign file.
        st = try model.safeTensors()
        st.remove("3.bias")
        XCTAssertThrowsError(try Sequential(safeTensors: st)) { e in
            guard case NNError.corruptFile(let m) = e, m.contains("3.bias") else { return XCTFail("\(e)") }
        }
        st = try model.safeTensors()
        st.metadata["architecture"] = st.metadata["architecture"]!.replacingOccurrences(of: "\"Dropout\"", with: "\"Conv9\"")
        XCTAssertThrowsError(try Sequential(safeTensors: st)) { e in
            guard case NNError.unknownName = e else { return XCTFail("\(e)") }
        }
        st.metadata["format"] = nil
        XCTAssertThrowsError(try Sequential(safeTensors: st))
        // An architecture claiming more parameters than the file stores (a garbled size) is
        // refused before anything that size is allocated.
        st = try model.safeTensors()
        let arch = st.metadata["architecture"]!
        st.metadata["architecture"] = arch.replacingOccurrences(of: "\"in_features\": 6", with: "\"in_features\": 1099511627776")
        XCTAssertNotEqual(st.metadata["architecture"], arch, "the test must change the architecture")
        XCTAssertThrowsError(try Sequential(safeTensors: st)) { e in
            guard case NNError.corruptFile(let m) = e, m.contains("more than 2^31 parameters") else { return XCTFail("\(e)") }
        }
        // Within 2^31 but far more than the file holds: the last layer, 8 -> 100,000,000, is refused by count.
        st.metadata["architecture"] = arch.replacingOccurrences(of: "\"out_features\": 4", with: "\"out_features\": 100000000")
        XCTAssertNotEqual(st.metadata["architecture"], arch, "the test must change the architecture")
        XCTAssertThrowsError(try Sequential(safeTensors: st)) { e in
            guard case NNError.corruptFile(let m) = e, m.contains("need more parameters than the file's") else { return XCTFail("\(e)") }
        }
    }

    func testFailedSaveKeepsPreviousFile() throws {
        let dir = try DataTestSupport.makeTempDirectory()
        defer { DataTestSupport.remove(dir) }
        let (model, _, _) = try trainedModel()
        XCTAssertThrowsError(try model.save(to: dir + "/no-such-dir/m.safetensors"))
        let path = dir + "/m.safetensors"
        try model.save(to: path)
        let before = try FileIO.readAll(path)
        try? FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: dir)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: dir) }
        if getuid() != 0 { XCTAssertThrowsError(try model.save(to: path)) }
        XCTAssertEqual(try FileIO.readAll(path), before)
    }
}
