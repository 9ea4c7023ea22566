# mpi.cmake - data-parallel training over MPI (src/dist/), and NCCL on the cuda backend.
#
# Included by the top CMakeLists.txt after the backends. CUMLP_MPI selects it:
#   AUTO  build it when FindMPI finds MPI for C (Debian: libopenmpi-dev)
#   ON    build it or fail
#   OFF   leave it out: src/dist/comm.c compiles to stubs whose calls return
#         CUMLP_ERROR_NOT_SUPPORTED, include/cumlp_mpi.h is not installed, and the mpi tests are
#         not registered; everything else builds and tests as before.
# With MPI and the cuda backend, NCCL joins (CUMLP_NCCL=AUTO|ON|OFF): nccl.h and libnccl from the
# CUDA toolkit (or the system). The simulated cuda backend needs only nccl.h: tests/cudasim/nccl.cc
# carries its calls over MPI between the rank processes.
#
# The installed CMake package finds MPI for its consumers (find_dependency(MPI), top
# CMakeLists.txt); pkg-config users get the MPI and NCCL libraries in Libs.private.

set(CUMLP_MPI "AUTO" CACHE STRING "Build data-parallel training over MPI: AUTO (if MPI is found), ON, OFF")
set_property(CACHE CUMLP_MPI PROPERTY STRINGS AUTO ON OFF)
set(CUMLP_NCCL "AUTO" CACHE STRING "With MPI and the cuda backend, the NCCL transport: AUTO, ON, OFF")
set_property(CACHE CUMLP_NCCL PROPERTY STRINGS AUTO ON OFF)

set(CUMLP_HAVE_MPI OFF)
set(CUMLP_HAVE_NCCL OFF)
foreach(option CUMLP_MPI CUMLP_NCCL)
  if(NOT ${option} MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${option} must be AUTO, ON or OFF, not '${${option}}'")
  endif()
endforeach()
if(CUMLP_MPI STREQUAL "OFF")
  return()
endif()

find_package(MPI COMPONENTS C QUIET)
if(NOT MPI_C_FOUND)
  if(CUMLP_MPI STREQUAL "ON")
    message(FATAL_ERROR "CUMLP_MPI=ON but no MPI for C was found (Debian: libopenmpi-dev)")
  endif()
  message(STATUS "cumlp: data-parallel training left out: no MPI found")
  return()
endif()
set(CUMLP_HAVE_MPI ON)

target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_MPI)
target_link_libraries(cumlp_objects PRIVATE MPI::MPI_C)
# The C++ of the simulator includes mpi.h too: not the MPI C++ bindings, which need their own
# library.
target_compile_definitions(cumlp_objects PRIVATE OMPI_SKIP_MPICXX MPICH_SKIP_MPICXX)
list(APPEND CUMLP_LINK_LIBS MPI::MPI_C)
foreach(lib ${MPI_C_LIBRARIES})
  get_filename_component(dir "${lib}" DIRECTORY)
  get_filename_component(name "${lib}" NAME_WE)
  string(REGEX REPLACE "^lib" "" name "${name}")
  string(APPEND CUMLP_PC_LIBS_PRIVATE " -L${dir} -l${name}")
endforeach()
if(CUMLP_HAVE_CUDA_SIM) # the simulator's CUDA-aware MPI: MPI calls on device buffers
  target_sources(cumlp_objects PRIVATE ${PROJECT_SOURCE_DIR}/tests/cudasim/mpi.cc)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/include/cumlp_mpi.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# MPI's launcher, for the tests (tests/mpi/tests.cmake): Open MPI refuses to run as root and to
# start more ranks than cores unless told (CI runs as root on 2 cores), and binds each rank to a
# core, which two tests running at once would share while other cores idle.
execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE mpiexec_version
  ERROR_QUIET RESULT_VARIABLE mpiexec_failed)
set(CUMLP_MPIEXEC_FLAGS ${MPIEXEC_PREFLAGS})
if(NOT mpiexec_failed AND mpiexec_version MATCHES "Open MPI|OpenRTE")
  list(APPEND CUMLP_MPIEXEC_FLAGS --oversubscribe --bind-to none)
  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(uid STREQUAL "0")
    list(APPEND CUMLP_MPIEXEC_FLAGS --allow-run-as-root)
  endif()
endif()

# ---- NCCL (cuda backend only) --------------------------------------------------------------------
if(CUMLP_HAVE_CUDA_BACKEND AND NOT CUMLP_NCCL STREQUAL "OFF")
  find_path(CUMLP_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  set(nccl_found OFF)
  if(CUMLP_NCCL_INCLUDE_DIR AND CUMLP_HAVE_CUDA_SIM)
    target_sources(cumlp_objects PRIVATE ${PROJECT_SOURCE_DIR}/tests/cudasim/nccl.cc)
    set(nccl_found ON)
  elseif(CUMLP_NCCL_INCLUDE_DIR)
    find_library(CUMLP_NCCL_LIBRARY nccl
      HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib ${CUDAToolkit_LIBRARY_ROOT}/lib64)
    if(CUMLP_NCCL_LIBRARY)
      list(APPEND CUMLP_LINK_LIBS ${CUMLP_NCCL_LIBRARY})
      get_filename_component(dir "${CUMLP_NCCL_LIBRARY}" DIRECTORY)
      string(APPEND CUMLP_PC_LIBS_PRIVATE " -L${dir} -lnccl")
      set(nccl_found ON)
    endif()
  endif()
  if(nccl_found)
    target_sources(cumlp_objects PRIVATE ${PROJECT_SOURCE_DIR}/src/dist/nccl.c)
    target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_NCCL)
    target_include_directories(cumlp_objects SYSTEM PRIVATE ${CUMLP_NCCL_INCLUDE_DIR})
    set(CUMLP_HAVE_NCCL ON)
  elseif(CUMLP_NCCL STREQUAL "ON")
    message(FATAL_ERROR "CUMLP_NCCL=ON but nccl.h or libnccl was not found")
  else()
    message(STATUS "cumlp: NCCL transport left out: nccl.h or libnccl not found")
  endif()
elseif(CUMLP_NCCL STREQUAL "ON")
  message(FATAL_ERROR "CUMLP_NCCL=ON needs the cuda backend (CUMLP_CUDA)")
endif()

message(STATUS "cumlp: data-parallel training with MPI ${MPI_C_VERSION} (${MPIEXEC_EXECUTABLE}), NCCL ${CUMLP_HAVE_NCCL}")
