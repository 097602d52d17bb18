/* cmd_info.c — `orchsim info`: a trace's provenance, counts and per-modality statistics
 * (traces/trace_stats.h), as a table or --json. The statistics pass reads every step through
 * trace_read_step, which validates every example and item row, so a bad row anywhere fails
 * the command before anything is printed (the same scan trace_validate does, done once). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "analysis/runtable.h"
#include "cli/commands.h"
#include "cli/opts.h"
#include "base/util.h"
#include "traces/trace.h"
#include "traces/trace_stats.h"

/* Parse "image=4,audio=2" into ratio[] (starting from the trace's defaults). */
static OsStatus parse_ratios(uint32_t *ratio, const Trace *t, const char *spec) {
    const char *names[TRACE_MAX_MODALITIES];
    for (uint32_t m = 0; m < trace_n_modalities(t); m++) {
        ratio[m] = trace_modality(t, m)->default_ratio;
        names[m] = trace_modality(t, m)->name;
    }
    if (!spec) return OS_OK;
    return opts_named_u32(ratio, names, trace_n_modalities(t), 1, spec, "--ratio", 1, 1u << 20);
}

static void json_num(double v) {
    if (isfinite(v)) printf("%.6g", v);
    else printf("null");
}

static void json_q(const char *key, const TraceHist *h) {
    printf("\"%s\": {\"mean\": ", key);
    json_num(trace_hist_mean(h));
    printf(", \"median\": ");
    json_num(trace_hist_quantile(h, 0.5));
    printf(", \"p99\": ");
    json_num(trace_hist_quantile(h, 0.99));
    printf("}");
}

static void print_json(const Trace *t, const TraceStats *s) {
    const TraceProvenance *p = trace_provenance(t);
    printf("{\"path\": ");
    runtable_json_str(stdout, trace_path(t));
    printf(", \"source\": ");
    runtable_json_str(stdout, p->source);
    printf(", \"created_by\": ");
    runtable_json_str(stdout, p->created_by);
    printf(", \"steps\": %llu, \"examples\": %llu, \"items\": %llu, \"dp_min\": %u, \"dp_max\": %u, "
           "\"global_batch_min\": %u, \"global_batch_max\": %u,\n \"modalities\": [",
           (unsigned long long)s->steps, (unsigned long long)s->examples, (unsigned long long)s->items, s->dp_min,
           s->dp_max, s->batch_min, s->batch_max);
    for (uint32_t m = 0; m < s->n_mod; m++) {
        const TraceModStats *ms = &s->mod[m];
        const TraceModality *md = trace_modality(t, m);
        printf("%s\n  {\"name\": ", m ? "," : "");
        runtable_json_str(stdout, md->name);
        printf(", \"unit\": ");
        runtable_json_str(stdout, md->unit);
        printf(", \"ratio\": %u, \"tokens_per_item\": %u, \"examples_with\": %llu, \"share\": ", s->ratio[m], s->tpi[m],
               (unsigned long long)ms->examples_with);
        json_num(s->examples ? (double)ms->examples_with / (double)s->examples : NAN);
        printf(", \"items\": %llu, ", (unsigned long long)ms->items);
        if (m) {
            json_q("items_per_example", &ms->items_per_ex);
            printf(", ");
            json_q("positions_per_item", &ms->pos_per_item);
            printf(", ");
        }
        json_q("positions_per_example", &ms->pos_per_ex);
        printf(", \"total_positions\": %llu, \"llm_tokens\": %llu}", (unsigned long long)ms->total_pos,
               (unsigned long long)ms->total_llm);
    }
    printf("],\n ");
    json_q("llm_tokens_per_example", &s->llm_per_ex);
    printf(",\n \"correlation\": [");
    int first = 1;
    for (uint32_t a = 0; a < s->n_mod; a++)
        for (uint32_t b = a + 1; b < s->n_mod; b++) {
            printf("%s{\"a\": ", first ? "" : ", ");
            runtable_json_str(stdout, trace_modality(t, a)->name);
            printf(", \"b\": ");
            runtable_json_str(stdout, trace_modality(t, b)->name);
            printf(", \"r\": ");
            json_num(trace_corr_r(&s->corr[a][b]));
            printf("}");
            first = 0;
        }
    printf("],\n \"imbalance\": [");
    for (uint32_t m = 1; m <= s->n_mod; m++) {
        const TraceImbalance *im = m < s->n_mod ? &s->enc[m] : &s->llm;
        printf("%s{\"phase\": ", m > 1 ? ", " : "");
        runtable_json_str(stdout, m < s->n_mod ? trace_modality(t, m)->name : "llm");
        printf(", \"steps\": %llu, \"mean\": ", (unsigned long long)im->steps);
        json_num(im->steps ? im->mean : NAN);
        printf(", \"max\": ");
        json_num(im->steps ? im->max : NAN);
        printf("}");
    }
    printf("]}\n");
}

static void q3(char *buf, size_t n, const TraceHist *h) {
    if (!h->n) snprintf(buf, n, "%26s", "-");
    else
        snprintf(buf, n, "%8.1f %8.0f %8.0f", trace_hist_mean(h), trace_hist_quantile(h, 0.5),
                 trace_hist_quantile(h, 0.99));
}

static void print_table(const Trace *t, const TraceStats *s) {
    const TraceProvenance *p = trace_provenance(t);
    char a[64], b[64], c[64];
    /* provenance is whatever the writer put there: escaped, so it cannot drive the terminal */
    char path[4200], src[2100], by[520];
    os_escape(path, sizeof path, trace_path(t), strlen(trace_path(t)));
    os_escape(src, sizeof src, p->source, sizeof p->source);
    os_escape(by, sizeof by, p->created_by, sizeof p->created_by);
    printf("# trace      %s\n# source     %s\n# created by %s\n", path, src, by);
    for (uint32_t m = 1; m < s->n_mod; m++)
        if (s->tpi[m]) printf("# tokens     %s: %u LLM tokens per item (the trace's tokens_per_item)\n", trace_modality(t, m)->name, s->tpi[m]);
    printf("steps %llu   examples %llu   items %llu   ", (unsigned long long)s->steps,
           (unsigned long long)s->examples, (unsigned long long)s->items);
    if (s->dp_min == s->dp_max) printf("dp %u   ", s->dp_min);
    else printf("dp %u..%u   ", s->dp_min, s->dp_max);
    if (s->batch_min == s->batch_max) printf("global batch %u\n\n", s->batch_min);
    else printf("global batch %u..%u\n\n", s->batch_min, s->batch_max);
    printf("# per modality (items/example and positions/example over the examples that have it;\n"
           "#   mean / median / p99; quantiles exact below 1024, else within 0.8%%)\n");
    printf("%-10s %-6s %5s %7s  %-26s  %-26s  %-26s %14s %14s\n", "modality", "unit", "ratio", "share",
           "items/example mean med p99", "positions/item mean med p99", "positions/example mean/med/p99",
           "positions", "LLM tokens");
    for (uint32_t m = 0; m < s->n_mod; m++) {
        const TraceModStats *ms = &s->mod[m];
        const TraceModality *md = trace_modality(t, m);
        if (m) {
            q3(a, sizeof a, &ms->items_per_ex);
            q3(b, sizeof b, &ms->pos_per_item);
        } else {
            snprintf(a, sizeof a, "%26s", "-");
            snprintf(b, sizeof b, "%26s", "-");
        }
        q3(c, sizeof c, &ms->pos_per_ex);
        printf("%-10s %-6s %5u %6.1f%%  %s  %s  %s %14llu %14llu\n", md->name, md->unit, s->ratio[m],
               s->examples ? 100.0 * (double)ms->examples_with / (double)s->examples : 0.0, a, b, c,
               (unsigned long long)ms->total_pos, (unsigned long long)ms->total_llm);
    }
    q3(a, sizeof a, &s->llm_per_ex);
    printf("%-10s %-6s %5s %7s  %26s  %26s  %s\n\n", "LLM S", "token", "", "", "", "", a);
    printf("# Pearson correlation of per-example counts (all examples, zeros included)\n");
    for (uint32_t x = 0; x < s->n_mod; x++)
        for (uint32_t y = x + 1; y < s->n_mod; y++) {
            double r = trace_corr_r(&s->corr[x][y]);
            if (!isfinite(r)) continue;
            char pair[80];
            snprintf(pair, sizeof pair, "%s ~ %s", trace_modality(t, x)->name, trace_modality(t, y)->name);
            printf("  %-24s %+.3f\n", pair, r);
        }
    printf("\n# imbalance max/mean per step, dealt as drawn (encoders: positions; LLM: S tokens)\n");
    printf("  %-16s %8s %8s %8s\n", "phase", "mean", "max", "steps");
    for (uint32_t m = 1; m <= s->n_mod; m++) {
        const TraceImbalance *im = m < s->n_mod ? &s->enc[m] : &s->llm;
        char name[48];
        snprintf(name, sizeof name, "%s%s", m < s->n_mod ? trace_modality(t, m)->name : "llm",
                 m < s->n_mod ? " encoder" : "");
        if (!im->steps) printf("  %-16s %8s %8s %8d\n", name, "-", "-", 0);
        else printf("  %-16s %8.3f %8.3f %8llu\n", name, im->mean, im->max, (unsigned long long)im->steps);
    }
}

OsStatus cmd_info(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *pos[1] = {NULL}, *ratio_spec = NULL;
    int json = 0;
    uint64_t max_ex = 0, max_it = 0;
    Trace *t = NULL;
    TraceStats *s = NULL;
    uint32_t ratio[TRACE_MAX_MODALITIES];
    const OptSpec specs[] = {
        {"json", 0, OPT_FLAG, &json, NULL, "machine-readable output", 0, 0},
        {"ratio", 'r', OPT_STR, &ratio_spec, "NAME=R,...",
         "projector ratios for LLM tokens (default: the trace's default_ratio)", 0, 0},
        {"max-step-examples", 0, OPT_U64, &max_ex, "N",
         "refuse steps of more examples (0: ORCHSIM_MAX_STEP_EXAMPLES, else 2^24)", 0, 1ull << 40},
        {"max-step-items", 0, OPT_U64, &max_it, "N", "refuse steps of more items (0: ORCHSIM_MAX_STEP_ITEMS, else 2^26)",
         0, 1ull << 40},
    };
    const CmdHelp help = {
        "info", "orchsim info TRACE.h5 [--json] [--ratio image=4,audio=2]",
        "Validate a trace and print its provenance, counts and per-modality statistics.",
        "LLM tokens per example: S = text + sum ceil(len_i / ratio[m]) (DESIGN.md §1).\n"
        "Imbalance: per step and phase, max over ranks / mean over ranks, ranks holding the\n"
        "examples as drawn; reported as the mean and the max over steps."};
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, pos, 1, 1, NULL));
    TraceLimits lim = {.max_step_examples = max_ex, .max_step_items = max_it};
    OS_CHECK(trace_open_limits(&t, pos[0], &lim));
    OS_CHECK(parse_ratios(ratio, t, ratio_spec));
    OS_CHECK(trace_stats_compute(&s, t, ratio));
    if (json) print_json(t, s);
    else print_table(t, s);
fail:
    trace_stats_destroy(s);
    trace_close(t);
    return st;
}
