/*
 * An LD_PRELOAD shim that counts malloc calls and prints "MALLOC_CALLS n" at exit, for
 * Tests/alloc/check_steady_state.sh: a training step must not allocate on the heap.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdatomic.h>
static atomic_long mallocs;
static void *(*real_malloc)(size_t);
void *malloc(size_t n) {
    if (!real_malloc) real_malloc = dlsym(RTLD_NEXT, "malloc");
    atomic_fetch_add(&mallocs, 1);
    return real_malloc(n);
}
__attribute__((destructor)) static void report(void) { fprintf(stderr, "MALLOC_CALLS %ld\n", (long)mallocs); }
