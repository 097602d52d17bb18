/* validate.h — the arithmetic of `orchsim validate`: what a worker's report holds, how a step
 * time is formed from the reports (measured, or composed under --emulate), and the
 * measured-vs-predicted row of every step with the MAPE over steps.
 * Implements: the ExecReport value layout of one rank's step (per phase forward/backward
 *   compute, all-to-all and gradient-sync seconds, the rank's step wall time, all from CUDA
 *   events); the emulated step: ranks timed one after another, composed along the step's
 *   barriers (every all-to-all that moves rows between ranks, and the gradient sync, waits
 *   for the slowest rank) with the collectives' modelled seconds (net.h) added at each
 *   barrier; the signed error (predicted - measured) / measured; MFU from a step time;
 *   MAPE = mean |error| over the steps that have both numbers.
 * Does not: run, model or print anything (exec/worker.h, sim/net.h, cli/cmd_validate.c).
 * Letters: D ranks, P phases (encoders, then the LLM). Seconds throughout. */
#ifndef OS_EXEC_VALIDATE_H
#define OS_EXEC_VALIDATE_H

#include <stdint.h>

#include "exec/worker.h"
#include "sim/model.h"

#define EXEC_VAL_MAX_PHASES (MODEL_MAX_ENC + 1)

/* v[] of one rank's report (ExecReport.n = EXEC_V_COUNT). */
enum {
    EXEC_V_FWD = 0,                                  /* + p: phase p forward compute */
    EXEC_V_BWD = EXEC_V_FWD + EXEC_VAL_MAX_PHASES,   /* + p: phase p backward compute */
    EXEC_V_A2A = EXEC_V_BWD + EXEC_VAL_MAX_PHASES,   /* + p: all-to-alls around phase p (fwd+bwd) */
    EXEC_V_SYNC = EXEC_V_A2A + EXEC_VAL_MAX_PHASES,  /* gradient sync */
    EXEC_V_STEP,                                     /* the rank's whole step, wall */
    EXEC_V_LOSS,                                     /* the rank's share of the global loss */
    EXEC_V_COUNT
};

/* One step of an emulated run. Barrier b (0 .. P) sits before phase p = b's compute:
 * barrier p < P-1 is encoder p's input all-to-all (when it moves rows between ranks),
 * the LLM's barrier is the embeddings' + text all-to-all; the backward mirrors them; the
 * last is the gradient sync. comm_s[k]: modelled seconds of each barrier's collective, in
 * the order the step meets them: [0, P) forward moves before phase p, [P, 2P-1) backward
 * moves after the LLM, before encoder P-2-k's backward, 2P-1 the gradient sync. A phase
 * whose moves[] flag is 0 is no barrier (nothing crosses ranks) and its comm_s is ignored. */
typedef struct {
    uint32_t D, P;
    const double *fwd; /* [D*P] measured forward compute, rank-major */
    const double *bwd; /* [D*P] measured backward compute */
    const int *moves;  /* [P] 1: the moves before phase p cross ranks (and their inverses) */
    const double *comm_s; /* [2P] modelled, see above */
    /* [P] or NULL (= moves): 1 when the backward moves before encoder p's backward (its
     * embeddings' gradients going back) cross ranks. An encoder's inputs and its embeddings
     * may move differently (items encoded at home, sequences rebalanced), so the backward
     * barrier has its own flag; [P-1] is unused. */
    const int *bwd_moves;
} ExecEmuStep;

/* Composed step time: per rank a clock advances by its compute; at a barrier every clock
 * becomes the max plus the collective's modelled time. *compute_s = the slowest rank's
 * measured compute alone, *comm_s = the modelled collectives on the critical path. */
/* D <= 4096 (validate's --gpus limit): ranks beyond are ignored. */
double exec_emu_step(const ExecEmuStep *e, double *compute_s, double *comm_s);

typedef struct {
    uint64_t step;
    double measured_s;   /* max over ranks of EXEC_V_STEP; NAN when emulated */
    double emulated_s;   /* exec_emu_step's time; NAN when measured */
    double predicted_s;  /* replay_run's StepResult.step_s */
    double error_frac;   /* (predicted - measured or emulated) / it */
    double mfu;          /* model_flops / (time * D * peak) with the time above */
} ExecValRow;

/* Fill the derived fields (error_frac, mfu) of a row whose times are set. */
void exec_val_row_finish(ExecValRow *r, double model_flops, uint32_t D, double peak_flops);
/* Mean |error_frac| over rows with a finite error; NAN when none. */
double exec_val_mape(const ExecValRow *rows, uint64_t n);

#endif
