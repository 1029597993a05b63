/*
 * test_abi1.c: a program built against the 0.1 header (Tests/capi/abi1/nnbackprop.h, the header
 * as it was before shaped layers) runs against this library: its structs are smaller, and the
 * library must neither read nor write past them. Each struct sits between guard bytes.
 *   cc -std=c99 -ITests/capi/abi1 Tests/capi/test_abi1.c -lnnbackprop
 */
#include "nnbackprop.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failed = 0, passed = 0;
#define CHECK(ok, ...) do { if (ok) { passed++; } else { failed++; printf("FAIL - "); printf(__VA_ARGS__); printf("\n"); } } while (0)

#define GUARD 64
/* A struct of `size` bytes with GUARD bytes of 0xA5 on each side. */
static unsigned char *guarded(size_t size) {
    unsigned char *p = malloc(size + 2 * GUARD);
    memset(p, 0xA5, size + 2 * GUARD);
    return p + GUARD;
}
static int intact(const unsigned char *p, size_t size) {
    for (size_t i = 0; i < GUARD; i++)
        if (p[-1 - (long)i] != 0xA5 || p[size + i] != 0xA5) return 0;
    return 1;
}

int main(void) {
    CHECK(nnb_abi_version() == NNB_ABI_VERSION, "ABI %d, this 0.1 header says %d", nnb_abi_version(), NNB_ABI_VERSION);

    /* An array of three 0.1 layer specs, initialised one by one, then a model from them. */
    nnb_layer_spec *specs = (nnb_layer_spec *)guarded(3 * sizeof(nnb_layer_spec));
    for (int i = 0; i < 3; i++) nnb_layer_spec_init(&specs[i]);
    CHECK(intact((unsigned char *)specs, 3 * sizeof(nnb_layer_spec)), "nnb_layer_spec_init wrote past a 0.1 array");
    CHECK(specs[0].struct_size == sizeof(nnb_layer_spec), "struct_size %u is the 0.1 size %zu", specs[0].struct_size,
          sizeof(nnb_layer_spec));
    specs[0].units = 8;
    specs[0].activation = "tanh";
    specs[1].type = NNB_LAYER_DROPOUT;
    specs[1].rate = 0.25f;
    specs[2].units = 3;
    nnb_model *m = NULL;
    nnb_status s = nnb_model_create(&m, 4, specs, 3, 7);
    CHECK(s == NNB_OK && m != NULL, "nnb_model_create from three 0.1 specs: %s", nnb_last_error());
    char text[128] = "";
    if (m) nnb_model_describe(m, text, sizeof text, NULL);
    CHECK(strcmp(text, "4-8:tanh-dropout:0.25-3") == 0, "every element of the 0.1 array was read: %s", text);

    /* Options from the 0.1 init, a report with struct_size 0 reused across calls. */
    nnb_train_options *o = (nnb_train_options *)guarded(sizeof(nnb_train_options));
    nnb_train_options_init(o);
    CHECK(intact((unsigned char *)o, sizeof *o), "nnb_train_options_init wrote past a 0.1 struct");
    o->epochs = 2;
    nnb_epoch_report *r = (nnb_epoch_report *)guarded(sizeof(nnb_epoch_report));
    memset(r, 0, sizeof *r);
    float x[40], y[10];
    for (int i = 0; i < 40; i++) x[i] = (float)((i * 7) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < 10; i++) y[i] = (float)(i % 3);
    s = m ? nnb_train(m, x, 10, 4, y, 1, o, r) : NNB_ERR_NULL_ARGUMENT;
    CHECK(s == NNB_OK && r->epoch == 2, "nnb_train with 0.1 options: %s", nnb_last_error());
    CHECK(intact((unsigned char *)r, sizeof *r) && r->struct_size == 0, "the report kept its size (%u) and nothing past it was written",
          r->struct_size);
    nnb_compile(m, o);
    for (int e = 0; e < 3; e++) nnb_train_epoch(m, x, 10, 4, y, 1, r);
    CHECK(intact((unsigned char *)r, sizeof *r) && r->epoch == 3, "three nnb_train_epoch calls reusing one 0.1 report");
    nnb_model_info *info = (nnb_model_info *)guarded(sizeof(nnb_model_info));
    info->struct_size = sizeof *info;
    CHECK(nnb_model_get_info(m, info) == NNB_OK && info->inputs == 4 && intact((unsigned char *)info, sizeof *info),
          "nnb_model_get_info fills a 0.1 info and nothing past it");
    nnb_model_free(m);
    free((unsigned char *)specs - GUARD);
    free((unsigned char *)o - GUARD);
    free((unsigned char *)r - GUARD);
    free((unsigned char *)info - GUARD);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
