/* ctest-labels: unit */
/* test_locale.c - the library's number parsing and formatting ignore the process locale: with
 * LC_NUMERIC set to a decimal-comma locale (de_DE, fr_FR, ...), CSV and FANN files in C syntax
 * read exactly, and checkpoints save and load with round-trip exact metadata; the same for a
 * locale whose decimal point is several bytes (ps_AF's U+066B) when one is installed. The
 * process locale is left as the host program set it. Skipped (77) when no decimal-comma locale
 * is installed (Debian: the locales-all package). */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"
#include "test_checkpoint_util.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROWS 40
#define N_COLS 4 /* 3 features and a regression target */

static cumlp_context *ctx;
static float values[N_ROWS * N_COLS];
static char *csv_text, *fann_text; /* written in the "C" locale before the locale changes */
static const char *comma_locale;   /* the decimal-comma locale in use */

/* A growing text written with snprintf (in the "C" locale: main calls this before setlocale). */
static void append(char **text, size_t *len, size_t *cap, const char *fmt, double x) {
    if (*len + 64 > *cap) {
        *cap = *cap ? 2 * *cap : 4096;
        *text = realloc(*text, *cap);
        if (!*text) abort();
    }
    *len += (size_t)snprintf(*text + *len, *cap - *len, fmt, x);
}

/* Values that need all 9 significant digits ("%.9g") to read back as the same float, some with
 * exponents, subnormals and signs. */
static void make_texts(void) {
    test_rng rng = {2024};
    for (int i = 0; i < N_ROWS * N_COLS; i++) {
        double scale = i % 7 == 0 ? 1e-30 : i % 5 == 0 ? 1e20 : 1.0;
        values[i] = (float)(test_rng_uniform(&rng, -1, 1) * scale);
    }
    values[1] = 1e-40f; /* subnormal */
    values[2] = 0.1f;
    size_t len = 0, cap = 0;
    for (int r = 0; r < N_ROWS; r++)
        for (int c = 0; c < N_COLS; c++)
            append(&csv_text, &len, &cap, c + 1 < N_COLS ? "%.9g," : "%.9g\n",
                   (double)values[r * N_COLS + c]);
    len = cap = 0;
    append(&fann_text, &len, &cap, "%.0f 3 1\n", N_ROWS);
    for (int r = 0; r < N_ROWS; r++)
        for (int c = 0; c < N_COLS; c++)
            append(&fann_text, &len, &cap, c + 2 < N_COLS ? "%.9g " : "%.9g\n",
                   (double)values[r * N_COLS + c]);
}

/* The dataset holds exactly the values the text was written from. */
static void check_dataset(cumlp_dataset *ds, const char *what) {
    CHECK_MSG(ds != NULL, "%s: %s", what, cumlp_last_error(ctx));
    if (!ds) return;
    CHECK(cumlp_dataset_num_samples(ds) == N_ROWS && cumlp_dataset_num_features(ds) == 3);
    const float *x = cumlp_dataset_features(ds), *y = cumlp_dataset_targets(ds);
    int mismatches = 0;
    for (int r = 0; r < N_ROWS; r++) {
        for (int c = 0; c < 3; c++)
            mismatches += memcmp(&x[r * 3 + c], &values[r * N_COLS + c], sizeof(float)) != 0;
        mismatches += memcmp(&y[r], &values[r * N_COLS + 3], sizeof(float)) != 0;
    }
    CHECK_MSG(mismatches == 0, "%s: %d values differ from the written floats", what, mismatches);
}

/* The host program's locale is still in force after the library's calls. */
static void check_locale_kept(void) {
    const char *dp = localeconv()->decimal_point;
    CHECK_MSG(strcmp(dp, ",") == 0, "the decimal point is \"%s\", not the locale's \",\"", dp);
}

static void test_csv(void) {
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv_memory(ctx, csv_text, strlen(csv_text), NULL, &ds));
    check_dataset(ds, "csv memory");
    cumlp_dataset_destroy(ds);
    char *path = ckpt_temp_path("locale.csv");
    CHECK(ckpt_write_file(path, csv_text, strlen(csv_text)));
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_csv(ctx, path, NULL, &ds));
    check_dataset(ds, "csv file");
    cumlp_dataset_destroy(ds);
    remove(path);
    free(path);
    check_locale_kept();
}

static void test_fann(void) {
    cumlp_dataset *ds = NULL;
    CHECK_OK(cumlp_dataset_read_fann_memory(ctx, fann_text, strlen(fann_text), 0, &ds));
    check_dataset(ds, "fann memory");
    cumlp_dataset_destroy(ds);
    char *path = ckpt_temp_path("locale.fann");
    CHECK(ckpt_write_file(path, fann_text, strlen(fann_text)));
    ds = NULL;
    CHECK_OK(cumlp_dataset_read_fann(ctx, path, 0, &ds));
    check_dataset(ds, "fann file");
    cumlp_dataset_destroy(ds);
    remove(path);
    free(path);
    check_locale_kept();
}

/* Saves a network with Adam state and hyper-parameters that need 17 digits, checks the metadata
 * is in C syntax, loads it back (the learning rate exactly) and saves again: the same bytes. */
static void checkpoint_round_trip(const char *locale_name) {
    cumlp_network *net = ckpt_small_network(ctx, 7);
    cumlp_optimizer_options o;
    cumlp_optimizer_defaults(&o);
    o.type = CUMLP_OPT_ADAM;
    o.learning_rate = 0.1;
    o.weight_decay = 1.0 / 3.0;
    o.epsilon = 1.5e-308; /* subnormal-adjacent: the smallest normals are formatted too */
    cumlp_optimizer *opt = NULL;
    CHECK_OK(cumlp_optimizer_create(net, &o, &opt));
    if (!opt) {
        cumlp_network_destroy(net);
        return;
    }
    ckpt_train(net, opt, 3, 11);
    char *a = ckpt_temp_path("locale_a.safetensors"), *b = ckpt_temp_path("locale_b.safetensors");
    CHECK_MSG(cumlp_checkpoint_save(net, opt, a) == CUMLP_SUCCESS, "%s: save: %s", locale_name,
              cumlp_last_error(ctx));
    size_t na = 0, nb = 0;
    unsigned char *image = ckpt_read_file(a, &na);
    CHECK(image != NULL);
    if (image) {
        const char *want[] = {
            "\"learning_rate\":\"0.10000000000000001\"", "\"weight_decay\":\"0.33333333333333331\"",
            "\"leaky_relu_slope\":\"0.125\"", "\"epsilon\":\"1.4999999999999999e-308\""};
        size_t header = 0;
        for (int k = 7; k >= 0 && na >= 8; k--)
            header = header << 8 | image[k];
        char *text = malloc(header + 1);
        if (text && header + 8 <= na) {
            memcpy(text, image + 8, header);
            text[header] = '\0';
            for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
                CHECK_MSG(strstr(text, want[i]) != NULL, "%s: the header lacks %s", locale_name,
                          want[i]);
        }
        free(text);
    }
    cumlp_network *back = NULL;
    cumlp_optimizer *back_opt = NULL;
    CHECK_MSG(cumlp_checkpoint_load(ctx, a, 0, &back, &back_opt) == CUMLP_SUCCESS, "%s: load: %s",
              locale_name, cumlp_last_error(ctx));
    if (back && back_opt) {
        CHECK(cumlp_optimizer_learning_rate(back_opt) == 0.1);
        CHECK(cumlp_optimizer_step_count(back_opt) == 3);
        CHECK_OK(cumlp_checkpoint_save(back, back_opt, b));
        unsigned char *again = ckpt_read_file(b, &nb);
        CHECK_MSG(again && image && na == nb && memcmp(image, again, na) == 0,
                  "%s: save -> load -> save changed the bytes", locale_name);
        free(again);
    }
    free(image);
    cumlp_optimizer_destroy(back_opt);
    cumlp_network_destroy(back);
    cumlp_optimizer_destroy(opt);
    cumlp_network_destroy(net);
    remove(a);
    remove(b);
    free(a);
    free(b);
}

static void test_checkpoint(void) {
    checkpoint_round_trip(comma_locale);
    check_locale_kept();
}

/* A decimal point of several bytes, which the old localeconv() workaround could not map. */
static void test_checkpoint_multibyte_decimal_point(void) {
    const char *names[] = {"ps_AF.UTF-8", "ps_AF.utf8"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!setlocale(LC_NUMERIC, names[i])) continue;
        if (strlen(localeconv()->decimal_point) > 1) {
            checkpoint_round_trip(names[i]);
            CHECK(strlen(localeconv()->decimal_point) > 1);
        } else {
            printf("     %s has a one-byte decimal point here; not checked\n", names[i]);
        }
        setlocale(LC_NUMERIC, comma_locale);
        return;
    }
    printf("     no ps_AF locale with a multi-byte decimal point is installed; not checked\n");
}

int main(void) {
    make_texts();
    const char *candidates[] = {"de_DE.UTF-8", "de_DE.utf8", "de_DE",       "fr_FR.UTF-8",
                                "fr_FR.utf8",  "fr_FR",      "nl_NL.UTF-8", "es_ES.UTF-8",
                                "it_IT.UTF-8", "ru_RU.UTF-8"};
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0] && !comma_locale; i++) {
        if (setlocale(LC_NUMERIC, candidates[i]) && strcmp(localeconv()->decimal_point, ",") == 0)
            comma_locale = candidates[i];
    }
    if (!comma_locale) {
        free(csv_text);
        free(fann_text);
        harness_skip("no decimal-comma locale is installed (Debian: apt-get install locales-all)");
    }
    printf("     LC_NUMERIC=%s\n", comma_locale);
    cumlp_context_options o;
    cumlp_context_defaults(&o);
    o.backend = CUMLP_BACKEND_REFERENCE;
    if (cumlp_context_create(&ctx, &o) != CUMLP_SUCCESS) return 1;
    RUN(test_csv);
    RUN(test_fann);
    RUN(test_checkpoint);
    RUN(test_checkpoint_multibyte_decimal_point);
    cumlp_context_destroy(ctx);
    free(csv_text);
    free(fann_text);
    return harness_finish();
}
