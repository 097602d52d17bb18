/* calibrate.c — see calibrate.h: the plan, the table it makes from a timer's measurements,
 * and the GPU module's timer around them. */
#include "exec/calibrate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/flash.h"
#include "exec/gpumod.h"
#include "exec/params.h"
#include "base/util.h"

void exec_calib_options_init(ExecCalibOptions *o) {
    memset(o, 0, sizeof *o);
    o->repeats = 20;
    o->warmup = 5;
    o->min_tokens = 256;
    o->max_tokens = 32768;
    o->min_len = 64;
    o->max_len = 16384;
    o->copy_bytes = 2.0 * 1073741824.0;
    o->sustain_s = 60.0; /* gpu-fryer's default burn (calib_h100.c's gemm_sustained source) */
}

static int dbl_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void add_unique(double *v, uint32_t *n, uint32_t cap, double x) {
    if (!(x > 0)) return;
    for (uint32_t i = 0; i < *n; i++)
        if (v[i] == x) return;
    if (*n < cap) v[(*n)++] = x;
}

OsStatus exec_calib_plan(ExecCalPlan *p, ExecCalNeeds *need, const ModelSpec *m, const ExecCalibOptions *o) {
    OsStatus st = OS_OK;
    double all[64];
    uint32_t na = 0;
    memset(p, 0, sizeof *p);
    memset(need, 0, sizeof *need);
    if (o->repeats < 1 || o->min_tokens < 1 || o->min_len < 1 || o->max_tokens < o->min_tokens || o->max_len < o->min_len)
        OS_FAIL(OS_ERR_ARG, "calibrate", "--repeats", NULL, "repeats >= 1 and ranges min <= max, both >= 1");
    for (double t = o->min_tokens; t <= o->max_tokens && p->n_ladder < CALIB_MAX_AXIS; t *= 2) p->ladder[p->n_ladder++] = t;
    /* every weight size of every stack and projector (DESIGN.md §2) */
    for (uint32_t e = 0; e <= m->n_enc; e++) {
        const StackSpec *s = e < m->n_enc ? &m->enc[e].stack : &m->llm;
        ExecStackLayout L;
        exec_stack_layout(&L, s);
        add_unique(all, &na, 64, L.H);
        add_unique(all, &na, 64, L.qkv_rows);
        add_unique(all, &na, 64, (double)L.nh * L.hd);
        add_unique(all, &na, 64, L.up_rows);
        add_unique(all, &na, 64, L.F);
        if (L.V) add_unique(all, &na, 64, L.V);
        if (e < m->n_enc) {
            add_unique(all, &na, 64, (double)m->enc[e].ratio * L.H);
            add_unique(all, &na, 64, m->llm.hidden);
        }
        /* the head dims the attention rows are measured at, with this stack's heads */
        int hd = (int)L.hd, have = 0;
        for (uint32_t i = 0; i < p->n_hd; i++) have |= p->hd[i] == hd;
        if (!have && p->n_hd < 4 && exec_flash_supported(hd))
            p->hd[p->n_hd] = hd, p->nh[p->n_hd] = (int)L.nh, p->nkv[p->n_hd] = (int)L.nkv, p->n_hd++;
    }
    if (p->n_hd == 0)
        OS_FAIL(OS_ERR_ARG, m->name, "head dim", "use a model with a head dim of 8..128, a multiple of 8",
                "no stack's attention runs the fused kernel");
    qsort(all, na, sizeof *all, dbl_cmp);
    {
        /* thin to what fits CALIB_MAX_GEMM cells: evenly in the sorted order, ends kept */
        uint32_t keep = CALIB_MAX_GEMM / (p->n_ladder * p->n_ladder);
        keep = OS_MIN(keep, CALIB_MAX_AXIS);
        keep = OS_MAX(keep, 1u);
        if (na <= keep) {
            for (uint32_t i = 0; i < na; i++) p->dims[i] = all[i];
            p->n_dims = na;
        } else {
            for (uint32_t i = 0; i < keep; i++) {
                uint32_t j = keep == 1 ? na - 1 : (uint32_t)llround((double)i * (na - 1) / (keep - 1));
                if (p->n_dims == 0 || p->dims[p->n_dims - 1] != all[j]) p->dims[p->n_dims++] = all[j];
            }
        }
    }
    for (double n = o->min_len; n <= o->max_len && p->n_len < CALIB_MAX_AXIS; n *= 2) p->len[p->n_len++] = (int)n;
    {
        const double L = p->ladder[p->n_ladder - 1], N = p->dims[p->n_dims - 1];
        need->gemm_a = L * L, need->gemm_b = L * N, need->gemm_c = L * N;
        need->attn_rows = p->len[p->n_len - 1];
        for (uint32_t i = 0; i < p->n_hd; i++) {
            need->attn_cols = fmax(need->attn_cols, (double)(p->nh[i] + 2 * p->nkv[i]) * p->hd[i]);
            need->attn_out_cols = fmax(need->attn_out_cols, (double)p->nh[i] * p->hd[i]);
        }
        need->copy_bytes = o->copy_bytes;
        const char *twin = getenv("ORCHSIM_ATTN");
        need->total_bytes = (twin && !strcmp(twin, "cublas") ? need->attn_rows * need->attn_rows * 12 : 0) +
                            2 * (need->gemm_a + need->gemm_b + need->gemm_c) +
                            need->attn_rows * need->attn_cols * 2 * 2 + need->attn_rows * need->attn_out_cols * (4 + 12) +
                            2 * need->copy_bytes;
    }
    if (p->n_ladder * p->n_ladder * p->n_dims > CALIB_MAX_GEMM ||
        (size_t)p->n_hd * p->n_len * 4 > CALIB_MAX_ATTN)
        OS_FAIL(OS_ERR_INTERNAL, "calibrate", "plan", NULL, "%u x %u x %u GEMM cells, %u x %u attention rows",
                p->n_ladder, p->n_dims, p->n_ladder, p->n_hd, p->n_len);
fail:
    return st;
}

/* Seconds from the timer, never 0 or NaN: a rate must be finite (a measurement is kept). */
static OsStatus timed(double *sec, const ExecCalTimer *t, const ExecCalWork *w, const ExecCalibOptions *o) {
    OsStatus st = OS_OK;
    OS_CHECK(t->time(t->ctx, w, o->repeats, o->warmup, sec));
    if (!(*sec > 0) || !isfinite(*sec))
        OS_FAIL(OS_ERR_INTERNAL, "calibrate", "timer", NULL, "a measurement of %g s", *sec);
    *sec = fmax(*sec, 1e-7); /* below CUDA events' resolution: the resolution */
fail:
    return st;
}

OsStatus exec_calibrate_run(Calib *c, const ModelSpec *m, const ExecCalibOptions *o, const ExecCalTimer *t,
                            const ExecDeviceInfo *info) {
    OsStatus st = OS_OK;
    ExecCalPlan p;
    ExecCalNeeds need;
    ExecCalWork w;
    char buf[128];
    double best = 0, sec = 0;
    memset(c, 0, sizeof *c);
    OS_CHECK(exec_calib_plan(&p, &need, m, o));
    /* GEMMs: the whole grid, every cell kept (calib_validate clamps noise) */
    for (uint32_t i = 0; i < p.n_ladder; i++)
        for (uint32_t j = 0; j < p.n_dims; j++)
            for (uint32_t l = 0; l < p.n_ladder; l++) {
                memset(&w, 0, sizeof w);
                w.kind = EXEC_CW_GEMM, w.m = (int)p.ladder[i], w.n = (int)p.dims[j], w.k = (int)p.ladder[l];
                OS_CHECK(timed(&sec, t, &w, o));
                double rate = 2.0 * w.m * w.n * w.k / sec;
                best = fmax(best, rate);
                OS_CHECK(calib_add_gemm(c, w.m, w.n, w.k, rate));
                if (o->verbose)
                    fprintf(stderr, "# gemm m=%d n=%d k=%d  %.3f us  %.1f TFLOP/s (measured)\n", w.m, w.n, w.k, sec * 1e6,
                            rate / 1e12);
            }
    /* attention through the fused kernel: FlashAttention's FLOP convention (cost.h) */
    for (uint32_t h = 0; h < p.n_hd; h++)
        for (int dir = 0; dir < 2; dir++)
            for (int causal = 0; causal < 2; causal++)
                for (uint32_t q = 0; q < p.n_len; q++) {
                    memset(&w, 0, sizeof w);
                    w.kind = EXEC_CW_ATTN, w.dir = dir, w.causal = causal, w.len = p.len[q];
                    w.nh = p.nh[h], w.nkv = p.nkv[h], w.hd = p.hd[h];
                    OS_CHECK(timed(&sec, t, &w, o));
                    double fl = 4.0 * w.len * (double)w.len * w.hd * w.nh * (causal ? 0.5 : 1.0) * (dir ? 2.5 : 1.0);
                    OS_CHECK(calib_add_attn(c, (AttnDir)dir, causal, (uint32_t)w.hd, w.len, fl / sec));
                    best = fmax(best, fl / sec);
                    if (o->verbose)
                        fprintf(stderr, "# attn %s %s hd=%d heads=%d/%d n=%d  %.3f us  %.1f TFLOP/s (measured)\n",
                                dir ? "bwd" : "fwd", causal ? "causal" : "full", w.hd, w.nh, w.nkv, w.len, sec * 1e6,
                                fl / sec / 1e12);
                }
    /* HBM: a streaming copy, bytes read + written */
    memset(&w, 0, sizeof w);
    w.kind = EXEC_CW_COPY, w.bytes = floor(o->copy_bytes / 16) * 16;
    OS_CHECK(timed(&sec, t, &w, o));
    c->hbm_bw = fmin(2.0 * w.bytes / sec, 1e15);
    /* one tiny kernel's GPU time, event to event */
    memset(&w, 0, sizeof w);
    w.kind = EXEC_CW_LAUNCH;
    OS_CHECK(timed(&c->kernel_launch_s, t, &w, o));
    c->kernel_launch_s = fmin(c->kernel_launch_s, 1e-2);
    /* overlap: a large GEMM alone and beside the copy proxy */
    {
        double alone = 0, beside = 0;
        memset(&w, 0, sizeof w);
        w.kind = EXEC_CW_GEMM, w.m = (int)fmin(8192, p.ladder[p.n_ladder - 1]), w.k = w.m;
        w.n = (int)p.dims[p.n_dims - 1];
        for (uint32_t j = 0; j < p.n_dims; j++)
            if (p.dims[j] <= 8192) w.n = (int)p.dims[j];
        OS_CHECK(timed(&alone, t, &w, o));
        w.kind = EXEC_CW_GEMM_BESIDE;
        OS_CHECK(timed(&beside, t, &w, o));
        c->overlap_slowdown = fmin(fmax(0.0, 1.0 - alone / beside), 0.95);
        snprintf(buf, sizeof buf, "measured: %dx%dx%d GEMM alone %.1f us, beside a %d-CTA HBM copy %.1f us (NCCL proxy)",
                 w.m, w.n, w.k, alone * 1e6, EXEC_CAL_PROXY_CTAS, beside * 1e6);
        OS_CHECK(calib_set_meta(c, "overlap_slowdown_source", buf));
        /* sustained: the same GEMM for sustain_s seconds, timed over the second half */
        if (o->sustain_s > 0) {
            double half = 0.5 * o->sustain_s / alone, sust = 0;
            uint32_t nw = (uint32_t)fmin(ceil(half), 4e9), nr = (uint32_t)fmin(fmax(ceil(half), 1), 1e6);
            w.kind = EXEC_CW_GEMM;
            OS_CHECK(t->time(t->ctx, &w, nr, nw, &sust));
            if (!(sust > 0) || !isfinite(sust))
                OS_FAIL(OS_ERR_INTERNAL, "calibrate", "timer", NULL, "a sustained measurement of %g s", sust);
            c->gemm_sustained = 2.0 * w.m * w.n * (double)w.k / sust;
            c->gemm_sustained_mnk[0] = w.m, c->gemm_sustained_mnk[1] = w.n, c->gemm_sustained_mnk[2] = w.k;
            best = fmax(best, c->gemm_sustained);
            snprintf(buf, sizeof buf, "measured: %dx%dx%d GEMMs back to back, %u untimed then median of %u (%.0f s)",
                     w.m, w.n, w.k, nw, nr, o->sustain_s);
            OS_CHECK(calib_set_meta(c, "gemm_sustained_source", buf));
            if (o->verbose)
                fprintf(stderr, "# gemm sustained %dx%dx%d  %.1f TFLOP/s against %.1f burst (measured)\n", w.m, w.n, w.k,
                        c->gemm_sustained / 1e12, 2.0 * w.m * w.n * (double)w.k / alone / 1e12);
        }
    }
    /* peak: 4096 dense bf16 FLOP per SM per clock on sm_90 (989.4e12 / (132 x 1830 MHz),
     * REFERENCE.md §D.4); raised to the best measured rate if that is higher */
    if (info->cc_major == 9 && info->cc_minor == 0 && info->sms > 0 && info->sm_clock_mhz > 0) {
        c->peak_flops = 4096.0 * info->sms * info->sm_clock_mhz * 1e6;
        OS_CHECK(calib_set_meta(c, "peak_source", "4096 FLOP/clk/SM x SMs x max SM clock (sm_90)"));
    } else {
        c->peak_flops = best;
        OS_CHECK(calib_set_meta(c, "peak_source", "best measured rate (not an sm_90 device)"));
    }
    if (best > c->peak_flops) {
        c->peak_flops = best;
        OS_CHECK(calib_set_meta(c, "peak_source", "best measured rate (above 4096 x SMs x clock)"));
    }
    snprintf(c->device, sizeof c->device, "%s", info->name);
    snprintf(c->stack, sizeof c->stack, "CUDA %d.%d (static cudart), driver %d.%d, cuBLAS %d.%d.%d; bf16 in, fp32 accumulate",
             info->runtime_version / 1000, info->runtime_version % 1000 / 10, info->driver_version / 1000,
             info->driver_version % 1000 / 10, info->cublas_version / 10000, info->cublas_version / 100 % 100,
             info->cublas_version % 100);
    if (getenv("ORCHSIM_ATTN") && !strcmp(getenv("ORCHSIM_ATTN"), "cublas"))
        snprintf(c->attn_kernel, sizeof c->attn_kernel, "orchsim cuBLAS twin: per-head GEMMs + softmax (exec/attn.cu)");
    else
        snprintf(c->attn_kernel, sizeof c->attn_kernel, "orchsim fused varlen attention (exec/flash.cu, WMMA bf16)");
    snprintf(buf, sizeof buf, "%.0f", info->sm_clock_mhz);
    OS_CHECK(calib_set_meta(c, "sm_clock_mhz", buf));
    snprintf(buf, sizeof buf, "%.0f", info->mem_clock_mhz);
    OS_CHECK(calib_set_meta(c, "mem_clock_mhz", buf));
    snprintf(buf, sizeof buf, "%d", info->sms);
    OS_CHECK(calib_set_meta(c, "sms", buf));
    OS_CHECK(calib_set_meta(c, "hbm_source", "measured: 16-byte streaming copy kernel, read + write"));
    OS_CHECK(calib_set_meta(c, "kernel_launch_source", "measured: one tiny kernel between two CUDA events"));
    snprintf(buf, sizeof buf, "%s, repeats=%u warmup=%u, median", m->name, o->repeats, o->warmup);
    OS_CHECK(calib_set_meta(c, "measured_for", buf));
    OS_CHECK(calib_validate(c, "calibrate"));
fail:
    return st;
}

typedef struct {
    const ExecGpuApi *g;
    void *ctx;
} GpuTimer;

static OsStatus gpu_time(void *ctx, const ExecCalWork *w, uint32_t repeats, uint32_t warmup, double *sec) {
    const GpuTimer *t = ctx;
    return t->g->cal_time(t->ctx, w, repeats, warmup, sec);
}

OsStatus exec_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o) {
    OsStatus st = OS_OK;
    const ExecGpuApi *g = NULL;
    GpuTimer gt = {NULL, NULL};
    ExecCalTimer t = {&gt, gpu_time};
    ExecDeviceInfo info;
    ExecCalPlan p;
    ExecCalNeeds need;
    int n = 0;
    memset(c, 0, sizeof *c);
    OS_CHECK(exec_gpu_api(&g));
    gt.g = g;
    OS_CHECK(exec_gpu_count(&n, NULL, 0));
    OS_CHECK(exec_gpu_info(&info, 0));
    OS_CHECK(exec_calib_plan(&p, &need, m, o));
    OS_CHECK(g->cal_open(&gt.ctx, &need));
    OS_CHECK(exec_calibrate_run(c, m, o, &t, &info));
fail:
    if (g && gt.ctx) g->cal_close(gt.ctx);
    return st;
}
