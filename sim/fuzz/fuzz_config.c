/* fuzz_config.c — libFuzzer target: bytes as one of the simulator's text inputs, picked by the
 * first byte: even, a model preset file (sim/README-models.md, model_load_file, then the
 * parameter count and the cost of one short sequence); odd, a calibration table (sim/calib.c,
 * calib_load, then rates at a few shapes). Must not crash, hang or leak; errors are fine. */
#include "traces/fuzz/fuzz_common.h"

#include "sim/cost.h"
#include "sim/model.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char path[1024];
    int calib = size > 0 && (data[0] & 1);
    if (fuzz_scratch_file(size ? data + 1 : data, size ? size - 1 : 0, calib ? "t.calib" : "m.model", path, sizeof path))
        return 0;
    if (calib) {
        Calib c;
        if (calib_load(&c, path) == OS_OK) {
            (void)calib_gemm_rate(&c, 4096, 4096, 4096);
            (void)calib_gemm_rate(&c, 1, 1, 1);
            (void)calib_attn_rate(&c, ATTN_FWD, 1, 128, 2048);
            (void)calib_attn_rate(&c, ATTN_BWD, 0, 80, 1e6);
            (void)calib_norm_bw(&c, ATTN_BWD, 5000);
            char buf[256];
            calib_sustain_text(&c, buf, sizeof buf);
        }
    } else {
        ModelSpec m;
        if (model_load_file(&m, path) == OS_OK) {
            (void)model_params(&m);
            Calib c;
            calib_default_h100(&c);
            CostModel cm = {0};
            cm.model = &m, cm.calib = &c, cm.tp = 1, cm.cp = 1;
            uint32_t lens[2] = {16, 100};
            PhaseCost pc;
            if (m.n_enc == 0) (void)cost_phase(&pc, &cm, m.n_enc, lens, 2);
        }
    }
    os_clear_error();
    unlink(path);
    return 0;
}
