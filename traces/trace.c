/* trace.c — see trace.h. The parts shared by reader and writer: in-memory steps, the LLM
 * sequence length, the standard modality table and the HDF5 row types (h5check.h).
 * Reader: trace_read.c. Writer: trace_write.c. */
#include "traces/trace.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "traces/h5check.h"

/* ---- the standard modality table (generators and importers) -------------------------- */

/* default_ratio = encoder-output units per LLM token (the projector's shrink):
 * - image: InternViT 448 px tiles, pixel-shuffle 0.5 turns 1024 patches into 256 LLM tokens,
 *   i.e. 4 patches per token (REFERENCE.md §D.2). LLaVA-1.5's MLP projector keeps all 576 CLIP
 *   patches (ratio 1): pass --ratio image=1 to `info` for that model.
 * - audio: Whisper-style encoder at 50 positions/s pooled to ~40 ms per output frame (Qwen2-Audio,
 *   REFERENCE.md "Other audio"), i.e. 2 positions per token.
 * - video: frames x patches, the same pixel-shuffle 0.5 as images (assumption). */
static const TraceModality STD_MODALITIES[] = {
    {"text", "token", 1},
    {"image", "patch", 4},
    {"audio", "frame", 2},
    {"video", "patch", 4},
};

const TraceModality *trace_std_modalities(uint32_t *n) {
    *n = (uint32_t)OS_ARRAY_LEN(STD_MODALITIES);
    return STD_MODALITIES;
}

/* ---- in-memory steps ------------------------------------------------------------------ */

void trace_step_init(TraceStep *s) { memset(s, 0, sizeof *s); }

void trace_step_free(TraceStep *s) {
    if (!s) return;
    free(s->examples);
    free(s->items);
    trace_step_init(s);
}

void trace_step_clear(TraceStep *s) {
    s->n_examples = 0;
    s->n_items = 0;
}

OsStatus trace_step_reserve(TraceStep *s, uint64_t n_examples, uint64_t n_items) {
    OsStatus st = OS_OK;
    size_t ce = (size_t)s->cap_examples, ci = (size_t)s->cap_items;
    if (n_examples > ce) {
        void *p = s->examples;
        OS_CHECK(os_grow(&p, &ce, (size_t)n_examples, sizeof(TraceExample)));
        s->examples = p;
        s->cap_examples = ce;
    }
    if (n_items > ci) {
        void *p = s->items;
        OS_CHECK(os_grow(&p, &ci, (size_t)n_items, sizeof(TraceItem)));
        s->items = p;
        s->cap_items = ci;
    }
fail:
    return st;
}

OsStatus trace_step_push(TraceStep *s, uint32_t text, uint64_t id, const TraceItem *items,
                         uint32_t n_items) {
    OsStatus st = OS_OK;
    if (s->n_examples == UINT32_MAX || (uint64_t)s->n_items + n_items > UINT32_MAX)
        OS_FAIL(OS_ERR_RANGE, "step", NULL, "use a smaller global batch",
                "more than 2^32-1 examples or items in one step");
    OS_CHECK(trace_step_reserve(s, (uint64_t)s->n_examples + 1, (uint64_t)s->n_items + n_items));
    TraceExample *e = &s->examples[s->n_examples++];
    e->id = id;
    e->text = text;
    e->n_items = n_items;
    e->first_item = s->n_items;
    if (n_items) memcpy(s->items + s->n_items, items, (size_t)n_items * sizeof *items);
    s->n_items += n_items;
fail:
    return st;
}

uint64_t trace_llm_tokens_tpi(const TraceStep *s, uint32_t example, const uint32_t *ratio,
                              const uint32_t *tpi) {
    const TraceExample *e = &s->examples[example];
    uint64_t n = e->text;
    for (uint32_t k = 0; k < e->n_items; k++) {
        const TraceItem *it = &s->items[e->first_item + k];
        if (tpi && tpi[it->modality]) {
            n += tpi[it->modality];
            continue;
        }
        uint64_t r = ratio[it->modality] ? ratio[it->modality] : 1;
        n += ((uint64_t)it->length + r - 1) / r; /* ceil: a partial group still makes a token */
    }
    return n;
}

uint64_t trace_llm_tokens(const TraceStep *s, uint32_t example, const uint32_t *ratio) {
    return trace_llm_tokens_tpi(s, example, ratio, NULL);
}

/* ---- HDF5 row types ------------------------------------------------------------------- */

static const Th5Field F_MODALITIES[] = {
    {"name", H5T_STRING, TRACE_NAME_LEN},
    {"unit", H5T_STRING, TRACE_NAME_LEN},
    {"default_ratio", H5T_INTEGER, 4},
};
static const Th5Field F_EXAMPLES[] = {
    {"id", H5T_INTEGER, 8},
    {"text", H5T_INTEGER, 4},
    {"first_item", H5T_INTEGER, 8},
    {"n_items", H5T_INTEGER, 4},
};
static const Th5Field F_ITEMS[] = {
    {"modality", H5T_INTEGER, 1},
    {"length", H5T_INTEGER, 4},
};
static const Th5Field F_STEPS[] = {
    {"first_example", H5T_INTEGER, 8},
    {"n_examples", H5T_INTEGER, 4},
    {"dp", H5T_INTEGER, 4},
};

const Th5TableSpec TH5_TABLES[TH5_N_TABLES] = {
    [TH5_MODALITIES] = {"/modalities", F_MODALITIES, 3},
    [TH5_EXAMPLES] = {"/examples", F_EXAMPLES, 4},
    [TH5_ITEMS] = {"/items", F_ITEMS, 2},
    [TH5_STEPS] = {"/steps", F_STEPS, 3},
};

/* Offsets of each field in trace.h's structs, in TH5_TABLES order. */
static const size_t OFF_MODALITIES[] = {offsetof(TraceModality, name), offsetof(TraceModality, unit),
                                        offsetof(TraceModality, default_ratio)};
static const size_t OFF_EXAMPLES[] = {offsetof(TraceExample, id), offsetof(TraceExample, text),
                                      offsetof(TraceExample, first_item), offsetof(TraceExample, n_items)};
static const size_t OFF_ITEMS[] = {offsetof(TraceItem, modality), offsetof(TraceItem, length)};
static const size_t OFF_STEPS[] = {offsetof(TraceStepRec, first_example),
                                   offsetof(TraceStepRec, n_examples), offsetof(TraceStepRec, dp)};
static const size_t *const OFFSETS[TH5_N_TABLES] = {OFF_MODALITIES, OFF_EXAMPLES, OFF_ITEMS, OFF_STEPS};
static const size_t SIZES[TH5_N_TABLES] = {sizeof(TraceModality), sizeof(TraceExample),
                                           sizeof(TraceItem), sizeof(TraceStepRec)};

static hid_t int_type(size_t size, int native) {
    switch (size) {
    case 1: return native ? H5T_NATIVE_UINT8 : H5T_STD_U8LE;
    case 4: return native ? H5T_NATIVE_UINT32 : H5T_STD_U32LE;
    default: return native ? H5T_NATIVE_UINT64 : H5T_STD_U64LE;
    }
}

static hid_t make_type(Th5Table t, int native) {
    const Th5TableSpec *spec = &TH5_TABLES[t];
    size_t total = 0;
    if (native) total = SIZES[t];
    else
        for (int i = 0; i < spec->n_fields; i++) total += spec->fields[i].size;
    hid_t ct = H5Tcreate(H5T_COMPOUND, total);
    if (ct < 0) return ct;
    size_t off = 0;
    for (int i = 0; i < spec->n_fields; i++) {
        const Th5Field *f = &spec->fields[i];
        hid_t mt = -1;
        int own = 0;
        if (f->cls == H5T_STRING) {
            mt = H5Tcopy(H5T_C_S1);
            own = 1;
            if (mt < 0 || H5Tset_size(mt, f->size) < 0 || H5Tset_strpad(mt, H5T_STR_NULLTERM) < 0) {
                if (mt >= 0) H5Tclose(mt);
                H5Tclose(ct);
                return -1;
            }
        } else {
            mt = int_type(f->size, native);
        }
        size_t at = native ? OFFSETS[t][i] : off;
        herr_t r = H5Tinsert(ct, f->name, at, mt);
        if (own) H5Tclose(mt);
        if (r < 0) {
            H5Tclose(ct);
            return -1;
        }
        off += f->size;
    }
    return ct;
}

hid_t th5_mem_type(Th5Table t) { return make_type(t, 1); }
hid_t th5_file_type(Th5Table t) { return make_type(t, 0); }

void th5_quiet(void) { h5_init(); }
