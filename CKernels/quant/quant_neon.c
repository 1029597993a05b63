/* NEON int8 kernels (arm64, baseline ARMv8-A: no dot-product extension needed): the tile widens
 * bytes to 16 bits and multiply-accumulates into int32 lanes (vmlal_s16), one accumulator per
 * channel with a lane per depth of the group, summed across lanes at the end; the quantize and
 * dequantize row kernels use the reference's fused operations and rounding. Integer sums are
 * exact and the float steps are the same operations, so every output is bitwise the reference's. */
#include "quant_internal.h"

#if NNK_ARM64
#include <arm_neon.h>
#include <string.h>

/* One row's sums for 8 channels of the panel (bytes cb * 32 .. cb * 32 + 31 of each group). */
static void row8_neon(size_t groups, const uint8_t *a, const int8_t *b, size_t cb, int32_t out[8]) {
    int32x4_t acc[8];
    for (int c = 0; c < 8; c++) acc[c] = vdupq_n_s32(0);
    b += cb * 32;
    for (size_t g = 0; g < groups; g++, b += 4 * NNK_QNR) {
        uint32_t four;
        memcpy(&four, a + 4 * g, sizeof four);
        /* a0 a1 a2 a3 twice, as 16-bit lanes (bytes 0..255 fit) */
        const int16x8_t av = vreinterpretq_s16_u16(vmovl_u8(vreinterpret_u8_u32(vdup_n_u32(four))));
        const int16x4_t alo = vget_low_s16(av);
        const int8x16_t w0 = vld1q_s8(b), w1 = vld1q_s8(b + 16); /* channels 0-3, 4-7: four depths each */
        const int16x8_t w00 = vmovl_s8(vget_low_s8(w0)), w01 = vmovl_s8(vget_high_s8(w0));
        const int16x8_t w10 = vmovl_s8(vget_low_s8(w1)), w11 = vmovl_s8(vget_high_s8(w1));
        acc[0] = vmlal_s16(acc[0], alo, vget_low_s16(w00));
        acc[1] = vmlal_s16(acc[1], alo, vget_high_s16(w00));
        acc[2] = vmlal_s16(acc[2], alo, vget_low_s16(w01));
        acc[3] = vmlal_s16(acc[3], alo, vget_high_s16(w01));
        acc[4] = vmlal_s16(acc[4], alo, vget_low_s16(w10));
        acc[5] = vmlal_s16(acc[5], alo, vget_high_s16(w10));
        acc[6] = vmlal_s16(acc[6], alo, vget_low_s16(w11));
        acc[7] = vmlal_s16(acc[7], alo, vget_high_s16(w11));
    }
    const int32x4_t s03 = vpaddq_s32(vpaddq_s32(acc[0], acc[1]), vpaddq_s32(acc[2], acc[3]));
    const int32x4_t s47 = vpaddq_s32(vpaddq_s32(acc[4], acc[5]), vpaddq_s32(acc[6], acc[7]));
    vst1q_s32(out, s03);
    vst1q_s32(out + 4, s47);
}

void nnk_qtile_neon(size_t groups, const uint8_t *a, size_t lda, const int8_t *b, int32_t *c, size_t ldc, size_t m,
                    size_t n) {
    for (size_t i = 0; i < m; i++) {
        int32_t row[NNK_QNR];
        for (size_t cb = 0; cb * 8 < n; cb++) row8_neon(groups, a + i * lda, b, cb, row + cb * 8);
        memcpy(c + i * ldc, row, n * sizeof(int32_t));
    }
}

void nnk_quantize_u8_neon(uint8_t *q, const float *x, size_t n, float inv_scale, float zero_point) {
    const float32x4_t s = vdupq_n_f32(inv_scale), z = vdupq_n_f32(zero_point);
    const float32x4_t lo = vdupq_n_f32(0.0f), hi = vdupq_n_f32(255.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint16x4_t h[2];
        for (int k = 0; k < 2; k++) {
            float32x4_t t = vfmaq_f32(z, vld1q_f32(x + i + 4 * k), s);
            t = vminq_f32(vmaxnmq_f32(t, lo), hi); /* maxnm(NaN, 0) = 0, as fmaxf */
            h[k] = vmovn_u32(vreinterpretq_u32_s32(vcvtnq_s32_f32(t))); /* round to nearest even */
        }
        vst1_u8(q + i, vmovn_u16(vcombine_u16(h[0], h[1])));
    }
    if (i < n) nnk_quantize_u8_ref(q + i, x + i, n - i, inv_scale, zero_point);
}

void nnk_dequantize_neon(float *y, const int32_t *acc, size_t n, int32_t zero_point, const int32_t *colsum,
                         const float *scale, const float *bias) {
    const int32x4_t z = vdupq_n_s32(zero_point);
    size_t j = 0;
    for (; j + 4 <= n; j += 4) {
        const int32x4_t t = vmlsq_s32(vld1q_s32(acc + j), z, vld1q_s32(colsum + j));
        const float32x4_t b = bias ? vld1q_f32(bias + j) : vdupq_n_f32(0.0f);
        vst1q_f32(y + j, vfmaq_f32(b, vcvtq_f32_s32(t), vld1q_f32(scale + j)));
    }
    if (j < n) nnk_dequantize_ref(y + j, acc + j, n - j, zero_point, colsum + j, scale + j, bias ? bias + j : NULL);
}
#endif
