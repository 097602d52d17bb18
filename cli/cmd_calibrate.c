/* cmd_calibrate.c — `orchsim calibrate`: measure the achieved-rate table (exec/calibrate.h)
 * on GPU 0 through the GPU module and write it in the Calib text format v2 (sim/calib.c)
 * through calib_save's atomic output; every measurement is kept (a complete GEMM grid, noise
 * clamped by calib_validate). Without the module: one line naming the file and the missing
 * library; without a GPU: "calibrate: no CUDA device (<reason>)"; exit 1 and nothing is
 * written either way. --default writes the built-in table and needs neither. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/calibrate.h"
#include "exec/gpu.h"
#include "exec/gpumod.h"
#include "sim/cost.h"
#include "base/util.h"
#include "sim/model.h"

OsStatus cmd_calibrate(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *out = "calib.txt", *model = "mini-tri";
    ExecCalibOptions co;
    exec_calib_options_init(&co);
    int builtin = 0;
    FILE *human = stdout;
    const OptSpec specs[] = {
        OPTS_ROW_OUTPUT(&out, "FILE", "calibration file to write ('-' = stdout)"),
        {"default", 0, OPT_FLAG, &builtin, NULL, "write the built-in H100 table (no GPU needed): a starting point to edit", 0, 0},
        {"model", 'm', OPT_STR, &model, "NAME|FILE", "preset or preset file whose GEMM shapes are timed", 0, 0},
        {"repeats", 0, OPT_U32, &co.repeats, "R", "timed launches per shape (median)", 1, 100000},
        {"warmup", 'w', OPT_U32, &co.warmup, "W", "untimed launches before timing", 0, 100000},
        {"min-tokens", 0, OPT_U32, &co.min_tokens, "M", "smallest GEMM m and k (doubling from here)", 1, 1u << 20},
        {"max-tokens", 0, OPT_U32, &co.max_tokens, "M", "largest GEMM m and k", 1, 1u << 20},
        {"min-len", 0, OPT_U32, &co.min_len, "N", "shortest attention sequence (doubling from here)", 1, 1u << 18},
        {"max-len", 0, OPT_U32, &co.max_len, "N", "longest attention sequence", 1, 1u << 18},
        {"sustain", 0, OPT_F64, &co.sustain_s, "S", "seconds of the sustained GEMM burn (gemm_sustained; 0 = skip)", 0, 3600},
        {"verbose", 'v', OPT_FLAG, &co.verbose, NULL, "one stderr line per measurement", 0, 0},
    };
    const CmdHelp help = {
        "calibrate", "orchsim calibrate [-o calib.txt|-] [--model M] [--repeats R] [--warmup W]",
        "measure achieved GEMM and attention rates on this GPU for the cost model",
        "Times, each the median of R runs after W warm-ups (CUDA events), on GPU 0:\n"
        "  - cuBLAS bf16 GEMMs (fp32 accumulation) on one complete (m, n, k) grid: m and k over\n"
        "    --min-tokens..--max-tokens doubling, n over the model's weight sizes; every cell kept;\n"
        "  - the fused variable-length attention, forward and backward, causal and bidirectional,\n"
        "    one sequence of --min-len..--max-len positions at each head dim of the model;\n"
        "  - HBM bandwidth (a streaming copy kernel), one tiny kernel's time (kernel_launch_s),\n"
        "    and overlap_slowdown: a large GEMM alone against beside a 16-CTA copy kernel (a\n"
        "    labelled proxy for NCCL: one GPU has no peers);\n"
        "  - gemm_sustained: that GEMM back to back for --sustain seconds (median of the second\n"
        "    half): the rate through a training run, once the board is at its power and thermal\n"
        "    limits; the cost model scales the burst grid by it.\n"
        "Use the file with `orchsim replay --calibration FILE`. Collective bandwidths are not\n"
        "measured here (they need >= 2 ranks): intra_bw/inter_bw stay 0 = cluster defaults."};
    ModelSpec m;
    Calib c;
    int n_dev = 0;
    char why[256];
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, NULL, 0, 0, NULL));
    {
        const char *names[] = {"--output"}, *paths[] = {out};
        OS_CHECK(opts_stdout_claim(&human, names, paths, 1)); /* '-': the table owns stdout */
    }
    if (builtin) {
        calib_default_h100(&c);
        OS_CHECK(calib_save(&c, out));
        fprintf(human, "# wrote %s: the built-in table %s (%u gemm rows, %u attn rows; sources in sim/calib_h100.c)\n", out,
               c.name, c.n_gemm, c.n_attn);
        return OS_OK;
    }
    if (exec_gpu_count(&n_dev, why, sizeof why) != OS_OK) {
        /* the module's loader said it best: the file, what failed, the hint */
        if (exec_gpu_module_error()) OS_FAIL(OS_ERR_NODEV, "calibrate", NULL, NULL, "%s", why);
        os_clear_error(); /* say it in this command's words */
        OS_FAIL(OS_ERR_NODEV, "calibrate", NULL, "run it on a machine with an NVIDIA GPU", "no CUDA device (%s)", why);
    }
    OS_CHECK(model_resolve(&m, model));
    fprintf(stderr, "# calibrate: model %s, %u repeats after %u warm-ups, GPU 0 of %d, module %s (all figures "
            "measured; overlap_slowdown through a copy-kernel proxy for NCCL)\n", m.name, co.repeats, co.warmup, n_dev,
            exec_gpu_module_path());
    OS_CHECK(exec_calibrate(&c, &m, &co));
    snprintf(c.name, sizeof c.name, "%s", strcmp(out, "-") ? out : "orchsim-calibrate"); /* the file names itself */
    OS_CHECK(calib_save(&c, out));
    {
        double best = 0;
        for (uint32_t i = 0; i < c.n_gemm; i++) best = c.gemm[i].rate > best ? c.gemm[i].rate : best;
        fprintf(human, "# wrote %s: %u gemm rows (best %.1f TFLOP/s), %u attn rows, peak %.1f TFLOP/s, HBM %.2f TB/s, "
               "launch %.2f us, overlap slowdown %.3f, device %s\n", out, c.n_gemm, best / 1e12, c.n_attn,
               c.peak_flops / 1e12, c.hbm_bw / 1e12, c.kernel_launch_s * 1e6, c.overlap_slowdown, c.device);
    }
fail:
    return st;
}
