/* dops.c — op lists of the text-to-image models and their time. See dops.h.
 *
 * Shapes per sample (positions P = H x W of the level, a = 2 bytes per fp16 activation):
 *  - convolution cin -> cout, k x k: an implicit GEMM M = P, N = cout, K = cin k^2 (CUTLASS
 *    "Implicit GEMM Convolution"); the bias is a separate add (PyTorch adds a conv's bias after
 *    the cuDNN call), linear layers fuse theirs into the GEMM epilogue.
 *  - attention: per sample and head, QK^T and PV: 2 q kv hdim multiply-adds; executed FLOPs in
 *    FlashAttention's convention 4 q kv hdim per head (halved when causal), priced at
 *    calib_attn_rate of min(q, kv) (the shorter side bounds a tile's work: 77 text keys, one
 *    decoded query).
 *  - memory-bound bytes per position (forward; backward in parentheses), as cost.c counts them
 *    for transformers (stack_mem_traffic) and, for the convolutional blocks, the same rules:
 *    GroupNorm / LayerNorm read + write 2 (5), SiLU / GELU 2 (3), residual add 3 (3), a bias or
 *    time-embedding add 2 (1: the reduction of its gradient), GEGLU read 2f write f = 3f (5f),
 *    skip concatenation 2 (2) of the concatenated width, nearest upsampling 1.25 (1.25) of the
 *    output, NCHW <-> tokens transposes 2 (2) each way.
 * Not modelled: the sampler's update and the CFG combine (a few element-wise ops over the
 * 4 x H/8 x W/8 latent per step, < 0.1% of a UNet pass), the time-step sinusoid, tokenizers. */
#include "sim/diffusion/dops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define ACT 2.0 /* bytes per fp16/bf16 activation */
/* FlashAttention's backward does 2.5x the forward's FLOPs (cost.c's ATTN_BWD_FLOP_RATIO). */
#define DOPS_ATTN_BWD_RATIO 2.5

void dops_init(DopList *l) { memset(l, 0, sizeof *l); }
void dops_free(DopList *l) {
    if (!l) return;
    free(l->op);
    dops_init(l);
}

static OsStatus push(DopList *l, Dop o) {
    OsStatus st = OS_OK;
    if (l->n == l->cap) {
        size_t cap = l->cap;
        void *p = l->op;
        OS_CHECK(os_grow(&p, &cap, (size_t)l->n + 1, sizeof(Dop)));
        l->op = p;
        l->cap = (uint32_t)cap;
    }
    l->op[l->n++] = o;
fail:
    return st;
}

static OsStatus gemm(DopList *l, DopBlock b, double m, double n, double k, double count) {
    return push(l, (Dop){.kind = DOP_GEMM, .block = (uint8_t)b, .count = count, .m = m, .n = n, .k = k});
}
/* A k x k convolution: implicit GEMM, plus its bias add. A 1x1 convolution is a GEMM (but
 * still a convolution for the MAC breakdown). */
static OsStatus conv(DopList *l, double P, double cin, double cout, double kk, double count) {
    OsStatus st = OS_OK;
    OS_CHECK(push(l, (Dop){.kind = kk > 1 ? DOP_CONV : DOP_GEMM, .block = DB_CONV, .count = count, .m = P, .n = cout,
                           .k = cin * kk * kk}));
    OS_CHECK(push(l, (Dop){.kind = DOP_MEM, .block = DB_CONV, .count = count, .bytes_f = 2 * ACT * P * cout,
                           .bytes_b = ACT * P * cout, .kern_f = 1, .kern_b = 1}));
fail:
    return st;
}
static OsStatus attn(DopList *l, DopBlock b, double q, double kv, uint32_t heads, uint32_t hdim, int causal,
                     double count) {
    return push(l, (Dop){.kind = DOP_ATTN, .block = (uint8_t)b, .causal = (uint8_t)causal, .heads = heads,
                         .hdim = hdim, .count = count, .q = q, .kv = kv});
}
/* elems: per-position element factors (forward, backward) times the width */
static OsStatus mem(DopList *l, DopBlock b, double P, double ef, double eb, uint32_t kf, uint32_t kb, double count) {
    return push(l, (Dop){.kind = DOP_MEM, .block = (uint8_t)b, .count = count, .bytes_f = ACT * P * ef,
                         .bytes_b = ACT * P * eb, .kern_f = kf, .kern_b = kb});
}

/* ---- the SD UNet (ldm openaimodel.UNetModel) ------------------------------------------- */

/* ResBlock cin -> cout at P positions: GN, SiLU, conv3x3, + time embedding, GN, SiLU, conv3x3,
 * 1x1 skip when the width changes, residual add. */
static OsStatus unet_res(DopList *l, const DmUNet *u, double P, double ci, double co) {
    OsStatus st = OS_OK;
    OS_CHECK(mem(l, DB_CONV, P, 4 * ci, 8 * ci, 2, 2, 1));          /* GN + SiLU on the input */
    OS_CHECK(conv(l, P, ci, co, 3, 1));
    OS_CHECK(gemm(l, DB_OTHER, 1, co, u->temb, 1));                 /* emb_layers Linear */
    OS_CHECK(mem(l, DB_CONV, P, 2 * co + 4 * co, co + 8 * co, 3, 3, 1)); /* emb add, GN + SiLU */
    OS_CHECK(conv(l, P, co, co, 3, 1));
    if (ci != co) OS_CHECK(conv(l, P, ci, co, 1, 1));
    OS_CHECK(mem(l, DB_CONV, P, 3 * co, 3 * co, 1, 1, 1));          /* residual add */
fail:
    return st;
}

/* SpatialTransformer of width C over P tokens: GN, proj_in, depth x (LN + self-attention,
 * LN + cross-attention to the context, LN + GEGLU), proj_out, residual. */
static OsStatus unet_st(DopList *l, const DmUNet *u, double P, double C) {
    OsStatus st = OS_OK;
    uint32_t hd = u->head_dim ? u->head_dim : (uint32_t)C / u->heads;
    uint32_t nh = u->head_dim ? (uint32_t)C / u->head_dim : u->heads;
    double d = u->depth, ctx = u->context_len;
    OS_CHECK(mem(l, DB_PROJ, P, 2 * C + 4 * C, 5 * C + 4 * C, 3, 3, 1)); /* GN, two transposes */
    if (u->linear_proj) OS_CHECK(gemm(l, DB_PROJ, P, C, C, 2));
    else {
        OS_CHECK(gemm(l, DB_PROJ, P, C, C, 2));                          /* 1x1 convs = GEMMs */
        OS_CHECK(mem(l, DB_PROJ, P, 2 * 2 * C, 2 * C, 2, 2, 1));         /* their bias adds */
    }
    OS_CHECK(gemm(l, DB_PROJ, P, C, C, 4 * d));                          /* attn1 q, k, v, out */
    OS_CHECK(attn(l, DB_SELF_ATTN, P, P, nh, hd, 0, d));
    OS_CHECK(gemm(l, DB_PROJ, P, C, C, 2 * d));                          /* attn2 q, out */
    OS_CHECK(gemm(l, DB_PROJ, ctx, C, u->context_dim, 2 * d));           /* attn2 k, v on the text */
    OS_CHECK(attn(l, DB_CROSS_ATTN, P, ctx, nh, hd, 0, d));
    OS_CHECK(gemm(l, DB_FF, P, 8 * C, C, d));                            /* GEGLU in: C -> 2 x 4C */
    OS_CHECK(gemm(l, DB_FF, P, C, 4 * C, d));
    /* per block: 3 LayerNorms, 3 residual adds, GEGLU's gate; then the outer residual */
    OS_CHECK(mem(l, DB_FF, P, 3 * 2 * C + 3 * 3 * C + 3 * 4 * C, 3 * 5 * C + 3 * 3 * C + 5 * 4 * C, 7, 7, d));
    OS_CHECK(mem(l, DB_PROJ, P, 3 * C, 3 * C, 1, 1, 1));
fail:
    return st;
}

static OsStatus unet_build(DopList *l, const DmUNet *u, double h0, double w0) {
    OsStatus st = OS_OK;
    double chans[4 * DM_MAX_LEVELS + 2], ch = u->base_ch, h = h0, w = w0;
    int nc = 0;
    OS_CHECK(gemm(l, DB_OTHER, 1, u->temb, u->base_ch, 1)); /* time MLP */
    OS_CHECK(gemm(l, DB_OTHER, 1, u->temb, u->temb, 1));
    OS_CHECK(conv(l, h * w, u->in_ch, ch, 3, 1));
    chans[nc++] = ch;
    for (uint32_t lv = 0; lv < u->n_levels; lv++) {
        for (uint32_t i = 0; i < u->res_blocks; i++) {
            double co = (double)u->mult[lv] * u->base_ch;
            OS_CHECK(unet_res(l, u, h * w, ch, co));
            if (u->attn[lv]) OS_CHECK(unet_st(l, u, h * w, co));
            chans[nc++] = ch = co;
        }
        if (lv + 1 < u->n_levels) {
            h /= 2, w /= 2; /* stride-2 conv: output positions */
            OS_CHECK(conv(l, h * w, ch, ch, 3, 1));
            chans[nc++] = ch;
        }
    }
    OS_CHECK(unet_res(l, u, h * w, ch, ch));
    OS_CHECK(unet_st(l, u, h * w, ch));
    OS_CHECK(unet_res(l, u, h * w, ch, ch));
    for (uint32_t lv = u->n_levels; lv-- > 0;) {
        for (uint32_t i = 0; i <= u->res_blocks; i++) {
            double co = (double)u->mult[lv] * u->base_ch, skip = chans[--nc];
            OS_CHECK(mem(l, DB_CONV, h * w, 2 * (ch + skip), 2 * (ch + skip), 1, 1, 1)); /* torch.cat */
            OS_CHECK(unet_res(l, u, h * w, ch + skip, co));
            if (u->attn[lv]) OS_CHECK(unet_st(l, u, h * w, co));
            ch = co;
        }
        if (lv) {
            h *= 2, w *= 2;
            OS_CHECK(mem(l, DB_CONV, h * w, 1.25 * ch, 1.25 * ch, 1, 1, 1)); /* nearest 2x */
            OS_CHECK(conv(l, h * w, ch, ch, 3, 1));
        }
    }
    OS_CHECK(mem(l, DB_CONV, h * w, 4 * ch, 8 * ch, 2, 2, 1)); /* GN + SiLU */
    OS_CHECK(conv(l, h * w, ch, u->out_ch, 3, 1));
fail:
    return st;
}

/* ---- the KL-f8 decoder (ldm/taming Decoder) -------------------------------------------- */

static OsStatus vae_res(DopList *l, double P, double ci, double co) {
    OsStatus st = OS_OK;
    OS_CHECK(mem(l, DB_CONV, P, 4 * ci, 8 * ci, 2, 2, 1));
    OS_CHECK(conv(l, P, ci, co, 3, 1));
    OS_CHECK(mem(l, DB_CONV, P, 4 * co, 8 * co, 2, 2, 1));
    OS_CHECK(conv(l, P, co, co, 3, 1));
    if (ci != co) OS_CHECK(conv(l, P, ci, co, 1, 1));
    OS_CHECK(mem(l, DB_CONV, P, 3 * co, 3 * co, 1, 1, 1));
fail:
    return st;
}

static OsStatus vae_build(DopList *l, const DmVae *v, double h, double w) {
    OsStatus st = OS_OK;
    double top = (double)v->base_ch * v->mult[v->n_levels - 1], ch = top;
    OS_CHECK(conv(l, h * w, v->z_ch, v->z_ch, 1, 1)); /* post_quant_conv */
    OS_CHECK(conv(l, h * w, v->z_ch, top, 3, 1));
    OS_CHECK(vae_res(l, h * w, top, top));
    if (v->mid_attn) { /* one head of width C over every position; q, k, v, out are 1x1 convs */
        OS_CHECK(mem(l, DB_PROJ, h * w, 2 * top, 5 * top, 1, 1, 1));
        OS_CHECK(gemm(l, DB_PROJ, h * w, top, top, 4));
        OS_CHECK(mem(l, DB_PROJ, h * w, 4 * 2 * top + 3 * top, 4 * top + 3 * top, 5, 5, 1));
        OS_CHECK(attn(l, DB_SELF_ATTN, h * w, h * w, 1, (uint32_t)top, 0, 1));
    }
    OS_CHECK(vae_res(l, h * w, top, top));
    for (uint32_t lv = v->n_levels; lv-- > 0;) {
        double co = (double)v->base_ch * v->mult[lv];
        for (uint32_t i = 0; i <= v->res_blocks; i++) {
            OS_CHECK(vae_res(l, h * w, ch, co));
            ch = co;
        }
        if (lv) {
            h *= 2, w *= 2;
            OS_CHECK(mem(l, DB_CONV, h * w, 1.25 * ch, 1.25 * ch, 1, 1, 1));
            OS_CHECK(conv(l, h * w, ch, ch, 3, 1));
        }
    }
    OS_CHECK(mem(l, DB_CONV, h * w, 4 * ch, 8 * ch, 2, 2, 1));
    OS_CHECK(conv(l, h * w, ch, v->out_ch, 3, 1));
fail:
    return st;
}

/* ---- transformers ------------------------------------------------------------------------ */

/* Memory-bound traffic of one layer, as cost.c counts a pre-norm, biased, GELU transformer. */
static MemTraffic tf_mem(double h, double f, uint32_t heads, int causal) {
    StackSpec s = {.layers = 1, .hidden = (uint32_t)h, .ffn = (uint32_t)f, .heads = heads, .kv_heads = heads,
                   .gated_mlp = 0, .causal = (uint8_t)causal, .bias = 1, .norm = NORM_LAYER, .pos = POS_NONE};
    return stack_mem_traffic(&s, (uint32_t)ACT);
}

/* `layers` pre-norm layers of width h over T tokens (m rows per sample = T), self-attention. */
static OsStatus tf_layers(DopList *l, double T, double h, double f, uint32_t heads, int causal, double layers) {
    OsStatus st = OS_OK;
    MemTraffic mt = tf_mem(h, f, heads, causal);
    OS_CHECK(gemm(l, DB_PROJ, T, 3 * h, h, layers));
    OS_CHECK(attn(l, DB_SELF_ATTN, T, T, heads, (uint32_t)h / heads, causal, layers));
    OS_CHECK(gemm(l, DB_PROJ, T, h, h, layers));
    OS_CHECK(gemm(l, DB_FF, T, f, h, layers));
    OS_CHECK(gemm(l, DB_FF, T, h, f, layers));
    OS_CHECK(push(l, (Dop){.kind = DOP_MEM, .block = DB_FF, .count = layers, .bytes_f = T * mt.layer_fwd,
                           .bytes_b = T * mt.layer_bwd, .kern_f = mt.kernels_layer_fwd, .kern_b = mt.kernels_layer_bwd}));
fail:
    return st;
}

static OsStatus tf_build(DopList *l, const DmTf *t) {
    OsStatus st = OS_OK;
    double T = dm_tf_tokens(t), h = t->hidden;
    if (t->patch) OS_CHECK(gemm(l, DB_OTHER, T - 1, h, 3.0 * t->patch * t->patch, 1)); /* patchify */
    OS_CHECK(mem(l, DB_OTHER, T, 3 * h + (t->patch ? 2 * h : 0), 4 * h, 2, 2, 1)); /* embed + positions [+ ln_pre] */
    OS_CHECK(tf_layers(l, T, h, t->ffn, t->heads, t->causal, dm_tf_run_layers(t)));
    OS_CHECK(mem(l, DB_OTHER, T, 2 * h, 5 * h, 1, 1, 1)); /* final LayerNorm */
    if (t->proj) OS_CHECK(gemm(l, DB_OTHER, 1, t->proj, h, 1)); /* pooled token's projection */
fail:
    return st;
}

/* DiT blocks with adaLN-Zero: per block a modulation h -> 6h per sample, shift/scale/gate
 * element-wise ops (4h forward beyond a plain block), optional cross-attention. */
static OsStatus dit_build(DopList *l, const DmDiT *d, double hl, double wl) {
    OsStatus st = OS_OK;
    double T = (hl / d->patch) * (wl / d->patch), h = d->hidden, L = d->layers, f = (double)d->mlp_ratio * h;
    OS_CHECK(gemm(l, DB_OTHER, T, h, (double)d->in_ch * d->patch * d->patch, 1)); /* patchify: a GEMM */
    OS_CHECK(gemm(l, DB_OTHER, 1, h, 256, 1));                                     /* timestep MLP */
    OS_CHECK(gemm(l, DB_OTHER, 1, h, h, 1));
    OS_CHECK(gemm(l, DB_OTHER, 1, 6 * h, h, L));                                   /* adaLN */
    OS_CHECK(tf_layers(l, T, h, f, d->heads, 0, L));
    OS_CHECK(mem(l, DB_OTHER, T, 4 * 2 * h, 4 * 3 * h, 4, 4, L));                  /* modulate x2, gate x2 */
    if (d->context_dim) {
        OS_CHECK(gemm(l, DB_PROJ, T, h, h, 2 * L));
        OS_CHECK(gemm(l, DB_PROJ, d->context_len, h, d->context_dim, 2 * L));
        OS_CHECK(attn(l, DB_CROSS_ATTN, T, d->context_len, d->heads, (uint32_t)h / d->heads, 0, L));
        OS_CHECK(mem(l, DB_PROJ, T, 2 * h + 3 * h, 5 * h + 3 * h, 2, 2, L));
    }
    OS_CHECK(gemm(l, DB_OTHER, 1, 2 * h, h, 1)); /* final adaLN and linear */
    OS_CHECK(gemm(l, DB_OTHER, T, (double)d->patch * d->patch * d->out_ch, h, 1));
    OS_CHECK(mem(l, DB_OTHER, T, 4 * h, 8 * h, 2, 2, 1));
fail:
    return st;
}

/* BLIP: the ViT once per image, then new_tokens decoding steps of `beams` sequences with a KV
 * cache: per step and layer the q/k/v/o, cross-attention q/o and FFN GEMMs on `beams` rows,
 * self-attention over the tokens so far (on average (T+1)/2), cross-attention over the image
 * tokens, whose keys and values are projected once per caption; the LM head every step. */
static OsStatus cap_build(DopList *l, const DmCaption *c) {
    OsStatus st = OS_OK;
    const DmTf *t = &c->text;
    double Ti = dm_tf_tokens(&c->vision), B = c->beams, S = c->new_tokens, h = t->hidden, L = t->layers;
    OS_CHECK(tf_build(l, &c->vision));
    OS_CHECK(gemm(l, DB_PROJ, Ti * B, h, c->vision.hidden, 2 * L)); /* cross k, v of the image tokens */
    double steps = S * L;
    MemTraffic mt = tf_mem(h, t->ffn, t->heads, 1);
    OS_CHECK(gemm(l, DB_PROJ, B, 3 * h, h, steps));
    OS_CHECK(gemm(l, DB_PROJ, B, h, h, 3 * steps)); /* self o, cross q, cross o */
    /* one query per beam and step */
    OS_CHECK(attn(l, DB_SELF_ATTN, 1, (S + 1) / 2, t->heads, (uint32_t)h / t->heads, 0, steps * B));
    OS_CHECK(attn(l, DB_CROSS_ATTN, 1, Ti, t->heads, (uint32_t)h / t->heads, 0, steps * B));
    OS_CHECK(gemm(l, DB_FF, B, t->ffn, h, steps));
    OS_CHECK(gemm(l, DB_FF, B, h, t->ffn, steps));
    OS_CHECK(push(l, (Dop){.kind = DOP_MEM, .block = DB_FF, .count = steps, .bytes_f = B * (mt.layer_fwd + ACT * 5 * h),
                           .bytes_b = B * (mt.layer_bwd + ACT * 8 * h), .kern_f = mt.kernels_layer_fwd + 2,
                           .kern_b = mt.kernels_layer_bwd + 2}));
    OS_CHECK(gemm(l, DB_OTHER, B, t->vocab, h, S)); /* LM head */
    OS_CHECK(mem(l, DB_OTHER, B * t->vocab, 3, 3, 2, 2, S)); /* softmax + beam top-k over the logits */
fail:
    return st;
}

OsStatus dops_build(DopList *l, const DiffModel *m, uint32_t width, uint32_t height) {
    OsStatus st = OS_OK;
    l->n = 0;
    l->model = m;
    l->width = l->height = 0;
    if (m->kind == DM_UNET || m->kind == DM_DIT || m->kind == DM_VAE) {
        uint32_t q = dm_res_multiple(m);
        if (!width || !height || width % q || height % q)
            OS_FAIL(OS_ERR_ARG, m->name, "resolution", "use a multiple of the latent factor times the downsampling",
                    "%ux%u is not a multiple of %u (the VAE's %u x the model's downsampling)", width, height, q,
                    m->latent_factor);
        l->width = width, l->height = height;
    }
    double hl = (double)height / (m->latent_factor ? m->latent_factor : 1);
    double wl = (double)width / (m->latent_factor ? m->latent_factor : 1);
    switch (m->kind) {
    case DM_UNET: OS_CHECK(unet_build(l, &m->u.unet, hl, wl)); break;
    case DM_DIT: OS_CHECK(dit_build(l, &m->u.dit, hl, wl)); break;
    case DM_VAE: OS_CHECK(vae_build(l, &m->u.vae, hl, wl)); break;
    case DM_TEXT:
    case DM_VIT: OS_CHECK(tf_build(l, &m->u.tf)); break;
    case DM_CAPTION: OS_CHECK(cap_build(l, &m->u.cap)); break;
    case DM_CNN: {
        const DmCnn *c = &m->u.cnn;
        OS_CHECK(push(l, (Dop){.kind = DOP_CONV, .block = DB_OTHER, .count = 1, .m = c->m, .n = c->n,
                               .k = c->macs / (c->m * c->n)}));
        break;
    }
    default: OS_FAIL(OS_ERR_ARG, m->name, "kind", NULL, "unknown model kind %d", (int)m->kind);
    }
fail:
    return st;
}

double dops_macs(const DopList *l, double *by_block) {
    double tot = 0;
    if (by_block) memset(by_block, 0, DB_N * sizeof *by_block);
    for (uint32_t i = 0; i < l->n; i++) {
        const Dop *o = &l->op[i];
        double v = 0;
        if (o->kind == DOP_GEMM || o->kind == DOP_CONV) v = o->m * o->n * o->k * o->count;
        else if (o->kind == DOP_ATTN) v = 2.0 * o->q * o->kv * o->heads * o->hdim * o->count;
        tot += v;
        if (by_block) by_block[o->block] += v;
    }
    return tot;
}

double dops_conv_frac(const Calib *c) { return c && c->conv_frac > 0 ? c->conv_frac : DOPS_CONV_FRAC_DEFAULT; }

static double gemm_s(const Calib *c, double M, double N, double K, double frac) {
    double f = 2.0 * M * N * K;
    return f > 0 ? f / (calib_gemm_rate(c, M, N, K) * frac) : 0;
}

void dops_time(DopTime *t, const DopList *l, const Calib *c, double batch, int backward) {
    memset(t, 0, sizeof *t);
    double cf = dops_conv_frac(c);
    for (uint32_t i = 0; i < l->n; i++) {
        const Dop *o = &l->op[i];
        double f = 0, b = 0, fl = 0;
        switch (o->kind) {
        case DOP_GEMM:
        case DOP_CONV: {
            double M = batch * o->m, fr = o->kind == DOP_CONV ? cf : 1.0;
            f = gemm_s(c, M, o->n, o->k, fr) * o->count;
            fl = 2.0 * M * o->n * o->k * o->count;
            if (backward) /* data gradient M x K (reduce N), weight gradient N x K (reduce M) */
                b = (gemm_s(c, M, o->k, o->n, fr) + gemm_s(c, o->n, o->k, M, fr)) * o->count;
            if (o->kind == DOP_CONV) t->conv_s += f + b;
            else t->gemm_s += f + b;
            break;
        }
        case DOP_ATTN: {
            double len = fmin(o->q, o->kv);
            fl = 4.0 * batch * o->q * o->kv * o->heads * o->hdim * (o->causal ? 0.5 : 1.0) * o->count;
            if (fl > 0) f = fl / calib_attn_rate(c, ATTN_FWD, o->causal, o->hdim, len);
            if (backward && fl > 0) b = DOPS_ATTN_BWD_RATIO * fl / calib_attn_rate(c, ATTN_BWD, o->causal, o->hdim, len);
            t->attn_s += f + b;
            break;
        }
        case DOP_MEM:
            f = (batch * o->bytes_f / c->hbm_bw + o->kern_f * c->kernel_launch_s) * o->count;
            if (backward) b = (batch * o->bytes_b / c->hbm_bw + o->kern_b * c->kernel_launch_s) * o->count;
            t->mem_s += f + b;
            break;
        default: break;
        }
        t->fwd_s += f;
        t->bwd_s += b;
        t->flops += fl * (backward ? 3.0 : 1.0);
    }
}
