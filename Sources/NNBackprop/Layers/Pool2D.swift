import CKernels

/// What the three 2-D pooling layers share: (channels, height, width) samples, a window, a
/// stride and padding, as PyTorch's MaxPool2d / AvgPool2d (dilation 1, no ceil mode).
public struct PoolWindow: Sendable, Equatable {
    public var kernel: (h: Int, w: Int)
    public var stride: (h: Int, w: Int)
    public var padding: (h: Int, w: Int)

    public static func == (a: PoolWindow, b: PoolWindow) -> Bool {
        a.kernel == b.kernel && a.stride == b.stride && a.padding == b.padding
    }

    /// A window; `stride` nil is the kernel's size (PyTorch's default). Throws
    /// `invalidArgument` for sizes below 1 or padding above half the kernel (PyTorch's rule).
    init(_ what: String, kernel: (Int, Int), stride: (Int, Int)?, padding: (Int, Int)) throws(NNError) {
        let s = stride ?? kernel
        guard kernel.0 > 0, kernel.1 > 0, s.0 > 0, s.1 > 0 else {
            throw .invalidArgument("\(what): kernel and stride must be positive, got kernel \(kernel.0)x\(kernel.1), stride \(s.0)x\(s.1)")
        }
        guard padding.0 >= 0, padding.1 >= 0, padding.0 <= kernel.0 / 2, padding.1 <= kernel.1 / 2 else {
            throw .invalidArgument("\(what): padding \(padding.0)x\(padding.1) must be at most half the kernel \(kernel.0)x\(kernel.1)")
        }
        self.kernel = (kernel.0, kernel.1)
        self.stride = (s.0, s.1)
        self.padding = (padding.0, padding.1)
    }

    /// From spec attributes "kernel_size", "stride", "padding".
    init(_ spec: LayerSpec) throws(NNError) {
        func pair(_ key: String) throws(NNError) -> (Int, Int)? {
            guard spec.attributes[key] != nil else { return nil }
            let v = try spec.ints(key)
            guard v.count == 1 || v.count == 2 else { throw .invalidArgument("layer \(spec.type): '\(key)' is one size or two (h x w)") }
            return v.count == 1 ? (v[0], v[0]) : (v[0], v[1])
        }
        guard let k = try pair("kernel_size") else { throw .invalidArgument("layer \(spec.type): attribute 'kernel_size' is missing") }
        try self.init(spec.type, kernel: k, stride: pair("stride"), padding: pair("padding") ?? (0, 0))
    }

    var attributes: [String: LayerSpec.Value] {
        var a: [String: LayerSpec.Value] = ["kernel_size": .ints([kernel.h, kernel.w])]
        if stride != kernel { a["stride"] = .ints([stride.h, stride.w]) }
        if padding != (0, 0) { a["padding"] = .ints([padding.h, padding.w]) }
        return a
    }

    func shape(_ input: Shape, batch: Int, countIncludePad: Bool = true) -> nnk_pool2d_shape {
        let d = input.dimensions
        return nnk_pool2d_shape(batch: batch, channels: d[0], in_h: d[1], in_w: d[2], kernel_h: kernel.h, kernel_w: kernel.w,
                                stride_h: stride.h, stride_w: stride.w, pad_h: padding.h, pad_w: padding.w,
                                count_include_pad: countIncludePad ? 1 : 0)
    }

    func outputShape(_ input: Shape, _ what: String) throws(NNError) -> Shape {
        guard input.rank == 3 else { throw .shapeMismatch("\(what) takes (channels, height, width) samples, got shape \(input)") }
        var s = shape(input, batch: 1)
        var h = 0, w = 0
        guard nnk_pool2d_output_size(&s, &h, &w) == 0 else {
            throw .shapeMismatch("\(what): a \(kernel.h)x\(kernel.w) window does not fit samples of shape \(input) padded by \(padding.h)x\(padding.w)")
        }
        return try Shape([input.dimensions[0], h, w])
    }
}

/// The layer state the pooling layers share: the configured shapes and training buffers.
final class PoolBuffers {
    var input: Shape?
    var output: Shape?
    var y = GrowableBuffer()
    var dx = GrowableBuffer()
}

/// Max pooling: each output is the largest value of its window (padding counts as -infinity);
/// backward sends the gradient to the position of that maximum (the first on ties).
public final class MaxPool2D: Layer {
    public static let typeName = "MaxPool2D"
    public static let positionalAttributes = ["kernel_size", "stride", "padding"]
    public let window: PoolWindow
    private let b = PoolBuffers()
    private var argmax = Int32Storage()

    public init(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0)) throws(NNError) {
        window = try PoolWindow("MaxPool2D", kernel: kernel, stride: stride, padding: padding)
    }
    /// `MaxPool2D(2)`: a square window, the stride its size unless given.
    public convenience init(_ kernel: Int, stride: Int? = nil, padding: Int = 0) throws(NNError) {
        try self.init(kernel: (kernel, kernel), stride: stride.map { ($0, $0) }, padding: (padding, padding))
    }
    public init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["kernel_size", "stride", "padding"])
        window = try PoolWindow(spec)
    }

    public var spec: LayerSpec { LayerSpec(type: MaxPool2D.typeName, attributes: window.attributes) }
    public var inputShape: Shape? { b.input }
    public func outputShape(for input: Shape) throws(NNError) -> Shape { try window.outputShape(input, "MaxPool2D") }
    public func configure(inputShape: Shape) throws(NNError) { b.output = try outputShape(for: inputShape); b.input = inputShape }

    public func prepare(batchSize: Int) {
        b.y.reserve(batchSize * (b.output?.count ?? 0))
        argmax.reserve(batchSize * (b.output?.count ?? 0))
        b.dx.reserve(batchSize * (b.input?.count ?? 0))
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        var s = window.shape(b.input!, batch: batch)
        nnk_maxpool2d_forward(b.y.pointer, argmax.pointer, x, &s)
        return b.y.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        var s = window.shape(b.input!, batch: batch)
        nnk_maxpool2d_backward(b.dx.pointer, gradOutput, argmax.pointer, &s)
        return b.dx.pointer
    }

    /// The maxima's positions of an inference pass, as Int32 (the size of a Float).
    public func inferenceScratchCount(rows: Int) -> Int { rows * (b.output?.count ?? 0) }

    public func infer(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<Float>?) {
        // The argmax of an inference pass is not needed; it goes to the caller's scratch (as Int32).
        var s = window.shape(b.input!, batch: rows)
        let indices = UnsafeMutableRawPointer(scratch!.baseAddress!).bindMemory(to: Int32.self, capacity: rows * (b.output?.count ?? 0))
        nnk_maxpool2d_forward(y, indices, x, &s)
    }
}

/// What average and global average pooling share: buffers, and a forward and backward that
/// differ only in the window (`poolShape`).
protocol AveragePooling: Layer {
    var b: PoolBuffers { get }
    func poolShape(batch: Int) -> nnk_pool2d_shape
}

extension AveragePooling {
    public func prepare(batchSize: Int) {
        b.y.reserve(batchSize * (b.output?.count ?? 0))
        b.dx.reserve(batchSize * (b.input?.count ?? 0))
    }

    public func forward(_ x: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        prepare(batchSize: batch)
        infer(x, rows: batch, into: b.y.pointer!, scratch: nil)
        return b.y.pointer!
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int, needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        guard needsInputGradient else { return nil }
        var s = poolShape(batch: batch)
        nnk_avgpool2d_backward(b.dx.pointer, gradOutput, &s)
        return b.dx.pointer
    }

    public func infer(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, scratch: UnsafeMutableBufferPointer<Float>?) {
        var s = poolShape(batch: rows)
        nnk_avgpool2d_forward(y, x, &s)
    }
}

/// Average pooling: each output is the mean of its window; `countIncludePad` (PyTorch's default,
/// true) divides by the whole window, padding included.
public final class AvgPool2D: AveragePooling {
    public static let typeName = "AvgPool2D"
    public static let positionalAttributes = ["kernel_size", "stride", "padding"]
    public let window: PoolWindow
    public let countIncludePad: Bool
    let b = PoolBuffers()

    public init(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: (Int, Int) = (0, 0), countIncludePad: Bool = true) throws(NNError) {
        window = try PoolWindow("AvgPool2D", kernel: kernel, stride: stride, padding: padding)
        self.countIncludePad = countIncludePad
    }
    public convenience init(_ kernel: Int, stride: Int? = nil, padding: Int = 0, countIncludePad: Bool = true) throws(NNError) {
        try self.init(kernel: (kernel, kernel), stride: stride.map { ($0, $0) }, padding: (padding, padding), countIncludePad: countIncludePad)
    }
    public init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["kernel_size", "stride", "padding", "count_include_pad"])
        window = try PoolWindow(spec)
        let c = try spec.int("count_include_pad", default: 1)
        guard c == 0 || c == 1 else { throw .invalidArgument("layer AvgPool2D: count_include_pad is 0 or 1, got \(c)") }
        countIncludePad = c == 1
    }

    public var spec: LayerSpec {
        var a = window.attributes
        if !countIncludePad { a["count_include_pad"] = .int(0) }
        return LayerSpec(type: AvgPool2D.typeName, attributes: a)
    }
    public var inputShape: Shape? { b.input }
    public func outputShape(for input: Shape) throws(NNError) -> Shape { try window.outputShape(input, "AvgPool2D") }
    public func configure(inputShape: Shape) throws(NNError) { b.output = try outputShape(for: inputShape); b.input = inputShape }

    func poolShape(batch: Int) -> nnk_pool2d_shape { window.shape(b.input!, batch: batch, countIncludePad: countIncludePad) }
}

/// The mean of each channel over its whole plane, (C, H, W) -> (C, 1, 1), as PyTorch's
/// nn.AdaptiveAvgPool2d(1) (usually followed by `Flatten`).
public final class GlobalAvgPool2D: AveragePooling {
    public static let typeName = "GlobalAvgPool2D"
    let b = PoolBuffers()

    public init() {}
    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes([])
        self.init()
    }

    public var spec: LayerSpec { LayerSpec(type: GlobalAvgPool2D.typeName) }
    public var inputShape: Shape? { b.input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        guard input.rank == 3 else { throw .shapeMismatch("GlobalAvgPool2D takes (channels, height, width) samples, got shape \(input)") }
        return try Shape([input.dimensions[0], 1, 1])
    }
    public func configure(inputShape: Shape) throws(NNError) { b.output = try outputShape(for: inputShape); b.input = inputShape }

    /// The whole plane as one window.
    func poolShape(batch: Int) -> nnk_pool2d_shape {
        let d = b.input!.dimensions
        return nnk_pool2d_shape(batch: batch, channels: d[0], in_h: d[1], in_w: d[2], kernel_h: d[1], kernel_w: d[2],
                                stride_h: d[1], stride_w: d[2], pad_h: 0, pad_w: 0, count_include_pad: 1)
    }
}
