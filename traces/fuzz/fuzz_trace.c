/* fuzz_trace.c — libFuzzer target: arbitrary bytes as a trace file. The bytes go to a scratch
 * file (fuzz_common.h: removed after each input, and by the next process if this one dies),
 * which is opened and fully validated; any outcome but a crash, leak, hang or sanitizer report is fine, and every
 * rejection must carry a message. Build and run: traces/fuzz/run.sh. */
#include "traces/fuzz/fuzz_common.h" /* first: it sets _GNU_SOURCE */

#include <stdint.h>

#include "traces/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[640];
    if (fuzz_scratch_file(data, size, "trace.h5", path, sizeof path) != 0) return 0;
    os_clear_error();
    Trace *t = NULL;
    OsStatus st = trace_open(&t, path);
    if (st == OS_OK) {
        st = trace_validate(t);
        trace_close(t);
    }
    if (st != OS_OK && !os_has_error()) abort(); /* every rejection names its reason */
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s\n", st == OS_OK ? "accepted" : os_last_error());
    unlink(path);
    return 0;
}
