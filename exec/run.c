/* run.c — see run.h. The body is plain C over mllm.h (whose no-CUDA twin answers
 * OS_ERR_NODEV), so this file builds with or without CUDA; the parent side is tested with
 * fake bodies (tests/test_exec_run.c). */
#include "exec/run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/mllm.h"
#include "exec/params.h"
#include "exec/stepsrc.h"
#include "exec/validate.h"
#include "base/util.h"

/* ---- the device probe -------------------------------------------------------------------- */

/* v[0] = devices, v[1] = 1 when info follows (else the reason's text follows), v[2] = 1 for a
 * module error, v[3..]: bytes */
#define PROBE_BYTES ((EXEC_REPORT_VALUES - 3) * sizeof(double))
_Static_assert(sizeof(ExecDeviceInfo) <= PROBE_BYTES, "device info must fit one report");

static void probe_here(ExecRunProbe *out) {
    memset(out, 0, sizeof *out);
    if (exec_gpu_count(&out->n_dev, out->why, sizeof out->why) != OS_OK || out->n_dev <= 0) {
        out->n_dev = 0;
        out->module_error = exec_gpu_module_error();
        if (!out->why[0]) snprintf(out->why, sizeof out->why, "no device visible");
    } else if (exec_gpu_info(&out->info, 0) != OS_OK) {
        out->n_dev = 0;
        snprintf(out->why, sizeof out->why, "%s", os_last_error());
    }
    os_clear_error(); /* the caller words the message */
}

static OsStatus probe_body(ExecWorker *w, void *user) {
    OsStatus st = OS_OK;
    ExecRunProbe pr;
    ExecReport r;
    (void)user;
    probe_here(&pr);
    memset(&r, 0, sizeof r);
    r.n = EXEC_REPORT_VALUES;
    r.v[0] = pr.n_dev;
    r.v[1] = pr.n_dev > 0;
    r.v[2] = pr.module_error;
    if (pr.n_dev > 0) memcpy(&r.v[3], &pr.info, sizeof pr.info);
    else memcpy(&r.v[3], pr.why, OS_MIN(sizeof pr.why, PROBE_BYTES));
    OS_CHECK(exec_worker_report(w, &r));
fail:
    return st;
}

OsStatus exec_run_probe(ExecRunProbe *out, int in_process, double timeout_s) {
    OsStatus st = OS_OK;
    ExecPool *p = NULL;
    ExecReport r;
    memset(out, 0, sizeof *out);
    if (in_process) {
        probe_here(out);
        return OS_OK;
    }
    OS_CHECK(exec_pool_start(&p, 1, probe_body, NULL));
    OS_CHECK(exec_pool_collect(p, &r, 1, timeout_s));
    OS_CHECK(exec_pool_finish(p, timeout_s));
    out->n_dev = (int)r.v[0];
    out->module_error = r.v[2] != 0;
    if (r.v[1] != 0) memcpy(&out->info, &r.v[3], sizeof out->info);
    else memcpy(out->why, &r.v[3], OS_MIN(sizeof out->why, PROBE_BYTES));
    out->why[sizeof out->why - 1] = '\0';
    out->info.name[sizeof out->info.name - 1] = '\0';
fail:
    exec_pool_destroy(p);
    return st;
}

/* ---- the worker body --------------------------------------------------------------------- */

/* Which GPU this worker uses: its rank on the node (mpirun's local rank), else its index. */
static int device_of(uint32_t me, int n_dev) {
    static const char *const LOCAL[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    long d = me;
    for (size_t i = 0; i < OS_ARRAY_LEN(LOCAL); i++) {
        const char *s = getenv(LOCAL[i]);
        if (s && *s) {
            d = strtol(s, NULL, 10);
            break;
        }
    }
    return n_dev > 0 ? (int)(d % n_dev) : (int)d;
}

/* Step k's input data: the same on every rank, different per step. */
static uint64_t data_seed(const ExecRunConfig *c, uint64_t k) { return exec_hash3(c->seed, 0x5eed, k); }

static OsStatus run_step(ExecMllm *x, ExecStepSource *src, const ExecRunConfig *c, uint64_t k, ExecRankTimes *t,
                         double *sync) {
    OsStatus st = OS_OK;
    ExecStep s;
    OS_CHECK(exec_src_step(src, k, &s));
    OS_CHECK(exec_mllm_step(x, s.xp, s.ex_id, data_seed(c, k), (double)s.labels, t));
    OS_CHECK(exec_mllm_grad_sync(x, 0, sync));
fail:
    return st;
}

OsStatus exec_run_body(ExecWorker *w, void *user) {
    OsStatus st = OS_OK;
    const ExecRunConfig *c = user;
    const uint32_t me = exec_worker_index(w), nl = c->emulate ? c->D : 1, P = c->model->n_enc + 1;
    ExecStepSource *src = NULL;
    ExecMllm *x = NULL;
    ExecRankTimes *t = NULL;
    unsigned char blob[EXEC_BLOB_MAX];
    double sync = 0;
    ALLOC_CHECK(t = calloc(nl, sizeof *t));
    if (P > EXEC_VAL_MAX_PHASES) OS_FAIL(OS_ERR_ARG, c->model->name, "encoders", NULL, "%u phases", P);
    OS_CHECK(exec_src_create(&src, c->trace, c->model, c->policy, &c->popt, c->calib, c->D, c->dp_per_node));
    if (c->emulate) {
        OS_CHECK(exec_mllm_create_local(&x, c->model, c->seed, c->D, 0));
    } else if (c->D == 1) {
        /* one rank: nothing to exchange, so no NCCL (never started, never loaded) */
        OS_CHECK(exec_mllm_create_local(&x, c->model, c->seed, 1, device_of(me, c->n_dev)));
    } else {
        /* worker 0 makes the NCCL id; [0, 8) carries its length so every worker sends and
         * receives the same number of bytes (worker.h) without knowing NCCL's id size */
        uint64_t len = 0;
        memset(blob, 0, sizeof blob);
        if (me == 0) {
            size_t l = 0;
            OS_CHECK(exec_nccl_id(blob + 8, sizeof blob - 8, &l));
            len = l;
            memcpy(blob, &len, sizeof len);
        }
        OS_CHECK(exec_worker_bcast(w, blob, sizeof blob));
        memcpy(&len, blob, sizeof len);
        if (len == 0 || len > sizeof blob - 8)
            OS_FAIL(OS_ERR_INTERNAL, "validate", "nccl id", NULL, "rank %u got an id of %llu bytes", me,
                    (unsigned long long)len);
        OS_CHECK(exec_mllm_create_nccl(&x, c->model, c->seed, c->D, me, device_of(me, c->n_dev), blob + 8, len));
    }
    /* the executor gives up on a stream a little before the parent's watchdog would fire, so the
     * rank's own reason (NCCL's asynchronous error, or which wait) reaches the parent */
    exec_mllm_set_wait(x, c->timeout_s > 2 ? c->timeout_s * 0.9 : c->timeout_s);
    /* warm-up: cuBLAS heuristics, lazy kernel loading and NCCL connections are paid here */
    for (uint32_t i = 0; i < c->warmup && c->steps; i++) OS_CHECK(run_step(x, src, c, 0, t, &sync));
    OS_CHECK(exec_mllm_zero_grads(x));
    {
        ExecReport ready;
        memset(&ready, 0, sizeof ready);
        ready.rank = me, ready.step = EXEC_RUN_READY;
        OS_CHECK(exec_worker_report(w, &ready));
    }
    for (uint64_t k = 0; k < c->steps; k++) {
        OS_CHECK(run_step(x, src, c, k, t, &sync));
        for (uint32_t j = 0; j < nl; j++) {
            ExecReport r;
            memset(&r, 0, sizeof r);
            r.rank = c->emulate ? j : me, r.step = k, r.n = EXEC_V_COUNT;
            for (uint32_t p = 0; p < P; p++) {
                r.v[EXEC_V_FWD + p] = t[j].fwd[p];
                r.v[EXEC_V_BWD + p] = t[j].bwd[p];
                r.v[EXEC_V_A2A + p] = t[j].a2a[p];
            }
            r.v[EXEC_V_SYNC] = sync;
            r.v[EXEC_V_STEP] = t[j].step + sync; /* the sync follows the step on the same stream */
            r.v[EXEC_V_LOSS] = t[j].loss;
            OS_CHECK(exec_worker_report(w, &r));
        }
    }
fail:
    /* any failure, the executor's own or the host's (a step that would not prepare): abort
     * the communicator, so neither this rank nor a peer blocks (mllm.h) */
    if (st != OS_OK) exec_mllm_mark_failed(x);
    exec_mllm_destroy(x);
    exec_src_destroy(src);
    free(t);
    return st;
}

/* ---- the parent -------------------------------------------------------------------------- */

/* in[D] in any order -> out[D] by rank; every rank exactly once, all of step `step`. */
static OsStatus order_reports(ExecReport *out, const ExecReport *in, uint32_t D, uint64_t step, unsigned char *seen) {
    OsStatus st = OS_OK;
    memset(seen, 0, D);
    for (uint32_t i = 0; i < D; i++) {
        uint32_t r = in[i].rank;
        if (r >= D || seen[r] || in[i].step != step)
            OS_FAIL(OS_ERR_INTERNAL, "validate", "report", "a worker sent a report out of turn",
                    "worker %u sent rank %u, step %llu (want each of %u ranks once, step %llu)", in[i].worker, r,
                    (unsigned long long)in[i].step, D, (unsigned long long)step);
        seen[r] = 1;
        out[r] = in[i];
    }
fail:
    return st;
}

OsStatus exec_run(const ExecRunConfig *c, ExecWorkerFn *body, ExecRunStepFn *on_step, void *user) {
    OsStatus st = OS_OK;
    const uint32_t D = c->D, W = c->emulate ? 1 : D, per = c->emulate ? D : 1;
    ExecPool *p = NULL;
    ExecReport *buf = NULL, *byrank = NULL;
    unsigned char *seen = NULL;
    if (D == 0) OS_FAIL(OS_ERR_ARG, "validate", "--gpus", NULL, "no ranks");
    ALLOC_CHECK(buf = calloc(D, sizeof *buf));
    ALLOC_CHECK(byrank = calloc(D, sizeof *byrank));
    ALLOC_CHECK(seen = calloc(D, 1));
    OS_CHECK(exec_pool_start(&p, W, body, (void *)c));
    OS_CHECK(exec_pool_collect(p, buf, 1, c->setup_timeout_s > 0 ? c->setup_timeout_s : c->timeout_s * (1.0 + c->warmup)));
    for (uint32_t k = 0; k < W; k++)
        if (buf[k].step != EXEC_RUN_READY)
            OS_FAIL(OS_ERR_INTERNAL, "validate", "report", NULL, "worker %u reported step %llu before it was ready", k,
                    (unsigned long long)buf[k].step);
    for (uint64_t k = 0; k < c->steps; k++) {
        OS_CHECK(exec_pool_collect(p, buf, per, c->timeout_s));
        OS_CHECK(order_reports(byrank, buf, D, k, seen));
        OS_CHECK(on_step(k, byrank, D, user));
    }
    OS_CHECK(exec_pool_finish(p, c->timeout_s));
fail:
    exec_pool_destroy(p);
    free(buf);
    free(byrank);
    free(seen);
    return st;
}

/* ---- mpirun ------------------------------------------------------------------------------ */

typedef struct {
    const ExecRunConfig *c;
    ExecRunStepFn *on_step;
    void *user;
    ExecReport *in, *byrank;
    unsigned char *seen;
    uint32_t got;
    uint64_t next;
} MpiSink;

/* Rank 0: reports arrive D at a time (one MPI_Gather per report call). */
static OsStatus mpi_sink(const ExecReport *r, void *user) {
    OsStatus st = OS_OK;
    MpiSink *s = user;
    if (r->step == EXEC_RUN_READY) return OS_OK;
    s->in[s->got++] = *r;
    if (s->got < s->c->D) return OS_OK;
    s->got = 0;
    OS_CHECK(order_reports(s->byrank, s->in, s->c->D, s->next, s->seen));
    OS_CHECK(s->on_step(s->next, s->byrank, s->c->D, s->user));
    s->next++;
fail:
    return st;
}

OsStatus exec_run_mpi(const ExecRunConfig *c, ExecRunStepFn *on_step, void *user) {
    OsStatus st = OS_OK;
    MpiSink s = {c, on_step, user, NULL, NULL, NULL, 0, 0};
    if (c->emulate)
        OS_FAIL(OS_ERR_ARG, "validate", "--emulate", "run --emulate without mpirun", "under mpirun every rank has its GPU");
    ALLOC_CHECK(s.in = calloc(c->D, sizeof *s.in));
    ALLOC_CHECK(s.byrank = calloc(c->D, sizeof *s.byrank));
    ALLOC_CHECK(s.seen = calloc(c->D, 1));
    OS_CHECK(exec_worker_mpi(exec_run_body, (void *)c, mpi_sink, &s));
fail:
    free(s.in);
    free(s.byrank);
    free(s.seen);
    return st;
}
