/*
 * One kernel table per ISA (see table.h). The reference table lists every entry; an ISA's table
 * is a copy of it with that ISA's own kernels written over the entries it has, so the init
 * functions below read as the list of what each ISA accelerates.
 */
#include "table.h"

#include "../activations/act_simd.h"
#include "../gemm/gemm_internal.h"
#include "../layers/norm_kernels.h"
#include "../optim/optim_kernels.h"
#include "../quant/quant_internal.h"

/* The scalar reference kernels: the source of truth the tests hold every ISA to, and the
 * NNK_ISA_SCALAR path. */
static const nnk_kernel_table table_ref = {
    .isa = NNK_ISA_SCALAR,
    .gemm = &nnk_gemm_arch_scalar,
    .act_forward = nnk_act_forward_ref,
    .act_backward = nnk_act_backward_ref,
    .vec_max = nnk_vec_max_ref,
    .vec_exp_sum = nnk_vec_exp_sum_ref,
    .sgd_step = nnk_sgd_step_ref,
    .adam_step = nnk_adam_step_ref,
    .rmsprop_step = nnk_rmsprop_step_ref,
    .adagrad_step = nnk_adagrad_step_ref,
    .sum_squares_chunk = nnk_sum_squares_chunk_ref,
    .scale = nnk_scale_ref,
    .norm_moments = nnk_norm_moments_ref,
    .norm_dot = nnk_norm_dot_ref,
    .qtile = nnk_qtile_ref,
    .quantize_u8 = nnk_quantize_u8_ref,
    .dequantize = nnk_dequantize_ref,
};

const nnk_kernel_table *nnk_kernel_table_active_ = &table_ref;

#if NNK_X86_64
static nnk_kernel_table table_avx2, table_avx512;

/* AVX2 + FMA: everything but RMSprop and Adagrad, which keep the reference loops; int8 by vpmaddwd. */
static void init_avx2(nnk_kernel_table *t) {
    *t = table_ref;
    t->isa = NNK_ISA_AVX2;
    t->gemm = &nnk_gemm_arch_avx2;
    t->act_forward = nnk_act_forward_avx2;
    t->act_backward = nnk_act_backward_avx2;
    t->vec_max = nnk_vec_max_avx2;
    t->vec_exp_sum = nnk_vec_exp_sum_avx2;
    t->sgd_step = nnk_sgd_step_avx2;
    t->adam_step = nnk_adam_step_avx2;
    t->sum_squares_chunk = nnk_sum_squares_chunk_avx2;
    t->scale = nnk_scale_avx2;
    t->norm_moments = nnk_norm_moments_avx2;
    t->norm_dot = nnk_norm_dot_avx2;
    t->qtile = nnk_qtile_avx2;
    t->quantize_u8 = nnk_quantize_u8_avx2;
    t->dequantize = nnk_dequantize_avx2;
}

/* AVX-512F: the same entries as AVX2, in 16-lane kernels; the bf16 GEMM where the CPU has
 * AVX512_BF16 and the int8 kernels where it has AVX512_VNNI (and BW). */
static void init_avx512(nnk_kernel_table *t) {
    *t = table_ref;
    t->isa = NNK_ISA_AVX512;
    t->gemm = &nnk_gemm_arch_avx512;
    t->act_forward = nnk_act_forward_avx512;
    t->act_backward = nnk_act_backward_avx512;
    t->vec_max = nnk_vec_max_avx512;
    t->vec_exp_sum = nnk_vec_exp_sum_avx512;
    t->sgd_step = nnk_sgd_step_avx512;
    t->adam_step = nnk_adam_step_avx512;
    t->sum_squares_chunk = nnk_sum_squares_chunk_avx512;
    t->scale = nnk_scale_avx512;
    t->norm_moments = nnk_norm_moments_avx512;
    t->norm_dot = nnk_norm_dot_avx512;
    t->qtile = nnk_qtile_avx2; /* without VNNI: the AVX2 int8 kernels */
    t->quantize_u8 = nnk_quantize_u8_avx2;
    t->dequantize = nnk_dequantize_avx2;
    if (nnk_cpu_has_avx512_bf16()) t->gemm_bf16 = &nnk_gemm_arch_avx512_bf16;
    if (nnk_cpu_has_avx512_vnni()) {
        t->qtile = nnk_qtile_avx512_vnni;
        t->quantize_u8 = nnk_quantize_u8_avx512;
        t->dequantize = nnk_dequantize_avx512;
    }
}
#endif

#if NNK_ARM64
static nnk_kernel_table table_neon;

/* NEON: the same entries as AVX2, in 4-lane kernels. */
static void init_neon(nnk_kernel_table *t) {
    *t = table_ref;
    t->isa = NNK_ISA_NEON;
    t->gemm = &nnk_gemm_arch_neon;
    t->act_forward = nnk_act_forward_neon;
    t->act_backward = nnk_act_backward_neon;
    t->vec_max = nnk_vec_max_neon;
    t->vec_exp_sum = nnk_vec_exp_sum_neon;
    t->sgd_step = nnk_sgd_step_neon;
    t->adam_step = nnk_adam_step_neon;
    t->sum_squares_chunk = nnk_sum_squares_chunk_neon;
    t->scale = nnk_scale_neon;
    t->norm_moments = nnk_norm_moments_neon;
    t->norm_dot = nnk_norm_dot_neon;
    t->qtile = nnk_qtile_neon;
    t->quantize_u8 = nnk_quantize_u8_neon;
    t->dequantize = nnk_dequantize_neon;
}
#endif

/* Filling a table only stores pointers (and asks CPUID), so it is safe whether or not the CPU has the ISA;
 * nnk_kernel_table_for's callers make sure a table is only used where it is supported. */
void nnk_kernel_tables_init(void) {
#if NNK_X86_64
    init_avx2(&table_avx2);
    init_avx512(&table_avx512);
#endif
#if NNK_ARM64
    init_neon(&table_neon);
#endif
}

const nnk_kernel_table *nnk_kernel_table_for(nnk_isa isa) {
    switch (isa) {
#if NNK_X86_64
    case NNK_ISA_AVX2: return &table_avx2;
    case NNK_ISA_AVX512: return &table_avx512;
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return &table_neon;
#endif
    default: return &table_ref;
    }
}
