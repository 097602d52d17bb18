/* valreport.c — see valreport.h. Every column carries its label in the second header row;
 * the per-rank lines are all measured (CUDA events), so the emulated mode leaves out the
 * local device-to-device copies that stand in for the all-to-alls (they are neither the
 * cluster's measured nor its modelled time) and prints the modelled collectives apart. */
#include "exec/valreport.h"

#include <math.h>
#include <string.h>

const char *const EXEC_VAL_CSV_COLS[EXEC_VAL_CSV_BASE + EXEC_VAL_CSV_EXTRA] = {
    /* analysis/schema.c "validate", in its order (tests/test_exec_run.c checks it) */
    "step", "policy", "measured_s", "predicted_s", "error_frac", "mfu_measured",
    /* --emulate only: measured compute composed with modelled collectives */
    "emulated_s", "compute_measured_s", "comm_modelled_s", "error_frac_emulated", "mfu_emulated"};

OsStatus exec_val_step(ExecValStep *out, const ExecValTable *t, uint64_t step, const ExecReport *rep,
                       double predicted_s, double model_flops, const ExecEmuComm *emu, double *scratch) {
    OsStatus st = OS_OK;
    const uint32_t D = t->D, P = t->P;
    double *fwd = scratch, *bwd = scratch + (size_t)D * P;
    memset(out, 0, sizeof *out);
    if (t->emulate && (!emu || emu->P != P))
        OS_FAIL(OS_ERR_INTERNAL, "validate", "emulated step", NULL, "step %llu: no modelled collectives for %u phases",
                (unsigned long long)step, P);
    double slowest = 0, compute = 0;
    for (uint32_t r = 0; r < D; r++) {
        const ExecReport *x = &rep[r];
        if (x->rank != r || x->step != step || x->n != EXEC_V_COUNT)
            OS_FAIL(OS_ERR_INTERNAL, "validate", "report", "a worker sent a report out of turn",
                    "slot %u holds rank %u, step %llu, %u values (want rank %u, step %llu, %d values)", r, x->rank,
                    (unsigned long long)x->step, x->n, r, (unsigned long long)step, (int)EXEC_V_COUNT);
        double c = 0;
        for (uint32_t p = 0; p < P; p++) {
            fwd[(size_t)r * P + p] = x->v[EXEC_V_FWD + p];
            bwd[(size_t)r * P + p] = x->v[EXEC_V_BWD + p];
            c += x->v[EXEC_V_FWD + p] + x->v[EXEC_V_BWD + p];
        }
        compute = fmax(compute, c);
        slowest = fmax(slowest, x->v[EXEC_V_STEP]);
    }
    out->row.step = step;
    out->row.predicted_s = predicted_s;
    out->compute_s = compute;
    if (t->emulate) {
        ExecEmuStep e;
        exec_emu_comm_step(&e, emu, D, fwd, bwd);
        out->row.measured_s = NAN;
        out->row.emulated_s = exec_emu_step(&e, &out->compute_s, &out->comm_s);
    } else {
        out->row.measured_s = slowest;
        out->row.emulated_s = NAN;
        out->comm_s = NAN;
    }
    exec_val_row_finish(&out->row, model_flops, D, t->peak_flops);
fail:
    return st;
}

void exec_val_print_header(FILE *fp, const ExecValTable *t) {
    if (t->emulate) {
        fprintf(fp, "# labels: measured = CUDA events on this GPU (each rank's compute, ranks run one after another);\n"
                    "#   modelled = orchsim's network model (net.h) or simulator (replay_run); meas+model = measured\n"
                    "#   compute composed with modelled collectives (exec/validate.h); derived = from the columns left\n"
                    "#   of it. No column below is a measured step time: --emulate measures no collective.\n");
        fprintf(fp, "%6s %12s %12s %12s %12s %11s %12s\n", "step", "emulated_s", "compute_s", "comm_s", "predicted_s",
                "error_frac", "mfu");
        fprintf(fp, "%6s %12s %12s %12s %12s %11s %12s\n", "#", "meas+model", "measured", "modelled", "modelled",
                "derived", "meas+model");
    } else {
        fprintf(fp, "# labels: measured = CUDA events on the GPUs (step: max over ranks, gradient sync included);\n"
                    "#   modelled = orchsim's simulator (replay_run) on the same steps; derived = (predicted -\n"
                    "#   measured) / measured\n");
        fprintf(fp, "%6s %12s %12s %11s %12s\n", "step", "measured_s", "predicted_s", "error_frac", "mfu");
        fprintf(fp, "%6s %12s %12s %11s %12s\n", "#", "measured", "modelled", "derived", "measured");
    }
    /* per-rank line legend: compute per phase (and the moves when they are real) */
    fprintf(fp, "# per rank (all measured, seconds):");
    for (uint32_t p = 0; p < t->P; p++) {
        fprintf(fp, " %s_fwd %s_bwd", t->phase[p], t->phase[p]);
        if (!t->emulate) fprintf(fp, " %s_a2a", t->phase[p]);
    }
    fprintf(fp, t->emulate ? "\n" : " sync step\n");
    if (t->emulate) {
        fprintf(fp, "# collectives (modelled, seconds):");
        for (uint32_t p = 0; p < t->P; p++) fprintf(fp, " %s_a2a", t->phase[p]);
        for (uint32_t k = 0; k + 1 < t->P; k++) fprintf(fp, " %s_a2a_bwd", t->phase[t->P - 2 - k]);
        fprintf(fp, " sync\n");
    }
}

static void pct(char *buf, size_t n, double v) {
    if (isfinite(v)) snprintf(buf, n, "%+.2f%%", 100 * v);
    else snprintf(buf, n, "n/a");
}

void exec_val_print_step(FILE *fp, const ExecValTable *t, const ExecValStep *s, const ExecReport *rep,
                         const ExecEmuComm *emu) {
    char err[32], mfu[32];
    pct(err, sizeof err, s->row.error_frac);
    if (isfinite(s->row.mfu)) snprintf(mfu, sizeof mfu, "%.2f%%", 100 * s->row.mfu);
    else snprintf(mfu, sizeof mfu, "n/a");
    if (t->emulate)
        fprintf(fp, "%6llu %12.6g %12.6g %12.6g %12.6g %11s %12s\n", (unsigned long long)s->row.step,
                s->row.emulated_s, s->compute_s, s->comm_s, s->row.predicted_s, err, mfu);
    else
        fprintf(fp, "%6llu %12.6g %12.6g %11s %12s\n", (unsigned long long)s->row.step, s->row.measured_s,
                s->row.predicted_s, err, mfu);
    for (uint32_t r = 0; r < t->D; r++) {
        const double *v = rep[r].v;
        fprintf(fp, "    rank %-4u", r);
        for (uint32_t p = 0; p < t->P; p++) {
            fprintf(fp, " %.4g %.4g", v[EXEC_V_FWD + p], v[EXEC_V_BWD + p]);
            if (!t->emulate) fprintf(fp, " %.4g", v[EXEC_V_A2A + p]);
        }
        if (!t->emulate) fprintf(fp, " %.4g %.4g", v[EXEC_V_SYNC], v[EXEC_V_STEP]);
        fprintf(fp, "\n");
    }
    if (t->emulate && emu) {
        fprintf(fp, "    modelled   ");
        for (uint32_t k = 0; k < 2 * t->P; k++) fprintf(fp, " %.4g", emu->comm_s[k]);
        fprintf(fp, "\n");
    }
}

void exec_val_print_summary(FILE *fp, const ExecValTable *t, const ExecValRow *rows, uint64_t n) {
    double m = exec_val_mape(rows, n);
    uint64_t k = 0;
    for (uint64_t i = 0; i < n; i++) k += isfinite(rows[i].error_frac) != 0;
    if (isfinite(m))
        fprintf(fp, "# MAPE (predicted vs %s) over %llu steps: %.2f%%\n", t->emulate ? "emulated" : "measured",
                (unsigned long long)k, 100 * m);
    else
        fprintf(fp, "# MAPE: n/a (no step has both numbers)\n");
}

void exec_val_csv_header(FILE *fp, const ExecValTable *t) {
    size_t n = EXEC_VAL_CSV_BASE + (t->emulate ? EXEC_VAL_CSV_EXTRA : 0);
    for (size_t i = 0; i < n; i++) fprintf(fp, "%s%s", i ? "," : "", EXEC_VAL_CSV_COLS[i]);
    fprintf(fp, "\n");
}

/* An empty cell for a number that does not exist (NaN), never a stand-in value. */
static void cell(FILE *fp, double v) {
    if (isfinite(v)) fprintf(fp, ",%.9g", v);
    else fprintf(fp, ",");
}

void exec_val_csv_row(FILE *fp, const ExecValTable *t, const ExecValStep *s) {
    fprintf(fp, "%llu,%s", (unsigned long long)s->row.step, t->policy);
    if (t->emulate) {
        /* the schema's measured columns stay empty: nothing here is a measured step */
        cell(fp, NAN), cell(fp, s->row.predicted_s), cell(fp, NAN), cell(fp, NAN);
        cell(fp, s->row.emulated_s), cell(fp, s->compute_s), cell(fp, s->comm_s);
        cell(fp, s->row.error_frac), cell(fp, s->row.mfu);
    } else {
        cell(fp, s->row.measured_s), cell(fp, s->row.predicted_s), cell(fp, s->row.error_frac), cell(fp, s->row.mfu);
    }
    fprintf(fp, "\n");
}
