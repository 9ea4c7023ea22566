# cuda_sim.cmake - the simulated cuda backend (-DCUMLP_CUDA_SIM=ON): the cuda backend's host glue
# (src/backends/cuda.c) compiled unchanged against the real CUDA headers, its kernels compiled as
# C++ by the host compiler, and both run by the CPU simulator of CUDA in tests/cudasim/ instead of
# a GPU, libcudart, libcublas and libcurand. A test build: it checks the cuda backend's logic on
# every commit (not speed, device math or real concurrency), and is never installed.
#
# Included by the top CMakeLists.txt after the cpu backend (the simulated cuBLAS runs its GEMMs on
# the cpu backend's CBLAS) and instead of cuda_backend.cmake.

find_package(CUDAToolkit QUIET)
if(NOT CUDAToolkit_FOUND)
  message(FATAL_ERROR "CUMLP_CUDA_SIM=ON needs the CUDA toolkit's headers (set CUDAToolkit_ROOT)")
endif()
if(NOT CUMLP_HAVE_CPU_BACKEND)
  message(FATAL_ERROR "CUMLP_CUDA_SIM=ON needs the cpu backend's CBLAS (CUMLP_BLAS)")
endif()
enable_language(CXX)

set(CUMLP_SIM_DIR ${PROJECT_SOURCE_DIR}/tests/cudasim)
set(CUMLP_SIM_KERNELS
  ${PROJECT_SOURCE_DIR}/kernels/elementwise.cu
  ${PROJECT_SOURCE_DIR}/kernels/loss_reduce.cu
  ${PROJECT_SOURCE_DIR}/kernels/optimizer.cu)
set(CUMLP_SIM_SOURCES
  ${CUMLP_SIM_DIR}/device.cc ${CUMLP_SIM_DIR}/runtime.cc ${CUMLP_SIM_DIR}/cublas.cc
  ${CUMLP_SIM_DIR}/cublaslt.cc ${CUMLP_SIM_DIR}/curand.cc)

target_sources(cumlp_objects PRIVATE
  ${PROJECT_SOURCE_DIR}/src/backends/cuda.c
  ${PROJECT_SOURCE_DIR}/src/backends/cuda_status.c
  ${CUMLP_SIM_KERNELS} ${CUMLP_SIM_SOURCES})
target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_CUDA_BACKEND CUMLP_CUDA_SIM)
target_include_directories(cumlp_objects SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
target_include_directories(cumlp_objects PRIVATE ${CUMLP_SIM_DIR})

# The kernels are C++ for the host compiler, with the stand-in cuda_runtime.h first. They are
# compiled with UBSan's alignment check in every simulator build: a misaligned float4 access
# would work on x86 and fail on the GPU.
set(CUMLP_SIM_ALIGNMENT -fsanitize=alignment -fno-sanitize-recover=alignment)
set_source_files_properties(${CUMLP_SIM_KERNELS} PROPERTIES LANGUAGE CXX
  COMPILE_OPTIONS "-xc++;${CUMLP_SIM_ALIGNMENT}"
  INCLUDE_DIRECTORIES "${CUMLP_SIM_DIR}/include")
set_property(TARGET cumlp_objects PROPERTY CXX_STANDARD 20)
set_property(TARGET cumlp_objects PROPERTY CXX_STANDARD_REQUIRED ON)
target_compile_options(cumlp_objects PRIVATE
  "$<$<COMPILE_LANGUAGE:CXX>:-Wall;-Wextra;-Wpedantic;-Wshadow>")
target_include_directories(cumlp_objects PRIVATE ${CUMLP_CBLAS_INCLUDE_DIR})

# A test build: `cmake --install` refuses it, and it leaves out the parts that do not touch the
# cuda backend.
install(CODE "message(FATAL_ERROR \"a -DCUMLP_CUDA_SIM=ON build is a test build: not installed\")")
set(CUMLP_FORTRAN OFF)
set(CUMLP_FUZZ OFF)

# NVTX is header-only: its ranges run here as they would on a GPU machine without a profiler.
if(CUMLP_NVTX)
  find_path(CUMLP_NVTX3_INCLUDE_DIR nvtx3/nvToolsExt.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(CUMLP_NVTX3_INCLUDE_DIR)
    target_compile_definitions(cumlp_objects PRIVATE CUMLP_USE_NVTX)
    list(APPEND CUMLP_LINK_LIBS ${CMAKE_DL_LIBS})
  endif()
endif()

find_package(Threads REQUIRED)
list(APPEND CUMLP_LINK_LIBS stdc++ Threads::Threads ${CUMLP_SIM_ALIGNMENT})
set(CUMLP_HAVE_CUDA_BACKEND ON)
set(CUMLP_HAVE_CUDA_SIM ON)
message(STATUS "cumlp: simulated cuda backend (tests/cudasim), kernels compiled by ${CMAKE_CXX_COMPILER_ID}")
