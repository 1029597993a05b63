/*
 * fashion_mnist.c: train a 784-256-128-10 network (or, with --cnn, the README's CNN) on
 * Fashion-MNIST from C and print its test accuracy.
 *
 *   make -C examples/c && build/examples/fashion_mnist [--cnn] [epochs] [data-dir]
 *
 * epochs defaults to 10, data-dir to /usr/share/datasets/fashion-mnist (Debian's
 * dataset-fashion-mnist: the four gzip IDX files). Pixels are scaled to [0, 1]; batches of 128,
 * a fixed seed. The MLP: Adam at 1e-3 on standardized pixels. The CNN takes each row of 784
 * pixels as a 1x28x28 image (row-major, as the IDX file stores it): Adam at 2e-3 with a cosine
 * schedule, as the README's `nnb train` command and the Swift and Python heavy tests.
 */
#include "nnbackprop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Reads a gzip IDX file of unsigned bytes: images (magic 0x803, n x 28 x 28) or labels (0x801,
 * n). Returns the values as floats times `scale`, and the item count and item size. */
static float *read_idx(const char *dir, const char *name, float scale, size_t *count, size_t *item_size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    gzFile f = gzopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fashion_mnist: cannot open %s\n", path);
        return NULL;
    }
    unsigned char head[16];
    float *values = NULL;
    unsigned char *bytes = NULL;
    if (gzread(f, head, 8) != 8) goto bad;
    uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    unsigned dims = head[3];
    if ((magic >> 8) != 0x08 || dims < 1 || dims > 3) goto bad; /* 0x08: unsigned bytes */
    size_t n = (size_t)head[4] << 24 | (size_t)head[5] << 16 | (size_t)head[6] << 8 | head[7];
    size_t item = 1;
    for (unsigned d = 1; d < dims; d++) {
        unsigned char b[4];
        if (gzread(f, b, 4) != 4) goto bad;
        item *= (size_t)b[0] << 24 | (size_t)b[1] << 16 | (size_t)b[2] << 8 | b[3];
    }
    size_t total = n * item;
    bytes = malloc(total);
    values = malloc(total * sizeof(float));
    if (!bytes || !values) goto bad;
    if ((size_t)gzread(f, bytes, (unsigned)total) != total) goto bad;
    for (size_t i = 0; i < total; i++) values[i] = bytes[i] * scale;
    free(bytes);
    gzclose(f);
    *count = n;
    *item_size = item;
    return values;
bad:
    fprintf(stderr, "fashion_mnist: %s is not a readable gzip IDX file of bytes\n", path);
    free(bytes);
    free(values);
    gzclose(f);
    return NULL;
}

static int on_epoch(const nnb_epoch_report *r, void *user_data) {
    (void)user_data;
    printf("epoch %2d/%d  loss %.4f  accuracy %.4f  %.1f s\n", r->epoch, r->epochs, r->loss, r->accuracy, r->seconds);
    fflush(stdout);
    return 0;
}

static int failed(nnb_status s, const char *what) {
    if (s == NNB_OK) return 0;
    fprintf(stderr, "fashion_mnist: %s: %s: %s\n", what, nnb_status_string(s), nnb_last_error());
    return 1;
}

/* The README's CNN, in the description grammar. */
static const char CNN[] = "1x28x28-conv2d(16,3,padding=1):relu-batchnorm2d-maxpool2d(2)-conv2d(32,3,padding=1):relu-"
                          "batchnorm2d-maxpool2d(2)-flatten-128:relu-dropout:0.5-10";

int main(int argc, char **argv) {
    const int cnn = argc > 1 && strcmp(argv[1], "--cnn") == 0;
    if (cnn) argc--, argv++;
    int epochs = argc > 1 ? atoi(argv[1]) : 10;
    const char *dir = argc > 2 ? argv[2] : "/usr/share/datasets/fashion-mnist";
    if (epochs < 1) {
        fprintf(stderr, "usage: %s [--cnn] [epochs >= 1] [data-dir]\n", argv[0]);
        return 2;
    }
    if (nnb_version() != NNB_VERSION_NUMBER)
        fprintf(stderr, "fashion_mnist: warning: library %s, header %d.%d.%d\n", nnb_version_string(), NNB_VERSION_MAJOR,
                NNB_VERSION_MINOR, NNB_VERSION_PATCH);

    size_t n_train, n_test, n_train_labels, n_test_labels, pixels, one;
    float *x_train = read_idx(dir, "train-images-idx3-ubyte.gz", 1.0f / 255, &n_train, &pixels);
    float *y_train = read_idx(dir, "train-labels-idx1-ubyte.gz", 1.0f, &n_train_labels, &one);
    float *x_test = read_idx(dir, "t10k-images-idx3-ubyte.gz", 1.0f / 255, &n_test, &pixels);
    float *y_test = read_idx(dir, "t10k-labels-idx1-ubyte.gz", 1.0f, &n_test_labels, &one);
    int status = 1;
    nnb_model *model = NULL;
    if (!x_train || !y_train || !x_test || !y_test) goto out;
    if (n_train != n_train_labels || n_test != n_test_labels || pixels != 784) {
        fprintf(stderr, "fashion_mnist: images and labels disagree (%zu/%zu, %zu/%zu, %zu pixels)\n", n_train, n_train_labels,
                n_test, n_test_labels, pixels);
        goto out;
    }
    printf("Fashion-MNIST: %zu training and %zu test images; libnnbackprop %s, ISA %s, %d threads\n", n_train, n_test,
           nnb_version_string(), nnb_isa(), nnb_get_num_threads());

    if (failed(nnb_model_create_from_string(&model, cnn ? CNN : "784-256:relu-128:relu-10", 42), "create")) goto out;
    printf("model: %s\n", cnn ? CNN : "784-256:relu-128:relu-10");
    nnb_train_options options;
    nnb_train_options_init(&options);
    options.epochs = epochs;
    options.batch_size = 128;
    options.loss = "cross_entropy";
    options.optimizer = "adam";
    options.seed = 42;
    if (cnn) {
        options.learning_rate = 2e-3f;
        options.schedule = "cosine";
    } else {
        options.learning_rate = 1e-3f;
        options.standardize = 1; /* per-pixel standardization, kept in the model: as the Swift test */
    }
    options.on_epoch = on_epoch;
    if (failed(nnb_train(model, x_train, n_train, 784, y_train, 1, &options, NULL), "train")) goto out;

    double loss, accuracy;
    if (failed(nnb_evaluate(model, x_test, n_test, 784, y_test, 1, NULL, &loss, &accuracy), "evaluate")) goto out;
    printf("test loss %.4f  test accuracy %.4f\n", loss, accuracy);
    status = 0;
out:
    nnb_model_free(model);
    free(x_train);
    free(y_train);
    free(x_test);
    free(y_test);
    return status;
}
