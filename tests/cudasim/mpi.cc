/*
 * mpi.cc - a CUDA-aware MPI, on the CPU (see cudasim.h), in a simulator build with MPI.
 *
 * A CUDA-aware MPI (cumlp's mpi-device transport) reads and writes device memory from its host
 * calls. The simulator's device memory is closed to host code outside queued work, so the two MPI
 * calls cumlp makes on device buffers, MPI_Allreduce and MPI_Bcast, are interposed here through
 * MPI's profiling interface (each calls its PMPI_ twin): when a buffer lies in device memory, the
 * call runs with device memory open, as such an MPI's own device access. Like a CUDA-aware MPI it
 * waits for no stream: work still queued that writes the buffer has not run (the default schedule
 * runs it only when a synchronization needs it), so a missing synchronization before the call sends
 * stale data, which the tests see as wrong results. A buffer that starts in device memory and runs
 * past its allocation's end is reported. Calls on host memory pass straight through.
 */
#include "cudasim.h"
#include "host.h"

#include <mpi.h>

#include <cstddef>

namespace {

/* Whether buffer (count elements of type) is device memory; reports one that starts in a device
 * allocation and runs past its end. MPI_IN_PLACE and host memory are not. */
bool on_device(const char *what, const void *buffer, int count, MPI_Datatype type) {
    if (buffer == MPI_IN_PLACE || cudasim::device_allocation(buffer) == 0) return false;
    int size = 0;
    if (PMPI_Type_size(type, &size) != MPI_SUCCESS || size < 0 || count < 0) return true;
    std::size_t bytes = (std::size_t)count * (std::size_t)size;
    if (!cudasim::is_device_range(buffer, bytes))
        cudasim::report("%s: %zu bytes at %p run past the end of their device allocation", what,
                        bytes, buffer);
    return true;
}

} // namespace

extern "C" int MPI_Allreduce(const void *send, void *recv, int count, MPI_Datatype type, MPI_Op op,
                             MPI_Comm comm) {
    bool device = on_device("MPI_Allreduce", send, count, type);
    device = on_device("MPI_Allreduce", recv, count, type) || device;
    if (!device) return PMPI_Allreduce(send, recv, count, type, op, comm);
    cudasim::device_memory_opened open;
    return PMPI_Allreduce(send, recv, count, type, op, comm);
}

extern "C" int MPI_Bcast(void *buffer, int count, MPI_Datatype type, int root, MPI_Comm comm) {
    if (!on_device("MPI_Bcast", buffer, count, type))
        return PMPI_Bcast(buffer, count, type, root, comm);
    cudasim::device_memory_opened open;
    return PMPI_Bcast(buffer, count, type, root, comm);
}
