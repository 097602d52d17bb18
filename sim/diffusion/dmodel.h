/* dmodel.h — the text-to-image model family: diffusion denoisers (SD-class UNets, a DiT), the
 *   KL-f8 VAE decoder, CLIP/OpenCLIP text and image encoders, the BLIP-large captioner and a
 *   lumped CNN (InceptionV3), as shapes one can count and price layer by layer.
 * Implements: the DiffModel registry (one row per preset, each number's source beside it in
 *   dmodel.c), parameter counts (every weight, bias and norm scale: SD 1.4's UNet comes out at
 *   exactly its published 859,520,964), the resolution rule of a denoiser, "did you mean".
 * Does not: enumerate ops or price them (dops.h), or know about stages and requests (stage.h).
 * Source: ../shared/CPDM.md "Model shapes"; CompVis/stable-diffusion configs/stable-diffusion/
 *   v1-inference.yaml, Stability-AI/stablediffusion v2-inference-v.yaml, open_clip ViT-H-14 and
 *   ViT-L-14 configs, BLIP (salesforce) blip_decoder(vit='large'), DiT (arXiv 2212.09748).
 * Units: channels, tokens and pixels are counts; resolutions are pixels of the decoded image. */
#ifndef OS_DIFFUSION_DMODEL_H
#define OS_DIFFUSION_DMODEL_H

#include <stdint.h>

#include "base/status.h"

#define DM_NAME_LEN 32
#define DM_MAX_LEVELS 6

typedef enum {
    DM_UNET = 0, /* SD-class latent UNet: ResBlocks + spatial transformers, cross-attention */
    DM_DIT,      /* DiT: a transformer over latent patches, adaLN-Zero conditioning */
    DM_VAE,      /* KL-f8 autoencoder's decoder: latent -> pixels */
    DM_TEXT,     /* a CLIP-style causal text transformer over a fixed token count (77) */
    DM_VIT,      /* a CLIP-style vision transformer: patches + class token */
    DM_CAPTION,  /* BLIP-style captioner: a ViT, then an autoregressive decoder with cross-attention */
    DM_CNN,      /* a CNN lumped into its published multiply-add count (InceptionV3) */
    DM_N_KINDS
} DmKind;

/* A CLIP-style transformer stack (text or vision). Every linear has a bias, LayerNorm pre-norm,
 * GELU MLP (CLIP's QuickGELU costs the same). */
typedef struct {
    uint32_t layers;     /* layers in the checkpoint */
    uint32_t run_layers; /* layers run (SD 2.x conditions on the penultimate: 23 of 24); 0 = all */
    uint32_t hidden, heads, ffn;
    uint32_t tokens;     /* text: context length (77); vision: derived from image/patch */
    uint32_t vocab;      /* text: token embedding rows (a lookup, no MACs); vision: 0 */
    uint32_t image, patch; /* vision: input pixels per side and patch size */
    uint32_t proj;       /* output projection width on the pooled token (0 = none) */
    uint8_t causal;
} DmTf;

typedef struct {
    uint32_t in_ch, out_ch, base_ch, n_levels, res_blocks;
    uint32_t mult[DM_MAX_LEVELS]; /* channel multiplier per level */
    uint8_t attn[DM_MAX_LEVELS];  /* 1: spatial transformers at this level */
    uint32_t heads;               /* fixed heads per transformer (SD 1.x: 8), or 0 ... */
    uint32_t head_dim;            /* ... a fixed head dimension (SD 2.x: 64) */
    uint32_t depth;               /* transformer blocks per spatial transformer */
    uint32_t context_dim, context_len; /* cross-attention keys: text encoder width x tokens */
    uint32_t temb;                /* time-embedding width (4 x base) */
    uint8_t linear_proj;          /* proj_in/out as Linear (SD 2.x) or 1x1 conv (SD 1.x) */
} DmUNet;

typedef struct {
    uint32_t layers, hidden, heads, patch, in_ch, out_ch, mlp_ratio;
    uint32_t context_dim, context_len; /* 0 = no cross-attention (class-conditional DiT) */
    uint32_t n_classes;                /* label embedding rows (a lookup) */
} DmDiT;

typedef struct {
    uint32_t z_ch, base_ch, n_levels, res_blocks, out_ch;
    uint32_t mult[DM_MAX_LEVELS];
    uint8_t mid_attn;
} DmVae;

typedef struct {
    DmTf vision;          /* ViT over the image (tokens from image/patch) */
    DmTf text;            /* decoder: self-attention + cross-attention to the image tokens */
    uint32_t new_tokens;  /* tokens generated per caption (max_length) */
    uint32_t beams;       /* beam-search width: sequences decoded per image */
} DmCaption;

typedef struct {
    double macs;          /* multiply-adds per image at `image` px (published) */
    double params;
    uint32_t image;
    double m, n;          /* the implicit-GEMM shape it is priced at: rows per image, outputs */
} DmCnn;

typedef struct {
    char name[DM_NAME_LEN];
    const char *desc;
    const char *source;        /* where the shape comes from */
    DmKind kind;
    uint32_t native_res;       /* denoisers/VAE: the resolution it was trained at (pixels) */
    uint32_t latent_factor;    /* denoisers/VAE: pixels per latent position (KL-f8: 8) */
    const char *text_encoder;  /* denoisers: the conditioning encoder preset, or NULL */
    const char *vae;           /* denoisers: the decoder preset */
    union {
        DmUNet unet;
        DmDiT dit;
        DmVae vae;
        DmTf tf;
        DmCaption cap;
        DmCnn cnn;
    } u;
} DiffModel;

uint32_t dm_count(void);
const DiffModel *dm_at(uint32_t i);          /* registry order; borrowed, static */
const DiffModel *dm_find(const char *name);  /* NULL when unknown */
const char *dm_suggest(const char *name);    /* closest name, or NULL */
const char *dm_kind_name(DmKind k);          /* "unet", "dit", ... */

/* Is this a denoiser (UNet or DiT)? */
int dm_is_denoiser(const DiffModel *m);
/* Pixels per side must be a multiple of this: the latent factor times the UNet's total
 * downsampling (2^(levels-1)) or the DiT's patch; the VAE factor alone for a VAE; 1 otherwise. */
uint32_t dm_res_multiple(const DiffModel *m);
/* Every weight, bias and norm scale (embedding tables included; SD 2.x's text encoder counts
 * the layers it runs). */
double dm_params(const DiffModel *m);
/* Tokens a transformer model runs per sample: text context, or (image/patch)^2 + 1. */
uint32_t dm_tf_tokens(const DmTf *t);
/* Layers a transformer runs. */
uint32_t dm_tf_run_layers(const DmTf *t);

#endif
