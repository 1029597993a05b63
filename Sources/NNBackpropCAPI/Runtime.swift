// Version, threads and SIMD path.

import CKernels
import CNNBackprop
import NNBackprop

@c(nnb_version)
public func nnbVersion() -> Int32 { Int32(NNB_VERSION_MAJOR * 10000 + NNB_VERSION_MINOR * 100 + NNB_VERSION_PATCH) }

@c(nnb_abi_version)
public func nnbABIVersion() -> Int32 { Int32(NNB_ABI_VERSION) }

@c(nnb_version_string)
public func nnbVersionString() -> UnsafePointer<CChar> {
    UnsafeRawPointer(Runtime.version.utf8Start).assumingMemoryBound(to: CChar.self)
}

@c(nnb_set_num_threads)
public func nnbSetNumThreads(_ threads: Int32) -> nnb_status {
    capiCall("nnb_set_num_threads") {
        guard nnk_set_num_threads(threads) == 0 else {
            throw CAPIFailure(NNB_ERR_INVALID_ARGUMENT, "threads must be in 1...\(nnk_max_threads()) (256, or the machine's hardware threads when more), got \(threads)")
        }
    }
}

@c(nnb_get_num_threads)
public func nnbGetNumThreads() -> Int32 { nnk_get_num_threads() }

@c(nnb_isa)
public func nnbISA() -> UnsafePointer<CChar> { nnk_isa_name(nnk_isa_active()) }

@c(nnb_openmp_enabled)
public func nnbOpenMPEnabled() -> Int32 { nnk_openmp_enabled() }

@c(nnb_precision_supported)
public func nnbPrecisionSupported(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name, let precision = try? Precision(name: String(cString: name)) else { return 0 }
    return precision.isSupported ? 1 : 0
}
