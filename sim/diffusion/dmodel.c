/* dmodel.c — the text-to-image model registry and parameter counts. See dmodel.h.
 * Every preset cites its configuration; CPDM.md is ../shared/CPDM.md. Parameter counts are
 * checked against published totals in tests/test_diffusion.c (SD 1.4 UNet 859,520,964; SD 2.x
 * UNet 865,910,724; KL-f8 decoder 49,490,199 with post_quant_conv; CLIP-L text 123,060,480;
 * SD 2.x text encoder 340,387,840; OpenCLIP ViT-H/14 visual 632,076,800; DiT-XL/2 675,129,632). */
#include "sim/diffusion/dmodel.h"

#include <string.h>

#include "base/util.h"

/* CLIP ViT-L/14 text transformer (OpenAI CLIP, as SD 1.x's FrozenCLIPEmbedder loads it:
 * openai/clip-vit-large-patch14): 12 layers, width 768, 12 heads, MLP 3072, 77 tokens, causal
 * mask; SD conditions on the last hidden state (no projection). CPDM.md "Model shapes". */
#define CLIP_L_TEXT {.layers = 12, .hidden = 768, .heads = 12, .ffn = 3072, .tokens = 77, .vocab = 49408, .causal = 1}
/* OpenCLIP ViT-H/14 text tower (open_clip model_configs/ViT-H-14.json: text width 1024, 16
 * heads, 24 layers, context 77, vocab 49408; MLP ratio 4). CPDM.md "Model shapes". */
#define OPENCLIP_H_TEXT {.layers = 24, .hidden = 1024, .heads = 16, .ffn = 4096, .tokens = 77, .vocab = 49408, .causal = 1}

static const DiffModel MODELS[] = {
    /* ---- denoisers ---- */
    {.name = "sd14",
     .desc = "Stable Diffusion 1.4 UNet (epsilon), 512^2, CLIP ViT-L/14 text conditioning",
     .source = "CompVis/stable-diffusion configs/stable-diffusion/v1-inference.yaml",
     .kind = DM_UNET, .native_res = 512, .latent_factor = 8, .text_encoder = "clip-l-text", .vae = "kl-f8",
     /* model_channels 320, channel_mult [1,2,4,4], num_res_blocks 2, attention_resolutions
      * [4,2,1] (the three upper levels), num_heads 8, transformer_depth 1, context_dim 768,
      * in/out channels 4; use_linear_in_transformer absent: proj_in/out are 1x1 convs */
     .u.unet = {.in_ch = 4, .out_ch = 4, .base_ch = 320, .n_levels = 4, .res_blocks = 2, .mult = {1, 2, 4, 4},
                .attn = {1, 1, 1, 0}, .heads = 8, .head_dim = 0, .depth = 1, .context_dim = 768,
                .context_len = 77, .temb = 1280, .linear_proj = 0}},
    {.name = "sd21-768",
     .desc = "Stable Diffusion 2.1-768 UNet (v-prediction), 768^2, OpenCLIP ViT-H/14 text (penultimate layer)",
     .source = "Stability-AI/stablediffusion configs/stable-diffusion/v2-inference-v.yaml",
     .kind = DM_UNET, .native_res = 768, .latent_factor = 8, .text_encoder = "openclip-h-text-sd", .vae = "kl-f8",
     /* as SD 1.x but num_head_channels 64 (5/10/20 heads), use_linear_in_transformer True,
      * context_dim 1024 (CPDM.md: 9,216 / 2,304 / 576 tokens at 768^2) */
     .u.unet = {.in_ch = 4, .out_ch = 4, .base_ch = 320, .n_levels = 4, .res_blocks = 2, .mult = {1, 2, 4, 4},
                .attn = {1, 1, 1, 0}, .heads = 0, .head_dim = 64, .depth = 1, .context_dim = 1024,
                .context_len = 77, .temb = 1280, .linear_proj = 1}},
    {.name = "dit-xl2",
     .desc = "DiT-XL/2 transformer denoiser (class-conditional), 256^2: no convolutions but the patchify",
     .source = "Peebles & Xie, arXiv 2212.09748, Table 1 (XL: 28 layers, 1152 wide, 16 heads), patch 2",
     .kind = DM_DIT, .native_res = 256, .latent_factor = 8, .text_encoder = NULL, .vae = "kl-f8",
     /* learn_sigma: 8 output channels; 1000 classes + 1 null class for guidance */
     .u.dit = {.layers = 28, .hidden = 1152, .heads = 16, .patch = 2, .in_ch = 4, .out_ch = 8, .mlp_ratio = 4,
               .context_dim = 0, .context_len = 0, .n_classes = 1001}},
    /* ---- decoder ---- */
    {.name = "kl-f8",
     .desc = "KL-f8 VAE decoder (SD 1.x/2.x first stage): 4-channel latent -> RGB",
     .source = "v1-inference.yaml / v2-inference-v.yaml first_stage_config ddconfig",
     .kind = DM_VAE, .native_res = 512, .latent_factor = 8,
     /* ch 128, ch_mult [1,2,4,4], num_res_blocks 2, z_channels 4, attn_resolutions [] (the mid
      * block keeps its one attention), out_ch 3 */
     .u.vae = {.z_ch = 4, .base_ch = 128, .n_levels = 4, .res_blocks = 2, .out_ch = 3, .mult = {1, 2, 4, 4},
               .mid_attn = 1}},
    /* ---- text encoders ---- */
    {.name = "clip-l-text", .desc = "CLIP ViT-L/14 text transformer (SD 1.x conditioning), 77 tokens",
     .source = "openai/clip-vit-large-patch14; CPDM.md 12 layers, width 768", .kind = DM_TEXT, .u.tf = CLIP_L_TEXT},
    {.name = "openclip-h-text", .desc = "OpenCLIP ViT-H/14 text tower with projection (interrogation), 77 tokens",
     .source = "open_clip ViT-H-14 laion2b_s32b_b79k; CPDM.md 24 layers, width 1024", .kind = DM_TEXT,
     .u.tf = {.layers = 24, .hidden = 1024, .heads = 16, .ffn = 4096, .tokens = 77, .vocab = 49408, .causal = 1,
              .proj = 1024}},
    {.name = "openclip-h-text-sd", .desc = "OpenCLIP ViT-H/14 text tower to its penultimate layer (SD 2.x conditioning)",
     .source = "v2-inference-v.yaml cond_stage_config FrozenOpenCLIPEmbedder layer: penultimate", .kind = DM_TEXT,
     .u.tf = {.layers = 24, .run_layers = 23, .hidden = 1024, .heads = 16, .ffn = 4096, .tokens = 77, .vocab = 49408,
              .causal = 1}},
    /* ---- image encoders ---- */
    {.name = "clip-vit-l14", .desc = "CLIP ViT-L/14 image tower at 224 px (scoring), 257 tokens",
     .source = "openai/clip-vit-large-patch14; CPDM.md 24 layers, width 1024", .kind = DM_VIT,
     .u.tf = {.layers = 24, .hidden = 1024, .heads = 16, .ffn = 4096, .image = 224, .patch = 14, .proj = 768}},
    {.name = "openclip-vit-h14", .desc = "OpenCLIP ViT-H/14 image tower at 224 px (interrogation), 257 tokens",
     .source = "open_clip model_configs/ViT-H-14.json (vision width 1280, 32 layers, head width 80, embed 1024)",
     .kind = DM_VIT,
     .u.tf = {.layers = 32, .hidden = 1280, .heads = 16, .ffn = 5120, .image = 224, .patch = 14, .proj = 1024}},
    /* ---- captioner ---- */
    {.name = "blip-large", .desc = "BLIP-large captioner: ViT-L/16 at 384 px + BERT-base decoder, 32 tokens, 8 beams",
     /* blip_decoder(vit='large', image_size=384): vision width 1024, depth 24, 16 heads, patch
      * 16 -> 577 tokens; configs/med_config.json: BERT-base (768, 12 layers, 12 heads, 3072,
      * vocab 30524) with cross-attention to the 1024-wide image tokens. clip-interrogator
      * (pharmapsychotic, commit 1221871) Config: blip_max_length 32, blip_num_beams 8. */
     .source = "salesforce/BLIP models/blip.py + configs/med_config.json; clip-interrogator Config",
     .kind = DM_CAPTION,
     .u.cap = {.vision = {.layers = 24, .hidden = 1024, .heads = 16, .ffn = 4096, .image = 384, .patch = 16},
               .text = {.layers = 12, .hidden = 768, .heads = 12, .ffn = 3072, .tokens = 32, .vocab = 30524,
                        .causal = 1},
               .new_tokens = 32, .beams = 8}},
    /* ---- lumped CNN ---- */
    {.name = "inception-v3", .desc = "InceptionV3 at 299 px (CPDM's Gram-matrix score), lumped",
     /* torchvision's model table: 27,161,264 parameters, 5.71 "GFLOPS" (that column counts
      * multiply-adds: ResNet-50 is 4.09 there). Priced as one implicit GEMM at a mid-network
      * shape (35x35 positions, 288 channels): an estimate, < 0.2% of CPDM (CPDM.md). */
     .source = "torchvision.models.inception_v3 metrics", .kind = DM_CNN,
     .u.cnn = {.macs = 5.71e9, .params = 27161264, .image = 299, .m = 35 * 35, .n = 288}},
};

uint32_t dm_count(void) { return (uint32_t)OS_ARRAY_LEN(MODELS); }
const DiffModel *dm_at(uint32_t i) { return i < dm_count() ? &MODELS[i] : NULL; }

const DiffModel *dm_find(const char *name) {
    if (!name) return NULL;
    for (uint32_t i = 0; i < dm_count(); i++)
        if (!strcmp(MODELS[i].name, name)) return &MODELS[i];
    return NULL;
}

const char *dm_suggest(const char *name) {
    const char *best = NULL;
    int bd = 1 << 30;
    if (!name) return NULL;
    for (uint32_t i = 0; i < dm_count(); i++) {
        int d = os_edit_distance(name, MODELS[i].name);
        if (d < bd) bd = d, best = MODELS[i].name;
    }
    int lim = (int)strlen(name) / 3 > 2 ? (int)strlen(name) / 3 : 2;
    return bd <= lim ? best : NULL;
}

const char *dm_kind_name(DmKind k) {
    static const char *const N[DM_N_KINDS] = {"unet", "dit", "vae", "text", "vit", "caption", "cnn"};
    return (unsigned)k < DM_N_KINDS ? N[k] : "?";
}

int dm_is_denoiser(const DiffModel *m) { return m->kind == DM_UNET || m->kind == DM_DIT; }

uint32_t dm_res_multiple(const DiffModel *m) {
    switch (m->kind) {
    case DM_UNET: return m->latent_factor << (m->u.unet.n_levels - 1);
    case DM_DIT: return m->latent_factor * m->u.dit.patch;
    case DM_VAE: return m->latent_factor;
    default: return 1;
    }
}

uint32_t dm_tf_tokens(const DmTf *t) {
    if (t->patch) return (t->image / t->patch) * (t->image / t->patch) + 1;
    return t->tokens;
}

uint32_t dm_tf_run_layers(const DmTf *t) { return t->run_layers ? t->run_layers : t->layers; }

/* ---- parameter counts ------------------------------------------------------------------ */

static double conv_p(double ci, double co, double k) { return ci * co * k * k + co; }
static double lin_p(double i, double o, int bias) { return i * o + (bias ? o : 0); }

/* One pre-norm transformer layer with biases everywhere: attention 4 (h^2 + h), MLP
 * h f + f + f h + h, two LayerNorms 4h. */
static double tf_layer_p(double h, double f) { return 4 * (h * h + h) + lin_p(h, f, 1) + lin_p(f, h, 1) + 4 * h; }

static double tf_p(const DmTf *t) {
    double h = t->hidden, p = dm_tf_run_layers(t) * tf_layer_p(h, t->ffn) + 2 * h; /* + final LN */
    double n = dm_tf_tokens(t);
    if (t->patch) p += 3.0 * t->patch * t->patch * h + h + n * h + 2 * h; /* patchify (no bias), class, positions, ln_pre */
    else p += (double)t->vocab * h + n * h;                            /* token and position tables */
    return p + h * t->proj;
}

/* ldm openaimodel ResBlock: GN, conv3x3, time-embedding Linear, GN, conv3x3, 1x1 skip when the
 * width changes. */
static double unet_res_p(const DmUNet *u, double ci, double co) {
    double p = 2 * ci + conv_p(ci, co, 3) + lin_p(u->temb, co, 1) + 2 * co + conv_p(co, co, 3);
    return ci != co ? p + conv_p(ci, co, 1) : p;
}

/* ldm SpatialTransformer: GN, proj_in, per block: self-attention (q, k, v without bias, out
 * with), GEGLU feed-forward (C -> 8C, 4C -> C), cross-attention (k, v from the context), three
 * LayerNorms; proj_out. */
static double unet_st_p(const DmUNet *u, double C) {
    double blk = 3 * lin_p(C, C, 0) + lin_p(C, C, 1) + lin_p(C, 8 * C, 1) + lin_p(4 * C, C, 1) + lin_p(C, C, 0) +
                 2 * lin_p(u->context_dim, C, 0) + lin_p(C, C, 1) + 6 * C;
    return 2 * C + 2 * lin_p(C, C, 1) + u->depth * blk;
}

static double unet_p(const DmUNet *u) {
    double p = lin_p(u->base_ch, u->temb, 1) + lin_p(u->temb, u->temb, 1) + conv_p(u->in_ch, u->base_ch, 3);
    double chans[4 * DM_MAX_LEVELS + 2], ch = u->base_ch;
    int nc = 0;
    chans[nc++] = ch;
    for (uint32_t l = 0; l < u->n_levels; l++) {
        for (uint32_t i = 0; i < u->res_blocks; i++) {
            double co = (double)u->mult[l] * u->base_ch;
            p += unet_res_p(u, ch, co) + (u->attn[l] ? unet_st_p(u, co) : 0);
            ch = co;
            chans[nc++] = ch;
        }
        if (l + 1 < u->n_levels) p += conv_p(ch, ch, 3), chans[nc++] = ch;
    }
    p += 2 * unet_res_p(u, ch, ch) + unet_st_p(u, ch);
    for (uint32_t l = u->n_levels; l-- > 0;) {
        for (uint32_t i = 0; i <= u->res_blocks; i++) {
            double co = (double)u->mult[l] * u->base_ch;
            p += unet_res_p(u, ch + chans[--nc], co) + (u->attn[l] ? unet_st_p(u, co) : 0);
            ch = co;
        }
        if (l) p += conv_p(ch, ch, 3);
    }
    return p + 2 * u->base_ch + conv_p(u->base_ch, u->out_ch, 3);
}

/* taming ResnetBlock without a time embedding: GN, conv3x3, GN, conv3x3, 1x1 nin_shortcut. */
static double vae_res_p(double ci, double co) {
    double p = 2 * ci + conv_p(ci, co, 3) + 2 * co + conv_p(co, co, 3);
    return ci != co ? p + conv_p(ci, co, 1) : p;
}

static double vae_p(const DmVae *v) {
    double top = (double)v->base_ch * v->mult[v->n_levels - 1], ch = top;
    double p = conv_p(v->z_ch, v->z_ch, 1) + conv_p(v->z_ch, top, 3); /* post_quant_conv, conv_in */
    p += 2 * vae_res_p(top, top) + (v->mid_attn ? 2 * top + 4 * conv_p(top, top, 1) : 0);
    for (uint32_t l = v->n_levels; l-- > 0;) {
        double co = (double)v->base_ch * v->mult[l];
        for (uint32_t i = 0; i <= v->res_blocks; i++) p += vae_res_p(ch, co), ch = co;
        if (l) p += conv_p(ch, ch, 3);
    }
    return p + 2 * ch + conv_p(ch, v->out_ch, 3);
}

/* DiT (facebookresearch/DiT models.py): patch embedder (a p x p conv with bias), timestep MLP
 * (256 frequencies -> h -> h), label table, fixed sin-cos positions (a Parameter, counted), per
 * block adaLN modulation h -> 6h, qkv, proj, MLP (norms have no affine), final adaLN h -> 2h and
 * linear h -> p^2 out_ch. Cross-attention (context_dim > 0) adds q, k, v, o and a norm. */
static double dit_p(const DmDiT *d) {
    double h = d->hidden;
    double p = conv_p(d->in_ch, h, d->patch) + lin_p(256, h, 1) + lin_p(h, h, 1) + (double)d->n_classes * h;
    double blk = lin_p(h, 6 * h, 1) + lin_p(h, 3 * h, 1) + lin_p(h, h, 1) + lin_p(h, d->mlp_ratio * h, 1) +
                 lin_p(d->mlp_ratio * h, h, 1);
    if (d->context_dim) blk += 2 * lin_p(h, h, 1) + 2 * lin_p(d->context_dim, h, 1) + 2 * h;
    p += d->layers * blk + lin_p(h, 2 * h, 1) + lin_p(h, (double)d->patch * d->patch * d->out_ch, 1);
    return p;
}

/* BLIP decoder layers: BERT self-attention (q, k, v, o with biases, LN), cross-attention (q and
 * o 768-wide, k and v from the 1024-wide image tokens, LN), FFN (LN); embeddings (word, 512
 * positions, LN) and the LM head (dense + LN, the decoder tied to the word table + its bias). */
static double cap_p(const DmCaption *c) {
    const DmTf *v = &c->vision, *t = &c->text;
    double hv = v->hidden, n = dm_tf_tokens(v);
    double pv = 3.0 * v->patch * v->patch * hv + hv + hv + n * hv + v->layers * tf_layer_p(hv, v->ffn) + 2 * hv;
    double h = t->hidden, f = t->ffn;
    double layer = 4 * (h * h + h) + 2 * h + 2 * (h * h + h) + 2 * (hv * h + h) + 2 * h + lin_p(h, f, 1) +
                   lin_p(f, h, 1) + 2 * h;
    double pt = (double)t->vocab * h + 512 * h + 2 * h + t->layers * layer + lin_p(h, h, 1) + 2 * h + t->vocab;
    return pv + pt;
}

double dm_params(const DiffModel *m) {
    switch (m->kind) {
    case DM_UNET: return unet_p(&m->u.unet);
    case DM_DIT: {
        double T = (double)(m->native_res / m->latent_factor / m->u.dit.patch);
        return dit_p(&m->u.dit) + T * T * m->u.dit.hidden; /* the position table at the native size */
    }
    case DM_VAE: return vae_p(&m->u.vae);
    case DM_TEXT:
    case DM_VIT: return tf_p(&m->u.tf);
    case DM_CAPTION: return cap_p(&m->u.cap);
    case DM_CNN: return m->u.cnn.params;
    default: return 0;
    }
}
