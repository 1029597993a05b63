/*
 * int8 inference products (the quant folder). Activations are uint8 with a zero point, weights int8
 * with one scale per output channel, products summed exactly in int32 (VNNI's vpdpbusd: four
 * u8 x s8 products added into each int32 lane, no saturation). Being exact, every path gives
 * the reference's int32 sums bit for bit, and the fp32 epilogue is written with the same fused
 * operations everywhere, so the whole layer is bitwise the same on every path.
 *
 * Packed weights: panels of NNK_QNR = 32 output channels; in a panel, depth group g (depths
 * 4g..4g+3) holds 32 x 4 bytes, channel c's four at [g * 128 + 4c]. Depth is padded to a
 * multiple of 4 and channels to a multiple of 32, both with zero weights, so a padded
 * activation byte multiplies 0.
 */
#ifndef NNK_QUANT_INTERNAL_H
#define NNK_QUANT_INTERNAL_H

#include "../internal.h"

enum { NNK_QMR = 8, NNK_QNR = 32 };

/* c (m <= 8 rows, n <= 32 columns, ldc) = the int32 sums of rows a[i * lda ...] (groups
 * depth groups of 4 bytes) with one packed panel b. */
typedef void (*nnk_qtile_fn)(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc,
                             size_t m, size_t n);

/* q (n) = clamp(round(x * inv_scale + zero_point), 0, 255), rounding to nearest even (fused
 * multiply-add, then clamped in float, so NaN becomes 0 and huge values 0 or 255). */
typedef void (*nnk_quantize_fn)(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
/* y (n) = fma((float)(acc - zero_point * colsum), scale, bias) per column: the dequantized
 * layer output before its activation. */
typedef void (*nnk_dequantize_fn)(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                                  const float *scale, const float *bias);

void nnk_qtile_ref(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                   size_t n);
void nnk_quantize_u8_ref(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
void nnk_dequantize_ref(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                        const float *scale, const float *bias);
#if NNK_X86_64
void nnk_qtile_avx2(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                    size_t n);
void nnk_quantize_u8_avx2(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
void nnk_dequantize_avx2(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                         const float *scale, const float *bias);
void nnk_qtile_avx512_vnni(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc,
                           size_t m, size_t n);
void nnk_quantize_u8_avx512(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
void nnk_dequantize_avx512(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                           const float *scale, const float *bias);
#endif
#if NNK_ARM64
void nnk_qtile_neon(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                    size_t n);
void nnk_quantize_u8_neon(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point);
void nnk_dequantize_neon(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                         const float *scale, const float *bias);
#endif

#endif
