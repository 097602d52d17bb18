/* cmd_pipeline.c — `orchsim pipeline TRACE`: a request trace through a pipeline of
 * text-to-image stages (sim/diffusion/pipesim.h) under one or more balancing policies: per
 * stage and policy the time, imbalance, oracle floor, balancer and all-to-all cost; `--cost`
 * prints what the pipeline costs (FLOPs and H100-hours per stage and in total) beside the
 * analytic estimate of ../shared/CPDM.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/csv.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "sim/diffusion/dops.h"
#include "sim/diffusion/pipesim.h"
#include "traces/requests.h"
#include "traces/trace.h"

#define PL_MAX_POLICIES 16

static const char *role_name(StageRole r) { return r == ROLE_TRAIN ? "train" : r == ROLE_SKIPPED ? "skipped" : "infer"; }

static void list_models(void) {
    printf("%-20s %-8s %14s %12s %7s  %s\n", "model", "kind", "params", "GMAC/sample", "conv", "at");
    DopList l;
    dops_init(&l);
    for (uint32_t i = 0; i < dm_count(); i++) {
        const DiffModel *m = dm_at(i);
        uint32_t r = m->native_res;
        double by[DB_N], mac = 0;
        char at[32] = "its input";
        if (dops_build(&l, m, r, r) == OS_OK) mac = dops_macs(&l, by);
        else os_clear_error();
        if (r && (dm_is_denoiser(m) || m->kind == DM_VAE)) snprintf(at, sizeof at, "%ux%u", r, r);
        printf("%-20s %-8s %14.0f %12.2f %6.1f%%  %s; %s\n", m->name, dm_kind_name(m->kind), dm_params(m), mac / 1e9,
               mac > 0 ? 100 * by[DB_CONV] / mac : 0.0, at, m->desc);
    }
    dops_free(&l);
}

static void print_stage_table(const PipeSummary *sums, const char (*pols)[64], int n, const Pipeline *p) {
    printf("%-11s %-12s %7s %12s %11s %11s %11s %6s %8s %8s %9s %9s\n", "policy", "stage", "role", "time s",
           "max s", "mean s", "oracle s", "imb", "bal ms", "a2a ms", "moved", "GB moved");
    for (int k = 0; k < n; k++)
        for (uint32_t oi = 0; oi < p->n; oi++) {
            const PipeStageSum *s = &sums[k].st[p->order[oi]];
            double gb = (double)(s->bytes_intra + s->bytes_inter) / 1e9;
            printf("%-11s %-12s %7s %12.4f %11.4f %11.4f %11.4f %6.4f %8.3f %8.3f %9llu %9.4f\n", pols[k], s->name,
                   role_name(s->role), s->span_s, s->compute_max_s, s->compute_mean_s, s->oracle_s, s->imbalance,
                   1e3 * (s->balancer_s + s->lengths_s), 1e3 * s->a2a_s, (unsigned long long)s->moved, gb);
        }
    printf("\n%-11s %14s %9s %9s %12s %12s\n", "policy", "total s", "vs none", "vs oracle", "GPU-hours", "busy GPU-h");
    double none = 0, orc = 0;
    for (int k = 0; k < n; k++)
        if (!strcmp(pols[k], "none")) none = sums[k].total_s;
    for (uint32_t s = 0; s < p->n; s++) orc += sums[0].st[s].oracle_s;
    for (int k = 0; k < n; k++) {
        char vs[32] = "-";
        if (none > 0) snprintf(vs, sizeof vs, "%+.3f%%", 100.0 * (sums[k].total_s / none - 1));
        printf("%-11s %14.4f %9s %+8.3f%% %12.4f %12.4f\n", pols[k], sums[k].total_s, vs,
               orc > 0 ? 100.0 * (sums[k].total_s / orc - 1) : 0.0, sums[k].gpu_hours, sums[k].busy_gpu_hours);
    }
    printf("%-11s %14.4f   (sum over stages of max(total / D, largest request); no waiting, no moves)\n", "oracle", orc);
}

/* "What building it costs": FLOPs and GPU-hours per stage, then the analytic estimate. */
static void print_cost(const PipeSummary *s, const Pipeline *p, const char *policy, const char *trace) {
    printf("# what running %s over %s costs (policy %s, %u GPUs; model FLOP = 2 x multiply-adds)\n", p->name, trace,
           policy, s->gpus);
    printf("%-12s %9s %9s %12s %12s %11s %11s\n", "stage", "requests", "images", "model FLOP", "exec FLOP",
           "GPU-h busy", "share");
    double busy = 0;
    for (uint32_t i = 0; i < p->n; i++) busy += s->st[i].busy_gpu_s;
    for (uint32_t oi = 0; oi < p->n; oi++) {
        const PipeStageSum *t = &s->st[p->order[oi]];
        printf("%-12s %9llu %9llu %12.3e %12.3e %11.3f %10.1f%%\n", t->name, (unsigned long long)t->requests,
               (unsigned long long)t->images, t->model_flops, t->exec_flops, t->busy_gpu_s / 3600.0,
               busy > 0 ? 100.0 * t->busy_gpu_s / busy : 0.0);
    }
    printf("%-12s %9llu %9s %12.3e %12.3e %11.3f %10.1f%%\n", "total", (unsigned long long)s->requests, "",
           s->model_flops, s->exec_flops, busy / 3600.0, 100.0);
    printf("wall time %.1f s on %u GPUs = %.2f GPU-hours reserved (%.2f busy); calibration %s, conv %.2f (%s)\n",
           s->total_s, s->gpus, s->gpu_hours, s->busy_gpu_hours, s->calib_name, s->conv_frac,
           s->conv_measured ? "measured" : "built-in estimate");
    printf("analytic estimate (../shared/CPDM.md \"Cost anchors\", our own analysis): one image = 50 steps x 2 (CFG)\n"
           "  x ~1.08 TMAC + ~2.9 TMAC decode = ~110 TMAC = ~220 TFLOP; generation of ~18,900 images ~4e18 FLOP;\n"
           "  interrogation 0.4-1.5 PMAC per anchor, ~2-6e18 FLOP; scoring negligible; ~1e19 FLOP in all, tens of\n"
           "  H100-hours.\n");
}

static void csv_rows(FILE *fp, const PipeSummary *s, const char *policy, const Pipeline *p, int header) {
    if (header)
        fprintf(fp, "pipeline,policy,stage,kind,role,gpus,requests,images,time_s,compute_max_s,compute_mean_s,oracle_s,"
                    "imbalance,balancer_s,lengths_s,a2a_s,grad_sync_s,optimizer_s,moved,bytes_intra,bytes_inter,"
                    "model_flops,exec_flops,busy_gpu_h,total_s,gpu_hours\n");
    for (uint32_t oi = 0; oi < p->n; oi++) {
        const PipeStageSum *t = &s->st[p->order[oi]];
        /* the pipeline's name is free text (a file's `name =`, or its path): quoted when needed */
        csv_put_str(fp, p->name, 1);
        fprintf(fp, ",%s,%s,%s,%s,%u,%llu,%llu,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%.9g,%llu,%llu,%llu,%.9g,%.9g,"
                    "%.9g,%.9g,%.9g\n",
                policy, t->name, stage_kind_name(t->kind), role_name(t->role), s->gpus,
                (unsigned long long)t->requests, (unsigned long long)t->images, t->span_s, t->compute_max_s,
                t->compute_mean_s, t->oracle_s, t->imbalance, t->balancer_s, t->lengths_s, t->a2a_s, t->grad_sync_s,
                t->optimizer_s, (unsigned long long)t->moved, (unsigned long long)t->bytes_intra,
                (unsigned long long)t->bytes_inter, t->model_flops, t->exec_flops, t->busy_gpu_s / 3600.0, s->total_s,
                s->gpu_hours);
    }
}

static OsStatus parse_policies(const Policy **out, char (*names)[64], int *n, const char *spec) {
    OsStatus st = OS_OK;
    char buf[1024];
    *n = 0;
    if (!strcmp(spec, "all")) {
        for (uint32_t i = 0; i < policy_count() && *n < PL_MAX_POLICIES; i++) {
            out[*n] = policy_at(i);
            snprintf(names[(*n)++], 64, "%s", policy_at(i)->name);
        }
        return OS_OK;
    }
    if (strlen(spec) >= sizeof buf) OS_FAIL(OS_ERR_ARG, "pipeline", "--policy", NULL, "list too long");
    snprintf(buf, sizeof buf, "%s", spec);
    char *parts[PL_MAX_POLICIES + 1];
    int k = opts_split(buf, parts, PL_MAX_POLICIES + 1);
    if (k > PL_MAX_POLICIES) OS_FAIL(OS_ERR_ARG, "pipeline", "--policy", NULL, "more than %d policies", PL_MAX_POLICIES);
    for (int i = 0; i < k; i++) {
        const Policy *pol = policy_find(parts[i]);
        if (!pol) {
            const char *sug = policy_suggest(parts[i]);
            char hint[96];
            snprintf(hint, sizeof hint, sug ? "did you mean '%s'?" : "orchsim compare --help lists them", sug);
            OS_FAIL(OS_ERR_ARG, "pipeline", "--policy", hint, "unknown policy '%s'", parts[i]);
        }
        out[*n] = pol;
        snprintf(names[(*n)++], 64, "%s", pol->name);
    }
    if (!*n) OS_FAIL(OS_ERR_ARG, "pipeline", "--policy", "e.g. none,post", "no policy given");
fail:
    return st;
}

OsStatus cmd_pipeline(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *pipe_name = NULL, *policy_spec = "all", *calib_path = NULL, *csv_path = NULL, *mode = "infer";
    const char *objective = "cost";
    uint32_t gpus = 0, gpn = 8;
    uint64_t steps = 0, skip = 0;
    int regroup = 0, cost = 0, lmodels = 0, lpipes = 0;
    double bal_cost = OPTS_AUTO;
    const char *pos[1] = {NULL};
    int npos = 0;
    Trace *t = NULL;
    T2iRequests req;
    PipeSummary *sums = NULL;
    Calib *cal = NULL;
    FILE *csv = NULL;
    OsOutFile of;
    int of_open = 0;
    t2i_requests_init(&req);
    memset(&of, 0, sizeof of);
    const OptSpec specs[] = {
        {"pipeline", 'P', OPT_STR, &pipe_name, "NAME|FILE", "a built-in (cpdm, t2i, cpdm-unlearn) or a pipeline file; default: cpdm for a trace with interrogation iterations, else t2i", 0, 0},
        OPTS_ROW_POLICIES(&policy_spec), /* each acts per stage */
        {"gpus", 'g', OPT_U32, &gpus, "N", "GPUs (0 = the trace's DP), one data-parallel rank each", 0, 1 << 20},
        {"gpus-per-node", 0, OPT_U32, &gpn, "G", "GPUs per node", 1, 64},
        {"regroup", 0, OPT_FLAG, &regroup, NULL, "re-deal each step to the cluster's ranks when its DP differs", 0, 0},
        {"calibration", 'c', OPT_STR, &calib_path, "FILE", "achieved-rate table (default: the built-in H100 table)", 0, 0},
        {"mode", 0, OPT_STR, &mode, "infer|finetune", "finetune: denoiser stages train (forward + backward, gradient all-reduce, AdamW)", 0, 0},
        {"objective", 0, OPT_STR, &objective, "cost|linear|quadratic", "what the balancers equalise (cost = the stage's seconds)", 0, 0},
        {"balancer-cost", 0, OPT_F64_AUTO, &bal_cost, "S", "charge post policies S seconds per stage (auto = the policy's modelled planning cost)", 0, 1e6},
        OPTS_ROW_STEPS(&steps, "replay at most K steps (0: all)", 0, 1e12),
        {"skip", 0, OPT_U64, &skip, "K", "start at step K", 0, 1e12},
        OPTS_ROW_CSV(&csv_path, "one row per (policy, stage), input of `orchsim plot pipeline`"),
        {"cost", 0, OPT_FLAG, &cost, NULL, "print what the pipeline costs: FLOPs and GPU-hours per stage and in total", 0, 0},
        {"list-models", 0, OPT_FLAG, &lmodels, NULL, "list the text-to-image model presets and exit", 0, 0},
        {"list-pipelines", 0, OPT_FLAG, &lpipes, NULL, "print the built-in pipelines and exit", 0, 0},
    };
    const CmdHelp help = {
        "pipeline", "orchsim pipeline TRACE [--pipeline cpdm|t2i|FILE] [--policies all|A,B] [--gpus N] [--cost] [--csv F]",
        "Replay a text-to-image request trace through a pipeline of forward-only stages.",
        "Each trace step is a global batch of requests dealt to the data-parallel ranks; every\n"
        "stage builds one balancing problem whose units are the requests and hands it to the\n"
        "policy (the same code as training's phases). Barrier stages wait for every rank, stream\n"
        "stages only for their inputs. Models, the file format and the cost model:\n"
        "sim/diffusion/README.md. Traces: orchsim gen --profile cpdm | t2i-mixed.\n"
        "example: orchsim pipeline cpdm.h5 --pipeline cpdm --policies none,post --cost"};
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 0, 1, &npos));
    if (lmodels) {
        list_models();
        return OS_OK;
    }
    if (lpipes) {
        for (uint32_t i = 0; i < pipe_builtin_count(); i++) printf("# ---- %s\n%s\n", pipe_builtin_name(i), pipe_builtin_text(i));
        return OS_OK;
    }
    if (npos != 1) OS_FAIL(OS_ERR_ARG, "pipeline", "TRACE", "orchsim pipeline TRACE [options]", "missing trace");
    PipeMode pm = !strcmp(mode, "infer") ? PIPE_INFER : !strcmp(mode, "finetune") ? PIPE_FINETUNE : (PipeMode)-1;
    if ((int)pm < 0) OS_FAIL(OS_ERR_ARG, "pipeline", "--mode", "infer or finetune", "unknown mode '%s'", mode);
    BalanceObjective obj = !strcmp(objective, "cost") ? OBJ_COST : !strcmp(objective, "linear") ? OBJ_LINEAR
                           : !strcmp(objective, "quadratic") ? OBJ_QUADRATIC : (BalanceObjective)-1;
    if ((int)obj < 0) OS_FAIL(OS_ERR_ARG, "pipeline", "--objective", "cost, linear or quadratic", "unknown objective '%s'", objective);
    const Policy *pols[PL_MAX_POLICIES];
    char names[PL_MAX_POLICIES][64];
    int np = 0;
    OS_CHECK(parse_policies(pols, names, &np, policy_spec));
    if (csv_path) OS_CHECK(os_output_check(csv_path, 1));

    cal = malloc(sizeof *cal);
    ALLOC_CHECK(cal);
    if (calib_path) OS_CHECK(calib_load(cal, calib_path));
    else calib_default_h100(cal);
    OS_CHECK(trace_open(&t, pos[0]));
    int present = 0;
    OS_CHECK(t2i_requests_load(&req, pos[0], trace_n_examples(t), &present));
    if (!pipe_name) {
        int iters = 0;
        for (uint64_t i = 0; present && i < req.n && !iters; i++) iters = req.rows[i].iters != 0;
        pipe_name = iters ? "cpdm" : "t2i";
    }
    Pipeline pipe;
    OS_CHECK(pipe_load(&pipe, pipe_name));
    const TraceStep *s0;
    OS_CHECK(trace_read_step(t, skip < trace_n_steps(t) ? skip : 0, &s0));
    uint32_t G = gpus ? gpus : s0->dp;
    PipeConfig cfg;
    pipe_config_init(&cfg);
    cfg.pipe = &pipe;
    cfg.calib = cal;
    OS_CHECK(cluster_init(&cfg.cluster, G, gpn, 1));
    cfg.popt.objective = obj;
    cfg.mode = pm;
    cfg.balancer_cost_s = bal_cost == OPTS_AUTO ? -1.0 : bal_cost;
    cfg.first_step = skip;
    cfg.n_steps = steps;
    cfg.regroup = regroup;
    fprintf(stderr, "# pipeline %s (%s): %u stages; trace %s: %llu steps, %llu requests%s\n", pipe.name, pipe.where, pipe.n,
            pos[0], (unsigned long long)trace_n_steps(t), (unsigned long long)trace_n_examples(t),
            present ? "" : " (no request tables: every request takes its stage's defaults)");
    fprintf(stderr, "# cluster %u GPUs (%u per node), DP %u; mode %s; calibration %s, conv %.2f (%s)\n", G, gpn,
            cfg.cluster.dp, mode, cal->name, dops_conv_frac(cal), cal->conv_frac > 0 ? "measured" : "built-in estimate");
    sums = calloc((size_t)np, sizeof *sums);
    ALLOC_CHECK(sums);
    for (int k = 0; k < np; k++) {
        cfg.policy = pols[k];
        st = pipe_run(&sums[k], &cfg, t, present ? &req : NULL);
        if (st != OS_OK) break;
    }
    OS_CHECK(st);
    int quiet = csv_path && !strcmp(csv_path, "-"); /* the CSV owns stdout */
    if (cost && !quiet) print_cost(&sums[0], &pipe, names[0], pos[0]);
    else if (!quiet) print_stage_table(sums, (const char(*)[64])names, np, &pipe);
    if (csv_path) {
        OS_CHECK(os_outfile_open(&of, csv_path, 1));
        of_open = 1;
        csv = of.fp;
        fprintf(csv, "# orchsim pipeline %s --pipeline %s (%s), %u GPUs, calibration %s\n", pos[0], pipe.name, pipe.where,
                G, sums[0].calib_name);
        for (int k = 0; k < np; k++) csv_rows(csv, &sums[k], names[k], &pipe, k == 0);
        of_open = 0;
        OS_CHECK(os_outfile_commit(&of));
    }
fail:
    if (of_open) os_outfile_abort(&of);
    free(cal);
    free(sums);
    t2i_requests_free(&req);
    trace_close(t);
    return st;
}
