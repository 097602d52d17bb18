/* cmd_replay.c — `orchsim replay TRACE`: one policy, one cluster, the summary table, per-step
 * CSV/JSON and a Chrome-trace timeline. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "analysis/runtable.h"
#include "cli/commands.h"
#include "cli/simopts.h"
#include "cli/simout.h"
#include "base/util.h"

typedef struct {
    RunSeries series; /* per-step values for the confidence intervals */
    int phase_col[REPLAY_MAX_PHASES];
    FILE *csv, *json, *loads, *assign;
    uint32_t dp_per_node;
    const char *policy;
    uint32_t P;
    char names[REPLAY_MAX_PHASES][32];
    uint64_t n;
} StepSink;

static OsStatus on_step(const StepResult *r, void *user) {
    StepSink *s = user;
    OsStatus st = run_series_push(&s->series, r, s->phase_col, s->P);
    if (st != OS_OK) return st;
    if (s->csv) simout_step_csv_row(s->csv, s->policy, r, s->P, (const char(*)[32])s->names);
    if (s->json) {
        fputs(s->n ? ",\n" : "", s->json);
        simout_step_json(s->json, s->policy, r, s->P, (const char(*)[32])s->names);
    }
    if (s->loads) simout_loads_csv_rows(s->loads, s->policy, r, (const char(*)[32])s->names, s->dp_per_node);
    if (s->assign) simout_assign_csv_rows(s->assign, s->policy, r, (const char(*)[32])s->names);
    s->n++;
    return OS_OK;
}

/* Open an optional CSV output (written atomically) and its header; *fp stays NULL when no
 * path was given. */
static OsStatus open_csv(OsOutFile *f, int *is_open, FILE **fp, const char *path, void (*header)(FILE *)) {
    if (!path) return OS_OK;
    OsStatus st = os_outfile_open(f, path, 1);
    if (st != OS_OK) return st;
    *is_open = 1;
    header(f->fp);
    *fp = f->fp;
    return OS_OK;
}

OsStatus cmd_replay(int argc, char **argv) {
    OsStatus st = OS_OK;
    SimOpts so;
    simopts_init(&so);
    const char *policy = "none", *csv = NULL, *json = NULL, *timeline = NULL, *loads = NULL, *assign = NULL;
    uint64_t tl_step = 0;
    uint32_t tl_ranks = REPLAY_TIMELINE_RANKS;
    int no_progress = 0;
    FILE *human = stdout;
    OptSpec specs[SIMOPTS_N + 10];
    simopts_specs(specs, &so);
    size_t ns = SIMOPTS_N;
    specs[ns++] = (OptSpec){"policy", 'p', OPT_STR, &policy, "NAME", "balancing policy (see `orchsim compare --help`)", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_CSV(&csv, "per-step CSV (analysis/FORMATS.md, step-level)");
    specs[ns++] = (OptSpec)OPTS_ROW_JSON(&json, "per-step JSON array and the summary");
    specs[ns++] = (OptSpec){"timeline", 't', OPT_STR, &timeline, "FILE.json", "Chrome trace of one step (Perfetto); a .csv is written beside it", 0, 0};
    specs[ns++] = (OptSpec){"timeline-step", 0, OPT_U64, &tl_step, "K", "which replayed step (0-based) the timeline shows", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_TIMELINE_RANKS(&tl_ranks, "the timeline");
    specs[ns++] = (OptSpec){"loads", 0, OPT_STR, &loads, "FILE", "per-step per-rank per-phase loads CSV (analysis/FORMATS.md; '-' = stdout)", 0, 0};
    specs[ns++] = (OptSpec){"assignment", 0, OPT_STR, &assign, "FILE", "per-step per-unit placements CSV: drawn, home, computing rank ('-' = stdout)", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_NO_PROGRESS(&no_progress);
    static const CmdHelp help = {
        "replay", "orchsim replay TRACE.h5 [options]",
        "Replay a modality-composition trace on a simulated cluster under one balancing policy and\n"
        "predict step time, throughput, MFU, idle time and per-phase imbalance.",
        "The resolved configuration is printed as '#' lines on stderr. Output files are written to a\n"
        "temporary name and renamed when complete. Every number is computed from the trace, the model\n"
        "preset, the cluster figures and the calibration table (see README.md)."};
    const char *pos[1];
    Trace *t = NULL;
    OsOutFile fc, fj, fl, fa;
    int c_open = 0, j_open = 0, l_open = 0, a_open = 0;
    ReplayConfig cfg;
    ReplaySummary sum;
    StepSink sink = {0};
    uint64_t out_mark = os_outputs_hold(); /* all outputs or none (released at fail:) */
    OS_CHECK(opts_parse(specs, ns, &help, argc, argv, pos, 1, 1, NULL));
    {
        /* one output may take stdout; the summary then goes to stderr */
        const char *names[] = {"--csv", "--json", "--loads", "--assignment"}, *paths[] = {csv, json, loads, assign};
        OS_CHECK(opts_stdout_claim(&human, names, paths, 4));
        if (timeline && !strcmp(timeline, "-"))
            OS_FAIL(OS_ERR_ARG, "--timeline", "-", "give a file name (FILE.json)",
                    "is two files (the JSON and a .csv beside it): it cannot be standard output");
    }
    replay_config_init(&cfg);
    cfg.policy = policy_find(policy);
    if (!cfg.policy) {
        char hint[160];
        const char *sug = policy_suggest(policy);
        snprintf(hint, sizeof hint, sug ? "did you mean '%s'?" : "see `orchsim compare --help`", sug);
        OS_FAIL(OS_ERR_ARG, "--policy", NULL, hint, "unknown policy '%s'", policy);
    }
    OS_CHECK(trace_open(&t, pos[0]));
    {
        /* refuse bad outputs (the trace itself, a missing directory, two at one path) and a
         * timeline step that is never replayed before any work, not after it */
        const char *outs[] = {csv, json, loads, assign, timeline};
        for (size_t i = 0; i < OS_ARRAY_LEN(outs); i++)
            if (outs[i]) OS_CHECK(os_output_check(outs[i], 1));
        uint64_t total = trace_n_steps(t), avail = total > so.skip ? total - so.skip : 0;
        uint64_t run = so.steps && so.steps < avail ? so.steps : avail;
        if (timeline && tl_step >= run)
            OS_FAIL(OS_ERR_ARG, "--timeline-step", NULL, "give a step in 0..steps-1 of this replay",
                    "%llu, but this replay has %llu step%s (--skip %llu, --steps %llu, %llu in the trace)",
                    (unsigned long long)tl_step, (unsigned long long)run, run == 1 ? "" : "s",
                    (unsigned long long)so.skip, (unsigned long long)so.steps, (unsigned long long)total);
    }
    OS_CHECK(simopts_resolve(&cfg, &so, t));
    cfg.timeline_path = timeline;
    cfg.timeline_step = tl_step;
    cfg.timeline_ranks = tl_ranks;
    cfg.progress = !no_progress;
    simopts_announce(stderr, &so, &cfg, pos[0]);
    OS_CHECK(open_csv(&fc, &c_open, &sink.csv, csv, simout_step_csv_header));
    OS_CHECK(open_csv(&fl, &l_open, &sink.loads, loads, simout_loads_csv_header));
    OS_CHECK(open_csv(&fa, &a_open, &sink.assign, assign, simout_assign_csv_header));
    if (json) {
        OS_CHECK(os_outfile_open(&fj, json, 1));
        j_open = 1;
        fprintf(fj.fp, "{\"policy\":\"%s\",\"steps\":[\n", policy);
        sink.json = fj.fp;
    }
    sink.dp_per_node = cfg.cluster.dp_per_node;
    sink.policy = policy;
    sink.P = replay_phase_names(sink.names, cfg.model);
    OS_CHECK(runtable_phase_cols(sink.phase_col, &sink.P, cfg.model));
    OS_CHECK(replay_run(&sum, &cfg, t, on_step, &sink));
    simout_summary(human, policy, &sum);
    {
        RunRow row;
        OS_CHECK(runrow_fill(&row, &sum, &cfg, policy, cfg.model->name, simopts_setup_name(cfg.setup),
                             sink.series.step_s, sink.series.n));
        OS_CHECK(runrow_add_cis(&row, &sink.series));
        if (sink.series.n > 1)
            fprintf(human, "  95%% CI     over %llu steps (Student t): step time +-%.4f s, tokens/s +-%.4g, MFU +-%.2f pp, "
                   "idle +-%.2f pp\n",
                   (unsigned long long)sink.series.n, row.step_ci95_s, row.tokens_per_s_ci95, 100 * row.mfu_ci95,
                   100 * row.idle_frac_ci95);
        else
            fprintf(human, "  95%% CI     undefined for one step: replay more steps for intervals\n");
    }
    if (timeline && sum.steps <= tl_step)
        OS_FAIL(OS_ERR_INTERNAL, "--timeline-step", NULL, NULL, "step %llu was not replayed: no timeline written",
                (unsigned long long)tl_step);
    if (timeline) fprintf(human, "  timeline     %s (open in https://ui.perfetto.dev or chrome://tracing)\n", timeline);
    if (c_open) {
        c_open = 0;
        OS_CHECK(os_outfile_commit(&fc));
    }
    if (l_open) {
        l_open = 0;
        OS_CHECK(os_outfile_commit(&fl));
    }
    if (a_open) {
        a_open = 0;
        OS_CHECK(os_outfile_commit(&fa));
    }
    if (j_open) {
        fprintf(fj.fp, "\n],\"summary\":{\"steps\":%llu,\"step_mean_s\":%.9g,\"step_p50_s\":%.9g,\"step_p99_s\":%.9g,"
                       "\"tokens_per_s\":%.9g,\"samples_per_s\":%.9g,\"mfu\":%.6g,\"mfu_noattn\":%.6g,\"mfu_causal\":%.6g,"
                       "\"hfu\":%.6g,\"idle_frac\":%.6g,\"calibration\":",
                (unsigned long long)sum.steps, sum.step_mean_s, sum.step_p50_s, sum.step_p99_s, sum.tokens_per_s,
                sum.samples_per_s, sum.mfu, sum.mfu_noattn, sum.mfu_causal, sum.hfu, sum.idle_frac);
        runtable_json_str(fj.fp, sum.calib_name); /* a table's free-text name: escaped */
        fputs("}}\n", fj.fp);
        j_open = 0;
        OS_CHECK(os_outfile_commit(&fj));
    }
fail:
    if (c_open) os_outfile_abort(&fc);
    if (l_open) os_outfile_abort(&fl);
    if (a_open) os_outfile_abort(&fa);
    if (j_open) os_outfile_abort(&fj);
    run_series_free(&sink.series);
    trace_close(t);
    return os_outputs_release(out_mark, st);
}
