/// Export of a `Sequential` to an ONNX model: opset 17 (IR version 8), float32, the batch as a
/// dynamic dimension "N"; input "input" (N, *sampleShape), output "output" (N, *outputShape).
///
/// Each built-in layer writes its own nodes (`ONNXExportable`): Dense as Gemm (MatMul + Add on
/// inputs of more than one dimension), its activation after it, Conv2D as Conv, the pools as
/// MaxPool / AveragePool / GlobalAveragePool, BatchNorm as BatchNormalization (running
/// statistics), LayerNorm as LayerNormalization, Flatten / Reshape, Softmax / LogSoftmax over
/// the last axis, Dropout as Identity. GELU and SiLU, which opset 17 lacks, are written as the
/// formulas (Erf / Tanh, Sigmoid). The scaler comes first, as Sub and Div (min-max: and Mul,
/// Add). Plugin activations, tied weights and application layers have no ONNX form: `unsupported`
/// names the layer. The class names go into the model's metadata_props ("classes", JSON).
public protocol ONNXExportable {
    /// Adds this layer's nodes after `input` (a value of shape (N, *inputShape)) and returns
    /// the name of its output. `tensors` holds the layer's state-dict tensors by local name.
    func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                    tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String
}

/// The nodes and initializers of a graph being written.
public final class ONNXGraphBuilder {
    enum Attribute {
        case int(Int), float(Float), ints([Int])
    }

    struct Node {
        let op: String
        let inputs: [String]
        let outputs: [String]
        let attributes: [(String, Attribute)]
    }

    struct Tensor {
        let name: String
        let dims: [Int]
        let floats: [Float]?
        let int64s: [Int]?
    }

    private(set) var nodes: [Node] = []
    private(set) var initializers: [Tensor] = []
    private var counter = 0

    init() {}

    private func fresh(_ hint: String) -> String {
        counter += 1
        return "\(hint)_\(counter)"
    }

    /// A float32 initializer (dims [] for a scalar); returns its name.
    func constant(_ hint: String, _ values: [Float], dims: [Int]) -> String {
        let name = fresh(hint)
        initializers.append(Tensor(name: name, dims: dims, floats: values, int64s: nil))
        return name
    }

    /// An int64 initializer (Reshape's shape); returns its name.
    func constant(_ hint: String, int64s: [Int]) -> String {
        let name = fresh(hint)
        initializers.append(Tensor(name: name, dims: [int64s.count], floats: nil, int64s: int64s))
        return name
    }

    /// Adds a node of `op` with one output; returns the output's name.
    @discardableResult
    func node(_ op: String, _ inputs: [String], _ attributes: [(String, Attribute)] = []) -> String {
        let out = fresh(op.lowercased())
        nodes.append(Node(op: op, inputs: inputs, outputs: [out], attributes: attributes))
        return out
    }

    /// Renames the graph's last output to `name` (through an Identity when it is not a node's).
    func finish(_ last: String, as name: String) {
        if let i = nodes.lastIndex(where: { $0.outputs == [last] }) {
            let n = nodes[i]
            nodes[i] = Node(op: n.op, inputs: n.inputs, outputs: [name], attributes: n.attributes)
        } else {
            nodes.append(Node(op: "Identity", inputs: [last], outputs: [name], attributes: []))
        }
    }

    /// `activation` applied to `x`.
    func activate(_ activation: Activation, _ x: String) -> String {
        func scalar(_ v: Float) -> String { constant("c", [v], dims: []) }
        switch activation {
        case .identity: return x
        case .relu: return node("Relu", [x])
        case .sigmoid: return node("Sigmoid", [x])
        case .tanh: return node("Tanh", [x])
        case .softplus: return node("Softplus", [x])
        case .leakyReLU(let a): return node("LeakyRelu", [x], [("alpha", .float(a))])
        case .elu(let a): return node("Elu", [x], [("alpha", .float(a))])
        case .silu: return node("Mul", [x, node("Sigmoid", [x])])
        case .gelu: // x * 0.5 * (1 + erf(x / sqrt 2))
            let erf = node("Erf", [node("Div", [x, scalar(Float(2).squareRoot())])])
            return node("Mul", [node("Mul", [x, node("Add", [erf, scalar(1)])]), scalar(0.5)])
        case .geluTanh: // 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))
            let cube = node("Mul", [node("Mul", [x, x]), x])
            let inner = node("Mul", [node("Add", [x, node("Mul", [cube, scalar(0.044715)])]), scalar((2 / Float.pi).squareRoot())])
            return node("Mul", [node("Mul", [x, node("Add", [node("Tanh", [inner]), scalar(1)])]), scalar(0.5)])
        }
    }
}

extension Sequential {
    /// The ONNX model of this network (and its scaler) as protobuf bytes; see `ONNXExportable`.
    /// Throws `unsupported` naming a layer that has no ONNX form.
    public func onnxModel() throws(NNError) -> [UInt8] {
        let graph = ONNXGraphBuilder()
        var x = "input"
        if let scaler { x = try exportScaler(scaler, graph, input: x) }
        x = try exportLayers(graph, input: x, tensors: Dictionary(stateDict().map { ($0.name, ($0.shape, $0.values)) }) { a, _ in a })
        graph.finish(x, as: "output")
        return ONNXModelWriter.model(graph, input: ("input", sampleShape), output: ("output", outputSampleShape),
                                     metadata: classNames.map { ["classes": "[" + $0.map(jsonQuoted).joined(separator: ", ") + "]"] } ?? [:])
    }

    /// Writes `onnxModel()` to `path`, atomically.
    public func exportONNX(to path: String) throws(NNError) {
        try FileIO.writeAtomically(onnxModel(), to: path)
    }

    /// The layers' nodes after `input`; `tensors` are this model's state-dict tensors.
    func exportLayers(_ graph: ONNXGraphBuilder, input: String, tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        var x = input, module = 0
        for (i, layer) in layers.enumerated() {
            guard let exportable = layer as? any ONNXExportable else {
                throw .unsupported("layer \(i) (\(type(of: layer).typeName)) has no ONNX form, so the model cannot be exported to ONNX")
            }
            let prefix = "\(module)."
            var own: [String: (shape: [Int], values: [Float])] = [:]
            for (name, t) in tensors where name.hasPrefix(prefix) { own[String(name.dropFirst(prefix.count))] = t }
            do {
                x = try exportable.exportONNX(graph, input: x, inputShape: i == 0 ? sampleShape : layerOutputShapes[i - 1], tensors: own)
            } catch {
                throw error.prefixed("layer \(i) (\(type(of: layer).typeName))")
            }
            module += layer.moduleCount
        }
        return x
    }

    private func exportScaler(_ scaler: any FeatureScaler, _ graph: ONNXGraphBuilder, input: String) throws(NNError) -> String {
        let dims = sampleShape.dimensions
        if let s = scaler as? Standardizer {
            let centred = graph.node("Sub", [input, graph.constant("scaler_mean", s.mean, dims: dims)])
            return graph.node("Div", [centred, graph.constant("scaler_std", s.std, dims: dims)])
        }
        if let m = scaler as? MinMaxScaler {
            let spans = zip(m.dataMin, m.dataMax).map { lo, hi in hi - lo > 0 ? hi - lo : 1 }
            let width = m.range.upperBound - m.range.lowerBound
            var x = graph.node("Sub", [input, graph.constant("scaler_min", m.dataMin, dims: dims)])
            x = graph.node("Div", [x, graph.constant("scaler_span", spans, dims: dims)])
            x = graph.node("Mul", [x, graph.constant("scaler_width", [width], dims: [])])
            return graph.node("Add", [x, graph.constant("scaler_lower", [m.range.lowerBound], dims: [])])
        }
        throw .unsupported("the \(scaler.kind) scaler has no ONNX form")
    }
}

extension Sequential: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        try exportLayers(graph, input: input, tensors: tensors)
    }
}

/// The tensor `name` of a layer, or `corruptFile` when the model lacks it.
private func tensor(_ tensors: [String: (shape: [Int], values: [Float])], _ name: String) throws(NNError) -> (shape: [Int], values: [Float]) {
    guard let t = tensors[name] else { throw .unsupported("no '\(name)' tensor (tied weights have no ONNX form)") }
    return t
}

extension Dense: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        let w = try tensor(tensors, "weight"), b = try tensor(tensors, "bias")
        let bias = graph.constant("bias", b.values, dims: b.shape)
        let y: String
        if inputShape.rank == 1 {
            y = graph.node("Gemm", [input, graph.constant("weight", w.values, dims: w.shape), bias], [("transB", .int(1))])
        } else { // nn.Linear on the last dimension: x @ W^T + b
            var wt = [Float](repeating: 0, count: w.values.count)
            for o in 0..<outputSize { for i in 0..<inputFeatures { wt[i * outputSize + o] = w.values[o * inputFeatures + i] } }
            y = graph.node("Add", [graph.node("MatMul", [input, graph.constant("weight_t", wt, dims: [inputFeatures, outputSize])]), bias])
        }
        return graph.activate(activation, y)
    }
}

extension ActivationLayer: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        activation == .identity ? graph.node("Identity", [input]) : graph.activate(activation, input)
    }
}

extension Softmax: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("Softmax", [input], [("axis", .int(-1))])
    }
}

extension LogSoftmax: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("LogSoftmax", [input], [("axis", .int(-1))])
    }
}

extension Dropout: ONNXExportable {
    /// Inference: dropout is the identity.
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("Identity", [input])
    }
}

extension Flatten: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("Flatten", [input], [("axis", .int(1))])
    }
}

extension Reshape: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        // 0 keeps the batch dimension (allowzero is 0); the target may hold one -1.
        graph.node("Reshape", [input, graph.constant("shape", int64s: [0] + target)])
    }
}

extension Conv2D: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        let w = try tensor(tensors, "weight")
        var inputs = [input, graph.constant("weight", w.values, dims: w.shape)]
        if hasBias {
            let b = try tensor(tensors, "bias")
            inputs.append(graph.constant("bias", b.values, dims: b.shape))
        }
        let y = graph.node("Conv", inputs, [
            ("kernel_shape", .ints([kernel.h, kernel.w])), ("strides", .ints([stride.h, stride.w])),
            ("pads", .ints([padding.h, padding.w, padding.h, padding.w])), ("dilations", .ints([dilation.h, dilation.w])),
            ("group", .int(groups)),
        ])
        return graph.activate(activation, y)
    }
}

extension PoolWindow {
    var onnxAttributes: [(String, ONNXGraphBuilder.Attribute)] {
        [("kernel_shape", .ints([kernel.h, kernel.w])), ("strides", .ints([stride.h, stride.w])),
         ("pads", .ints([padding.h, padding.w, padding.h, padding.w]))]
    }
}

extension MaxPool2D: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("MaxPool", [input], window.onnxAttributes)
    }
}

extension AvgPool2D: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("AveragePool", [input], window.onnxAttributes + [("count_include_pad", .int(countIncludePad ? 1 : 0))])
    }
}

extension GlobalAvgPool2D: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        graph.node("GlobalAveragePool", [input])
    }
}

extension BatchNormBase: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        let c = features
        let scale = affine ? try tensor(tensors, "weight").values : [Float](repeating: 1, count: c)
        let shift = affine ? try tensor(tensors, "bias").values : [Float](repeating: 0, count: c)
        return graph.node("BatchNormalization", [
            input, graph.constant("scale", scale, dims: [c]), graph.constant("shift", shift, dims: [c]),
            graph.constant("running_mean", try tensor(tensors, "running_mean").values, dims: [c]),
            graph.constant("running_var", try tensor(tensors, "running_var").values, dims: [c]),
        ], [("epsilon", .float(eps))])
    }
}

extension LayerNorm: ONNXExportable {
    public func exportONNX(_ graph: ONNXGraphBuilder, input: String, inputShape: Shape,
                           tensors: [String: (shape: [Int], values: [Float])]) throws(NNError) -> String {
        let dims = normalizedShape.dimensions, n = normalizedShape.count
        let scale = affine ? try tensor(tensors, "weight").values : [Float](repeating: 1, count: n)
        let shift = affine ? try tensor(tensors, "bias").values : [Float](repeating: 0, count: n)
        return graph.node("LayerNormalization", [input, graph.constant("scale", scale, dims: dims), graph.constant("shift", shift, dims: dims)],
                          [("axis", .int(-normalizedShape.rank)), ("epsilon", .float(eps))])
    }
}

/// The ONNX messages (field numbers from onnx.proto) written with `ProtobufWriter`.
enum ONNXModelWriter {
    static let irVersion = 8, opset = 17

    static func model(_ g: ONNXGraphBuilder, input: (String, Shape), output: (String, Shape), metadata: [String: String]) -> [UInt8] {
        var w = ProtobufWriter()
        w.int(1, irVersion)                                     // ModelProto.ir_version
        w.string(2, "NNBackprop")                               // producer_name
        w.string(3, String(describing: Runtime.version))        // producer_version
        w.message(7) { graph(&$0, g, input: input, output: output) }
        w.message(8) { $0.string(1, ""); $0.int(2, opset) }     // opset_import: the default domain
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) {
            w.message(14) { $0.string(1, key); $0.string(2, value) } // metadata_props
        }
        return w.bytes
    }

    private static func graph(_ w: inout ProtobufWriter, _ g: ONNXGraphBuilder, input: (String, Shape), output: (String, Shape)) {
        for (i, n) in g.nodes.enumerated() {
            w.message(1) { m in                                 // GraphProto.node
                for x in n.inputs { m.string(1, x) }
                for y in n.outputs { m.string(2, y) }
                m.string(3, "\(n.op)_\(i)")
                m.string(4, n.op)
                for (name, value) in n.attributes { m.message(5) { attribute(&$0, name, value) } }
            }
        }
        w.string(2, "nnbackprop")                               // name
        for t in g.initializers { w.message(5) { tensor(&$0, t) } }
        w.message(11) { valueInfo(&$0, input.0, input.1) }
        w.message(12) { valueInfo(&$0, output.0, output.1) }
    }

    private static func attribute(_ w: inout ProtobufWriter, _ name: String, _ value: ONNXGraphBuilder.Attribute) {
        w.string(1, name)
        switch value {
        case .float(let f): w.float(2, f); w.int(20, 1)        // f, type FLOAT
        case .int(let i): w.int(3, i); w.int(20, 2)            // i, type INT
        case .ints(let list): for i in list { w.int(8, i) }; w.int(20, 7) // ints, type INTS
        }
    }

    private static func tensor(_ w: inout ProtobufWriter, _ t: ONNXGraphBuilder.Tensor) {
        for d in t.dims { w.int(1, d) }                         // TensorProto.dims
        var raw: [UInt8] = []
        if let floats = t.floats {
            w.int(2, 1)                                         // data_type FLOAT
            raw.reserveCapacity(4 * floats.count)
            for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { raw.append(contentsOf: $0) } }
        } else if let ints = t.int64s {
            w.int(2, 7)                                         // data_type INT64
            for i in ints { withUnsafeBytes(of: Int64(i).littleEndian) { raw.append(contentsOf: $0) } }
        }
        w.string(8, t.name)
        w.data(9, raw)                                          // raw_data, little-endian
    }

    private static func valueInfo(_ w: inout ProtobufWriter, _ name: String, _ shape: Shape) {
        w.string(1, name)
        w.message(2) { type in                                  // TypeProto
            type.message(1) { tensor in                         // tensor_type
                tensor.int(1, 1)                                // elem_type FLOAT
                tensor.message(2) { dims in                     // shape
                    dims.message(1) { $0.string(2, "N") }       // dim_param: the batch
                    for d in shape.dimensions { dims.message(1) { $0.int(1, d) } }
                }
            }
        }
    }
}
