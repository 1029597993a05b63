/*
 * nnbackprop.h: the C interface of libnnbackprop.so.
 *
 * Train and run feed-forward networks from C (or any language with a C FFI, such as Python's
 * ctypes). The library is the Swift NNBackprop package with its Swift runtime linked in
 * statically; it exports the nnb_ symbols declared here and nothing else.
 *
 * Conventions
 * - Every call returns an nnb_status (NNB_OK == 0). On failure, nnb_last_error() gives a message
 *   naming what was wrong and where; it belongs to the calling thread and stays valid until that
 *   thread's next failing call.
 * - Handles are opaque. Create/free pairs; every free accepts NULL.
 * - Arrays are float32, row-major, contiguous. The caller owns every buffer it passes; the
 *   library copies what it keeps (layer specs, option strings) and borrows everything else only
 *   for the duration of the call.
 * - Options structs start with their own size (struct_size = sizeof(struct)), set by their
 *   _init function, so the ABI can grow: a library accepts any size up to its own and treats
 *   missing trailing fields as defaults.
 * - Threads: distinct models may be used from distinct threads at any time. On one model,
 *   nnb_predict / nnb_evaluate / the read-only queries may run from many threads at once (weights
 *   are read-only there and scratch belongs to the call). A call that changes a model (train,
 *   train_batch, train_epoch, compile) while another thread is changing it fails with
 *   NNB_ERR_BUSY instead of corrupting it. nnb_predict and nnb_evaluate wait while another
 *   thread trains the model (they never see half-updated weights), except when called from that
 *   training's own epoch callback, which may use the model freely. nnb_model_get_info and
 *   nnb_model_describe never wait (a model's shape is fixed at creation). Do not free a model
 *   while another thread uses it.
 * - Versioned structs: struct_size must be at least 8 and at most this header's sizeof; a
 *   smaller one (an older header) keeps the defaults for the fields it lacks. Output structs
 *   (nnb_epoch_report, nnb_model_info) are filled up to the struct_size the caller set (0 in an
 *   nnb_epoch_report means the 0.1 layout, which ends before best_epoch), and keep it. The
 *   _init functions are macros over *_init_sized(p, sizeof *p), so a program fills exactly the
 *   struct its header declares; the plain symbols fill the 0.1 layout, for programs built
 *   against that header.
 */
#ifndef NNBACKPROP_H
#define NNBACKPROP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define NNB_API __declspec(dllimport)
#elif defined(__GNUC__)
#define NNB_API __attribute__((visibility("default")))
#else
#define NNB_API
#endif

#define NNB_VERSION_MAJOR 0
#define NNB_VERSION_MINOR 6
#define NNB_VERSION_PATCH 0
/* NNB_VERSION_MAJOR * 10000 + NNB_VERSION_MINOR * 100 + NNB_VERSION_PATCH */
#define NNB_VERSION_NUMBER (NNB_VERSION_MAJOR * 10000 + NNB_VERSION_MINOR * 100 + NNB_VERSION_PATCH)
/* Bumped whenever a struct or signature in this header changes incompatibly. 0.2 (shaped layers)
 * kept ABI 1: it only added fields at the ends of versioned structs (nnb_layer_spec.type_name and
 * .attributes, nnb_model_info.input_rank and .input_shape, nnb_epoch_report.best_epoch,
 * nnb_train_options.resume), the NNB_LAYER_NAMED spec type and new functions. A program built
 * against the 0.1 header passes its smaller struct_size and keeps every old field's meaning. */
#define NNB_ABI_VERSION 1

/* The library's NNB_VERSION_NUMBER and NNB_ABI_VERSION; compare with the macros to check that
 * header and library agree. */
NNB_API int nnb_version(void);
NNB_API int nnb_abi_version(void);
/* "0.6.0" */
NNB_API const char *nnb_version_string(void);

/* ------------------------------------------------------------------------------------------ */
/* Status codes and errors                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef enum nnb_status {
    NNB_OK = 0,
    NNB_ERR_NULL_ARGUMENT = 1,    /* a required pointer was NULL */
    NNB_ERR_INVALID_ARGUMENT = 2, /* a value out of its range (zero sizes, bad option) */
    NNB_ERR_SHAPE_MISMATCH = 3,   /* array sizes that disagree with the model or each other */
    NNB_ERR_INVALID_DATA = 4,     /* NaN or infinite values, class index out of range */
    NNB_ERR_CAPACITY = 5,         /* an output buffer too small */
    NNB_ERR_IO = 6,               /* a file missing, unreadable or unwritable */
    NNB_ERR_CORRUPT_FILE = 7,     /* a model file truncated, garbled or not a model */
    NNB_ERR_UNSUPPORTED = 8,      /* a valid request this build cannot do */
    NNB_ERR_UNKNOWN_NAME = 9,     /* an unknown layer, activation, loss or optimizer name */
    NNB_ERR_BUSY = 10,            /* the model is being trained by another thread */
    NNB_ERR_VERSION = 11,         /* an options struct or file from an incompatible version */
    NNB_ERR_NOT_READY = 12,       /* e.g. nnb_train_batch before nnb_compile */
    NNB_ERR_INTERNAL = 13,        /* a bug in the library: please report it */
    NNB_ERR_DUPLICATE = 14,       /* a plugin name that is registered already */
    NNB_ERR_PLUGIN = 15,          /* a plugin library that cannot be loaded, lacks its entry point,
                                     or whose entry point failed */
    NNB_ERR_DIVERGED = 16         /* training produced a non-finite loss or non-finite weights; the
                                     model keeps the last finite weights (see nnb_train) */
} nnb_status;

/* A static, constant description of a status ("NNB_ERR_SHAPE_MISMATCH: shape mismatch"). */
NNB_API const char *nnb_status_string(nnb_status status);
/* The calling thread's last error message ("" when none). */
NNB_API const char *nnb_last_error(void);

/* ------------------------------------------------------------------------------------------ */
/* Runtime                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Threads the kernels use (process-wide; starts at OMP_NUM_THREADS or the core count).
 * At most 256, or the machine's online hardware threads when it has more (each OpenMP worker
 * reserves a stack, so an absurd count would exhaust memory); a count outside that range, or
 * below 1, gives NNB_ERR_INVALID_ARGUMENT and changes nothing. OMP_NUM_THREADS past the cap is
 * clamped to it. */
NNB_API nnb_status nnb_set_num_threads(int threads);
NNB_API int nnb_get_num_threads(void);
/* The SIMD path in use: "avx512", "avx2", "neon" or "scalar" (NNB_ISA overrides it). */
NNB_API const char *nnb_isa(void);
/* 1 when the library was built with OpenMP. */
NNB_API int nnb_openmp_enabled(void);
/* 1 when training can run in `precision` ("fp32", or "bf16": AVX512_BF16 on the avx512 path)
 * on this CPU and SIMD path; 0 when it cannot or the name is unknown (NULL included). Added in 0.5. */
NNB_API int nnb_precision_supported(const char *precision);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                       */
/* ------------------------------------------------------------------------------------------ */

typedef struct nnb_model nnb_model;

typedef enum nnb_layer_type {
    NNB_LAYER_DENSE = 1,      /* units outputs, optional fused activation */
    NNB_LAYER_ACTIVATION = 2, /* activation on its own */
    NNB_LAYER_DROPOUT = 3,    /* inverted dropout with the given rate; identity at inference */
    NNB_LAYER_NAMED = 4       /* any registered layer type, by type_name and attributes */
} nnb_layer_type;

typedef struct nnb_layer_spec {
    uint32_t struct_size;   /* sizeof(nnb_layer_spec) */
    nnb_layer_type type;    /* an enum: int-sized on every ABI this library supports */
    int64_t units;          /* DENSE: outputs */
    const char *activation; /* DENSE, ACTIVATION: "identity" (or NULL), "sigmoid", "tanh", "relu",
                               "leaky_relu", "elu", "gelu", "gelu_tanh", "silu", "softplus",
                               "softmax", "log_softmax" (the last two as ACTIVATION only) */
    float alpha;            /* leaky_relu slope / elu alpha; 0 means the default (0.01 / 1) */
    float rate;             /* DROPOUT: probability of dropping, in [0, 1) */
    /* NAMED (added in 0.2; a struct from an older header ends before these and keeps working):
     * the registered type name, as the description grammar spells it ("dense", "flatten",
     * "reshape", "dropout", "activation", "softmax"; case-insensitive), and its attributes as
     * "key=value" pairs joined by ',' (NULL or "" for none), e.g. type_name "dense",
     * attributes "units=256,activation=relu"; "reshape" with "shape=1x28x28". An unknown type
     * or attribute is NNB_ERR_UNKNOWN_NAME, a bad value NNB_ERR_INVALID_ARGUMENT, a layer that
     * does not take the previous layer's output NNB_ERR_SHAPE_MISMATCH; the message names it. */
    const char *type_name;
    const char *attributes;
} nnb_layer_spec;

/* Sets struct_size = size and the defaults (identity activation) of the first `size` bytes
 * (size at least 8, at most sizeof(nnb_layer_spec); another size leaves *spec untouched). */
NNB_API void nnb_layer_spec_init_sized(nnb_layer_spec *spec, size_t size);
/* The 0.1 form: fills the 0.1 layout only (it ends before type_name). Code built against this
 * header reaches nnb_layer_spec_init_sized through the macro below. */
NNB_API void nnb_layer_spec_init(nnb_layer_spec *spec);
#define nnb_layer_spec_init(spec) nnb_layer_spec_init_sized((spec), sizeof *(spec))

/* A new model with `inputs` features and the given layers, weights initialised as PyTorch
 * initialises them, from `seed`. Copies the specs. `layers` is an array of structs of
 * layers[0].struct_size bytes each (every element must say the same size), so an array from
 * the 0.1 header, whose structs are smaller, works. *out is NULL on failure. */
NNB_API nnb_status nnb_model_create(nnb_model **out, int64_t inputs, const nnb_layer_spec *layers,
                                    size_t n_layers, uint64_t seed);

/* The same from a compact description: the input shape, then layers, joined by '-':
 *   N or CxHxW      the input shape of one sample: "784" (features), "1x28x28" (an image:
 *                   channels, height, width) -- only as the first element
 *   N               a dense layer of N units (linear)
 *   N:ACT           a dense layer with an activation (a built-in name as in nnb_layer_spec, or one
 *                   registered by a plugin)
 *   ACT             an activation on its own, including "softmax" and "log_softmax"
 *   dropout:P       dropout with rate P in [0, 1)
 *   TYPE            any registered layer type without attributes ("flatten")
 *   TYPE(ARGS)      a registered layer type with attributes: values by position or as key=value,
 *                   joined by ','; a list of sizes is written AxB ("reshape(1x28x28)",
 *                   "dense(units=10,activation=tanh)", "reshape(shape=-1x28)")
 *   ELEMENT:ACT     after TYPE(ARGS), sets the layer's "activation" attribute
 * e.g. "784-256:relu-128:relu-10" (784 inputs, two ReLU layers, a linear output) or
 * "1x28x28-flatten-256:relu-10". A malformed element gives NNB_ERR_INVALID_ARGUMENT, an unknown
 * activation, layer type or attribute NNB_ERR_UNKNOWN_NAME, a layer that cannot take its input
 * NNB_ERR_SHAPE_MISMATCH; the message names the element. Types and their attributes (positional
 * ones first, in order): dense (out_features|units, activation, alpha, initializer), activation
 * (activation, alpha), softmax, log_softmax, dropout (p), flatten, reshape (shape),
 * customactivation (name), conv2d (out_channels, kernel_size, stride, padding as sizes or
 * same/valid, dilation, groups, bias 0/1, activation, alpha), maxpool2d (kernel_size, stride,
 * padding), avgpool2d (kernel_size, stride, padding, count_include_pad 0/1), globalavgpool2d,
 * batchnorm1d / batchnorm2d (num_features, eps, momentum, affine 0/1), layernorm
 * (normalized_shape, eps, elementwise_affine 0/1). Sizes of 2-D attributes are one number or HxW.
 * E.g. "1x28x28-conv2d(32,3,padding=1):relu-batchnorm2d-maxpool2d(2)-flatten-128:relu-10". */
NNB_API nnb_status nnb_model_create_from_string(nnb_model **out, const char *description, uint64_t seed);

NNB_API void nnb_model_free(nnb_model *model);

typedef struct nnb_model_info {
    uint32_t struct_size;  /* sizeof(nnb_model_info) */
    int64_t inputs;
    int64_t outputs;
    int64_t layers;        /* layers of the model: a dense layer with a built-in activation counts
                              once; a plugin activation is a layer of its own */
    int64_t parameters;    /* trainable scalars */
    /* Added in 0.2 (an older, smaller struct ends above): the shape of one input sample. */
    int32_t input_rank;        /* dimensions in input_shape (1 for a feature vector) */
    int32_t reserved;
    int64_t input_shape[8];    /* outermost first ({1, 28, 28} for an image); unused ones 0 */
} nnb_model_info;

/* Fills *info (whose struct_size the caller sets). */
NNB_API nnb_status nnb_model_get_info(const nnb_model *model, nnb_model_info *info);

/* Writes the model's description (as nnb_model_create_from_string takes) into buf, including
 * the terminating NUL; *needed (may be NULL) gets the size required. NNB_ERR_CAPACITY when
 * capacity is too small; buf == NULL with capacity == 0 and needed given only asks the size. */
NNB_API nnb_status nnb_model_describe(const nnb_model *model, char *buf, size_t capacity, size_t *needed);

/* ------------------------------------------------------------------------------------------ */
/* Training                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct nnb_epoch_report {
    uint32_t struct_size;
    int32_t epoch;        /* 1-based */
    int32_t epochs;
    double loss;          /* mean training loss over the epoch */
    double accuracy;      /* training accuracy: arg-max for cross_entropy, per output (logit > 0
                             against target >= 0.5) for bce; NaN for regression losses */
    double val_loss;      /* NaN without validation data */
    double val_accuracy;  /* NaN without validation data or for regression */
    double learning_rate; /* at the end of the epoch */
    double seconds;       /* wall time of the epoch */
    /* Added in 0.2 (an older, smaller struct ends above): */
    int32_t best_epoch;   /* with early stopping, the 1-based epoch whose weights the model kept
                             (restore_best) or that was best; else 0 */
    int32_t reserved;
} nnb_epoch_report;

/* Called after every epoch; return nonzero to stop training (nnb_train then returns NNB_OK and
 * the report says how many epochs ran). Runs on the thread that called nnb_train. */
typedef int (*nnb_epoch_callback)(const nnb_epoch_report *report, void *user_data);

typedef struct nnb_train_options {
    uint32_t struct_size;      /* sizeof(nnb_train_options), set by nnb_train_options_init */
    int32_t epochs;            /* default 10; 0 trains nothing */
    int32_t batch_size;        /* default 32 */
    const char *loss;          /* "cross_entropy" (default; softmax from logits), "bce" (sigmoid
                                  from logits), "mse", "mae", "huber" */
    const char *optimizer;     /* "adam" (default), "adamw", "sgd", "rmsprop", "adagrad", "irprop"
                                  (full batch, FANN's iRPROP-) */
    float learning_rate;       /* default 1e-3; irprop: the initial step size (FANN's default
                                  is 0.1, PyTorch's Rprop's 0.01) */
    float momentum;            /* sgd, rmsprop; default 0 */
    int32_t nesterov;          /* sgd; default 0 */
    float weight_decay;        /* default -1: the optimizer's own default (0; adamw 0.01); not
                                  irprop */
    float beta1, beta2;        /* adam, adamw; defaults 0.9, 0.999 */
    float eps;                 /* adam, adamw, rmsprop, adagrad; default 1e-8 */
    float label_smoothing;     /* cross_entropy; default 0 */
    float huber_delta;         /* huber; default 1 */
    const char *schedule;      /* "constant" (default, or NULL), "step", "exponential", "cosine" */
    int32_t step_size;         /* step: epochs between decays; default 10 */
    float gamma;               /* step / exponential decay factor, > 0; default 0 means 0.1 for
                                  step, 0.95 for exponential */
    int32_t warmup_epochs;     /* linear warm-up before the schedule; default 0 */
    float clip_norm;           /* clip gradients to this global norm; 0 (default) = off */
    float validation_split;    /* fraction of rows held out (the last rows); default 0 */
    int32_t shuffle;           /* reshuffle every epoch; default 1 */
    uint64_t seed;             /* shuffle and dropout seed; default 0 */
    int32_t early_stopping_patience; /* epochs without val_loss improvement; 0 (default) = off */
    int32_t restore_best;      /* with early stopping: restore the best weights; default 1 */
    nnb_epoch_callback on_epoch; /* may be NULL */
    void *user_data;           /* passed to on_epoch */
    int32_t standardize;       /* 1: fit a per-feature standardizer ((x - mean) / std) on the
                                  training rows first; the model keeps it (in files too) and
                                  applies it to every input it is given. Default 0 */
    float alpha;               /* rmsprop: smoothing constant of the squared-gradient average
                                  (PyTorch's alpha), in [0, 1); default 0.99 */
    /* Added in 0.2 (an older, smaller struct ends above and keeps the default): */
    int32_t resume;            /* 1: continue the checkpoint the model was loaded from (see
                                  nnb_model_save_checkpoint): its optimizer state (the optimizer
                                  must be the one it saved) and its data order, from the epoch
                                  after the ones it had done up to `epochs` in all. Default 0 */
    /* Added in 0.3 (an older, smaller struct ends above and keeps the defaults): light image
       augmentation of the training batches (never of validation rows), for models whose
       samples are (C, H, W) or (H, W); drawn from the seed, the epoch and the batch, so a run
       is reproducible. Set for a model with flat samples: NNB_ERR_SHAPE_MISMATCH. */
    int32_t augment_shift;     /* move each sample by up to this many pixels up/down and
                                  left/right (uniform; the pixels moved in are 0, before the
                                  standardizer), in 0..64; default 0 (off) */
    int32_t augment_flip;      /* 1: mirror each sample left to right with probability 1/2;
                                  default 0 */
    /* Added in 0.5 (an older, smaller struct ends above and keeps the default): */
    const char *precision;     /* the arithmetic of the Dense and Conv2D products in training:
                                  "fp32" (default, or NULL), or "bf16" (bf16 inputs, fp32
                                  accumulation, fp32 master weights; needs AVX512_BF16, else
                                  NNB_ERR_UNSUPPORTED: see nnb_precision_supported).
                                  Evaluation and prediction stay fp32 */
    /* Added in 0.6 (an older, smaller struct ends above and keeps the defaults): data-parallel
       training over MPI (nnb_train only), for a program run under mpirun. Every process of the
       communicator calls nnb_train with the same model, data and options; the weights start as
       rank 0's, each process takes its share of every shuffled global batch of batch_size rows,
       gradients are summed with MPI_Iallreduce while backward runs, every process applies the
       same update and ends with the same weights (checked after each epoch); the epoch reports
       cover every process's rows. An error on one process (bad data, a NaN loss) returns an error
       on every process at the same step. MPI is initialized if the program has not done so (and
       then finalized when the process exits); a program that initialized it finalizes it. A build without MPI: NNB_ERR_UNSUPPORTED. */
    int32_t distributed;       /* 1: train data-parallel over MPI; default 0 */
    const void *mpi_comm;      /* with distributed: the address of the MPI_Comm to use (NULL, the
                                  default: MPI_COMM_WORLD); it is duplicated, not kept */
} nnb_train_options;

/* Sets struct_size and every default above. An option changed from its default that the chosen
 * optimizer, loss or schedule does not use (momentum with adam, beta2 with rmsprop, gamma with
 * cosine, label_smoothing with mse, ...) is refused with NNB_ERR_INVALID_ARGUMENT naming both,
 * never silently ignored. */
NNB_API void nnb_train_options_init_sized(nnb_train_options *options, size_t size);
/* The 0.1 form: fills the 0.1 layout only (it ends before resume). */
NNB_API void nnb_train_options_init(nnb_train_options *options);
#define nnb_train_options_init(options) nnb_train_options_init_sized((options), sizeof *(options))

/*
 * Targets, for every training and evaluation call: `y` has `y_cols` columns.
 * - cross_entropy: y_cols == 1 holds class indices (whole numbers in [0, outputs)), or
 *   y_cols == outputs holds one-hot or soft target rows.
 * - bce, mse, mae, huber: y_cols == outputs.
 */

/* Trains for options->epochs epochs on x (rows, cols == the model's inputs). Copies nothing it
 * keeps. `last` (may be NULL) receives the report of the last epoch run. */
NNB_API nnb_status nnb_train(nnb_model *model, const float *x, size_t rows, size_t cols, const float *y,
                             size_t y_cols, const nnb_train_options *options, nnb_epoch_report *last);

/* For programs that drive their own loop: set loss and optimizer once (keeps optimizer state,
 * so a second compile resets it), then call nnb_train_batch / nnb_train_epoch. options.standardize
 * and options.resume, which act on nnb_train's data, give NNB_ERR_INVALID_ARGUMENT here. */
NNB_API nnb_status nnb_compile(nnb_model *model, const nnb_train_options *options);
/* One optimizer step on this batch; *loss (may be NULL) gets the batch's mean loss. The batch is
 * used as given: compiled with augment_shift or augment_flip, it is NNB_ERR_INVALID_ARGUMENT
 * (nnb_train_epoch draws and augments its batches). */
NNB_API nnb_status nnb_train_batch(nnb_model *model, const float *x, size_t rows, size_t cols, const float *y,
                                   size_t y_cols, double *loss);
/* One epoch over the data in mini-batches of the compiled batch size (shuffled when compiled so).
 * report may be NULL. Calling it k times trains exactly as nnb_train with k epochs does (the same
 * data order and schedule); report->epochs is the compiled options' epochs. */
NNB_API nnb_status nnb_train_epoch(nnb_model *model, const float *x, size_t rows, size_t cols, const float *y,
                                   size_t y_cols, nnb_epoch_report *report);

/* Writes the model as nnb_model_save does, plus a training checkpoint: the optimizer of the last
 * nnb_compile / nnb_train (its state and step count), the epochs done and the data-order seed,
 * and dropout's random state. nnb_model_load of the file, then nnb_train with options.resume = 1
 * (and the same options), trains bitwise as the uninterrupted run would have.
 * NNB_ERR_NOT_READY before any nnb_compile or nnb_train. The file still loads as a model (in
 * PyTorch, its "optimizer.*" tensors are extra keys). */
NNB_API nnb_status nnb_model_save_checkpoint(const nnb_model *model, const char *path);

/* ------------------------------------------------------------------------------------------ */
/* Inference                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* out (rows, outputs) = the model's raw outputs (logits for cross_entropy models) for x (rows,
 * cols). capacity: floats available at out; NNB_ERR_CAPACITY when below rows * outputs;
 * NNB_ERR_INVALID_DATA for NaN or infinite inputs. Safe to call from many threads at once on one
 * model. */
NNB_API nnb_status nnb_predict(const nnb_model *model, const float *x, size_t rows, size_t cols, float *out,
                               size_t capacity);

/* Mean loss (*loss) and accuracy (*accuracy: NaN for regression losses) of the model on (x, y)
 * under the named loss (NULL: the compiled one, else the one the model was trained with, which
 * its file keeps, else cross_entropy). Either output may be NULL. */
NNB_API nnb_status nnb_evaluate(const nnb_model *model, const float *x, size_t rows, size_t cols, const float *y,
                                size_t y_cols, const char *loss, double *loss_value, double *accuracy);

/* ------------------------------------------------------------------------------------------ */
/* Files                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Saves the model (architecture, weights, preprocessing) as a safetensors file that NNBackprop's
 * Swift and Python APIs read too; tensor names follow PyTorch's nn.Sequential state dict. The
 * write is atomic: on failure an existing file at `path` is left as it was. */
NNB_API nnb_status nnb_model_save(const nnb_model *model, const char *path);
/* What a save does with the path: a symbolic link is written through (its target is replaced, the
 * link kept); a directory, a device, a pipe or a socket is refused (NNB_ERR_IO), and so is an
 * existing file this process may not write. The replacement keeps the file's permission bits.
 * A temporary file ".NAME.nnb-tmp-PID-..." is written beside it and renamed over it; one left
 * by a killed process is removed by the next save to the same path. */

/* Loads a saved model into a new handle (*out NULL on failure). A file whose weights are NaN or
 * infinite (what a diverged run would have saved) gives NNB_ERR_INVALID_DATA. */
NNB_API nnb_status nnb_model_load(nnb_model **out, const char *path);

/* Flags of nnb_model_load_with_flags. */
#define NNB_LOAD_ALLOW_NONFINITE 1u /* load NaN or infinite weights, to inspect a damaged model */

/* nnb_model_load with flags (0: the same as nnb_model_load); unknown flag bits give
 * NNB_ERR_INVALID_ARGUMENT. */
NNB_API nnb_status nnb_model_load_with_flags(nnb_model **out, const char *path, uint32_t flags);

/* Flags of nnb_model_save_to_buffer. */
#define NNB_SAVE_CHECKPOINT 1u /* what nnb_model_save_checkpoint writes, not nnb_model_save */

/* The bytes of the model file nnb_model_save writes (with NNB_SAVE_CHECKPOINT, those of
 * nnb_model_save_checkpoint), copied into buf. *needed (may be NULL) gets their count; a capacity
 * below it writes nothing and gives NNB_ERR_CAPACITY, and buf NULL with capacity 0 asks the size
 * (NNB_OK). The count changes only when the model does (training, new class names). */
NNB_API nnb_status nnb_model_save_to_buffer(const nnb_model *model, uint32_t flags, void *buf, size_t capacity,
                                            size_t *needed);

/* A model from the `size` bytes at `data` (a model file's contents, as nnb_model_save_to_buffer
 * gives them), as nnb_model_load_with_flags reads a file: the bytes are only read during the call.
 * A checkpoint's training state comes with it (options.resume). */
NNB_API nnb_status nnb_model_load_from_buffer(nnb_model **out, const void *data, size_t size, uint32_t flags);

/* Writes the model (and its scaler) as an ONNX model (opset 17, float32, input "input" and output
 * "output" with a dynamic batch dimension "N") for ONNX Runtime and other ONNX tools; atomic, as
 * nnb_model_save. NNB_ERR_UNSUPPORTED names a layer with no ONNX form (a plugin activation, tied
 * weights). */
NNB_API nnb_status nnb_model_export_onnx(const nnb_model *model, const char *path);

/* A trainable model from an ONNX file of the layer kinds this library has, as torch.onnx.export
 * writes an nn.Sequential MLP or CNN (Gemm or MatMul + Add, Conv, Relu / Sigmoid / Tanh /
 * LeakyRelu / Elu / Softplus, Softmax, LogSoftmax, MaxPool, AveragePool, GlobalAveragePool,
 * BatchNormalization, LayerNormalization, Flatten, Reshape, Dropout), one chain from input to
 * output. NNB_ERR_UNSUPPORTED names the first node outside that subset and its op. `seed` seeds
 * the model's dropout. */
NNB_API nnb_status nnb_model_import_onnx(nnb_model **out, const char *path, uint64_t seed);

/* A trainable model from a FANN 2.x float network file (.net, "FANN_FLO_2.1"): each layer a
 * dense layer, FANN_LINEAR, FANN_SIGMOID and FANN_SIGMOID_SYMMETRIC with their steepness folded
 * into the weights, so the model computes what fann_run does. NNB_ERR_UNSUPPORTED names what is
 * not read: shortcut and sparse networks, other activation functions, scaling parameters,
 * fixed-point files. */
NNB_API nnb_status nnb_model_import_fann(nnb_model **out, const char *path, uint64_t seed);

/* ------------------------------------------------------------------------------------------ */
/* What the model was trained with                                                              */
/* ------------------------------------------------------------------------------------------ */

/* The name of the loss the model was last trained with ("cross_entropy", "bce", "mse", ...; set
 * by nnb_train / nnb_compile, saved in its file), NUL-terminated into buf as nnb_model_describe
 * writes text (*needed gets the size with the NUL; buf NULL, capacity 0 asks it).
 * NNB_ERR_NOT_READY when it has none (never trained, or loaded from a file without one). */
NNB_API nnb_status nnb_model_get_loss(const nnb_model *model, char *buf, size_t capacity, size_t *needed);

/* Names the model's classes (saved in its file): `count` NUL-terminated UTF-8 strings, copied,
 * all different, one per output (2 for a one-output bce model: classes 0 and 1). count 0 (names
 * may then be NULL) removes them. NNB_ERR_SHAPE_MISMATCH for another count, NNB_ERR_INVALID_ARGUMENT
 * for a repeated name. */
NNB_API nnb_status nnb_model_set_class_names(nnb_model *model, const char *const *names, size_t count);

/* *count gets the number of class names the model has (0: none). */
NNB_API nnb_status nnb_model_class_count(const nnb_model *model, size_t *count);

/* Class name `index` (below nnb_model_class_count's count), NUL-terminated into buf as
 * nnb_model_get_loss writes its name. */
NNB_API nnb_status nnb_model_get_class_name(const nnb_model *model, size_t index, char *buf, size_t capacity,
                                            size_t *needed);

/* Post-training int8 quantization (added in 0.5). nnb_model_quantize_int8 quantizes every
 * top-level dense layer: weights to int8 with one scale per output, each layer's input to
 * uint8 with a scale and zero point from the range it takes on the first calibration_rows rows
 * of x (rows, cols) (0: up to 1000), seen through the scaler and the layers before it. Then
 * nnb_predict, nnb_evaluate and saved files run those layers in int8 (AVX512-VNNI where the CPU
 * has it; the same results everywhere) with fp32 bias and activation; other layers stay fp32.
 * The fp32 weights are kept: nnb_model_remove_quantization goes back to them. Training calls
 * refuse a quantized model (NNB_ERR_UNSUPPORTED). A model without a dense layer:
 * NNB_ERR_UNSUPPORTED; x as for nnb_predict. Not while another thread trains the model
 * (NNB_ERR_BUSY). nnb_model_is_quantized: 1 or 0 (0 for NULL). */
NNB_API nnb_status nnb_model_quantize_int8(nnb_model *model, const float *x, size_t rows, size_t cols,
                                           size_t calibration_rows);
NNB_API nnb_status nnb_model_remove_quantization(nnb_model *model);
NNB_API int nnb_model_is_quantized(const nnb_model *model);

#ifdef __cplusplus
}
#endif

#endif /* NNBACKPROP_H */
