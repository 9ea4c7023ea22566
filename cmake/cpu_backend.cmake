# cpu_backend.cmake - the cpu backend (src/backends/cpu.c): CBLAS GEMMs + OpenMP loops.
#
# Included by the top CMakeLists.txt. CUMLP_BLAS selects it: OFF never builds it, AUTO builds it
# when a CBLAS and OpenMP are both found, ON fails the configuration when either is missing.
# OpenBLAS is preferred (its openblas_set_num_threads lets a context choose the GEMM thread
# count); any other BLAS that exports cblas_sgemm and has a cblas.h is accepted.

include(CheckSymbolExists)

if(CUMLP_BLAS STREQUAL "OFF")
  return()
endif()
if(NOT CUMLP_BLAS MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "CUMLP_BLAS must be AUTO, ON or OFF, not '${CUMLP_BLAS}'")
endif()

# Reports why the backend is left out: an error with ON, a status line with AUTO.
function(cumlp_cpu_backend_missing what)
  if(CUMLP_BLAS STREQUAL "ON")
    message(FATAL_ERROR "CUMLP_BLAS=ON but ${what} was not found")
  endif()
  message(STATUS "cumlp: cpu backend left out: ${what} not found")
endfunction()

find_package(OpenMP COMPONENTS C QUIET)
if(NOT OpenMP_C_FOUND)
  cumlp_cpu_backend_missing("OpenMP for C")
  return()
endif()

# BLAS, best first:
#  1. OpenBLAS built for OpenMP (Debian: libopenblas-openmp-dev; Fedora: libopenblaso). Its GEMMs
#     run on the same OpenMP thread pool as our loops. The pthreads build keeps a second pool, and
#     on a machine with other load the two pools' spinning threads steal each other's cores
#     (measured: a 2-thread training step of the S network several times slower).
#  2. OpenBLAS (any build), 3. whatever FindBLAS finds.
option(CUMLP_PREFER_OPENBLAS_OPENMP "Prefer the OpenMP build of OpenBLAS when installed" ON)
set(CUMLP_BLAS_LIBS "")
if(CUMLP_PREFER_OPENBLAS_OPENMP)
  find_library(CUMLP_OPENBLAS_OPENMP_LIBRARY NAMES openblaso)
  if(NOT CUMLP_OPENBLAS_OPENMP_LIBRARY)
    find_library(CUMLP_OPENBLAS_OPENMP_LIBRARY NAMES openblas
      PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  endif()
  find_path(CUMLP_OPENBLAS_OPENMP_INCLUDE_DIR cblas.h
    PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
  if(NOT CUMLP_OPENBLAS_OPENMP_INCLUDE_DIR)
    find_path(CUMLP_OPENBLAS_OPENMP_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas)
  endif()
  if(CUMLP_OPENBLAS_OPENMP_LIBRARY AND CUMLP_OPENBLAS_OPENMP_INCLUDE_DIR)
    set(CUMLP_BLAS_LIBS ${CUMLP_OPENBLAS_OPENMP_LIBRARY})
    set(CUMLP_CBLAS_INCLUDE_DIR ${CUMLP_OPENBLAS_OPENMP_INCLUDE_DIR})
  endif()
endif()
if(NOT CUMLP_BLAS_LIBS)
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS QUIET)
  if(NOT BLAS_FOUND)
    unset(BLA_VENDOR)
    find_package(BLAS QUIET)
  endif()
  if(NOT BLAS_FOUND)
    cumlp_cpu_backend_missing("a BLAS library")
    return()
  endif()
  set(CUMLP_BLAS_LIBS ${BLAS_LIBRARIES})
endif()

find_path(CUMLP_CBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas openblas-pthread openblas-openmp)
if(NOT CUMLP_CBLAS_INCLUDE_DIR)
  cumlp_cpu_backend_missing("cblas.h")
  return()
endif()

set(CMAKE_REQUIRED_INCLUDES ${CUMLP_CBLAS_INCLUDE_DIR})
set(CMAKE_REQUIRED_LIBRARIES ${CUMLP_BLAS_LIBS})
check_symbol_exists(cblas_sgemm "cblas.h" CUMLP_HAVE_CBLAS_SGEMM)
check_symbol_exists(openblas_set_num_threads "cblas.h" CUMLP_HAVE_OPENBLAS_THREADS)
unset(CMAKE_REQUIRED_INCLUDES)
unset(CMAKE_REQUIRED_LIBRARIES)
if(NOT CUMLP_HAVE_CBLAS_SGEMM)
  cumlp_cpu_backend_missing("cblas_sgemm in ${CUMLP_BLAS_LIBS}")
  return()
endif()

target_sources(cumlp_objects PRIVATE ${PROJECT_SOURCE_DIR}/src/backends/cpu.c)
target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_CPU_BACKEND)
if(CUMLP_HAVE_OPENBLAS_THREADS)
  target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_OPENBLAS_THREADS)
endif()
target_include_directories(cumlp_objects PRIVATE ${CUMLP_CBLAS_INCLUDE_DIR})
separate_arguments(CUMLP_OPENMP_FLAGS NATIVE_COMMAND "${OpenMP_C_FLAGS}")
# Only src/backends/cpu.c has OpenMP pragmas; the flag is harmless for the other sources.
target_compile_options(cumlp_objects PRIVATE "$<$<COMPILE_LANGUAGE:C>:${CUMLP_OPENMP_FLAGS}>")
# sqrtf that may set errno is a call the optimizers' loops (Adam, RMSprop, ...) cannot vectorize;
# cumlp never reads errno after the math library, and the results are the same.
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  set_property(SOURCE ${PROJECT_SOURCE_DIR}/src/backends/cpu.c APPEND PROPERTY COMPILE_OPTIONS
    -fno-math-errno)
endif()
set(CUMLP_HAVE_CPU_BACKEND ON)

# Plain library paths (not imported targets) so that the exported cumlp_static needs nothing from
# the consumer's CMake.
list(APPEND CUMLP_LINK_LIBS ${CUMLP_BLAS_LIBS} ${OpenMP_C_LIBRARIES})

# pkg-config: -l flags for the libraries we link privately.
foreach(lib ${CUMLP_BLAS_LIBS} ${OpenMP_C_LIBRARIES})
  get_filename_component(name "${lib}" NAME_WE)
  string(REGEX REPLACE "^lib" "" name "${name}")
  if(name)
    string(APPEND CUMLP_PC_LIBS_PRIVATE " -l${name}")
  endif()
endforeach()

message(STATUS "cumlp: cpu backend with ${CUMLP_BLAS_LIBS}, OpenMP ${OpenMP_C_VERSION}")
