/* fidelity.c — see fidelity.h. A row becomes: the model preset with its position table at the
 * row's sequence length (llm-foundry sets max_seq_len to the benchmark's length), a cluster of
 * `gpus` GPUs with the row's calibration (peak, link figures, kernel rates), a text-only trace
 * of global_batch sequences of seq_len tokens dealt to gpus / (tp x pp x cp) ranks, and one
 * replay under policy `none` (every rank is identical, so there is no balancing to do): the
 * simulated step time gives tokens/s/GPU. */
#include "analysis/fidelity.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analysis/csv.h"
#include "base/util.h"
#include "sim/model.h"
#include "sim/net.h"
#include "sim/policy.h"
#include "traces/trace.h"

/* ---- the runs table ---------------------------------------------------------------------- */

static OsStatus col_u32(uint32_t *out, const CsvTable *t, size_t row, int col, uint32_t lo, const char *name) {
    OsStatus st = OS_OK;
    double v;
    OS_CHECK(csv_num(&v, t, row, (size_t)col));
    if (!(v >= lo) || v > 4e9 || v != floor(v)) {
        char f[96];
        snprintf(f, sizeof f, "line %zu: column %s", csv_line(t, row), name);
        OS_FAIL(OS_ERR_FORMAT, csv_path(t), f, NULL, "'%s' is not a whole number >= %u", csv_str(t, row, (size_t)col), lo);
    }
    *out = (uint32_t)v;
fail:
    return st;
}

static int truthy(const char *s) { return !strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "1"); }

/* A runs table's columns: this file format's own names, and the spellings of llm-foundry's
 * benchmark tables, which scripts/train/benchmarking/collect_results.py writes to its
 * results.csv and the README's tables ("Model", "SeqLen (T)", "# GPUs", "MicroBatchSize",
 * "GradAccum", "GlobalBatchSize", "Throughput (T/s/GPU)", "Sharding Strategy", "Activation
 * Checkpointing", "MFU", "HFU", "NumParams", "GPU", "Precision", "MP Mode"). Names compare
 * without case, blanks and punctuation, so "# GPUs" reads as gpus and "MP Mode" as mp_mode,
 * while "GlobalBatchSize (T)" (tokens) stays apart from "GlobalBatchSize" (sequences). */
static const struct {
    const char *name, *alias[3];
} RUN_COLS[] = {
    {"model", {"model_size", "model_name", NULL}},
    {"seq_len", {"SeqLen (T)", "sequence_length", "max_seq_len"}},
    {"gpus", {"num_gpus", "n_gpus", "world_size"}},
    {"micro_batch", {"MicroBatchSize", "micro_batch_size", "device_train_microbatch_size"}},
    {"grad_accum", {"gradient_accumulation_steps", NULL, NULL}},
    {"global_batch", {"GlobalBatchSize", "global_batch_size", "global_train_batch_size"}},
    {"tokens_per_s_per_gpu", {"Throughput (T/s/GPU)", "tokens_per_sec_per_gpu", NULL}},
    {"sharding", {"Sharding Strategy", "sharding_strategy", NULL}},
    {"activation_checkpointing", {NULL, NULL, NULL}},
    {"mfu_pct", {"MFU", NULL, NULL}},
    {"hfu_pct", {"HFU", NULL, NULL}},
    {"gpu", {"gpu_type", NULL, NULL}},
};

/* s without case, blanks and punctuation ('#' too: "# GPUs" is gpus) */
static void col_key(char *out, size_t cap, const char *s) {
    size_t k = 0;
    for (; *s && k + 1 < cap; s++)
        if (isalnum((unsigned char)*s)) out[k++] = (char)tolower((unsigned char)*s);
    out[k] = '\0';
}

static int col_is(const char *header, const char *name) {
    char a[96], b[96];
    col_key(a, sizeof a, header);
    col_key(b, sizeof b, name);
    return a[0] && !strcmp(a, b);
}

/* Is header h the column `name`, or one of its spellings? */
static int is_run_col(const char *h, const char *name) {
    if (col_is(h, name)) return 1;
    for (size_t k = 0; k < sizeof RUN_COLS / sizeof RUN_COLS[0]; k++)
        if (!strcmp(RUN_COLS[k].name, name))
            for (int a = 0; a < 3 && RUN_COLS[k].alias[a]; a++)
                if (col_is(h, RUN_COLS[k].alias[a])) return 1;
    return 0;
}

/* The column of `name` (or one of its spellings), or -1. */
static int run_col(const CsvTable *t, const char *name) {
    for (size_t c = 0; c < csv_n_cols(t); c++)
        if (is_run_col(csv_col_name(t, c), name)) return (int)c;
    return -1;
}

static OsStatus run_col_require(int *col, const CsvTable *t, const char *name) {
    *col = run_col(t, name);
    if (*col >= 0) return OS_OK;
    char also[160] = "";
    for (size_t k = 0; k < sizeof RUN_COLS / sizeof RUN_COLS[0]; k++)
        if (!strcmp(RUN_COLS[k].name, name))
            for (int a = 0; a < 3 && RUN_COLS[k].alias[a]; a++) {
                size_t u = strlen(also);
                snprintf(also + u, sizeof also - u, "%s\"%s\"", u ? ", " : " (or ", RUN_COLS[k].alias[a]);
            }
    if (also[0]) strncat(also, ")", sizeof also - strlen(also) - 1);
    return os_fail(OS_ERR_FORMAT, csv_path(t), name, "see bench/fidelity/README.md for a runs table's columns",
                   "no column %s%s in the header", name, also);
}

/* A markdown table holds runs when its header names a model and a GPU count. */
static int runs_header(const char *const *names, size_t n, void *arg) {
    (void)arg;
    int model = 0, gpus = 0;
    for (size_t c = 0; c < n; c++) model |= is_run_col(names[c], "model"), gpus |= is_run_col(names[c], "gpus");
    return model && gpus;
}

OsStatus fid_read_runs(FidRun **runs, size_t *n, const char *path) {
    size_t skipped;
    return fid_read_runs_md(runs, n, &skipped, path);
}

OsStatus fid_read_runs_md(FidRun **runs, size_t *n, size_t *skipped_tables, const char *path) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    FidRun *r = NULL;
    *runs = NULL, *n = 0, *skipped_tables = 0;
    OS_CHECK(csv_read_where(&t, path, runs_header, NULL));
    *skipped_tables = csv_n_skipped(t);
    int c_model, c_seq, c_gpus, c_mb, c_ga, c_gb, c_tps, c_shard, c_ckpt;
    OS_CHECK(run_col_require(&c_model, t, "model"));
    OS_CHECK(run_col_require(&c_seq, t, "seq_len"));
    OS_CHECK(run_col_require(&c_gpus, t, "gpus"));
    OS_CHECK(run_col_require(&c_mb, t, "micro_batch"));
    OS_CHECK(run_col_require(&c_ga, t, "grad_accum"));
    OS_CHECK(run_col_require(&c_gb, t, "global_batch"));
    OS_CHECK(run_col_require(&c_tps, t, "tokens_per_s_per_gpu"));
    OS_CHECK(run_col_require(&c_shard, t, "sharding"));
    OS_CHECK(run_col_require(&c_ckpt, t, "activation_checkpointing"));
    int c_mfu = run_col(t, "mfu_pct"), c_hfu = run_col(t, "hfu_pct"), c_np = run_col(t, "num_params");
    int c_gpn = run_col(t, "gpus_per_node"), c_tp = run_col(t, "tp"), c_peak = run_col(t, "peak_tflops");
    int c_mp = run_col(t, "mp_mode");
    int c_pp = run_col(t, "pp"), c_cp = run_col(t, "cp"), c_vp = run_col(t, "vp");
    int c_sp = run_col(t, "sequence_parallel"), c_cal = run_col(t, "calibration"), c_conv = run_col(t, "mfu_convention");
    int c_gpu = run_col(t, "gpu"), c_prec = run_col(t, "precision");
    size_t rows = csv_n_rows(t);
    if (rows == 0) OS_FAIL(OS_ERR_FORMAT, path, NULL, "one row per published run", "no rows");
    r = calloc(rows, sizeof *r);
    ALLOC_CHECK(r);
    for (size_t i = 0; i < rows; i++) {
        FidRun *x = &r[i];
        char f[96];
        x->line = csv_line(t, i);
        snprintf(f, sizeof f, "line %zu: column model", x->line);
        const char *m = csv_str(t, i, (size_t)c_model);
        if (!*m || strlen(m) >= sizeof x->model) OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "empty or longer than 63");
        strcpy(x->model, m);
        OS_CHECK(col_u32(&x->seq_len, t, i, c_seq, 1, "seq_len"));
        OS_CHECK(col_u32(&x->gpus, t, i, c_gpus, 1, "gpus"));
        OS_CHECK(col_u32(&x->micro_batch, t, i, c_mb, 1, "micro_batch"));
        OS_CHECK(col_u32(&x->grad_accum, t, i, c_ga, 1, "grad_accum"));
        OS_CHECK(col_u32(&x->global_batch, t, i, c_gb, 1, "global_batch"));
        x->gpus_per_node = 8, x->tp = 1;
        if (c_gpn >= 0 && *csv_str(t, i, (size_t)c_gpn)) OS_CHECK(col_u32(&x->gpus_per_node, t, i, c_gpn, 1, "gpus_per_node"));
        if (c_tp >= 0 && *csv_str(t, i, (size_t)c_tp)) OS_CHECK(col_u32(&x->tp, t, i, c_tp, 1, "tp"));
        x->pp = x->cp = x->vp = 1;
        if (c_pp >= 0 && *csv_str(t, i, (size_t)c_pp)) OS_CHECK(col_u32(&x->pp, t, i, c_pp, 1, "pp"));
        if (c_cp >= 0 && *csv_str(t, i, (size_t)c_cp)) OS_CHECK(col_u32(&x->cp, t, i, c_cp, 1, "cp"));
        if (c_vp >= 0 && *csv_str(t, i, (size_t)c_vp)) OS_CHECK(col_u32(&x->vp, t, i, c_vp, 1, "vp"));
        OS_CHECK(csv_num(&x->tps_pub, t, i, (size_t)c_tps));
        snprintf(f, sizeof f, "line %zu: column tokens_per_s_per_gpu", x->line);
        if (!(x->tps_pub > 0)) OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "must be a positive number");
        const char *sh = csv_str(t, i, (size_t)c_shard);
        snprintf(f, sizeof f, "line %zu: column sharding", x->line);
        if (!strcmp(sh, "FULL_SHARD")) x->setup = SETUP_FSDP;
        else if (!strcmp(sh, "SHARD_GRAD_OP")) x->setup = SETUP_FSDP_GRAD_OP;
        else if (!strcmp(sh, "NO_SHARD") || !strcmp(sh, "DDP")) x->setup = SETUP_DDP;
        /* Megatron-LM's distributed optimizer (ZeRO-1 over DP): bf16 weights whole, gradients
         * reduce-scattered, parameters all-gathered after the step — SHARD_GRAD_OP's collectives */
        else if (!strcmp(sh, "DIST_OPT")) x->setup = SETUP_FSDP_GRAD_OP;
        else OS_FAIL(OS_ERR_FORMAT, path, f, "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD or DIST_OPT", "'%s' is not a sharding strategy", sh);
        snprintf(x->sharding, sizeof x->sharding, "%s", sh);
        x->ckpt = truthy(csv_str(t, i, (size_t)c_ckpt));
        x->reduce_bytes = 4;
        if (c_mp >= 0 && *csv_str(t, i, (size_t)c_mp)) {
            const char *mp = csv_str(t, i, (size_t)c_mp);
            snprintf(f, sizeof f, "line %zu: column mp_mode", x->line);
            /* Composer's FSDP mixed-precision modes, or the gradient reduction's dtype by name
             * (Megatron-LM's fp16 runs all-reduce fp16 gradients unless
             * --accumulate-allreduce-grads-in-fp32) */
            if (!strcmp(mp, "DEFAULT") || !strcmp(mp, "FULL") || !strcmp(mp, "fp32")) x->reduce_bytes = 4;
            else if (!strcmp(mp, "PURE") || !strcmp(mp, "fp16") || !strcmp(mp, "bf16")) x->reduce_bytes = 2;
            else OS_FAIL(OS_ERR_FORMAT, path, f,
                         "DEFAULT, PURE or FULL (Composer's FSDP mixed precision), or the gradient reduction dtype fp32, fp16, bf16",
                         "'%s'", mp);
        }
        x->sp = -1;
        if (c_sp >= 0 && *csv_str(t, i, (size_t)c_sp)) {
            const char *v = csv_str(t, i, (size_t)c_sp);
            snprintf(f, sizeof f, "line %zu: column sequence_parallel", x->line);
            if (truthy(v)) x->sp = 1;
            else if (!strcmp(v, "False") || !strcmp(v, "false") || !strcmp(v, "0")) x->sp = 0;
            else OS_FAIL(OS_ERR_FORMAT, path, f, "True or False", "'%s'", v);
        }
        x->flops = FID_FLOPS_PALM;
        if (c_conv >= 0 && *csv_str(t, i, (size_t)c_conv)) {
            const char *v = csv_str(t, i, (size_t)c_conv);
            snprintf(f, sizeof f, "line %zu: column mfu_convention", x->line);
            if (!strcmp(v, "palm")) x->flops = FID_FLOPS_PALM;
            else if (!strcmp(v, "megatron-eq3")) x->flops = FID_FLOPS_MEGATRON_EQ3;
            else OS_FAIL(OS_ERR_FORMAT, path, f, "palm (6N + 12 L h s per token) or megatron-eq3 (arXiv 2104.04473 eq. 3)",
                         "'%s' is not a FLOP convention", v);
        }
        /* the free-text columns, copied as written ("" when absent) */
        const struct {
            int col;
            char *dst;
            size_t cap;
            const char *name;
        } txt[3] = {{c_cal, x->calibration, sizeof x->calibration, "calibration"},
                    {c_gpu, x->gpu, sizeof x->gpu, "gpu"},
                    {c_prec, x->precision, sizeof x->precision, "precision"}};
        for (int k = 0; k < 3; k++) {
            txt[k].dst[0] = '\0';
            if (txt[k].col < 0) continue;
            const char *v = csv_str(t, i, (size_t)txt[k].col);
            snprintf(f, sizeof f, "line %zu: column %s", x->line, txt[k].name);
            if (strlen(v) >= txt[k].cap) OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "longer than %zu characters", txt[k].cap - 1);
            strcpy(txt[k].dst, v);
        }
        x->mfu_pub = x->hfu_pub = x->num_params = x->peak_flops = NAN;
        if (c_mfu >= 0) {
            OS_CHECK(csv_num(&x->mfu_pub, t, i, (size_t)c_mfu));
            x->mfu_pub /= 100;
        }
        if (c_hfu >= 0) {
            OS_CHECK(csv_num(&x->hfu_pub, t, i, (size_t)c_hfu));
            x->hfu_pub /= 100;
        }
        if (c_np >= 0) OS_CHECK(csv_num(&x->num_params, t, i, (size_t)c_np));
        if (c_peak >= 0) {
            OS_CHECK(csv_num(&x->peak_flops, t, i, (size_t)c_peak));
            x->peak_flops *= 1e12;
        }
    }
    *runs = r, *n = rows;
    r = NULL;
fail:
    free(r);
    csv_destroy(t);
    return st;
}

/* ---- the rows' calibration tables ------------------------------------------------------------ */

struct FidCalibs {
    size_t n;
    char (*name)[256]; /* [n] the column's text */
    Calib *calib;      /* [n] */
};

void fid_calib_path(char *out, size_t cap, const char *calibration, const char *dir) {
    if (calibration[0] == '/' || !dir || !*dir) snprintf(out, cap, "%s", calibration);
    else snprintf(out, cap, "%s/%s", dir, calibration);
}

void fid_calibs_destroy(FidCalibs *c) {
    if (!c) return;
    free(c->name);
    free(c->calib);
    free(c);
}

const Calib *fid_calibs_get(const FidCalibs *c, const char *calibration) {
    for (size_t i = 0; c && i < c->n; i++)
        if (!strcmp(c->name[i], calibration)) return &c->calib[i];
    return NULL;
}

OsStatus fid_calibs_load(FidCalibs **out, const FidRun *runs, size_t n, const char *dir, const char *runs_path) {
    OsStatus st = OS_OK;
    FidCalibs *c = calloc(1, sizeof *c);
    ALLOC_CHECK(c);
    *out = NULL;
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) distinct += runs[i].calibration[0] != '\0';
    if (distinct) {
        c->name = calloc(distinct, sizeof *c->name);
        c->calib = calloc(distinct, sizeof *c->calib);
        ALLOC_CHECK(c->name);
        ALLOC_CHECK(c->calib);
    }
    for (size_t i = 0; i < n; i++) {
        const char *cal = runs[i].calibration;
        if (!cal[0] || fid_calibs_get(c, cal)) continue;
        char p[4096];
        fid_calib_path(p, sizeof p, cal, dir);
        if (calib_load(&c->calib[c->n], p) != OS_OK) {
            char f[96], e[600];
            snprintf(e, sizeof e, "%s", os_last_error());
            os_clear_error(); /* the runs file's line first, then the table's own error */
            snprintf(f, sizeof f, "line %zu: column calibration", runs[i].line);
            OS_FAIL(OS_ERR_FORMAT, runs_path, f, "a file name under bench/fidelity/calib/ or an absolute path", "%s", e);
        }
        snprintf(c->name[c->n], sizeof c->name[0], "%s", cal);
        c->n++;
    }
    *out = c;
    c = NULL;
fail:
    fid_calibs_destroy(c);
    return st;
}

double fid_flops_per_token(int flops, const ModelSpec *m, uint32_t seq, double num_params) {
    const StackSpec *s = &m->llm;
    double l = s->layers, h = s->hidden, V = s->vocab, S = seq;
    if (flops == FID_FLOPS_MEGATRON_EQ3) /* eq. (3) over the B s tokens of the batch */
        return 96.0 * l * h * h * (1.0 + S / (6.0 * h) + V / (16.0 * l * h));
    double N = isnan(num_params) ? (double)model_params(m) : num_params;
    return 6.0 * N + 12.0 * l * h * S;
}

/* ---- one prediction ------------------------------------------------------------------------ */

static void why(FidResult *res, const char *fmt, const char *detail) {
    res->ok = 0;
    snprintf(res->why, sizeof res->why, fmt, detail ? detail : "");
}

/* The os error text without the "file: " noise, for the "not reproducible" column. */
static const char *last_error_short(void) { return os_has_error() ? os_last_error() : "failed"; }

static OsStatus mkdir_p(const char *dir) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, 0777) != 0 && errno != EEXIST)
                return os_fail(OS_ERR_IO, tmp, NULL, NULL, "cannot create: %s", strerror(errno));
            *p = '/';
        }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return os_fail(OS_ERR_IO, tmp, NULL, NULL, "cannot create: %s", strerror(errno));
    return OS_OK;
}

/* The fixed-length text trace of a row: steps x global_batch sequences of seq_len, dp ranks.
 * Written once per (seq_len, batch, dp, steps) and reused. */
static OsStatus fixed_trace(char *path, size_t cap, const FidOptions *o, uint32_t seq, uint32_t gb, uint32_t dp) {
    OsStatus st = OS_OK;
    TraceWriter *w = NULL;
    TraceStep s;
    trace_step_init(&s);
    OS_CHECK(mkdir_p(o->traces_dir));
    snprintf(path, cap, "%s/text-s%u-b%u-dp%u-k%llu.h5", o->traces_dir, seq, gb, dp, (unsigned long long)o->steps);
    struct stat sb;
    if (stat(path, &sb) == 0) return OS_OK; /* written atomically before: complete */
    uint32_t nm = 0;
    const TraceModality *mods = trace_std_modalities(&nm);
    TraceProvenance prov;
    memset(&prov, 0, sizeof prov);
    snprintf(prov.source, sizeof prov.source, "fidelity fixed-length text: seq_len=%u global_batch=%u dp=%u steps=%llu",
             seq, gb, dp, (unsigned long long)o->steps);
    snprintf(prov.created_by, sizeof prov.created_by, "orchsim fidelity");
    OS_CHECK(trace_writer_create(&w, path, mods, 1, &prov, 0));
    for (uint64_t k = 0; k < o->steps; k++) {
        trace_step_clear(&s);
        s.index = k;
        s.dp = dp;
        for (uint32_t i = 0; i < gb; i++) OS_CHECK(trace_step_push(&s, seq, k * gb + i, NULL, 0));
        OS_CHECK(trace_writer_add_step(w, &s));
    }
    TraceWriter *ww = w;
    w = NULL;
    OS_CHECK(trace_writer_close(ww));
fail:
    if (w) trace_writer_abort(w);
    trace_step_free(&s);
    return st;
}

static int have_model(const char *name, const char *dir, char *file, size_t cap) {
    file[0] = '\0';
    if (model_preset_find(name)) return 1;
    if (!dir) return 0;
    snprintf(file, cap, "%s/%s.model", dir, name);
    FILE *fp = fopen(file, "r");
    if (fp) fclose(fp);
    else file[0] = '\0';
    return fp != NULL;
}

/* A bare model size as llm-foundry's tables write their Model column: "760m", "7b", "1.3b". */
static int bare_size(const char *s) {
    size_t i = 0, d = 0;
    while (isdigit((unsigned char)s[i]) || (s[i] == '.' && d)) d += isdigit((unsigned char)s[i++]) != 0;
    return d && (s[i] == 'm' || s[i] == 'b') && !s[i + 1];
}

/* A row's model: a built-in preset, DIR/<name>.model or a preset file's path; else the name in
 * lower case (MPT-7B), and a bare size as mpt-<size> (llm-foundry's tables name their MPT
 * models by size only). `as` gets the name used when it is not the row's own (else ""). */
static OsStatus resolve_model(ModelSpec *m, const char *name, const char *dir, char *as, size_t cap) {
    char file[4096], low[64], mpt[80];
    as[0] = '\0';
    if (have_model(name, dir, file, sizeof file)) return file[0] ? model_load_file(m, file) : model_resolve(m, name);
    size_t k = 0;
    for (; name[k] && k + 1 < sizeof low; k++) low[k] = (char)tolower((unsigned char)name[k]);
    low[k] = '\0';
    snprintf(mpt, sizeof mpt, "mpt-%s", low);
    const char *try[2] = {low, bare_size(low) ? mpt : NULL};
    for (int i = 0; i < 2; i++)
        if (try[i] && strcmp(try[i], name) && have_model(try[i], dir, file, sizeof file)) {
            snprintf(as, cap, "%s", try[i]);
            return file[0] ? model_load_file(m, file) : model_resolve(m, try[i]);
        }
    return model_resolve(m, name);
}

/* Case-insensitive substring test; word = 1: only where a word starts ("h200" is not in
 * "gh200"). */
static int ci_has(const char *hay, const char *needle, int word) {
    size_t n = strlen(needle);
    for (const char *h = hay; *h; h++) {
        if (word && h > hay && isalnum((unsigned char)h[-1])) continue;
        size_t k = 0;
        while (k < n && h[k] && tolower((unsigned char)h[k]) == tolower((unsigned char)needle[k])) k++;
        if (k == n) return 1;
    }
    return 0;
}

/* Does a table's device (its `device` text, e.g. "NVIDIA H100 SXM5 80GB ...") stand for the
 * row's GPU as llm-foundry's tables name it (h100_80gb, a100_40gb, ...)? The model family
 * (H100, H200, A100, ...) must appear in both, and a PCIe part in both or neither. */
static int gpu_matches(const char *gpu, const char *device) {
    static const char *const fam[] = {"h100", "h200", "h800", "gh200", "a100", "a800", "b200", "gb200", "l40", "v100", "mi300", "mi250"};
    int found = 0;
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        if (!ci_has(gpu, fam[i], 1)) continue;
        found = 1;
        if (!ci_has(device, fam[i], 1)) return 0;
    }
    if (!found) return 0; /* a GPU we cannot place: never assume it is the table's */
    if (ci_has(gpu, "pcie", 0) != ci_has(device, "pcie", 0)) return 0;
    if ((ci_has(gpu, "40gb", 0) && ci_has(device, "80gb", 0)) || (ci_has(gpu, "80gb", 0) && ci_has(device, "40gb", 0)))
        return 0;
    return 1;
}

typedef struct {
    double exposed_comm, slowed, gemm, attn, mem, opt, tp, bubble, p2p;
    uint32_t mb;
    uint64_t n;
} StepAcc;

static OsStatus on_step(const StepResult *r, void *user) {
    StepAcc *a = user;
    a->exposed_comm += r->comm_s;
    a->tp += r->tp_comm_s, a->bubble += r->bubble_s, a->p2p += r->p2p_s;
    a->slowed += r->slowed_s;
    a->gemm += r->gemm_s, a->attn += r->attn_s, a->mem += r->mem_s, a->opt += r->optimizer_s;
    a->mb = r->micro_batches;
    a->n++;
    return OS_OK;
}

OsStatus fid_predict(FidResult *res, const FidRun *run, const FidOptions *o) {
    OsStatus st = OS_OK;
    Trace *t = NULL;
    Calib *own = NULL; /* the row's table when no cache holds it */
    ModelSpec m;
    memset(res, 0, sizeof *res);
    res->run = *run;
    res->ok = 1;
    res->tps_pred = res->err = res->mfu_pred = res->hfu_pred = NAN;
    res->state_bytes = res->act_bytes = res->gpu_bytes = NAN;
    char path[4096];
    const Calib *cal = o->calib;
    if (run->calibration[0]) {
        cal = fid_calibs_get(o->calibs, run->calibration);
        if (!cal) {
            own = malloc(sizeof *own);
            ALLOC_CHECK(own);
            fid_calib_path(path, sizeof path, run->calibration, o->calib_dir);
            OS_CHECK(calib_load(own, path));
            cal = own;
        }
    }
    snprintf(res->calib_name, sizeof res->calib_name, "%s", cal->name);
    /* what no table here prices: 8- or 32-bit GEMMs, and a GPU the row's table is not for */
    if (run->precision[0] && (ci_has(run->precision, "fp8", 0) || ci_has(run->precision, "fp32", 0) ||
                              ci_has(run->precision, "int8", 0))) {
        res->ok = 0;
        snprintf(res->why, sizeof res->why, "precision %s: the cost model's GEMM and attention rates are 16-bit "
                 "(bf16/fp16); no calibration here has such rates", run->precision);
        goto fail;
    }
    if (run->gpu[0] && !run->calibration[0] && !gpu_matches(run->gpu, cal->device)) {
        const char *d = cal->device[0] ? cal->device : "another GPU";
        int dl = (int)strcspn(d, "("); /* the device's name, without its "(published ...)" note */
        while (dl > 0 && d[dl - 1] == ' ') dl--;
        res->ok = 0;
        snprintf(res->why, sizeof res->why, "gpu %.31s: table %.40s is for %.*s; give the row a calibration column "
                 "naming its GPU's table (calib/a100-megatron.calib: A100, Megatron-LM 2021) or measure one with "
                 "orchsim calibrate", run->gpu, cal->name, dl > 60 ? 60 : dl, d);
        goto fail;
    }
    os_clear_error();
    char model_as[80];
    if (resolve_model(&m, run->model, o->models_dir, model_as, sizeof model_as) != OS_OK) {
        why(res, "model: %s", last_error_short());
        goto fail;
    }
    if (m.n_enc) {
        why(res, "model %s has encoders: the runs table is text-only", m.name);
        goto fail;
    }
    /* the benchmark sets max_seq_len to its sequence length (the learned position table) */
    if (m.max_seq < run->seq_len || m.llm.pos == POS_LEARNED) m.max_seq = run->seq_len;
    res->params_ours = (double)model_params(&m);
    uint64_t mp = (uint64_t)(run->tp ? run->tp : 1) * (run->pp ? run->pp : 1) * (run->cp ? run->cp : 1);
    uint32_t dp = (uint32_t)(run->gpus / mp);
    if (run->tp == 0 || run->gpus % mp || dp == 0) {
        why(res, "%s", "tp x pp x cp does not divide the GPU count");
        goto fail;
    }
    if (run->global_batch % dp) {
        char d[96];
        snprintf(d, sizeof d, "global batch %u does not divide by DP %u", run->global_batch, dp);
        why(res, "%s", d);
        goto fail;
    }
    /* the fixed-length trace holds every sequence of the global batch: bounded, so that a
     * hostile row is refused here instead of filling the host's memory */
    if (run->seq_len >= TRACE_MAX_LEN || run->global_batch > FID_MAX_GLOBAL_BATCH) {
        char d[128];
        if (run->seq_len >= TRACE_MAX_LEN) snprintf(d, sizeof d, "seq_len %u: a trace holds lengths below 2^31", run->seq_len);
        else snprintf(d, sizeof d, "global batch %u: above %u sequences", run->global_batch, FID_MAX_GLOBAL_BATCH);
        why(res, "%s", d);
        goto fail;
    }
    os_clear_error();
    if (fixed_trace(path, sizeof path, o, run->seq_len, run->global_batch, dp) != OS_OK ||
        trace_open(&t, path) != OS_OK) {
        why(res, "trace: %s", last_error_short());
        goto fail;
    }
    ReplayConfig c;
    replay_config_init(&c);
    c.model = &m;
    c.calib = cal;
    c.setup = run->setup;
    c.recompute = run->ckpt ? RECOMPUTE_FULL : RECOMPUTE_NONE;
    c.micro_batch = run->micro_batch;
    c.grad_reduce_bytes = run->reduce_bytes;
    c.policy = policy_find("none");
    c.balancer_cost_s = 0;
    os_clear_error();
    c.par.tp = run->tp, c.par.pp = run->pp ? run->pp : 1, c.par.cp = run->cp ? run->cp : 1;
    c.par.vp = run->vp ? run->vp : 1;
    if (run->sp >= 0) c.par.sp = run->sp;
    if (cluster_init_parallel(&c.cluster, run->gpus, run->gpus_per_node, c.par.tp, c.par.pp, c.par.cp) != OS_OK) {
        why(res, "cluster: %s", last_error_short());
        goto fail;
    }
    replay_apply_calib(&c.cluster, cal);
    if (!isnan(run->peak_flops)) c.cluster.peak_flops = run->peak_flops;
    ReplaySummary sum;
    StepAcc acc;
    memset(&acc, 0, sizeof acc);
    os_clear_error();
    if (replay_run(&sum, &c, t, on_step, &acc) != OS_OK) {
        why(res, "replay: %s", last_error_short());
        goto fail;
    }
    uint32_t share = run->global_batch / dp, want_mb = (share + run->micro_batch - 1) / run->micro_batch;
    if (want_mb != run->grad_accum && share >= run->micro_batch) {
        /* the table's own grad_accum disagrees with global / (gpus x micro_batch): say so, keep
         * the arithmetic of the batch (the micro-batches the trainer really ran) */
        snprintf(res->why, sizeof res->why, "note: grad_accum %u in the table, %u micro-batches of %u make the rank's %u",
                 run->grad_accum, want_mb, run->micro_batch, share);
    }
    if (sum.mb_clamped) /* replay's documented clamp: the whole share is one micro-batch */
        snprintf(res->why, sizeof res->why, "note: micro_batch %u is more than a rank's share of %u sequences: "
                 "clamped, the share runs as one micro-batch", run->micro_batch, share);
    if (model_as[0]) { /* say which preset a size or a spelling was read as, before any other note */
        char note[sizeof res->why];
        snprintf(note, sizeof note, "%s", res->why);
        snprintf(res->why, sizeof res->why, "note: model %.63s read as %.79s%s%.340s", run->model, model_as, note[0] ? "; " : "",
                 note[0] ? note + (strncmp(note, "note: ", 6) ? 0 : 6) : "");
    }
    res->tps_pred = sum.tokens_per_s / run->gpus;
    res->err = res->tps_pred / run->tps_pub - 1;
    res->step_s = sum.step_mean_s;
    double k = acc.n ? (double)acc.n : 1;
    res->gemm_s = acc.gemm / k, res->attn_s = acc.attn / k, res->mem_s = acc.mem / k, res->opt_s = acc.opt / k;
    res->slowed_s = acc.slowed / k, res->exposed_comm_s = acc.exposed_comm / k;
    res->tp_comm_s = acc.tp / k, res->bubble_s = acc.bubble / k, res->p2p_s = acc.p2p / k;
    res->micro_batches = acc.mb;
    res->state_bytes = sum.state_bytes_per_gpu, res->act_bytes = sum.act_bytes_peak;
    res->gpu_bytes = c.cluster.mem_bytes;
    /* the table's MFU convention: (6 N + 12 L d s) per token with its own N (REFERENCE §D.1),
     * or Megatron's eq. (3), which counts the recomputed forward already */
    double fpt = fid_flops_per_token(run->flops, &m, run->seq_len, run->num_params);
    res->mfu_pred = fpt * res->tps_pred / c.cluster.peak_flops;
    res->hfu_pred = run->flops == FID_FLOPS_MEGATRON_EQ3 ? res->mfu_pred : res->mfu_pred * (run->ckpt ? 4.0 / 3.0 : 1.0);
fail:
    trace_close(t);
    free(own);
    return st;
}

int fid_dominant(const FidResult *r) {
    if (!r->ok) return -1;
    double part[FID_N_DOM] = {r->gemm_s, r->attn_s, r->mem_s, r->exposed_comm_s + r->tp_comm_s + r->p2p_s, r->bubble_s,
                              r->opt_s};
    int best = 0;
    for (int d = 1; d < FID_N_DOM; d++)
        if (part[d] > part[best]) best = d;
    return best;
}

const char *fid_dominant_name(int d) {
    static const char *const name[FID_N_DOM] = {"GEMM", "attention", "memory", "communication", "bubble", "optimizer"};
    return d >= 0 && d < FID_N_DOM ? name[d] : "-";
}

double fid_mape(const FidResult *r, size_t n, int (*keep)(const FidResult *, const void *), const void *arg,
                size_t *count) {
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!r[i].ok || (keep && !keep(&r[i], arg))) continue;
        s += fabs(r[i].err);
        k++;
    }
    if (count) *count = k;
    return k ? s / (double)k : NAN;
}

/* ---- collectives --------------------------------------------------------------------------- */

OsStatus fid_read_colls(FidColl **rows, size_t *n, const char *path) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    FidColl *r = NULL;
    *rows = NULL, *n = 0;
    OS_CHECK(csv_read(&t, path));
    int c_coll, c_gpus, c_gpn, c_bytes, c_bw, c_fab, c_algo, c_src;
    OS_CHECK(csv_require(&c_coll, t, "collective"));
    OS_CHECK(csv_require(&c_gpus, t, "gpus"));
    OS_CHECK(csv_require(&c_gpn, t, "gpus_per_node"));
    OS_CHECK(csv_require(&c_bytes, t, "bytes"));
    OS_CHECK(csv_require(&c_bw, t, "busbw_gbps"));
    OS_CHECK(csv_require(&c_fab, t, "fabric"));
    OS_CHECK(csv_require(&c_algo, t, "algo"));
    OS_CHECK(csv_require(&c_src, t, "source"));
    size_t m = csv_n_rows(t);
    r = calloc(m ? m : 1, sizeof *r);
    ALLOC_CHECK(r);
    for (size_t i = 0; i < m; i++) {
        FidColl *x = &r[i];
        x->line = csv_line(t, i);
        snprintf(x->coll, sizeof x->coll, "%s", csv_str(t, i, (size_t)c_coll));
        OS_CHECK(col_u32(&x->gpus, t, i, c_gpus, 1, "gpus"));
        OS_CHECK(col_u32(&x->gpus_per_node, t, i, c_gpn, 1, "gpus_per_node"));
        OS_CHECK(csv_num(&x->bytes, t, i, (size_t)c_bytes));
        OS_CHECK(csv_num(&x->busbw_pub, t, i, (size_t)c_bw));
        char f[96];
        snprintf(f, sizeof f, "line %zu: column bytes/busbw_gbps", x->line);
        if (!(x->bytes > 0) || !(x->busbw_pub > 0)) OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "must be positive numbers");
        x->busbw_pub *= 1e9;
        snprintf(x->fabric, sizeof x->fabric, "%s", csv_str(t, i, (size_t)c_fab));
        snprintf(x->algo, sizeof x->algo, "%s", csv_str(t, i, (size_t)c_algo));
        snprintf(x->source, sizeof x->source, "%s", csv_str(t, i, (size_t)c_src));
    }
    *rows = r, *n = m;
    r = NULL;
fail:
    free(r);
    csv_destroy(t);
    return st;
}

double fid_coll_busbw(const char *coll, uint32_t gpus, uint32_t gpn, double bytes, const char *fabric, const char *algo,
                      const char **why_not) {
    *why_not = NULL;
    Cluster c;
    if (gpus > gpn && strcmp(fabric, "ib-ndr")) {
        *why_not = !strcmp(fabric, "roce")       ? "RoCE fabric: sim/net models InfiniBand NDR between nodes"
                   : !strcmp(fabric, "tcpxo")    ? "GPUDirect-TCPXO over Ethernet: sim/net models InfiniBand NDR"
                   : !strcmp(fabric, "nvlink")   ? "fabric nvlink, but the GPUs are more than one node holds"
                                                 : "fabric not stated: sim/net models InfiniBand NDR, one 400 Gb/s NIC per GPU";
        return NAN;
    }
    if (!strcmp(coll, "alltoall") && gpus > FID_MAX_A2A_GPUS) {
        *why_not = "all-to-all over more than 2048 GPUs: sim/net prices it from its n x n list of messages";
        return NAN;
    }
    if (!strcmp(algo, "nvlstree") || !strcmp(algo, "collnet")) {
        *why_not = "NVLS-tree / SHARP in-network reduction across nodes is not modelled";
        return NAN;
    }
    if (gpus % gpn && gpus > gpn) {
        *why_not = "GPUs do not fill whole nodes";
        return NAN;
    }
    os_clear_error();
    if (cluster_init(&c, gpus, gpn, 1) != OS_OK) {
        *why_not = "not a valid cluster shape";
        return NAN;
    }
    uint32_t n = gpus;
    double t = NAN, factor = NAN;
    if (!strcmp(coll, "allreduce")) {
        factor = net_busbw_factor_allreduce(n);
        t = !strcmp(algo, "ring") ? net_allreduce_pure_ring(&c, bytes)
            : !strcmp(algo, "tree") ? net_allreduce_tree(&c, bytes)
                                    : net_allreduce_ring(&c, bytes);
        if (!strcmp(algo, "nvls") && !(gpus == gpn && gpus >= 8)) {
            *why_not = "NVLS needs one whole NVSwitch node of >= 8 GPUs";
            return NAN;
        }
    } else if (!strcmp(coll, "allgather") || !strcmp(coll, "reducescatter")) {
        factor = net_busbw_factor_rs_ag_a2a(n);
        t = coll[0] == 'a' ? net_allgather(&c, bytes) : net_reduce_scatter(&c, bytes);
    } else if (!strcmp(coll, "alltoall")) {
        /* nccl-tests: every rank sends bytes / n to every rank; busbw = algbw (n-1)/n */
        factor = net_busbw_factor_rs_ag_a2a(n);
        NetMove *mv = malloc((size_t)n * n * sizeof *mv);
        NetScratch *s = NULL;
        if (!mv || net_scratch_create(&s, &c) != OS_OK) {
            free(mv);
            *why_not = "out of memory";
            return NAN;
        }
        size_t k = 0;
        for (uint32_t a = 0; a < n; a++)
            for (uint32_t b = 0; b < n; b++)
                if (a != b) mv[k++] = (NetMove){a, b, (uint64_t)(bytes / n)};
        t = net_alltoallv(&c, mv, k, s, NULL);
        net_scratch_destroy(s);
        free(mv);
    } else {
        *why_not = "unknown collective (allreduce, allgather, reducescatter, alltoall)";
        return NAN;
    }
    if (!(t > 0)) {
        *why_not = "one rank: nothing moves";
        return NAN;
    }
    return factor * bytes / t;
}
