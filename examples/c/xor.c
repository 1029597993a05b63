/*
 * xor.c: learn XOR with libnnbackprop from C.
 *
 *   make -C examples/c run-xor        (builds build/examples/xor and runs it)
 *
 * A 2-8-1 network (tanh hidden layer, one logit out) trained with binary cross-entropy, then
 * saved (to argv[1], default $TMPDIR/xor.safetensors), loaded back and run again. Exits nonzero
 * unless all four rows come out right.
 */
#include "nnbackprop.h"

#include <stdio.h>
#include <stdlib.h>

/* Prints the status, the library's message and returns 1 when `s` is a failure. */
static int failed(nnb_status s, const char *what) {
    if (s == NNB_OK) return 0;
    fprintf(stderr, "xor: %s: %s: %s\n", what, nnb_status_string(s), nnb_last_error());
    return 1;
}

static int on_epoch(const nnb_epoch_report *r, void *user_data) {
    (void)user_data;
    if (r->epoch % 200 == 0) printf("epoch %4d/%d  loss %.5f  accuracy %.2f\n", r->epoch, r->epochs, r->loss, r->accuracy);
    return 0;
}

int main(int argc, char **argv) {
    if (nnb_abi_version() != NNB_ABI_VERSION) {
        fprintf(stderr, "xor: library ABI %d, header ABI %d\n", nnb_abi_version(), NNB_ABI_VERSION);
        return 1;
    }
    const float x[4 * 2] = {0, 0, 0, 1, 1, 0, 1, 1};
    const float y[4] = {0, 1, 1, 0};
    char path[1024];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s", argc > 1 ? argv[1] : "");
    if (argc <= 1) snprintf(path, sizeof path, "%s/xor.safetensors", tmp && tmp[0] ? tmp : "/tmp");

    nnb_model *model = NULL;
    if (failed(nnb_model_create_from_string(&model, "2-8:tanh-1", 42), "create")) return 1;

    nnb_train_options options;
    nnb_train_options_init(&options);
    options.loss = "bce"; /* sigmoid of the one output, from logits */
    options.learning_rate = 0.05f;
    options.epochs = 1000;
    options.batch_size = 4;
    options.seed = 1;
    options.on_epoch = on_epoch;

    int status = 1;
    nnb_model *loaded = NULL;
    float logits[4];
    if (failed(nnb_train(model, x, 4, 2, y, 1, &options, NULL), "train")) goto out;
    if (failed(nnb_model_save(model, path), "save")) goto out;
    if (failed(nnb_model_load(&loaded, path), "load")) goto out;
    if (failed(nnb_predict(loaded, x, 4, 2, logits, 4), "predict")) goto out;

    int right = 0;
    for (int r = 0; r < 4; r++) {
        int predicted = logits[r] > 0; /* sigmoid(z) > 0.5 */
        right += predicted == (int)y[r];
        printf("%g xor %g = %d  (logit %+.3f)\n", x[2 * r], x[2 * r + 1], predicted, logits[r]);
    }
    printf("%d of 4 right (model saved to %s)\n", right, path);
    status = right == 4 ? 0 : 1;
out:
    nnb_model_free(loaded);
    nnb_model_free(model);
    return status;
}
