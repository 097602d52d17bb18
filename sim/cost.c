/* cost.c — FLOPs and time of one micro-batch of a rank's share of one phase. See cost.h; the
 * rates come from calib.c. Conventions (DESIGN.md §2, REFERENCE.md §D.1):
 *  - linear(n) = 2 * n * layer_params * layers (+ 2 * n * hidden * vocab for the LM head);
 *    layer_params counts norm scales and biases too (2 FLOPs per parameter per token, as in
 *    6N); the input embedding and a learned position table are lookups: 0 FLOPs.
 *  - attention(n) = 4 * n^2 * hidden * layers per item (encoders) or example (LLM): QK^T and
 *    PV, never over a packed buffer.
 *  - projector (encoders): 2-layer MLP ratio*enc_hidden -> llm_hidden -> llm_hidden on the
 *    ceil(len / ratio) outputs of every item's REAL positions.
 *  - model FLOPs = 3 x forward over real positions, no causal discount, no recomputation,
 *    LM head included (PaLM / Megatron convention); causal_flops halves the causal LLM's
 *    attention; hw_flops = what runs in the Megatron/llm-foundry HFU sense: padding, the causal
 *    kernel's skipped half, and the recomputed forward (the attention kernel's own internal
 *    recomputation is not counted, as HFU conventions do not).
 *
 * Time of a micro-batch (M = its positions, all units packed into each GEMM):
 *  - GEMMs per layer, as (K in, N out): QKV (h, h + 2 kv_dim), O (h, h), MLP-in (h, (1|2) ffn),
 *    MLP-out (ffn, h); the LM head (h, vocab); the projector's two. Each appears three times:
 *    forward (M x N, reduce K), data gradient (M x K, reduce N) and weight gradient (K x N,
 *    reduce M), each at calib_gemm_rate of its own shape.
 *  - attention per unit and layer: forward FLOPs (FlashAttention convention 4 len^2 h, halved
 *    when causal) at the forward rate for (len, head dim, mask); backward 2.5x those FLOPs at
 *    the backward rate.
 *  - memory-bound kernels: stack_mem_traffic bytes per position over hbm_bw, plus
 *    kernel_launch_s per kernel.
 *  - recomputation: FULL adds every layer's forward (GEMMs, attention, memory-bound) to the
 *    backward (activation checkpointing per block: embeddings, head and loss are outside the
 *    blocks and not recomputed); SELECTIVE adds the attention kernel's forward only.
 */
#include <math.h>
#include <string.h>

#include "base/util.h"
#include "sim/cost.h"

/* Tokens of the "large packed batch" the balancers' objective prices GEMMs at: a rank's share
 * of a phase is thousands of positions, so its GEMMs sit near the plateau. */
#define COST_REF_TOKENS 16384.0
/* FlashAttention's convention: the backward pass does 2.5x the forward's FLOPs (it recomputes
 * the scores): Dao-AILab/flash-attention benchmarks/benchmark_flash_attention.py, `flops`. */
#define ATTN_BWD_FLOP_RATIO 2.5

Flops stack_forward_flops(const StackSpec *s, double n) {
    Flops f;
    f.linear = 2.0 * n * (double)stack_layer_params(s) * s->layers;
    if (s->vocab) f.linear += 2.0 * n * s->hidden * (double)s->vocab;
    f.attn = 4.0 * n * n * s->hidden * (double)s->layers;
    return f;
}

uint32_t cost_item_llm_tokens(const ModelSpec *m, uint32_t e, uint32_t len) {
    if (e >= m->n_enc) return len;
    uint32_t r = m->enc[e].ratio ? m->enc[e].ratio : 1;
    return len / r + (len % r != 0);
}

uint32_t cost_item_enc_len(const ModelSpec *m, uint32_t e, uint32_t len) {
    if (e >= m->n_enc) return len;
    return OS_MAX(len, m->enc[e].pad_to);
}

/* ---- memory-bound traffic ------------------------------------------------------------- */

/* Bytes per position each memory-bound kernel reads + writes, with a = act_bytes (bf16: 2),
 * h = hidden, f = ffn, kv = kv_dim (the op sequence of a pre-norm transformer block as PyTorch
 * runs it in eager mode; GEMM epilogues fuse the forward bias adds):
 *  forward, per layer:
 *    2 norms          read h, write h                         2 x 2h
 *    2 residual adds  read 2h, write h                        2 x 3h
 *    activation       GELU read f, write f (2f); SwiGLU read 2f (gate, up), write f (3f)
 *    rotary (RoPE)    read and write q and k                  2 (h + kv)
 *  backward, per layer:
 *    2 norms          dx: read x, dy, write dx (3h); weight grads: read x, dy again (2h)
 *    2 grad sums      the residual branch's gradient added in: read 2h, write h   2 x 3h
 *    QKV split        the fused QKV output is split into q, k and v (views); autograd's
 *                     split backward concatenates their gradients: read and write h + 2 kv
 *                     (PyTorch torch.split / Megatron split_tensor_along_last_dim)
 *    activation       GELU read x, dy, write dx (3f); SwiGLU read gate, up, dy, write 2 (5f)
 *    rotary           as forward                              2 (h + kv)
 *    bias grads       a column sum of each linear's output gradient (bias = 1):
 *                     (h + 2 kv) + h + (1|2) f + h
 *  once per stack:
 *    embedding        gather: read h, write h; backward: read dy h, accumulate h  2h / 4h
 *    learned position read token and position rows, write the sum (3h); backward 4h
 *    final norm       2h / 5h
 *    loss over V      eager (autocast fp32): upcast read 2V write 4V, log_softmax read 4V write
 *                     4V = 14V; backward: nll grad 4V, log_softmax grad read 8V write 4V,
 *                     downcast read 4V write 2V = 22V.  fused: logits read once (2V); backward
 *                     read 2V, write 2V (4V).  (The logits' own write is the LM-head GEMM's.) */
MemTraffic stack_mem_traffic(const StackSpec *s, uint32_t act_bytes) {
    MemTraffic t;
    memset(&t, 0, sizeof t);
    double a = act_bytes, h = s->hidden, f = s->ffn, kv = (double)s->kv_heads * (s->hidden / s->heads);
    double V = s->vocab;
    double seq_f = 2 * 2 * h + 2 * 3 * h, seq_b = 2 * 5 * h + 2 * 3 * h; /* norms, residual adds */
    double fwd = seq_f + (s->gated_mlp ? 3 : 2) * f;
    double bwd = seq_b + (s->gated_mlp ? 5 : 3) * f;
    uint32_t kf = 5, kb = 2 * 2 + 2 + 1 + 1;
    bwd += 2 * (h + 2 * kv); /* the QKV split's backward */
    if (s->pos == POS_ROTARY) fwd += 2 * (h + kv), bwd += 2 * (h + kv), kf++, kb++;
    if (s->bias) bwd += (h + 2 * kv) + h + (s->gated_mlp ? 2 : 1) * f + h, kb += 4;
    t.layer_fwd = a * fwd;
    t.layer_bwd = a * bwd;
    t.layer_seq_fwd = a * seq_f;
    t.layer_seq_bwd = a * seq_b;
    t.norm_fwd = a * 2 * 2 * h, t.norm_bwd = a * 2 * 5 * h;
    t.head_norm_fwd = a * 2 * h, t.head_norm_bwd = a * 5 * h;
    t.kernels_layer_fwd = kf;
    t.kernels_layer_bwd = kb;
    t.head_fwd = a * 2 * h, t.head_bwd = a * 5 * h; /* final norm */
    uint32_t kef = 0, keb = 0, khf = 1, khb = 2;
    if (s->vocab) t.emb_fwd += a * 2 * h, t.emb_bwd += a * 4 * h, kef++, keb++;
    if (s->pos == POS_LEARNED) t.emb_fwd += a * 3 * h, t.emb_bwd += a * 4 * h, kef++, keb++;
    if (s->vocab) {
        /* the loss's bytes are counted in its own element sizes (fp32 in the eager path) */
        if (s->loss == LOSS_FUSED) t.loss_fwd = 2 * V, t.loss_bwd = 4 * V, khf += 1, khb += 1;
        else t.loss_fwd = 14 * V, t.loss_bwd = 22 * V, khf += 3, khb += 3;
    }
    t.stack_fwd = t.emb_fwd + t.head_fwd + t.loss_fwd;
    t.stack_bwd = t.emb_bwd + t.head_bwd + t.loss_bwd;
    t.kernels_emb_fwd = kef, t.kernels_emb_bwd = keb;
    t.kernels_stack_fwd = kef + khf;
    t.kernels_stack_bwd = keb + khb;
    return t;
}

/* ---- shapes ---------------------------------------------------------------------------- */

/* The weight GEMMs of one layer, as (K in, N out). */
typedef struct {
    double k[4], n[4];
} LayerGemms;

static LayerGemms layer_gemms(const StackSpec *s) {
    double h = s->hidden, kv_dim = (double)s->kv_heads * (s->hidden / s->heads);
    LayerGemms g = {{h, h, h, s->ffn}, {h + 2.0 * kv_dim, h, (s->gated_mlp ? 2.0 : 1.0) * s->ffn, h}};
    return g;
}

static const StackSpec *phase_stack(const ModelSpec *m, uint32_t phase) {
    return phase < m->n_enc ? &m->enc[phase].stack : &m->llm;
}

static double gemm_t(const Calib *c, double m, double n, double k) {
    double f = 2.0 * m * n * k;
    return f > 0 ? f / calib_gemm_rate(c, m, n, k) : 0.0;
}

/* A weight (K in -> N out) over M rows: forward, and backward = data + weight gradients. */
static void weight_gemm(const Calib *c, double M, double K, double N, double *fwd, double *bwd) {
    *fwd += gemm_t(c, M, N, K);
    *bwd += gemm_t(c, M, K, N) + gemm_t(c, K, N, M);
}

/* The same through the memo's per-weight lines (cost.h CalibLine): identical rates to
 * rounding, a 1-D lookup each. widx: 0-3 the layer's weights, 4 the LM head, 5-6 the
 * projector's. */
static void weight_gemm_m(const CostModel *cm, uint32_t phase, int widx, double M, double K, double N, double *fwd,
                          double *bwd) {
    if (!cm->memo || phase > MODEL_MAX_ENC) {
        weight_gemm(cm->calib, M, K, N, fwd, bwd);
        return;
    }
    const Calib *c = cm->calib;
    CalibLine *l = cm->memo->gemm[phase][widx];
    if (!l[0].ready) {
        calib_gemm_line(&l[0], c, 0, N, K); /* forward: M x N, reduce K */
        calib_gemm_line(&l[1], c, 0, K, N); /* data gradient: M x K, reduce N */
        calib_gemm_line(&l[2], c, 2, K, N); /* weight gradient: K x N, reduce M */
    }
    double f = 2.0 * M * K * N;
    if (f <= 0) return;
    *fwd += f / calib_line_rate(&l[0], c, M);
    *bwd += f / calib_line_rate(&l[1], c, M) + f / calib_line_rate(&l[2], c, M);
}

/* Attention FLOPs one unit of len positions executes in one layer's forward. */
static double attn_exec_flops(const StackSpec *s, double len) {
    return 4.0 * len * len * s->hidden * (s->causal ? 0.5 : 1.0);
}

/* One unit's attention seconds per layer, forward and backward, through the memo. */
static void attn_unit(const CostModel *cm, uint32_t phase, double len, double *fwd, double *bwd) {
    const StackSpec *s = phase_stack(cm->model, phase);
    uint32_t hd = s->hidden / s->heads;
    CostMemo *mo = cm->memo;
    uint64_t key = 0;
    size_t slot = 0;
    if (mo && len >= 0 && len < 4294967295.0 && len == (double)(uint32_t)len) {
        key = ((uint64_t)phase << 32 | (uint32_t)len) + 1;
        slot = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 51) & (COST_MEMO_SLOTS - 1);
        if (mo->key[slot] == key) {
            *fwd = mo->fwd[slot], *bwd = mo->bwd[slot];
            return;
        }
    }
    double fl = attn_exec_flops(s, len);
    *fwd = fl > 0 ? fl / calib_attn_rate(cm->calib, ATTN_FWD, s->causal, hd, len) : 0;
    *bwd = fl > 0 ? ATTN_BWD_FLOP_RATIO * fl / calib_attn_rate(cm->calib, ATTN_BWD, s->causal, hd, len) : 0;
    if (key) mo->key[slot] = key, mo->fwd[slot] = *fwd, mo->bwd[slot] = *bwd;
}

static OsStatus check_args(const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n) {
    OsStatus st = OS_OK;
    if (!cm || !cm->model || !cm->calib)
        OS_FAIL(OS_ERR_ARG, "cost", "model/calib", NULL, "cost model is missing its model or calibration");
    if (phase >= cost_n_phases(cm->model))
        OS_FAIL(OS_ERR_ARG, cm->model->name, "phase", NULL, "phase %u, the model has %u", phase,
                cost_n_phases(cm->model));
    if (n && !lens) OS_FAIL(OS_ERR_ARG, cm->model->name, "lens", NULL, "%u units but no lengths", n);
    if (cm->recompute < RECOMPUTE_NONE || cm->recompute > RECOMPUTE_SELECTIVE)
        OS_FAIL(OS_ERR_ARG, cm->model->name, "recompute", NULL, "mode %d", cm->recompute);
fail:
    return st;
}

/* Paper-convention FLOPs of the real positions in a slice of the stack (shared by both paths):
 * `layers` of the layers, the LM head and the projector with `head`. */
static void model_flops_slice(PhaseCost *out, const ModelSpec *m, uint32_t phase, const StackSpec *s,
                              const CostSlice *sl, double real_tok, double real_sq, double proj_out, double exec_tok,
                              double attn_exec, int rc, int early) {
    double L = sl->layers, lp = (double)stack_layer_params(s);
    double head_r = s->vocab && sl->head ? 2.0 * real_tok * s->hidden * (double)s->vocab : 0;
    double head_e = s->vocab && sl->head ? 2.0 * exec_tok * s->hidden * (double)s->vocab : 0;
    double lin_r = 2.0 * real_tok * lp * L + head_r, lin_e = 2.0 * exec_tok * lp * L + head_e;
    double att_r = 4.0 * real_sq * s->hidden * L;
    double proj = phase < m->n_enc && sl->head ? 2.0 * proj_out * (double)model_projector_params(m, phase) : 0;
    out->model_flops = 3.0 * (lin_r + proj + att_r);
    out->model_flops_noattn = 3.0 * (lin_r + proj);
    out->causal_flops = 3.0 * (lin_r + proj + att_r * (s->causal ? 0.5 : 1.0));
    double rc_lin = rc == RECOMPUTE_FULL ? lin_e - head_e : 0;
    /* early stop: the block's last GEMM (MLP out, ffn -> hidden) is not recomputed */
    if (rc == RECOMPUTE_FULL && early) rc_lin -= 2.0 * exec_tok * (double)s->ffn * s->hidden * L;
    double rc_att = rc != RECOMPUTE_NONE ? L * attn_exec : 0;
    out->hw_flops = 3.0 * (lin_e + proj + L * attn_exec) + rc_lin + rc_att;
}

/* ---- the software stack's kernels (Calib's optional keys) ------------------------------ */

/* Seconds per MemTraffic byte of a stack's norms: a LayerNorm at the calibrated kernel rate,
 * which counts the op's ideal bytes (all of the forward's 2h, 3h of the backward's 5h: cost.h
 * CalibNorm); RMSNorm (no measured rows) and tables without rows as a streaming kernel. */
static double norm_spb(const Calib *c, const StackSpec *s, AttnDir dir) {
    if (s->norm != NORM_LAYER) return 1.0 / c->hbm_bw;
    return (dir == ATTN_BWD ? 3.0 / 5.0 : 1.0) / calib_norm_bw(c, dir, s->hidden);
}

/* Seconds per byte of PyTorch's eager cross-entropy forward (its 14 bytes per logit). */
static double ce_spb(const Calib *c) { return 1.0 / (c->ce_eager_bw > 0 ? c->ce_eager_bw : c->hbm_bw); }

/* Bytes per logit of one eager cross-entropy forward (the training metrics' passes): upcast
 * read 2 write 4, log_softmax read 4 write 4 (cost.c's eager loss, above). */
#define CE_EAGER_FWD_BYTES 14.0

/* Parameters a slice's gradients land in (grad_land_bytes): its layers, the embedding and
 * position table (first stage), the final norm, an untied LM head or the projector (last). */
static double slice_params(const ModelSpec *m, uint32_t phase, const StackSpec *s, const CostSlice *sl) {
    double h = s->hidden, P = sl->layers * (double)stack_layer_params(s);
    if (sl->embed && s->vocab) P += (double)s->vocab * h;
    if (sl->embed && phase >= m->n_enc && s->pos == POS_LEARNED) P += (double)m->max_seq * h;
    if (sl->head) {
        P += h * (1 + (s->bias && s->norm == NORM_LAYER));
        if (s->vocab && !s->tied) P += (double)s->vocab * h;
        if (phase < m->n_enc) P += (double)model_projector_params(m, phase);
    }
    return P;
}

/* ---- the fast path --------------------------------------------------------------------- */

static uint32_t deg(uint32_t d) { return d ? d : 1; }

OsStatus cost_phase(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n) {
    return cost_phase_slice(out, cm, phase, lens, n, NULL);
}

static CostSlice whole(const StackSpec *s) { return (CostSlice){.layers = s->layers, .embed = 1, .head = 1}; }

OsStatus cost_phase_slice(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n,
                          const CostSlice *slice) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    OS_CHECK(check_args(cm, phase, lens, n));
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    CostSlice sl = slice ? *slice : whole(s);
    if (sl.layers > s->layers)
        OS_FAIL(OS_ERR_ARG, m->name, "slice", NULL, "%u layers of a %u-layer stack", sl.layers, s->layers);
    int enc = phase < m->n_enc, rc = cm->recompute;
    double L = sl.layers, T = deg(cm->tp), C = deg(cm->cp), SPT = cm->sp ? T : 1;

    /* real and executed positions */
    double real_tok = 0, real_sq = 0, exec_tok = 0, proj_out = 0, max_len = 0;
    for (uint32_t i = 0; i < n; i++) {
        double e = enc ? cost_item_enc_len(m, phase, lens[i]) : lens[i];
        real_tok += lens[i];
        real_sq += (double)lens[i] * lens[i];
        exec_tok += e;
        max_len = OS_MAX(max_len, e);
        if (enc) proj_out += cost_item_llm_tokens(m, phase, lens[i]);
    }
    out->tokens = (uint64_t)real_tok;
    if (exec_tok == 0) return OS_OK; /* nothing to run: the rank idles through this phase */
    if (cm->layout == ATTN_PADDED) exec_tok = n * max_len;
    double Mg = exec_tok / C, Pg = proj_out / C; /* this GPU's positions (CP) */

    /* attention, one layer: this GPU's share of the heads (TP) and of the work (CP) */
    double af = 0, ab = 0, attn_exec = 0;
    if (cm->layout == ATTN_PADDED) {
        attn_unit(cm, phase, max_len / C, &af, &ab);
        af *= n * C * C, ab *= n * C * C; /* every unit at the longest length's rate */
        attn_exec = n * attn_exec_flops(s, max_len);
    } else {
        for (uint32_t i = 0; i < n; i++) {
            double e = enc ? cost_item_enc_len(m, phase, lens[i]) : lens[i];
            if (e == 0) continue;
            double f1, b1, q = e / C;
            attn_unit(cm, phase, q, &f1, &b1); /* the kernel runs chunks of len / cp */
            af += f1 * C * C, ab += b1 * C * C; /* the unit's whole work at that rate */
            attn_exec += attn_exec_flops(s, e);
        }
    }
    af /= T * C, ab /= T * C;

    /* GEMMs: one layer's (column-parallel QKV and MLP-in, row-parallel O and MLP-out), then the
     * vocabulary-parallel head and the projector */
    LayerGemms g = layer_gemms(s);
    double lf = 0, lb = 0, hf = 0, hb = 0, lf3 = 0;
    for (int k = 0; k < 4; k++) {
        int row = k == 1 || k == 3;
        if (k == 3) lf3 = -lf;
        weight_gemm_m(cm, phase, k, Mg, row ? g.k[k] / T : g.k[k], row ? g.n[k] : g.n[k] / T, &lf, &lb);
        if (k == 3) lf3 += lf; /* the MLP-out GEMM's forward (early-stopped recomputation skips it) */
    }
    if (s->vocab && sl.head) weight_gemm_m(cm, phase, 4, Mg, s->hidden, s->vocab / T, &hf, &hb);
    double lh = m->llm.hidden;
    if (enc && Pg > 0 && sl.head) {
        double in = (double)m->enc[phase].ratio * s->hidden;
        weight_gemm_m(cm, phase, 5, Pg, in, lh / T, &hf, &hb);
        weight_gemm_m(cm, phase, 6, Pg, lh / T, lh, &hf, &hb);
    }

    /* memory-bound kernels: norms and residual adds over SP's shard, the rest over TP's */
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double bw = c->hbm_bw, t0 = c->kernel_launch_s;
    double nf = norm_spb(c, s, ATTN_FWD), nb = norm_spb(c, s, ATTN_BWD); /* seconds per norm byte */
    double lay_f = ((mt.layer_seq_fwd - mt.norm_fwd) / bw + mt.norm_fwd * nf) / SPT + (mt.layer_fwd - mt.layer_seq_fwd) / T / bw;
    double lay_b = ((mt.layer_seq_bwd - mt.norm_bwd) / bw + mt.norm_bwd * nb) / SPT + (mt.layer_bwd - mt.layer_seq_bwd) / T / bw;
    double mlf = Mg * lay_f + mt.kernels_layer_fwd * t0;
    double mlb = Mg * lay_b + mt.kernels_layer_bwd * t0;
    double msf = 0, msb = 0;
    if (sl.embed) msf += Mg * mt.emb_fwd / SPT / bw + mt.kernels_emb_fwd * t0, msb += Mg * mt.emb_bwd / SPT / bw + mt.kernels_emb_bwd * t0;
    if (sl.head) {
        double lossf = s->vocab && s->loss == LOSS_EAGER ? ce_spb(c) : 1.0 / bw; /* eager CE forward's rate */
        msf += Mg * (((mt.head_fwd - mt.head_norm_fwd) / bw + mt.head_norm_fwd * nf) / SPT + mt.loss_fwd / T * lossf) +
               (mt.kernels_stack_fwd - mt.kernels_emb_fwd) * t0;
        msb += Mg * (((mt.head_bwd - mt.head_norm_bwd) / bw + mt.head_norm_bwd * nb) / SPT + mt.loss_bwd / T / bw) +
               (mt.kernels_stack_bwd - mt.kernels_emb_bwd) * t0;
        /* training metrics: eager cross-entropy forwards over the logits after the backward */
        if (s->vocab && c->metric_ce > 0)
            msb += c->metric_ce * (Mg * CE_EAGER_FWD_BYTES * s->vocab / T * ce_spb(c) + 3 * t0);
    }
    /* weight gradients landing in the framework's buffer: every parameter of the slice, once
     * per micro-batch, one kernel per layer (FSDP unit) and one for the stack's own tensors */
    if (c->grad_land_bytes > 0)
        msb += slice_params(m, phase, s, &sl) / T * c->grad_land_bytes / bw + (L + (sl.embed || sl.head)) * t0;
    if (enc && Pg > 0 && sl.head) /* the projector's activation: GELU over llm_hidden per output */
        msf += Pg * 2 * lh / T * m->act_bytes / bw + t0, msb += Pg * 3 * lh / T * m->act_bytes / bw + t0;

    double gemm_f = L * lf + hf, gemm_b = L * lb + hb;
    double attn_f = L * af, attn_b = L * ab;
    double mem_f = L * mlf + msf, mem_b = L * mlb + msb;
    if (rc == RECOMPUTE_FULL) {
        /* early stop: the block's last GEMM and residual add (which saves nothing) are not rerun */
        double skip_g = c->recompute_early_stop ? lf3 : 0;
        double skip_m = c->recompute_early_stop ? Mg * 3.0 * s->hidden * m->act_bytes / SPT / bw + t0 : 0;
        gemm_b += L * (lf - skip_g), attn_b += L * af, mem_b += L * (mlf - skip_m);
    } else if (rc == RECOMPUTE_SELECTIVE) attn_b += L * af;
    out->fwd_s = gemm_f + attn_f + mem_f;
    out->bwd_s = gemm_b + attn_b + mem_b;
    out->gemm_s = gemm_f + gemm_b;
    out->attn_s = attn_f + attn_b;
    out->mem_s = mem_f + mem_b;
    model_flops_slice(out, m, phase, s, &sl, real_tok, real_sq, proj_out, exec_tok, attn_exec, rc,
                      (int)c->recompute_early_stop);
fail:
    return st;
}

/* ---- the slow twin: every kernel of every layer of every pass, one at a time ----------- */

OsStatus cost_phase_ref(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n) {
    return cost_phase_slice_ref(out, cm, phase, lens, n, NULL);
}

OsStatus cost_phase_slice_ref(PhaseCost *out, const CostModel *cm, uint32_t phase, const uint32_t *lens, uint32_t n,
                              const CostSlice *slice) {
    OsStatus st = OS_OK;
    memset(out, 0, sizeof *out);
    OS_CHECK(check_args(cm, phase, lens, n));
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    CostSlice sl = slice ? *slice : whole(s);
    if (sl.layers > s->layers)
        OS_FAIL(OS_ERR_ARG, m->name, "slice", NULL, "%u layers of a %u-layer stack", sl.layers, s->layers);
    int enc = phase < m->n_enc;
    double h = s->hidden, kvd = (double)s->kv_heads * (s->hidden / s->heads), bw = c->hbm_bw;
    double T = cm->tp ? cm->tp : 1, C = cm->cp ? cm->cp : 1, SPT = cm->sp ? T : 1;
    uint32_t hd = s->hidden / s->heads;

    uint32_t widest = 0;
    uint64_t real_total = 0, outs = 0;
    double real_sq = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t e = enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
        widest = OS_MAX(widest, e);
        real_total += lens[i];
        real_sq += (double)lens[i] * lens[i];
        if (enc) outs += (lens[i] + m->enc[phase].ratio - 1) / m->enc[phase].ratio;
    }
    out->tokens = real_total;
    double M = 0; /* rows of every packed GEMM, all CP ranks together */
    for (uint32_t i = 0; i < n; i++)
        M += cm->layout == ATTN_PADDED ? widest : (enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i]);
    if (M == 0) return OS_OK;
    double Mg = M / C, Og = (double)outs / C;

    /* (K in, N out) of the layer's weights on this GPU: column-parallel QKV and MLP-in split
     * N, row-parallel O and MLP-out split K */
    double gk[4] = {h, h / T, h, s->ffn / T};
    double gn[4] = {(h + 2 * kvd) / T, h, (s->gated_mlp ? 2.0 : 1.0) * s->ffn / T, h};
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double attn_exec = 0;
    for (uint32_t i = 0; i < n; i++) {
        double len = cm->layout == ATTN_PADDED ? widest : enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
        attn_exec += 4.0 * len * len * h * (s->causal ? 0.5 : 1.0);
    }
    /* passes: forward, [recomputed forward], backward */
    enum { FWD, RECOMP, BWD };
    for (int pass = FWD; pass <= BWD; pass++) {
        if (pass == RECOMP && cm->recompute == RECOMPUTE_NONE) continue;
        int only_attn = pass == RECOMP && cm->recompute == RECOMPUTE_SELECTIVE;
        double tg = 0, ta = 0, tm = 0;
        /* early-stopped recomputation: the block's last GEMM and residual add are not rerun */
        int stop = pass == RECOMP && c->recompute_early_stop;
        for (uint32_t l = 0; l < sl.layers; l++) {
            for (int k = 0; k < 4 && !only_attn; k++) {
                if (stop && k == 3) continue;
                double f1 = 2.0 * Mg * gk[k] * gn[k];
                if (pass == BWD) /* dgrad: M x K reduce N; wgrad: K x N reduce M */
                    tg += f1 / calib_gemm_rate(c, Mg, gk[k], gn[k]) + f1 / calib_gemm_rate(c, gk[k], gn[k], Mg);
                else
                    tg += f1 / calib_gemm_rate(c, Mg, gn[k], gk[k]);
            }
            for (uint32_t i = 0; i < n; i++) {
                double len = cm->layout == ATTN_PADDED ? widest
                             : enc ? OS_MAX(lens[i], m->enc[phase].pad_to) : lens[i];
                if (len == 0) continue;
                double f = 4.0 * len * len * h / (T * C); /* this GPU's heads and chunk pairs */
                if (s->causal) f /= 2; /* the kernel skips the masked half */
                if (pass == BWD) ta += 2.5 * f / calib_attn_rate(c, ATTN_BWD, s->causal, hd, len / C);
                else ta += f / calib_attn_rate(c, ATTN_FWD, s->causal, hd, len / C);
            }
            if (!only_attn) {
                int bp = pass == BWD;
                double a = m->act_bytes;
                uint32_t kn = bp ? mt.kernels_layer_bwd : mt.kernels_layer_fwd;
                for (uint32_t k = 0; k < kn - (uint32_t)stop; k++) tm += c->kernel_launch_s;
                /* the two norms one at a time: a LayerNorm at its kernel's rate on the op's ideal
                 * bytes (r x, w y / r x, dy, w dx), else streaming over all it moves */
                for (int q = 0; q < 2; q++)
                    tm += s->norm == NORM_LAYER ? Mg * (bp ? 3 : 2) * h * a / SPT / calib_norm_bw(c, bp ? ATTN_BWD : ATTN_FWD, s->hidden)
                                                : Mg * (bp ? 5 : 2) * h * a / SPT / bw;
                double seq = bp ? mt.layer_seq_bwd - mt.norm_bwd : mt.layer_seq_fwd - mt.norm_fwd;
                double rest = bp ? mt.layer_bwd - mt.layer_seq_bwd : mt.layer_fwd - mt.layer_seq_fwd;
                if (stop) seq -= 3.0 * h * a; /* the residual add */
                tm += Mg * (seq / SPT + rest / T) / bw;
                if (bp && c->grad_land_bytes > 0) /* this layer's weight gradients landed */
                    tm += c->kernel_launch_s + (double)stack_layer_params(s) / T * c->grad_land_bytes / bw;
            }
        }
        if (pass != RECOMP) {
            if (s->vocab && sl.head) {
                double V = s->vocab / T, f1 = 2.0 * Mg * h * V;
                if (pass == BWD) tg += f1 / calib_gemm_rate(c, Mg, h, V) + f1 / calib_gemm_rate(c, h, V, Mg);
                else tg += f1 / calib_gemm_rate(c, Mg, V, h);
            }
            if (enc && outs && sl.head) {
                double lh = m->llm.hidden, in = (double)m->enc[phase].ratio * h;
                double ww[2][2] = {{in, lh / T}, {lh / T, lh}};
                for (int q = 0; q < 2; q++) {
                    double K = ww[q][0], N = ww[q][1], f1 = 2.0 * Og * K * N;
                    if (pass == BWD) tg += f1 / calib_gemm_rate(c, Og, K, N) + f1 / calib_gemm_rate(c, K, N, Og);
                    else tg += f1 / calib_gemm_rate(c, Og, N, K);
                }
                tm += c->kernel_launch_s + Og * (pass == BWD ? 3 : 2) * lh / T * m->act_bytes / bw;
            }
            if (sl.embed) {
                uint32_t kn = pass == BWD ? mt.kernels_emb_bwd : mt.kernels_emb_fwd;
                for (uint32_t k = 0; k < kn; k++) tm += c->kernel_launch_s;
                tm += Mg * (pass == BWD ? mt.emb_bwd : mt.emb_fwd) / SPT / bw;
            }
            if (sl.head) {
                int bp = pass == BWD;
                uint32_t kn = bp ? mt.kernels_stack_bwd - mt.kernels_emb_bwd : mt.kernels_stack_fwd - mt.kernels_emb_fwd;
                for (uint32_t k = 0; k < kn; k++) tm += c->kernel_launch_s;
                double a = m->act_bytes;
                tm += s->norm == NORM_LAYER ? Mg * (bp ? 3 : 2) * h * a / SPT / calib_norm_bw(c, bp ? ATTN_BWD : ATTN_FWD, s->hidden)
                                            : Mg * (bp ? 5 : 2) * h * a / SPT / bw; /* the final norm */
                double loss = bp ? mt.loss_bwd : mt.loss_fwd;
                double rate = !bp && s->loss == LOSS_EAGER && c->ce_eager_bw > 0 ? c->ce_eager_bw : bw;
                tm += Mg * loss / T / rate;
                if (bp && s->vocab && c->metric_ce > 0) /* training metrics, one pass at a time */
                    for (double q = 0; q < c->metric_ce; q += 1) {
                        double part = fmin(1.0, c->metric_ce - q);
                        tm += part * (3 * c->kernel_launch_s + Mg * 14.0 * s->vocab / T /
                                                                   (c->ce_eager_bw > 0 ? c->ce_eager_bw : bw));
                    }
            }
            if (pass == BWD && c->grad_land_bytes > 0 && (sl.embed || sl.head)) { /* the stack's own tensors */
                double P = 0;
                if (sl.embed && s->vocab) P += (double)s->vocab * h;
                if (sl.embed && !enc && s->pos == POS_LEARNED) P += (double)m->max_seq * h;
                if (sl.head) P += h * (1 + (s->bias && s->norm == NORM_LAYER)) + (s->vocab && !s->tied ? (double)s->vocab * h : 0) +
                                  (enc ? (double)model_projector_params(m, phase) : 0);
                tm += c->kernel_launch_s + P / T * c->grad_land_bytes / bw;
            }
        }
        if (pass == FWD) out->fwd_s += tg + ta + tm;
        else out->bwd_s += tg + ta + tm;
        out->gemm_s += tg, out->attn_s += ta, out->mem_s += tm;
    }
    model_flops_slice(out, m, phase, s, &sl, (double)real_total, real_sq, (double)outs, M, attn_exec, cm->recompute,
                      (int)c->recompute_early_stop);
fail:
    return st;
}

/* ---- the optimizer --------------------------------------------------------------------- */

/* HBM bytes per parameter of one optimizer step, from the op sequence of Composer 0.16's
 * DecoupledAdamW (composer/optim/decoupled_weight_decay.py, `adamw`: per tensor, fp32 state,
 * weight decay 0 as the MPT yamls set it): exp_avg.mul_ (r4 w4) .add_(grad) (r8 w4),
 * exp_avg_sq.mul_ (r4 w4) .addcmul_(grad, grad) (r8 w4), sqrt (r4 w4), / sqrt(bc2) (r4 w4),
 * .add_(eps) (r4 w4), param.addcdiv_ (r12 w4) = 80 B; plus FSDP's clip_grad_norm_: the norm
 * (r4) and the scaling (r4 w4) = 12 B. */
#define OPT_BYTES_PER_PARAM 92.0
/* kernels per parameter tensor: the eight ops above and the two of clipping */
#define OPT_KERNELS_PER_TENSOR 10.0

/* Parameter tensors the optimizer loops over: the model's own (nn.Parameter) tensors, as
 * PyTorch FSDP with use_orig_params=True (Composer 0.16's default, composer/trainer/
 * dist_strategy.py) hands them to the optimizer: per layer the four weights (fused QKV, O,
 * MLP in, MLP out), their biases, and each norm's scale (and bias); per stack the embedding,
 * an untied LM head, the final norm, a learned position table; an encoder's projector. */
static double stack_tensors(const StackSpec *s) {
    double norm = 1 + (s->bias && s->norm == NORM_LAYER);
    double t = s->layers * (4.0 * (1 + s->bias) + 2 * norm) + norm;
    if (s->vocab) t += 1 + !s->tied;
    return t;
}

double cost_optimizer_bytes_per_param(void) { return OPT_BYTES_PER_PARAM; }

double cost_optimizer_s(const CostModel *cm, double params_per_gpu) {
    if (!cm || !cm->calib || !cm->model || !(params_per_gpu > 0)) return 0;
    const ModelSpec *m = cm->model;
    double tensors = stack_tensors(&m->llm) + (m->llm.pos == POS_LEARNED);
    for (uint32_t e = 0; e < m->n_enc; e++) tensors += stack_tensors(&m->enc[e].stack) + 2.0 * (1 + m->enc[e].stack.bias);
    return params_per_gpu * OPT_BYTES_PER_PARAM / cm->calib->hbm_bw +
           tensors * OPT_KERNELS_PER_TENSOR * cm->calib->kernel_launch_s;
}

/* ---- the balancers' per-unit objective ------------------------------------------------- */

/* Seconds per position of every pass through the stack's GEMMs and memory-bound kernels at a
 * large packed batch (lin), and per projector output (proj). */
void cost_unit_prepare(CostUnit *u, const CostModel *cm, uint32_t phase) {
    memset(u, 0, sizeof *u);
    u->cm = cm;
    u->phase = phase;
    if (!cm || !cm->model || !cm->calib || phase >= cost_n_phases(cm->model)) return;
    const ModelSpec *m = cm->model;
    const Calib *c = cm->calib;
    const StackSpec *s = phase_stack(m, phase);
    LayerGemms g = layer_gemms(s);
    double M = COST_REF_TOKENS, lf = 0, lb = 0, hf = 0, hb = 0;
    for (int k = 0; k < 4; k++) weight_gemm(c, M, g.k[k], g.n[k], &lf, &lb);
    if (s->vocab) weight_gemm(c, M, s->hidden, s->vocab, &hf, &hb);
    MemTraffic mt = stack_mem_traffic(s, m->act_bytes);
    double L = s->layers, bw = c->hbm_bw;
    double per = L * (lf + lb) + hf + hb + (L * (mt.layer_fwd + mt.layer_bwd) + mt.stack_fwd + mt.stack_bwd) * M / bw;
    if (cm->recompute == RECOMPUTE_FULL) per += L * (lf + mt.layer_fwd * M / bw);
    u->lin = per / M;
    if (phase < m->n_enc) {
        double r = m->enc[phase].ratio, lh = m->llm.hidden, Mo = M / r, pf = 0, pb = 0;
        weight_gemm(c, Mo, r * s->hidden, lh, &pf, &pb);
        weight_gemm(c, Mo, lh, lh, &pf, &pb);
        u->proj = (pf + pb + Mo * 5 * lh * m->act_bytes / bw) / Mo;
    }
    u->ok = 1;
}

double cost_unit_eval(const CostUnit *u, uint32_t len) {
    if (!u->ok || len == 0) return 0;
    const CostModel *cm = u->cm;
    const ModelSpec *m = cm->model;
    int enc = u->phase < m->n_enc;
    double e = enc ? cost_item_enc_len(m, u->phase, len) : len;
    double outs = enc ? cost_item_llm_tokens(m, u->phase, len) : 0;
    double af, ab;
    attn_unit(cm, u->phase, e, &af, &ab);
    double L = phase_stack(m, u->phase)->layers;
    double attn = L * (af + ab + (cm->recompute != RECOMPUTE_NONE ? af : 0));
    return u->lin * e + u->proj * outs + attn;
}

double cost_unit_seconds(const CostModel *cm, uint32_t phase, uint32_t len) {
    CostUnit u;
    cost_unit_prepare(&u, cm, phase);
    return cost_unit_eval(&u, len);
}

void cost_unit_coeffs(const CostModel *cm, uint32_t phase, double *a, double *c) {
    *a = *c = 0;
    CostUnit u;
    cost_unit_prepare(&u, cm, phase);
    if (!u.ok) return;
    const ModelSpec *m = cm->model;
    const StackSpec *s = phase_stack(m, phase);
    double r = phase < m->n_enc ? m->enc[phase].ratio : 1.0;
    *a = u.lin + u.proj / r;
    /* long-sequence attention rates */
    uint32_t hd = s->hidden / s->heads;
    double f1 = attn_exec_flops(s, 1.0) * s->layers;
    double rf = calib_attn_rate(cm->calib, ATTN_FWD, s->causal, hd, 1e8);
    double rb = calib_attn_rate(cm->calib, ATTN_BWD, s->causal, hd, 1e8);
    *c = f1 / rf * (1 + (cm->recompute != RECOMPUTE_NONE)) + ATTN_BWD_FLOP_RATIO * f1 / rb;
}
