/* mpimod.c — the MPI module (exec/mpimod.h): built into liborchsim_mpi.so, the only object of
 * orchsim that links libmpi. Everything but the entry is static. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "exec/mpimod.h"

/* STYLE.md habit 3: MPI_CHECK names the call and MPI's own message. */
#define MPI_CHECK(call)                                                                    \
    do {                                                                                   \
        int m_ = (call);                                                                   \
        if (m_ != MPI_SUCCESS) {                                                           \
            char s_[MPI_MAX_ERROR_STRING];                                                 \
            int l_ = 0;                                                                    \
            MPI_Error_string(m_, s_, &l_);                                                 \
            st = os_fail(OS_ERR_MPI, "mpi", #call, "check the mpirun command line",        \
                         "%s (%s:%d)", s_, __FILE__, __LINE__);                            \
            goto fail;                                                                     \
        }                                                                                  \
    } while (0)

static OsStatus mod_init(int *rank, int *size) {
    OsStatus st = OS_OK;
    int inited = 0;
    MPI_CHECK(MPI_Initialized(&inited));
    if (!inited) MPI_CHECK(MPI_Init(NULL, NULL));
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, size));
fail:
    return st;
}

static OsStatus mod_bcast(void *buf, size_t n, int root) {
    OsStatus st = OS_OK;
    if (n > (size_t)0x7fffffff) OS_FAIL(OS_ERR_ARG, "mpi", "bcast", NULL, "%zu bytes", n);
    MPI_CHECK(MPI_Bcast(buf, (int)n, MPI_BYTE, root, MPI_COMM_WORLD));
fail:
    return st;
}

static OsStatus mod_gather(const void *send, size_t n, void *recv, int root) {
    OsStatus st = OS_OK;
    if (n > (size_t)0x7fffffff) OS_FAIL(OS_ERR_ARG, "mpi", "gather", NULL, "%zu bytes", n);
    MPI_CHECK(MPI_Gather(send, (int)n, MPI_BYTE, recv, (int)n, MPI_BYTE, root, MPI_COMM_WORLD));
fail:
    return st;
}

static OsStatus mod_gatherv(const void *send, size_t n, void *recv, const size_t *counts, int root) {
    OsStatus st = OS_OK;
    int rank = 0, size = 0, *rc = NULL, *displs = NULL;
    if (n > (size_t)0x7fffffff) { /* root would wait for this rank forever */
        fprintf(stderr, "orchsim: error: mpi: gatherv: %zu bytes from one rank (hint: split the sweep)\n", n);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
    if (rank == root) {
        rc = malloc((size_t)size * sizeof *rc);
        displs = malloc((size_t)size * sizeof *displs);
        size_t total = 0;
        for (int r = 0; rc && displs && r < size; r++) {
            rc[r] = (int)counts[r];
            displs[r] = (int)total;
            total += counts[r];
        }
        if (!rc || !displs || total > (size_t)0x7fffffff) {
            /* the other ranks are already sending: they cannot be told, so stop the job */
            fprintf(stderr, "orchsim: error: mpi: gatherv: %s (hint: split the sweep)\n",
                    !rc || !displs ? "out of memory" : "more than 2^31 - 1 bytes gathered");
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
    }
    MPI_CHECK(MPI_Gatherv(send, (int)n, MPI_BYTE, recv, rc, displs, MPI_BYTE, root, MPI_COMM_WORLD));
fail:
    free(rc);
    free(displs);
    return st;
}

static OsStatus mod_barrier(void) {
    OsStatus st = OS_OK;
    MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
fail:
    return st;
}

static void mod_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static OsStatus mod_finalize(void) {
    OsStatus st = OS_OK;
    int fin = 0;
    MPI_CHECK(MPI_Finalized(&fin));
    if (!fin) MPI_CHECK(MPI_Finalize());
fail:
    return st;
}

#define STR2(x) #x
#define STR(x) STR2(x)
#ifdef OMPI_MAJOR_VERSION
#define MPI_BUILD "Open MPI " STR(OMPI_MAJOR_VERSION) "." STR(OMPI_MINOR_VERSION) "." STR(OMPI_RELEASE_VERSION)
#else
#define MPI_BUILD "MPI " STR(MPI_VERSION) "." STR(MPI_SUBVERSION)
#endif

static const ExecMpiApi API = {
    EXEC_MPI_ABI, (uint32_t)sizeof(ExecMpiApi), MPI_BUILD, os_last_error, mod_init, mod_bcast, mod_gather,
    mod_barrier, mod_abort, mod_finalize, mod_gatherv,
};

__attribute__((visibility("default"))) const void *orchsim_mpi_module(uint32_t abi) {
    (void)abi; /* the loader compares the table's own abi and names a mismatch */
    return &API;
}
