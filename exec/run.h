/* run.h — the run loop of `orchsim validate`: the worker body that runs trace steps on GPUs
 * and the parent that hands every step's per-rank reports to the caller.
 * Implements: a device probe in a throw-away child process (the CUDA driver must not be
 *   initialised in a process that forks workers afterwards: a forked child cannot use a
 *   CUDA context inherited from its parent); the GPU body: set the device, the NCCL id from
 *   worker 0 (worker.h's broadcast, or MPI_Bcast under mpirun), exec_mllm_create_nccl (one
 *   rank per process) or exec_mllm_create_local (--emulate: all ranks in one process, one
 *   after another on GPU 0; and one rank, which never loads NCCL), W untimed warm-up runs of the first step, then per step the
 *   same plan every worker builds (exec/stepsrc.h), exec_mllm_step + the gradient sync, and
 *   one report per rank (exec/validate.h's v[] layout: CUDA-event seconds); on any
 *   CUDA/cuBLAS/NCCL failure the executor aborts its communicator (mllm.h) and the body
 *   returns the error, which worker.h sends up and the parent turns into one line naming
 *   the rank; inside a worker the executor waits at most the step timeout for its stream,
 *   polling NCCL's asynchronous error (mllm.h), so a dead peer fails the rank with NCCL's
 *   reason before the watchdog. The parent: fork the workers, wait for "ready" (setup +
 *   warm-up, bounded by --setup-timeout), then per step collect (bounded by --timeout, 60 s
 *   by default: a whole GPU check has minutes, not hours), order the reports by
 *   rank, check them, and call on_step; under mpirun the same body runs as this process's
 *   rank and MPI rank 0 calls on_step.
 * Does not: predict, print or write anything (cli/cmd_validate.c, exec/valreport.h).
 * Letters: D ranks, W warm-up runs. Seconds. */
#ifndef OS_EXEC_RUN_H
#define OS_EXEC_RUN_H

#include <stdint.h>

#include "exec/gpu.h"
#include "exec/worker.h"
#include "sim/cost.h"
#include "sim/model.h"
#include "sim/policy.h"

#define EXEC_RUN_READY UINT64_MAX /* ExecReport.step of the one report a worker sends when set up */

typedef struct {
    const char *trace;        /* borrowed path */
    const ModelSpec *model;   /* borrowed */
    const Policy *policy;     /* borrowed */
    PolicyOptions popt;
    const Calib *calib;       /* borrowed: the balancers' unit costs */
    uint32_t D;               /* data-parallel ranks */
    uint32_t dp_per_node;     /* ranks per node (plan.h's node-wise routes) */
    uint64_t steps;           /* trace steps 0 .. steps-1 */
    uint32_t warmup;          /* untimed runs of step 0 first */
    double timeout_s;         /* per step (the watchdog) */
    double setup_timeout_s;   /* setup + warm-up (0: timeout_s x (1 + warmup)) */
    int emulate;              /* one worker, all D ranks local on GPU 0 */
    int n_dev;                /* CUDA devices this process sees (from the probe) */
    uint64_t seed;            /* weights; the data of step k is seeded from seed and k */
} ExecRunConfig;

/* Called per step with rep[D] ordered by rank (rep[r].rank == r). A non-OK return stops the
 * run (the workers are killed). */
typedef OsStatus ExecRunStepFn(uint64_t step, const ExecReport *rep, uint32_t D, void *user);

/* Devices, asked in a child process (in_process: ask here, for mpirun ranks, which fork
 * nothing). n_dev = 0 with why filled when there is none; OK either way unless the probe
 * itself could not run. */
typedef struct {
    int n_dev;
    int module_error;    /* 1: the GPU module (or a library it needs) could not be loaded */
    char why[512];
    ExecDeviceInfo info; /* of device 0 when n_dev > 0 */
} ExecRunProbe;
OsStatus exec_run_probe(ExecRunProbe *out, int in_process, double timeout_s);

/* The GPU body (user: const ExecRunConfig *). */
OsStatus exec_run_body(ExecWorker *w, void *user);

/* Fork D workers (emulate: 1) running body (exec_run_body, or a test's fake) with user = c,
 * and drive them as above. Errors: the workers' (named by rank), OS_ERR_TIMEOUT, on_step's,
 * OS_ERR_INTERNAL for reports out of turn. */
OsStatus exec_run(const ExecRunConfig *c, ExecWorkerFn *body, ExecRunStepFn *on_step, void *user);

/* Under mpirun: this process is MPI rank `rank` of D (exec_under_mpi); runs exec_run_body
 * between MPI_Init and MPI_Finalize; on_step is called on rank 0 only. */
OsStatus exec_run_mpi(const ExecRunConfig *c, ExecRunStepFn *on_step, void *user);

#endif
