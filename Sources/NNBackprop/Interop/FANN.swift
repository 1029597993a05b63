/// FANN 2.x files: float networks (`.net`, "FANN_FLO_2.x") as `Sequential` models, and training
/// files (`.data`) as data sets, for users moving from FANN.
///
/// A FANN neuron computes act(steepness * sum); the steepness is folded into the weights, so
/// each layer becomes one `Dense`: FANN_LINEAR as identity (weights x s), FANN_SIGMOID as
/// sigmoid (x 2s: FANN's sigmoid is 1 / (1 + e^(-2 s x))), FANN_SIGMOID_SYMMETRIC as tanh (x s).
/// Refused with a message: shortcut networks (network_type 1), sparse layers (connection_rate
/// below 1 with missing connections), the stepwise, threshold, Gaussian, Elliot, sine, cosine and
/// piecewise-linear activations, different activations within one layer, fixed-point files
/// ("FANN_FIX"), and files with scaling parameters (scale_included=1). FANN clamps a neuron's
/// scaled sum to +-150 before its activation; for the three functions read this changes nothing
/// a float can show (sigmoid and tanh are 0 or 1 in float32 long before), and for linear outputs
/// it means sums beyond 150 differ.
extension Sequential {
    /// The model in the FANN `.net` file at `path`; throws `unsupported` for the FANN features
    /// above and `corruptFile` (naming the line) for a damaged file.
    public static func importFANN(from path: String, seed: UInt64 = 0) throws(NNError) -> Sequential {
        do {
            return try importFANN(text: String(decoding: FileIO.readAll(path), as: UTF8.self), seed: seed)
        } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// The model of a FANN `.net` file's text.
    public static func importFANN(text: String, seed: UInt64 = 0) throws(NNError) -> Sequential {
        let net = try FANNNet(text)
        var layers: [any Layer] = []
        var weights: [[Float]] = []
        for l in 1..<net.layerSizes.count {
            let (inputs, outputs) = (net.layerSizes[l - 1] - 1, net.layerSizes[l] - 1)
            let neurons = net.neurons(ofLayer: l).prefix(outputs) // the bias neuron computes nothing
            guard let first = neurons.first else { throw .corruptFile("FANN layer \(l) has no neurons") }
            for (k, n) in neurons.enumerated() where n.activation != first.activation || n.steepness != first.steepness {
                throw .unsupported("FANN layer \(l): neuron \(k) has activation \(n.activation) with steepness \(n.steepness), neuron 0 has \(first.activation) with \(first.steepness); one activation per layer is read")
            }
            let (activation, factor): (Activation, Float)
            switch first.activation {
            case 0: (activation, factor) = (.identity, first.steepness)     // FANN_LINEAR
            case 3: (activation, factor) = (.sigmoid, 2 * first.steepness)  // FANN_SIGMOID
            case 5: (activation, factor) = (.tanh, first.steepness)         // FANN_SIGMOID_SYMMETRIC
            default:
                throw .unsupported("FANN layer \(l) uses activation function \(first.activation) (\(FANNNet.activationName(first.activation))); FANN_LINEAR, FANN_SIGMOID and FANN_SIGMOID_SYMMETRIC are read")
            }
            // W (outputs, inputs) and b from each neuron's connections to the previous layer; the
            // file must hold every connection before the weights are allocated.
            for (j, n) in neurons.enumerated() where n.connections.count != inputs + 1 {
                throw .unsupported("FANN layer \(l), neuron \(j) has \(n.connections.count) connections, not \(inputs + 1): sparse networks (connection_rate < 1) are not read")
            }
            guard let count = Sizes.product([outputs, inputs + 1]), count <= Shape.maxElements else {
                throw .corruptFile("FANN layer \(l): \(outputs) x \(inputs + 1) weights is more than a layer may hold")
            }
            var w = [Float](repeating: 0, count: count)
            let previous = net.neuronStart(ofLayer: l - 1)
            for (j, n) in neurons.enumerated() {
                guard n.connections.count == inputs + 1 else {
                    throw .unsupported("FANN layer \(l), neuron \(j) has \(n.connections.count) connections, not \(inputs + 1): sparse networks (connection_rate < 1) are not read")
                }
                var seen = Set<Int>()
                for (to, weight) in n.connections {
                    let i = to - previous
                    guard i >= 0, i <= inputs, seen.insert(i).inserted else {
                        throw .unsupported("FANN layer \(l), neuron \(j) connects to neuron \(to), outside the previous layer: shortcut or sparse connections are not read")
                    }
                    let scaled = weight * factor
                    guard scaled.isFinite else { throw .invalidData("FANN layer \(l), neuron \(j): weight \(weight) times the steepness factor \(factor) overflows float32") }
                    if i == inputs { w[outputs * inputs + j] = scaled } else { w[j * inputs + i] = scaled }
                }
            }
            layers.append(try Dense(inputs, outputs, activation: activation))
            weights.append(w)
        }
        let model = try Sequential(layers: layers, inputShape: Shape.vector(net.layerSizes[0] - 1), seed: seed)
        var offset = 0
        for w in weights {
            (model.parameters.baseAddress! + offset).update(from: w, count: w.count)
            offset += w.count
        }
        return model
    }
}

extension Dataset {
    /// A FANN training file: "rows inputs outputs", then each row's inputs and outputs. `kind`
    /// `.values` keeps the outputs as targets; `.classes` reads one output as whole-number labels,
    /// or the index of the largest of several (FANN's one-hot rows, 0/1 or -1/1); `.probabilities`
    /// keeps rows in [0, 1]. Throws `corruptFile` naming the value that is wrong.
    public static func fann(path: String, kind: TargetKind = .values) throws(NNError) -> Dataset {
        do {
            return try fann(text: String(decoding: FileIO.readAll(path), as: UTF8.self), kind: kind)
        } catch {
            throw error.message.hasPrefix(path) ? error : error.prefixed(path)
        }
    }

    /// Whether `text` starts as a FANN training file does (three whole numbers on its first line).
    public static func looksLikeFANN(_ text: Substring) -> Bool {
        let first = text.prefix { $0 != "\n" }.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        return first.count == 3 && first.allSatisfy { Int($0).map { $0 > 0 } ?? false }
    }

    public static func fann(text: String, kind: TargetKind = .values) throws(NNError) -> Dataset {
        var numbers = FANNNumbers(text)
        let rows = try numbers.count("the row count"), inputs = try numbers.count("the input count"), outputs = try numbers.count("the output count")
        guard let cells = Sizes.product([rows, inputs + outputs]), cells < 1 << 31 else {
            throw .corruptFile("\(rows) rows of \(inputs) + \(outputs) values is more than 2^31")
        }
        var x: [Float] = [], y: [Float] = []
        x.reserveCapacity(min(rows * inputs, 1 << 24))
        for r in 0..<rows {
            for i in 0..<inputs { x.append(try numbers.float("row \(r + 1) input \(i + 1)")) }
            for o in 0..<outputs { y.append(try numbers.float("row \(r + 1) output \(o + 1)")) }
        }
        try numbers.end()
        let targets: Targets
        switch kind {
        case .values: targets = .values(y, width: outputs)
        case .probabilities: targets = .probabilities(y, width: outputs)
        case .classes:
            if outputs == 1 {
                var labels: [Int32] = []
                for (r, v) in y.enumerated() {
                    guard v >= 0, v < 16_777_216, v == v.rounded() else { throw .invalidData("row \(r + 1): output \(v) is not a class label (a whole number >= 0)") }
                    labels.append(Int32(v))
                }
                targets = .classes(labels, classCount: Int(labels.max()!) + 1)
            } else {
                let labels = (0..<rows).map { r in Int32(y[r * outputs..<(r + 1) * outputs].indices.max { y[$0] < y[$1] }! - r * outputs) }
                targets = .classes(labels, classCount: outputs)
            }
        }
        return try Dataset(features: x, featureCount: inputs, targets: targets)
    }
}

/// The whitespace-separated numbers of a FANN file, with the line each came from.
private struct FANNNumbers {
    private var words: [(Substring, Int)] = []
    private var next = 0

    init(_ text: String) {
        for (n, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            for w in line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }) { words.append((w, n + 1)) }
        }
    }

    mutating func word(_ what: String) throws(NNError) -> (Substring, Int) {
        guard next < words.count else { throw .corruptFile("the file ends before \(what)") }
        next += 1
        return words[next - 1]
    }

    mutating func count(_ what: String) throws(NNError) -> Int {
        let (w, line) = try word(what)
        guard let n = Int(w), n > 0, n < 1 << 31 else { throw .corruptFile("line \(line): \(what) '\(w)' is not a positive count") }
        return n
    }

    mutating func float(_ what: String) throws(NNError) -> Float {
        let (w, line) = try word(what)
        guard let v = Float(w), v.isFinite else { throw .corruptFile("line \(line): \(what) '\(w)' is not a finite number") }
        return v
    }

    func end() throws(NNError) {
        guard next == words.count else { throw .corruptFile("line \(words[next].1): '\(words[next].0)' after the last row") }
    }
}

/// The parts of a FANN `.net` file the importer reads.
private struct FANNNet {
    struct Neuron {
        var inputs: Int, activation: Int, steepness: Float
        var connections: [(Int, Float)] = []
    }

    var layerSizes: [Int] = []
    var neurons: [Neuron] = []

    static func activationName(_ f: Int) -> String {
        let names = ["FANN_LINEAR", "FANN_THRESHOLD", "FANN_THRESHOLD_SYMMETRIC", "FANN_SIGMOID", "FANN_SIGMOID_STEPWISE",
                     "FANN_SIGMOID_SYMMETRIC", "FANN_SIGMOID_SYMMETRIC_STEPWISE", "FANN_GAUSSIAN", "FANN_GAUSSIAN_SYMMETRIC",
                     "FANN_GAUSSIAN_STEPWISE", "FANN_ELLIOT", "FANN_ELLIOT_SYMMETRIC", "FANN_LINEAR_PIECE",
                     "FANN_LINEAR_PIECE_SYMMETRIC", "FANN_SIN_SYMMETRIC", "FANN_COS_SYMMETRIC", "FANN_SIN", "FANN_COS"]
        return f >= 0 && f < names.count ? names[f] : "unknown"
    }

    init(_ text: String) throws(NNError) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard let header = lines.first else { throw .corruptFile("the file is empty") }
        if header.hasPrefix("FANN_FIX") { throw .unsupported("fixed-point FANN files (\(header)) are not read; save the network from the float library") }
        guard header.hasPrefix("FANN_FLO_2.") else { throw .corruptFile("line 1 is '\(header.prefix(40))', not a FANN 2.x float header (FANN_FLO_2.1)") }
        lines.removeFirst()
        var fields: [Substring: (Substring, Int)] = [:]
        for (n, line) in lines.enumerated() {
            guard let eq = line.firstIndex(of: "=") else { continue }
            fields[line[..<eq]] = (line[line.index(after: eq)...], n + 2)
        }
        func field(_ key: Substring) throws(NNError) -> (Substring, Int) {
            guard let f = fields[key] else { throw .corruptFile("no '\(key)=' line") }
            return f
        }
        if let (t, _) = fields["network_type"], trimmed(t) != "0" {
            throw .unsupported("network_type=\(t): shortcut networks (FANN_NETTYPE_SHORTCUT) connect every layer to all before it, which a Sequential model cannot hold")
        }
        if let (s, _) = fields["scale_included"], trimmed(s) != "0" {
            throw .unsupported("scale_included=\(s): FANN's input and output scaling parameters are not read; save the network without fann_set_scaling_params")
        }
        let (sizes, sizesLine) = try field("layer_sizes")
        layerSizes = try sizes.split(separator: " ").map { (w: Substring) throws(NNError) -> Int in
            guard let n = Int(w), n >= 2, n < 1 << 24 else { throw .corruptFile("line \(sizesLine): layer size '\(w)' (each counts its bias neuron, so at least 2)") }
            return n
        }
        guard layerSizes.count >= 2 else { throw .corruptFile("line \(sizesLine): \(layerSizes.count) layer sizes; a network has at least 2") }
        guard let total = Sizes.product([layerSizes.reduce(0, +), 1]), total < 1 << 24 else { throw .corruptFile("line \(sizesLine): too many neurons") }
        let (neuronText, neuronLine) = try field("neurons (num_inputs, activation_function, activation_steepness)")
        for (k, t) in try FANNNet.tuples(neuronText, neuronLine).enumerated() {
            guard t.count == 3, let inputs = Int(t[0]), inputs >= 0, let act = Int(t[1]), let s = Float(t[2]), s.isFinite else {
                throw .corruptFile("line \(neuronLine): neuron \(k) is (\(t.joined(separator: ", "))), not (num_inputs, activation, steepness)")
            }
            neurons.append(Neuron(inputs: inputs, activation: act, steepness: s))
        }
        guard neurons.count == total else { throw .corruptFile("line \(neuronLine): \(neurons.count) neurons, the layer sizes add up to \(total)") }
        let (connText, connLine) = try field("connections (connected_to_neuron, weight)")
        let connections = try FANNNet.tuples(connText, connLine)
        var c = 0
        for k in neurons.indices {
            for _ in 0..<neurons[k].inputs {
                guard c < connections.count else { throw .corruptFile("line \(connLine): \(connections.count) connections, the neurons need more") }
                let t = connections[c]
                guard t.count == 2, let to = Int(t[0]), to >= 0, to < total, let w = Float(t[1]), w.isFinite else {
                    throw .corruptFile("line \(connLine): connection \(c) is (\(t.joined(separator: ", "))), not (neuron, finite weight)")
                }
                neurons[k].connections.append((to, w))
                c += 1
            }
        }
        guard c == connections.count else { throw .corruptFile("line \(connLine): \(connections.count) connections, the neurons take \(c)") }
    }

    /// "(a, b, c) (d, e, f) ..." as lists of their parts.
    static func tuples(_ text: Substring, _ line: Int) throws(NNError) -> [[String]] {
        var out: [[String]] = []
        var rest = text[...]
        while let open = rest.firstIndex(of: "(") {
            guard let close = rest[open...].firstIndex(of: ")") else { throw .corruptFile("line \(line): a '(' without its ')'") }
            out.append(rest[rest.index(after: open)..<close].split(separator: ",").map { String(trimmed($0)) })
            rest = rest[rest.index(after: close)...]
        }
        return out
    }

    func neuronStart(ofLayer l: Int) -> Int { layerSizes.prefix(l).reduce(0, +) }

    /// Layer l's neurons, its bias neuron last.
    func neurons(ofLayer l: Int) -> ArraySlice<Neuron> {
        let start = neuronStart(ofLayer: l)
        return neurons[start..<start + layerSizes[l]]
    }
}

private func trimmed(_ s: Substring) -> Substring {
    let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
    guard let first = s.firstIndex(where: { !isSpace($0) }), let last = s.lastIndex(where: { !isSpace($0) }) else { return "" }
    return s[first...last]
}
