/*
 * cudasim_control.h - what tests ask of the CUDA simulator (a C header: the tests are C).
 * Declared only in a -DCUMLP_CUDA_SIM=ON build, where the tests define CUMLP_TEST_CUDA_SIM.
 */
#ifndef CUMLP_CUDASIM_CONTROL_H
#define CUMLP_CUDASIM_CONTROL_H

#ifdef __cplusplus
extern "C" {
#endif

/* How many faults the simulator has caught and reported since the start or the last reset. */
int cudasim_error_count(void);

/* Makes the nth device allocation from now (cudaMalloc, 1 = the next) fail with
 * cudaErrorMemoryAllocation; 0 turns it off. */
void cudasim_fail_allocation(int nth);

/* Makes the nth pinned host allocation from now (cudaHostAlloc, 1 = the next) fail with
 * cudaErrorMemoryAllocation, as when the system will not page-lock more memory; 0 turns it off. */
void cudasim_fail_host_allocation(int nth);

/* Makes the nth runtime, cuBLAS or cuRAND call from now fail with a sticky device error
 * (cudaErrorIllegalAddress: every later call returns it until cudasim_reset); 0 turns it off. */
void cudasim_inject_sticky_error(int nth);

/* The number of blocks of the last launch of the kernel named `kernel` (its name in the source,
 * e.g. "softmax_kernel") that ran, or 0 if none has run. */
unsigned long cudasim_last_launch_blocks(const char *kernel);

/* Makes the nth NCCL collective call from now (ncclAllReduce, ncclBroadcast; 1 = the next) fail
 * at the call with ncclSystemError, on this rank alone; 0 turns it off. (A build with MPI.) */
void cudasim_nccl_fail_collective(int nth);

/* With on != 0, cublasLtMatmulAlgoGetHeuristic finds no algorithm for any case (as cuBLASLt for a
 * case it cannot run), until called with 0. */
void cudasim_lt_no_algorithms(int on);

/* Makes cublasLtMatmulAlgoGetHeuristic find no algorithm for the one cublasLtEpilogue_t value
 * `epilogue` (the others are found as usual), until called with 0. */
void cudasim_lt_decline_epilogue(unsigned epilogue);

/* How many cublasLtMatmul calls have been queued since the start. */
unsigned long cudasim_lt_matmul_count(void);

/* Makes the nth operation queued into a stream capture from now (1 = the next) fail with
 * cudaErrorStreamCaptureUnsupported and invalidate the capture, as a call the capture prohibits
 * does: the work queued into it after that fails with cudaErrorStreamCaptureInvalidated, and its
 * cudaStreamEndCapture too. 0 turns it off. */
void cudasim_break_capture(int nth);

/* Clears the sticky error, the pending faults and the error count (not the allocations). */
void cudasim_reset(void);

#ifdef __cplusplus
}
#endif

#endif /* CUMLP_CUDASIM_CONTROL_H */
