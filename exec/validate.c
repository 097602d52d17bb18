/* validate.c — see validate.h. */
#include "exec/validate.h"

#include <math.h>

double exec_emu_step(const ExecEmuStep *e, double *compute_s, double *comm_s) {
    double clock[4096], busy[4096];
    uint32_t D = e->D < 4096 ? e->D : 4096, P = e->P;
    double comm = 0;
    for (uint32_t r = 0; r < D; r++) clock[r] = busy[r] = 0;
    /* a barrier: everyone waits for the slowest, then the collective runs */
#define BARRIER(secs)                                                  \
    do {                                                               \
        double m_ = 0;                                                 \
        for (uint32_t r = 0; r < D; r++) m_ = fmax(m_, clock[r]);      \
        for (uint32_t r = 0; r < D; r++) clock[r] = m_ + (secs);       \
        comm += (secs);                                                \
    } while (0)
    /* forward: encoders then the LLM, each preceded by its moves */
    for (uint32_t p = 0; p < P; p++) {
        if (e->moves[p]) BARRIER(e->comm_s[p]);
        for (uint32_t r = 0; r < D; r++) {
            double t = e->fwd[(size_t)r * P + p] + (p == P - 1 ? e->bwd[(size_t)r * P + p] : 0);
            clock[r] += t, busy[r] += t;
        }
    }
    /* backward: the embeddings' gradients go back, then each encoder's backward */
    for (uint32_t k = 0; k + 1 < P; k++) {
        uint32_t p = P - 2 - k;
        if ((e->bwd_moves ? e->bwd_moves : e->moves)[p]) BARRIER(e->comm_s[P + k]);
        for (uint32_t r = 0; r < D; r++) {
            clock[r] += e->bwd[(size_t)r * P + p];
            busy[r] += e->bwd[(size_t)r * P + p];
        }
    }
    BARRIER(e->comm_s[2 * P - 1]); /* gradient sync */
#undef BARRIER
    double c = 0;
    for (uint32_t r = 0; r < D; r++) c = fmax(c, busy[r]);
    if (compute_s) *compute_s = c;
    if (comm_s) *comm_s = comm;
    return clock[0];
}

void exec_val_row_finish(ExecValRow *r, double model_flops, uint32_t D, double peak_flops) {
    double t = isfinite(r->measured_s) ? r->measured_s : r->emulated_s;
    r->error_frac = (isfinite(t) && t > 0 && isfinite(r->predicted_s)) ? (r->predicted_s - t) / t : NAN;
    r->mfu = (isfinite(t) && t > 0 && D && peak_flops > 0) ? model_flops / (t * D * peak_flops) : NAN;
}

double exec_val_mape(const ExecValRow *rows, uint64_t n) {
    double s = 0;
    uint64_t k = 0;
    for (uint64_t i = 0; i < n; i++)
        if (isfinite(rows[i].error_frac)) s += fabs(rows[i].error_frac), k++;
    return k ? s / (double)k : NAN;
}
