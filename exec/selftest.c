/* selftest.c — see selftest.h. */
#include "exec/selftest.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/flash.h"
#include "exec/gpu.h"
#include "exec/gpumod.h"
#include "exec/kernels.h"
#include "exec/params.h"
#include "exec/tol.h"
#include "base/util.h"

typedef void CheckFn(ExecCheck *c);

static void set(ExecCheck *c, ExecCheckResult r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set(ExecCheck *c, ExecCheckResult r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    c->res = r;
    vsnprintf(c->detail, sizeof c->detail, fmt, ap);
    va_end(ap);
}

/* ---- the algorithm on the CPU ------------------------------------------------------------ */

typedef struct {
    int nseq;
    uint64_t len[4];
    int nh, nkv, hd;
} Shape;
static const Shape CPU_SHAPES[] = {
    {1, {1}, 2, 1, 8}, {3, {1, 37, 2}, 4, 2, 16}, {3, {63, 64, 65}, 2, 2, 16}, {2, {130, 7}, 4, 1, 24},
};

static float cval(uint64_t seed, uint64_t i) { return exec_bf16_round(exec_uniform(exec_hash3(seed, i, 77))); }

/* worst over the shapes and both masks, forward (bwd = 0) or backward */
static int cpu_flash(double *worst, int bwd) {
    *worst = 0;
    for (size_t s = 0; s < OS_ARRAY_LEN(CPU_SHAPES); s++)
        for (int causal = 0; causal < 2; causal++) {
            const Shape *sh = &CPU_SHAPES[s];
            uint64_t T = 0;
            for (int q = 0; q < sh->nseq; q++) T += sh->len[q];
            const size_t ld = (size_t)(sh->nh + 2 * sh->nkv) * sh->hd, ldo = (size_t)sh->nh * sh->hd;
            float *qkv = malloc(T * ld * 4), *att = malloc(T * ldo * 4), *lse = malloc((size_t)sh->nh * T * 4);
            float *dout = malloc(T * ldo * 4), *dqkv = calloc(T * ld, 4);
            double *ref = malloc(T * ld * 8);
            ExecFlashTile *f = malloc(exec_flash_max_tiles(T) * sizeof *f), *b = malloc(exec_flash_max_tiles(T) * sizeof *b);
            int ok = qkv && att && lse && dout && dqkv && ref && f && b;
            if (ok) {
                for (size_t i = 0; i < T * ld; i++) qkv[i] = 2.0f * cval(1, i);
                for (size_t i = 0; i < T * ldo; i++) dout[i] = cval(2, i);
                uint32_t n = exec_flash_tiles(f, b, sh->len, (uint32_t)sh->nseq, causal);
                exec_flash_forward_cpu(att, lse, qkv, f, n, T, sh->nh, sh->nkv, sh->hd, causal, NULL);
                if (!bwd) {
                    exec_attn_ref_forward(ref, qkv, sh->len, (uint32_t)sh->nseq, sh->nh, sh->nkv, sh->hd, causal);
                    *worst = fmax(*worst, exec_worst(att, ref, T * ldo, 1e-2, 1e-2));
                } else {
                    exec_flash_backward_cpu(dqkv, dout, qkv, att, lse, b, n, T, sh->nh, sh->nkv, sh->hd, causal, NULL);
                    exec_attn_ref_backward(ref, dout, qkv, sh->len, (uint32_t)sh->nseq, sh->nh, sh->nkv, sh->hd, causal);
                    *worst = fmax(*worst, exec_worst(dqkv, ref, T * ld, 3e-2, 3e-2));
                }
            }
            free(qkv), free(att), free(lse), free(dout), free(dqkv), free(ref), free(f), free(b);
            if (!ok) return 0;
        }
    return 1;
}

static void ck_cpu_fwd(ExecCheck *c) {
    double w;
    if (!cpu_flash(&w, 0)) return set(c, EXEC_CHECK_FAIL, "out of memory");
    set(c, w <= 1 ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
        "tiled emulation vs float64: worst %.3g (<= 1; atol = rtol = 1e-2), %zu shapes x 2 masks, lengths 1..130",
        w, OS_ARRAY_LEN(CPU_SHAPES));
}
static void ck_cpu_bwd(ExecCheck *c) {
    double w;
    if (!cpu_flash(&w, 1)) return set(c, EXEC_CHECK_FAIL, "out of memory");
    set(c, w <= 1 ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
        "tiled emulation vs float64: worst %.3g (<= 1; atol = rtol = 3e-2), dQ dK dV with GQA", w);
}
static void ck_cpu_work(ExecCheck *c) {
    uint64_t len[10];
    for (int i = 0; i < 10; i++) len[i] = 64;
    uint64_t packed = 640, a = exec_flash_pairs(len, 10, 0), b = exec_flash_pairs(&packed, 1, 0);
    set(c, a == 10 && b == 100 ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
        "10 sequences of 64: %llu tile pairs (sum len^2), one packed 640: %llu ((sum len)^2)", (unsigned long long)a,
        (unsigned long long)b);
}

/* ---- module and device ------------------------------------------------------------------- */

static int g_probed, g_ndev;
static char g_why[512];

/* 1 when a device is there; else c is a SKIP with the reason. */
static int need_device(ExecCheck *c) {
    if (!g_probed) {
        g_probed = 1;
        if (exec_gpu_count(&g_ndev, g_why, sizeof g_why) != OS_OK || g_ndev <= 0) {
            g_ndev = 0;
            if (!g_why[0]) snprintf(g_why, sizeof g_why, "%s", os_last_error());
        }
        os_clear_error();
    }
    if (g_ndev > 0) return 1;
    set(c, EXEC_CHECK_SKIP, "%s: %s", exec_gpu_module_error() ? "GPU module not loaded" : "no CUDA device", g_why);
    return 0;
}

static void ck_module(ExecCheck *c) {
    const ExecGpuApi *g = NULL;
    if (exec_gpu_api(&g) != OS_OK) {
        set(c, EXEC_CHECK_SKIP, "GPU module not loaded: %s", os_last_error());
        os_clear_error();
        return;
    }
    set(c, EXEC_CHECK_PASS, "%s (%s)", exec_gpu_module_path(), g->build);
}

static void ck_device(ExecCheck *c) {
    ExecDeviceInfo i;
    if (!need_device(c)) return;
    if (exec_gpu_info(&i, 0) != OS_OK) {
        set(c, EXEC_CHECK_FAIL, "%s", os_last_error());
        os_clear_error();
        return;
    }
    set(c, EXEC_CHECK_PASS, "%d x %s, cc %d.%d, %d SMs, %.1f GiB, CUDA driver %d runtime %d, cuBLAS %d, NCCL %d",
        g_ndev, i.name, i.cc_major, i.cc_minor, i.sms, i.mem_bytes / 1073741824.0, i.driver_version,
        i.runtime_version, i.cublas_version, i.nccl_version);
}

/* ---- the executor ------------------------------------------------------------------------ */

static ExecExecCheck g_pol;
static int g_pol_ok;

static void exec_check(ExecCheck *c, uint32_t D, const char *const *pols, int n, ExecAttnImpl impl) {
    ExecExecCheck r;
    if (!need_device(c)) return;
    if (exec_selftest_executor(&r, D, pols, n, impl) != OS_OK) {
        set(c, EXEC_CHECK_FAIL, "%s", os_last_error());
        os_clear_error();
        return;
    }
    int ok = r.loss_rel <= 2e-2 && r.grad_rel < 5e-2 && r.policy_rel < 3e-2;
    set(c, ok ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
        "tiny, %u rank(s), %s attention: loss rel err %.3g (<= 0.02), worst module gradient rel L2 %.3g (< 0.05)%s",
        D, impl == EXEC_ATTN_FUSED ? "fused" : "cuBLAS twin", r.loss_rel, r.grad_rel, n > 1 ? ", policies below" : "");
    if (n > 1) {
        size_t l = strlen(c->detail);
        snprintf(c->detail + l, sizeof c->detail - l, "; none/post/post-node gradients rel L2 %.3g (< 0.03)",
                 r.policy_rel);
        g_pol = r, g_pol_ok = 1;
    }
}

static void ck_exec_fused(ExecCheck *c) {
    const char *p[] = {"none"};
    exec_check(c, 1, p, 1, EXEC_ATTN_FUSED);
}
static void ck_exec_twin(ExecCheck *c) {
    const char *p[] = {"none"};
    exec_check(c, 1, p, 1, EXEC_ATTN_CUBLAS);
}
static void ck_exec_policies(ExecCheck *c) {
    const char *p[] = {"none", "post", "post-node"};
    exec_check(c, 4, p, 3, EXEC_ATTN_FUSED);
}
static void ck_memory(ExecCheck *c) {
    if (!need_device(c)) return;
    if (!g_pol_ok) return set(c, EXEC_CHECK_SKIP, "the executor:policies check did not run");
    const ExecMemCount *h = &g_pol.held, *e = &g_pol.estimate;
    int ok = h->weights == e->weights && h->grads == e->grads && h->activations == e->activations &&
             h->index == e->index && h->scratch == e->scratch && h->relay == e->relay;
    set(c, ok ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
        "4 local ranks after 3 plans: allocated %.0f B (act %.0f, index %.0f, scratch %.0f, relay %.0f), "
        "estimate %.0f B (act %.0f, index %.0f, scratch %.0f, relay %.0f)",
        h->total, h->activations, h->index, h->scratch, h->relay, e->total, e->activations, e->index, e->scratch,
        e->relay);
}

static const char *g_self_exe;

/* The NCCL check in a fresh process (selftest.h): its one result line is this check's. */
static void nccl_child(ExecCheck *c) {
    int fd[2];
    pid_t pid;
    char buf[4096];
    size_t n = 0;
    if (pipe(fd) != 0) return set(c, EXEC_CHECK_FAIL, "pipe: %s", strerror(errno));
    fflush(stdout), fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return set(c, EXEC_CHECK_FAIL, "fork: %s", strerror(errno));
    }
    if (pid == 0) { /* the child: this program again, the NCCL check only */
        dup2(fd[1], 1), dup2(fd[1], 2);
        close(fd[0]), close(fd[1]);
        setenv("ORCHSIM_SELFTEST_CHILD", "1", 1);
        execl(g_self_exe, "orchsim", "selftest", "--only", "nccl:one_rank", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    double end = os_now() + EXEC_SELFTEST_NCCL_S;
    int timed_out = 0;
    for (;;) {
        double left = end - os_now();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fd[0], POLLIN, 0};
        int r = poll(&p, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        ssize_t k = read(fd[0], buf + n, sizeof buf - 1 - n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        n += (size_t)k;
        if (n >= sizeof buf - 1) break;
    }
    buf[n] = '\0';
    close(fd[0]);
    if (timed_out) kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (timed_out)
        return set(c, EXEC_CHECK_FAIL, "no answer within %.0f s: NCCL hung starting a 1-rank communicator (NCCL_DEBUG=INFO "
                   "says where)", EXEC_SELFTEST_NCCL_S);
    for (char *line = buf; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (strstr(line, "nccl:one_rank") && strlen(line) > 4 && line[4] == ' ') {
            char *d = strstr(line, " s  ");
            ExecCheckResult r = !strncmp(line, "PASS", 4) ? EXEC_CHECK_PASS
                                : !strncmp(line, "SKIP", 4) ? EXEC_CHECK_SKIP : EXEC_CHECK_FAIL;
            return set(c, r, "%s (in a fresh process)", d ? d + 4 : line);
        }
        line = nl ? nl + 1 : NULL;
    }
    set(c, EXEC_CHECK_FAIL, "the check's process ended (%s %d) without a result: %.300s",
        WIFSIGNALED(status) ? "signal" : "exit", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), buf);
}

static void ck_nccl(ExecCheck *c) {
    const ExecGpuApi *g = NULL;
    double worst = INFINITY;
    char why[512] = "";
    if (!need_device(c)) return;
    if (g_self_exe && !getenv("ORCHSIM_SELFTEST_CHILD")) return nccl_child(c);
    if (exec_gpu_api(&g) != OS_OK) return set(c, EXEC_CHECK_SKIP, "%s", os_last_error());
    OsStatus st = g->nccl_smoke(&worst, why, sizeof why);
    if (st == OS_ERR_NODEV) {
        set(c, EXEC_CHECK_SKIP, "NCCL cannot start here: %s", why[0] ? why : os_last_error());
    } else if (st != OS_OK) {
        set(c, EXEC_CHECK_FAIL, "%s", os_has_error() ? os_last_error() : g->last_error());
    } else {
        set(c, worst == 0 ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
            "1-rank communicator, all-reduce of 1024 floats exact (worst %g), async error polled", worst);
    }
    os_clear_error();
}

/* ---- the registry ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    CheckFn *fn; /* NULL: the module's kernel self-tests, one check each */
} CheckRow;

static const CheckRow CHECKS[] = {
    {"cpu:flash_forward", ck_cpu_fwd},
    {"cpu:flash_backward", ck_cpu_bwd},
    {"cpu:flash_work", ck_cpu_work},
    {"module", ck_module},
    {"device", ck_device},
    {"kernel:", NULL},
    {"executor:tiny_fused", ck_exec_fused},
    {"executor:tiny_cublas_twin", ck_exec_twin},
    {"executor:policies_4_ranks", ck_exec_policies},
    {"memory:allocated_vs_estimate", ck_memory},
    {"nccl:one_rank", ck_nccl},
};

static int wanted(const char *name, const char *only) { return !only || !*only || strstr(name, only); }

static void emit(ExecCheckCounts *n, ExecCheck *c, double t0, ExecCheckSink *sink, void *user) {
    c->secs = os_now() - t0;
    if (n) {
        if (c->res == EXEC_CHECK_PASS) n->pass++;
        else if (c->res == EXEC_CHECK_FAIL) n->fail++;
        else n->skip++;
    }
    if (sink) sink(c, user);
}

static void kernel_checks(ExecCheckCounts *n, const char *only, ExecCheckSink *sink, void *user, int run) {
    ExecCheck c;
    int k = exec_selftest_count();
    if (k == 0) {
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "kernel:*");
        if (!wanted(c.name, only)) return;
        double t0 = os_now();
        if (run && need_device(&c)) set(&c, EXEC_CHECK_FAIL, "the module lists no kernel self-test");
        else if (!run) c.res = EXEC_CHECK_SKIP, snprintf(c.detail, sizeof c.detail, "load the GPU module to list them");
        emit(n, &c, t0, sink, user);
        return;
    }
    for (int i = 0; i < k; i++) {
        const ExecSelftest *t = exec_selftest_at(i);
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "kernel:%s", t->name);
        if (!wanted(c.name, only)) continue;
        double t0 = os_now(), worst = INFINITY;
        if (run && need_device(&c)) {
            OsStatus st = t->fn(&worst);
            if (st != OS_OK) set(&c, EXEC_CHECK_FAIL, "%s", os_last_error());
            else
                set(&c, worst <= 1 ? EXEC_CHECK_PASS : EXEC_CHECK_FAIL,
                    "worst |gpu-ref|/(atol+rtol|ref|) %.3g (<= 1)", worst);
            os_clear_error();
        }
        emit(n, &c, t0, sink, user);
    }
}

void exec_selftest_run(ExecCheckCounts *out, const char *only, const char *self_exe, ExecCheckSink *sink,
                       void *user) {
    memset(out, 0, sizeof *out);
    g_self_exe = self_exe;
    for (size_t i = 0; i < OS_ARRAY_LEN(CHECKS); i++) {
        if (!CHECKS[i].fn) {
            kernel_checks(out, only, sink, user, 1);
            continue;
        }
        if (!wanted(CHECKS[i].name, only)) continue;
        ExecCheck c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", CHECKS[i].name);
        double t0 = os_now();
        os_clear_error();
        CHECKS[i].fn(&c);
        emit(out, &c, t0, sink, user);
    }
    os_clear_error();
}

void exec_selftest_list(ExecCheckSink *sink, void *user) {
    for (size_t i = 0; i < OS_ARRAY_LEN(CHECKS); i++) {
        if (!CHECKS[i].fn) {
            kernel_checks(NULL, NULL, sink, user, 0);
            continue;
        }
        ExecCheck c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", CHECKS[i].name);
        if (sink) sink(&c, user);
    }
    os_clear_error();
}
