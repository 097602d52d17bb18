/* polrun.c — see polrun.h. */
#include "cli/polrun.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/opts.h"
#include "cli/simout.h"

OsStatus polrun_parse_list(const char **names, int *np, char **buf, const char *list) {
    OsStatus st = OS_OK;
    char *parts[POLRUN_MAX];
    *np = 0;
    *buf = NULL;
    if (!list || !strcmp(list, "all")) {
        for (uint32_t i = 0; i < policy_count() && *np < POLRUN_MAX; i++) names[(*np)++] = policy_at(i)->name;
        return OS_OK;
    }
    *buf = strdup(list);
    ALLOC_CHECK(*buf);
    int n = opts_split(*buf, parts, POLRUN_MAX);
    if (n == 0) OS_FAIL(OS_ERR_ARG, "--policies", NULL, "e.g. --policies none,lpt,post", "empty list");
    for (int i = 0; i < n; i++) {
        if (!strcmp(parts[i], "all"))
            OS_FAIL(OS_ERR_ARG, "--policies", "all", "give 'all' alone, or a list of names", "'all' inside a list");
        if (!strcmp(parts[i], "oracle"))
            OS_FAIL(OS_ERR_ARG, "--policies", "oracle", "leave it out: every table shows the oracle row",
                    "the oracle is a lower bound, not a policy");
        if (!policy_find(parts[i])) {
            const char *sug = policy_suggest(parts[i]);
            char hint[160];
            if (sug) snprintf(hint, sizeof hint, "did you mean '%s'?", sug);
            else snprintf(hint, sizeof hint, "see `orchsim compare --help` for the policies");
            OS_FAIL(OS_ERR_ARG, "--policies", parts[i], hint, "unknown policy");
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(parts[j], parts[i]))
                OS_FAIL(OS_ERR_ARG, "--policies", parts[i], "name each policy once", "given twice");
        names[i] = parts[i];
    }
    *np = n;
fail:
    return st;
}

OsStatus polrun_opts_init(PolRunOpts *po, RunProv **prov, const char *trace_path, const char *command, int measured,
                          double fixed_s, int progress, Trace *t, const ReplayConfig *cfg) {
    OsStatus st = OS_OK;
    memset(po, 0, sizeof *po);
    *prov = malloc(sizeof **prov);
    ALLOC_CHECK(*prov);
    OS_CHECK(runprov_init(*prov, trace_path, command, ORCHSIM_VERSION));
    po->charge = polrun_charge_pick(measured, fixed_s);
    po->fixed_s = fixed_s, po->prov = *prov, po->progress = progress;
    OS_CHECK(advise_units(&po->units, t, cfg));
fail:
    return st;
}

ChargeMode polrun_charge_pick(int measured, double fixed_s) {
    return measured ? CHARGE_MEASURED : fixed_s >= 0 ? CHARGE_FIXED : CHARGE_MODELLED;
}

const char *polrun_charge_name(ChargeMode m) {
    return m == CHARGE_FIXED ? "fixed" : m == CHARGE_MEASURED ? "measured" : "modelled";
}

typedef struct {
    PolRun *out;
    int phase_col[REPLAY_MAX_PHASES];
    uint32_t P;
    char names[REPLAY_MAX_PHASES][32];
    FILE *csv;
} Sink;

static OsStatus on_step(const StepResult *r, void *user) {
    Sink *s = user;
    PolRun *o = s->out;
    OsStatus st = OS_OK;
    if (o->series.n == 0) o->first_step = r->step;
    OS_CHECK(run_series_push(&o->series, r, s->phase_col, s->P));
    OS_CHECK(advise_run_step(&o->run, r));
    o->tokens += (double)r->llm_tokens;
    o->model_flops += r->model_flops;
    if (s->csv) simout_step_csv_row(s->csv, o->name, r, s->P, (const char(*)[32])s->names);
    /* replay measures the policy whatever it charges (thread CPU, StepResult.balancer_measured_s) */
    o->run.measured_s += r->balancer_measured_s;
    o->run.measured_n++;
fail:
    return st;
}

OsStatus polrun_one(PolRun *out, ReplayConfig *cfg, Trace *t, const char *name, const char *setup_label,
                    const PolRunOpts *o) {
    OsStatus st = OS_OK;
    Sink sink;
    OsOutFile fs;
    int s_open = 0;
    char tl[4200] = "", path[4200];
    memset(&sink, 0, sizeof sink);
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name);
    const Policy *pol = policy_find(name);
    if (pol) cfg->policy = pol;
    advise_run_init(&out->run, name, cfg->policy);
    sink.out = out;
    OS_CHECK(runtable_phase_cols(sink.phase_col, &sink.P, cfg->model));
    sink.P = replay_phase_names(sink.names, cfg->model);
    /* the charge: deterministic unless --measured-charge. The modelled planning time of a post
     * policy is charged for its first phase only: the later phases are planned while the GPUs
     * compute the earlier ones (replay.c's plan_overlap does the same with measured times). A
     * pre policy plans in the data loader: replay reports its charge but never waits for it. */
    double model, charge;
    advise_charge(&charge, &model, cfg->policy, &o->units);
    if (o->charge == CHARGE_FIXED) cfg->balancer_cost_s = o->fixed_s;
    else if (o->charge == CHARGE_MEASURED) cfg->balancer_cost_s = -1.0;
    else cfg->balancer_cost_s = charge;

    if (o->steps_dir) {
        snprintf(path, sizeof path, "%s/steps_%s.csv", o->steps_dir, name);
        OS_CHECK(os_outfile_open(&fs, path, 1));
        s_open = 1;
        simout_step_csv_header(fs.fp);
        sink.csv = fs.fp;
    }
    cfg->timeline_path = NULL;
    if (o->timeline_dir) {
        snprintf(tl, sizeof tl, "%s/timeline_%s.json", o->timeline_dir, name);
        cfg->timeline_path = tl;
        cfg->timeline_step = 0;
    }
    cfg->progress = o->progress;
    OS_CHECK(replay_run(&out->sum, cfg, t, on_step, &sink));
    cfg->timeline_path = NULL;
    if (s_open) {
        s_open = 0;
        OS_CHECK(os_outfile_commit(&fs));
        if (o->scratch) polrun_scratch_note(o->scratch, path);
    }
    if (tl[0] && o->scratch) {
        polrun_scratch_note(o->scratch, tl);
        snprintf(path, sizeof path, "%.*s.csv", (int)(strlen(tl) - 5), tl);
        polrun_scratch_note(o->scratch, path);
    }
    advise_run_finish(&out->run, &out->sum, cfg);
    out->peak_flops = cfg->cluster.peak_flops;
    out->gpus = cfg->cluster.gpus;
    OS_CHECK(runrow_fill(&out->row, &out->sum, cfg, name, cfg->model->name,
                         setup_label ? setup_label : replay_setup_name(cfg->setup), out->series.step_s, out->series.n));
    OS_CHECK(runrow_add_cis(&out->row, &out->series));
    snprintf(out->row.balancer_charge, sizeof out->row.balancer_charge, "%s", polrun_charge_name(o->charge));
    out->row.balancer_measured_s_per_step =
        out->run.measured_n ? out->run.measured_s / (double)out->run.measured_n : NAN;
    out->row.balancer_modelled_s_per_step = model;
    out->run.model_s = model;
    if (o->prov) runrow_set_prov(&out->row, o->prov);
fail:
    if (s_open) os_outfile_abort(&fs);
    return st;
}

void polrun_free(PolRun *r) {
    if (!r) return;
    run_series_free(&r->series);
    advise_run_free(&r->run);
}

void polrun_oracle_row(RunRow *row, const PolRun *ref) {
    const RunRow *s = &ref->row;
    runrow_init(row);
    snprintf(row->policy, sizeof row->policy, "oracle");
    snprintf(row->model, sizeof row->model, "%s", s->model);
    snprintf(row->setup, sizeof row->setup, "%s", s->setup);
    row->gpus = s->gpus;
    row->gpus_per_node = s->gpus_per_node;
    row->tp = s->tp;
    row->dp = s->dp;
    row->steps = s->steps;
    double sum = 0.0;
    for (uint64_t k = 0; k < ref->run.n; k++) sum += ref->run.oracle_s[k];
    if (ref->run.n) row->step_mean_s = sum / (double)ref->run.n;
    if (sum > 0) {
        row->tokens_per_s = ref->tokens / sum;
        row->samples_per_s = ref->run.examples / sum;
        row->mfu = ref->model_flops / (sum * ref->gpus * ref->peak_flops);
    }
    row->long_examples = s->long_examples;
    row->needs_recompute = s->needs_recompute;
    snprintf(row->recompute, sizeof row->recompute, "%s", s->recompute);
    row->padded = s->padded;
    snprintf(row->calibration, sizeof row->calibration, "%s", s->calibration);
    snprintf(row->trace, sizeof row->trace, "%s", s->trace);
    snprintf(row->trace_hash, sizeof row->trace_hash, "%s", s->trace_hash);
    snprintf(row->orchsim_version, sizeof row->orchsim_version, "%s", s->orchsim_version);
    snprintf(row->command, sizeof row->command, "%s", s->command);
}

void polrun_json_row(FILE *fp, const PolRun *p) {
    const RunRow *r = &p->row;
    fputs("{\"policy\":", fp);
    runtable_json_str(fp, p->name);
    fprintf(fp, ",\"steps\":%llu,\"step_mean_s\":", (unsigned long long)r->steps);
    runtable_json_num(fp, r->step_mean_s);
    const struct {
        const char *k;
        double v;
    } f[] = {{"step_ci95_s", r->step_ci95_s}, {"step_p50_s", r->step_p50_s}, {"step_p99_s", r->step_p99_s},
             {"tokens_per_s", r->tokens_per_s}, {"samples_per_s", r->samples_per_s}, {"mfu", r->mfu},
             {"mfu_noattn", r->mfu_noattn}, {"mfu_causal", r->mfu_causal}, {"hfu", r->hfu},
             {"speedup_vs_none", r->speedup_vs_none}, {"tokens_per_s_ci95", r->tokens_per_s_ci95},
             {"mfu_ci95", r->mfu_ci95}, {"idle_frac_ci95", r->idle_frac_ci95}, {"idle_frac", r->idle_frac},
             {"bytes_intra_per_step", r->bytes_intra_per_step}, {"bytes_inter_per_step", r->bytes_inter_per_step},
             {"a2a_s_per_step", r->a2a_s_per_step}, {"balancer_s_per_step", r->balancer_s_per_step},
             {"balancer_modelled_s_per_step", r->balancer_modelled_s_per_step},
             {"balancer_measured_s_per_step", r->balancer_measured_s_per_step}};
    for (size_t i = 0; i < OS_ARRAY_LEN(f); i++) {
        fprintf(fp, ",\"%s\":", f[i].k);
        runtable_json_num(fp, f[i].v);
    }
    fputs(",\"balancer_charge\":", fp);
    runtable_json_str(fp, r->balancer_charge);
    fprintf(fp, ",\"long_examples\":%llu,\"needs_recompute\":%llu,\"phases\":{", (unsigned long long)r->long_examples,
            (unsigned long long)r->needs_recompute);
    for (uint32_t q = 0; q < p->sum.P; q++) {
        fprintf(fp, "%s", q ? "," : "");
        runtable_json_str(fp, p->sum.phase_name[q]);
        fprintf(fp, ":{\"imbalance\":%.6g,\"idle_frac\":%.6g}", p->sum.phase_imbalance[q], p->sum.phase_idle_frac[q]);
    }
    fputs("}}", fp);
}

/* ---------------------------------------------------------------- scratch files */

OsStatus polrun_scratch_make(PolScratch *s) {
    OsStatus st = OS_OK;
    memset(s, 0, sizeof *s);
    const char *tmp = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/orchsim-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        int e = errno;
        s->dir[0] = '\0';
        OS_FAIL(OS_ERR_IO, tmp && *tmp ? tmp : "/tmp", NULL, "set TMPDIR to a writable folder",
                "cannot create a scratch folder: %s", strerror(e));
    }
    s->track = os_tmp_track(s->dir, 1);
fail:
    return st;
}

void polrun_scratch_note(PolScratch *s, const char *path) {
    if (s->n_files < OS_ARRAY_LEN(s->files)) s->files[s->n_files++] = os_tmp_track(path, 0);
}

void polrun_scratch_remove(PolScratch *s) {
    if (!s->dir[0]) return;
    DIR *d = opendir(s->dir);
    if (d) {
        struct dirent *e;
        char p[4600];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(p, sizeof p, "%s/%s", s->dir, e->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(s->dir);
    for (size_t i = 0; i < s->n_files; i++) os_tmp_untrack(s->files[i]);
    os_tmp_untrack(s->track);
    memset(s, 0, sizeof *s);
}

OsStatus polrun_copy_file(const char *dst, const char *src, const char *header) {
    OsStatus st = OS_OK;
    OsOutFile out = {0};
    int open = 0;
    char *buf = NULL;
    FILE *in = fopen(src, "rb");
    if (!in) OS_FAIL(OS_ERR_IO, src, NULL, NULL, "cannot read: %s", strerror(errno));
    buf = malloc(1 << 16);
    ALLOC_CHECK(buf);
    OS_CHECK(os_outfile_open(&out, dst, 1));
    open = 1;
    if (header) fputs(header, out.fp);
    size_t k;
    while ((k = fread(buf, 1, 1 << 16, in)) > 0)
        if (fwrite(buf, 1, k, out.fp) != k) OS_FAIL(OS_ERR_IO, dst, NULL, "check free disk space", "write failed");
    if (ferror(in)) OS_FAIL(OS_ERR_IO, src, NULL, NULL, "read error");
    open = 0;
    OS_CHECK(os_outfile_commit(&out));
fail:
    if (open) os_outfile_abort(&out);
    if (in) fclose(in);
    free(buf);
    return st;
}
