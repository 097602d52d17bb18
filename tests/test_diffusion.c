/* test_diffusion.c — sim/diffusion/dmodel.h and dops.h: parameter counts against published
 * totals, multiply-adds per block by hand, the cost anchors of ../shared/CPDM.md (checked, never
 * tuned to), the resolution rule, the calibration's conv key. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "sim/diffusion/dops.h"

static const DiffModel *M(const char *name) {
    const DiffModel *m = dm_find(name);
    cr_assert_not_null(m, "preset %s", name);
    return m;
}

static double macs_of(const char *name, uint32_t res, double *by) {
    DopList l;
    dops_init(&l);
    cr_assert_eq(dops_build(&l, M(name), res, res), OS_OK, "%s", os_last_error());
    double v = dops_macs(&l, by);
    dops_free(&l);
    return v;
}

static void near(double got, double want, double rel, const char *what) {
    cr_assert(fabs(got / want - 1) <= rel, "%s: %.6g, expected %.6g within %.1f%%", what, got, want, 100 * rel);
}

/* Every weight, bias and norm scale, against the totals the released checkpoints have:
 * diffusers' UNet2DConditionModel of SD 1.x (859,520,964) and SD 2.x (865,910,724), the KL-f8
 * decoder (49,490,179 + post_quant_conv 20), CLIPTextModel ViT-L/14 (123,060,480), SD 2.x's
 * 23-layer OpenCLIP text encoder (340,387,840), OpenCLIP ViT-H/14 visual (632,076,800), DiT-XL/2
 * (675,129,632 = "675M" with its fixed position table). */
Test(diffusion_model, parameters_equal_published_totals) {
    cr_assert_eq(dm_params(M("sd14")), 859520964.0);
    cr_assert_eq(dm_params(M("sd21-768")), 865910724.0);
    cr_assert_eq(dm_params(M("kl-f8")), 49490199.0);
    cr_assert_eq(dm_params(M("clip-l-text")), 123060480.0);
    cr_assert_eq(dm_params(M("openclip-h-text-sd")), 340387840.0);
    cr_assert_eq(dm_params(M("openclip-vit-h14")), 632076800.0);
    cr_assert_eq(dm_params(M("clip-vit-l14")), 303966208.0);
    cr_assert_eq(dm_params(M("dit-xl2")), 675129632.0);
    /* the interrogation tower: SD's 23 layers + the 24th (12,596,224) + the projection 1024^2 */
    cr_assert_eq(dm_params(M("openclip-h-text")), 340387840.0 + 12596224.0 + 1048576.0);
}

static const Dop *nth(const DopList *l, DopKind kind, DopBlock blk, int n) {
    for (uint32_t i = 0; i < l->n; i++)
        if (l->op[i].kind == kind && l->op[i].block == blk && n-- == 0) return &l->op[i];
    return NULL;
}

/* Multiply-adds of single blocks of SD 1.4 at 512^2 (latent 64 x 64 = 4096 positions), by hand. */
Test(diffusion_model, sd14_blocks_by_hand) {
    DopList l;
    dops_init(&l);
    cr_assert_eq(dops_build(&l, M("sd14"), 512, 512), OS_OK);
    /* conv_in: 4 -> 320, 3x3 over 64 x 64: 4096 * 320 * 4 * 9 */
    const Dop *c0 = nth(&l, DOP_CONV, DB_CONV, 0);
    cr_assert_not_null(c0);
    cr_assert_eq(c0->m * c0->n * c0->k * c0->count, 4096.0 * 320 * 4 * 9);
    /* the first ResBlock's two 3x3 convs, 320 -> 320: 4096 * 320 * 320 * 9 each */
    const Dop *c1 = nth(&l, DOP_CONV, DB_CONV, 1), *c2 = nth(&l, DOP_CONV, DB_CONV, 2);
    cr_assert_eq(c1->m * c1->n * c1->k, 4096.0 * 320 * 320 * 9);
    cr_assert_eq(c2->m * c2->n * c2->k, 4096.0 * 320 * 320 * 9);
    /* level 0 self-attention: 8 heads of 40 over 4096 tokens: QK^T + PV = 2 * 4096^2 * 320 */
    const Dop *sa = nth(&l, DOP_ATTN, DB_SELF_ATTN, 0);
    cr_assert_eq(sa->heads, 8);
    cr_assert_eq(sa->hdim, 40);
    cr_assert_eq(2.0 * sa->q * sa->kv * sa->heads * sa->hdim * sa->count, 2.0 * 4096 * 4096 * 320);
    /* cross-attention to the 77 text tokens: 2 * 4096 * 77 * 320 */
    const Dop *xa = nth(&l, DOP_ATTN, DB_CROSS_ATTN, 0);
    cr_assert_eq(xa->kv, 77);
    cr_assert_eq(2.0 * xa->q * xa->kv * xa->heads * xa->hdim, 2.0 * 4096 * 77 * 320);
    /* the first spatial transformer's GEGLU: 4096 * 320 * 2560 + 4096 * 1280 * 320 */
    const Dop *f0 = nth(&l, DOP_GEMM, DB_FF, 0), *f1 = nth(&l, DOP_GEMM, DB_FF, 1);
    cr_assert_eq(f0->m * f0->n * f0->k + f1->m * f1->n * f1->k, 4096.0 * 320 * 2560 + 4096.0 * 1280 * 320);
    /* the lowest level (8 x 8, 1280 channels) has no attention: its blocks are convolutions */
    int low_attn = 0;
    for (uint32_t i = 0; i < l.n; i++)
        if (l.op[i].kind == DOP_ATTN && l.op[i].q == 64) low_attn = 1;
    cr_assert_eq(low_attn, 1, "the middle block's transformer runs at 8 x 8 = 64 tokens");
    dops_free(&l);
}

/* SD 2.1 at 768^2: self-attention at 9,216 / 2,304 / 576 tokens, heads of 64 (CPDM.md). */
Test(diffusion_model, sd21_levels) {
    DopList l;
    dops_init(&l);
    cr_assert_eq(dops_build(&l, M("sd21-768"), 768, 768), OS_OK);
    int seen[3] = {0};
    for (uint32_t i = 0; i < l.n; i++) {
        const Dop *o = &l.op[i];
        if (o->kind != DOP_ATTN || o->block != DB_SELF_ATTN) continue;
        cr_assert_eq(o->hdim, 64);
        cr_assert_eq(o->kv, o->q, "self-attention: keys = queries");
        int lv = o->q == 9216 ? 0 : o->q == 2304 ? 1 : o->q == 576 ? 2 : o->q == 144 ? 3 : -1;
        cr_assert(lv >= 0, "unexpected token count %g", o->q);
        static const uint32_t HEADS[4] = {5, 10, 20, 20}; /* 320 / 640 / 1280 channels over 64; the 12 x 12 middle */
        cr_assert_eq(o->heads, HEADS[lv]);
        if (lv < 3) seen[lv]++;
    }
    /* 2 down + 3 up transformers per attention level */
    cr_assert(seen[0] == 5 && seen[1] == 5 && seen[2] == 5, "%d %d %d", seen[0], seen[1], seen[2]);
    dops_free(&l);
}

/* The anchors of CPDM.md "Cost anchors" [estimate], within a few percent: checked, not tuned. */
Test(diffusion_model, cpdm_anchors) {
    double by[DB_N];
    double sd14 = macs_of("sd14", 512, by);
    near(sd14, 0.40e12, 0.03, "SD 1.4 UNet at 512^2 per sample per step");
    cr_assert(by[DB_CONV] / sd14 > 0.45 && by[DB_CONV] / sd14 < 0.58, "about half in convolutions: %.3f", by[DB_CONV] / sd14);
    double sd21 = macs_of("sd21-768", 768, by);
    near(sd21, 1.08e12, 0.03, "SD 2.1 UNet at 768^2");
    near(by[DB_CONV] / sd21, 0.44, 0.05, "SD 2.1's convolution share");
    double vae = macs_of("kl-f8", 768, NULL);
    near(vae, 2.9e12, 0.05, "VAE decode at 768^2");
    double img = 50 * 2 * sd21 + vae;
    near(img, 110e12, 0.05, "one generated image (50 steps x CFG 2 + decode)");
    near(macs_of("openclip-h-text", 0, NULL), 23.5e9, 0.02, "one 77-token ViT-H/14 text pass");
    /* the dataset: ~18,900 images ~4e18 FLOP */
    near(18900 * 2 * img, 4.2e18, 0.06, "generation of CPDM");
    /* DiT-XL/2 at 256^2: 118.6 "Gflops" in DiT's Table 4 (multiply-adds); no convolutions */
    near(macs_of("dit-xl2", 256, by), 118.6e9, 0.01, "DiT-XL/2");
    cr_assert_eq(by[DB_CONV], 0.0);
}

Test(diffusion_model, resolution_rule) {
    DopList l;
    dops_init(&l);
    cr_assert_eq(dm_res_multiple(M("sd21-768")), 64);
    cr_assert_eq(dm_res_multiple(M("dit-xl2")), 16);
    cr_assert_eq(dm_res_multiple(M("kl-f8")), 8);
    os_clear_error();
    cr_assert_eq(dops_build(&l, M("sd21-768"), 700, 768), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "not a multiple of 64"), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(dops_build(&l, M("sd14"), 512, 576), OS_OK); /* 576 = 9 x 64 */
    cr_assert_eq(dops_build(&l, M("kl-f8"), 520, 512), OS_OK);
    dops_free(&l);
}

/* Time: a bigger batch never takes less; the backward adds about twice the forward's GEMM
 * FLOPs; the table's conv fraction scales exactly the convolutions. */
Test(diffusion_model, time_model) {
    Calib c;
    calib_default_h100(&c);
    DopList l;
    dops_init(&l);
    cr_assert_eq(dops_build(&l, M("sd14"), 512, 512), OS_OK);
    DopTime t1, t2, tb;
    dops_time(&t1, &l, &c, 1, 0);
    dops_time(&t2, &l, &c, 2, 0);
    dops_time(&tb, &l, &c, 2, 1);
    cr_assert(t2.fwd_s >= t1.fwd_s && t2.fwd_s <= 2 * t1.fwd_s + 1e-12, "%g %g", t1.fwd_s, t2.fwd_s);
    cr_assert_eq(t1.bwd_s, 0.0);
    cr_assert(tb.bwd_s > 1.5 * tb.fwd_s && tb.bwd_s < 3.5 * tb.fwd_s, "bwd %g fwd %g", tb.bwd_s, tb.fwd_s);
    cr_assert(fabs(t1.fwd_s - (t1.gemm_s + t1.conv_s + t1.attn_s + t1.mem_s)) < 1e-12);
    near(t1.flops, 2 * macs_of("sd14", 512, NULL), 0.01, "executed = 2 x MACs (no causal masks in a UNet)");
    c.conv_frac = 0.4; /* half the default 0.8: the convolutions take twice as long */
    DopTime th;
    dops_time(&th, &l, &c, 1, 0);
    near(th.conv_s, 2 * t1.conv_s, 1e-9, "conv time at half the fraction");
    near(th.gemm_s, t1.gemm_s, 1e-12, "GEMMs unchanged");
    dops_free(&l);
}

Test(diffusion_model, calib_conv_key) {
    Calib c, d;
    calib_default_h100(&c);
    cr_assert_eq(c.conv_frac, 0.0, "the built-in table has not measured it");
    cr_assert_eq(dops_conv_frac(&c), DOPS_CONV_FRAC_DEFAULT);
    c.conv_frac = 0.65;
    const char *p = th_tmp("conv.calib");
    cr_assert_eq(calib_save(&c, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(calib_load(&d, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(d.conv_frac, 0.65);
    cr_assert_eq(dops_conv_frac(&d), 0.65);
    /* out of range: named with its line */
    char *txt = NULL;
    size_t n = 0;
    FILE *fp = fopen(p, "r");
    cr_assert_not_null(fp);
    cr_assert_eq(getdelim(&txt, &n, '\0', fp) > 0, 1);
    fclose(fp);
    char *at = strstr(txt, "conv = 0.65");
    cr_assert_not_null(at);
    memcpy(at, "conv = 1.50", 11);
    fp = fopen(p, "w");
    fputs(txt, fp);
    fclose(fp);
    free(txt);
    os_clear_error();
    cr_assert_neq(calib_load(&d, p), OS_OK);
    cr_assert(strstr(os_last_error(), "key \"conv\""), "%s", os_last_error());
    os_clear_error();
}
