/*
 * The machine's measured FP32 FMA peak, for benchmarks that quote kernels as a fraction of it
 * (nnb bench --cnn, nnb-kernels bench-conv). Each thread runs a loop of independent vector FMAs
 * on the active ISA's widest registers: 12 accumulators, enough to cover an FMA's latency on two
 * pipes (4 cycles x 2 on Zen 4 and recent Intel cores, 4 x 4 on Apple cores with NEON's narrower
 * vectors reaches most of it). Not a kernel: nothing in training calls it.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "../internal.h"

#include <time.h>

#if NNK_X86_64
#include <immintrin.h>
#endif
#if NNK_ARM64
#include <arm_neon.h>
#endif

static double now_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The 12 accumulators of each loop are summed into a volatile local, so the compiler keeps
 * every FMA (one per call: threads share nothing). */

#define PEAK_LOOP(V, SET, FMA, ADD, STORE_FIRST, LANES)                                          \
    V a0 = SET(1.0f), a1 = SET(1.1f), a2 = SET(1.2f), a3 = SET(1.3f), a4 = SET(1.4f), a5 = SET(1.5f); \
    V a6 = SET(1.6f), a7 = SET(1.7f), a8 = SET(1.8f), a9 = SET(1.9f), a10 = SET(2.0f), a11 = SET(2.1f); \
    const V m = SET(0.999999f), c = SET(1e-7f);                                                   \
    for (long i = 0; i < iters; i++) {                                                            \
        a0 = FMA(a0, m, c); a1 = FMA(a1, m, c); a2 = FMA(a2, m, c); a3 = FMA(a3, m, c);            \
        a4 = FMA(a4, m, c); a5 = FMA(a5, m, c); a6 = FMA(a6, m, c); a7 = FMA(a7, m, c);            \
        a8 = FMA(a8, m, c); a9 = FMA(a9, m, c); a10 = FMA(a10, m, c); a11 = FMA(a11, m, c);        \
    }                                                                                             \
    V s = ADD(ADD(ADD(a0, a1), ADD(a2, a3)), ADD(ADD(a4, a5), ADD(a6, a7)));                      \
    s = ADD(s, ADD(ADD(a8, a9), ADD(a10, a11)));                                                  \
    volatile float sink = STORE_FIRST(s);                                                         \
    (void)sink;                                                                                   \
    return 12.0 * 2.0 * (LANES) * (double)iters;

#if NNK_X86_64
NNK_TARGET_AVX512 static double fma_loop_avx512(long iters) {
    PEAK_LOOP(__m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_cvtss_f32, 16)
}
NNK_TARGET_AVX2 static double fma_loop_avx2(long iters) {
    PEAK_LOOP(__m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_cvtss_f32, 8)
}
#endif
#if NNK_ARM64
static double fma_loop_neon(long iters) {
#define NEON_FMA(acc, a, b) vfmaq_f32(b, acc, a)
#define NEON_FIRST(v) vgetq_lane_f32(v, 0)
    PEAK_LOOP(float32x4_t, vdupq_n_f32, NEON_FMA, vaddq_f32, NEON_FIRST, 4)
#undef NEON_FMA
#undef NEON_FIRST
}
#endif
static double fma_loop_scalar(long iters) {
#define S_SET(x) (x)
#define S_FMA(acc, a, b) ((acc) * (a) + (b))
#define S_ADD(a, b) ((a) + (b))
#define S_FIRST(v) (v)
    PEAK_LOOP(float, S_SET, S_FMA, S_ADD, S_FIRST, 1)
#undef S_SET
#undef S_FMA
#undef S_ADD
#undef S_FIRST
}

static double fma_loop(nnk_isa isa, long iters) {
    switch (isa) {
#if NNK_X86_64
    case NNK_ISA_AVX512: return fma_loop_avx512(iters);
    case NNK_ISA_AVX2: return fma_loop_avx2(iters);
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return fma_loop_neon(iters);
#endif
    default: return fma_loop_scalar(iters);
    }
}

/* One thread's FLOP/s: the best of 5 timed runs of about seconds / 5 each. */
static double thread_peak(nnk_isa isa, double seconds) {
    long iters = 1 << 16;
    double t0 = now_seconds();
    fma_loop(isa, iters);
    double dt = now_seconds() - t0;
    while (dt < 2e-3 && iters < (1L << 40)) {
        iters *= 4;
        t0 = now_seconds();
        fma_loop(isa, iters);
        dt = now_seconds() - t0;
    }
    const double want = seconds / 5 > 1e-3 ? seconds / 5 : 1e-3;
    iters = (long)((double)iters * want / dt) + 1;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        t0 = now_seconds();
        const double flops = fma_loop(isa, iters);
        const double rate = flops / (now_seconds() - t0);
        if (rate > best) best = rate;
    }
    return best;
}

double nnk_fma_peak_gflops(int threads, double seconds) {
    if (threads < 1 || !nnk_openmp_enabled()) threads = 1; /* without OpenMP the region is one thread */
    if (threads > nnk_max_threads()) threads = nnk_max_threads();
    if (!(seconds > 0)) seconds = 0.2;
    const nnk_isa isa = nnk_isa_active();
    double total = 0;
    NNK_PRAGMA(omp parallel num_threads(threads) reduction(+ : total))
    { total += thread_peak(isa, seconds); }
    return total * 1e-9;
}
