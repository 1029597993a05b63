/*
 * The MPI calls NNBackpropMPI makes, behind plain C types, so Swift never imports mpi.h (whose
 * handles are macros over Open MPI's globals). Built with MPI where Package.swift finds it
 * (NNB_HAVE_MPI); elsewhere every call fails with "built without MPI". Errors return non-zero
 * with a message in err (cap bytes); nothing here prints or exits.
 */
#ifndef CMPI_H
#define CMPI_H

#include <stddef.h>
#include <stdint.h>

/* 1 when built with MPI. */
int cmpi_built(void);
/* The MPI library's version line (empty without MPI). */
void cmpi_library_version(char *out, size_t cap);
/* Initializes MPI if the program has not (MPI_Init_thread, MPI_THREAD_FUNNELED; then finalized
 * at exit, by atexit, unless cmpi_finalize ran first), then uses a
 * duplicate of comm (an MPI_Comm passed by address; NULL: MPI_COMM_WORLD) with errors returned,
 * not fatal. Sets rank and size. Again after success: the same communicator. */
int cmpi_init(const void *comm, int *rank, int *size, char *err, size_t cap);
/* x (n floats) on every rank becomes root 0's. */
int cmpi_broadcast_floats(float *x, size_t n, char *err, size_t cap);
/* x (n doubles) becomes the elementwise sum over the ranks, on every rank. */
int cmpi_sum_doubles(double *x, size_t n, char *err, size_t cap);
/* Starts the elementwise sum of x (n floats) in place (MPI_Iallreduce); at most 256 pending. */
int cmpi_start_sum_floats(float *x, size_t n, char *err, size_t cap);
/* Lets pending sums progress (MPI_Testall); never blocks. */
void cmpi_progress(void);
/* Waits for every pending sum. */
int cmpi_finish_sums(char *err, size_t cap);
/* Ends every process of the job with `code` (MPI_Abort on the world). */
void cmpi_abort(int code);
/* MPI_Finalize, when cmpi_init initialized MPI and it is not finalized yet. */
void cmpi_finalize(void);

#endif
