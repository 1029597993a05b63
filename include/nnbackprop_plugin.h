/*
 * nnbackprop_plugin.h: extending libnnbackprop with activations, losses and kernels it does
 * not ship, from C (and, through these calls, from any language with a C FFI).
 *
 * Three ways in:
 * 1. Register at run time: nnb_register_activation / _loss / _gemm / _activation_kernel.
 * 2. Write a plugin library (.so) that exports one function,
 *        nnb_status nnb_plugin_init(const nnb_plugin_host *host);
 *    which registers what it provides through `host` (so the plugin need not link against
 *    libnnbackprop), and load it with nnb_plugin_load(path) or `nnb train --plugin path.so`.
 *    A library's registrations take effect together, only if its nnb_plugin_init returns NNB_OK
 *    and every registration it made succeeded; otherwise none do and the library is unloaded.
 * 3. From Swift: conform to NNBackprop's CustomActivation / CustomLoss / GEMMKernel protocols.
 *
 * Registered activations and losses are then named exactly like built-in ones: in layer specs
 * and descriptions ("784-256:mish-10"), in nnb_train_options.loss, in model files. A saved
 * model records the plugin activations it needs; loading it where they are not registered fails
 * with NNB_ERR_UNKNOWN_NAME naming them.
 *
 * Rules (checked; a failed registration leaves nothing behind):
 * - Every struct starts with struct_size = sizeof(struct) and abi_version =
 *   NNB_PLUGIN_ABI_VERSION; a newer struct or another ABI version gives NNB_ERR_VERSION.
 * - Names: lowercase letters, digits and '_', starting with a letter, at most 64 characters;
 *   not a built-in name (NNB_ERR_INVALID_ARGUMENT); not registered already (NNB_ERR_DUPLICATE).
 * - Function pointers marked required must not be NULL (NNB_ERR_NULL_ARGUMENT).
 * - The library copies names; ctx is borrowed for the life of the process and passed back on
 *   every call. Registrations last for the life of the process.
 * - The registry is safe to use from several threads. Plugin functions may be called from any
 *   thread, and from several at once (inference on many threads): make them reentrant. Install
 *   or remove kernel replacements (GEMM, activation kernels) while no model is training or
 *   predicting.
 */
#ifndef NNBACKPROP_PLUGIN_H
#define NNBACKPROP_PLUGIN_H

#include "nnbackprop.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NNB_PLUGIN_ABI_VERSION 1

/* An activation: y = f(x) elementwise, and its derivative. */
typedef struct nnb_activation_plugin {
    uint32_t struct_size; /* sizeof(nnb_activation_plugin) */
    uint32_t abi_version; /* NNB_PLUGIN_ABI_VERSION */
    const char *name;
    /* Required: y[i] = f(x[i]) for i < n. */
    void (*forward)(void *ctx, float *y, const float *x, size_t n);
    /* Required: dx[i] = dy[i] * f'(x[i]) for i < n; x is the input, y = f(x) the output. */
    void (*backward)(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n);
    void *ctx; /* optional */
} nnb_activation_plugin;

/* A loss over output rows pred (rows, cols) and target rows of the same shape (class-index
 * targets arrive one-hot). */
typedef struct nnb_loss_plugin {
    uint32_t struct_size; /* sizeof(nnb_loss_plugin) */
    uint32_t abi_version; /* NNB_PLUGIN_ABI_VERSION */
    const char *name;
    /* Required: returns the mean loss; when grad is not NULL writes d(loss)/d(pred) there. */
    float (*loss)(void *ctx, float *grad, const float *pred, const float *target, size_t rows, size_t cols);
    void *ctx; /* optional */
} nnb_loss_plugin;

/* A replacement for the GEMM kernel: C = alpha op(A) op(B) + beta C, row-major; trans_a /
 * trans_b are 0 or 1; A is (M, K) or, transposed, (K, M); B is (K, N) or (N, K); beta == 0
 * means C is not read. */
typedef struct nnb_gemm_plugin {
    uint32_t struct_size; /* sizeof(nnb_gemm_plugin) */
    uint32_t abi_version; /* NNB_PLUGIN_ABI_VERSION */
    const char *name;     /* for messages only */
    /* Required. */
    void (*sgemm)(void *ctx, int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha, const float *A,
                  size_t lda, const float *B, size_t ldb, float beta, float *C, size_t ldc);
    void *ctx; /* optional */
} nnb_gemm_plugin;

/* A replacement for a built-in activation's elementwise kernels. backward gets x == NULL for
 * activations whose derivative comes from y alone (identity, sigmoid, tanh, relu). */
typedef struct nnb_activation_kernel_plugin {
    uint32_t struct_size;   /* sizeof(nnb_activation_kernel_plugin) */
    uint32_t abi_version;   /* NNB_PLUGIN_ABI_VERSION */
    const char *activation; /* the built-in it replaces: "relu", "tanh", ... */
    void (*forward)(void *ctx, float *y, const float *x, size_t n);                                   /* required */
    void (*backward)(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n); /* required */
    void *ctx;              /* optional */
} nnb_activation_kernel_plugin;

NNB_API nnb_status nnb_register_activation(const nnb_activation_plugin *plugin);
NNB_API nnb_status nnb_register_loss(const nnb_loss_plugin *plugin);
/* Installs a GEMM replacement; NULL restores the built-in GEMM. */
NNB_API nnb_status nnb_register_gemm(const nnb_gemm_plugin *plugin);
NNB_API nnb_status nnb_register_activation_kernel(const nnb_activation_kernel_plugin *plugin);
/* Restores a built-in activation's own kernels. */
NNB_API nnb_status nnb_restore_activation_kernel(const char *activation);

/* 1 when an activation or loss called `name` is registered by a plugin, else 0. */
NNB_API int nnb_plugin_registered(const char *name);

/* The built-in reference GEMM (plain loops, never replaced), to check a plugin against:
 * arguments as nnb_gemm_plugin.sgemm without ctx. */
NNB_API nnb_status nnb_sgemm_reference(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                                       const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                                       size_t ldc);

/* What a plugin library's entry point receives. */
typedef struct nnb_plugin_host {
    uint32_t struct_size; /* sizeof(nnb_plugin_host) of the library loading the plugin */
    uint32_t abi_version; /* NNB_PLUGIN_ABI_VERSION of the library loading the plugin */
    nnb_status (*register_activation)(const nnb_activation_plugin *plugin);
    nnb_status (*register_loss)(const nnb_loss_plugin *plugin);
    nnb_status (*register_gemm)(const nnb_gemm_plugin *plugin);
    nnb_status (*register_activation_kernel)(const nnb_activation_kernel_plugin *plugin);
} nnb_plugin_host;

/* The symbol a plugin library exports, and its type. */
#define NNB_PLUGIN_ENTRY_NAME "nnb_plugin_init"
typedef nnb_status (*nnb_plugin_entry)(const nnb_plugin_host *host);

/* dlopen()s the library at `path` and runs its nnb_plugin_init. NNB_ERR_PLUGIN when it cannot
 * be loaded, lacks the entry point or its entry fails; the entry's own failures keep their
 * status. Loading the same path twice fails with NNB_ERR_DUPLICATE (its names are taken). */
NNB_API nnb_status nnb_plugin_load(const char *path);

#ifdef __cplusplus
}
#endif

#endif /* NNBACKPROP_PLUGIN_H */
