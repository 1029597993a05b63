/* The dispatcher: every supported path can be selected and reported; unsupported ones refuse. */
#include "check_util.h"

#include <string.h>

#ifdef NNK_HAVE_OPENMP
#include <omp.h>
#endif

/* CKernels' internal thread rule (dispatch/threads.c), linked into this check. */
int nnk_threads_for(double work, double min_work_per_thread);

void nnk_check_dispatch(nnk_check *c) {
    const nnk_isa saved = nnk_isa_active();
    check_record(c, nnk_isa_supported(NNK_ISA_SCALAR) == 1, "dispatch: scalar must always be supported");
    check_record(c, nnk_isa_supported(saved), "dispatch: active path %s must be supported", nnk_isa_name(saved));
    const nnk_isa all[] = {NNK_ISA_SCALAR, NNK_ISA_AVX2, NNK_ISA_AVX512, NNK_ISA_NEON};
    for (int i = 0; i < 4; i++) {
        const int rc = nnk_set_isa(all[i]);
        if (nnk_isa_supported(all[i]))
            check_record(c, rc == 0 && nnk_isa_active() == all[i], "dispatch: set_isa(%s) must select it",
                         nnk_isa_name(all[i]));
        else
            check_record(c, rc == -1 && nnk_isa_active() != all[i],
                         "dispatch: set_isa(%s) must refuse an unsupported path", nnk_isa_name(all[i]));
        check_record(c, nnk_isa_from_name(nnk_isa_name(all[i])) == (int)all[i], "dispatch: name round trip %s",
                     nnk_isa_name(all[i]));
    }
    check_record(c, nnk_isa_from_name("sse9") == -1 && nnk_isa_from_name(NULL) == -1,
                 "dispatch: unknown ISA names must parse to -1");
#if defined(__x86_64__)
    check_record(c, !nnk_isa_supported(NNK_ISA_NEON), "dispatch: NEON must not be reported on x86-64");
#endif
#if defined(__aarch64__)
    check_record(c, nnk_isa_supported(NNK_ISA_NEON) && !nnk_isa_supported(NNK_ISA_AVX2),
                 "dispatch: arm64 has NEON and no AVX2");
#endif
    nnk_set_isa(saved);

    const int threads = nnk_get_num_threads();
    check_record(c, threads >= 1, "threads: count %d must be >= 1", threads);
    nnk_set_num_threads(3);
    check_record(c, nnk_get_num_threads() == (nnk_openmp_enabled() ? 3 : 1), "threads: set 3 -> get %d",
                 nnk_get_num_threads());
    const int after3 = nnk_get_num_threads();
    check_record(c, nnk_set_num_threads(0) == -1 && nnk_get_num_threads() == after3,
                 "threads: set 0 is refused and changes nothing, got %d", nnk_get_num_threads());
    check_record(c, nnk_max_threads() >= 256, "threads: the cap %d is at least 256", nnk_max_threads());
    check_record(c, nnk_set_num_threads(nnk_max_threads()) == 0, "threads: the cap itself is accepted");
    check_record(c, nnk_set_num_threads(nnk_max_threads() + 1) == -1 && nnk_set_num_threads(100000) == -1,
                 "threads: past the cap is refused");

    /* nnk_set_thread_cap: the calling thread's kernels use at most the cap; others keep all. */
    if (nnk_openmp_enabled()) {
        nnk_set_num_threads(3);
        check_record(c, nnk_threads_for(1e12, 1) == 3, "thread cap: none, 3 threads");
        check_record(c, nnk_set_thread_cap(1) == 0 && nnk_threads_for(1e12, 1) == 1, "thread cap 1: 1 thread");
        check_record(c, nnk_set_thread_cap(5) == 1 && nnk_threads_for(1e12, 1) == 3, "thread cap 5 above 3 threads: 3");
        nnk_set_thread_cap(2);
        int other = -1;
#ifdef NNK_HAVE_OPENMP
#pragma omp parallel num_threads(2)
        if (omp_get_thread_num() == 1) other = nnk_threads_for(1e12, 1);
#endif
        check_record(c, nnk_threads_for(1e12, 1) == 2 && (other == 3 || other == -1),
                     "thread cap 2 is this thread's: here 2, another thread %d", other);
        check_record(c, nnk_set_thread_cap(-4) == 2 && nnk_threads_for(1e12, 1) == 3 && nnk_set_thread_cap(0) == 0,
                     "thread cap: a negative cap is none");
    }
    nnk_set_num_threads(threads);
}
