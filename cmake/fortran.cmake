# fortran.cmake - the Fortran binding (include/cumlp.f90, module `cumlp`) and its test.
#
# Included by the top CMakeLists.txt. CUMLP_FORTRAN selects it: OFF never builds it, AUTO builds it
# when a Fortran compiler is found (include(CheckLanguage)), ON fails the configuration without
# one. Without a Fortran compiler nothing here changes the build.
#
# Built: libcumlp_fortran.a (the module's few wrapper procedures) and cumlp.mod; installed with
# cumlp.f90 next to cumlp.h. A .mod file is specific to the compiler that wrote it: codes built
# with another Fortran compiler compile include/cumlp.f90 themselves. The C library (cumlp or
# cumlp_static) is linked as well; the cumlp::cumlp_fortran target brings the static one.

set(CUMLP_FORTRAN "AUTO" CACHE STRING
  "Build the Fortran binding: AUTO (if a Fortran compiler is found), ON, OFF")
set_property(CACHE CUMLP_FORTRAN PROPERTY STRINGS AUTO ON OFF)

set(CUMLP_HAVE_FORTRAN OFF)
if(CUMLP_FORTRAN STREQUAL "OFF")
  return()
endif()
if(NOT CUMLP_FORTRAN MATCHES "^(AUTO|ON)$")
  message(FATAL_ERROR "CUMLP_FORTRAN must be AUTO, ON or OFF, not '${CUMLP_FORTRAN}'")
endif()

include(CheckLanguage)
check_language(Fortran)
if(NOT CMAKE_Fortran_COMPILER)
  if(CUMLP_FORTRAN STREQUAL "ON")
    message(FATAL_ERROR "CUMLP_FORTRAN=ON but no Fortran compiler was found")
  endif()
  message(STATUS "cumlp: Fortran binding left out: no Fortran compiler found")
  return()
endif()
enable_language(Fortran)
set(CUMLP_HAVE_FORTRAN ON)

# Warnings as for C; the sanitizer flags of the top CMakeLists.txt are added to C sources only.
set(CUMLP_FORTRAN_OPTIONS "")
if(CMAKE_Fortran_COMPILER_ID STREQUAL "GNU")
  list(APPEND CUMLP_FORTRAN_OPTIONS -Wall -Wextra -pedantic -std=f2008 -Wimplicit-interface)
  if(CUMLP_WERROR)
    list(APPEND CUMLP_FORTRAN_OPTIONS -Werror)
  endif()
  if(CUMLP_SANITIZE)
    list(APPEND CUMLP_FORTRAN_OPTIONS ${CUMLP_SANITIZE_FLAGS})
  endif()
endif()

set(CUMLP_FORTRAN_MODULE_DIR ${PROJECT_BINARY_DIR}/fortran/include)
add_library(cumlp_fortran STATIC ${PROJECT_SOURCE_DIR}/include/cumlp.f90)
set_target_properties(cumlp_fortran PROPERTIES Fortran_MODULE_DIRECTORY ${CUMLP_FORTRAN_MODULE_DIR})
target_compile_options(cumlp_fortran PRIVATE ${CUMLP_FORTRAN_OPTIONS})
target_include_directories(cumlp_fortran INTERFACE
  $<BUILD_INTERFACE:${CUMLP_FORTRAN_MODULE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# cumlp_static is defined after this file is included; target names resolve at generation.
target_link_libraries(cumlp_fortran INTERFACE cumlp_static)
add_library(cumlp::cumlp_fortran ALIAS cumlp_fortran)

install(TARGETS cumlp_fortran EXPORT cumlpTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES include/cumlp.f90 ${CUMLP_FORTRAN_MODULE_DIR}/cumlp.mod
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

if(CUMLP_BUILD_TESTS)
  enable_testing()
  # tests/fortran/layout.c reports the C structs' layout for the test to compare.
  add_executable(test_fortran ${PROJECT_SOURCE_DIR}/tests/fortran/test_fortran.f90
    ${PROJECT_SOURCE_DIR}/tests/fortran/layout.c)
  set_target_properties(test_fortran PROPERTIES LINKER_LANGUAGE Fortran)
  target_link_libraries(test_fortran PRIVATE cumlp_fortran)
  # The test compares reals exactly on purpose (bit-identical round trips).
  set(CUMLP_FORTRAN_TEST_OPTIONS ${CUMLP_FORTRAN_OPTIONS})
  if(CMAKE_Fortran_COMPILER_ID STREQUAL "GNU")
    list(APPEND CUMLP_FORTRAN_TEST_OPTIONS -Wno-compare-reals)
  endif()
  target_compile_options(test_fortran PRIVATE
    "$<$<COMPILE_LANGUAGE:Fortran>:${CUMLP_FORTRAN_TEST_OPTIONS}>"
    "$<$<COMPILE_LANGUAGE:C>:${CUMLP_WARNINGS}>")
  add_test(NAME test_fortran COMMAND test_fortran)
  # AUTO contexts open the GPU where there is one: the device lock of tests/CMakeLists.txt.
  set_tests_properties(test_fortran PROPERTIES SKIP_RETURN_CODE 77 LABELS "unit;cuda"
    RESOURCE_LOCK cumlp_cuda_device
    ENVIRONMENT "CUMLP_TEST_TMPDIR=${PROJECT_BINARY_DIR}/fortran")
endif()

message(STATUS
  "cumlp: Fortran binding with ${CMAKE_Fortran_COMPILER_ID} ${CMAKE_Fortran_COMPILER_VERSION}")
