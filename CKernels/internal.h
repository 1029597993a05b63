/*
 * Shared by the kernel sources only; not part of the public CKernels.h.
 *
 * ISA-specific code lives in its own files (<op>_avx2.c, <op>_avx512.c, <op>_neon.c). x86
 * files wrap every function in NNK_TARGET_AVX2 / NNK_TARGET_AVX512 so the package builds
 * without -march and one binary runs on any x86-64. They are reached only through the kernel
 * table of their ISA (dispatch/table.h), which is chosen only when the CPU and OS support it;
 * each op's public entry point calls through the active table, whose entries default to the
 * op's _ref twin.
 */
#ifndef NNK_INTERNAL_H
#define NNK_INTERNAL_H

#include "CKernels.h"

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) || defined(_M_X64)
#define NNK_X86_64 1
#define NNK_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define NNK_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#endif
#if defined(__aarch64__)
#define NNK_ARM64 1
#endif

/* OpenMP pragmas that vanish in a build without OpenMP. */
#ifdef NNK_HAVE_OPENMP
#include <omp.h>
#define NNK_PRAGMA(x) _Pragma(#x)
#else
#define NNK_PRAGMA(x)
#endif

/* Inside a parallel region: this thread's share [*begin, *end) of n items, split statically
 * and contiguously. Kernels use it instead of `omp for`, whose static-schedule set-up
 * allocates in libomp on every call; a training step must not touch the heap. */
static inline void nnk_thread_share(size_t n, size_t *begin, size_t *end) {
#ifdef NNK_HAVE_OPENMP
    const size_t t = (size_t)omp_get_thread_num(), nt = (size_t)omp_get_num_threads();
#else
    const size_t t = 0, nt = 1;
#endif
    *begin = n * t / nt;
    *end = n * (t + 1) / nt;
}

/* Runs BODY(i) for i in [0, n) across `threads` threads (a parallel region with static shares),
 * or on the calling thread when threads <= 1, without entering OpenMP. */
#define NNK_PARALLEL_FOR(threads, n, i, BODY)                                                 \
    do {                                                                                      \
        if ((threads) <= 1) {                                                                 \
            for (size_t i = 0; i < (size_t)(n); i++) { BODY; }                                \
        } else {                                                                              \
            NNK_PRAGMA(omp parallel num_threads(threads))                                     \
            {                                                                                 \
                size_t b_, e_;                                                                \
                nnk_thread_share((size_t)(n), &b_, &e_);                                      \
                for (size_t i = b_; i < e_; i++) { BODY; }                                    \
            }                                                                                 \
        }                                                                                     \
    } while (0)

#define NNK_MIN(a, b) ((a) < (b) ? (a) : (b))
#define NNK_MAX(a, b) ((a) > (b) ? (a) : (b))
#define NNK_RESTRICT restrict

/* Threads worth using for `work` units of cost (~flops or elements): 1 below twice the
 * per-thread minimum, else work / minimum threads, at most nnk_get_num_threads() and the
 * calling thread's nnk_set_thread_cap (1 around one-sample inference). */
int nnk_threads_for(double work, double min_work_per_thread);
/* Threads worth using to stream `bytes` of an operand through the cores' caches: like
 * nnk_threads_for but past the calling thread's cap, since a memory-bound product of one
 * sample gains from every core's cache bandwidth (and L2 capacity) where compute-bound
 * kernels of one sample lose to the fork. */
int nnk_threads_for_stream(double bytes, double min_bytes_per_thread);

/* Elementwise kernels split n into chunks of this many elements across threads; fixed so the
 * split (and any reduction order) does not depend on the thread count. */
#define NNK_ELEMWISE_CHUNK 16384
/* Below this many elements an elementwise kernel stays on the calling thread. */
#define NNK_ELEMWISE_PARALLEL_MIN 65536

#endif /* NNK_INTERNAL_H */
