/* cmd_compare.c — `orchsim compare TRACE --policies a,b,...`: the same trace, cluster and model
 * under each policy, one table (and the run-level CSV/JSON of analysis/FORMATS.md, with
 * provenance and the oracle row), the oracle floor, one feasibility warning per policy, and with
 * --explain the diagnosis of analysis/advise.h. Each policy is charged its deterministic
 * balancer cost (cli/polrun.h), so the table is the same run to run; the measured runtime is
 * shown beside it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "analysis/advise.h"
#include "analysis/baseline.h"
#include "analysis/plot.h"
#include "analysis/runtable.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/polrun.h"
#include "cli/simopts.h"

#define CMP_LINES 64

static void print_table(FILE *fp, const PolRun *runs, int n, const RunRow *oracle) {
    const ReplaySummary *s0 = &runs[0].sum;
    fprintf(fp, "%-11s %9s %8s %11s %6s %8s %6s", "policy", "step s", "+-95%", "tokens/s", "MFU", "speedup", "idle");
    for (uint32_t p = 0; p < s0->P; p++) {
        char h[40];
        snprintf(h, sizeof h, "imb:%s", s0->phase_name[p]);
        fprintf(fp, " %9s", h);
    }
    fprintf(fp, " %9s %9s %7s %9s %7s\n", "GB intra", "GB inter", "a2a ms", "charge ms", "meas ms");
    for (int i = 0; i < n; i++) {
        const RunRow *r = &runs[i].row;
        const ReplaySummary *s = &runs[i].sum;
        char sp[16] = "-", ci[16] = "-", me[16] = "-";
        if (!isnan(r->speedup_vs_none)) snprintf(sp, sizeof sp, "%.2fx", r->speedup_vs_none);
        if (!isnan(r->step_ci95_s)) snprintf(ci, sizeof ci, "%.4f", r->step_ci95_s);
        if (isfinite(r->balancer_measured_s_per_step)) snprintf(me, sizeof me, "%.3f", 1e3 * r->balancer_measured_s_per_step);
        fprintf(fp, "%-11s %9.4f %8s %11.4g %5.1f%% %8s %5.1f%%", runs[i].name, r->step_mean_s, ci, r->tokens_per_s,
               100 * r->mfu, sp, 100 * r->idle_frac);
        for (uint32_t p = 0; p < s->P; p++) fprintf(fp, " %9.3f", s->phase_imbalance[p]);
        fprintf(fp, " %9.3f %9.3f %7.2f %9.3f %7s\n", s->bytes_intra_per_step / 1e9, s->bytes_inter_per_step / 1e9,
               1e3 * s->a2a_s_per_step, 1e3 * s->balancer_s_per_step, me);
    }
    fprintf(fp, "%-11s %9.4f %8s %11.4g %5.1f%% %8s %6s", "oracle", oracle->step_mean_s, "-", oracle->tokens_per_s,
           100 * oracle->mfu, "-", "-");
    for (uint32_t p = 0; p < s0->P; p++) fprintf(fp, " %9.3f", 1.0);
    fprintf(fp, " %9s %9s %7s %9s %7s\n", "-", "-", "-", "-", "-");
    fprintf(fp, "\noracle = per-phase floor max(total/D, largest unit) summed over phases, no communication, no idle:\n"
           "no policy can beat it. imb:<phase> = mean over steps of max/mean per-rank compute in that phase\n"
           "(1.000 = perfectly balanced). speedup = tokens/s over `none`. GB moved = rebalancing all-to-all\n"
           "traffic per step (forward + backward). charge ms = the balancer time charged per step (%s%s);\n"
           "meas ms = the policy's measured runtime on this host (never used for the table's numbers%s).\n",
           runs[0].row.balancer_charge,
           !strcmp(runs[0].row.balancer_charge, "modelled")
               ? ": the policy's planning time from its complexity, sim/policy.c;\n"
                 "post policies wait for their first phase's share, pre policies plan in the data loader, off the\n"
                 "critical path"
               : "",
           !strcmp(runs[0].row.balancer_charge, "measured") ? " except with --measured-charge, as here" : "");
}

static void json_lines(FILE *fp, const char *key, const AdviseLine *l, size_t n) {
    fprintf(fp, ",\"%s\":[", key);
    for (size_t i = 0; i < n; i++) {
        fprintf(fp, "%s{\"tag\":", i ? "," : "");
        runtable_json_str(fp, l[i].tag);
        fputs(",\"text\":", fp);
        runtable_json_str(fp, l[i].text);
        fputs("}", fp);
    }
    fputs("]", fp);
}

OsStatus cmd_compare(int argc, char **argv) {
    OsStatus st = OS_OK;
    SimOpts so;
    simopts_init(&so);
    const char *policies = NULL, *csv = NULL, *json = NULL, *steps_dir = NULL, *tl_dir = NULL;
    uint32_t tl_ranks = REPLAY_TIMELINE_RANKS;
    const char *baseline = NULL, *base_par = NULL;
    int no_progress = 0, base_padded = 0, explain = 0, measured = 0;
    OptSpec specs[SIMOPTS_N + 13];
    simopts_specs(specs, &so);
    size_t ns = SIMOPTS_N;
    specs[ns++] = (OptSpec)OPTS_ROW_POLICIES(&policies);
    specs[ns++] = (OptSpec)OPTS_ROW_CSV(&csv, "run-level CSV, one row per policy and the oracle row (analysis/FORMATS.md)");
    specs[ns++] = (OptSpec)OPTS_ROW_JSON(&json, "the same rows as JSON, with provenance and warnings");
    specs[ns++] = (OptSpec){"steps-dir", 0, OPT_STR, &steps_dir, "DIR", "also write DIR/steps_<policy>.csv (step-level)", 0, 0};
    specs[ns++] = (OptSpec){"timeline-dir", 0, OPT_STR, &tl_dir, "DIR", "also write DIR/timeline_<policy>.json/.csv of the first step", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_TIMELINE_RANKS(&tl_ranks, "those timelines");
    specs[ns++] = (OptSpec){"explain", 0, OPT_FLAG, &explain, NULL, "print a diagnosis after the table: the phase holding the imbalance, floors set by single units, all-to-all, memory", 0, 0};
    specs[ns++] = (OptSpec){"measured-charge", 0, OPT_FLAG, &measured, NULL, "charge the balancer's measured host runtime instead of its modelled cost (numbers then vary run to run)", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_NO_PROGRESS(&no_progress);
    specs[ns++] = (OptSpec){"baseline", 0, OPT_STR, &baseline, "megatron", "add the row a Megatron-LM user would run: TP x PP (x CP) x DP, packed sequences, no rebalancing, the distributed optimizer", 0, 0};
    specs[ns++] = (OptSpec){"baseline-parallel", 0, OPT_STR, &base_par, "tp=T,pp=P,cp=C", "the baseline's layout (default: the smallest TP, then PP, that fits)", 0, 0};
    specs[ns++] = (OptSpec){"baseline-padded", 0, OPT_FLAG, &base_padded, NULL, "the baseline pads each micro-batch to its longest sequence instead of packing", 0, 0};
    static char details[4096];
    size_t dl = (size_t)snprintf(details, sizeof details, "policies:\n");
    for (uint32_t i = 0; i < policy_count() && dl < sizeof details; i++)
        dl += (size_t)snprintf(details + dl, sizeof details - dl, "  %-11s %s %s\n", policy_at(i)->name,
                               policy_at(i)->kind == POLICY_POST ? "[post]" : "[pre] ", policy_at(i)->desc);
    if (dl < sizeof details)
        snprintf(details + dl, sizeof details - dl,
                 "  %-11s        the per-phase lower bound max(total/D, largest unit): always shown\n\n"
                 "Each policy is charged its modelled planning cost per step (sim/policy.c), so the table is the same\n"
                 "on every host and run; the measured runtime is shown beside it. `orchsim advise` ranks the rows.\n",
                 "oracle");
    static CmdHelp help = {"compare", "orchsim compare TRACE.h5 [--policies all|a,b,...] [--explain] [options]",
                           "Replay the same trace on the same cluster under several balancing policies and\n"
                           "print one comparison table.",
                           NULL};
    help.details = details;
    const char *pos[1];
    const char *names[POLRUN_MAX];
    char *list = NULL;
    int np = 0, nrows = 0;
    Trace *t = NULL;
    PolRun *runs = NULL;
    AdviseRun *ar = NULL;
    RunRow oracle, *rows = NULL;
    RunProv *prov = NULL;
    ReplayConfig cfg, bcfg;
    char bdesc[256] = "";
    OsOutFile fc, fj;
    int c_open = 0, j_open = 0, held = 0, made_steps_dir = 0, made_tl_dir = 0;
    uint64_t out_mark = 0;
    PolScratch sc;
    memset(&sc, 0, sizeof sc);
    AdviseLine *diag = NULL, *warn = NULL;
    size_t n_diag = 0, n_warn = 0;
    static char command[RUNPROV_CMD];
    runprov_command(command, sizeof command, argc, argv); /* before getopt reorders argv */
    OS_CHECK(opts_parse(specs, ns, &help, argc, argv, pos, 1, 1, NULL));

    /* every argument checked before any work */
    OS_CHECK(polrun_parse_list(names, &np, &list, policies));
    if (baseline && strcmp(baseline, "megatron"))
        OS_FAIL(OS_ERR_ARG, "--baseline", baseline, "the one baseline is 'megatron'", "unknown baseline");
    if ((base_par || base_padded) && !baseline)
        OS_FAIL(OS_ERR_ARG, base_par ? "--baseline-parallel" : "--baseline-padded", NULL, "add --baseline megatron",
                "only applies to the baseline row");
    if (measured && so.balancer_cost_s >= 0)
        OS_FAIL(OS_ERR_ARG, "--measured-charge", NULL, "give one of --measured-charge and --balancer-cost",
                "both set the balancer charge");
    OS_CHECK(trace_open(&t, pos[0]));
    replay_config_init(&cfg);
    OS_CHECK(simopts_resolve(&cfg, &so, t));
    cfg.timeline_ranks = tl_ranks;
    if (csv) OS_CHECK(os_output_check(csv, 1));
    if (json) OS_CHECK(os_output_check(json, 1));
    simopts_announce(stderr, &so, &cfg, pos[0]);
    PolRunOpts po;
    OS_CHECK(polrun_opts_init(&po, &prov, pos[0], command, measured, so.balancer_cost_s, !no_progress, t, &cfg));
    fprintf(stderr, "# balancer charge: %s\n", polrun_charge_name(po.charge));
    /* step and timeline files go to a scratch folder first and are copied into place with the
     * other outputs at the end: all of them or none, and the timelines get their title lines */
    if (steps_dir || tl_dir) {
        OS_CHECK(polrun_scratch_make(&sc));
        po.scratch = &sc;
        if (steps_dir) po.steps_dir = sc.dir;
        if (tl_dir) po.timeline_dir = sc.dir;
    }
    runs = calloc((size_t)np + 1, sizeof *runs);
    ALLOC_CHECK(runs);
    for (int i = 0; i < np; i++) {
        fprintf(stderr, "# policy %s (%d/%d)\n", names[i], i + 1, np);
        OS_CHECK(polrun_one(&runs[i], &cfg, t, names[i], NULL, &po));
    }
    nrows = np;
    if (baseline) {
        /* Megatron-LM's row: its own layout on the same GPUs, the same trace, no rebalancing */
        OS_CHECK(baseline_megatron(&bcfg, &cfg, t, base_par, base_padded, bdesc, sizeof bdesc));
        fprintf(stderr, "# baseline megatron: %s; %s sequences, policy none, distributed optimizer, micro-batch %u examples%s\n",
                bdesc, base_padded ? "padded" : "packed", bcfg.micro_batch, bcfg.micro_batch_tokens ? " (and the token budget)" : "");
        PolRunOpts bo = po;
        bo.steps_dir = bo.timeline_dir = NULL;
        OS_CHECK(polrun_one(&runs[np], &bcfg, t, "megatron", "dist-opt", &bo));
        nrows++;
    }
    polrun_oracle_row(&oracle, &runs[0]);
    rows = malloc(((size_t)nrows + 1) * sizeof *rows);
    ALLOC_CHECK(rows);
    for (int i = 0; i < nrows; i++) rows[i] = runs[i].row;
    rows[nrows] = oracle;
    runtable_speedups(rows, (size_t)nrows + 1);
    for (int i = 0; i < np; i++) runs[i].row.speedup_vs_none = rows[i].speedup_vs_none;
    oracle.speedup_vs_none = rows[nrows].speedup_vs_none;
    rows[nrows] = oracle;
    if (baseline) { /* the baseline's speedup over `none`, if it ran */
        runs[np].row.speedup_vs_none = NAN;
        for (int i = 0; i < np; i++)
            if (!strcmp(names[i], "none") && runs[i].row.tokens_per_s > 0)
                runs[np].row.speedup_vs_none = runs[np].row.tokens_per_s / runs[i].row.tokens_per_s;
        rows[np] = runs[np].row;
    }
    /* the human table goes to stderr when a machine output is "-" (stdout) */
    int to_stdout = (csv && !strcmp(csv, "-")) || (json && !strcmp(json, "-"));
    FILE *hu = to_stdout ? stderr : stdout;
    print_table(hu, runs, nrows, &oracle);
    if (baseline) {
        fprintf(hu, "\nmegatron = %s, %s sequences, no rebalancing, distributed optimizer (the cost model is the same\n"
               "for every row). Throughput against it:", bdesc, base_padded ? "padded" : "packed");
        for (int i = 0; i < np; i++)
            fprintf(hu, " %s %.2fx%s", names[i],
                   runs[np].row.tokens_per_s > 0 ? runs[i].row.tokens_per_s / runs[np].row.tokens_per_s : 0.0,
                   i + 1 < np ? "," : "\n");
    }
    /* feasibility: one warning line per policy; the diagnosis with --explain */
    ar = calloc((size_t)nrows, sizeof *ar);
    diag = calloc(CMP_LINES, sizeof *diag);
    warn = calloc(CMP_LINES, sizeof *warn);
    ALLOC_CHECK(ar);
    ALLOC_CHECK(diag);
    ALLOC_CHECK(warn);
    int none = -1;
    for (int i = 0; i < nrows; i++) {
        ar[i] = runs[i].run; /* shallow: the runs own the arrays */
        if (i < np && !strcmp(names[i], "none")) none = i;
    }
    n_warn = advise_warnings(warn, CMP_LINES, ar, (size_t)nrows);
    for (size_t i = 0; i < n_warn; i++) fprintf(hu, "%swarning: %s\n", i ? "" : "\n", warn[i].text);
    if (explain) {
        size_t order[POLRUN_MAX];
        advise_rank(order, ar, (size_t)np); /* the fastest policy (not the baseline) is diagnosed */
        n_diag = advise_diagnose(diag, CMP_LINES, ar, (size_t)np, (int)order[0], none);
        fprintf(hu, "\ndiagnosis (the fastest here, %s, and the as-drawn batches):\n", names[order[0]]);
        for (size_t i = 0; i < n_diag; i++) fprintf(hu, "  - %s: %s\n", diag[i].tag, diag[i].text);
    }

    out_mark = os_outputs_hold(); /* every output or none (released at fail:) */
    held = 1;
    if (steps_dir) made_steps_dir = mkdir(steps_dir, 0777) == 0;
    if (tl_dir) made_tl_dir = mkdir(tl_dir, 0777) == 0;
    for (int i = 0; i < np; i++) {
        char src[4400], dst[4400];
        if (steps_dir) {
            snprintf(src, sizeof src, "%s/steps_%s.csv", sc.dir, names[i]);
            snprintf(dst, sizeof dst, "%s/steps_%s.csv", steps_dir, names[i]);
            OS_CHECK(polrun_copy_file(dst, src, NULL));
        }
        if (tl_dir) {
            snprintf(src, sizeof src, "%s/timeline_%s.json", sc.dir, names[i]);
            snprintf(dst, sizeof dst, "%s/timeline_%s.json", tl_dir, names[i]);
            OS_CHECK(polrun_copy_file(dst, src, NULL));
            snprintf(src, sizeof src, "%s/timeline_%s.csv", sc.dir, names[i]);
            snprintf(dst, sizeof dst, "%s/timeline_%s.csv", tl_dir, names[i]);
            OS_CHECK(polrun_copy_file(dst, src, NULL));  /* replay titled it (its # lines) */
        }
    }
    if (csv) {
        OS_CHECK(os_outfile_open(&fc, csv, 1));
        c_open = 1;
        runtable_write_header(fc.fp);
        for (int i = 0; i <= nrows; i++) runtable_write_row(fc.fp, &rows[i]);
        c_open = 0;
        OS_CHECK(os_outfile_commit(&fc));
    }
    if (json) {
        OS_CHECK(os_outfile_open(&fj, json, 1));
        j_open = 1;
        fputs("{\"provenance\":{", fj.fp);
        runprov_json_members(fj.fp, &runs[0].row);
        fputs("},\"trace\":", fj.fp);
        runtable_json_str(fj.fp, pos[0]);
        fputs(",\"model\":", fj.fp);
        runtable_json_str(fj.fp, cfg.model->name);
        fprintf(fj.fp, ",\"gpus\":%u,\"dp\":%u,\"oracle\":{\"step_mean_s\":%.9g,\"tokens_per_s\":%.9g,\"mfu\":%.6g}",
                cfg.cluster.gpus, cfg.cluster.dp, oracle.step_mean_s, oracle.tokens_per_s, oracle.mfu);
        json_lines(fj.fp, "warnings", warn, n_warn);
        if (explain) json_lines(fj.fp, "diagnosis", diag, n_diag);
        fputs(",\"runs\":[\n", fj.fp);
        for (int i = 0; i < nrows; i++) {
            fputs(i ? ",\n" : "", fj.fp);
            polrun_json_row(fj.fp, &runs[i]);
        }
        fprintf(fj.fp, "\n]}\n");
        j_open = 0;
        OS_CHECK(os_outfile_commit(&fj));
    }
fail:
    if (c_open) os_outfile_abort(&fc);
    if (j_open) os_outfile_abort(&fj);
    if (held) st = os_outputs_release(out_mark, st);
    if (st != OS_OK && st != OS_DONE) { /* a directory this run made stays only with its files */
        if (made_steps_dir) rmdir(steps_dir);
        if (made_tl_dir) rmdir(tl_dir);
    }
    polrun_scratch_remove(&sc);
    for (int i = 0; runs && i < nrows; i++) polrun_free(&runs[i]);
    free(runs);
    free(ar);
    free(rows);
    free(diag);
    free(warn);
    free(prov);
    free(list);
    trace_close(t);
    return st;
}
