/* tax-c: the `tax` example (functions/tax) in C, with wasi-libc, built by
 * `zig cc -target wasm32-wasi`. A Gojinn-style wasi-json function: the
 * request arrives as JSON on stdin, the response goes as JSON to stdout.
 * Body {"id": string or number, "value": number} -> 200
 * {"order_id": id, "total_final": value * 1.15} rounded to 2 decimals; any
 * other body -> 400 {"error": ...}.
 *
 * No JSON library: a small recursive-descent reader, enough for this
 * contract (objects, strings with escapes, numbers, literals, arrays). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *p, *end;
} Cursor;

static void ws(Cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hexval(char h) {
    if (h >= '0' && h <= '9') return h - '0';
    if (h >= 'a' && h <= 'f') return h - 'a' + 10;
    if (h >= 'A' && h <= 'F') return h - 'A' + 10;
    return -1;
}

/* Reads a JSON string at c->p into a new NUL-terminated UTF-8 buffer (out,
 * may be NULL to skip). Returns 0 on success. */
static int string(Cursor *c, char **out, size_t *out_len) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return -1;
    c->p++;
    char *buf = out ? malloc((size_t)(c->end - c->p) + 1) : NULL;
    size_t n = 0;
    if (out && !buf) return -1;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch < 0x20) goto fail;
        if (ch != '\\') { if (buf) buf[n++] = (char)ch; continue; }
        if (c->p >= c->end) goto fail;
        char e = *c->p++;
        unsigned long cp;
        switch (e) {
        case '"': case '\\': case '/': cp = (unsigned char)e; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u': {
            if (c->end - c->p < 4) goto fail;
            cp = 0;
            for (int i = 0; i < 4; i++) {
                int h = hexval(*c->p++);
                if (h < 0) goto fail;
                cp = cp * 16 + (unsigned long)h;
            }
            if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u') {
                unsigned long lo = 0;
                int ok = 1;
                for (int i = 2; i < 6; i++) {
                    int h = hexval(c->p[i]);
                    if (h < 0) { ok = 0; break; }
                    lo = lo * 16 + (unsigned long)h;
                }
                if (ok && lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    c->p += 6;
                }
            }
            if (cp >= 0xD800 && cp < 0xE000) cp = 0xFFFD;
            break;
        }
        default: goto fail;
        }
        if (!buf) continue;
        if (cp < 0x80) buf[n++] = (char)cp;
        else if (cp < 0x800) { buf[n++] = (char)(0xC0 | (cp >> 6)); buf[n++] = (char)(0x80 | (cp & 0x3F)); }
        else if (cp < 0x10000) { buf[n++] = (char)(0xE0 | (cp >> 12)); buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = (char)(0x80 | (cp & 0x3F)); }
        else { buf[n++] = (char)(0xF0 | (cp >> 18)); buf[n++] = (char)(0x80 | ((cp >> 12) & 0x3F)); buf[n++] = (char)(0x80 | ((cp >> 6) & 0x3F)); buf[n++] = (char)(0x80 | (cp & 0x3F)); }
    }
    if (c->p >= c->end) goto fail;
    c->p++;
    if (buf) { buf[n] = 0; *out = buf; if (out_len) *out_len = n; }
    return 0;
fail:
    free(buf);
    return -1;
}

/* Reads a JSON number; its text is [*start, c->p). */
static int number(Cursor *c, double *v, const char **start) {
    ws(c);
    *start = c->p;
    const char *q = c->p;
    if (q < c->end && *q == '-') q++;
    if (q >= c->end || *q < '0' || *q > '9') return -1;
    while (q < c->end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')) q++;
    char tmp[64];
    size_t len = (size_t)(q - c->p);
    if (len >= sizeof tmp) return -1;
    memcpy(tmp, c->p, len);
    tmp[len] = 0;
    char *endp;
    *v = strtod(tmp, &endp);
    if (*endp) return -1;
    c->p = q;
    return 0;
}

static int value(Cursor *c, int depth);

/* Skips one JSON value of any kind. */
static int value(Cursor *c, int depth) {
    if (depth > 64) return -1;
    ws(c);
    if (c->p >= c->end) return -1;
    char ch = *c->p;
    if (ch == '"') return string(c, NULL, NULL);
    if (ch == '{' || ch == '[') {
        char close = ch == '{' ? '}' : ']';
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == close) { c->p++; return 0; }
        for (;;) {
            if (ch == '{') {
                if (string(c, NULL, NULL)) return -1;
                ws(c);
                if (c->p >= c->end || *c->p++ != ':') return -1;
            }
            if (value(c, depth + 1)) return -1;
            ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == ',') { c->p++; continue; }
            if (*c->p++ == close) return 0;
            return -1;
        }
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(lits[i]);
        if ((size_t)(c->end - c->p) >= l && !memcmp(c->p, lits[i], l)) { c->p += l; return 0; }
    }
    double d;
    const char *s;
    return number(c, &d, &s);
}

/* Calls field(key, cursor at its value, ctx) for each member of the object
 * at c; field must consume the value. */
static int object(Cursor *c, int (*field)(const char *, Cursor *, void *), void *ctx) {
    ws(c);
    if (c->p >= c->end || *c->p++ != '{') return -1;
    ws(c);
    if (c->p < c->end && *c->p == '}') { c->p++; return 0; }
    for (;;) {
        char *key;
        if (string(c, &key, NULL)) return -1;
        ws(c);
        int bad = c->p >= c->end || *c->p++ != ':';
        if (!bad) bad = field(key, c, ctx);
        free(key);
        if (bad) return -1;
        ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == ',') { c->p++; continue; }
        if (*c->p++ == '}') return 0;
        return -1;
    }
}

typedef struct { char *body; size_t len; } Request;

static int request_field(const char *key, Cursor *c, void *ctx) {
    Request *r = ctx;
    if (strcmp(key, "body") == 0) {
        free(r->body);
        r->body = NULL;
        return string(c, &r->body, &r->len);
    }
    return value(c, 0);
}

typedef struct {
    int has_id, has_value;
    char *id_text;          /* the id as JSON text, to echo back */
    double value;
} Order;

static int order_field(const char *key, Cursor *c, void *ctx) {
    Order *o = ctx;
    if (strcmp(key, "id") == 0) {
        ws(c);
        const char *start = c->p;
        if (c->p < c->end && *c->p == '"') { if (string(c, NULL, NULL)) return -1; }
        else { double d; const char *s; if (number(c, &d, &s)) return -1; }
        free(o->id_text);
        o->id_text = strndup(start, (size_t)(c->p - start));
        o->has_id = 1;
        return 0;
    }
    if (strcmp(key, "value") == 0) {
        const char *s;
        if (number(c, &o->value, &s)) return -1;
        o->has_value = 1;
        return 0;
    }
    return value(c, 0);
}

static void reply(int status, const char *body) {
    fputs("{\"status\":", stdout);
    printf("%d", status);
    fputs(",\"headers\":{\"Content-Type\":[\"application/json\"]},\"body\":\"", stdout);
    for (const char *p = body; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') { putchar('\\'); putchar(ch); }
        else if (ch < 0x20) printf("\\u%04x", ch);
        else putchar(ch);
    }
    fputs("\"}\n", stdout);
}

int main(void) {
    size_t cap = 4096, len = 0;
    char *in = malloc(cap);
    size_t got;
    while (in && (got = fread(in + len, 1, cap - len, stdin)) > 0) {
        len += got;
        if (len == cap) { cap *= 2; in = realloc(in, cap); }
    }
    if (!in) return 1;
    Request req = {0};
    Cursor c = {in, in + len};
    if (object(&c, request_field, &req)) {
        fputs("the request on stdin is not JSON\n", stderr);
        return 1;
    }
    Order o = {0};
    Cursor b = {req.body ? req.body : "", req.body ? req.body + req.len : ""};
    int bad = object(&b, order_field, &o);
    ws(&b);
    if (bad || b.p != b.end || !o.has_id || !o.has_value) {
        reply(400, "{\"error\":\"body must be {\\\"id\\\": string or number, \\\"value\\\": number}\"}");
        return 0;
    }
    double total = round(o.value * (1.0 + 0.15) * 100.0) / 100.0;
    if (!isfinite(total)) {
        reply(400, "{\"error\":\"value is out of range\"}");
        return 0;
    }
    size_t n = strlen(o.id_text) + 64;
    char *out = malloc(n);
    if (!out) return 1;
    /* The shortest of %.15g and %.17g that reads back as the same double,
     * as Rust and Go print floats. */
    snprintf(out, n, "{\"order_id\":%s,\"total_final\":%.15g}", o.id_text, total);
    char *num = strstr(out, "\"total_final\":") + 14;
    if (strtod(num, NULL) != total)
        snprintf(out, n, "{\"order_id\":%s,\"total_final\":%.17g}", o.id_text, total);
    reply(200, out);
    return 0;
}
