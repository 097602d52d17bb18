/* test_outputs.c — how orchsim writes (issue 14, item 4): temp + rename only for regular files
 * and new paths, devices and FIFOs written in place, stdout for "-", outputs never over an
 * input, all or nothing per command (hold/release), SIGINT/TERM/HUP removing the command's
 * temp files with exit status 128 + signal, full disks (a small tmpfs, or RLIMIT_FSIZE) ending
 * in one error with nothing left behind, and the timeline and numeric-option defects. */
#define _GNU_SOURCE 1
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "cli/opts.h"
#include "helpers.h"
#include "traces/trace.h"

static void write_file(const char *p, const char *body) {
    FILE *f = fopen(p, "w");
    cr_assert(f, "%s", p);
    fputs(body, f);
    fclose(f);
}

static int tmp_left(const char *path) {
    char pat[4200];
    glob_t g;
    snprintf(pat, sizeof pat, "%s.tmp.*", path);
    int rc = glob(pat, 0, NULL, &g);
    globfree(&g);
    return rc != GLOB_NOMATCH;
}

static void need_bin(void) {
    if (!th_exists(ORCHSIM_BIN)) cr_skip_test("orchsim binary not built");
}

/* A small trace for the CLI cases. */
static const char *small_trace(const char *name, const char *extra) {
    const char *p = th_tmp(name);
    char args[1400], *out = NULL;
    snprintf(args, sizeof args, "gen --steps 2 --global-batch 64 --dp 8 %s -o %s", extra ? extra : "", p);
    int rc = th_run(&out, args);
    cr_assert_eq(rc, 0, "%s", out);
    free(out);
    return p;
}

/* ---- the library: what os_outfile_open decides -------------------------------------------- */

Test(outputs, new_and_regular_paths_go_through_a_temp_file) {
    char p[1200];
    snprintf(p, sizeof p, "%s", th_tmp("reg.csv"));
    write_file(p, "old\n");
    OsOutFile f;
    cr_assert_eq(os_outfile_open(&f, p, 1), OS_OK, "%s", os_last_error());
    cr_assert_eq(f.in_place, 0);
    fputs("new\n", f.fp);
    cr_assert(tmp_left(p), "the temp file exists while writing");
    FILE *r = fopen(p, "r");
    char buf[16] = "";
    cr_assert(fgets(buf, sizeof buf, r));
    fclose(r);
    cr_assert_str_eq(buf, "old\n", "the old file is untouched until the commit");
    cr_assert_eq(os_outfile_commit(&f), OS_OK);
    r = fopen(p, "r");
    cr_assert(fgets(buf, sizeof buf, r));
    fclose(r);
    cr_assert_str_eq(buf, "new\n");
    cr_assert(!tmp_left(p));
}

Test(outputs, fifo_is_written_in_place) {
    char p[1200];
    snprintf(p, sizeof p, "%s", th_tmp("out.fifo"));
    unlink(p);
    cr_assert_eq(mkfifo(p, 0600), 0);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) { /* the reader: count bytes, report them */
        close(fds[0]);
        int fd = open(p, O_RDONLY);
        char b[256];
        ssize_t n, tot = 0;
        while ((n = read(fd, b, sizeof b)) > 0) tot += n;
        ssize_t w = write(fds[1], &tot, sizeof tot);
        _exit(w == sizeof tot ? 0 : 1);
    }
    close(fds[1]);
    OsOutFile f;
    cr_assert_eq(os_outfile_open(&f, p, 1), OS_OK, "%s", os_last_error());
    cr_assert_eq(f.in_place, 1);
    fputs("hello", f.fp);
    cr_assert_eq(os_outfile_commit(&f), OS_OK, "%s", os_last_error());
    ssize_t got = 0;
    cr_assert_eq(read(fds[0], &got, sizeof got), (ssize_t)sizeof got);
    waitpid(pid, NULL, 0);
    cr_assert_eq(got, 5);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert(S_ISFIFO(sb.st_mode), "the FIFO was replaced by a regular file");
    cr_assert(!tmp_left(p));
    /* HDF5 outputs need a regular file: refused, the FIFO left alone */
    os_clear_error();
    cr_assert_eq(os_outfile_open(&f, p, 0), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "needs a regular file"), "%s", os_last_error());
}

Test(outputs, device_is_written_in_place) {
    if (geteuid() != 0) cr_skip_test("not root: cannot make a device node (the FIFO case covers in-place writes)");
    char p[1200];
    snprintf(p, sizeof p, "%s", th_tmp("null.dev"));
    unlink(p);
    cr_assert_eq(mknod(p, S_IFCHR | 0666, makedev(1, 3)), 0, "mknod: %s", strerror(errno)); /* a /dev/null */
    OsOutFile f;
    cr_assert_eq(os_outfile_open(&f, p, 1), OS_OK, "%s", os_last_error());
    fputs("discarded\n", f.fp);
    cr_assert_eq(os_outfile_commit(&f), OS_OK);
    struct stat sb;
    cr_assert_eq(stat(p, &sb), 0);
    cr_assert(S_ISCHR(sb.st_mode), "the device node was replaced by a regular file");
    /* through the CLI too: replay --csv to the device, exit 0, still a device */
    if (th_exists(ORCHSIM_BIN)) {
        const char *t = small_trace("dev.h5", NULL);
        char args[3000], *out = NULL;
        snprintf(args, sizeof args, "replay %s --model tiny --no-progress --csv %s", t, p);
        cr_assert_eq(th_run(&out, args), 0, "%s", out);
        free(out);
        cr_assert_eq(stat(p, &sb), 0);
        cr_assert(S_ISCHR(sb.st_mode), "replay replaced the device node");
    }
    unlink(p);
}

Test(outputs, symlink_keeps_the_link) {
    char target[1200], link[1200];
    snprintf(target, sizeof target, "%s", th_tmp("target.csv"));
    snprintf(link, sizeof link, "%s", th_tmp("link.csv"));
    write_file(target, "old\n");
    unlink(link);
    cr_assert_eq(symlink(target, link), 0);
    OsOutFile f;
    cr_assert_eq(os_outfile_open(&f, link, 1), OS_OK, "%s", os_last_error());
    fputs("new\n", f.fp);
    cr_assert_eq(os_outfile_commit(&f), OS_OK);
    struct stat sb;
    cr_assert_eq(lstat(link, &sb), 0);
    cr_assert(S_ISLNK(sb.st_mode), "the symbolic link was replaced");
    FILE *r = fopen(target, "r");
    char buf[16] = "";
    cr_assert(fgets(buf, sizeof buf, r));
    fclose(r);
    cr_assert_str_eq(buf, "new\n");
}

Test(outputs, refusals) {
    OsOutFile f;
    char in[1200];
    snprintf(in, sizeof in, "%s", th_tmp("input.jsonl"));
    write_file(in, "{\"text\": 1}\n");
    os_input_note(in);
    os_clear_error();
    cr_assert_eq(os_outfile_open(&f, in, 1), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "is also an input of this command"), "%s", os_last_error());
    os_input_drop(in);
    os_clear_error();
    cr_assert_eq(os_outfile_open(&f, th_tmp("no-such-dir/x.csv"), 1), OS_ERR_IO);
    cr_assert(strstr(os_last_error(), "does not exist"), "%s", os_last_error());
    os_clear_error();
    cr_assert_eq(os_outfile_open(&f, ORCHSIM_TEST_TMP, 1), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "is a directory"), "%s", os_last_error());
    OsOutFile a;
    cr_assert_eq(os_outfile_open(&a, th_tmp("twice.csv"), 1), OS_OK);
    os_clear_error();
    cr_assert_eq(os_outfile_open(&f, th_tmp("twice.csv"), 1), OS_ERR_ARG);
    cr_assert(strstr(os_last_error(), "already an output"), "%s", os_last_error());
    os_outfile_abort(&a);
    cr_assert_eq(os_tmp_count(), 0u);
}

Test(outputs, hold_release_is_all_or_nothing) {
    char a[1200], b[1200];
    snprintf(a, sizeof a, "%s", th_tmp("all-a.csv"));
    snprintf(b, sizeof b, "%s", th_tmp("all-b.csv"));
    unlink(a);
    unlink(b);
    uint64_t m = os_outputs_hold();
    OsOutFile fa, fb;
    cr_assert_eq(os_outfile_open(&fa, a, 1), OS_OK);
    fputs("a\n", fa.fp);
    cr_assert_eq(os_outfile_commit(&fa), OS_OK);
    cr_assert(!th_exists(a), "committed before the release");
    cr_assert_eq(os_outfile_open(&fb, b, 1), OS_OK);
    os_outfile_abort(&fb); /* the command then fails */
    cr_assert_eq(os_outputs_release(m, OS_ERR_IO), OS_ERR_IO);
    cr_assert(!th_exists(a) && !tmp_left(a), "a failed command left an output");
    cr_assert_eq(os_tmp_count(), 0u);
    /* success: both renamed at the outermost release, not the inner one */
    uint64_t m1 = os_outputs_hold(), m2 = os_outputs_hold();
    cr_assert_eq(os_outfile_open(&fa, a, 1), OS_OK);
    cr_assert_eq(os_outfile_commit(&fa), OS_OK);
    cr_assert_eq(os_outputs_release(m2, OS_OK), OS_OK);
    cr_assert(!th_exists(a));
    cr_assert_eq(os_outfile_open(&fb, b, 1), OS_OK);
    cr_assert_eq(os_outfile_commit(&fb), OS_OK);
    cr_assert_eq(os_outputs_release(m1, OS_OK), OS_OK);
    cr_assert(th_exists(a) && th_exists(b));
    cr_assert(!tmp_left(a) && !tmp_left(b));
}

/* ---- the CLI ----------------------------------------------------------------------------------- */

Test(outputs_cli, output_equal_to_input_is_refused) {
    need_bin();
    const char *t = small_trace("self.h5", NULL);
    struct stat before, after;
    cr_assert_eq(stat(t, &before), 0);
    char args[3000], *out = NULL;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --csv %s", t, t);
    cr_assert_neq(th_run(&out, args), 0);
    cr_assert(strstr(out, "is also an input of this command"), "%s", out);
    free(out);
    cr_assert_eq(stat(t, &after), 0);
    cr_assert_eq(before.st_ino, after.st_ino, "the trace was replaced");
    char in[1200];
    snprintf(in, sizeof in, "%s", th_tmp("self.jsonl"));
    write_file(in, "{\"text\": 1}\n");
    snprintf(args, sizeof args, "import %s -o %s -b 1 -d 1", in, in);
    cr_assert_neq(th_run(&out, args), 0);
    cr_assert(strstr(out, "is also an input"), "%s", out);
    free(out);
    FILE *r = fopen(in, "r");
    char buf[64] = "";
    cr_assert(fgets(buf, sizeof buf, r));
    fclose(r);
    cr_assert_str_eq(buf, "{\"text\": 1}\n", "import replaced its own input");
    /* the same through stdin: `import - -o a.jsonl < a.jsonl` */
    snprintf(args, sizeof args, "import - -o %s -b 1 -d 1 < %s", in, in);
    cr_assert_neq(th_run(&out, args), 0);
    cr_assert(strstr(out, "is also an input"), "%s", out);
    free(out);
}

Test(outputs_cli, dash_is_stdout) {
    need_bin();
    const char *t = small_trace("dash.h5", NULL);
    char args[3000], *out = NULL;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --csv - 2>/dev/null", t);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    cr_assert(strstr(out, "policy,step,"), "no CSV header on stdout: %s", out);
    free(out);
    cr_assert(!th_exists("-"), "wrote a file named '-'");
}

/* Defect 8: a timeline step that is never replayed is an error, not a success message. */
Test(outputs_cli, timeline_step_outside_the_replay) {
    need_bin();
    const char *t = small_trace("tl.h5", NULL);
    char tl[1200], args[3000], *out = NULL;
    snprintf(tl, sizeof tl, "%s", th_tmp("tl.json"));
    unlink(tl);
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --timeline %s --timeline-step 99 --steps 2", t, tl);
    int rc = th_run(&out, args);
    cr_assert_neq(rc, 0, "%s", out);
    cr_assert(strstr(out, "--timeline-step") && strstr(out, "this replay has 2 steps"), "%s", out);
    cr_assert(!strstr(out, "timeline     "), "printed a timeline line: %s", out);
    free(out);
    cr_assert(!th_exists(tl));
}

/* Defect 10: a failing output commits none of the command's outputs. */
Test(outputs_cli, sweep_with_a_bad_h5_path_writes_nothing) {
    need_bin();
    const char *t = small_trace("sw.h5", NULL);
    char csv[1200], args[3000], *out = NULL;
    snprintf(csv, sizeof csv, "%s", th_tmp("sw.csv"));
    unlink(csv);
    snprintf(args, sizeof args, "sweep %s --policies none --models tiny --gpus 8 -q -o %s --h5 %s", t, csv,
             th_tmp("nodir/x.h5"));
    cr_assert_neq(th_run(&out, args), 0, "%s", out);
    cr_assert(strstr(out, "nodir"), "%s", out);
    free(out);
    cr_assert(!th_exists(csv), "the CSV was committed");
    char pat[1300];
    glob_t g;
    snprintf(pat, sizeof pat, "%s.parts.*", csv);
    cr_assert_eq(glob(pat, 0, NULL, &g), GLOB_NOMATCH, "the sweep's scratch directory was left");
    globfree(&g);
    cr_assert(!tmp_left(csv));
}

/* Run orchsim with argv under RLIMIT_FSIZE = limit bytes (SIGXFSZ ignored: writes past it fail
 * with EFBIG, as on a full disk); returns the wait status. */
static int run_fsize(char *const *argv, rlim_t limit) {
    pid_t pid = fork();
    if (pid == 0) {
        struct rlimit rl = {limit, limit};
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
        int dn = open("/dev/null", O_WRONLY);
        dup2(dn, 1);
        dup2(dn, 2);
        execv(ORCHSIM_BIN, argv);
        _exit(127);
    }
    int ws = 0;
    waitpid(pid, &ws, 0);
    return ws;
}

Test(outputs_cli, replay_whose_assignment_fails_leaves_no_timeline) {
    need_bin();
    const char *t = small_trace("fsz.h5", "--global-batch 512");
    char tl[1200], a[1200], c[1200], tlc[1300];
    snprintf(tl, sizeof tl, "%s", th_tmp("fsz-tl.json"));
    snprintf(tlc, sizeof tlc, "%s", th_tmp("fsz-tl.csv"));
    snprintf(a, sizeof a, "%s", th_tmp("fsz-assign.csv"));
    snprintf(c, sizeof c, "%s", th_tmp("fsz-steps.csv"));
    char tc[1200];
    snprintf(tc, sizeof tc, "%s", t);
    char *argv[] = {"orchsim", "replay", tc, "--model", "tiny", "--no-progress", "--timeline", tl, "--csv", c,
                    "--assignment", a, NULL};
    int ws = run_fsize(argv, 64 * 1024); /* the assignment CSV is larger, the others smaller */
    cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 1, "status %d", ws);
    cr_assert(!th_exists(tl) && !th_exists(tlc) && !th_exists(c) && !th_exists(a), "a failed replay committed outputs");
    cr_assert(!tmp_left(tl) && !tmp_left(tlc) && !tmp_left(c) && !tmp_left(a));
}

/* Item 4: SIGINT, SIGTERM and SIGHUP remove the temp file, exit 128 + signal, keep the old file. */
Test(outputs_cli, signals_remove_temp_files) {
    need_bin();
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t k = 0; k < 3; k++) {
        char p[1200], tmp[1300];
        snprintf(p, sizeof p, "%s", th_tmp("sig.h5"));
        small_trace("sig.h5", NULL); /* the old file */
        struct stat before;
        cr_assert_eq(stat(p, &before), 0);
        pid_t pid = fork();
        if (pid == 0) {
            int dn = open("/dev/null", O_WRONLY);
            dup2(dn, 1);
            dup2(dn, 2);
            signal(sigs[k], SIG_DFL);
            execl(ORCHSIM_BIN, "orchsim", "gen", "--steps", "1000000", "-o", p, (char *)NULL);
            _exit(127);
        }
        snprintf(tmp, sizeof tmp, "%s.tmp.%ld", p, (long)pid);
        int seen = 0;
        for (int i = 0; i < 2000 && !seen; i++) {
            seen = th_exists(tmp);
            if (!seen) usleep(10000);
        }
        cr_assert(seen, "gen never created %s", tmp);
        usleep(200000); /* let it write a while */
        kill(pid, sigs[k]);
        int ws = 0;
        waitpid(pid, &ws, 0);
        cr_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 128 + sigs[k], "signal %d: status %d", sigs[k], ws);
        cr_assert(!th_exists(tmp), "signal %d left %s", sigs[k], tmp);
        struct stat after;
        cr_assert_eq(stat(p, &after), 0);
        cr_assert_eq(before.st_ino, after.st_ino, "the old file was replaced");
        Trace *t = NULL;
        cr_assert_eq(trace_open(&t, p), OS_OK, "the old file was damaged: %s", os_last_error());
        cr_assert_eq(trace_n_steps(t), 2u);
        trace_close(t);
    }
}

/* Defect 2: a full disk. A 256 KiB tmpfs in a private mount namespace (root only; skipped
 * otherwise); each shell line must exit 1 (one error, no crash) and leave the directory empty. */
static int in_small_fs(const char *dir, const char *const *lines, size_t n, char *msg, size_t cap) {
    int fds[2];
    if (pipe(fds) != 0) return 77;
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        if (unshare(CLONE_NEWNS) != 0) _exit(77);
        if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(77);
        mkdir(dir, 0700);
        if (mount("tmpfs", dir, "tmpfs", 0, "size=256k") != 0) _exit(77);
        for (size_t i = 0; i < n; i++) {
            int ws = system(lines[i]);
            char ls[1400], report[600];
            snprintf(ls, sizeof ls, "test -z \"$(ls -A %s)\"", dir);
            int empty = system(ls) == 0;
            int ok = WIFEXITED(ws) && WEXITSTATUS(ws) == 1;
            if (!ok || !empty) {
                snprintf(report, sizeof report, "line %zu: status %d (want exit 1), directory %s", i,
                         WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws), empty ? "empty" : "NOT empty");
                ssize_t w = write(fds[1], report, strlen(report));
                (void)w;
                _exit(1);
            }
        }
        _exit(0);
    }
    close(fds[1]);
    ssize_t r = read(fds[0], msg, cap - 1);
    msg[r > 0 ? r : 0] = '\0';
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    return WIFEXITED(ws) ? WEXITSTATUS(ws) : 1;
}

Test(outputs_cli, full_disk_fails_cleanly) {
    need_bin();
    if (geteuid() != 0) cr_skip_test("not root: cannot mount a small tmpfs for the full-disk cases");
    const char *t = small_trace("fd.h5", NULL);
    char dir[1200], big[1300], l1[3000], l2[3000], l3[8000];
    snprintf(dir, sizeof dir, "%s", th_tmp("smallfs"));
    snprintf(big, sizeof big, "%s", th_tmp("big.jsonl"));
    FILE *f = fopen(big, "w");
    uint64_t x = 88172645463325252ull; /* xorshift: lengths that do not compress away */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        fprintf(f, "{\"text\": %u, \"image\": [%u, %u]}\n", (unsigned)(x % 30000), (unsigned)(x >> 20) % 100000 + 1,
                (unsigned)(x >> 40) % 100000 + 1);
    }
    fclose(f);
    snprintf(l1, sizeof l1, "%s gen --steps 500 -o %s/big.h5 2>/dev/null", ORCHSIM_BIN, dir);
    snprintf(l2, sizeof l2, "%s import %s -o %s/imp.h5 -b 8 -d 1 2>/dev/null", ORCHSIM_BIN, big, dir);
    /* 12 KiB free: the sweep's scratch files or its HDF5 copy run out of space */
    snprintf(l3, sizeof l3,
             "dd if=/dev/zero of=%s/fill bs=1k count=244 2>/dev/null; %s sweep %s --policies none,lpt,kk,sorted "
             "--models tiny --gpus 8,16 -q -o %s/s.csv --h5 %s/s.h5 2>/dev/null; rc=$?; rm -f %s/fill; exit $rc",
             dir, ORCHSIM_BIN, t, dir, dir, dir);
    const char *lines[] = {l1, l2, l3};
    char msg[600];
    int r = in_small_fs(dir, lines, 3, msg, sizeof msg);
    if (r == 77) cr_skip_test("cannot mount a small tmpfs here");
    cr_assert_eq(r, 0, "%s", msg);
}

/* ---- defect 6: numbers ---------------------------------------------------------------------- */

Test(outputs, numeric_options_one_rule) {
    double bw = OPTS_AUTO, lat = 5.0;
    const OptSpec specs[] = {
        {"bw", 0, OPT_F64_AUTO, &bw, "GB/s|auto", "bandwidth", 1, 1e5},
        {"lat", 0, OPT_F64_AUTO, &lat, "us|auto", "latency", 0, 1e4},
    };
    const CmdHelp help = {"t", "t", "t", NULL};
    struct {
        const char *arg;
        int ok;
        double want;
        const char *needle;
    } cases[] = {
        {"--bw=auto", 1, OPTS_AUTO, NULL},   {"--bw=450", 1, 450, NULL},
        {"--bw=1e-300", 0, 0, "outside the range [1, 100000]"}, {"--bw=-0.5", 0, 0, "is negative"},
        {"--bw=-1", 0, 0, "write auto for the default"},         {"--bw=nan", 0, 0, "not a finite number"},
        {"--bw=inf", 0, 0, "not a finite number"},               {"--bw=1e400", 0, 0, "not a finite number"},
        {"--lat=0", 1, 0, NULL},                                 {"--lat=-0.5", 0, 0, "--lat"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a0[] = "t", a1[64];
        snprintf(a1, sizeof a1, "%s", cases[i].arg);
        char *argv[] = {a0, a1, NULL};
        bw = OPTS_AUTO;
        lat = 5.0;
        os_clear_error();
        OsStatus st = opts_parse(specs, 2, &help, 2, argv, NULL, 0, 0, NULL);
        if (cases[i].ok) {
            cr_assert_eq(st, OS_OK, "%s: %s", cases[i].arg, os_last_error());
            double got = !strncmp(cases[i].arg, "--bw", 4) ? bw : lat;
            cr_assert_eq(got, cases[i].want, "%s", cases[i].arg);
        } else {
            cr_assert_eq(st, OS_ERR_ARG, "%s accepted", cases[i].arg);
            cr_assert(strstr(os_last_error(), cases[i].needle), "%s: %s", cases[i].arg, os_last_error());
        }
    }
}

Test(outputs_cli, simulator_numbers_name_the_option) {
    need_bin();
    const char *t = small_trace("num.h5", NULL);
    const char *bad[][2] = {{"--intra-bw 1e-300", "--intra-bw"}, {"--inter-bw 1e-300", "--inter-bw"},
                            {"--peak-tflops 1e-300", "--peak-tflops"}, {"--intra-lat -0.5", "negative"},
                            {"--balancer-cost -0.5", "negative"}, {"--inter-lat -0.01", "negative"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[3000], *out = NULL;
        snprintf(args, sizeof args, "replay %s --model tiny --no-progress %s", t, bad[i][0]);
        int rc = th_run(&out, args);
        cr_assert_eq(rc, 2, "%s: rc %d: %s", bad[i][0], rc, out);
        cr_assert(strstr(out, bad[i][1]), "%s: %s", bad[i][0], out);
        free(out);
    }
    char args[3000], *out = NULL;
    snprintf(args, sizeof args, "replay %s --model tiny --no-progress --intra-bw auto --peak-tflops auto", t);
    cr_assert_eq(th_run(&out, args), 0, "%s", out);
    free(out);
}

/* Defect 9: --ratio lists are strict. */
Test(outputs_cli, ratio_lists_are_strict) {
    need_bin();
    const char *t = small_trace("ratio.h5", NULL);
    const char *bad[][2] = {{",", "empty entry"}, {"image=4,image=2", "given twice"}, {"image=4,", "empty entry"},
                            {"text=2", "unknown modality"}, {"image", "expected NAME=V"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[3000], *out = NULL;
        snprintf(args, sizeof args, "info %s --ratio '%s'", t, bad[i][0]);
        cr_assert_neq(th_run(&out, args), 0, "--ratio '%s' accepted", bad[i][0]);
        cr_assert(strstr(out, bad[i][1]), "--ratio '%s': %s", bad[i][0], out);
        free(out);
    }
}
