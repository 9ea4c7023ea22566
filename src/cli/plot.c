/* plot.c - the SVG of training and validation curves written by `cumlp train --plot`. */
#include "cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int cli_history_add(cli_history *h, double train_loss, double val_loss, double train_acc,
                    double val_acc) {
    if (h->count == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        double *arrays[4] = {h->train_loss, h->val_loss, h->train_acc, h->val_acc};
        for (int k = 0; k < 4; k++) {
            double *bigger = realloc(arrays[k], (size_t)cap * sizeof *bigger);
            if (!bigger) return 0;
            arrays[k] = bigger;
            /* store at once, so a later failure leaves every array valid */
            if (k == 0) h->train_loss = bigger;
            if (k == 1) h->val_loss = bigger;
            if (k == 2) h->train_acc = bigger;
            if (k == 3) h->val_acc = bigger;
        }
        h->cap = cap;
    }
    h->train_loss[h->count] = train_loss;
    h->val_loss[h->count] = val_loss;
    h->train_acc[h->count] = train_acc;
    h->val_acc[h->count] = val_acc;
    h->count++;
    return 1;
}

void cli_history_free(cli_history *h) {
    free(h->train_loss);
    free(h->val_loss);
    free(h->train_acc);
    free(h->val_acc);
    h->train_loss = h->val_loss = h->train_acc = h->val_acc = NULL;
    h->count = h->cap = 0;
}

/* A panel: x = epochs 1..n, y from lo to hi, at (left, top) with size w x h. */
typedef struct panel {
    double left, top, w, h, lo, hi;
    int n;
} panel;

static double px(const panel *p, int i) {
    return p->left + (p->n > 1 ? p->w * i / (p->n - 1) : p->w / 2);
}

static double py(const panel *p, double v) {
    return p->top + p->h * (1.0 - (v - p->lo) / (p->hi - p->lo));
}

/* Values below 0 mean "not measured" (no validation, or regression accuracy). */
static int has_values(const double *v, int n) {
    for (int i = 0; i < n; i++)
        if (v[i] >= 0 && isfinite(v[i])) return 1;
    return 0;
}

static void range(const double *a, const double *b, int n, double *lo, double *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        const double v[2] = {a[i], b[i]};
        for (int k = 0; k < 2; k++)
            if (v[k] >= 0 && isfinite(v[k])) {
                *lo = v[k] < *lo ? v[k] : *lo;
                *hi = v[k] > *hi ? v[k] : *hi;
            }
    }
    if (!(*hi > *lo)) {
        *lo = isfinite(*lo) ? *lo - 0.5 : 0;
        *hi = *lo + 1;
    }
    double pad = 0.05 * (*hi - *lo);
    *lo -= pad;
    *hi += pad;
}

static void curve(FILE *f, const panel *p, const double *v, const char *color) {
    fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
    for (int i = 0; i < p->n; i++)
        if (v[i] >= 0 && isfinite(v[i])) fprintf(f, "%.1f,%.1f ", px(p, i), py(p, v[i]));
    fprintf(f, "\"/>\n");
}

static void axes(FILE *f, const panel *p, const char *title) {
    fprintf(f,
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
            "stroke=\"#888\"/>\n",
            p->left, p->top, p->w, p->h);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
            p->left + p->w / 2, p->top - 8, title);
    for (int t = 0; t <= 4; t++) {
        double v = p->lo + (p->hi - p->lo) * t / 4;
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.3g</text>\n",
                p->left - 4, py(p, v) + 4, v);
    }
    fprintf(f,
            "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">epoch 1 .. %d"
            "</text>\n",
            p->left + p->w / 2, p->top + p->h + 16, p->n);
}

static void legend(FILE *f, double x, double y, const char *color, const char *label) {
    fprintf(f,
            "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"%s\" "
            "stroke-width=\"2\"/><text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">%s</text>\n",
            x, y, x + 20, y, color, x + 24, y + 4, label);
}

static void draw_panel(FILE *f, panel *p, const double *train, const double *val,
                       const char *title) {
    range(train, val, p->n, &p->lo, &p->hi);
    axes(f, p, title);
    curve(f, p, train, "#1f77b4");
    if (has_values(val, p->n)) curve(f, p, val, "#d62728");
}

int cli_write_svg(const char *command, const cli_history *h, const char *path) {
    cli_output out;
    int rc = cli_output_open(command, path, &out);
    if (rc != EXIT_OK) return rc;
    FILE *f = out.f;
    int acc = has_values(h->train_acc, h->count) || has_values(h->val_acc, h->count);
    double width = acc ? 900 : 480;
    fprintf(f,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"360\" "
            "font-family=\"sans-serif\">\n<rect width=\"100%%\" height=\"100%%\" "
            "fill=\"white\"/>\n",
            width);
    if (h->count > 0) {
        panel loss = {70, 40, 380, 250, 0, 1, h->count};
        draw_panel(f, &loss, h->train_loss, h->val_loss, "loss");
        if (acc) {
            panel ac = {490, 40, 380, 250, 0, 1, h->count};
            draw_panel(f, &ac, h->train_acc, h->val_acc, "accuracy");
        }
    }
    legend(f, 70, 330, "#1f77b4", "training");
    legend(f, 190, 330, "#d62728", "validation");
    fprintf(f, "</svg>\n");
    return cli_output_close(command, &out);
}
