/* test_cost.c — FLOPs, the time model and the calibration table (sim/cost.h).
 * FLOP expectations are worked out here by hand for the `tiny` preset (see the comments);
 * time expectations use a flat calibration (one rate for every GEMM shape and attention
 * kernel) so they are exact. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "base/status.h"
#include "sim/cost.h"
#include "sim/model.h"

#define RG 1e12  /* flat GEMM rate, FLOP/s */
#define RA 5e11  /* flat attention rate (forward and backward) */
#define BW 1e12  /* HBM bytes/s */
#define T0 1e-6  /* seconds per memory-bound kernel */

/* A 2 x 2 x 2 grid from 1 to 2^20 at one rate, attention curves at one rate: every lookup
 * of a size >= 1 returns exactly RG / RA. */
static void flat_calib(Calib *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->name, "flat");
    c->peak_flops = 2e12;
    c->hbm_bw = BW;
    c->kernel_launch_s = T0;
    c->overlap_slowdown = 0;
    for (int i = 0; i < 8; i++)
        cr_assert_eq(calib_add_gemm(c, i & 1 ? 1048576 : 1, i & 2 ? 1048576 : 1, i & 4 ? 1048576 : 1, RG), OS_OK);
    for (int d = 0; d < 2; d++)
        for (int cz = 0; cz < 2; cz++)
            for (int l = 0; l < 2; l++) cr_assert_eq(calib_add_attn(c, (AttnDir)d, cz, 16, l ? 1e6 : 1, RA), OS_OK);
    os_clear_error();
    cr_assert_eq(calib_validate(c, "flat"), OS_OK, "%s", os_last_error());
}

static int close_rel(double a, double b, double tol) {
    return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)) + 1e-300;
}

/* tiny LLM: layers 2, h 64, ffn 128 SwiGLU, 4 heads, 2 KV heads (kv_dim 32), vocab 256.
 * layer params = 64*64 + 2*64*32 + 64*64 + 3*64*128 + 2*64 = 36992.
 * n = 10: linear = 2*10*36992*2 + 2*10*64*256 = 1479680 + 327680 = 1807360;
 *         attn   = 4*10^2*64*2 = 51200. */
Test(cost, tiny_forward_flops_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Flops f = stack_forward_flops(&m->llm, 10);
    cr_assert_eq(f.linear, 1807360.0);
    cr_assert_eq(f.attn, 51200.0);
    /* image encoder: h 32, ffn 64 GELU, MHA: layer = 4*32*32 + 2*32*64 + 2*32 = 8256 */
    f = stack_forward_flops(&m->enc[0].stack, 6);
    cr_assert_eq(f.linear, 2.0 * 6 * 8256 * 2);
    cr_assert_eq(f.attn, 4.0 * 36 * 32 * 2);
}

Test(cost, llm_phase_flops_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    uint32_t lens[] = {10};
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, lens, 1), OS_OK);
    cr_assert_eq(pc.tokens, 10u);
    cr_assert_eq(pc.model_flops, 3.0 * (1807360 + 51200));      /* fwd + bwd = 3 x fwd */
    cr_assert_eq(pc.model_flops_noattn, 3.0 * 1807360);
    cr_assert_eq(pc.causal_flops, 3.0 * (1807360 + 25600));     /* causal halves attention */
    cr_assert_eq(pc.hw_flops, 3.0 * (1807360 + 25600));         /* the kernel skips it too */
    cm.recompute = RECOMPUTE_FULL;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, lens, 1), OS_OK);
    /* + 1 forward of the layers (the LM head, 327680, is outside the checkpointed blocks) */
    cr_assert_eq(pc.hw_flops, 3.0 * (1807360 + 25600) + (1807360 - 327680) + 25600);
    cr_assert_eq(pc.model_flops, 3.0 * (1807360 + 51200));      /* convention ignores it */

    /* two sequences: attention per sequence (10^2 + 30^2), never (40)^2 */
    uint32_t two[] = {10, 30};
    cm.recompute = 0;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, two, 2), OS_OK);
    Flops f40 = stack_forward_flops(&m->llm, 40);
    cr_assert_eq(pc.model_flops, 3.0 * (f40.linear + 4.0 * (100 + 900) * 64 * 2));
}

Test(cost, encoder_phase_flops_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    /* image: 2 items of 10 and 6 positions; ratio 4 -> ceil(10/4) + ceil(6/4) = 5 outputs;
     * projector params 4*32*64 + 64*64 = 12288 -> 2*5*12288 = 122880 FLOPs forward.
     * stack: linear 2*16*8256*2 = 528384, attention 4*(100+36)*32*2 = 34816 (not causal). */
    uint32_t lens[] = {10, 6};
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, 0, lens, 2), OS_OK);
    cr_assert_eq(pc.tokens, 16u);
    cr_assert_eq(pc.model_flops, 3.0 * (528384 + 122880 + 34816));
    cr_assert_eq(pc.causal_flops, pc.model_flops);
    cr_assert_eq(pc.hw_flops, pc.model_flops);
    cr_assert_eq(cost_item_llm_tokens(m, 0, 10), 3u);
    cr_assert_eq(cost_item_llm_tokens(m, 0, 12), 3u);
    cr_assert_eq(cost_item_llm_tokens(m, 1, 11), 6u);
    cr_assert_eq(cost_item_llm_tokens(m, 1, 0), 0u);
}

Test(cost, pad_to_costs_time_not_model_flops) {
    ModelSpec m = *model_preset_find("tiny");
    m.enc[1].pad_to = 16; /* audio padded like stock Whisper's 30 s window */
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = &m, .calib = &c};
    uint32_t lens[] = {10};
    PhaseCost pad, trim;
    cr_assert_eq(cost_phase(&pad, &cm, 1, lens, 1), OS_OK);
    /* audio: layer 8256; ratio 2 -> 5 outputs; projector 2*32*64 + 64*64 = 8192 params */
    double proj = 2.0 * 5 * 8192;
    cr_assert_eq(pad.model_flops, 3.0 * (2.0 * 10 * 8256 * 2 + proj + 4.0 * 100 * 32 * 2));
    cr_assert_eq(pad.hw_flops, 3.0 * (2.0 * 16 * 8256 * 2 + proj + 4.0 * 256 * 32 * 2));
    cr_assert_eq(pad.tokens, 10u);
    cr_assert_eq(cost_item_enc_len(&m, 1, 10), 16u);
    cr_assert_eq(cost_item_enc_len(&m, 1, 20), 20u);
    cr_assert_eq(cost_item_llm_tokens(&m, 1, 10), 5u); /* real positions, not padded */
    m.enc[1].pad_to = 0;
    cr_assert_eq(cost_phase(&trim, &cm, 1, lens, 1), OS_OK);
    cr_assert_gt(pad.fwd_s, trim.fwd_s);
    cr_assert_eq(pad.model_flops, trim.model_flops);
}

/* Memory-bound bytes of the tiny LLM (h 64, ffn 128 SwiGLU, kv_dim 32, vocab 256, RoPE, RMSNorm,
 * no biases, untied, eager loss), bf16, per cost.c's op list:
 *   layer fwd = 2 * (2*2h + 2*3h + 3f + 2(h+kv)) = 2 * (256 + 384 + 384 + 192) = 2432, 6 kernels
 *   layer bwd = 2 * (2*5h + 2*3h + 5f + 2(h+kv) + QKV split 2(h+2kv)) = 2 * (640 + 384 + 640 + 192
 *               + 256) = 4224, 9 kernels
 *   stack fwd = 2 * (2h norm + 2h embedding) + 14 V = 512 + 3584 = 4096, 5 kernels
 *   stack bwd = 2 * (5h + 4h) + 22 V = 1152 + 5632 = 6784, 6 kernels */
Test(cost, memory_traffic_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    MemTraffic t = stack_mem_traffic(&m->llm, 2);
    cr_assert_eq(t.layer_fwd, 2432.0);
    cr_assert_eq(t.layer_bwd, 4224.0);
    cr_assert_eq(t.stack_fwd, 4096.0);
    cr_assert_eq(t.stack_bwd, 6784.0);
    cr_assert_eq(t.kernels_layer_fwd, 6u);
    cr_assert_eq(t.kernels_layer_bwd, 9u);
    /* the norms' part: 2 x 2h forward, 2 x 5h backward; the final norm 2h / 5h */
    cr_assert_eq(t.norm_fwd, 2.0 * 2 * 2 * 64);
    cr_assert_eq(t.norm_bwd, 2.0 * 2 * 5 * 64);
    cr_assert_eq(t.head_norm_fwd, 2.0 * 2 * 64);
    cr_assert_eq(t.head_norm_bwd, 2.0 * 5 * 64);
    cr_assert_eq(t.kernels_stack_fwd, 5u);
    cr_assert_eq(t.kernels_stack_bwd, 6u);
    /* MPT-style: GELU, LayerNorm with biases, learned positions, fused loss. h 64, f 256, V 100,
     * one head (kv 64): layer fwd 2*(256 + 384 + 2*256) = 2304; bwd 2*(640 + 384 + 768 + bias
     * (192+64+256+64) + QKV split 2*192) = 5504;
     * stack fwd 2*(2h + 2h + 3h) + 2V = 896 + 200; bwd 2*(5h + 4h + 4h) + 4V = 1664 + 400 */
    StackSpec s = {.layers = 1, .hidden = 64, .ffn = 256, .heads = 1, .kv_heads = 1, .vocab = 100, .causal = 1,
                   .bias = 1, .tied = 1, .norm = NORM_LAYER, .pos = POS_LEARNED, .loss = LOSS_FUSED};
    t = stack_mem_traffic(&s, 2);
    cr_assert_eq(t.layer_fwd, 2304.0);
    cr_assert_eq(t.layer_bwd, 5504.0);
    cr_assert_eq(t.stack_fwd, 1096.0);
    cr_assert_eq(t.stack_bwd, 2064.0);
    cr_assert_eq(t.kernels_layer_bwd, 12u);
}

/* With flat rates the time model is hand-checkable: tiny LLM, one sequence of 10.
 * GEMM FLOPs per layer forward: 2*10*(64*128 [QKV] + 64*64 [O] + 64*256 [MLP in] + 128*64
 *   [MLP out]) = 737280; backward (data + weight gradients) twice that; LM head 327680 forward.
 * Attention per layer forward (causal half): 4*100*64 / 2 = 12800; backward 2.5x. */
Test(cost, time_model_by_hand_with_flat_rates) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    uint32_t lens[] = {10};
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, lens, 1), OS_OK);
    double gf = (2 * 737280.0 + 327680.0) / RG, af = 2 * 12800.0 / RA;
    double mf = 2 * (10 * 2432.0 / BW + 6 * T0) + 10 * 4096.0 / BW + 5 * T0;
    double mb = 2 * (10 * 4224.0 / BW + 9 * T0) + 10 * 6784.0 / BW + 6 * T0;
    cr_assert(close_rel(pc.fwd_s, gf + af + mf, 1e-12), "fwd %.17g", pc.fwd_s);
    cr_assert(close_rel(pc.bwd_s, 2 * gf + 2.5 * af + mb, 1e-12), "bwd %.17g", pc.bwd_s);
    cr_assert(close_rel(pc.gemm_s, 3 * gf, 1e-12));
    cr_assert(close_rel(pc.attn_s, 3.5 * af, 1e-12));
    cr_assert(close_rel(pc.mem_s, mf + mb, 1e-12));
    /* full recomputation adds every layer's forward (not the head, embedding or loss) */
    PhaseCost rc;
    cm.recompute = RECOMPUTE_FULL;
    cr_assert_eq(cost_phase(&rc, &cm, m->n_enc, lens, 1), OS_OK);
    double layer_fwd = 2 * 737280.0 / RG + af + 2 * (10 * 2432.0 / BW + 6 * T0);
    cr_assert(close_rel(rc.bwd_s - pc.bwd_s, layer_fwd, 1e-12));
    cr_assert(close_rel(rc.fwd_s, pc.fwd_s, 1e-15));
    cr_assert(close_rel(rc.hw_flops - pc.hw_flops, 2 * (737280.0 + 2 * 10 * 128) + 2 * 12800.0, 1e-12));
    /* selective recomputation adds the attention kernel's forward only */
    cm.recompute = RECOMPUTE_SELECTIVE;
    cr_assert_eq(cost_phase(&rc, &cm, m->n_enc, lens, 1), OS_OK);
    cr_assert(close_rel(rc.bwd_s - pc.bwd_s, af, 1e-12));
}

Test(cost, causal_halves_time_model_attention) {
    ModelSpec m = *model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = &m, .calib = &c};
    uint32_t lens[] = {100, 37};
    PhaseCost causal, full;
    cr_assert_eq(cost_phase(&causal, &cm, m.n_enc, lens, 2), OS_OK);
    m.llm.causal = 0;
    cr_assert_eq(cost_phase(&full, &cm, m.n_enc, lens, 2), OS_OK);
    double attn_full = 4.0 * (100.0 * 100 + 37.0 * 37) * 64 * 2 / RA; /* both layers */
    cr_assert(close_rel(full.fwd_s - causal.fwd_s, attn_full / 2, 1e-9));
    cr_assert(close_rel(full.bwd_s - causal.bwd_s, 2.5 * attn_full / 2, 1e-9));
    cr_assert_eq(full.model_flops, causal.model_flops); /* the convention has no discount */
    cr_assert_lt(causal.causal_flops, causal.model_flops);
}

/* GEMM shapes: the weight gradient of a layer reduces over the tokens, so a calibration that
 * is slow for small reductions (k) but fast for long ones must price the three GEMMs of a weight
 * apart. A 2-point grid on k only: rate 1e11 at k <= 64, 1e12 at k >= 4096. */
Test(cost, gemms_are_priced_by_shape) {
    Calib c;
    flat_calib(&c);
    c.n_gemm = 0;
    for (int i = 0; i < 8; i++)
        cr_assert_eq(calib_add_gemm(&c, i & 1 ? 1048576 : 1, i & 2 ? 1048576 : 1, i & 4 ? 4096 : 64,
                                    i & 4 ? 1e12 : 1e11), OS_OK);
    cr_assert_eq(calib_validate(&c, "k-grid"), OS_OK);
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 64), 1e11, 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 64, 64, 4096), 1e12, 1e-12));
    /* halfway in log k (512) is the geometric mean */
    cr_assert(close_rel(calib_gemm_rate(&c, 100, 100, 512), sqrt(1e11 * 1e12), 1e-12));
    /* below the grid: the smallest size's time, so the rate falls with the size */
    cr_assert(close_rel(calib_gemm_rate(&c, 100, 100, 32), 0.5e11, 1e-12));
}

Test(cost, unit_seconds_is_one_unit_alone_at_the_reference_batch) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    c.kernel_launch_s = 0; /* the objective leaves per-kernel constants out */
    CostModel cm = {.model = m, .calib = &c};
    for (int rc = 0; rc <= 2; rc++) {
        cm.recompute = rc;
        for (uint32_t p = 0; p < cost_n_phases(m); p++) {
            double a, cc;
            cost_unit_coeffs(&cm, p, &a, &cc);
            cr_assert_gt(a, 0);
            cr_assert_gt(cc, 0);
            /* flat rates: the per-unit objective equals one unit's phase time; a multiple of
             * the ratio makes the projector term exact */
            uint32_t len = 64;
            PhaseCost pc;
            cr_assert_eq(cost_phase(&pc, &cm, p, &len, 1), OS_OK);
            double t = pc.fwd_s + pc.bwd_s;
            cr_assert(close_rel(cost_unit_seconds(&cm, p, len), t, 1e-9), "phase %u rc %d: %g vs %g", p, rc,
                      cost_unit_seconds(&cm, p, len), t);
            cr_assert(close_rel(cost_unit_seconds(&cm, p, len), a * len + cc * len * len, 1e-9));
        }
    }
    cr_assert_eq(cost_unit_seconds(&cm, 0, 0), 0.0);
}

/* AdamW: 92 bytes per parameter (cost.c's op list) over HBM, plus 10 kernels per parameter
 * tensor (the model's own tensors, as FSDP's use_orig_params hands them to the optimizer). */
Test(cost, optimizer_step_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    cr_assert_eq(cost_optimizer_bytes_per_param(), 92.0);
    /* tensors: LLM (RMSNorm, no biases, untied, RoPE) 2 layers x (4 weights + 2 norm scales)
     * + final norm + embedding + LM head = 15; each encoder (LayerNorm without biases) 2 x 6
     * + final norm + the projector's 2 weights = 15 */
    double want = 1e6 * 92 / BW + (15 + 15 + 15) * 10 * T0;
    cr_assert(close_rel(cost_optimizer_s(&cm, 1e6), want, 1e-12));
    cr_assert_eq(cost_optimizer_s(&cm, 0), 0.0);
}

Test(cost, padded_layout_costs_at_least_varlen) {
    Calib c;
    calib_default_h100(&c);
    uint32_t lens[] = {100, 2000, 513, 7, 4096, 64, 64, 1};
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        for (uint32_t p = 0; p < cost_n_phases(m); p++) {
            CostModel cm = {.model = m, .calib = &c, .layout = ATTN_VARLEN};
            PhaseCost v, pd;
            cr_assert_eq(cost_phase(&v, &cm, p, lens, 8), OS_OK);
            cm.layout = ATTN_PADDED;
            cr_assert_eq(cost_phase(&pd, &cm, p, lens, 8), OS_OK);
            cr_assert_geq(pd.fwd_s, v.fwd_s, "%s phase %u", m->name, p);
            cr_assert_geq(pd.bwd_s, v.bwd_s);
            cr_assert_gt(pd.hw_flops, v.hw_flops);
            cr_assert_eq(pd.model_flops, v.model_flops);
            cr_assert_eq(pd.tokens, v.tokens);
        }
    }
}

Test(cost, phase_time_monotone_in_tokens) {
    Calib c;
    calib_default_h100(&c);
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        CostModel cm = {.model = m, .calib = &c};
        for (uint32_t p = 0; p < cost_n_phases(m); p++) {
            double prev = 0, prev_unit = 0;
            /* one unit growing geometrically, 1 .. ~200k positions */
            for (double x = 1; x < 2e5; x *= 1.07) {
                uint32_t len = (uint32_t)x;
                PhaseCost pc;
                cr_assert_eq(cost_phase(&pc, &cm, p, &len, 1), OS_OK);
                double t = pc.fwd_s + pc.bwd_s, u = cost_unit_seconds(&cm, p, len);
                cr_assert_geq(t, prev, "%s phase %u: t(%u) = %g < %g", m->name, p, len, t, prev);
                cr_assert_geq(u, prev_unit, "%s phase %u unit %u", m->name, p, len);
                prev = t, prev_unit = u;
            }
            /* adding units never makes the rank faster */
            uint32_t lens[16];
            prev = 0;
            for (uint32_t n = 1; n <= 16; n++) {
                lens[n - 1] = 37 * n + 5;
                PhaseCost pc;
                cr_assert_eq(cost_phase(&pc, &cm, p, lens, n), OS_OK);
                cr_assert_geq(pc.fwd_s + pc.bwd_s, prev);
                prev = pc.fwd_s + pc.bwd_s;
            }
        }
    }
}

/* STYLE habit 6: the fast path against its kernel-by-kernel twin. */
Test(cost, fast_path_matches_reference_twin) {
    Calib c;
    calib_default_h100(&c);
    uint64_t x = 88172645463325252ull; /* xorshift: fixed, reproducible lengths */
    uint32_t lens[40];
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        ModelSpec m = *model_preset_at(i);
        if (m.n_enc > 1) m.enc[1].pad_to = 300; /* exercise padding in one encoder */
        for (int rc = 0; rc <= 2; rc++)
            for (int lay = 0; lay <= 1; lay++)
                for (uint32_t p = 0; p < cost_n_phases(&m); p++) {
                    uint32_t n = 1 + (uint32_t)(x % 40);
                    for (uint32_t k = 0; k < n; k++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        lens[k] = (uint32_t)(x % 3000);
                    }
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    uint32_t tps[3] = {1, 2, 4}, cps[2] = {1, 2};
                    CostModel cm = {.model = &m, .calib = &c, .recompute = rc, .layout = (AttnLayout)lay,
                                    .tp = tps[x % 3], .cp = cps[(x >> 8) % 2], .sp = (int)((x >> 16) % 2)};
                    const StackSpec *sk = p < m.n_enc ? &m.enc[p].stack : &m.llm;
                    CostSlice sl = {.layers = 1 + (uint32_t)((x >> 24) % sk->layers), .embed = (uint8_t)((x >> 32) % 2),
                                    .head = (uint8_t)((x >> 33) % 2)};
                    const CostSlice *slp = (x >> 34) % 2 ? &sl : NULL;
                    PhaseCost a, b;
                    cr_assert_eq(cost_phase_slice(&a, &cm, p, lens, n, slp), OS_OK);
                    cr_assert_eq(cost_phase_slice_ref(&b, &cm, p, lens, n, slp), OS_OK);
                    cr_assert(close_rel(a.fwd_s, b.fwd_s, 1e-9), "%s p%u fwd %g vs %g", m.name, p, a.fwd_s, b.fwd_s);
                    cr_assert(close_rel(a.bwd_s, b.bwd_s, 1e-9), "%s p%u bwd", m.name, p);
                    cr_assert(close_rel(a.model_flops, b.model_flops, 1e-12));
                    cr_assert(close_rel(a.model_flops_noattn, b.model_flops_noattn, 1e-12));
                    cr_assert(close_rel(a.causal_flops, b.causal_flops, 1e-12));
                    cr_assert(close_rel(a.hw_flops, b.hw_flops, 1e-12), "%s p%u hw", m.name, p);
                    cr_assert(close_rel(a.gemm_s, b.gemm_s, 1e-9));
                    cr_assert(close_rel(a.attn_s, b.attn_s, 1e-9));
                    cr_assert(close_rel(a.mem_s, b.mem_s, 1e-9));
                    cr_assert_eq(a.tokens, b.tokens);
                }
    }
}

/* The software stack's kernels (Calib's optional keys), each against a hand computation. */

/* A one-layer MPT-style LLM: h 64, GELU f 256, one head (kv 64), vocab 100, biases, LayerNorm,
 * learned positions (max_seq 16), tied, fused loss; its memory_traffic_by_hand bytes. */
static ModelSpec mpt_style(void) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    strcpy(m.name, "mpt-style");
    m.llm = (StackSpec){.layers = 1, .hidden = 64, .ffn = 256, .heads = 1, .kv_heads = 1, .vocab = 100, .causal = 1,
                        .bias = 1, .tied = 1, .norm = NORM_LAYER, .pos = POS_LEARNED, .loss = LOSS_FUSED};
    m.max_seq = 16, m.param_bytes = 2, m.act_bytes = 2;
    return m;
}

Test(cost, layernorm_rates_by_hand) {
    Calib c;
    flat_calib(&c);
    /* no rows: a streaming kernel (forward hbm_bw, backward 3/5 of it on the op's 3 of 5 elements) */
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 64), BW);
    cr_assert(close_rel(calib_norm_bw(&c, ATTN_BWD, 64), BW * 0.6, 1e-15));
    cr_assert_eq(calib_add_norm(&c, ATTN_FWD, 1024, 1e12), OS_OK);
    cr_assert_eq(calib_add_norm(&c, ATTN_FWD, 4096, 4e12), OS_OK);
    cr_assert_eq(calib_add_norm(&c, ATTN_BWD, 16, 0.25e12), OS_OK);
    os_clear_error();
    cr_assert_eq(calib_validate(&c, "norm"), OS_OK, "%s", os_last_error());
    cr_assert(close_rel(calib_norm_bw(&c, ATTN_FWD, 2048), 2e12, 1e-12)); /* power law: geometric mean */
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 64), 1e12);                 /* below the rows: the first */
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 65536), 4e12);              /* above: the last */
    cr_assert_eq(calib_norm_bw(&c, ATTN_BWD, 64), 0.25e12);
    /* one sequence of 10 through the MPT-style layer; norms at 1e12 forward, 0.25e12 backward */
    ModelSpec m = mpt_style();
    CostModel cm = {.model = &m, .calib = &c};
    uint32_t len = 10;
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, 0, &len, 1), OS_OK);
    double nf = 1e12, nb = 0.25e12;
    /* layer: 2304 B forward of which the norms' 2 x 2h x 2 = 512; 5504 B backward of which
     * 2 x 5h x 2 = 1280, timed on their ideal 3/5; 5 and 12 kernels */
    double lf = 10 * ((2304 - 512) / BW + 512 / nf) + 5 * T0;
    double lb = 10 * ((5504 - 1280) / BW + 1280 * 0.6 / nb) + 12 * T0;
    /* stack: embedding + positions 640 B / 1024 B; final norm 256 B / 640 B; fused loss 2V / 4V;
     * kernels 4 / 5 */
    double sf = 10 * (640 / BW + 256 / nf + 200 / BW) + 4 * T0;
    double sb = 10 * (1024 / BW + 640 * 0.6 / nb + 400 / BW) + 5 * T0;
    cr_assert(close_rel(pc.mem_s, lf + lb + sf + sb, 1e-12), "mem %.17g vs %.17g", pc.mem_s, lf + lb + sf + sb);
    /* an RMSNorm stack ignores the LayerNorm rows */
    m.llm.norm = NORM_RMS, m.llm.bias = 0;
    PhaseCost rms;
    cr_assert_eq(cost_phase(&rms, &cm, 0, &len, 1), OS_OK);
    MemTraffic t = stack_mem_traffic(&m.llm, 2);
    double want = 10 * (t.layer_fwd + t.layer_bwd + t.stack_fwd + t.stack_bwd) / BW +
                  (t.kernels_layer_fwd + t.kernels_layer_bwd + t.kernels_stack_fwd + t.kernels_stack_bwd) * T0;
    cr_assert(close_rel(rms.mem_s, want, 1e-12));
}

/* Training metrics: two eager cross-entropy forwards (14 B per logit) after the backward, and
 * the eager loss's own forward at the same measured rate. tiny LLM: V 256, eager loss. */
Test(cost, training_metric_ce_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    uint32_t len = 10;
    PhaseCost base, with, enc0, enc;
    cr_assert_eq(cost_phase(&base, &cm, m->n_enc, &len, 1), OS_OK);
    cr_assert_eq(cost_phase(&enc0, &cm, 0, &len, 1), OS_OK);
    c.metric_ce = 2, c.ce_eager_bw = 0.5e12;
    cr_assert_eq(cost_phase(&with, &cm, m->n_enc, &len, 1), OS_OK);
    double ce = 0.5e12;
    cr_assert(close_rel(with.fwd_s - base.fwd_s, 10 * 14.0 * 256 * (1 / ce - 1 / BW), 1e-9));
    cr_assert(close_rel(with.bwd_s - base.bwd_s, 2 * (10 * 14.0 * 256 / ce + 3 * T0), 1e-9));
    cr_assert_eq(with.hw_flops, base.hw_flops);
    /* encoders have no vocabulary: nothing changes there */
    cr_assert_eq(cost_phase(&enc, &cm, 0, &len, 1), OS_OK);
    cr_assert_eq(enc.bwd_s, enc0.bwd_s);
    cr_assert_eq(enc.fwd_s, enc0.fwd_s);
    /* a pipeline stage without the head runs no loss and no metrics */
    CostSlice first = {.layers = 1, .embed = 1, .head = 0};
    PhaseCost a, b;
    cr_assert_eq(cost_phase_slice(&a, &cm, m->n_enc, &len, 1, &first), OS_OK);
    c.metric_ce = 0, c.ce_eager_bw = 0;
    cr_assert_eq(cost_phase_slice(&b, &cm, m->n_enc, &len, 1, &first), OS_OK);
    cr_assert_eq(a.bwd_s, b.bwd_s);
    cr_assert_eq(a.fwd_s, b.fwd_s);
}

/* Weight gradients landing in the flat gradient: grad_land_bytes per parameter of the slice,
 * once per micro-batch, one kernel per layer and one for the stack's own tensors. */
Test(cost, grad_landing_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    uint32_t lens[] = {10, 3};
    PhaseCost base, with;
    cr_assert_eq(cost_phase(&base, &cm, m->n_enc, lens, 2), OS_OK);
    c.grad_land_bytes = 4;
    cr_assert_eq(cost_phase(&with, &cm, m->n_enc, lens, 2), OS_OK);
    /* 2 layers x 36992 + embedding 256 x 64 + final RMSNorm 64 + untied head 256 x 64; tokens
     * do not matter */
    double P = 2 * 36992.0 + 256 * 64 + 64 + 256 * 64;
    cr_assert(close_rel(with.bwd_s - base.bwd_s, P * 4 / BW + 3 * T0, 1e-9));
    cr_assert_eq(with.fwd_s, base.fwd_s);
    /* TP shards the parameters; a stage of one layer with the embedding only */
    cm.tp = 2;
    CostSlice first = {.layers = 1, .embed = 1, .head = 0};
    cr_assert_eq(cost_phase_slice(&with, &cm, m->n_enc, lens, 2, &first), OS_OK);
    c.grad_land_bytes = 0;
    cr_assert_eq(cost_phase_slice(&base, &cm, m->n_enc, lens, 2, &first), OS_OK);
    cr_assert(close_rel(with.bwd_s - base.bwd_s, (36992.0 + 256 * 64) / 2 * 4 / BW + 2 * T0, 1e-9));
    /* the encoder's last stage lands its projector too: 12288 parameters (tiny image) */
    cm.tp = 1;
    CostSlice last = {.layers = 2, .embed = 0, .head = 1};
    cr_assert_eq(cost_phase_slice(&base, &cm, 0, lens, 2, &last), OS_OK);
    c.grad_land_bytes = 4;
    cr_assert_eq(cost_phase_slice(&with, &cm, 0, lens, 2, &last), OS_OK);
    cr_assert(close_rel(with.bwd_s - base.bwd_s, (2 * 8256.0 + 32 + 12288) * 4 / BW + 3 * T0, 1e-9));
}

/* PyTorch's non-reentrant checkpoint stops recomputing once every saved tensor is rebuilt: the
 * block's MLP-out GEMM (2*10*128*64 FLOPs in tiny) and last residual add (3h x 2 B) are not rerun. */
Test(cost, early_stopped_recomputation_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c, .recompute = RECOMPUTE_FULL};
    uint32_t len = 10;
    PhaseCost full, early;
    cr_assert_eq(cost_phase(&full, &cm, m->n_enc, &len, 1), OS_OK);
    c.recompute_early_stop = 1;
    cr_assert_eq(cost_phase(&early, &cm, m->n_enc, &len, 1), OS_OK);
    double skip = 2 * (2.0 * 10 * 128 * 64 / RG + 10 * 3.0 * 64 * 2 / BW + T0); /* both layers */
    cr_assert(close_rel(full.bwd_s - early.bwd_s, skip, 1e-9), "%g vs %g", full.bwd_s - early.bwd_s, skip);
    cr_assert_eq(early.fwd_s, full.fwd_s);
    cr_assert(close_rel(full.hw_flops - early.hw_flops, 2 * 2.0 * 10 * 128 * 64, 1e-12));
    cr_assert_eq(early.model_flops, full.model_flops);
    /* no recomputation: the flag changes nothing */
    cm.recompute = RECOMPUTE_NONE;
    cr_assert_eq(cost_phase(&early, &cm, m->n_enc, &len, 1), OS_OK);
    c.recompute_early_stop = 0;
    cr_assert_eq(cost_phase(&full, &cm, m->n_enc, &len, 1), OS_OK);
    cr_assert_eq(early.bwd_s, full.bwd_s);
}

Test(cost, empty_rank_and_bad_arguments) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    calib_default_h100(&c);
    CostModel cm = {.model = m, .calib = &c};
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, 0, NULL, 0), OS_OK);
    cr_assert_eq(pc.fwd_s + pc.bwd_s + pc.hw_flops, 0.0);
    uint32_t zero = 0;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, &zero, 1), OS_OK);
    cr_assert_eq(pc.fwd_s, 0.0);
    os_clear_error();
    cr_assert_eq(cost_phase(&pc, &cm, cost_n_phases(m), &zero, 1), OS_ERR_ARG);
    cr_assert_not_null(strstr(os_last_error(), "phase"));
}

/* ---- calibration --------------------------------------------------------------------- */

Test(calib, default_h100_is_sane) {
    Calib c;
    calib_default_h100(&c);
    os_clear_error();
    cr_assert_eq(calib_validate(&c, "default"), OS_OK, "%s", os_last_error());
    cr_assert_eq(c.peak_flops, 989.4e12);
    cr_assert_eq(c.n_gemm, 175u); /* the OpenXLA grid: 7 m x 5 n x 5 k */
    /* the XLA table's 4096^3 bf16 rate, unchanged by the monotone clamp, at the sustained scale */
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 4096) / c.gemm_sustain_scale, 783328793548203.0, 1e-12));
    double big = calib_gemm_rate(&c, 16384, 8192, 8192) / c.peak_flops;
    cr_assert(big > 0.70 && big < 0.80, "large GEMM at %.3f of peak", big);
    cr_assert_lt(calib_gemm_rate(&c, 64, 64, 64), 0.01 * c.peak_flops); /* tiny GEMMs are launch-bound */
    cr_assert_lt(calib_attn_rate(&c, ATTN_FWD, 1, 128, 512), calib_attn_rate(&c, ATTN_FWD, 1, 128, 8192));
    /* FlashAttention v1's H100 forward+backward rates, both passes (calib_h100.c) */
    cr_assert_eq(calib_attn_rate(&c, ATTN_BWD, 1, 128, 8192), calib_attn_rate(&c, ATTN_FWD, 1, 128, 8192));
    cr_assert_lt(calib_attn_rate(&c, ATTN_FWD, 1, 128, 2048), calib_attn_rate(&c, ATTN_FWD, 0, 128, 2048));
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 128, 16384), 139e12, 1e-12));
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_BWD, 1, 64, 512), 104e12, 1e-12));
    cr_assert_gt(c.hbm_bw, 2e12);
    cr_assert_lt(c.hbm_bw, 3.35e12); /* below the HBM3 peak */
    cr_assert(c.overlap_slowdown > 0 && c.overlap_slowdown < 0.5);
    /* the 2023 llm-foundry stack's own kernels (calib_h100.c) */
    cr_assert_eq(c.n_norm, 10u);
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 4096), 2.03e12);
    cr_assert_eq(calib_norm_bw(&c, ATTN_BWD, 4096), 1.13e12);
    cr_assert_lt(calib_norm_bw(&c, ATTN_BWD, 2560), calib_norm_bw(&c, ATTN_FWD, 2560));
    cr_assert(c.ce_eager_bw > 1.6e12 && c.ce_eager_bw < c.hbm_bw);
    cr_assert_eq(c.metric_ce, 2.0);
    cr_assert_eq(c.grad_land_bytes, 4.0);
    cr_assert_eq(c.recompute_early_stop, 1u);
    /* sustained GEMMs: gpu-fryer's 730 TFLOP/s burn at 8192^3 over the grid's clamped 8192^3
     * cell (8192 x 4096 x 4096 of the folded XLA table: 807671014191940) */
    cr_assert_eq(c.gemm_sustained, 730e12);
    cr_assert(close_rel(c.gemm_sustain_scale, 730e12 / 807671014191940.0, 1e-12), "%.6f", c.gemm_sustain_scale);
    cr_assert(close_rel(calib_gemm_rate(&c, 8192, 8192, 8192), 730e12, 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 4096), 783328793548203.0 * c.gemm_sustain_scale, 1e-12));
    /* attention is a burst measurement the burn says nothing about: unscaled */
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 128, 16384), 139e12, 1e-12));
}

/* gemm_sustained by hand on the flat table: every GEMM at RG in the rows, a burn at 0.8 RG
 * scales every GEMM rate by exactly 0.8, whatever the shape; a burn above the rows (a table
 * measured throttled) leaves them; validating twice does not scale twice; the memo's per-axis
 * lines give the same rates. */
Test(calib, sustained_gemm_rate_scales_every_gemm) {
    Calib c;
    flat_calib(&c);
    c.gemm_sustained = 0.8 * RG;
    c.gemm_sustained_mnk[0] = c.gemm_sustained_mnk[1] = c.gemm_sustained_mnk[2] = 8192;
    os_clear_error();
    cr_assert_eq(calib_validate(&c, "flat"), OS_OK, "%s", os_last_error());
    cr_assert(close_rel(c.gemm_sustain_scale, 0.8, 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 4096), 0.8 * RG, 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 10, 3000, 77), 0.8 * RG, 1e-12));
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_BWD, 1, 16, 1000), RA, 1e-12)); /* attention: not scaled */
    CalibLine l;
    calib_gemm_line(&l, &c, 0, 300, 5000);
    cr_assert(close_rel(calib_line_rate(&l, &c, 123), 0.8 * RG, 1e-12));
    cr_assert_eq(calib_validate(&c, "flat"), OS_OK); /* again: rebuilt from the rows, not 0.64 */
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 4096), 0.8 * RG, 1e-12));
    c.gemm_sustained = 1.5 * RG; /* faster than the rows: the rows stand */
    cr_assert_eq(calib_validate(&c, "flat"), OS_OK);
    cr_assert_eq(c.gemm_sustain_scale, 1.0);
    cr_assert(close_rel(calib_gemm_rate(&c, 4096, 4096, 4096), RG, 1e-12));
    c.gemm_sustained = 0; /* not measured */
    cr_assert_eq(calib_validate(&c, "flat"), OS_OK);
    cr_assert_eq(c.gemm_sustain_scale, 1.0);
    c.gemm_sustained = 0.01 * RG; /* a unit slip, not a throttle */
    os_clear_error();
    cr_assert_neq(calib_validate(&c, "flat"), OS_OK);
    cr_assert_not_null(strstr(os_last_error(), "gemm_sustained"), "%s", os_last_error());
    /* one step of the cost model: a GEMM-only unit takes 1 / 0.8 the time */
    flat_calib(&c);
    const ModelSpec *m = model_preset_find("tiny");
    CostModel cm = {.model = m, .calib = &c};
    uint32_t n = 10;
    PhaseCost a, b;
    cr_assert_eq(cost_phase(&a, &cm, m->n_enc, &n, 1), OS_OK);
    c.gemm_sustained = 0.8 * RG;
    c.gemm_sustained_mnk[0] = c.gemm_sustained_mnk[1] = c.gemm_sustained_mnk[2] = 64;
    cr_assert_eq(calib_validate(&c, "flat"), OS_OK);
    cr_assert_eq(cost_phase(&b, &cm, m->n_enc, &n, 1), OS_OK);
    cr_assert_gt(a.gemm_s, 0);
    cr_assert(close_rel(b.gemm_s, a.gemm_s / 0.8, 1e-12), "%g vs %g", b.gemm_s, a.gemm_s);
    cr_assert(close_rel(b.attn_s, a.attn_s, 1e-12));
    cr_assert(close_rel(b.mem_s, a.mem_s, 1e-12));
}

Test(calib, attention_interpolation) {
    Calib c;
    flat_calib(&c);
    c.n_attn = 0;
    for (int d = 0; d < 2; d++)
        for (int cz = 0; cz < 2; cz++) {
            cr_assert_eq(calib_add_attn(&c, (AttnDir)d, cz, 64, 512, 1e14), OS_OK);
            cr_assert_eq(calib_add_attn(&c, (AttnDir)d, cz, 64, 2048, 4e14), OS_OK);
            cr_assert_eq(calib_add_attn(&c, (AttnDir)d, cz, 256, 512, 2e14), OS_OK);
            cr_assert_eq(calib_add_attn(&c, (AttnDir)d, cz, 256, 2048, 8e14), OS_OK);
        }
    c.peak_flops = 1e15;
    cr_assert_eq(calib_validate(&c, "attn"), OS_OK);
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 64, 512), 1e14, 1e-12)); /* at a point */
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 64, 1024), 2e14, 1e-12)); /* geometric mean */
    cr_assert_eq(calib_attn_rate(&c, ATTN_BWD, 1, 64, 1e6), 4e14);             /* clamped above */
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 64, 128), 0.25e14, 1e-12)); /* below: ~ len */
    cr_assert(close_rel(calib_attn_rate(&c, ATTN_FWD, 0, 128, 512), sqrt(1e14 * 2e14), 1e-12)); /* head dims */
    cr_assert_eq(calib_attn_rate(&c, ATTN_FWD, 0, 32, 512), 1e14);   /* below the smallest head dim */
    cr_assert_eq(calib_attn_rate(&c, ATTN_FWD, 0, 512, 2048), 8e14); /* above the largest */
}

/* Noise that makes a bigger GEMM faster is clamped to the smaller one's time, not refused
 * (calibrate pools many measurements; issue: one noisy row must not lose a run). */
Test(calib, monotone_clamp_never_refuses) {
    Calib c;
    flat_calib(&c);
    c.peak_flops = 1e15;
    c.n_gemm = 0;
    double ms[3] = {256, 512, 1024};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            for (int l = 0; l < 2; l++)
                /* m = 512 is measured 3x faster than m = 256: more than its 2x work allows */
                cr_assert_eq(calib_add_gemm(&c, ms[i], j ? 4096 : 256, l ? 4096 : 256, i == 1 ? 3e14 : 1e14), OS_OK);
    cr_assert_eq(calib_validate(&c, "noisy"), OS_OK);
    double t256 = 2.0 * 256 * 256 * 256 / calib_gemm_rate(&c, 256, 256, 256);
    double t512 = 2.0 * 512 * 256 * 256 / calib_gemm_rate(&c, 512, 256, 256);
    double t1024 = 2.0 * 1024 * 256 * 256 / calib_gemm_rate(&c, 1024, 256, 256);
    cr_assert_geq(t512, t256 * (1 - 1e-12));
    cr_assert_geq(t1024, t512 * (1 - 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 512, 256, 256), 2e14, 1e-12)); /* clamped to 2x the 256 rate */
    /* and GEMM time stays monotone everywhere in between */
    double prev = 0;
    for (double m = 200; m < 2000; m *= 1.05) {
        double t = 2.0 * m * 300 * 300 / calib_gemm_rate(&c, m, 300, 300);
        cr_assert_geq(t, prev * (1 - 1e-12), "m %g", m);
        prev = t;
    }
}

Test(calib, save_load_round_trip_keeps_meta) {
    Calib c, back;
    calib_default_h100(&c);
    cr_assert_eq(calib_set_meta(&c, "clock_mhz", "1980"), OS_OK);
    cr_assert_eq(calib_set_meta(&c, "cuda_version", "12.4"), OS_OK);
    cr_assert_eq(calib_set_meta(&c, "driver", "550.54.15"), OS_OK);
    cr_assert_eq(calib_set_meta(&c, "clock_mhz", "1755"), OS_OK); /* replaces */
    cr_assert_neq(calib_set_meta(&c, "peak_flops", "1"), OS_OK);   /* not provenance */
    c.intra_bw = 3.6e11;
    const char *p = th_tmp("rt.calib");
    os_clear_error();
    cr_assert_eq(calib_save(&c, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(calib_load(&back, p), OS_OK, "%s", os_last_error());
    cr_assert_str_eq(back.name, c.name);
    cr_assert_str_eq(back.device, c.device);
    cr_assert_str_eq(back.stack, c.stack);
    cr_assert_str_eq(back.attn_kernel, c.attn_kernel);
    cr_assert_eq(back.peak_flops, c.peak_flops);
    cr_assert_eq(back.hbm_bw, c.hbm_bw);
    cr_assert_eq(back.kernel_launch_s, c.kernel_launch_s);
    cr_assert_eq(back.overlap_slowdown, c.overlap_slowdown);
    cr_assert_eq(back.intra_bw, 3.6e11);
    cr_assert_eq(back.n_gemm, c.n_gemm);
    cr_assert_eq(back.n_attn, c.n_attn);
    for (uint32_t i = 0; i < c.n_gemm; i++) {
        cr_assert_eq(back.gemm[i].m, c.gemm[i].m);
        cr_assert_eq(back.gemm[i].rate, c.gemm[i].rate);
    }
    for (uint32_t i = 0; i < c.n_attn; i++) cr_assert_eq(back.attn[i].rate, c.attn[i].rate);
    /* the stack's optional keys */
    cr_assert_eq(back.n_norm, c.n_norm);
    cr_assert_gt(back.n_norm, 0u);
    for (uint32_t hid = 512; hid < 40000; hid = hid * 3 / 2)
        for (int d = 0; d < 2; d++) cr_assert_eq(calib_norm_bw(&back, (AttnDir)d, hid), calib_norm_bw(&c, (AttnDir)d, hid));
    cr_assert_eq(back.ce_eager_bw, c.ce_eager_bw);
    cr_assert_eq(back.metric_ce, c.metric_ce);
    cr_assert_eq(back.grad_land_bytes, c.grad_land_bytes);
    cr_assert_eq(back.recompute_early_stop, c.recompute_early_stop);
    for (double m = 100; m < 40000; m *= 3.1)
        cr_assert_eq(calib_gemm_rate(&back, m, 1000, 3000), calib_gemm_rate(&c, m, 1000, 3000));
    cr_assert_eq(back.n_meta, 3u);
    cr_assert_str_eq(calib_get_meta(&back, "clock_mhz"), "1755");
    cr_assert_str_eq(calib_get_meta(&back, "driver"), "550.54.15");
    cr_assert_null(calib_get_meta(&back, "nccl_version"));
    remove(p);
}

static void bad_calib(const char *body, const char *want1, const char *want2) {
    const char *p = th_tmp("bad.calib");
    FILE *fp = fopen(p, "w");
    fputs(body, fp);
    fclose(fp);
    Calib c;
    os_clear_error();
    cr_assert_neq(calib_load(&c, p), OS_OK, "accepted: %s", body);
    const char *err = os_last_error();
    cr_assert_not_null(strstr(err, p), "no path: %s", err);
    cr_assert_not_null(strstr(err, want1), "lacks '%s': %s", want1, err);
    if (want2) cr_assert_not_null(strstr(err, want2), "lacks '%s': %s", want2, err);
    remove(p);
}

#define CAL_HEAD "# orchsim calibration v2\npeak_flops = 1e15\nhbm_bw = 3e12\nkernel_launch_s = 2e-6\noverlap_slowdown = 0.1\n"
#define CAL_GEMM "gemm 1 1 1 1e11\n"
#define CAL_ATTN "attn fwd full 64 512 1e14\nattn fwd causal 64 512 1e14\nattn bwd full 64 512 1e14\nattn bwd causal 64 512 1e14\n"

Test(calib, minimal_v2_file_loads) {
    const char *p = th_tmp("min.calib");
    FILE *fp = fopen(p, "w");
    fputs(CAL_HEAD CAL_GEMM CAL_ATTN, fp);
    fclose(fp);
    Calib c;
    os_clear_error();
    cr_assert_eq(calib_load(&c, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(c.n_gemm, 1u);
    cr_assert(close_rel(calib_gemm_rate(&c, 1, 1, 1), 1e11, 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 1e4, 1e4, 1e4), 1e11, 1e-12)); /* one cell: flat */
    /* the stack's optional keys absent: no such kernels, LayerNorm and eager CE as streaming */
    cr_assert_eq(c.n_norm, 0u);
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 4096), 3e12);
    cr_assert_eq(c.metric_ce + c.grad_land_bytes + c.ce_eager_bw, 0.0);
    cr_assert_eq(c.recompute_early_stop, 0u);
    remove(p);
    /* and present */
    fp = fopen(p, "w");
    fputs(CAL_HEAD "train_metric_ce = 2\ngrad_land_bytes = 4\nce_eager_bw = 1.7e12\nrecompute_early_stop = 1\n" CAL_GEMM
          CAL_ATTN "layernorm bwd 4096 1.1e12\nlayernorm fwd 4096 2e12\n", fp);
    fclose(fp);
    cr_assert_eq(calib_load(&c, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(c.metric_ce, 2.0);
    cr_assert_eq(c.grad_land_bytes, 4.0);
    cr_assert_eq(c.ce_eager_bw, 1.7e12);
    cr_assert_eq(c.recompute_early_stop, 1u);
    cr_assert_eq(c.gemm_sustain_scale, 1.0); /* no gemm_sustained: the rows as they are */
    cr_assert_eq(calib_norm_bw(&c, ATTN_FWD, 1000), 2e12);
    cr_assert_eq(calib_norm_bw(&c, ATTN_BWD, 1000), 1.1e12);
    remove(p);
}

Test(calib, bad_files_name_line_and_key) {
    bad_calib("name = x\n", "line 1", "orchsim calibration v2");
    /* an old table is refused, never read with zeros for the new keys */
    bad_calib("# orchsim calibration v1\npeak_flops = 1e15\ngemm 1e6 1e11\nattn 64 1e13\n", "v1", "v2");
    bad_calib("# orchsim calibration v2\npeak_flops = 1e15\nkernel_launch_s = 1e-6\noverlap_slowdown = 0\n" CAL_GEMM CAL_ATTN,
              "key \"hbm_bw\"", "missing");
    bad_calib("# orchsim calibration v2\npeak_flops = 1e15\nhbm_bw = 3e12\nkernel_launch_s = 1e-6\n" CAL_GEMM CAL_ATTN,
              "key \"overlap_slowdown\"", "missing");
    bad_calib(CAL_HEAD "kernel_overhead_s = 2e-5\n" CAL_GEMM CAL_ATTN, "kernel_overhead_s", "v1 key");
    bad_calib(CAL_HEAD "peak_flop = 1\n" CAL_GEMM CAL_ATTN, "line 6: key \"peak_flop\"", "did you mean \"peak_flops\"?");
    bad_calib(CAL_HEAD "gemm 1 1 1e11\n" CAL_ATTN, "line 6: gemm row", "four numbers");
    bad_calib(CAL_HEAD "gemm 1 1 1 abc\n" CAL_ATTN, "line 6: gemm row", "not a finite number");
    bad_calib(CAL_HEAD "gemm 1 1 1 2e15\n" CAL_ATTN, "gemm row 1", "outside");
    bad_calib(CAL_HEAD "gemm 1 1 1 1e11\ngemm 2 1 1 1e11\ngemm 1 2 1 1e11\n" CAL_ATTN, "gemm", "not a complete grid");
    bad_calib(CAL_HEAD "gemm 1 1 1 1e11\ngemm 1 1 1 1e12\n" CAL_ATTN, "gemm row 2", "given twice");
    bad_calib(CAL_HEAD CAL_GEMM, "attn fwd full", "no rows");
    bad_calib(CAL_HEAD CAL_GEMM "attn fwd full 64 512 1e14\nattn fwd causal 64 512 1e14\nattn bwd full 64 512 1e14\n",
              "attn bwd causal", "no rows");
    bad_calib(CAL_HEAD CAL_GEMM "attn sideways full 64 512 1e14\n", "line 7: attn row", "not fwd or bwd");
    bad_calib(CAL_HEAD CAL_GEMM "attn fwd half 64 512 1e14\n", "line 7: attn row", "not causal or full");
    bad_calib("# orchsim calibration v2\npeak_flops = 1e15\nhbm_bw = 3e12\nkernel_launch_s = 2e-6\noverlap_slowdown = 1\n"
              CAL_GEMM CAL_ATTN, "line 5", "outside");
    bad_calib(CAL_HEAD CAL_GEMM CAL_ATTN "what is this\n", "line 11", "cannot read");
    /* the stack's optional keys: rows and ranges checked, never read as something else */
    bad_calib(CAL_HEAD CAL_GEMM CAL_ATTN "layernorm fwd 4096\n", "line 11: layernorm row", "three fields");
    bad_calib(CAL_HEAD CAL_GEMM CAL_ATTN "layernorm up 4096 1e12\n", "layernorm row", "not fwd or bwd");
    bad_calib(CAL_HEAD CAL_GEMM CAL_ATTN "layernorm fwd 4096 1e12\nlayernorm fwd 4096 2e12\n", "layernorm",
              "given twice");
    bad_calib(CAL_HEAD "train_metric_ce = 99\n" CAL_GEMM CAL_ATTN, "train_metric_ce", NULL);
    bad_calib(CAL_HEAD "recompute_early_stop = 2\n" CAL_GEMM CAL_ATTN, "recompute_early_stop", NULL);
    bad_calib(CAL_HEAD "grad_land_byte = 4\n" CAL_GEMM CAL_ATTN, "grad_land_byte", "did you mean \"grad_land_bytes\"?");
    bad_calib(CAL_HEAD "gemm_sustained = 7e14\n" CAL_GEMM CAL_ATTN, "line 6: key \"gemm_sustained\"", "four fields");
    bad_calib(CAL_HEAD "gemm_sustained = 7e14 8192 8192 x\n" CAL_GEMM CAL_ATTN, "key \"gemm_sustained\"", NULL);
    bad_calib(CAL_HEAD "gemm_sustained = 2e15 8192 8192 8192\n" CAL_GEMM CAL_ATTN, "gemm_sustained", "outside");
    bad_calib(CAL_HEAD "gemm_sustained = 1e9 8192 8192 8192\n" CAL_GEMM CAL_ATTN, "gemm_sustained", "units");
}

/* The memo (per-weight GEMM lines, attention per length) never changes a result: the same
 * phase costs with and without it, for every preset, both layouts, every recompute mode. */
Test(cost, memo_changes_nothing) {
    Calib c;
    calib_default_h100(&c);
    CostMemo *memo = calloc(1, sizeof *memo);
    cr_assert_not_null(memo);
    uint32_t lens[] = {100, 2000, 513, 7, 4096, 64, 64, 1, 300, 12000};
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        memset(memo, 0, sizeof *memo);
        for (int rc = 0; rc <= 2; rc++)
            for (uint32_t p = 0; p < cost_n_phases(m); p++)
                for (uint32_t n = 1; n <= 10; n += 3) {
                    CostModel a = {.model = m, .calib = &c, .recompute = rc}, b = a;
                    b.memo = memo;
                    PhaseCost x, y;
                    cr_assert_eq(cost_phase(&x, &a, p, lens, n), OS_OK);
                    cr_assert_eq(cost_phase(&y, &b, p, lens, n), OS_OK);
                    cr_assert(close_rel(x.fwd_s, y.fwd_s, 1e-12), "%s p%u: %.17g vs %.17g", m->name, p, x.fwd_s, y.fwd_s);
                    cr_assert(close_rel(x.bwd_s, y.bwd_s, 1e-12));
                    cr_assert(close_rel(x.gemm_s, y.gemm_s, 1e-12));
                }
    }
    free(memo);
}

/* Tensor and context parallelism with flat rates: a GPU's GEMM and attention time is the whole
 * work's over tp (and over cp for CP), its norms and residual adds are split only with
 * sequence parallelism, and the FLOP counts stay the whole work's. */
Test(cost, tp_and_cp_split_the_work_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    c.kernel_launch_s = 0;
    uint32_t lens[] = {12, 20};
    CostModel one = {.model = m, .calib = &c};
    PhaseCost w, t2, t2sp, c2;
    cr_assert_eq(cost_phase(&w, &one, m->n_enc, lens, 2), OS_OK);
    CostModel tp = one;
    tp.tp = 2;
    cr_assert_eq(cost_phase(&t2, &tp, m->n_enc, lens, 2), OS_OK);
    tp.sp = 1;
    cr_assert_eq(cost_phase(&t2sp, &tp, m->n_enc, lens, 2), OS_OK);
    cr_assert(close_rel(t2.gemm_s, w.gemm_s / 2, 1e-12), "%g vs %g", t2.gemm_s, w.gemm_s / 2);
    cr_assert(close_rel(t2.attn_s, w.attn_s / 2, 1e-12));
    cr_assert_gt(t2.mem_s, w.mem_s / 2);                     /* norms/residuals replicated */
    cr_assert(close_rel(t2sp.mem_s, w.mem_s / 2, 1e-12));    /* ... unless sequence-parallel */
    cr_assert_eq(t2.model_flops, w.model_flops);
    cr_assert_eq(t2.hw_flops, w.hw_flops);
    CostModel cp = one;
    cp.cp = 2;
    cr_assert_eq(cost_phase(&c2, &cp, m->n_enc, lens, 2), OS_OK);
    cr_assert(close_rel(c2.gemm_s, w.gemm_s / 2, 1e-12));
    cr_assert(close_rel(c2.attn_s, w.attn_s / 2, 1e-12)); /* load-balanced chunks: half each */
    cr_assert(close_rel(c2.mem_s, w.mem_s / 2, 1e-12));
    /* a pipeline stage's slice: half the layers, no embedding, the head */
    CostSlice sl = {.layers = 1, .embed = 0, .head = 1};
    PhaseCost half;
    cr_assert_eq(cost_phase_slice(&half, &one, m->n_enc, lens, 2, &sl), OS_OK);
    cr_assert_lt(half.fwd_s, w.fwd_s);
    CostSlice rest = {.layers = 1, .embed = 1, .head = 0};
    PhaseCost other;
    cr_assert_eq(cost_phase_slice(&other, &one, m->n_enc, lens, 2, &rest), OS_OK);
    /* the two stages add up to the whole stack */
    cr_assert(close_rel(half.fwd_s + other.fwd_s, w.fwd_s, 1e-12));
    cr_assert(close_rel(half.bwd_s + other.bwd_s, w.bwd_s, 1e-12));
    cr_assert(close_rel(half.model_flops + other.model_flops, w.model_flops, 1e-12));
}
