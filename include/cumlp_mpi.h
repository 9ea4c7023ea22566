/*
 * cumlp_mpi.h - the calls of cumlp that take an MPI communicator (installed when cumlp is built
 * with MPI). It includes mpi.h; include/cumlp.h does not, and says how data-parallel training
 * works: "Data-parallel training over MPI" there lists the collective calls, how gradients are
 * averaged over the global batch, and what happens when a rank fails.
 *
 * The Fortran-friendly variants (the _f suffix) take the Fortran handle of a communicator: the
 * INTEGER of `use mpi`, comm%MPI_VAL of `use mpi_f08`, or MPI_Comm_c2f(comm) in C. The Fortran
 * module binds them with integer(c_int), which is MPI_Fint in every MPI library cumlp knows of
 * (checked when cumlp is built). A cumlp built without MPI exports them too, returning
 * CUMLP_ERROR_NOT_SUPPORTED.
 */
#ifndef CUMLP_MPI_H
#define CUMLP_MPI_H

#include "cumlp.h"

#include <mpi.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Collective over comm: the network joins comm for data-parallel training, its gradients to travel
 * by `transport` (a cumlp_transport). Every rank of comm calls it with its replica of the network:
 * the same architecture, backend and transport on every rank (else CUMLP_ERROR_INVALID_VALUE on
 * every rank). cumlp keeps a duplicate of comm (MPI_Comm_dup, with MPI_ERRORS_RETURN), so the
 * caller may free comm afterwards and cumlp's messages never mix with the caller's. Then rank 0's
 * parameters and loss scaler are copied to every rank (cumlp_network_broadcast), so that the
 * replicas start bit-identical whatever seeds created them.
 *
 * Transports: AUTO picks NCCL on the cuda backend when cumlp is built with it, else MPI. The MPI
 * transports are the same on the reference and cpu backends (host memory, MPI_Allreduce in place;
 * MPI_DOUBLE on the reference backend, which stores doubles). On the cuda backend, MPI_HOST copies
 * the gradient arena to host memory, all-reduces it and copies it back; MPI_DEVICE waits for the
 * context's stream and hands MPI the device pointer (use it only with a CUDA-aware MPI library);
 * MPI is MPI_DEVICE when the library reports CUDA support (Open MPI's MPIX_Query_cuda_support, or
 * MPICH's MPIX_GPU_query_support), else MPI_HOST. NCCL (the cuda backend only, else
 * CUMLP_ERROR_NOT_SUPPORTED): rank 0 makes an ncclUniqueId, MPI_Bcast gives it to every rank, and
 * each rank creates its NCCL communicator on the context's device (ncclCommInitRank); gradients
 * are summed by ncclAllReduce on the context's stream, so that it sits in the stream's order with
 * the rest of the step, with no host synchronization.
 *
 * comm = MPI_COMM_NULL leaves the network's communicator (collective over that one); joining
 * another communicator leaves the old one first. MPI must be initialized (MPI_Initialized, else
 * CUMLP_ERROR_INVALID_VALUE: cumlp never initializes it). Errors: CUMLP_ERROR_INVALID_VALUE
 * (ranks that disagree, a bad transport), CUMLP_ERROR_NOT_SUPPORTED (NCCL not built or not the
 * cuda backend), CUMLP_ERROR_COMMUNICATION (an MPI or NCCL call failed), and the errors of copying
 * the parameters; on failure the network has no communicator on any rank.
 */
CUMLP_API cumlp_status cumlp_network_set_comm(cumlp_network *net, MPI_Comm comm, int transport);

/** cumlp_network_set_comm with the Fortran handle of the communicator (MPI_Comm_f2c). */
CUMLP_API cumlp_status cumlp_network_set_comm_f(cumlp_network *net, MPI_Fint comm, int transport);

/**
 * Collective over comm: agrees on the outcome of work that each rank did locally, such as reading
 * a data file, before collective calls that must not start when a rank has failed. Every rank
 * passes its own status (and, when it is not CUMLP_SUCCESS, its message in cumlp_last_error(ctx);
 * ctx may be NULL for the per-thread slot). Returns on every rank the status of the lowest rank
 * whose status was not CUMLP_SUCCESS, with that rank's message in cumlp_last_error(ctx) ("rank r
 * of P: ..." on the other ranks), or CUMLP_SUCCESS when every rank passed CUMLP_SUCCESS.
 * CUMLP_ERROR_COMMUNICATION if MPI fails.
 */
CUMLP_API cumlp_status cumlp_mpi_agree(MPI_Comm comm, cumlp_status status, cumlp_context *ctx);

/** cumlp_mpi_agree with the Fortran handle of the communicator; status is a cumlp_status. */
CUMLP_API cumlp_status cumlp_mpi_agree_f(MPI_Fint comm, int status, cumlp_context *ctx);

#ifdef __cplusplus
}
#endif

#endif /* CUMLP_MPI_H */
