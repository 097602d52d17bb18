/* cmd_calibrate.c — `orchsim calibrate`: measure the achieved-rate table (exec/calibrate.h)
 * on GPU 0 and write it in the Calib text format (sim/calib.c) through calib_save's atomic
 * output. Without a GPU: one line "calibrate: no CUDA device (<reason>)" and exit 1; nothing
 * is written. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "cli/opts.h"
#include "exec/calibrate.h"
#include "exec/gpu.h"
#include "sim/cost.h"
#include "base/util.h"
#include "sim/model.h"

OsStatus cmd_calibrate(int argc, char **argv) {
    OsStatus st = OS_OK;
    const char *out = "calib.txt", *model = "mini-tri";
    ExecCalibOptions co;
    exec_calib_options_init(&co);
    int builtin = 0;
    const OptSpec specs[] = {
        {"output", 'o', OPT_STR, &out, "FILE", "calibration file to write", 0, 0},
        {"default", 0, OPT_FLAG, &builtin, NULL, "write the built-in H100 table (no GPU needed): a starting point to edit", 0, 0},
        {"model", 'm', OPT_STR, &model, "MODEL", "preset or preset file whose GEMM shapes are timed", 0, 0},
        {"repeats", 'r', OPT_U32, &co.repeats, "R", "timed launches per shape (median)", 1, 100000},
        {"warmup", 'w', OPT_U32, &co.warmup, "W", "untimed launches before timing", 0, 100000},
        {"max-tokens", 0, OPT_U32, &co.max_tokens, "M", "largest GEMM token count (doubling from 256)", 256, 1u << 20},
        {"max-len", 0, OPT_U32, &co.max_len, "N", "longest attention sequence (doubling from 64)", 64, 1u << 18},
        {"verbose", 'v', OPT_FLAG, &co.verbose, NULL, "one stderr line per measurement", 0, 0},
    };
    const CmdHelp help = {
        "calibrate", "orchsim calibrate [-o calib.txt] [--model M] [--repeats R] [--warmup W]",
        "measure achieved GEMM and attention rates on this GPU for the cost model",
        "Times cuBLAS bf16 GEMMs (fp32 accumulation) over the model's weight shapes for 256..32768\n"
        "tokens, the backend's attention forward for 64..16384 positions, and one layer's\n"
        "non-GEMM launches, each the median of R runs after W warm-ups (CUDA events).\n"
        "Use the file with `orchsim replay --calibration FILE`. Collective bandwidths are not\n"
        "measured here (they need >= 2 ranks): intra_bw/inter_bw stay 0 = cluster defaults."};
    ModelSpec m;
    Calib c;
    int n_dev = 0;
    char why[256];
    OS_CHECK(opts_parse(specs, OS_ARRAY_LEN(specs), &help, argc, argv, NULL, 0, 0, NULL));
    if (builtin) {
        calib_default_h100(&c);
        OS_CHECK(calib_save(&c, out));
        printf("# wrote %s: the built-in table %s (%u gemm rows, %u attn rows; sources in sim/calib_h100.c)\n", out,
               c.name, c.n_gemm, c.n_attn);
        return OS_OK;
    }
    if (exec_gpu_count(&n_dev, why, sizeof why) != OS_OK) {
        os_clear_error(); /* say it in this command's words */
        OS_FAIL(OS_ERR_NODEV, "calibrate", NULL, "run it on a machine with an NVIDIA GPU",
                "no CUDA device (%s)", why);
    }
    OS_CHECK(model_resolve(&m, model));
    fprintf(stderr, "# calibrate: model %s, %u repeats after %u warm-ups, GPU 0 of %d (all figures measured)\n",
            m.name, co.repeats, co.warmup, n_dev);
    OS_CHECK(exec_calibrate(&c, &m, &co));
    snprintf(c.name, sizeof c.name, "%s", out);
    OS_CHECK(calib_save(&c, out));
    printf("# wrote %s: %u gemm rows, %u attn rows, peak %.1f TFLOP/s, device %s\n", out, c.n_gemm,
           c.n_attn, c.peak_flops / 1e12, c.device);
fail:
    return st;
}
