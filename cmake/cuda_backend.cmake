# cuda_backend.cmake - the cuda backend: src/backends/cuda.c (host glue) and kernels/*.cu.
#
# Included by the top CMakeLists.txt after cumlp_objects exists. CUMLP_CUDA:
#   AUTO  build it when the CUDA toolkit and a CUDA compiler are found
#   ON    build it or fail
#   OFF   leave it out (context.c then reports the backend as not built)

if(CUMLP_CUDA STREQUAL "OFF")
  return()
endif()

# CI may not have nvcc on PATH: point CMake at the toolkit's compiler before probing.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_NVCC_EXECUTABLE AND EXISTS "${CUDAToolkit_NVCC_EXECUTABLE}")
    set(CMAKE_CUDA_COMPILER "${CUDAToolkit_NVCC_EXECUTABLE}")
  elseif(EXISTS "/usr/local/cuda/bin/nvcc")
    set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc")
  endif()
endif()

include(CheckLanguage)
check_language(CUDA)
find_package(CUDAToolkit QUIET)

if(NOT CMAKE_CUDA_COMPILER OR NOT CUDAToolkit_FOUND)
  if(CUMLP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "CUMLP_CUDA=ON but no CUDA toolkit/compiler was found "
                        "(set CMAKE_CUDA_COMPILER or CUDAToolkit_ROOT)")
  endif()
  message(STATUS "cumlp: no CUDA toolkit found; the cuda backend is not built")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  # Ampere and Hopper machine code, plus PTX that newer GPUs can JIT.
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90-real;90-virtual")
endif()
set(CMAKE_CUDA_STANDARD 17)
set(CMAKE_CUDA_STANDARD_REQUIRED ON)
enable_language(CUDA)

target_sources(cumlp_objects PRIVATE
  ${PROJECT_SOURCE_DIR}/src/backends/cuda.c
  ${PROJECT_SOURCE_DIR}/src/backends/cuda_status.c
  ${PROJECT_SOURCE_DIR}/kernels/elementwise.cu
  ${PROJECT_SOURCE_DIR}/kernels/loss_reduce.cu
  ${PROJECT_SOURCE_DIR}/kernels/optimizer.cu)
target_compile_definitions(cumlp_objects PRIVATE CUMLP_HAVE_CUDA_BACKEND)
target_include_directories(cumlp_objects SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS})
# Keep the device code lean to compile: no relocatable device code, no debug info in Release.
target_compile_options(cumlp_objects PRIVATE
  "$<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr;-Xcompiler=-fvisibility=hidden>")
# cumlp_objects was created before CUDA was enabled: set its CUDA properties explicitly.
set_target_properties(cumlp_objects PROPERTIES
  CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
  CUDA_STANDARD 17
  CUDA_STANDARD_REQUIRED ON
  CUDA_SEPARABLE_COMPILATION OFF)

set(CUMLP_HAVE_CUDA_BACKEND ON)
list(APPEND CUMLP_LINK_LIBS CUDA::cudart CUDA::cublas CUDA::cublasLt CUDA::curand)
set(CUMLP_PC_LIBS_PRIVATE "${CUMLP_PC_LIBS_PRIVATE} -L${CUDAToolkit_LIBRARY_DIR} -lcublasLt -lcublas -lcurand -lcudart")

if(CUMLP_NVTX)
  # NVTX3 is header-only; the toolkit's include directory normally holds nvtx3/. Without the
  # header the ranges are compiled out (range_push/range_pop NULL) rather than breaking the build.
  find_path(CUMLP_NVTX3_INCLUDE_DIR nvtx3/nvToolsExt.h HINTS ${CUDAToolkit_INCLUDE_DIRS})
  if(CUMLP_NVTX3_INCLUDE_DIR)
    if(TARGET CUDA::nvtx3)
      target_link_libraries(cumlp_objects PRIVATE CUDA::nvtx3)
      list(APPEND CUMLP_LINK_LIBS CUDA::nvtx3)
    endif()
    target_compile_definitions(cumlp_objects PRIVATE CUMLP_USE_NVTX)
  else()
    message(STATUS "cumlp: nvtx3/nvToolsExt.h not found; NVTX ranges are compiled out")
  endif()
endif()
