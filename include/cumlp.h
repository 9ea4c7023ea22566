/*
 * cumlp.h - training multi-layer perceptrons by backpropagation, on NVIDIA GPUs and on the CPU.
 *
 * This header is the manual. Conventions that hold for every function below:
 *
 *  - Every function that can fail returns a cumlp_status. CUMLP_SUCCESS is 0. On failure the
 *    context keeps a one-line human message with the reason: cumlp_last_error(ctx). Functions
 *    that have no context yet (cumlp_context_create) leave their message in a per-thread slot
 *    that cumlp_last_error(NULL) returns. One status is not a failure: CUMLP_STEP_SKIPPED, from
 *    the training steps, says that a step met NaN or Inf and was not taken, leaving everything
 *    as it was (see cumlp_optimizer_step); it is not CUMLP_SUCCESS, so code that stops on
 *    anything else stops there, as it did when such a step was an error.
 *  - The library never prints, never calls exit() or abort(), and leaves nothing allocated and
 *    no caller-visible object changed when a call fails.
 *  - Handles are opaque. Each has a create and a destroy; destroy accepts NULL.
 *  - Only scalars, pointers, int enums and opaque handles cross this API (no varargs, no structs
 *    by value), so that Fortran (ISO_C_BINDING) and other languages can bind to it. Option
 *    structs are passed by pointer and must be initialized with their cumlp_*_defaults().
 *  - Threads: a context and everything created in it (tensors, networks, optimizers) must be used
 *    by one thread at a time. Use one context per thread. A context is bound to one backend, one
 *    device and one stream.
 *  - Sizes are int64_t. Matrix dimensions are limited to 1 .. 2^31-1 (the BLAS interfaces take
 *    int); element counts whose product overflows are rejected with CUMLP_ERROR_INVALID_VALUE.
 *
 * Data layout: a batch of B samples with n features each is an n x B column-major matrix; each
 * sample is one contiguous column (the same memory as a row-major "one sample per row" array).
 * Layer l (1-based in the math, 0-based in this API) holds W, an n_l x n_(l-1) column-major
 * matrix, and b of length n_l:  Z = W A_prev + b 1^T,  A = f(Z).
 */
#ifndef CUMLP_H
#define CUMLP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Export macro and version
 * ------------------------------------------------------------------------------------------- */

#if defined(CUMLP_STATIC_DEFINE)
#define CUMLP_API
#elif defined(_WIN32)
#ifdef CUMLP_BUILDING
#define CUMLP_API __declspec(dllexport)
#else
#define CUMLP_API __declspec(dllimport)
#endif
#else
#define CUMLP_API __attribute__((visibility("default")))
#endif

#define CUMLP_VERSION_MAJOR 0
#define CUMLP_VERSION_MINOR 1
#define CUMLP_VERSION_PATCH 0
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define CUMLP_VERSION_NUMBER                                                                       \
    (CUMLP_VERSION_MAJOR * 10000 + CUMLP_VERSION_MINOR * 100 + CUMLP_VERSION_PATCH)

/** The version of the library linked at run time, as CUMLP_VERSION_NUMBER computes it. */
CUMLP_API int cumlp_version_number(void);
/** The version of the library linked at run time as "major.minor.patch". Static storage. */
CUMLP_API const char *cumlp_version_string(void);

/* ---------------------------------------------------------------------------------------------
 * Named values. Each set of named values (statuses, backends, precisions, epilogue settings,
 * activations, losses, init schemes, optimizers, learning-rate schedules, tasks, transports) is
 * listed once, as an X-macro CUMLP_<SET>_LIST(X) with one entry X(IDENTIFIER, value, "name") per
 * value. The enum, the count CUMLP_<SET>_COUNT, and the library's name function and parser are
 * all generated from that list; values run from 0 to COUNT - 1 without gaps, and are stable across
 * releases (new values are only appended). A program may expand a list too, for example into a
 * table of its own:
 *
 *   #define ROW(id, value, name) {value, name},
 *   static const struct { int value; const char *name; } rows[] = {CUMLP_LOSS_LIST(ROW)};
 *
 * The names are the spelling used everywhere: by the `cumlp` command's options, in checkpoint
 * metadata, by the benchmarks and the Fortran module. Each set but the statuses has
 * cumlp_<set>_name(value), which returns the name or "unknown" for a value not in the list, and
 * cumlp_<set>_from_name(name, &value), which accepts the name or the identifier in lower case
 * ("squared_error" for CUMLP_LOSS_SQUARED_ERROR, as checkpoints written by cumlp 0.1.0 spell it)
 * and otherwise returns CUMLP_ERROR_INVALID_VALUE, leaves value unchanged and lists the names in
 * cumlp_last_error(NULL).
 * ------------------------------------------------------------------------------------------- */

/** Internal: the count of a list's entries, as CUMLP_<SET>_COUNT defines it. */
#define CUMLP_COUNT_ENTRY_(id, value, name) +1

/* ---------------------------------------------------------------------------------------------
 * Status codes. CUMLP_SUCCESS is 0; the name of each status is its C identifier.
 * ------------------------------------------------------------------------------------------- */

#define CUMLP_STATUS_LIST(X)                                                                       \
    X(SUCCESS, 0, "CUMLP_SUCCESS")                                                                 \
    /** a NULL, a size out of range, mismatched shapes, ... */                                     \
    X(ERROR_INVALID_VALUE, 1, "CUMLP_ERROR_INVALID_VALUE")                                         \
    /** host or device memory could not be allocated */                                            \
    X(ERROR_ALLOC_FAILED, 2, "CUMLP_ERROR_ALLOC_FAILED")                                           \
    /** the backend or feature is not built or not available */                                    \
    X(ERROR_NOT_SUPPORTED, 3, "CUMLP_ERROR_NOT_SUPPORTED")                                         \
    /** the cuda backend was asked for and no usable GPU exists */                                 \
    X(ERROR_NO_DEVICE, 4, "CUMLP_ERROR_NO_DEVICE")                                                 \
    /** a CUDA, cuBLAS or cuRAND call failed (may be sticky) */                                    \
    X(ERROR_DEVICE, 5, "CUMLP_ERROR_DEVICE")                                                       \
    /** a file could not be opened, read, written or synced */                                     \
    X(ERROR_IO, 6, "CUMLP_ERROR_IO")                                                               \
    /** a file is malformed: bad magic, bad header, bad syntax */                                  \
    X(ERROR_FORMAT, 7, "CUMLP_ERROR_FORMAT")                                                       \
    /** a file ends before the data its header announces */                                        \
    X(ERROR_TRUNCATED, 8, "CUMLP_ERROR_TRUNCATED")                                                 \
    /** a count or size in a file exceeds a limit or overflows */                                  \
    X(ERROR_SIZE_LIMIT, 9, "CUMLP_ERROR_SIZE_LIMIT")                                               \
    /** a file's shapes or dtypes disagree with the network */                                     \
    X(ERROR_SHAPE_MISMATCH, 10, "CUMLP_ERROR_SHAPE_MISMATCH")                                      \
    /** a payload's checksum does not match its header */                                          \
    X(ERROR_CHECKSUM, 11, "CUMLP_ERROR_CHECKSUM")                                                  \
    /** NaN or Inf found in data, parameters or the loss */                                        \
    X(ERROR_NON_FINITE, 12, "CUMLP_ERROR_NON_FINITE")                                              \
    /** a bug in cumlp: please report it */                                                        \
    X(ERROR_INTERNAL, 13, "CUMLP_ERROR_INTERNAL")                                                  \
    /** not an error: a training step met NaN or Inf in its loss or gradients and was skipped,     \
     * parameters and optimizer state unchanged (cumlp_optimizer_step)                             \
     */                                                                                            \
    X(STEP_SKIPPED, 14, "CUMLP_STEP_SKIPPED")                                                      \
    /** an MPI or NCCL call failed (data-parallel training; see cumlp_network_set_comm) */         \
    X(ERROR_COMMUNICATION, 15, "CUMLP_ERROR_COMMUNICATION")

typedef enum cumlp_status {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_##id = value,
    CUMLP_STATUS_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_status;
enum { CUMLP_STATUS_COUNT = 0 CUMLP_STATUS_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of a status, such as "CUMLP_ERROR_INVALID_VALUE"; "CUMLP_ERROR_UNKNOWN" for a value
 * not in the list. Never NULL. */
CUMLP_API const char *cumlp_status_string(cumlp_status status);

/* ---------------------------------------------------------------------------------------------
 * Context: backend, device, stream, random numbers and the last error message.
 * ------------------------------------------------------------------------------------------- */

typedef struct cumlp_context cumlp_context;

#define CUMLP_BACKEND_LIST(X)                                                                      \
    /** cuda if a usable GPU is present, else cpu, else reference */                               \
    X(AUTO, 0, "auto")                                                                             \
    /** plain loops in double precision: the oracle, slow */                                       \
    X(REFERENCE, 1, "reference")                                                                   \
    /** BLAS GEMMs and OpenMP loops in fp32 */                                                     \
    X(CPU, 2, "cpu")                                                                               \
    /** cuBLAS GEMMs and fused CUDA kernels in every precision: fp32, TF32, bf16, fp16 */          \
    X(CUDA, 3, "cuda")

typedef enum cumlp_backend {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_BACKEND_##id = value,
    CUMLP_BACKEND_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_backend;
enum { CUMLP_BACKEND_COUNT = 0 CUMLP_BACKEND_LIST(CUMLP_COUNT_ENTRY_) };

/*
 * Precision: what the GEMMs compute in and what the network's activations are stored in. It is
 * a property of the context, set at creation (options.precision) and changeable between calls
 * (cumlp_context_set_precision). In every precision the parameters (the master weights), the
 * gradient arena, the reductions (bias gradients, the loss, the gradient norm) and the optimizer
 * state are fp32, and so are the tensors the caller sees (inputs, targets, outputs): the
 * precision changes only what happens inside a forward and a backward pass.
 *
 * BF16 and FP16 (cuda backend only; the cpu and reference backends refuse them with
 * CUMLP_ERROR_NOT_SUPPORTED): the GEMMs read 16-bit operands (a 16-bit copy of the weights that
 * every optimizer step refreshes in the same pass, the hidden layers' activations, the deltas
 * passed down, the input batch rounded once per pass) and accumulate in fp32 on the tensor cores.
 * The output layer's pre-activation and activation stay fp32, so the loss, the softmax and the
 * predictions are computed and returned in fp32 from logits rounded once. The elementwise math
 * is the same fp32 formulas as in FP32, on values read from 16-bit storage; every value stored
 * in 16 bits is rounded to nearest even. Expect about 3 significant digits in BF16 (8-bit
 * mantissa) and 4 in FP16 (11 bits), per element of a layer's result. FP16's range ends at 65504:
 * its gradients are computed from a scaled loss (see cumlp_loss_scaler), which BF16, with fp32's
 * exponent range, does not need. Checkpoints hold the fp32 master weights in every precision.
 */
#define CUMLP_PRECISION_LIST(X)                                                                    \
    /** fp32 storage and strict fp32 GEMMs (no tensor-core down-conversion): the default */        \
    X(FP32, 0, "fp32")                                                                             \
    /** fp32 storage; on the GPU the GEMMs round their inputs to TF32 (10-bit mantissa) on the     \
     * tensor cores, rel. error ~5e-3; the cpu and reference backends run their fp32 (double)      \
     * GEMMs                                                                                       \
     */                                                                                            \
    X(TF32, 1, "tf32")                                                                             \
    /** bf16 GEMM inputs and hidden activations, fp32 accumulation (cuda only) */                  \
    X(BF16, 2, "bf16")                                                                             \
    /** fp16 GEMM inputs and hidden activations, fp32 accumulation, loss scaling (cuda only) */    \
    X(FP16, 3, "fp16")

typedef enum cumlp_precision {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_PRECISION_##id = value,
    CUMLP_PRECISION_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_precision;
enum { CUMLP_PRECISION_COUNT = 0 CUMLP_PRECISION_LIST(CUMLP_COUNT_ENTRY_) };

/** cumlp 0.1.0's names of the precisions FP32 and TF32 ("math modes"), kept for its programs. */
typedef cumlp_precision cumlp_math_mode;
#define CUMLP_MATH_STRICT_FP32 CUMLP_PRECISION_FP32
#define CUMLP_MATH_TF32        CUMLP_PRECISION_TF32

typedef struct cumlp_context_options {
    int backend;     /**< a cumlp_backend; default CUMLP_BACKEND_AUTO */
    int device;      /**< CUDA device ordinal for the cuda backend; default 0 */
    void *stream;    /**< a cudaStream_t of `device` to run on (it must outlive the context), or
                          NULL for a non-blocking stream the context creates */
    int precision;   /**< a cumlp_precision; default CUMLP_PRECISION_FP32 (this field was
                          math_mode in cumlp 0.1.0; the layout is unchanged) */
    int num_threads; /**< threads for the cpu backend; 0 (default) means all cores */
} cumlp_context_options;

/** Fills *options with the defaults listed in cumlp_context_options. */
CUMLP_API cumlp_status cumlp_context_defaults(cumlp_context_options *options);

/**
 * Creates a context. options may be NULL for the defaults. Asking for a backend that this build
 * does not contain, or for a precision the backend does not run (BF16 or FP16 on cpu or
 * reference), returns CUMLP_ERROR_NOT_SUPPORTED; asking for cuda without a usable GPU returns
 * CUMLP_ERROR_NO_DEVICE. AUTO never fails for lack of a GPU: it falls back to cpu, then reference
 * (so with BF16 or FP16 and no usable GPU it fails, naming why it passed over each backend).
 * On failure *ctx is set to NULL and cumlp_last_error(NULL) says why.
 */
CUMLP_API cumlp_status cumlp_context_create(cumlp_context **ctx,
                                            const cumlp_context_options *options);

/*
 * On the cuda backend, creating the context and every call that runs work on it make
 * options.device the calling thread's current CUDA device (cudaSetDevice) and leave it so; a code
 * that uses several devices sets its own device again after calling cumlp.
 */

/** Destroys a context. Everything created in it must be destroyed first. Accepts NULL. */
CUMLP_API void cumlp_context_destroy(cumlp_context *ctx);

/**
 * The message of the last failed call in ctx ("" if none), or with ctx NULL the message of the
 * last failed call on this thread that had no context. Valid until the next call on ctx.
 */
CUMLP_API const char *cumlp_last_error(const cumlp_context *ctx);

/** The backend the context runs on (never AUTO), or -1 when ctx is NULL. */
CUMLP_API int cumlp_context_backend(const cumlp_context *ctx);

/** The name of a backend ("auto", "reference", "cpu", "cuda"), or "unknown". */
CUMLP_API const char *cumlp_backend_name(int backend);
/** Parses a backend name (see "Named values" above). */
CUMLP_API cumlp_status cumlp_backend_from_name(const char *name, int *backend);

/** 1 if this build contains the backend, else 0 (a built cuda backend may still find no GPU). */
CUMLP_API int cumlp_backend_is_built(int backend);

/** Waits until all work queued on the context's stream is done and reports its errors. */
CUMLP_API cumlp_status cumlp_context_synchronize(cumlp_context *ctx);

/**
 * Sets the precision (a cumlp_precision) of later calls: CUMLP_ERROR_NOT_SUPPORTED (precision
 * unchanged) for BF16 or FP16 on a backend other than cuda. Networks of the context follow at their
 * next forward pass, which then reallocates their work buffers (and with BF16 or FP16 makes the
 * 16-bit copy of their weights): change it between training runs, not between the calls of one
 * step (cumlp_loss_backward and cumlp_optimizer_step).
 */
CUMLP_API cumlp_status cumlp_context_set_precision(cumlp_context *ctx, int precision);

/** The context's precision (a cumlp_precision), or -1 when ctx is NULL. */
CUMLP_API int cumlp_context_precision(const cumlp_context *ctx);

/** The name of a precision ("fp32", "tf32", "bf16", "fp16"), or "unknown". */
CUMLP_API const char *cumlp_precision_name(int precision);
/** Parses the name of a precision into *precision (see "Named values" above). */
CUMLP_API cumlp_status cumlp_precision_from_name(const char *name, int *precision);

/** cumlp 0.1.0's name of cumlp_context_set_precision, kept for its programs. */
CUMLP_API cumlp_status cumlp_context_set_math_mode(cumlp_context *ctx, int math_mode);

/* ---------------------------------------------------------------------------------------------
 * GEMM epilogues. A layer's forward pass is a GEMM P = W A_prev followed by Z = P + b 1^T and
 * A = f(Z), and the backward pass of a hidden layer a GEMM G = W^T delta followed by
 * delta_below = G .* f'(Z) and the bias gradient (its row sums). The fused kernels do the second
 * half of each in one pass of their own on every backend. On the cuda backend, cuBLASLt can do it
 * in the GEMM's epilogue instead, saving that pass over the layer's activations: for ReLU
 * (forward bias + ReLU keeping a bitmask of Z > 0, backward dReLU with the bias gradient) and
 * GELU (forward bias + GELU keeping Z, backward dGELU with the bias gradient). The context's
 * setting says which layers take the epilogues; sigmoid, tanh, leaky ReLU, identity and softmax
 * layers always keep the fused kernels, and so do a GELU output layer (the loss differentiates the
 * exact GELU) and a GELU layer whose width is not a multiple of 8 (cuBLASLt cannot keep its Z), in
 * inference as in training; a case cuBLASLt has no algorithm for (a combination of types, a
 * pointer alignment) takes the fused kernels too, and its result is the fused path's.
 * In BF16 and FP16, cuBLASLt's bias and bias gradient are 16-bit (of the GEMM output's type): the
 * forward epilogue adds the bias rounded to 16 bits (as the GEMM reads W), and the backward pass
 * keeps the fused kernels, whose bias gradients are fp32 sums; so these precisions run the ReLU
 * layers' forward epilogue alone, and no GELU epilogue.
 * ------------------------------------------------------------------------------------------- */

#define CUMLP_EPILOGUES_LIST(X)                                                                    \
    /** the fused kernels for every layer: the default, and the only setting but on cuda */        \
    X(OFF, 0, "off")                                                                               \
    /** cuBLASLt epilogues for ReLU layers. The same math as the fused kernels but for NaN: the    \
     * fused kernels' z > 0 ? z : 0 maps a NaN pre-activation to 0 and passes no gradient there,   \
     * where cuBLASLt's ReLU keeps the NaN in A (so it reaches the loss, and the step is skipped)  \
     * and its bitmask passes the gradient */                                                      \
    X(RELU, 1, "relu")                                                                             \
    /** as RELU, and in FP32 and TF32 cuBLASLt epilogues for GELU layers too. Its GELU is the tanh \
     * approximation 0.5 z (1 + tanh(sqrt(2 / pi) (z + 0.044715 z^3))), not the exact z Phi(z)     \
     * of the fused kernels and of every other backend: the two differ by up to about 5e-4 per     \
     * element (and their derivatives by about 2e-3), so a GELU network trained with ALL follows   \
     * a slightly different function from the same network on the cpu backend */                   \
    X(ALL, 2, "all")

typedef enum cumlp_epilogues {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_EPILOGUES_##id = value,
    CUMLP_EPILOGUES_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_epilogues;
enum { CUMLP_EPILOGUES_COUNT = 0 CUMLP_EPILOGUES_LIST(CUMLP_COUNT_ENTRY_) };

/**
 * Sets which layers take cuBLASLt's GEMM epilogues (a cumlp_epilogues) in later passes. A new
 * context starts with OFF. Any value but OFF returns CUMLP_ERROR_NOT_SUPPORTED (setting unchanged)
 * on a backend without epilogues (cpu, reference). Networks of the context follow at their next
 * forward pass, which may then reallocate their work buffers (a ReLU layer's bitmask): change it
 * between training runs, not between the calls of one step.
 */
CUMLP_API cumlp_status cumlp_context_set_epilogues(cumlp_context *ctx, int epilogues);

/** The context's epilogue setting (a cumlp_epilogues), or -1 when ctx is NULL. */
CUMLP_API int cumlp_context_epilogues(const cumlp_context *ctx);

/**
 * Sets whether cumlp_train_step runs each step as one CUDA graph (on != 0) or launch by launch (0).
 * On the cuda backend a step is queued whole, its decisions (the NaN and overflow checks,
 * clipping, the bias corrections, the learning rate, the loss scaler) made on the device, so that
 * one captured graph replays it unchanged step after step, and the host waits once per step (for
 * the status and the loss it returns). The graph is captured at the second consecutive step with
 * the same network, optimizer, batch size and tensors (the first runs launch by launch and sizes
 * every buffer), and captured again when any of them, the precision or the epilogue setting
 * changes. Replay gives bit for bit the parameters of the same steps without a graph. On by
 * default on cuda; a backend without graphs (cpu, reference) accepts only 0
 * (CUMLP_ERROR_NOT_SUPPORTED otherwise). Steps of a network with a communicator never use a graph.
 */
CUMLP_API cumlp_status cumlp_context_set_graphs(cumlp_context *ctx, int on);

/** 1 when cumlp_train_step uses CUDA graphs in the context, else 0; -1 when ctx is NULL. */
CUMLP_API int cumlp_context_graphs(const cumlp_context *ctx);

/** The name of an epilogue setting ("off", "relu", "all"), or "unknown". */
CUMLP_API const char *cumlp_epilogues_name(int epilogues);
/** Parses the name of an epilogue setting into *epilogues (see "Named values" above). */
CUMLP_API cumlp_status cumlp_epilogues_from_name(const char *name, int *epilogues);

/**
 * Writes a one-line description of the context's device into buf (for example the GPU's name and
 * memory, or the CPU backend's thread count), truncated to buf_size - 1 characters. A context made
 * with CUMLP_BACKEND_AUTO adds why it passed over the backends before it ("auto: cuda backend
 * passed over: ...").
 */
CUMLP_API cumlp_status cumlp_context_describe(const cumlp_context *ctx, char *buf, size_t buf_size);

/**
 * The bytes of memory the context's backend holds now (*in_use_bytes) and the most it held at
 * once (*peak_bytes) since the context was created or cumlp_context_reset_peak_memory: what cumlp
 * allocates for tensors, networks (parameters, gradients, work buffers) and optimizer state, in
 * device memory on the cuda backend (with its reduction scratch, and 32 MiB each for cuBLASLt's
 * workspace from the first GEMM epilogue on and cuBLAS's from the first step captured as a CUDA
 * graph on; the graphs themselves are not counted) and in host memory on the cpu and
 * reference backends (the reference backend stores 8-byte doubles). Not counted: memory the
 * caller wraps with cumlp_tensor_wrap, the pinned host buffers of the cuda backend, what cuBLAS,
 * cuRAND, OpenBLAS or the CUDA runtime hold internally, and the cpu backend's per-thread
 * reduction scratch (a few doubles per row). Either pointer may be NULL.
 */
CUMLP_API cumlp_status cumlp_context_memory(const cumlp_context *ctx, int64_t *in_use_bytes,
                                            int64_t *peak_bytes);

/** Sets the peak that cumlp_context_memory reports to the bytes in use now. */
CUMLP_API cumlp_status cumlp_context_reset_peak_memory(cumlp_context *ctx);

/* ---------------------------------------------------------------------------------------------
 * Tensors: fp32 matrices in the context's memory (device memory on the cuda backend).
 * ------------------------------------------------------------------------------------------- */

typedef struct cumlp_tensor cumlp_tensor;

/** Creates a rows x cols column-major tensor in ctx's memory. Its contents are undefined. */
CUMLP_API cumlp_status cumlp_tensor_create(cumlp_context *ctx, int64_t rows, int64_t cols,
                                           cumlp_tensor **tensor);

/**
 * Creates a tensor that views columns [first_col, first_col + num_cols) of parent, without
 * copying: a batch of a larger data set. The parent must outlive the view.
 */
CUMLP_API cumlp_status cumlp_tensor_create_view(cumlp_tensor *parent, int64_t first_col,
                                                int64_t num_cols, cumlp_tensor **view);

/**
 * Wraps memory the caller owns as a rows x cols column-major fp32 tensor, without copying: device
 * memory on the cuda backend (for HPC codes whose data is already on the GPU). The memory must
 * stay valid until the tensor is destroyed; destroying the tensor does not free it. data must be
 * aligned to 4 bytes (CUMLP_ERROR_INVALID_VALUE otherwise; 16-byte alignment lets the kernels use
 * vector loads). On the cuda backend cumlp reads and writes the memory on the context's stream,
 * which is not ordered after other streams (the context's own stream is non-blocking): work
 * writing the memory elsewhere must be complete before a cumlp call uses it (synchronize, or pass
 * that stream as options.stream), and cumlp's writes are complete after
 * cumlp_context_synchronize. On the reference backend (which computes in double) this returns
 * CUMLP_ERROR_NOT_SUPPORTED.
 */
CUMLP_API cumlp_status cumlp_tensor_wrap(cumlp_context *ctx, void *data, int64_t rows, int64_t cols,
                                         cumlp_tensor **tensor);

/** Destroys a tensor (and frees its memory unless it is a view or wraps caller memory). */
CUMLP_API void cumlp_tensor_destroy(cumlp_tensor *tensor);

/** Rows of a tensor, or -1 for NULL. */
CUMLP_API int64_t cumlp_tensor_rows(const cumlp_tensor *tensor);
/** Columns of a tensor, or -1 for NULL. */
CUMLP_API int64_t cumlp_tensor_cols(const cumlp_tensor *tensor);

/**
 * The tensor's memory (a device pointer on the cuda backend), for sharing with other code. On the
 * reference backend the storage is double precision and this returns NULL.
 */
CUMLP_API void *cumlp_tensor_data(cumlp_tensor *tensor);

/**
 * Copies count = rows * cols floats from host memory into the tensor (column-major). count must
 * equal the tensor's size exactly. Returns when the host array may be reused.
 */
CUMLP_API cumlp_status cumlp_tensor_upload(cumlp_tensor *tensor, const float *host, int64_t count);

/** Copies the tensor's rows * cols elements into host memory; count must equal that size. */
CUMLP_API cumlp_status cumlp_tensor_download(const cumlp_tensor *tensor, float *host,
                                             int64_t count);

/**
 * Double-precision variants of upload and download. The reference backend stores doubles and keeps
 * every bit; the fp32 backends round to the nearest float on upload.
 */
CUMLP_API cumlp_status cumlp_tensor_upload_f64(cumlp_tensor *tensor, const double *host,
                                               int64_t count);
/** Double-precision download (see cumlp_tensor_upload_f64). */
CUMLP_API cumlp_status cumlp_tensor_download_f64(const cumlp_tensor *tensor, double *host,
                                                 int64_t count);

/* ---------------------------------------------------------------------------------------------
 * Networks
 * ------------------------------------------------------------------------------------------- */

typedef struct cumlp_network cumlp_network;

#define CUMLP_ACTIVATION_LIST(X)                                                                   \
    X(IDENTITY, 0, "identity")                                                                     \
    /** 1 / (1 + exp(-z)) */                                                                       \
    X(SIGMOID, 1, "sigmoid")                                                                       \
    X(TANH, 2, "tanh")                                                                             \
    /** max(0, z); derivative 0 at z <= 0 */                                                       \
    X(RELU, 3, "relu")                                                                             \
    /** z > 0 ? z : slope * z; slope in the network options */                                     \
    X(LEAKY_RELU, 4, "leaky_relu")                                                                 \
    /** exact form 0.5 z (1 + erf(z / sqrt 2)) */                                                  \
    X(GELU, 5, "gelu")                                                                             \
    /** output layer only, with CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY */                                \
    X(SOFTMAX, 6, "softmax")

typedef enum cumlp_activation {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_ACT_##id = value,
    CUMLP_ACTIVATION_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_activation;
enum { CUMLP_ACTIVATION_COUNT = 0 CUMLP_ACTIVATION_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of an activation (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_activation_name(int activation);
/** Parses the name of an activation into *activation (see "Named values" above). */
CUMLP_API cumlp_status cumlp_activation_from_name(const char *name, int *activation);

#define CUMLP_LOSS_LIST(X)                                                                         \
    /** E = 1/2 sum_k (a_k - y_k)^2 per sample. Any output activation but softmax. */              \
    X(SQUARED_ERROR, 0, "mse")                                                                     \
    /** E = -sum_k y_k log softmax(z)_k from the logits (log-sum-exp). Output must be softmax.     \
     * Each target column must sum to 1 (one-hot or a distribution): the delta a - y assumes it.   \
     */                                                                                            \
    X(SOFTMAX_CROSS_ENTROPY, 1, "ce")                                                              \
    /** E = -sum_k [y_k log a_k + (1 - y_k) log(1 - a_k)], stable log-sigmoid. Output sigmoid. */  \
    X(SIGMOID_BINARY_CROSS_ENTROPY, 2, "bce")

typedef enum cumlp_loss {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_LOSS_##id = value,
    CUMLP_LOSS_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_loss;
enum { CUMLP_LOSS_COUNT = 0 CUMLP_LOSS_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of a loss (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_loss_name(int loss);
/** Parses the name of a loss into *loss (see "Named values" above). */
CUMLP_API cumlp_status cumlp_loss_from_name(const char *name, int *loss);

#define CUMLP_INIT_LIST(X)                                                                         \
    /** N(0, scale^2) */                                                                           \
    X(NORMAL, 0, "normal")                                                                         \
    /** U[-scale, scale] */                                                                        \
    X(UNIFORM, 1, "uniform")                                                                       \
    /** N(0, s^2), s = scale * sqrt(2 / (fan_in + fan_out)) */                                     \
    X(XAVIER_NORMAL, 2, "xavier-normal")                                                           \
    /** U[-a, a], a = scale * sqrt(6 / (fan_in + fan_out)) */                                      \
    X(XAVIER_UNIFORM, 3, "xavier")                                                                 \
    /** N(0, s^2), s = scale * sqrt(2 / fan_in) */                                                 \
    X(HE_NORMAL, 4, "he-normal")                                                                   \
    /** U[-a, a], a = scale * sqrt(6 / fan_in) */                                                  \
    X(HE_UNIFORM, 5, "he")

typedef enum cumlp_init {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_INIT_##id = value,
    CUMLP_INIT_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_init;
enum { CUMLP_INIT_COUNT = 0 CUMLP_INIT_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of an init scheme (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_init_name(int init);
/** Parses the name of an init scheme into *init (see "Named values" above). */
CUMLP_API cumlp_status cumlp_init_from_name(const char *name, int *init);

typedef enum cumlp_bias_init {
    CUMLP_BIAS_ZERO = 0, /**< biases start at 0 */
    CUMLP_BIAS_DRAWN = 1 /**< biases are drawn like their layer's weights */
} cumlp_bias_init;

typedef struct cumlp_network_options {
    int loss;                /**< a cumlp_loss; default CUMLP_LOSS_SQUARED_ERROR */
    int init;                /**< a cumlp_init; default CUMLP_INIT_XAVIER_UNIFORM */
    double init_scale;       /**< sigma, epsilon or gain, per cumlp_init; default 1.0 */
    int bias_init;           /**< a cumlp_bias_init; default CUMLP_BIAS_ZERO */
    double leaky_relu_slope; /**< slope of leaky ReLU for z < 0, in [0, 1); default 0.01 */
    uint64_t seed;           /**< seed of the initial weights; default 42 */
} cumlp_network_options;

/** Fills *options with the defaults listed in cumlp_network_options. */
CUMLP_API cumlp_status cumlp_network_defaults(cumlp_network_options *options);

/**
 * Creates a network of num_layers layers (hidden layers plus the output layer) in ctx.
 * widths has num_layers + 1 entries: the input width, then each layer's width.
 * activations has num_layers entries (cumlp_activation values). Softmax is allowed only on the
 * output layer, only with CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, which requires it, and only over at
 * least 2 outputs (over one it is 1 whatever its input); sigmoid BCE requires a sigmoid output
 * layer. options may be NULL for the defaults. Parameters are
 * initialized from options->seed: the same seed gives the same weights on every backend, bit for
 * bit. The uniform schemes use cuRAND's uniform transform of Philox4x32-10; the normal schemes
 * cumlp's own Box-Muller transform of it, in double and rounded once (not what cuRAND's normal
 * generator would give). One caveat, with the normal schemes on the cuda backend: neither the
 * device's log, sin and cos nor the host's are correctly rounded, so a draw whose double value lies
 * within a few units of double's last place of a float rounding boundary may round the other way
 * there: at most about one draw in 10^8, 1 ulp off, which makes its weight at most 3 ulps off.
 */
CUMLP_API cumlp_status cumlp_network_create(cumlp_context *ctx, int num_layers,
                                            const int64_t *widths, const int *activations,
                                            const cumlp_network_options *options,
                                            cumlp_network **net);

/**
 * Destroys a network and its work buffers. Accepts NULL. With a communicator it is collective (it
 * frees cumlp's duplicate of it; see "Data-parallel training over MPI").
 */
CUMLP_API void cumlp_network_destroy(cumlp_network *net);

/** Number of layers (not counting the input), or -1 for NULL. */
CUMLP_API int cumlp_network_num_layers(const cumlp_network *net);
/** Width of layer index i: i = 0 is the input, i = num_layers the output; -1 if out of range. */
CUMLP_API int64_t cumlp_network_width(const cumlp_network *net, int i);
/** Activation of layer (0-based), or -1 if out of range. */
CUMLP_API int cumlp_network_activation(const cumlp_network *net, int layer);
/** The network's loss (a cumlp_loss), or -1 for NULL. */
CUMLP_API int cumlp_network_loss(const cumlp_network *net);
/** The context a network lives in, or NULL for NULL. */
CUMLP_API cumlp_context *cumlp_network_context(const cumlp_network *net);

/**
 * Total number of parameters. The flat order used by the get/set calls below, by checkpoints and
 * by gradients is: for each layer in order, W (n_l x n_(l-1), column-major), then b (n_l).
 */
CUMLP_API int64_t cumlp_network_num_parameters(const cumlp_network *net);

/** Reads all parameters into host memory; count must equal cumlp_network_num_parameters(). */
CUMLP_API cumlp_status cumlp_network_get_parameters(const cumlp_network *net, float *host,
                                                    int64_t count);
/** Writes all parameters from host memory; count must equal cumlp_network_num_parameters(). */
CUMLP_API cumlp_status cumlp_network_set_parameters(cumlp_network *net, const float *host,
                                                    int64_t count);

/**
 * Reads layer `layer` (0-based): W into weights (n_l * n_(l-1) floats, column-major, so
 * weights[j + i * n_l] is the weight from input unit i to unit j) and b into biases (n_l floats).
 * Either pointer may be NULL to skip it.
 */
CUMLP_API cumlp_status cumlp_network_get_layer(const cumlp_network *net, int layer, float *weights,
                                               float *biases);
/** Writes layer `layer`'s W and/or b (either may be NULL to leave it), layout as in get_layer. */
CUMLP_API cumlp_status cumlp_network_set_layer(cumlp_network *net, int layer, const float *weights,
                                               const float *biases);

/**
 * Double-precision variants of the four calls above, for published examples given to more digits
 * than fp32 holds and for codes that keep their data in double. Exact on the reference backend;
 * rounded to fp32 on the others.
 */
CUMLP_API cumlp_status cumlp_network_get_parameters_f64(const cumlp_network *net, double *host,
                                                        int64_t count);
/** See cumlp_network_get_parameters_f64. */
CUMLP_API cumlp_status cumlp_network_set_parameters_f64(cumlp_network *net, const double *host,
                                                        int64_t count);
/** See cumlp_network_get_parameters_f64. */
CUMLP_API cumlp_status cumlp_network_get_layer_f64(const cumlp_network *net, int layer,
                                                   double *weights, double *biases);
/** See cumlp_network_get_parameters_f64. */
CUMLP_API cumlp_status cumlp_network_set_layer_f64(cumlp_network *net, int layer,
                                                   const double *weights, const double *biases);

/**
 * Freezes (1) or unfreezes (0) a layer's weights and biases separately. Frozen parameters still
 * get gradients, but optimizer steps leave them (and their optimizer state) unchanged.
 */
CUMLP_API cumlp_status cumlp_network_freeze(cumlp_network *net, int layer, int freeze_weights,
                                            int freeze_biases);

/**
 * Inference: runs X (n_0 x B) through the network into Y (n_L x B). X and Y must be tensors of
 * the network's context, with the same number of columns, and must not share memory (not the
 * same tensor, nor views with columns in common).
 */
CUMLP_API cumlp_status cumlp_forward(cumlp_network *net, const cumlp_tensor *X, cumlp_tensor *Y);

/**
 * Forward pass, loss and backward pass on a batch: X (n_0 x B), targets T (n_L x B; one-hot
 * columns for classification). Leaves dE/dparameters, averaged over the batch, in the network's
 * gradient arena (read it with cumlp_network_get_gradients; in FP16 precision the arena holds
 * them times the loss scale, see cumlp_loss_scaler, which the readers divide out). If loss is not
 * NULL, *loss receives the batch mean of the per-sample loss E (this waits for the device); with
 * NULL it is not computed. Returns CUMLP_ERROR_NON_FINITE (gradients left as computed) if the loss
 * is NaN/Inf. With a communicator it is collective: X and T are this rank's shard, and the
 * gradients and the loss are the global batch's (see "Data-parallel training over MPI").
 */
CUMLP_API cumlp_status cumlp_loss_backward(cumlp_network *net, const cumlp_tensor *X,
                                           const cumlp_tensor *T, double *loss);

/**
 * The mean loss of a batch without computing gradients: a forward pass and the loss. *loss must
 * not be NULL.
 */
CUMLP_API cumlp_status cumlp_evaluate_loss(cumlp_network *net, const cumlp_tensor *X,
                                           const cumlp_tensor *T, double *loss);

/** Reads the gradient arena (same flat order as the parameters) into host memory. */
CUMLP_API cumlp_status cumlp_network_get_gradients(const cumlp_network *net, float *host,
                                                   int64_t count);

/** Double-precision variant of cumlp_network_get_gradients. */
CUMLP_API cumlp_status cumlp_network_get_gradients_f64(const cumlp_network *net, double *host,
                                                       int64_t count);

/*
 * Loss scaling (FP16 precision). fp16 keeps 5 exponent bits: a gradient below about 6e-8 flushes to
 * 0 in the 16-bit deltas a backward pass stores, and one above 65504 overflows. So in FP16 each
 * network multiplies the loss gradient of its output layer by a scale s, its gradient arena holds
 * s times the gradients (summed in fp32, where s costs no range), and cumlp_optimizer_step divides
 * them by s (with clipping, in the gradients' one factor) before the rule uses them. The scale is
 * dynamic, as PyTorch's torch.amp.GradScaler: a step whose scaled gradients hold NaN or Inf is an
 * overflow, skipped (CUMLP_STEP_SKIPPED, parameters and optimizer state bit for bit unchanged,
 * counted by cumlp_optimizer_skipped_steps; never CUMLP_ERROR_NON_FINITE, whatever the optimizer's
 * non_finite_error says, since a scaler expects them), and s is multiplied by backoff_factor; after
 * growth_interval steps taken in a row s is multiplied by growth_factor. Growth stops short of
 * fp32's largest value and backoff at fp32's smallest normal, 2^-126. A non-finite loss is not an
 * overflow of the scale (the forward pass does not use it): it follows non_finite_error and leaves
 * the scaler as it was (when cumlp_train_step is given no loss pointer, the loss is not computed,
 * and a forward pass past fp16's range shows as an overflow of the gradients). In the other
 * precisions the scaler is kept but neither applied nor updated. Checkpoints with optimizer state
 * hold the scaler too (keys "loss_scale", ...), so that FP16 training resumes bit for bit.
 */
typedef struct cumlp_loss_scaler {
    double scale;            /**< s, in [2^-126, FLT_MAX] (the kernels take it in fp32); default
                                  65536 (2^16). A power of two keeps the scaled gradients exact
                                  multiples of the plain ones */
    double growth_factor;    /**< finite and >= 1; default 2 */
    double backoff_factor;   /**< in (0, 1]; default 0.5 */
    int64_t growth_interval; /**< >= 0; default 2000; 0: the scale never grows */
    int64_t clean_steps;     /**< state: steps taken in a row since the last overflow or growth
                                  (growth at growth_interval resets it), >= 0; default 0 */
    int64_t overflows;       /**< state: steps skipped for an overflow so far, >= 0; default 0 */
} cumlp_loss_scaler;

/** Fills *scaler with the defaults listed in cumlp_loss_scaler. */
CUMLP_API cumlp_status cumlp_loss_scaler_defaults(cumlp_loss_scaler *scaler);

/** The network's loss scaler (its settings and state) into *scaler. */
CUMLP_API cumlp_status cumlp_network_get_loss_scaler(const cumlp_network *net,
                                                     cumlp_loss_scaler *scaler);

/**
 * Replaces the network's loss scaler, settings and state (a value out of range, NaN included, is
 * CUMLP_ERROR_INVALID_VALUE and changes nothing). A new network has cumlp_loss_scaler_defaults's.
 * The gradients already in the arena keep the scale they were computed with.
 */
CUMLP_API cumlp_status cumlp_network_set_loss_scaler(cumlp_network *net,
                                                     const cumlp_loss_scaler *scaler);

/* ---------------------------------------------------------------------------------------------
 * Optimizers. Updates use the gradients left by cumlp_loss_backward, elementwise over the
 * unfrozen parameters. With g the gradient plus weight_decay * w (L2 decay on every unfrozen
 * parameter, biases included, as PyTorch does; not for ADAMW), t the step (from 1) and the
 * hyper-parameters of cumlp_optimizer_options (lr, mu = momentum, b1 = beta1, b2 = beta2,
 * eps = epsilon, and alpha, rho, ... by their names), each rule is PyTorch's torch.optim rule of
 * the same name and defaults (with cumlp_optimizer_defaults_for; see the NADAM note):
 *   SGD:       w <- w - lr g
 *   MOMENTUM:  v <- mu v - lr g;             w <- w + v            (Polyak)
 *   NESTEROV:  v <- mu v - lr g;             w <- w + mu v - lr g  (Sutskever's form)
 *              (torch.optim.SGD's momentum and nesterov=True, for a constant lr)
 *   ADAM:      m <- b1 m + (1-b1) g;  s <- b2 s + (1-b2) g^2;
 *              w <- w - lr (m / (1-b1^t)) / (sqrt(s / (1-b2^t)) + eps)       (Kingma & Ba)
 *   ADAMW:     w <- (1 - lr weight_decay) w  (decoupled decay, Loshchilov & Hutter), then ADAM's
 *              step with g the plain gradient
 *   ADAMAX:    m <- b1 m + (1-b1) g;  u <- max(b2 u, |g| + eps);
 *              w <- w - (lr / (1-b1^t)) m / u                              (Kingma & Ba, sec. 7)
 *   NADAM:     mu_t = b1 (1 - 0.5 0.96^(t momentum_decay)), P_t = mu_1 ... mu_t;
 *              m, s as ADAM;  d = sqrt(s / (1-b2^t)) + eps;
 *              w <- w - lr (1-mu_t) / (1-P_t) g / d - lr mu_(t+1) / (1 - P_t mu_(t+1)) m / d
 *              (Dozat; as torch.optim.NAdam from PyTorch 2.0 on, whose fix of the second
 *              correction, P_t mu_(t+1), 1.13 and earlier lack: they use P_t mu_t mu_(t+1))
 *   RMSPROP:   s <- alpha s + (1-alpha) g^2;  d = sqrt(s) + eps, or with centered = 1
 *              a <- alpha a + (1-alpha) g,  d = sqrt(max(s - a^2, 0)) + eps;
 *              mu = 0: w <- w - lr g / d;  mu > 0: b <- mu b + g / d,  w <- w - lr b
 *   ADAGRAD:   s <- s + g^2 (s starting at initial_accumulator_value);
 *              w <- w - lr / (1 + (t-1) lr_decay) g / (sqrt(s) + eps)
 *   ADADELTA:  s <- rho s + (1-rho) g^2;  d <- sqrt(u + eps) / sqrt(s + eps) g;
 *              u <- rho u + (1-rho) d^2;  w <- w - lr d                       (Zeiler)
 * The state (v, m, s, u, a, b) lives in arenas of the parameters' shape, zeroed when the
 * optimizer is created (ADAGRAD's s at initial_accumulator_value). The per-step factors (the
 * bias corrections, NADAM's mu products, ADAGRAD's decayed rate) are computed on the host in
 * double. Frozen parameters and their state are left unchanged by every rule.
 * ------------------------------------------------------------------------------------------- */

typedef struct cumlp_optimizer cumlp_optimizer;

#define CUMLP_OPTIMIZER_LIST(X)                                                                    \
    X(SGD, 0, "sgd")                                                                               \
    X(MOMENTUM, 1, "momentum")                                                                     \
    X(NESTEROV, 2, "nesterov")                                                                     \
    X(ADAM, 3, "adam")                                                                             \
    X(ADAMW, 4, "adamw")                                                                           \
    X(ADAMAX, 5, "adamax")                                                                         \
    X(NADAM, 6, "nadam")                                                                           \
    X(RMSPROP, 7, "rmsprop")                                                                       \
    X(ADAGRAD, 8, "adagrad")                                                                       \
    X(ADADELTA, 9, "adadelta")

typedef enum cumlp_optimizer_type {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_OPT_##id = value,
    CUMLP_OPTIMIZER_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_optimizer_type;
enum { CUMLP_OPTIMIZER_COUNT = 0 CUMLP_OPTIMIZER_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of an optimizer type (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_optimizer_name(int type);
/** Parses the name of an optimizer type into *type (see "Named values" above). */
CUMLP_API cumlp_status cumlp_optimizer_from_name(const char *name, int *type);

/*
 * The defaults below are cumlp_optimizer_defaults's; cumlp_optimizer_defaults_for(type, ...)
 * gives PyTorch's defaults of that type instead where they differ: learning_rate 1e-3 (ADAM,
 * ADAMW), 2e-3 (ADAMAX, NADAM), 1.0 (ADADELTA); weight_decay 1e-2 (ADAMW); momentum 0 (RMSPROP);
 * epsilon 1e-10 (ADAGRAD), 1e-6 (ADADELTA). Note that RMSPROP reads `momentum`, whose default
 * here is MOMENTUM's 0.9: set it to 0, or start from cumlp_optimizer_defaults_for.
 */
typedef struct cumlp_optimizer_options {
    int type;             /**< a cumlp_optimizer_type; default CUMLP_OPT_SGD */
    double learning_rate; /**< default 0.01; must be finite and >= 0 */
    double momentum;      /**< mu for MOMENTUM, NESTEROV and RMSPROP, in [0, 1); default 0.9 */
    double weight_decay;  /**< L2 coefficient (ADAMW: decoupled decay), >= 0; default 0 */
    double beta1;         /**< ADAM, ADAMW, ADAMAX, NADAM: in [0, 1); default 0.9 */
    double beta2;         /**< ADAM, ADAMW, ADAMAX, NADAM: in [0, 1); default 0.999 */
    double epsilon;       /**< every rule that divides: > 0; default 1e-8 */
    /* Appended after cumlp 0.1.0 (the names are PyTorch's): */
    double alpha;    /**< RMSPROP's smoothing constant, in [0, 1); default 0.99 */
    double rho;      /**< ADADELTA's decay of its averages, in [0, 1); default 0.9 */
    int centered;    /**< RMSPROP: 1 normalizes by the gradients' variance; default 0 */
    double lr_decay; /**< ADAGRAD's learning-rate decay, >= 0; default 0 */
    double initial_accumulator_value; /**< ADAGRAD's starting sum of squares, >= 0; default 0 */
    double momentum_decay;            /**< NADAM's momentum decay psi, >= 0; default 4e-3 */
    double clip_norm;     /**< > 0: scale the gradients to a global L2 norm of at most this (see
                               cumlp_optimizer_step); 0 (default): off */
    double clip_value;    /**< > 0: clamp each gradient to [-clip_value, clip_value]; 0 off */
    int non_finite_error; /**< 0 (default): a step that meets NaN or Inf is skipped
                               (CUMLP_STEP_SKIPPED); 1: it fails with CUMLP_ERROR_NON_FINITE */
} cumlp_optimizer_options;

/** Fills *options with the defaults listed in cumlp_optimizer_options (type SGD). */
CUMLP_API cumlp_status cumlp_optimizer_defaults(cumlp_optimizer_options *options);

/**
 * Fills *options with the defaults for an optimizer of `type`: cumlp_optimizer_defaults's values
 * with the type set and PyTorch's defaults of that type where they differ (listed above).
 */
CUMLP_API cumlp_status cumlp_optimizer_defaults_for(int type, cumlp_optimizer_options *options);

/**
 * Creates an optimizer for net, with the state its rule keeps (velocity, moments, averages) in
 * arenas of the network's shape, zeroed (ADAGRAD's at initial_accumulator_value). options may be
 * NULL for the defaults. Options out of range (NaN included) or an unknown type are
 * CUMLP_ERROR_INVALID_VALUE. The network must outlive the optimizer.
 */
CUMLP_API cumlp_status cumlp_optimizer_create(cumlp_network *net,
                                              const cumlp_optimizer_options *options,
                                              cumlp_optimizer **opt);

/** Destroys an optimizer. Accepts NULL. */
CUMLP_API void cumlp_optimizer_destroy(cumlp_optimizer *opt);

/** Changes the learning rate for the following steps (learning-rate schedules). */
CUMLP_API cumlp_status cumlp_optimizer_set_learning_rate(cumlp_optimizer *opt,
                                                         double learning_rate);
/** The current learning rate, or -1 for NULL. */
CUMLP_API double cumlp_optimizer_learning_rate(const cumlp_optimizer *opt);
/** Number of steps taken so far, or -1 for NULL. Skipped steps are not counted. */
CUMLP_API int64_t cumlp_optimizer_step_count(const cumlp_optimizer *opt);
/** Number of steps skipped so far (CUMLP_STEP_SKIPPED), or -1 for NULL. */
CUMLP_API int64_t cumlp_optimizer_skipped_steps(const cumlp_optimizer *opt);
/**
 * The global L2 norm of the gradients that the last step (taken or skipped) saw, before clipping:
 * NaN or Inf when they held NaN or Inf (or the step was skipped for its loss before they were
 * looked at); -1 before the first step or for NULL.
 */
CUMLP_API double cumlp_optimizer_gradient_norm(const cumlp_optimizer *opt);

/**
 * Applies one update to the network's unfrozen parameters from its current gradients.
 *
 * First one pass over the whole gradient arena (frozen parameters included: they have gradients
 * too) gives its global L2 norm, ||g|| = sqrt(sum of g_i^2), summed in double in an order fixed
 * by the arena's size (and the cpu backend's thread count), so that it is the same from run to
 * run (in FP16 precision the arena's norm divided by the loss scale: the gradients' own). If it
 * is NaN or Inf (a gradient is), no update is made: parameters, optimizer state, step count and
 * bias corrections stay bit for bit as they were, and the call returns CUMLP_STEP_SKIPPED
 * (counted by cumlp_optimizer_skipped_steps), or CUMLP_ERROR_NON_FINITE with
 * options.non_finite_error = 1 (but for an overflow of FP16's loss scale, which is always a skip:
 * see cumlp_loss_scaler). Otherwise each gradient g is, before the rule uses it:
 *   clip_norm > 0:   g <- g min(1, clip_norm / (||g|| + 1e-6))   (torch.nn.utils.clip_grad_norm_
 *                    over all the parameters)
 *   clip_value > 0:  g <- min(max(g, -clip_value), clip_value)  (clip_grad_value_), after that
 * (so both bounds hold when both are set), then weight decay and the rule apply. The gradient
 * arena itself is left as it was. The norm is read back to the host, so on the cuda backend the
 * call waits for the device.
 */
CUMLP_API cumlp_status cumlp_optimizer_step(cumlp_optimizer *opt);

/**
 * One whole training step on a batch: cumlp_loss_backward, then cumlp_optimizer_step. The
 * optimizer must belong to net. loss may be NULL (see cumlp_loss_backward). If the loss is not
 * finite (computed only when loss is not NULL), no step is taken and the call returns as
 * cumlp_optimizer_step does for non-finite gradients: CUMLP_STEP_SKIPPED, or
 * CUMLP_ERROR_NON_FINITE with options.non_finite_error = 1; *loss then holds the loss. With a
 * communicator it is collective, on every rank's shard (see "Data-parallel training over MPI").
 */
CUMLP_API cumlp_status cumlp_train_step(cumlp_network *net, cumlp_optimizer *opt,
                                        const cumlp_tensor *X, const cumlp_tensor *T, double *loss);

/** What an optimizer's steps came to since its last cumlp_optimizer_sync (or its creation),
 * whichever call ran them: cumlp_train_step, cumlp_train_step_async, cumlp_optimizer_step,
 * cumlp_fit. */
typedef struct cumlp_step_summary {
    int64_t steps;        /* the steps run */
    int64_t taken;        /* of them applied */
    int64_t skipped;      /* skipped: a non-finite loss or gradients, an FP16 overflow */
    int64_t failed;       /* failed under options.non_finite_error, or not applied after such a
                             failure (cumlp_train_step_async) */
    double loss;          /* the mean loss per sample over the steps that computed a finite loss
                             (every cumlp_train_step_async; cumlp_train_step when asked for it);
                             NaN when none did */
    int64_t loss_samples; /* the samples of that mean */
} cumlp_step_summary;

/**
 * cumlp_train_step without the wait: on the cuda backend the whole step (with its decision, see
 * "The training step as one CUDA graph" in README.md) is queued and the call returns, so that the
 * host queues the next batch while the device works, and the loss stays on the device until
 * cumlp_optimizer_sync reads the summary of the steps. X and T are read when the step runs:
 * change them only through cumlp_tensor_upload (queued behind the step) or after a sync. Arguments
 * are checked at once (the same errors as cumlp_train_step); what a step comes to (taken, skipped,
 * its loss, a failure under options.non_finite_error, after which the later queued steps are not
 * applied) is reported by cumlp_optimizer_sync. Until then the optimizer's counters, its gradient
 * norm and the network's loss scaler on the host are those of the last sync: every function that
 * reads or sets them (cumlp_optimizer_step_count, cumlp_network_get_loss_scaler, a checkpoint, a
 * new learning rate, cumlp_train_step, ...) waits for the queued steps first. A failure such a
 * wait finds stops training until cumlp_optimizer_sync has reported it: later queued steps are
 * counted as failed and not run, and cumlp_train_step, cumlp_optimizer_step and cumlp_fit return
 * CUMLP_ERROR_NON_FINITE. Where the step is
 * decided on the host (the cpu and reference backends, no pinned memory) the call runs it at once
 * and reports it the same way. With a communicator it is collective and runs every step at once:
 * a skipped step is counted in the summary, a failure under non_finite_error is returned at once
 * (on every rank), and no step is halted.
 */
CUMLP_API cumlp_status cumlp_train_step_async(cumlp_network *net, cumlp_optimizer *opt,
                                              const cumlp_tensor *X, const cumlp_tensor *T);

/**
 * Waits for opt's queued steps, brings its counters, gradient norm and its network's loss scaler
 * up to date, fills *summary (NULL: not wanted) with the steps since the last sync and starts a new
 * summary. Returns CUMLP_ERROR_NON_FINITE when a step failed under options.non_finite_error (the
 * message says why and how many queued steps were then not applied; the summary is filled and
 * new steps run again), or the device's error.
 */
CUMLP_API cumlp_status cumlp_optimizer_sync(cumlp_optimizer *opt, cumlp_step_summary *summary);

/* ---------------------------------------------------------------------------------------------
 * Gradient check
 * ------------------------------------------------------------------------------------------- */

/**
 * Checks the network's backpropagated gradients on the batch (X, T) against central finite
 * differences, D(h) = (E(w + h) - E(w - h)) / 2h, computed in double precision on a
 * reference-backend copy of the network; D(h) and D(h/2) are combined by Richardson extrapolation,
 * (4 D(h/2) - D(h)) / 3, whose error is O(h^4). h = step_size; 0 selects 1e-3. Where a step
 * straddles a ReLU kink (a unit changes side), h shrinks tenfold, up to four times. The analytic
 * gradients come from the network's own backend, so this checks the GPU and CPU backends too.
 *
 * max_rel_error receives 2 * num_layers values: for layer l, [2l] for W and [2l + 1] for b. Each is
 * the largest over the tensor's elements of |g - n| / max(|g|, |n|, 1e-3 * m, 1e-8), where g is
 * backpropagation's value, n the finite difference and m the largest |g| or |n| in that tensor
 * (entries a thousand times smaller than the tensor's largest are judged on the tensor's scale,
 * and gradients under 1e-8, below what the differences resolve (~1e-12 absolute for a loss of
 * order 1), on an absolute scale).
 * Local to the rank on a network with a communicator: it checks this rank's own gradients of (X,
 * T). Costs four loss evaluations per parameter: use small networks. Leaves the network's
 * parameters unchanged and its gradient arena holding the gradients of (X, T).
 */
CUMLP_API cumlp_status cumlp_gradient_check(cumlp_network *net, const cumlp_tensor *X,
                                            const cumlp_tensor *T, double step_size,
                                            double *max_rel_error, int64_t count);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints (safetensors)
 *
 * A checkpoint is a safetensors file: an 8-byte little-endian header length N, N bytes of JSON
 * header, then the raw little-endian fp32 tensors, back to back in header order. Tensor names
 * follow PyTorch's nn.Sequential(Linear, Act, Linear, Act, ...), where Linear layers sit at the
 * even indices, so a state dict loads straight into such a model (strict=True):
 *   "<2k>.weight"  F32 [n_out, n_in]  layer k's W
 *   "<2k>.bias"    F32 [n_out]        layer k's b
 * cumlp's W is n_out x n_in column-major (W[j + i n_out] links input i to unit j); the file
 * stores it row-major as [n_out, n_in] (element [j][i] at j n_in + i), so writing and reading
 * transpose. Optimizer state uses the same layouts under "optimizer.state<i>.<2k>.weight" and
 * "optimizer.state<i>.<2k>.bias" for each state arena i the rule keeps: state1 is the velocity
 * (MOMENTUM, NESTEROV), the first moment m (ADAM, ADAMW, ADAMAX, NADAM), the squares' average s
 * (RMSPROP, ADADELTA) or sum s (ADAGRAD); state2 is the second moment s (ADAM, ADAMW, NADAM), the
 * infinity norm u (ADAMAX), the updates' average u (ADADELTA) or RMSPROP's momentum buffer b
 * (only with momentum > 0); state3 is centered RMSPROP's gradient average a. SGD has none.
 * "__metadata__" (string to string) holds: "format" = "cumlp", "format_version" = "2",
 * "num_layers", "widths" ("784,128,10"), "activations" ("relu,softmax": the names of
 * CUMLP_ACTIVATION_LIST), "loss" (a name of CUMLP_LOSS_LIST: mse, ce, bce; files written by cumlp
 * 0.1.0 before the names were unified say squared_error, softmax_cross_entropy and
 * sigmoid_binary_cross_entropy, which are read too), "leaky_relu_slope", "crc32" (CRC-32/ISO-HDLC,
 * as zlib.crc32, of the whole file: the length field, the header and the tensors, with the 8
 * lowercase hex digits of this value written as "00000000"; the header holds the text
 * "crc32":" exactly once), and with an optimizer:
 * "optimizer" (a name of CUMLP_OPTIMIZER_LIST), "learning_rate", "momentum", "weight_decay",
 * "beta1", "beta2", "epsilon", "alpha", "rho", "centered", "lr_decay",
 * "initial_accumulator_value", "momentum_decay", "clip_norm", "clip_value", "non_finite_error"
 * (decimal in C syntax whatever the process's LC_NUMERIC locale, round-trip exact),
 * "step_count", for NADAM "mu_product" (its P_t), and the network's loss scaler (FP16; see
 * cumlp_loss_scaler) as "loss_scale", "loss_scale_growth_factor", "loss_scale_backoff_factor",
 * "loss_scale_growth_interval", "loss_scale_clean_steps" and "loss_scale_overflows", so that
 * training resumes bit for bit. Files written before an option existed lack its key and read
 * as its default. Frozen flags are not stored.
 *
 * The header lists the tensors in the order above, and their data follows in that order, each
 * tensor's data_offsets beginning where the previous one's end.
 *
 * Files of format_version "1" (cumlp 0.1) are read too: their checksum, "payload_crc32", covers
 * only the bytes after the header, so a change to their header that leaves it valid (an activation
 * renamed, say) cannot be detected; the order above catches swapped names or offsets there.
 * Readers of version 1 refuse version 2 files.
 *
 * Parameters travel as fp32 on every backend and in every precision (the master weights: a model
 * trained in BF16 or FP16 loads on the cpu and reference backends), so a checkpoint written on one
 * backend loads on any other with bit-identical parameters, and save -> load -> save gives the
 * same bytes.
 *
 * Writing is crash-safe: the file is written to a temporary file in the target's directory,
 * flushed and fsync()ed, renamed over the target, and the directory is fsync()ed. At every
 * moment the target is either the old file or the complete new one; a failed save leaves the old
 * file and no temporary file behind. A replaced file keeps its permission bits; a new one gets
 * 0666 less the process's umask, as open() would give it. A symbolic link is followed: the file it
 * points to is replaced (or created) and the link stays. An existing target that is not a regular
 * file (a FIFO, a device such as /dev/null, a directory, a socket), at the path or at the end of
 * its links, is never replaced: the save fails with CUMLP_ERROR_IO and leaves it as it was.
 *
 * Reading checks everything before it changes anything: that the path is a regular file (a FIFO, a
 * device or a directory is CUMLP_ERROR_IO at once, never a blocking read), header size (at most
 * 16 MiB, which holds about 20000 layers with Adam state, and the file size), at most one JSON
 * value per 6 header bytes (so a header of tiny values cannot make the parser allocate many times
 * its size; every header cumlp writes uses more), overflow-checked sizes, contiguous in-file
 * offsets covering the exact file size, dtype "F32", every tensor's shape against the architecture,
 * duplicate, missing, unknown and out-of-order tensors, the checksum, and NaN/Inf parameters
 * (unless CUMLP_CHECKPOINT_ALLOW_NON_FINITE). Errors: CUMLP_ERROR_IO (open/read/write/sync),
 * CUMLP_ERROR_FORMAT (bad JSON, bad metadata, unknown, duplicate, missing or out-of-order tensor,
 * offsets not contiguous in header order), CUMLP_ERROR_TRUNCATED (file shorter than announced),
 * CUMLP_ERROR_SIZE_LIMIT (header or size too large, too many JSON values in the header, overflow,
 * trailing bytes), CUMLP_ERROR_SHAPE_MISMATCH (a dtype other than F32, shapes that disagree with
 * the architecture or, for load_into, an architecture or optimizer type that differs from the
 * caller's), CUMLP_ERROR_CHECKSUM, CUMLP_ERROR_NON_FINITE; the message names the file and the
 * problem.
 * ------------------------------------------------------------------------------------------- */

/** Flag for the load functions: accept NaN and Inf parameters and optimizer state. */
#define CUMLP_CHECKPOINT_ALLOW_NON_FINITE 1

/**
 * Writes net's architecture and parameters, and with opt != NULL (an optimizer of net) its type,
 * hyper-parameters, step count and state, to the safetensors file at path (crash-safe, above).
 */
CUMLP_API cumlp_status cumlp_checkpoint_save(const cumlp_network *net, const cumlp_optimizer *opt,
                                             const char *path);

/**
 * Creates a network in ctx with the file's architecture and parameters. With opt != NULL: if the
 * file holds optimizer state, *opt receives a new optimizer of the new network with the file's
 * type, hyper-parameters, step count and state (and the network the file's loss scaler, if it
 * has one); otherwise *opt = NULL. flags: 0 or
 * CUMLP_CHECKPOINT_ALLOW_NON_FINITE. On failure *net (and *opt) are NULL and nothing leaks.
 * The new network's options other than loss and leaky slope (init, seed) are the defaults.
 */
CUMLP_API cumlp_status cumlp_checkpoint_load(cumlp_context *ctx, const char *path, int flags,
                                             cumlp_network **net, cumlp_optimizer **opt);

/**
 * Loads the file's parameters into an existing network with the same widths, activations and
 * loss (else CUMLP_ERROR_SHAPE_MISMATCH). With opt != NULL (an optimizer of net) and optimizer
 * state in the file, the optimizer types must agree (else CUMLP_ERROR_SHAPE_MISMATCH) and opt's
 * state and step count are restored, with the network's loss scaler when the file has one (its
 * hyper-parameters stay as the caller set them); the state
 * arenas must agree too (RMSPROP's momentum and centered options decide which it keeps, else
 * CUMLP_ERROR_SHAPE_MISMATCH). When the file holds no optimizer state, opt is left as it is. On
 * any failure net and opt are untouched.
 */
CUMLP_API cumlp_status cumlp_checkpoint_load_into(cumlp_network *net, cumlp_optimizer *opt,
                                                  const char *path, int flags);

/**
 * cumlp_checkpoint_load from a checkpoint held in memory (size bytes at data), with the same
 * checks; messages name the file "<memory>". data may be NULL only when size is 0 (an error).
 */
CUMLP_API cumlp_status cumlp_checkpoint_load_memory(cumlp_context *ctx, const void *data,
                                                    size_t size, int flags, cumlp_network **net,
                                                    cumlp_optimizer **opt);

/*
 * One file is the whole model: beside the network, a checkpoint may record what is needed to use
 * it on new data, so that nothing else has to travel with it:
 *  - the scaling of its inputs (a cumlp_scaler), as two more tensors after all others:
 *      "scaler.offset"  F32 [n_in]   "scaler.scale"  F32 [n_in]
 *    (a sample x goes into the network as (x - offset) * scale);
 *  - what its outputs mean (a cumlp_model_info), as metadata: "task" (a name of CUMLP_TASK_LIST),
 *    "num_classes" and "label_column" (decimal integers).
 * Every tensor cumlp adds to the network's own ("optimizer.state...", "scaler....") has a name
 * that does not start with a digit, so in PyTorch
 *     {k: v for k, v in tensors.items() if k[:1].isdigit()}
 * is the state dict that nn.Sequential(...).load_state_dict(..., strict=True) takes.
 */

/* The scaler handle (cumlp_scaler, with the datasets below). */
struct cumlp_scaler;

#define CUMLP_TASK_LIST(X)                                                                         \
    /** not recorded (cumlp_checkpoint_save, or a file of cumlp 0.1) */                            \
    X(UNKNOWN, 0, "unknown")                                                                       \
    /** classes: labels 0 .. num_classes - 1, as one-hot targets over the outputs, or as one 0/1   \
     * target when the network has one output (a binary classifier) */                             \
    X(CLASSIFY, 1, "classify")                                                                     \
    /** regression: the targets are the values as they were read */                                \
    X(REGRESS, 2, "regress")

typedef enum cumlp_task {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_TASK_##id = value,
    CUMLP_TASK_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_task;
enum { CUMLP_TASK_COUNT = 0 CUMLP_TASK_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of a task (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_task_name(int task);
/** Parses the name of a task into *task (see "Named values" above). */
CUMLP_API cumlp_status cumlp_task_from_name(const char *name, int *task);

/** How a network's targets were made from its data. */
typedef struct cumlp_model_info {
    int task;         /**< a cumlp_task; default CUMLP_TASK_UNKNOWN (nothing is recorded) */
    int num_classes;  /**< CLASSIFY: the class count, the network's output width (2 for one
                           output); else 0 (default) */
    int label_column; /**< the CSV column (from 0) the targets were read from; -1 (default): the
                           last (cumlp_csv_options.label_column) */
} cumlp_model_info;

/** Fills *info with the defaults listed in cumlp_model_info. */
CUMLP_API cumlp_status cumlp_model_info_defaults(cumlp_model_info *info);

/**
 * cumlp_checkpoint_save, recording also the scaling of the network's inputs (scaler, NULL for
 * none; its feature count must be the network's input width) and what its outputs mean (info,
 * NULL or task CUMLP_TASK_UNKNOWN for nothing; num_classes must fit the output width as
 * cumlp_model_info says, label_column be >= -1). Bad arguments are CUMLP_ERROR_INVALID_VALUE.
 */
CUMLP_API cumlp_status cumlp_checkpoint_save_with(const cumlp_network *net,
                                                  const cumlp_optimizer *opt,
                                                  const struct cumlp_scaler *scaler,
                                                  const cumlp_model_info *info, const char *path);

/**
 * cumlp_checkpoint_load, reading also what cumlp_checkpoint_save_with recorded: with scaler not
 * NULL, *scaler receives a new scaler (of ctx) with the file's scaling, or NULL when the file has
 * none; with info not NULL, *info receives the file's model info (the defaults, task
 * CUMLP_TASK_UNKNOWN, when it records none). The scaling must have one finite offset and one
 * finite, nonzero scale per input, and the model info fit the network (else CUMLP_ERROR_FORMAT).
 * On failure *net, *opt and *scaler are NULL, *info is unchanged and nothing leaks.
 */
CUMLP_API cumlp_status cumlp_checkpoint_load_with(cumlp_context *ctx, const char *path, int flags,
                                                  cumlp_network **net, cumlp_optimizer **opt,
                                                  struct cumlp_scaler **scaler,
                                                  cumlp_model_info *info);

/** cumlp_checkpoint_load_with from a checkpoint in memory, as cumlp_checkpoint_load_memory. */
CUMLP_API cumlp_status cumlp_checkpoint_load_memory_with(cumlp_context *ctx, const void *data,
                                                         size_t size, int flags,
                                                         cumlp_network **net, cumlp_optimizer **opt,
                                                         struct cumlp_scaler **scaler,
                                                         cumlp_model_info *info);

/* ---------------------------------------------------------------------------------------------
 * Datasets (host memory). A dataset holds n_samples samples: features, an n_features x n_samples
 * column-major fp32 matrix (one sample per column), and targets, n_outputs x n_samples: one-hot
 * columns for classification (num_classes = n_outputs >= 1) or regression values (num_classes 0).
 *
 * A dataset remembers the context it was made with (which may be NULL), only to report errors:
 * calls on it leave their message in that context, or with NULL in the per-thread slot that
 * cumlp_last_error(NULL) returns. The context must outlive the dataset.
 *
 * Readers reject bad input with a status and a message naming the file ("<memory>" for the CSV and
 * FANN *_memory readers, "<memory images>" and "<memory labels>" for IDX) and the line or byte
 * offset: CUMLP_ERROR_IO (cannot open or read; a path that is not a regular file, such as a FIFO, a
 * device or a directory, fails at once instead of blocking), CUMLP_ERROR_FORMAT (bad magic, syntax,
 * ragged rows, non-numeric fields), CUMLP_ERROR_TRUNCATED (less data than the header announces),
 * CUMLP_ERROR_SIZE_LIMIT (counts that overflow or exceed CUMLP_DATASET_MAX_ELEMENTS, or disagree),
 * CUMLP_ERROR_NON_FINITE (NaN or Inf values), CUMLP_ERROR_INVALID_VALUE (NULL arguments, bad
 * options, labels out of range). Nothing is half-loaded: on failure *ds is NULL and nothing is left
 * allocated.
 *
 * Numbers in text files (CSV, FANN) are read in C syntax ("1.5", never "1,5") whatever the
 * process's LC_NUMERIC locale, thread-safely (the process locale is not changed). fp32 values are
 * rounded once from the decimal text, so "%.9g" of a float reads back as the same float.
 * ------------------------------------------------------------------------------------------- */

typedef struct cumlp_dataset cumlp_dataset;

/** Largest number of feature (or target) values one dataset may hold. */
#define CUMLP_DATASET_MAX_ELEMENTS ((int64_t)1 << 32)

/**
 * Creates a dataset of n_samples samples with zeroed features and targets. num_classes is 0 for
 * regression, else the number of classes, which must equal n_outputs (one-hot targets; fill them
 * with cumlp_dataset_set_labels). ctx may be NULL (see above).
 */
CUMLP_API cumlp_status cumlp_dataset_create(cumlp_context *ctx, int64_t n_features,
                                            int64_t n_outputs, int64_t n_samples, int num_classes,
                                            cumlp_dataset **ds);

/** Destroys a dataset. Accepts NULL. */
CUMLP_API void cumlp_dataset_destroy(cumlp_dataset *ds);

/** Number of samples, or -1 for NULL. */
CUMLP_API int64_t cumlp_dataset_num_samples(const cumlp_dataset *ds);
/** Number of features per sample, or -1 for NULL. */
CUMLP_API int64_t cumlp_dataset_num_features(const cumlp_dataset *ds);
/** Number of target values per sample, or -1 for NULL. */
CUMLP_API int64_t cumlp_dataset_num_outputs(const cumlp_dataset *ds);
/** Number of classes (0 for a regression dataset), or -1 for NULL. */
CUMLP_API int cumlp_dataset_num_classes(const cumlp_dataset *ds);
/** The features, n_features x n_samples column-major; writable. NULL for NULL. */
CUMLP_API float *cumlp_dataset_features(cumlp_dataset *ds);
/** The targets, n_outputs x n_samples column-major; writable. NULL for NULL. */
CUMLP_API float *cumlp_dataset_targets(cumlp_dataset *ds);
/**
 * The class of sample i of a classification dataset: the index of the largest entry of its
 * target column (the first one on ties). -1 for NULL, a regression dataset or i out of range.
 */
CUMLP_API int cumlp_dataset_label(const cumlp_dataset *ds, int64_t i);

/**
 * Writes one-hot targets from class indices: labels[i] in [0, num_classes) for each of the
 * count = n_samples samples. Fails (targets unchanged) if a label is out of range.
 */
CUMLP_API cumlp_status cumlp_dataset_set_labels(cumlp_dataset *ds, const int32_t *labels,
                                                int64_t count);

/**
 * Reads an IDX pair (the MNIST and Fashion-MNIST format): an images file of any element type
 * (unsigned/signed byte, int16, int32, float32, float64; big-endian) whose first dimension is
 * the sample count and whose other dimensions give n_features, and a labels file (one dimension,
 * integer type) with the same count. Either file may be gzip-compressed (detected by its magic
 * bytes; inflating stops at the size the IDX header announces, so a gzip bomb costs no more
 * memory than the data it claims, and a header announcing more than deflate's 1032:1 can hold in
 * the compressed bytes is CUMLP_ERROR_TRUNCATED before anything is allocated). The files are read
 * and inflated in chunks straight into the dataset: reading takes the dataset's memory and a few
 * 64 KiB buffers, never the whole file or its inflated copy. Feature values are stored as they are
 * (0..255 for MNIST images: scale them with a cumlp_scaler). num_classes > 0 fixes the class count
 * (labels must be below it); 0 takes the largest label + 1 (at most 65536 classes; a larger label
 * is CUMLP_ERROR_SIZE_LIMIT). Targets become one-hot. labels_path may be NULL for images without
 * labels (for cumlp_predict): each sample then gets one target, 0, and num_classes must be 0.
 */
CUMLP_API cumlp_status cumlp_dataset_read_idx(cumlp_context *ctx, const char *images_path,
                                              const char *labels_path, int num_classes,
                                              cumlp_dataset **ds);

/** cumlp_dataset_read_idx from two buffers in memory (either may hold gzip data; labels may be
 * NULL, as labels_path). */
CUMLP_API cumlp_status cumlp_dataset_read_idx_memory(cumlp_context *ctx, const void *images,
                                                     size_t images_size, const void *labels,
                                                     size_t labels_size, int num_classes,
                                                     cumlp_dataset **ds);

/** cumlp_csv_options.label_column for data without targets: every column is a feature. */
#define CUMLP_CSV_NO_TARGET (-2)

typedef struct cumlp_csv_options {
    int has_header;   /**< 1: the first line is a header and is skipped; default 0 */
    int label_column; /**< 0-based column of the target; -1 (default) the last column;
                           CUMLP_CSV_NO_TARGET: none, every column is a feature and each
                           sample gets one target, 0 (for cumlp_predict; num_classes must be
                           0) */
    int num_classes;  /**< 0 (default): regression, the target value is kept as is; > 0: the
                           column holds integer classes in [0, num_classes), made one-hot;
                           -1: classes, counted as the largest label + 1 (at most
                           65536) */
    int delimiter;    /**< field separator character; default ','. A tab or space
                           delimiter separates fields and is not skipped as padding, so
                           two in a row enclose an empty field (an error) */
} cumlp_csv_options;

/** Fills *options with the defaults listed in cumlp_csv_options. */
CUMLP_API cumlp_status cumlp_csv_defaults(cumlp_csv_options *options);

/**
 * Reads a numeric CSV file: one sample per line, every line with the same number of fields
 * (at least 2, or 1 without a target), numbers in C syntax ("1", "-2.5e-3"); spaces around fields,
 * blank lines and a final line without a newline are accepted, "\r\n" line ends too. One column is
 * the target; the others are the features, in order. options may be NULL for the defaults.
 */
CUMLP_API cumlp_status cumlp_dataset_read_csv(cumlp_context *ctx, const char *path,
                                              const cumlp_csv_options *options, cumlp_dataset **ds);

/** cumlp_dataset_read_csv from size bytes of text in memory (no terminating NUL needed). */
CUMLP_API cumlp_status cumlp_dataset_read_csv_memory(cumlp_context *ctx, const char *text,
                                                     size_t size, const cumlp_csv_options *options,
                                                     cumlp_dataset **ds);

/**
 * Reads FANN's training-data format: a first line "N n_in n_out", then for each of the N samples
 * a line of n_in inputs and a line of n_out outputs (any whitespace separates the numbers).
 * classification = 0 keeps the outputs as regression targets; 1 makes it a classification
 * dataset of n_out classes (n_out >= 2) whose class is the largest output, with one-hot targets.
 */
CUMLP_API cumlp_status cumlp_dataset_read_fann(cumlp_context *ctx, const char *path,
                                               int classification, cumlp_dataset **ds);

/** cumlp_dataset_read_fann from size bytes of text in memory. */
CUMLP_API cumlp_status cumlp_dataset_read_fann_memory(cumlp_context *ctx, const char *text,
                                                      size_t size, int classification,
                                                      cumlp_dataset **ds);

/** Shuffles the samples (features and targets together) with a permutation drawn from seed. */
CUMLP_API cumlp_status cumlp_dataset_shuffle(cumlp_dataset *ds, uint64_t seed);

/** A new dataset holding a copy of samples [first, first + count) of ds. */
CUMLP_API cumlp_status cumlp_dataset_subset(const cumlp_dataset *ds, int64_t first, int64_t count,
                                            cumlp_dataset **out);

/**
 * Splits ds (left unchanged) into a training and a validation set: the samples are permuted by
 * seed, the first round(validation_fraction * n_samples) go to *validation, the rest to *train.
 * validation_fraction must be in (0, 1) and leave at least one sample on each side.
 */
CUMLP_API cumlp_status cumlp_dataset_split(const cumlp_dataset *ds, double validation_fraction,
                                           uint64_t seed, cumlp_dataset **train,
                                           cumlp_dataset **validation);

/**
 * cumlp_dataset_split without a second copy of the data: the validation samples move out of ds
 * into a new dataset *validation, and ds keeps the training samples (its memory shrinks to them).
 * The two sets, and their order, are those cumlp_dataset_split gives (*validation its
 * *validation, ds its *train), with the same conditions on validation_fraction. On failure ds is
 * unchanged and *validation is NULL.
 */
CUMLP_API cumlp_status cumlp_dataset_split_off(cumlp_dataset *ds, double validation_fraction,
                                               uint64_t seed, cumlp_dataset **validation);

/*
 * Feature scaling. A scaler maps each feature x to (x - offset) * scale. Fit it on the training
 * split only and apply it to every split, so that no statistic leaks from validation or test data.
 */
typedef struct cumlp_scaler cumlp_scaler;

typedef enum cumlp_scaling {
    CUMLP_SCALE_MINMAX = 0,     /**< to [0, 1]: offset = min, scale = 1 / (max - min) */
    CUMLP_SCALE_STANDARDIZE = 1 /**< offset = mean, scale = 1 / standard deviation */
} cumlp_scaling;

/**
 * Computes scaling statistics from train: per feature when per_feature is 1, or one pair over all
 * features when 0 (right for images: pixels keep their relative scale). A constant feature gets
 * scale 1 (it maps to 0): one whose range (MINMAX) or standard deviation (STANDARDIZE) is 0, or
 * so small that its reciprocal is not finite in fp32 (a spread below about 3e-39, as between
 * subnormal values); its offset is still the minimum or the mean.
 */
CUMLP_API cumlp_status cumlp_scaler_fit(const cumlp_dataset *train, int method, int per_feature,
                                        cumlp_scaler **scaler);

/**
 * Creates a scaler from stored statistics: count = n_features offsets and scales (finite, scales
 * nonzero). ctx is for error messages and may be NULL.
 */
CUMLP_API cumlp_status cumlp_scaler_create(cumlp_context *ctx, int64_t count, const float *offsets,
                                           const float *scales, cumlp_scaler **scaler);

/** Destroys a scaler. Accepts NULL. */
CUMLP_API void cumlp_scaler_destroy(cumlp_scaler *scaler);

/** Number of features the scaler applies to, or -1 for NULL. */
CUMLP_API int64_t cumlp_scaler_num_features(const cumlp_scaler *scaler);

/** Copies the statistics (count = n_features each); either pointer may be NULL to skip it. */
CUMLP_API cumlp_status cumlp_scaler_get(const cumlp_scaler *scaler, float *offsets, float *scales,
                                        int64_t count);

/** Scales ds's features in place; its feature count must match the scaler's. */
CUMLP_API cumlp_status cumlp_scaler_apply(const cumlp_scaler *scaler, cumlp_dataset *ds);

/* ---------------------------------------------------------------------------------------------
 * Training loop. cumlp_fit trains a network on a dataset in mini-batches with an optimizer. On
 * backends with a device the next batch is gathered into pinned host memory and copied while the
 * current one trains. The learning-rate schedule sets the optimizer's rate at the start of every
 * epoch, from the rate the optimizer had when cumlp_fit was called (base), for every optimizer:
 *   CONSTANT:    base
 *   STEP:        base * gamma^floor(epoch / step_epochs)
 *   EXPONENTIAL: base * gamma^epoch
 *   COSINE:      min + (base - min) (1 + cos(pi epoch / epochs)) / 2
 *   MULTISTEP:   base * gamma^(the number of milestones <= epoch)       (PyTorch's MultiStepLR)
 *   LINEAR:      min + (base - min) (1 - epoch / epochs)
 *   POLY:        min + (base - min) (1 - epoch / epochs)^power      (PyTorch's PolynomialLR)
 * (epoch counted from 0, epochs = options->epochs, gamma = lr_gamma, min = lr_min, power =
 * lr_power). A linear warm-up combines with any of them: during the first warmup_epochs epochs the
 * rate is multiplied by (epoch + 1) / (warmup_epochs + 1), as PyTorch's
 * ChainedScheduler([LinearLR(start_factor=1/(warmup_epochs+1), total_iters=warmup_epochs), ...])
 * does. Accuracy is the fraction of samples whose largest output is at their
 * class; for a network with one output and CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY (a binary
 * classifier, whatever the dataset's class count) the fraction whose output is on the same side
 * of 0.5 as the target; otherwise (regression) it is reported as -1. The mean squared error per
 * output is reported too.
 * ------------------------------------------------------------------------------------------- */

#define CUMLP_SCHEDULE_LIST(X)                                                                     \
    X(CONSTANT, 0, "constant")                                                                     \
    X(STEP, 1, "step")                                                                             \
    X(EXPONENTIAL, 2, "exp")                                                                       \
    X(COSINE, 3, "cosine")                                                                         \
    X(MULTISTEP, 4, "multistep")                                                                   \
    X(LINEAR, 5, "linear")                                                                         \
    X(POLY, 6, "poly")

typedef enum cumlp_lr_schedule {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_LR_##id = value,
    CUMLP_SCHEDULE_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_lr_schedule;
enum { CUMLP_SCHEDULE_COUNT = 0 CUMLP_SCHEDULE_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of a learning-rate schedule (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_schedule_name(int schedule);
/** Parses the name of a learning-rate schedule into *schedule (see "Named values" above). */
CUMLP_API cumlp_status cumlp_schedule_from_name(const char *name, int *schedule);

typedef enum cumlp_stop_reason {
    CUMLP_STOP_EPOCHS = 0,      /**< all epochs ran */
    CUMLP_STOP_TARGET_LOSS = 1, /**< the epoch's training loss fell below target_loss */
    CUMLP_STOP_PATIENCE = 2,    /**< validation loss did not improve for `patience` epochs */
    CUMLP_STOP_CALLBACK = 3,    /**< the callback asked to stop */
    CUMLP_STOP_ERROR = 4        /**< a call failed (for example a NaN loss); see the status */
} cumlp_stop_reason;

/** What the callback sees: the state of training after a batch or an epoch. */
typedef struct cumlp_fit_progress {
    int epoch;                  /**< the current epoch, from 0 */
    int end_of_epoch;           /**< 1 after a whole epoch (validation done), 0 mid-epoch */
    int64_t batch;              /**< batches done in this epoch */
    int64_t batches_per_epoch;  /**< batches in an epoch */
    int64_t steps;              /**< optimizer steps taken by this cumlp_fit call */
    double learning_rate;       /**< the rate of this epoch */
    double train_loss;          /**< mean loss over this epoch's batches so far */
    double train_accuracy;      /**< over this epoch's samples so far; -1 for regression */
    double validation_loss;     /**< at the end of an epoch with validation data, else -1 */
    double validation_accuracy; /**< likewise; -1 for regression or without validation */
    double validation_mse;      /**< likewise; mean squared error per output value */
    double seconds;             /**< since cumlp_fit started */
    int64_t skipped_steps;      /**< steps skipped by this cumlp_fit call (NaN or Inf) */
    double gradient_norm;       /**< the last step's global gradient norm, before clipping
                                     (cumlp_optimizer_gradient_norm) */
    double mean_gradient_norm;  /**< its mean over this epoch's steps taken so far */
} cumlp_fit_progress;

/** A callback returns 0 to go on and nonzero to stop training (after the current batch). */
typedef int (*cumlp_fit_callback)(const cumlp_fit_progress *progress, void *user_data);

typedef struct cumlp_fit_options {
    int epochs;         /**< >= 1; default 10 */
    int64_t batch_size; /**< >= 1; default 32 (the last batch of an epoch may be smaller) */
    int shuffle;        /**< 1 (default): a new order of the samples every epoch */
    uint64_t seed;      /**< seed of the shuffles; default 1 */
    int schedule;       /**< a cumlp_lr_schedule; default CUMLP_LR_CONSTANT */
    double lr_gamma;    /**< factor of STEP, EXPONENTIAL, MULTISTEP, in (0, 1]; default 0.1 */
    int lr_step_epochs; /**< period of STEP, >= 1; default 10 */
    double lr_min;      /**< floor of COSINE, LINEAR and POLY, >= 0; default 0 */
    double target_loss; /**< stop when an epoch's training loss < this; default 0 (off) */
    int patience;       /**< stop after this many epochs without a validation loss
                             better than the best by more than min_delta; 0 (default) off */
    double min_delta;   /**< >= 0; default 0 */
    int restore_best;   /**< 1: end with the parameters of the best validation epoch;
                             default 0 */
    cumlp_fit_callback callback; /**< called after every epoch; NULL (default) for none */
    void *user_data;             /**< passed to the callback */
    int64_t callback_every;      /**< also call it every this many batches; 0 (default): epochs */
    int max_consecutive_skips;   /**< stop with CUMLP_ERROR_NON_FINITE after this many skipped
                                      steps in a row, >= 0; default 10; 0: never */
    int warmup_epochs;           /**< linear warm-up epochs, >= 0; default 0 (none) */
    const int *milestones;       /**< MULTISTEP's epochs, strictly increasing, >= 0; the caller's
                                      array, read by cumlp_fit; default NULL */
    int num_milestones;          /**< entries of milestones, >= 1 for MULTISTEP; default 0 */
    double lr_power;             /**< POLY's power, > 0; default 1 */
} cumlp_fit_options;

typedef struct cumlp_fit_result {
    int epochs_run;              /**< epochs started (the last may have been cut short) */
    int stop_reason;             /**< a cumlp_stop_reason */
    int64_t steps;               /**< optimizer steps taken */
    double train_loss;           /**< mean training loss of the last epoch */
    double train_accuracy;       /**< of the last epoch; -1 for regression */
    double validation_loss;      /**< of the last validated epoch; -1 without validation */
    double validation_accuracy;  /**< -1 for regression or without validation */
    double validation_mse;       /**< -1 without validation */
    int best_epoch;              /**< epoch of the lowest validation loss; -1 without validation */
    double best_validation_loss; /**< -1 without validation */
    double seconds;              /**< wall time of the call */
    int64_t skipped_steps;       /**< steps skipped (NaN or Inf in the loss or gradients) */
} cumlp_fit_result;

/** Fills *options with the defaults listed in cumlp_fit_options. */
CUMLP_API cumlp_status cumlp_fit_defaults(cumlp_fit_options *options);

/**
 * The learning rate the schedule in options gives epoch `epoch` (from 0) of `options->epochs`,
 * starting from base_rate, into *rate.
 */
CUMLP_API cumlp_status cumlp_schedule_learning_rate(const cumlp_fit_options *options,
                                                    double base_rate, int epoch, double *rate);

/**
 * Trains net with opt (created for net) on train, validating on validation (may be NULL) after
 * every epoch. The datasets' features must match the network's input width and their targets its
 * output width. options may be NULL for the defaults; result may be NULL. Training changes the
 * network and the optimizer (including its learning rate, left at the last epoch's value) even
 * when it fails. A step whose loss or gradients hold NaN or Inf is skipped (see
 * cumlp_optimizer_step; its batch counts in no score) and counted in skipped_steps; training
 * stops with CUMLP_ERROR_NON_FINITE at max_consecutive_skips skipped steps in a row, or at the
 * first one when the optimizer's non_finite_error is set. It then ends with the parameters as the
 * last step taken left them (finite gradients may still overflow them, as a huge learning rate
 * does: the step after that is the one skipped), or with restore_best those of the best
 * validation epoch so far, and
 * result->stop_reason is CUMLP_STOP_ERROR. The message of a failed step names its epoch and
 * batch ("epoch 3, batch 17 of 40: ..."). On the cuda backend (without a communicator) the steps
 * are queued as cumlp_train_step_async queues them, and their losses, gradient norms, right
 * answers and failures are read back before each callback, at the end of each epoch and every 256
 * steps: the figures are those of steps waited for one by one, and a failure stops the steps
 * queued after it (they change no parameter, but the gradients and activations the network then
 * holds may be a later batch's); a device error is found at the wait, and its message names the
 * batches queued since the one before. Bad arguments or options (checked before training
 * starts) change nothing, result included. With a communicator it is collective: every rank passes
 * the same datasets and options and trains on its shard of each batch (see "Data-parallel training
 * over MPI").
 */
CUMLP_API cumlp_status cumlp_fit(cumlp_network *net, cumlp_optimizer *opt,
                                 const cumlp_dataset *train, const cumlp_dataset *validation,
                                 const cumlp_fit_options *options, cumlp_fit_result *result);

typedef struct cumlp_eval_result {
    double loss;     /**< mean loss per sample */
    double accuracy; /**< fraction of samples classified right; -1 for regression */
    double mse;      /**< mean over samples and outputs of (output - target)^2 */
} cumlp_eval_result;

/**
 * Evaluates net on the whole dataset in batches of batch_size (0 selects 256): the mean loss,
 * the accuracy and the mean squared error, into *result. With a communicator it is collective:
 * each rank scores its shard of ds (the same on every rank) and every rank gets the whole result.
 */
CUMLP_API cumlp_status cumlp_evaluate(cumlp_network *net, const cumlp_dataset *ds,
                                      int64_t batch_size, cumlp_eval_result *result);

/**
 * Runs the dataset's features through net in batches of batch_size (0 selects 256) and writes
 * the network's outputs into out, n_outputs x n_samples column-major (count must equal that
 * size, n_outputs the network's output width). The dataset's targets are not used: any number of
 * them will do (a dataset read without targets has one per sample).
 */
CUMLP_API cumlp_status cumlp_predict(cumlp_network *net, const cumlp_dataset *ds,
                                     int64_t batch_size, float *out, int64_t count);

/* ---------------------------------------------------------------------------------------------
 * Data-parallel training over MPI, and NCCL on the cuda backend (when cumlp is built with MPI).
 *
 * Each process (rank) of an MPI communicator holds a replica of the network and trains on its
 * shard of every global batch. A network joins a communicator with cumlp_network_set_comm, in
 * include/cumlp_mpi.h (which includes mpi.h; this header does not). Fortran passes the integer
 * handle of its communicator to cumlp_network_set_comm_f. cumlp never calls MPI_Init or
 * MPI_Finalize: the program initializes MPI (cumlp calls MPI from the threads that call cumlp, so
 * MPI_THREAD_FUNNELED suffices when that is the thread that initialized it) and destroys every
 * network that has a communicator before MPI_Finalize.
 *
 * Collective calls: on a network with a communicator, every rank of it must make these calls, in
 * the same order, on replicas of the same architecture, backend and transport:
 *   cumlp_network_set_comm (and _f), cumlp_network_broadcast, cumlp_loss_backward,
 *   cumlp_train_step, cumlp_train_step_async (which runs the step at once there), cumlp_fit,
 *   cumlp_evaluate, and cumlp_network_destroy (MPI_Comm_free).
 * Every other call (cumlp_forward, cumlp_evaluate_loss, cumlp_predict, cumlp_optimizer_step, the
 * parameter and gradient get/set calls, checkpoints, cumlp_gradient_check) is local to the rank.
 *
 * What the collective calls do:
 *  - cumlp_loss_backward: X and T hold this rank's shard of the global batch, any number of
 *    columns >= 1 (shards may differ in size). The ranks first agree on the global count B (the
 *    sum of the shards' columns); each rank's backward pass scales the sum over its samples by
 *    1 / B; one all-reduce over the whole gradient arena sums the ranks' arenas, so that every rank
 *    holds the gradient averaged over the global batch, as one process would on the whole batch.
 *    *loss is the global batch mean.
 *  - cumlp_train_step: that, then cumlp_optimizer_step on gradients that are the same on every
 *    rank, so that every rank makes the same NaN check, clipping and step (or skip), and the
 *    replicas stay bit-identical.
 *  - cumlp_fit: every rank passes the same whole training (and validation) set. Every epoch's
 *    shuffle is the same on every rank; each global batch of options->batch_size samples (c
 *    columns) is split into shards, rank r of P taking its columns [r c / P, (r + 1) c / P) (a
 *    shard may be empty when c < P). The ranks first check that they hold the same datasets,
 *    parameters and options (a hash of each, one pass over the data; else
 *    CUMLP_ERROR_INVALID_VALUE naming what differs). Losses, accuracies and the validation scores
 *    in the progress and the result are global; the callback runs on every rank (print on one),
 *    and training stops after a callback that asks for it on any rank.
 *  - cumlp_evaluate: each rank scores its shard of the dataset (the same on every rank), and the
 *    result, on every rank, is the whole dataset's.
 * A training step communicates one all-reduce of the gradient arena and three agreements (small
 * MPI_Allreduce calls; one more with NCCL), one fewer in cumlp_fit, which knows the global
 * batch's size.
 * The sums over the ranks are MPI's (MPI_Allreduce) or NCCL's (ncclAllReduce); their order is the
 * library's, the same on every rank (both leave the same result on every rank). So P ranks train
 * the replicas of one process training on the same global batches, up to rounding (the order of
 * the sums), and the replicas are bit-identical to each other.
 *
 * Errors: a collective call returns the same status on every rank. Before each phase that
 * communicates, the ranks agree (one small MPI_Allreduce) on whether each of them got there
 * without error; if one failed (a bad argument, an allocation, a device error), every rank returns
 * the status of the lowest rank that failed, with cumlp_last_error saying "rank r of P: " and
 * that rank's message, and no rank waits for another that has given up. A failed MPI or NCCL call
 * is CUMLP_ERROR_COMMUNICATION with the library's message (cumlp's duplicate of the communicator
 * has MPI_ERRORS_RETURN, so an MPI error in cumlp does not abort the job). When a rank fails after
 * NCCL work was queued, every rank aborts the NCCL communicator (ncclCommAbort), and the network's
 * later collective calls return CUMLP_ERROR_COMMUNICATION until it joins a communicator again.
 * What cannot be agreed on: a NULL network (no communicator to reach the others through), a rank
 * that crashes or never makes the call, and an MPI or NCCL failure that leaves the communicator
 * unusable; MPI handles those (its error handler, the launcher's teardown). A local step that may
 * fail on one rank (reading a data file) is agreed on with cumlp_mpi_agree before the collective
 * calls that follow it.
 * ------------------------------------------------------------------------------------------- */

#define CUMLP_TRANSPORT_LIST(X)                                                                    \
    /** NCCL on the cuda backend when cumlp is built with it, else MPI */                          \
    X(AUTO, 0, "auto")                                                                             \
    /** MPI_Allreduce on the arena; on the cuda backend on device pointers when the MPI library    \
     * says it is CUDA-aware (MPIX_Query_cuda_support), else through host memory */                \
    X(MPI, 1, "mpi")                                                                               \
    /** MPI_Allreduce, through host memory on the cuda backend */                                  \
    X(MPI_HOST, 2, "mpi-host")                                                                     \
    /** MPI_Allreduce on device pointers: the caller vouches that MPI is CUDA-aware */             \
    X(MPI_DEVICE, 3, "mpi-device")                                                                 \
    /** ncclAllReduce on the context's stream (cuda backend), bootstrapped over MPI */             \
    X(NCCL, 4, "nccl")

typedef enum cumlp_transport {
#define CUMLP_ENUM_ENTRY_(id, value, name) CUMLP_TRANSPORT_##id = value,
    CUMLP_TRANSPORT_LIST(CUMLP_ENUM_ENTRY_)
#undef CUMLP_ENUM_ENTRY_
} cumlp_transport;
enum { CUMLP_TRANSPORT_COUNT = 0 CUMLP_TRANSPORT_LIST(CUMLP_COUNT_ENTRY_) };

/** The name of a transport (see "Named values" above), or "unknown". */
CUMLP_API const char *cumlp_transport_name(int transport);
/** Parses the name of a transport into *transport (see "Named values" above). */
CUMLP_API cumlp_status cumlp_transport_from_name(const char *name, int *transport);

/**
 * 1 if this build can use the transport (AUTO and the MPI ones: cumlp was built with MPI; NCCL:
 * also with NCCL and the cuda backend), else 0. Without MPI, cumlp_network_set_comm_f and
 * cumlp_mpi_agree_f return CUMLP_ERROR_NOT_SUPPORTED.
 */
CUMLP_API int cumlp_transport_is_built(int transport);

/** The number of ranks the network's communicator has: 1 without one, -1 for NULL. */
CUMLP_API int cumlp_network_num_ranks(const cumlp_network *net);
/** This process's rank in the network's communicator: 0 without one, -1 for NULL. */
CUMLP_API int cumlp_network_rank(const cumlp_network *net);
/** The transport the network's gradients travel by (never AUTO), or -1 without a communicator. */
CUMLP_API int cumlp_network_transport(const cumlp_network *net);

/**
 * Collective: copies rank 0's parameters and loss scaler (settings and state) to every rank, and
 * with opt (an optimizer of net, or NULL) rank 0's optimizer state, step count and NAdam product.
 * For replicas that were changed on
 * some ranks only, such as a checkpoint loaded on rank 0. cumlp_network_set_comm broadcasts the
 * parameters itself. The optimizers' types and state arenas must agree on every rank (else
 * CUMLP_ERROR_INVALID_VALUE). Without a communicator it does nothing.
 */
CUMLP_API cumlp_status cumlp_network_broadcast(cumlp_network *net, cumlp_optimizer *opt);

#ifdef __cplusplus
}
#endif

#endif /* CUMLP_H */
