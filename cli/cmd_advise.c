/* cmd_advise.c — `orchsim advise TRACE --gpus N [replay options]`: replay every policy and say
 * what to do: the recommended policy and the runner-up, their paired per-step difference with
 * its 95% interval and win count (or "tied within noise"), GPU-hours (and cost) saved per 1000
 * steps and per pass over the trace against none and against the runner-up, the oracle gap, a
 * diagnosis computed from the run, the feasibility warnings; --csv/--json/--html. Rankings use
 * the deterministic balancer charge (cli/polrun.h), never host timing. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/advise.h"
#include "analysis/baseline.h"
#include "analysis/plot.h"
#include "analysis/report_html.h"
#include "analysis/runtable.h"
#include "base/util.h"
#include "cli/commands.h"
#include "cli/polrun.h"
#include "cli/simopts.h"

#define ADV_LINES 64

typedef struct {
    PolRun *runs;      /* [np] */
    AdviseRun *ar;     /* [np] shallow copies of runs[i].run, for advise.h */
    size_t order[POLRUN_MAX];
    int np;
    Advice adv;
    AdviseLine diag[ADV_LINES], warn[ADV_LINES];
    size_t n_diag, n_warn;
    RunRow oracle;
    const char *trace;
    uint64_t trace_steps;
    double price;
} Adv;

/* Decimals that show at least 4 significant digits of |v| (at least `min` decimals). */
static int decimals(double v, int min) {
    double a = fabs(v);
    if (!(a > 0) || !isfinite(a)) return min;
    int d = 3 - (int)floor(log10(a));
    return d < min ? min : d > 12 ? 12 : d;
}

/* "1.2345 +- 0.0678 s" or, with one step, "1.2345 s (one step: no confidence interval)"; the
 * digits follow the larger of the two, at least min decimals. */
static void pm(char *buf, size_t cap, double v, double ci, const char *unit, int min) {
    int d = decimals(isfinite(ci) && fabs(ci) > fabs(v) ? ci : v, min);
    if (isfinite(ci)) snprintf(buf, cap, "%.*f +- %.*f %s", d, v, d, ci, unit);
    else snprintf(buf, cap, "%.*f %s (one step: no confidence interval)", d, v, unit);
}

/* seconds with 4 significant digits, at least 4 decimals */
static const char *secs(char *buf, size_t cap, double v) {
    snprintf(buf, cap, "%.*f", decimals(v, 4), v);
    return buf;
}

static double run_mean(const Adv *a, int i) { return advise_run_mean_s(&a->ar[i]); }

/* The advice block (stdout and the HTML report). */
static void print_advice(FILE *fp, const Adv *a, const ReplayConfig *cfg) {
    const Advice *v = &a->adv;
    const PolRun *b = &a->runs[v->best];
    const Cluster *c = &cfg->cluster;
    char s1[160], s2[160], x1[40], x2[40];
    uint64_t n = b->run.n;
    fprintf(fp, "advice for %s: %s on %u GPUs (%u nodes x %u, TP %u, DP %u), %s, recompute %s%s; %llu step%s replayed "
                "of %llu\n",
            a->trace, cfg->model->name, c->gpus, c->nodes, c->gpus_per_node, c->tp, c->dp, b->row.setup, b->row.recompute,
            b->row.padded ? ", padded" : "", (unsigned long long)n, n == 1 ? "" : "s", (unsigned long long)a->trace_steps);
    uint64_t need = 0, lng = 0;
    for (int i = 0; i < a->np; i++) {
        need = OS_MAX(need, a->runs[i].row.needs_recompute);
        lng = OS_MAX(lng, a->runs[i].row.long_examples);
    }
    if (need)
        fprintf(fp, "  feasibility  NOT feasible as given: %llu examples need more activation memory than a GPU has "
                    "unless --recompute (the numbers below assume it fits; see the diagnosis)\n", (unsigned long long)need);
    if (lng)
        fprintf(fp, "  feasibility  %llu examples/items exceed the model's maximum lengths (replayed as given)\n",
                (unsigned long long)lng);
    double best_s = run_mean(a, v->best);
    fprintf(fp, "  recommended  %-11s %s s per step", b->name, secs(x1, sizeof x1, best_s));
    if (v->none >= 0 && v->none != v->best && run_mean(a, v->none) > 0)
        fprintf(fp, ", %.2fx none's throughput", b->row.tokens_per_s / a->runs[v->none].row.tokens_per_s);
    fprintf(fp, "; %.1f%% above the oracle floor (%s s)\n", 100.0 * v->gap_frac, secs(x1, sizeof x1, v->oracle_mean_s));
    if (v->runner_up >= 0) {
        const PolRun *r = &a->runs[v->runner_up];
        const AdvisePair *p = &v->vs_runner_up;
        pm(s1, sizeof s1, p->mean_s, p->ci95_s, "s", 4);
        if (!p->wins && !p->losses)
            fprintf(fp, "  runner-up    %-11s %s s per step: the same step time as %s on every one of the %llu steps\n",
                    r->name, secs(x1, sizeof x1, run_mean(a, v->runner_up)), b->name, (unsigned long long)p->n);
        else
            fprintf(fp, "  runner-up    %-11s %s s per step: %s is faster by %s per step (paired over the same %llu "
                        "steps, 95%% interval), on %llu of %llu steps\n",
                    r->name, secs(x1, sizeof x1, run_mean(a, v->runner_up)), b->name, s1, (unsigned long long)p->n,
                    (unsigned long long)p->wins, (unsigned long long)p->n);
        if (p->tied) {
            fprintf(fp, "               tied within noise: ");
            if (!p->wins && !p->losses) fprintf(fp, "identical on every step, so either will do");
            else fprintf(fp, "the interval covers 0, so either will do");
            if (b->run.charge_s != r->run.charge_s)
                fprintf(fp, "; %s's modelled planning cost is %s ms, %s's %s ms", b->name,
                        secs(x1, sizeof x1, 1e3 * b->run.charge_s), r->name, secs(x2, sizeof x2, 1e3 * r->run.charge_s));
            double bi = b->row.bytes_inter_per_step, ri = r->row.bytes_inter_per_step;
            if (bi != ri)
                fprintf(fp, "; %s moves %.3f GB per step across nodes, %s %.3f GB", b->name, bi / 1e9, r->name, ri / 1e9);
            fprintf(fp, "\n");
        }
    }
    if (v->none >= 0 && v->none != v->best) {
        const AdvisePair *p = &v->vs_none;
        pm(s1, sizeof s1, p->mean_s, p->ci95_s, "s", 4);
        fprintf(fp, "  vs none      %-11s %s s per step: %s is faster by %s per step, on %llu of %llu steps%s\n", "none",
                secs(x1, sizeof x1, run_mean(a, v->none)), b->name, s1, (unsigned long long)p->wins, (unsigned long long)p->n,
                p->tied ? " (tied within noise)" : "");
    }
    fprintf(fp, "  GPU-hours saved by %s on %u GPUs:\n", b->name, v->gpus);
    struct {
        const char *against;
        int idx;
        double h, hc, p, pc;
    } rows[2] = {{"none", v->none, v->h1000_vs_none, v->h1000_vs_none_ci, v->hpass_vs_none, v->hpass_vs_none_ci},
                 {"the runner-up", v->runner_up, v->h1000_vs_runner, v->h1000_vs_runner_ci, v->hpass_vs_runner,
                  v->hpass_vs_runner_ci}};
    int shown = 0;
    for (int k = 0; k < 2; k++) {
        if (rows[k].idx < 0 || rows[k].idx == v->best || (k == 1 && rows[1].idx == rows[0].idx)) continue;
        shown++;
        pm(s1, sizeof s1, rows[k].h, rows[k].hc, "GPU-h", 1);
        pm(s2, sizeof s2, rows[k].p, rows[k].pc, "GPU-h", 2);
        fprintf(fp, "    against %-14s per 1000 steps %s; per pass over the trace (%llu steps) %s\n",
                k ? a->runs[rows[k].idx].name : "none", s1, (unsigned long long)a->trace_steps, s2);
        if (isfinite(v->price)) {
            pm(s1, sizeof s1, rows[k].h * v->price, rows[k].hc * v->price, "USD", 0);
            pm(s2, sizeof s2, rows[k].p * v->price, rows[k].pc * v->price, "USD", 2);
            fprintf(fp, "    %-22s at %.2f USD per GPU-hour: %s per 1000 steps; %s per pass\n", "", v->price, s1, s2);
        }
    }
    if (!shown) fprintf(fp, "    (no other policy was replayed to compare against)\n");
    if (v->none >= 0 && isfinite(v->closed_frac))
        fprintf(fp, "  oracle gap   %s is %.1f%% above the floor and closes %.0f%% of none's %s s gap to it\n", b->name,
                100.0 * v->gap_frac, 100.0 * v->closed_frac, secs(x1, sizeof x1, run_mean(a, v->none) - v->oracle_mean_s));
    else fprintf(fp, "  oracle gap   %s is %.1f%% above the floor\n", b->name, 100.0 * v->gap_frac);
    double meas = b->row.balancer_measured_s_per_step;
    int post = b->run.pol && b->run.pol->kind == POLICY_POST;
    if (!strcmp(b->row.balancer_charge, "modelled"))
        fprintf(fp, "  charge       %s: %.3f ms of planning per step modelled (%s), %s", b->name,
                1e3 * b->row.balancer_modelled_s_per_step, policy_charge_desc(b->run.pol),
                post ? "" : "in the data loader, off the critical path");
    else
        fprintf(fp, "  charge       %s: %.3f ms per step %s%s", b->name, 1e3 * b->row.balancer_s_per_step,
                b->row.balancer_charge, post ? "" : ", in the data loader, off the critical path");
    if (post && !strcmp(b->row.balancer_charge, "modelled"))
        fprintf(fp, "%.3f ms of it (the first phase's) on the critical path", 1e3 * b->row.balancer_s_per_step);
    else if (post) fprintf(fp, ", on the critical path");
    if (isfinite(meas)) fprintf(fp, "; measured %.3f ms on this host (all phases)", 1e3 * meas);
    fprintf(fp, "; rankings use the %s charge%s\n", b->row.balancer_charge,
            !strcmp(b->row.balancer_charge, "measured") ? " (host timing: near-ties may flip run to run)" : ", not host timing");
}

static void print_ranking(FILE *fp, const Adv *a) {
    const Advice *v = &a->adv;
    const PolRun *b = &a->runs[v->best];
    fprintf(fp, "\nranking (each policy paired against %s over the same steps):\n", b->name);
    fprintf(fp, "%4s %-11s %9s %9s %8s %6s %7s %9s %9s %9s %8s  %s\n", "rank", "policy", "step s", "+s/step", "+-95%",
            "faster", "verdict", "GB inter", "plan ms", "meas ms", "MFU", "feasibility");
    for (int k = 0; k < a->np; k++) {
        int i = (int)a->order[k];
        const PolRun *r = &a->runs[i];
        char d[32] = "-", ci[32] = "-", w[32] = "-";
        const char *verdict = "best";
        if (i != v->best) {
            AdvisePair p;
            if (advise_pair(&p, b->run.step_s, r->run.step_s, b->run.n) == OS_OK) {
                int dd = decimals(fabs(p.ci95_s) > fabs(p.mean_s) ? p.ci95_s : p.mean_s, 4);
                snprintf(d, sizeof d, "%.*f", dd, p.mean_s);
                if (isfinite(p.ci95_s)) snprintf(ci, sizeof ci, "%.*f", dd, p.ci95_s);
                snprintf(w, sizeof w, "%llu/%llu", (unsigned long long)p.wins, (unsigned long long)p.n);
                verdict = p.tied ? "tied" : p.mean_s > 0 ? "slower" : "faster";
            }
            os_clear_error();
        }
        char feas[96] = "ok";
        if (r->row.needs_recompute || r->row.long_examples)
            snprintf(feas, sizeof feas, "%s%s", r->row.needs_recompute ? "needs --recompute " : "",
                     r->row.long_examples ? "over max length" : "");
        char x1[40];
        fprintf(fp, "%4d %-11s %9s %9s %8s %6s %7s %9.3f %9.3f %9.3f %7.1f%%  %s\n", k + 1, r->name,
                secs(x1, sizeof x1, run_mean(a, i)), d, ci,
                w, verdict, r->row.bytes_inter_per_step / 1e9,
                1e3 * (isfinite(r->row.balancer_modelled_s_per_step) && !strcmp(r->row.balancer_charge, "modelled")
                           ? r->row.balancer_modelled_s_per_step : r->row.balancer_s_per_step),
                1e3 * r->row.balancer_measured_s_per_step, 100.0 * r->row.mfu, feas);
    }
    char x1[40];
    fprintf(fp, "%4s %-11s %9s %9s %8s %6s %7s %9s %9s %9s %7.1f%%  the floor: max(total/D, largest unit) per phase\n",
            "-", "oracle", secs(x1, sizeof x1, a->oracle.step_mean_s), "-", "-", "-", "-", "-", "-", "-",
            100.0 * a->oracle.mfu);
    fprintf(fp, "+s/step = the policy's step minus %s's, mean over steps (+-95%%: its paired interval); faster = steps\n"
                "where %s was faster; tied = the interval covers 0; plan ms = the policy's planning time per step as\n"
                "charged (modelled, all phases; a post policy's step waits for its first phase's share), meas ms\n"
                "= its runtime measured on this host.\n", b->name, b->name);
}

static void print_lines(FILE *fp, const char *head, const AdviseLine *l, size_t n, int tags) {
    if (!n) return;
    fprintf(fp, "\n%s:\n", head);
    for (size_t i = 0; i < n; i++) fprintf(fp, "  - %s%s%s\n", tags ? l[i].tag : "", tags ? ": " : "", l[i].text);
}

static void write_json(FILE *fp, const Adv *a) {
    const Advice *v = &a->adv;
    const PolRun *b = &a->runs[v->best];
    fputs("{\"provenance\":{", fp);
    runprov_json_members(fp, &b->row);
    fprintf(fp, "},\"advice\":{\"recommended\":");
    runtable_json_str(fp, b->name);
    fputs(",\"runner_up\":", fp);
    if (v->runner_up >= 0) runtable_json_str(fp, a->runs[v->runner_up].name);
    else fputs("null", fp);
    const struct {
        const char *k;
        double x;
    } f[] = {{"step_mean_s", run_mean(a, v->best)},
             {"oracle_step_s", v->oracle_mean_s},
             {"oracle_gap_frac", v->gap_frac},
             {"none_gap_closed_frac", v->closed_frac},
             {"vs_runner_up_mean_s", v->runner_up >= 0 ? v->vs_runner_up.mean_s : NAN},
             {"vs_runner_up_ci95_s", v->runner_up >= 0 ? v->vs_runner_up.ci95_s : NAN},
             {"vs_none_mean_s", v->none >= 0 ? v->vs_none.mean_s : NAN},
             {"vs_none_ci95_s", v->none >= 0 ? v->vs_none.ci95_s : NAN},
             {"gpu_hours_per_1000_steps_vs_none", v->h1000_vs_none},
             {"gpu_hours_per_1000_steps_vs_none_ci95", v->h1000_vs_none_ci},
             {"gpu_hours_per_pass_vs_none", v->hpass_vs_none},
             {"gpu_hours_per_pass_vs_none_ci95", v->hpass_vs_none_ci},
             {"gpu_hours_per_1000_steps_vs_runner_up", v->h1000_vs_runner},
             {"gpu_hours_per_1000_steps_vs_runner_up_ci95", v->h1000_vs_runner_ci},
             {"gpu_hours_per_pass_vs_runner_up", v->hpass_vs_runner},
             {"gpu_hours_per_pass_vs_runner_up_ci95", v->hpass_vs_runner_ci},
             {"gpu_hour_price", v->price},
             {"trace_steps", (double)a->trace_steps}};
    for (size_t i = 0; i < OS_ARRAY_LEN(f); i++) {
        fprintf(fp, ",\"%s\":", f[i].k);
        if (isfinite(f[i].x)) fprintf(fp, "%.9g", f[i].x);
        else fputs("null", fp);
    }
    fprintf(fp, ",\"tied_with_runner_up\":%s,\"wins_vs_runner_up\":%llu,\"steps\":%llu,\"ranking\":[",
            v->runner_up >= 0 && v->vs_runner_up.tied ? "true" : "false",
            (unsigned long long)(v->runner_up >= 0 ? v->vs_runner_up.wins : 0), (unsigned long long)b->run.n);
    for (int k = 0; k < a->np; k++) {
        fputs(k ? "," : "", fp);
        runtable_json_str(fp, a->runs[a->order[k]].name);
    }
    fputs("]},\"diagnosis\":[", fp);
    for (size_t i = 0; i < a->n_diag; i++) {
        fprintf(fp, "%s{\"tag\":", i ? "," : "");
        runtable_json_str(fp, a->diag[i].tag);
        fputs(",\"text\":", fp);
        runtable_json_str(fp, a->diag[i].text);
        fputs("}", fp);
    }
    fputs("],\"warnings\":[", fp);
    for (size_t i = 0; i < a->n_warn; i++) {
        fputs(i ? "," : "", fp);
        runtable_json_str(fp, a->warn[i].text);
    }
    fprintf(fp, "],\"oracle\":{\"step_mean_s\":%.9g,\"tokens_per_s\":%.9g,\"mfu\":%.6g},\"runs\":[\n", a->oracle.step_mean_s,
            a->oracle.tokens_per_s, a->oracle.mfu);
    for (int i = 0; i < a->np; i++) {
        fputs(i ? ",\n" : "", fp);
        polrun_json_row(fp, &a->runs[i]);
    }
    fputs("\n]}\n", fp);
}

/* The report's figures, drawn into the scratch folder as SVG: step time per policy, the
 * imbalance CDFs, and the timelines of none and the recommended policy (their first step,
 * replayed once more with the same charge). Returns the number drawn in *nfig; without gnuplot
 * none, and *why says so. */
static OsStatus html_figures(char (*svg)[4300], const char **cap, size_t *nfig, const char **why, Adv *a,
                             ReplayConfig *cfg, Trace *t, PolRunOpts po, PolScratch *sc) {
    OsStatus st = OS_OK;
    PlotOptions o;
    plot_options_init(&o);
    char csv[4300], tl[2][4300];
    const char *in[POLRUN_MAX];
    PolRun *extra = NULL;
    char (*paths)[4300] = calloc(POLRUN_MAX, sizeof *paths); /* the step CSVs */
    ALLOC_CHECK(paths);
    *nfig = 0;
    *why = NULL;
    o.outdir = sc->dir; /* polrun_scratch_remove empties it, figures and .dat files included */
    o.formats = PLOT_SVG;
    o.width = 960;
    o.height = 560;
    /* the table the policies figure reads */
    snprintf(csv, sizeof csv, "%s/advise.csv", sc->dir);
    FILE *fp = fopen(csv, "w");
    if (!fp) OS_FAIL(OS_ERR_IO, csv, NULL, "set TMPDIR to a writable folder", "cannot write the scratch table");
    polrun_scratch_note(sc, csv);
    runtable_write_header(fp);
    for (int i = 0; i < a->np; i++) runtable_write_row(fp, &a->runs[i].row);
    runtable_write_row(fp, &a->oracle);
    if (fclose(fp) != 0) OS_FAIL(OS_ERR_IO, csv, NULL, "check free space", "write failed");
    const PlotKind *k = plot_kind_find("policies");
    in[0] = csv;
    st = plot_make(k, &o, in, 1);
    if (st == OS_ERR_NODEV) {
        os_clear_error();
        *why = "gnuplot was not found, so the report has no figures (apt-get install gnuplot-nox)";
        st = OS_OK;
        goto fail;
    }
    OS_CHECK(st);
    plot_output_path(svg[*nfig], sizeof svg[0], &o, "policies", PLOT_SVG);
    cap[(*nfig)++] = "Mean simulated step time per policy; the dashed line is the oracle floor. The bars are each "
                     "policy's own 95% interval over steps (unpaired: they include the step-to-step variation every "
                     "policy shares); the paired differences in the ranking above are much tighter.";
    int ns = 0;
    for (int i = 0; i < a->np; i++) {
        snprintf(paths[i], sizeof paths[i], "%s/steps_%s.csv", sc->dir, a->runs[i].name);
        in[ns++] = paths[i];
    }
    OS_CHECK(plot_make(plot_kind_find("imbalance-cdf"), &o, in, ns));
    plot_output_path(svg[*nfig], sizeof svg[0], &o, "imbalance-cdf", PLOT_SVG);
    cap[(*nfig)++] = "Per-phase imbalance (max/mean of per-rank compute) over the replayed steps, one curve per policy.";
    /* timelines: none (when replayed) and the recommended policy, first step */
    int want[2] = {a->adv.none, a->adv.best}, nt = 0;
    extra = calloc(2, sizeof *extra);
    ALLOC_CHECK(extra);
    po.steps_dir = NULL;
    po.timeline_dir = sc->dir;
    po.progress = 0;
    ReplayConfig one = *cfg;
    one.n_steps = 1;
    for (int q = 0; q < 2; q++) {
        if (want[q] < 0 || (q == 1 && want[1] == want[0])) continue;
        PolRun *r = &a->runs[want[q]];
        OS_CHECK(polrun_one(&extra[q], &one, t, r->name, NULL, &po));
        char raw[4300];
        snprintf(raw, sizeof raw, "%s/timeline_%s.csv", sc->dir, r->name);
        snprintf(tl[nt], sizeof tl[nt], "%s/tl_%s.csv", sc->dir, r->name);
        OS_CHECK(polrun_copy_file(tl[nt], raw, NULL));  /* replay titled it (its # lines) */
        polrun_scratch_note(sc, tl[nt]);
        in[nt] = tl[nt];
        nt++;
    }
    o.height = 420 * (uint32_t)nt + 120; /* rank rows stay legible in each panel */
    OS_CHECK(plot_make(plot_kind_find("timeline"), &o, in, nt));
    plot_output_path(svg[*nfig], sizeof svg[0], &o, "timeline", PLOT_SVG);
    cap[(*nfig)++] = "Per-rank timeline of the first replayed step: compute by phase, communication, and idle time "
                     "waiting for other ranks; the slowest and the fastest rank are always shown and marked.";
fail:
    for (int q = 0; extra && q < 2; q++) polrun_free(&extra[q]);
    free(extra);
    free(paths);
    return st;
}

OsStatus cmd_advise(int argc, char **argv) {
    OsStatus st = OS_OK;
    SimOpts so;
    simopts_init(&so);
    const char *policies = NULL, *csv = NULL, *json = NULL, *html = NULL, *price_s = NULL;
    const char *baseline = NULL, *base_par = NULL;
    int base_padded = 0, have_mega = 0;
    PolRun mega;
    memset(&mega, 0, sizeof mega);
    char bdesc[256] = "";
    int no_progress = 0, measured = 0;
    OptSpec specs[SIMOPTS_N + 14];
    simopts_specs(specs, &so);
    size_t ns = SIMOPTS_N;
    specs[ns++] = (OptSpec)OPTS_ROW_POLICIES(&policies);
    specs[ns++] = (OptSpec){"gpu-hour-price", 0, OPT_STR, &price_s, "USD", "price of one GPU-hour: also say what the savings cost", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_CSV(&csv, "run-level CSV, one row per policy and the oracle row (analysis/FORMATS.md)");
    specs[ns++] = (OptSpec)OPTS_ROW_JSON(&json, "the advice, diagnosis, warnings and rows as JSON");
    specs[ns++] = (OptSpec){"baseline", 0, OPT_STR, &baseline, "megatron", "also replay the row a Megatron-LM user would run (compare --baseline) and say how the advice compares with it", 0, 0};
    specs[ns++] = (OptSpec){"baseline-parallel", 0, OPT_STR, &base_par, "tp=T,pp=P,cp=C", "the baseline's layout (default: the smallest TP, then PP, that fits)", 0, 0};
    specs[ns++] = (OptSpec){"baseline-padded", 0, OPT_FLAG, &base_padded, NULL, "the baseline pads each micro-batch instead of packing", 0, 0};
    specs[ns++] = (OptSpec){"html", 0, OPT_STR, &html, "FILE", "one self-contained HTML report (advice, table, figures as inline SVG; '-' = stdout)", 0, 0};
    specs[ns++] = (OptSpec){"measured-charge", 0, OPT_FLAG, &measured, NULL, "charge the balancer's measured host runtime instead of its modelled cost (rankings then vary run to run)", 0, 0};
    specs[ns++] = (OptSpec)OPTS_ROW_NO_PROGRESS(&no_progress);
    static const CmdHelp help = {
        "advise", "orchsim advise TRACE.h5 [--gpus N] [--model M] [--policies all] [--gpu-hour-price USD] [options]",
        "Replay every policy on your trace and cluster and say which to use: the recommended policy and\n"
        "the runner-up with their paired per-step difference (95% interval, wins), GPU-hours saved, the\n"
        "oracle gap, and a diagnosis of what limits the step.",
        "Decisions use each policy's modelled planning cost (sim/policy.c: c * n log n from bench_balance's\n"
        "measured runtime), so the ranking is the same on every host and run; the measured runtime is shown\n"
        "beside it. Two policies are 'tied within noise' when the 95% interval of their paired per-step\n"
        "difference covers 0. GPU-hours saved = per-step saving x GPUs x steps / 3600.\n"};
    const char *pos[1];
    const char *names[POLRUN_MAX];
    char *list = NULL, *advice_text = NULL;
    size_t advice_len = 0;
    Trace *t = NULL;
    ReplayConfig cfg;
    Adv a;
    memset(&a, 0, sizeof a);
    PolScratch sc;
    memset(&sc, 0, sizeof sc);
    OsOutFile fc, fj;
    int c_open = 0, j_open = 0, held = 0;
    uint64_t out_mark = 0;
    RunProv *prov = NULL;
    static char command[RUNPROV_CMD];
    runprov_command(command, sizeof command, argc, argv); /* before getopt reorders argv */
    OS_CHECK(opts_parse(specs, ns, &help, argc, argv, pos, 1, 1, NULL));

    /* every argument checked before any work */
    a.price = NAN;
    if (price_s) OS_CHECK(os_parse_f64(&a.price, price_s, 0.0, 1e9, "--gpu-hour-price"));
    if (baseline && strcmp(baseline, "megatron"))
        OS_FAIL(OS_ERR_ARG, "--baseline", baseline, "the one baseline is 'megatron'", "unknown baseline");
    if ((base_par || base_padded) && !baseline)
        OS_FAIL(OS_ERR_ARG, base_par ? "--baseline-parallel" : "--baseline-padded", NULL, "add --baseline megatron",
                "only applies to the baseline row");
    OS_CHECK(polrun_parse_list(names, &a.np, &list, policies));
    if (measured && so.balancer_cost_s >= 0)
        OS_FAIL(OS_ERR_ARG, "--measured-charge", NULL, "give one of --measured-charge and --balancer-cost",
                "both set the balancer charge");
    if (csv) OS_CHECK(os_output_check(csv, 1));
    if (json) OS_CHECK(os_output_check(json, 1));
    if (html) OS_CHECK(os_output_check(html, 1));
    OS_CHECK(trace_open(&t, pos[0]));
    replay_config_init(&cfg);
    OS_CHECK(simopts_resolve(&cfg, &so, t));
    simopts_announce(stderr, &so, &cfg, pos[0]);
    a.trace = pos[0];
    a.trace_steps = trace_n_steps(t);
    PolRunOpts po;
    OS_CHECK(polrun_opts_init(&po, &prov, pos[0], command, measured, so.balancer_cost_s, !no_progress, t, &cfg));
    if (html) {
        OS_CHECK(polrun_scratch_make(&sc));
        po.steps_dir = sc.dir;
        po.scratch = &sc;
    }
    fprintf(stderr, "# balancer charge: %s%s\n", polrun_charge_name(po.charge),
            po.charge == CHARGE_MODELLED ? " (each policy's planning cost from its complexity, sim/policy.c; rankings do not "
                                           "depend on this host's timing)" : "");
    a.runs = calloc((size_t)a.np, sizeof *a.runs);
    a.ar = calloc((size_t)a.np, sizeof *a.ar);
    ALLOC_CHECK(a.runs);
    ALLOC_CHECK(a.ar);
    for (int i = 0; i < a.np; i++) {
        fprintf(stderr, "# policy %s (%d/%d)\n", names[i], i + 1, a.np);
        OS_CHECK(polrun_one(&a.runs[i], &cfg, t, names[i], NULL, &po));
    }
    if (baseline) {
        /* Megatron-LM's row (analysis/baseline.h): its own layout on the same GPUs and trace */
        ReplayConfig bcfg;
        OS_CHECK(baseline_megatron(&bcfg, &cfg, t, base_par, base_padded, bdesc, sizeof bdesc));
        fprintf(stderr, "# baseline megatron: %s\n", bdesc);
        OS_CHECK(polrun_one(&mega, &bcfg, t, "none", "dist-opt", &po));
        snprintf(mega.name, sizeof mega.name, "megatron");
        snprintf(mega.row.policy, sizeof mega.row.policy, "megatron");
        have_mega = 1;
    }
    RunRow *rows = malloc(((size_t)a.np + 1) * sizeof *rows);
    ALLOC_CHECK(rows);
    for (int i = 0; i < a.np; i++) rows[i] = a.runs[i].row;
    polrun_oracle_row(&a.oracle, &a.runs[0]);
    rows[a.np] = a.oracle;
    runtable_speedups(rows, (size_t)a.np + 1);
    for (int i = 0; i < a.np; i++) a.runs[i].row.speedup_vs_none = rows[i].speedup_vs_none;
    a.oracle.speedup_vs_none = rows[a.np].speedup_vs_none;
    free(rows);
    for (int i = 0; i < a.np; i++) a.ar[i] = a.runs[i].run; /* shallow: the runs own the arrays */
    OS_CHECK(advise_decide(&a.adv, a.order, a.ar, (size_t)a.np, (double)a.trace_steps, a.price));
    /* the oracle row from the recommended run's steps: the same floor the advice quotes */
    double sp = a.oracle.speedup_vs_none;
    polrun_oracle_row(&a.oracle, &a.runs[a.adv.best]);
    a.oracle.speedup_vs_none = sp;
    a.n_diag = advise_diagnose(a.diag, ADV_LINES, a.ar, (size_t)a.np, a.adv.best, a.adv.none);
    a.n_warn = advise_warnings(a.warn, ADV_LINES, a.ar, (size_t)a.np);

    /* the advice, on stdout and kept for the report */
    FILE *mem = open_memstream(&advice_text, &advice_len);
    if (!mem) OS_FAIL(OS_ERR_NOMEM, "advise", NULL, NULL, "cannot buffer the advice");
    print_advice(mem, &a, &cfg);
    if (have_mega) {
        const PolRun *b = &a.runs[a.adv.best];
        AdvisePair pr;
        size_t n = OS_MIN(b->run.n, mega.run.n);
        OS_CHECK(advise_pair(&pr, b->run.step_s, mega.run.step_s, n));
        double ratio = mega.row.tokens_per_s > 0 ? b->row.tokens_per_s / mega.row.tokens_per_s : 0;
        char ci[64] = "one step: no confidence interval";
        if (n > 1) snprintf(ci, sizeof ci, "+- %.4g s (paired over %zu steps, 95%%)", pr.ci95_s, n);
        fprintf(mem, "  megatron     %s: %.6g s per step; %s is %.2fx its throughput, %s by %.6g s per step %s, "
                     "%llu of %zu steps%s\n",
                bdesc, mega.row.step_mean_s, b->name, ratio, pr.mean_s >= 0 ? "faster" : "slower", fabs(pr.mean_s), ci,
                (unsigned long long)(pr.mean_s >= 0 ? pr.wins : pr.losses), n, pr.tied ? " (tied within noise)" : "");
    }
    print_ranking(mem, &a);
    fclose(mem);
    /* the human advice goes to stderr when a machine output is "-" (stdout) */
    FILE *hu = (csv && !strcmp(csv, "-")) || (json && !strcmp(json, "-")) || (html && !strcmp(html, "-")) ? stderr : stdout;
    fputs(advice_text, hu);
    print_lines(hu, "diagnosis", a.diag, a.n_diag, 1);
    print_lines(hu, "warnings", a.warn, a.n_warn, 0);

    /* figures first (scratch files, read back), then every output together or none */
    static char svg[3][4300];
    const char *caps[3], *why = NULL;
    const char *svgp[3] = {svg[0], svg[1], svg[2]};
    size_t nfig = 0;
    if (html) OS_CHECK(html_figures(svg, caps, &nfig, &why, &a, &cfg, t, po, &sc));
    out_mark = os_outputs_hold();
    held = 1;
    if (csv) {
        OS_CHECK(os_outfile_open(&fc, csv, 1));
        c_open = 1;
        runtable_write_header(fc.fp);
        for (int i = 0; i < a.np; i++) runtable_write_row(fc.fp, &a.runs[i].row);
        if (have_mega) runtable_write_row(fc.fp, &mega.row);
        runtable_write_row(fc.fp, &a.oracle);
        c_open = 0;
        OS_CHECK(os_outfile_commit(&fc));
    }
    if (json) {
        OS_CHECK(os_outfile_open(&fj, json, 1));
        j_open = 1;
        write_json(fj.fp, &a);
        j_open = 0;
        OS_CHECK(os_outfile_commit(&fj));
    }
    if (html) {
        RunRow *tab = malloc(((size_t)a.np + 1) * sizeof *tab);
        ALLOC_CHECK(tab);
        for (int i = 0; i < a.np; i++) tab[i] = a.runs[i].row;
        tab[a.np] = a.oracle;
        char title[1024];
        snprintf(title, sizeof title, "orchsim advise: %s on %u GPUs (%s)", pos[0], cfg.cluster.gpus, cfg.model->name);
        HtmlReport rep = {.title = title, .advice_text = advice_text, .diag = a.diag, .n_diag = a.n_diag,
                          .warn = a.warn, .n_warn = a.n_warn, .rows = tab, .n_rows = (size_t)a.np + 1,
                          .recommended = a.runs[a.adv.best].name, .svg_paths = svgp, .captions = caps, .n_fig = nfig,
                          .no_figures = why};
        st = report_html_write(html, &rep);
        free(tab);
        OS_CHECK(st);
    }
fail:
    if (c_open) os_outfile_abort(&fc);
    if (j_open) os_outfile_abort(&fj);
    if (held) st = os_outputs_release(out_mark, st);
    polrun_scratch_remove(&sc);
    for (int i = 0; a.runs && i < a.np; i++) polrun_free(&a.runs[i]);
    if (have_mega) polrun_free(&mega);
    free(a.runs);
    free(a.ar);
    free(advice_text);
    free(prov);
    free(list);
    trace_close(t);
    return st;
}
