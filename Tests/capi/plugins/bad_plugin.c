/*
 * Deliberately broken plugin libraries for Tests/capi/test_plugins.c, one per -D flag:
 *   -DNO_ENTRY    exports no nnb_plugin_init
 *   -DHALF_BAD    registers a good activation, then one with a NULL backward
 *   -DFAILS       registers a good activation, then returns an error itself
 *   -DOLD_ABI     registers with abi_version 0
 *   -DGEMM_THEN_FAILS  registers a GEMM through the exported nnb_register_gemm (not the host
 *                 table), then fails: nothing may stay registered once the library is unloaded
 *   -DNESTED      calls nnb_plugin_load from its entry point; registers "nested_refused" when
 *                 that call was refused with NNB_ERR_PLUGIN (instead of deadlocking)
 *   -DBAD_STATUS  returns 12345, which is no status code
 *   -DGEMM_ONLY   registers only a GEMM (plain loops), so it has no name to be a duplicate by
 * The last three variants and GEMM_THEN_FAILS link against libnnbackprop.
 */
#include "nnbackprop_plugin.h"

#if defined(GEMM_THEN_FAILS) || defined(GEMM_ONLY)
/* C = alpha op(A) op(B) + beta C, row-major: the reference loops. */
static void loop_sgemm(void *ctx, int ta, int tb, size_t M, size_t N, size_t K, float alpha, const float *A, size_t lda,
                       const float *B, size_t ldb, float beta, float *C, size_t ldc) {
    (void)ctx;
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            float acc = 0;
            for (size_t k = 0; k < K; k++) acc += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
            C[i * ldc + j] = alpha * acc + (beta == 0 ? 0 : beta * C[i * ldc + j]);
        }
}
#endif

#ifndef NO_ENTRY
static void ident_forward(void *ctx, float *y, const float *x, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}
static void ident_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)ctx, (void)x, (void)y;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i];
}

#endif

#ifdef NO_ENTRY
int nnb_not_the_entry_point(void);
int nnb_not_the_entry_point(void) { return 0; }
#else
nnb_status nnb_plugin_init(const nnb_plugin_host *host);
nnb_status nnb_plugin_init(const nnb_plugin_host *host) {
    nnb_activation_plugin p = {sizeof p, NNB_PLUGIN_ABI_VERSION, "bad_plugin_first", ident_forward, ident_backward, NULL};
#if defined(GEMM_THEN_FAILS)
    nnb_gemm_plugin g = {sizeof g, NNB_PLUGIN_ABI_VERSION, "soon_unmapped", loop_sgemm, NULL};
    (void)host;
    nnb_register_gemm(&g);
    return NNB_ERR_PLUGIN;
#elif defined(NESTED)
    if (nnb_plugin_load("libbad_nested.so") != NNB_ERR_PLUGIN) return NNB_ERR_INTERNAL;
    p.name = "nested_refused";
    return host->register_activation(&p);
#elif defined(BAD_STATUS)
    (void)host, (void)p;
    return (nnb_status)12345;
#elif defined(GEMM_ONLY)
    nnb_gemm_plugin g = {sizeof g, NNB_PLUGIN_ABI_VERSION, "loops", loop_sgemm, NULL};
    (void)p;
    return host->register_gemm(&g);
#elif defined(OLD_ABI)
    p.abi_version = 0;
    return host->register_activation(&p);
#else
    nnb_status s = host->register_activation(&p);
    if (s != NNB_OK) return s;
#ifdef HALF_BAD
    p.name = "bad_plugin_second";
    p.backward = NULL;
    return host->register_activation(&p);
#else
    return NNB_ERR_INVALID_ARGUMENT; /* FAILS */
#endif
#endif
}
#endif
