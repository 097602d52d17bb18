/* test_cost.c — FLOPs, the time model and the calibration table (sim/cost.h).
 * FLOP expectations are worked out here by hand for the `tiny` preset (see the comments);
 * time expectations use a flat calibration (one rate for every size) so they are exact. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "base/status.h"
#include "sim/cost.h"
#include "sim/model.h"

#define RG 1e12  /* flat GEMM rate, FLOP/s */
#define RA 5e11  /* flat attention rate */
#define KO 1e-6  /* kernel overhead per layer per pass */

static void flat_calib(Calib *c) {
    memset(c, 0, sizeof *c);
    strcpy(c->name, "flat");
    c->peak_flops = 2e12;
    c->n_gemm = 1, c->gemm_flops[0] = 1e6, c->gemm_rate[0] = RG;
    c->n_attn = 1, c->attn_len[0] = 128, c->attn_rate[0] = RA;
    c->kernel_overhead_s = KO;
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
    cm.recompute = 1;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, lens, 1), OS_OK);
    cr_assert_eq(pc.hw_flops, 4.0 * (1807360 + 25600));         /* + 1 forward */
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

/* With flat rates the time model is hand-checkable: tiny LLM, one sequence of 10.
 * GEMM FLOPs per layer: 2*10*(64*128 [QKV] + 64*64 [O] + 64*256 [MLP in] + 128*64 [MLP out])
 *   = 2*10*36864 = 737280; x 2 layers + LM head 2*10*64*256 = 327680 -> 1802240.
 * attention executed (causal half): 4*100*64*2 / 2 = 25600. */
Test(cost, time_model_by_hand_with_flat_rates) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    uint32_t lens[] = {10};
    PhaseCost pc;
    cr_assert_eq(cost_phase(&pc, &cm, m->n_enc, lens, 1), OS_OK);
    double fwd = 1802240.0 / RG + 25600.0 / RA;
    cr_assert(close_rel(pc.fwd_s, fwd + 2 * KO, 1e-12), "fwd %.17g", pc.fwd_s);
    cr_assert(close_rel(pc.bwd_s, 2 * fwd + 2 * KO, 1e-12), "bwd %.17g", pc.bwd_s);
    /* recomputation adds exactly one forward (with its overheads) to the backward */
    PhaseCost rc;
    cm.recompute = 1;
    cr_assert_eq(cost_phase(&rc, &cm, m->n_enc, lens, 1), OS_OK);
    cr_assert(close_rel(rc.bwd_s - pc.bwd_s, pc.fwd_s, 1e-12));
    cr_assert(close_rel(rc.fwd_s, pc.fwd_s, 1e-15));
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
    cr_assert(close_rel(full.bwd_s - causal.bwd_s, attn_full, 1e-9));
    cr_assert_eq(full.model_flops, causal.model_flops); /* the convention has no discount */
    cr_assert_lt(causal.causal_flops, causal.model_flops);
}

Test(cost, unit_seconds_is_a_len_plus_c_len2) {
    const ModelSpec *m = model_preset_find("tiny");
    Calib c;
    flat_calib(&c);
    CostModel cm = {.model = m, .calib = &c};
    for (int rc = 0; rc <= 1; rc++) {
        cm.recompute = rc;
        for (uint32_t p = 0; p < cost_n_phases(m); p++) {
            double a, cc;
            cost_unit_coeffs(&cm, p, &a, &cc);
            cr_assert_gt(a, 0);
            cr_assert_gt(cc, 0);
            /* flat rates: the per-unit objective equals one unit's phase time less overheads;
             * a multiple of the ratio makes the projector term exact */
            uint32_t len = 64;
            PhaseCost pc;
            cr_assert_eq(cost_phase(&pc, &cm, p, &len, 1), OS_OK);
            uint32_t L = p < m->n_enc ? m->enc[p].stack.layers : m->llm.layers;
            double t = pc.fwd_s + pc.bwd_s - (2 + rc) * L * KO; /* fwd, bwd, [recompute] */
            cr_assert(close_rel(cost_unit_seconds(&cm, p, len), t, 1e-9), "phase %u", p);
            cr_assert(close_rel(cost_unit_seconds(&cm, p, len), a * len + cc * len * len, 1e-9));
        }
    }
    cr_assert_eq(cost_unit_seconds(&cm, 0, 0), 0.0);
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
        for (int rc = 0; rc <= 1; rc++)
            for (int lay = 0; lay <= 1; lay++)
                for (uint32_t p = 0; p < cost_n_phases(&m); p++) {
                    uint32_t n = 1 + (uint32_t)(x % 40);
                    for (uint32_t k = 0; k < n; k++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        lens[k] = (uint32_t)(x % 3000);
                    }
                    CostModel cm = {.model = &m, .calib = &c, .recompute = rc, .layout = (AttnLayout)lay};
                    PhaseCost a, b;
                    cr_assert_eq(cost_phase(&a, &cm, p, lens, n), OS_OK);
                    cr_assert_eq(cost_phase_ref(&b, &cm, p, lens, n), OS_OK);
                    cr_assert(close_rel(a.fwd_s, b.fwd_s, 1e-9), "%s p%u fwd %g vs %g", m.name, p, a.fwd_s, b.fwd_s);
                    cr_assert(close_rel(a.bwd_s, b.bwd_s, 1e-9), "%s p%u bwd", m.name, p);
                    cr_assert(close_rel(a.model_flops, b.model_flops, 1e-12));
                    cr_assert(close_rel(a.model_flops_noattn, b.model_flops_noattn, 1e-12));
                    cr_assert(close_rel(a.causal_flops, b.causal_flops, 1e-12));
                    cr_assert(close_rel(a.hw_flops, b.hw_flops, 1e-12), "%s p%u hw", m.name, p);
                    cr_assert_eq(a.tokens, b.tokens);
                }
    }
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
    double big = calib_gemm_rate(&c, 1e14) / c.peak_flops;
    cr_assert(big > 0.70 && big <= 0.75, "large GEMM at %.3f of peak", big);
    cr_assert_lt(calib_gemm_rate(&c, 1e7), 0.05 * c.peak_flops); /* tiny GEMMs are launch-bound */
    cr_assert_lt(calib_attn_rate(&c, 64), calib_attn_rate(&c, 8192));
    cr_assert_gt(c.kernel_overhead_s, 0);
    cr_assert_lt(c.kernel_overhead_s, 1e-4);
}

Test(calib, interpolation_at_between_outside) {
    Calib c;
    memset(&c, 0, sizeof c);
    c.peak_flops = 1e15;
    c.n_gemm = 3;
    c.gemm_flops[0] = 1e6, c.gemm_rate[0] = 1e11;
    c.gemm_flops[1] = 1e8, c.gemm_rate[1] = 1e13;
    c.gemm_flops[2] = 1e10, c.gemm_rate[2] = 4e14;
    c.n_attn = 2;
    c.attn_len[0] = 64, c.attn_rate[0] = 1e13;
    c.attn_len[1] = 1024, c.attn_rate[1] = 3e14;
    cr_assert_eq(calib_gemm_rate(&c, 1e6), 1e11);              /* at points */
    cr_assert_eq(calib_gemm_rate(&c, 1e8), 1e13);
    cr_assert_eq(calib_gemm_rate(&c, 1e10), 4e14);
    cr_assert_eq(calib_gemm_rate(&c, 1), 1e11);                /* clamped below */
    cr_assert_eq(calib_gemm_rate(&c, 0), 1e11);
    cr_assert_eq(calib_gemm_rate(&c, 1e20), 4e14);             /* clamped above */
    /* halfway in log(size) is the geometric mean of the rates (power law between points) */
    cr_assert(close_rel(calib_gemm_rate(&c, 1e7), sqrt(1e11 * 1e13), 1e-12));
    cr_assert(close_rel(calib_gemm_rate(&c, 1e9), sqrt(1e13 * 4e14), 1e-12));
    cr_assert(close_rel(calib_attn_rate(&c, 256), sqrt(1e13 * 3e14), 1e-12));
    cr_assert_eq(calib_attn_rate(&c, 1), 1e13);
    cr_assert_eq(calib_attn_rate(&c, 1e6), 3e14);
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
    cr_assert_eq(back.peak_flops, c.peak_flops);
    cr_assert_eq(back.kernel_overhead_s, c.kernel_overhead_s);
    cr_assert_eq(back.intra_bw, 3.6e11);
    cr_assert_eq(back.n_gemm, c.n_gemm);
    cr_assert_eq(back.n_attn, c.n_attn);
    for (uint32_t i = 0; i < c.n_gemm; i++) {
        cr_assert_eq(back.gemm_flops[i], c.gemm_flops[i]);
        cr_assert_eq(back.gemm_rate[i], c.gemm_rate[i]);
    }
    for (uint32_t i = 0; i < c.n_attn; i++) cr_assert_eq(back.attn_rate[i], c.attn_rate[i]);
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

#define CAL_HEAD "# orchsim calibration v1\npeak_flops = 1e15\n"

Test(calib, bad_files_name_line) {
    bad_calib("name = x\n", "line 1", "orchsim calibration v1");
    bad_calib(CAL_HEAD "gemm 1e8 1e13\ngemm 1e6 1e11\nattn 64 1e13\n", "line 4: gemm row", "previous");
    bad_calib(CAL_HEAD "gemm 1e6 1e10\ngemm 1e7 1e13\nattn 64 1e13\n", "line 4: gemm row", "less than");
    bad_calib(CAL_HEAD "peak_flop = 1\ngemm 1e6 1e11\nattn 64 1e13\n", "line 3: key \"peak_flop\"",
              "did you mean \"peak_flops\"?");
    bad_calib("# orchsim calibration v1\ngemm 1e6 1e11\nattn 64 1e13\n", "peak_flops", "missing");
    bad_calib(CAL_HEAD "gemm 1e6 1e11 7\nattn 64 1e13\n", "line 3: gemm row", "two numbers");
    bad_calib(CAL_HEAD "gemm 1e6 abc\nattn 64 1e13\n", "line 3: gemm row", "not a finite number");
    bad_calib(CAL_HEAD "gemm 1e6 2e15\nattn 64 1e13\n", "gemm row 1", "outside");
    bad_calib(CAL_HEAD "gemm 1e6 1e11\n", "attn", "no attn rows");
    bad_calib(CAL_HEAD "gemm 1e6 1e11\nattn 64 1e13\nkernel_overhead_s = -1\n", "line 5", "outside");
    bad_calib(CAL_HEAD "gemm 1e6 1e11\nattn 64 1e13\nwhat is this\n", "line 5", "cannot read");
}
