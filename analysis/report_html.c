/* report_html.c — see report_html.h. */
#include "analysis/report_html.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void report_html_escape(FILE *fp, const char *s) {
    for (const char *c = s ? s : ""; *c; c++) switch (*c) {
        case '&': fputs("&amp;", fp); break;
        case '<': fputs("&lt;", fp); break;
        case '>': fputs("&gt;", fp); break;
        case '"': fputs("&quot;", fp); break;
        case '\'': fputs("&#39;", fp); break;
        default: fputc(*c, fp);
        }
}

OsStatus report_html_svg(char **out, const char *path) {
    OsStatus st = OS_OK;
    char *buf = NULL;
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot read the figure: %s", strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "cannot size the figure");
    long n = ftell(fp);
    if (n < 0 || n > (64L << 20)) OS_FAIL(OS_ERR_FORMAT, path, NULL, NULL, "figure of %ld bytes", n);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    ALLOC_CHECK(buf);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) OS_FAIL(OS_ERR_IO, path, NULL, NULL, "short read");
    buf[n] = '\0';
    char *start = strstr(buf, "<svg");
    char *end = start ? strstr(start, "</svg>") : NULL;
    /* the last closing tag: an SVG may nest <svg> elements */
    for (char *e = end; e; e = strstr(e + 6, "</svg>")) end = e;
    if (!start || !end) OS_FAIL(OS_ERR_FORMAT, path, "<svg>", "draw the figure with the svg terminal", "no <svg> element");
    end += strlen("</svg>");
    size_t len = (size_t)(end - start);
    memmove(buf, start, len);
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
fail:
    free(buf);
    if (fp) fclose(fp);
    return st;
}

/* The element's ids and the references to them (url(#x), href="#x") prefixed with pre, so that
 * several figures on one page do not share ids (gnuplot names its definitions alike). */
static OsStatus prefix_ids(char **svg, const char *pre) {
    OsStatus st = OS_OK;
    static const char *const PAT[] = {"id=\"", "id='", "url(#", "href=\"#", "href='#"};
    const char *in = *svg;
    size_t extra = 0, plen = strlen(pre);
    for (size_t k = 0; k < OS_ARRAY_LEN(PAT); k++)
        for (const char *p = strstr(in, PAT[k]); p; p = strstr(p + 1, PAT[k])) extra += plen;
    char *out = malloc(strlen(in) + extra + 1), *o = out;
    ALLOC_CHECK(out);
    for (const char *p = in; *p;) {
        size_t hit = 0;
        for (size_t k = 0; k < OS_ARRAY_LEN(PAT) && !hit; k++) {
            size_t n = strlen(PAT[k]);
            /* a bare id= (not part of another attribute name such as "grid=") */
            int word = k > 1 || p == in || p[-1] == ' ' || p[-1] == '\t' || p[-1] == '\n';
            if (word && !strncmp(p, PAT[k], n)) hit = n;
        }
        if (hit) {
            memcpy(o, p, hit);
            o += hit;
            memcpy(o, pre, plen);
            o += plen;
            p += hit;
        } else *o++ = *p++;
    }
    *o = '\0';
    free(*svg);
    *svg = out;
fail:
    return st;
}

static void num(FILE *fp, double v, const char *fmt, double scale) {
    if (isfinite(v)) fprintf(fp, fmt, v * scale);
    else fputs("-", fp);
}

static const char *const PHASES[SCHEMA_N_PHASES] = {"image", "audio", "video", "llm"};

static void table(FILE *fp, const HtmlReport *r) {
    int has[SCHEMA_N_PHASES] = {0};
    for (size_t i = 0; i < r->n_rows; i++)
        for (int k = 0; k < SCHEMA_N_PHASES; k++) has[k] |= isfinite(r->rows[i].imbalance[k]);
    fputs("<table id=\"compare\">\n<thead><tr><th>policy</th><th>step s</th><th>&plusmn;95%</th><th>tokens/s</th>"
          "<th>MFU</th><th>speedup</th><th>idle</th>", fp);
    for (int k = 0; k < SCHEMA_N_PHASES; k++)
        if (has[k]) fprintf(fp, "<th>imb:%s</th>", PHASES[k]);
    fputs("<th>GB intra</th><th>GB inter</th><th>a2a ms</th><th>charge ms</th><th>measured ms</th><th>feasibility</th>"
          "</tr></thead>\n<tbody>\n", fp);
    for (size_t i = 0; i < r->n_rows; i++) {
        const RunRow *w = &r->rows[i];
        int rec = r->recommended && !strcmp(w->policy, r->recommended), orc = !strcmp(w->policy, "oracle");
        fprintf(fp, "<tr%s><td>", rec ? " class=\"recommended\"" : orc ? " class=\"oracle\"" : "");
        report_html_escape(fp, w->policy);
        if (rec) fputs(" &#9733;", fp);
        fputs("</td><td>", fp);
        num(fp, w->step_mean_s, "%.4f", 1);
        fputs("</td><td>", fp);
        num(fp, w->step_ci95_s, "%.4f", 1);
        fputs("</td><td>", fp);
        num(fp, w->tokens_per_s, "%.4g", 1);
        fputs("</td><td>", fp);
        num(fp, w->mfu, "%.1f%%", 100);
        fputs("</td><td>", fp);
        num(fp, w->speedup_vs_none, "%.2fx", 1);
        fputs("</td><td>", fp);
        num(fp, w->idle_frac, "%.1f%%", 100);
        fputs("</td>", fp);
        for (int k = 0; k < SCHEMA_N_PHASES; k++)
            if (has[k]) {
                fputs("<td>", fp);
                num(fp, w->imbalance[k], "%.3f", 1);
                fputs("</td>", fp);
            }
        fputs("<td>", fp);
        num(fp, w->bytes_intra_per_step, "%.3f", 1e-9);
        fputs("</td><td>", fp);
        num(fp, w->bytes_inter_per_step, "%.3f", 1e-9);
        fputs("</td><td>", fp);
        num(fp, w->a2a_s_per_step, "%.2f", 1e3);
        fputs("</td><td>", fp);
        num(fp, w->balancer_s_per_step, "%.3f", 1e3);
        fputs("</td><td>", fp);
        num(fp, w->balancer_measured_s_per_step, "%.3f", 1e3);
        fputs("</td><td>", fp);
        if (orc) fputs("bound", fp);
        else if (w->needs_recompute || w->long_examples) {
            if (w->needs_recompute) fprintf(fp, "%llu need --recompute ", (unsigned long long)w->needs_recompute);
            if (w->long_examples) fprintf(fp, "%llu over max length", (unsigned long long)w->long_examples);
        } else fputs("ok", fp);
        fputs("</td></tr>\n", fp);
    }
    fputs("</tbody></table>\n", fp);
}

static void lines(FILE *fp, const char *id, const char *head, const AdviseLine *l, size_t n) {
    if (!n) return;
    fprintf(fp, "<section id=\"%s\"><h2>%s</h2><ul>\n", id, head);
    for (size_t i = 0; i < n; i++) {
        fputs("<li><b>", fp);
        report_html_escape(fp, l[i].tag);
        fputs("</b>: ", fp);
        report_html_escape(fp, l[i].text);
        fputs("</li>\n", fp);
    }
    fputs("</ul></section>\n", fp);
}

/* Counts what laid out: a figure whose <svg> has a non-empty bounding box, and the table's body
 * rows. Inline: the page fetches nothing. */
static const char SCRIPT[] =
    "<script>\n"
    "window.addEventListener('load', function () {\n"
    "  var n = 0, svgs = document.querySelectorAll('figure svg');\n"
    "  for (var i = 0; i < svgs.length; i++) {\n"
    "    var b = svgs[i].getBoundingClientRect();\n"
    "    if (b.width > 0 && b.height > 0 && svgs[i].querySelectorAll('path, text').length > 0) n++;\n"
    "  }\n"
    "  var rows = document.querySelectorAll('#compare tbody tr').length;\n"
    "  document.documentElement.setAttribute('data-figures-rendered', String(n));\n"
    "  document.documentElement.setAttribute('data-table-rows', String(rows));\n"
    "});\n"
    "</script>\n";

OsStatus report_html_emit(FILE *fp, const HtmlReport *r) {
    OsStatus st = OS_OK;
    char *svg = NULL;
    const RunRow *p = r->n_rows ? &r->rows[0] : NULL;
    fputs("<!DOCTYPE html>\n<html lang=\"en\" data-figures-rendered=\"0\" data-table-rows=\"0\">\n<head>\n"
          "<meta charset=\"utf-8\">\n<title>", fp);
    report_html_escape(fp, r->title);
    fputs("</title>\n<style>\n"
          "body{font-family:sans-serif;margin:2em auto;max-width:1200px;color:#222}\n"
          "pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:13px}\n"
          "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}\n"
          "th:first-child,td:first-child{text-align:left}tr.recommended{background:#e8f4e8;font-weight:bold}\n"
          "tr.oracle{color:#666;font-style:italic}figure{margin:1.5em 0}figure svg{max-width:100%;height:auto}\n"
          "figcaption{font-size:13px;color:#444}dt{font-weight:bold}dd{margin:0 0 .4em 1.5em;font-family:monospace}\n"
          "</style>\n", fp);
    fputs(SCRIPT, fp);
    fputs("</head>\n<body>\n<h1>", fp);
    report_html_escape(fp, r->title);
    fputs("</h1>\n<section id=\"advice\"><h2>Advice</h2>\n<pre>", fp);
    report_html_escape(fp, r->advice_text);
    fputs("</pre></section>\n", fp);
    lines(fp, "diagnosis", "Diagnosis", r->diag, r->n_diag);
    lines(fp, "warnings", "Feasibility warnings", r->warn, r->n_warn);
    fputs("<section id=\"table\"><h2>Every policy</h2>\n", fp);
    table(fp, r);
    fputs("<p>oracle = the per-phase floor max(total/D, largest unit) summed over phases: no policy can beat it. "
          "charge = the balancer time charged to the step (how: see the provenance); measured = its runtime on the "
          "host that wrote this report.</p></section>\n<section id=\"figures\"><h2>Figures</h2>\n", fp);
    if (!r->n_fig) {
        fputs("<p>", fp);
        report_html_escape(fp, r->no_figures ? r->no_figures : "no figures");
        fputs("</p>\n", fp);
    }
    for (size_t i = 0; i < r->n_fig; i++) {
        char pre[32];
        OS_CHECK(report_html_svg(&svg, r->svg_paths[i]));
        snprintf(pre, sizeof pre, "f%zu-", i + 1);
        OS_CHECK(prefix_ids(&svg, pre));
        fprintf(fp, "<figure id=\"fig-%zu\">\n", i + 1);
        fputs(svg, fp);
        fputs("\n<figcaption>", fp);
        report_html_escape(fp, r->captions ? r->captions[i] : "");
        fputs("</figcaption></figure>\n", fp);
        free(svg);
        svg = NULL;
    }
    fputs("</section>\n", fp);
    if (p) {
        fputs("<section id=\"provenance\"><h2>Provenance</h2><dl>\n", fp);
        char g[96];
        snprintf(g, sizeof g, "%llu (%llu per node, TP %llu, DP %llu)", (unsigned long long)p->gpus,
                 (unsigned long long)p->gpus_per_node, (unsigned long long)p->tp, (unsigned long long)p->dp);
        const char *kv[][2] = {{"trace", p->trace},       {"trace hash (FNV-1a 64)", p->trace_hash},
                               {"model", p->model},       {"GPUs", g},
                               {"setup", p->setup},       {"recompute", p->recompute},
                               {"padded", p->padded ? "yes" : "no"}, {"calibration", p->calibration},
                               {"balancer charge", p->balancer_charge}, {"orchsim", p->orchsim_version},
                               {"command", p->command}};
        for (size_t i = 0; i < OS_ARRAY_LEN(kv); i++) {
            fputs("<dt>", fp);
            report_html_escape(fp, kv[i][0]);
            fputs("</dt><dd>", fp);
            report_html_escape(fp, kv[i][1]);
            fputs("</dd>\n", fp);
        }
        fputs("</dl></section>\n", fp);
    }
    fputs("</body>\n</html>\n", fp);
fail:
    free(svg);
    return st;
}

OsStatus report_html_write(const char *path, const HtmlReport *r) {
    OsStatus st = OS_OK;
    OsOutFile f;
    int open = 0;
    OS_CHECK(os_outfile_open(&f, path, 1));
    open = 1;
    OS_CHECK(report_html_emit(f.fp, r));
    open = 0;
    OS_CHECK(os_outfile_commit(&f));
fail:
    if (open) os_outfile_abort(&f);
    return st;
}
