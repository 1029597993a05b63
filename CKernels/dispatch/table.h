/*
 * The kernel table: every ISA-dependent kernel of CKernels behind one struct of function
 * pointers, one table per ISA (table.c), in the manner of BLIS's bli_cntx_init_<arch>. Each
 * table starts as a copy of the reference table (the *_ref kernels, every CPU) and then
 * overrides the entries its ISA has its own kernel for, so an op without a SIMD variant simply
 * keeps its reference entry. The start-up constructor in cpu.c picks the table once (CPUID,
 * XCR0, NNB_ISA) and nnk_set_isa switches it; each op's public entry point calls through
 * nnk_active_table() and never asks which ISA is running.
 *
 * Internal to CKernels. Adding a SIMD variant of an op means one field here (if the op is new),
 * its reference entry and its override in table.c.
 */
#ifndef NNK_DISPATCH_TABLE_H
#define NNK_DISPATCH_TABLE_H

#include "../internal.h"

struct nnk_gemm_arch; /* gemm/gemm_internal.h */

typedef struct nnk_kernel_table {
    nnk_isa isa; /* what nnk_isa_active() reports while this table is in use */

    /* GEMM: the micro-tile, cache blocking and micro-kernels the blocked loop runs with. */
    const struct nnk_gemm_arch *gemm;
    /* The bf16 GEMM (NNK_PRECISION_BF16), or NULL where this ISA and CPU have none. */
    const struct nnk_gemm_arch *gemm_bf16;

    /* Activations on one span (activations/act_simd.h): y (n) = f(x (n)), and
     * dx (n) = dy (n) * f'(x (n)) with x and y the forward's input and output. */
    void (*act_forward)(nnk_act act, float alpha, float *y, const float *x, size_t n);
    void (*act_backward)(nnk_act act, float alpha, float *dx, const float *dy, const float *x,
                         const float *y, size_t n);
    /* The softmax family's row helpers: max of x (n), n >= 1; and y (n) = exp(x (n) - shift)
     * (y may be NULL), returning the sum of those exps in double. */
    float (*vec_max)(const float *x, size_t n);
    double (*vec_exp_sum)(float *y, const float *x, float shift, size_t n);

    /* Optimizer steps on one span of a flat buffer (optim/optim_kernels.h), bitwise the same on
     * every table, and the sum of squares of one chunk (n <= NNK_ELEMWISE_CHUNK). */
    void (*sgd_step)(float *param, float *velocity, const float *grad, size_t n,
                     const nnk_sgd_params *p, int first_step);
    void (*adam_step)(float *param, float *m, float *v, const float *grad, size_t n,
                      const nnk_adam_params *p, int64_t step);
    void (*rmsprop_step)(float *param, float *sq, float *buf, float *gavg, const float *grad,
                         size_t n, const nnk_rmsprop_params *p);
    void (*adagrad_step)(float *param, float *sum, const float *grad, size_t n,
                         const nnk_adagrad_params *p, int64_t step);
    double (*sum_squares_chunk)(const float *x, size_t n);
    void (*scale)(float *x, size_t n, float s);

    /* int8 inference (quant/quant_internal.h): the int32 tile of the int8 GEMM, and the row
     * kernels that quantize activations and dequantize sums. */
    void (*qtile)(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                  size_t n);
    void (*quantize_u8)(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
    void (*dequantize)(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                       const float *scale, const float *bias);

    /* Batch / layer norm reductions on one span (layers/norm_kernels.h): acc += (sum x, sum x^2)
     * of x (n); acc += (sum g, sum g (x - mean)) with g = dy * gamma (gamma may be NULL). */
    void (*norm_moments)(const float *x, size_t n, double acc[2]);
    void (*norm_dot)(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]);
} nnk_kernel_table;

/* The table in use: the reference table until cpu.c's start-up constructor chooses, so a
 * kernel called even earlier (another constructor) still has one. A plain load on every call;
 * written only at start-up and by nnk_set_isa, which may not run while kernels do. */
extern const nnk_kernel_table *nnk_kernel_table_active_;
static inline const nnk_kernel_table *nnk_active_table(void) { return nnk_kernel_table_active_; }

/* Fills the table of every ISA this build has kernels for. Called once, by the start-up
 * constructor in cpu.c, before any table is chosen. */
void nnk_kernel_tables_init(void);

/* The table for `isa`, one this build has kernels for and the CPU supports (the caller checks
 * nnk_isa_supported first). */
const nnk_kernel_table *nnk_kernel_table_for(nnk_isa isa);

/* 1 when the CPU and OS run AVX-512 and the CPU has AVX512_BF16 (vdpbf16ps) / AVX512_VNNI
 * (vpdpbusd); cpu.c. */
int nnk_cpu_has_avx512_bf16(void);
int nnk_cpu_has_avx512_vnni(void);

#endif /* NNK_DISPATCH_TABLE_H */
