/*
 * Thread count and OpenMP policy. Kernels pass num_threads(nnk_threads_for(...)) on every
 * parallel region instead of relying on omp_set_num_threads, whose setting belongs to the
 * calling thread only: a count set from one thread must hold for kernels called from any.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "../internal.h"

#include <stdlib.h>
#include <unistd.h> /* sysconf */

#ifdef NNK_HAVE_OPENMP
#include <omp.h>
#else
#warning "CKernels: no OpenMP runtime found (install libomp-dev or set NNB_OPENMP_PREFIX); building single-threaded"
#endif

static int nnk_threads_ = 1;

/*
 * The thread cap. Each OpenMP worker reserves its stack (4 MiB by default) and libomp keeps
 * per-thread tables, so an absurd count (100000) exhausts memory instead of running: 256
 * workers reserve about 1 GiB of address space, which fits a 4 GB limit. Machines with more
 * hardware threads than that may use all of them.
 */
int nnk_max_threads(void) {
    enum { FLOOR = 256 };
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    return online > FLOOR && online < (1L << 20) ? (int)online : FLOOR;
}

/*
 * Wait policy. After a parallel region libomp's workers spin for KMP_BLOCKTIME (200 ms by
 * default) before sleeping; spinning workers starve any other thread pool in the process
 * (numpy's OpenBLAS, PyTorch) on small machines. Sleeping at once (0) makes every region pay a
 * futex wake-up: measured with back-to-back batch-32 GEMMs on 2 threads, blocktime 0 ran
 * 2-3x slower than 1 ms, while 1 ms and 5 ms matched 200 ms. So: 1 ms, unless the user set
 * KMP_BLOCKTIME or OMP_WAIT_POLICY. This only takes effect when CKernels is the first to start
 * the OpenMP runtime in the process (it reads the environment once, at start-up).
 */
__attribute__((constructor)) static void nnk_threads_init(void) {
#ifdef NNK_HAVE_OPENMP
    if (getenv("KMP_BLOCKTIME") == NULL && getenv("OMP_WAIT_POLICY") == NULL) setenv("KMP_BLOCKTIME", "1", 0);
    nnk_threads_ = omp_get_max_threads(); /* honours OMP_NUM_THREADS */
    if (nnk_threads_ < 1) nnk_threads_ = 1;
    if (nnk_threads_ > nnk_max_threads()) nnk_threads_ = nnk_max_threads();
#endif
}

int nnk_openmp_enabled(void) {
#ifdef NNK_HAVE_OPENMP
    return 1;
#else
    return 0;
#endif
}

int nnk_get_num_threads(void) { return __atomic_load_n(&nnk_threads_, __ATOMIC_RELAXED); }

int nnk_set_num_threads(int n) {
    if (n < 1 || n > nnk_max_threads()) return -1;
#ifdef NNK_HAVE_OPENMP
    __atomic_store_n(&nnk_threads_, n, __ATOMIC_RELAXED);
#endif
    return 0;
}

/* nnk_set_thread_cap's per-thread cap (0: none). */
static _Thread_local int nnk_thread_cap_ = 0;

int nnk_set_thread_cap(int cap) {
    const int old = nnk_thread_cap_;
    nnk_thread_cap_ = cap > 0 ? cap : 0;
    return old;
}

int nnk_threads_for(double work, double min_work_per_thread) {
    const int all = nnk_get_num_threads();
    const int max = nnk_thread_cap_ > 0 && nnk_thread_cap_ < all ? nnk_thread_cap_ : all;
    if (max <= 1 || work < 2 * min_work_per_thread) return 1;
    const double fit = work / min_work_per_thread;
    return fit < max ? (int)fit : max;
}

int nnk_threads_for_stream(double bytes, double min_bytes_per_thread) {
    const int all = nnk_get_num_threads();
    if (all <= 1 || bytes < 2 * min_bytes_per_thread) return 1;
    const double fit = bytes / min_bytes_per_thread;
    return fit < all ? (int)fit : all;
}
