/* worker.c — see worker.h. Wire format on every pipe: a MsgHead {type, len} then len bytes.
 * Up (worker -> parent): BLOB (worker 0's broadcast), REPORT (one ExecReport), ERROR (text).
 * Down (parent -> worker): BLOB (the relayed broadcast). Pipe writes of <= PIPE_BUF bytes are
 * atomic and every message here is smaller, so a dying worker never leaves half a message
 * that the parent would misread as another. */
#include "exec/worker.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"

#include "exec/mpimod.h"

enum { MSG_BLOB = 1, MSG_REPORT = 2, MSG_ERROR = 3 };
#define MSG_TEXT_MAX 1024

typedef struct {
    uint32_t type, len;
} MsgHead;

struct ExecWorker {
    uint32_t index, count;
    int up, down; /* write end to the parent, read end from it; -1 under MPI */
    int mpi;
    ExecReportSink *sink; /* MPI rank 0 */
    void *sink_user;
};

typedef struct {
    pid_t pid;
    int up, down;   /* read end from the worker, write end to it */
    int exited;     /* reaped */
    int status;     /* waitpid status once reaped */
    uint32_t got;   /* reports received in the current collect */
    char err[MSG_TEXT_MAX];
} Slot;

struct ExecPool {
    uint32_t W;
    Slot *s;
    int have_blob;
    uint32_t blob_len;
    unsigned char blob[EXEC_BLOB_MAX];
    int dead;
};

uint32_t exec_worker_index(const ExecWorker *w) { return w->index; }
uint32_t exec_worker_count(const ExecWorker *w) { return w->count; }

/* ---- raw pipe I/O (retry on EINTR and short transfers) ------------------------------------ */

static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k, n -= (size_t)k;
    }
    return 0;
}
/* 1 = read n bytes, 0 = EOF before the first byte, -1 = error or EOF mid-message. */
static int read_all(int fd, void *buf, size_t n) {
    unsigned char *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t k = read(fd, p + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) return done ? -1 : 0;
        if (k < 0) return -1;
        done += (size_t)k;
    }
    return 1;
}

static int send_msg(int fd, uint32_t type, const void *data, uint32_t len) {
    unsigned char buf[sizeof(MsgHead) + MSG_TEXT_MAX + sizeof(ExecReport)];
    MsgHead h = {type, len};
    if (len > sizeof buf - sizeof h) return -1;
    memcpy(buf, &h, sizeof h);
    if (len) memcpy(buf + sizeof h, data, len);
    return write_all(fd, buf, sizeof h + len); /* one write: atomic below PIPE_BUF */
}

/* ---- the child's side --------------------------------------------------------------------- */

OsStatus exec_worker_bcast(ExecWorker *w, void *blob, size_t n) {
    OsStatus st = OS_OK;
    if (n == 0 || n > EXEC_BLOB_MAX)
        OS_FAIL(OS_ERR_ARG, "worker", "bcast", NULL, "blob of %zu bytes (1..%d)", n, EXEC_BLOB_MAX);
    if (w->mpi) {
        const ExecMpiApi *mp = NULL;
        OS_CHECK(exec_mpi_api(&mp));
        OS_CHECK(mp->bcast(blob, n, 0));
        return OS_OK;
    }
    if (w->index == 0) {
        if (send_msg(w->up, MSG_BLOB, blob, (uint32_t)n))
            OS_FAIL(OS_ERR_IO, "worker", "pipe", NULL, "worker 0: sending the broadcast: %s", strerror(errno));
    } else {
        MsgHead h;
        if (read_all(w->down, &h, sizeof h) != 1 || h.type != MSG_BLOB || h.len != n)
            OS_FAIL(OS_ERR_IO, "worker", "pipe", "the parent or worker 0 stopped early",
                    "worker %u: no broadcast of %zu bytes arrived", w->index, n);
        if (read_all(w->down, blob, n) != 1)
            OS_FAIL(OS_ERR_IO, "worker", "pipe", NULL, "worker %u: broadcast cut short", w->index);
    }
fail:
    return st;
}

OsStatus exec_worker_report(ExecWorker *w, const ExecReport *r) {
    OsStatus st = OS_OK;
    ExecReport c = *r;
    ExecReport *all = NULL; /* MPI rank 0: [count] */
    c.worker = w->index;
    if (w->mpi) {
        /* collective: every rank reports once per call, rank 0 hands all of them to the sink */
        const ExecMpiApi *mp = NULL;
        OS_CHECK(exec_mpi_api(&mp));
        if (w->index == 0) ALLOC_CHECK(all = malloc((size_t)w->count * sizeof *all));
        OS_CHECK(mp->gather(&c, sizeof c, all, 0));
        for (uint32_t k = 0; all && k < w->count; k++) OS_CHECK(w->sink(&all[k], w->sink_user));
        goto fail;
    }
    if (send_msg(w->up, MSG_REPORT, &c, sizeof c))
        OS_FAIL(OS_ERR_IO, "worker", "pipe", NULL, "worker %u: sending a report: %s", w->index, strerror(errno));
fail:
    free(all);
    return st;
}

/* The child never returns into the caller's stack (that would run the parent's code twice):
 * it ends with _exit, which also skips atexit handlers and stdio buffers that belong to the
 * parent. This is the one place below main that ends a process, by design of fork. */
static void child_main(ExecWorker *w, ExecWorkerFn *fn, void *user) {
    os_clear_error();
    OsStatus st = fn(w, user);
    if (st != OS_OK) {
        char text[MSG_TEXT_MAX];
        snprintf(text, sizeof text, "%s: %s", os_status_name(st),
                 os_has_error() ? os_last_error() : "failed");
        (void)send_msg(w->up, MSG_ERROR, text, (uint32_t)strlen(text) + 1);
    }
    fflush(stdout);
    fflush(stderr);
    _exit(st == OS_OK ? 0 : 1);
}

/* ---- the parent's side -------------------------------------------------------------------- */

static void kill_all(ExecPool *p) {
    for (uint32_t k = 0; k < p->W; k++)
        if (p->s[k].pid > 0 && !p->s[k].exited) kill(p->s[k].pid, SIGKILL);
    for (uint32_t k = 0; k < p->W; k++)
        if (p->s[k].pid > 0 && !p->s[k].exited) {
            while (waitpid(p->s[k].pid, &p->s[k].status, 0) < 0 && errno == EINTR) {}
            p->s[k].exited = 1;
        }
    p->dead = 1;
}

OsStatus exec_pool_start(ExecPool **out, uint32_t W, ExecWorkerFn *fn, void *user) {
    OsStatus st = OS_OK;
    ExecPool *p = NULL;
    *out = NULL;
    if (W == 0 || W > 4096) OS_FAIL(OS_ERR_ARG, "worker", "workers", NULL, "%u workers (1..4096)", W);
    ALLOC_CHECK(p = calloc(1, sizeof *p));
    ALLOC_CHECK(p->s = calloc(W, sizeof *p->s));
    p->W = W;
    for (uint32_t k = 0; k < W; k++) p->s[k].up = p->s[k].down = -1;
    fflush(stdout); /* or the children inherit and repeat buffered output */
    fflush(stderr);
    for (uint32_t k = 0; k < W; k++) {
        int up[2], down[2];
        if (pipe(up)) OS_FAIL(OS_ERR_IO, "worker", "pipe", "raise the open-files limit", "%s", strerror(errno));
        if (pipe(down)) {
            close(up[0]), close(up[1]);
            OS_FAIL(OS_ERR_IO, "worker", "pipe", "raise the open-files limit", "%s", strerror(errno));
        }
        pid_t pid = fork();
        if (pid < 0) {
            close(up[0]), close(up[1]), close(down[0]), close(down[1]);
            OS_FAIL(OS_ERR_IO, "worker", "fork", "too many processes?", "worker %u: %s", k, strerror(errno));
        }
        if (pid == 0) {
            /* child: keep only its own two ends */
            for (uint32_t j = 0; j < k; j++) close(p->s[j].up), close(p->s[j].down);
            close(up[0]), close(down[1]);
            signal(SIGPIPE, SIG_IGN); /* a dead parent shows as EPIPE, handled as an error */
            ExecWorker w = {k, W, up[1], down[0], 0, NULL, NULL};
            child_main(&w, fn, user);
        }
        close(up[1]), close(down[0]);
        p->s[k].pid = pid, p->s[k].up = up[0], p->s[k].down = down[1];
    }
    *out = p;
    return OS_OK;
fail:
    exec_pool_destroy(p);
    return st;
}

static void describe_exit(char *buf, size_t n, int status) {
    if (WIFSIGNALED(status)) snprintf(buf, n, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status)) snprintf(buf, n, "exited with status %d", WEXITSTATUS(status));
    else snprintf(buf, n, "stopped");
}

/* A worker's pipe closed (or broke): reap it. A clean exit (status 0, no error sent) is OK
 * (callers check what it still owed); anything else becomes a status naming the rank. */
static OsStatus worker_gone(ExecPool *p, uint32_t k) {
    Slot *s = &p->s[k];
    if (!s->exited) {
        while (waitpid(s->pid, &s->status, 0) < 0 && errno == EINTR) {}
        s->exited = 1;
    }
    if (!s->err[0] && WIFEXITED(s->status) && WEXITSTATUS(s->status) == 0) return OS_OK;
    char how[96];
    describe_exit(how, sizeof how, s->status);
    OsStatus code = OS_ERR_INTERNAL;
    if (s->err[0]) {
        /* the worker's own status class leads its text ("cuda: ..."): keep it */
        for (int c = OS_ERR_ARG; c < OS_DONE; c++) {
            const char *nm = os_status_name((OsStatus)c);
            size_t l = strlen(nm);
            if (!strncmp(s->err, nm, l) && s->err[l] == ':') code = (OsStatus)c;
        }
        kill_all(p);
        return os_fail(code, "worker", "rank", "the other workers were stopped", "rank %u failed (%s): %s", k, how,
                       s->err);
    }
    kill_all(p);
    return os_fail(code, "worker", "rank", "the other workers were stopped", "rank %u %s without reporting an error",
                   k, how);
}

/* Read one message from worker k; relays the blob, records reports and errors. Returns OK,
 * or the worker's failure once its pipe closes. */
static OsStatus read_one(ExecPool *p, uint32_t k, ExecReport *out, uint32_t per_worker) {
    OsStatus st = OS_OK;
    Slot *s = &p->s[k];
    MsgHead h;
    unsigned char body[MSG_TEXT_MAX + sizeof(ExecReport)];
    int r = read_all(s->up, &h, sizeof h);
    if (r == 0) return worker_gone(p, k);
    if (r < 0 || h.len > sizeof body || read_all(s->up, body, h.len) != 1) {
        snprintf(s->err, sizeof s->err, "internal: malformed message on the worker pipe");
        return worker_gone(p, k);
    }
    if (h.type == MSG_BLOB && k == 0 && !p->have_blob && h.len <= EXEC_BLOB_MAX) {
        p->have_blob = 1, p->blob_len = h.len;
        memcpy(p->blob, body, h.len);
        for (uint32_t j = 1; j < p->W; j++)
            if (send_msg(p->s[j].down, MSG_BLOB, p->blob, p->blob_len)) {
                snprintf(p->s[j].err, sizeof p->s[j].err, "io: its pipe closed before the broadcast");
                return worker_gone(p, j);
            }
    } else if (h.type == MSG_REPORT && h.len == sizeof(ExecReport) && s->got >= per_worker) {
        /* exec_pool_finish: reports after the last collect are dropped */
    } else if (h.type == MSG_REPORT && h.len == sizeof(ExecReport)) {
        memcpy(&out[(size_t)k * per_worker + s->got], body, sizeof(ExecReport));
        out[(size_t)k * per_worker + s->got].worker = k;
        s->got++;
    } else if (h.type == MSG_ERROR && h.len >= 1) {
        body[h.len - 1] = '\0';
        snprintf(s->err, sizeof s->err, "%.*s", MSG_TEXT_MAX - 1, (char *)body);
    } else {
        snprintf(s->err, sizeof s->err, "internal: unexpected message type %u (%u bytes)", h.type, h.len);
        return worker_gone(p, k);
    }
    return st;
}

/* Poll the workers in `want` until each has what it needs (done(k) true) or the deadline. */
typedef int DoneFn(const ExecPool *p, uint32_t k, uint32_t per_worker);
static int done_reports(const ExecPool *p, uint32_t k, uint32_t per) { return p->s[k].got >= per; }
static int done_exited(const ExecPool *p, uint32_t k, uint32_t per) {
    (void)per;
    return p->s[k].exited;
}

static OsStatus pump(ExecPool *p, ExecReport *out, uint32_t per_worker, double timeout_s, DoneFn *done,
                     const char *waiting_for) {
    OsStatus st = OS_OK;
    struct pollfd *fds = NULL;
    uint32_t *who = NULL;
    double deadline = os_now() + timeout_s;
    if (p->dead) OS_FAIL(OS_ERR_INTERNAL, "worker", "pool", NULL, "the workers were already stopped");
    ALLOC_CHECK(fds = calloc(p->W, sizeof *fds));
    ALLOC_CHECK(who = calloc(p->W, sizeof *who));
    for (;;) {
        uint32_t n = 0;
        for (uint32_t k = 0; k < p->W; k++)
            if (!done(p, k, per_worker) && !p->s[k].exited) {
                fds[n] = (struct pollfd){.fd = p->s[k].up, .events = POLLIN};
                who[n++] = k;
            }
        if (n == 0) break;
        double left = deadline - os_now();
        if (left <= 0) {
            char ranks[256] = "";
            size_t used = 0;
            for (uint32_t i = 0; i < n && used + 12 < sizeof ranks; i++)
                used += (size_t)snprintf(ranks + used, sizeof ranks - used, "%s%u", i ? "," : "", who[i]);
            kill_all(p);
            OS_FAIL(OS_ERR_TIMEOUT, "worker", "--timeout", "raise --timeout, or look for a hung collective",
                    "%.3g s passed waiting for %s of rank(s) %s%s; all %u workers were killed", timeout_s,
                    waiting_for, ranks, used + 12 >= sizeof ranks ? ",..." : "", p->W);
        }
        int ms = left > 1e6 ? 1000000000 : (int)(left * 1000.0) + 1;
        int r = poll(fds, n, ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) OS_FAIL(OS_ERR_IO, "worker", "poll", NULL, "%s", strerror(errno));
        for (uint32_t i = 0; i < n; i++)
            if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) OS_CHECK(read_one(p, who[i], out, per_worker));
    }
fail:
    free(fds);
    free(who);
    return st;
}

OsStatus exec_pool_collect(ExecPool *p, ExecReport *out, uint32_t per_worker, double timeout_s) {
    for (uint32_t k = 0; k < p->W; k++) p->s[k].got = 0;
    OsStatus st = pump(p, out, per_worker, timeout_s, done_reports, "reports");
    /* a worker that exited before sending all its reports is a failure even at exit 0 */
    for (uint32_t k = 0; st == OS_OK && k < p->W; k++)
        if (p->s[k].got < per_worker) {
            kill_all(p);
            st = os_fail(OS_ERR_INTERNAL, "worker", "rank", NULL, "rank %u exited after %u of %u reports", k,
                         p->s[k].got, per_worker);
        }
    return st;
}

OsStatus exec_pool_finish(ExecPool *p, double timeout_s) {
    OsStatus st = OS_OK;
    ExecReport sink[1];
    /* per_worker = 0: extra reports are dropped; EOF on each pipe reaps its worker */
    for (uint32_t k = 0; k < p->W; k++) p->s[k].got = 0;
    OS_CHECK(pump(p, sink, 0, timeout_s, done_exited, "the exit"));
    for (uint32_t k = 0; k < p->W; k++)
        if (!WIFEXITED(p->s[k].status) || WEXITSTATUS(p->s[k].status) != 0) {
            char how[96];
            describe_exit(how, sizeof how, p->s[k].status);
            OS_FAIL(OS_ERR_INTERNAL, "worker", "rank", NULL, "rank %u %s", k, how);
        }
fail:
    return st;
}

void exec_pool_destroy(ExecPool *p) {
    if (!p) return;
    if (p->s) {
        kill_all(p);
        for (uint32_t k = 0; k < p->W; k++) {
            if (p->s[k].up >= 0) close(p->s[k].up);
            if (p->s[k].down >= 0) close(p->s[k].down);
        }
    }
    free(p->s);
    free(p);
}

/* ---- mpirun ------------------------------------------------------------------------------- */

int exec_under_mpi(uint32_t *rank, uint32_t *size) {
    static const char *const SIZE_VARS[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    static const char *const RANK_VARS[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK"};
    for (size_t i = 0; i < OS_ARRAY_LEN(SIZE_VARS); i++) {
        const char *s = getenv(SIZE_VARS[i]), *r = getenv(RANK_VARS[i]);
        if (s && r) {
            *size = (uint32_t)strtoul(s, NULL, 10);
            *rank = (uint32_t)strtoul(r, NULL, 10);
            return *size > 0;
        }
    }
    return 0;
}

OsStatus exec_worker_mpi(ExecWorkerFn *fn, void *user, ExecReportSink *sink, void *sink_user) {
    OsStatus st = OS_OK;
    const ExecMpiApi *mp = NULL;
    int rank = 0, size = 0, inited = 0;
    OS_CHECK(exec_mpi_api(&mp));
    OS_CHECK(mp->init(&rank, &size));
    inited = 1;
    {
        ExecWorker w = {(uint32_t)rank, (uint32_t)size, -1, -1, 1, sink, sink_user};
        st = fn(&w, user);
    }
    if (st != OS_OK) {
        /* the body has aborted its NCCL communicator; take the other MPI ranks down too */
        fprintf(stderr, "orchsim: error: rank %d: %s\n", rank, os_last_error());
        mp->abort(1);
    }
fail:
    if (inited) (void)mp->finalize();
    return st;
}
