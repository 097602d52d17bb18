/* test_model.c — presets, parameter counts and the preset file format (sim/model.h).
 * Expected numbers are computed here from the published shapes, term by term. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"
#include "base/status.h"
#include "sim/model.h"

static int stack_same(const StackSpec *a, const StackSpec *b) {
    return a->layers == b->layers && a->hidden == b->hidden && a->ffn == b->ffn &&
           a->heads == b->heads && a->kv_heads == b->kv_heads && a->vocab == b->vocab &&
           a->gated_mlp == b->gated_mlp && a->causal == b->causal && a->bias == b->bias && a->tied == b->tied &&
           a->norm == b->norm && a->pos == b->pos && a->loss == b->loss;
}

static void assert_same_model(const ModelSpec *a, const ModelSpec *b) {
    cr_assert_str_eq(a->name, b->name);
    cr_assert_str_eq(a->desc, b->desc);
    cr_assert(stack_same(&a->llm, &b->llm), "%s: [llm] differs", a->name);
    cr_assert_eq(a->max_seq, b->max_seq);
    cr_assert_eq(a->param_bytes, b->param_bytes);
    cr_assert_eq(a->act_bytes, b->act_bytes);
    cr_assert_eq(a->n_enc, b->n_enc);
    for (uint32_t e = 0; e < a->n_enc; e++) {
        cr_assert_str_eq(a->enc[e].modality, b->enc[e].modality);
        cr_assert(stack_same(&a->enc[e].stack, &b->enc[e].stack), "%s: encoder %u differs", a->name, e);
        cr_assert_eq(a->enc[e].ratio, b->enc[e].ratio);
        cr_assert_eq(a->enc[e].max_len, b->enc[e].max_len);
        cr_assert_eq(a->enc[e].pad_to, b->enc[e].pad_to);
        cr_assert_eq(a->enc[e].in_bytes_per_unit, b->enc[e].in_bytes_per_unit);
    }
}

Test(model, presets_registered_and_valid) {
    static const char *const want[] = {"llava-7b", "vl-14b", "vl-32b", "orch-84b", "tiny", "mini-tri"};
    cr_assert_geq(model_n_presets(), 6u);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert_not_null(model_preset_find(want[i]), "preset %s missing", want[i]);
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        os_clear_error();
        cr_assert_eq(model_validate(m, m->name), OS_OK, "%s: %s", m->name, os_last_error());
        cr_assert_eq(model_preset_find(m->name), m);
        for (uint32_t e = 0; e < m->n_enc; e++) cr_assert_gt(m->enc[e].in_bytes_per_unit, 0u);
    }
    cr_assert_null(model_preset_at(model_n_presets()));
    cr_assert_null(model_preset_find("no-such-model"));
}

Test(model, tiny_params_by_hand) {
    const ModelSpec *m = model_preset_find("tiny");
    /* LLM: h 64, 4 heads of 16, 2 KV heads -> kv_dim 32; SwiGLU ffn 128 */
    uint64_t layer = 64 * 64 /*Q*/ + 2 * 64 * 32 /*K,V*/ + 64 * 64 /*O*/ + 3 * 64 * 128 + 2 * 64;
    cr_assert_eq(layer, 36992u);
    cr_assert_eq(stack_layer_params(&m->llm), layer);
    cr_assert_eq(stack_params(&m->llm), 2 * layer + 64 + 2 * 256 * 64);
    /* encoders: h 32, MHA, GELU ffn 64 */
    uint64_t el = 4 * 32 * 32 + 2 * 32 * 64 + 2 * 32;
    cr_assert_eq(stack_layer_params(&m->enc[0].stack), el);
    cr_assert_eq(stack_params(&m->enc[0].stack), 2 * el + 32);
    cr_assert_eq(model_projector_params(m, 0), 4 * 32 * 64 + 64 * 64); /* ratio 4 */
    cr_assert_eq(model_projector_params(m, 1), 2 * 32 * 64 + 64 * 64); /* ratio 2 */
    cr_assert_eq(model_projector_params(m, 2), 0u);
    cr_assert_eq(model_params(m), 106816u + 2 * (2 * el + 32) + 12288u + 8192u);
}

Test(model, llava_7b_is_llama2_7b_plus_clip) {
    const ModelSpec *m = model_preset_find("llava-7b");
    /* Llama-2-7B's published parameter count is 6,738,415,616 (no biases, untied head) */
    cr_assert_eq(stack_params(&m->llm), 6738415616ull);
    uint64_t vit = 24ull * (4 * 1024 * 1024 + 2 * 1024 * 4096 + 2 * 1024) + 1024;
    cr_assert_eq(stack_params(&m->enc[0].stack), vit);
    cr_assert(vit > 300000000ull && vit < 305000000ull); /* CLIP ViT-L ~0.30B */
    cr_assert_eq(model_params(m), 6738415616ull + vit + (1024ull * 4096 + 4096ull * 4096));
    double total = (double)model_params(m);
    cr_assert(total > 6.7e9 && total < 7.2e9, "llava-7b total %.4g", total);
    cr_assert_eq(m->enc[0].ratio, 1u);
}

Test(model, orch_84b_total_from_components) {
    const ModelSpec *m = model_preset_find("orch-84b");
    uint64_t h = 8192, kvd = 8 * (8192 / 64);
    uint64_t llm_layer = h * h + 2 * h * kvd + h * h + 3 * h * 29568 + 2 * h;
    uint64_t llm = 80 * llm_layer + h + 2 * 152064ull * h;
    uint64_t vit = 45 * (4 * 3200ull * 3200 + 2 * 3200ull * 12800 + 2 * 3200) + 3200;
    uint64_t vit_proj = 4 * 3200ull * h + h * h;
    uint64_t aud = 32 * (4 * 1280ull * 1280 + 2 * 1280ull * 5120 + 2 * 1280) + 1280;
    uint64_t aud_proj = 2 * 1280ull * h + h * h;
    cr_assert_eq(stack_params(&m->llm), llm);
    cr_assert_eq(llm, 72705384448ull); /* Qwen2-72B-class: 72.7B */
    cr_assert_eq(model_params(m), llm + vit + vit_proj + aud + aud_proj);
    cr_assert_eq(model_params(m), 79124551296ull);
    cr_assert_not_null(strstr(m->desc, "79.1"), "desc must state the real total: %s", m->desc);
    cr_assert_eq(model_encoder_index(m, "image"), 0);
    cr_assert_eq(model_encoder_index(m, "audio"), 1);
    cr_assert_eq(model_encoder_index(m, "video"), -1);
    cr_assert_eq(m->enc[1].pad_to, 0u);
    cr_assert_eq(m->enc[1].ratio, 2u);
}

Test(model, gqa_shrinks_kv_and_gating_adds_a_matrix) {
    StackSpec s = {.layers = 1, .hidden = 1024, .ffn = 4096, .heads = 16, .kv_heads = 16};
    uint64_t mha = stack_layer_params(&s);
    s.kv_heads = 4; /* K and V: 1024 -> 256 columns each */
    cr_assert_eq(mha - stack_layer_params(&s), 2ull * 1024 * (1024 - 256));
    uint64_t gelu = stack_layer_params(&s);
    s.gated_mlp = 1;
    cr_assert_eq(stack_layer_params(&s) - gelu, 1024ull * 4096);
}

Test(model, mini_tri_fits_one_gpu) {
    const ModelSpec *m = model_preset_find("mini-tri");
    double p = (double)model_params(m);
    cr_assert(p > 0.5e9 && p < 1.0e9, "mini-tri has %.3g params", p);
    cr_assert_eq(m->n_enc, 2u);
    /* weights (bf16) + fp32 master + Adam m, v: 2 + 12 bytes per parameter, well under 80 GB */
    cr_assert_lt(p * 14.0, 20e9);
}

Test(model, shipped_file_equals_builtin) {
    ModelSpec f;
    os_clear_error();
    cr_assert_eq(model_load_file(&f, ORCHSIM_SRC "/sim/models/orch-84b.model"), OS_OK, "%s",
                 os_last_error());
    assert_same_model(&f, model_preset_find("orch-84b"));
    /* every other shipped file too */
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        char path[512];
        snprintf(path, sizeof path, "%s/%s/%s.model", ORCHSIM_SRC,
                 strncmp(m->name, "mpt-", 4) ? "sim/models" : "bench/fidelity/models", m->name);
        cr_assert(th_exists(path), "no shipped file for preset %s (%s)", m->name, path);
        os_clear_error();
        cr_assert_eq(model_resolve(&f, path), OS_OK, "%s", os_last_error());
        assert_same_model(&f, m);
    }
}

Test(model, save_load_round_trip_all_presets) {
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const ModelSpec *m = model_preset_at(i);
        const char *p = th_tmp("rt.model");
        ModelSpec back;
        os_clear_error();
        cr_assert_eq(model_save(m, p), OS_OK, "%s", os_last_error());
        cr_assert_eq(model_load_file(&back, p), OS_OK, "%s", os_last_error());
        assert_same_model(&back, m);
        cr_assert_eq(model_params(&back), model_params(m));
        remove(p);
    }
}

Test(model, resolve_builtin_file_and_unknown) {
    ModelSpec m;
    os_clear_error();
    cr_assert_eq(model_resolve(&m, "tiny"), OS_OK);
    cr_assert_str_eq(m.name, "tiny");
    cr_assert_eq(model_resolve(&m, "orch-48b"), OS_ERR_ARG);
    cr_assert_not_null(strstr(os_last_error(), "did you mean \"orch-84b\""), "%s", os_last_error());
    cr_assert_not_null(strstr(os_last_error(), "llava-7b"), "hint lists the presets: %s", os_last_error());
}

Test(model, minimal_file_gets_defaults) {
    const char *p = th_tmp("min.model");
    FILE *fp = fopen(p, "w");
    fputs("name = small # trailing comment\n[llm]\nlayers = 2\nhidden = 128\nffn = 256\nheads = 4\n"
          "vocab = 1k\n\n[encoder image]\nlayers=1\nhidden=64\nffn=128\nheads=2\nin_bytes_per_unit=1176\n",
          fp);
    fclose(fp);
    ModelSpec m;
    os_clear_error();
    cr_assert_eq(model_load_file(&m, p), OS_OK, "%s", os_last_error());
    cr_assert_str_eq(m.name, "small");
    cr_assert_eq(m.llm.vocab, 1000u);
    cr_assert_eq(m.llm.kv_heads, 4u);        /* = heads */
    cr_assert_eq(m.llm.gated_mlp, 1);        /* LLM default */
    cr_assert_eq(m.llm.causal, 1);
    cr_assert_eq(m.enc[0].stack.gated_mlp, 0); /* encoder defaults */
    cr_assert_eq(m.enc[0].stack.causal, 0);
    cr_assert_eq(m.enc[0].ratio, 1u);
    cr_assert_eq(m.param_bytes, 2u);
    cr_assert_eq(m.act_bytes, 2u);
    remove(p);
}

/* A bad file fails with FORMAT and an error that names the file, the line and the key. */
static void bad_file(const char *body, const char *want1, const char *want2) {
    const char *p = th_tmp("bad.model");
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp);
    fputs(body, fp);
    fclose(fp);
    ModelSpec m;
    os_clear_error();
    OsStatus st = model_load_file(&m, p);
    cr_assert_neq(st, OS_OK, "accepted: %s", body);
    const char *err = os_last_error();
    cr_assert_not_null(strstr(err, p), "error lacks the path: %s", err);
    cr_assert_not_null(strstr(err, want1), "error lacks '%s': %s", want1, err);
    if (want2) cr_assert_not_null(strstr(err, want2), "error lacks '%s': %s", want2, err);
    remove(p);
}

#define LLM_OK "[llm]\nlayers = 2\nhidden = 64\nffn = 128\nheads = 4\nkv_heads = 2\nvocab = 256\n"

Test(model, bad_files_name_line_and_key) {
    bad_file("name = x\n" LLM_OK "hiden = 64\n", "line 9: key \"hiden\": unknown key",
             "did you mean \"hidden\"?");
    bad_file("name = x\n[llm]\nlayers = 2\nhidden = 64\nffn = 128\nvocab = 256\n",
             "[llm]: key \"heads\"", "missing required key");
    bad_file("name = x\n" LLM_OK "[encoder image]\nlayers = 1\nhidden = 32\nffn = 64\nheads = 2\n",
             "[encoder image]: key \"in_bytes_per_unit\"", "missing");
    bad_file("name = x\n[llm]\nlayers = 0\nhidden = 64\nffn = 128\nheads = 4\nvocab = 256\n",
             "line 3: [llm]: key \"layers\"", "must be > 0");
    bad_file("name = x\n[llm]\nlayers = 2\nhidden = 64\nffn = 128\nheads = 5\nvocab = 256\n",
             "line 6: [llm]: key \"heads\"", "do not divide hidden");
    bad_file("name = x\n[llm]\nlayers = 2\nhidden = 64\nffn = 128\nheads = 4\nkv_heads = 3\nvocab = 256\n",
             "line 7: [llm]: key \"kv_heads\"", "do not divide 4 heads");
    bad_file("name = x\n" LLM_OK "layers = 3\n", "line 9: key \"layers\"", "already set on line 3");
    bad_file("name = x\n[lm]\n", "line 2", "did you mean [llm]?");
    bad_file("name = x\n" LLM_OK "heads 4\n", "line 9", "no '='");
    bad_file("name = x\n[llm]\nlayers = two\n", "line 3: key \"layers\"", "not a number");
    bad_file("name = x\n" LLM_OK "[encoder image]\nlayers = 1\nhidden = 32\nffn = 64\nheads = 2\n"
             "vocab = 10\nin_bytes_per_unit = 4\n",
             "line 14: [encoder image]: key \"vocab\"", "must be 0");
    bad_file("name = x\n" LLM_OK "[encoder image]\n[encoder image]\n", "line 10", "already opened on line 9");
    bad_file("name = x\n", "[llm]", "missing section");
    bad_file("desc = no name\n" LLM_OK, "key \"name\"", "missing");
    bad_file("name = x\nratio = 2\n" LLM_OK, "line 2: key \"ratio\"", "unknown key");
    bad_file("name = x\n" LLM_OK "[encoder image]\nlayers = 1\nhidden = 32\nffn = 64\nheads = 2\n"
             "in_bytes_per_unit = 4\nmax_len = 100\npad_to = 200\n",
             "key \"pad_to\"", "max_len");
}

Test(model, validate_catches_hand_built_specs) {
    ModelSpec m = *model_preset_find("tiny");
    m.llm.kv_heads = 3;
    os_clear_error();
    cr_assert_eq(model_validate(&m, "mine"), OS_ERR_FORMAT);
    cr_assert_not_null(strstr(os_last_error(), "mine: [llm]: key \"kv_heads\""), "%s", os_last_error());
    m = *model_preset_find("tiny");
    strcpy(m.enc[1].modality, "image");
    os_clear_error();
    cr_assert_eq(model_validate(&m, "mine"), OS_ERR_FORMAT);
    cr_assert_not_null(strstr(os_last_error(), "twice"), "%s", os_last_error());
}

/* MPT presets against the NumParams column of llm-foundry's published H100 table
 * (bench/fidelity/runs/llm-foundry-h100-bf16.csv): 12 L d^2 weights + 13 L d biases and
 * LayerNorm affine + 2 d final norm + V d tied embedding + max_seq_len x d learned positions. */
Test(model, mpt_presets_match_published_parameter_counts) {
    static const struct {
        const char *name;
        uint32_t seq;
        uint64_t params;
    } want[] = {
        {"mpt-7b", 2048, 6658859008ull},  {"mpt-7b", 65536, 6918905856ull},
        {"mpt-13b", 32768, 13011240960ull}, {"mpt-13b", 2048, 12853954560ull},
        {"mpt-3b", 512, 2647905280ull},   {"mpt-1b", 16384, 1345310720ull},
        {"mpt-760m", 32768, 807656448ull}, {"mpt-760m", 2048, 760470528ull},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ModelSpec m = *model_preset_find(want[i].name);
        m.max_seq = want[i].seq; /* the benchmark's max_seq_len */
        cr_assert_eq(model_params(&m), want[i].params, "%s at %u: %llu", want[i].name, want[i].seq,
                     (unsigned long long)model_params(&m));
    }
    /* the term by term form for one of them: mpt-7b at 2048 */
    uint64_t d = 4096, L = 32, V = 50368;
    cr_assert_eq(12 * L * d * d + 13 * L * d + 2 * d + V * d + 2048 * d, 6658859008ull);
}

Test(model, new_keys_parse_and_refuse_bad_values) {
    const char *p = th_tmp("keys.model");
    FILE *fp = fopen(p, "w");
    fputs("name = k\n[llm]\nlayers = 1\nhidden = 8\nffn = 16\nheads = 2\nvocab = 10\nbias = 1\ntied = 1\n"
          "norm = layernorm\npos = alibi\nloss = fused\n", fp);
    fclose(fp);
    ModelSpec m;
    os_clear_error();
    cr_assert_eq(model_load_file(&m, p), OS_OK, "%s", os_last_error());
    cr_assert_eq(m.llm.pos, POS_ALIBI);
    cr_assert_eq(m.llm.norm, NORM_LAYER);
    cr_assert_eq(m.llm.loss, LOSS_FUSED);
    cr_assert_eq(m.llm.tied, 1);
    fp = fopen(p, "w");
    fputs("name = k\n[llm]\nlayers = 1\nhidden = 8\nffn = 16\nheads = 2\nvocab = 10\npos = sideways\n", fp);
    fclose(fp);
    os_clear_error();
    cr_assert_eq(model_load_file(&m, p), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "line 8") && strstr(os_last_error(), "rotary"), "%s", os_last_error());
    remove(p);
}
