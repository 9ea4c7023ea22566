/*
 * error.c - the messages of failed calls (per context, or per thread for calls without one) and
 * the argument checks that every part of the library shares. The backends report through these
 * too, so this file depends on nothing but internal.h.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

/* Messages of calls that have no context (context creation) live per thread. */
static _Thread_local char thread_message[CUMLP_MESSAGE_SIZE];

static char *message_slot(const cumlp_context *ctx) {
    /* The message is state the caller asked us to keep, not part of the context's value, so a
     * const context may still record why a call on it failed. */
    return ctx ? (char *)ctx->message : thread_message;
}

/* The message "func: <fmt ...>", or "<fmt ...>" when func is NULL, truncated to the slot. */
static void set_message(const cumlp_context *ctx, const char *func, const char *fmt, va_list args) {
    char *slot = message_slot(ctx);
    int used = func ? snprintf(slot, CUMLP_MESSAGE_SIZE, "%s: ", func) : 0;
    if (used >= 0 && used < CUMLP_MESSAGE_SIZE)
        vsnprintf(slot + used, CUMLP_MESSAGE_SIZE - (size_t)used, fmt, args);
}

cumlp_status cumlp__error(const cumlp_context *ctx, cumlp_status status, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_message(ctx, NULL, fmt, args);
    va_end(args);
    return status;
}

cumlp_status cumlp__fail(const cumlp_context *ctx, cumlp_status status, const char *func,
                         const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    set_message(ctx, func, fmt, args);
    va_end(args);
    return status;
}

void cumlp__clear_error(const cumlp_context *ctx) {
    message_slot(ctx)[0] = '\0';
}

cumlp_status cumlp__make_sticky(cumlp_context *ctx, cumlp_status status) {
    if (ctx->sticky == CUMLP_SUCCESS) ctx->sticky = status;
    return status;
}

int cumlp__mul_size(int64_t a, int64_t b, int64_t limit, int64_t *out) {
    if (a < 0 || b < 0) return 0;
    if (a != 0 && b > limit / a) return 0;
    *out = a * b;
    return 1;
}

cumlp_status cumlp__check_dim(const cumlp_context *ctx, const char *func, const char *what,
                              int64_t value) {
    if (value < 1 || value > CUMLP_MAX_DIM)
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "%s is %lld; it must be between 1 and %lld", what, (long long)value,
                           (long long)CUMLP_MAX_DIM);
    return CUMLP_SUCCESS;
}

const char *cumlp_last_error(const cumlp_context *ctx) {
    return message_slot(ctx);
}
