/* presets.c — the built-in model presets (the registry behind model_preset_*). See model.h;
 * parameter totals are derived term by term in sim/README-models.md. */
#include <string.h>

#include "base/util.h"
#include "sim/model.h"

/* ---- presets ------------------------------------------------------------------------- */

/* Input bytes per encoder position (what an all-to-all moves before the encoder runs):
 *   14 px ViT patch: 14*14*3 pixels * 2 B (bf16)          = 1176 B  (CLIP-L/14, InternViT)
 *   16 px ViT patch: 16*16*3 * 2 B                         = 1536 B  (ViT-B/16)
 *   Whisper-v3: 128 mel bins * 2 frames (the stride-2 conv makes one position of two
 *     10 ms frames, REFERENCE.md §D.3) * 2 B              =  512 B
 *   Whisper-small: 80 mel bins * 2 frames * 2 B            =  320 B */
#define IN_PATCH14 1176u
#define IN_PATCH16 1536u
#define IN_MEL128 512u
#define IN_MEL80 320u

/* Shapes: REFERENCE.md §D.1-D.3 and the public model configs named in each comment.
 * Parameter totals (model_params, weights + norm scales, no biases) are in each desc and
 * derived term by term in sim/README-models.md. */

/* MPT (MosaicML llm-foundry, scripts/train/yamls/pretrain/mpt-<size>.yaml at commit b2a43a147,
 * the one that produced the H100 benchmark table bench/fidelity reproduces): d_model, n_heads,
 * n_layers, expansion_ratio 4 (non-gated GELU MLP), vocab 50368, max_seq_len 2048. The model
 * code's defaults at that commit (llmfoundry/models/mpt/configuration_mpt.py): biases on
 * (no_bias = False), LayerNorm (low_precision_layernorm), learned position embeddings of
 * max_seq_len x d_model (alibi off), tied input/output embeddings, fused cross-entropy
 * (modeling_mpt.py: loss_fn 'fused_crossentropy'). Their parameter count equals the table's
 * NumParams column exactly (bench/fidelity/README.md). */
#define MPT(nm, L, D, H, ds)                                                                      \
    {                                                                                             \
        .name = nm, .desc = ds,                                                                   \
        .llm = {.layers = L, .hidden = D, .ffn = 4 * (D), .heads = H, .kv_heads = H,              \
                .vocab = 50368, .gated_mlp = 0, .causal = 1, .bias = 1, .tied = 1,                \
                .norm = NORM_LAYER, .pos = POS_LEARNED, .loss = LOSS_FUSED},                      \
        .max_seq = 2048, .n_enc = 0, .param_bytes = 2, .act_bytes = 2,                            \
    }

static const ModelSpec PRESETS[] = {
    {
        /* LLaVA-1.5-7B: Llama-2-7B (config.json: 32 layers, 4096, 11008 SwiGLU, 32 heads, MHA,
         * vocab 32000, 4096 context) + CLIP ViT-L/14-336 (24 / 1024 / 4096 GELU, 16 heads;
         * 24x24 = 576 patches + CLS, REFERENCE.md §D.2) + mlp2x_gelu projector, ratio 1. */
        .name = "llava-7b",
        .desc = "LLaVA-1.5-7B: Llama-2-7B + CLIP ViT-L/14-336 (576 tokens/image) + MLP projector; "
                "7.061B = 6.738 LLM + 0.302 ViT + 0.021 proj",
        .llm = {.layers = 32, .hidden = 4096, .ffn = 11008, .heads = 32, .kv_heads = 32,
                .vocab = 32000, .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 4096,
        .n_enc = 1,
        .enc = {{.modality = "image",
                 .stack = {.layers = 24, .hidden = 1024, .ffn = 4096, .heads = 16, .kv_heads = 16, .norm = NORM_LAYER},
                 .ratio = 1, .in_bytes_per_unit = IN_PATCH14}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    {
        /* ~14B-class VL (InternVL2.5-/Qwen2.5-VL-like): Qwen2.5-14B (48 layers, 5120, 13824,
         * 40 heads, 8 KV heads, vocab 152064, 32k context) + InternViT-300M-448px (24 / 1024 /
         * 4096, 16 heads, REFERENCE.md §D.2); pixel shuffle 0.5 merges 4 positions: ratio 4. */
        .name = "vl-14b",
        .desc = "14B-class VL: Qwen2.5-14B-like LLM + InternViT-300M-448px, pixel shuffle (ratio 4); "
                "15.119B = 14.770 LLM + 0.302 ViT + 0.047 proj",
        .llm = {.layers = 48, .hidden = 5120, .ffn = 13824, .heads = 40, .kv_heads = 8,
                .vocab = 152064, .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 32768,
        .n_enc = 1,
        .enc = {{.modality = "image",
                 .stack = {.layers = 24, .hidden = 1024, .ffn = 4096, .heads = 16, .kv_heads = 16, .norm = NORM_LAYER},
                 .ratio = 4, .in_bytes_per_unit = IN_PATCH14}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    {
        /* ~30B-class VL: Qwen2.5-32B (64 layers, 5120, 27648, 40 heads, 8 KV, vocab 152064) +
         * InternViT-6B-448px-V1-5 (45 / 3200 / 12800, 25 heads; 5.53B, REFERENCE.md §D.2). */
        .name = "vl-32b",
        .desc = "30B-class VL: Qwen2.5-32B-like LLM + InternViT-6B-like (45/3200/12800), ratio 4; "
                "38.385B = 32.763 LLM + 5.530 ViT + 0.092 proj",
        .llm = {.layers = 64, .hidden = 5120, .ffn = 27648, .heads = 40, .kv_heads = 8,
                .vocab = 152064, .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 32768,
        .n_enc = 1,
        .enc = {{.modality = "image",
                 .stack = {.layers = 45, .hidden = 3200, .ffn = 12800, .heads = 25, .kv_heads = 25, .norm = NORM_LAYER},
                 .ratio = 4, .in_bytes_per_unit = IN_PATCH14}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    {
        /* OrchMLLM's three-modality model (text, image, audio). The abstract says 84B with a
         * Qwen2-family backbone (REFERENCE.md, OrchMLLM); its encoders are not public. Built
         * from public parts: Qwen2-72B (80 layers, 8192, 29568, 64 heads, 8 KV, vocab 152064)
         * + InternViT-6B-like (45 / 3200 / 12800, 25 heads) + Whisper-large-v3 encoder
         * (32 / 1280 / 5120 GELU, 20 heads, REFERENCE.md §D.3), trimmed (pad_to 0), 1500
         * positions max (30 s), ratio 2 = 40 ms pooling. Total 79.125B: 4.9B (5.8%) short of
         * 84B; we do not invent layers to close the gap. */
        .name = "orch-84b",
        .desc = "OrchMLLM 3-modality: Qwen2-72B + InternViT-6B-like + Whisper-large-v3 enc; 79.125B, "
                "4.9B under the paper's 84B (its encoders are unpublished)",
        .llm = {.layers = 80, .hidden = 8192, .ffn = 29568, .heads = 64, .kv_heads = 8,
                .vocab = 152064, .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 32768,
        .n_enc = 2,
        .enc = {{.modality = "image",
                 .stack = {.layers = 45, .hidden = 3200, .ffn = 12800, .heads = 25, .kv_heads = 25, .norm = NORM_LAYER},
                 .ratio = 4, .in_bytes_per_unit = IN_PATCH14},
                {.modality = "audio",
                 .stack = {.layers = 32, .hidden = 1280, .ffn = 5120, .heads = 20, .kv_heads = 20, .norm = NORM_LAYER},
                 .ratio = 2, .max_len = 1500, .pad_to = 0, .in_bytes_per_unit = IN_MEL128}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    {
        /* Unit-test model: small enough to count FLOPs by hand (tests/test_cost.c). */
        .name = "tiny",
        .desc = "unit-test model: 2-layer 64-wide GQA LLM + 2-layer 32-wide image and audio "
                "encoders; 160384 params",
        .llm = {.layers = 2, .hidden = 64, .ffn = 128, .heads = 4, .kv_heads = 2, .vocab = 256,
                .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 0,
        .n_enc = 2,
        .enc = {{.modality = "image",
                 .stack = {.layers = 2, .hidden = 32, .ffn = 64, .heads = 2, .kv_heads = 2, .norm = NORM_LAYER},
                 .ratio = 4, .in_bytes_per_unit = IN_PATCH14},
                {.modality = "audio",
                 .stack = {.layers = 2, .hidden = 32, .ffn = 64, .heads = 2, .kv_heads = 2, .norm = NORM_LAYER},
                 .ratio = 2, .in_bytes_per_unit = IN_MEL128}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    {
        /* One-GPU three-modality model for the GPU backend: a 0.70B GQA LLM (24 layers, 1536,
         * 4096, 12 heads of 128, 4 KV heads, vocab 32000) + ViT-B/16 (12 / 768 / 3072, 12 heads)
         * + Whisper-small encoder (12 / 768 / 3072, 12 heads, 80 mel). 0.884B: bf16 weights +
         * fp32 master + Adam m, v = 14 B/param = 12.4 GB, so a few thousand tokens of
         * activations per rank fit an 80 GB H100. */
        .name = "mini-tri",
        .desc = "one-GPU 3-modality: 0.70B GQA LLM + ViT-B/16 + Whisper-small encoder; 0.884B",
        .llm = {.layers = 24, .hidden = 1536, .ffn = 4096, .heads = 12, .kv_heads = 4,
                .vocab = 32000, .gated_mlp = 1, .causal = 1, .pos = POS_ROTARY},
        .max_seq = 8192,
        .n_enc = 2,
        .enc = {{.modality = "image",
                 .stack = {.layers = 12, .hidden = 768, .ffn = 3072, .heads = 12, .kv_heads = 12, .norm = NORM_LAYER},
                 .ratio = 4, .in_bytes_per_unit = IN_PATCH16},
                {.modality = "audio",
                 .stack = {.layers = 12, .hidden = 768, .ffn = 3072, .heads = 12, .kv_heads = 12, .norm = NORM_LAYER},
                 .ratio = 2, .max_len = 1500, .in_bytes_per_unit = IN_MEL80}},
        .param_bytes = 2,
        .act_bytes = 2,
    },
    MPT("mpt-125m", 12, 768, 12, "MPT-125M (llm-foundry yaml): 12 x 768, 12 heads of 64, GELU 4x, learned positions, tied"),
    MPT("mpt-350m", 24, 1024, 16, "MPT-350M (llm-foundry yaml): 24 x 1024, 16 heads of 64, GELU 4x, learned positions, tied"),
    MPT("mpt-760m", 24, 1536, 12, "MPT-760M (llm-foundry yaml): 24 x 1536, 12 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-1b", 24, 2048, 16, "MPT-1B (llm-foundry yaml): 24 x 2048, 16 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-3b", 32, 2560, 20, "MPT-3B (llm-foundry yaml): 32 x 2560, 20 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-7b", 32, 4096, 32, "MPT-7B (llm-foundry yaml): 32 x 4096, 32 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-13b", 40, 5120, 40, "MPT-13B (llm-foundry yaml): 40 x 5120, 40 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-30b", 48, 7168, 56, "MPT-30B (llm-foundry yaml): 48 x 7168, 56 heads of 128, GELU 4x, learned positions, tied"),
    MPT("mpt-70b", 80, 8192, 64, "MPT-70B (llm-foundry yaml): 80 x 8192, 64 heads of 128, GELU 4x, learned positions, tied"),
};

uint32_t model_n_presets(void) { return (uint32_t)OS_ARRAY_LEN(PRESETS); }

const ModelSpec *model_preset_at(uint32_t i) {
    return i < model_n_presets() ? &PRESETS[i] : NULL;
}

const ModelSpec *model_preset_find(const char *name) {
    for (uint32_t i = 0; i < model_n_presets(); i++)
        if (!strcmp(PRESETS[i].name, name)) return &PRESETS[i];
    return NULL;
}
