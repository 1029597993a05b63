#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// An array read from an IDX file, the format of MNIST, Fashion-MNIST, KMNIST and EMNIST.
///
/// Layout (big-endian): two zero bytes, a type byte (0x08 uint8, 0x09 int8, 0x0B int16,
/// 0x0C int32, 0x0D float32, 0x0E float64), a dimension count d, d uint32 sizes, then the
/// values in row-major order. Files may be gzipped (detected from the content, not the name).
public struct IDXArray: Sendable, Equatable {
    /// The element type named by the third byte of the file.
    public enum ElementType: UInt8, Sendable {
        case uint8 = 0x08, int8 = 0x09, int16 = 0x0B, int32 = 0x0C, float32 = 0x0D, float64 = 0x0E

        /// Bytes per element.
        public var size: Int {
            switch self {
            case .uint8, .int8: return 1
            case .int16: return 2
            case .int32, .float32: return 4
            case .float64: return 8
            }
        }
    }

    /// The element type.
    public let elementType: ElementType
    /// The dimensions, outermost first (e.g. [60000, 28, 28]).
    public let shape: [Int]
    /// The file's bytes; the elements (big-endian as in the file) start at `payloadOffset`,
    /// after the header (kept in place, so a 47 MB image file is not copied).
    let bytes: [UInt8]
    let payloadOffset: Int
    /// The element bytes.
    var payload: ArraySlice<UInt8> { bytes[payloadOffset...] }

    /// Elements: the product of `shape` (checked when the file was read).
    public let count: Int

    /// Reads the IDX file at `path`, gunzipping it when it is gzipped. Throws `fileError` when
    /// it cannot be read, `corruptFile` for a bad magic, a truncated body or extra bytes.
    public init(contentsOf path: String) throws(NNError) {
        try self.init(bytes: FileIO.readAllDecompressing(path), source: path)
    }

    /// Parses IDX `bytes`; `source` names them in error messages.
    public init(bytes: [UInt8], source: String = "IDX data") throws(NNError) {
        guard bytes.count >= 4 else {
            throw .corruptFile("\(source): \(bytes.count) bytes is too short for an IDX header (4-byte magic)")
        }
        guard bytes[0] == 0, bytes[1] == 0 else {
            throw .corruptFile("\(source): not an IDX file: magic starts \(hex(bytes[0])) \(hex(bytes[1])), expected 00 00")
        }
        guard let type = ElementType(rawValue: bytes[2]) else {
            throw .corruptFile("\(source): unknown IDX element type \(hex(bytes[2])); expected 08, 09, 0B, 0C, 0D or 0E")
        }
        let rank = Int(bytes[3])
        let headerSize = 4 + 4 * rank
        guard bytes.count >= headerSize else {
            throw .corruptFile("\(source) is truncated: \(bytes.count) bytes, but the header of a \(rank)-dimensional IDX array needs \(headerSize)")
        }
        let shape = (0..<rank).map { d in
            let o = 4 + 4 * d
            return Int(bytes[o]) << 24 | Int(bytes[o + 1]) << 16 | Int(bytes[o + 2]) << 8 | Int(bytes[o + 3])
        }
        // 2^40 elements (4 TiB of floats) is far past any real file; it also keeps every
        // byte count below computable without overflow.
        guard let elements = Sizes.product(shape, limit: 1 << 40) else {
            throw .corruptFile("\(source): IDX dimensions \(shape) give an implausible element count")
        }
        let expected = headerSize + elements * type.size
        guard bytes.count == expected else {
            let what = bytes.count < expected ? "is truncated" : "has \(bytes.count - expected) unexpected trailing bytes"
            throw .corruptFile("\(source) \(what): an IDX array of shape \(shape) and type \(type) takes \(expected) bytes, the file has \(bytes.count)")
        }
        elementType = type
        self.shape = shape
        count = elements
        self.bytes = bytes
        payloadOffset = headerSize
    }

    /// The elements as floats, each multiplied by `scale` (1/255 turns pixels into [0, 1]).
    public func floats(scale: Float = 1) -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            payload.withUnsafeBytes { raw in
                switch elementType {
                case .uint8: for i in 0..<n { out[i] = Float(raw[i]) * scale }
                case .int8: for i in 0..<n { out[i] = Float(Int8(bitPattern: raw[i])) * scale }
                case .int16:
                    for i in 0..<n { out[i] = Float(Int16(bigEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self))) * scale }
                case .int32:
                    for i in 0..<n { out[i] = Float(Int32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))) * scale }
                case .float32:
                    for i in 0..<n {
                        out[i] = Float(bitPattern: UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self))) * scale
                    }
                case .float64:
                    for i in 0..<n {
                        out[i] = Float(Double(bitPattern: UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)))) * scale
                    }
                }
            }
            initialized = n
        }
    }

    /// The elements as integers (labels). Throws `unsupported` for float element types.
    public func integers() throws(NNError) -> [Int32] {
        let n = count
        switch elementType {
        case .uint8: return payload.map { Int32($0) }
        case .int8: return payload.map { Int32(Int8(bitPattern: $0)) }
        case .int16, .int32:
            return payload.withUnsafeBytes { raw in
                (0..<n).map { i in
                    elementType == .int16
                        ? Int32(Int16(bigEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: Int16.self)))
                        : Int32(bigEndian: raw.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                }
            }
        case .float32, .float64:
            throw .unsupported("IDX array of type \(elementType) cannot be read as integer labels")
        }
    }
}

private func hex(_ b: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}

extension Dataset {
    /// The training or test part of a data set distributed as files.
    public enum Split: String, Sendable {
        case train, test
    }

    /// Where Debian's `dataset-fashion-mnist` package installs Fashion-MNIST.
    public static let fashionMNISTDirectory = "/usr/share/datasets/fashion-mnist"

    /// Fashion-MNIST's ten class names, in label order.
    public static let fashionMNISTClassNames = [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ]

    /// A data set from an IDX images file (n, d1, d2, ...) and an IDX labels file (n).
    ///
    /// Features are (n, d1 * d2 * ...), each value multiplied by `scale` (default 1/255, pixels
    /// to [0, 1]); targets are `.classes` with `classCount` classes (default: the largest label
    /// + 1). Throws `fileError` or `corruptFile` for the files, `shapeMismatch` when the counts
    /// differ, `invalidData` for a label out of range.
    public static func idx(images: String, labels: String, scale: Float = 1.0 / 255.0,
                           classCount: Int? = nil, classNames: [String]? = nil) throws(NNError) -> Dataset {
        let x = try IDXArray(contentsOf: images)
        let y = try IDXArray(contentsOf: labels)
        guard let n = x.shape.first, x.shape.count >= 1 else {
            throw .corruptFile("\(images): a 0-dimensional IDX array cannot hold images")
        }
        guard y.shape.count == 1 else {
            throw .shapeMismatch("\(labels): labels must be 1-dimensional, got shape \(y.shape)")
        }
        guard y.shape[0] == n else {
            throw .shapeMismatch("\(images) holds \(n) images but \(labels) holds \(y.shape[0]) labels")
        }
        // The shape's product was checked when the file was read, so its tail's is safe.
        let width = Sizes.product(x.shape.dropFirst()) ?? 0
        guard n > 0, width > 0 else { throw .invalidData("\(images): the data set is empty (shape \(x.shape))") }
        let classes = try y.integers()
        let k = classCount ?? Int(classes.max() ?? 0) + 1
        do {
            // 8-bit images stay bytes (a quarter of the memory), each read as Float(byte) * scale.
            let data = x.elementType == .uint8 && (255 * scale).isFinite
                ? try Dataset(bytes: x.bytes, offset: x.payloadOffset, scale: scale, featureCount: width,
                              targets: .classes(classes, classCount: k), classNames: classNames)
                : try Dataset(features: x.floats(scale: scale), featureCount: width,
                              targets: .classes(classes, classCount: k), classNames: classNames)
            // Images (n, h, w) keep their shape as one channel, (1, h, w), as PyTorch sees them.
            let tail = Array(x.shape.dropFirst())
            return tail.isEmpty ? data : try data.reshaped(to: Shape(tail.count == 2 ? [1] + tail : tail)) // (n): one value each
        } catch {
            throw error.prefixed("\(images), \(labels)")
        }
    }

    /// The training (60000 images) or test (10000) part of an MNIST-family data set in
    /// `directory`, from the standard file names (`train-images-idx3-ubyte`,
    /// `train-labels-idx1-ubyte`, `t10k-...`), gzipped (`.gz`) or not. Pixels are scaled to
    /// [0, 1]; features are (n, 784), targets `.classes` with 10 classes.
    public static func mnistFamily(split: Split, directory: String, classNames: [String]? = nil) throws(NNError) -> Dataset {
        let prefix = split == .train ? "train" : "t10k"
        func find(_ stem: String) throws(NNError) -> String {
            for candidate in ["\(directory)/\(stem).gz", "\(directory)/\(stem)"] where access(candidate, R_OK) == 0 {
                return candidate
            }
            throw .fileError("cannot find '\(directory)/\(stem)' or '\(directory)/\(stem).gz'")
        }
        return try idx(images: find("\(prefix)-images-idx3-ubyte"), labels: find("\(prefix)-labels-idx1-ubyte"),
                       classCount: 10, classNames: classNames)
    }

    /// Fashion-MNIST (Xiao, Rasul, Vollgraf 2017): 28x28 greyscale images of clothing in 10
    /// classes, 60000 for training and 10000 for testing. Features (n, 784) in [0, 1], targets
    /// `.classes` in 0..<10, named by `fashionMNISTClassNames`.
    public static func fashionMNIST(split: Split, directory: String = fashionMNISTDirectory) throws(NNError) -> Dataset {
        try mnistFamily(split: split, directory: directory, classNames: fashionMNISTClassNames)
    }
}
