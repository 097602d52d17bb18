/* test_import.c — traces/import.h: hand-written JSONL/CSV cases, CSV == JSONL, shuffle
 * determinism, the partial-batch rule, and every malformed-line error (file + line + field,
 * no output left behind). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "helpers.h"
#include "traces/import.h"
#include "traces/trace.h"

static const char *write_text(const char *name, const char *body) {
    const char *p = th_tmp(name);
    FILE *f = fopen(p, "w");
    cr_assert(f);
    fputs(body, f);
    fclose(f);
    return p;
}

static OsStatus run(const char *in, const char *out, uint32_t B, uint32_t D, int shuffle, uint64_t seed, int drop) {
    ImportConfig cfg = {in, out, NULL, B, D, shuffle, seed, drop, 0, NULL};
    ImportSummary sum;
    os_clear_error();
    return import_run(&cfg, &sum);
}

static const char *JSONL =
    "{\"id\": 7, \"text\": 512, \"image\": [576, 576], \"audio\": [1500]}\n"
    "{\"text\": 3}\n"
    "\n"
    "{ \"id\" : 9 , \"audio\" : 20 , \"text\" : 0 }\n"
    "{\"id\": 10, \"text\": 1, \"image\": [], \"video\": [2048]}\n";

static const char *CSV =
    "id,text,image,audio,video\n"
    "7,512,576;576,1500,\n"
    "1,3,,,\n"
    "9,0,,20,\n"
    "10,1,,,2048\n";

Test(import, jsonl_hand_case) {
    const char *in = write_text("a.jsonl", JSONL), *out = th_tmp("a.h5");
    cr_assert_eq(run(in, out, 2, 2, 0, 0, 0), OS_OK, "%s", os_last_error());
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, out), OS_OK, "%s", os_last_error());
    cr_assert_eq(trace_n_steps(t), 2u);
    cr_assert_eq(trace_n_examples(t), 4u);
    cr_assert_eq(trace_n_items(t), 5u);
    const TraceStep *s = NULL;
    cr_assert_eq(trace_read_step(t, 0, &s), OS_OK);
    cr_assert_eq(s->dp, 2u);
    cr_assert_eq(s->examples[0].id, 7u);
    cr_assert_eq(s->examples[0].text, 512u);
    cr_assert_eq(s->examples[0].n_items, 3u);
    cr_assert_eq(s->items[0].length, 576u);
    cr_assert_eq(s->items[0].modality, 1);
    cr_assert_eq(s->items[2].length, 1500u);
    cr_assert_eq(s->items[2].modality, 2);
    cr_assert_eq(s->examples[1].id, 1u); /* no id: the data row number */
    cr_assert_eq(s->examples[1].n_items, 0u);
    cr_assert_eq(trace_read_step(t, 1, &s), OS_OK);
    cr_assert_eq(s->examples[0].id, 9u);
    cr_assert_eq(s->items[0].length, 20u);
    cr_assert_eq(s->examples[1].n_items, 1u);
    cr_assert_eq(s->items[1].modality, 3);
    cr_assert(strstr(trace_provenance(t)->source, "format=jsonl"));
    trace_close(t);
}

/* Read every example as (id, text, items...) for comparing two traces. */
static void same_content(const char *a, const char *b) {
    Trace *ta = NULL, *tb = NULL;
    cr_assert_eq(trace_open(&ta, a), OS_OK);
    cr_assert_eq(trace_open(&tb, b), OS_OK);
    cr_assert_eq(trace_n_steps(ta), trace_n_steps(tb));
    for (uint64_t i = 0; i < trace_n_steps(ta); i++) {
        const TraceStep *sa, *sb;
        cr_assert_eq(trace_read_step(ta, i, &sa), OS_OK);
        /* the reader reuses one buffer per trace, so two traces can be compared side by side */
        cr_assert_eq(trace_read_step(tb, i, &sb), OS_OK);
        cr_assert_eq(sa->n_examples, sb->n_examples);
        cr_assert_eq(sa->n_items, sb->n_items);
        cr_assert_eq(memcmp(sa->examples, sb->examples, sizeof *sa->examples * sa->n_examples), 0);
        for (uint32_t k = 0; k < sa->n_items; k++) {
            cr_assert_eq(sa->items[k].length, sb->items[k].length);
            cr_assert_eq(sa->items[k].modality, sb->items[k].modality);
        }
    }
    trace_close(ta);
    trace_close(tb);
}

Test(import, csv_equals_jsonl) {
    const char *j = write_text("e.jsonl", JSONL), *c = write_text("e.csv", CSV);
    const char *oj = th_tmp("ej.h5"), *oc = th_tmp("ec.h5");
    cr_assert_eq(run(j, oj, 4, 2, 0, 0, 0), OS_OK, "%s", os_last_error());
    cr_assert_eq(run(c, oc, 4, 2, 0, 0, 0), OS_OK, "%s", os_last_error());
    same_content(oj, oc);
    /* shuffled with the same seed: still equal */
    cr_assert_eq(run(j, oj, 2, 1, 1, 5, 0), OS_OK);
    cr_assert_eq(run(c, oc, 2, 1, 1, 5, 0), OS_OK);
    same_content(oj, oc);
}

static const char *many_lines(const char *name, int n, int csv) {
    size_t cap = (size_t)n * 64 + 64, len = 0;
    char *buf = malloc(cap);
    if (csv) len += (size_t)snprintf(buf + len, cap - len, "id,text,image\n");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, csv ? "%d,%d,%d\n" : "{\"id\":%d,\"text\":%d,\"image\":[%d]}\n", i,
                                100 + i, 1 + i % 7);
    const char *p = write_text(name, buf);
    free(buf);
    return p;
}

static void ids_of(const char *path, uint64_t *ids, int n) {
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, path), OS_OK);
    const TraceStep *s;
    int k = 0;
    while (trace_next_step(t, &s) == OS_OK)
        for (uint32_t i = 0; i < s->n_examples; i++) {
            cr_assert_lt(k, n);
            ids[k++] = s->examples[i].id;
            cr_assert_eq(s->examples[i].text, 100u + s->examples[i].id); /* rows stay whole */
            cr_assert_eq(s->items[s->examples[i].first_item].length, 1u + s->examples[i].id % 7);
        }
    cr_assert_eq(k, n);
    trace_close(t);
}

Test(import, shuffle_is_a_seeded_permutation) {
    const char *in = many_lines("sh.jsonl", 96, 0), *o1 = th_tmp("sh1.h5"), *o2 = th_tmp("sh2.h5"),
               *o3 = th_tmp("sh3.h5");
    cr_assert_eq(run(in, o1, 32, 4, 1, 7, 0), OS_OK);
    cr_assert_eq(run(in, o2, 32, 4, 1, 7, 0), OS_OK);
    cr_assert_eq(run(in, o3, 32, 4, 1, 8, 0), OS_OK);
    uint64_t a[96], b[96], c[96];
    ids_of(o1, a, 96);
    ids_of(o2, b, 96);
    ids_of(o3, c, 96);
    cr_assert_eq(memcmp(a, b, sizeof a), 0, "same seed, different order");
    cr_assert_neq(memcmp(a, c, sizeof a), 0, "different seeds, same order");
    int seen[96] = {0}, in_order = 1;
    for (int i = 0; i < 96; i++) {
        cr_assert_lt(a[i], 96u);
        seen[a[i]]++;
        in_order &= a[i] == (uint64_t)i;
    }
    for (int i = 0; i < 96; i++) cr_assert_eq(seen[i], 1);
    cr_assert(!in_order);
}

Test(import, partial_batch_and_drop_remainder) {
    const char *in = many_lines("part.csv", 10, 1), *out = th_tmp("part.h5");
    cr_assert_eq(run(in, out, 4, 2, 0, 0, 0), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "10 examples leave a partial batch of 2"), "%s", os_last_error());
    cr_assert(!th_exists(out));
    ImportConfig cfg = {in, out, NULL, 4, 2, 0, 0, 1, 0, NULL};
    ImportSummary sum;
    cr_assert_eq(import_run(&cfg, &sum), OS_OK);
    cr_assert_eq(sum.steps, 2u);
    cr_assert_eq(sum.examples, 8u);
    cr_assert_eq(sum.dropped, 2u);
    cr_assert_eq(run(in, out, 12, 2, 0, 0, 1), OS_ERR_FORMAT); /* not one full batch */
}

Test(import, empty_files) {
    const char *out = th_tmp("empty.h5");
    cr_assert_eq(run(write_text("empty.jsonl", ""), out, 2, 1, 0, 0, 0), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "no examples"), "%s", os_last_error());
    cr_assert_eq(run(write_text("empty.csv", ""), out, 2, 1, 0, 0, 0), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "no header"), "%s", os_last_error());
    cr_assert_eq(run(write_text("hdr.csv", "id,text\n"), out, 2, 1, 0, 0, 0), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "no examples"), "%s", os_last_error());
    cr_assert(!th_exists(out));
}

/* Each bad input: (file name, body, needle 1, needle 2). */
typedef struct {
    const char *name, *body, *n1, *n2;
} BadCase;

static const BadCase BAD[] = {
    {"b1.jsonl", "{\"text\": 1}\n{\"text\": 2, \"image\": \"big\"}\n", "line 2: field \"image\"",
     "expected an integer or a list of integers"},
    {"b2.jsonl", "{\"text\": 1, \"colour\": 3}\n", "line 1: field \"colour\"", "unknown key"},
    {"b3.jsonl", "{\"text\": -4}\n", "line 1: field \"text\"", "negative"},
    {"b4.jsonl", "{\"text\": 1, \"audio\": [3, 4294967295]}\n", "line 1: field \"audio\"", "absurd (>= 2^31)"},
    {"b5.jsonl", "{\"text\": 1, \"image\": [1.5]}\n", "field \"image\"", "not a fraction"},
    {"b6.jsonl", "{\"text\": [1, 2]}\n", "field \"text\"", "expected an integer"},
    {"b7.jsonl", "{\"image\": [4]}\n", "line 1: field \"text\"", "missing"},
    {"b8.jsonl", "{\"text\": 1\n", "line 1", "expected ',' or '}'"},
    {"b9.jsonl", "{\"text\": 1} x\n", "line 1", "trailing characters"},
    {"b10.jsonl", "[1, 2]\n", "line 1", "expected '{'"},
    {"b11.jsonl", "{\"text\": 1, \"text\": 2}\n", "field \"text\"", "repeated key"},
    {"b12.jsonl", "{\"text\": 99999999999999999999999}\n", "field \"text\"", "too large"},
    {"b1.csv", "id,text,image\n1,2,3;4\n1,2\n", "line 3", "2 fields, the header has 3"},
    {"b2.csv", "id,text,colour\n", "line 1: field \"colour\"", "unknown column"},
    {"b3.csv", "id,text,image\n1,2,3|4\n", "line 2: field \"image\"", "unexpected characters"},
    {"b4.csv", "id,image\n1,2\n", "field \"text\"", "missing"},
    {"b5.csv", "id,text,audio\n1,,5\n", "line 2: field \"text\"", "empty"},
    {"b6.csv", "id,text,audio\n1,-2,5\n", "line 2: field \"text\"", "negative"},
    {"b7.csv", "id,text,audio\n1,2,\"5\"\n", "line 2", "quoted"},
    {"b8.csv", "id,text,audio\n1,2,3000000000\n", "field \"audio\"", "absurd"},
};

Test(import, malformed_lines_name_file_line_and_field) {
    char out[1024]; /* th_tmp's buffers rotate: keep a copy */
    snprintf(out, sizeof out, "%s", th_tmp("bad.h5"));
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        const char *in = write_text(BAD[i].name, BAD[i].body);
        cr_assert_eq(run(in, out, 1, 1, 0, 0, 0), OS_ERR_FORMAT, "%s accepted", BAD[i].name);
        const char *e = os_last_error();
        cr_assert(strstr(e, in), "%s: no file in '%s'", BAD[i].name, e);
        cr_assert(strstr(e, BAD[i].n1), "%s: no '%s' in '%s'", BAD[i].name, BAD[i].n1, e);
        cr_assert(strstr(e, BAD[i].n2), "%s: no '%s' in '%s'", BAD[i].name, BAD[i].n2, e);
        cr_assert(!th_exists(out), "%s left an output file", BAD[i].name);
    }
}

Test(import, arguments) {
    const char *in = write_text("args.txt", "{\"text\": 1}\n"), *out = th_tmp("args.h5");
    cr_assert_eq(run(in, out, 1, 1, 0, 0, 0), OS_ERR_ARG); /* extension unknown */
    cr_assert(strstr(os_last_error(), "--format"), "%s", os_last_error());
    ImportConfig cfg = {in, out, "jsonl", 1, 1, 0, 0, 0, 0, NULL};
    ImportSummary sum;
    cr_assert_eq(import_run(&cfg, &sum), OS_OK);
    cr_assert_eq(run(in, out, 3, 2, 0, 0, 0), OS_ERR_ARG); /* B % D */
    cr_assert_eq(run(th_tmp("nope.jsonl"), out, 1, 1, 0, 0, 0), OS_ERR_IO);
}

Test(import_cli, error_line_and_success) {
    const char *in = write_text("cli.jsonl", "{\"text\": 1}\n{\"text\": 2}\n{\"text\": 2, \"image\": {}}\n");
    const char *out = th_tmp("cli.h5");
    char args[2400], *o = NULL, want[1200];
    snprintf(args, sizeof args, "import %s -o %s --global-batch 1 --dp 1", in, out);
    int rc = th_run(&o, args);
    cr_assert_neq(rc, 0);
    snprintf(want, sizeof want, "orchsim: error: %s: line 3: field \"image\": expected an integer or a list of integers", in);
    cr_assert(strstr(o, want), "%s", o);
    cr_assert(!th_exists(out));
    free(o);
    in = many_lines("cli.csv", 16, 1);
    snprintf(args, sizeof args, "import %s -o %s --global-batch 8 --dp 4 --shuffle --seed 3", in, out);
    rc = th_run(&o, args);
    cr_assert_eq(rc, 0, "%s", o);
    free(o);
    snprintf(args, sizeof args, "info %s", out);
    rc = th_run(&o, args);
    cr_assert_eq(rc, 0, "%s", o);
    cr_assert(strstr(o, "steps 2   examples 16   items 16   dp 4   global batch 8"), "%s", o);
    free(o);
}

/* ---- real-world files (issue 14, item 6) ------------------------------------------------- */

static OsStatus run_opts(const char *in, const char *out, uint32_t B, const ImportOptions *o, ImportSummary *sum) {
    ImportConfig cfg = {in, out, NULL, B, 1, 0, 0, 1, 0, NULL};
    os_clear_error();
    return import_run_opts(&cfg, o, sum);
}

/* FNV-1a 64 of "a" (the published test vector): string ids are documented and stable. */
#define FNV_A 0xaf63dc4c8601ec8cull

Test(import_real, json_array_floats_zeros_nulls_and_string_ids) {
    const char *in = write_text("arr.json",
                                "[{\"id\": \"a\", \"text\": 512.0, \"image\": 0},\n"
                                " {\"text\": 5.12e2, \"image\": [0, 576], \"audio\": null, \"id\": null},\n"
                                " {\"id\": 18446744073709551615, \"text\": 1, \"video\": []}]\n");
    const char *out = th_tmp("arr.h5");
    ImportSummary sum;
    cr_assert_eq(run_opts(in, out, 3, NULL, &sum), OS_OK, "%s", os_last_error());
    cr_assert_str_eq(sum.format, "json");
    cr_assert_eq(sum.examples, 3u);
    cr_assert_eq(sum.items, 1u, "0 and [] are no item, not a zero-length one");
    cr_assert_eq(sum.zero_lengths, 2u);
    cr_assert_eq(sum.string_ids, 1u);
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, out), OS_OK, "%s", os_last_error());
    const TraceStep *s;
    cr_assert_eq(trace_read_step(t, 0, &s), OS_OK);
    cr_assert_eq(s->examples[0].id, FNV_A);
    cr_assert_eq(s->examples[0].text, 512u);
    cr_assert_eq(s->examples[0].n_items, 0u);
    cr_assert_eq(s->examples[1].id, 1u, "null id: the row number");
    cr_assert_eq(s->examples[1].text, 512u);
    cr_assert_eq(s->examples[1].n_items, 1u);
    cr_assert_eq(s->items[0].length, 576u);
    cr_assert_eq(s->examples[2].id, UINT64_MAX, "the largest u64 id is accepted");
    trace_close(t);
}

Test(import_real, bom_and_unknown_keys) {
    const char *in = write_text("bom.jsonl", "\xef\xbb\xbf{\"text\": 3, \"source\": \"libri\", \"meta\": {\"a\": [1, {\"b\": null}], "
                                             "\"c\": true}}\n{\"text\": 4, \"source\": \"x\"}\n");
    const char *out = th_tmp("bom.h5");
    ImportSummary sum;
    cr_assert_eq(run_opts(in, out, 2, NULL, &sum), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "line 1: field \"source\": unknown key"), "the BOM is part of no key: %s",
              os_last_error());
    cr_assert(strstr(os_last_error(), "--ignore-unknown"), "%s", os_last_error());
    ImportOptions o = {.ignore_unknown = 1};
    cr_assert_eq(run_opts(in, out, 2, &o, &sum), OS_OK, "%s", os_last_error());
    cr_assert_eq(sum.unknown_keys, 3u);
    cr_assert_str_eq(sum.unknown, "source, meta", "listed once each");
}

Test(import_real, numbers_at_the_edges) {
    const char *out = th_tmp("edge.h5");
    ImportSummary sum;
    const char *in = write_text("frac.jsonl", "{\"text\": 512.5}\n");
    cr_assert_eq(run_opts(in, out, 1, NULL, &sum), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "not a fraction"), "%s", os_last_error());
    in = write_text("big.jsonl", "{\"text\": 1, \"id\": 18446744073709551616}\n");
    cr_assert_eq(run_opts(in, out, 1, NULL, &sum), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "too large"), "%s", os_last_error());
    in = write_text("deep.jsonl", "{\"text\": 1, \"x\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
                                  "[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}\n");
    ImportOptions o = {.ignore_unknown = 1};
    cr_assert_eq(run_opts(in, out, 1, &o, &sum), OS_ERR_FORMAT);
    cr_assert(strstr(os_last_error(), "nested more than 64 levels"), "%s", os_last_error());
    cr_assert(!th_exists(out));
}

Test(import_real, csv_bom_string_ids_floats_and_skipped_columns) {
    const char *in = write_text("r.csv", "\xef\xbb\xbfid,text,image,duration\na,512.0,0;576,7.18\n7,3,,1\n");
    const char *out = th_tmp("rcsv.h5");
    ImportSummary sum;
    ImportOptions o = {.ignore_unknown = 1};
    cr_assert_eq(run_opts(in, out, 2, &o, &sum), OS_OK, "%s", os_last_error());
    cr_assert_eq(sum.items, 1u);
    cr_assert_eq(sum.string_ids, 1u);
    cr_assert_eq(sum.unknown_keys, 2u);
    cr_assert_str_eq(sum.unknown, "duration");
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, out), OS_OK);
    const TraceStep *s;
    cr_assert_eq(trace_read_step(t, 0, &s), OS_OK);
    cr_assert_eq(s->examples[0].id, FNV_A, "the same hash as a JSON string id");
    cr_assert_eq(s->examples[0].text, 512u);
    cr_assert_eq(s->examples[1].id, 7u);
    trace_close(t);
}

Test(import_real, gzip_and_stdin) {
    const char *plain = write_text("z.jsonl", "{\"text\": 1, \"image\": 4}\n{\"text\": 2}\n");
    char gz[1200];
    snprintf(gz, sizeof gz, "%s.gz", plain);
    gzFile g = gzopen(gz, "wb");
    cr_assert(g);
    gzputs(g, "{\"text\": 1, \"image\": 4}\n{\"text\": 2}\n");
    gzclose(g);
    const char *o1 = th_tmp("z1.h5"), *o2 = th_tmp("z2.h5");
    ImportSummary sum;
    cr_assert_eq(run_opts(gz, o1, 2, NULL, &sum), OS_OK, "%s", os_last_error());
    cr_assert_eq(sum.examples, 2u);
    cr_assert_eq(sum.items, 1u);
    /* stdin: the gzip bytes on fd 0, the format sniffed from the first byte */
    int fd = open(gz, O_RDONLY);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, 0), 0);
    close(fd);
    cr_assert_eq(run_opts("-", o2, 2, NULL, &sum), OS_OK, "%s", os_last_error());
    same_content(o1, o2);
    /* a corrupt .gz is one error */
    FILE *f = fopen(gz, "r+b");
    fseek(f, 12, SEEK_SET);
    fputs("garbage-garbage", f);
    fclose(f);
    cr_assert_neq(run_opts(gz, o1, 2, NULL, &sum), OS_OK);
    cr_assert(strstr(os_last_error(), gz), "%s", os_last_error());
}

Test(import_real, hostile_inputs) {
    const char *out = th_tmp("hostile.h5");
    ImportSummary sum;
    ImportConfig cfg = {"/dev/zero", out, "jsonl", 1, 1, 0, 0, 1, 0, NULL};
    os_clear_error();
    cr_assert_eq(import_run_opts(&cfg, NULL, &sum), OS_ERR_FORMAT, "/dev/zero must be one error, not a growing line");
    cr_assert(strstr(os_last_error(), "NUL byte"), "%s", os_last_error());
    cfg.input = ORCHSIM_TEST_TMP;
    os_clear_error();
    cr_assert_eq(import_run_opts(&cfg, NULL, &sum), OS_ERR_IO);
    cr_assert(strstr(os_last_error(), "is a directory"), "%s", os_last_error());
    cr_assert(!strstr(os_last_error(), "read error"), "%s", os_last_error());
    cr_assert(!th_exists(out));
}

Test(import_real, ratio_tokens_per_item_and_windows) {
    const char *in = write_text("w.jsonl", "{\"text\": 10, \"image\": [1024, 1024], \"audio\": [2000, 1500, 700]}\n");
    const char *out = th_tmp("w.h5");
    uint32_t ratio[4] = {0, 1, 0, 0}, tpi[4] = {0, 256, 0, 0};
    ImportOptions o = {.ratio = ratio, .tokens_per_item = tpi};
    ImportSummary sum;
    cr_assert_eq(run_opts(in, out, 1, &o, &sum), OS_OK, "%s", os_last_error());
    cr_assert_eq(sum.over_window[2], 1u, "one clip over Whisper's 1500 positions");
    cr_assert_eq(sum.longest[2], 2000u);
    cr_assert_eq(sum.over_window[1], 0u);
    Trace *t = NULL;
    cr_assert_eq(trace_open(&t, out), OS_OK, "%s", os_last_error());
    cr_assert_eq(trace_modality(t, 1)->default_ratio, 1u);
    cr_assert_eq(trace_tokens_per_item(t, 1), 256u);
    cr_assert_eq(trace_tokens_per_item(t, 2), 0u);
    const TraceStep *s;
    cr_assert_eq(trace_read_step(t, 0, &s), OS_OK);
    uint32_t r[4] = {1, 1, 2, 4}, k[4] = {0, 256, 0, 0};
    /* 10 + 2 x 256 (fixed per image) + ceil(2000/2) + ceil(1500/2) + ceil(700/2) */
    cr_assert_eq(trace_llm_tokens_tpi(s, 0, r, k), 10u + 512u + 1000u + 750u + 350u);
    trace_close(t);
}

/* The committed import corpus (traces/fuzz/corpus-import): every input ends in a trace that
 * validates or in one message, never a crash, and a failure leaves no output. */
Test(import_real, fuzz_corpus_replays) {
    DIR *d = opendir(ORCHSIM_SRC "/traces/fuzz/corpus-import");
    if (!d) cr_skip_test("no traces/fuzz/corpus-import");
    struct dirent *e;
    const char *out = th_tmp("corpus.h5");
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", ORCHSIM_SRC "/traces/fuzz/corpus-import", e->d_name);
        for (int f = 0; f < 2; f++) {
            ImportConfig cfg = {p, out, f ? "csv" : "jsonl", 2, 1, f, 3, 1, 0, NULL};
            ImportSummary sum;
            os_clear_error();
            OsStatus st = import_run(&cfg, &sum);
            if (st == OS_OK) {
                Trace *t = NULL;
                cr_assert_eq(trace_open(&t, out), OS_OK, "%s: %s", p, os_last_error());
                cr_assert_eq(trace_validate(t), OS_OK, "%s", p);
                cr_assert_eq(trace_n_examples(t), sum.examples);
                trace_close(t);
                remove(out);
            } else {
                cr_assert(os_has_error(), "%s: rejected without a message", p);
                cr_assert(!th_exists(out), "%s: a failed import left its output", p);
            }
        }
    }
    closedir(d);
}
