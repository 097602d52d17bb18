/* sweep_pool.c — sweep_run (sweep.h): the grid's points spread over worker processes or MPI
 * ranks, their results put back in grid order, the run-level CSV and the HDF5 copy.
 * Why processes and not threads: the HDF5 library as packaged (serial) is not thread-safe and
 * each replay reads the trace, so every worker is a child process with its own HDF5 state.
 * A child runs one point, writes its row and series to "<scratch>/point-<i>" and _exit()s; the
 * parent waits for it, then reads the file back. Under MPI (SweepComm) rank r runs points
 * r, r + K, r + 2K, ... in its own process, one after another (an MPI process should not fork),
 * encodes each result in the same format into memory, and rank 0 gathers every rank's buffer.
 * The encoding is raw structs: every rank runs the same binary on the same architecture. */
#include "analysis/sweep.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analysis/sweep_h5.h"
#include "base/util.h"
#include "traces/trace.h"

#define POINT_MAGIC 0x31505753u /* "SWP1": one point's result */
#define RANK_MAGIC 0x31525753u  /* "SWR1": one rank's results */
#define SER_TOKENS (1u << 16)   /* mask bits of the optional series arrays */
#define SER_IDLE (1u << 17)

void sweep_report_free(SweepReport *r) {
    if (!r) return;
    free(r->failures);
    memset(r, 0, sizeof *r);
}

/* ---------------------------------------------------------------- one result, encoded */

static int write_all(FILE *fp, const void *p, size_t n) { return !n || fwrite(p, 1, n, fp) == n; }
static int read_all(FILE *fp, void *p, size_t n) { return !n || fread(p, 1, n, fp) == n; }

/* "<magic><status i32>" then the row and series, or the error line. Returns 1 when written. */
static int point_put(FILE *fp, OsStatus st, const RunRow *row, const RunSeries *ser) {
    int32_t s32 = (int32_t)st;
    int ok = write_all(fp, &(uint32_t){POINT_MAGIC}, 4) && write_all(fp, &s32, 4);
    if (st == OS_OK) {
        uint32_t mask = (ser->tokens_per_s ? SER_TOKENS : 0u) | (ser->idle_frac ? SER_IDLE : 0u);
        for (int k = 0; k < SCHEMA_N_PHASES; k++) mask |= ser->imbalance[k] ? 1u << k : 0u;
        size_t b = (size_t)ser->n * 8;
        ok = ok && write_all(fp, row, sizeof *row) && write_all(fp, &ser->n, 8) && write_all(fp, &mask, 4) &&
             write_all(fp, ser->step_s, b) && write_all(fp, ser->mfu, b);
        if (mask & SER_TOKENS) ok = ok && write_all(fp, ser->tokens_per_s, b);
        if (mask & SER_IDLE) ok = ok && write_all(fp, ser->idle_frac, b);
        for (int k = 0; k < SCHEMA_N_PHASES; k++)
            if (ser->imbalance[k]) ok = ok && write_all(fp, ser->imbalance[k], b);
    } else {
        const char *msg = os_has_error() ? os_last_error() : os_status_name(st);
        uint32_t len = (uint32_t)strlen(msg);
        ok = ok && write_all(fp, &len, 4) && write_all(fp, msg, len);
    }
    return ok;
}

static OsStatus get_array(double **out, FILE *fp, uint64_t n, const char *where) {
    OsStatus st = OS_OK;
    *out = malloc((size_t)(n ? n : 1) * sizeof(double));
    ALLOC_CHECK(*out);
    if (!read_all(fp, *out, (size_t)n * 8)) OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "worker series truncated");
fail:
    return st;
}

/* Read one result. *failed = 1 with msg filled (and *pst) when the point failed. */
static OsStatus point_get(FILE *fp, const char *where, RunRow *row, RunSeries *ser, int *failed, OsStatus *pst,
                          char *msg, size_t cap) {
    OsStatus st = OS_OK;
    uint32_t magic = 0, mask = 0;
    int32_t s32 = 0;
    memset(ser, 0, sizeof *ser);
    *failed = 0;
    if (!read_all(fp, &magic, 4) || magic != POINT_MAGIC || !read_all(fp, &s32, 4))
        OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "worker result missing or truncated");
    if (s32 != OS_OK) {
        uint32_t len = 0;
        *failed = 1;
        *pst = (OsStatus)s32;
        if (!read_all(fp, &len, 4)) OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "worker error truncated");
        size_t k = OS_MIN((size_t)len, cap - 1);
        if (!read_all(fp, msg, k) || fseek(fp, (long)(len - k), SEEK_CUR) != 0)
            OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "worker error truncated");
        msg[k] = '\0';
        goto fail;
    }
    if (!read_all(fp, row, sizeof *row) || !read_all(fp, &ser->n, 8) || !read_all(fp, &mask, 4) ||
        ser->n > (1ull << 32))
        OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "worker result truncated");
    ser->cap = ser->n;
    OS_CHECK(get_array(&ser->step_s, fp, ser->n, where));
    OS_CHECK(get_array(&ser->mfu, fp, ser->n, where));
    if (mask & SER_TOKENS) OS_CHECK(get_array(&ser->tokens_per_s, fp, ser->n, where));
    if (mask & SER_IDLE) OS_CHECK(get_array(&ser->idle_frac, fp, ser->n, where));
    for (int k = 0; k < SCHEMA_N_PHASES; k++)
        if (mask & (1u << k)) OS_CHECK(get_array(&ser->imbalance[k], fp, ser->n, where));
fail:
    if (st != OS_OK) run_series_free(ser);
    return st;
}

static OsStatus run_one(RunRow *row, RunSeries *ser, const SweepPoint *p, const SweepGrid *g, const SweepOptions *o) {
    os_clear_error();
    memset(ser, 0, sizeof *ser);
    return o->run ? o->run(row, ser, p, o->run_user) : sweep_run_point(row, ser, p, g, o);
}

/* ---------------------------------------------------------------- results in grid order */

enum { PT_PENDING = 0, PT_OK, PT_FAILED };
typedef struct {
    size_t n;
    RunRow *rows;          /* [n] */
    RunSeries *series;     /* [n] */
    unsigned char *state;  /* [n] PT_* */
    OsStatus *pst;         /* [n] a failed point's status */
    char (*msg)[1024];     /* [n] a failed point's error line */
} Results;

static OsStatus results_init(Results *r, size_t n) {
    OsStatus st = OS_OK;
    memset(r, 0, sizeof *r);
    r->n = n;
    ALLOC_CHECK(r->rows = calloc(n, sizeof *r->rows));
    ALLOC_CHECK(r->series = calloc(n, sizeof *r->series));
    ALLOC_CHECK(r->state = calloc(n, 1));
    ALLOC_CHECK(r->pst = calloc(n, sizeof *r->pst));
    ALLOC_CHECK(r->msg = calloc(n, sizeof *r->msg));
fail:
    return st;
}

static void results_free(Results *r) {
    for (size_t i = 0; r->series && i < r->n; i++) run_series_free(&r->series[i]);
    free(r->rows);
    free(r->series);
    free(r->state);
    free(r->pst);
    free(r->msg);
    memset(r, 0, sizeof *r);
}

static void results_fail(Results *r, size_t i, OsStatus st, const char *msg) {
    r->state[i] = PT_FAILED;
    r->pst[i] = st;
    snprintf(r->msg[i], sizeof r->msg[i], "%s", msg);
}

/* ---------------------------------------------------------------- worker processes */

typedef struct {
    pid_t pid;
    size_t point;
} Worker;

static void point_file(char *buf, size_t cap, const char *dir, size_t i) {
    snprintf(buf, cap, "%s/point-%06zu", dir, i);
}

/* Child side: run the point and write its result into file; returns the exit code. */
static int child_run(const char *file, const SweepPoint *p, const SweepGrid *g, const SweepOptions *o) {
    RunRow row;
    RunSeries ser;
    OsStatus st = run_one(&row, &ser, p, g, o);
    FILE *fp = fopen(file, "wb");
    int ok = fp && point_put(fp, st, &row, &ser);
    if (fp) ok = fclose(fp) == 0 && ok;
    run_series_free(&ser);
    return ok ? (st == OS_OK ? 0 : 1) : 3;
}

/* The scratch folder for the point files: beside the CSV (its file system), or under $TMPDIR
 * when the CSV is standard output or a device. */
static OsStatus scratch_make(char *dir, size_t cap, const char *csv) {
    struct stat sb;
    int beside = strcmp(csv, "-") && (stat(csv, &sb) != 0 || S_ISREG(sb.st_mode));
    const char *tmp = getenv("TMPDIR");
    if (beside) snprintf(dir, cap, "%s.parts.XXXXXX", csv);
    else snprintf(dir, cap, "%s/orchsim-sweep-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir)) return OS_OK;
    int e = errno;
    dir[0] = '\0';
    return os_fail(OS_ERR_IO, beside ? csv : tmp && *tmp ? tmp : "/tmp", NULL,
                   "check the output directory exists and is writable",
                   "cannot create a scratch directory for the workers: %s", strerror(e));
}

/* Every point through at most `jobs` children. *infra = 1 when a result was lost (a worker
 * killed, or its file unwritable: the sweep cannot vouch for its rows). */
static OsStatus pool_run(Results *res, int *infra, const SweepGrid *g, const SweepOptions *o, OsProgress *prog) {
    OsStatus st = OS_OK;
    size_t N = res->n;
    uint32_t jobs = o->jobs ? o->jobs : 1;
    char dir[4200] = "", file[4300];
    Worker *work = NULL;
    OsTmp *dir_track = NULL, **pt_track = NULL;
    OS_CHECK(scratch_make(dir, sizeof dir, o->csv_path));
    dir_track = os_tmp_track(dir, 1); /* a signal removes the point files, then the directory */
    ALLOC_CHECK(pt_track = calloc(N, sizeof *pt_track));
    ALLOC_CHECK(work = calloc(jobs, sizeof *work));
    size_t next = 0, done = 0, active = 0;
    while (done < N) {
        while (active < jobs && next < N) {
            SweepPoint p;
            sweep_grid_point(&p, g, next);
            point_file(file, sizeof file, dir, next);
            fflush(stdout);
            fflush(stderr);
            pt_track[next] = os_tmp_track(file, 0);
            pid_t pid = fork();
            if (pid < 0) OS_FAIL(OS_ERR_IO, "sweep", "fork", "lower --jobs", "cannot start a worker: %s", strerror(errno));
            if (pid == 0) {
                os_tmp_forget_all(); /* the parent's temp files are the parent's to remove */
                _exit(child_run(file, &p, g, o)); /* a worker ends here, never returns */
            }
            for (uint32_t w = 0; w < jobs; w++)
                if (!work[w].pid) {
                    work[w] = (Worker){pid, next};
                    break;
                }
            active++;
            next++;
        }
        /* Poll our own children only (never waitpid(-1): a caller may have others). */
        int reaped = 0;
        for (uint32_t w = 0; w < jobs; w++) {
            if (!work[w].pid) continue;
            int ws = 0;
            pid_t r = waitpid(work[w].pid, &ws, WNOHANG);
            if (r == 0) continue;
            size_t i = work[w].point;
            work[w].pid = 0;
            active--;
            done++;
            reaped = 1;
            point_file(file, sizeof file, dir, i);
            if (r < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) == 3) {
                char msg[96];
                *infra = 1;
                if (r > 0 && WIFSIGNALED(ws)) snprintf(msg, sizeof msg, "worker killed by signal %d", WTERMSIG(ws));
                else snprintf(msg, sizeof msg, "worker could not write its result");
                results_fail(res, i, OS_ERR_INTERNAL, msg);
            } else {
                FILE *fp = fopen(file, "rb");
                int failed = 0;
                OsStatus pst = OS_ERR_INTERNAL;
                char msg[1024] = "";
                os_clear_error();
                OsStatus rs = fp ? point_get(fp, file, &res->rows[i], &res->series[i], &failed, &pst, msg, sizeof msg)
                                 : os_fail(OS_ERR_INTERNAL, file, NULL, NULL, "worker result missing");
                if (fp) fclose(fp);
                if (rs != OS_OK) {
                    *infra = 1;
                    results_fail(res, i, rs, os_last_error());
                    os_clear_error();
                } else if (failed) {
                    results_fail(res, i, pst, msg);
                } else {
                    res->state[i] = PT_OK;
                }
            }
            remove(file);
            os_tmp_untrack(pt_track[i]);
            pt_track[i] = NULL;
            os_progress_update(prog, done);
        }
        if (!reaped) nanosleep(&(struct timespec){0, 2000000}, NULL);
    }
fail:
    if (work) /* an error in the parent: do not leave workers running */
        for (uint32_t w = 0; w < jobs; w++)
            if (work[w].pid) waitpid(work[w].pid, NULL, 0);
    if (dir[0]) {
        for (size_t i = 0; i < N; i++) {
            point_file(file, sizeof file, dir, i);
            remove(file);
            if (pt_track) os_tmp_untrack(pt_track[i]);
        }
        rmdir(dir);
        os_tmp_untrack(dir_track);
    }
    free(pt_track);
    free(work);
    return st;
}

/* ---------------------------------------------------------------- MPI ranks */

/* This rank's points (i = rank mod K), each encoded as "<index u64><result>" after a rank
 * header "<magic><status i32><len u32><error>"; rank 0 decodes everyone's into res. */
static OsStatus ranks_run(Results *res, int *infra, const SweepGrid *g, const SweepOptions *o, OsProgress *prog) {
    OsStatus st = OS_OK, local = OS_OK;
    const SweepComm *c = o->comm;
    char *body = NULL, *send = NULL, *recv = NULL;
    size_t body_len = 0, *counts = NULL;
    char local_msg[1024] = "";
    FILE *fp = open_memstream(&body, &body_len);
    if (!fp) local = os_fail(OS_ERR_NOMEM, "sweep", NULL, NULL, "cannot buffer this rank's results");
    size_t mine = 0, done = 0;
    for (size_t i = (size_t)c->rank; i < res->n; i += (size_t)c->size) mine++;
    for (size_t i = (size_t)c->rank; fp && i < res->n; i += (size_t)c->size) {
        SweepPoint p;
        RunRow row;
        RunSeries ser;
        uint64_t i64 = i;
        sweep_grid_point(&p, g, i);
        OsStatus ps = run_one(&row, &ser, &p, g, o);
        if (!write_all(fp, &i64, 8) || !point_put(fp, ps, &row, &ser))
            local = os_fail(OS_ERR_NOMEM, "sweep", NULL, NULL, "cannot buffer this rank's results");
        run_series_free(&ser);
        if (local == OS_OK) os_clear_error(); /* the point's error travels in its result */
        os_progress_update(prog, ++done * res->n / (mine ? mine : 1));
        if (local != OS_OK) break;
    }
    if (fp && fclose(fp) != 0 && local == OS_OK) local = os_fail(OS_ERR_NOMEM, "sweep", NULL, NULL, "cannot buffer results");
    if (local != OS_OK) {
        snprintf(local_msg, sizeof local_msg, "%s", os_has_error() ? os_last_error() : os_status_name(local));
        body_len = 0;
    }
    {
        /* every rank gathers, also after its own failure (rank 0 would wait for it otherwise) */
        uint32_t magic = RANK_MAGIC, len = (uint32_t)strlen(local_msg);
        int32_t s32 = (int32_t)local;
        size_t n = 12 + len + body_len;
        send = malloc(n);
        if (send) {
            memcpy(send, &magic, 4);
            memcpy(send + 4, &s32, 4);
            memcpy(send + 8, &len, 4);
            memcpy(send + 12, local_msg, len);
            if (body_len) memcpy(send + 12 + len, body, body_len);
        }
        if (c->rank == 0) ALLOC_CHECK(counts = calloc((size_t)c->size, sizeof *counts));
        OS_CHECK(c->gatherv(c->user, send ? send : "", send ? n : 0, &recv, counts));
    }
    if (c->rank != 0) goto fail;
    size_t off = 0;
    for (int r = 0; r < c->size; off += counts[r], r++) {
        char where[64];
        snprintf(where, sizeof where, "MPI rank %d", r);
        FILE *in = counts[r] >= 12 ? fmemopen(recv + off, counts[r], "rb") : NULL;
        uint32_t magic = 0, len = 0;
        int32_t rs = OS_OK;
        if (!in || !read_all(in, &magic, 4) || magic != RANK_MAGIC || !read_all(in, &rs, 4) || !read_all(in, &len, 4)) {
            if (in) fclose(in);
            OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "its results are missing or truncated");
        }
        if (rs != OS_OK) { /* the rank could not hand back its points: they are lost */
            char m[1024] = "";
            size_t k = OS_MIN((size_t)len, sizeof m - 1);
            if (!read_all(in, m, k)) k = 0;
            m[k] = '\0';
            fclose(in);
            *infra = 1;
            for (size_t i = (size_t)r; i < res->n; i += (size_t)c->size) results_fail(res, i, (OsStatus)rs, m);
            continue;
        }
        if (fseek(in, (long)len, SEEK_CUR) != 0) {
            fclose(in);
            OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "its results are truncated");
        }
        uint64_t i64;
        while (read_all(in, &i64, 8)) {
            if (i64 >= res->n || i64 % (uint64_t)c->size != (uint64_t)r || res->state[i64] != PT_PENDING) {
                fclose(in);
                OS_FAIL(OS_ERR_INTERNAL, where, NULL, NULL, "a result for point %llu, which is not its own",
                        (unsigned long long)i64);
            }
            int failed = 0;
            OsStatus pst = OS_ERR_INTERNAL;
            char msg[1024] = "";
            OsStatus gs = point_get(in, where, &res->rows[i64], &res->series[i64], &failed, &pst, msg, sizeof msg);
            if (gs != OS_OK) {
                fclose(in);
                OS_CHECK(gs);
            }
            if (failed) results_fail(res, (size_t)i64, pst, msg);
            else res->state[i64] = PT_OK;
        }
        fclose(in);
    }
    for (size_t i = 0; i < res->n; i++)
        if (res->state[i] == PT_PENDING) {
            *infra = 1;
            results_fail(res, i, OS_ERR_INTERNAL, "no rank returned this point's result");
        }
fail:
    free(body);
    free(send);
    free(recv);
    free(counts);
    return st;
}

/* ---------------------------------------------------------------- the sweep */

static OsStatus add_failure(SweepReport *rep, size_t *cap, const SweepPoint *p, const char *msg) {
    OsStatus st = OS_OK;
    OS_CHECK(os_grow((void **)&rep->failures, cap, rep->n_failed + 1, sizeof *rep->failures));
    SweepFailure *f = &rep->failures[rep->n_failed++];
    sweep_point_describe(f->params, sizeof f->params, p);
    snprintf(f->error, sizeof f->error, "%s", msg);
fail:
    return st;
}

OsStatus sweep_run(SweepReport *rep, const SweepGrid *g, const SweepOptions *o) {
    OsStatus st = OS_OK, first_bad = OS_OK;
    Results res;
    RunRow *rows = NULL;
    RunSeries *series = NULL;
    size_t fail_cap = 0, n_rows = 0;
    OsOutFile out = {0};
    OsProgress prog;
    int infra = 0;
    const SweepComm *comm = o->comm && o->comm->size > 1 ? o->comm : NULL;
    int root = !comm || comm->rank == 0;
    memset(&res, 0, sizeof res);
    /* the CSV and the HDF5 copy are committed together, or neither (util.h) */
    uint64_t out_mark = os_outputs_hold();
    memset(rep, 0, sizeof *rep);
    rep->follower = !root;
    rep->ranks = comm ? comm->size : 1;
    double t0 = os_now();
    size_t N = sweep_grid_size(g);
    rep->n_points = N;
    if (N == 0) OS_FAIL(OS_ERR_ARG, "sweep", NULL, "give every axis at least one value", "empty grid");
    {
        /* Open the trace once here so a bad path is one clear error, not N identical failures;
         * bad output paths (the trace itself among them) fail here too, before any point runs.
         * The handle is closed before any fork: children start with no open HDF5 objects. */
        Trace *t = NULL;
        OsStatus cs = trace_open(&t, o->trace_path);
        if (cs == OS_OK && root) cs = os_output_check(o->csv_path, 1);
        if (cs == OS_OK && root && o->h5_path) cs = os_output_check(o->h5_path, 0);
        trace_close(t);
        cs = sweep_agree(comm, cs); /* every rank, or none, goes on */
        if (cs == OS_DONE) {
            st = OS_DONE; /* another rank failed its checks: rank 0 says so */
            goto fail;
        }
        OS_CHECK(cs);
    }
    OS_CHECK(results_init(&res, N));
    os_progress_init(&prog, "sweep", N);
    if (!o->progress || !root) prog.enabled = 0;
    if (comm) OS_CHECK(ranks_run(&res, &infra, g, o, &prog));
    else OS_CHECK(pool_run(&res, &infra, g, o, &prog));
    os_progress_done(&prog);
    if (!root) goto fail; /* rank 0 writes and reports */
    for (size_t i = 0; i < N; i++) {
        if (res.state[i] == PT_OK) {
            rep->n_ok++;
            continue;
        }
        SweepPoint p;
        sweep_grid_point(&p, g, i);
        OS_CHECK(add_failure(rep, &fail_cap, &p, res.msg[i]));
        if (first_bad == OS_OK) first_bad = res.pst[i];
    }
    if (infra) /* a worker died or could not hand back its result (a full disk): commit nothing */
        OS_FAIL(OS_ERR_IO, o->csv_path, NULL, "check free disk space beside the output",
                "%zu of %zu grid points lost their results (first: %s)", rep->n_failed, N,
                rep->n_failed ? rep->failures[0].error : "?");
    if (rep->n_ok == 0) /* nothing to write: no empty table */
        OS_FAIL(first_bad == OS_OK ? OS_ERR_INTERNAL : first_bad, "sweep", NULL,
                "the failed points are listed above; fix them and run again",
                "every one of the %zu grid points failed: nothing written", N);

    if (rep->n_failed && !o->keep_going) /* a command that fails commits none of its outputs */
        OS_FAIL(first_bad == OS_OK ? OS_ERR_INTERNAL : first_bad, o->csv_path, NULL,
                "the failed points are listed above; fix or drop them, or add --keep-going to write the others",
                "%zu of %zu grid points failed: nothing written", rep->n_failed, N);

    /* the successful rows, in grid order */
    ALLOC_CHECK(rows = calloc(rep->n_ok, sizeof *rows));
    ALLOC_CHECK(series = calloc(rep->n_ok, sizeof *series));
    for (size_t i = 0; i < N; i++) {
        if (res.state[i] != PT_OK) continue;
        rows[n_rows] = res.rows[i];
        series[n_rows] = res.series[i];
        memset(&res.series[i], 0, sizeof res.series[i]);
        n_rows++;
    }
    runtable_speedups(rows, n_rows);
    OS_CHECK(os_outfile_open(&out, o->csv_path, 1));
    runtable_write_header(out.fp);
    for (size_t i = 0; i < n_rows; i++) runtable_write_row(out.fp, &rows[i]);
    OS_CHECK(os_outfile_commit(&out)); /* deferred: renamed with the HDF5 copy at release */
    if (o->h5_path) OS_CHECK(sweep_h5_write(o->h5_path, o->trace_path, rows, series, n_rows));
    rep->written = 1;
    rep->wall_s = os_now() - t0;
    /* --keep-going: the failed points are listed (cmd_sweep), the others written, success */
fail:
    if (out.fp) os_outfile_abort(&out);
    for (size_t i = 0; series && i < n_rows; i++) run_series_free(&series[i]);
    free(series);
    free(rows);
    results_free(&res);
    {
        /* with --keep-going, failed grid points leave the rows that ran (CSV and HDF5 copy
         * together) and the sweep succeeds; any error commits nothing */
        OsStatus rs = os_outputs_release(out_mark, rep->written ? OS_OK : st);
        if (st == OS_OK || (rep->written && rs != OS_OK)) st = rs;
        if (rs != OS_OK) rep->written = 0;
    }
    return st;
}
