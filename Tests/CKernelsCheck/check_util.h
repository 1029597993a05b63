/* Helpers shared by the check_*.c groups. */
#ifndef NNK_CHECK_UTIL_H
#define NNK_CHECK_UTIL_H

#include "CKernelsCheck.h"
#include "CKernels.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define CHECK_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CHECK_PRINTF(f, a)
#endif

/* Record one assertion; on failure print "FAIL <message>" to stderr and keep the first. */
int check_record(nnk_check *c, int ok, const char *fmt, ...) CHECK_PRINTF(3, 4);

/* splitmix64: a small seeded generator, identical on every platform. */
typedef struct check_rng { uint64_t s; } check_rng;
uint64_t check_rng_next(check_rng *r);
/* Uniform in [lo, hi). */
float check_uniform(check_rng *r, float lo, float hi);
void check_fill(check_rng *r, float *x, size_t n, float lo, float hi);

/* |got - want| <= atol + rtol * |want|; NaN never passes unless both are NaN. */
int check_close(double got, double want, double rtol, double atol);

/* The ISA paths this CPU supports, scalar first; returns how many. */
int check_isas(nnk_isa out[4]);

/* The activations in double, from their definitions (alpha for leaky_relu and elu), for groups
 * that check a kernel's activation through a double-precision model of the whole step. */
#define CHECK_PI 3.14159265358979323846
#define CHECK_SQRT2 1.41421356237309504880
double check_act_d(nnk_act act, double alpha, double x);
double check_sigmoid_d(double x);
/* 2u of GELU-tanh: 0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
double check_gelu_2u_d(double x);

/* Aligned, zeroed scratch that the groups free with check_free. NULL-safe free. */
float *check_alloc(size_t n);
void check_free(void *p);

#endif
