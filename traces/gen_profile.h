/* gen_profile.h — private to traces/: the parameter structs of a generator profile.
 * Implements: the shapes profiles.c fills and gen.c samples from.
 * Does not: hold any number (those live in profiles.c with their sources). */
#ifndef OS_TRACES_GEN_PROFILE_H
#define OS_TRACES_GEN_PROFILE_H

#include <gsl/gsl_rng.h>
#include <stdint.h>

#define GEN_MAX_SLOTS 3
#define GEN_MAX_TILES 12 /* InternVL dynamic resolution: 1..12 tiles (REFERENCE.md §D.2) */

typedef struct GenSize GenSize;
/* Length of one item given z ~ N(0,1), already correlated with the text's z (copula). */
typedef uint32_t GenSizeFn(const GenSize *p, double z);

struct GenSize {
    GenSizeFn *fn;      /* gen_size_lognormal / _duration / _tiles / _video */
    double median;      /* lognormal: units; duration/video: seconds */
    double sigma;       /* log-space standard deviation (0 = fixed size) */
    double per_unit;    /* duration: positions per second; tiles: patches per tile;
                           video: patches per frame */
    double fps;         /* video: frames sampled per second */
    uint32_t max_frames;/* video: frame cap */
    uint32_t lo, hi;    /* clamp of the resulting length (lognormal, duration) */
    double tile_w[GEN_MAX_TILES]; /* tiles: weight of 1..12 tiles (normalised by gen.c) */
};

GenSizeFn gen_size_lognormal, gen_size_duration, gen_size_tiles, gen_size_video;

typedef struct {
    uint32_t min, max;  /* items per example */
    double mean_extra;  /* mean of a geometric number of items beyond min (0 = exactly min) */
} GenCount;

typedef struct {
    uint8_t modality;   /* index into the standard table (trace_std_modalities) */
    GenCount count;
    GenSize size;
    double rho;         /* copula correlation of each item's log-size with log-text */
} GenSlot;

typedef struct {
    double median, sigma; /* log-normal text tokens */
    uint32_t offset;      /* fixed tokens added (prompt template), assumption per profile */
    uint32_t lo, hi;      /* clamp of the log-normal part */
} GenText;

typedef struct {
    const char *name;   /* "text-only", "image-text", ... */
    double weight;      /* mixture weight (normalised over the profile's kinds) */
    GenText text;
    GenSlot slot[GEN_MAX_SLOTS];
    int n_slots;
} GenKind;

typedef struct {
    const char *name;
    const char *summary;
    const GenKind *kinds;
    int n_kinds;
} GenProfile;

extern const GenProfile GEN_PROFILES[];
extern const int GEN_N_PROFILES;

#endif
