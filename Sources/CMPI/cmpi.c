/* The MPI shim (include/cmpi.h). */
#include "cmpi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef NNB_HAVE_MPI
#include <limits.h>
#include <mpi.h>

enum { MAX_PENDING = 256 };
static MPI_Comm comm_ = MPI_COMM_NULL, base_ = MPI_COMM_NULL; /* the duplicate, and what it duplicates */
static int we_initialized_;
static MPI_Request pending_[MAX_PENDING];
static int n_pending_;

static int fail(int rc, const char *what, char *err, size_t cap) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    snprintf(err, cap, "%s failed: %s", what, msg);
    return rc == 0 ? -1 : rc;
}

int cmpi_built(void) { return 1; }

void cmpi_library_version(char *out, size_t cap) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strchr(v, '\n');
    if (nl) *nl = 0;
    snprintf(out, cap, "%s", v);
}

int cmpi_init(const void *comm, int *rank, int *size, char *err, size_t cap) {
    int ready = 0, done = 0, rc;
    const MPI_Comm wanted = comm ? *(const MPI_Comm *)comm : MPI_COMM_WORLD;
    if (comm_ != MPI_COMM_NULL && wanted != base_) { /* another communicator than last time */
        if (n_pending_ > 0) return snprintf(err, cap, "gradient sums are still pending on the previous communicator"), -1;
        MPI_Comm_free(&comm_);
        comm_ = MPI_COMM_NULL;
    }
    if (comm_ == MPI_COMM_NULL) {
        MPI_Finalized(&done);
        if (done) return snprintf(err, cap, "MPI is already finalized"), -1;
        MPI_Initialized(&ready);
        if (!ready) {
            int provided = 0;
            if ((rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS)
                return fail(rc, "MPI_Init_thread", err, cap);
            we_initialized_ = 1;
            atexit(cmpi_finalize); /* a program that did not start MPI does not end it either */
        }
        if (wanted == MPI_COMM_NULL) return snprintf(err, cap, "the communicator is MPI_COMM_NULL"), -1;
        if ((rc = MPI_Comm_dup(wanted, &comm_)) != MPI_SUCCESS) return fail(rc, "MPI_Comm_dup", err, cap);
        base_ = wanted;
        MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    }
    MPI_Comm_rank(comm_, rank);
    MPI_Comm_size(comm_, size);
    return 0;
}

/* MPI counts are int: larger buffers go in pieces. */
enum { PIECE = INT_MAX / 2 };

int cmpi_broadcast_floats(float *x, size_t n, char *err, size_t cap) {
    for (size_t i = 0; i < n; i += PIECE) {
        const int c = (int)(n - i < PIECE ? n - i : PIECE);
        const int rc = MPI_Bcast(x + i, c, MPI_FLOAT, 0, comm_);
        if (rc != MPI_SUCCESS) return fail(rc, "MPI_Bcast", err, cap);
    }
    return 0;
}

int cmpi_sum_doubles(double *x, size_t n, char *err, size_t cap) {
    for (size_t i = 0; i < n; i += PIECE) {
        const int c = (int)(n - i < PIECE ? n - i : PIECE);
        const int rc = MPI_Allreduce(MPI_IN_PLACE, x + i, c, MPI_DOUBLE, MPI_SUM, comm_);
        if (rc != MPI_SUCCESS) return fail(rc, "MPI_Allreduce", err, cap);
    }
    return 0;
}

int cmpi_start_sum_floats(float *x, size_t n, char *err, size_t cap) {
    for (size_t i = 0; i < n; i += PIECE) {
        if (n_pending_ == MAX_PENDING) return snprintf(err, cap, "more than %d gradient sums pending", MAX_PENDING), -1;
        const int c = (int)(n - i < PIECE ? n - i : PIECE);
        const int rc = MPI_Iallreduce(MPI_IN_PLACE, x + i, c, MPI_FLOAT, MPI_SUM, comm_, &pending_[n_pending_]);
        if (rc != MPI_SUCCESS) return fail(rc, "MPI_Iallreduce", err, cap);
        n_pending_++;
    }
    return 0;
}

void cmpi_progress(void) {
    int flag = 0;
    if (n_pending_ > 0) MPI_Testall(n_pending_, pending_, &flag, MPI_STATUSES_IGNORE);
}

int cmpi_finish_sums(char *err, size_t cap) {
    const int n = n_pending_;
    n_pending_ = 0;
    const int rc = n > 0 ? MPI_Waitall(n, pending_, MPI_STATUSES_IGNORE) : MPI_SUCCESS;
    return rc == MPI_SUCCESS ? 0 : fail(rc, "MPI_Waitall", err, cap);
}

void cmpi_abort(int code) {
    int ready = 0, done = 0;
    MPI_Initialized(&ready);
    MPI_Finalized(&done);
    if (ready && !done) MPI_Abort(MPI_COMM_WORLD, code);
}

void cmpi_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (we_initialized_ && !done) {
        if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
        MPI_Finalize();
    }
}

#else

static int off(char *err, size_t cap) {
    snprintf(err, cap, "this build of NNBackprop has no MPI (install libopenmpi-dev, or set NNB_MPI_PREFIX, and rebuild)");
    return -1;
}

int cmpi_built(void) { return 0; }
void cmpi_library_version(char *out, size_t cap) {
    if (cap) out[0] = 0;
}
int cmpi_init(const void *comm, int *rank, int *size, char *err, size_t cap) {
    (void)comm, (void)rank, (void)size;
    return off(err, cap);
}
int cmpi_broadcast_floats(float *x, size_t n, char *err, size_t cap) { return (void)x, (void)n, off(err, cap); }
int cmpi_sum_doubles(double *x, size_t n, char *err, size_t cap) { return (void)x, (void)n, off(err, cap); }
int cmpi_start_sum_floats(float *x, size_t n, char *err, size_t cap) { return (void)x, (void)n, off(err, cap); }
void cmpi_progress(void) {}
int cmpi_finish_sums(char *err, size_t cap) { return off(err, cap); }
void cmpi_abort(int code) { (void)code; }
void cmpi_finalize(void) {}
#endif
