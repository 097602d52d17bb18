/* cmd_compare.c — `orchsim compare TRACE --policies a,b,...`: the same trace, cluster and model
 * under each policy, one table (and the run-level CSV/JSON of analysis/FORMATS.md), with the
 * oracle floor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/baseline.h"
#include "analysis/runtable.h"
#include "cli/commands.h"
#include "cli/simopts.h"
#include "cli/simout.h"
#include "base/util.h"

#define CMP_MAX_POLICIES 32

typedef struct {
    RunSeries series;   /* per-step values for the confidence intervals */
    int phase_col[REPLAY_MAX_PHASES];
    size_t n;
    double oracle_s, tokens; /* sums over steps */
    double model_flops;
    FILE *csv;
    const char *policy;
    uint32_t P;
    char names[REPLAY_MAX_PHASES][32];
} CmpSink;

static OsStatus on_step(const StepResult *r, void *user) {
    CmpSink *s = user;
    OsStatus st = run_series_push(&s->series, r, s->phase_col, s->P);
    if (st != OS_OK) return st;
    s->n++;
    for (uint32_t p = 0; p < s->P; p++) s->oracle_s += r->phase_oracle_s[p];
    s->tokens += (double)r->llm_tokens;
    s->model_flops += r->model_flops;
    if (s->csv) simout_step_csv_row(s->csv, s->policy, r, s->P, (const char(*)[32])s->names);
    return OS_OK;
}

/* A JSON number, or null for an absent (NaN) value. */
static void json_num(FILE *fp, double v) {
    if (isfinite(v)) fprintf(fp, "%.9g", v);
    else fputs("null", fp);
}

static void print_table(const RunRow *rows, size_t n, const ReplaySummary *sums, const char (*pols)[64],
                        double oracle_s, double oracle_tps, double oracle_mfu) {
    const ReplaySummary *s0 = &sums[0];
    printf("%-10s %9s %8s %11s %6s %8s %6s", "policy", "step s", "+-95%", "tokens/s", "MFU", "speedup", "idle");
    for (uint32_t p = 0; p < s0->P; p++) {
        char h[40];
        snprintf(h, sizeof h, "imb:%s", s0->phase_name[p]);
        printf(" %9s", h);
    }
    printf(" %9s %9s %7s %7s\n", "GB intra", "GB inter", "a2a ms", "bal ms");
    for (size_t i = 0; i < n; i++) {
        const RunRow *r = &rows[i];
        const ReplaySummary *s = &sums[i];
        char sp[16] = "-", ci[16] = "-";
        if (!isnan(r->speedup_vs_none)) snprintf(sp, sizeof sp, "%.2fx", r->speedup_vs_none);
        if (!isnan(r->step_ci95_s)) snprintf(ci, sizeof ci, "%.4f", r->step_ci95_s);
        printf("%-10s %9.4f %8s %11.4g %5.1f%% %8s %5.1f%%", pols[i], r->step_mean_s, ci, r->tokens_per_s,
               100 * r->mfu, sp, 100 * r->idle_frac);
        for (uint32_t p = 0; p < s->P; p++) printf(" %9.3f", s->phase_imbalance[p]);
        printf(" %9.3f %9.3f %7.2f %7.3f\n", s->bytes_intra_per_step / 1e9, s->bytes_inter_per_step / 1e9,
               1e3 * s->a2a_s_per_step, 1e3 * s->balancer_s_per_step);
    }
    printf("%-10s %9.4f %8s %11.4g %5.1f%% %8s %6s", "oracle", oracle_s, "-", oracle_tps, 100 * oracle_mfu, "-", "-");
    for (uint32_t p = 0; p < s0->P; p++) printf(" %9.3f", 1.0);
    printf(" %9s %9s %7s %7s\n", "-", "-", "-", "-");
    printf("\noracle = per-phase floor max(total/D, largest unit) summed over phases, no communication, no idle:\n"
           "no policy can beat it. imb:<phase> = mean over steps of max/mean per-rank compute in that phase\n"
           "(1.000 = perfectly balanced). speedup = tokens/s over `none`. GB moved = rebalancing all-to-all\n"
           "traffic per step (forward + backward). bal ms = the policy's measured runtime per step.\n");
}

OsStatus cmd_compare(int argc, char **argv) {
    OsStatus st = OS_OK;
    SimOpts so;
    simopts_init(&so);
    const char *policies = NULL, *csv = NULL, *json = NULL, *steps_dir = NULL, *tl_dir = NULL;
    const char *baseline = NULL, *base_par = NULL;
    int no_progress = 0, base_padded = 0;
    OptSpec specs[SIMOPTS_N + 11];
    simopts_specs(specs, &so);
    size_t ns = SIMOPTS_N;
    specs[ns++] = (OptSpec){"policies", 'p', OPT_STR, &policies, "LIST", "comma-separated policies, or 'all' (default: all)", 0, 0};
    specs[ns++] = (OptSpec){"csv", 0, OPT_STR, &csv, "FILE", "run-level CSV, one row per policy (analysis/FORMATS.md)", 0, 0};
    specs[ns++] = (OptSpec){"json", 0, OPT_STR, &json, "FILE", "the same rows as JSON", 0, 0};
    specs[ns++] = (OptSpec){"steps-dir", 0, OPT_STR, &steps_dir, "DIR", "also write DIR/steps_<policy>.csv (step-level)", 0, 0};
    specs[ns++] = (OptSpec){"timeline-dir", 0, OPT_STR, &tl_dir, "DIR", "also write DIR/timeline_<policy>.json/.csv of the first step", 0, 0};
    specs[ns++] = (OptSpec){"no-progress", 0, OPT_FLAG, &no_progress, NULL, "no progress bar on stderr", 0, 0};
    specs[ns++] = (OptSpec){"baseline", 0, OPT_STR, &baseline, "megatron", "add the row a Megatron-LM user would run: TP x PP (x CP) x DP, packed sequences, no rebalancing, the distributed optimizer", 0, 0};
    specs[ns++] = (OptSpec){"baseline-parallel", 0, OPT_STR, &base_par, "tp=T,pp=P,cp=C", "the baseline's layout (default: the smallest TP, then PP, that fits)", 0, 0};
    specs[ns++] = (OptSpec){"baseline-padded", 0, OPT_FLAG, &base_padded, NULL, "the baseline pads each micro-batch to its longest sequence instead of packing", 0, 0};
    static char details[4096];
    size_t dl = (size_t)snprintf(details, sizeof details, "policies:\n");
    for (uint32_t i = 0; i < policy_count() && dl < sizeof details; i++)
        dl += (size_t)snprintf(details + dl, sizeof details - dl, "  %-10s %s %s\n", policy_at(i)->name,
                               policy_at(i)->kind == POLICY_POST ? "[post]" : "[pre] ", policy_at(i)->desc);
    if (dl < sizeof details)
        snprintf(details + dl, sizeof details - dl,
                 "  %-10s        the per-phase lower bound max(total/D, largest unit): always shown\n", "oracle");
    static CmdHelp help = {"compare", "orchsim compare TRACE.h5 [--policies none,lpt,isf,post,post-node] [options]",
                           "Replay the same trace on the same cluster under several balancing policies and\n"
                           "print one comparison table.",
                           NULL};
    help.details = details;
    const char *pos[1];
    char *list = NULL, *names[CMP_MAX_POLICIES];
    int np = 0;
    Trace *t = NULL;
    RunRow rows[CMP_MAX_POLICIES + 1];
    ReplaySummary sums[CMP_MAX_POLICIES + 1];
    char pols[CMP_MAX_POLICIES + 1][64];
    ReplayConfig bcfg;
    char bdesc[256] = "";
    CmpSink sink;
    memset(&sink, 0, sizeof sink);
    OsOutFile fc, fj, fs;
    int c_open = 0, j_open = 0, s_open = 0;
    double oracle_s = 0, oracle_tps = 0, oracle_mfu = 0;
    ReplayConfig cfg;
    int made_steps_dir = 0, made_tl_dir = 0;
    uint64_t out_mark = os_outputs_hold(); /* all outputs or none (released at fail:) */
    OS_CHECK(opts_parse(specs, ns, &help, argc, argv, pos, 1, 1, NULL));

    /* policy list: 'all' or a comma list checked against the registry before any work */
    if (!policies || !strcmp(policies, "all")) {
        for (uint32_t i = 0; i < policy_count() && np < CMP_MAX_POLICIES; i++) names[np++] = (char *)policy_at(i)->name;
    } else {
        list = strdup(policies);
        ALLOC_CHECK(list);
        np = opts_split(list, names, CMP_MAX_POLICIES);
    }
    if (np == 0) OS_FAIL(OS_ERR_ARG, "--policies", NULL, "e.g. --policies none,lpt,post", "empty list");
    if (baseline && strcmp(baseline, "megatron"))
        OS_FAIL(OS_ERR_ARG, "--baseline", baseline, "the one baseline is 'megatron'", "unknown baseline");
    if ((base_par || base_padded) && !baseline)
        OS_FAIL(OS_ERR_ARG, base_par ? "--baseline-parallel" : "--baseline-padded", NULL, "add --baseline megatron",
                "only applies to the baseline row");
    for (int i = 0; i < np; i++) {
        if (!strcmp(names[i], "oracle"))
            OS_FAIL(OS_ERR_ARG, "--policies", "oracle", "leave it out: every table shows the oracle row",
                    "the oracle is a lower bound, not a policy");
        if (!policy_find(names[i])) {
            const char *sug = policy_suggest(names[i]);
            char hint[128];
            snprintf(hint, sizeof hint, sug ? "did you mean '%s'?" : "see `orchsim compare --help`", sug);
            OS_FAIL(OS_ERR_ARG, "--policies", names[i], hint, "unknown policy");
        }
    }
    OS_CHECK(trace_open(&t, pos[0]));
    replay_config_init(&cfg);
    OS_CHECK(simopts_resolve(&cfg, &so, t));
    cfg.progress = !no_progress;
    if (csv) OS_CHECK(os_output_check(csv, 1));
    if (json) OS_CHECK(os_output_check(json, 1));
    simopts_announce(stderr, &so, &cfg, pos[0]);
    if (steps_dir) made_steps_dir = mkdir(steps_dir, 0777) == 0;
    if (tl_dir) made_tl_dir = mkdir(tl_dir, 0777) == 0;

    for (int i = 0; i < np; i++) {
        char path[4096], tl[4096];
        cfg.policy = policy_find(names[i]);
        snprintf(pols[i], sizeof pols[i], "%s", names[i]);
        fprintf(stderr, "# policy %s (%d/%d)\n", names[i], i + 1, np);
        sink.n = 0;
        run_series_free(&sink.series);
        OS_CHECK(runtable_phase_cols(sink.phase_col, &sink.P, cfg.model));
        sink.oracle_s = sink.tokens = sink.model_flops = 0;
        sink.policy = names[i];
        sink.P = replay_phase_names(sink.names, cfg.model);
        sink.csv = NULL;
        if (steps_dir) {
            snprintf(path, sizeof path, "%s/steps_%s.csv", steps_dir, names[i]);
            OS_CHECK(os_outfile_open(&fs, path, 1));
            s_open = 1;
            simout_step_csv_header(fs.fp);
            sink.csv = fs.fp;
        }
        cfg.timeline_path = NULL;
        if (tl_dir) {
            snprintf(tl, sizeof tl, "%s/timeline_%s.json", tl_dir, names[i]);
            cfg.timeline_path = tl;
            cfg.timeline_step = 0;
        }
        OS_CHECK(replay_run(&sums[i], &cfg, t, on_step, &sink));
        if (s_open) {
            s_open = 0;
            OS_CHECK(os_outfile_commit(&fs));
        }
        runrow_init(&rows[i]);
        OS_CHECK(runrow_fill(&rows[i], &sums[i], &cfg, names[i], cfg.model->name, simopts_setup_name(cfg.setup),
                             sink.series.step_s, sink.n));
        OS_CHECK(runrow_add_cis(&rows[i], &sink.series));
        if (i == 0) {
            double steps = (double)sink.n;
            oracle_s = sink.oracle_s / steps;
            oracle_tps = sink.oracle_s > 0 ? sink.tokens / sink.oracle_s : 0;
            oracle_mfu = sink.oracle_s > 0 ? sink.model_flops / (sink.oracle_s * cfg.cluster.gpus * cfg.cluster.peak_flops) : 0;
        }
    }
    int nrows = np;
    if (baseline) {
        /* Megatron-LM's row: its own layout on the same GPUs, the same trace, no rebalancing */
        OS_CHECK(baseline_megatron(&bcfg, &cfg, t, base_par, base_padded, bdesc, sizeof bdesc));
        bcfg.progress = !no_progress;
        fprintf(stderr, "# baseline megatron: %s; %s sequences, policy none, distributed optimizer, micro-batch %u examples%s\n",
                bdesc, base_padded ? "padded" : "packed", bcfg.micro_batch, bcfg.micro_batch_tokens ? " (and the token budget)" : "");
        snprintf(pols[np], sizeof pols[np], "megatron");
        sink.n = 0;
        run_series_free(&sink.series);
        OS_CHECK(runtable_phase_cols(sink.phase_col, &sink.P, bcfg.model));
        sink.oracle_s = sink.tokens = sink.model_flops = 0;
        sink.policy = "megatron";
        sink.P = replay_phase_names(sink.names, bcfg.model);
        sink.csv = NULL;
        OS_CHECK(replay_run(&sums[np], &bcfg, t, on_step, &sink));
        runrow_init(&rows[np]);
        OS_CHECK(runrow_fill(&rows[np], &sums[np], &bcfg, "megatron", bcfg.model->name, "dist-opt", sink.series.step_s,
                             sink.n));
        OS_CHECK(runrow_add_cis(&rows[np], &sink.series));
        nrows++;
    }
    runtable_speedups(rows, (size_t)nrows);
    for (int i = 0; baseline && i < np; i++) /* the baseline's speedup over `none`, if it ran */
        if (!strcmp(pols[i], "none") && rows[i].tokens_per_s > 0)
            rows[np].speedup_vs_none = rows[np].tokens_per_s / rows[i].tokens_per_s;
    print_table(rows, (size_t)nrows, sums, (const char(*)[64])pols, oracle_s, oracle_tps, oracle_mfu);
    if (baseline) {
        printf("\nmegatron = %s, %s sequences, no rebalancing, distributed optimizer (the cost model is the same\n"
               "for every row). Throughput against it:", bdesc, base_padded ? "padded" : "packed");
        for (int i = 0; i < np; i++)
            printf(" %s %.2fx%s", pols[i], rows[np].tokens_per_s > 0 ? rows[i].tokens_per_s / rows[np].tokens_per_s : 0.0,
                   i + 1 < np ? "," : "\n");
    }
    if (csv) {
        OS_CHECK(os_outfile_open(&fc, csv, 1));
        c_open = 1;
        runtable_write_header(fc.fp);
        for (int i = 0; i < nrows; i++) runtable_write_row(fc.fp, &rows[i]);
        c_open = 0;
        OS_CHECK(os_outfile_commit(&fc));
    }
    if (json) {
        OS_CHECK(os_outfile_open(&fj, json, 1));
        j_open = 1;
        fprintf(fj.fp, "{\"trace\":\"%s\",\"model\":\"%s\",\"gpus\":%u,\"dp\":%u,\"oracle\":{\"step_mean_s\":%.9g,"
                       "\"tokens_per_s\":%.9g,\"mfu\":%.6g},\"runs\":[\n",
                pos[0], cfg.model->name, cfg.cluster.gpus, cfg.cluster.dp, oracle_s, oracle_tps, oracle_mfu);
        for (int i = 0; i < nrows; i++) {
            const RunRow *r = &rows[i];
            fprintf(fj.fp, "%s{\"policy\":\"%s\",\"steps\":%llu,\"step_mean_s\":%.9g,\"step_ci95_s\":",
                    i ? ",\n" : "", pols[i], (unsigned long long)r->steps, r->step_mean_s);
            json_num(fj.fp, r->step_ci95_s);
            fprintf(fj.fp, ",\"step_p50_s\":%.9g,\"step_p99_s\":%.9g,\"tokens_per_s\":%.9g,\"samples_per_s\":%.9g,"
                           "\"mfu\":%.6g,\"mfu_noattn\":%.6g,\"mfu_causal\":%.6g,\"hfu\":%.6g,\"speedup_vs_none\":",
                    r->step_p50_s, r->step_p99_s, r->tokens_per_s, r->samples_per_s, r->mfu, r->mfu_noattn,
                    r->mfu_causal, r->hfu);
            json_num(fj.fp, r->speedup_vs_none);
            fprintf(fj.fp, ",\"tokens_per_s_ci95\":");
            json_num(fj.fp, r->tokens_per_s_ci95);
            fprintf(fj.fp, ",\"mfu_ci95\":");
            json_num(fj.fp, r->mfu_ci95);
            fprintf(fj.fp, ",\"idle_frac_ci95\":");
            json_num(fj.fp, r->idle_frac_ci95);
            fprintf(fj.fp, ",\"idle_frac\":%.6g,\"bytes_intra_per_step\":%.9g,\"bytes_inter_per_step\":%.9g,"
                           "\"a2a_s_per_step\":%.9g,\"balancer_s_per_step\":%.9g,\"phases\":{",
                    r->idle_frac, r->bytes_intra_per_step, r->bytes_inter_per_step, r->a2a_s_per_step,
                    r->balancer_s_per_step);
            for (uint32_t p = 0; p < sums[i].P; p++)
                fprintf(fj.fp, "%s\"%s\":{\"imbalance\":%.6g,\"idle_frac\":%.6g}", p ? "," : "", sums[i].phase_name[p],
                        sums[i].phase_imbalance[p], sums[i].phase_idle_frac[p]);
            fprintf(fj.fp, "}}");
        }
        fprintf(fj.fp, "\n]}\n");
        j_open = 0;
        OS_CHECK(os_outfile_commit(&fj));
    }
fail:
    if (c_open) os_outfile_abort(&fc);
    if (j_open) os_outfile_abort(&fj);
    if (s_open) os_outfile_abort(&fs);
    run_series_free(&sink.series);
    free(list);
    trace_close(t);
    st = os_outputs_release(out_mark, st);
    if (st != OS_OK && st != OS_DONE) { /* a directory this run made stays only with its files */
        if (made_steps_dir) rmdir(steps_dir);
        if (made_tl_dir) rmdir(tl_dir);
    }
    return st;
}
