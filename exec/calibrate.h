/* calibrate.h — measure the achieved-rate table (sim/cost.h Calib) on this machine's GPU 0.
 * Implements: cuBLAS bf16 GEMMs (fp32 accumulation) over the (M, K, N) shapes a model's
 *   stacks and projectors produce, M = 256 .. 32768 tokens; the backend's attention forward
 *   over lengths 64 .. 16384; one layer's non-GEMM launches at one token (kernel overhead);
 *   each timed with CUDA events after warm-up on random non-zero data, median of repeats
 *   (STYLE.md habit 7); device, clocks and library versions as provenance keys.
 * Does not: measure collectives (intra_bw/inter_bw stay 0 = not measured: needs >= 2 ranks),
 *   or write the file (cli/cmd_calibrate.c calls calib_save). */
#ifndef OS_EXEC_CALIBRATE_H
#define OS_EXEC_CALIBRATE_H

#include <stdint.h>

#include "base/status.h"
#include "sim/cost.h"
#include "sim/model.h"

typedef struct {
    uint32_t repeats, warmup;
    uint32_t min_tokens, max_tokens; /* GEMM M range, doubling */
    uint32_t min_len, max_len;       /* attention lengths, doubling */
    int verbose;                     /* one stderr line per measurement */
} ExecCalibOptions;

void exec_calib_options_init(ExecCalibOptions *o); /* 20, 5, 256, 32768, 64, 16384 */
/* Fill c from measurements on GPU 0 (c is reset first). Errors: no device, not enough
 * memory (says how much is needed), CUDA/cuBLAS failures. */
OsStatus exec_calibrate(Calib *c, const ModelSpec *m, const ExecCalibOptions *o);

#endif
