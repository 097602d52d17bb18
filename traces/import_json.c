/* import_json.c — the JSON side of import.h: JSON lines (one object per line; an object may
 * span lines) or a single JSON array of objects, read as a byte stream with one byte of
 * lookahead, so no line or file is ever held whole. Values of known keys: numbers (integral),
 * lists of numbers, null; of "id" also strings (hashed). Values of unknown keys, when skipped,
 * may be anything JSON allows (nesting at most JSON_MAX_DEPTH).
 * Errors name the file, the line and the field; at the end of the input, the line where the
 * unclosed object began. */
#include <string.h>

#include "base/util.h"
#include "traces/import_internal.h"

#define JSON_MAX_DEPTH 64
#define JSON_NUM_CAP 64

typedef struct {
    ImportCtx *c;
    uint64_t obj_line; /* where the current object began */
} Json;

static int is_ws(int ch) { return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n'; }

static int skip_ws(Json *j) {
    int ch;
    while ((ch = import_peek(j->c)) >= 0 && is_ws(ch)) import_get(j->c);
    return ch;
}

/* A parse error at the current byte; at the end of the input, at the object's first line. */
static OsStatus jfail(Json *j, int ch, const char *field, const char *hint, const char *what) {
    if (ch == -2) return OS_ERR_FORMAT; /* the reader recorded its own error */
    if (ch == -1)
        return import_fail(j->c, j->obj_line, field, hint, "%s (end of input: the object is not closed)", what);
    return import_fail(j->c, 0, field, hint, "%s", what);
}

/* Append code point cp as UTF-8 to the hash and (while room) to buf. */
static void put_utf8(uint32_t cp, char *buf, size_t cap, size_t *n, uint64_t *h) {
    unsigned char u[4];
    int k;
    if (cp < 0x80) u[0] = (unsigned char)cp, k = 1;
    else if (cp < 0x800) u[0] = (unsigned char)(0xc0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 63)), k = 2;
    else if (cp < 0x10000)
        u[0] = (unsigned char)(0xe0 | cp >> 12), u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63)),
        u[2] = (unsigned char)(0x80 | (cp & 63)), k = 3;
    else
        u[0] = (unsigned char)(0xf0 | cp >> 18), u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63)),
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63)), u[3] = (unsigned char)(0x80 | (cp & 63)), k = 4;
    for (int i = 0; i < k; i++) {
        if (h) *h = import_hash_byte(*h, u[i]);
        if (buf && *n + 1 < cap) buf[(*n)++] = (char)u[i];
    }
}

static int hex4(Json *j, uint32_t *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int ch = import_get(j->c);
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return ch == -2 ? -2 : -1;
        *v = *v * 16 + (uint32_t)d;
    }
    return 0;
}

/* A JSON string (the opening quote is next). Unescaped bytes go to the hash (whole) and to
 * buf (first cap-1 bytes, terminated); *len = the full length. */
static OsStatus parse_string(Json *j, const char *field, char *buf, size_t cap, size_t *len, uint64_t *h) {
    size_t n = 0, full = 0;
    import_get(j->c); /* '"' */
    for (;;) {
        int ch = import_get(j->c);
        if (ch < 0) return jfail(j, ch, field, NULL, "unterminated string");
        if (ch == '"') break;
        if (ch < 0x20) return jfail(j, ch, field, "escape control characters as \\n, \\t, ...", "control character in a string");
        if (ch != '\\') {
            if (h) *h = import_hash_byte(*h, (unsigned char)ch);
            if (buf && n + 1 < cap) buf[n++] = (char)ch;
            full++;
            continue;
        }
        int e = import_get(j->c);
        uint32_t cp = 0;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            int r = hex4(j, &cp);
            if (r) return jfail(j, r == -2 ? -2 : 0, field, NULL, "bad \\u escape");
            if (cp >= 0xd800 && cp < 0xdc00) { /* a surrogate pair */
                uint32_t lo = 0;
                if (import_get(j->c) != '\\' || import_get(j->c) != 'u' || hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return jfail(j, 0, field, NULL, "unpaired UTF-16 surrogate in a \\u escape");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return jfail(j, 0, field, NULL, "unpaired UTF-16 surrogate in a \\u escape");
            }
            break;
        }
        default: return jfail(j, e < 0 ? e : 0, field, NULL, "bad escape in a string");
        }
        size_t before = n;
        put_utf8(cp, buf, cap, &n, h);
        full += n > before ? n - before : 1;
    }
    if (buf) buf[n < cap ? n : cap - 1] = '\0';
    if (len) *len = full;
    return OS_OK;
}

/* The text of a number token (JSON's characters), bounded. */
static OsStatus number_text(Json *j, const char *field, char *buf, size_t *n) {
    *n = 0;
    int ch;
    while ((ch = import_peek(j->c)) >= 0 &&
           ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == '.' || ch == 'e' || ch == 'E')) {
        if (*n + 1 >= JSON_NUM_CAP) return jfail(j, 0, field, NULL, "number longer than 63 characters");
        buf[(*n)++] = (char)import_get(j->c);
    }
    buf[*n] = '\0';
    return ch == -2 ? OS_ERR_FORMAT : OS_OK;
}

/* true / false / null: *lit = 't', 'f' or 'n'. */
static OsStatus literal(Json *j, const char *field, int *lit) {
    static const char *const words[] = {"true", "false", "null"};
    int ch = import_peek(j->c);
    for (int w = 0; w < 3; w++) {
        if (ch != words[w][0]) continue;
        for (const char *p = words[w]; *p; p++)
            if (import_get(j->c) != *p) return jfail(j, 0, field, NULL, "expected a value");
        *lit = words[w][0];
        return OS_OK;
    }
    return jfail(j, ch, field, NULL, "expected a value");
}

/* Skip any JSON value (for an unknown key). */
static OsStatus skip_value(Json *j, const char *field, int depth) {
    OsStatus st = OS_OK;
    int ch = skip_ws(j);
    if (depth > JSON_MAX_DEPTH) return jfail(j, 0, field, NULL, "nested more than 64 levels");
    if (ch == '"') return parse_string(j, field, NULL, 0, NULL, NULL);
    if (ch == '{' || ch == '[') {
        int close = ch == '{' ? '}' : ']';
        import_get(j->c);
        ch = skip_ws(j);
        if (ch == close) {
            import_get(j->c);
            return OS_OK;
        }
        for (;;) {
            if (close == '}') {
                if (skip_ws(j) != '"') return jfail(j, import_peek(j->c), field, NULL, "expected a quoted key");
                OS_CHECK(parse_string(j, field, NULL, 0, NULL, NULL));
                if (skip_ws(j) != ':') return jfail(j, import_peek(j->c), field, NULL, "expected ':'");
                import_get(j->c);
            }
            OS_CHECK(skip_value(j, field, depth + 1));
            ch = skip_ws(j);
            if (ch == ',') {
                import_get(j->c);
                continue;
            }
            if (ch == close) {
                import_get(j->c);
                return OS_OK;
            }
            return jfail(j, ch, field, NULL, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
        }
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) {
        char buf[JSON_NUM_CAP];
        size_t n;
        return number_text(j, field, buf, &n);
    }
    int lit;
    return literal(j, field, &lit);
fail:
    return st;
}

/* One number of field `kind` (not an id). */
static OsStatus number_value(Json *j, ImportRow *r, int kind, const char *field, int list) {
    OsStatus st = OS_OK;
    char buf[JSON_NUM_CAP];
    size_t n;
    uint64_t v;
    OS_CHECK(number_text(j, field, buf, &n));
    int why = import_number(buf, n, &v);
    if (why) return import_number_fail(j->c, field, why, list);
    OS_CHECK(import_row_set(j->c, r, kind, field, v));
fail:
    return st;
}

/* The value of a known key. */
static OsStatus known_value(Json *j, ImportRow *r, int kind, const char *key) {
    OsStatus st = OS_OK;
    int ch = skip_ws(j);
    if (kind == COL_ID && ch == '"') { /* a string id: FNV-1a 64 of its bytes */
        uint64_t h = import_hash_init();
        OS_CHECK(parse_string(j, key, NULL, 0, NULL, &h));
        r->id = h;
        r->has_id = 1;
        j->c->sum->string_ids++;
        return OS_OK;
    }
    if (ch == 'n' || ch == 't' || ch == 'f') {
        int lit = 0;
        OS_CHECK(literal(j, key, &lit));
        if (lit != 'n') return import_fail(j->c, 0, key, NULL, "expected %s", kind >= 1 ? "an integer or a list of integers" : "an integer");
        if (kind == COL_TEXT)
            return import_fail(j->c, 0, key, "every example needs its text token count", "null");
        return OS_OK; /* id: the default; a modality: no items */
    }
    if (ch == '[') {
        if (kind < 1) return import_fail(j->c, 0, key, NULL, "expected an integer");
        import_get(j->c);
        ch = skip_ws(j);
        if (ch == ']') {
            import_get(j->c);
            return OS_OK;
        }
        for (;;) {
            ch = skip_ws(j);
            if (ch != '-' && (ch < '0' || ch > '9'))
                return ch < 0 ? jfail(j, ch, key, NULL, "expected an integer or a list of integers")
                              : import_number_fail(j->c, key, 1, 1);
            OS_CHECK(number_value(j, r, kind, key, 1));
            ch = skip_ws(j);
            if (ch == ',') {
                import_get(j->c);
                continue;
            }
            if (ch == ']') {
                import_get(j->c);
                return OS_OK;
            }
            return jfail(j, ch, key, NULL, "expected ',' or ']' in the list");
        }
    }
    if (ch == '-' || (ch >= '0' && ch <= '9')) return number_value(j, r, kind, key, kind >= 1);
    if (ch < 0) return jfail(j, ch, key, NULL, "expected a value");
    if (kind == COL_ID) return import_fail(j->c, 0, key, NULL, "expected an integer or a string");
    return import_number_fail(j->c, key, 1, kind >= 1);
fail:
    return st;
}

/* One object; the '{' is next. */
static OsStatus parse_object(Json *j, ImportRow *r) {
    OsStatus st = OS_OK;
    unsigned seen = 0; /* bit per field kind: id, text, modalities */
    char key[IMPORT_KEY_CAP], shown[80];
    j->obj_line = j->c->rd->line;
    import_get(j->c);
    int ch = skip_ws(j);
    if (ch == '}') {
        import_get(j->c);
        goto end;
    }
    for (;;) {
        ch = skip_ws(j);
        if (ch != '"') return jfail(j, ch, NULL, NULL, "expected a quoted key");
        size_t kl = 0;
        OS_CHECK(parse_string(j, NULL, key, sizeof key, &kl, NULL));
        os_escape(shown, sizeof shown, key, kl < sizeof key ? kl : sizeof key - 1);
        int kind = kl < sizeof key ? import_key_kind(j->c, key, kl) : 0;
        if (skip_ws(j) != ':') return jfail(j, import_peek(j->c), shown, NULL, "expected ':'");
        import_get(j->c);
        if (!kind) {
            if (!j->c->ignore_unknown) {
                char hint[320];
                snprintf(hint, sizeof hint, "%s; --ignore-unknown skips other keys", j->c->known);
                return import_fail(j->c, 0, shown, hint, "unknown key");
            }
            import_note_unknown(j->c, key, kl < sizeof key ? kl : sizeof key - 1);
            OS_CHECK(skip_value(j, shown, 1));
        } else {
            unsigned bit = 1u << (kind + 2);
            if (seen & bit) return import_fail(j->c, 0, shown, NULL, "repeated key");
            seen |= bit;
            OS_CHECK(known_value(j, r, kind, shown));
        }
        ch = skip_ws(j);
        if (ch == ',') {
            import_get(j->c);
            continue;
        }
        if (ch == '}') {
            import_get(j->c);
            break;
        }
        return jfail(j, ch, shown, NULL, "expected ',' or '}' after the value");
    }
end:
    if (!r->has_text) return import_fail(j->c, j->obj_line, "text", "every example needs its text token count", "missing");
fail:
    return st;
}

static void row_reset(ImportRow *r) {
    r->has_id = r->has_text = 0;
    r->id = 0;
    r->text = 0;
    r->n_items = 0;
}

OsStatus import_json(ImportCtx *c, ImportRow *row, ImportRowFn *fn, void *user) {
    OsStatus st = OS_OK;
    Json j = {c, 1};
    int ch = skip_ws(&j);
    if (ch == '[') { /* one array of objects (OmniBal's and most JSON dumps) */
        snprintf(c->sum->format, sizeof c->sum->format, "json");
        import_get(c);
        ch = skip_ws(&j);
        if (ch == ']') import_get(c);
        else
            for (;;) {
                ch = skip_ws(&j);
                if (ch != '{')
                    return ch == -1 ? import_fail(c, 0, NULL, "close the array with ']'", "end of input inside the array")
                                    : jfail(&j, ch, NULL, "the array must hold objects like {\"text\": 512}", "expected '{'");
                row_reset(row);
                OS_CHECK(parse_object(&j, row));
                OS_CHECK(fn(user, row));
                ch = skip_ws(&j);
                if (ch == ',') {
                    import_get(c);
                    continue;
                }
                if (ch == ']') {
                    import_get(c);
                    break;
                }
                return ch == -1 ? import_fail(c, 0, NULL, "close the array with ']'", "end of input inside the array")
                                : jfail(&j, ch, NULL, NULL, "expected ',' or ']' between objects");
            }
        ch = skip_ws(&j);
        if (ch != -1) return jfail(&j, ch, NULL, "one JSON array per file", "trailing characters after ']'");
        return OS_OK;
    }
    snprintf(c->sum->format, sizeof c->sum->format, "jsonl");
    for (;;) {
        ch = skip_ws(&j);
        if (ch == -1) break;
        if (ch != '{')
            return jfail(&j, ch, NULL, "one JSON object per line, or one JSON array of objects", "expected '{'");
        row_reset(row);
        OS_CHECK(parse_object(&j, row));
        /* the rest of the line: blanks only */
        while ((ch = import_peek(c)) == ' ' || ch == '\t' || ch == '\r') import_get(c);
        if (ch >= 0 && ch != '\n') return jfail(&j, 0, NULL, "one JSON object per line", "trailing characters after '}'");
        if (ch == -2) return OS_ERR_FORMAT;
        OS_CHECK(fn(user, row));
    }
fail:
    return st;
}
