/* test_exec_ref.c — the CPU float64 reference of the GPU backend (exec/ref.c): hand-computed
 * primitives, gradients against central finite differences on a tiny two-encoder MLLM, and
 * the additivity that makes balancing gradient-neutral (sub-batch gradients with the global
 * label count sum to the whole batch's). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "exec/params.h"
#include "exec/ref.h"

static ModelSpec tiny_spec(void) {
    ModelSpec m;
    memset(&m, 0, sizeof m);
    strcpy(m.name, "test-tiny");
    m.llm = (StackSpec){.layers = 2, .hidden = 8, .ffn = 12, .heads = 2, .kv_heads = 1,
                        .vocab = 13, .gated_mlp = 1, .causal = 1};
    m.n_enc = 2;
    strcpy(m.enc[0].modality, "image");
    m.enc[0].stack = (StackSpec){.layers = 1, .hidden = 4, .ffn = 8, .heads = 2, .kv_heads = 2,
                                 .gated_mlp = 0, .causal = 0};
    m.enc[0].ratio = 2;
    strcpy(m.enc[1].modality, "audio");
    m.enc[1].stack = (StackSpec){.layers = 1, .hidden = 6, .ffn = 6, .heads = 3, .kv_heads = 1,
                                 .gated_mlp = 1, .causal = 0};
    m.enc[1].ratio = 3;
    m.param_bytes = m.act_bytes = 2;
    return m;
}

/* ex0: text 3 + image(3 positions -> 2 tokens); ex1: text 4; ex2: text 2 + audio(4 -> 2) +
 * image(2 -> 1). */
static const uint64_t ID[] = {7, 9, 11};
static const uint32_t TEXT[] = {3, 4, 2};
static const uint32_t FIRST[] = {0, 1, 1};
static const uint32_t NIT[] = {1, 0, 2};
static const uint32_t IT_ENC[] = {0, 1, 0};
static const uint32_t IT_LEN[] = {3, 4, 2};

static ExecBatch whole(void) {
    return (ExecBatch){.n = 3, .id = ID, .text = TEXT, .first_item = FIRST, .n_items = NIT,
                       .it_enc = IT_ENC, .it_len = IT_LEN};
}

Test(exec_ref, rmsnorm_hand_computed) {
    /* x = [3, 4]: mean square 12.5, rstd = 1/sqrt(12.5 + 1e-5); g = [1, 2] */
    double x[2] = {3, 4}, g[2] = {1, 2}, out[2], rstd[1];
    ref_rmsnorm_forward(out, rstd, x, g, 1, 2);
    double r = 1.0 / sqrt(12.5 + 1e-5);
    cr_assert_float_eq(rstd[0], r, 1e-15);
    cr_assert_float_eq(out[0], 3 * r, 1e-14);
    cr_assert_float_eq(out[1], 8 * r, 1e-14);
    /* backward of sum(out): d/dx_c = r g_c - x_c r^3 (sum_k g_k x_k) / C */
    double dx[2] = {0, 0}, dg[2] = {0, 0}, dy[2] = {1, 1};
    ref_rmsnorm_backward(dx, dg, dy, x, g, rstd, 1, 2);
    double dot = 1 * 3 + 2 * 4;
    cr_assert_float_eq(dx[0], r - 3 * r * r * r * dot / 2, 1e-14);
    cr_assert_float_eq(dx[1], 2 * r - 4 * r * r * r * dot / 2, 1e-14);
    cr_assert_float_eq(dg[0], 3 * r, 1e-14);
    cr_assert_float_eq(dg[1], 4 * r, 1e-14);
}

Test(exec_ref, softmax_hand_computed) {
    double in[3] = {0, log(2.0), log(3.0)}, out[3];
    ref_softmax(out, in, 3);
    cr_assert_float_eq(out[0], 1.0 / 6, 1e-15);
    cr_assert_float_eq(out[1], 2.0 / 6, 1e-15);
    cr_assert_float_eq(out[2], 3.0 / 6, 1e-15);
    /* large inputs do not overflow (max subtracted) */
    double big[2] = {1000, 1000}, ob[2];
    ref_softmax(ob, big, 2);
    cr_assert_float_eq(ob[0], 0.5, 1e-15);
}

Test(exec_ref, gelu_values_and_derivative) {
    cr_assert_float_eq(ref_gelu(0), 0, 1e-15);
    /* 0.5 (1 + tanh(sqrt(2/pi) (1 + 0.044715))) */
    cr_assert_float_eq(ref_gelu(1), 0.5 * (1 + tanh(0.7978845608028654 * 1.044715)), 1e-15);
    for (double x = -3; x <= 3; x += 0.37) {
        double fd = (ref_gelu(x + 1e-6) - ref_gelu(x - 1e-6)) / 2e-6;
        cr_assert_float_eq(ref_gelu_grad(x), fd, 1e-8, "x=%g", x);
    }
}

Test(exec_ref, bf16_round_and_hash_are_pure) {
    cr_assert_eq(exec_bf16_round(1.0f), 1.0f);
    cr_assert_eq(exec_bf16_round(1.0f + 1.0f / 256), 1.0f);               /* tie -> even */
    cr_assert_eq(exec_bf16_round(1.0f + 3.0f / 256), 1.0f + 1.0f / 64);   /* tie -> even */
    cr_assert_eq(exec_bf16_round(1.0f + 1.0f / 128), 1.0f + 1.0f / 128);  /* representable */
    cr_assert_eq(exec_hash3(1, 2, 3), exec_hash3(1, 2, 3));
    cr_assert_neq(exec_hash3(1, 2, 3), exec_hash3(1, 3, 2));
    for (uint64_t i = 0; i < 1000; i++) {
        float u = exec_uniform(exec_mix64(i));
        cr_assert(u >= -1.0f && u < 1.0f);
    }
}

Test(exec_ref, layout_counts_every_tensor) {
    ModelSpec m = tiny_spec();
    ExecStackLayout L;
    exec_stack_layout(&L, &m.llm);
    /* per layer: 2 norms (16) + qkv (2+2)*4 x 8 (128) + o 8x8 (64) + up 24x8 (192) + down 8x12 (96) */
    cr_assert_eq(L.layer_size, 16 + 128 + 64 + 192 + 96);
    cr_assert_eq(L.total, 2 * L.layer_size + 8 + 2 * 13 * 8);
    /* locate agrees with the offsets */
    uint32_t layer, kind, fan;
    uint64_t idx;
    int norm;
    exec_stack_locate(&L, L.layer_size + L.off[EXEC_T_O] + 5, &layer, &kind, &idx, &norm, &fan);
    cr_assert(layer == 1 && kind == EXEC_T_O && idx == 5 && !norm && fan == 8);
    exec_stack_locate(&L, L.lm_head, &layer, &kind, &idx, &norm, &fan);
    cr_assert(kind == EXEC_T_LM_HEAD && idx == 0 && fan == 8);
}

Test(exec_ref, label_count) {
    ModelSpec m = tiny_spec();
    ExecBatch b = whole();
    /* ex0 has items: 3 labels; ex1 text only: 3; ex2 has items: 2 */
    cr_assert_eq(ref_batch_labels(&m, &b), 8);
}

/* Gradient of every parameter of every module against central differences. */
Test(exec_ref, gradients_match_finite_differences, .timeout = 120) {
    ModelSpec m = tiny_spec();
    RefModel *r = NULL;
    cr_assert_eq(ref_model_create(&r, &m, 42), OS_OK);
    ExecBatch b = whole();
    double norm = (double)ref_batch_labels(&m, &b), loss;
    cr_assert_eq(ref_model_step(&loss, r, &b, 5, norm, 1), OS_OK);
    cr_assert(loss > 0 && isfinite(loss));
    const double h = 1e-5;
    uint64_t checked = 0;
    for (uint32_t k = 0; k < exec_n_modules(&m); k++) {
        uint64_t n;
        double *w = ref_params(r, k, &n), *g = ref_grads(r, k, &n);
        double nonzero = 0;
        for (uint64_t i = 0; i < n; i++) {
            double w0 = w[i], lp, lm, gi = g[i];
            w[i] = w0 + h;
            cr_assert_eq(ref_model_step(&lp, r, &b, 5, norm, 0), OS_OK);
            w[i] = w0 - h;
            cr_assert_eq(ref_model_step(&lm, r, &b, 5, norm, 0), OS_OK);
            w[i] = w0;
            double fd = (lp - lm) / (2 * h);
            cr_assert(fabs(fd - gi) <= 1e-7 + 1e-5 * fabs(fd),
                      "module %u param %llu: analytic %.10g vs finite difference %.10g", k,
                      (unsigned long long)i, gi, fd);
            nonzero += fabs(gi);
            checked++;
        }
        cr_assert(nonzero > 0, "module %u got no gradient at all", k);
    }
    cr_assert(checked > 1800); /* ~1.9k parameters in five modules */
    ref_model_destroy(r);
}

/* Splitting the batch across "ranks" and normalising by the global label count leaves the
 * summed gradient unchanged: why post-balancing cannot change what is learned. */
Test(exec_ref, split_batches_sum_to_whole_batch) {
    ModelSpec m = tiny_spec();
    RefModel *a = NULL, *s = NULL;
    cr_assert_eq(ref_model_create(&a, &m, 3), OS_OK);
    cr_assert_eq(ref_model_create(&s, &m, 3), OS_OK);
    ExecBatch b = whole();
    double norm = (double)ref_batch_labels(&m, &b), la, l1, l2;
    cr_assert_eq(ref_model_step(&la, a, &b, 8, norm, 1), OS_OK);
    /* rank 0: ex2 then ex0 (reordered); rank 1: ex1 */
    static const uint64_t id0[] = {11, 7};
    static const uint32_t tx0[] = {2, 3}, fi0[] = {0, 2}, ni0[] = {2, 1}, en0[] = {1, 0, 0}, ln0[] = {4, 2, 3};
    ExecBatch r0 = {.n = 2, .id = id0, .text = tx0, .first_item = fi0, .n_items = ni0,
                    .it_enc = en0, .it_len = ln0};
    static const uint64_t id1[] = {9};
    static const uint32_t tx1[] = {4}, fi1[] = {0}, ni1[] = {0}, en1[] = {0}, ln1[] = {1};
    ExecBatch r1 = {.n = 1, .id = id1, .text = tx1, .first_item = fi1, .n_items = ni1,
                    .it_enc = en1, .it_len = ln1};
    cr_assert_eq(ref_model_step(&l1, s, &r0, 8, norm, 1), OS_OK);
    cr_assert_eq(ref_model_step(&l2, s, &r1, 8, norm, 1), OS_OK);
    cr_assert_float_eq(l1 + l2, la, 1e-12);
    for (uint32_t k = 0; k < exec_n_modules(&m); k++) {
        uint64_t n;
        const double *ga = ref_grads(a, k, &n), *gs = ref_grads(s, k, &n);
        for (uint64_t i = 0; i < n; i++)
            cr_assert(fabs(ga[i] - gs[i]) <= 1e-12 + 1e-9 * fabs(ga[i]), "module %u param %llu", k,
                      (unsigned long long)i);
    }
    ref_model_destroy(a);
    ref_model_destroy(s);
}

Test(exec_ref, unknown_encoder_is_an_error) {
    ModelSpec m = tiny_spec();
    RefModel *r = NULL;
    cr_assert_eq(ref_model_create(&r, &m, 1), OS_OK);
    static const uint32_t bad_enc[] = {5, 1, 0};
    ExecBatch b = whole();
    b.it_enc = bad_enc;
    double loss;
    cr_assert_eq(ref_model_step(&loss, r, &b, 1, 1, 1), OS_ERR_ARG);
    ref_model_destroy(r);
}

/* pad_to (params.h): the encoder runs the padded length, so padding changes what the real
 * positions attend to (bidirectional) and the loss; the spliced tokens and labels come from
 * the real length; the gradients stay exact (finite differences on the padded encoder and
 * its projector). */
Test(exec_ref, pad_to_encodes_padding_splices_real_tokens) {
    ModelSpec m = tiny_spec(), mp = tiny_spec();
    mp.enc[1].pad_to = 7; /* the audio item has 4 real positions: runs 7, splices ceil(4/3) = 2 */
    ExecBatch b = whole();
    cr_assert_eq(exec_item_tokens(&mp.enc[1], 4), 2);
    cr_assert_eq(exec_item_positions(&mp.enc[1], 4), 7);
    cr_assert_eq(ref_batch_labels(&mp, &b), ref_batch_labels(&m, &b));
    RefModel *r = NULL, *rp = NULL;
    cr_assert_eq(ref_model_create(&r, &m, 42), OS_OK);
    cr_assert_eq(ref_model_create(&rp, &mp, 42), OS_OK);
    double norm = (double)ref_batch_labels(&m, &b), l, lp;
    cr_assert_eq(ref_model_step(&l, r, &b, 5, norm, 1), OS_OK);
    cr_assert_eq(ref_model_step(&lp, rp, &b, 5, norm, 1), OS_OK);
    cr_assert(fabs(l - lp) > 1e-9, "padding must reach the real positions through attention");
    const double h = 1e-5;
    const uint32_t mods[2] = {1, 4}; /* the audio encoder and its projector */
    for (int q = 0; q < 2; q++) {
        uint64_t n;
        double *w = ref_params(rp, mods[q], &n), *g = ref_grads(rp, mods[q], &n);
        for (uint64_t i = 0; i < n; i += 3) {
            double w0 = w[i], a, c;
            w[i] = w0 + h;
            cr_assert_eq(ref_model_step(&a, rp, &b, 5, norm, 0), OS_OK);
            w[i] = w0 - h;
            cr_assert_eq(ref_model_step(&c, rp, &b, 5, norm, 0), OS_OK);
            w[i] = w0;
            double fd = (a - c) / (2 * h);
            cr_assert(fabs(fd - g[i]) <= 1e-7 + 1e-5 * fabs(fd), "module %u param %llu: %.10g vs %.10g", mods[q],
                      (unsigned long long)i, g[i], fd);
        }
    }
    ref_model_destroy(r);
    ref_model_destroy(rp);
}
