/* cmd_fidelity.c — `orchsim fidelity [RUNS.csv ...] [--all]`: replay every published training
 * run of one or more runs tables with its exact configuration (and the calibration the row
 * names) and print predicted against published tokens/s/GPU and MFU, the signed error, MAPE
 * overall, per runs file and by group, scale-out ratios, and sim/net's collective bus
 * bandwidth beside the published nccl-tests figures (analysis/fidelity.h). Writes a CSV (and
 * JSON) and the predicted-vs-published figure. --max-mape makes it a regression guard. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "analysis/fidelity.h"
#include "analysis/plot.h"
#include "analysis/runtable.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "sim/net.h"

#ifndef ORCHSIM_FIDELITY_DIR
#define ORCHSIM_FIDELITY_DIR "bench/fidelity"
#endif

static const char *fid_dir(void) {
    const char *e = getenv("ORCHSIM_FIDELITY_DIR");
    return e && *e ? e : ORCHSIM_FIDELITY_DIR;
}

/* ---- groups ------------------------------------------------------------------------------ */

typedef struct {
    int kind; /* 0 seq_len, 1 gpus, 2 ckpt, 3 model, 4 runs file (u: index), 5 calibration,
                 6 dominant part of the step (u: FID_DOM_*) */
    uint32_t u;
    const char *s;
    const FidResult *base;  /* kind 4: the results array, */
    const uint32_t *file;   /* and the runs file of each result */
} Group;

static int in_group(const FidResult *r, const void *arg) {
    const Group *g = arg;
    switch (g->kind) {
    case 0: return r->run.seq_len == g->u;
    case 1: return r->run.gpus == g->u;
    case 2: return r->run.ckpt == (int)g->u;
    case 4: return g->file[r - g->base] == g->u;
    case 5: return !strcmp(r->calib_name, g->s);
    case 6: return fid_dominant(r) == (int)g->u;
    default: return !strcmp(r->run.model, g->s);
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Distinct values of seq_len (kind 0) or gpus (kind 1), ascending. */
static uint32_t distinct(uint32_t *out, const FidResult *r, size_t n, int kind) {
    uint32_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = kind ? r[i].run.gpus : r[i].run.seq_len, j = 0;
        while (j < k && out[j] != v) j++;
        if (j == k && k < 256) out[k++] = v;
    }
    qsort(out, k, sizeof *out, cmp_u32);
    return k;
}

/* A group's predicted rows: how many, their MAPE, mean signed error and worst |error|. */
typedef struct {
    size_t cnt;
    double mape, bias, worst;
} GroupStats;

static GroupStats group_stats(const FidResult *r, size_t n, const Group *g) {
    GroupStats gs = {0, 0, 0, 0};
    gs.mape = fid_mape(r, n, in_group, g, &gs.cnt);
    for (size_t i = 0; i < n; i++)
        if (r[i].ok && in_group(&r[i], g)) gs.worst = fmax(gs.worst, fabs(r[i].err)), gs.bias += r[i].err;
    if (gs.cnt) gs.bias /= (double)gs.cnt;
    return gs;
}

static void print_group(FILE *fp, const char *label, const FidResult *r, size_t n, const Group *g) {
    GroupStats gs = group_stats(r, n, g);
    if (gs.cnt) fprintf(fp, "  %-22s %3zu rows  MAPE %5.1f%%  bias %+6.1f%%  worst %5.1f%%\n", label, gs.cnt,
                        100 * gs.mape, 100 * gs.bias, 100 * gs.worst);
}

/* ---- outputs ----------------------------------------------------------------------------- */

static const char *conv_name(int flops) { return flops == FID_FLOPS_MEGATRON_EQ3 ? "megatron-eq3" : "palm"; }

static OsStatus write_csv(const char *path, const FidResult *r, size_t n, const char *calib, const char *const *files,
                          const uint32_t *file_of) {
    OsStatus st = OS_OK;
    OsOutFile of;
    OS_CHECK(os_outfile_open(&of, path, 1));
    FILE *fp = of.fp;
    fprintf(fp, "# orchsim fidelity; calibration %s (rows naming their own: column calibration)\n", calib);
    fprintf(fp, "line,model,seq_len,gpus,micro_batch,grad_accum,global_batch,sharding,activation_checkpointing,"
                "published_tokens_per_s_per_gpu,predicted_tokens_per_s_per_gpu,error,published_mfu,predicted_mfu,"
                "published_hfu,predicted_hfu,step_s,micro_batches,gemm_s,attn_s,mem_s,optimizer_s,slowdown_s,"
                "exposed_comm_s,params_table,params_orchsim,runs_file,calibration,tp,pp,vp,mfu_convention,tp_comm_s,"
                "bubble_s,p2p_s,state_gb,activations_gb,gpu_gb,dominant,note\n");
    for (size_t i = 0; i < n; i++) {
        const FidResult *x = &r[i];
        csv_put_u64(fp, x->run.line, 1);
        csv_put_str(fp, x->run.model, 0);
        csv_put_u64(fp, x->run.seq_len, 0);
        csv_put_u64(fp, x->run.gpus, 0);
        csv_put_u64(fp, x->run.micro_batch, 0);
        csv_put_u64(fp, x->run.grad_accum, 0);
        csv_put_u64(fp, x->run.global_batch, 0);
        csv_put_str(fp, x->run.sharding, 0);
        csv_put_str(fp, x->run.ckpt ? "True" : "False", 0);
        csv_put_f64(fp, x->run.tps_pub, 0);
        csv_put_f64(fp, x->ok ? x->tps_pred : NAN, 0);
        csv_put_f64(fp, x->ok ? x->err : NAN, 0);
        csv_put_f64(fp, x->run.mfu_pub, 0);
        csv_put_f64(fp, x->ok ? x->mfu_pred : NAN, 0);
        csv_put_f64(fp, x->run.hfu_pub, 0);
        csv_put_f64(fp, x->ok ? x->hfu_pred : NAN, 0);
        csv_put_f64(fp, x->ok ? x->step_s : NAN, 0);
        csv_put_u64(fp, x->micro_batches, 0);
        csv_put_f64(fp, x->ok ? x->gemm_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->attn_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->mem_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->opt_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->slowed_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->exposed_comm_s : NAN, 0);
        csv_put_f64(fp, x->run.num_params, 0);
        csv_put_f64(fp, x->params_ours, 0);
        csv_put_str(fp, files[file_of[i]], 0);
        csv_put_str(fp, x->calib_name, 0);
        csv_put_u64(fp, x->run.tp, 0);
        csv_put_u64(fp, x->run.pp, 0);
        csv_put_u64(fp, x->run.vp, 0);
        csv_put_str(fp, conv_name(x->run.flops), 0);
        csv_put_f64(fp, x->ok ? x->tp_comm_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->bubble_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->p2p_s : NAN, 0);
        csv_put_f64(fp, x->ok ? x->state_bytes / 1e9 : NAN, 0);
        csv_put_f64(fp, x->ok ? x->act_bytes / 1e9 : NAN, 0);
        csv_put_f64(fp, x->ok ? x->gpu_bytes / 1e9 : NAN, 0);
        csv_put_str(fp, x->ok ? fid_dominant_name(fid_dominant(x)) : "", 0);
        char note[sizeof x->why + 32];
        snprintf(note, sizeof note, "%s%s", x->ok ? "" : "not reproducible: ", x->why);
        csv_put_str(fp, note, 0); /* quoted where the reason has a comma */
        csv_end_row(fp);
    }
    OS_CHECK(os_outfile_commit(&of));
    return OS_OK;
fail:
    return st;
}

static OsStatus write_json(const char *path, const FidResult *r, size_t n, double mape, const char *calib,
                           const char *const *files, uint32_t nf, const uint32_t *file_of) {
    OsStatus st = OS_OK;
    OsOutFile of;
    OS_CHECK(os_outfile_open(&of, path, 1));
    FILE *fp = of.fp;
    fprintf(fp, "{\"calibration\":");
    runtable_json_str(fp, calib);
    fprintf(fp, ",\"mape\":");
    runtable_json_num(fp, mape);
    fprintf(fp, ",\"files\":[");
    for (uint32_t f = 0; f < nf; f++) {
        Group g = {4, f, NULL, r, file_of};
        size_t cnt = 0, rows = 0;
        double m = fid_mape(r, n, in_group, &g, &cnt);
        for (size_t i = 0; i < n; i++) rows += file_of[i] == f;
        fprintf(fp, "%s{\"path\":", f ? "," : "");
        runtable_json_str(fp, files[f]);
        fprintf(fp, ",\"rows\":%zu,\"predicted\":%zu,\"mape\":", rows, cnt);
        runtable_json_num(fp, m);
        fputc('}', fp);
    }
    fprintf(fp, "],\"runs\":[");
    for (size_t i = 0; i < n; i++) {
        const FidResult *x = &r[i];
        fprintf(fp, "%s\n{\"runs_file\":", i ? "," : "");
        runtable_json_str(fp, files[file_of[i]]);
        fprintf(fp, ",\"line\":%zu,\"model\":", x->run.line);
        runtable_json_str(fp, x->run.model);
        fprintf(fp, ",\"calibration\":");
        runtable_json_str(fp, x->calib_name);
        fprintf(fp, ",\"seq_len\":%u,\"gpus\":%u,\"tp\":%u,\"pp\":%u,\"vp\":%u,\"published\":", x->run.seq_len,
                x->run.gpus, x->run.tp, x->run.pp, x->run.vp);
        runtable_json_num(fp, x->run.tps_pub);
        fprintf(fp, ",\"predicted\":");
        runtable_json_num(fp, x->ok ? x->tps_pred : NAN);
        fprintf(fp, ",\"error\":");
        runtable_json_num(fp, x->ok ? x->err : NAN);
        fprintf(fp, ",\"state_gb\":");
        runtable_json_num(fp, x->ok ? x->state_bytes / 1e9 : NAN);
        fprintf(fp, ",\"activations_gb\":");
        runtable_json_num(fp, x->ok ? x->act_bytes / 1e9 : NAN);
        fprintf(fp, ",\"gpu_gb\":");
        runtable_json_num(fp, x->ok ? x->gpu_bytes / 1e9 : NAN);
        fprintf(fp, ",\"dominant\":");
        if (x->ok) runtable_json_str(fp, fid_dominant_name(fid_dominant(x)));
        else fputs("null", fp);
        fprintf(fp, ",\"reproducible\":%s,\"note\":", x->ok ? "true" : "false");
        runtable_json_str(fp, x->why);
        fputc('}', fp);
    }
    fprintf(fp, "\n]}\n");
    OS_CHECK(os_outfile_commit(&of));
    return OS_OK;
fail:
    return st;
}

/* ---- collectives ------------------------------------------------------------------------- */

static void size_label(char *buf, size_t cap, double b) {
    if (b >= 1073741824.0) snprintf(buf, cap, "%g GiB", b / 1073741824.0);
    else if (b >= 1048576.0) snprintf(buf, cap, "%g MiB", b / 1048576.0);
    else snprintf(buf, cap, "%g KiB", b / 1024.0);
}

static OsStatus collectives(FILE *fp, const char *path, const char *csv_out, double *worst_big) {
    OsStatus st = OS_OK;
    FidColl *rows = NULL;
    size_t n = 0;
    OsOutFile of;
    int open = 0;
    *worst_big = 0;
    OS_CHECK(fid_read_colls(&rows, &n, path));
    if (csv_out) {
        OS_CHECK(os_outfile_open(&of, csv_out, 1));
        open = 1;
        fprintf(of.fp, "line,collective,gpus,gpus_per_node,bytes,fabric,algo,published_busbw_gbps,orchsim_busbw_gbps,"
                       "error,note,source\n");
    }
    fprintf(fp, "\n# collectives: sim/net bus bandwidth beside published nccl-tests figures (%s)\n", path);
    fprintf(fp, "%-14s %5s %10s %-8s %-8s %10s %10s %8s  %s\n", "collective", "gpus", "size", "fabric", "algo",
            "published", "orchsim", "error", "source");
    for (size_t i = 0; i < n; i++) {
        const FidColl *c = &rows[i];
        const char *why = NULL;
        double bw = fid_coll_busbw(c->coll, c->gpus, c->gpus_per_node, c->bytes, c->fabric, c->algo, &why);
        char sz[32];
        size_label(sz, sizeof sz, c->bytes);
        if (why) {
            fprintf(fp, "%-14s %5u %10s %-8s %-8s %10.1f %10s %8s  not reproducible: %s (%s)\n", c->coll, c->gpus, sz,
                    c->fabric, c->algo, c->busbw_pub / 1e9, "-", "-", why, c->source);
        } else {
            double e = bw / c->busbw_pub - 1;
            if (c->bytes >= 64.0 * 1048576.0) *worst_big = fmax(*worst_big, fabs(e));
            fprintf(fp, "%-14s %5u %10s %-8s %-8s %10.1f %10.1f %+7.1f%%  %s\n", c->coll, c->gpus, sz, c->fabric, c->algo,
                    c->busbw_pub / 1e9, bw / 1e9, 100 * e, c->source);
        }
        if (open) {
            csv_put_u64(of.fp, c->line, 1);
            csv_put_str(of.fp, c->coll, 0);
            csv_put_u64(of.fp, c->gpus, 0);
            csv_put_u64(of.fp, c->gpus_per_node, 0);
            csv_put_f64(of.fp, c->bytes, 0);
            csv_put_str(of.fp, c->fabric, 0);
            csv_put_str(of.fp, c->algo, 0);
            csv_put_f64(of.fp, c->busbw_pub / 1e9, 0);
            csv_put_f64(of.fp, why ? NAN : bw / 1e9, 0);
            csv_put_f64(of.fp, why ? NAN : bw / c->busbw_pub - 1, 0);
            char note[200] = "";
            if (why) snprintf(note, sizeof note, "not reproducible: %s", why);
            csv_put_str(of.fp, note, 0);
            csv_put_str(of.fp, c->source, 0);
            csv_end_row(of.fp);
        }
    }
    fprintf(fp, "  worst |error| at >= 64 MiB among reproducible rows: %.1f%%\n", 100 * *worst_big);
    /* the grid the issue asks for: every collective, 1 MiB .. 8 GiB, 8 / 16 / 64 / 256 GPUs */
    static const char *const COLLS[] = {"allreduce", "allgather", "reducescatter", "alltoall"};
    static const uint32_t GPUS[] = {8, 16, 64, 256};
    fprintf(fp, "\n# sim/net bus bandwidth, GB/s (8 GPUs per node, InfiniBand NDR, default NCCL algorithm)\n");
    static const double SIZES_MIB[] = {1, 4, 16, 64, 256, 1024, 4096, 8192};
    fprintf(fp, "%-14s %5s", "collective", "gpus");
    for (size_t z = 0; z < OS_ARRAY_LEN(SIZES_MIB); z++) {
        char sz[32];
        size_label(sz, sizeof sz, SIZES_MIB[z] * 1048576.0);
        fprintf(fp, " %9s", sz);
    }
    fprintf(fp, "\n");
    for (size_t k = 0; k < OS_ARRAY_LEN(COLLS); k++)
        for (size_t g = 0; g < OS_ARRAY_LEN(GPUS); g++) {
            fprintf(fp, "%-14s %5u", COLLS[k], GPUS[g]);
            for (size_t z = 0; z < OS_ARRAY_LEN(SIZES_MIB); z++) {
                double b = SIZES_MIB[z] * 1048576.0;
                const char *why = NULL;
                double bw = fid_coll_busbw(COLLS[k], GPUS[g], 8, b, "ib-ndr", "default", &why);
                if (why) fprintf(fp, " %9s", "-");
                else fprintf(fp, " %9.1f", bw / 1e9);
            }
            fprintf(fp, "\n");
        }
    if (open) {
        open = 0;
        OS_CHECK(os_outfile_commit(&of));
    }
fail:
    if (open) os_outfile_abort(&of);
    free(rows);
    return st;
}

/* ---- the command --------------------------------------------------------------------------- */

#define FID_MAX_FILES 64

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every *.csv in dir, sorted by name, into names[] (malloc'd strings). */
static OsStatus list_runs(char **names, uint32_t *n, const char *dir) {
    OsStatus st = OS_OK;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) OS_FAIL(OS_ERR_IO, dir, NULL, "set ORCHSIM_FIDELITY_DIR to the bench/fidelity folder", "cannot list the runs folder");
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (e->d_name[0] == '.' || l < 5 || strcmp(e->d_name + l - 4, ".csv")) continue;
        if (*n == FID_MAX_FILES) {
            closedir(d);
            OS_FAIL(OS_ERR_RANGE, dir, NULL, "name the files on the command line", "more than %d runs files", FID_MAX_FILES);
        }
        size_t cap = strlen(dir) + l + 2;
        names[*n] = malloc(cap);
        if (!names[*n]) {
            closedir(d);
            ALLOC_CHECK(names[*n]);
        }
        snprintf(names[*n], cap, "%s/%s", dir, e->d_name);
        (*n)++;
    }
    closedir(d);
    qsort(names, *n, sizeof *names, cmp_str);
    if (*n == 0) OS_FAIL(OS_ERR_IO, dir, NULL, NULL, "no *.csv runs files");
fail:
    return st;
}

/* Read one runs file and its rows' calibration tables; append the rows to *runs (file index f). */
static OsStatus append_runs(FidRun **runs, uint32_t **file_of, size_t *n, FidCalibs **cals, const char *path, uint32_t f,
                            const char *calib_dir, size_t *skipped) {
    OsStatus st = OS_OK;
    FidRun *r = NULL;
    size_t k = 0;
    OS_CHECK(fid_read_runs_md(&r, &k, skipped, path));
    OS_CHECK(fid_calibs_load(cals, r, k, calib_dir, path));
    FidRun *grown = realloc(*runs, (*n + k) * sizeof *grown);
    ALLOC_CHECK(grown);
    *runs = grown;
    uint32_t *gf = realloc(*file_of, (*n + k) * sizeof *gf);
    ALLOC_CHECK(gf);
    *file_of = gf;
    memcpy(*runs + *n, r, k * sizeof *r);
    for (size_t i = 0; i < k; i++) (*file_of)[*n + i] = f;
    *n += k;
fail:
    free(r);
    return st;
}

static void print_row(FILE *fp, const FidResult *x) {
    char par[32];
    snprintf(par, sizeof par, "%ux%ux%u", x->run.tp, x->run.pp, x->run.vp);
    if (!x->ok) {
        fprintf(fp, "%-11s %6u %5u %-8s %3u %3u %-13s %2s %10.1f %10s %8s %7s %7s  not reproducible: %s\n", x->run.model,
               x->run.seq_len, x->run.gpus, par, x->run.micro_batch, x->run.grad_accum, x->run.sharding,
               x->run.ckpt ? "y" : "n", x->run.tps_pub, "-", "-", "-", "-", x->why);
        return;
    }
    char mfu_pub[16] = "      -"; /* a table without the column, or an empty cell */
    if (!isnan(x->run.mfu_pub)) snprintf(mfu_pub, sizeof mfu_pub, "%6.1f%%", 100 * x->run.mfu_pub);
    fprintf(fp, "%-11s %6u %5u %-8s %3u %3u %-13s %2s %10.1f %10.1f %+7.1f%% %s %6.1f%%  %s\n", x->run.model,
           x->run.seq_len, x->run.gpus, par, x->run.micro_batch, x->run.grad_accum, x->run.sharding,
           x->run.ckpt ? "y" : "n", x->run.tps_pub, x->tps_pred, 100 * x->err, mfu_pub, 100 * x->mfu_pred, x->why);
}

OsStatus cmd_fidelity(int argc, char **argv) {
    OsStatus st = OS_OK;
    char runs_def[4096], colls_def[4096], models_def[4096], calib_def[4096], runs_dir[4096];
    snprintf(runs_def, sizeof runs_def, "%s/runs/llm-foundry-h100-bf16.csv", fid_dir());
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", fid_dir());
    snprintf(colls_def, sizeof colls_def, "%s/collectives.csv", fid_dir());
    snprintf(models_def, sizeof models_def, "%s/models", fid_dir());
    snprintf(calib_def, sizeof calib_def, "%s/calib", fid_dir());
    const char *out = "fidelity-out", *csv = NULL, *json = NULL, *calibration = NULL, *colls = colls_def,
               *models = models_def, *format = "png", *coll_csv = NULL, *calib_dir = calib_def;
    uint64_t steps = 2;
    double max_mape = -1;
    int no_plot = 0, quiet = 0, no_colls = 0, all = 0, no_progress = 0;
    FILE *hout = stdout; /* the tables: stderr when an output is on stdout */
    FidRun *runs = NULL;
    FidResult *res = NULL;
    uint32_t *file_of = NULL;
    FidCalibs *cals[FID_MAX_FILES] = {0};
    char *listed[FID_MAX_FILES] = {0};
    uint32_t nf = 0, nlisted = 0;
    size_t n = 0;
    Calib *cal = calloc(1, sizeof *cal);
    ALLOC_CHECK(cal);
    OptSpec specs[] = {
        OPTS_ROW_OUTPUT(&out, "DIR", "folder for traces, CSV/JSON and the figure (also --out)"),
        OPTS_ROW_CSV(&csv, "per-run CSV (default: DIR/fidelity.csv; with '-', the figure reads DIR/fidelity.csv)"),
        OPTS_ROW_JSON(&json, "per-run JSON with the MAPE overall and per runs file"),
        {"all", 'a', OPT_FLAG, &all, NULL, "every *.csv in bench/fidelity/runs/ (instead of RUNS files)", 0, 0},
        {"calibration", 'c', OPT_STR, &calibration, "FILE",
         "calibration table of rows without a calibration column (default: the built-in H100 table)", 0, 0},
        {"calib-dir", 0, OPT_STR, &calib_dir, "DIR", "where a row's calibration file name resolves", 0, 0},
        {"models-dir", 0, OPT_STR, &models, "DIR", "folder of <model>.model presets for names that are not built in", 0, 0},
        {"collectives", 0, OPT_STR, &colls, "FILE", "published collective figures to compare sim/net with", 0, 0},
        {"collectives-csv", 0, OPT_STR, &coll_csv, "FILE", "the collective comparison as CSV (default: DIR/collectives.csv; '-' = stdout)", 0, 0},
        {"no-collectives", 0, OPT_FLAG, &no_colls, NULL, "skip the collective table", 0, 0},
        OPTS_ROW_STEPS(&steps, "steps per run (every step of a fixed-length trace is the same)", 1, 64),
        {"max-mape", 0, OPT_F64, &max_mape, "PCT", "exit non-zero when the overall MAPE exceeds PCT percent (-1: no limit)", -1, 1e6},
        {"format", 'f', OPT_STR, &format, "LIST", "png, svg and/or pdf, comma-separated", 0, 0},
        {"no-plot", 0, OPT_FLAG, &no_plot, NULL, "do not draw the figure", 0, 0},
        OPTS_ROW_NO_PROGRESS(&no_progress),
        OPTS_ROW_QUIET(&quiet),
    };
    CmdHelp help = {
        "fidelity", "orchsim fidelity [RUNS.csv ...] [--all] [-o DIR] [--calibration FILE] [--max-mape PCT]",
        "Replay published training runs with their exact configuration and compare the predicted\n"
        "tokens/s/GPU and MFU with the published ones; compare sim/net collectives with nccl-tests.",
        "RUNS.csv has the columns of ../shared/fidelity/llm-foundry-h100-bf16.csv (model, seq_len, gpus,\n"
        "micro_batch, grad_accum, global_batch, sharding, activation_checkpointing, tokens_per_s_per_gpu;\n"
        "optional mfu_pct, hfu_pct, num_params, gpus_per_node, tp, pp, cp, vp, peak_tflops, mp_mode,\n"
        "sequence_parallel (True/False), calibration (a file under bench/fidelity/calib/ or an absolute\n"
        "path: rows of one table may run on different GPUs) and mfu_convention (palm: 6N + 12 L h s per\n"
        "token; megatron-eq3: arXiv 2104.04473 eq. 3, recomputation counted), gpu (h100_80gb, ...: a row\n"
        "on another GPU than its table's is not reproducible, never priced as an H100) and precision\n"
        "(bf16/fp16 rows only: fp8 and fp32 are not reproducible)). llm-foundry's own tables read as they\n"
        "are: its results.csv headers (\"# GPUs\", \"SeqLen (T)\", \"Throughput (T/s/GPU)\", ...), its bare\n"
        "model sizes (7b: mpt-7b, said in the row's note), and a RUNS.md's markdown pipe tables (its\n"
        "benchmarking README whole: every table with the runs header). Default RUNS.csv:\n"
        "bench/fidelity/runs/llm-foundry-h100-bf16.csv; several files (or --all) are replayed together\n"
        "and the MAPE is given per file and overall. A row that cannot be built is kept and printed as\n"
        "'not reproducible: <why>'. Nothing is fitted: see bench/fidelity/README.md."};
    const char *pos[FID_MAX_FILES];
    int np = 0;
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 0, FID_MAX_FILES, &np));
    {
        const char *names[] = {"--csv", "--json", "--collectives-csv"}, *paths[] = {csv, json, coll_csv};
        OS_CHECK(opts_stdout_claim(&hout, names, paths, 3));
    }
    if (!strcmp(out, "-"))
        OS_FAIL(OS_ERR_ARG, "--output", "-", "give a folder name", "is a folder (traces, CSV, figure): it cannot be standard output");
    const char *files[FID_MAX_FILES];
    if (all && np) OS_FAIL(OS_ERR_ARG, "fidelity", "--all", "drop --all or the RUNS files", "--all replays every runs file already");
    if (all) {
        OS_CHECK(list_runs(listed, &nlisted, runs_dir));
        for (uint32_t f = 0; f < nlisted; f++) files[f] = listed[f];
        nf = nlisted;
    } else if (np) {
        for (int f = 0; f < np; f++) files[f] = pos[f];
        nf = (uint32_t)np;
    } else {
        files[0] = runs_def;
        nf = 1;
    }
    if (calibration) OS_CHECK(calib_load(cal, calibration));
    else calib_default_h100(cal);
    size_t skipped[FID_MAX_FILES] = {0}; /* a markdown file's tables with another header */
    for (uint32_t f = 0; f < nf; f++)
        OS_CHECK(append_runs(&runs, &file_of, &n, &cals[f], files[f], f, calib_dir, &skipped[f]));
    res = calloc(n, sizeof *res);
    ALLOC_CHECK(res);
    char traces[4200], csv_def[4200], cc_def[4200];
    snprintf(traces, sizeof traces, "%s/traces", out);
    snprintf(csv_def, sizeof csv_def, "%s/fidelity.csv", out);
    snprintf(cc_def, sizeof cc_def, "%s/collectives.csv", out);
    if (!csv) csv = csv_def;
    if (!coll_csv) coll_csv = cc_def;
    FidOptions fo = {.models_dir = models, .traces_dir = traces, .calib = cal, .calib_dir = calib_dir, .steps = steps};
    OsProgress prog;
    os_progress_init(&prog, "fidelity", n);
    if (no_progress || quiet) prog.enabled = 0;
    for (uint32_t f = 0; f < nf; f++) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += file_of[i] == f;
        fprintf(stderr, "# fidelity: %zu runs from %s", k, files[f]);
        if (skipped[f])
            fprintf(stderr, " (%zu markdown table%s with another header left out)", skipped[f], skipped[f] > 1 ? "s" : "");
        fputc('\n', stderr);
    }
    fprintf(stderr, "# calibration %s (%s); rows with a calibration column use their own (%s)\n", cal->name,
            cal->stack[0] ? cal->stack : "-", calib_dir);
    {
        char g[256];
        calib_sustain_text(cal, g, sizeof g);
        fprintf(stderr, "# GEMMs: %s\n", g);
    }
    for (size_t i = 0; i < n; i++) {
        fo.calibs = cals[file_of[i]];
        OS_CHECK(fid_predict(&res[i], &runs[i], &fo));
        os_progress_update(&prog, i + 1);
    }
    os_progress_done(&prog);
    size_t cnt = 0;
    double mape = fid_mape(res, n, NULL, NULL, &cnt), worst = 0;
    if (!quiet) {
        fprintf(hout, "%-11s %6s %5s %-8s %3s %3s %-13s %2s %10s %10s %8s %7s %7s  %s\n", "model", "seq", "gpus", "tpxppxvp", "mb",
               "ga", "sharding", "ac", "published", "predicted", "error", "MFU pub", "MFU prd", "note");
        for (uint32_t f = 0; f < nf; f++) {
            if (nf > 1) fprintf(hout, "# %s\n", files[f]);
            for (size_t i = 0; i < n; i++)
                if (file_of[i] == f) print_row(hout, &res[i]);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (res[i].ok) worst = fmax(worst, fabs(res[i].err));
    /* the calibrations the rows ran under, in first-use order */
    const char *cnames[FID_MAX_FILES + 1];
    uint32_t ncal = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = 0;
        while (j < ncal && strcmp(cnames[j], res[i].calib_name)) j++;
        if (j == ncal && ncal < OS_ARRAY_LEN(cnames)) cnames[ncal++] = res[i].calib_name;
    }
    char calib_list[1024] = "";
    for (uint32_t j = 0; j < ncal; j++) {
        strncat(calib_list, j ? ", " : "", sizeof calib_list - strlen(calib_list) - 1);
        strncat(calib_list, cnames[j], sizeof calib_list - strlen(calib_list) - 1);
    }
    if (cnt)
        fprintf(hout, "\n# MAPE of tokens/s/GPU: %.1f%% over %zu of %zu runs (worst %.1f%%); calibration %s\n", 100 * mape,
                cnt, n, 100 * worst, ncal ? calib_list : cal->name);
    else
        fprintf(hout, "\n# MAPE of tokens/s/GPU: none: no run of %zu could be reproduced (each row says why)\n", n);
    if (nf > 1) {
        fprintf(hout, "# by runs file\n");
        for (uint32_t f = 0; f < nf; f++) {
            Group g = {4, f, NULL, res, file_of};
            size_t rows = 0, c2 = 0;
            for (size_t i = 0; i < n; i++) rows += file_of[i] == f;
            fid_mape(res, n, in_group, &g, &c2);
            const char *b = strrchr(files[f], '/');
            char label[64];
            snprintf(label, sizeof label, "%s", b ? b + 1 : files[f]);
            size_t ll = strlen(label);
            if (ll > 4 && !strcmp(label + ll - 4, ".csv")) label[ll - 4] = '\0';
            print_group(hout, label, res, n, &g);
            if (c2 < rows) fprintf(hout, "  %-22s %3zu rows  not reproducible\n", "", rows - c2);
        }
    }
    if (ncal > 1) {
        fprintf(hout, "# by calibration\n");
        for (uint32_t j = 0; j < ncal; j++) {
            Group g = {5, 0, cnames[j], NULL, NULL};
            print_group(hout, cnames[j], res, n, &g);
        }
    }
    /* the two numeric groupings (Group kinds 0 and 1), each over its distinct values */
    static const struct {
        const char *head, *label;
    } BY[2] = {{"# by sequence length", "seq %u"}, {"# by GPU count", "%u GPUs"}};
    uint32_t vals[256];
    for (int kind = 0; kind < 2; kind++) {
        uint32_t k = distinct(vals, res, n, kind);
        fprintf(hout, "%s\n", BY[kind].head);
        for (uint32_t j = 0; j < k; j++) {
            char l[32];
            snprintf(l, sizeof l, BY[kind].label, vals[j]);
            Group g = {kind, vals[j], NULL, NULL, NULL};
            print_group(hout, l, res, n, &g);
        }
    }
    fprintf(hout, "# by activation checkpointing\n");
    for (uint32_t a = 0; a < 2; a++) {
        Group g = {2, a, NULL, NULL, NULL};
        print_group(hout, a ? "checkpointing on" : "checkpointing off", res, n, &g);
    }
    fprintf(hout, "# by model\n");
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= !strcmp(runs[j].model, runs[i].model);
        if (seen) continue;
        Group g = {3, 0, runs[i].model, NULL, NULL};
        print_group(hout, runs[i].model, res, n, &g);
    }
    fprintf(hout, "# by the largest part of the predicted step (what to calibrate first)\n");
    for (uint32_t d = 0; d < FID_N_DOM; d++) {
        char l[40];
        snprintf(l, sizeof l, "%s-bound", fid_dominant_name((int)d));
        Group g = {6, d, NULL, NULL, NULL};
        print_group(hout, l, res, n, &g);
    }
    /* the same groups as one sentence: which way each kind of run leans, so a user knows how
     * to read a prediction for a run of that kind (every figure from the rows above) */
    {
        char say[512] = "";
        size_t u = 0;
        for (uint32_t d = 0; d < FID_N_DOM; d++) {
            Group g = {6, d, NULL, NULL, NULL};
            GroupStats gs = group_stats(res, n, &g);
            if (gs.cnt < 2) continue;
            u += (size_t)snprintf(say + u, u < sizeof say ? sizeof say - u : 0, "%s%s-bound runs %.1f%% too %s (%zu)",
                                  u ? ", " : "", fid_dominant_name((int)d), 100 * fabs(gs.bias),
                                  gs.bias > 0 ? "fast" : "slow", gs.cnt);
            if (u >= sizeof say) break;
        }
        if (say[0])
            fprintf(hout, "  reading: on average %s; for your own stack, measure its kernels (orchsim calibrate)\n", say);
    }
    /* scale-out: the same model, sequence and micro-batch at 8 GPUs and at more */
    int header = 0;
    double worst_ratio = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            const FidResult *a = &res[i], *b = &res[j];
            if (!a->ok || !b->ok || a->run.gpus != 8 || b->run.gpus <= 8 || strcmp(a->run.model, b->run.model) ||
                a->run.seq_len != b->run.seq_len)
                continue;
            if (!header) {
                fprintf(hout, "# scale-out: tokens/s/GPU at N GPUs over the same model and sequence at 8 GPUs\n");
                fprintf(hout, "  %-9s %6s %5s %10s %10s %8s  %s\n", "model", "seq", "gpus", "published", "predicted", "error", "micro-batch / sharding");
                header = 1;
            }
            double rp = b->run.tps_pub / a->run.tps_pub, rs = b->tps_pred / a->tps_pred;
            worst_ratio = fmax(worst_ratio, fabs(rs / rp - 1));
            fprintf(hout, "  %-9s %6u %5u %10.3f %10.3f %+7.1f%%  %u/%s vs %u/%s\n", b->run.model, b->run.seq_len, b->run.gpus, rp,
                   rs, 100 * (rs / rp - 1), b->run.micro_batch, b->run.sharding, a->run.micro_batch, a->run.sharding);
        }
    if (header) fprintf(hout, "  worst scale-out ratio error: %.1f%%\n", 100 * worst_ratio);
    OS_CHECK(write_csv(csv, res, n, cal->name, files, file_of));
    fprintf(stderr, "# wrote %s\n", strcmp(csv, "-") ? csv : "the CSV to standard output");
    if (!strcmp(csv, "-") && !no_plot) { /* the figure reads a file */
        OS_CHECK(write_csv(csv_def, res, n, cal->name, files, file_of));
        fprintf(stderr, "# wrote %s (for the figure)\n", csv_def);
        csv = csv_def;
    }
    if (json) {
        OS_CHECK(write_json(json, res, n, mape, cal->name, files, nf, file_of));
        fprintf(stderr, "# wrote %s\n", json);
    }
    if (!no_colls) {
        double wb;
        OS_CHECK(collectives(hout, colls, coll_csv, &wb));
        fprintf(stderr, "# wrote %s\n", coll_csv);
    }
    if (!no_plot) {
        PlotOptions po;
        plot_options_init(&po);
        po.outdir = out;
        OS_CHECK(plot_parse_formats(&po.formats, format));
        const char *in[1] = {csv};
        OsStatus ps = plot_make(plot_kind_find("fidelity"), &po, in, 1);
        if (ps == OS_ERR_NODEV) fprintf(stderr, "# no figure: %s\n", os_last_error());
        else {
            OS_CHECK(ps);
            char fig[4300];
            plot_output_path(fig, sizeof fig, &po, "fidelity", po.formats & PLOT_PNG ? PLOT_PNG : po.formats & PLOT_SVG ? PLOT_SVG : PLOT_PDF);
            fprintf(stderr, "# wrote %s\n", fig);
        }
    }
    if (max_mape >= 0 && !(100 * mape <= max_mape))
        OS_FAIL(OS_ERR_RANGE, nf == 1 ? files[0] : "fidelity", "MAPE", "see bench/fidelity/README.md for what is and is not modelled",
                "%.1f%% exceeds --max-mape %.1f%%", 100 * mape, max_mape);
fail:
    for (uint32_t f = 0; f < FID_MAX_FILES; f++) fid_calibs_destroy(cals[f]), free(listed[f]);
    free(runs);
    free(res);
    free(file_of);
    free(cal);
    return st;
}
