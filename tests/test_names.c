/* ctest-labels: unit */
/*
 * The named values of cumlp.h (CUMLP_<SET>_LIST): every value has a name that parses back to it,
 * the lower-case identifier parses too, the pinned spellings and stable values hold, unknown
 * names and values are refused, and no name of one value is the identifier of another.
 */
#include "harness.h"

#include "cumlp.h"

#include <ctype.h>
#include <string.h>

typedef const char *(*name_fn)(int value);
typedef cumlp_status (*parse_fn)(const char *name, int *value);

/* One set as the header lists it: the entries' values, names and identifiers, in list order. */
typedef struct listed {
    int value;
    const char *name, *identifier;
} listed;

#define LISTED(id, value, name) {value, name, #id},
static const listed activations[] = {CUMLP_ACTIVATION_LIST(LISTED)};
static const listed losses[] = {CUMLP_LOSS_LIST(LISTED)};
static const listed inits[] = {CUMLP_INIT_LIST(LISTED)};
static const listed optimizers[] = {CUMLP_OPTIMIZER_LIST(LISTED)};
static const listed schedules[] = {CUMLP_SCHEDULE_LIST(LISTED)};
static const listed backends[] = {CUMLP_BACKEND_LIST(LISTED)};
static const listed tasks[] = {CUMLP_TASK_LIST(LISTED)};
static const listed precisions[] = {CUMLP_PRECISION_LIST(LISTED)};
static const listed epilogue_settings[] = {CUMLP_EPILOGUES_LIST(LISTED)};
static const listed statuses[] = {CUMLP_STATUS_LIST(LISTED)};
static const listed transports[] = {CUMLP_TRANSPORT_LIST(LISTED)};

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The identifier in lower case ("LEAKY_RELU" -> "leaky_relu"). */
static void lower(const char *identifier, char *out, size_t size) {
    size_t i = 0;
    for (; identifier[i] && i + 1 < size; i++)
        out[i] = (char)tolower((unsigned char)identifier[i]);
    out[i] = '\0';
}

static void check_set(const char *what, const listed *entries, int count, int declared_count,
                      name_fn name_of, parse_fn parse) {
    CHECK_MSG(count == declared_count, "%s: %d entries, COUNT says %d", what, count,
              declared_count);
    for (int i = 0; i < count; i++) {
        const listed *e = &entries[i];
        CHECK_MSG(e->value == i, "%s: entry %d has value %d (values must run 0 .. COUNT - 1)", what,
                  i, e->value);
        CHECK_MSG(strcmp(name_of(e->value), e->name) == 0, "%s %d: name %s, listed %s", what,
                  e->value, name_of(e->value), e->name);
        int parsed = -1;
        CHECK_OK(parse(e->name, &parsed));
        CHECK_MSG(parsed == e->value, "%s: '%s' parses to %d", what, e->name, parsed);
        char id[64];
        lower(e->identifier, id, sizeof id);
        parsed = -1;
        CHECK_OK(parse(id, &parsed));
        CHECK_MSG(parsed == e->value, "%s: '%s' parses to %d", what, id, parsed);
        /* A name that is another value's identifier would make the parser ambiguous. */
        for (int j = 0; j < count; j++) {
            lower(entries[j].identifier, id, sizeof id);
            CHECK_MSG(j == i || strcmp(e->name, id) != 0, "%s: name '%s' is the identifier of %d",
                      what, e->name, j);
        }
    }
    CHECK(strcmp(name_of(-1), "unknown") == 0);
    CHECK(strcmp(name_of(count), "unknown") == 0);

    int value = 12345;
    CHECK_STATUS(parse("no-such-name", &value), CUMLP_ERROR_INVALID_VALUE);
    CHECK(value == 12345); /* unchanged on failure */
    const char *message = cumlp_last_error(NULL);
    CHECK_MSG(strstr(message, "no-such-name") && strstr(message, entries[0].name) &&
                  strstr(message, entries[count - 1].name),
              "%s: message '%s' names neither the input nor the accepted names", what, message);
    CHECK_STATUS(parse("", &value), CUMLP_ERROR_INVALID_VALUE);
    char upper[64];
    snprintf(upper, sizeof upper, "%s", entries[count - 1].identifier);
    CHECK_STATUS(parse(upper, &value), CUMLP_ERROR_INVALID_VALUE); /* the exact forms only */
    CHECK_STATUS(parse(NULL, &value), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(parse(entries[0].name, NULL), CUMLP_ERROR_INVALID_VALUE);
    CHECK(value == 12345);
}

static void test_every_set_round_trips(void) {
    check_set("activation", activations, COUNT(activations), CUMLP_ACTIVATION_COUNT,
              cumlp_activation_name, cumlp_activation_from_name);
    check_set("loss", losses, COUNT(losses), CUMLP_LOSS_COUNT, cumlp_loss_name,
              cumlp_loss_from_name);
    check_set("init", inits, COUNT(inits), CUMLP_INIT_COUNT, cumlp_init_name, cumlp_init_from_name);
    check_set("optimizer", optimizers, COUNT(optimizers), CUMLP_OPTIMIZER_COUNT,
              cumlp_optimizer_name, cumlp_optimizer_from_name);
    check_set("schedule", schedules, COUNT(schedules), CUMLP_SCHEDULE_COUNT, cumlp_schedule_name,
              cumlp_schedule_from_name);
    check_set("backend", backends, COUNT(backends), CUMLP_BACKEND_COUNT, cumlp_backend_name,
              cumlp_backend_from_name);
    check_set("task", tasks, COUNT(tasks), CUMLP_TASK_COUNT, cumlp_task_name, cumlp_task_from_name);
    check_set("precision", precisions, COUNT(precisions), CUMLP_PRECISION_COUNT,
              cumlp_precision_name, cumlp_precision_from_name);
    check_set("epilogue setting", epilogue_settings, COUNT(epilogue_settings),
              CUMLP_EPILOGUES_COUNT, cumlp_epilogues_name, cumlp_epilogues_from_name);
    check_set("transport", transports, COUNT(transports), CUMLP_TRANSPORT_COUNT,
              cumlp_transport_name, cumlp_transport_from_name);
}

/* The spellings users type and files store, pinned: changing one breaks scripts and models. */
static void test_pinned_spellings(void) {
    CHECK(strcmp(cumlp_activation_name(CUMLP_ACT_LEAKY_RELU), "leaky_relu") == 0);
    CHECK(strcmp(cumlp_loss_name(CUMLP_LOSS_SQUARED_ERROR), "mse") == 0);
    CHECK(strcmp(cumlp_loss_name(CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY), "ce") == 0);
    CHECK(strcmp(cumlp_loss_name(CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY), "bce") == 0);
    CHECK(strcmp(cumlp_init_name(CUMLP_INIT_XAVIER_UNIFORM), "xavier") == 0);
    CHECK(strcmp(cumlp_init_name(CUMLP_INIT_HE_NORMAL), "he-normal") == 0);
    CHECK(strcmp(cumlp_optimizer_name(CUMLP_OPT_NESTEROV), "nesterov") == 0);
    CHECK(strcmp(cumlp_schedule_name(CUMLP_LR_EXPONENTIAL), "exp") == 0);
    CHECK(strcmp(cumlp_backend_name(CUMLP_BACKEND_REFERENCE), "reference") == 0);
    CHECK(strcmp(cumlp_task_name(CUMLP_TASK_CLASSIFY), "classify") == 0);
    CHECK(strcmp(cumlp_task_name(CUMLP_TASK_REGRESS), "regress") == 0);
    CHECK(strcmp(cumlp_precision_name(CUMLP_PRECISION_BF16), "bf16") == 0);
    CHECK(strcmp(cumlp_precision_name(CUMLP_PRECISION_FP32), "fp32") == 0);
    CHECK(strcmp(cumlp_transport_name(CUMLP_TRANSPORT_MPI_DEVICE), "mpi-device") == 0);
    /* Checkpoints written by cumlp 0.1.0 spell the losses by their identifiers. */
    int loss = -1;
    CHECK_OK(cumlp_loss_from_name("sigmoid_binary_cross_entropy", &loss));
    CHECK(loss == CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY);
    /* The spellings that had drifted (cumlp bench before the names were unified). */
    int act = -1;
    CHECK_STATUS(cumlp_activation_from_name("leaky-relu", &act), CUMLP_ERROR_INVALID_VALUE);
    CHECK_STATUS(cumlp_loss_from_name("softmax-ce", &loss), CUMLP_ERROR_INVALID_VALUE);
}

static void test_statuses(void) {
    CHECK(COUNT(statuses) == CUMLP_STATUS_COUNT);
    for (int i = 0; i < COUNT(statuses); i++) {
        CHECK(statuses[i].value == i);
        CHECK(strcmp(cumlp_status_string((cumlp_status)i), statuses[i].name) == 0);
        char expected[64];
        snprintf(expected, sizeof expected, "CUMLP_%s", statuses[i].identifier);
        CHECK_MSG(strcmp(statuses[i].name, expected) == 0, "status %d is named %s", i,
                  statuses[i].name);
    }
    CHECK(strcmp(cumlp_status_string((cumlp_status)-1), "CUMLP_ERROR_UNKNOWN") == 0);
    CHECK(strcmp(cumlp_status_string((cumlp_status)CUMLP_STATUS_COUNT), "CUMLP_ERROR_UNKNOWN") ==
          0);
    /* Stable values (cumlp.h: values are only appended). */
    CHECK(CUMLP_SUCCESS == 0 && CUMLP_ERROR_INVALID_VALUE == 1 && CUMLP_ERROR_INTERNAL == 13);
    CHECK(CUMLP_ACT_SOFTMAX == 6 && CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY == 2);
    CHECK(CUMLP_INIT_HE_UNIFORM == 5 && CUMLP_OPT_ADAM == 3 && CUMLP_LR_COSINE == 3);
    CHECK(CUMLP_BACKEND_CUDA == 3 && CUMLP_TASK_REGRESS == 2);
    /* cumlp 0.1.0's math modes are the first two precisions. */
    CHECK(CUMLP_PRECISION_FP32 == 0 && CUMLP_PRECISION_TF32 == 1 && CUMLP_PRECISION_FP16 == 3);
}

int main(void) {
    RUN(test_every_set_round_trips);
    RUN(test_pinned_spellings);
    RUN(test_statuses);
    return harness_finish();
}
