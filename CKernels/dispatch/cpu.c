/*
 * Run-time choice of the SIMD path: CPUID says what the CPU has, XCR0 (xgetbv) says which
 * register state the OS saves on a context switch; AVX-512 is used only when both agree.
 * NNB_ISA=scalar|avx2|avx512|neon forces a path (tests and benchmarks use it). Choosing a path
 * means making its kernel table (table.h) the active one; nnk_isa_active() reads it back from
 * that table, so the two can never disagree.
 */
#include "table.h"

#include <stdlib.h>
#include <string.h>

#if NNK_X86_64
#include <cpuid.h>
#endif

static const char *isa_env_note_ = NULL;

#if NNK_X86_64
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

static int x86_has(nnk_isa isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const int osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, fma = (c >> 12) & 1;
    if (!osxsave || !avx) return 0;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return 0; /* XMM and YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    switch (isa) {
    case NNK_ISA_AVX2: return avx2 && fma;
    case NNK_ISA_AVX512: return avx512f && avx2 && fma && (xcr0 & 0xe6) == 0xe6; /* opmask, ZMM */
    default: return 0;
    }
}
#endif

int nnk_cpu_has_avx512_bf16(void) {
#if NNK_X86_64
    unsigned a, b, c, d;
    if (!x86_has(NNK_ISA_AVX512) || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    const int bw = (b >> 30) & 1; /* the packers' vpermw needs AVX512BW: CPUID.(7, 0):EBX bit 30 */
    if (!bw || !__get_cpuid_count(7, 1, &a, &b, &c, &d)) return 0;
    return (a >> 5) & 1; /* CPUID.(EAX=7, ECX=1):EAX bit 5 */
#else
    return 0;
#endif
}

int nnk_cpu_has_avx512_vnni(void) {
#if NNK_X86_64
    unsigned a, b, c, d;
    if (!x86_has(NNK_ISA_AVX512) || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    /* CPUID.(EAX=7, ECX=0): ECX bit 11 VNNI; EBX bit 30 BW and bit 31 VL, which the row kernels use. */
    return (c >> 11) & 1 && (b >> 30) & 1 && (b >> 31) & 1;
#else
    return 0;
#endif
}

int nnk_isa_supported(nnk_isa isa) {
    switch (isa) {
    case NNK_ISA_SCALAR: return 1;
#if NNK_X86_64
    case NNK_ISA_AVX2:
    case NNK_ISA_AVX512: return x86_has(isa);
#endif
#if NNK_ARM64
    case NNK_ISA_NEON: return 1; /* Advanced SIMD is mandatory on AArch64 */
#endif
    default: return 0;
    }
}

static nnk_isa best_isa(void) {
    if (nnk_isa_supported(NNK_ISA_AVX512)) return NNK_ISA_AVX512;
    if (nnk_isa_supported(NNK_ISA_AVX2)) return NNK_ISA_AVX2;
    if (nnk_isa_supported(NNK_ISA_NEON)) return NNK_ISA_NEON;
    return NNK_ISA_SCALAR;
}

static const char *const isa_names[] = {"scalar", "avx2", "avx512", "neon"};

const char *nnk_isa_name(nnk_isa isa) {
    return (unsigned)isa < sizeof isa_names / sizeof isa_names[0] ? isa_names[isa] : "unknown";
}

int nnk_isa_from_name(const char *name) {
    if (name == NULL) return -1;
    for (int i = 0; i < (int)(sizeof isa_names / sizeof isa_names[0]); i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}

const char *nnk_isa_env_note(void) { return isa_env_note_; }

/* Runs before main (and before any kernel), so nnk_active_table() needs no lock or check. */
__attribute__((constructor)) static void nnk_isa_init(void) {
    nnk_isa isa = best_isa();
    const char *env = getenv("NNB_ISA");
    if (env != NULL && env[0] != '\0') {
        const int asked = nnk_isa_from_name(env);
        if (asked < 0)
            isa_env_note_ = "NNB_ISA names no known path (scalar, avx2, avx512, neon); using the best available";
        else if (!nnk_isa_supported((nnk_isa)asked))
            isa_env_note_ = "NNB_ISA names a path this CPU or OS does not support; using the best available";
        else
            isa = (nnk_isa)asked;
    }
    nnk_kernel_tables_init();
    nnk_kernel_table_active_ = nnk_kernel_table_for(isa);
}

nnk_isa nnk_isa_active(void) { return nnk_active_table()->isa; }

int nnk_set_isa(nnk_isa isa) {
    if (!nnk_isa_supported(isa)) return -1;
    nnk_kernel_table_active_ = nnk_kernel_table_for(isa);
    return 0;
}
