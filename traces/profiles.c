/* profiles.c — the generator profile registry (gen.h). One row per profile, one GenKind per
 * mixture component. Every number says where it comes from: a REFERENCE.md section, or
 * "assumption" (a round figure chosen to give the published aggregate, to be replaced by a
 * measured distribution when one is published). Modality indices: 1 image, 2 audio, 3 video
 * (trace_std_modalities). Lengths are encoder units: image/video patches, audio positions. */
#include "traces/gen_profile.h"

#define M_IMAGE 1
#define M_AUDIO 2
#define M_VIDEO 3

/* InternViT-6B-448px: a 448 px tile is 32 x 32 = 1024 patches of 14 px, 1..12 tiles
 * (REFERENCE.md §D.2). The trace records patches, the data: the encoder adds its CLS position
 * (1025 positions inside InternViT) and drops it again before the projector, whose pixel
 * shuffle 0.5 turns the 1024 patches into 256 LLM tokens = ceil(1024 / 4) with the image
 * ratio 4 (trace.c). Recording 1025 would make that ceil(1025 / 4) = 257. Tile-count weights:
 * assumption (dynamic tiling of common aspect ratios: 1 tile for small images, 4 and 6 for
 * 1:1 and 3:2 photos, a tail up to 12 for documents); mean 3.74 tiles. */
#define INTERNVIT_TILE 1024.0
#define TILE_WEIGHTS {0.30, 0.10, 0.08, 0.22, 0.05, 0.12, 0.02, 0.04, 0.04, 0.01, 0.01, 0.01}

/* Whisper encoder: 50 positions per second of audio, at most 1500 (one 30 s window)
 * (REFERENCE.md §D.3). */
#define WHISPER_PER_S 50.0
#define WHISPER_MAX 1500u

/* An InternVL-style image: 1..12 tiles of 1024 patches, written as one item per tile (gen.c):
 * InternViT encodes each tile on its own. */
#define IMAGE_TILED(rho_)                                                              \
    {M_IMAGE, {1, 1, 0.0},                                                             \
     {.fn = gen_size_tiles, .per_unit = INTERNVIT_TILE, .tile_w = TILE_WEIGHTS}, rho_}

/* ---- vl-sft: image-text instruction SFT, LLaVA / InternVL-like ------------------------
 * Target: OmniBal's VLM SFT input size of 1.4K +- 0.9K LLM tokens per example
 * (REFERENCE.md "LLaVA data"); with image ratio 4 the mix below gives a mean of ~1.4K.
 * Text-only share 12%: assumption within the 10-20% of LLaVA-1.5/InternVL SFT mixes that
 * carry ShareGPT-style text conversations (LLaVA-1.5 lists 40K ShareGPT of ~665K plus
 * text-heavy academic sets, REFERENCE.md "LLaVA data"). */
static const GenKind VL_SFT[] = {
    {"text-only", 0.12, {700.0, 0.8, 0, 1, 32768}, {{0}}, 0},       /* text: assumption */
    {"image-text", 0.70, {350.0, 0.8, 0, 1, 32768},                  /* text: assumption */
     {IMAGE_TILED(0.3)}, 1},  /* rho 0.3: assumption (bigger images, more detailed answers) */
    {"multi-image", 0.18, {350.0, 0.8, 0, 1, 32768},
     /* 2 + geometric(mean 1.5) images, at most 8, one tile each (multi-image sets resize to
      * one tile per image): assumption */
     {{M_IMAGE, {2, 8, 1.5}, {.fn = gen_size_tiles, .per_unit = INTERNVIT_TILE, .tile_w = {1.0}}, 0.3}},
     1},
};

/* ---- asr: speech recognition -----------------------------------------------------------
 * Clip duration log-normal with mean 7.18 s (LibriSpeech mean, REFERENCE.md §D.3):
 * sigma 0.45 is an assumption, median = 7.18 * exp(-0.45^2/2) = 6.49 s, so the mean is
 * 359 Whisper positions. Transcript ~3 tokens per second of speech (assumption: ~2.5
 * words/s x ~1.3 tokens/word), the same sigma, correlated rho 0.9 with the clip length
 * (the transcript is the speech); 8 prompt tokens (assumption). */
static const GenKind ASR[] = {
    {"audio-text", 1.0, {3.0 * 6.49, 0.45, 8, 1, 4096},
     {{M_AUDIO, {1, 1, 0.0},
       {.fn = gen_size_duration, .median = 6.49, .sigma = 0.45, .per_unit = WHISPER_PER_S, .lo = 1,
        .hi = WHISPER_MAX},
       0.9}},
     1},
};

/* ---- spoken-qa: a spoken question, a long written answer ---------------------------------
 * Question clips: mean 5 s (median 4.4 s, sigma 0.5): assumption. Answers: log-normal median
 * 250 tokens, sigma 0.9, plus 20 prompt tokens: assumption. rho 0: the answer's length does
 * not follow the question's. */
static const GenKind SPOKEN_QA[] = {
    {"audio-text", 1.0, {250.0, 0.9, 20, 1, 16384},
     {{M_AUDIO, {1, 1, 0.0},
       {.fn = gen_size_duration, .median = 4.4, .sigma = 0.5, .per_unit = WHISPER_PER_S, .lo = 1,
        .hi = WHISPER_MAX},
       0.0}},
     1},
};

/* ---- tri-modal-mix: text, image-text, audio-text and image+audio-text --------------------
 * The OrchMLLM three-modality setting (REFERENCE.md, OrchMLLM abstract: a three-modality
 * MLLM); the mixture weights 25/40/25/10 are an assumption (the paper's mix is not
 * published). Images as vl-sft; audio clips mean ~10 s (median 8.4 s, sigma 0.6:
 * assumption, AudioSet clips are nominally 10 s, REFERENCE.md "Other audio"). */
static const GenKind TRI_MODAL[] = {
    {"text-only", 0.25, {600.0, 0.9, 0, 1, 32768}, {{0}}, 0},
    {"image-text", 0.40, {350.0, 0.8, 0, 1, 32768}, {IMAGE_TILED(0.3)}, 1},
    {"audio-text", 0.25, {150.0, 0.8, 10, 1, 16384},
     {{M_AUDIO, {1, 1, 0.0},
       {.fn = gen_size_duration, .median = 8.4, .sigma = 0.6, .per_unit = WHISPER_PER_S, .lo = 1,
        .hi = WHISPER_MAX},
       0.5}},  /* rho 0.5: assumption (captions/transcripts grow with the clip) */
     1},
    {"image-audio-text", 0.10, {200.0, 0.8, 10, 1, 16384},
     {IMAGE_TILED(0.2),
      {M_AUDIO, {1, 1, 0.0},
       {.fn = gen_size_duration, .median = 8.4, .sigma = 0.6, .per_unit = WHISPER_PER_S, .lo = 1,
        .hi = WHISPER_MAX},
       0.2}},
     2},
};

/* ---- video: video instruction data --------------------------------------------------------
 * Frame counts are a sampling policy, not a data property (REFERENCE.md "Video"): frames =
 * min(ceil(fps * duration), max_frames) with fps = 1 and max_frames = 32 (assumption; sparse
 * sets sample as low as 0.15 fps, REFERENCE.md "Video"), 256 patches per frame (assumption:
 * a 224 px frame in 14 px patches is 16 x 16). Duration log-normal median 40 s, sigma 1.0
 * (assumption: short clips dominate, a long tail of minutes). 10% text-only (assumption). */
static const GenKind VIDEO[] = {
    {"text-only", 0.10, {400.0, 0.9, 0, 1, 32768}, {{0}}, 0},
    {"video-text", 0.90, {120.0, 0.8, 10, 1, 16384},
     {{M_VIDEO, {1, 1, 0.0},
       {.fn = gen_size_video, .median = 40.0, .sigma = 1.0, .per_unit = 256.0, .fps = 1.0, .max_frames = 32},
       0.2}},  /* rho 0.2: assumption */
     1},
};

#define KINDS(a) a, (int)(sizeof(a) / sizeof((a)[0]))
const GenProfile GEN_PROFILES[] = {
    {"vl-sft", "image-text instruction SFT (LLaVA/InternVL-like): 12% text-only, 1-12 InternViT tiles",
     KINDS(VL_SFT)},
    {"asr", "speech recognition (LibriSpeech-like clips, Whisper 50 positions/s), transcript rho 0.9",
     KINDS(ASR)},
    {"spoken-qa", "spoken question + long written answer, rho 0", KINDS(SPOKEN_QA)},
    {"tri-modal-mix", "text / image-text / audio-text / image+audio-text mix (OrchMLLM-like)",
     KINDS(TRI_MODAL)},
    {"video", "video instruction data: 1 fps up to 32 frames x 256 patches", KINDS(VIDEO)},
};
const int GEN_N_PROFILES = (int)(sizeof GEN_PROFILES / sizeof GEN_PROFILES[0]);
