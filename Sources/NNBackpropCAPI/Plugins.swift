// include/nnbackprop_plugin.h: registering plugins and loading plugin libraries.

import CKernels
import CNNBackprop
import NNBackprop

@c(nnb_register_activation)
public func nnbRegisterActivation(_ plugin: UnsafePointer<nnb_activation_plugin>?) -> nnb_status {
    capiCall("nnb_register_activation") { try CPlugins.registerActivation(plugin) }
}

@c(nnb_register_loss)
public func nnbRegisterLoss(_ plugin: UnsafePointer<nnb_loss_plugin>?) -> nnb_status {
    capiCall("nnb_register_loss") { try CPlugins.registerLoss(plugin) }
}

@c(nnb_register_gemm)
public func nnbRegisterGEMM(_ plugin: UnsafePointer<nnb_gemm_plugin>?) -> nnb_status {
    capiCall("nnb_register_gemm") { try CPlugins.registerGEMM(plugin) }
}

@c(nnb_register_activation_kernel)
public func nnbRegisterActivationKernel(_ plugin: UnsafePointer<nnb_activation_kernel_plugin>?) -> nnb_status {
    capiCall("nnb_register_activation_kernel") { try CPlugins.registerActivationKernel(plugin) }
}

@c(nnb_restore_activation_kernel)
public func nnbRestoreActivationKernel(_ activation: UnsafePointer<CChar>?) -> nnb_status {
    capiCall("nnb_restore_activation_kernel") {
        Plugins.replaceKernel(of: try Activation(name: try string(activation, "activation")), with: nil)
    }
}

@c(nnb_plugin_registered)
public func nnbPluginRegistered(_ name: UnsafePointer<CChar>?) -> Int32 {
    guard let name else { return 0 }
    let n = String(cString: name)
    return Plugins.activation(named: n) != nil || Plugins.loss(named: n) != nil ? 1 : 0
}

@c(nnb_sgemm_reference)
public func nnbSGEMMReference(_ transA: Int32, _ transB: Int32, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
                              _ a: UnsafePointer<Float>?, _ lda: Int, _ b: UnsafePointer<Float>?, _ ldb: Int,
                              _ beta: Float, _ c: UnsafeMutablePointer<Float>?, _ ldc: Int) -> nnb_status {
    capiCall("nnb_sgemm_reference") {
        let m = try size(m, "M"), n = try size(n, "N"), k = try size(k, "K")
        let lda = try size(lda, "lda"), ldb = try size(ldb, "ldb"), ldc = try size(ldc, "ldc")
        guard m > 0 && n > 0 else { return }
        guard let c else { throw CAPIFailure.null("C") }
        guard k == 0 || (a != nil && b != nil) else { throw CAPIFailure.null(a == nil ? "A" : "B") }
        guard ldc >= n, lda >= (transA != 0 ? m : k), ldb >= (transB != 0 ? k : n) else {
            throw CAPIFailure(NNB_ERR_SHAPE_MISMATCH, "leading dimensions too small: lda \(lda), ldb \(ldb), ldc \(ldc) for M \(m), N \(n), K \(k)")
        }
        // Each matrix's extent (rows x leading dimension) must be addressable.
        _ = try product(transA != 0 ? k : m, lda, "A's rows * lda")
        _ = try product(transB != 0 ? n : k, ldb, "B's rows * ldb")
        _ = try product(m, ldc, "M * ldc")
        nnk_sgemm_ref(transA != 0 ? NNK_TRANS : NNK_NO_TRANS, transB != 0 ? NNK_TRANS : NNK_NO_TRANS, m, n, k, alpha, a, lda,
                      b, ldb, beta, c, ldc)
    }
}

@c(nnb_plugin_load)
public func nnbPluginLoad(_ path: UnsafePointer<CChar>?) -> nnb_status {
    capiCall("nnb_plugin_load") { try CPlugins.load(path: try string(path, "path")) }
}
