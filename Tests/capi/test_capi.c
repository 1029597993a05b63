/*
 * test_capi.c: tests of every call in include/nnbackprop.h, through libnnbackprop.so.
 *
 * Build and run from the repository root, after scripts/build-lib.sh:
 *
 *   cc -std=c99 -Wall -Wextra -Werror -O1 -g -Iinclude Tests/capi/test_capi.c \
 *      -Lbuild/lib -lnnbackprop -Wl,-rpath,"$PWD/build/lib" -pthread -lm -o build/test_capi
 *   build/test_capi                                   # one line per check, then "N passed, N failed"
 *   valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=1 build/test_capi
 *
 * `build/test_capi GROUP` runs one group (see `groups` in main). NNB_TEST_QUICK=1 shortens the
 * thread tests (for valgrind). Exits 0 when every check passed.
 *
 * What is asserted comes from the header's comments (statuses, who owns what, which calls may
 * run at once) or from arithmetic done here (parameter counts, losses recomputed from the
 * model's own outputs, an SGD step on a 1-1 linear model); nothing is copied from a run.
 */
#define _POSIX_C_SOURCE 200809L

#include "nnbackprop_plugin.h" /* and nnbackprop.h */

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* Harness                                                                                    */
/* ---------------------------------------------------------------------------------------- */

static int g_passed, g_failed;
static pthread_mutex_t g_print_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_quick;
static char g_tmpdir[256];

static const char *status_name(int s) {
    static const char *names[] = {
        "NNB_OK", "NNB_ERR_NULL_ARGUMENT", "NNB_ERR_INVALID_ARGUMENT", "NNB_ERR_SHAPE_MISMATCH",
        "NNB_ERR_INVALID_DATA", "NNB_ERR_CAPACITY", "NNB_ERR_IO", "NNB_ERR_CORRUPT_FILE",
        "NNB_ERR_UNSUPPORTED", "NNB_ERR_UNKNOWN_NAME", "NNB_ERR_BUSY", "NNB_ERR_VERSION",
        "NNB_ERR_NOT_READY", "NNB_ERR_INTERNAL", "NNB_ERR_DUPLICATE", "NNB_ERR_PLUGIN", "NNB_ERR_DIVERGED",
    };
    if (s < 0 || s >= (int)(sizeof names / sizeof names[0])) return "(not a status)";
    return names[s];
}

/* Records one check and prints "ok   - what" or "FAIL - what: detail". Returns ok. */
static int check(int ok, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&g_print_lock);
    if (ok) g_passed++;
    else g_failed++;
    printf("%s - %s\n", ok ? "ok  " : "FAIL", what);
    fflush(stdout);
    pthread_mutex_unlock(&g_print_lock);
    return ok;
}

/* Checks that `got` is one of the n statuses in `want` and, for a failure status, that
 * nnb_last_error() says something. Call it directly on the result of the call under test, so
 * that nothing runs between the call and nnb_last_error(). */
static int expect_one_of(nnb_status got, const nnb_status *want, int n, const char *what) {
    const char *msg = nnb_last_error();
    char wanted[256] = "";
    int match = 0;
    for (int i = 0; i < n; i++) {
        if (got == want[i]) match = 1;
        if (i) strncat(wanted, " or ", sizeof wanted - strlen(wanted) - 1);
        strncat(wanted, status_name(want[i]), sizeof wanted - strlen(wanted) - 1);
    }
    if (!match) {
        return check(0, "%s: got %s (%d), want %s; last error \"%s\"", what, status_name(got), (int)got, wanted,
                     msg ? msg : "(NULL)");
    }
    if (got == NNB_OK) return check(1, "%s -> NNB_OK", what);
    if (msg == NULL || msg[0] == '\0') {
        return check(0, "%s -> %s, but nnb_last_error() is %s", what, status_name(got), msg ? "empty" : "NULL");
    }
    return check(1, "%s -> %s (\"%.200s\")", what, status_name(got), msg);
}

static int expect(nnb_status got, nnb_status want, const char *what) {
    return expect_one_of(got, &want, 1, what);
}

static int expect2(nnb_status got, nnb_status want1, nnb_status want2, const char *what) {
    nnb_status w[2] = {want1, want2};
    return expect_one_of(got, w, 2, what);
}

static int all_finite(const float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A small deterministic generator for test data (xorshift64*), independent of the library. */
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;
static void rng_seed(uint64_t s) { g_rng = s ? s : 1; }
static double rng_uniform(void) {
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return (double)((g_rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static double rng_normal(void) {
    double u = rng_uniform(), v = rng_uniform();
    if (u < 1e-300) u = 1e-300;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* Gaussian blobs: `classes` centres in `cols` dimensions, rows assigned round-robin.
 * x is (rows, cols), y is (rows, 1) class indices. Caller frees both. */
static void make_blobs(size_t rows, size_t cols, int classes, float spread, uint64_t seed, float **x, float **y) {
    rng_seed(seed);
    float *centres = malloc(sizeof(float) * (size_t)classes * cols);
    for (size_t i = 0; i < (size_t)classes * cols; i++) centres[i] = (float)(4.0 * rng_uniform() - 2.0);
    *x = malloc(sizeof(float) * rows * cols);
    *y = malloc(sizeof(float) * rows);
    for (size_t r = 0; r < rows; r++) {
        int c = (int)(r % (size_t)classes);
        (*y)[r] = (float)c;
        for (size_t j = 0; j < cols; j++) (*x)[r * cols + j] = centres[(size_t)c * cols + j] + spread * (float)rng_normal();
    }
    free(centres);
}

static float *random_floats(size_t n, uint64_t seed) {
    rng_seed(seed);
    float *v = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) v[i] = (float)(2.0 * rng_uniform() - 1.0);
    return v;
}

/* Zeros for calls with mismatched sizes: the library may read rows * cols (or rows * y_cols)
 * floats before it compares them with the model, so the buffer must hold that many. */
static const float ZEROS[1 << 14];

static const float XOR_X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_Y[4] = {0, 1, 1, 0};

static nnb_model *new_model(const char *description, uint64_t seed) {
    nnb_model *m = NULL;
    nnb_status s = nnb_model_create_from_string(&m, description, seed);
    if (s != NNB_OK || m == NULL) {
        check(0, "nnb_model_create_from_string(\"%s\"): %s, \"%s\"", description, status_name(s), nnb_last_error());
        return NULL;
    }
    return m;
}

static int64_t model_outputs(const nnb_model *m) {
    nnb_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (nnb_model_get_info(m, &info) != NNB_OK) return -1;
    return info.outputs;
}

/* rows x outputs predictions in a fresh buffer (NULL, and a failed check, on error). */
static float *predict_alloc(const nnb_model *m, const float *x, size_t rows, size_t cols) {
    int64_t outputs = model_outputs(m);
    if (outputs <= 0) {
        check(0, "predict_alloc: nnb_model_get_info failed: \"%s\"", nnb_last_error());
        return NULL;
    }
    size_t n = rows * (size_t)outputs;
    float *out = malloc(sizeof(float) * n);
    nnb_status s = nnb_predict(m, x, rows, cols, out, n);
    if (s != NNB_OK) {
        check(0, "nnb_predict(%zu rows): %s, \"%s\"", rows, status_name(s), nnb_last_error());
        free(out);
        return NULL;
    }
    return out;
}

static void tmp_path(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", g_tmpdir, name); }

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *read_file(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)*size + 1);
    if (fread(buf, 1, (size_t)*size, f) != (size_t)*size) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

static int write_file(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

/* ---------------------------------------------------------------------------------------- */
/* Version, status strings, runtime                                                           */
/* ---------------------------------------------------------------------------------------- */

static void test_version(void) {
    check(nnb_version() == NNB_VERSION_NUMBER, "nnb_version() %d == NNB_VERSION_NUMBER %d", nnb_version(),
          NNB_VERSION_NUMBER);
    check(nnb_abi_version() == NNB_ABI_VERSION, "nnb_abi_version() %d == NNB_ABI_VERSION %d", nnb_abi_version(),
          NNB_ABI_VERSION);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", NNB_VERSION_MAJOR, NNB_VERSION_MINOR, NNB_VERSION_PATCH);
    const char *got = nnb_version_string();
    check(got != NULL && strcmp(got, want) == 0, "nnb_version_string() \"%s\" == \"%s\"", got ? got : "(NULL)", want);
    check(NNB_VERSION_NUMBER == NNB_VERSION_MAJOR * 10000 + NNB_VERSION_MINOR * 100 + NNB_VERSION_PATCH,
          "NNB_VERSION_NUMBER is MAJOR*10000 + MINOR*100 + PATCH");
}

static void test_status_strings(void) {
    for (int s = NNB_OK; s <= NNB_ERR_DIVERGED; s++) {
        const char *str = nnb_status_string((nnb_status)s);
        const char *name = status_name(s);
        check(str != NULL && strncmp(str, name, strlen(name)) == 0 && strlen(str) > strlen(name),
              "nnb_status_string(%d) \"%s\" starts with %s and says more", s, str ? str : "(NULL)", name);
    }
    const char *bad = nnb_status_string((nnb_status)999);
    check(bad != NULL && bad[0] != '\0', "nnb_status_string(999) is a non-empty string: \"%s\"", bad ? bad : "(NULL)");
    bad = nnb_status_string((nnb_status)-1);
    check(bad != NULL && bad[0] != '\0', "nnb_status_string(-1) is a non-empty string: \"%s\"", bad ? bad : "(NULL)");
}

static void test_runtime(void) {
    int original = nnb_get_num_threads();
    check(original >= 1, "nnb_get_num_threads() %d >= 1", original);
    expect(nnb_set_num_threads(3), NNB_OK, "nnb_set_num_threads(3)");
    check(nnb_get_num_threads() == (nnb_openmp_enabled() ? 3 : 1), "nnb_get_num_threads() == 3 after setting 3 (1 without OpenMP; got %d)",
          nnb_get_num_threads());
    expect(nnb_set_num_threads(1), NNB_OK, "nnb_set_num_threads(1)");
    check(nnb_get_num_threads() == 1, "nnb_get_num_threads() == 1 after setting 1 (got %d)", nnb_get_num_threads());
    expect(nnb_set_num_threads(-1), NNB_ERR_INVALID_ARGUMENT, "nnb_set_num_threads(-1)");
    check(nnb_get_num_threads() == 1, "a rejected nnb_set_num_threads leaves the count (got %d)", nnb_get_num_threads());
    expect(nnb_set_num_threads(original), NNB_OK, "nnb_set_num_threads(original)");
    check(nnb_get_num_threads() == original, "thread count restored to %d", original);

    const char *isa = nnb_isa();
    int known = isa && (!strcmp(isa, "avx512") || !strcmp(isa, "avx2") || !strcmp(isa, "neon") || !strcmp(isa, "scalar"));
    check(known, "nnb_isa() \"%s\" is avx512, avx2, neon or scalar", isa ? isa : "(NULL)");
    int omp = nnb_openmp_enabled();
    check(omp == 0 || omp == 1, "nnb_openmp_enabled() is 0 or 1 (%d)", omp);
}

/* nnb_last_error() belongs to the calling thread. */
struct last_error_probe {
    char initial[256];
    char after[256];
    nnb_status status;
};

static void *last_error_thread(void *arg) {
    struct last_error_probe *p = arg;
    snprintf(p->initial, sizeof p->initial, "%s", nnb_last_error() ? nnb_last_error() : "(NULL)");
    p->status = nnb_model_create_from_string(NULL, "2-2", 0);
    snprintf(p->after, sizeof p->after, "%s", nnb_last_error() ? nnb_last_error() : "(NULL)");
    return NULL;
}

static void test_last_error_threads(void) {
    nnb_model *m = (nnb_model *)&m;
    expect(nnb_model_create_from_string(&m, "2-0", 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create_from_string(\"2-0\")");
    check(m == NULL, "*out is NULL after a failed create");
    char mine[256];
    snprintf(mine, sizeof mine, "%s", nnb_last_error());

    struct last_error_probe p;
    memset(&p, 0, sizeof p);
    pthread_t t;
    pthread_create(&t, NULL, last_error_thread, &p);
    pthread_join(t, NULL);
    check(strcmp(p.initial, "") == 0, "a new thread's nnb_last_error() is \"\" (got \"%s\")", p.initial);
    check(p.status == NNB_ERR_NULL_ARGUMENT && p.after[0] != '\0' && strcmp(p.after, mine) != 0,
          "the other thread gets its own message (\"%s\")", p.after);
    check(strcmp(nnb_last_error(), mine) == 0, "this thread's message is untouched by the other thread's error");
}

/* ---------------------------------------------------------------------------------------- */
/* Creating models                                                                            */
/* ---------------------------------------------------------------------------------------- */

static nnb_layer_spec dense(int64_t units, const char *activation) {
    nnb_layer_spec s;
    nnb_layer_spec_init(&s);
    s.type = NNB_LAYER_DENSE;
    s.units = units;
    s.activation = activation;
    return s;
}

static void test_layer_spec_init(void) {
    nnb_layer_spec s;
    memset(&s, 0xAB, sizeof s);
    nnb_layer_spec_init(&s);
    check(s.struct_size == sizeof s, "nnb_layer_spec_init sets struct_size = %zu (got %u)", sizeof s, s.struct_size);
    check(s.activation == NULL || strcmp(s.activation, "identity") == 0,
          "nnb_layer_spec_init: activation is identity (NULL or \"identity\")");
    check(s.alpha == 0.0f && s.rate == 0.0f, "nnb_layer_spec_init: alpha and rate are 0");
}

static void test_create_from_specs(void) {
    nnb_layer_spec layers[3];
    layers[0] = dense(8, "tanh");
    nnb_layer_spec_init(&layers[1]);
    layers[1].type = NNB_LAYER_DROPOUT;
    layers[1].rate = 0.5f;
    layers[2] = dense(2, NULL);

    nnb_model *m = NULL;
    if (!expect(nnb_model_create(&m, 2, layers, 3, 7), NNB_OK, "nnb_model_create(2, [dense 8 tanh, dropout 0.5, dense 2])"))
        return;
    nnb_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    expect(nnb_model_get_info(m, &info), NNB_OK, "nnb_model_get_info");
    check(info.inputs == 2 && info.outputs == 2 && info.layers == 3 && info.parameters == 42,
          "info of 2-[8 tanh, dropout, 2]: inputs 2, outputs 2, layers 3, parameters 2*8+8+8*2+2 = 42 (got %lld, %lld, "
          "%lld, %lld)",
          (long long)info.inputs, (long long)info.outputs, (long long)info.layers, (long long)info.parameters);

    /* Dropout is the identity at inference: repeated predicts agree, row by row too (a mask
     * drawn per call would make them differ). */
    float *p1 = predict_alloc(m, XOR_X, 4, 2), *p1b = predict_alloc(m, XOR_X, 4, 2);
    if (p1 && p1b) {
        float row[2];
        int same = memcmp(p1, p1b, sizeof(float) * 8) == 0 && all_finite(p1, 8);
        for (int r = 0; r < 4 && same; r++) {
            nnb_predict(m, XOR_X + 2 * r, 1, 2, row, 2);
            same = fabsf(row[0] - p1[2 * r]) < 1e-6f && fabsf(row[1] - p1[2 * r + 1]) < 1e-6f;
        }
        check(same, "dropout is the identity at inference (repeated predicts agree)");
    }
    free(p1);
    free(p1b);

    nnb_layer_spec two[2] = {layers[0], layers[2]};
    nnb_model *m2 = NULL;
    expect(nnb_model_create(&m2, 2, two, 2, 7), NNB_OK, "nnb_model_create(2, [dense 8 tanh, dense 2])");
    nnb_model *m3 = new_model("2-8:tanh-2", 7);
    float *p2 = m2 ? predict_alloc(m2, XOR_X, 4, 2) : NULL, *p3 = m3 ? predict_alloc(m3, XOR_X, 4, 2) : NULL;
    if (p2 && p3)
        check(memcmp(p2, p3, sizeof(float) * 8) == 0,
              "nnb_model_create and nnb_model_create_from_string(\"2-8:tanh-2\") with one seed give one model");
    free(p2);
    free(p3);
    nnb_model_free(m3);

    /* The library copies the specs: changing them afterwards changes nothing. */
    layers[0].units = 1000;
    layers[0].activation = "nosuch";
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    nnb_model_get_info(m2, &info);
    check(info.parameters == 42, "nnb_model_create copied the specs (parameters still 42 after editing them)");
    layers[0] = dense(8, "tanh");

    /* A standalone activation layer, and softmax / log_softmax as ACTIVATION layers. */
    nnb_layer_spec act[3] = {dense(4, NULL), dense(3, NULL), dense(0, NULL)};
    act[1].type = NNB_LAYER_ACTIVATION;
    act[1].units = 0;
    act[1].activation = "relu";
    act[2] = dense(3, NULL);
    nnb_model *ma = NULL;
    expect(nnb_model_create(&ma, 5, act, 3, 1), NNB_OK, "nnb_model_create(5, [dense 4, relu, dense 3])");
    if (ma) {
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        nnb_model_get_info(ma, &info);
        check(info.layers == 3 && info.parameters == 5 * 4 + 4 + 4 * 3 + 3,
              "activation layer counts as a layer and has no parameters (layers %lld, parameters %lld)",
              (long long)info.layers, (long long)info.parameters);
    }
    nnb_model_free(ma);
    const char *soft[] = {"softmax", "log_softmax"};
    for (int i = 0; i < 2; i++) {
        nnb_layer_spec sl[2] = {dense(3, NULL), dense(0, NULL)};
        nnb_layer_spec_init(&sl[1]);
        sl[1].type = NNB_LAYER_ACTIVATION;
        sl[1].activation = soft[i];
        nnb_model *ms = NULL;
        char what[128];
        snprintf(what, sizeof what, "nnb_model_create(4, [dense 3, %s activation layer])", soft[i]);
        if (expect(nnb_model_create(&ms, 4, sl, 2, 1), NNB_OK, what)) {
            float xin[8] = {0.1f, -0.2f, 0.3f, 0.5f, 1, 2, -3, 0.25f};
            float *p = predict_alloc(ms, xin, 2, 4);
            if (p) {
                int ok = 1;
                for (int r = 0; r < 2; r++) {
                    double sum = 0;
                    for (int c = 0; c < 3; c++) sum += i == 0 ? p[r * 3 + c] : exp(p[r * 3 + c]);
                    ok &= fabs(sum - 1.0) < 1e-5;
                }
                check(ok, "%s layer rows sum to 1 (as probabilities)", soft[i]);
            }
            free(p);
        }
        nnb_model_free(ms);

        nnb_layer_spec bad = dense(3, soft[i]);
        ms = (nnb_model *)&ms;
        snprintf(what, sizeof what, "nnb_model_create(4, [dense 3 with fused %s]) (ACTIVATION only)", soft[i]);
        expect2(nnb_model_create(&ms, 4, &bad, 1, 1), NNB_ERR_INVALID_ARGUMENT, NNB_ERR_UNKNOWN_NAME, what);
        check(ms == NULL, "*out is NULL after the failed create");
    }

    /* Every activation name the header lists, fused into a dense layer. */
    const char *acts[] = {"identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        nnb_layer_spec l[2] = {dense(6, acts[i]), dense(2, NULL)};
        if (i == 4 || i == 5) l[0].alpha = 0.2f;
        nnb_model *mm = NULL;
        char what[128];
        snprintf(what, sizeof what, "nnb_model_create(3, [dense 6 %s, dense 2])", acts[i]);
        if (expect(nnb_model_create(&mm, 3, l, 2, 5), NNB_OK, what)) {
            float *p = predict_alloc(mm, XOR_X, 2, 3);
            if (p) check(all_finite(p, 4), "%s model predicts finite values", acts[i]);
            free(p);
        }
        nnb_model_free(mm);
    }

    /* Errors. */
    nnb_model *out = (nnb_model *)&out;
    expect(nnb_model_create(NULL, 2, layers, 3, 0), NNB_ERR_NULL_ARGUMENT, "nnb_model_create(out=NULL)");
    expect(nnb_model_create(&out, 2, NULL, 3, 0), NNB_ERR_NULL_ARGUMENT, "nnb_model_create(layers=NULL, n=3)");
    check(out == NULL, "*out is NULL after nnb_model_create fails");
    expect(nnb_model_create(&out, 2, layers, 0, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(n_layers=0)");
    expect(nnb_model_create(&out, 0, layers, 3, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(inputs=0)");
    expect(nnb_model_create(&out, -4, layers, 3, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(inputs=-4)");
    nnb_layer_spec bad[2] = {layers[0], layers[2]};
    bad[0].units = 0;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(dense units=0)");
    bad[0].units = -3;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(dense units=-3)");
    bad[0] = dense(8, "nosuch");
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_UNKNOWN_NAME, "nnb_model_create(activation \"nosuch\")");
    bad[0] = dense(8, "relu");
    bad[0].type = (nnb_layer_type)99;
    expect2(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, NNB_ERR_UNKNOWN_NAME,
            "nnb_model_create(layer type 99)");
    nnb_layer_spec_init(&bad[0]);
    bad[0].type = NNB_LAYER_DROPOUT;
    bad[0].rate = 1.0f;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(dropout rate 1.0)");
    bad[0].rate = -0.1f;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(dropout rate -0.1)");
    bad[0].rate = NAN;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_INVALID_ARGUMENT, "nnb_model_create(dropout rate NaN)");
    bad[0] = dense(8, "relu");
    bad[0].struct_size = sizeof(nnb_layer_spec) + 8;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_VERSION, "nnb_model_create(spec struct_size too large)");
    bad[0].struct_size = 0;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_VERSION, "nnb_model_create(spec struct_size 0)");
    bad[0] = dense(8, "relu");
    bad[1].struct_size = sizeof(nnb_layer_spec) + 64;
    expect(nnb_model_create(&out, 2, bad, 2, 0), NNB_ERR_VERSION,
           "nnb_model_create(second spec's struct_size too large)");
    check(out == NULL, "*out stays NULL through the failed creates");

    nnb_model_free(m);
    nnb_model_free(m2);
}

static void test_create_from_string(void) {
    struct { const char *desc; int64_t inputs, outputs, layers, params; } ok[] = {
        {"2-8-2", 2, 2, 2, 2 * 8 + 8 + 8 * 2 + 2},
        {"2-8:tanh-1", 2, 1, 2, 2 * 8 + 8 + 8 + 1},
        {"784-256:relu-128:relu-10", 784, 10, 3, 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10},
        {"5-7:leaky_relu-3:gelu-4:sigmoid", 5, 4, 3, 5 * 7 + 7 + 7 * 3 + 3 + 3 * 4 + 4},
        {"1-1", 1, 1, 1, 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        nnb_model *m = NULL;
        char what[160];
        snprintf(what, sizeof what, "nnb_model_create_from_string(\"%s\")", ok[i].desc);
        if (!expect(nnb_model_create_from_string(&m, ok[i].desc, 1), NNB_OK, what)) continue;
        nnb_model_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        expect(nnb_model_get_info(m, &info), NNB_OK, "nnb_model_get_info");
        check(info.inputs == ok[i].inputs && info.outputs == ok[i].outputs && info.layers == ok[i].layers &&
                  info.parameters == ok[i].params,
              "\"%s\": inputs %lld outputs %lld layers %lld parameters %lld (want %lld %lld %lld %lld)", ok[i].desc,
              (long long)info.inputs, (long long)info.outputs, (long long)info.layers, (long long)info.parameters,
              (long long)ok[i].inputs, (long long)ok[i].outputs, (long long)ok[i].layers, (long long)ok[i].params);

        /* describe round-trips through create_from_string: same shape, and with the same seed
         * the same weights. */
        char buf[256];
        size_t needed = 0;
        if (expect(nnb_model_describe(m, buf, sizeof buf, &needed), NNB_OK, "nnb_model_describe")) {
            check(needed == strlen(buf) + 1, "describe: *needed (%zu) == strlen + 1 (\"%s\")", needed, buf);
            nnb_model *m2 = NULL;
            snprintf(what, sizeof what, "create_from_string(describe(\"%.40s\") = \"%.60s\")", ok[i].desc, buf);
            if (expect(nnb_model_create_from_string(&m2, buf, 1), NNB_OK, what)) {
                char buf2[256];
                nnb_model_describe(m2, buf2, sizeof buf2, NULL);
                check(strcmp(buf, buf2) == 0, "describe round-trips: \"%s\" == \"%s\"", buf, buf2);
                size_t cols = (size_t)info.inputs;
                float *x = random_floats(3 * cols, 11);
                float *p1 = predict_alloc(m, x, 3, cols), *p2 = predict_alloc(m2, x, 3, cols);
                if (p1 && p2)
                    check(memcmp(p1, p2, sizeof(float) * 3 * (size_t)info.outputs) == 0,
                          "model rebuilt from its description with the same seed predicts bit-identically");
                free(p1);
                free(p2);
                free(x);
            }
            nnb_model_free(m2);
        }
        nnb_model_free(m);
    }

    /* Seeds: the same seed gives the same weights, another seed other weights. */
    nnb_model *a = new_model("4-16:relu-3", 123), *b = new_model("4-16:relu-3", 123), *c = new_model("4-16:relu-3", 124);
    if (a && b && c) {
        float *x = random_floats(20, 5);
        float *pa = predict_alloc(a, x, 5, 4), *pb = predict_alloc(b, x, 5, 4), *pc = predict_alloc(c, x, 5, 4);
        if (pa && pb && pc) {
            check(memcmp(pa, pb, sizeof(float) * 15) == 0, "same seed, same initial weights");
            check(memcmp(pa, pc, sizeof(float) * 15) != 0, "another seed, other initial weights");
        }
        free(pa);
        free(pb);
        free(pc);
        free(x);
    }
    nnb_model_free(a);
    nnb_model_free(b);
    nnb_model_free(c);

    /* Errors. */
    struct { const char *desc; nnb_status want, alt; } bad[] = {
        /* "abc" is not a size; the library also reads a bare name as an activation layer. */
        {"784-abc", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_UNKNOWN_NAME},
        {"10-5:nosuch", NNB_ERR_UNKNOWN_NAME, NNB_ERR_UNKNOWN_NAME},
        {"", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"784", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10--5", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10-5-", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"0-5", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10-0", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10-5:", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_UNKNOWN_NAME},
        {"10-5x", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10-99999999999999999999999", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_INVALID_ARGUMENT},
        {"10-5:softmax", NNB_ERR_INVALID_ARGUMENT, NNB_ERR_UNKNOWN_NAME},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nnb_model *m = (nnb_model *)&m;
        char what[160];
        snprintf(what, sizeof what, "nnb_model_create_from_string(\"%s\")", bad[i].desc);
        expect2(nnb_model_create_from_string(&m, bad[i].desc, 0), bad[i].want, bad[i].alt, what);
        check(m == NULL, "*out is NULL after create_from_string(\"%s\") fails", bad[i].desc);
        if (m != NULL && m != (nnb_model *)&m) nnb_model_free(m);
    }
    nnb_model *m = NULL;
    expect(nnb_model_create_from_string(NULL, "2-2", 0), NNB_ERR_NULL_ARGUMENT, "nnb_model_create_from_string(out=NULL)");
    expect(nnb_model_create_from_string(&m, NULL, 0), NNB_ERR_NULL_ARGUMENT,
           "nnb_model_create_from_string(description=NULL)");
}

static void test_info_and_describe(void) {
    nnb_model *m = new_model("2-8:tanh-2", 3);
    if (!m) return;
    nnb_model_info info;
    expect(nnb_model_get_info(NULL, &info), NNB_ERR_NULL_ARGUMENT, "nnb_model_get_info(model=NULL)");
    expect(nnb_model_get_info(m, NULL), NNB_ERR_NULL_ARGUMENT, "nnb_model_get_info(info=NULL)");
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info + 8;
    expect(nnb_model_get_info(m, &info), NNB_ERR_VERSION, "nnb_model_get_info(struct_size too large)");
    info.struct_size = 0;
    expect(nnb_model_get_info(m, &info), NNB_ERR_VERSION, "nnb_model_get_info(struct_size 0)");
    /* An older caller's smaller struct: the library fills what fits and nothing beyond. */
    memset(&info, 0, sizeof info);
    info.struct_size = (uint32_t)offsetof(nnb_model_info, parameters);
    info.parameters = -7;
    if (expect(nnb_model_get_info(m, &info), NNB_OK, "nnb_model_get_info(struct_size without the last field)"))
        check(info.inputs == 2 && info.outputs == 2 && info.layers == 2 && info.parameters == -7,
              "the shorter info struct is filled up to its size and not beyond (parameters left at -7: %lld)",
              (long long)info.parameters);

    char buf[64];
    size_t needed = 0;
    expect(nnb_model_describe(NULL, buf, sizeof buf, &needed), NNB_ERR_NULL_ARGUMENT, "nnb_model_describe(model=NULL)");
    expect(nnb_model_describe(m, NULL, 16, &needed), NNB_ERR_NULL_ARGUMENT, "nnb_model_describe(buf=NULL, capacity 16)");
    if (expect(nnb_model_describe(m, buf, sizeof buf, &needed), NNB_OK, "nnb_model_describe(capacity 64)")) {
        size_t len = strlen(buf);
        check(needed == len + 1, "describe: needed %zu == strlen(\"%s\") + 1", needed, buf);
        needed = 0;
        expect(nnb_model_describe(m, buf, len, &needed), NNB_ERR_CAPACITY, "nnb_model_describe(capacity strlen, no room for NUL)");
        check(needed == len + 1, "describe reports the size needed (%zu) when the capacity is too small", needed);
        expect(nnb_model_describe(m, buf, 1, NULL), NNB_ERR_CAPACITY, "nnb_model_describe(capacity 1, needed=NULL)");
        char exact[64];
        expect(nnb_model_describe(m, exact, len + 1, NULL), NNB_OK, "nnb_model_describe(capacity exactly strlen + 1, needed=NULL)");
        /* The header does not say what (NULL, 0, &needed) does: a size query that succeeds, or
         * CAPACITY / NULL_ARGUMENT. Any of them, as long as *needed is right when it is set. */
        needed = 0;
        nnb_status q = nnb_model_describe(m, NULL, 0, &needed);
        check((q == NNB_OK && needed == len + 1) || (q == NNB_ERR_CAPACITY && needed == len + 1) || q == NNB_ERR_NULL_ARGUMENT,
              "nnb_model_describe(buf=NULL, capacity 0, &needed) as a size query: %s, needed %zu", status_name(q), needed);
    }
    nnb_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Training                                                                                   */
/* ---------------------------------------------------------------------------------------- */

static void test_train_options_init(void) {
    nnb_train_options o;
    memset(&o, 0xAB, sizeof o);
    nnb_train_options_init(&o);
    check(o.struct_size == sizeof o, "nnb_train_options_init: struct_size %u == sizeof %zu", o.struct_size, sizeof o);
    check(o.epochs == 10 && o.batch_size == 32, "defaults: epochs 10, batch_size 32 (got %d, %d)", o.epochs, o.batch_size);
    check(o.loss == NULL || strcmp(o.loss, "cross_entropy") == 0, "default loss cross_entropy (\"%s\")", o.loss ? o.loss : "NULL");
    check(o.optimizer == NULL || strcmp(o.optimizer, "adam") == 0, "default optimizer adam (\"%s\")",
          o.optimizer ? o.optimizer : "NULL");
    check(o.schedule == NULL || strcmp(o.schedule, "constant") == 0, "default schedule constant");
    check(o.learning_rate == 1e-3f && o.momentum == 0 && o.nesterov == 0,
          "defaults: learning_rate 1e-3, momentum 0, nesterov 0 (got %g, %g, %d)", o.learning_rate, o.momentum, o.nesterov);
    /* The header says "default 0 (adamw: 0.01)"; a library can only tell "not set" from 0 with a
     * sentinel, so -1 ("the optimizer's default") is accepted too. */
    check(o.weight_decay == 0 || o.weight_decay == -1, "default weight_decay 0 or -1 = the optimizer's default (got %g)",
          o.weight_decay);
    check(o.beta1 == 0.9f && o.beta2 == 0.999f && o.eps == 1e-8f, "defaults: beta1 0.9, beta2 0.999, eps 1e-8");
    check(o.label_smoothing == 0 && o.huber_delta == 1.0f && o.step_size == 10 && o.warmup_epochs == 0 &&
              o.clip_norm == 0 && o.validation_split == 0,
          "defaults: label_smoothing 0, huber_delta 1, step_size 10, warmup 0, clip_norm 0, validation_split 0");
    check(o.shuffle == 1 && o.seed == 0 && o.early_stopping_patience == 0 && o.restore_best == 1,
          "defaults: shuffle 1, seed 0, early stopping off, restore_best 1");
    check(o.on_epoch == NULL && o.user_data == NULL, "defaults: no callback, no user data");
}

static void test_train_errors(void) {
    nnb_model *m = new_model("4-8:relu-3", 9);
    if (!m) return;
    float *x, *y;
    make_blobs(60, 4, 3, 0.3f, 17, &x, &y);
    float *before = predict_alloc(m, x, 60, 4);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 1;
    nnb_epoch_report last;
    memset(&last, 0, sizeof last);
    last.struct_size = sizeof last;

    expect(nnb_train(NULL, x, 60, 4, y, 1, &o, &last), NNB_ERR_NULL_ARGUMENT, "nnb_train(model=NULL)");
    expect(nnb_train(m, NULL, 60, 4, y, 1, &o, &last), NNB_ERR_NULL_ARGUMENT, "nnb_train(x=NULL)");
    expect(nnb_train(m, x, 60, 4, NULL, 1, &o, &last), NNB_ERR_NULL_ARGUMENT, "nnb_train(y=NULL)");
    expect(nnb_train(m, x, 60, 4, y, 1, NULL, &last), NNB_ERR_NULL_ARGUMENT, "nnb_train(options=NULL)");
    expect(nnb_train(m, x, 0, 4, y, 1, &o, &last), NNB_ERR_INVALID_ARGUMENT, "nnb_train(rows=0)");
    expect(nnb_train(m, x, 60, 3, y, 1, &o, &last), NNB_ERR_SHAPE_MISMATCH, "nnb_train(cols 3 for a 4-input model)");
    expect(nnb_train(m, ZEROS, 60, 5, y, 1, &o, &last), NNB_ERR_SHAPE_MISMATCH, "nnb_train(cols 5 for a 4-input model)");
    expect2(nnb_train(m, x, 60, 0, y, 1, &o, &last), NNB_ERR_SHAPE_MISMATCH, NNB_ERR_INVALID_ARGUMENT, "nnb_train(cols=0)");
    expect(nnb_train(m, x, 60, 4, ZEROS, 2, &o, &last), NNB_ERR_SHAPE_MISMATCH,
           "nnb_train(cross_entropy, y_cols 2 for 3 outputs)");
    expect2(nnb_train(m, x, 60, 4, y, 0, &o, &last), NNB_ERR_SHAPE_MISMATCH, NNB_ERR_INVALID_ARGUMENT, "nnb_train(y_cols=0)");

    float *xbad = malloc(sizeof(float) * 240), *ybad = malloc(sizeof(float) * 60);
    memcpy(xbad, x, sizeof(float) * 240);
    xbad[37 * 4 + 2] = NAN;
    expect(nnb_train(m, xbad, 60, 4, y, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(NaN in x[37, 2])");
    xbad[37 * 4 + 2] = INFINITY;
    expect(nnb_train(m, xbad, 60, 4, y, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(+inf in x[37, 2])");
    memcpy(ybad, y, sizeof(float) * 60);
    ybad[59] = NAN;
    expect(nnb_train(m, x, 60, 4, ybad, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(NaN in y[59])");
    ybad[59] = 3;
    expect(nnb_train(m, x, 60, 4, ybad, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(class index 3 for 3 outputs)");
    ybad[59] = -1;
    expect(nnb_train(m, x, 60, 4, ybad, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(class index -1)");
    ybad[59] = 1.5f;
    expect(nnb_train(m, x, 60, 4, ybad, 1, &o, &last), NNB_ERR_INVALID_DATA, "nnb_train(class index 1.5)");

    nnb_train_options b = o;
    b.loss = "bce";
    expect(nnb_train(m, x, 60, 4, y, 1, &b, &last), NNB_ERR_SHAPE_MISMATCH, "nnb_train(bce, y_cols 1 for 3 outputs)");
    b = o;
    b.loss = "mse";
    expect(nnb_train(m, x, 60, 4, y, 1, &b, &last), NNB_ERR_SHAPE_MISMATCH, "nnb_train(mse, y_cols 1 for 3 outputs)");

    struct { const char *field; nnb_status want; } cases[] = {
        {"epochs=0", NNB_ERR_INVALID_ARGUMENT},          {"epochs=-1", NNB_ERR_INVALID_ARGUMENT},
        {"batch_size=0", NNB_ERR_INVALID_ARGUMENT},      {"batch_size=-5", NNB_ERR_INVALID_ARGUMENT},
        {"learning_rate=-1", NNB_ERR_INVALID_ARGUMENT},  {"learning_rate=NaN", NNB_ERR_INVALID_ARGUMENT},
        {"validation_split=1", NNB_ERR_INVALID_ARGUMENT}, {"validation_split=-0.1", NNB_ERR_INVALID_ARGUMENT},
        {"label_smoothing=1.5", NNB_ERR_INVALID_ARGUMENT}, {"beta1=1", NNB_ERR_INVALID_ARGUMENT},
        {"loss=nosuch", NNB_ERR_UNKNOWN_NAME},           {"optimizer=nosuch", NNB_ERR_UNKNOWN_NAME},
        {"schedule=nosuch", NNB_ERR_UNKNOWN_NAME},       {"struct_size too large", NNB_ERR_VERSION},
        {"struct_size=0", NNB_ERR_VERSION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nnb_train_options t = o;
        switch (i) {
        case 0: t.epochs = 0; break;
        case 1: t.epochs = -1; break;
        case 2: t.batch_size = 0; break;
        case 3: t.batch_size = -5; break;
        case 4: t.learning_rate = -1; break;
        case 5: t.learning_rate = NAN; break;
        case 6: t.validation_split = 1; break;
        case 7: t.validation_split = -0.1f; break;
        case 8: t.label_smoothing = 1.5f; break;
        case 9: t.beta1 = 1; break;
        case 10: t.loss = "nosuch"; break;
        case 11: t.optimizer = "nosuch"; break;
        case 12: t.schedule = "nosuch"; break;
        case 13: t.struct_size = sizeof t + 16; break;
        case 14: t.struct_size = 0; break;
        }
        char what[128];
        snprintf(what, sizeof what, "nnb_train(%s)", cases[i].field);
        if (i == 0) /* zero epochs: nothing to do (OK) or out of range; the header does not say */
            expect2(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_ERR_INVALID_ARGUMENT, NNB_OK, what);
        else
            expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), cases[i].want, what);
        snprintf(what, sizeof what, "nnb_compile(%s)", cases[i].field);
        if (i == 0 || i == 1 || i == 6 || i == 7) continue; /* fields nnb_compile may not look at */
        expect(nnb_compile(m, &t), cases[i].want, what);
    }

    float *after = predict_alloc(m, x, 60, 4);
    if (before && after)
        check(memcmp(before, after, sizeof(float) * 180) == 0, "failed nnb_train / nnb_compile calls left the weights unchanged");
    free(after);

    /* The model is not left busy by the failures. */
    expect(nnb_train(m, x, 60, 4, y, 1, &o, &last), NNB_OK, "nnb_train after the failures");
    check(last.epoch == 1 && last.epochs == 1, "last.epoch 1 of 1 (got %d of %d)", last.epoch, last.epochs);
    expect(nnb_train(m, x, 60, 4, y, 1, &o, NULL), NNB_OK, "nnb_train(last=NULL)");

    /* Every loss, optimizer and schedule name the header lists. One-hot targets suit them all. */
    float *onehot = calloc(180, sizeof(float));
    for (int r = 0; r < 60; r++) onehot[r * 3 + (int)y[r]] = 1;
    const char *losses[] = {"cross_entropy", "bce", "mse", "mae", "huber"};
    for (size_t i = 0; i < 5; i++) {
        nnb_train_options t = o;
        t.loss = losses[i];
        char what[96];
        snprintf(what, sizeof what, "nnb_train(loss \"%s\", one-hot targets)", losses[i]);
        expect(nnb_train(m, x, 60, 4, onehot, 3, &t, &last), NNB_OK, what);
        check(isfinite(last.loss) && last.loss >= 0, "%s: the epoch's loss %g is finite and >= 0", losses[i], last.loss);
        if (i == 0)
            check(last.accuracy >= 0 && last.accuracy <= 1, "%s: accuracy %g in [0, 1]", losses[i], last.accuracy);
        if (i >= 2) check(isnan(last.accuracy), "%s: accuracy is NaN for a regression loss (%g)", losses[i], last.accuracy);
    }
    const char *optimizers[] = {"adam", "adamw", "sgd", "rmsprop", "adagrad", "irprop"};
    for (size_t i = 0; i < 6; i++) {
        nnb_train_options t = o;
        t.optimizer = optimizers[i];
        t.momentum = (i == 2 || i == 3) ? 0.9f : 0.0f;
        t.nesterov = i == 2;
        char what[96];
        snprintf(what, sizeof what, "nnb_train(optimizer \"%s\")", optimizers[i]);
        expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_OK, what);
    }
    const char *schedules[] = {"constant", "step", "exponential", "cosine"};
    for (size_t i = 0; i < 4; i++) {
        nnb_train_options t = o;
        t.schedule = schedules[i];
        t.epochs = 2;
        t.warmup_epochs = i == 3;
        char what[96];
        snprintf(what, sizeof what, "nnb_train(schedule \"%s\")", schedules[i]);
        expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_OK, what);
    }
    nnb_train_options t = o;
    t.schedule = NULL;
    expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_OK, "nnb_train(schedule NULL = constant)");
    t = o;
    t.clip_norm = 1.0f;
    t.label_smoothing = 0.1f;
    t.weight_decay = 1e-4f;
    expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_OK, "nnb_train(clip_norm 1, label_smoothing 0.1, weight_decay 1e-4)");
    t = o;
    t.batch_size = 1000;
    expect(nnb_train(m, x, 60, 4, y, 1, &t, &last), NNB_OK, "nnb_train(batch_size 1000 > rows 60)");

    float *final = predict_alloc(m, x, 60, 4);
    if (final) check(all_finite(final, 180), "predictions are finite after all that training");
    free(final);
    free(onehot);
    free(before);
    free(xbad);
    free(ybad);
    free(x);
    free(y);
    nnb_model_free(m);
}

static int count_correct_bce(const float *logits) {
    int correct = 0;
    for (int r = 0; r < 4; r++) correct += (logits[r] > 0) == (XOR_Y[r] > 0.5f);
    return correct;
}

static int count_correct_ce(const float *logits) {
    int correct = 0;
    for (int r = 0; r < 4; r++) correct += (logits[2 * r + 1] > logits[2 * r]) == (XOR_Y[r] > 0.5f);
    return correct;
}

/* Full-batch options for the 4 XOR rows. */
static nnb_train_options xor_options(const char *loss, const char *optimizer, float learning_rate, int epochs) {
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.loss = loss;
    o.optimizer = optimizer;
    o.learning_rate = learning_rate;
    o.epochs = epochs;
    o.batch_size = 4;
    o.seed = 1;
    return o;
}

/* limits: sizes from C are not trusted; absurd ones are errors, never a crash or a huge allocation. */
static void test_limits(void) {
    nnb_model *m = NULL;
    check(nnb_model_create_from_string(&m, "4294967296-4294967296", 1) == NNB_ERR_INVALID_ARGUMENT && m == NULL,
          "a model past 2^31 parameters (string): NNB_ERR_INVALID_ARGUMENT");
    nnb_layer_spec spec;
    nnb_layer_spec_init(&spec);
    spec.units = INT64_MAX / 2;
    check(nnb_model_create(&m, 1000, &spec, 1, 1) == NNB_ERR_INVALID_ARGUMENT && m == NULL,
          "a dense layer whose parameter count overflows (specs): NNB_ERR_INVALID_ARGUMENT");
    nnb_model_create_from_string(&m, "2-3", 1);
    float x[2] = {0}, out[3];
    check(nnb_predict(m, x, SIZE_MAX / 2, 2, out, 3) == NNB_ERR_INVALID_ARGUMENT, "rows * cols overflowing: NNB_ERR_INVALID_ARGUMENT");
    double loss;
    check(nnb_evaluate(m, x, 1, 2, x, SIZE_MAX / 2, "mse", &loss, NULL) == NNB_ERR_SHAPE_MISMATCH,
          "a wild y_cols: NNB_ERR_SHAPE_MISMATCH before anything is read");
    nnb_model_free(m);
}

/* standardize: XOR on inputs scaled to thousands and shifted learns only after standardizing;
 * the model keeps the standardizer (predict on raw inputs, and after a save and load). */
static void test_standardize(void) {
    const float raw[] = {5000, -3000, 5000, -1000, 7000, -3000, 7000, -1000};
    const float y[] = {0, 1, 1, 0};
    nnb_model *m = NULL;
    nnb_model_create_from_string(&m, "2-8:tanh-2", 3);
    nnb_train_options o;
    nnb_train_options_init(&o);
    check(o.standardize == 0, "standardize defaults to 0");
    o.epochs = 300, o.batch_size = 4, o.learning_rate = 0.05f, o.standardize = 1;
    check(nnb_train(m, raw, 4, 2, y, 1, &o, NULL) == NNB_OK, "nnb_train with standardize = 1");
    float out[8], again[8];
    nnb_predict(m, raw, 4, 2, out, 8);
    int right = 0;
    for (int i = 0; i < 4; i++) right += (out[2 * i + 1] > out[2 * i]) == (int)y[i];
    check(right == 4, "standardized XOR on raw inputs in the thousands: %d of 4 right", right);
    char path[400];
    snprintf(path, sizeof path, "%s/standardized.safetensors", g_tmpdir);
    nnb_model *back = NULL;
    check(nnb_model_save(m, path) == NNB_OK && nnb_model_load(&back, path) == NNB_OK, "save and load a standardized model");
    if (back) nnb_predict(back, raw, 4, 2, again, 8);
    check(back && memcmp(out, again, sizeof out) == 0, "the loaded model standardizes its inputs the same way (bitwise)");
    nnb_model_free(m), nnb_model_free(back);
}

static void test_xor(void) {
    /* "2-8:tanh-1" with bce: one logit per row. */
    nnb_model *m = new_model("2-8:tanh-1", 42);
    if (m) {
        nnb_train_options o = xor_options("bce", "adam", 0.05f, 1000);
        nnb_epoch_report last;
        memset(&last, 0, sizeof last);
        last.struct_size = sizeof last;
        expect(nnb_train(m, XOR_X, 4, 2, XOR_Y, 1, &o, &last), NNB_OK, "nnb_train(XOR, 2-8:tanh-1, bce, 1000 epochs)");
        /* bce is a classification loss (nnb_evaluate reports its accuracy), so the epoch report
         * carries an accuracy too; the last epoch of a learned XOR is all right. */
        check(last.accuracy == 1.0, "bce training report: accuracy of the last epoch is 1 (got %g)", last.accuracy);
        float *p = predict_alloc(m, XOR_X, 4, 2);
        if (p) check(count_correct_bce(p) == 4, "XOR with bce: 4 of 4 predictions right (%d; logits %.3f %.3f %.3f %.3f)",
                     count_correct_bce(p), p[0], p[1], p[2], p[3]);
        double loss = -1, acc = -1;
        expect(nnb_evaluate(m, XOR_X, 4, 2, XOR_Y, 1, "bce", &loss, &acc), NNB_OK, "nnb_evaluate(XOR, bce)");
        check(acc == 1.0 && loss < 0.1, "XOR with bce: evaluate accuracy 1 (%g), loss < 0.1 (%g)", acc, loss);
        if (p) {
            /* The loss recomputed here from the logits: mean of softplus(z) - y z. */
            double want = 0;
            for (int r = 0; r < 4; r++) {
                double z = p[r];
                want += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - XOR_Y[r] * z;
            }
            want /= 4;
            check(fabs(loss - want) <= 1e-4 * (1 + want), "bce loss %g == mean(softplus(z) - y z) from the logits %g", loss, want);
        }
        free(p);
        nnb_model_free(m);
    }

    /* "2-8:tanh-2" with cross_entropy on class indices. */
    m = new_model("2-8:tanh-2", 42);
    if (m) {
        nnb_train_options o = xor_options("cross_entropy", "adam", 0.05f, 1000);
        expect(nnb_train(m, XOR_X, 4, 2, XOR_Y, 1, &o, NULL), NNB_OK, "nnb_train(XOR, 2-8:tanh-2, cross_entropy)");
        float *p = predict_alloc(m, XOR_X, 4, 2);
        if (p) check(count_correct_ce(p) == 4, "XOR with cross_entropy: 4 of 4 predictions right (%d)", count_correct_ce(p));
        double loss = -1, acc = -1, loss2 = -1, acc2 = -1;
        expect(nnb_evaluate(m, XOR_X, 4, 2, XOR_Y, 1, NULL, &loss, &acc), NNB_OK, "nnb_evaluate(XOR, loss NULL)");
        expect(nnb_evaluate(m, XOR_X, 4, 2, XOR_Y, 1, "cross_entropy", &loss2, &acc2), NNB_OK,
               "nnb_evaluate(XOR, \"cross_entropy\")");
        check(loss == loss2 && acc == acc2 && acc == 1.0,
              "evaluate with loss NULL on an uncompiled model is cross_entropy (%g == %g), accuracy 1", loss, loss2);
        if (p) {
            double want = 0;
            for (int r = 0; r < 4; r++) {
                double a = p[2 * r], b = p[2 * r + 1], mx = a > b ? a : b;
                double lse = mx + log(exp(a - mx) + exp(b - mx));
                want += lse - (XOR_Y[r] > 0.5f ? b : a);
            }
            want /= 4;
            check(fabs(loss - want) <= 1e-4 * (1 + want), "cross_entropy loss %g == mean(logsumexp - logit[y]) %g", loss, want);
        }
        /* The same targets one-hot give the same loss. */
        float onehot[8];
        for (int r = 0; r < 4; r++) {
            onehot[2 * r] = XOR_Y[r] > 0.5f ? 0.0f : 1.0f;
            onehot[2 * r + 1] = XOR_Y[r] > 0.5f ? 1.0f : 0.0f;
        }
        double loss3 = -1, acc3 = -1;
        expect(nnb_evaluate(m, XOR_X, 4, 2, onehot, 2, "cross_entropy", &loss3, &acc3), NNB_OK,
               "nnb_evaluate(XOR, one-hot targets, y_cols 2)");
        check(fabs(loss3 - loss) <= 1e-5 * (1 + loss) && acc3 == acc, "one-hot targets give the loss of class indices (%g, %g)",
              loss3, loss);
        free(p);
        nnb_model_free(m);
    }

    /* FANN's iRPROP- on full batches learns XOR too. */
    m = new_model("2-8:tanh-1", 5);
    if (m) {
        nnb_train_options o = xor_options("bce", "irprop", 1e-3f, 500);
        expect(nnb_train(m, XOR_X, 4, 2, XOR_Y, 1, &o, NULL), NNB_OK, "nnb_train(XOR, irprop, 500 epochs)");
        float *p = predict_alloc(m, XOR_X, 4, 2);
        if (p) check(count_correct_bce(p) == 4, "XOR with irprop: 4 of 4 right (%d)", count_correct_bce(p));
        free(p);
        nnb_model_free(m);
    }
}

/* A 1-1 linear model is w x + b; one SGD step on MSE must move w and b as PyTorch would:
 * loss = (w x + b - t)^2, dloss/dw = 2 (w x + b - t) x, dloss/db = 2 (w x + b - t). */
static void test_sgd_step_arithmetic(void) {
    nnb_model *m = new_model("1-1", 77);
    if (!m) return;
    float probe[2] = {0, 1}, out[2];
    nnb_predict(m, probe, 2, 1, out, 2);
    double b = out[0], w = out[1] - out[0];
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.loss = "mse";
    o.optimizer = "sgd";
    o.learning_rate = 0.1f;
    o.batch_size = 1;
    o.shuffle = 0;
    expect(nnb_compile(m, &o), NNB_OK, "nnb_compile(1-1, mse, sgd lr 0.1)");
    float x = 2, t = 3;
    double loss = -1;
    expect(nnb_train_batch(m, &x, 1, 1, &t, 1, &loss), NNB_OK, "nnb_train_batch(one row)");
    double err = w * x + b - t;
    check(fabs(loss - err * err) <= 1e-5 * (1 + err * err), "batch loss %g == (w x + b - t)^2 = %g (before the step)", loss,
          err * err);
    nnb_predict(m, probe, 2, 1, out, 2);
    double b2 = out[0], w2 = out[1] - out[0];
    double want_w = w - 0.1 * 2 * err * x, want_b = b - 0.1 * 2 * err;
    check(fabs(w2 - want_w) < 1e-5 && fabs(b2 - want_b) < 1e-5,
          "one SGD step: w %g -> %g (want %g), b %g -> %g (want %g)", w, w2, want_w, b, b2, want_b);
    nnb_model_free(m);
}

struct callback_log {
    int calls;
    int epochs_seen[64];
    int epochs_field;
    int stop_at;
    int bad_struct_size;
    int bad_values;
    int loss_nonfinite;
    int val_nan, acc_out_of_range;
    double lr_first, lr_last;
    double last_loss;
    void *self;
};

static int log_epochs(const nnb_epoch_report *r, void *user_data) {
    struct callback_log *log = user_data;
    if (log == NULL || log->self != log) return 1;
    if (r->struct_size < sizeof(nnb_epoch_report)) log->bad_struct_size = 1;
    if (log->calls < 64) log->epochs_seen[log->calls] = r->epoch;
    log->calls++;
    log->epochs_field = r->epochs;
    if (!isfinite(r->loss) || r->loss < 0) log->loss_nonfinite = 1;
    if (!(r->accuracy >= 0 && r->accuracy <= 1)) log->acc_out_of_range = 1;
    if (!(isnan(r->val_loss) && isnan(r->val_accuracy))) log->val_nan = 1;
    if (!(r->seconds >= 0) || !(r->learning_rate > 0)) log->bad_values = 1;
    if (log->calls == 1) log->lr_first = r->learning_rate;
    log->lr_last = r->learning_rate;
    log->last_loss = r->loss;
    return log->stop_at != 0 && r->epoch >= log->stop_at;
}

static int flag_called(const nnb_epoch_report *r, void *user_data) {
    (void)r;
    *(int *)user_data = 1;
    return 0;
}

struct val_log {
    int calls, val_ok;
    double val_loss[64];
};

static int log_val(const nnb_epoch_report *r, void *user_data) {
    struct val_log *v = user_data;
    if (v->calls < 64) v->val_loss[v->calls] = r->val_loss;
    v->calls++;
    if (isfinite(r->val_loss) && r->val_loss >= 0 && r->val_accuracy >= 0 && r->val_accuracy <= 1) v->val_ok++;
    return 0;
}

static void test_callback(void) {
    nnb_model *m = new_model("4-16:relu-3", 2);
    if (!m) return;
    float *x, *y;
    make_blobs(90, 4, 3, 0.4f, 23, &x, &y);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 6;
    o.batch_size = 16;
    o.learning_rate = 0.01f;

    struct callback_log log;
    memset(&log, 0, sizeof log);
    log.self = &log;
    o.on_epoch = log_epochs;
    o.user_data = &log;
    nnb_epoch_report last;
    memset(&last, 0, sizeof last);
    last.struct_size = sizeof last;
    expect(nnb_train(m, x, 90, 4, y, 1, &o, &last), NNB_OK, "nnb_train(6 epochs, callback)");
    int in_order = log.calls == 6;
    for (int i = 0; i < log.calls && i < 64; i++) in_order &= log.epochs_seen[i] == i + 1;
    check(in_order, "callback received epochs 1..6 in order (%d calls)", log.calls);
    check(log.epochs_field == 6, "report.epochs == 6 (%d)", log.epochs_field);
    check(!log.bad_struct_size, "report.struct_size >= sizeof(nnb_epoch_report)");
    check(!log.loss_nonfinite && !log.acc_out_of_range, "report loss finite, accuracy in [0, 1] (cross_entropy)");
    check(!log.val_nan, "report val_loss and val_accuracy are NaN without validation data");
    check(!log.bad_values, "report seconds >= 0 and learning_rate > 0");
    check(fabs(log.lr_first - 0.01) < 1e-6 && fabs(log.lr_last - 0.01) < 1e-6,
          "constant schedule: learning_rate stays 0.01 (%g .. %g)", log.lr_first, log.lr_last);
    check(last.epoch == 6 && last.epochs == 6 && last.loss == log.last_loss,
          "*last is the last epoch's report (epoch %d, loss %g == %g)", last.epoch, last.loss, log.last_loss);

    /* Cancel after epoch 2. */
    memset(&log, 0, sizeof log);
    log.self = &log;
    log.stop_at = 2;
    memset(&last, 0, sizeof last);
    last.struct_size = sizeof last;
    expect(nnb_train(m, x, 90, 4, y, 1, &o, &last), NNB_OK, "nnb_train(6 epochs, callback stops after epoch 2)");
    check(log.calls == 2 && last.epoch == 2, "training stopped after epoch 2 (callback calls %d, last.epoch %d)", log.calls,
          last.epoch);
    float *p = predict_alloc(m, x, 90, 4);
    if (p) check(all_finite(p, 270), "the model predicts finite values after a cancelled run");
    free(p);

    /* The schedule reaches the reports: step decay halves the rate every 2 epochs. */
    memset(&log, 0, sizeof log);
    log.self = &log;
    nnb_train_options s = o;
    s.schedule = "step";
    s.step_size = 2;
    s.gamma = 0.5f;
    s.learning_rate = 0.1f;
    expect(nnb_train(m, x, 90, 4, y, 1, &s, NULL), NNB_OK, "nnb_train(step schedule, step 2, gamma 0.5)");
    check(log.lr_first >= 0.05 - 1e-6 && log.lr_first <= 0.1 + 1e-6 && log.lr_last < log.lr_first &&
              (fabs(log.lr_last - 0.0125) < 1e-6 || fabs(log.lr_last - 0.025) < 1e-6),
          "step schedule: learning_rate %g at epoch 1, %g at epoch 6", log.lr_first, log.lr_last);

    /* Validation split: val_loss and val_accuracy are reported. */
    struct val_log vl;
    memset(&vl, 0, sizeof vl);
    nnb_train_options v = o;
    v.validation_split = 0.25f;
    v.on_epoch = log_val;
    v.user_data = &vl;
    expect(nnb_train(m, x, 90, 4, y, 1, &v, NULL), NNB_OK, "nnb_train(validation_split 0.25)");
    check(vl.calls == 6 && vl.val_ok == 6, "validation loss and accuracy reported every epoch (%d of %d)", vl.val_ok, vl.calls);

    /* Early stopping stops when val_loss stops improving: targets that are noise cannot be
     * learned, so with a high learning rate val_loss rises and training ends early. */
    float *noise = malloc(sizeof(float) * 90);
    rng_seed(99);
    for (int i = 0; i < 90; i++) noise[i] = (float)(int)(3 * rng_uniform());
    memset(&vl, 0, sizeof vl);
    v.epochs = 60;
    v.learning_rate = 0.05f;
    v.early_stopping_patience = 2;
    nnb_model *m2 = new_model("4-64:relu-3", 4);
    if (m2) {
        nnb_epoch_report l2;
        memset(&l2, 0, sizeof l2);
        l2.struct_size = sizeof l2;
        expect(nnb_train(m2, x, 90, 4, noise, 1, &v, &l2), NNB_OK, "nnb_train(noise targets, early_stopping_patience 2)");
        check(vl.calls < 60 && l2.epoch == vl.calls, "early stopping ended training at epoch %d of 60", l2.epoch);
        /* The run stops `patience` epochs after the best val_loss. */
        int best = 0;
        for (int i = 1; i < vl.calls && i < 64; i++)
            if (vl.val_loss[i] < vl.val_loss[best]) best = i;
        check(vl.calls - 1 - best == 2, "stopped 2 epochs after the best val_loss (best at epoch %d, stopped at %d)", best + 1,
              vl.calls);
    }
    nnb_model_free(m2);
    free(noise);

    /* An options struct from an older header, without on_epoch and user_data: the library
     * must not read the fields it was not given. */
    int called = 0;
    nnb_train_options old = o;
    old.on_epoch = flag_called;
    old.user_data = &called;
    old.epochs = 2;
    old.struct_size = (uint32_t)offsetof(nnb_train_options, on_epoch);
    expect(nnb_train(m, x, 90, 4, y, 1, &old, NULL), NNB_OK, "nnb_train(struct_size ending before on_epoch)");
    check(called == 0, "fields past struct_size are not read (callback not called)");

    free(x);
    free(y);
    nnb_model_free(m);
}

static void test_compile_loop(void) {
    nnb_model *m = new_model("4-16:relu-3", 8);
    if (!m) return;
    float *x, *y;
    make_blobs(120, 4, 3, 0.5f, 31, &x, &y);
    nnb_epoch_report rep;
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    double loss = -1;
    expect(nnb_train_batch(m, x, 16, 4, y, 1, &loss), NNB_ERR_NOT_READY, "nnb_train_batch before nnb_compile");
    expect(nnb_train_epoch(m, x, 120, 4, y, 1, &rep), NNB_ERR_NOT_READY, "nnb_train_epoch before nnb_compile");

    nnb_train_options o;
    nnb_train_options_init(&o);
    o.batch_size = 16;
    o.learning_rate = 0.01f;
    expect(nnb_compile(NULL, &o), NNB_ERR_NULL_ARGUMENT, "nnb_compile(model=NULL)");
    expect(nnb_compile(m, NULL), NNB_ERR_NULL_ARGUMENT, "nnb_compile(options=NULL)");
    expect(nnb_compile(m, &o), NNB_OK, "nnb_compile(adam 0.01, batch 16)");

    /* Errors of the batch and epoch calls. */
    expect(nnb_train_batch(NULL, x, 16, 4, y, 1, &loss), NNB_ERR_NULL_ARGUMENT, "nnb_train_batch(model=NULL)");
    expect(nnb_train_batch(m, NULL, 16, 4, y, 1, &loss), NNB_ERR_NULL_ARGUMENT, "nnb_train_batch(x=NULL)");
    expect(nnb_train_batch(m, x, 16, 4, NULL, 1, &loss), NNB_ERR_NULL_ARGUMENT, "nnb_train_batch(y=NULL)");
    expect(nnb_train_batch(m, x, 0, 4, y, 1, &loss), NNB_ERR_INVALID_ARGUMENT, "nnb_train_batch(rows=0)");
    expect(nnb_train_batch(m, x, 16, 5, y, 1, &loss), NNB_ERR_SHAPE_MISMATCH, "nnb_train_batch(cols 5 for 4 inputs)");
    expect(nnb_train_batch(m, x, 16, 4, y, 2, &loss), NNB_ERR_SHAPE_MISMATCH, "nnb_train_batch(y_cols 2 for 3 outputs)");
    float xnan[64], ybad[16];
    memcpy(xnan, x, sizeof xnan);
    xnan[5] = NAN;
    expect(nnb_train_batch(m, xnan, 16, 4, y, 1, &loss), NNB_ERR_INVALID_DATA, "nnb_train_batch(NaN in x)");
    memcpy(ybad, y, sizeof ybad);
    ybad[3] = 7;
    expect(nnb_train_batch(m, x, 16, 4, ybad, 1, &loss), NNB_ERR_INVALID_DATA, "nnb_train_batch(class index 7)");
    expect(nnb_train_epoch(NULL, x, 120, 4, y, 1, &rep), NNB_ERR_NULL_ARGUMENT, "nnb_train_epoch(model=NULL)");
    expect(nnb_train_epoch(m, NULL, 120, 4, y, 1, &rep), NNB_ERR_NULL_ARGUMENT, "nnb_train_epoch(x=NULL)");
    expect(nnb_train_epoch(m, x, 120, 4, NULL, 1, &rep), NNB_ERR_NULL_ARGUMENT, "nnb_train_epoch(y=NULL)");
    expect(nnb_train_epoch(m, x, 0, 4, y, 1, &rep), NNB_ERR_INVALID_ARGUMENT, "nnb_train_epoch(rows=0)");
    expect(nnb_train_epoch(m, x, 120, 3, y, 1, &rep), NNB_ERR_SHAPE_MISMATCH, "nnb_train_epoch(cols 3 for 4 inputs)");
    expect(nnb_train_epoch(m, x, 120, 4, ZEROS, 4, &rep), NNB_ERR_SHAPE_MISMATCH, "nnb_train_epoch(y_cols 4 for 3 outputs)");
    expect(nnb_train_epoch(m, xnan, 16, 4, y, 1, &rep), NNB_ERR_INVALID_DATA, "nnb_train_epoch(NaN in x)");

    /* The batch loss is the loss before the step, the one nnb_evaluate gives. */
    double eval_loss = -1;
    nnb_evaluate(m, x, 16, 4, y, 1, NULL, &eval_loss, NULL);
    expect(nnb_train_batch(m, x, 16, 4, y, 1, &loss), NNB_OK, "nnb_train_batch(16 rows)");
    check(fabs(loss - eval_loss) <= 1e-5 * (1 + eval_loss), "batch loss %g == evaluate's loss before the step %g", loss, eval_loss);
    float before_step[16 * 3], after_step[16 * 3];
    nnb_predict(m, x, 16, 4, before_step, 16 * 3);
    expect(nnb_train_batch(m, x, 16, 4, y, 1, NULL), NNB_OK, "nnb_train_batch(loss=NULL)");
    nnb_predict(m, x, 16, 4, after_step, 16 * 3);
    /* It used to return NNB_OK without stepping: the step sat inside `loss?.pointee = ...`. */
    check(memcmp(before_step, after_step, sizeof before_step) != 0, "nnb_train_batch(loss=NULL) still takes the step");

    /* Steps on one batch reduce its loss. */
    double first = loss, latest = loss;
    for (int i = 0; i < 100; i++) nnb_train_batch(m, x, 16, 4, y, 1, &latest);
    check(latest < 0.5 * first, "100 steps on one batch: loss %g -> %g", first, latest);

    /* Epochs reduce the loss over the whole set. */
    double start = -1;
    nnb_evaluate(m, x, 120, 4, y, 1, NULL, &start, NULL);
    int ok = 1;
    for (int e = 0; e < 30 && ok; e++) ok = nnb_train_epoch(m, x, 120, 4, y, 1, &rep) == NNB_OK;
    check(ok, "30 nnb_train_epoch calls return NNB_OK");
    double end = -1, acc = -1;
    nnb_evaluate(m, x, 120, 4, y, 1, NULL, &end, &acc);
    check(end < 0.5 * start && acc > 0.9, "30 epochs: loss %g -> %g, accuracy %g", start, end, acc);
    check(isfinite(rep.loss) && rep.loss >= 0 && rep.accuracy >= 0 && rep.accuracy <= 1,
          "nnb_train_epoch's report: loss %g, accuracy %g", rep.loss, rep.accuracy);

    /* A second compile resets the optimizer; training still works. */
    o.optimizer = "sgd";
    o.learning_rate = 0.05f;
    expect(nnb_compile(m, &o), NNB_OK, "nnb_compile again (sgd)");
    expect(nnb_train_epoch(m, x, 120, 4, y, 1, &rep), NNB_OK, "nnb_train_epoch after the second compile");

    /* The compiled loss becomes evaluate's default. */
    nnb_model *r = new_model("3-2", 1);
    if (r) {
        nnb_train_options mo;
        nnb_train_options_init(&mo);
        mo.loss = "mse";
        expect(nnb_compile(r, &mo), NNB_OK, "nnb_compile(mse)");
        float rx[6] = {1, 2, 3, 4, 5, 6}, ry[4] = {0.5f, -1, 2, 0};
        double l1 = -1, l2 = -2, a1 = 0;
        nnb_evaluate(r, rx, 2, 3, ry, 2, NULL, &l1, &a1);
        nnb_evaluate(r, rx, 2, 3, ry, 2, "mse", &l2, NULL);
        check(l1 == l2 && isnan(a1), "evaluate with loss NULL uses the compiled mse (%g == %g), accuracy NaN", l1, l2);
        float out[4];
        nnb_predict(r, rx, 2, 3, out, 4);
        double want = 0;
        for (int i = 0; i < 4; i++) want += (out[i] - ry[i]) * (out[i] - ry[i]);
        want /= 4;
        check(fabs(l1 - want) <= 1e-5 * (1 + want), "mse %g == mean squared error over all outputs %g", l1, want);
    }
    nnb_model_free(r);
    free(x);
    free(y);
    nnb_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Inference                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static void test_predict_and_evaluate(void) {
    nnb_model *m = new_model("6-32:relu-16:tanh-4", 12);
    if (!m) return;
    size_t rows = 100;
    float *x = random_floats(rows * 6, 3);
    float *out = malloc(sizeof(float) * (rows * 4 + 8));
    for (size_t i = 0; i < rows * 4 + 8; i++) out[i] = -12345.0f;
    expect(nnb_predict(m, x, rows, 6, out, rows * 4 + 8), NNB_OK, "nnb_predict(100 rows, capacity with room to spare)");
    int untouched = 1;
    for (size_t i = rows * 4; i < rows * 4 + 8; i++) untouched &= out[i] == -12345.0f;
    check(untouched, "nnb_predict writes rows * outputs floats and nothing past them");
    check(all_finite(out, rows * 4), "predictions are finite");

    /* Row by row gives the same answers as the batch (to rounding: the kernels may take
     * another path for one row). */
    float one[4];
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        nnb_predict(m, x + r * 6, 1, 6, one, 4);
        for (int j = 0; j < 4; j++) {
            double d = fabs((double)one[j] - out[r * 4 + j]);
            if (d > worst) worst = d;
        }
    }
    check(worst < 1e-5, "one row at a time matches the 100-row batch (max difference %g)", worst);

    float small[4];
    expect(nnb_predict(NULL, x, 1, 6, small, 4), NNB_ERR_NULL_ARGUMENT, "nnb_predict(model=NULL)");
    expect(nnb_predict(m, NULL, 1, 6, small, 4), NNB_ERR_NULL_ARGUMENT, "nnb_predict(x=NULL)");
    expect(nnb_predict(m, x, 1, 6, NULL, 4), NNB_ERR_NULL_ARGUMENT, "nnb_predict(out=NULL)");
    expect(nnb_predict(m, x, 0, 6, small, 4), NNB_ERR_INVALID_ARGUMENT, "nnb_predict(rows=0)");
    expect(nnb_predict(m, x, 1, 5, small, 4), NNB_ERR_SHAPE_MISMATCH, "nnb_predict(cols 5 for 6 inputs)");
    expect2(nnb_predict(m, x, 1, 0, small, 4), NNB_ERR_SHAPE_MISMATCH, NNB_ERR_INVALID_ARGUMENT, "nnb_predict(cols=0)");
    expect(nnb_predict(m, x, 1, 6, small, 3), NNB_ERR_CAPACITY, "nnb_predict(capacity 3 for 1 x 4 outputs)");
    expect(nnb_predict(m, x, 1, 6, small, 0), NNB_ERR_CAPACITY, "nnb_predict(capacity 0)");
    expect(nnb_predict(m, x, rows, 6, out, rows * 4 - 1), NNB_ERR_CAPACITY, "nnb_predict(capacity rows*outputs - 1)");
    float xnan[6] = {0, 1, NAN, 0, 0, 0};
    nnb_status s = nnb_predict(m, xnan, 1, 6, small, 4);
    check(s == NNB_OK || s == NNB_ERR_INVALID_DATA, "nnb_predict(NaN input) returns OK or NNB_ERR_INVALID_DATA, no crash (%s)",
          status_name(s));

    /* evaluate */
    float *y = malloc(sizeof(float) * rows);
    for (size_t r = 0; r < rows; r++) y[r] = (float)(r % 4);
    double loss = -1, acc = -1;
    if (expect(nnb_evaluate(m, x, rows, 6, y, 1, "cross_entropy", &loss, &acc), NNB_OK, "nnb_evaluate(cross_entropy)")) {
        double want = 0;
        int correct = 0;
        for (size_t r = 0; r < rows; r++) {
            const float *z = out + r * 4;
            double mx = z[0];
            int arg = 0;
            for (int j = 1; j < 4; j++)
                if (z[j] > mx) mx = z[j], arg = j;
            double sum = 0;
            for (int j = 0; j < 4; j++) sum += exp(z[j] - mx);
            want += mx + log(sum) - z[(int)y[r]];
            correct += arg == (int)y[r];
        }
        want /= (double)rows;
        check(fabs(loss - want) <= 1e-4 * (1 + want), "evaluate's cross-entropy %g == recomputed from predict's logits %g", loss,
              want);
        check(fabs(acc - correct / (double)rows) < 1e-9, "evaluate's accuracy %g == argmax accuracy %g", acc,
              correct / (double)rows);
    }
    expect(nnb_evaluate(m, x, rows, 6, y, 1, NULL, NULL, NULL), NNB_OK, "nnb_evaluate(loss_value=NULL, accuracy=NULL)");
    float *yreg = random_floats(rows * 4, 8);
    acc = 0;
    expect(nnb_evaluate(m, x, rows, 6, yreg, 4, "mse", &loss, &acc), NNB_OK, "nnb_evaluate(mse)");
    check(isnan(acc), "evaluate under mse: accuracy NaN (%g)", acc);
    expect(nnb_evaluate(m, x, rows, 6, yreg, 4, "huber", &loss, &acc), NNB_OK, "nnb_evaluate(huber)");
    expect(nnb_evaluate(m, x, rows, 6, yreg, 4, "mae", &loss, &acc), NNB_OK, "nnb_evaluate(mae)");

    expect(nnb_evaluate(NULL, x, rows, 6, y, 1, NULL, &loss, &acc), NNB_ERR_NULL_ARGUMENT, "nnb_evaluate(model=NULL)");
    expect(nnb_evaluate(m, NULL, rows, 6, y, 1, NULL, &loss, &acc), NNB_ERR_NULL_ARGUMENT, "nnb_evaluate(x=NULL)");
    expect(nnb_evaluate(m, x, rows, 6, NULL, 1, NULL, &loss, &acc), NNB_ERR_NULL_ARGUMENT, "nnb_evaluate(y=NULL)");
    expect(nnb_evaluate(m, x, 0, 6, y, 1, NULL, &loss, &acc), NNB_ERR_INVALID_ARGUMENT, "nnb_evaluate(rows=0)");
    expect(nnb_evaluate(m, ZEROS, rows, 7, y, 1, NULL, &loss, &acc), NNB_ERR_SHAPE_MISMATCH, "nnb_evaluate(cols 7 for 6 inputs)");
    expect(nnb_evaluate(m, x, rows, 6, ZEROS, 3, NULL, &loss, &acc), NNB_ERR_SHAPE_MISMATCH, "nnb_evaluate(y_cols 3 for 4 outputs)");
    expect(nnb_evaluate(m, x, rows, 6, y, 1, "mse", &loss, &acc), NNB_ERR_SHAPE_MISMATCH, "nnb_evaluate(mse, y_cols 1 for 4 outputs)");
    expect(nnb_evaluate(m, x, rows, 6, y, 1, "nosuch", &loss, &acc), NNB_ERR_UNKNOWN_NAME, "nnb_evaluate(loss \"nosuch\")");
    y[50] = 4;
    expect(nnb_evaluate(m, x, rows, 6, y, 1, NULL, &loss, &acc), NNB_ERR_INVALID_DATA, "nnb_evaluate(class index 4 for 4 outputs)");
    y[50] = NAN;
    expect(nnb_evaluate(m, x, rows, 6, y, 1, NULL, &loss, &acc), NNB_ERR_INVALID_DATA, "nnb_evaluate(NaN target)");
    y[50] = 2;
    x[7] = NAN;
    expect(nnb_evaluate(m, x, rows, 6, y, 1, NULL, &loss, &acc), NNB_ERR_INVALID_DATA, "nnb_evaluate(NaN in x)");

    free(yreg);
    free(y);
    free(out);
    free(x);
    nnb_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Files                                                                                      */
/* ---------------------------------------------------------------------------------------- */

static void expect_corrupt(const char *path, const char *what) {
    nnb_model *m = (nnb_model *)&m;
    expect(nnb_model_load(&m, path), NNB_ERR_CORRUPT_FILE, what);
    if (m != NULL) {
        check(0, "%s: *out is NULL after a failed load", what);
        if (m != (nnb_model *)&m) nnb_model_free(m);
    }
}

static void test_save_load(void) {
    nnb_model *m = new_model("5-12:relu-7:tanh-3", 21);
    if (!m) return;
    float *x, *y;
    make_blobs(60, 5, 3, 0.5f, 41, &x, &y);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 3;
    nnb_train(m, x, 60, 5, y, 1, &o, NULL);

    char path[512], path2[512];
    tmp_path(path, sizeof path, "model.safetensors");
    if (!expect(nnb_model_save(m, path), NNB_OK, "nnb_model_save")) goto done;
    check(file_size(path) > 0, "the saved file exists (%ld bytes)", file_size(path));
    nnb_model *l = (nnb_model *)&l;
    if (expect(nnb_model_load(&l, path), NNB_OK, "nnb_model_load") && l) {
        float *p1 = predict_alloc(m, x, 60, 5), *p2 = predict_alloc(l, x, 60, 5);
        if (p1 && p2) check(memcmp(p1, p2, sizeof(float) * 180) == 0, "the loaded model predicts bit-identically");
        free(p1);
        free(p2);
        char d1[128], d2[128];
        nnb_model_describe(m, d1, sizeof d1, NULL);
        nnb_model_describe(l, d2, sizeof d2, NULL);
        check(strcmp(d1, d2) == 0, "the loaded model has the same description (\"%s\")", d2);
        /* Saving the loaded model gives the same predictions again, and it still trains. */
        tmp_path(path2, sizeof path2, "model2.safetensors");
        expect(nnb_model_save(l, path2), NNB_OK, "nnb_model_save(loaded model)");
        expect(nnb_train(l, x, 60, 5, y, 1, &o, NULL), NNB_OK, "nnb_train(loaded model)");
        /* Saving over an existing file replaces it. */
        expect(nnb_model_save(l, path2), NNB_OK, "nnb_model_save over an existing file");
        nnb_model *l2 = NULL;
        if (expect(nnb_model_load(&l2, path2), NNB_OK, "nnb_model_load(replaced file)")) {
            float *q1 = predict_alloc(l, x, 60, 5), *q2 = predict_alloc(l2, x, 60, 5);
            if (q1 && q2) check(memcmp(q1, q2, sizeof(float) * 180) == 0, "the replaced file holds the newer weights");
            free(q1);
            free(q2);
        }
        nnb_model_free(l2);
        nnb_model_free(l);
    }

    /* Errors. */
    expect(nnb_model_save(NULL, path), NNB_ERR_NULL_ARGUMENT, "nnb_model_save(model=NULL)");
    expect(nnb_model_save(m, NULL), NNB_ERR_NULL_ARGUMENT, "nnb_model_save(path=NULL)");
    l = (nnb_model *)&l;
    expect(nnb_model_load(NULL, path), NNB_ERR_NULL_ARGUMENT, "nnb_model_load(out=NULL)");
    expect(nnb_model_load(&l, NULL), NNB_ERR_NULL_ARGUMENT, "nnb_model_load(path=NULL)");
    l = (nnb_model *)&l;
    tmp_path(path2, sizeof path2, "no-such-file.safetensors");
    expect(nnb_model_load(&l, path2), NNB_ERR_IO, "nnb_model_load(missing file)");
    check(l == NULL, "*out is NULL after loading a missing file");
    expect(nnb_model_load(&l, g_tmpdir), NNB_ERR_IO, "nnb_model_load(a directory)");
    tmp_path(path2, sizeof path2, "no-such-dir/model.safetensors");
    expect(nnb_model_save(m, path2), NNB_ERR_IO, "nnb_model_save(into a missing directory)");
    expect(nnb_model_save(m, g_tmpdir), NNB_ERR_IO, "nnb_model_save(over a directory)");

    /* Corrupted copies of the good file. */
    long size = 0;
    unsigned char *good = read_file(path, &size);
    if (!good || size < 16) {
        check(0, "could not read back %s", path);
        free(good);
        goto done;
    }
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; i--) header_len = (header_len << 8) | good[i];
    check(header_len > 2 && 8 + header_len <= (uint64_t)size && good[8] == '{',
          "the file is safetensors: an 8-byte header length (%llu) then JSON", (unsigned long long)header_len);
    char bad[512];
    tmp_path(bad, sizeof bad, "bad.safetensors");
    long cuts[] = {0, 1, 7, 8, 9, 8 + (long)header_len / 2, 8 + (long)header_len - 1, 8 + (long)header_len,
                   8 + (long)header_len + 4, size / 2 + (long)header_len / 2, size - 4, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        if (cuts[i] < 0 || cuts[i] >= size) continue;
        write_file(bad, good, (size_t)cuts[i]);
        char what[160];
        snprintf(what, sizeof what, "nnb_model_load(file truncated to %ld of %ld bytes)", cuts[i], size);
        expect_corrupt(bad, what);
    }
    unsigned char *copy = malloc((size_t)size + 16);
    /* Header length far too large, zero, and one past the file. */
    uint64_t lens[] = {(uint64_t)1 << 40, 0, (uint64_t)size};
    for (int i = 0; i < 3; i++) {
        memcpy(copy, good, (size_t)size);
        for (int b = 0; b < 8; b++) copy[b] = (unsigned char)(lens[i] >> (8 * b));
        write_file(bad, copy, (size_t)size);
        char what[160];
        snprintf(what, sizeof what, "nnb_model_load(header length field %llu)", (unsigned long long)lens[i]);
        expect_corrupt(bad, what);
    }
    /* Flipped bytes in the JSON header: its opening brace, a quote, a tensor name. */
    const char *json = (const char *)good + 8;
    size_t jlen = (size_t)header_len;
    struct { const char *label; long at; unsigned char to; } flips[4];
    int nflips = 0;
    flips[nflips].label = "opening brace";
    flips[nflips].at = 8;
    flips[nflips++].to = '#';
    for (size_t i = jlen / 2; i < jlen; i++)
        if (json[i] == '"') {
            flips[nflips].label = "a quote in the middle";
            flips[nflips].at = 8 + (long)i;
            flips[nflips++].to = '#';
            break;
        }
    for (size_t i = 0; i + 8 < jlen; i++)
        if (memcmp(json + i, "\"0.weight\"", 10) == 0) {
            flips[nflips].label = "tensor name 0.weight -> 0.wfight";
            flips[nflips].at = 8 + (long)i + 4;
            flips[nflips++].to = 'f';
            break;
        }
    for (size_t i = 0; i + 8 < jlen; i++)
        if (memcmp(json + i, "\"F32\"", 5) == 0) {
            flips[nflips].label = "dtype F32 -> F3#";
            flips[nflips].at = 8 + (long)i + 3;
            flips[nflips++].to = '#';
            break;
        }
    check(nflips == 4, "found the brace, a quote, the tensor name \"0.weight\" and a dtype to corrupt (%d of 4)", nflips);
    for (int i = 0; i < nflips; i++) {
        memcpy(copy, good, (size_t)size);
        copy[flips[i].at] = flips[i].to;
        write_file(bad, copy, (size_t)size);
        char what[160];
        snprintf(what, sizeof what, "nnb_model_load(flipped byte at %ld: %s)", flips[i].at, flips[i].label);
        if (strncmp(flips[i].label, "dtype", 5) == 0) {
            /* An unknown dtype could be a newer file's (UNSUPPORTED) or garbage (CORRUPT_FILE). */
            nnb_model *lm = NULL;
            expect2(nnb_model_load(&lm, bad), NNB_ERR_CORRUPT_FILE, NNB_ERR_UNSUPPORTED, what);
            check(lm == NULL, "*out is NULL after a failed load");
            nnb_model_free(lm);
        } else {
            expect_corrupt(bad, what);
        }
    }
    /* Garbage, and a valid safetensors file that is not a model. */
    rng_seed(5);
    for (long i = 0; i < size; i++) copy[i] = (unsigned char)(256 * rng_uniform());
    write_file(bad, copy, (size_t)size);
    expect_corrupt(bad, "nnb_model_load(random bytes)");
    const char *not_model_json = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t nj = strlen(not_model_json);
    memset(copy, 0, 8);
    for (int b = 0; b < 8; b++) copy[b] = (unsigned char)((uint64_t)nj >> (8 * b));
    memcpy(copy + 8, not_model_json, nj);
    memset(copy + 8 + nj, 0, 4);
    write_file(bad, copy, 8 + nj + 4);
    expect_corrupt(bad, "nnb_model_load(a safetensors file that is not a model)");
    /* The good file still loads after all that (nothing was cached). */
    l = NULL;
    expect(nnb_model_load(&l, path), NNB_OK, "nnb_model_load(the good file again)");
    nnb_model_free(l);
    free(copy);
    free(good);
    remove(bad);
    remove(path);
    tmp_path(path2, sizeof path2, "model2.safetensors");
    remove(path2);
done:
    free(x);
    free(y);
    nnb_model_free(m);
}

/* Two models trained with one seed and the same options end bit-identical. */
static void test_determinism(void) {
    float *x, *y;
    make_blobs(200, 8, 4, 0.6f, 77, &x, &y);
    float *p[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        nnb_model *m = new_model("8-32:relu-4", 5);
        if (!m) break;
        nnb_train_options o;
        nnb_train_options_init(&o);
        o.epochs = 4;
        o.batch_size = 16;
        o.seed = 3;
        nnb_train(m, x, 200, 8, y, 1, &o, NULL);
        p[i] = predict_alloc(m, x, 200, 8);
        nnb_model_free(m);
    }
    if (p[0] && p[1]) check(memcmp(p[0], p[1], sizeof(float) * 800) == 0, "training twice from one seed gives bit-identical models");
    free(p[0]);
    free(p[1]);
    free(x);
    free(y);
}

/* options.precision: NULL and "fp32" are the same bits; "bf16" trains where the CPU has
 * AVX512_BF16 (a different model, as good on this easy task) and is NNB_ERR_UNSUPPORTED where
 * it has not, with the weights untouched; an unknown name is refused; nnb_precision_supported
 * agrees with nnb_train. */
static void test_precision(void) {
    check(nnb_precision_supported("fp32") == 1 && nnb_precision_supported("FP32") == 1, "fp32 is always supported");
    check(nnb_precision_supported("fp16") == 0 && nnb_precision_supported(NULL) == 0, "unknown or NULL: 0");
    float *x, *y;
    make_blobs(256, 8, 4, 0.6f, 41, &x, &y);
    const char *names[] = {NULL, "fp32", "bf16"};
    float *p[3] = {NULL, NULL, NULL};
    float *start = NULL;
    for (int i = 0; i < 3; i++) {
        nnb_model *m = new_model("8-96:relu-96:relu-4", 7);
        if (!m) break;
        if (i == 0) start = predict_alloc(m, x, 256, 8);
        nnb_train_options o;
        nnb_train_options_init(&o);
        o.epochs = 5;
        o.batch_size = 128;
        o.precision = names[i];
        const nnb_status s = nnb_train(m, x, 256, 8, y, 1, &o, NULL);
        if (i == 2 && !nnb_precision_supported("bf16")) {
            check(s == NNB_ERR_UNSUPPORTED && strstr(nnb_last_error(), "AVX512_BF16") != NULL,
                  "bf16 without AVX512_BF16: NNB_ERR_UNSUPPORTED naming it (got %d: %s)", s, nnb_last_error());
            float *after = predict_alloc(m, x, 256, 8);
            check(after && start && memcmp(after, start, sizeof(float) * 1024) == 0, "a refused bf16 run leaves the weights");
            free(after);
        } else {
            check(s == NNB_OK, "train with precision %s: %d %s", names[i] ? names[i] : "NULL", s, nnb_last_error());
            p[i] = predict_alloc(m, x, 256, 8);
        }
        nnb_model_free(m);
    }
    if (p[0] && p[1]) check(memcmp(p[0], p[1], sizeof(float) * 1024) == 0, "precision NULL and \"fp32\" give the same bits");
    if (p[0] && p[2]) {
        double worst = 0;
        for (int i = 0; i < 1024; i++) worst = fmax(worst, fabs((double)p[0][i] - p[2][i]));
        check(worst > 0 && worst < 0.5, "bf16 training differs from fp32, a little (largest output difference %g)", worst);
    }
    nnb_model *m = new_model("8-4", 1);
    if (m) {
        nnb_train_options o;
        nnb_train_options_init(&o);
        o.precision = "half";
        expect(nnb_train(m, x, 256, 8, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "precision \"half\"");
        check(strstr(nnb_last_error(), "fp32 or bf16") != NULL, "the message names the choices: %s", nnb_last_error());
        expect(nnb_compile(m, &o), NNB_ERR_INVALID_ARGUMENT, "nnb_compile with precision \"half\"");
        nnb_model_free(m);
    }
    for (int i = 0; i < 3; i++) free(p[i]);
    free(start);
    free(x);
    free(y);
}

/* options.distributed and mpi_comm (0.6): bad values and the calls that do not take them are
 * refused before MPI is touched (training under mpirun is scripts/test-mpi.sh's). */
static void test_distributed_options(void) {
    float x[16] = {0}, y[4] = {0, 1, 0, 1};
    nnb_model *m = new_model("4-2", 1);
    if (!m) return;
    nnb_train_options o;
    nnb_train_options_init_sized(&o, sizeof o);
    check(o.distributed == 0 && o.mpi_comm == NULL, "defaults: distributed 0, mpi_comm NULL");
    o.distributed = 2;
    expect(nnb_train(m, x, 4, 4, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "distributed = 2");
    check(strstr(nnb_last_error(), "distributed must be 0 or 1") != NULL, "the message says so: %s", nnb_last_error());
    o.distributed = 0;
    int comm = 0;
    o.mpi_comm = &comm;
    expect(nnb_train(m, x, 4, 4, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "mpi_comm without distributed");
    check(strstr(nnb_last_error(), "mpi_comm") != NULL, "the message names mpi_comm: %s", nnb_last_error());
    o.mpi_comm = NULL;
    o.distributed = 1;
    expect(nnb_compile(m, &o), NNB_ERR_INVALID_ARGUMENT, "nnb_compile with distributed");
    check(strstr(nnb_last_error(), "nnb_train only") != NULL, "the message says where it applies: %s", nnb_last_error());
    nnb_model_free(m);
}

/* nnb_model_quantize_int8: predictions close to fp32 with the same classes, kept in files,
 * refused for training and for bad input, undone by nnb_model_remove_quantization. */
static void test_int8(void) {
    float *x, *y;
    make_blobs(400, 8, 4, 0.6f, 19, &x, &y);
    nnb_model *m = new_model("8-64:relu-32:relu-4", 3);
    if (!m) return;
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 8;
    check(nnb_train(m, x, 400, 8, y, 1, &o, NULL) == NNB_OK, "train: %s", nnb_last_error());
    float *fp32 = predict_alloc(m, x, 400, 8);
    check(nnb_model_is_quantized(m) == 0 && nnb_model_is_quantized(NULL) == 0, "not quantized yet; NULL: 0");
    expect(nnb_model_quantize_int8(NULL, x, 400, 8, 0), NNB_ERR_NULL_ARGUMENT, "quantize NULL model");
    expect(nnb_model_quantize_int8(m, NULL, 400, 8, 0), NNB_ERR_NULL_ARGUMENT, "quantize NULL x");
    expect(nnb_model_quantize_int8(m, x, 400, 7, 0), NNB_ERR_SHAPE_MISMATCH, "quantize 7 columns");
    float saved = x[5];
    x[5] = NAN;
    expect(nnb_model_quantize_int8(m, x, 400, 8, 0), NNB_ERR_INVALID_DATA, "quantize NaN input");
    x[5] = saved;
    check(nnb_model_is_quantized(m) == 0, "refused calls leave it fp32");
    check(nnb_model_quantize_int8(m, x, 400, 8, 200) == NNB_OK, "quantize: %s", nnb_last_error());
    check(nnb_model_is_quantized(m) == 1, "quantized");
    float *q = predict_alloc(m, x, 400, 8);
    if (q && fp32) {
        double worst = 0, big = 0;
        int agree = 0;
        for (int i = 0; i < 400; i++) {
            int a = 0, b = 0;
            for (int j = 0; j < 4; j++) {
                worst = fmax(worst, fabs((double)q[i * 4 + j] - fp32[i * 4 + j]));
                big = fmax(big, fabs((double)fp32[i * 4 + j]));
                if (q[i * 4 + j] > q[i * 4 + a]) a = j;
                if (fp32[i * 4 + j] > fp32[i * 4 + b]) b = j;
            }
            agree += a == b;
        }
        check(worst > 0 && worst < 0.05 * big, "int8 outputs close to fp32 (largest difference %g of %g)", worst, big);
        check(agree >= 392, "classes agree on %d of 400 rows", agree);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/int8.safetensors", g_tmpdir);
    check(nnb_model_save(m, path) == NNB_OK, "save quantized: %s", nnb_last_error());
    nnb_model *back = NULL;
    check(nnb_model_load(&back, path) == NNB_OK && nnb_model_is_quantized(back) == 1, "load keeps int8: %s", nnb_last_error());
    float *qb = back ? predict_alloc(back, x, 400, 8) : NULL;
    check(qb && q && memcmp(qb, q, sizeof(float) * 1600) == 0, "the loaded model predicts the same bits");
    expect(nnb_train(m, x, 400, 8, y, 1, &o, NULL), NNB_ERR_UNSUPPORTED, "training a quantized model");
    /* A compiled model quantized between two batches: the second batch is refused too. */
    nnb_model *c = new_model("8-16:relu-4", 4);
    if (c) {
        check(nnb_compile(c, &o) == NNB_OK, "compile: %s", nnb_last_error());
        check(nnb_train_batch(c, x, 32, 8, y, 1, NULL) == NNB_OK, "train_batch: %s", nnb_last_error());
        check(nnb_model_quantize_int8(c, x, 400, 8, 0) == NNB_OK, "quantize the compiled model: %s", nnb_last_error());
        expect(nnb_train_batch(c, x, 32, 8, y, 1, NULL), NNB_ERR_UNSUPPORTED, "train_batch after quantizing");
        nnb_model_free(c);
    }
    check(nnb_model_remove_quantization(m) == NNB_OK && nnb_model_is_quantized(m) == 0, "remove quantization");
    float *again = predict_alloc(m, x, 400, 8);
    check(again && fp32 && memcmp(again, fp32, sizeof(float) * 1600) == 0, "back to the fp32 bits");
    free(fp32), free(q), free(qb), free(again);
    nnb_model_free(back);
    nnb_model_free(m);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------------------------------- */
/* Threads                                                                                    */
/* ---------------------------------------------------------------------------------------- */

struct predict_job {
    const nnb_model *model;
    const float *x;
    const float *y;
    const float *ref[3];
    double ref_loss;
    size_t rows[3];
    int iterations;
    int mismatches, failures;
};

static void *predict_worker(void *arg) {
    struct predict_job *j = arg;
    float *out = malloc(sizeof(float) * j->rows[2] * 10);
    for (int it = 0; it < j->iterations; it++) {
        int v = it % 3;
        size_t n = j->rows[v] * 10;
        if (nnb_predict(j->model, j->x, j->rows[v], 64, out, n) != NNB_OK) {
            j->failures++;
            continue;
        }
        if (memcmp(out, j->ref[v], sizeof(float) * n) != 0) j->mismatches++;
        if (it % 7 == 0) {
            double loss = -1;
            if (nnb_evaluate(j->model, j->x, j->rows[2], 64, j->y, 1, NULL, &loss, NULL) != NNB_OK) j->failures++;
            else if (loss != j->ref_loss) j->mismatches++;
            nnb_model_info info;
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            char buf[64];
            if (nnb_model_get_info(j->model, &info) != NNB_OK || info.outputs != 10 ||
                nnb_model_describe(j->model, buf, sizeof buf, NULL) != NNB_OK)
                j->failures++;
        }
    }
    free(out);
    return NULL;
}

static void test_concurrent_predict(void) {
    nnb_model *m = new_model("64-128:relu-64:tanh-10", 13);
    if (!m) return;
    size_t rows[3] = {1, 37, 300};
    float *x = random_floats(300 * 64, 19);
    float *y = malloc(sizeof(float) * 300);
    for (int r = 0; r < 300; r++) y[r] = (float)(r % 10);
    struct predict_job base;
    memset(&base, 0, sizeof base);
    base.model = m;
    base.x = x;
    base.y = y;
    base.iterations = g_quick ? 30 : 600;
    for (int v = 0; v < 3; v++) {
        base.rows[v] = rows[v];
        base.ref[v] = predict_alloc(m, x, rows[v], 64);
        if (!base.ref[v]) return;
    }
    nnb_evaluate(m, x, 300, 64, y, 1, NULL, &base.ref_loss, NULL);

    enum { THREADS = 8 };
    struct predict_job jobs[THREADS];
    pthread_t t[THREADS];
    double t0 = now_seconds();
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = base;
        pthread_create(&t[i], NULL, predict_worker, &jobs[i]);
    }
    int mismatches = 0, failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        mismatches += jobs[i].mismatches;
        failures += jobs[i].failures;
    }
    check(failures == 0 && mismatches == 0,
          "8 threads x %d predicts (1, 37, 300 rows) + evaluates + queries on one model: %d failures, %d answers differing "
          "bitwise from the single-threaded ones (%.2f s)",
          base.iterations, failures, mismatches, now_seconds() - t0);
    for (int v = 0; v < 3; v++) free((void *)base.ref[v]);
    free(x);
    free(y);
    nnb_model_free(m);
}

/* One thread sits inside nnb_train (its callback waits on a flag) while another tries to train,
 * compile and train again: those must return NNB_ERR_BUSY. */
struct busy_state {
    nnb_model *model;
    const float *x, *y;
    size_t rows;
    volatile int in_callback;   /* set by the trainer's callback */
    volatile int release;       /* set by the other thread when done */
    int timed_out;
    nnb_status train_status;
    pthread_mutex_t lock;
};

static int busy_callback(const nnb_epoch_report *r, void *user_data) {
    struct busy_state *s = user_data;
    if (r->epoch != 1) return 0;
    pthread_mutex_lock(&s->lock);
    s->in_callback = 1;
    pthread_mutex_unlock(&s->lock);
    double deadline = now_seconds() + 20.0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        int done = s->release;
        pthread_mutex_unlock(&s->lock);
        if (done) break;
        if (now_seconds() > deadline) {
            s->timed_out = 1;
            break;
        }
        sleep_ms(1);
    }
    return 0;
}

static void *busy_trainer(void *arg) {
    struct busy_state *s = arg;
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 3;
    o.batch_size = 8;
    o.on_epoch = busy_callback;
    o.user_data = s;
    s->train_status = nnb_train(s->model, s->x, s->rows, 8, s->y, 1, &o, NULL);
    return NULL;
}

struct predict_during {
    const nnb_model *model;
    const float *x;
    float out[4 * 16];
    nnb_status status;
    volatile int done;
};

static void *predict_during_training(void *arg) {
    struct predict_during *p = arg;
    p->status = nnb_predict(p->model, p->x, 16, 8, p->out, 4 * 16);
    p->done = 1;
    return NULL;
}

struct race_job {
    nnb_model *model;
    const float *x, *y;
    int iterations, ok, busy, other;
    nnb_status other_status;
};

static void *race_worker(void *arg) {
    struct race_job *j = arg;
    for (int i = 0; i < j->iterations; i++) {
        double loss;
        nnb_status s = nnb_train_batch(j->model, j->x + (size_t)(i % 8) * 16 * 8, 16, 8, j->y + (i % 8) * 16, 1, &loss);
        if (s == NNB_OK) j->ok++;
        else if (s == NNB_ERR_BUSY) j->busy++;
        else {
            j->other++;
            j->other_status = s;
        }
    }
    return NULL;
}

static void test_busy(void) {
    nnb_model *m = new_model("8-32:relu-4", 6);
    if (!m) return;
    float *x, *y;
    make_blobs(128, 8, 4, 0.5f, 55, &x, &y);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.batch_size = 16;
    expect(nnb_compile(m, &o), NNB_OK, "nnb_compile before the busy test");

    struct busy_state s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.lock, NULL);
    s.model = m;
    s.x = x;
    s.y = y;
    s.rows = 128;
    pthread_t t;
    pthread_create(&t, NULL, busy_trainer, &s);
    double deadline = now_seconds() + 20.0;
    int inside = 0;
    while (!inside && now_seconds() < deadline) {
        pthread_mutex_lock(&s.lock);
        inside = s.in_callback;
        pthread_mutex_unlock(&s.lock);
        if (!inside) sleep_ms(1);
    }
    check(inside, "the trainer thread reached its epoch-1 callback");
    if (inside) {
        double loss;
        nnb_epoch_report rep;
        memset(&rep, 0, sizeof rep);
        rep.struct_size = sizeof rep;
        expect(nnb_train_batch(m, x, 16, 8, y, 1, &loss), NNB_ERR_BUSY, "nnb_train_batch while another thread is in nnb_train");
        expect(nnb_train_epoch(m, x, 128, 8, y, 1, &rep), NNB_ERR_BUSY, "nnb_train_epoch while another thread is in nnb_train");
        expect(nnb_compile(m, &o), NNB_ERR_BUSY, "nnb_compile while another thread is in nnb_train");
        nnb_train_options t2;
        nnb_train_options_init(&t2);
        t2.epochs = 1;
        expect(nnb_train(m, x, 128, 8, y, 1, &t2, NULL), NNB_ERR_BUSY, "nnb_train while another thread is in nnb_train");
    }
    /* A predict meanwhile: the header does not say whether it waits for the trainer, fails
     * with BUSY or reads the weights between steps; any of those, with sane outputs. */
    struct predict_during pd;
    memset(&pd, 0, sizeof pd);
    pd.model = m;
    pd.x = x;
    pthread_t pt;
    pthread_create(&pt, NULL, predict_during_training, &pd);
    sleep_ms(50);
    int finished_before_release = pd.done;
    pthread_mutex_lock(&s.lock);
    s.release = 1;
    pthread_mutex_unlock(&s.lock);
    pthread_join(t, NULL);
    pthread_join(pt, NULL);
    check((pd.status == NNB_OK && all_finite(pd.out, 64)) || pd.status == NNB_ERR_BUSY,
          "nnb_predict from a third thread during nnb_train: %s, %s", status_name(pd.status),
          finished_before_release ? "returned while the trainer was in its callback" : "waited for the trainer");
    check(!s.timed_out, "the other thread's calls returned at once (the trainer was not kept waiting 20 s)");
    expect(s.train_status, NNB_OK, "the trainer's nnb_train finished");
    float *p = predict_alloc(m, x, 128, 8);
    if (p) check(all_finite(p, 512), "the model predicts finite values after the contention");
    free(p);
    double loss = -1;
    expect(nnb_train_batch(m, x, 16, 8, y, 1, &loss), NNB_OK, "nnb_train_batch once the trainer has finished (not left busy)");

    /* Two threads hammering nnb_train_batch on one model: each call succeeds or says BUSY. */
    struct race_job jobs[2];
    pthread_t rt[2];
    for (int i = 0; i < 2; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].model = m;
        jobs[i].x = x;
        jobs[i].y = y;
        jobs[i].iterations = g_quick ? 50 : 2000;
        pthread_create(&rt[i], NULL, race_worker, &jobs[i]);
    }
    for (int i = 0; i < 2; i++) pthread_join(rt[i], NULL);
    int ok = jobs[0].ok + jobs[1].ok, busy = jobs[0].busy + jobs[1].busy, other = jobs[0].other + jobs[1].other;
    check(other == 0 && ok > 0, "2 threads x %d nnb_train_batch on one model: %d OK, %d BUSY, %d other (%s)", jobs[0].iterations,
          ok, busy, other, status_name(jobs[0].other ? jobs[0].other_status : jobs[1].other_status));
    p = predict_alloc(m, x, 128, 8);
    if (p) check(all_finite(p, 512), "the model predicts finite values after the race");
    free(p);
    double acc = 0;
    nnb_evaluate(m, x, 128, 8, y, 1, NULL, &loss, &acc);
    check(acc > 0.9, "and it learned the blobs (accuracy %g): the steps were applied, not garbled", acc);

    pthread_mutex_destroy(&s.lock);
    free(x);
    free(y);
    nnb_model_free(m);
}

/* ---------------------------------------------------------------------------------------- */
/* Hostile and careless calls (each reproduces a defect that once crashed, hung or lied)      */
/* ---------------------------------------------------------------------------------------- */

static void test_hostile_sizes(void) {
    const float A[4] = {1, 2, 3, 4};
    float C[4] = {0};
    expect(nnb_sgemm_reference(0, 0, 2, 2, SIZE_MAX, 1, A, 2, A, 2, 0, C, 2), NNB_ERR_INVALID_ARGUMENT,
           "nnb_sgemm_reference(K = SIZE_MAX) is refused (it used to crash)");
    check(strstr(nnb_last_error(), "K is 18446744073709551615") != NULL, "and the message names K and its value: %s",
          nnb_last_error());
    expect(nnb_sgemm_reference(0, 0, SIZE_MAX, 2, 2, 1, A, 2, A, 2, 0, C, 2), NNB_ERR_INVALID_ARGUMENT,
           "nnb_sgemm_reference(M = SIZE_MAX) is refused (it used to return OK)");
    expect(nnb_sgemm_reference(0, 0, 2, 2, 2, 1, A, SIZE_MAX / 2, A, 2, 0, C, 2), NNB_ERR_INVALID_ARGUMENT,
           "nnb_sgemm_reference(lda = SIZE_MAX / 2): rows * lda overflows");

    nnb_model *m = new_model("4-3", 1);
    if (!m) return;
    float out[12];
    expect(nnb_predict(m, ZEROS, SIZE_MAX, 4, out, 12), NNB_ERR_INVALID_ARGUMENT, "nnb_predict(rows = SIZE_MAX)");
    check(strstr(nnb_last_error(), "rows is 18446744073709551615") != NULL, "the message says rows is SIZE_MAX, not 0: %s",
          nnb_last_error());
    expect(nnb_predict(m, ZEROS, 1, SIZE_MAX, out, 12), NNB_ERR_INVALID_ARGUMENT, "nnb_predict(cols = SIZE_MAX)");
    expect(nnb_predict(m, ZEROS, 1, 4, out, SIZE_MAX), NNB_ERR_INVALID_ARGUMENT, "nnb_predict(capacity = SIZE_MAX)");
    check(strstr(nnb_last_error(), "capacity is 18446744073709551615") != NULL, "named, not \"out holds -1 floats\": %s",
          nnb_last_error());

    /* nnb_evaluate validates targets as nnb_train does: soft targets outside [0, 1]. */
    float soft[3] = {-0.5f, 0.5f, 1.0f}, x[4] = {1, 2, 3, 4};
    double loss = 0;
    expect(nnb_evaluate(m, x, 1, 4, soft, 3, "cross_entropy", &loss, NULL), NNB_ERR_INVALID_DATA, "nnb_evaluate(soft target -0.5)");
    soft[0] = 7;
    expect(nnb_evaluate(m, x, 1, 4, soft, 3, "cross_entropy", &loss, NULL), NNB_ERR_INVALID_DATA, "nnb_evaluate(soft target 7)");

    int threads = nnb_get_num_threads();
    expect(nnb_set_num_threads(100000), NNB_ERR_INVALID_ARGUMENT, "nnb_set_num_threads(100000) is refused (it used to return OK)");
    check(nnb_get_num_threads() == threads, "and the thread count is unchanged (%d)", nnb_get_num_threads());
    nnb_model_free(m);

    nnb_model *bad = NULL;
    expect(nnb_model_create_from_string(&bad, "4-3:softmax", 0), NNB_ERR_UNKNOWN_NAME, "\"4-3:softmax\"");
    check(strstr(nnb_last_error(), "layer of its own") != NULL && strstr(nnb_last_error(), "4-3-softmax") != NULL,
          "says softmax is a layer of its own, written 4-3-softmax: %s", nnb_last_error());
    expect(nnb_model_create_from_string(&bad, "4-dropout:-0.1", 0), NNB_ERR_INVALID_ARGUMENT, "\"4-dropout:-0.1\"");
    check(strstr(nnb_last_error(), "rate") != NULL, "speaks of the dropout rate, not a missing activation: %s", nnb_last_error());
}

/* Every option takes effect as PyTorch defines it, or is refused naming the option. One step
 * of each optimizer on a 1-1 linear model, mse, one row, worked out by hand. */
static double one_step_weight_change(const char *optimizer, void (*set)(nnb_train_options *)) {
    nnb_model *m = new_model("1-1", 77);
    if (!m) return NAN;
    float probe[2] = {0, 1}, out[2];
    nnb_predict(m, probe, 2, 1, out, 2);
    double w = out[1] - out[0];
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.loss = "mse";
    o.optimizer = optimizer;
    o.learning_rate = 0.1f;
    o.shuffle = 0;
    if (set) set(&o);
    double change = NAN, loss;
    float x = 2, t = 3;
    if (nnb_compile(m, &o) == NNB_OK && nnb_train_batch(m, &x, 1, 1, &t, 1, &loss) == NNB_OK) {
        nnb_predict(m, probe, 2, 1, out, 2);
        change = fabs((out[1] - out[0]) - w);
    } else {
        check(0, "%s: one step: %s", optimizer, nnb_last_error());
    }
    nnb_model_free(m);
    return change;
}

static void set_alpha_half(nnb_train_options *o) { o->alpha = 0.5f; }
static void set_eps_one(nnb_train_options *o) { o->eps = 1.0f; }
static void set_lr_small(nnb_train_options *o) { o->learning_rate = 0.05f; }

static void test_options_take_effect(void) {
    /* rmsprop: v = (1 - alpha) g^2, w -= lr g / (sqrt(v) + eps): |dw| = lr / sqrt(1 - alpha) (eps ~ 0). */
    double d = one_step_weight_change("rmsprop", NULL);
    check(fabs(d - 0.1 / sqrt(0.01)) < 1e-4, "rmsprop, default alpha 0.99: |dw| %g == 0.1 / sqrt(0.01)", d);
    d = one_step_weight_change("rmsprop", set_alpha_half);
    check(fabs(d - 0.1 / sqrt(0.5)) < 1e-5, "rmsprop, alpha 0.5 takes effect: |dw| %g == 0.1 / sqrt(0.5)", d);
    /* adagrad: s = g^2, w -= lr g / (sqrt(s) + eps). With the x and t above, g = 2 (w x + b - t) x. */
    nnb_model *m = new_model("1-1", 77);
    float probe[2] = {0, 1}, out[2];
    nnb_predict(m, probe, 2, 1, out, 2);
    double g = fabs(2 * ((out[1] - out[0]) * 2 + out[0] - 3) * 2);
    nnb_model_free(m);
    d = one_step_weight_change("adagrad", set_eps_one);
    check(fabs(d - 0.1 * g / (g + 1)) < 1e-5, "adagrad, eps 1 takes effect: |dw| %g == lr g / (g + 1) = %g", d, 0.1 * g / (g + 1));
    /* irprop: the first step is the initial step size, the learning rate. */
    d = one_step_weight_change("irprop", set_lr_small);
    check(fabs(d - 0.05) < 1e-6, "irprop, learning_rate 0.05 is the first step: |dw| %g", d);

    struct { const char *optimizer, *option; void (*set)(nnb_train_options *); } refused[] = {
        {"adam", "momentum", NULL}, {"adam", "nesterov", NULL}, {"rmsprop", "beta2", NULL},
        {"sgd", "eps", set_eps_one}, {"adam", "alpha", set_alpha_half}, {"irprop", "weight_decay", NULL},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        nnb_model *mm = new_model("1-1", 1);
        nnb_train_options o;
        nnb_train_options_init(&o);
        o.optimizer = refused[i].optimizer;
        if (refused[i].set) refused[i].set(&o);
        else if (strcmp(refused[i].option, "momentum") == 0) o.momentum = 0.9f;
        else if (strcmp(refused[i].option, "nesterov") == 0) o.nesterov = 1, o.momentum = 0.9f;
        else if (strcmp(refused[i].option, "beta2") == 0) o.beta2 = 0.9f;
        else if (strcmp(refused[i].option, "weight_decay") == 0) o.weight_decay = 0.1f;
        o.loss = "mse";
        nnb_status s = nnb_compile(mm, &o);
        const char *msg = nnb_last_error();
        check(s == NNB_ERR_INVALID_ARGUMENT && strstr(msg, refused[i].option) && strstr(msg, refused[i].optimizer),
              "%s with %s: refused naming both (%s)", refused[i].option, refused[i].optimizer, msg);
        nnb_model_free(mm);
    }
    nnb_model *mm = new_model("1-1", 1);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.schedule = "step";
    o.gamma = -5;
    expect(nnb_compile(mm, &o), NNB_ERR_INVALID_ARGUMENT, "schedule step with gamma -5 (it trained with a negative rate)");
    o.schedule = "cosine";
    o.gamma = 0.5f;
    expect(nnb_compile(mm, &o), NNB_ERR_INVALID_ARGUMENT, "gamma with the cosine schedule, which has none");
    nnb_train_options_init(&o);
    o.label_smoothing = 0.1f;
    o.loss = "mse";
    expect(nnb_compile(mm, &o), NNB_ERR_INVALID_ARGUMENT, "label_smoothing with mse");
    nnb_model_free(mm);
}

static void nan_forward(void *ctx, float *y, const float *x, size_t n) {
    (void)ctx, (void)x;
    for (size_t i = 0; i < n; i++) y[i] = NAN;
}
static void pass_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)ctx, (void)x, (void)y;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i];
}

/* Predictions on the training rows at the end of each epoch, from the epoch callback (which
 * may predict on the model it trains). */
struct epoch_snapshots {
    nnb_model *model;
    const float *x;
    float out[8][128];
    int epochs;
};
static int snapshot_epoch(const nnb_epoch_report *r, void *user_data) {
    struct epoch_snapshots *s = user_data;
    if (r->epoch >= 1 && r->epoch < 8 && nnb_predict(s->model, s->x, 64, 2, s->out[r->epoch], 128) == NNB_OK) s->epochs = r->epoch;
    return 0;
}

static void test_divergence(void) {
    float *x, *y;
    make_blobs(64, 2, 2, 0.3f, 5, &x, &y);
    nnb_model *m = new_model("2-64:relu-64:relu-2", 42);
    if (!m) return;
    struct epoch_snapshots snap = {m, x, {{0}}, 0};
    float *before = predict_alloc(m, x, 64, 2);
    if (before) memcpy(snap.out[0], before, sizeof snap.out[0]);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.optimizer = "sgd";
    o.learning_rate = 1e6f;
    o.epochs = 7;
    o.on_epoch = snapshot_epoch;
    o.user_data = &snap;
    expect(nnb_train(m, x, 64, 2, y, 1, &o, NULL), NNB_ERR_DIVERGED, "sgd at lr 1e6: NNB_ERR_DIVERGED, not NNB_OK with NaN");
    int epoch = 0, restored = 0;
    const char *where = strstr(nnb_last_error(), "in epoch "), *back = strstr(nnb_last_error(), "start of epoch ");
    const int read_epoch = where && sscanf(where, "in epoch %d", &epoch) == 1;
    const int read_restored = back && sscanf(back, "start of epoch %d", &restored) == 1;
    check(read_epoch && epoch == snap.epochs + 1, "the message says in which epoch (the one after the last reported, %d): %s",
          snap.epochs, nnb_last_error());
    check(read_restored && restored >= 1 && restored <= epoch, "and to which epoch's start the weights went back (%d)", restored);
    float *after = predict_alloc(m, x, 64, 2);
    check(after && restored >= 1 && restored <= 8 && memcmp(snap.out[restored - 1], after, sizeof(float) * 128) == 0 &&
              all_finite(after, 128),
          "the model keeps the last weights that gave a finite loss (start of epoch %d): its outputs are finite", restored);
    free(after);

    /* A file with a NaN weight (the last float of the file, the last bias) is refused. */
    char path[512];
    tmp_path(path, sizeof path, "nan.safetensors");
    expect(nnb_model_save(m, path), NNB_OK, "save");
    long size = 0;
    unsigned char *bytes = read_file(path, &size);
    const uint32_t nan_bits = 0x7FC00000u;
    if (bytes && size > 4) {
        memcpy(bytes + size - 4, &nan_bits, 4);
        write_file(path, bytes, (size_t)size);
    }
    free(bytes);
    nnb_model *loaded = NULL;
    expect(nnb_model_load(&loaded, path), NNB_ERR_INVALID_DATA, "nnb_model_load of a model with a NaN weight");
    check(loaded == NULL && strstr(nnb_last_error(), "not finite") != NULL, "refused, saying why: %s", nnb_last_error());
    expect(nnb_model_load_with_flags(&loaded, path, NNB_LOAD_ALLOW_NONFINITE), NNB_OK, "loaded when asked (NNB_LOAD_ALLOW_NONFINITE)");
    float row[2] = {0, 0}, logits[2];
    if (loaded) {
        expect(nnb_predict(loaded, row, 1, 2, logits, 2), NNB_OK, "and it predicts");
        check(isnan(logits[1]), "the NaN bias shows in its output (%g)", logits[1]);
    }
    nnb_model_free(loaded);
    expect(nnb_model_load_with_flags(&loaded, path, 6), NNB_ERR_INVALID_ARGUMENT, "unknown flag bits");
    unlink(path);

    /* A plugin activation that returns NaN. */
    nnb_activation_plugin p = {sizeof p, NNB_PLUGIN_ABI_VERSION, "capi_nan", nan_forward, pass_backward, NULL};
    if (!nnb_plugin_registered("capi_nan")) expect(nnb_register_activation(&p), NNB_OK, "register capi_nan");
    nnb_model *pm = new_model("2-4-capi_nan-2", 3);
    nnb_train_options_init(&o);
    o.epochs = 1;
    if (pm) expect(nnb_train(pm, x, 64, 2, y, 1, &o, NULL), NNB_ERR_DIVERGED, "a plugin activation returning NaN: NNB_ERR_DIVERGED");
    nnb_model_free(pm);
    free(before);
    nnb_model_free(m);
    free(x);
    free(y);
}

static int is_char_device(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISCHR(st.st_mode);
}

static void test_save_targets(void) {
    nnb_model *m = new_model("2-3", 1);
    if (!m) return;
    expect(nnb_model_save(m, "/dev/null"), NNB_ERR_IO, "nnb_model_save(\"/dev/null\") is refused");
    check(is_char_device("/dev/null"), "and /dev/null is still a character device (it became a file, as root)");
    expect(nnb_model_save(m, g_tmpdir), NNB_ERR_IO, "nnb_model_save(a directory)");

    char target[512], link_path[512];
    tmp_path(target, sizeof target, "target.safetensors");
    tmp_path(link_path, sizeof link_path, "link.safetensors");
    write_file(target, "old", 3);
    chmod(target, 0640);
    check(symlink(target, link_path) == 0, "symlink");
    expect(nnb_model_save(m, link_path), NNB_OK, "nnb_model_save through a symbolic link");
    struct stat st;
    check(lstat(link_path, &st) == 0 && S_ISLNK(st.st_mode), "the link is still a link");
    check(stat(target, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_size > 3,
          "its target got the model and kept mode 0640 (mode %o)", (unsigned)(st.st_mode & 07777));
    unlink(link_path);

    /* A save killed half-way leaves its temporary; the next save removes it. A dead pid: */
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0);
    char stale[600];
    snprintf(stale, sizeof stale, "%s/.target.safetensors.nnb-tmp-%d-1.2-0", g_tmpdir, (int)child);
    write_file(stale, "partial", 7);
    expect(nnb_model_save(m, target), NNB_OK, "save over the file");
    check(access(stale, F_OK) != 0, "the dead writer's temporary is gone");

    /* Unprivileged, a read-only file in a writable folder must not be replaced by the rename. */
    if (geteuid() == 0) {
        char dir[512], ro[600];
        tmp_path(dir, sizeof dir, "shared");
        mkdir(dir, 0777);
        chmod(dir, 0777);
        snprintf(ro, sizeof ro, "%s/root.safetensors", dir);
        write_file(ro, "root's", 6);
        chmod(ro, 0444);
        fflush(stdout);
        /* The child's status comes back through a pipe: valgrind may replace its exit code. */
        int fds[2];
        int got = -1;
        if (pipe(fds) == 0) {
            pid_t pid = fork();
            if (pid == 0) {
                close(fds[0]);
                int result = setgid(65534) == 0 && setuid(65534) == 0 ? (int)nnb_model_save(m, ro) : -2;
                if (write(fds[1], &result, sizeof result) != (ssize_t)sizeof result) _exit(3);
                _exit(0);
            }
            close(fds[1]);
            if (read(fds[0], &got, sizeof got) != (ssize_t)sizeof got) got = -1;
            close(fds[0]);
            waitpid(pid, NULL, 0);
        }
        long size = 0;
        unsigned char *kept = read_file(ro, &size);
        check(got == NNB_ERR_IO && kept && size == 6 && memcmp(kept, "root's", 6) == 0,
              "as uid 65534: saving over a root-owned 0444 file is NNB_ERR_IO and the file is kept (status %d)", got);
        free(kept);
        unlink(ro);
        rmdir(dir);
    } else {
        chmod(target, 0444);
        expect(nnb_model_save(m, target), NNB_ERR_IO, "saving over a read-only file");
    }
    unlink(target);
    nnb_model_free(m);
}

/* Eight threads predicting back to back must not starve a trainer (it waited a minute for one
 * epoch behind glibc's reader-preferring rwlock). */
struct flat_out_reader {
    nnb_model *model;
    const float *x;
    int *stop; /* read and written with __atomic builtins */
    long calls;
};
static void *flat_out(void *arg) {
    struct flat_out_reader *r = arg;
    float out[37 * 10];
    while (!__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        if (nnb_predict(r->model, r->x, 37, 64, out, sizeof out / sizeof out[0]) == NNB_OK) r->calls++;
    }
    return NULL;
}

static void test_trainer_not_starved(void) {
    nnb_model *m = new_model("64-128:relu-10", 21);
    if (!m) return;
    float *x = random_floats(256 * 64, 31);
    float *y = malloc(sizeof(float) * 256);
    for (int i = 0; i < 256; i++) y[i] = (float)(i % 10);
    int stop = 0;
    struct flat_out_reader readers[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        readers[i] = (struct flat_out_reader){m, x, &stop, 0};
        pthread_create(&t[i], NULL, flat_out, &readers[i]);
    }
    sleep_ms(50);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = g_quick ? 3 : 30;
    const double start = now_seconds();
    nnb_status s = nnb_train(m, x, 256, 64, y, 1, &o, NULL);
    const double seconds = now_seconds() - start;
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    long calls = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        calls += readers[i].calls;
    }
    check(s == NNB_OK && seconds < 20, "%d epochs while 8 threads predict flat out: %.2f s (bound 20 s), %ld predicts",
          o.epochs, seconds, calls);
    free(x);
    free(y);
    nnb_model_free(m);
}

static void test_free_null(void) {
    nnb_model_free(NULL);
    check(1, "nnb_model_free(NULL) returns");
}


/* ---------------------------------------------------------------------------------------- */
/* Shaped layers: input shapes, layer specs by name, the grammar's TYPE(ARGS) */

static nnb_layer_spec named(const char *type_name, const char *attributes) {
    nnb_layer_spec s;
    nnb_layer_spec_init(&s);
    s.type = NNB_LAYER_NAMED;
    s.type_name = type_name;
    s.attributes = attributes;
    return s;
}

static int last_error_mentions(const char *needle) { return strstr(nnb_last_error(), needle) != NULL; }

static void test_shapes(void) {
    nnb_model *m = NULL;
    expect(nnb_model_create_from_string(&m, "1x28x28-flatten-32:relu-10", 3), NNB_OK, "an image model from a description");
    if (!m) return;
    nnb_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    expect(nnb_model_get_info(m, &info), NNB_OK, "nnb_model_get_info");
    check(info.inputs == 784 && info.input_rank == 3 && info.input_shape[0] == 1 && info.input_shape[1] == 28 &&
              info.input_shape[2] == 28 && info.input_shape[3] == 0 && info.outputs == 10,
          "info: %lld inputs, rank %d, shape %lldx%lldx%lld", (long long)info.inputs, info.input_rank,
          (long long)info.input_shape[0], (long long)info.input_shape[1], (long long)info.input_shape[2]);
    char text[256];
    expect(nnb_model_describe(m, text, sizeof text, NULL), NNB_OK, "describe");
    check(strcmp(text, "1x28x28-flatten-32:relu-10") == 0, "the description round-trips: %s", text);
    /* An older, ABI-1 info struct (without the shape) is filled up to its size. */
    nnb_model_info old;
    memset(&old, 0xab, sizeof old);
    old.struct_size = (uint32_t)offsetof(nnb_model_info, input_rank);
    expect(nnb_model_get_info(m, &old), NNB_OK, "an ABI-1 sized nnb_model_info");
    check(old.parameters == info.parameters && old.input_rank == (int32_t)0xabababab, "the shape fields past its size are untouched");
    nnb_model_free(m);

    /* Specs by type name: reshape a flat input to an image, flatten, dense by units. */
    nnb_layer_spec specs[4] = {named("reshape", "shape=1x4x4"), named("Flatten", NULL), named("dense", "units=8,activation=tanh"),
                               named("dense", "out_features=3")};
    m = NULL;
    expect(nnb_model_create(&m, 16, specs, 4, 1), NNB_OK, "NNB_LAYER_NAMED specs");
    if (m) {
        expect(nnb_model_describe(m, text, sizeof text, NULL), NNB_OK, "describe");
        check(strcmp(text, "16-reshape(1x4x4)-flatten-8:tanh-3") == 0, "named specs describe as %s", text);
        nnb_model_free(m);
    }
    /* An ABI-1 spec (its struct ends before type_name) still works. */
    nnb_layer_spec legacy = dense(4, "relu");
    legacy.struct_size = (uint32_t)offsetof(nnb_layer_spec, type_name);
    m = NULL;
    expect(nnb_model_create(&m, 3, &legacy, 1, 1), NNB_OK, "an ABI-1 sized nnb_layer_spec");
    nnb_model_free(m);

    struct { nnb_layer_spec spec; nnb_status want; const char *mentions; } bad[] = {
        {named("conv9d", NULL), NNB_ERR_UNKNOWN_NAME, "conv9d"},
        {named("dense", "units=4,kernel=3"), NNB_ERR_UNKNOWN_NAME, "kernel"},
        {named("dense", "units=-2"), NNB_ERR_INVALID_ARGUMENT, "-2"},
        {named("dropout", "p=1.5"), NNB_ERR_INVALID_ARGUMENT, "1.5"},
        {named("dropout", "p=relu"), NNB_ERR_INVALID_ARGUMENT, "relu"},
        {named("reshape", "shape=3x3"), NNB_ERR_SHAPE_MISMATCH, "3x3"},
        {named("dense", "units"), NNB_ERR_INVALID_ARGUMENT, "units"},
        {named(NULL, NULL), NNB_ERR_NULL_ARGUMENT, "type_name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = (nnb_model *)&m;
        char what[160];
        snprintf(what, sizeof what, "named spec %s(%s)", bad[i].spec.type_name ? bad[i].spec.type_name : "NULL",
                 bad[i].spec.attributes ? bad[i].spec.attributes : "");
        expect(nnb_model_create(&m, 16, &bad[i].spec, 1, 1), bad[i].want, what);
        check(m == NULL && last_error_mentions(bad[i].mentions), "%s: *out is NULL and the message names '%s': %s", what,
              bad[i].mentions, nnb_last_error());
    }
    struct { const char *text; nnb_status want; const char *mentions; } descriptions[] = {
        {"1x28x28-10", NNB_OK, ""}, /* dense on the last dimension, as nn.Linear */
        {"1x28x28-flatten-reshape(5x5)-10", NNB_ERR_SHAPE_MISMATCH, "5x5"},
        {"784-reshape(1x28x28)-flatten-10", NNB_OK, ""},
        {"784-reshape(-1x28)-28-flatten-10", NNB_OK, ""},
        {"784-reshape(3x3)-10", NNB_ERR_SHAPE_MISMATCH, "3x3"},
        {"784-conv9d(3)-10", NNB_ERR_UNKNOWN_NAME, "conv9d"},
        {"784-dense(units=10,stride=2)", NNB_ERR_UNKNOWN_NAME, "stride"},
        {"784-dense(10,20)", NNB_ERR_INVALID_ARGUMENT, "20"},
        {"784-dense(units=10):tanh-bogus", NNB_ERR_UNKNOWN_NAME, "bogus"},
        {"0x28-10", NNB_ERR_INVALID_ARGUMENT, "0x28"},
        {"1x1x1x1x1x1x1x1x1-3", NNB_ERR_INVALID_ARGUMENT, "at most 8"},
        {"784-reshape(1x28x28-10", NNB_ERR_INVALID_ARGUMENT, "(" },
    };
    for (size_t i = 0; i < sizeof descriptions / sizeof descriptions[0]; i++) {
        m = NULL;
        nnb_status got = nnb_model_create_from_string(&m, descriptions[i].text, 1);
        expect(got, descriptions[i].want, descriptions[i].text);
        if (got != NNB_OK) {
            check(last_error_mentions(descriptions[i].mentions), "%s: the message names '%s': %s", descriptions[i].text,
                  descriptions[i].mentions, nnb_last_error());
        } else {
            expect(nnb_model_describe(m, text, sizeof text, NULL), NNB_OK, "describe");
            nnb_model *again = NULL;
            expect(nnb_model_create_from_string(&again, text, 1), NNB_OK, "its description builds the same model");
            nnb_model_free(again);
        }
        nnb_model_free(m);
    }

    /* A leaky_relu slope survives describe (the short form "N:act" cannot carry it). */
    nnb_layer_spec leaky = dense(3, "leaky_relu");
    leaky.alpha = 0.5f;
    m = NULL;
    expect(nnb_model_create(&m, 4, &leaky, 1, 9), NNB_OK, "dense leaky_relu alpha 0.5");
    if (m) {
        expect(nnb_model_describe(m, text, sizeof text, NULL), NNB_OK, "describe");
        nnb_model *again = NULL;
        expect(nnb_model_create_from_string(&again, text, 9), NNB_OK, text);
        float x[4] = {-1, -2, 3, 4}, a[3], b[3];
        if (again) {
            nnb_predict(m, x, 1, 4, a, 3);
            nnb_predict(again, x, 1, 4, b, 3);
            check(memcmp(a, b, sizeof a) == 0, "%s predicts as the model it describes", text);
        }
        nnb_model_free(again);
        nnb_model_free(m);
    }

    /* A version-3 file is refused by name. */
    m = new_model("4-3", 1);
    char path[512], newer[512];
    tmp_path(path, sizeof path, "v3.safetensors");
    tmp_path(newer, sizeof newer, "v4.safetensors");
    expect(nnb_model_save(m, path), NNB_OK, "save");
    nnb_model_free(m);
    long size = 0;
    unsigned char *bytes = read_file(path, &size);
    const char *key = "\"format_version\":\"3\"";
    char *v = NULL;
    for (long i = 0; bytes && v == NULL && i + (long)strlen(key) <= size; i++)
        if (memcmp(bytes + i, key, strlen(key)) == 0) v = (char *)bytes + i;
    check(v != NULL, "the file says format_version 3");
    if (v) {
        v[18] = '4';
        write_file(newer, bytes, (size_t)size);
        m = (nnb_model *)&m;
        expect(nnb_model_load(&m, newer), NNB_ERR_UNSUPPORTED, "loading a version-4 file");
        check(m == NULL && last_error_mentions("version 4"), "the message names the version: %s", nnb_last_error());
    }
    free(bytes);
}

/* Reports: each epoch's own time, best_epoch, and nnb_train_epoch's epochs. */
static void test_reports(void) {
    float *x = NULL, *y = NULL;
    make_blobs(400, 8, 3, 1.0f, 5, &x, &y);
    nnb_model *m = new_model("8-16:relu-3", 4);
    if (!m) return;
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 8;
    o.validation_split = 0.25f;
    o.early_stopping_patience = 2;
    o.learning_rate = 0.5f; /* large: val_loss stops improving early */
    nnb_epoch_report r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    double t0 = now_seconds();
    expect(nnb_train(m, x, 400, 8, y, 1, &o, &r), NNB_OK, "nnb_train with early stopping");
    double total = now_seconds() - t0;
    check(r.best_epoch >= 1 && r.best_epoch <= r.epoch, "best_epoch %d of %d epochs run", r.best_epoch, r.epoch);
    check(r.seconds > 0 && (r.epoch == 1 || r.seconds < total * 0.9), "the report's seconds (%.4f) are the last epoch's, not the call's (%.4f)",
          r.seconds, total);
    nnb_train_options c;
    nnb_train_options_init(&c);
    c.epochs = 5;
    expect(nnb_compile(m, &c), NNB_OK, "compile");
    expect(nnb_train_epoch(m, x, 400, 8, y, 1, &r), NNB_OK, "train_epoch");
    expect(nnb_train_epoch(m, x, 400, 8, y, 1, &r), NNB_OK, "train_epoch");
    check(r.epoch == 2 && r.epochs == 5 && r.best_epoch == 0, "train_epoch reports epoch %d of %d (the compiled epochs), best_epoch %d",
          r.epoch, r.epochs, r.best_epoch);
    nnb_model_free(m);

    /* k nnb_train_epoch calls train as nnb_train with k epochs does. */
    nnb_model *a = new_model("8-16:relu-dropout:0.2-3", 6), *b = new_model("8-16:relu-dropout:0.2-3", 6);
    nnb_train_options_init(&c);
    c.epochs = 3;
    c.seed = 12;
    expect(nnb_train(a, x, 400, 8, y, 1, &c, NULL), NNB_OK, "nnb_train 3 epochs");
    expect(nnb_compile(b, &c), NNB_OK, "compile");
    for (int e = 0; e < 3; e++) nnb_train_epoch(b, x, 400, 8, y, 1, NULL);
    float *pa = predict_alloc(a, x, 400, 8), *pb = predict_alloc(b, x, 400, 8);
    check(pa && pb && memcmp(pa, pb, 400 * 3 * sizeof(float)) == 0, "3 x nnb_train_epoch == nnb_train(epochs 3), bitwise");
    free(pa);
    free(pb);
    nnb_model_free(a);
    nnb_model_free(b);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------------------------------- */
/* Convolutional networks: (N, C, H, W) rows, named conv specs, augmentation, the bad inputs */

/* n 1x8x8 images, each with one bright 4x4 quadrant over noise; the label is the quadrant. */
static void make_quadrants(float *x, float *y, size_t n, uint64_t seed) {
    uint64_t g = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        const int q = (int)(i % 4);
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++) {
                g ^= g << 13, g ^= g >> 7, g ^= g << 17;
                const float noise = (float)(g >> 40) / 16777216.0f * 0.3f;
                const int inside = (r < 4) == (q < 2) && (c < 4) == (q % 2 == 0);
                x[i * 64 + (size_t)r * 8 + (size_t)c] = noise + (inside ? 1.0f : 0.0f);
            }
        y[i] = (float)q;
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Models in memory; the loss and class names a model keeps                                   */
/* ---------------------------------------------------------------------------------------- */

/* nnb_model_save_to_buffer gives the file's bytes; nnb_model_load_from_buffer reads them back. */
static void test_buffers(void) {
    nnb_model *m = new_model("2-8:tanh-1", 4);
    if (!m) return;
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.loss = "bce";
    o.epochs = 3;
    expect(nnb_train(m, XOR_X, 4, 2, XOR_Y, 1, &o, NULL), NNB_OK, "train with bce");
    size_t needed = 0;
    expect(nnb_model_save_to_buffer(m, 0, NULL, 0, &needed), NNB_OK, "size query");
    check(needed > 8, "the model is %zu bytes", needed);
    unsigned char *buf = malloc(needed);
    size_t got = 0;
    expect(nnb_model_save_to_buffer(m, 0, buf, needed - 1, &got), NNB_ERR_CAPACITY, "one byte short");
    check(got == needed && last_error_mentions("capacity"), "the short call still says the size: %s", nnb_last_error());
    expect(nnb_model_save_to_buffer(m, 0, buf, needed, &got), NNB_OK, "save to the buffer");
    expect(nnb_model_save_to_buffer(m, 4, buf, needed, &got), NNB_ERR_INVALID_ARGUMENT, "unknown flag");
    expect(nnb_model_save_to_buffer(m, 0, NULL, 10, &got), NNB_ERR_NULL_ARGUMENT, "NULL buffer with a capacity");
    /* The same bytes as the file. */
    char path[512];
    tmp_path(path, sizeof path, "buffer.safetensors");
    expect(nnb_model_save(m, path), NNB_OK, "save the file");
    long size = 0;
    unsigned char *file = read_file(path, &size);
    check(file && (size_t)size == needed && memcmp(file, buf, needed) == 0, "the buffer holds the file's bytes (%ld, %zu)",
          size, needed);
    free(file);

    nnb_model *back = (nnb_model *)&back;
    expect(nnb_model_load_from_buffer(&back, buf, needed, 0), NNB_OK, "load from the buffer");
    if (back) {
        float *a = predict_alloc(m, XOR_X, 4, 2), *b = predict_alloc(back, XOR_X, 4, 2);
        check(a && b && memcmp(a, b, 4 * sizeof(float)) == 0, "the loaded model predicts bitwise the same");
        free(a);
        free(b);
        char name[32];
        expect(nnb_model_get_loss(back, name, sizeof name, NULL), NNB_OK, "the loaded model's loss");
        check(strcmp(name, "bce") == 0, "the file kept the loss bce: %s", name);
        /* nnb_evaluate without a loss name uses the saved bce: the same as naming it. */
        double l1 = 0, l2 = 0;
        expect(nnb_evaluate(back, XOR_X, 4, 2, XOR_Y, 1, NULL, &l1, NULL), NNB_OK, "evaluate, loss NULL");
        expect(nnb_evaluate(back, XOR_X, 4, 2, XOR_Y, 1, "bce", &l2, NULL), NNB_OK, "evaluate under bce");
        check(l1 == l2, "loss NULL evaluates with the saved bce (%g == %g)", l1, l2);
        nnb_model_free(back);
    }
    back = (nnb_model *)&back;
    expect(nnb_model_load_from_buffer(&back, buf, needed / 2, 0), NNB_ERR_CORRUPT_FILE, "half the bytes");
    check(back == NULL && last_error_mentions("truncated"), "a truncated buffer is named: %s", nnb_last_error());
    expect(nnb_model_load_from_buffer(&back, NULL, 10, 0), NNB_ERR_NULL_ARGUMENT, "data NULL");
    expect(nnb_model_load_from_buffer(&back, buf, needed, 8), NNB_ERR_INVALID_ARGUMENT, "unknown load flag");
    expect(nnb_model_load_from_buffer(&back, buf, (size_t)-1, 0), NNB_ERR_INVALID_ARGUMENT, "a size of 2^64 - 1");
    expect(nnb_model_load_from_buffer(NULL, buf, needed, 0), NNB_ERR_NULL_ARGUMENT, "out NULL");
    free(buf);

    /* nnb_compile refuses the options that act on nnb_train's data rather than ignoring them. */
    nnb_train_options c;
    nnb_train_options_init(&c);
    c.standardize = 1;
    expect(nnb_compile(m, &c), NNB_ERR_INVALID_ARGUMENT, "compile with standardize");
    check(last_error_mentions("standardize"), "the option is named: %s", nnb_last_error());
    c.standardize = 0;
    c.resume = 1;
    expect(nnb_compile(m, &c), NNB_ERR_INVALID_ARGUMENT, "compile with resume");

    /* A checkpoint in memory: not before training, and it resumes. */
    nnb_model *fresh = new_model("2-4:tanh-1", 1);
    expect(nnb_model_save_to_buffer(fresh, NNB_SAVE_CHECKPOINT, NULL, 0, &needed), NNB_ERR_NOT_READY,
           "no checkpoint before training");
    char name[32];
    expect(nnb_model_get_loss(fresh, name, sizeof name, NULL), NNB_ERR_NOT_READY, "an untrained model has no loss");
    nnb_model_free(fresh);
    expect(nnb_model_save_to_buffer(m, NNB_SAVE_CHECKPOINT, NULL, 0, &needed), NNB_OK, "checkpoint size");
    buf = malloc(needed);
    expect(nnb_model_save_to_buffer(m, NNB_SAVE_CHECKPOINT, buf, needed, NULL), NNB_OK, "checkpoint to memory");
    back = NULL;
    expect(nnb_model_load_from_buffer(&back, buf, needed, 0), NNB_OK, "load the checkpoint");
    if (back) {
        o.epochs = 5;
        o.resume = 1;
        expect(nnb_train(back, XOR_X, 4, 2, XOR_Y, 1, &o, NULL), NNB_OK, "resume from the in-memory checkpoint");
        nnb_model_free(back);
    }
    free(buf);
    nnb_model_free(m);
}

static void test_class_names(void) {
    nnb_model *m = new_model("2-4:tanh-3", 2);
    if (!m) return;
    size_t count = 9;
    expect(nnb_model_class_count(m, &count), NNB_OK, "count");
    check(count == 0, "no names at first (%zu)", count);
    const char *names[3] = {"setosa", "versicolor", "virginica"};
    expect(nnb_model_set_class_names(m, names, 2), NNB_ERR_SHAPE_MISMATCH, "two names for three outputs");
    check(last_error_mentions("expected 3"), "the count is named: %s", nnb_last_error());
    const char *twice[3] = {"a", "b", "a"};
    expect(nnb_model_set_class_names(m, twice, 3), NNB_ERR_INVALID_ARGUMENT, "a repeated name");
    check(last_error_mentions("'a'"), "the repeated name is named: %s", nnb_last_error());
    const char *holes[3] = {"a", NULL, "c"};
    expect(nnb_model_set_class_names(m, holes, 3), NNB_ERR_NULL_ARGUMENT, "a NULL name");
    expect(nnb_model_set_class_names(m, NULL, 3), NNB_ERR_NULL_ARGUMENT, "names NULL");
    expect(nnb_model_set_class_names(m, names, 3), NNB_OK, "three names");
    char path[512];
    tmp_path(path, sizeof path, "classes.safetensors");
    expect(nnb_model_save(m, path), NNB_OK, "save");
    nnb_model *back = NULL;
    expect(nnb_model_load(&back, path), NNB_OK, "load");
    if (back) {
        expect(nnb_model_class_count(back, &count), NNB_OK, "count after load");
        check(count == 3, "three names after load (%zu)", count);
        char buf[16];
        size_t needed = 0;
        for (size_t i = 0; i < 3 && count == 3; i++) {
            expect(nnb_model_get_class_name(back, i, buf, sizeof buf, &needed), NNB_OK, "a class name");
            check(strcmp(buf, names[i]) == 0 && needed == strlen(names[i]) + 1, "name %zu is %s", i, buf);
        }
        expect(nnb_model_get_class_name(back, 1, buf, 4, &needed), NNB_ERR_CAPACITY, "a short buffer");
        check(needed == 11, "the short call says 11 bytes (%zu)", needed);
        expect(nnb_model_get_class_name(back, 3, buf, sizeof buf, NULL), NNB_ERR_INVALID_ARGUMENT, "index 3");
        check(last_error_mentions("3 class names"), "the range is named: %s", nnb_last_error());
        expect(nnb_model_set_class_names(back, NULL, 0), NNB_OK, "remove the names");
        expect(nnb_model_class_count(back, &count), NNB_OK, "count after removal");
        check(count == 0, "none after removal (%zu)", count);
        nnb_model_free(back);
    }
    /* A one-output (bce) model has two classes. */
    nnb_model *b = new_model("2-4:tanh-1", 2);
    const char *two[2] = {"no", "yes"};
    expect(nnb_model_set_class_names(b, two, 2), NNB_OK, "two names for one bce output");
    expect(nnb_model_set_class_names(b, two, 1), NNB_ERR_SHAPE_MISMATCH, "one name for one bce output");
    nnb_model_free(b);
    expect(nnb_model_class_count(NULL, &count), NNB_ERR_NULL_ARGUMENT, "NULL model");
    expect(nnb_model_class_count(m, NULL), NNB_ERR_NULL_ARGUMENT, "NULL count");
    nnb_model_free(m);
}

/* nnb_model_export_onnx writes an ONNX ModelProto (python/tests/test_onnx.py runs it in ONNX
 * Runtime); bad arguments are named. */
static int contains(const unsigned char *bytes, long size, const char *needle) {
    size_t n = strlen(needle);
    for (long i = 0; i + (long)n <= size; i++)
        if (memcmp(bytes + i, needle, n) == 0) return 1;
    return 0;
}

static void test_export_onnx(void) {
    nnb_model *m = new_model("1x4x4-conv2d(2,3,padding=1):relu-maxpool2d(2)-flatten-3", 1);
    if (!m) return;
    char path[512];
    tmp_path(path, sizeof path, "m.onnx");
    expect(nnb_model_export_onnx(m, path), NNB_OK, "export a CNN");
    long size = 0;
    unsigned char *bytes = read_file(path, &size);
    check(bytes && size > 100 && bytes[0] == 0x08 && bytes[1] == 0x08, "the file starts with ir_version 8 (%ld bytes)", size);
    check(bytes && contains(bytes, size, "Conv") && contains(bytes, size, "MaxPool"),
          "the graph holds Conv and MaxPool nodes");
    free(bytes);
    expect(nnb_model_export_onnx(m, NULL), NNB_ERR_NULL_ARGUMENT, "path NULL");
    expect(nnb_model_export_onnx(m, ""), NNB_ERR_INVALID_ARGUMENT, "path empty");
    expect(nnb_model_export_onnx(NULL, path), NNB_ERR_NULL_ARGUMENT, "model NULL");
    tmp_path(path, sizeof path, "no-such-folder/m.onnx");
    expect(nnb_model_export_onnx(m, path), NNB_ERR_IO, "a folder that does not exist");
    nnb_model_free(m);
}

static void test_cnn(void) {
    enum { N = 256 };
    static float x[N * 64], y[N];
    make_quadrants(x, y, N, 5);
    const char *desc = "1x8x8-conv2d(4,3,padding=1):relu-batchnorm2d-maxpool2d(2)-flatten-4";
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 8;
    o.batch_size = 32;
    o.learning_rate = 0.01f;
    o.seed = 1;
    nnb_model *m = new_model(desc, 3);
    if (!m) return;
    nnb_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    expect(nnb_model_get_info(m, &info), NNB_OK, "info of a CNN");
    check(info.input_rank == 3 && info.input_shape[0] == 1 && info.input_shape[1] == 8 && info.input_shape[2] == 8 &&
              info.inputs == 64 && info.outputs == 4,
          "the CNN takes 1x8x8 samples (64 floats a row) and gives 4 outputs");
    expect(nnb_train(m, x, N, 64, y, 1, &o, NULL), NNB_OK, "train the CNN on (N, 1, 8, 8) rows");
    double loss = 0, acc = 0;
    expect(nnb_evaluate(m, x, N, 64, y, 1, NULL, &loss, &acc), NNB_OK, "evaluate the CNN");
    check(acc >= 0.95, "the CNN finds the bright quadrant: accuracy %.3f >= 0.95", acc);

    /* The same network from named specs (a reshape first, since nnb_model_create takes a count). */
    nnb_layer_spec specs[6] = {
        named("reshape", "shape=1x8x8"), named("conv2d", "out_channels=4,kernel_size=3,padding=1,activation=relu"),
        named("batchnorm2d", NULL),      named("maxpool2d", "kernel_size=2"),
        named("flatten", NULL),          named("dense", "units=4"),
    };
    nnb_model *s = NULL;
    expect(nnb_model_create(&s, 64, specs, 6, 3), NNB_OK, "the CNN from named specs");
    if (s) {
        int64_t params = 0;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        nnb_model_get_info(s, &info);
        params = info.parameters;
        check(params == 4 * 9 + 4 + 2 * 4 + 64 * 4 + 4, "named specs: %lld parameters (conv 40, batch norm 8, dense 260)",
              (long long)params);
        expect(nnb_train(s, x, N, 64, y, 1, &o, NULL), NNB_OK, "train the named-spec CNN");
        expect(nnb_evaluate(s, x, N, 64, y, 1, NULL, &loss, &acc), NNB_OK, "evaluate it");
        check(acc >= 0.95, "named-spec CNN accuracy %.3f >= 0.95", acc);
        nnb_model_free(s);
    }

    /* Augmentation: seeded (two runs agree bitwise), and it changes training. */
    float *plain = predict_alloc(m, x, 16, 64);
    nnb_model *a1 = new_model(desc, 3), *a2 = new_model(desc, 3);
    o.augment_shift = 1;
    o.augment_flip = 1;
    if (a1 && a2) {
        expect(nnb_train(a1, x, N, 64, y, 1, &o, NULL), NNB_OK, "train with augment_shift 1 and augment_flip");
        expect(nnb_train(a2, x, N, 64, y, 1, &o, NULL), NNB_OK, "the same again");
        float *p1 = predict_alloc(a1, x, 16, 64), *p2 = predict_alloc(a2, x, 16, 64);
        check(p1 && p2 && memcmp(p1, p2, 16 * 4 * sizeof(float)) == 0, "augmented runs with one seed agree bitwise");
        check(p1 && plain && memcmp(p1, plain, 16 * 4 * sizeof(float)) != 0, "augmentation changes the trained weights");
        free(p1);
        free(p2);
        expect(nnb_compile(a1, &o), NNB_OK, "compile with augmentation");
        expect(nnb_train_batch(a1, x, 32, 64, y, 1, NULL), NNB_ERR_INVALID_ARGUMENT,
               "nnb_train_batch after compiling with augmentation");
        check(last_error_mentions("nnb_train_epoch"), "the message says where augmentation applies: %s", nnb_last_error());
    }
    nnb_model_free(a1);
    nnb_model_free(a2);
    free(plain);
    nnb_model *flat = new_model("64-8:relu-4", 1);
    if (flat) {
        expect(nnb_train(flat, x, N, 64, y, 1, &o, NULL), NNB_ERR_SHAPE_MISMATCH, "augmentation on flat samples");
        check(last_error_mentions("(C, H, W)"), "the message names the shape it needs: %s", nnb_last_error());
        nnb_model_free(flat);
    }
    o.augment_shift = 65;
    expect(nnb_train(m, x, N, 64, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "augment_shift 65");
    check(last_error_mentions("65"), "the message names the value: %s", nnb_last_error());
    o.augment_shift = 0;
    o.augment_flip = 2;
    expect(nnb_train(m, x, N, 64, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "augment_flip 2");
    check(last_error_mentions("augment_flip"), "the message names the option: %s", nnb_last_error());
    o.augment_flip = 0;

    /* Bad inputs, each a status and a message that names it. */
    struct { const char *text; nnb_status want; const char *mentions; } bad[] = {
        {"1x3x3-conv2d(2,5)-10", NNB_ERR_SHAPE_MISMATCH, "5x5"},          /* kernel larger than the padded input */
        {"1x8x8-conv2d(2,3,stride=0)-10", NNB_ERR_INVALID_ARGUMENT, "stride"},
        {"3x8x8-conv2d(4,3,groups=2)-10", NNB_ERR_INVALID_ARGUMENT, "groups 2"}, /* 3 channels, 2 groups */
        {"1x8x8-conv2d(3,3,groups=3)-10", NNB_ERR_INVALID_ARGUMENT, "groups 3"},
        {"64-conv2d(4,3)-10", NNB_ERR_SHAPE_MISMATCH, "64"},               /* a vector is not an image */
        {"1x8x8-maxpool2d(2,padding=2)-10", NNB_ERR_INVALID_ARGUMENT, "half the kernel"},
        {"1x8x8-conv2d(4,3,padding=same,stride=2)-10", NNB_ERR_INVALID_ARGUMENT, "same"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nnb_model *b = (nnb_model *)&b;
        expect(nnb_model_create_from_string(&b, bad[i].text, 1), bad[i].want, bad[i].text);
        check(b == NULL && last_error_mentions(bad[i].mentions), "%s: *out is NULL and the message names '%s': %s",
              bad[i].text, bad[i].mentions, nnb_last_error());
    }
    float out[N * 4];
    expect(nnb_predict(m, x, 2, 63, out, sizeof out / sizeof out[0]), NNB_ERR_SHAPE_MISMATCH, "predict rows of 63 floats for 1x8x8");
    check(last_error_mentions("63") && last_error_mentions("64"), "the message names both sizes: %s", nnb_last_error());
    expect(nnb_train(m, x, N / 2, 128, y, 1, &o, NULL), NNB_ERR_SHAPE_MISMATCH, "train on rows of 128 floats");
    /* Batch normalization refuses to train on a batch of one (one value per channel), as PyTorch. */
    nnb_model *bn = new_model("4-batchnorm1d-2", 1);
    if (bn) {
        expect(nnb_compile(bn, &o), NNB_OK, "compile a BatchNorm1d model");
        float one[4] = {1, 2, 3, 4}, label[1] = {1};
        expect(nnb_train_batch(bn, one, 1, 4, label, 1, NULL), NNB_ERR_INVALID_ARGUMENT, "BatchNorm1d training on a batch of one");
        check(last_error_mentions("more than one value per channel"), "the message says why: %s", nnb_last_error());
        expect(nnb_predict(bn, one, 1, 4, out, 2), NNB_OK, "but it predicts one sample (running statistics)");
        nnb_model_free(bn);
    }
    nnb_model_free(m);
}

/* Train 2 epochs, against train 1, checkpoint, load, resume for the 2nd: bitwise the same. */
static void test_checkpoint(void) {
    float *x = NULL, *y = NULL;
    make_blobs(300, 6, 3, 1.0f, 8, &x, &y);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 2;
    o.seed = 99;
    o.schedule = "step";
    o.step_size = 1;
    nnb_model *straight = new_model("6-12:relu-dropout:0.3-3", 2), *first = new_model("6-12:relu-dropout:0.3-3", 2);
    if (!straight || !first) return;
    expect(nnb_train(straight, x, 300, 6, y, 1, &o, NULL), NNB_OK, "2 epochs straight");
    char path[512];
    tmp_path(path, sizeof path, "checkpoint.safetensors");
    expect(nnb_model_save_checkpoint(first, path), NNB_ERR_NOT_READY, "a checkpoint before any training");
    o.epochs = 1;
    expect(nnb_train(first, x, 300, 6, y, 1, &o, NULL), NNB_OK, "1 epoch");
    expect(nnb_model_save_checkpoint(first, path), NNB_OK, "nnb_model_save_checkpoint");
    nnb_model *resumed = NULL;
    expect(nnb_model_load(&resumed, path), NNB_OK, "load the checkpoint");
    o.epochs = 2;
    o.resume = 1;
    expect(nnb_train(resumed, x, 300, 6, y, 1, &o, NULL), NNB_OK, "resume for the 2nd epoch");
    float *ps = predict_alloc(straight, x, 300, 6), *pr = resumed ? predict_alloc(resumed, x, 300, 6) : NULL;
    check(ps && pr && memcmp(ps, pr, 300 * 3 * sizeof(float)) == 0, "1 + 1 epochs through a checkpoint == 2 epochs, bitwise");
    free(ps);
    free(pr);
    expect(nnb_train(resumed, x, 300, 6, y, 1, &o, NULL), NNB_ERR_NOT_READY, "resume again: the checkpoint was used");
    nnb_model *other = NULL;
    nnb_model_load(&other, path);
    o.optimizer = "sgd";
    expect(nnb_train(other, x, 300, 6, y, 1, &o, NULL), NNB_ERR_SHAPE_MISMATCH, "resume with another optimizer");
    check(last_error_mentions("'adam'") && last_error_mentions("'sgd'"), "the message names both: %s", nnb_last_error());
    o.optimizer = NULL;
    nnb_model_free(other); /* a fresh handle for the next refusal */
    other = NULL;
    nnb_model_load(&other, path);
    o.batch_size = 16;
    expect(nnb_train(other, x, 300, 6, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "resume with another batch size");
    check(last_error_mentions("batch size 32"), "the message names the checkpoint's batch size: %s", nnb_last_error());
    o.batch_size = 32;
    o.resume = 7;
    expect(nnb_train(other, x, 300, 6, y, 1, &o, NULL), NNB_ERR_INVALID_ARGUMENT, "resume = 7");
    nnb_model *plain = new_model("6-3", 1);
    o.resume = 1;
    expect(nnb_train(plain, x, 300, 6, y, 1, &o, NULL), NNB_ERR_NOT_READY, "resume on a model not loaded from a checkpoint");
    nnb_model_free(plain);
    nnb_model_free(other);
    nnb_model_free(resumed);
    nnb_model_free(first);
    nnb_model_free(straight);
    free(x);
    free(y);
}

/* ---------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    struct { const char *name; void (*run)(void); } groups[] = {
        {"version", test_version},
        {"status", test_status_strings},
        {"runtime", test_runtime},
        {"last_error", test_last_error_threads},
        {"spec_init", test_layer_spec_init},
        {"create", test_create_from_specs},
        {"create_string", test_create_from_string},
        {"info", test_info_and_describe},
        {"options_init", test_train_options_init},
        {"train_errors", test_train_errors},
        {"xor", test_xor},
        {"standardize", test_standardize},
        {"limits", test_limits},
        {"sgd_step", test_sgd_step_arithmetic},
        {"callback", test_callback},
        {"compile", test_compile_loop},
        {"predict", test_predict_and_evaluate},
        {"files", test_save_load},
        {"determinism", test_determinism},
        {"precision", test_precision},
        {"int8", test_int8},
        {"distributed_options", test_distributed_options},
        {"threads_predict", test_concurrent_predict},
        {"threads_busy", test_busy},
        {"free_null", test_free_null},
        {"hostile_sizes", test_hostile_sizes},
        {"options_effect", test_options_take_effect},
        {"divergence", test_divergence},
        {"save_targets", test_save_targets},
        {"threads_starve", test_trainer_not_starved},
        {"shapes", test_shapes},
        {"reports", test_reports},
        {"checkpoint", test_checkpoint},
        {"cnn", test_cnn},
        {"buffers", test_buffers},
        {"class_names", test_class_names},
        {"export_onnx", test_export_onnx},
    };
    const char *quick = getenv("NNB_TEST_QUICK");
    g_quick = quick && quick[0] && strcmp(quick, "0") != 0;
    const char *tmp = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/nnb_capi_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(g_tmpdir)) {
        fprintf(stderr, "test_capi: cannot create a temporary directory: %s\n", strerror(errno));
        return 2;
    }
    printf("libnnbackprop %s (header %d.%d.%d), ISA %s, OpenMP %s, %d threads\n", nnb_version_string(), NNB_VERSION_MAJOR,
           NNB_VERSION_MINOR, NNB_VERSION_PATCH, nnb_isa(), nnb_openmp_enabled() ? "on" : "off", nnb_get_num_threads());
    int ran = 0;
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        if (argc > 1) {
            /* Names pick groups; "!name" leaves one out (all others run when only exclusions are given). */
            int wanted = 0, excluded = 0, picks = 0;
            for (int a = 1; a < argc; a++) {
                if (argv[a][0] == '!') {
                    excluded |= strcmp(argv[a] + 1, groups[g].name) == 0;
                } else {
                    picks++;
                    wanted |= strcmp(argv[a], groups[g].name) == 0;
                }
            }
            if (excluded || (picks > 0 && !wanted)) continue;
        }
        printf("# %s\n", groups[g].name);
        groups[g].run();
        ran++;
    }
    rmdir(g_tmpdir);
    if (ran == 0) {
        fprintf(stderr, "test_capi: no group named");
        for (int a = 1; a < argc; a++) fprintf(stderr, " %s", argv[a]);
        fprintf(stderr, "\n");
        return 2;
    }
    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
