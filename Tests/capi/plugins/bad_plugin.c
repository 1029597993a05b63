/*
 * Deliberately broken plugin libraries for Tests/capi/test_plugins.c, one per -D flag:
 *   -DNO_ENTRY    exports no nnb_plugin_init
 *   -DHALF_BAD    registers a good activation, then one with a NULL backward
 *   -DFAILS       registers a good activation, then returns an error itself
 *   -DOLD_ABI     registers with abi_version 0
 */
#include "nnbackprop_plugin.h"

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
#ifdef OLD_ABI
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
