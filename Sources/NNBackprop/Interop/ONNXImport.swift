/// Import of ONNX graphs of the layer kinds this library has, as `torch.onnx.export` writes
/// them for an `nn.Sequential` MLP or CNN, into a trainable `Sequential`.
///
/// The graph must be a chain from its one input to its one output: each node takes the previous
/// node's output (plus initializers). Understood: Gemm (alpha = beta = 1, either transB),
/// MatMul + Add, Conv (symmetric pads), Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, Softmax and
/// LogSoftmax on the last axis, MaxPool (ceil_mode 0), AveragePool, GlobalAveragePool,
/// BatchNormalization (inference form), LayerNormalization on trailing axes, Flatten (axis 1),
/// Reshape keeping the batch, Dropout and Identity; Constant and Identity nodes on initializers
/// (which PyTorch writes for shared tensors) are followed. An activation right after a Dense or
/// Conv2D is fused into it, so the state-dict names stay those of the PyTorch model. Anything else
/// is `unsupported` naming the node and its op.
extension Sequential {
    /// The model of the ONNX file at `path`; throws `unsupported` for a node outside the subset,
    /// `corruptFile` for a damaged file, `fileError` when it cannot be read.
    public static func importONNX(from path: String, seed: UInt64 = 0) throws(NNError) -> Sequential {
        do { return try importONNX(bytes: FileIO.readAll(path), seed: seed) } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// The model of an ONNX ModelProto's bytes.
    public static func importONNX(bytes: [UInt8], seed: UInt64 = 0) throws(NNError) -> Sequential {
        var importer = try ONNXImporter(ONNXModelReader.graph(bytes[...]))
        return try importer.model(seed: seed)
    }
}

/// The parts of an ONNX graph the importer reads.
struct ONNXGraphProto {
    struct Node {
        var name = "", op = ""
        var inputs: [String] = [], outputs: [String] = []
        var attributes: [String: ProtobufReader.Value] = [:]
        var intLists: [String: [Int]] = [:]
        var tensorAttribute: ONNXTensorValue?
        var label: String { "node '\(name.isEmpty ? outputs.first ?? "?" : name)' (op \(op))" }
    }

    var nodes: [Node] = []
    var initializers: [String: ONNXTensorValue] = [:]
    var input: (name: String, dims: [Int?])?
    var inputs = 0
    var output: String?
}

struct ONNXTensorValue {
    var dims: [Int] = []
    var floats: [Float] = []
    var count: Int { dims.reduce(1, *) }
}

enum ONNXModelReader {
    static func graph(_ bytes: ArraySlice<UInt8>) throws(NNError) -> ONNXGraphProto {
        var r = ProtobufReader(bytes), graph: ONNXGraphProto?
        while let (field, value) = try r.next() {
            if field == 8, let d = value.data { // opset_import: the default domain's version
                var o = ProtobufReader(d), domain = "", version = 0
                while let (f, v) = try o.next() {
                    if f == 1 { domain = v.string ?? "" } else if f == 2 { version = v.int ?? 0 }
                }
                if domain.isEmpty || domain == "ai.onnx", version < 7 {
                    throw .unsupported("ONNX opset \(version): this importer reads opset 7 and later")
                }
            }
            if field == 7, let d = value.data { graph = try readGraph(d) }
        }
        guard let graph else { throw .corruptFile("not an ONNX model: no graph (ModelProto field 7)") }
        return graph
    }

    private static func readGraph(_ bytes: ArraySlice<UInt8>) throws(NNError) -> ONNXGraphProto {
        var g = ONNXGraphProto(), r = ProtobufReader(bytes), inputs: [(String, [Int?])] = []
        while let (field, value) = try r.next() {
            guard let d = value.data else { continue }
            switch field {
            case 1: g.nodes.append(try readNode(d))
            case 5:
                let (name, t) = try readTensor(d)
                g.initializers[name] = t
            case 11: inputs.append(try readValueInfo(d))
            case 12: if g.output == nil { g.output = try readValueInfo(d).0 } else { throw .unsupported("the graph has more than one output") }
            default: break
            }
        }
        // Older exporters list initializers among the inputs too.
        let real = inputs.filter { g.initializers[$0.0] == nil }
        guard real.count == 1 else { throw .unsupported("the graph has \(real.count) inputs (\(real.map { $0.0 }.joined(separator: ", "))); a Sequential takes one") }
        g.input = (real[0].0, real[0].1)
        return g
    }

    private static func readNode(_ bytes: ArraySlice<UInt8>) throws(NNError) -> ONNXGraphProto.Node {
        var n = ONNXGraphProto.Node(), r = ProtobufReader(bytes)
        while let (field, value) = try r.next() {
            switch field {
            case 1: n.inputs.append(value.string ?? "")
            case 2: n.outputs.append(value.string ?? "")
            case 3: n.name = value.string ?? ""
            case 4: n.op = value.string ?? ""
            case 7: if let domain = value.string, !domain.isEmpty, domain != "ai.onnx" { n.op = domain + "." + n.op }
            case 5:
                guard let d = value.data else { continue }
                var a = ProtobufReader(d), name = ""
                var scalar: ProtobufReader.Value?, ints: [Int] = [], tensor: ONNXTensorValue?
                while let (f, v) = try a.next() {
                    switch f {
                    case 1: name = v.string ?? ""
                    case 2, 3, 4: scalar = v
                    case 5: if let td = v.data { tensor = try readTensor(td).1 }
                    case 8: ints += try v.ints()
                    default: break
                    }
                }
                if let scalar { n.attributes[name] = scalar }
                if !ints.isEmpty { n.intLists[name] = ints }
                if let tensor { n.tensorAttribute = tensor }
            default: break
            }
        }
        return n
    }

    private static func readTensor(_ bytes: ArraySlice<UInt8>) throws(NNError) -> (String, ONNXTensorValue) {
        var t = ONNXTensorValue(), r = ProtobufReader(bytes), name = "", type = 0
        var raw: ArraySlice<UInt8>?, ints: [Int] = []
        while let (field, value) = try r.next() {
            switch field {
            case 1: t.dims += try value.ints()
            case 2: type = value.int ?? 0
            case 4:
                if let f = value.float { t.floats.append(f) } else if let d = value.data {
                    guard d.count % 4 == 0 else { throw .corruptFile("tensor float_data of \(d.count) bytes") }
                    t.floats += littleEndianFloats(d)
                }
            case 7: ints += try value.ints()
            case 8: name = value.string ?? ""
            case 9: raw = value.data
            default: break
            }
        }
        guard t.dims.allSatisfy({ $0 >= 0 && $0 < 1 << 31 }) else { throw .corruptFile("tensor '\(name)' has dims \(t.dims)") }
        var count = 1
        for d in t.dims {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard !o, p < 1 << 31 else { throw .corruptFile("tensor '\(name)' of dims \(t.dims) is larger than 2^31 elements") }
            count = p
        }
        switch type {
        case 1: // FLOAT
            if let raw {
                guard raw.count == 4 * count else { throw .corruptFile("tensor '\(name)': \(raw.count) bytes of raw_data for \(count) floats") }
                t.floats = littleEndianFloats(raw)
            }
        case 7: // INT64 (shapes): kept as floats of exact small integers
            if let raw {
                guard raw.count == 8 * count else { throw .corruptFile("tensor '\(name)': \(raw.count) bytes of raw_data for \(count) int64s") }
                ints = stride(from: raw.startIndex, to: raw.endIndex, by: 8).map { k in
                    var v: UInt64 = 0
                    for b in 0..<8 { v |= UInt64(raw[k + b]) << (8 * UInt64(b)) }
                    return Int(truncatingIfNeeded: Int64(bitPattern: v))
                }
            }
            guard ints.allSatisfy({ $0.magnitude < 1 << 24 }) else { throw .unsupported("tensor '\(name)' holds int64 values beyond 2^24") }
            t.floats = ints.map { Float($0) }
        default: throw .unsupported("tensor '\(name)' has ONNX data type \(type); float32 (1) and int64 shapes (7) are read")
        }
        guard t.floats.count == count else { throw .corruptFile("tensor '\(name)' holds \(t.floats.count) values for dims \(t.dims)") }
        return (name, t)
    }

    private static func littleEndianFloats(_ d: ArraySlice<UInt8>) -> [Float] {
        var out: [Float] = []
        out.reserveCapacity(d.count / 4)
        var k = d.startIndex
        while k + 4 <= d.endIndex {
            var bits: UInt32 = 0
            for b in 0..<4 { bits |= UInt32(d[k + b]) << UInt32(8 * b) }
            out.append(Float(bitPattern: bits))
            k += 4
        }
        return out
    }

    private static func readValueInfo(_ bytes: ArraySlice<UInt8>) throws(NNError) -> (String, [Int?]) {
        var r = ProtobufReader(bytes), name = "", dims: [Int?] = []
        while let (field, value) = try r.next() {
            if field == 1 { name = value.string ?? "" }
            guard field == 2, let type = value.data else { continue }
            var t = ProtobufReader(type)
            while let (f, v) = try t.next() {
                guard f == 1, let tensorType = v.data else { continue }
                var tt = ProtobufReader(tensorType)
                while let (f2, v2) = try tt.next() {
                    if f2 == 1, let e = v2.int, e != 1 { throw .unsupported("input '\(name)' has element type \(e); float32 (1) is read") }
                    guard f2 == 2, let shape = v2.data else { continue }
                    var s = ProtobufReader(shape)
                    while let (f3, v3) = try s.next() {
                        guard f3 == 1, let dim = v3.data else { continue }
                        var dr = ProtobufReader(dim), size: Int?
                        while let (f4, v4) = try dr.next() { if f4 == 1 { size = v4.int } }
                        dims.append(size)
                    }
                }
            }
        }
        return (name, dims)
    }
}

/// Walks the chain of nodes, turning each into a layer spec and its tensors.
struct ONNXImporter {
    let graph: ONNXGraphProto
    var specs: [LayerSpec] = []
    /// Tensors by the model's state-dict names ("0.weight").
    var tensors: [String: [Float]] = [:]
    var module = 0
    var values: [String: ONNXTensorValue]

    init(_ graph: ONNXGraphProto) {
        self.graph = graph
        values = graph.initializers
    }

    mutating func model(seed: UInt64) throws(NNError) -> Sequential {
        guard let input = graph.input, let outputName = graph.output else { throw .corruptFile("the graph has no input or output") }
        guard input.dims.count >= 2, input.dims.dropFirst().allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw .unsupported("input '\(input.name)' has shape \(input.dims.map { $0.map(String.init) ?? "?" }); a batch then fixed positive sizes are needed")
        }
        let shape = try Shape(input.dims.dropFirst().map { $0! })
        var current = input.name, shapes = [shape], nodes = graph.nodes[...]
        while let node = nodes.popFirst() {
            if node.op == "Constant", let t = node.tensorAttribute, let out = node.outputs.first { values[out] = t; continue }
            if node.op == "Identity", let x = node.inputs.first, let t = values[x], let out = node.outputs.first { values[out] = t; continue }
            guard node.inputs.first == current, node.outputs.count >= 1 else {
                throw .unsupported("\(node.label) does not take the previous layer's output '\(current)': only a chain of layers (an nn.Sequential) is imported")
            }
            var next = node.outputs[0]
            var spec: LayerSpec
            do {
                (spec, next) = try layer(node, inputShape: shapes.last!, rest: &nodes)
            } catch {
                throw error.prefixed(node.label)
            }
            if spec.type.isEmpty { current = next; continue } // Identity, or inference-time Dropout
            // Fuse an activation that follows a Dense or Conv2D (as nn.Linear, nn.ReLU are written).
            if spec.type == "Dense" || spec.type == "Conv2D", let follower = nodes.first, follower.inputs == [next],
               let act = try activation(follower), let fusedOut = follower.outputs.first {
                spec.attributes["activation"] = .string(act.name)
                if act.alpha != nil { spec.attributes["alpha"] = .float(act.alpha!) }
                next = fusedOut
                nodes.removeFirst()
            }
            let layers: [any Layer]
            do { layers = try Sequential.layers(from: [spec], inputShape: shapes.last!) } catch { throw error.prefixed(node.label) }
            specs.append(spec)
            shapes.append(try layers[0].outputShape(for: shapes.last!))
            module += layers[0].moduleCount
            current = next
        }
        guard current == outputName else { throw .unsupported("the chain of nodes ends at '\(current)', not at the graph's output '\(outputName)'") }
        let layers = try Sequential.layers(from: specs, inputShape: shape)
        let model = try Sequential(layers: layers, inputShape: shape, seed: seed)
        for (layout, base) in [(model.stateDictLayout, model.parameters.baseAddress), (model.bufferStateDictLayout, model.buffers.baseAddress)] {
            for e in layout {
                guard let values = tensors[e.name] else {
                    if e.name.hasSuffix("num_batches_tracked") { continue }
                    throw .corruptFile("no tensor for '\(e.name)'")
                }
                guard values.count == e.shape.reduce(1, *) else { throw .shapeMismatch("'\(e.name)' has \(values.count) values, the layer needs \(e.shape)") }
                guard values.allSatisfy(\.isFinite) else { throw .invalidData("tensor '\(e.name)' holds NaN or infinite values") }
                (base! + e.offset).update(from: values, count: values.count)
            }
        }
        return model
    }

    private func tensor(_ node: ONNXGraphProto.Node, _ index: Int, _ what: String) throws(NNError) -> ONNXTensorValue {
        guard index < node.inputs.count, let t = values[node.inputs[index]] else {
            throw .unsupported("its \(what) (input \(index)) is not a constant tensor")
        }
        return t
    }

    /// Float-held whole numbers (a shape, pads) as Ints; anything else is refused.
    private func whole(_ values: [Float], _ what: String) throws(NNError) -> [Int] {
        var out: [Int] = []
        for v in values {
            guard v.magnitude < 16_777_216, let i = Int(exactly: v) else { throw .corruptFile("\(what) holds \(v), not a whole number below 2^24") }
            out.append(i)
        }
        return out
    }

    private func int(_ node: ONNXGraphProto.Node, _ name: String, _ d: Int) -> Int { node.attributes[name]?.int ?? d }
    private func float(_ node: ONNXGraphProto.Node, _ name: String, _ d: Float) -> Float { node.attributes[name]?.float ?? d }

    /// The activation a node computes, or nil when it is not an element-wise activation.
    private func activation(_ node: ONNXGraphProto.Node) throws(NNError) -> (name: String, alpha: Float?)? {
        switch node.op {
        case "Relu": return ("relu", nil)
        case "Sigmoid": return ("sigmoid", nil)
        case "Tanh": return ("tanh", nil)
        case "Softplus": return ("softplus", nil)
        case "LeakyRelu": return ("leaky_relu", float(node, "alpha", 0.01))
        case "Elu": return ("elu", float(node, "alpha", 1))
        default: return nil
        }
    }

    private mutating func put(_ local: String, _ values: [Float]) { tensors["\(module).\(local)"] = values }

    /// The spec of one node (type "" for a node that is the identity) and the value it leaves.
    private mutating func layer(_ node: ONNXGraphProto.Node, inputShape: Shape,
                                rest: inout ArraySlice<ONNXGraphProto.Node>) throws(NNError) -> (LayerSpec, String) {
        let out = node.outputs[0]
        if let act = try activation(node) {
            var s = LayerSpec(type: "Activation", attributes: ["activation": .string(act.name)])
            if let a = act.alpha { s.attributes["alpha"] = .float(a) }
            return (s, out)
        }
        switch node.op {
        case "Identity": return (LayerSpec(type: ""), out)
        case "Pad": // PyTorch writes a Pad of zeros before AveragePool: that is the identity
            let pads = node.inputs.count > 1 ? try whole(tensor(node, 1, "pads").floats, "pads") : node.intLists["pads"] ?? []
            guard pads.allSatisfy({ $0 == 0 }) else { throw .unsupported("a Pad of \(pads) that is not fused into a convolution or pooling") }
            return (LayerSpec(type: ""), out)
        case "Dropout":
            let p = node.inputs.count > 1 ? (values[node.inputs[1]]?.floats.first ?? 0.5) : float(node, "ratio", 0.5)
            return (LayerSpec(type: "Dropout", attributes: ["p": .float(p)]), out)
        case "Gemm":
            guard float(node, "alpha", 1) == 1, float(node, "beta", 1) == 1, int(node, "transA", 0) == 0 else {
                throw .unsupported("Gemm with alpha, beta other than 1 or transA is not a Linear layer")
            }
            var w = try tensor(node, 1, "weight")
            guard w.dims.count == 2 else { throw .unsupported("a weight of dims \(w.dims)") }
            if int(node, "transB", 0) == 0 { w = transposed(w) }
            let (outF, inF) = (w.dims[0], w.dims[1])
            guard outF > 0, inF > 0 else { throw .unsupported("a weight of dims \(w.dims): no features") }
            let b = node.inputs.count > 2 ? try tensor(node, 2, "bias").floats : [Float](repeating: 0, count: outF)
            guard b.count == outF else { throw .shapeMismatch("a bias of \(b.count) values for \(outF) outputs") }
            put("weight", w.floats)
            put("bias", b)
            return (LayerSpec(type: "Dense", attributes: ["in_features": .int(inF), "out_features": .int(outF)]), out)
        case "MatMul":
            let w = try tensor(node, 1, "weight")
            guard w.dims.count == 2, w.dims[0] > 0, w.dims[1] > 0 else { throw .unsupported("a weight of dims \(w.dims)") }
            var bias = [Float](repeating: 0, count: w.dims[1]), next = out
            if let add = rest.first, add.op == "Add", add.inputs.contains(out), let other = add.inputs.first(where: { $0 != out }),
               let b = values[other], b.count == w.dims[1], let sum = add.outputs.first {
                bias = b.floats
                next = sum
                rest.removeFirst()
            }
            put("weight", transposed(w).floats)
            put("bias", bias)
            return (LayerSpec(type: "Dense", attributes: ["in_features": .int(w.dims[0]), "out_features": .int(w.dims[1])]), next)
        case "Conv":
            let w = try tensor(node, 1, "weight")
            guard w.dims.count == 4, inputShape.rank == 3 else { throw .unsupported("only 2-D convolutions of (C, H, W) inputs are read (weight dims \(w.dims))") }
            let pads = node.intLists["pads"] ?? [0, 0, 0, 0]
            guard pads.count == 4, pads[0] == pads[2], pads[1] == pads[3] else { throw .unsupported("asymmetric pads \(pads)") }
            if let ap = node.attributes["auto_pad"]?.string, ap != "NOTSET" { throw .unsupported("auto_pad \(ap)") }
            let groups = int(node, "group", 1)
            var attrs: [String: LayerSpec.Value] = [
                "in_channels": .int(inputShape.dimensions[0]), "out_channels": .int(w.dims[0]),
                "kernel_size": .ints([w.dims[2], w.dims[3]]), "stride": .ints(node.intLists["strides"] ?? [1, 1]),
                "padding": .ints([pads[0], pads[1]]), "dilation": .ints(node.intLists["dilations"] ?? [1, 1]), "groups": .int(groups),
            ]
            put("weight", w.floats)
            if node.inputs.count > 2 { put("bias", try tensor(node, 2, "bias").floats) } else { attrs["bias"] = .int(0) }
            return (LayerSpec(type: "Conv2D", attributes: attrs), out)
        case "MaxPool", "AveragePool":
            if let ap = node.attributes["auto_pad"]?.string, ap != "NOTSET" { throw .unsupported("auto_pad \(ap)") }
            guard int(node, "ceil_mode", 0) == 0 else { throw .unsupported("ceil_mode 1") }
            if let d = node.intLists["dilations"], d.contains(where: { $0 != 1 }) { throw .unsupported("pooling dilations \(d)") }
            guard let k = node.intLists["kernel_shape"], k.count == 2 else { throw .unsupported("a kernel_shape that is not 2-D") }
            let pads = node.intLists["pads"] ?? [0, 0, 0, 0]
            guard pads.count == 4, pads[0] == pads[2], pads[1] == pads[3] else { throw .unsupported("asymmetric pads \(pads)") }
            var attrs: [String: LayerSpec.Value] = ["kernel_size": .ints(k), "stride": .ints(node.intLists["strides"] ?? [1, 1]), "padding": .ints([pads[0], pads[1]])]
            if node.op == "AveragePool" { attrs["count_include_pad"] = .int(int(node, "count_include_pad", 0)) }
            return (LayerSpec(type: node.op == "MaxPool" ? "MaxPool2D" : "AvgPool2D", attributes: attrs), out)
        case "GlobalAveragePool": return (LayerSpec(type: "GlobalAvgPool2D"), out)
        case "BatchNormalization":
            let c = inputShape.dimensions[0]
            let parts = try [1, 2, 3, 4].map { (i: Int) throws(NNError) -> [Float] in try tensor(node, i, ["scale", "bias", "mean", "variance"][i - 1]).floats }
            guard parts.allSatisfy({ $0.count == c }) else { throw .shapeMismatch("statistics that are not \(c) values (one per channel)") }
            put("weight", parts[0]); put("bias", parts[1]); put("running_mean", parts[2]); put("running_var", parts[3])
            let type = inputShape.rank == 3 ? "BatchNorm2d" : "BatchNorm1d"
            return (LayerSpec(type: type, attributes: ["num_features": .int(c), "eps": .float(float(node, "epsilon", 1e-5)),
                                                       "momentum": .float(pytorchMomentum(float(node, "momentum", 0.9)))]), out)
        case "LayerNormalization":
            let axis = int(node, "axis", -1), rank = inputShape.rank + 1
            let first = axis < 0 ? axis + rank : axis
            guard first >= 1, first < rank else { throw .unsupported("axis \(axis) includes the batch") }
            let dims = Array(inputShape.dimensions[(first - 1)...])
            put("weight", try tensor(node, 1, "scale").floats)
            put("bias", node.inputs.count > 2 ? try tensor(node, 2, "bias").floats : [Float](repeating: 0, count: dims.reduce(1, *)))
            return (LayerSpec(type: "LayerNorm", attributes: ["normalized_shape": .ints(dims), "eps": .float(float(node, "epsilon", 1e-5))]), out)
        case "Softmax", "LogSoftmax":
            let axis = int(node, "axis", -1)
            guard axis == -1 || axis == inputShape.rank else { throw .unsupported("axis \(axis): only the last axis is read") }
            return (LayerSpec(type: node.op), out)
        case "Flatten":
            guard int(node, "axis", 1) == 1 else { throw .unsupported("axis \(int(node, "axis", 1)): only axis 1 (keep the batch) is read") }
            return (LayerSpec(type: "Flatten"), out)
        case "Reshape":
            let target = try whole(tensor(node, 1, "shape").floats, "shape")
            guard let first = target.first, first == 0 || first == -1, target.count >= 2 else {
                throw .unsupported("target shape \(target) does not keep the batch dimension first")
            }
            let rest = Array(target.dropFirst())
            if first == -1 && rest.contains(-1) { throw .unsupported("target shape \(target) has two -1") }
            if rest.count == 1 && (rest[0] == -1 || rest[0] == inputShape.count) { return (LayerSpec(type: "Flatten"), out) }
            return (LayerSpec(type: "Reshape", attributes: ["shape": .ints(rest)]), out)
        default:
            throw .unsupported("op \(node.op) is not in the subset this library imports (Gemm, MatMul, Add after MatMul, Conv, Pad of zeros, Relu, Sigmoid, Tanh, LeakyRelu, Elu, Softplus, Softmax, LogSoftmax, MaxPool, AveragePool, GlobalAveragePool, BatchNormalization, LayerNormalization, Flatten, Reshape, Dropout, Identity, Constant)")
        }
    }

    /// PyTorch's momentum (the weight of the new batch) from ONNX's (the running value's),
    /// rounded to 6 decimals so that 0.9 gives 0.1, not 0.100000024.
    private func pytorchMomentum(_ onnx: Float) -> Float {
        Float(((1 - Double(onnx)) * 1e6).rounded() / 1e6)
    }

    private func transposed(_ t: ONNXTensorValue) -> ONNXTensorValue {
        let (r, c) = (t.dims[0], t.dims[1])
        var out = ONNXTensorValue(dims: [c, r], floats: [Float](repeating: 0, count: t.floats.count))
        for i in 0..<r { for j in 0..<c { out.floats[j * r + i] = t.floats[i * c + j] } }
        return out
    }
}
