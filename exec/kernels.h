/* kernels.h — the plain-C view of the GPU kernels' self-tests (STYLE.md habit 6).
 * Implements: a registry of self-tests, one per kernel (and the cuBLAS attention), each
 *   running its kernel on small shapes against its CPU reference.
 * Does not: decide pass/fail: callers (exec/selftest.h, tests/test_exec_gpu.c) take
 *   worst <= 1 as a pass.
 * The registry lives in the GPU module (exec/gpumod.cu); without it the count is 0. */
#ifndef OS_EXEC_KERNELS_H
#define OS_EXEC_KERNELS_H

#include "base/status.h"

/* *worst = max over outputs of |gpu - ref| / (atol + rtol |ref|) with bf16 tolerances chosen
 * per kernel; a device error returns its status. */
typedef OsStatus ExecSelftestFn(double *worst);

typedef struct {
    const char *name;
    ExecSelftestFn *fn;
} ExecSelftest;

int exec_selftest_count(void);
const ExecSelftest *exec_selftest_at(int i);

#endif
