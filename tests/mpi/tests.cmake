# tests.cmake - data-parallel training under mpirun (label mpi; included by tests/CMakeLists.txt).
# test_mpi runs with 2 and 3 ranks (3: uneven shards) per backend and transport: the reference and
# cpu backends over MPI, and in the simulator build (-DCUMLP_CUDA_SIM=ON) the cuda backend over MPI
# through host memory, over MPI on device pointers and over NCCL. Without MPI (CUMLP_MPI=OFF, or
# none found) test_mpi is registered once, and skips (exit 77).
set(mpi_dir ${CMAKE_CURRENT_SOURCE_DIR}/mpi)
add_executable(test_mpi ${mpi_dir}/test_mpi.c)
target_link_libraries(test_mpi PRIVATE cumlp_testutil)
target_compile_options(test_mpi PRIVATE ${CUMLP_WARNINGS})
if(NOT CUMLP_HAVE_MPI)
  add_test(NAME test_mpi COMMAND test_mpi)
  set_tests_properties(test_mpi PROPERTIES SKIP_RETURN_CODE 77 LABELS mpi)
  return()
endif()
if(NOT TARGET cumlp_cli)
  message(FATAL_ERROR "tests/mpi: the cumlp command is not built")
endif()
target_compile_definitions(test_mpi PRIVATE CUMLP_TEST_HAVE_MPI)
if(CUMLP_CUDA_SIM)
  target_compile_definitions(test_mpi PRIVATE CUMLP_TEST_CUDA_SIM)
  target_include_directories(test_mpi PRIVATE ${PROJECT_SOURCE_DIR}/tests/cudasim)
endif()

# Open MPI's leaks of its own (from MPI_Init, never freed by design) are suppressed under
# LeakSanitizer: only stacks through libmpi, libopen-pal, libopen-rte and what they load
# (tests/mpi/lsan.supp), never cumlp's. Its libraries have no frame pointers: the slow unwinder
# finds those frames (ASAN_OPTIONS is scripts/test.sh's, with fast_unwind_on_malloc=0 appended).
set(CUMLP_MPI_TEST_ENV "CUMLP_TEST_TMPDIR=${CMAKE_CURRENT_BINARY_DIR}"
  "LSAN_OPTIONS=suppressions=${mpi_dir}/lsan.supp:print_suppressions=0"
  # Open MPI in containers: no cross-memory attach between ranks (ptrace is often denied)
  "OMPI_MCA_btl_vader_single_copy_mechanism=none")
set(CUMLP_MPI_TEST_ENV_MODIFICATION "ASAN_OPTIONS=string_append::fast_unwind_on_malloc=0")

# Registers `name`: `ranks` processes of the command in ARGN under MPI's launcher (in the simulator
# build with the schedule CUMLP_MPI_SIM_SCHEDULE, forward unless set).
function(cumlp_add_mpi_test name ranks)
  add_test(NAME ${name} COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks}
    ${CUMLP_MPIEXEC_FLAGS} ${ARGN})
  set(labels mpi)
  set(env ${CUMLP_MPI_TEST_ENV})
  if(CUMLP_CUDA_SIM)
    list(APPEND labels gpu)
    if(NOT CUMLP_MPI_SIM_SCHEDULE)
      set(CUMLP_MPI_SIM_SCHEDULE forward)
    endif()
    list(APPEND env "CUDASIM_SCHEDULE=${CUMLP_MPI_SIM_SCHEDULE}")
  endif()
  set_tests_properties(${name} PROPERTIES LABELS "${labels}" ENVIRONMENT "${env}"
    ENVIRONMENT_MODIFICATION "${CUMLP_MPI_TEST_ENV_MODIFICATION}"
    SKIP_RETURN_CODE 77 PROCESSORS ${ranks} TIMEOUT 180)
  if(CUMLP_CUDA_SIM)
    # whatever the simulator reports is a bug, as in every other cumlp test
    set_tests_properties(${name} PROPERTIES FAIL_REGULAR_EXPRESSION "cudasim: ")
  endif()
endfunction()

set(cumlp_mpi_runs)
if(CUMLP_CUDA_SIM)
  foreach(transport mpi-host mpi-device nccl)
    list(APPEND cumlp_mpi_runs "cuda ${transport}")
  endforeach()
else()
  list(APPEND cumlp_mpi_runs "reference mpi")
  if(CUMLP_HAVE_CPU_BACKEND)
    list(APPEND cumlp_mpi_runs "cpu mpi")
  endif()
  if(CUMLP_HAVE_CUDA_BACKEND) # on a GPU machine (skipped without one)
    list(APPEND cumlp_mpi_runs "cuda mpi")
    if(CUMLP_HAVE_NCCL)
      list(APPEND cumlp_mpi_runs "cuda nccl")
    endif()
  endif()
endif()
# `cumlp train` under mpirun: test_mpi_cli starts mpirun itself (2 and 3 ranks, and two programs
# for a bad file and options that differ on one rank).
add_executable(test_mpi_cli ${mpi_dir}/test_mpi_cli.c)
target_link_libraries(test_mpi_cli PRIVATE cumlp_testutil)
target_compile_options(test_mpi_cli PRIVATE ${CUMLP_WARNINGS})
list(JOIN CUMLP_MPIEXEC_FLAGS " " mpiexec_flags)
target_compile_definitions(test_mpi_cli PRIVATE
  CUMLP_TEST_MPIEXEC="${MPIEXEC_EXECUTABLE} ${mpiexec_flags}"
  CUMLP_TEST_MPIEXEC_NP="${MPIEXEC_NUMPROC_FLAG}" CUMLP_TEST_CLI="$<TARGET_FILE:cumlp_cli>")
set(cli_run "cpu mpi")
if(CUMLP_CUDA_SIM)
  set(cli_run "cuda nccl")
elseif(NOT CUMLP_HAVE_CPU_BACKEND)
  set(cli_run "reference mpi")
endif()
string(REPLACE " " ";" cli_args "${cli_run}")
add_test(NAME test_mpi_cli COMMAND test_mpi_cli ${cli_args})
set(cli_labels mpi)
if(CUMLP_CUDA_SIM)
  list(APPEND cli_labels gpu)
endif()
set_tests_properties(test_mpi_cli PROPERTIES LABELS "${cli_labels}" SKIP_RETURN_CODE 77
  ENVIRONMENT "${CUMLP_MPI_TEST_ENV}" ENVIRONMENT_MODIFICATION "${CUMLP_MPI_TEST_ENV_MODIFICATION}"
  PROCESSORS 3 TIMEOUT 300)

# The Fortran example (tests/fortran/test_fortran_mpi.f90), where gfortran and MPI's Fortran
# module are found.
if(CUMLP_HAVE_FORTRAN)
  find_package(MPI COMPONENTS Fortran QUIET)
  if(MPI_Fortran_FOUND AND MPI_Fortran_HAVE_F90_MODULE)
    add_executable(test_fortran_mpi ${PROJECT_SOURCE_DIR}/tests/fortran/test_fortran_mpi.f90)
    set_target_properties(test_fortran_mpi PROPERTIES LINKER_LANGUAGE Fortran)
    target_link_libraries(test_fortran_mpi PRIVATE cumlp_fortran MPI::MPI_Fortran)
    # exact comparisons on purpose (bit-identical replicas), as test_fortran's
    target_compile_options(test_fortran_mpi PRIVATE ${CUMLP_FORTRAN_TEST_OPTIONS})
    foreach(ranks 2 3)
      cumlp_add_mpi_test(test_fortran_mpi_${ranks} ${ranks} $<TARGET_FILE:test_fortran_mpi>)
    endforeach()
  else()
    message(STATUS "cumlp: test_fortran_mpi left out: no MPI Fortran module (use mpi) found")
  endif()
endif()

foreach(run ${cumlp_mpi_runs})
  string(REPLACE " " ";" args "${run}")
  string(REPLACE " " "_" suffix "${run}")
  foreach(ranks 2 3)
    cumlp_add_mpi_test(test_mpi_${ranks}_${suffix} ${ranks} $<TARGET_FILE:test_mpi> ${args})
  endforeach()
endforeach()
# NCCL's collectives among streams run in a shuffled order too (as cumlp's other simulator tests).
if(CUMLP_CUDA_SIM)
  set(CUMLP_MPI_SIM_SCHEDULE ${CUMLP_SIM_SHUFFLE})
  cumlp_add_mpi_test(test_mpi_3_cuda_nccl_shuffled 3 $<TARGET_FILE:test_mpi> cuda nccl)
endif()
