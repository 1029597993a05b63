import CKernels

/// A 2-D convolution on (channels, height, width) samples, as PyTorch's nn.Conv2d: zero
/// padding, stride, dilation, groups (depthwise when groups == in_channels), an optional bias,
/// and an activation fused after it as `Dense` fuses one.
///
/// Weight (out_channels, in_channels / groups, kernel_h, kernel_w) and bias (out_channels), named
/// "weight" and "bias" as nn.Conv2d's; drawn as PyTorch draws them (kaiming_uniform with
/// a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, fan_in = in/groups * kh * kw).
/// Forward and backward are `nnk_conv2d_forward` / `nnk_conv2d_backward`.
public final class Conv2D: Layer {
    public static let typeName = "Conv2D"
    public static let positionalAttributes = ["out_channels", "kernel_size"]

    public let inChannels: Int
    public let outChannels: Int
    public let kernel: (h: Int, w: Int)
    public let stride: (h: Int, w: Int)
    public let padding: (h: Int, w: Int)
    public let dilation: (h: Int, w: Int)
    public let groups: Int
    public let hasBias: Bool
    public let activation: Activation
    /// How padding was given: "same", "valid", or nil for sizes.
    private let paddingMode: String?

    private var slices: (params: ParameterSlice, grads: ParameterSlice)?
    private var input: Shape?
    private var outH = 0, outW = 0
    private var capacity = 0
    private var output = GrowableBuffer()
    private var preActivation = GrowableBuffer()
    private var gradInput = GrowableBuffer()
    private var work = GrowableBuffer()
    private var lastInput: UnsafePointer<Float>?

    /// A convolution from `inChannels` to `outChannels` with a kernel of `kernel` (h, w).
    /// `padding` is sizes, or `samePadding: true` for PyTorch's padding="same" (stride 1; the
    /// output keeps the input's size). Throws `invalidArgument` for sizes below 1, channels that
    /// `groups` does not divide, or "same" with a stride other than 1 or an even dilated kernel.
    public init(inChannels: Int, outChannels: Int, kernel: (Int, Int), stride: (Int, Int) = (1, 1),
                padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1), groups: Int = 1, bias: Bool = true,
                activation: Activation = .identity, samePadding: Bool = false) throws(NNError) {
        let what = "Conv2D(\(inChannels), \(outChannels), kernel \(kernel.0)x\(kernel.1))"
        guard inChannels > 0, outChannels > 0, kernel.0 > 0, kernel.1 > 0 else {
            throw .invalidArgument("\(what): channels and kernel sizes must be positive")
        }
        guard stride.0 > 0, stride.1 > 0 else { throw .invalidArgument("\(what): stride must be positive, got \(stride.0)x\(stride.1)") }
        guard dilation.0 > 0, dilation.1 > 0 else { throw .invalidArgument("\(what): dilation must be positive, got \(dilation.0)x\(dilation.1)") }
        guard padding.0 >= 0, padding.1 >= 0 else { throw .invalidArgument("\(what): padding must be non-negative, got \(padding.0)x\(padding.1)") }
        guard groups > 0, inChannels % groups == 0, outChannels % groups == 0 else {
            throw .invalidArgument("\(what): groups \(groups) must divide in_channels \(inChannels) and out_channels \(outChannels)")
        }
        var pad = padding
        if samePadding {
            guard stride == (1, 1) else { throw .invalidArgument("\(what): padding \"same\" needs stride 1 (as PyTorch), got \(stride.0)x\(stride.1)") }
            let spanH = dilation.0 * (kernel.0 - 1), spanW = dilation.1 * (kernel.1 - 1)
            guard spanH % 2 == 0, spanW % 2 == 0 else {
                throw .invalidArgument("\(what): padding \"same\" with an even (dilated) kernel would pad unevenly; give the padding as sizes")
            }
            pad = (spanH / 2, spanW / 2)
        }
        let perOut = (inChannels / groups).multipliedReportingOverflow(by: kernel.0)
        let perOut2 = perOut.partialValue.multipliedReportingOverflow(by: kernel.1)
        let weights = perOut2.partialValue.multipliedReportingOverflow(by: outChannels)
        guard !perOut.overflow, !perOut2.overflow, !weights.overflow, weights.partialValue + outChannels <= Shape.maxElements else {
            throw .invalidArgument("\(what) would have more than 2^31 parameters")
        }
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = (kernel.0, kernel.1)
        self.stride = (stride.0, stride.1)
        self.padding = pad
        self.dilation = (dilation.0, dilation.1)
        self.groups = groups
        hasBias = bias
        self.activation = activation
        paddingMode = samePadding ? "same" : nil
    }

    /// `Conv2D(1, 32, 3, padding: 1)`: square kernel, stride, padding and dilation.
    public convenience init(_ inChannels: Int, _ outChannels: Int, _ kernel: Int, stride: Int = 1, padding: Int = 0,
                            dilation: Int = 1, groups: Int = 1, bias: Bool = true, activation: Activation = .identity) throws(NNError) {
        try self.init(inChannels: inChannels, outChannels: outChannels, kernel: (kernel, kernel), stride: (stride, stride),
                      padding: (padding, padding), dilation: (dilation, dilation), groups: groups, bias: bias, activation: activation)
    }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                                  "bias", "activation", "alpha"])
        guard inputShape.rank == 3 else {
            throw .shapeMismatch("Conv2D takes (channels, height, width) samples, got shape \(inputShape)")
        }
        func pair(_ key: String, _ d: Int) throws(NNError) -> (Int, Int) {
            guard spec.attributes[key] != nil else { return (d, d) }
            let v = try spec.ints(key)
            guard v.count == 1 || v.count == 2 else { throw .invalidArgument("layer Conv2D: '\(key)' is one size or two (h x w), got \(v.count)") }
            return v.count == 1 ? (v[0], v[0]) : (v[0], v[1])
        }
        var same = false, pad = (0, 0)
        if case .string(let mode)? = spec.attributes["padding"] {
            switch mode {
            case "same": same = true
            case "valid": pad = (0, 0)
            default: throw .invalidArgument("layer Conv2D: padding is sizes, \"same\" or \"valid\", got '\(mode)'")
            }
        } else {
            pad = try pair("padding", 0)
        }
        let bias = try spec.int("bias", default: 1)
        guard bias == 0 || bias == 1 else { throw .invalidArgument("layer Conv2D: bias is 0 or 1, got \(bias)") }
        let act = try Activation(name: spec.string("activation", default: "identity"), alpha: spec.float("alpha", default: 0))
        try self.init(inChannels: spec.int("in_channels", default: inputShape.dimensions[0]), outChannels: spec.int("out_channels"),
                      kernel: pair("kernel_size", 0), stride: pair("stride", 1), padding: pad, dilation: pair("dilation", 1),
                      groups: spec.int("groups", default: 1), bias: bias == 1, activation: act, samePadding: same)
    }

    public var spec: LayerSpec {
        var a = activation.specAttributes
        if activation == .identity { a = [:] }
        a["in_channels"] = .int(inChannels)
        a["out_channels"] = .int(outChannels)
        a["kernel_size"] = .ints([kernel.h, kernel.w])
        if stride != (1, 1) { a["stride"] = .ints([stride.h, stride.w]) }
        if let paddingMode { a["padding"] = .string(paddingMode) } else if padding != (0, 0) { a["padding"] = .ints([padding.h, padding.w]) }
        if dilation != (1, 1) { a["dilation"] = .ints([dilation.h, dilation.w]) }
        if groups != 1 { a["groups"] = .int(groups) }
        if !hasBias { a["bias"] = .int(0) }
        return LayerSpec(type: Conv2D.typeName, attributes: a)
    }

    public var descriptionElement: String {
        var spec = self.spec
        let act = spec.attributes.removeValue(forKey: "activation")
        spec.attributes["in_channels"] = nil
        if activation.hasNonDefaultAlpha, let act { spec.attributes["activation"] = act; return spec.descriptionElement(omitting: []) }
        spec.attributes["alpha"] = nil
        return spec.descriptionElement(omitting: []) + (activation == .identity ? "" : ":\(activation.name)")
    }

    public var moduleCount: Int { activation == .identity ? 1 : 2 }

    /// The kernel's shape for `batch` samples of the configured input.
    private func shape(batch: Int) -> nnk_conv2d_shape {
        let d = input?.dimensions ?? [inChannels, 1, 1]
        return nnk_conv2d_shape(batch: batch, in_channels: inChannels, in_h: d[1], in_w: d[2], out_channels: outChannels,
                                kernel_h: kernel.h, kernel_w: kernel.w, stride_h: stride.h, stride_w: stride.w,
                                pad_h: padding.h, pad_w: padding.w, dilation_h: dilation.h, dilation_w: dilation.w,
                                groups: groups)
    }

    public var inputShape: Shape? { input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard input.rank == 3, input.dimensions[0] == inChannels else {
            throw .shapeMismatch("Conv2D(\(inChannels), \(outChannels)) takes samples of shape \(inChannels)xHxW, got \(input)")
        }
        var s = nnk_conv2d_shape(batch: 1, in_channels: inChannels, in_h: input.dimensions[1], in_w: input.dimensions[2],
                                 out_channels: outChannels, kernel_h: kernel.h, kernel_w: kernel.w, stride_h: stride.h,
                                 stride_w: stride.w, pad_h: padding.h, pad_w: padding.w, dilation_h: dilation.h,
                                 dilation_w: dilation.w, groups: groups)
        var h = 0, w = 0
        guard nnk_conv2d_output_size(&s, &h, &w) == 0 else {
            throw .shapeMismatch("Conv2D: a \(kernel.h)x\(kernel.w) kernel (dilation \(dilation.h)x\(dilation.w)) does not fit samples of shape \(input) padded by \(padding.h)x\(padding.w)")
        }
        return try Shape([outChannels, h, w])
    }

    public func configure(inputShape: Shape) throws(NNError) {
        let out = try outputShape(for: inputShape)
        if inputShape != input {
            input = inputShape
            (outH, outW) = (out.dimensions[1], out.dimensions[2])
            capacity = 0
        }
    }

    // MARK: Parameters

    private var weightCount: Int { outChannels * (inChannels / groups) * kernel.h * kernel.w }
    public var parameterCount: Int { weightCount + (hasBias ? outChannels : 0) }

    public var parameterLayout: [TensorLayout] {
        let w: TensorLayout = ("weight", [outChannels, inChannels / groups, kernel.h, kernel.w], 0)
        return hasBias ? [w, ("bias", [outChannels], weightCount)] : [w]
    }

    private var own: (params: ParameterSlice, grads: ParameterSlice) {
        if let slices { return slices }
        slices = (ParameterSlice(count: parameterCount), ParameterSlice(count: parameterCount))
        var g = SeededGenerator(seed: 0)
        resetParameters(using: &g)
        return slices!
    }

    /// The weight, (out, in / groups, kh, kw) row-major.
    public var weight: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: own.params.pointer, count: weightCount) }
    /// The bias (out), empty without one.
    public var bias: UnsafeMutableBufferPointer<Float> {
        UnsafeMutableBufferPointer(start: own.params.pointer + weightCount, count: hasBias ? outChannels : 0)
    }

    public func bind(parameters: ParameterSlice, gradients: ParameterSlice) {
        precondition(parameters.count == parameterCount && gradients.count == parameterCount)
        slices = ParameterSlice.rebind(slices, to: parameters, gradients)
    }

    public func resetParameters(using generator: inout SeededGenerator) {
        if slices == nil { _ = own }
        let a = 1 / Float((inChannels / groups) * kernel.h * kernel.w).squareRoot()
        let p = own.params.buffer
        for i in p.indices { p[i] = generator.nextFloat(in: -a...a) }
    }

    // MARK: Forward and backward

    public func prepare(batchSize: Int) {
        guard batchSize > capacity, input != nil else { return }
        capacity = batchSize
        let threads = nnk_get_num_threads()
        let n = batchSize * outChannels * outH * outW
        output.reserve(n)
        if activation.needsInput { preActivation.reserve(n) }
        gradInput.reserve(batchSize * (input?.count ?? 0))
        var s1 = shape(batch: 1), sb = shape(batch: batchSize)
        work.reserve(max(nnk_conv2d_forward_work_size(&s1, threads), nnk_conv2d_forward_work_size(&sb, threads),
                         nnk_conv2d_backward_work_size(&s1, threads), nnk_conv2d_backward_work_size(&sb, threads)))
    }

    /// The products' arithmetic in training mode (`setTrainingPrecision`).
    private var trainingPrecision = Precision.fp32

    public func setTrainingPrecision(_ precision: Precision) { trainingPrecision = precision }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        lastInput = x
        var s = shape(batch: batch)
        let p = own.params.pointer
        nnk_conv2d_forward((training ? trainingPrecision : .fp32).kernel, output.pointer, activation.needsInput ? preActivation.pointer : nil, x, p,
                           hasBias ? p + weightCount : nil, &s, activation.kernel, activation.alpha, work.pointer, work.count)
        return output.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        var s = shape(batch: batch)
        let g = own.grads, p = own.params.pointer
        let accumulate: Int32 = g.beginAccumulating() ? 1 : 0
        let dx = needsInputGradient ? gradInput.pointer : nil
        nnk_conv2d_backward(trainingPrecision.kernel, dx, g.pointer, hasBias ? g.pointer + weightCount : nil, gradOutput, lastInput, p,
                            activation.needsInput ? UnsafePointer(preActivation.pointer) : nil, UnsafePointer(output.pointer),
                            &s, activation.kernel, activation.alpha, accumulate, work.pointer, work.count)
        return dx
    }

    public func inferenceScratchCount(rows: Int) -> Int {
        var s = shape(batch: rows)
        return nnk_conv2d_forward_work_size(&s, nnk_get_num_threads())
    }

    public func infer(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        var s = shape(batch: rows)
        let p = own.params.pointer
        nnk_conv2d_forward(NNK_PRECISION_FP32, y, nil, x, p, hasBias ? p + weightCount : nil, &s, activation.kernel, activation.alpha,
                           scratch?.baseAddress, scratch?.count ?? 0)
    }
}
