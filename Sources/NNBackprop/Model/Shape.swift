/// The shape of one sample, batch excluded: `[784]` for a feature vector, `[1, 28, 28]` for an
/// image (channels, height, width, as PyTorch), `[T, F]` for a sequence.
///
/// A sample is one contiguous row-major block of `count` floats, so a batch of n samples is
/// an (n, count) matrix whatever the shape: the kernels' buffer contract does not depend on
/// it. Shapes are built checked: every dimension is positive and the element count fits
/// `Shape.maxElements`, so code that holds a `Shape` may multiply its dimensions freely.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    /// The most floats one sample may have (2^31).
    public static let maxElements = 1 << 31
    /// The most dimensions a sample may have (the C API's nnb_model_info holds this many).
    public static let maxRank = 8

    /// The dimensions, outermost first.
    public let dimensions: [Int]
    /// Floats per sample: the product of the dimensions.
    public let count: Int

    /// A shape of `dimensions`; throws `invalidArgument` for no dimensions, a dimension below 1,
    /// or more than `maxElements` floats.
    public init(_ dimensions: [Int]) throws(NNError) {
        guard !dimensions.isEmpty else { throw .invalidArgument("a shape needs at least one dimension") }
        guard dimensions.count <= Shape.maxRank else {
            throw .invalidArgument("shape \(Shape.text(dimensions)) has \(dimensions.count) dimensions; at most \(Shape.maxRank) are supported")
        }
        var n = 1
        for d in dimensions {
            guard d > 0 else { throw .invalidArgument("shape \(Shape.text(dimensions)): dimensions must be positive") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Shape.maxElements else {
                throw .invalidArgument("shape \(Shape.text(dimensions)) has more than 2^31 elements per sample")
            }
            n = p
        }
        self.dimensions = dimensions
        count = n
    }

    /// A one-dimensional shape of `features` (positive, at most `maxElements`).
    public init(features: Int) throws(NNError) { try self.init([features]) }

    /// `[n]`, for a width already known to be valid (a layer's own positive size).
    static func vector(_ n: Int) -> Shape {
        precondition(n > 0 && n <= maxElements, "Shape.vector(\(n))")
        return try! Shape([n])
    }

    /// Number of dimensions.
    public var rank: Int { dimensions.count }
    /// The innermost dimension (the features a `Dense` layer maps).
    public var last: Int { dimensions[dimensions.count - 1] }
    /// Samples-within-a-sample along all but the last dimension (1 for a vector).
    public var leadingCount: Int { count / last }

    /// "784", "1x28x28": the form the C description grammar and `nnb` use.
    public var description: String { Shape.text(dimensions) }

    static func text(_ dimensions: [Int]) -> String { dimensions.map(String.init).joined(separator: "x") }

    /// Parses "784" or "1x28x28"; throws `invalidArgument` naming the text.
    public init(parsing text: String) throws(NNError) {
        let parts = text.split(separator: "x", omittingEmptySubsequences: false)
        var dims: [Int] = []
        for p in parts {
            guard let d = Int(p), d > 0 else {
                throw .invalidArgument("'\(text)' is not a shape: expected positive sizes separated by 'x', as 784 or 1x28x28")
            }
            dims.append(d)
        }
        try self.init(dims)
    }
}
