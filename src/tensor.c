/* tensor.c - fp32 matrices in a context's memory. */
#include "internal.h"

#include <stdlib.h>

/* Largest element count of one tensor: its byte size must fit in ptrdiff_t. */
#define MAX_ELEMENTS ((int64_t)(PTRDIFF_MAX / 8))

static cumlp_status check_shape(const cumlp_context *ctx, const char *func, int64_t rows,
                                int64_t cols, int64_t *count) {
    cumlp_status st = cumlp__check_dim(ctx, func, "rows", rows);
    if (st == CUMLP_SUCCESS) st = cumlp__check_dim(ctx, func, "cols", cols);
    if (st != CUMLP_SUCCESS) return st;
    if (!cumlp__mul_size(rows, cols, MAX_ELEMENTS, count))
        return cumlp__fail(ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "%lld x %lld elements overflow the largest tensor size", (long long)rows,
                           (long long)cols);
    return CUMLP_SUCCESS;
}

static cumlp_status new_tensor(cumlp_context *ctx, const char *func, int64_t rows, int64_t cols,
                               void *data, int owns_data, cumlp_tensor **out) {
    cumlp_tensor *t = malloc(sizeof *t);
    if (!t) return cumlp__fail(ctx, CUMLP_ERROR_ALLOC_FAILED, func, "out of host memory");
    t->ctx = ctx;
    t->rows = rows;
    t->cols = cols;
    t->data = data;
    t->owns_data = owns_data;
    *out = t;
    return CUMLP_SUCCESS;
}

cumlp_status cumlp_tensor_create(cumlp_context *ctx, int64_t rows, int64_t cols,
                                 cumlp_tensor **tensor) {
    if (tensor) *tensor = NULL;
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(!tensor, ctx, CUMLP_ERROR_INVALID_VALUE, "tensor is NULL");
    if (ctx->sticky) return ctx->sticky;
    int64_t count;
    cumlp_status st = check_shape(ctx, __func__, rows, cols, &count);
    if (st != CUMLP_SUCCESS) return st;
    void *data = NULL;
    st = ctx->ops->alloc(ctx, (size_t)count, &data);
    if (st != CUMLP_SUCCESS) return st;
    st = new_tensor(ctx, __func__, rows, cols, data, 1, tensor);
    if (st != CUMLP_SUCCESS) ctx->ops->free(ctx, data);
    return st;
}

cumlp_status cumlp_tensor_create_view(cumlp_tensor *parent, int64_t first_col, int64_t num_cols,
                                      cumlp_tensor **view) {
    if (view) *view = NULL;
    CUMLP_FAIL_IF(!parent, NULL, CUMLP_ERROR_INVALID_VALUE, "parent is NULL");
    cumlp_context *ctx = parent->ctx;
    CUMLP_FAIL_IF(!view, ctx, CUMLP_ERROR_INVALID_VALUE, "view is NULL");
    CUMLP_FAIL_IF(first_col < 0 || num_cols < 1 || first_col > parent->cols ||
                      num_cols > parent->cols - first_col,
                  ctx, CUMLP_ERROR_INVALID_VALUE,
                  "columns [%lld, %lld + %lld) are not inside the parent's %lld columns",
                  (long long)first_col, (long long)first_col, (long long)num_cols,
                  (long long)parent->cols);
    void *data = cumlp__at(ctx, parent->data, (size_t)(first_col * parent->rows));
    return new_tensor(ctx, __func__, parent->rows, num_cols, data, 0, view);
}

cumlp_status cumlp_tensor_wrap(cumlp_context *ctx, void *data, int64_t rows, int64_t cols,
                               cumlp_tensor **tensor) {
    if (tensor) *tensor = NULL;
    CUMLP_FAIL_IF(!ctx, NULL, CUMLP_ERROR_INVALID_VALUE, "ctx is NULL");
    CUMLP_FAIL_IF(!tensor, ctx, CUMLP_ERROR_INVALID_VALUE, "tensor is NULL");
    CUMLP_FAIL_IF(!data, ctx, CUMLP_ERROR_INVALID_VALUE, "data is NULL");
    CUMLP_FAIL_IF(ctx->ops->elem_size != sizeof(float), ctx, CUMLP_ERROR_NOT_SUPPORTED,
                  "the %s backend stores double precision and cannot wrap fp32 memory; upload "
                  "it instead",
                  ctx->ops->name);
    CUMLP_FAIL_IF((uintptr_t)data % sizeof(float) != 0, ctx, CUMLP_ERROR_INVALID_VALUE,
                  "data %p is not aligned to %zu bytes", data, sizeof(float));
    int64_t count;
    cumlp_status st = check_shape(ctx, __func__, rows, cols, &count);
    if (st != CUMLP_SUCCESS) return st;
    return new_tensor(ctx, __func__, rows, cols, data, 0, tensor);
}

void cumlp_tensor_destroy(cumlp_tensor *tensor) {
    if (!tensor) return;
    if (tensor->owns_data) tensor->ctx->ops->free(tensor->ctx, tensor->data);
    free(tensor);
}

int64_t cumlp_tensor_rows(const cumlp_tensor *tensor) {
    return tensor ? tensor->rows : -1;
}
int64_t cumlp_tensor_cols(const cumlp_tensor *tensor) {
    return tensor ? tensor->cols : -1;
}

void *cumlp_tensor_data(cumlp_tensor *tensor) {
    if (!tensor || tensor->ctx->ops->elem_size != sizeof(float)) return NULL;
    return tensor->data;
}

static cumlp_status check_transfer(const cumlp_tensor *t, const void *host, int64_t count,
                                   const char *func) {
    if (!t) return cumlp__fail(NULL, CUMLP_ERROR_INVALID_VALUE, func, "tensor is NULL");
    if (!host) return cumlp__fail(t->ctx, CUMLP_ERROR_INVALID_VALUE, func, "host is NULL");
    if (count != t->rows * t->cols)
        return cumlp__fail(t->ctx, CUMLP_ERROR_INVALID_VALUE, func,
                           "count is %lld but the tensor holds %lld x %lld = %lld elements",
                           (long long)count, (long long)t->rows, (long long)t->cols,
                           (long long)(t->rows * t->cols));
    return t->ctx->sticky;
}

cumlp_status cumlp_tensor_upload(cumlp_tensor *tensor, const float *host, int64_t count) {
    cumlp_status st = check_transfer(tensor, host, count, __func__);
    if (st != CUMLP_SUCCESS) return st;
    return tensor->ctx->ops->upload(tensor->ctx, tensor->data, host, (size_t)count);
}

cumlp_status cumlp_tensor_download(const cumlp_tensor *tensor, float *host, int64_t count) {
    cumlp_status st = check_transfer(tensor, host, count, __func__);
    if (st != CUMLP_SUCCESS) return st;
    return tensor->ctx->ops->download(tensor->ctx, tensor->data, host, (size_t)count);
}

cumlp_status cumlp_tensor_upload_f64(cumlp_tensor *tensor, const double *host, int64_t count) {
    cumlp_status st = check_transfer(tensor, host, count, __func__);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__upload_f64(tensor->ctx, tensor->data, host, (size_t)count);
}

cumlp_status cumlp_tensor_download_f64(const cumlp_tensor *tensor, double *host, int64_t count) {
    cumlp_status st = check_transfer(tensor, host, count, __func__);
    if (st != CUMLP_SUCCESS) return st;
    return cumlp__download_f64(tensor->ctx, tensor->data, host, (size_t)count);
}
