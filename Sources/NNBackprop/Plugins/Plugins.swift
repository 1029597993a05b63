import CKernels
#if canImport(FoundationEssentials)
import FoundationEssentials // not all of Foundation: keeps ICU out of libnnbackprop.so
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif

/// An activation the library does not ship: f and f' over buffers. Conform a type to it and
/// register it with `Plugins.register(activation:)`; layers then name it like a built-in.
public protocol CustomActivation: AnyObject, Sendable {
    /// The name layers and model files use: lowercase letters, digits and '_', starting with a
    /// letter, not a built-in activation's name.
    var name: String { get }
    /// y[i] = f(x[i]) for i < count.
    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int)
    /// dx[i] = dy[i] f'(x[i]) for i < count, x the input and y = f(x) the output.
    func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                  _ y: UnsafePointer<Float>, count: Int)
}

/// A loss the library does not ship, over output rows (rows, cols) and float target rows of
/// the same shape (class targets arrive one-hot).
public protocol CustomLoss: AnyObject, Sendable {
    /// The name `Loss.custom` uses (same rules as `CustomActivation.name`).
    var name: String { get }
    /// The mean loss; when `gradient` is not nil, writes d(loss)/d(predictions) there.
    func loss(gradient: UnsafeMutablePointer<Float>?, predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>,
              rows: Int, cols: Int) -> Float
}

/// A replacement for the built-in GEMM (a BLAS, or a kernel tuned for another CPU):
/// C = alpha op(A) op(B) + beta C, row-major, as `nnk_sgemm`.
public protocol GEMMKernel: AnyObject, Sendable {
    var name: String { get }
    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int)
}

/// The process-wide registry of plugins: custom activations and losses by name, and kernel
/// replacements. Thread-safe; an entry is validated before it is added, so a failed
/// registration leaves nothing behind. Entries stay for the life of the process.
public enum Plugins {
    private final class Registry: @unchecked Sendable {
        let lock = PThreadMutex()
        var activations: [String: any CustomActivation] = [:]
        var losses: [String: any CustomLoss] = [:]
        var gemm: (any GEMMKernel)?
        /// Everything a kernel override's context pointer refers to, kept alive for good.
        var retained: [AnyObject] = []
    }

    private static let registry = Registry()

    private static func withRegistry<T>(_ body: (Registry) throws(NNError) -> T) throws(NNError) -> T {
        registry.lock.lock()
        defer { registry.lock.unlock() }
        return try body(registry)
    }

    /// Checks a plugin name: [a-z][a-z0-9_]*, at most 64 characters.
    public static func validate(name: String, kind: String) throws(NNError) {
        let scalars = Array(name.unicodeScalars)
        guard let first = scalars.first, ("a"..."z").contains(first), scalars.count <= 64,
              scalars.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }) else {
            throw .invalidArgument("\(kind) name '\(name)' is not valid: use lowercase letters, digits and '_', starting with a letter, at most 64 characters")
        }
    }

    /// Adds a custom activation. Throws `invalidArgument` for a bad name or a built-in
    /// activation's name, `duplicateName` for one already registered.
    public static func register(activation: any CustomActivation) throws(NNError) {
        try registerAll(activations: [activation], losses: [])
    }

    /// Adds a custom loss; the same rules as activations, against the built-in loss names.
    public static func register(loss: any CustomLoss) throws(NNError) {
        try registerAll(activations: [], losses: [loss])
    }

    /// Adds all of them or, when any is refused, none.
    public static func registerAll(activations: [any CustomActivation], losses: [any CustomLoss]) throws(NNError) {
        var names = Set<String>()
        for a in activations {
            try validate(name: a.name, kind: "activation")
            guard a.name.withCString({ nnk_act_from_name($0) }) < 0, !["softmax", "log_softmax", "dropout"].contains(a.name) else {
                throw .invalidArgument("activation name '\(a.name)' is a built-in activation's; choose another")
            }
            guard names.insert(a.name).inserted else { throw .duplicateName("the name '\(a.name)' is given twice") }
        }
        for l in losses {
            try validate(name: l.name, kind: "loss")
            if (try? Loss(name: l.name)) != nil, Plugins.loss(named: l.name) == nil {
                throw .invalidArgument("loss name '\(l.name)' is a built-in loss's; choose another")
            }
            guard names.insert(l.name).inserted else { throw .duplicateName("the name '\(l.name)' is given twice") }
        }
        try withRegistry { r throws(NNError) in
            for n in names where r.activations[n] != nil || r.losses[n] != nil {
                throw .duplicateName("a plugin named '\(n)' is already registered")
            }
            for a in activations { r.activations[a.name] = a }
            for l in losses { r.losses[l.name] = l }
        }
    }

    /// The registered activation called `name`, if any.
    public static func activation(named name: String) -> (any CustomActivation)? {
        (try? withRegistry { r in r.activations[name] }) ?? nil
    }

    /// The registered loss called `name`, if any.
    public static func loss(named name: String) -> (any CustomLoss)? {
        (try? withRegistry { r in r.losses[name] }) ?? nil
    }

    /// The names of every registered activation and loss, sorted.
    public static var names: [String] {
        (try? withRegistry { r in (Array(r.activations.keys) + Array(r.losses.keys)).sorted() }) ?? []
    }

    // MARK: - Kernel replacement

    private final class GEMMBox {
        let kernel: any GEMMKernel
        init(_ kernel: any GEMMKernel) { self.kernel = kernel }
    }

    /// Routes every GEMM in the process through `kernel` (nil restores the built-in one). The
    /// reference GEMM (`nnk_sgemm_ref`) stays available to check it against. Do not call while
    /// training or inference runs on other threads.
    public static func replaceGEMM(with kernel: (any GEMMKernel)?) {
        try? withRegistry { r in
            r.gemm = kernel
            guard let kernel else {
                nnk_set_sgemm_override(nil, nil)
                return
            }
            let box = GEMMBox(kernel)
            r.retained.append(box)
            nnk_set_sgemm_override({ ctx, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc in
                Unmanaged<GEMMBox>.fromOpaque(ctx!).takeUnretainedValue().kernel.sgemm(
                    transA: ta == NNK_TRANS, transB: tb == NNK_TRANS, m: m, n: n, k: k, alpha: alpha, a: a!, lda: lda,
                    b: b!, ldb: ldb, beta: beta, c: c!, ldc: ldc)
            }, Unmanaged.passUnretained(box).toOpaque())
        }
    }

    /// The GEMM replacement in use, if any.
    public static var gemm: (any GEMMKernel)? { (try? withRegistry { r in r.gemm }) ?? nil }

    private final class ActivationBox {
        let activation: any CustomActivation
        init(_ activation: any CustomActivation) { self.activation = activation }
    }

    /// Routes a built-in activation's elementwise kernels through `kernel` (nil restores the
    /// built-in kernels); the reference kernels stay available.
    public static func replaceKernel(of activation: Activation, with kernel: (any CustomActivation)?) {
        try? withRegistry { r in
            guard let kernel else {
                _ = nnk_set_act_override(activation.kernel, nil, nil, nil)
                return
            }
            let box = ActivationBox(kernel)
            r.retained.append(box)
            _ = nnk_set_act_override(activation.kernel, { ctx, y, x, n in
                Unmanaged<ActivationBox>.fromOpaque(ctx!).takeUnretainedValue().activation.forward(y!, x!, count: n)
            }, { ctx, dx, dy, x, y, n in
                // Built-in activations whose derivative needs only y get x == NULL; pass y then.
                Unmanaged<ActivationBox>.fromOpaque(ctx!).takeUnretainedValue().activation.backward(dx!, dy!, x ?? y!, y ?? x!, count: n)
            }, Unmanaged.passUnretained(box).toOpaque())
        }
    }
}
