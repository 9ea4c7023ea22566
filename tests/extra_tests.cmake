# extra_tests.cmake - tests beyond the tests/test_*.c glob (included by tests/CMakeLists.txt):
#  - the PyTorch interoperability check of checkpoints (test_checkpoint_interop, label data) and
#    the comparison of every optimizer with torch.optim (test_optimizers_torch);
#  - the installed package found through pkg-config from a fresh, then moved, prefix
#    (test_install_pkgconfig, tests/install_pkgconfig.sh);
#  - libFuzzer targets for the checkpoint, IDX, CSV and FANN readers (label fuzz), each run for
#    a short fixed time from a seed corpus that the fuzz_corpus test writes.
# Fuzzers need clang with -fsanitize=fuzzer. With another C compiler (gcc) a clang found on the
# PATH builds them from the same sources; without one they are left out and the build is as
# before. scripts/fuzz.sh runs them for longer.

# ---- interoperability with PyTorch ---------------------------------------------------------------
if(TARGET test_checkpoint_interop)
  target_compile_definitions(test_checkpoint_interop PRIVATE
    CUMLP_INTEROP_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/interop_torch.py")
endif()
# Every optimizer against torch.optim (test_optimizers_torch, labels data and gpu).
if(TARGET test_optimizers_torch)
  target_compile_definitions(test_optimizers_torch PRIVATE
    CUMLP_OPTIMIZERS_TORCH_SCRIPT="${CMAKE_CURRENT_SOURCE_DIR}/optimizers_torch.py")
endif()

# ---- the installed package: pkg-config from a fresh prefix, relocated -----------------------------
# The simulator build cannot be installed.
if(NOT CUMLP_CUDA_SIM)
  set(cumlp_program_flags "")
  if(CUMLP_SANITIZE)
    string(JOIN " " cumlp_program_flags ${CUMLP_SANITIZE_FLAGS})
  endif()
  add_test(NAME test_install_pkgconfig
    COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/install_pkgconfig.sh ${PROJECT_BINARY_DIR}
            ${CMAKE_C_COMPILER} "${cumlp_program_flags}")
  set_tests_properties(test_install_pkgconfig PROPERTIES LABELS unit SKIP_RETURN_CODE 77
    ENVIRONMENT "TMPDIR=${CMAKE_CURRENT_BINARY_DIR}")
endif()

# ---- libFuzzer targets ----------------------------------------------------------------------------
set(CUMLP_FUZZ "AUTO" CACHE STRING "Build libFuzzer targets (clang -fsanitize=fuzzer): AUTO, ON, OFF")
set_property(CACHE CUMLP_FUZZ PROPERTY STRINGS AUTO ON OFF)
set(CUMLP_FUZZ_SECONDS 10 CACHE STRING "Seconds each fuzz target runs under ctest")

set(cumlp_fuzz_cc "")
if(NOT CUMLP_FUZZ STREQUAL "OFF")
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    set(cumlp_fuzz_cc ${CMAKE_C_COMPILER})
  else()
    find_program(CUMLP_FUZZ_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
    if(CUMLP_FUZZ_CLANG)
      set(cumlp_fuzz_cc ${CUMLP_FUZZ_CLANG})
    endif()
  endif()
endif()

# Probe once per compiler: can it build and link a fuzzer with the sanitizers?
if(cumlp_fuzz_cc AND NOT CUMLP_FUZZ_PROBED STREQUAL cumlp_fuzz_cc)
  set(probe_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe)
  file(WRITE ${probe_dir}/probe.c
    "#include <stddef.h>\n#include <stdint.h>\n"
    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\n"
    "int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${cumlp_fuzz_cc} -fsanitize=fuzzer,address,undefined
                          ${probe_dir}/probe.c -o ${probe_dir}/probe
                  RESULT_VARIABLE probe_result OUTPUT_QUIET ERROR_QUIET)
  if(probe_result EQUAL 0)
    set(works ON)
  else()
    set(works OFF)
  endif()
  set(CUMLP_FUZZ_WORKS ${works} CACHE INTERNAL "clang can build libFuzzer targets")
  set(CUMLP_FUZZ_PROBED ${cumlp_fuzz_cc} CACHE INTERNAL "compiler probed for libFuzzer")
endif()

if(cumlp_fuzz_cc AND CUMLP_FUZZ_WORKS)
  set(fuzz_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz)
  set(fuzz_src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
  set(fuzz_flags -std=c11 -g -O1 -fsanitize=fuzzer-no-link,address,undefined
      -fno-sanitize-recover=undefined -fno-omit-frame-pointer -DCUMLP_BUILDING
      -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/src -I${PROJECT_SOURCE_DIR}/kernels)
  foreach(dir ${ZLIB_INCLUDE_DIRS})
    list(APPEND fuzz_flags -I${dir})
  endforeach()
  set(fuzz_libs ${ZLIB_LIBRARIES} -lm)

  # The library's core sources (reference backend only), compiled once with coverage
  # instrumentation into one archive.
  set(fuzz_objects)
  foreach(source ${CUMLP_CORE_SOURCES})
    get_filename_component(name ${source} NAME_WE)
    set(object ${fuzz_dir}/obj/${name}.o)
    add_custom_command(OUTPUT ${object}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${fuzz_dir}/obj
      COMMAND ${cumlp_fuzz_cc} ${fuzz_flags} -MD -MF ${object}.d -c ${source} -o ${object}
      DEPENDS ${source} DEPFILE ${object}.d
      COMMENT "Building fuzzing object ${name}.o" VERBATIM)
    list(APPEND fuzz_objects ${object})
  endforeach()
  set(fuzz_archive ${fuzz_dir}/libcumlp_fuzz.a)
  add_custom_command(OUTPUT ${fuzz_archive}
    COMMAND ${CMAKE_COMMAND} -E rm -f ${fuzz_archive}
    COMMAND ${CMAKE_AR} rcs ${fuzz_archive} ${fuzz_objects}
    DEPENDS ${fuzz_objects} COMMENT "Archiving libcumlp_fuzz.a" VERBATIM)

  # Seed corpora, written by the library itself (checkpoints) and by make_corpus.
  add_executable(cumlp_make_corpus ${fuzz_src}/make_corpus.c)
  target_link_libraries(cumlp_make_corpus PRIVATE cumlp_static)
  target_compile_options(cumlp_make_corpus PRIVATE ${CUMLP_WARNINGS})
  add_test(NAME fuzz_corpus COMMAND cumlp_make_corpus ${fuzz_dir}/corpus)
  set_tests_properties(fuzz_corpus PROPERTIES LABELS fuzz FIXTURES_SETUP cumlp_fuzz_corpus)

  set(fuzz_binaries)
  foreach(target checkpoint idx csv fann)
    set(binary ${fuzz_dir}/fuzz_${target})
    add_custom_command(OUTPUT ${binary}
      COMMAND ${cumlp_fuzz_cc} ${fuzz_flags} -fsanitize=fuzzer ${fuzz_src}/fuzz_${target}.c
              ${fuzz_archive} ${fuzz_libs} -o ${binary}
      DEPENDS ${fuzz_src}/fuzz_${target}.c ${fuzz_archive}
      COMMENT "Linking fuzz target fuzz_${target}" VERBATIM)
    list(APPEND fuzz_binaries ${binary})
    add_test(NAME fuzz_${target}
      COMMAND ${binary} -max_total_time=${CUMLP_FUZZ_SECONDS} -timeout=10 -rss_limit_mb=2048
              -print_final_stats=1 -artifact_prefix=${fuzz_dir}/crash_${target}_
              ${fuzz_dir}/corpus/work/${target} ${fuzz_dir}/corpus/seeds/${target})
    set_tests_properties(fuzz_${target} PROPERTIES LABELS fuzz
      FIXTURES_REQUIRED cumlp_fuzz_corpus TIMEOUT 120)
  endforeach()
  add_custom_target(cumlp_fuzzers ALL DEPENDS ${fuzz_binaries})
  message(STATUS "cumlp: libFuzzer targets with ${cumlp_fuzz_cc}")
elseif(CUMLP_FUZZ STREQUAL "ON")
  message(FATAL_ERROR "CUMLP_FUZZ=ON but no clang with -fsanitize=fuzzer was found")
else()
  message(STATUS "cumlp: libFuzzer targets left out (no clang with -fsanitize=fuzzer)")
endif()
