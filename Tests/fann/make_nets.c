/* Trains small networks with FANN (Debian libfann-dev), saves them as .net files, and writes
 * fann_run's outputs for fixed inputs, which python/tests/test_fann.py compares with the
 * networks loaded into NNBackprop. One network per output activation: sigmoid, symmetric
 * sigmoid, linear; hidden steepness 0.7 (folded into the weights on import).
 * Usage: make_nets FOLDER   (writes NAME.net, NAME.data, NAME.out for each network) */
#include <fann.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { ROWS = 64, IN = 3, OUT = 2 };

static void write_data(const char *path, float x[ROWS][IN], float y[ROWS][OUT]) {
    FILE *f = fopen(path, "w");
    fprintf(f, "%d %d %d\n", ROWS, IN, OUT);
    for (int r = 0; r < ROWS; r++) {
        fprintf(f, "%.9g %.9g %.9g\n%.9g %.9g\n", x[r][0], x[r][1], x[r][2], y[r][0], y[r][1]);
    }
    fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_nets FOLDER\n");
        return 2;
    }
    const struct { const char *name; enum fann_activationfunc_enum hidden, output; float lo; } nets[] = {
        {"sigmoid", FANN_SIGMOID_SYMMETRIC, FANN_SIGMOID, 0},
        {"symmetric", FANN_SIGMOID, FANN_SIGMOID_SYMMETRIC, -1},
        {"linear", FANN_SIGMOID_SYMMETRIC, FANN_LINEAR, -1},
    };
    srand(7);
    float x[ROWS][IN], y[ROWS][OUT];
    for (int r = 0; r < ROWS; r++) {
        for (int i = 0; i < IN; i++) x[r][i] = (float)rand() / RAND_MAX * 2 - 1;
    }
    for (size_t k = 0; k < sizeof nets / sizeof nets[0]; k++) {
        for (int r = 0; r < ROWS; r++) {
            y[r][0] = x[r][0] * x[r][1] > 0 ? 1 : nets[k].lo;
            y[r][1] = x[r][2] > 0 ? 1 : nets[k].lo;
        }
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.data", argv[1], nets[k].name);
        write_data(path, x, y);
        struct fann *ann = fann_create_standard(4, IN, 6, 5, OUT);
        /* fann_create_standard seeds rand() from the clock (fann_seed_rand); reseeding and
         * redrawing the weights makes the networks, and so the test, the same on every run. */
        srand(11 + (unsigned)k);
        fann_randomize_weights(ann, -0.5f, 0.5f);
        fann_set_activation_function_hidden(ann, nets[k].hidden);
        fann_set_activation_function_output(ann, nets[k].output);
        fann_set_activation_steepness_hidden(ann, 0.7f);
        fann_set_activation_steepness_output(ann, 0.4f);
        struct fann_train_data *data = fann_read_train_from_file(path);
        if (!data) return 1;
        fann_train_on_data(ann, data, 200, 0, 0.0f);
        snprintf(path, sizeof path, "%s/%s.net", argv[1], nets[k].name);
        if (fann_save(ann, path) != 0) return 1;
        snprintf(path, sizeof path, "%s/%s.out", argv[1], nets[k].name);
        FILE *f = fopen(path, "w");
        for (int r = 0; r < ROWS; r++) {
            fann_type *o = fann_run(ann, x[r]);
            fprintf(f, "%.9g %.9g\n", o[0], o[1]);
        }
        fclose(f);
        fann_destroy_train(data);
        fann_destroy(ann);
    }
    /* A shortcut network, which the importer refuses by name. */
    struct fann *s = fann_create_shortcut(2, IN, OUT);
    char path[1024];
    snprintf(path, sizeof path, "%s/shortcut.net", argv[1]);
    fann_save(s, path);
    fann_destroy(s);
    return 0;
}
