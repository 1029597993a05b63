// Plugins written in C (include/nnbackprop_plugin.h): checking their registration structs,
// wrapping them as Swift plugins, and loading plugin libraries with dlopen. The C API's
// nnb_register_* and nnb_plugin_load are thin wrappers over this; the nnb command uses
// `Plugins.loadLibrary(path:)`.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import CNNBackprop
import NNBackprop

/// A failed plugin call: the C status and its message.
public struct PluginFailure: Error, Sendable {
    public let status: nnb_status
    public let message: String

    init(_ status: nnb_status, _ message: String) {
        self.status = status
        self.message = message
    }

    /// The same failure as the Swift library's error type.
    public var nnError: NNError { NNError(status: status, message: message) }
}

/// The one mapping between the Swift library's errors and the C API's status codes (the C
/// API, the plugin loader and the plugin calls all use it).
extension NNError {
    /// The C status of this error.
    public var status: nnb_status {
        switch self {
        case .shapeMismatch: return NNB_ERR_SHAPE_MISMATCH
        case .invalidArgument: return NNB_ERR_INVALID_ARGUMENT
        case .invalidData: return NNB_ERR_INVALID_DATA
        case .fileError: return NNB_ERR_IO
        case .corruptFile: return NNB_ERR_CORRUPT_FILE
        case .unsupported: return NNB_ERR_UNSUPPORTED
        case .unknownName: return NNB_ERR_UNKNOWN_NAME
        case .duplicateName: return NNB_ERR_DUPLICATE
        case .versionMismatch: return NNB_ERR_VERSION
        case .pluginError: return NNB_ERR_PLUGIN
        case .diverged: return NNB_ERR_DIVERGED
        }
    }

    /// The error a C status stands for; statuses without a Swift case of their own (NULL
    /// argument, capacity, busy, not ready, internal) become `invalidArgument`.
    public init(status: nnb_status, message: String) {
        switch status {
        case NNB_ERR_SHAPE_MISMATCH: self = .shapeMismatch(message)
        case NNB_ERR_INVALID_DATA: self = .invalidData(message)
        case NNB_ERR_IO: self = .fileError(message)
        case NNB_ERR_CORRUPT_FILE: self = .corruptFile(message)
        case NNB_ERR_UNSUPPORTED: self = .unsupported(message)
        case NNB_ERR_UNKNOWN_NAME: self = .unknownName(message)
        case NNB_ERR_DUPLICATE: self = .duplicateName(message)
        case NNB_ERR_VERSION: self = .versionMismatch(message)
        case NNB_ERR_PLUGIN: self = .pluginError(message)
        case NNB_ERR_DIVERGED: self = .diverged(message)
        default: self = .invalidArgument(message)
        }
    }
}

/// A C activation plugin as a Swift one.
final class CActivation: CustomActivation, @unchecked Sendable {
    let name: String
    let forwardFn: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
    let backwardFn: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                    UnsafePointer<Float>?, UnsafePointer<Float>?, Int) -> Void
    let ctx: UnsafeMutableRawPointer?

    init(name: String, forward: @escaping @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int) -> Void,
         backward: @escaping @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                              UnsafePointer<Float>?, UnsafePointer<Float>?, Int) -> Void,
         ctx: UnsafeMutableRawPointer?) {
        self.name = name
        self.forwardFn = forward
        self.backwardFn = backward
        self.ctx = ctx
    }

    func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) { forwardFn(ctx, y, x, count) }

    func backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ x: UnsafePointer<Float>,
                  _ y: UnsafePointer<Float>, count: Int) {
        backwardFn(ctx, dx, dy, x, y, count)
    }
}

/// A C loss plugin as a Swift one.
final class CLoss: CustomLoss, @unchecked Sendable {
    let name: String
    let lossFn: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                UnsafePointer<Float>?, Int, Int) -> Float
    let ctx: UnsafeMutableRawPointer?

    init(name: String, loss: @escaping @convention(c) (UnsafeMutableRawPointer?, UnsafeMutablePointer<Float>?, UnsafePointer<Float>?,
                                                        UnsafePointer<Float>?, Int, Int) -> Float,
         ctx: UnsafeMutableRawPointer?) {
        self.name = name
        self.lossFn = loss
        self.ctx = ctx
    }

    func loss(gradient: UnsafeMutablePointer<Float>?, predictions: UnsafePointer<Float>, targets: UnsafePointer<Float>,
              rows: Int, cols: Int) -> Float {
        lossFn(ctx, gradient, predictions, targets, rows, cols)
    }
}

/// A C GEMM plugin as a Swift one.
final class CGEMM: GEMMKernel, @unchecked Sendable {
    let name: String
    let fn: @convention(c) (UnsafeMutableRawPointer?, Int32, Int32, Int, Int, Int, Float, UnsafePointer<Float>?, Int,
                            UnsafePointer<Float>?, Int, Float, UnsafeMutablePointer<Float>?, Int) -> Void
    let ctx: UnsafeMutableRawPointer?

    init(name: String, fn: @escaping @convention(c) (UnsafeMutableRawPointer?, Int32, Int32, Int, Int, Int, Float, UnsafePointer<Float>?, Int,
                                                      UnsafePointer<Float>?, Int, Float, UnsafeMutablePointer<Float>?, Int) -> Void,
         ctx: UnsafeMutableRawPointer?) {
        self.name = name
        self.fn = fn
        self.ctx = ctx
    }

    func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
               b: UnsafePointer<Float>, ldb: Int, beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        fn(ctx, transA ? 1 : 0, transB ? 1 : 0, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
    }
}

/// What one registration struct asks for, checked and ready to commit.
enum PluginEntry {
    case activation(CActivation)
    case loss(CLoss)
    case gemm(CGEMM)
    case activationKernel(Activation, CActivation)
}

public enum CPlugins {
    // MARK: - Checking registration structs

    /// struct_size and abi_version of a registration struct (its first two fields).
    private static func checkHeader(_ raw: UnsafeRawPointer?, _ type: String, size: Int) throws(PluginFailure) {
        guard let raw else { throw PluginFailure(NNB_ERR_NULL_ARGUMENT, "\(type) is NULL") }
        let structSize = raw.load(as: UInt32.self), abi = raw.load(fromByteOffset: 4, as: UInt32.self)
        guard abi == UInt32(NNB_PLUGIN_ABI_VERSION) else {
            throw PluginFailure(NNB_ERR_VERSION, "\(type).abi_version is \(abi); this library speaks plugin ABI \(NNB_PLUGIN_ABI_VERSION)")
        }
        guard structSize == UInt32(size) else {
            throw PluginFailure(NNB_ERR_VERSION, "\(type).struct_size is \(structSize), expected sizeof(\(type)) = \(size) for plugin ABI \(NNB_PLUGIN_ABI_VERSION)")
        }
    }

    private static func name(_ p: UnsafePointer<CChar>?, _ field: String) throws(PluginFailure) -> String {
        guard let p else { throw PluginFailure(NNB_ERR_NULL_ARGUMENT, "\(field) is NULL") }
        return String(cString: p)
    }

    private static func required<T>(_ fn: T?, _ field: String) throws(PluginFailure) -> T {
        guard let fn else { throw PluginFailure(NNB_ERR_NULL_ARGUMENT, "\(field) is NULL; it is required") }
        return fn
    }

    static func entry(activation p: UnsafePointer<nnb_activation_plugin>?) throws(PluginFailure) -> PluginEntry {
        try checkHeader(p, "nnb_activation_plugin", size: MemoryLayout<nnb_activation_plugin>.size)
        let s = p!.pointee
        let n = try name(s.name, "nnb_activation_plugin.name")
        return .activation(CActivation(name: n, forward: try required(s.forward, "nnb_activation_plugin.forward"),
                                       backward: try required(s.backward, "nnb_activation_plugin.backward"), ctx: s.ctx))
    }

    static func entry(loss p: UnsafePointer<nnb_loss_plugin>?) throws(PluginFailure) -> PluginEntry {
        try checkHeader(p, "nnb_loss_plugin", size: MemoryLayout<nnb_loss_plugin>.size)
        let s = p!.pointee
        let n = try name(s.name, "nnb_loss_plugin.name")
        return .loss(CLoss(name: n, loss: try required(s.loss, "nnb_loss_plugin.loss"), ctx: s.ctx))
    }

    static func entry(gemm p: UnsafePointer<nnb_gemm_plugin>?) throws(PluginFailure) -> PluginEntry {
        try checkHeader(p, "nnb_gemm_plugin", size: MemoryLayout<nnb_gemm_plugin>.size)
        let s = p!.pointee
        let n = s.name.map { String(cString: $0) } ?? "unnamed GEMM"
        return .gemm(CGEMM(name: n, fn: try required(s.sgemm, "nnb_gemm_plugin.sgemm"), ctx: s.ctx))
    }

    static func entry(activationKernel p: UnsafePointer<nnb_activation_kernel_plugin>?) throws(PluginFailure) -> PluginEntry {
        try checkHeader(p, "nnb_activation_kernel_plugin", size: MemoryLayout<nnb_activation_kernel_plugin>.size)
        let s = p!.pointee
        let n = try name(s.activation, "nnb_activation_kernel_plugin.activation")
        let builtIn: Activation
        do { builtIn = try Activation(name: n) } catch {
            throw PluginFailure(NNB_ERR_UNKNOWN_NAME, "nnb_activation_kernel_plugin.activation '\(n)' is not a built-in activation")
        }
        let kernel = CActivation(name: n, forward: try required(s.forward, "nnb_activation_kernel_plugin.forward"),
                                 backward: try required(s.backward, "nnb_activation_kernel_plugin.backward"), ctx: s.ctx)
        return .activationKernel(builtIn, kernel)
    }

    // MARK: - Committing

    /// Registers every entry or none: names are checked against the registry and each other
    /// first, under the registry's lock.
    static func commit(_ entries: [PluginEntry]) throws(PluginFailure) {
        var activations: [any CustomActivation] = [], losses: [any CustomLoss] = []
        for e in entries {
            if case .activation(let a) = e { activations.append(a) }
            if case .loss(let l) = e { losses.append(l) }
        }
        do { try Plugins.registerAll(activations: activations, losses: losses) } catch {
            throw PluginFailure(error.status, error.message)
        }
        for e in entries {
            switch e {
            case .gemm(let g): Plugins.replaceGEMM(with: g)
            case .activationKernel(let act, let k): Plugins.replaceKernel(of: act, with: k)
            default: break
            }
        }
    }

    /// Checks and registers one struct now (or, while a plugin library's entry point runs,
    /// stages it to commit with the library's other registrations).
    static func register(_ make: () throws(PluginFailure) -> PluginEntry) -> nnb_status {
        do {
            try stageOrCommit(make)
            return NNB_OK
        } catch {
            return error.status
        }
    }

    private static func stageOrCommit(_ make: () throws(PluginFailure) -> PluginEntry) throws(PluginFailure) {
        do {
            let e = try make()
            if loading.stage(e) != nil { return }
            try commit([e])
        } catch {
            loading.fail(error)
            throw error
        }
    }

    public static func registerActivation(_ p: UnsafePointer<nnb_activation_plugin>?) throws(PluginFailure) {
        try commitNow { () throws(PluginFailure) in try entry(activation: p) }
    }

    public static func registerLoss(_ p: UnsafePointer<nnb_loss_plugin>?) throws(PluginFailure) {
        try commitNow { () throws(PluginFailure) in try entry(loss: p) }
    }

    /// NULL restores the built-in GEMM.
    public static func registerGEMM(_ p: UnsafePointer<nnb_gemm_plugin>?) throws(PluginFailure) {
        guard p != nil else {
            guard !loading.isLoadingOnThisThread else {
                throw PluginFailure(NNB_ERR_PLUGIN, "nnb_register_gemm(NULL) cannot be called from a plugin's \(NNB_PLUGIN_ENTRY_NAME)")
            }
            Plugins.replaceGEMM(with: nil)
            return
        }
        try commitNow { () throws(PluginFailure) in try entry(gemm: p) }
    }

    public static func registerActivationKernel(_ p: UnsafePointer<nnb_activation_kernel_plugin>?) throws(PluginFailure) {
        try commitNow { () throws(PluginFailure) in try entry(activationKernel: p) }
    }

    /// The exported nnb_register_* calls. While a plugin library's entry point runs on this
    /// thread, what it registers through them is staged with the rest of the library's
    /// registrations, so that a failing entry point leaves nothing behind (a GEMM committed
    /// now would outlive the library's dlclose and be called into unmapped code).
    private static func commitNow(_ make: () throws(PluginFailure) -> PluginEntry) throws(PluginFailure) {
        try stageOrCommit(make)
    }

    // MARK: - Plugin libraries

    /// The registrations of the plugin library whose entry point is running (one at a time).
    /// `loads` serializes whole loads; `state` guards the fields, which registration calls
    /// from any thread read.
    final class Loading: @unchecked Sendable {
        let loads = PThreadMutex()
        private let state = PThreadMutex()
        private var thread: pthread_t?
        private var staged: [PluginEntry] = []
        private var failure: PluginFailure?
        /// dlopen handles of the libraries loaded for good (guarded by `loads`).
        var loaded: [UnsafeMutableRawPointer] = []

        /// True when the calling thread is running a plugin library's entry point.
        var isLoadingOnThisThread: Bool {
            state.withLock { thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        }

        func begin() { state.withLock { thread = pthread_self(); staged = []; failure = nil } }

        /// Ends the load and hands back what it registered and its first failure.
        func end() -> (staged: [PluginEntry], failure: PluginFailure?) {
            state.withLock {
                defer { thread = nil; staged = []; failure = nil }
                return (staged, failure)
            }
        }

        /// Stages `e` when a library is loading on this thread; nil when registering directly.
        func stage(_ e: PluginEntry) -> nnb_status? {
            state.withLock {
                guard let t = thread, pthread_equal(t, pthread_self()) != 0 else { return nil }
                staged.append(e)
                return NNB_OK
            }
        }

        func fail(_ f: PluginFailure) {
            state.withLock {
                if let t = thread, pthread_equal(t, pthread_self()) != 0, failure == nil { failure = f }
            }
        }
    }
    static let loading = Loading()

    private static let host: nnb_plugin_host = {
        var h = nnb_plugin_host()
        h.struct_size = UInt32(MemoryLayout<nnb_plugin_host>.size)
        h.abi_version = UInt32(NNB_PLUGIN_ABI_VERSION)
        h.register_activation = { p in CPlugins.register { () throws(PluginFailure) in try CPlugins.entry(activation: p) } }
        h.register_loss = { p in CPlugins.register { () throws(PluginFailure) in try CPlugins.entry(loss: p) } }
        h.register_gemm = { p in CPlugins.register { () throws(PluginFailure) in try CPlugins.entry(gemm: p) } }
        h.register_activation_kernel = { p in
            CPlugins.register { () throws(PluginFailure) in try CPlugins.entry(activationKernel: p) }
        }
        return h
    }()

    /// dlopen()s `path`, runs its nnb_plugin_init with the host table, and commits what it
    /// registered if it all succeeded; otherwise nothing is registered and it is unloaded.
    public static func load(path: String) throws(PluginFailure) {
        // A plugin's entry point that loads another plugin would wait for itself for ever.
        guard !loading.isLoadingOnThisThread else {
            throw PluginFailure(NNB_ERR_PLUGIN, "cannot load '\(path)' from inside another plugin's \(NNB_PLUGIN_ENTRY_NAME): plugins cannot load plugins")
        }
        loading.loads.lock()
        defer { loading.loads.unlock() }
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown reason"
            throw PluginFailure(NNB_ERR_PLUGIN, "cannot load plugin library '\(path)': \(why)")
        }
        // dlopen hands back the same handle for a library already in the process.
        guard !loading.loaded.contains(handle) else {
            dlclose(handle)
            throw PluginFailure(NNB_ERR_DUPLICATE, "plugin library '\(path)' is loaded already")
        }
        guard let symbol = dlsym(handle, NNB_PLUGIN_ENTRY_NAME) else {
            dlclose(handle)
            throw PluginFailure(NNB_ERR_PLUGIN, "'\(path)' is not an NNBackprop plugin: it does not export \(NNB_PLUGIN_ENTRY_NAME)")
        }
        let entryPoint = unsafeBitCast(symbol, to: (@convention(c) (UnsafePointer<nnb_plugin_host>?) -> nnb_status).self)
        loading.begin()
        var h = host
        let status = entryPoint(&h)
        let (staged, failure) = loading.end()
        do throws(PluginFailure) {
            if let failure { throw failure }
            guard status == NNB_OK else {
                // A status this library does not define is the plugin's bug: NNB_ERR_PLUGIN.
                let known = status.rawValue <= NNB_ERR_DIVERGED.rawValue
                throw PluginFailure(known ? status : NNB_ERR_PLUGIN,
                                    "the entry point of '\(path)' returned \(status.rawValue) (\(known ? String(cString: statusText(status)) : "not a status code"))")
            }
            guard !staged.isEmpty else { throw PluginFailure(NNB_ERR_PLUGIN, "'\(path)' registered nothing") }
            try commit(staged)
        } catch {
            dlclose(handle)
            throw PluginFailure(error.status, "plugin '\(path)': \(error.message)")
        }
        // Loaded for good: its functions are registered for the life of the process.
        loading.loaded.append(handle)
    }

    /// The built-in reference GEMM, for checking a replacement against.
    public static func referenceSGEMM(transA: Int32, transB: Int32, m: Int, n: Int, k: Int, alpha: Float,
                                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float,
                                      c: UnsafeMutablePointer<Float>, ldc: Int) {
        nnk_sgemm_ref(transA != 0 ? NNK_TRANS : NNK_NO_TRANS, transB != 0 ? NNK_TRANS : NNK_NO_TRANS, m, n, k, alpha, a, lda,
                      b, ldb, beta, c, ldc)
    }
}

/// The text of each status (nnb_status_string's table), static for the life of the process.
let statusStrings: [UInt32: StaticString] = [
    NNB_OK.rawValue: "NNB_OK: success",
    NNB_ERR_NULL_ARGUMENT.rawValue: "NNB_ERR_NULL_ARGUMENT: a required pointer was NULL",
    NNB_ERR_INVALID_ARGUMENT.rawValue: "NNB_ERR_INVALID_ARGUMENT: an argument is out of range",
    NNB_ERR_SHAPE_MISMATCH.rawValue: "NNB_ERR_SHAPE_MISMATCH: array sizes disagree",
    NNB_ERR_INVALID_DATA.rawValue: "NNB_ERR_INVALID_DATA: NaN, infinity or a class index out of range",
    NNB_ERR_CAPACITY.rawValue: "NNB_ERR_CAPACITY: the output buffer is too small",
    NNB_ERR_IO.rawValue: "NNB_ERR_IO: a file could not be read or written",
    NNB_ERR_CORRUPT_FILE.rawValue: "NNB_ERR_CORRUPT_FILE: the file is truncated, garbled or not a model",
    NNB_ERR_UNSUPPORTED.rawValue: "NNB_ERR_UNSUPPORTED: not supported by this build",
    NNB_ERR_UNKNOWN_NAME.rawValue: "NNB_ERR_UNKNOWN_NAME: an unknown layer, activation, loss or optimizer",
    NNB_ERR_BUSY.rawValue: "NNB_ERR_BUSY: the model is being trained by another thread",
    NNB_ERR_VERSION.rawValue: "NNB_ERR_VERSION: an options struct or file from an incompatible version",
    NNB_ERR_NOT_READY.rawValue: "NNB_ERR_NOT_READY: the model must be compiled first",
    NNB_ERR_INTERNAL.rawValue: "NNB_ERR_INTERNAL: an internal error (a bug; please report it)",
    NNB_ERR_DUPLICATE.rawValue: "NNB_ERR_DUPLICATE: a plugin with that name is registered already",
    NNB_ERR_PLUGIN.rawValue: "NNB_ERR_PLUGIN: a plugin library could not be loaded or initialised",
    NNB_ERR_DIVERGED.rawValue: "NNB_ERR_DIVERGED: training produced a non-finite loss or weights",
]

/// The static text of a status ("NNB_ERR_SHAPE_MISMATCH: array sizes disagree"), for
/// nnb_status_string and the plugin loader's messages.
public func statusText(_ status: nnb_status) -> UnsafePointer<CChar> {
    let text: StaticString = statusStrings[status.rawValue] ?? "NNB_ERR_UNKNOWN: not a status code of this library"
    return UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

extension Plugins {
    /// Loads a plugin library (see include/nnbackprop_plugin.h): everything it registers, or
    /// nothing and an error saying why.
    public static func loadLibrary(path: String) throws(NNError) {
        do { try CPlugins.load(path: path) } catch { throw error.nnError }
    }
}
