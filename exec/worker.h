/* worker.h — one process per GPU rank: start them, hear from them, stop them when they hang.
 * Implements: fork N workers that each run a body function (ExecWorkerFn) with a handle; a
 *   one-blob broadcast from worker 0 to the others (the NCCL unique id) relayed by the parent
 *   through pipes, or MPI_Bcast when started by mpirun (OMPI_COMM_WORLD_SIZE set; MPI comes
 *   from the MPI module, exec/mpimod.h, loaded on demand); fixed-size per-step reports (per-phase seconds) sent up a pipe; a per-collect
 *   watchdog: when any worker overruns, every worker is killed (SIGKILL) and the call returns
 *   OS_ERR_TIMEOUT naming the ranks still silent; a failing worker sends its error text and
 *   exits non-zero, the parent kills the rest and returns that status naming the rank.
 * Does not: touch CUDA or NCCL: the body does, and on failure it must ncclCommAbort before
 *   returning so that no peer blocks in a collective (the watchdog is the last resort).
 * Why fork + pipes and not threads: a hung CUDA/NCCL call cannot be cancelled in-process;
 *   a process can always be killed and its GPU context is torn down by the driver.
 * Letters: W workers (processes). Times: seconds. */
#ifndef OS_EXEC_WORKER_H
#define OS_EXEC_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "base/status.h"

#define EXEC_REPORT_VALUES 96 /* room for 3 x (MODEL_MAX_ENC + 1) phases + sync + step + loss, or the probe's 512-byte reason */
#define EXEC_BLOB_MAX 256     /* NCCL_UNIQUE_ID_BYTES is 128 */

/* One report: what worker `worker` measured for DP rank `rank` in step `step`. The meaning of
 * v[] is the body's (validate: exec/run.h); n values used. */
typedef struct {
    uint32_t worker, rank, n, pad_;
    uint64_t step;
    double v[EXEC_REPORT_VALUES];
} ExecReport;

/* The child's handle (borrowed by the body; valid during the body's call only). */
typedef struct ExecWorker ExecWorker;
uint32_t exec_worker_index(const ExecWorker *w);
uint32_t exec_worker_count(const ExecWorker *w);
/* Worker 0 passes blob[0..n) in, every worker gets it back (blocking until it arrives).
 * n <= EXEC_BLOB_MAX and the same on every worker. */
OsStatus exec_worker_bcast(ExecWorker *w, void *blob, size_t n);
/* Send one report to the parent (worker field filled in here). */
OsStatus exec_worker_report(ExecWorker *w, const ExecReport *r);

/* The body run in each worker. A non-OK return sends os_last_error() to the parent and the
 * worker exits 1; OK exits 0. */
typedef OsStatus ExecWorkerFn(ExecWorker *w, void *user);

typedef struct ExecPool ExecPool;
/* Fork W workers running fn(w, user) (user is copied by fork: read-only inputs only). */
OsStatus exec_pool_start(ExecPool **out, uint32_t W, ExecWorkerFn *fn, void *user);
/* Wait for per_worker reports from every worker into out[w * per_worker + i] (in the order
 * each worker sent them), at most timeout_s seconds. Relays the broadcast blob as it comes.
 * Errors: OS_ERR_TIMEOUT (all workers killed; names the silent ranks), a worker's failure
 * (its status class and text, naming the rank; the others are killed), a worker that died
 * (signal or exit status). After an error the pool is dead: only destroy it. */
OsStatus exec_pool_collect(ExecPool *p, ExecReport *out, uint32_t per_worker, double timeout_s);
/* Wait (at most timeout_s) for every worker to exit; OK only when all exited 0. */
OsStatus exec_pool_finish(ExecPool *p, double timeout_s);
/* Kill (SIGKILL) whatever still runs, reap, free. NULL-safe. */
void exec_pool_destroy(ExecPool *p);

/* Started by mpirun? (OMPI_COMM_WORLD_SIZE or PMI_SIZE set): then rank and size from the
 * environment, and the body runs in this process (exec_worker_mpi). */
int exec_under_mpi(uint32_t *rank, uint32_t *size);
/* Run fn as MPI rank `rank` of `size` (MPI_Init/Finalize around it); reports are gathered to
 * MPI rank 0 and handed to sink there. OS_ERR_NODEV (naming the file) when the MPI module
 * cannot be loaded. */
typedef OsStatus ExecReportSink(const ExecReport *r, void *user);
OsStatus exec_worker_mpi(ExecWorkerFn *fn, void *user, ExecReportSink *sink, void *sink_user);

#endif
