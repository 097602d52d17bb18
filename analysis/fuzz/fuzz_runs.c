/* fuzz_runs.c — libFuzzer target: bytes as a published-runs table (analysis/fidelity.h), read
 * by `orchsim fidelity`'s reader as CSV or, when the first byte is odd, as a markdown file's
 * pipe tables (analysis/csv.h; the reader picks the format by the file's extension, so the
 * input is written to a scratch file named .csv or .md). Every accepted row's cells are read
 * back as text and as numbers. Must not crash, hang or leak; errors are fine. */
#include "traces/fuzz/fuzz_common.h"

#include "analysis/csv.h"
#include "analysis/fidelity.h"

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char path[1024];
    int md = size > 0 && (data[0] & 1);
    if (fuzz_scratch_file(size ? data + 1 : data, size ? size - 1 : 0, md ? "runs.md" : "runs.csv", path, sizeof path))
        return 0;
    CsvTable *t = NULL;
    if (csv_read(&t, path) == OS_OK) {
        for (size_t r = 0; r < csv_n_rows(t); r++)
            for (size_t c = 0; c < csv_n_cols(t); c++) {
                double v;
                (void)csv_str(t, r, c);
                (void)csv_num(&v, t, r, c);
            }
        csv_destroy(t);
    }
    os_clear_error();
    FidRun *runs = NULL;
    size_t n = 0, skipped = 0;
    (void)fid_read_runs_md(&runs, &n, &skipped, path);
    free(runs);
    os_clear_error();
    unlink(path);
    return 0;
}
