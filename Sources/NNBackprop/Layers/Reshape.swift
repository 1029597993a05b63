/// A layer that sees its input under another shape and moves no data: forward and backward
/// hand their buffers on, inference copies.
protocol ShapeView: Layer {}

extension ShapeView {
    public func prepare(batchSize: Int) {}

    public func forward(_ input: UnsafePointer<Float>, batch: Int, training: Bool) -> UnsafeMutablePointer<Float> {
        UnsafeMutablePointer(mutating: input)
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, batch: Int,
                         needsInputGradient: Bool) -> UnsafeMutablePointer<Float>? {
        needsInputGradient ? gradOutput : nil
    }

    public func infer(_ input: UnsafePointer<Float>, rows: Int, into output: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>?) {
        output.update(from: input, count: rows * (inputShape?.count ?? 0))
    }
}

/// Gives each sample a new shape with the same elements in the same (row-major) order: no
/// data moves, so forward and backward pass their buffers through. As PyTorch's
/// `nn.Unflatten` / `x.view(n, *shape)`: the batch dimension is not part of `shape`, and one
/// dimension may be -1 (the one the element count implies).
///
/// `Reshape([1, 28, 28])` after a 784-feature input, `Reshape([-1, 28])` for 28 time steps of
/// 28 features.
public final class Reshape: ShapeView {
    public static let typeName = "Reshape"
    public static let positionalAttributes = ["shape"]
    /// The target dimensions as given (-1 at most once).
    public let target: [Int]
    private var input: Shape?
    private var output: Shape?

    /// A reshape to `shape`; throws `invalidArgument` for a dimension below 1 other than a
    /// single -1.
    public init(_ shape: [Int]) throws(NNError) {
        guard !shape.isEmpty, shape.allSatisfy({ $0 > 0 || $0 == -1 }), shape.filter({ $0 == -1 }).count <= 1 else {
            throw .invalidArgument("Reshape: shape \(shape) must have positive dimensions and at most one -1")
        }
        target = shape
    }

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes(["shape"])
        try self.init(spec.ints("shape"))
    }

    public var spec: LayerSpec { LayerSpec(type: Reshape.typeName, attributes: ["shape": .ints(target)]) }
    public var descriptionElement: String { "reshape(\(Shape.text(target)))" }
    public var inputShape: Shape? { input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape {
        var dims = target
        if let hole = target.firstIndex(of: -1) {
            // The other dimensions as a checked shape: their product cannot overflow.
            let others = target.filter { $0 != -1 }
            let known = others.isEmpty ? 1 : try Shape(others).count
            guard known <= input.count, input.count % known == 0 else {
                throw .shapeMismatch("Reshape(\(Shape.text(target))) cannot take samples of shape \(input) (\(input.count) elements)")
            }
            dims[hole] = input.count / known
        }
        let shape = try Shape(dims)
        guard shape.count == input.count else {
            throw .shapeMismatch("Reshape(\(Shape.text(target))) needs \(shape.count) elements per sample, but samples of shape \(input) have \(input.count)")
        }
        return shape
    }

    public func configure(inputShape: Shape) throws(NNError) {
        output = try outputShape(for: inputShape)
        input = inputShape
    }
}

/// Flattens each sample to one dimension (PyTorch's `nn.Flatten()` with its default
/// start_dim=1): `[1, 28, 28]` becomes `[784]`. No data moves.
public final class Flatten: ShapeView {
    public static let typeName = "Flatten"
    private var input: Shape?

    public init() {}

    public convenience init(spec: LayerSpec, inputShape: Shape) throws(NNError) {
        try spec.checkAttributes([])
        self.init()
    }

    public var spec: LayerSpec { LayerSpec(type: Flatten.typeName) }
    public var descriptionElement: String { "flatten" }
    public var inputShape: Shape? { input }

    public func outputShape(for input: Shape) throws(NNError) -> Shape { try Shape([input.count]) }
    public func configure(inputShape: Shape) throws(NNError) { input = inputShape }
}
