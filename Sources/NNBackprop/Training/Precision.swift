import CKernels

/// The arithmetic of a layer's matrix products in training (forward and both backward
/// products of Dense and Conv2D). Master weights, gradients, the optimizer, losses and
/// inference stay fp32 whatever the choice.
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// fp32 products: bitwise the same results for any thread count.
    case fp32
    /// bf16 inputs with fp32 accumulation (AVX512_BF16's `vdpbf16ps`): each product's inputs
    /// are rounded to bfloat16 (8 significant bits), their products summed in fp32.
    case bf16

    public var description: String { rawValue }

    var kernel: nnk_precision {
        switch self {
        case .fp32: return NNK_PRECISION_FP32
        case .bf16: return NNK_PRECISION_BF16
        }
    }

    /// Whether the active SIMD path has kernels for this precision (bf16: AVX512_BF16 on the
    /// avx512 path; NNB_ISA can choose a path without it).
    public var isSupported: Bool { nnk_precision_supported(kernel) != 0 }

    /// The precision named `name` ("fp32" or "bf16", any case); throws `invalidArgument` naming
    /// the choices.
    public init(name: String) throws(NNError) {
        guard let p = Precision(rawValue: name.lowercased()) else {
            throw .invalidArgument("unknown precision '\(name)': choose fp32 or bf16")
        }
        self = p
    }

    /// Throws `unsupported` for a model quantized for int8 inference, which does not train.
    static func checkTrainable(_ model: Sequential) throws(NNError) {
        guard !model.isQuantized else {
            throw .unsupported("the model is quantized for int8 inference and does not train; remove the quantization (removeQuantization, nnb_model_remove_quantization, remove_quantization), train, then quantize again")
        }
    }

    /// Throws `unsupported` with what is missing when this CPU cannot train in this precision.
    public func checkSupported() throws(NNError) {
        guard !isSupported else { return }
        throw .unsupported("precision \(rawValue) needs AVX512_BF16 (vdpbf16ps), which the active SIMD path "
                           + "(\(Runtime.isa)) does not have on this CPU; train with precision fp32")
    }
}
