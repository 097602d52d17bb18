/* runtable.c — see runtable.h. One field table drives writing and reading, in the order of
 * schema.c's RUN_COLS (tests/test_analysis.c checks the two lists agree). */
#include "analysis/runtable.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/stats.h"
#include "base/util.h"

#define FS(n) {#n, RUNFIELD_STR, offsetof(RunRow, n), sizeof(((RunRow *)0)->n)}
#define FU(n) {#n, RUNFIELD_U64, offsetof(RunRow, n), 0}
#define FD(n) {#n, RUNFIELD_F64, offsetof(RunRow, n), 0}
#define FA(name, arr, i) {name, RUNFIELD_F64, offsetof(RunRow, arr) + (i) * sizeof(double), 0}

static const RunField FIELDS[] = {
    FS(policy), FS(model), FU(gpus), FU(gpus_per_node), FU(tp), FU(dp), FS(setup), FU(steps),
    FD(step_mean_s), FD(step_ci95_s), FD(step_p50_s), FD(step_p99_s), FD(tokens_per_s),
    FD(samples_per_s), FD(mfu), FD(mfu_noattn), FD(mfu_causal), FD(hfu), FD(speedup_vs_none),
    FD(idle_frac), FD(bytes_intra_per_step), FD(bytes_inter_per_step), FD(a2a_s_per_step),
    FD(balancer_s_per_step),
    FA("imbalance_image", imbalance, 0), FA("imbalance_audio", imbalance, 1),
    FA("imbalance_video", imbalance, 2), FA("imbalance_llm", imbalance, 3),
    FA("idle_frac_image", phase_idle, 0), FA("idle_frac_audio", phase_idle, 1),
    FA("idle_frac_video", phase_idle, 2), FA("idle_frac_llm", phase_idle, 3),
    FD(tokens_per_s_ci95), FD(mfu_ci95), FD(idle_frac_ci95),
    FA("imbalance_image_ci95", imbalance_ci95, 0), FA("imbalance_audio_ci95", imbalance_ci95, 1),
    FA("imbalance_video_ci95", imbalance_ci95, 2), FA("imbalance_llm_ci95", imbalance_ci95, 3),
    FU(long_examples), FU(needs_recompute), FS(balancer_charge), FD(balancer_modelled_s_per_step),
    FD(balancer_measured_s_per_step),
    FS(recompute), FU(padded), FS(calibration), FS(trace), FS(trace_hash), FS(orchsim_version),
    FS(command),
};

size_t runtable_n_fields(void) { return OS_ARRAY_LEN(FIELDS); }
const RunField *runtable_field(size_t i) { return i < OS_ARRAY_LEN(FIELDS) ? &FIELDS[i] : NULL; }

void runrow_init(RunRow *r) {
    memset(r, 0, sizeof *r);
    for (size_t i = 0; i < OS_ARRAY_LEN(FIELDS); i++)
        if (FIELDS[i].kind == RUNFIELD_F64) *(double *)((char *)r + FIELDS[i].off) = NAN;
}

static void copy_label(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src ? src : "");
}

OsStatus runrow_fill(RunRow *r, const ReplaySummary *sum, const ReplayConfig *cfg,
                     const char *policy, const char *model, const char *setup,
                     const double *step_s, size_t n) {
    OsStatus st = OS_OK;
    runrow_init(r);
    copy_label(r->policy, sizeof r->policy, policy);
    copy_label(r->model, sizeof r->model, model);
    copy_label(r->setup, sizeof r->setup, setup);
    r->gpus = cfg->cluster.gpus;
    r->gpus_per_node = cfg->cluster.gpus_per_node;
    r->tp = cfg->cluster.tp;
    r->dp = cfg->cluster.dp;
    r->steps = sum->steps;
    r->step_mean_s = sum->step_mean_s;
    if (n > 0) {
        double mean;
        OS_CHECK(stats_mean_ci(&mean, &r->step_ci95_s, step_s, n, 0.95));
    }
    r->step_p50_s = sum->step_p50_s;
    r->step_p99_s = sum->step_p99_s;
    r->tokens_per_s = sum->tokens_per_s;
    r->samples_per_s = sum->samples_per_s;
    r->mfu = sum->mfu;
    r->mfu_noattn = sum->mfu_noattn;
    r->mfu_causal = sum->mfu_causal;
    r->hfu = sum->hfu;
    r->idle_frac = sum->idle_frac;
    r->bytes_intra_per_step = sum->bytes_intra_per_step;
    r->bytes_inter_per_step = sum->bytes_inter_per_step;
    r->a2a_s_per_step = sum->a2a_s_per_step;
    r->balancer_s_per_step = sum->balancer_s_per_step;
    r->long_examples = sum->long_examples;
    r->needs_recompute = sum->needs_recompute;
    static const char *const RC[] = {"none", "full", "selective"};
    copy_label(r->recompute, sizeof r->recompute,
               cfg->recompute >= 0 && cfg->recompute < (int)OS_ARRAY_LEN(RC) ? RC[cfg->recompute] : "?");
    r->padded = cfg->layout == ATTN_PADDED;
    copy_label(r->calibration, sizeof r->calibration,
               sum->calib_name[0] ? sum->calib_name : cfg->calib ? cfg->calib->name : "");
    copy_label(r->balancer_charge, sizeof r->balancer_charge, cfg->balancer_cost_s >= 0 ? "fixed" : "measured");
    if (cfg->balancer_cost_s < 0) r->balancer_measured_s_per_step = sum->balancer_s_per_step;
    for (uint32_t p = 0; p < sum->P && p < REPLAY_MAX_PHASES; p++) {
        int k = -1;
        for (int j = 0; j < SCHEMA_N_PHASES; j++)
            if (!strcmp(sum->phase_name[p], SCHEMA_PHASES[j])) k = j;
        if (k < 0)
            OS_FAIL(OS_ERR_RANGE, "run table", sum->phase_name[p],
                    "the run-level CSV has columns for image, audio, video and llm only",
                    "phase has no column");
        r->imbalance[k] = sum->phase_imbalance[p];
        r->phase_idle[k] = sum->phase_idle_frac[p];
    }
fail:
    return st;
}

OsStatus runrow_add_cis(RunRow *r, const RunSeries *s) {
    OsStatus st = OS_OK;
    double mean;
    if (!s || s->n == 0) return OS_OK;
    OS_CHECK(stats_mean_ci(&mean, &r->tokens_per_s_ci95, s->tokens_per_s, s->n, 0.95));
    OS_CHECK(stats_mean_ci(&mean, &r->mfu_ci95, s->mfu, s->n, 0.95));
    OS_CHECK(stats_mean_ci(&mean, &r->idle_frac_ci95, s->idle_frac, s->n, 0.95));
    for (int k = 0; k < SCHEMA_N_PHASES; k++)
        if (s->imbalance[k]) OS_CHECK(stats_mean_ci(&mean, &r->imbalance_ci95[k], s->imbalance[k], s->n, 0.95));
fail:
    return st;
}

void runtable_write_header(FILE *fp) { schema_write_header(fp, schema_find("run")); }

void runtable_write_row(FILE *fp, const RunRow *r) {
    for (size_t i = 0; i < OS_ARRAY_LEN(FIELDS); i++) {
        const RunField *f = &FIELDS[i];
        const char *p = (const char *)r + f->off;
        switch (f->kind) {
        case RUNFIELD_STR: csv_put_str(fp, p, i == 0); break;
        case RUNFIELD_U64: csv_put_u64(fp, *(const uint64_t *)p, i == 0); break;
        case RUNFIELD_F64: csv_put_f64(fp, *(const double *)p, i == 0); break;
        }
    }
    csv_end_row(fp);
}

OsStatus runtable_read_row(RunRow *r, const CsvTable *t, size_t row) {
    OsStatus st = OS_OK;
    runrow_init(r);
    size_t need = schema_find("run")->n_required;
    for (size_t i = 0; i < OS_ARRAY_LEN(FIELDS); i++) {
        const RunField *f = &FIELDS[i];
        char *p = (char *)r + f->off;
        int c = csv_col(t, f->name);
        if (c < 0 && need && i >= need) continue; /* a later column an older file lacks: stays empty */
        OS_CHECK(csv_require(&c, t, f->name));
        double v;
        switch (f->kind) {
        case RUNFIELD_STR: snprintf(p, f->size, "%s", csv_str(t, row, (size_t)c)); break;
        case RUNFIELD_U64:
            OS_CHECK(csv_num(&v, t, row, (size_t)c));
            if (!(v >= 0.0) || v != floor(v) || v > 1e15)
                OS_FAIL(OS_ERR_FORMAT, csv_path(t), f->name, "a non-negative whole number",
                        "line %zu: '%s' is not a count", csv_line(t, row), csv_str(t, row, (size_t)c));
            *(uint64_t *)p = (uint64_t)v;
            break;
        case RUNFIELD_F64: OS_CHECK(csv_num((double *)p, t, row, (size_t)c)); break;
        }
    }
fail:
    return st;
}

OsStatus runtable_read(RunRow **rows, size_t *n, const char *path) {
    OsStatus st = OS_OK;
    CsvTable *t = NULL;
    RunRow *rs = NULL;
    *rows = NULL;
    *n = 0;
    OS_CHECK(csv_read(&t, path));
    OS_CHECK(schema_check(t, schema_find("run")));
    size_t nr = csv_n_rows(t);
    if (nr == 0) OS_FAIL(OS_ERR_FORMAT, path, NULL, "run a sweep first", "the run table has no rows");
    rs = calloc(nr, sizeof *rs);
    ALLOC_CHECK(rs);
    for (size_t i = 0; i < nr; i++) OS_CHECK(runtable_read_row(&rs[i], t, i));
    *rows = rs;
    *n = nr;
    rs = NULL;
fail:
    free(rs);
    csv_destroy(t);
    return st;
}

static int same_inputs(const RunRow *a, const RunRow *b) {
    return a->gpus == b->gpus && a->gpus_per_node == b->gpus_per_node && a->tp == b->tp &&
           a->steps == b->steps && !strcmp(a->model, b->model) && !strcmp(a->setup, b->setup);
}

void runtable_speedups(RunRow *rows, size_t n) {
    for (size_t i = 0; i < n; i++) {
        rows[i].speedup_vs_none = NAN;
        for (size_t j = 0; j < n; j++)
            if (!strcmp(rows[j].policy, "none") && same_inputs(&rows[i], &rows[j]) &&
                rows[j].tokens_per_s > 0.0) {
                rows[i].speedup_vs_none = rows[i].tokens_per_s / rows[j].tokens_per_s;
                break;
            }
    }
}

static int phase_index(const char *name) {
    for (int j = 0; j < SCHEMA_N_PHASES; j++)
        if (!strcmp(name, SCHEMA_PHASES[j])) return j;
    return -1;
}

OsStatus runtable_phase_cols(int *phase_col, uint32_t *P, const ModelSpec *m) {
    OsStatus st = OS_OK;
    *P = m->n_enc + 1;
    for (uint32_t e = 0; e < m->n_enc; e++) {
        phase_col[e] = phase_index(m->enc[e].modality);
        if (phase_col[e] < 0)
            OS_FAIL(OS_ERR_RANGE, m->name, m->enc[e].modality,
                    "the run-level CSV has columns for image, audio, video and llm only",
                    "encoder modality has no column");
    }
    phase_col[m->n_enc] = phase_index("llm");
fail:
    return st;
}

void run_series_free(RunSeries *s) {
    if (!s) return;
    free(s->step_s);
    free(s->mfu);
    free(s->tokens_per_s);
    free(s->idle_frac);
    for (int j = 0; j < SCHEMA_N_PHASES; j++) free(s->imbalance[j]);
    memset(s, 0, sizeof *s);
}

OsStatus run_series_push(RunSeries *s, const StepResult *r, const int *phase_col, uint32_t P) {
    OsStatus st = OS_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        double *a = realloc(s->step_s, cap * sizeof *a);
        ALLOC_CHECK(a);
        s->step_s = a;
        a = realloc(s->mfu, cap * sizeof *a);
        ALLOC_CHECK(a);
        s->mfu = a;
        a = realloc(s->tokens_per_s, cap * sizeof *a);
        ALLOC_CHECK(a);
        s->tokens_per_s = a;
        a = realloc(s->idle_frac, cap * sizeof *a);
        ALLOC_CHECK(a);
        s->idle_frac = a;
        for (uint32_t p = 0; p < P; p++) {
            int k = phase_col[p];
            if (k < 0) continue;
            a = realloc(s->imbalance[k], cap * sizeof *a);
            ALLOC_CHECK(a);
            s->imbalance[k] = a;
        }
        s->cap = cap;
    }
    s->step_s[s->n] = r->step_s;
    s->mfu[s->n] = r->mfu;
    s->tokens_per_s[s->n] = r->step_s > 0 ? (double)r->llm_tokens / r->step_s : 0.0;
    s->idle_frac[s->n] = r->step_s > 0 ? r->idle_s / r->step_s : 0.0;
    for (uint32_t p = 0; p < P; p++)
        if (phase_col[p] >= 0) s->imbalance[phase_col[p]][s->n] = r->phase_imbalance[p];
    s->n++;
fail:
    return st;
}

/* ---------------------------------------------------------------- provenance */

OsStatus runprov_hash_file(uint64_t *hash, const char *path) {
    OsStatus st = OS_OK;
    unsigned char *buf = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) OS_FAIL(OS_ERR_IO, path, NULL, "check the path", "cannot open to hash it: %s", strerror(errno));
    buf = malloc(1 << 16);
    ALLOC_CHECK(buf);
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a 64: offset basis, prime 0x100000001b3 */
    size_t k;
    while ((k = fread(buf, 1, 1 << 16, fp)) > 0)
        for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "read error while hashing");
    *hash = h;
fail:
    free(buf);
    if (fp) fclose(fp);
    return st;
}

/* Append s to buf (size cap, used *n) quoted for a POSIX shell when it needs it. */
static void shell_word(char *buf, size_t cap, size_t *n, const char *s) {
    int plain = *s != '\0';
    for (const char *c = s; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=,:+@%", *c)) plain = 0;
    char tmp[RUNPROV_CMD * 4 + 8];
    size_t t = 0;
    if (plain) t = (size_t)snprintf(tmp, sizeof tmp, "%s", s);
    else {
        tmp[t++] = '\'';
        for (const char *c = s; *c && t + 5 < sizeof tmp; c++) {
            if (*c == '\'') {
                memcpy(tmp + t, "'\\''", 4); /* close, escaped quote, reopen */
                t += 4;
            } else tmp[t++] = *c;
        }
        tmp[t++] = '\'';
        tmp[t] = '\0';
    }
    if (*n + t + 1 >= cap) {
        if (*n + 4 < cap) snprintf(buf + *n, cap - *n, "...");
        *n = cap;
        return;
    }
    memcpy(buf + *n, tmp, t + 1);
    *n += t;
}

void runprov_command(char *buf, size_t cap, int argc, char *const *argv) {
    size_t n = (size_t)snprintf(buf, cap, "orchsim");
    for (int i = 0; i < argc && n + 2 < cap; i++) {
        buf[n++] = ' ';
        buf[n] = '\0';
        shell_word(buf, cap, &n, argv[i]);
    }
}

OsStatus runprov_init(RunProv *p, const char *trace_path, const char *command, const char *version) {
    OsStatus st = OS_OK;
    memset(p, 0, sizeof *p);
    copy_label(p->trace, sizeof p->trace, trace_path);
    copy_label(p->version, sizeof p->version, version);
    copy_label(p->command, sizeof p->command, command);
    if (trace_path) {
        uint64_t h;
        OS_CHECK(runprov_hash_file(&h, trace_path));
        snprintf(p->trace_hash, sizeof p->trace_hash, "%016" PRIx64, h);
    }
fail:
    return st;
}

void runrow_set_prov(RunRow *r, const RunProv *p) {
    copy_label(r->trace, sizeof r->trace, p->trace);
    copy_label(r->trace_hash, sizeof r->trace_hash, p->trace_hash);
    copy_label(r->orchsim_version, sizeof r->orchsim_version, p->version);
    copy_label(r->command, sizeof r->command, p->command);
}

void runtable_json_str(FILE *fp, const char *s) {
    fputc('"', fp);
    for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(fp, "\\%c", *c);
        else if (*c < 0x20) fprintf(fp, "\\u%04x", *c);
        else fputc(*c, fp);
    }
    fputc('"', fp);
}

void runtable_json_num(FILE *fp, double v) {
    if (isfinite(v)) fprintf(fp, "%.9g", v);
    else fputs("null", fp);
}

void runprov_json_members(FILE *fp, const RunRow *r) {
    fputs("\"trace\":", fp);
    runtable_json_str(fp, r->trace);
    fputs(",\"trace_hash\":", fp);
    runtable_json_str(fp, r->trace_hash);
    fputs(",\"model\":", fp);
    runtable_json_str(fp, r->model);
    fprintf(fp, ",\"gpus\":%" PRIu64 ",\"gpus_per_node\":%" PRIu64 ",\"tp\":%" PRIu64 ",\"dp\":%" PRIu64
                ",\"setup\":", r->gpus, r->gpus_per_node, r->tp, r->dp);
    runtable_json_str(fp, r->setup);
    fputs(",\"recompute\":", fp);
    runtable_json_str(fp, r->recompute);
    fprintf(fp, ",\"padded\":%s,\"calibration\":", r->padded ? "true" : "false");
    runtable_json_str(fp, r->calibration);
    fputs(",\"balancer_charge\":", fp);
    runtable_json_str(fp, r->balancer_charge);
    fputs(",\"orchsim_version\":", fp);
    runtable_json_str(fp, r->orchsim_version);
    fputs(",\"command\":", fp);
    runtable_json_str(fp, r->command);
}
