/* module.h — load an optional backend module (a shared object) on demand, so that the orchsim
 * binary itself needs no CUDA, cuBLAS, NCCL or MPI library at load time (DESIGN.md §6).
 * Implements: one generic loader for every module (the GPU module liborchsim_gpu.so, the MPI
 *   module liborchsim_mpi.so): where to look (an environment variable naming the file, the
 *   binary's own folder, <bin>/../lib/orchsim, the build tree compiled in), dlopen
 *   (RTLD_NOW | RTLD_LOCAL), the entry symbol, the ABI number and the table's size; the result
 *   is cached per spec, so a failure is found once and every later caller gets the same error.
 *   Every failure is one recorded error naming the file, what failed (dlerror's own words,
 *   e.g. "libcublas.so.13: cannot open shared object file") and the spec's hint on how to
 *   point the loader at the libraries (the pip wheels under site-packages/nvidia/...).
 * Does not: call anything in the module besides its entry (the callers' tables do: gpumod.h,
 *   mpimod.h), or unload it (modules stay until exit: CUDA and NCCL keep threads).
 * A second module = one ExecModuleSpec + its table header; nothing here changes.
 * Symbols: the module links its own copy of base/ etc.; the orchsim binary exports its
 *   symbols (ENABLE_EXPORTS), so the module's os_fail binds to the binary's and its errors
 *   land in the one error record main prints. Tables still carry last_error for a host that
 *   does not export (gpumod.h). */
#ifndef OS_EXEC_MODULE_H
#define OS_EXEC_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

typedef struct {
    const char *what;       /* "GPU module": names it in errors */
    const char *file;       /* "liborchsim_gpu.so" */
    const char *env;        /* "ORCHSIM_GPU_MODULE": a path that replaces the search, or NULL */
    const char *entry;      /* exported: const void *entry(uint32_t abi) returns the table or NULL */
    uint32_t abi;           /* the table's version this binary speaks */
    uint32_t min_size;      /* bytes the table must have at least */
    const char *build_dir;  /* folder compiled in (the build tree), or NULL */
    const char *lib_hint;   /* how to make the module's own libraries findable */
    const char *absent;     /* why the file is absent when this build makes none, or NULL */
} ExecModuleSpec;

/* Every table starts with these two fields. */
typedef struct {
    uint32_t abi, size;
} ExecModuleHead;

typedef struct {
    int tried;              /* 0: not yet */
    OsStatus st;            /* the first attempt's result */
    void *handle;
    const void *api;        /* the module's table (borrowed, lives until exit) */
    char path[4096];        /* the file loaded, or the last one tried */
    char err[1024];         /* the error line when st != OS_OK */
    const char *hint;       /* its hint */
} ExecModule;

/* Load spec's module into m (cached in m: call with the same m every time). On failure the
 * error is recorded (os_fail) and returned, also on later calls. */
OsStatus exec_module_load(ExecModule *m, const ExecModuleSpec *spec);

/* The folder of the running binary (/proc/self/exe), without the trailing '/'; "" when unknown. */
void exec_module_self_dir(char *out, size_t cap);

/* The hint for a dlopen error: `dlerr` names a missing library -> spec->lib_hint, a broken
 * file -> "rebuild". Exposed for tests. */
const char *exec_module_hint(const ExecModuleSpec *spec, const char *dlerr);

#endif
