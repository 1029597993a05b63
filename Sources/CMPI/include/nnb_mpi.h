/*
 * The MPI calls NNBackpropMPI makes, behind plain C types, so Swift never imports mpi.h (whose
 * handles are macros over Open MPI's globals). Built with MPI where Package.swift finds it
 * (NNB_HAVE_MPI); elsewhere every call fails with "built without MPI". Errors return non-zero
 * with a message in err (cap bytes); nothing here prints or exits.
 */
#ifndef NNB_MPI_H
#define NNB_MPI_H

#include <stddef.h>
#include <stdint.h>

/* 1 when built with MPI. */
int nnb_mpi_built(void);
/* The MPI library's version line (empty without MPI). */
void nnb_mpi_library_version(char *out, size_t cap);
/* Initializes MPI if the program has not (MPI_Init_thread, MPI_THREAD_FUNNELED; then finalized
 * at exit, by atexit, unless nnb_mpi_finalize ran first), then uses a
 * duplicate of comm (an MPI_Comm passed by address; NULL: MPI_COMM_WORLD) with errors returned,
 * not fatal. Sets rank and size. Again after success: the same communicator. */
int nnb_mpi_init(const void *comm, int *rank, int *size, char *err, size_t cap);
/* x (n floats) on every rank becomes root 0's. */
int nnb_mpi_broadcast_floats(float *x, size_t n, char *err, size_t cap);
/* x (n doubles) becomes the elementwise sum over the ranks, on every rank. */
int nnb_mpi_sum_doubles(double *x, size_t n, char *err, size_t cap);
/* Starts the elementwise sum of x (n floats) in place (MPI_Iallreduce); at most 256 pending. */
int nnb_mpi_start_sum_floats(float *x, size_t n, char *err, size_t cap);
/* Lets pending sums progress (MPI_Testall); never blocks. */
void nnb_mpi_progress(void);
/* Waits for every pending sum. */
int nnb_mpi_finish_sums(char *err, size_t cap);
/* Ends every process of the job with `code` (MPI_Abort on the world). */
void nnb_mpi_abort(int code);
/* MPI_Finalize, when nnb_mpi_init initialized MPI and it is not finalized yet. */
void nnb_mpi_finalize(void);

#endif
