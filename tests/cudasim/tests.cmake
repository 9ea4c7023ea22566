# tests.cmake - the CUDA simulator's own tests (included by tests/CMakeLists.txt in a
# -DCUMLP_CUDA_SIM=ON build): deliberately broken kernels and host calls that it must catch.
# test_sim_device.cc's kernels are compiled like cumlp's: C++ against the stand-in cuda_runtime.h.
set(sim_dir ${PROJECT_SOURCE_DIR}/tests/cudasim)
foreach(name test_sim_device test_sim_runtime)
  if(NOT EXISTS ${sim_dir}/${name}.cc)
    continue()
  endif()
  add_executable(${name} ${sim_dir}/${name}.cc)
  target_link_libraries(${name} PRIVATE cumlp_static)
  target_include_directories(${name} PRIVATE ${sim_dir} ${PROJECT_SOURCE_DIR}/tests
    ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/kernels)
  if(name STREQUAL "test_sim_device")
    # Its kernels compile as cumlp's do, against the stand-in cuda_runtime.h.
    target_include_directories(${name} BEFORE PRIVATE ${sim_dir}/include)
  endif()
  target_include_directories(${name} SYSTEM PRIVATE ${CUDAToolkit_INCLUDE_DIRS}
    ${CUMLP_CBLAS_INCLUDE_DIR})
  set_target_properties(${name} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON)
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    ${CUMLP_SIM_ALIGNMENT})
  cumlp_add_test(${name} "unit;gpu" "${CUMLP_SIM_SCHEDULES}")
endforeach()
