/*
 * The plugin API from C (include/nnbackprop_plugin.h): loading the example plugins, using them
 * in models and files, every registration error, and the registry under threads.
 *
 * Usage: test_plugins PLUGIN_DIR
 *   PLUGIN_DIR holds libnnb_mish.so, libnnb_focal.so, (optionally) libnnb_openblas.so, and the
 *   broken ones from plugins/bad_plugin.c: libbad_noentry.so, libbad_halfbad.so,
 *   libbad_fails.so, libbad_oldabi.so, libbad_gemm_then_fails.so, libbad_nested.so,
 *   libbad_status.so, libbad_gemm_only.so.
 *   test_plugins --load-without-plugin FILE   (run by the test itself in a fresh process)
 */
#define _POSIX_C_SOURCE 200809L
#include "nnbackprop_plugin.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what) {
    if (ok) {
        passed++;
        printf("ok   %s\n", what);
    } else {
        failed++;
        printf("FAIL %s (last error: %s)\n", what, nnb_last_error());
    }
}

static char plugin_dir[512];
static const char *plugin(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", plugin_dir, name);
    return path;
}

static const float xor_x[] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float xor_y[] = {0, 1, 1, 0};

static void ident_forward(void *ctx, float *y, const float *x, size_t n) {
    (void)ctx;
    for (size_t i = 0; i < n; i++) y[i] = x[i];
}
static void ident_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)ctx, (void)x, (void)y;
    for (size_t i = 0; i < n; i++) dx[i] = dy[i];
}

/* Counts calls, then behaves as ReLU: a replacement for the built-in relu kernels. */
static int relu_calls;
static void counting_relu_forward(void *ctx, float *y, const float *x, size_t n) {
    (*(int *)ctx)++;
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}
static void counting_relu_backward(void *ctx, float *dx, const float *dy, const float *x, const float *y, size_t n) {
    (void)ctx, (void)x;
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

static int xor_all_right(nnb_model *m, int outputs) {
    float out[8];
    if (nnb_predict(m, xor_x, 4, 2, out, 8) != NNB_OK) return 0;
    for (int i = 0; i < 4; i++) {
        const int cls = outputs == 2 ? out[2 * i + 1] > out[2 * i] : out[i] > 0;
        if (cls != (int)xor_y[i]) return 0;
    }
    return 1;
}

static void test_activation_plugin(const char *model_path) {
    check(nnb_plugin_load(plugin("libnnb_mish.so")) == NNB_OK, "load the mish plugin");
    check(nnb_plugin_registered("mish") == 1, "mish is registered");
    check(nnb_plugin_load(plugin("libnnb_mish.so")) == NNB_ERR_DUPLICATE, "loading it twice: NNB_ERR_DUPLICATE");

    nnb_model *m = NULL;
    check(nnb_model_create_from_string(&m, "2-8:mish-2", 1) == NNB_OK, "a model with a plugin activation by name");
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 300, o.batch_size = 4, o.learning_rate = 0.05f;
    check(nnb_train(m, xor_x, 4, 2, xor_y, 1, &o, NULL) == NNB_OK, "it trains");
    check(xor_all_right(m, 2), "and learns XOR through mish");
    char desc[64];
    check(nnb_model_describe(m, desc, sizeof desc, NULL) == NNB_OK && strstr(desc, "mish") != NULL,
          "its description names mish");
    check(nnb_model_save(m, model_path) == NNB_OK, "a model using a plugin saves");
    nnb_model *back = NULL;
    check(nnb_model_load(&back, model_path) == NNB_OK, "and loads where the plugin is registered");
    float a[8], b[8];
    nnb_predict(m, xor_x, 4, 2, a, 8);
    nnb_predict(back, xor_x, 4, 2, b, 8);
    check(back && memcmp(a, b, sizeof a) == 0, "with bit-identical predictions");

    nnb_layer_spec spec[2];
    nnb_layer_spec_init(&spec[0]), nnb_layer_spec_init(&spec[1]);
    spec[0].units = 4, spec[0].activation = "mish", spec[1].units = 1;
    nnb_model *m2 = NULL;
    check(nnb_model_create(&m2, 2, spec, 2, 3) == NNB_OK, "layer specs name a plugin activation too");
    nnb_model_free(m), nnb_model_free(back), nnb_model_free(m2);
}

static void test_loss_plugin(void) {
    check(nnb_plugin_load(plugin("libnnb_focal.so")) == NNB_OK, "load the focal-loss plugin");
    nnb_model *m = NULL;
    nnb_model_create_from_string(&m, "2-8:tanh-1", 2);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 400, o.batch_size = 4, o.learning_rate = 0.05f, o.loss = "focal";
    check(nnb_train(m, xor_x, 4, 2, xor_y, 1, &o, NULL) == NNB_OK, "train with loss \"focal\"");
    check(xor_all_right(m, 1), "a plugin loss learns XOR");
    double loss = NAN;
    check(nnb_evaluate(m, xor_x, 4, 2, xor_y, 1, "focal", &loss, NULL) == NNB_OK && loss >= 0 && loss < 0.05,
          "nnb_evaluate under the plugin loss");
    nnb_model_free(m);
}

static void test_gemm_plugin(void) {
    FILE *f = fopen(plugin("libnnb_openblas.so"), "rb");
    if (!f) {
        printf("skip OpenBLAS GEMM plugin (not built: libopenblas-dev missing)\n");
        return;
    }
    fclose(f);
    nnb_model *m = NULL;
    nnb_model_create_from_string(&m, "64-96:relu-10", 4);
    float x[33 * 64], before[33 * 10], after[33 * 10];
    for (int i = 0; i < 33 * 64; i++) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    nnb_predict(m, x, 33, 64, before, 33 * 10);
    check(nnb_plugin_load(plugin("libnnb_openblas.so")) == NNB_OK, "load the OpenBLAS GEMM plugin");
    check(nnb_predict(m, x, 33, 64, after, 33 * 10) == NNB_OK, "predict through OpenBLAS");
    double worst = 0;
    for (int i = 0; i < 33 * 10; i++) worst = fmax(worst, fabs(before[i] - after[i]));
    check(worst < 1e-4, "OpenBLAS and the built-in GEMM agree within 1e-4");
    /* The reference stays available to check a plugin against: a product small enough to
     * write out, [[1,2,3],[4,5,6]] x [[7,8],[9,10],[11,12]] = [[58,64],[139,154]]. */
    const float A[] = {1, 2, 3, 4, 5, 6}, B[] = {7, 8, 9, 10, 11, 12};
    float C[4] = {0};
    check(nnb_sgemm_reference(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C, 2) == NNB_OK && C[0] == 58 && C[1] == 64 &&
              C[2] == 139 && C[3] == 154,
          "nnb_sgemm_reference computes the product while the plugin is installed");
    check(nnb_register_gemm(NULL) == NNB_OK, "NULL restores the built-in GEMM");
    nnb_predict(m, x, 33, 64, after, 33 * 10);
    check(memcmp(before, after, sizeof before) == 0, "and the built-in GEMM gives its own bits again");
    nnb_model_free(m);
}

static void test_kernel_replacement(void) {
    nnb_model *m = NULL;
    nnb_model_create_from_string(&m, "3-5:relu-2", 6);
    const float x[] = {1, -2, 3};
    float before[2], after[2];
    nnb_predict(m, x, 1, 3, before, 2);
    nnb_activation_kernel_plugin k = {sizeof k, NNB_PLUGIN_ABI_VERSION, "relu", counting_relu_forward,
                                      counting_relu_backward, &relu_calls};
    check(nnb_register_activation_kernel(&k) == NNB_OK, "replace the relu kernels");
    nnb_predict(m, x, 1, 3, after, 2);
    check(relu_calls > 0 && memcmp(before, after, sizeof before) == 0, "predict runs the replacement (same numbers)");
    k.activation = "no_such_activation";
    check(nnb_register_activation_kernel(&k) == NNB_ERR_UNKNOWN_NAME, "replacing an unknown activation: NNB_ERR_UNKNOWN_NAME");
    check(nnb_restore_activation_kernel("relu") == NNB_OK, "restore relu");
    const int calls = relu_calls;
    nnb_predict(m, x, 1, 3, after, 2);
    check(relu_calls == calls, "the built-in relu runs again");
    nnb_model_free(m);
}

static void test_registration_errors(void) {
    nnb_activation_plugin p = {sizeof p, NNB_PLUGIN_ABI_VERSION, "c_ident", ident_forward, ident_backward, NULL};
    check(nnb_register_activation(NULL) == NNB_ERR_NULL_ARGUMENT, "NULL plugin: NNB_ERR_NULL_ARGUMENT");
    p.abi_version = 99;
    check(nnb_register_activation(&p) == NNB_ERR_VERSION && strstr(nnb_last_error(), "abi") != NULL,
          "another ABI version: NNB_ERR_VERSION");
    p.abi_version = NNB_PLUGIN_ABI_VERSION, p.struct_size = sizeof p + 8;
    check(nnb_register_activation(&p) == NNB_ERR_VERSION, "a struct from a newer header: NNB_ERR_VERSION");
    p.struct_size = sizeof p, p.backward = NULL;
    check(nnb_register_activation(&p) == NNB_ERR_NULL_ARGUMENT && strstr(nnb_last_error(), "backward") != NULL,
          "a NULL required function: NNB_ERR_NULL_ARGUMENT naming it");
    p.backward = ident_backward, p.name = NULL;
    check(nnb_register_activation(&p) == NNB_ERR_NULL_ARGUMENT, "a NULL name: NNB_ERR_NULL_ARGUMENT");
    p.name = "Bad Name!";
    check(nnb_register_activation(&p) == NNB_ERR_INVALID_ARGUMENT, "an invalid name: NNB_ERR_INVALID_ARGUMENT");
    p.name = "relu";
    check(nnb_register_activation(&p) == NNB_ERR_INVALID_ARGUMENT, "a built-in's name: NNB_ERR_INVALID_ARGUMENT");
    check(nnb_plugin_registered("c_ident") == 0, "failed registrations left nothing behind");
    p.name = "c_ident";
    check(nnb_register_activation(&p) == NNB_OK, "a valid registration");
    check(nnb_register_activation(&p) == NNB_ERR_DUPLICATE, "the same name again: NNB_ERR_DUPLICATE");
    nnb_loss_plugin l = {sizeof l, NNB_PLUGIN_ABI_VERSION, "mse", NULL, NULL};
    check(nnb_register_loss(&l) == NNB_ERR_NULL_ARGUMENT, "a loss without its function: NNB_ERR_NULL_ARGUMENT");
    nnb_gemm_plugin g = {sizeof g, NNB_PLUGIN_ABI_VERSION, "none", NULL, NULL};
    check(nnb_register_gemm(&g) == NNB_ERR_NULL_ARGUMENT, "a GEMM without its function: NNB_ERR_NULL_ARGUMENT");

    check(nnb_plugin_load(NULL) == NNB_ERR_NULL_ARGUMENT, "plugin_load(NULL)");
    check(nnb_plugin_load(plugin("no-such-plugin.so")) == NNB_ERR_PLUGIN, "a missing library: NNB_ERR_PLUGIN");
    check(nnb_plugin_load(plugin("libbad_noentry.so")) == NNB_ERR_PLUGIN && strstr(nnb_last_error(), "nnb_plugin_init") != NULL,
          "a library without the entry point: NNB_ERR_PLUGIN naming it");
    check(nnb_plugin_load(plugin("libbad_halfbad.so")) == NNB_ERR_NULL_ARGUMENT, "an entry that registers a NULL function fails");
    check(nnb_plugin_registered("bad_plugin_first") == 0, "and its good registration was not kept (all or nothing)");
    check(nnb_plugin_load(plugin("libbad_fails.so")) == NNB_ERR_INVALID_ARGUMENT, "an entry that returns an error fails with it");
    check(nnb_plugin_registered("bad_plugin_first") == 0, "and registers nothing");
    check(nnb_plugin_load(plugin("libbad_oldabi.so")) == NNB_ERR_VERSION, "a plugin built for another ABI: NNB_ERR_VERSION");
    nnb_model *m = NULL;
    check(nnb_model_create_from_string(&m, "2-4:nosuch-1", 1) == NNB_ERR_UNKNOWN_NAME && m == NULL,
          "an activation nobody registered: NNB_ERR_UNKNOWN_NAME");
}

/* Eight threads register distinct names and look names up at once; then race on one name. */
static int race_results[8];
static void *register_thread(void *arg) {
    const int i = (int)(size_t)arg;
    char name[32];
    snprintf(name, sizeof name, "thread_act_%d", i);
    nnb_activation_plugin p = {sizeof p, NNB_PLUGIN_ABI_VERSION, name, ident_forward, ident_backward, NULL};
    int ok = nnb_register_activation(&p) == NNB_OK;
    for (int k = 0; k < 200; k++) ok &= nnb_plugin_registered("mish") == 1;
    p.name = "contested_name";
    race_results[i] = nnb_register_activation(&p) == NNB_OK ? 1 : (nnb_last_error()[0] ? 0 : -1);
    return (void *)(size_t)ok;
}

static void test_threads(void) {
    pthread_t t[8];
    for (size_t i = 0; i < 8; i++) pthread_create(&t[i], NULL, register_thread, (void *)i);
    int all = 1, winners = 0;
    for (int i = 0; i < 8; i++) {
        void *r;
        pthread_join(t[i], &r);
        all &= (int)(size_t)r;
        winners += race_results[i] == 1;
    }
    check(all, "8 threads register distinct names while others look names up");
    int registered = 1;
    for (int i = 0; i < 8; i++) {
        char name[32];
        snprintf(name, sizeof name, "thread_act_%d", i);
        registered &= nnb_plugin_registered(name);
    }
    check(registered, "every one of them is registered");
    check(winners == 1, "8 threads racing for one name: exactly one wins");
}

/* A plugin's entry point cannot leave anything behind when it fails, whatever it called,
 * cannot load plugins itself, and cannot invent statuses; a library loads once. */
static void test_entry_point_faults(void) {
    nnb_model *m = NULL;
    nnb_model_create_from_string(&m, "2-8:tanh-2", 6);
    nnb_train_options o;
    nnb_train_options_init(&o);
    o.epochs = 300;
    o.batch_size = 4;
    o.learning_rate = 0.05f;

    nnb_status s = nnb_plugin_load(plugin("libbad_gemm_then_fails.so"));
    check(s == NNB_ERR_PLUGIN, "an entry point that registers a GEMM through nnb_register_gemm, then fails: NNB_ERR_PLUGIN");
    /* Had the GEMM stayed registered, training would now call into the unloaded library. */
    check(nnb_train(m, xor_x, 4, 2, xor_y, 1, &o, NULL) == NNB_OK && xor_all_right(m, 2),
          "and nothing of it stays: training after the unload runs (built-in GEMM) and learns XOR");

    check(nnb_plugin_load(plugin("libbad_nested.so")) == NNB_OK && nnb_plugin_registered("nested_refused"),
          "nnb_plugin_load inside an entry point is refused with NNB_ERR_PLUGIN, not a deadlock");

    s = nnb_plugin_load(plugin("libbad_status.so"));
    check(s == NNB_ERR_PLUGIN && strstr(nnb_last_error(), "12345") != NULL,
          "an entry point returning 12345 (no status code) gives NNB_ERR_PLUGIN naming the value");

    check(nnb_plugin_load(plugin("libbad_gemm_only.so")) == NNB_OK, "a GEMM-only plugin loads");
    s = nnb_plugin_load(plugin("libbad_gemm_only.so"));
    check(s == NNB_ERR_DUPLICATE && strstr(nnb_last_error(), "loaded already") != NULL,
          "loading it a second time: NNB_ERR_DUPLICATE, as the header says");
    nnb_model *g = NULL;
    nnb_model_create_from_string(&g, "2-8:tanh-2", 6);
    check(nnb_train(g, xor_x, 4, 2, xor_y, 1, &o, NULL) == NNB_OK && xor_all_right(g, 2), "it trains through its GEMM");
    check(nnb_register_gemm(NULL) == NNB_OK, "and the built-in GEMM comes back");
    nnb_model_free(g);
    nnb_model_free(m);
}

static int load_without_plugin(const char *path) {
    nnb_model *m = NULL;
    const nnb_status s = nnb_model_load(&m, path);
    printf("load without the plugin: status %d, %s\n", s, nnb_last_error());
    return s == NNB_ERR_UNKNOWN_NAME && m == NULL && strstr(nnb_last_error(), "mish") != NULL ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--load-without-plugin") == 0) return load_without_plugin(argv[2]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s PLUGIN_DIR\n", argv[0]);
        return 2;
    }
    snprintf(plugin_dir, sizeof plugin_dir, "%s", argv[1]);
    char model_path[600];
    snprintf(model_path, sizeof model_path, "%s/mish-model.safetensors", plugin_dir);

    test_registration_errors();
    test_activation_plugin(model_path);
    test_loss_plugin();
    test_kernel_replacement();
    test_gemm_plugin();
    test_entry_point_faults();
    test_threads();

    char cmd[1400];
    snprintf(cmd, sizeof cmd, "'%s' --load-without-plugin '%s'", argv[0], model_path);
    check(system(cmd) == 0, "a fresh process without the plugin cannot load the model and says it needs mish");

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
