/* model.h — MLLM workload description: one transformer stack per encoder + the LLM backbone.
 * Implements: StackSpec/ModelSpec, built-in presets (7B/14B/30B-class VL, the ~84B
 *   three-modality model of OrchMLLM, and small presets that fit one GPU), a key=value
 *   INI-like preset file format, parameter counts.
 * Does not: compute FLOPs or time (cost.h).
 * Source: REFERENCE.md §D.1-D.3 (layer shapes), model cards cited next to each preset. */
#ifndef OS_MODEL_H
#define OS_MODEL_H

#include <stdint.h>

#include "base/status.h"

#define MODEL_MAX_ENC 4
#define MODEL_NAME_LEN 64

/* Position encoding: what it costs (memory-bound work, parameters), not what it means. */
typedef enum {
    POS_NONE = 0,   /* nothing per layer (encoders' learned tables are not counted, see model.c) */
    POS_ROTARY = 1, /* RoPE: q and k rotated in every layer (read + write) */
    POS_LEARNED = 2,/* a learned table of max_seq x hidden added once at the input (GPT/MPT) */
    POS_ALIBI = 3   /* a bias inside the attention kernel: no extra memory traffic */
} PosEncoding;

typedef enum { NORM_RMS = 0, NORM_LAYER = 1 } NormKind;
/* Softmax cross-entropy over the vocabulary: PyTorch's eager path under bf16 autocast (an
 * fp32 upcast, log_softmax and their backward) or a fused kernel (logits read once per pass). */
typedef enum { LOSS_EAGER = 0, LOSS_FUSED = 1 } LossKind;

typedef struct {
    uint32_t layers, hidden, ffn, heads, kv_heads;
    uint32_t vocab;     /* 0 for encoders (no embedding / LM head) */
    uint8_t gated_mlp;  /* 1: SwiGLU (3 ffn matrices), 0: GELU MLP (2 matrices) */
    uint8_t causal;     /* 1: causal self-attention (LLM), 0: bidirectional (encoders) */
    uint8_t bias;       /* 1: every linear layer and LayerNorm has a bias (GPT/MPT); 0: none */
    uint8_t tied;       /* 1: the LM head reuses the input embedding (one vocab x hidden table) */
    uint8_t norm;       /* NormKind */
    uint8_t pos;        /* PosEncoding */
    uint8_t loss;       /* LossKind (LLM only) */
} StackSpec;

typedef struct {
    char modality[32];  /* must match a trace modality name, e.g. "image", "audio" */
    StackSpec stack;
    uint32_t ratio;     /* projector: encoder output positions merged into one LLM token (>= 1) */
    uint32_t max_len;   /* longest item accepted (positions); 0 = unlimited */
    uint32_t pad_to;    /* 0 = trim; else every item padded to this length (Whisper 30 s = 1500) */
    uint32_t in_bytes_per_unit; /* raw input bytes per position moved by an all-to-all */
} EncoderSpec;

typedef struct {
    char name[MODEL_NAME_LEN];
    char desc[160];
    StackSpec llm;
    uint32_t max_seq;   /* longest LLM sequence accepted; 0 = unlimited. With POS_LEARNED it is
                           also the position table's length (its parameters count) */
    uint32_t n_enc;
    EncoderSpec enc[MODEL_MAX_ENC];
    uint32_t param_bytes; /* bytes per parameter as trained (2 = bf16) */
    uint32_t act_bytes;   /* bytes per activation element moved between phases (2 = bf16) */
} ModelSpec;

/* Resolve a name: a built-in preset, else a preset file path. Errors name the file, line
 * and key. The preset file format is documented in sim/README-models.md and model.c. */
OsStatus model_resolve(ModelSpec *out, const char *name_or_path);
OsStatus model_load_file(ModelSpec *out, const char *path);
/* Write m as a preset file that model_load_file reads back equal (atomic: temp + rename). */
OsStatus model_save(const ModelSpec *m, const char *path);
/* Built-in presets (registry order). */
uint32_t model_n_presets(void);
const ModelSpec *model_preset_at(uint32_t i);
const ModelSpec *model_preset_find(const char *name);

/* Parameters of one layer (attention with GQA + MLP + 2 norms, + their biases when bias = 1),
 * of the whole stack (layers x per-layer + final norm, + the embedding and, unless tied, the
 * LM head when vocab > 0, + a learned position table of pos_len x hidden), of an encoder's
 * projector (2-layer MLP from ratio*enc_hidden to llm_hidden), and of the model. Patch/conv
 * stems and encoders' position tables are not counted (< 0.5% of any preset; see
 * sim/README-models.md). pos_len: the table's length (the model's max_seq for the LLM). */
uint64_t stack_layer_params(const StackSpec *s);
uint64_t stack_params_pos(const StackSpec *s, uint32_t pos_len);
uint64_t stack_params(const StackSpec *s); /* pos_len 0 */
uint64_t model_llm_params(const ModelSpec *m); /* the LLM stack with its position table */
uint64_t model_projector_params(const ModelSpec *m, uint32_t e);
uint64_t model_params(const ModelSpec *m);

/* Encoder index for a modality name, or -1. */
int model_encoder_index(const ModelSpec *m, const char *modality);
/* Check a spec's fields (nonzero dims, heads divide hidden, kv_heads divide heads...). */
OsStatus model_validate(const ModelSpec *m, const char *where);

#endif
