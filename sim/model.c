/* model.c — the preset file format, parameter counts, validation. See model.h; the built-in
 * presets are in presets.c.
 *
 * Preset file format (also in sim/README-models.md):
 *   # a comment (a '#' outside double quotes starts a comment anywhere on a line)
 *   name = my-model            top level: name (required), desc, max_seq, param_bytes,
 *   desc = "free text"                    act_bytes
 *   [llm]                      the backbone: layers hidden ffn heads vocab (required),
 *   layers = 32                           kv_heads (= heads), gated_mlp (1), causal (1)
 *   [encoder image]            one per modality: layers hidden ffn heads in_bytes_per_unit
 *   ratio = 4                             (required), kv_heads (= heads), gated_mlp (0),
 *                                         causal (0), vocab (0), ratio (1), max_len (0),
 *                                         pad_to (0)
 * Numbers take os_parse_u64's k/M/G suffixes. Every error names the file, the line and key.
 */
#include "sim/model.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

/* ---- parameter counts ---------------------------------------------------------------- */

uint64_t stack_layer_params(const StackSpec *s) {
    uint64_t h = s->hidden;
    uint64_t kv_dim = (uint64_t)s->kv_heads * (h / s->heads); /* GQA: K and V are narrower */
    uint64_t attn = h * h + 2 * h * kv_dim + h * h;          /* Q, K+V, O */
    uint64_t mlp = (s->gated_mlp ? 3u : 2u) * h * s->ffn;    /* gate+up+down or fc1+fc2 */
    uint64_t p = attn + mlp + 2 * h;                         /* + 2 norm scales */
    if (s->bias) /* Q/K/V, O, MLP-in (one or two), MLP-out, and the two norms' shifts */
        p += (h + 2 * kv_dim) + h + (s->gated_mlp ? 2u : 1u) * (uint64_t)s->ffn + h + 2 * h;
    return p;
}

uint64_t stack_params_pos(const StackSpec *s, uint32_t pos_len) {
    uint64_t h = s->hidden;
    uint64_t p = (uint64_t)s->layers * stack_layer_params(s) + h * (s->bias ? 2u : 1u); /* final norm */
    if (s->vocab) p += (s->tied ? 1ull : 2ull) * s->vocab * h; /* embedding (+ untied LM head) */
    if (s->pos == POS_LEARNED) p += (uint64_t)pos_len * h;
    return p;
}

uint64_t stack_params(const StackSpec *s) { return stack_params_pos(s, 0); }

uint64_t model_llm_params(const ModelSpec *m) { return stack_params_pos(&m->llm, m->max_seq); }

uint64_t model_projector_params(const ModelSpec *m, uint32_t e) {
    if (e >= m->n_enc) return 0;
    uint64_t in = (uint64_t)m->enc[e].ratio * m->enc[e].stack.hidden, out = m->llm.hidden;
    return in * out + out * out;
}

uint64_t model_params(const ModelSpec *m) {
    uint64_t p = model_llm_params(m);
    for (uint32_t e = 0; e < m->n_enc; e++)
        p += stack_params(&m->enc[e].stack) + model_projector_params(m, e);
    return p;
}

int model_encoder_index(const ModelSpec *m, const char *modality) {
    for (uint32_t e = 0; e < m->n_enc; e++)
        if (!strcmp(m->enc[e].modality, modality)) return (int)e;
    return -1;
}

/* ---- keys: one table drives parsing, defaults, saving and "did you mean" ------------- */

typedef enum {
    K_NAME, K_DESC, K_MAX_SEQ, K_PARAM_BYTES, K_ACT_BYTES,
    K_LAYERS, K_HIDDEN, K_FFN, K_HEADS, K_KV_HEADS, K_VOCAB, K_GATED, K_CAUSAL,
    K_BIAS, K_TIED, K_NORM, K_POS, K_LOSS,
    K_RATIO, K_MAX_LEN, K_PAD_TO, K_IN_BYTES,
    K_COUNT
} KeyId;

enum { AT_TOP = 1, AT_STACK = 2, AT_ENC = 4 };   /* which struct the offset is into */
enum { T_STR, T_U32, T_U8, T_ENUM }; /* T_ENUM: a uint8_t spelled by name in files */
enum { SEC_TOP = 0, SEC_LLM = 1, SEC_ENC0 = 2, SEC_N = SEC_ENC0 + MODEL_MAX_ENC };

typedef struct {
    const char *name;
    int at, type;
    size_t off, size;
    uint32_t max;
    int req_top_llm, req_enc; /* required in top/[llm] resp. [encoder] sections */
    uint32_t def_llm, def_enc; /* defaults when absent (kv_heads: 0 means "= heads") */
    const char *const *names;  /* T_ENUM: names[value], NULL-terminated */
} KeyDef;

static const char *const NORM_NAMES[] = {"rmsnorm", "layernorm", NULL};
static const char *const POS_NAMES[] = {"none", "rotary", "learned", "alibi", NULL};
static const char *const LOSS_NAMES[] = {"eager", "fused", NULL};

#define KSTR(n, f) {n, AT_TOP, T_STR, offsetof(ModelSpec, f), sizeof(((ModelSpec *)0)->f), 0, 0, 0, 0, 0, NULL}
#define KTOP(n, f, mx, req, d) {n, AT_TOP, T_U32, offsetof(ModelSpec, f), 4, mx, req, 0, d, 0, NULL}
#define KSTK(n, f, t, mx, rl, re, dl, de) {n, AT_STACK, t, offsetof(StackSpec, f), 0, mx, rl, re, dl, de, NULL}
#define KSTE(n, f, nm, dl, de) {n, AT_STACK, T_ENUM, offsetof(StackSpec, f), 0, 0, 0, 0, dl, de, nm}
#define KENC(n, f, mx, re, de) {n, AT_ENC, T_U32, offsetof(EncoderSpec, f), 4, mx, 0, re, 0, de, NULL}

static const KeyDef KEYS[K_COUNT] = {
    [K_NAME] = {"name", AT_TOP, T_STR, offsetof(ModelSpec, name), MODEL_NAME_LEN, 0, 1, 0, 0, 0, NULL},
    [K_DESC] = KSTR("desc", desc),
    [K_MAX_SEQ] = KTOP("max_seq", max_seq, UINT32_MAX, 0, 0),
    [K_PARAM_BYTES] = KTOP("param_bytes", param_bytes, 8, 0, 2),
    [K_ACT_BYTES] = KTOP("act_bytes", act_bytes, 8, 0, 2),
    [K_LAYERS] = KSTK("layers", layers, T_U32, 1u << 20, 1, 1, 0, 0),
    [K_HIDDEN] = KSTK("hidden", hidden, T_U32, 1u << 24, 1, 1, 0, 0),
    [K_FFN] = KSTK("ffn", ffn, T_U32, 1u << 26, 1, 1, 0, 0),
    [K_HEADS] = KSTK("heads", heads, T_U32, 1u << 16, 1, 1, 0, 0),
    [K_KV_HEADS] = KSTK("kv_heads", kv_heads, T_U32, 1u << 16, 0, 0, 0, 0),
    [K_VOCAB] = KSTK("vocab", vocab, T_U32, 1u << 26, 1, 0, 0, 0),
    [K_GATED] = KSTK("gated_mlp", gated_mlp, T_U8, 1, 0, 0, 1, 0),
    [K_CAUSAL] = KSTK("causal", causal, T_U8, 1, 0, 0, 1, 0),
    [K_BIAS] = KSTK("bias", bias, T_U8, 1, 0, 0, 0, 0),
    [K_TIED] = KSTK("tied", tied, T_U8, 1, 0, 0, 0, 0),
    /* defaults: Llama/Qwen-style backbones (RMSNorm, RoPE), ViT/Whisper-style encoders */
    [K_NORM] = KSTE("norm", norm, NORM_NAMES, NORM_RMS, NORM_LAYER),
    [K_POS] = KSTE("pos", pos, POS_NAMES, POS_ROTARY, POS_NONE),
    [K_LOSS] = KSTE("loss", loss, LOSS_NAMES, LOSS_EAGER, LOSS_EAGER),
    [K_RATIO] = KENC("ratio", ratio, 1u << 16, 0, 1),
    [K_MAX_LEN] = KENC("max_len", max_len, UINT32_MAX, 0, 0),
    [K_PAD_TO] = KENC("pad_to", pad_to, UINT32_MAX, 0, 0),
    [K_IN_BYTES] = KENC("in_bytes_per_unit", in_bytes_per_unit, 1u << 30, 1, 0),
};

static int key_allowed(KeyId k, int sec) {
    int at = KEYS[k].at;
    if (sec == SEC_TOP) return at == AT_TOP;
    if (sec == SEC_LLM) return at == AT_STACK;
    return at == AT_STACK || at == AT_ENC;
}

static void *key_ptr(ModelSpec *m, KeyId k, int sec) {
    switch (KEYS[k].at) {
    case AT_TOP: return (char *)m + KEYS[k].off;
    case AT_STACK:
        return (char *)(sec == SEC_LLM ? &m->llm : &m->enc[sec - SEC_ENC0].stack) + KEYS[k].off;
    default: return (char *)&m->enc[sec - SEC_ENC0] + KEYS[k].off;
    }
}

static uint32_t key_get(const ModelSpec *m, KeyId k, int sec) {
    const void *p = key_ptr((ModelSpec *)m, k, sec);
    if (KEYS[k].type == T_U8 || KEYS[k].type == T_ENUM) return *(const uint8_t *)p;
    return *(const uint32_t *)p;
}

/* ---- validation, shared by model_validate (no lines) and the loader (lines) ---------- */

/* Where each key was set: line numbers per section, 0 = not set. */
typedef struct {
    int key[SEC_N][K_COUNT];
    int sec[SEC_N]; /* line of the section header */
} LineMap;

static const char *sec_label(const ModelSpec *m, int sec, char *buf, size_t cap) {
    if (sec == SEC_TOP) snprintf(buf, cap, "top level");
    else if (sec == SEC_LLM) snprintf(buf, cap, "[llm]");
    else snprintf(buf, cap, "[encoder %s]", m->enc[sec - SEC_ENC0].modality);
    return buf;
}

/* "line 7: key \"heads\"" when the loader knows the line, else "[llm]: key \"heads\"". */
static const char *field_of(char *buf, size_t cap, const ModelSpec *m, const LineMap *lm,
                            int sec, KeyId k) {
    char lab[64];
    int line = lm ? lm->key[sec][k] : 0;
    if (!line && lm) line = lm->sec[sec];
    if (line) snprintf(buf, cap, "line %d: %s: key \"%s\"", line, sec_label(m, sec, lab, sizeof lab),
                       KEYS[k].name);
    else snprintf(buf, cap, "%s: key \"%s\"", sec_label(m, sec, lab, sizeof lab), KEYS[k].name);
    return buf;
}

static OsStatus check_stack(const ModelSpec *m, const StackSpec *s, int sec, const char *where,
                            const LineMap *lm) {
    OsStatus st = OS_OK;
    char f[160];
    static const KeyId dims[] = {K_LAYERS, K_HIDDEN, K_FFN, K_HEADS, K_KV_HEADS};
    for (size_t i = 0; i < OS_ARRAY_LEN(dims); i++)
        if (key_get(m, dims[i], sec) == 0)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, dims[i]),
                    "give a positive integer", "must be > 0");
    if (s->hidden % s->heads)
        OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_HEADS),
                "heads must divide hidden (head_dim = hidden / heads)",
                "%u heads do not divide hidden %u", s->heads, s->hidden);
    if (s->heads % s->kv_heads)
        OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_KV_HEADS),
                "kv_heads must divide heads (grouped-query attention)",
                "%u kv_heads do not divide %u heads", s->kv_heads, s->heads);
    static const KeyId flags[] = {K_GATED, K_CAUSAL, K_BIAS, K_TIED};
    for (size_t i = 0; i < OS_ARRAY_LEN(flags); i++)
        if (key_get(m, flags[i], sec) > 1)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, flags[i]), "use 0 or 1",
                    "must be 0 or 1");
    static const KeyId enums[] = {K_NORM, K_POS, K_LOSS};
    for (size_t i = 0; i < OS_ARRAY_LEN(enums); i++) {
        uint32_t v = key_get(m, enums[i], sec), n = 0;
        while (KEYS[enums[i]].names[n]) n++;
        if (v >= n)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, enums[i]), NULL,
                    "value %u is not one of the %u kinds", v, n);
    }
    if (s->tied && !s->vocab)
        OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_TIED),
                "only a stack with a vocabulary has an embedding to tie", "must be 0 without vocab");
fail:
    return st;
}

static OsStatus check_spec(const ModelSpec *m, const char *where, const LineMap *lm) {
    OsStatus st = OS_OK;
    char f[160];
    if (!m->name[0])
        OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, SEC_TOP, K_NAME), "add name = <id>",
                "missing");
    if (m->param_bytes < 1 || m->param_bytes > 8 || m->act_bytes < 1 || m->act_bytes > 8)
        OS_FAIL(OS_ERR_FORMAT, where,
                field_of(f, sizeof f, m, lm, SEC_TOP, m->param_bytes < 1 || m->param_bytes > 8
                                                          ? K_PARAM_BYTES : K_ACT_BYTES),
                "2 for bf16, 4 for fp32", "must be 1..8 bytes");
    OS_CHECK(check_stack(m, &m->llm, SEC_LLM, where, lm));
    if (m->llm.vocab == 0)
        OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, SEC_LLM, K_VOCAB),
                "the backbone needs its vocabulary size (LM head)", "must be > 0");
    if (m->n_enc > MODEL_MAX_ENC)
        OS_FAIL(OS_ERR_FORMAT, where, "encoders", NULL, "%u encoders, at most %d", m->n_enc,
                MODEL_MAX_ENC);
    for (uint32_t e = 0; e < m->n_enc; e++) {
        const EncoderSpec *en = &m->enc[e];
        int sec = SEC_ENC0 + (int)e;
        if (!en->modality[0] || !strcmp(en->modality, "text"))
            OS_FAIL(OS_ERR_FORMAT, where, lm && lm->sec[sec] ? "encoder section" : "encoder",
                    "name the modality, e.g. [encoder image]; text goes to the LLM directly",
                    "encoder %u has modality \"%s\"", e, en->modality);
        for (uint32_t o = 0; o < e; o++)
            if (!strcmp(m->enc[o].modality, en->modality))
                OS_FAIL(OS_ERR_FORMAT, where, sec_label(m, sec, f, sizeof f),
                        "one encoder per modality", "modality appears twice");
        OS_CHECK(check_stack(m, &en->stack, sec, where, lm));
        if (en->stack.vocab)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_VOCAB),
                    "encoders have no embedding or LM head: drop the key", "must be 0");
        if (en->ratio < 1)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_RATIO),
                    "1 = one LLM token per position", "must be >= 1");
        if (en->in_bytes_per_unit < 1)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_IN_BYTES),
                    "raw input bytes per position, e.g. 1176 for a 14 px bf16 patch", "must be > 0");
        if (en->pad_to && en->max_len && en->pad_to > en->max_len)
            OS_FAIL(OS_ERR_FORMAT, where, field_of(f, sizeof f, m, lm, sec, K_PAD_TO),
                    "pad_to must not exceed max_len", "%u > max_len %u", en->pad_to, en->max_len);
    }
fail:
    return st;
}

OsStatus model_validate(const ModelSpec *m, const char *where) {
    return check_spec(m, where ? where : m->name, NULL);
}

/* ---- the preset file reader ---------------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

/* Cut a '#' comment that is not inside double quotes. */
static void cut_comment(char *s) {
    int q = 0;
    for (; *s; s++) {
        if (*s == '"') q = !q;
        else if (*s == '#' && !q) {
            *s = '\0';
            return;
        }
    }
}

static void apply_defaults(ModelSpec *m, const LineMap *lm, int sec) {
    for (int k = 0; k < K_COUNT; k++) {
        if (!key_allowed((KeyId)k, sec) || lm->key[sec][k] || KEYS[k].type == T_STR) continue;
        uint32_t d = sec == SEC_TOP || sec == SEC_LLM ? KEYS[k].def_llm : KEYS[k].def_enc;
        if (KEYS[k].type == T_U8 || KEYS[k].type == T_ENUM) *(uint8_t *)key_ptr(m, (KeyId)k, sec) = (uint8_t)d;
        else *(uint32_t *)key_ptr(m, (KeyId)k, sec) = d;
    }
    if (sec != SEC_TOP && !lm->key[sec][K_KV_HEADS]) { /* kv_heads defaults to heads (MHA) */
        StackSpec *s = sec == SEC_LLM ? &m->llm : &m->enc[sec - SEC_ENC0].stack;
        s->kv_heads = s->heads;
    }
}

static OsStatus check_required(const ModelSpec *m, const LineMap *lm, int sec, const char *path) {
    OsStatus st = OS_OK;
    char f[160];
    for (int k = 0; k < K_COUNT; k++) {
        int req = sec < SEC_ENC0 ? KEYS[k].req_top_llm : KEYS[k].req_enc;
        if (!key_allowed((KeyId)k, sec) || !req || lm->key[sec][k]) continue;
        char hint[64];
        snprintf(hint, sizeof hint, "add \"%s = ...\"", KEYS[k].name);
        OS_FAIL(OS_ERR_FORMAT, path, field_of(f, sizeof f, m, NULL, sec, (KeyId)k), hint,
                "missing required key (section starts on line %d)", lm->sec[sec]);
    }
fail:
    return st;
}

static OsStatus set_key(ModelSpec *m, LineMap *lm, int sec, const char *key, char *val,
                        const char *path, int line) {
    OsStatus st = OS_OK;
    char f[160];
    int k = -1;
    for (int i = 0; i < K_COUNT; i++)
        if (key_allowed((KeyId)i, sec) && !strcmp(KEYS[i].name, key)) k = i;
    if (k < 0) {
        const char *best = NULL;
        int bd = 3;
        for (int i = 0; i < K_COUNT; i++) {
            int d = os_edit_distance(key, KEYS[i].name);
            if (key_allowed((KeyId)i, sec) && d < bd) bd = d, best = KEYS[i].name;
        }
        char hint[96];
        if (best) snprintf(hint, sizeof hint, "did you mean \"%s\"?", best);
        else snprintf(hint, sizeof hint, "see sim/README-models.md for the keys of each section");
        snprintf(f, sizeof f, "line %d: key \"%s\"", line, key);
        OS_FAIL(OS_ERR_FORMAT, path, f, hint, "unknown key%s", sec == SEC_TOP ? "" : " in this section");
    }
    snprintf(f, sizeof f, "%s: line %d: key \"%s\"", path, line, key);
    if (lm->key[sec][k])
        OS_FAIL(OS_ERR_FORMAT, f, NULL, "give each key once per section", "already set on line %d",
                lm->key[sec][k]);
    lm->key[sec][k] = line;
    if (KEYS[k].type == T_STR) {
        size_t n = strlen(val);
        if (n >= 2 && val[0] == '"' && val[n - 1] == '"') val[n - 1] = '\0', val++, n -= 2;
        if (n >= KEYS[k].size)
            OS_FAIL(OS_ERR_FORMAT, f, NULL, "shorten it", "value is %zu characters, at most %zu", n,
                    KEYS[k].size - 1);
        memcpy(key_ptr(m, (KeyId)k, sec), val, n + 1);
    } else if (KEYS[k].type == T_ENUM) {
        const char *const *nm = KEYS[k].names;
        int v = -1;
        char list[96] = "one of:";
        for (int i = 0; nm[i]; i++) {
            if (!strcmp(val, nm[i])) v = i;
            strncat(list, " ", sizeof list - strlen(list) - 1);
            strncat(list, nm[i], sizeof list - strlen(list) - 1);
        }
        if (v < 0) OS_FAIL(OS_ERR_FORMAT, f, NULL, list, "'%s' is not a valid value", val);
        *(uint8_t *)key_ptr(m, (KeyId)k, sec) = (uint8_t)v;
    } else {
        uint64_t v = 0;
        OS_CHECK(os_parse_u64(&v, val, 0, KEYS[k].max, f));
        if (KEYS[k].type == T_U8) *(uint8_t *)key_ptr(m, (KeyId)k, sec) = (uint8_t)v;
        else *(uint32_t *)key_ptr(m, (KeyId)k, sec) = (uint32_t)v;
    }
fail:
    return st;
}

/* Open a section header "[llm]" / "[encoder <modality>]"; returns the section index. */
static OsStatus open_section(int *sec, ModelSpec *m, LineMap *lm, char *s, const char *path,
                             int line) {
    OsStatus st = OS_OK;
    char f[64];
    snprintf(f, sizeof f, "line %d", line);
    size_t n = strlen(s);
    if (s[n - 1] != ']') OS_FAIL(OS_ERR_FORMAT, path, f, "write [llm] or [encoder <modality>]",
                                 "section header lacks ']'");
    s[n - 1] = '\0';
    char *body = trim(s + 1);
    if (!strcmp(body, "llm")) {
        if (lm->sec[SEC_LLM])
            OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "[llm] already opened on line %d", lm->sec[SEC_LLM]);
        *sec = SEC_LLM;
    } else if (!strncmp(body, "encoder", 7) && isspace((unsigned char)body[7])) {
        char *mod = trim(body + 7);
        if (!*mod || strlen(mod) >= sizeof m->enc[0].modality || strchr(mod, ' '))
            OS_FAIL(OS_ERR_FORMAT, path, f, "one word, matching the trace's modality names",
                    "bad modality name \"%s\"", mod);
        for (uint32_t e = 0; e < m->n_enc; e++)
            if (!strcmp(m->enc[e].modality, mod))
                OS_FAIL(OS_ERR_FORMAT, path, f, "one encoder per modality",
                        "[encoder %s] already opened on line %d", mod, lm->sec[SEC_ENC0 + (int)e]);
        if (m->n_enc >= MODEL_MAX_ENC)
            OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "more than %d encoders", MODEL_MAX_ENC);
        strcpy(m->enc[m->n_enc].modality, mod);
        *sec = SEC_ENC0 + (int)m->n_enc++;
    } else {
        const char *hint = os_edit_distance(body, "llm") <= 1 ? "did you mean [llm]?"
                           : !strncmp(body, "enc", 3) ? "write [encoder <modality>], e.g. [encoder image]"
                                                      : "sections are [llm] and [encoder <modality>]";
        OS_FAIL(OS_ERR_FORMAT, path, f, hint, "unknown section [%s]", body);
    }
    lm->sec[*sec] = line;
fail:
    return st;
}

OsStatus model_load_file(ModelSpec *out, const char *path) {
    OsStatus st = OS_OK;
    ModelSpec m;
    LineMap lm;
    memset(&m, 0, sizeof m);
    memset(&lm, 0, sizeof lm);
    char buf[1024], f[64];
    int line = 0, sec = SEC_TOP;
    FILE *fp = fopen(path, "r");
    if (!fp)
        OS_FAIL(OS_ERR_IO, path, NULL, "give a built-in preset name or a readable .model file",
                "cannot open: %s", strerror(errno));
    lm.sec[SEC_TOP] = 1;
    while (fgets(buf, sizeof buf, fp)) {
        line++;
        snprintf(f, sizeof f, "line %d", line);
        if (!strchr(buf, '\n') && !feof(fp))
            OS_FAIL(OS_ERR_FORMAT, path, f, NULL, "line longer than %zu characters", sizeof buf - 2);
        cut_comment(buf);
        char *s = trim(buf);
        if (!*s) continue;
        if (*s == '[') {
            OS_CHECK(open_section(&sec, &m, &lm, s, path, line));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) OS_FAIL(OS_ERR_FORMAT, path, f, "write key = value", "no '=' in \"%s\"", s);
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        if (!*key) OS_FAIL(OS_ERR_FORMAT, path, f, "write key = value", "empty key");
        if (!*val) {
            snprintf(f, sizeof f, "line %d: key \"%s\"", line, key);
            OS_FAIL(OS_ERR_FORMAT, path, f, "give a value or drop the line", "empty value");
        }
        OS_CHECK(set_key(&m, &lm, sec, key, val, path, line));
    }
    if (ferror(fp)) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "read error");
    if (!lm.sec[SEC_LLM])
        OS_FAIL(OS_ERR_FORMAT, path, "[llm]", "add an [llm] section with the backbone's shape",
                "missing section");
    for (int s2 = 0; s2 < SEC_ENC0 + (int)m.n_enc; s2++) {
        OS_CHECK(check_required(&m, &lm, s2, path));
        apply_defaults(&m, &lm, s2);
    }
    OS_CHECK(check_spec(&m, path, &lm));
    *out = m;
fail:
    if (fp) fclose(fp);
    return st;
}

OsStatus model_resolve(ModelSpec *out, const char *name_or_path) {
    OsStatus st = OS_OK;
    const ModelSpec *p = model_preset_find(name_or_path);
    if (p) {
        *out = *p;
        return OS_OK;
    }
    FILE *fp = fopen(name_or_path, "r");
    if (fp) {
        fclose(fp);
        return model_load_file(out, name_or_path);
    }
    char hint[512];
    size_t n = 0;
    const char *best = NULL;
    int bd = 3;
    n += (size_t)snprintf(hint, sizeof hint, "built-in presets:");
    for (uint32_t i = 0; i < model_n_presets(); i++) {
        const char *pn = model_preset_at(i)->name;
        int d = os_edit_distance(name_or_path, pn);
        if (d < bd) bd = d, best = pn;
        if (n < sizeof hint) n += (size_t)snprintf(hint + n, sizeof hint - n, " %s", pn);
    }
    if (best && n < sizeof hint) snprintf(hint + n, sizeof hint - n, "; did you mean \"%s\"?", best);
    OS_FAIL(OS_ERR_ARG, name_or_path, "model", hint, "not a built-in preset nor a readable file");
fail:
    return st;
}

/* ---- writer -------------------------------------------------------------------------- */

static void write_section(FILE *fp, const ModelSpec *m, int sec) {
    for (int k = 0; k < K_COUNT; k++) {
        if (!key_allowed((KeyId)k, sec)) continue;
        if (KEYS[k].type == T_STR) {
            const char *v = key_ptr((ModelSpec *)m, (KeyId)k, sec);
            if (*v) fprintf(fp, "%s = \"%s\"\n", KEYS[k].name, v);
        } else if (KEYS[k].type == T_ENUM) {
            fprintf(fp, "%s = %s\n", KEYS[k].name, KEYS[k].names[key_get(m, (KeyId)k, sec)]);
        } else {
            fprintf(fp, "%s = %u\n", KEYS[k].name, key_get(m, (KeyId)k, sec));
        }
    }
}

OsStatus model_save(const ModelSpec *m, const char *path) {
    OsStatus st = OS_OK;
    OsOutFile of;
    int open = 0;
    OS_CHECK(model_validate(m, m->name));
    if (strchr(m->desc, '"'))
        OS_FAIL(OS_ERR_ARG, m->name, "desc", "drop the double quotes", "cannot be written quoted");
    OS_CHECK(os_outfile_open(&of, path, 1));
    open = 1;
    fprintf(of.fp, "# orchsim model preset (sim/README-models.md); %llu parameters\n",
            (unsigned long long)model_params(m));
    write_section(of.fp, m, SEC_TOP);
    fprintf(of.fp, "\n[llm]\n");
    write_section(of.fp, m, SEC_LLM);
    for (uint32_t e = 0; e < m->n_enc; e++) {
        fprintf(of.fp, "\n[encoder %s]\n", m->enc[e].modality);
        write_section(of.fp, m, SEC_ENC0 + (int)e);
    }
    open = 0;
    OS_CHECK(os_outfile_commit(&of));
    return OS_OK;
fail:
    if (open) os_outfile_abort(&of);
    return st;
}
