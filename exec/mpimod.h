/* mpimod.h — the interface of the MPI module liborchsim_mpi.so: the few MPI calls orchsim
 * makes, behind one table, so that the orchsim binary links no MPI library and loads it only
 * when started by mpirun (exec/worker.h for validate; cli/cmd_sweep.c spreads a sweep's grid
 * points over the ranks with gather/gatherv/bcast).
 * Implements: the table (ABI EXEC_MPI_ABI) and exec_mpi_api, which loads the module with the
 *   same loader as the GPU module (exec/module.h: the binary's folder, <bin>/../lib/orchsim,
 *   the build tree, or $ORCHSIM_MPI_MODULE); the module's library is libmpi.so.40 (Open MPI).
 * Does not: decide ranks or report anything (worker.c). Errors: MPI's own text (MPI_CHECK,
 *   STYLE.md habit 3) as OS_ERR_MPI, recorded in the module (its os_fail binds to the
 *   binary's: module.h). */
#ifndef OS_EXEC_MPIMOD_H
#define OS_EXEC_MPIMOD_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define EXEC_MPI_ABI 2 /* 2: gatherv */
#define EXEC_MPI_ENTRY "orchsim_mpi_module"
#define EXEC_MPI_FILE "liborchsim_mpi.so"
#define EXEC_MPI_LIB_HINT "install Open MPI (apt-get install libopenmpi3 openmpi-bin), or run without mpirun"

typedef struct {
    uint32_t abi, size; /* ExecModuleHead */
    const char *build;  /* "Open MPI 4.1.4" (the headers it was built with) */
    const char *(*last_error)(void);
    OsStatus (*init)(int *rank, int *size);           /* MPI_Init + rank/size of MPI_COMM_WORLD */
    OsStatus (*bcast)(void *buf, size_t n, int root); /* bytes */
    /* rank root gets size x n bytes in recv (ignored elsewhere) */
    OsStatus (*gather)(const void *send, size_t n, void *recv, int root);
    OsStatus (*barrier)(void);
    void (*abort)(int code);                          /* MPI_Abort(MPI_COMM_WORLD) */
    OsStatus (*finalize)(void);
    /* variable sizes: every rank sends n bytes; root gets them concatenated in rank order in
     * recv, counts[size] = each rank's n (root's recv and counts only; NULL elsewhere). At most
     * 2^31 - 1 bytes in all (MPI's int counts): more stops the job (MPI_Abort, with one line on
     * stderr), since the other ranks would wait for it forever. */
    OsStatus (*gatherv)(const void *send, size_t n, void *recv, const size_t *counts, int root);
} ExecMpiApi;

/* The loaded MPI module's table (loaded on the first call; cached). */
OsStatus exec_mpi_api(const ExecMpiApi **out);

#endif
