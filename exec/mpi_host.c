/* mpi_host.c — the orchsim binary's side of the MPI module (mpimod.h): the same loader as the
 * GPU module's (module.h), a second spec. */
#include "exec/module.h"
#include "exec/mpimod.h"

#ifndef ORCHSIM_MPI_MODULE_DIR
#define ORCHSIM_MPI_MODULE_DIR ""
#endif

static ExecModule g_mpi;

static const ExecModuleSpec SPEC = {
    "MPI module", EXEC_MPI_FILE, "ORCHSIM_MPI_MODULE", EXEC_MPI_ENTRY, EXEC_MPI_ABI, (uint32_t)sizeof(ExecMpiApi),
    ORCHSIM_MPI_MODULE_DIR, EXEC_MPI_LIB_HINT,
#ifdef ORCHSIM_HAVE_MPI
    NULL,
#else
    "this build has no MPI module (configured without MPI, or -DORCHSIM_MPI=OFF): rebuild with MPI",
#endif
};

OsStatus exec_mpi_api(const ExecMpiApi **out) {
    OsStatus st = exec_module_load(&g_mpi, &SPEC);
    *out = st == OS_OK ? (const ExecMpiApi *)g_mpi.api : NULL;
    return st;
}
