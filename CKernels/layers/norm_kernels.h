/*
 * Shared by the normalization sources only (not part of CKernels.h).
 *
 * The two reductions under batch and layer norm, one span at a time, behind the kernel table
 * (dispatch/table.h) with the scalar twins of norm_ref.c as the reference entries. They are the
 * part worth lanes: a double-precision reduction is a serial add chain that no compiler may
 * reorder into vectors on its own, while the elementwise normalise loops in norm.c are plain
 * independent float loops that clang, the package's compiler, vectorises at -O2 (at the baseline
 * width, SSE2 or NEON, as CKernels builds without -march; GCC's -O2 leaves them scalar, which only
 * the Makefile's check builds see). Those stay portable C: they are a load, two or three float
 * operations and a store per element, bound by memory once the data leaves the cache.
 *
 *   norm_moments  acc[0] += sum x[i], acc[1] += sum x[i]^2 over x (n), in double (each square
 *                 exact): the one-pass mean and biased variance E[x^2] - E[x]^2. In double the
 *                 cancellation costs about (mean / std)^2 2^-53 relative, below float's own
 *                 resolution of x for any mean / std < 2^20.
 *   norm_dot      acc[0] += sum g[i], acc[1] += sum g[i] (x[i] - mean) over (n), g = dy * gamma
 *                 (gamma (n), or NULL for g = dy): the two row sums of the backward. The SIMD
 *                 variants form g and g (x - mean) in float and add them in double; the reference
 *                 does it all in double.
 *
 * Each variant runs a span in one fixed order (lanes, then the lanes' total), so a result depends
 * only on the span, never on the thread that runs it.
 */
#ifndef NNK_NORM_KERNELS_H
#define NNK_NORM_KERNELS_H

#include "../internal.h"

void nnk_norm_moments_ref(const float *x, size_t n, double acc[2]);
void nnk_norm_dot_ref(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]);

#if NNK_X86_64
void nnk_norm_moments_avx2(const float *x, size_t n, double acc[2]);
void nnk_norm_dot_avx2(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]);
void nnk_norm_moments_avx512(const float *x, size_t n, double acc[2]);
void nnk_norm_dot_avx512(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]);
#endif

#if NNK_ARM64
void nnk_norm_moments_neon(const float *x, size_t n, double acc[2]);
void nnk_norm_dot_neon(const float *dy, const float *gamma, const float *x, float mean, size_t n, double acc[2]);
#endif

#endif /* NNK_NORM_KERNELS_H */
