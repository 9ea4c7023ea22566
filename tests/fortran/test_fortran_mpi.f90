! ctest-labels: mpi
!
! Data-parallel training from Fortran, under mpirun (tests/mpi/tests.cmake runs it with 2 and 3
! ranks): the program initializes MPI itself (cumlp never does), every rank builds its replica
! with a different seed, joins MPI_COMM_WORLD by its Fortran handle (cumlp_network_set_comm_f,
! which starts every replica from rank 0's parameters), and trains XOR with cumlp_fit on its
! shards of every global batch. The replicas end bit-identical (their parameters' minimum and
! maximum over the ranks agree), XOR is learned, and a file that fails on the last rank alone
! fails on every rank (cumlp_mpi_agree_f). Prints "N passed, N failed" on rank 0; fails by error
! stop. With the mpi_f08 module, pass MPI_COMM_WORLD%MPI_VAL.
program test_fortran_mpi
  use, intrinsic :: iso_c_binding
  use mpi
  use cumlp
  implicit none

  integer, parameter :: n = 64
  integer :: ierr, rank, ranks, passed = 0, failed = 0
  type(c_ptr) :: ctx, net, opt, ds, missing
  type(cumlp_csv_options) :: csv
  type(cumlp_context_options) :: copt
  type(cumlp_network_options) :: nopt
  type(cumlp_optimizer_options) :: oopt
  type(cumlp_fit_options) :: fopt
  type(cumlp_fit_result) :: result
  integer(c_int64_t), parameter :: widths(3) = [2_c_int64_t, 8_c_int64_t, 2_c_int64_t]
  integer(c_int), parameter :: acts(2) = [CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX]
  integer(c_int) :: status, backend
  real(c_double), allocatable :: params(:), low(:), high(:)

  call MPI_Init(ierr)
  call MPI_Comm_rank(MPI_COMM_WORLD, rank, ierr)
  call MPI_Comm_size(MPI_COMM_WORLD, ranks, ierr)

  call check(cumlp_context_defaults(copt) == CUMLP_SUCCESS, "context defaults")
  backend = CUMLP_BACKEND_REFERENCE
  if (cumlp_backend_is_built(CUMLP_BACKEND_CPU) == 1) backend = CUMLP_BACKEND_CPU
  copt%backend = backend
  copt%num_threads = 1   ! the ranks share the cores
  call check_ok(cumlp_context_create(ctx, copt), "context", c_null_ptr)

  ds = xor_dataset()
  call check(cumlp_network_defaults(nopt) == CUMLP_SUCCESS, "network defaults")
  nopt%loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY
  nopt%seed = 10 + rank   ! a different replica on every rank, until it joins
  call check_ok(cumlp_network_create(ctx, 2_c_int, widths, acts, nopt, net), "network", ctx)
  call check_ok(cumlp_network_set_comm_f(net, MPI_COMM_WORLD, CUMLP_TRANSPORT_AUTO), &
      "cumlp_network_set_comm_f", ctx)
  call check(cumlp_network_num_ranks(net) == ranks, "ranks")
  call check(cumlp_network_rank(net) == rank, "rank")
  call check(cumlp_network_transport(net) == CUMLP_TRANSPORT_MPI, &
      "transport " // cumlp_transport_name(cumlp_network_transport(net)))

  call check(cumlp_optimizer_defaults_for(CUMLP_OPT_ADAM, oopt) == CUMLP_SUCCESS, "adam")
  oopt%learning_rate = 0.05d0
  call check_ok(cumlp_optimizer_create(net, oopt, opt), "optimizer", ctx)
  call check(cumlp_fit_defaults(fopt) == CUMLP_SUCCESS, "fit defaults")
  fopt%epochs = 60
  fopt%batch_size = 16   ! the global batch: 8 samples a rank on 2 ranks, 5, 5 and 6 on 3
  fopt%seed = 3
  call check_ok(cumlp_fit(net, opt, ds, c_null_ptr, fopt, result), "cumlp_fit", ctx)
  call check(result%train_accuracy == 1d0, "XOR learned on every rank")

  ! bit-identical replicas: every parameter's minimum and maximum over the ranks agree
  allocate(params(cumlp_network_num_parameters(net)))
  allocate(low(size(params)), high(size(params)))
  call check_ok(cumlp_network_get_parameters_f64(net, params, size(params, kind=c_int64_t)), &
      "parameters", ctx)
  call MPI_Allreduce(params, low, size(params), MPI_DOUBLE_PRECISION, MPI_MIN, MPI_COMM_WORLD, &
      ierr)
  call MPI_Allreduce(params, high, size(params), MPI_DOUBLE_PRECISION, MPI_MAX, MPI_COMM_WORLD, &
      ierr)
  call check(all(low == high), "replicas bit-identical")

  ! a file that the last rank alone cannot read: every rank gets its error
  status = CUMLP_SUCCESS
  call check(cumlp_csv_defaults(csv) == CUMLP_SUCCESS, "csv defaults")
  if (rank == ranks - 1) status = cumlp_dataset_read_csv(ctx, cumlp_cstr("no-such-file.csv"), &
      csv, missing)
  status = cumlp_mpi_agree_f(MPI_COMM_WORLD, status, ctx)
  call check(status == CUMLP_ERROR_IO, "agreed status " // cumlp_status_string(status))
  call check(index(cumlp_last_error(ctx), "no-such-file.csv") > 0, cumlp_last_error(ctx))

  call cumlp_optimizer_destroy(opt)
  call cumlp_network_destroy(net)   ! collective with a communicator: before MPI_Finalize
  call cumlp_dataset_destroy(ds)
  call cumlp_context_destroy(ctx)
  deallocate(params, low, high)
  if (rank == 0) print '(i0, " passed, ", i0, " failed")', passed, failed
  call MPI_Finalize(ierr)
  if (failed /= 0) error stop

contains

  subroutine check(ok, what)
    logical, intent(in) :: ok
    character(*), intent(in) :: what
    if (ok) then
      passed = passed + 1
    else
      failed = failed + 1
      print '("FAILED on rank ", i0, ": ", a)', rank, what
    end if
  end subroutine

  subroutine check_ok(st, what, context)
    integer(c_int), intent(in) :: st
    character(*), intent(in) :: what
    type(c_ptr), intent(in) :: context
    call check(st == CUMLP_SUCCESS, what // ": " // cumlp_status_string(st) // ": " // &
        cumlp_last_error(context))
  end subroutine

  ! n samples at XOR's four corners, a little apart: class 1 where exactly one input is high.
  function xor_dataset() result(d)
    type(c_ptr) :: d
    real(c_float), pointer :: x(:, :)
    integer(c_int32_t) :: labels(n)
    integer :: i, a, b
    call check_ok(cumlp_dataset_create(ctx, 2_c_int64_t, 2_c_int64_t, int(n, c_int64_t), 2_c_int, &
        d), "dataset", ctx)
    x => cumlp_dataset_features(d)
    do i = 1, n
      a = mod(i, 2)
      b = mod(i / 2, 2)
      x(1, i) = real(a, c_float) + 0.01_c_float * mod(i, 5)
      x(2, i) = real(b, c_float) - 0.01_c_float * mod(i, 3)
      labels(i) = ieor(a, b)
    end do
    call check_ok(cumlp_dataset_set_labels(d, labels, int(n, c_int64_t)), "labels", ctx)
  end function

end program test_fortran_mpi
