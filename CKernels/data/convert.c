/* Data conversion for the mini-batch gather: 8-bit samples (IDX images) stay bytes in memory
 * and become floats one batch at a time. A plain loop: compilers vectorize it on every target
 * (zero-extend, convert, multiply), so it has no ISA variants and is its own reference. */
#include "../internal.h"

void nnk_u8_to_float(float *restrict y, const uint8_t *restrict x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) y[i] = (float)x[i] * scale;
}
