/*
 * cuda_runtime.h - the CUDA simulator's stand-in for the CUDA header that the kernels include.
 *
 * In a -DCUMLP_CUDA_SIM=ON build the .cu files are compiled as C++ by the host compiler with this
 * folder first on the include path. The host API and the vector types come from the real
 * toolkit's cuda_runtime_api.h (served by runtime.cc at run time); the device side of CUDA C++ is
 * here: the execution-space keywords, the thread and block indices, the collectives and the
 * intrinsics cumlp's kernels use, and CUMLP_LAUNCH, which the kernels use in place of <<<>>>.
 *
 * __shared__ variables are thread_local statics: the blocks of a grid run one after the other on
 * the thread that synchronizes, so the fibers of one block see one copy. That copy starts at zero
 * once (a static's zero initialization, on the host thread's first launch) and is never reset
 * between blocks or launches: a block reads what the block before it left. A GPU's shared memory
 * is undefined at a block's start; a read of it before the block's first write is not seen here.
 */
#ifndef CUMLP_CUDASIM_CUDA_RUNTIME_H
#define CUMLP_CUDASIM_CUDA_RUNTIME_H

#if defined(__CUDACC__)
#error "tests/cudasim/include is for the host compiler: nvcc uses the real cuda_runtime.h"
#endif

/* Defined before the real headers, which then keep them (crt/host_defines.h defines each only
 * where it is not defined yet). */
#define __host__
#define __device__
#define __global__
#define __shared__ static thread_local

#include <cuda_runtime_api.h>
#include <vector_functions.h>

#include "cudasim_device.h"

#endif /* CUMLP_CUDASIM_CUDA_RUNTIME_H */
