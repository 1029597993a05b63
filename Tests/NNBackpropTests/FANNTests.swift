import XCTest
@testable import NNBackprop

/// FANN files written by hand (python/tests/test_fann.py checks files from the real FANN).
final class FANNTests: XCTestCase {
    /// 2 inputs -> 1 output, FANN_SIGMOID with steepness 0.5: y = 1 / (1 + e^(-2 * 0.5 * (0.5 a - b + 0.25))).
    let net = """
    FANN_FLO_2.1
    num_layers=2
    network_type=0
    layer_sizes=3 2
    scale_included=0
    neurons (num_inputs, activation_function, activation_steepness)=(0, 0, 0.0) (0, 0, 0.0) (0, 0, 0.0) (3, 3, 0.5) (0, 3, 0.0)
    connections (connected_to_neuron, weight)=(0, 0.5) (1, -1.0) (2, 0.25)
    """

    func testASigmoidNeuronWithSteepness() throws {
        let model = try Sequential.importFANN(text: net)
        XCTAssertEqual(model.inputSize, 2)
        XCTAssertEqual(model.outputSize, 1)
        for (a, b) in [(Float(0), Float(0)), (1, 2), (-3, 0.5)] {
            let expected = 1 / (1 + exp(-2 * 0.5 * (0.5 * Double(a) - Double(b) + 0.25)))
            let got = try model.predict([a, b])
            XCTAssertEqual(Double(got[0]), expected, accuracy: 1e-6)
        }
    }

    func testWhatIsNotReadIsNamed() {
        assertNNError(NNError.unsupported, mentions: ["shortcut"]) { _ = try Sequential.importFANN(text: net.replacingOccurrences(of: "network_type=0", with: "network_type=1")) }
        assertNNError(NNError.unsupported, mentions: ["FANN_GAUSSIAN"]) { _ = try Sequential.importFANN(text: net.replacingOccurrences(of: "(3, 3, 0.5)", with: "(3, 7, 0.5)")) }
        assertNNError(NNError.unsupported, mentions: ["scaling"]) { _ = try Sequential.importFANN(text: net.replacingOccurrences(of: "scale_included=0", with: "scale_included=1")) }
        assertNNError(NNError.unsupported, mentions: ["fixed-point"]) { _ = try Sequential.importFANN(text: "FANN_FIX_2.0\n") }
        // A sparse neuron: two of its three connections.
        let sparse = net.replacingOccurrences(of: "(3, 3, 0.5)", with: "(2, 3, 0.5)").replacingOccurrences(of: " (2, 0.25)", with: "")
        assertNNError(NNError.unsupported, mentions: ["sparse"]) { _ = try Sequential.importFANN(text: sparse) }
        assertNNError(NNError.corruptFile, mentions: ["line 7", "connection 2"]) { _ = try Sequential.importFANN(text: net.replacingOccurrences(of: "(2, 0.25)", with: "(2, nan)")) }
        assertNNError(NNError.corruptFile, mentions: ["FANN 2.x"]) { _ = try Sequential.importFANN(text: "hello") }
        assertNNError(NNError.corruptFile, mentions: ["layer_sizes"]) { _ = try Sequential.importFANN(text: "FANN_FLO_2.1\nnum_layers=2\n") }
    }

    func testDataFiles() throws {
        let text = "3 2 1\n0 0\n0\n0 1\n1\n1 1\n0\n"
        XCTAssertTrue(Dataset.looksLikeFANN(text[...]))
        XCTAssertFalse(Dataset.looksLikeFANN("5.1,3.5,1.4,0.2,Iris-setosa\n"))
        let values = try Dataset.fann(text: text)
        XCTAssertEqual(values.features, [0, 0, 0, 1, 1, 1])
        XCTAssertEqual(values.count, 3)
        guard case .values(let y, 1) = values.targets else { return XCTFail("values targets") }
        XCTAssertEqual(y, [0, 1, 0])
        let classes = try Dataset.fann(text: "2 1 3\n0.5\n-1 1 -1\n0.25\n-1 -1 1\n", kind: .classes)
        guard case .classes(let labels, 3) = classes.targets else { return XCTFail("one-hot rows are classes") }
        XCTAssertEqual(labels, [1, 2])
        assertNNError(NNError.corruptFile, mentions: ["ends before row 2 output 1"]) { _ = try Dataset.fann(text: "2 1 1\n0\n1\n0\n") }
        assertNNError(NNError.corruptFile, mentions: ["line 2", "row 1 input 2", "'x'"]) { _ = try Dataset.fann(text: "1 2 1\n0 x\n1\n") }
        assertNNError(NNError.corruptFile, mentions: ["line 4", "after the last row"]) { _ = try Dataset.fann(text: "1 1 1\n0\n1\n7\n") }
        assertNNError(NNError.corruptFile, mentions: ["2^31"]) { _ = try Dataset.fann(text: "2000000000 2000000000 1\n") }
    }

    func testAHugeLayerWithoutItsConnectionsIsRefusedBeforeAllocating() {
        let neurons = String(repeating: "(0, 0, 0.0) ", count: 2 * 65537)
        let text = "FANN_FLO_2.1\nnetwork_type=0\nlayer_sizes=65537 65537\nscale_included=0\n" +
            "neurons (num_inputs, activation_function, activation_steepness)=\(neurons)\nconnections (connected_to_neuron, weight)=\n"
        assertNNError(NNError.unsupported, mentions: ["0 connections, not 65537"]) { _ = try Sequential.importFANN(text: text) }
    }
}
