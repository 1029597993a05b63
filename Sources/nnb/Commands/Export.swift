import ArgumentParser
import NNBackprop

/// `nnb export`: a model file in another format (ONNX, for ONNX Runtime and other ONNX tools).
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a model file as an ONNX model (opset 17, float32, a dynamic batch dimension), its scaler included.",
        discussion: "The ONNX graph takes \"input\" (N, *input shape) and gives \"output\" (N, outputs): the raw outputs (logits), as nnb predict --raw prints them."
    )

    @Argument(help: ArgumentHelp("The model file (written by nnb train or any NNBackprop API).", valueName: "model"))
    var model: String

    @Option(help: ArgumentHelp("Where to write the ONNX model.", valueName: "file"))
    var onnx: String

    func run() throws {
        let net: Sequential
        do { net = try Sequential.load(from: model) } catch { throw ValidationError("\(model): \(error.message)") }
        do { try net.exportONNX(to: onnx) } catch { throw ValidationError("--onnx \(onnx): \(error.message)") }
        print("wrote \(onnx): ONNX opset 17, input (N, \(net.sampleShape.dimensions.map(String.init).joined(separator: ", "))), output (N, \(net.outputSize))")
    }
}
