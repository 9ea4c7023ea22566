! ctest-labels: unit
!
! The Fortran binding (include/cumlp.f90) used from Fortran: its constants against the C header's,
! its copy of the named-value lists (names, parsers and counts) against the library, struct
! layouts against the C compiler's, defaults through the bind(C) types, seed 003's worked example
! on the reference backend (to the printed digits), XOR trained to 100%, a gradient check,
! checkpoints through files and memory, datasets (CSV, FANN and IDX from files and memory;
! shuffle, subset, split), scalers, cumlp_fit with a Fortran callback on an easy separable problem
! and on a linear regression, evaluate and predict against values recomputed here, and error
! statuses with their messages. Everything it creates it destroys (the sanitizer build checks for
! leaks). Prints "N passed, N failed" last; fails by error stop.

! The cumlp_fit callback: bind(C) procedures cannot be internal, so it lives in this module.
module test_fortran_callbacks
  use, intrinsic :: iso_c_binding
  use cumlp
  implicit none
  private
  public :: fit_log, fit_log_reset, on_progress

  integer, parameter :: max_calls = 64

  ! What on_progress records, one entry per call; user_data points at one of these.
  type, bind(C) :: fit_log
    integer(c_int) :: calls           ! times called
    integer(c_int) :: stop_after      ! return nonzero from this call on; 0: never
    integer(c_int) :: epoch(max_calls), end_of_epoch(max_calls)
    integer(c_int64_t) :: batch(max_calls), batches_per_epoch(max_calls), steps(max_calls)
    real(c_double) :: learning_rate(max_calls), train_loss(max_calls), train_accuracy(max_calls)
    real(c_double) :: validation_loss(max_calls), validation_accuracy(max_calls)
  end type fit_log

contains

  subroutine fit_log_reset(log, stop_after)
    type(fit_log), intent(out) :: log
    integer(c_int), intent(in) :: stop_after
    log%calls = 0
    log%stop_after = stop_after
    log%epoch = -99
    log%end_of_epoch = -99
    log%batch = -99
    log%batches_per_epoch = -99
    log%steps = -99
    log%learning_rate = -99
    log%train_loss = -99
    log%train_accuracy = -99
    log%validation_loss = -99
    log%validation_accuracy = -99
  end subroutine

  function on_progress(progress, user_data) bind(C) result(stop_now)
    type(cumlp_fit_progress), intent(in) :: progress
    type(c_ptr), value :: user_data
    integer(c_int) :: stop_now
    type(fit_log), pointer :: log
    integer :: k
    call c_f_pointer(user_data, log)
    log%calls = log%calls + 1
    k = log%calls
    if (k <= max_calls) then
      log%epoch(k) = progress%epoch
      log%end_of_epoch(k) = progress%end_of_epoch
      log%batch(k) = progress%batch
      log%batches_per_epoch(k) = progress%batches_per_epoch
      log%steps(k) = progress%steps
      log%learning_rate(k) = progress%learning_rate
      log%train_loss(k) = progress%train_loss
      log%train_accuracy(k) = progress%train_accuracy
      log%validation_loss(k) = progress%validation_loss
      log%validation_accuracy(k) = progress%validation_accuracy
    end if
    stop_now = 0
    if (log%stop_after > 0 .and. log%calls >= log%stop_after) stop_now = 1
  end function

end module test_fortran_callbacks

program test_fortran
  use, intrinsic :: iso_c_binding
  use cumlp
  use test_fortran_callbacks
  implicit none

  interface
    ! tests/fortran/layout.c: sizeof (field 0) and offsetof (field i) of C struct s.
    function cumlp_test_c_layout(s, field) bind(C, name="cumlp_test_c_layout")
      import :: c_int, c_int64_t
      integer(c_int), value :: s, field
      integer(c_int64_t) :: cumlp_test_c_layout
    end function
    ! tests/fortran/layout.c: the i-th constant of test_constants' list, from cumlp.h.
    function cumlp_test_c_constant(i) bind(C, name="cumlp_test_c_constant")
      import :: c_int, c_int64_t
      integer(c_int), value :: i
      integer(c_int64_t) :: cumlp_test_c_constant
    end function
  end interface

  integer :: passed = 0, failed = 0
  character(:), allocatable :: tmpdir
  ! Its address is put in output handles before calls that must fail, to see them set to NULL.
  integer(c_int), target :: sentinel = 0
  character, parameter :: nl = new_line('a')

  call get_tmpdir()
  call test_strings()
  call test_constants()
  call test_named_values()
  call test_layouts()
  call test_defaults()
  call test_precision_and_loss_scaler()
  call test_worked_example(CUMLP_BACKEND_REFERENCE, 5d-10)
  call test_worked_example(CUMLP_BACKEND_CPU, 1d-6)
  call test_worked_example(CUMLP_BACKEND_CUDA, 1d-6)   ! skipped without a GPU
  call test_xor_and_checkpoints()
  call test_every_optimizer()
  call test_errors()
  call test_csv()
  call test_fann()
  call test_idx()
  call test_shuffle_subset_split()
  call test_scaler()
  call test_schedule()
  call test_fit_classification(CUMLP_BACKEND_REFERENCE)
  call test_fit_classification(CUMLP_BACKEND_CPU)
  call test_fit_classification(CUMLP_BACKEND_CUDA)   ! skipped without a GPU
  call test_fit_regression(CUMLP_BACKEND_REFERENCE)
  call test_fit_regression(CUMLP_BACKEND_CPU)
  call test_dataset_errors()
  deallocate(tmpdir)   ! the main program's variables are never freed: LeakSanitizer would see it

  print '(i0, " passed, ", i0, " failed")', passed, failed
  if (failed /= 0) error stop

contains

  subroutine check(ok, what)
    logical, intent(in) :: ok
    character(*), intent(in) :: what
    if (ok) then
      passed = passed + 1
    else
      failed = failed + 1
      print '("FAILED: ", a)', what
    end if
  end subroutine

  subroutine check_ok(status, what, ctx)
    integer(c_int), intent(in) :: status
    character(*), intent(in) :: what
    type(c_ptr), intent(in) :: ctx
    if (status == CUMLP_SUCCESS) then
      passed = passed + 1
    else
      failed = failed + 1
      print '("FAILED: ", a, ": ", a, ": ", a)', what, cumlp_status_string(status), &
          cumlp_last_error(ctx)
    end if
  end subroutine

  subroutine check_near(got, want, tol, what)
    real(c_double), intent(in) :: got, want, tol
    character(*), intent(in) :: what
    ! Written so that a NaN fails.
    if (abs(got - want) <= tol) then
      passed = passed + 1
    else
      failed = failed + 1
      print '("FAILED: ", a, ": got ", es22.14, ", want ", es22.14, " +- ", es9.2)', &
          what, got, want, tol
    end if
  end subroutine

  subroutine get_tmpdir()
    integer :: n, stat
    call get_environment_variable("CUMLP_TEST_TMPDIR", length=n, status=stat)
    if (stat /= 0 .or. n == 0) then
      tmpdir = "."
      return
    end if
    allocate(character(n) :: tmpdir)
    call get_environment_variable("CUMLP_TEST_TMPDIR", value=tmpdir)
  end subroutine

  function address(p) result(a)
    type(c_ptr), intent(in) :: p
    integer(c_intptr_t) :: a
    a = transfer(p, a)
  end function

  ! Compares the size and the field offsets of Fortran's struct (base, fields) with C's struct s.
  subroutine compare_layout(s, name, size_f, base, fields)
    integer(c_int), intent(in) :: s
    character(*), intent(in) :: name
    integer(c_size_t), intent(in) :: size_f
    type(c_ptr), intent(in) :: base
    type(c_ptr), intent(in) :: fields(:)
    integer(c_int) :: i
    call check(int(size_f, c_int64_t) == cumlp_test_c_layout(s, 0_c_int), name // ": size")
    do i = 1, size(fields)
      if (address(fields(i)) - address(base) /= cumlp_test_c_layout(s, i)) then
        call check(.false., name // ": field offset")
        print '("  field ", i0, ": Fortran ", i0, ", C ", i0)', i, &
            address(fields(i)) - address(base), cumlp_test_c_layout(s, i)
      else
        call check(.true., name)
      end if
    end do
    call check(cumlp_test_c_layout(s, int(size(fields) + 1, c_int)) == -1, &
        name // ": C has more fields")
  end subroutine

  subroutine test_strings()
    character(16) :: want
    call check(cumlp_version_number() == CUMLP_MODULE_VERSION_NUMBER, "version number")
    write (want, '(i0, ".", i0, ".", i0)') CUMLP_VERSION_MAJOR, CUMLP_VERSION_MINOR, &
        CUMLP_VERSION_PATCH
    call check(cumlp_version_string() == trim(want), "version string " // cumlp_version_string())
    call check(cumlp_status_string(CUMLP_SUCCESS) == "CUMLP_SUCCESS", "status string 0")
    call check(cumlp_status_string(CUMLP_ERROR_INVALID_VALUE) == "CUMLP_ERROR_INVALID_VALUE", &
        "status string 1")
    call check(cumlp_status_string(CUMLP_ERROR_SHAPE_MISMATCH) == &
        "CUMLP_ERROR_SHAPE_MISMATCH", "status string 10")
    call check(cumlp_status_string(CUMLP_ERROR_INTERNAL) == "CUMLP_ERROR_INTERNAL", &
        "status string 13")
    call check(cumlp_backend_name(CUMLP_BACKEND_REFERENCE) == "reference", "backend name")
    call check(cumlp_backend_name(CUMLP_BACKEND_CUDA) == "cuda", "backend name cuda")
    call check(cumlp_backend_is_built(CUMLP_BACKEND_REFERENCE) == 1, "reference is built")
    call check(len(cumlp_last_error(c_null_ptr)) >= 0, "last error without context")
  end subroutine

  ! Every constant of the module against the C header's value.
  subroutine test_constants()
    integer(c_int64_t), parameter :: values(*) = [integer(c_int64_t) :: &
        CUMLP_VERSION_MAJOR, CUMLP_VERSION_MINOR, CUMLP_VERSION_PATCH, &
        CUMLP_MODULE_VERSION_NUMBER, CUMLP_SUCCESS, CUMLP_ERROR_INVALID_VALUE, &
        CUMLP_ERROR_ALLOC_FAILED, CUMLP_ERROR_NOT_SUPPORTED, CUMLP_ERROR_NO_DEVICE, &
        CUMLP_ERROR_DEVICE, CUMLP_ERROR_IO, CUMLP_ERROR_FORMAT, CUMLP_ERROR_TRUNCATED, &
        CUMLP_ERROR_SIZE_LIMIT, CUMLP_ERROR_SHAPE_MISMATCH, CUMLP_ERROR_CHECKSUM, &
        CUMLP_ERROR_NON_FINITE, CUMLP_ERROR_INTERNAL, CUMLP_STEP_SKIPPED, &
        CUMLP_ERROR_COMMUNICATION, CUMLP_STATUS_COUNT, CUMLP_BACKEND_AUTO, &
        CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA, CUMLP_BACKEND_COUNT, &
        CUMLP_PRECISION_FP32, CUMLP_PRECISION_TF32, CUMLP_PRECISION_BF16, CUMLP_PRECISION_FP16, &
        CUMLP_PRECISION_COUNT, &
        CUMLP_MATH_STRICT_FP32, CUMLP_MATH_TF32, CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID, &
        CUMLP_ACT_TANH, CUMLP_ACT_RELU, CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX, &
        CUMLP_ACTIVATION_COUNT, CUMLP_LOSS_SQUARED_ERROR, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, &
        CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, CUMLP_LOSS_COUNT, CUMLP_INIT_NORMAL, &
        CUMLP_INIT_UNIFORM, CUMLP_INIT_XAVIER_NORMAL, CUMLP_INIT_XAVIER_UNIFORM, &
        CUMLP_INIT_HE_NORMAL, CUMLP_INIT_HE_UNIFORM, CUMLP_INIT_COUNT, CUMLP_BIAS_ZERO, &
        CUMLP_BIAS_DRAWN, CUMLP_OPT_SGD, CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM, &
        CUMLP_OPT_ADAMW, CUMLP_OPT_ADAMAX, CUMLP_OPT_NADAM, CUMLP_OPT_RMSPROP, CUMLP_OPT_ADAGRAD, &
        CUMLP_OPT_ADADELTA, &
        CUMLP_OPTIMIZER_COUNT, CUMLP_CHECKPOINT_ALLOW_NON_FINITE, CUMLP_SCALE_MINMAX, &
        CUMLP_SCALE_STANDARDIZE, CUMLP_LR_CONSTANT, CUMLP_LR_STEP, CUMLP_LR_EXPONENTIAL, &
        CUMLP_LR_COSINE, CUMLP_LR_MULTISTEP, CUMLP_LR_LINEAR, CUMLP_LR_POLY, &
        CUMLP_SCHEDULE_COUNT, CUMLP_STOP_EPOCHS, CUMLP_STOP_TARGET_LOSS, &
        CUMLP_STOP_PATIENCE, CUMLP_STOP_CALLBACK, CUMLP_STOP_ERROR, CUMLP_DATASET_MAX_ELEMENTS, &
        CUMLP_TASK_UNKNOWN, CUMLP_TASK_CLASSIFY, CUMLP_TASK_REGRESS, CUMLP_TASK_COUNT, &
        CUMLP_CSV_NO_TARGET, &
        CUMLP_TRANSPORT_AUTO, CUMLP_TRANSPORT_MPI, CUMLP_TRANSPORT_MPI_HOST, &
        CUMLP_TRANSPORT_MPI_DEVICE, CUMLP_TRANSPORT_NCCL, CUMLP_TRANSPORT_COUNT, &
        CUMLP_EPILOGUES_OFF, CUMLP_EPILOGUES_RELU, CUMLP_EPILOGUES_ALL, CUMLP_EPILOGUES_COUNT]
    integer(c_int) :: i
    do i = 1, size(values)
      if (values(i) /= cumlp_test_c_constant(i)) then
        call check(.false., "constant")
        print '("  constant ", i0, ": Fortran ", i0, ", C ", i0)', i, values(i), &
            cumlp_test_c_constant(i)
      else
        call check(.true., "constant")
      end if
    end do
    call check(cumlp_test_c_constant(int(size(values) + 1, c_int)) == -1, "C has more constants")
  end subroutine

  ! Whether a is b, trailing blanks included (== pads the shorter one with blanks).
  logical function same(a, b)
    character(*), intent(in) :: a, b
    same = len(a) == len(b) .and. a == b
  end function

  ! Checks that a parse returned CUMLP_SUCCESS and the value want.
  subroutine check_parsed(status, value, want, what)
    integer(c_int), intent(in) :: status, value, want
    character(*), intent(in) :: what
    if (status == CUMLP_SUCCESS .and. value == want) then
      call check(.true., what)
    else
      call check(.false., what)
      print '("  ", a, ", value ", i0, ", want ", i0)', cumlp_status_string(status), value, want
      if (status /= CUMLP_SUCCESS) print '("  ", a)', cumlp_last_error(c_null_ptr)
    end if
  end subroutine

  ! cumlp_<set>_name of the set `set` ("backend", "activation", ...). Not a procedure argument of
  ! check_named_set: for a dummy procedure with a character(:) result, gfortran 12's callee expects
  ! a hidden length argument that the caller does not pass, shifting the lengths of the character
  ! arguments after it.
  function name_of(set, value) result(s)
    character(*), intent(in) :: set
    integer(c_int), intent(in) :: value
    character(:), allocatable :: s
    select case (set)
    case ("backend")
      s = cumlp_backend_name(value)
    case ("precision")
      s = cumlp_precision_name(value)
    case ("activation")
      s = cumlp_activation_name(value)
    case ("loss")
      s = cumlp_loss_name(value)
    case ("init")
      s = cumlp_init_name(value)
    case ("optimizer")
      s = cumlp_optimizer_name(value)
    case ("schedule")
      s = cumlp_schedule_name(value)
    case ("task")
      s = cumlp_task_name(value)
    case ("transport")
      s = cumlp_transport_name(value)
    case ("epilogue setting")
      s = cumlp_epilogues_name(value)
    case default
      error stop "name_of: no such set"
    end select
  end function

  ! cumlp_<set>_from_name of the set `set`.
  function parse(set, name, value) result(status)
    character(*), intent(in) :: set, name
    integer(c_int), intent(inout) :: value
    integer(c_int) :: status
    select case (set)
    case ("backend")
      status = cumlp_backend_from_name(name, value)
    case ("precision")
      status = cumlp_precision_from_name(name, value)
    case ("activation")
      status = cumlp_activation_from_name(name, value)
    case ("loss")
      status = cumlp_loss_from_name(name, value)
    case ("init")
      status = cumlp_init_from_name(name, value)
    case ("optimizer")
      status = cumlp_optimizer_from_name(name, value)
    case ("schedule")
      status = cumlp_schedule_from_name(name, value)
    case ("task")
      status = cumlp_task_from_name(name, value)
    case ("transport")
      status = cumlp_transport_from_name(name, value)
    case ("epilogue setting")
      status = cumlp_epilogues_from_name(name, value)
    case default
      error stop "parse: no such set"
    end select
  end function

  ! One set of named values, as the module copies it from cumlp.h's CUMLP_<SET>_LIST: values are
  ! its constants in list order, count its CUMLP_<SET>_COUNT (test_constants compares it with
  ! C's), names the names the list gives them and ids the constants' names without their prefix,
  ! in lower case (the C identifiers, which the parser accepts too). Checks that there are count
  ! constants, that cumlp_<set>_name names each as the list does and "unknown" outside
  ! 0 .. count - 1, that cumlp_<set>_from_name gives each back from its name and from its
  ! identifier with trailing blanks, and that an unknown name is CUMLP_ERROR_INVALID_VALUE, keeps
  ! the value and lists every name in the message.
  subroutine check_named_set(what, values, count, names, ids)
    character(*), intent(in) :: what
    integer(c_int), intent(in) :: values(:), count
    character(*), intent(in) :: names(:), ids(:)
    character(:), allocatable :: got, list, msg
    integer(c_int) :: status, value, kept
    integer :: i

    call check(size(values) == count .and. size(names) == count .and. size(ids) == count, &
        what // ": the module has CUMLP_<SET>_COUNT constants")
    do i = 1, size(values)
      got = name_of(what, values(i))
      call check(same(got, trim(names(i))), what // " " // trim(ids(i)) // " is named '" // got // &
          "', want '" // trim(names(i)) // "'")
      value = -1
      status = parse(what, trim(names(i)), value)
      call check_parsed(status, value, values(i), what // " from name '" // trim(names(i)) // "'")
      value = -1
      status = parse(what, ids(i), value)
      call check_parsed(status, value, values(i), what // " from identifier '" // ids(i) // "'")
    end do
    call check(same(name_of(what, count), "unknown"), &
        what // ": the name of COUNT is " // name_of(what, count))
    call check(.not. same(name_of(what, count - 1_c_int), "unknown"), &
        what // ": COUNT - 1 has no name")
    call check(same(name_of(what, -1_c_int), "unknown"), &
        what // ": the name of -1 is " // name_of(what, -1_c_int))

    ! An unknown name: CUMLP_ERROR_INVALID_VALUE, the value unchanged, the names in the message.
    kept = values(size(values))
    value = kept
    status = parse(what, "no-such-name", value)
    call check(status == CUMLP_ERROR_INVALID_VALUE, what // " 'no-such-name': " // &
        cumlp_status_string(status) // ", want CUMLP_ERROR_INVALID_VALUE")
    call check(value == kept, what // " 'no-such-name': the value changed")
    msg = cumlp_last_error(c_null_ptr)
    list = trim(names(1))
    do i = 2, size(names)
      if (i < size(names)) then
        list = list // ", " // trim(names(i))
      else
        list = list // " or " // trim(names(i))
      end if
    end do
    call check(index(msg, "'no-such-name'") > 0 .and. index(msg, list) > 0, &
        what // ": message '" // msg // "' lacks 'no-such-name' or '" // list // "'")
  end subroutine

  ! Whether parser i (1 .. 7 the wrappers cumlp_<set>_from_name, 8 .. 14 the raw interfaces
  ! cumlp_c_<set>_from_name, sets in the order backend, activation, loss, init, optimizer,
  ! schedule, precision, as test_named_values lists them; 15 and 16 the task's wrapper and raw
  ! interface, 17 and 18 the transport's) returns CUMLP_ERROR_INVALID_VALUE for an unknown
  ! name and keeps the value stored just before the call. With INTENT(OUT) it would not: gfortran
  ! -O3 drops that store (an unoptimized build keeps it, and cannot see the difference). The store
  ! is in every branch (one before the select is kept), and the value differs from parser to
  ! parser, so that one stored for an earlier call, in the same stack slot, does not hide it.
  logical function parser_keeps_value(i)
    integer, intent(in) :: i
    integer(c_int) :: value, status
    select case (i)
    case (1)
      value = 100 + i
      status = cumlp_backend_from_name("?", value)
    case (2)
      value = 100 + i
      status = cumlp_activation_from_name("?", value)
    case (3)
      value = 100 + i
      status = cumlp_loss_from_name("?", value)
    case (4)
      value = 100 + i
      status = cumlp_init_from_name("?", value)
    case (5)
      value = 100 + i
      status = cumlp_optimizer_from_name("?", value)
    case (6)
      value = 100 + i
      status = cumlp_schedule_from_name("?", value)
    case (7)
      value = 100 + i
      status = cumlp_precision_from_name("?", value)
    case (8)
      value = 100 + i
      status = cumlp_c_backend_from_name("?" // c_null_char, value)
    case (9)
      value = 100 + i
      status = cumlp_c_activation_from_name("?" // c_null_char, value)
    case (10)
      value = 100 + i
      status = cumlp_c_loss_from_name("?" // c_null_char, value)
    case (11)
      value = 100 + i
      status = cumlp_c_init_from_name("?" // c_null_char, value)
    case (12)
      value = 100 + i
      status = cumlp_c_optimizer_from_name("?" // c_null_char, value)
    case (13)
      value = 100 + i
      status = cumlp_c_schedule_from_name("?" // c_null_char, value)
    case (14)
      value = 100 + i
      status = cumlp_c_precision_from_name("?" // c_null_char, value)
    case (15)
      value = 100 + i
      status = cumlp_task_from_name("?", value)
    case (16)
      value = 100 + i
      status = cumlp_c_task_from_name("?" // c_null_char, value)
    case (17)
      value = 100 + i
      status = cumlp_transport_from_name("?", value)
    case (18)
      value = 100 + i
      status = cumlp_c_transport_from_name("?" // c_null_char, value)
    case default
      error stop "parser_keeps_value: no such parser"
    end select
    parser_keeps_value = status == CUMLP_ERROR_INVALID_VALUE .and. value == 100 + i
  end function

  ! The module's copy of the named-value lists against the library (see check_named_set), the
  ! statuses (each is named "CUMLP_" // its identifier by cumlp_status_string), and the parsers'
  ! INTENT(INOUT) value (see parser_keeps_value).
  subroutine test_named_values()
    integer(c_int), parameter :: statuses(*) = [CUMLP_SUCCESS, CUMLP_ERROR_INVALID_VALUE, &
        CUMLP_ERROR_ALLOC_FAILED, CUMLP_ERROR_NOT_SUPPORTED, CUMLP_ERROR_NO_DEVICE, &
        CUMLP_ERROR_DEVICE, CUMLP_ERROR_IO, CUMLP_ERROR_FORMAT, CUMLP_ERROR_TRUNCATED, &
        CUMLP_ERROR_SIZE_LIMIT, CUMLP_ERROR_SHAPE_MISMATCH, CUMLP_ERROR_CHECKSUM, &
        CUMLP_ERROR_NON_FINITE, CUMLP_ERROR_INTERNAL, CUMLP_STEP_SKIPPED, &
        CUMLP_ERROR_COMMUNICATION]
    character(20), parameter :: status_ids(*) = [character(20) :: "SUCCESS", &
        "ERROR_INVALID_VALUE", "ERROR_ALLOC_FAILED", "ERROR_NOT_SUPPORTED", "ERROR_NO_DEVICE", &
        "ERROR_DEVICE", "ERROR_IO", "ERROR_FORMAT", "ERROR_TRUNCATED", "ERROR_SIZE_LIMIT", &
        "ERROR_SHAPE_MISMATCH", "ERROR_CHECKSUM", "ERROR_NON_FINITE", "ERROR_INTERNAL", &
        "STEP_SKIPPED", "ERROR_COMMUNICATION"]
    character(28), parameter :: parsers(*) = [character(28) :: "cumlp_backend_from_name", &
        "cumlp_activation_from_name", "cumlp_loss_from_name", "cumlp_init_from_name", &
        "cumlp_optimizer_from_name", "cumlp_schedule_from_name", "cumlp_precision_from_name", &
        "cumlp_c_backend_from_name", "cumlp_c_activation_from_name", "cumlp_c_loss_from_name", &
        "cumlp_c_init_from_name", "cumlp_c_optimizer_from_name", "cumlp_c_schedule_from_name", &
        "cumlp_c_precision_from_name", "cumlp_task_from_name", "cumlp_c_task_from_name", &
        "cumlp_transport_from_name", "cumlp_c_transport_from_name"]
    integer(c_int) :: status, value
    integer :: i

    call check(size(statuses) == CUMLP_STATUS_COUNT, "the module has CUMLP_STATUS_COUNT statuses")
    do i = 1, size(statuses)
      call check(same(cumlp_status_string(statuses(i)), "CUMLP_" // trim(status_ids(i))), &
          "status string of CUMLP_" // trim(status_ids(i)) // " is " // &
          cumlp_status_string(statuses(i)))
    end do
    call check(same(cumlp_status_string(CUMLP_STATUS_COUNT), "CUMLP_ERROR_UNKNOWN"), &
        "status string of CUMLP_STATUS_COUNT")
    call check(.not. same(cumlp_status_string(CUMLP_STATUS_COUNT - 1_c_int), &
        "CUMLP_ERROR_UNKNOWN"), "status string of CUMLP_STATUS_COUNT - 1")

    call check_named_set("backend", &
        [CUMLP_BACKEND_AUTO, CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA], &
        CUMLP_BACKEND_COUNT, [character(9) :: "auto", "reference", "cpu", "cuda"], &
        [character(12) :: "auto", "reference", "cpu", "cuda"])
    call check_named_set("precision", &
        [CUMLP_PRECISION_FP32, CUMLP_PRECISION_TF32, CUMLP_PRECISION_BF16, CUMLP_PRECISION_FP16], &
        CUMLP_PRECISION_COUNT, [character(4) :: "fp32", "tf32", "bf16", "fp16"], &
        [character(4) :: "fp32", "tf32", "bf16", "fp16"])
    call check_named_set("activation", &
        [CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID, CUMLP_ACT_TANH, CUMLP_ACT_RELU, &
        CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX], CUMLP_ACTIVATION_COUNT, &
        [character(10) :: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softmax"], &
        [character(12) :: "identity", "sigmoid", "tanh", "relu", "leaky_relu", "gelu", "softmax"])
    ! The identifiers of the losses are the names cumlp 0.1.0 wrote in checkpoints.
    call check_named_set("loss", &
        [CUMLP_LOSS_SQUARED_ERROR, CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, &
        CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY], CUMLP_LOSS_COUNT, &
        [character(3) :: "mse", "ce", "bce"], &
        [character(32) :: "squared_error", "softmax_cross_entropy", "sigmoid_binary_cross_entropy"])
    call check_named_set("init", &
        [CUMLP_INIT_NORMAL, CUMLP_INIT_UNIFORM, CUMLP_INIT_XAVIER_NORMAL, &
        CUMLP_INIT_XAVIER_UNIFORM, CUMLP_INIT_HE_NORMAL, CUMLP_INIT_HE_UNIFORM], CUMLP_INIT_COUNT, &
        [character(13) :: "normal", "uniform", "xavier-normal", "xavier", "he-normal", "he"], &
        [character(16) :: "normal", "uniform", "xavier_normal", "xavier_uniform", "he_normal", &
        "he_uniform"])
    call check_named_set("optimizer", &
        [CUMLP_OPT_SGD, CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM, CUMLP_OPT_ADAMW, &
         CUMLP_OPT_ADAMAX, CUMLP_OPT_NADAM, CUMLP_OPT_RMSPROP, CUMLP_OPT_ADAGRAD, &
         CUMLP_OPT_ADADELTA], &
        CUMLP_OPTIMIZER_COUNT, [character(8) :: "sgd", "momentum", "nesterov", "adam", "adamw", &
        "adamax", "nadam", "rmsprop", "adagrad", "adadelta"], &
        [character(12) :: "sgd", "momentum", "nesterov", "adam", "adamw", "adamax", "nadam", &
        "rmsprop", "adagrad", "adadelta"])
    call check_named_set("schedule", &
        [CUMLP_LR_CONSTANT, CUMLP_LR_STEP, CUMLP_LR_EXPONENTIAL, CUMLP_LR_COSINE, &
         CUMLP_LR_MULTISTEP, CUMLP_LR_LINEAR, CUMLP_LR_POLY], &
        CUMLP_SCHEDULE_COUNT, [character(9) :: "constant", "step", "exp", "cosine", "multistep", &
        "linear", "poly"], &
        [character(12) :: "constant", "step", "exponential", "cosine", "multistep", "linear", &
        "poly"])
    call check_named_set("task", [CUMLP_TASK_UNKNOWN, CUMLP_TASK_CLASSIFY, CUMLP_TASK_REGRESS], &
        CUMLP_TASK_COUNT, [character(8) :: "unknown", "classify", "regress"], &
        [character(8) :: "unknown", "classify", "regress"])
    call check_named_set("transport", &
        [CUMLP_TRANSPORT_AUTO, CUMLP_TRANSPORT_MPI, CUMLP_TRANSPORT_MPI_HOST, &
         CUMLP_TRANSPORT_MPI_DEVICE, CUMLP_TRANSPORT_NCCL], CUMLP_TRANSPORT_COUNT, &
        [character(10) :: "auto", "mpi", "mpi-host", "mpi-device", "nccl"], &
        [character(12) :: "auto", "mpi", "mpi_host", "mpi_device", "nccl"])
    call check_named_set("epilogue setting", &
        [CUMLP_EPILOGUES_OFF, CUMLP_EPILOGUES_RELU, CUMLP_EPILOGUES_ALL], CUMLP_EPILOGUES_COUNT, &
        [character(4) :: "off", "relu", "all"], [character(4) :: "off", "relu", "all"])

    ! Trailing blanks are trimmed; an unknown name leaves the value as it was, here too in a
    ! variable of this procedure that the caller reads right after the call.
    value = CUMLP_ACT_TANH
    status = cumlp_activation_from_name("relu   ", value)
    call check_parsed(status, value, CUMLP_ACT_RELU, "activation 'relu   '")
    value = CUMLP_ACT_TANH
    status = cumlp_activation_from_name("swish", value)
    call check(status == CUMLP_ERROR_INVALID_VALUE, "activation 'swish': " // &
        cumlp_status_string(status))
    call check(value == CUMLP_ACT_TANH, "activation 'swish': the value changed")
    call check(index(cumlp_last_error(c_null_ptr), "identity, sigmoid, tanh, relu, leaky_relu, " &
        // "gelu or softmax") > 0, "activation 'swish': " // cumlp_last_error(c_null_ptr))
    value = CUMLP_LOSS_SQUARED_ERROR
    status = cumlp_loss_from_name("", value)
    call check(status == CUMLP_ERROR_INVALID_VALUE, "loss '': " // cumlp_status_string(status))
    call check(value == CUMLP_LOSS_SQUARED_ERROR, "loss '': the value changed")
    value = CUMLP_OPT_SGD
    status = cumlp_optimizer_from_name("adam", value)
    call check_parsed(status, value, CUMLP_OPT_ADAM, "optimizer 'adam'")
    call check(same(cumlp_init_name(CUMLP_INIT_HE_UNIFORM), "he"), "init name of HE_UNIFORM")
    ! The raw interfaces take C strings as they are (no blanks trimmed).
    value = -1
    status = cumlp_c_schedule_from_name("cosine" // c_null_char, value)
    call check_parsed(status, value, CUMLP_LR_COSINE, "cumlp_c_schedule_from_name('cosine')")
    value = CUMLP_LR_STEP
    status = cumlp_c_schedule_from_name("cosine " // c_null_char, value)
    call check(status == CUMLP_ERROR_INVALID_VALUE, "cumlp_c_schedule_from_name('cosine '): " // &
        cumlp_status_string(status))
    call check(value == CUMLP_LR_STEP, "cumlp_c_schedule_from_name('cosine '): the value changed")
    call check(c_associated(cumlp_c_loss_name(CUMLP_LOSS_COUNT)), "cumlp_c_loss_name is not NULL")

    ! Every parser, wrapper and raw, keeps the value on failure (see parser_keeps_value).
    do i = 1, size(parsers)
      call check(parser_keeps_value(i), trim(parsers(i)) // &
          "('?'): CUMLP_ERROR_INVALID_VALUE and the value kept")
    end do
  end subroutine

  subroutine test_layouts()
    type(cumlp_context_options), target :: co
    type(cumlp_network_options), target :: no
    type(cumlp_optimizer_options), target :: oo
    type(cumlp_csv_options), target :: cv
    type(cumlp_fit_progress), target :: fp
    type(cumlp_fit_options), target :: fo
    type(cumlp_fit_result), target :: fr
    type(cumlp_eval_result), target :: er
    type(cumlp_model_info), target :: mi
    type(cumlp_loss_scaler), target :: ls
    type(cumlp_step_summary), target :: ss
    call compare_layout(0_c_int, "cumlp_context_options", c_sizeof(co), c_loc(co), &
        [c_loc(co%backend), c_loc(co%device), c_loc(co%stream), c_loc(co%precision), &
         c_loc(co%num_threads)])
    call compare_layout(1_c_int, "cumlp_network_options", c_sizeof(no), c_loc(no), &
        [c_loc(no%loss), c_loc(no%init), c_loc(no%init_scale), c_loc(no%bias_init), &
         c_loc(no%leaky_relu_slope), c_loc(no%seed)])
    call compare_layout(2_c_int, "cumlp_optimizer_options", c_sizeof(oo), c_loc(oo), &
        [c_loc(oo%type), c_loc(oo%learning_rate), c_loc(oo%momentum), c_loc(oo%weight_decay), &
         c_loc(oo%beta1), c_loc(oo%beta2), c_loc(oo%epsilon), c_loc(oo%alpha), c_loc(oo%rho), &
         c_loc(oo%centered), c_loc(oo%lr_decay), c_loc(oo%initial_accumulator_value), &
         c_loc(oo%momentum_decay), c_loc(oo%clip_norm), c_loc(oo%clip_value), &
         c_loc(oo%non_finite_error)])
    call compare_layout(3_c_int, "cumlp_csv_options", c_sizeof(cv), c_loc(cv), &
        [c_loc(cv%has_header), c_loc(cv%label_column), c_loc(cv%num_classes), &
         c_loc(cv%delimiter)])
    call compare_layout(4_c_int, "cumlp_fit_progress", c_sizeof(fp), c_loc(fp), &
        [c_loc(fp%epoch), c_loc(fp%end_of_epoch), c_loc(fp%batch), &
         c_loc(fp%batches_per_epoch), c_loc(fp%steps), c_loc(fp%learning_rate), &
         c_loc(fp%train_loss), c_loc(fp%train_accuracy), c_loc(fp%validation_loss), &
         c_loc(fp%validation_accuracy), c_loc(fp%validation_mse), c_loc(fp%seconds), &
         c_loc(fp%skipped_steps), c_loc(fp%gradient_norm), c_loc(fp%mean_gradient_norm)])
    call compare_layout(5_c_int, "cumlp_fit_options", c_sizeof(fo), c_loc(fo), &
        [c_loc(fo%epochs), c_loc(fo%batch_size), c_loc(fo%shuffle), c_loc(fo%seed), &
         c_loc(fo%schedule), c_loc(fo%lr_gamma), c_loc(fo%lr_step_epochs), c_loc(fo%lr_min), &
         c_loc(fo%target_loss), c_loc(fo%patience), c_loc(fo%min_delta), &
         c_loc(fo%restore_best), c_loc(fo%callback), c_loc(fo%user_data), &
         c_loc(fo%callback_every), c_loc(fo%max_consecutive_skips), c_loc(fo%warmup_epochs), &
         c_loc(fo%milestones), c_loc(fo%num_milestones), c_loc(fo%lr_power)])
    call compare_layout(6_c_int, "cumlp_fit_result", c_sizeof(fr), c_loc(fr), &
        [c_loc(fr%epochs_run), c_loc(fr%stop_reason), c_loc(fr%steps), c_loc(fr%train_loss), &
         c_loc(fr%train_accuracy), c_loc(fr%validation_loss), c_loc(fr%validation_accuracy), &
         c_loc(fr%validation_mse), c_loc(fr%best_epoch), c_loc(fr%best_validation_loss), &
         c_loc(fr%seconds), c_loc(fr%skipped_steps)])
    call compare_layout(7_c_int, "cumlp_eval_result", c_sizeof(er), c_loc(er), &
        [c_loc(er%loss), c_loc(er%accuracy), c_loc(er%mse)])
    call compare_layout(8_c_int, "cumlp_model_info", c_sizeof(mi), c_loc(mi), &
        [c_loc(mi%task), c_loc(mi%num_classes), c_loc(mi%label_column)])
    call compare_layout(9_c_int, "cumlp_loss_scaler", c_sizeof(ls), c_loc(ls), &
        [c_loc(ls%scale), c_loc(ls%growth_factor), c_loc(ls%backoff_factor), &
         c_loc(ls%growth_interval), c_loc(ls%clean_steps), c_loc(ls%overflows)])
    call compare_layout(10_c_int, "cumlp_step_summary", c_sizeof(ss), c_loc(ss), &
        [c_loc(ss%steps), c_loc(ss%taken), c_loc(ss%skipped), c_loc(ss%failed), c_loc(ss%loss), &
         c_loc(ss%loss_samples)])
  end subroutine

  ! The defaults the manual lists, read through the Fortran types: a second check of the layout.
  subroutine test_defaults()
    type(cumlp_context_options) :: co
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    type(cumlp_csv_options) :: cv
    type(cumlp_fit_options) :: fo
    type(cumlp_model_info) :: mi
    call check_ok(cumlp_model_info_defaults(mi), "model info defaults", c_null_ptr)
    call check(mi%task == CUMLP_TASK_UNKNOWN .and. mi%num_classes == 0 .and. &
        mi%label_column == -1, "model info defaults' values")
    call check_ok(cumlp_context_defaults(co), "context defaults", c_null_ptr)
    call check(co%backend == CUMLP_BACKEND_AUTO .and. co%device == 0 .and. &
        .not. c_associated(co%stream) .and. co%precision == CUMLP_PRECISION_FP32 .and. &
        co%num_threads == 0, "context defaults' values")
    call check_ok(cumlp_network_defaults(no), "network defaults", c_null_ptr)
    call check(no%loss == CUMLP_LOSS_SQUARED_ERROR .and. no%init == CUMLP_INIT_XAVIER_UNIFORM &
        .and. no%init_scale == 1d0 .and. no%bias_init == CUMLP_BIAS_ZERO .and. &
        no%leaky_relu_slope == 0.01d0 .and. no%seed == 42_c_int64_t, "network defaults' values")
    call check_ok(cumlp_optimizer_defaults(oo), "optimizer defaults", c_null_ptr)
    call check(oo%type == CUMLP_OPT_SGD .and. oo%learning_rate == 0.01d0 .and. &
        oo%momentum == 0.9d0 .and. oo%weight_decay == 0d0 .and. oo%beta1 == 0.9d0 .and. &
        oo%beta2 == 0.999d0 .and. oo%epsilon == 1d-8 .and. oo%alpha == 0.99d0 .and. &
        oo%rho == 0.9d0 .and. oo%centered == 0 .and. oo%lr_decay == 0d0 .and. &
        oo%initial_accumulator_value == 0d0 .and. oo%momentum_decay == 4d-3, &
        "optimizer defaults' values")
    call check_ok(cumlp_optimizer_defaults_for(CUMLP_OPT_ADAMW, oo), "adamw defaults", c_null_ptr)
    call check(oo%type == CUMLP_OPT_ADAMW .and. oo%learning_rate == 1d-3 .and. &
        oo%weight_decay == 1d-2, "adamw defaults' values")
    call check_ok(cumlp_optimizer_defaults_for(CUMLP_OPT_RMSPROP, oo), "rmsprop defaults", &
        c_null_ptr)
    call check(oo%type == CUMLP_OPT_RMSPROP .and. oo%momentum == 0d0 .and. oo%alpha == 0.99d0, &
        "rmsprop defaults' values")
    call check(cumlp_optimizer_defaults_for(CUMLP_OPTIMIZER_COUNT, oo) == &
        CUMLP_ERROR_INVALID_VALUE, "defaults for an unknown type")
    cv%has_header = 7
    call check_ok(cumlp_csv_defaults(cv), "csv defaults", c_null_ptr)
    call check(cv%has_header == 0 .and. cv%label_column == -1 .and. cv%num_classes == 0 .and. &
        cv%delimiter == ichar(','), "csv defaults' values")
    fo%callback = c_funloc(on_progress)
    fo%user_data = c_loc(sentinel)
    call check_ok(cumlp_fit_defaults(fo), "fit defaults", c_null_ptr)
    call check(fo%epochs == 10 .and. fo%batch_size == 32 .and. fo%shuffle == 1 .and. &
        fo%seed == 1 .and. fo%schedule == CUMLP_LR_CONSTANT .and. fo%lr_gamma == 0.1d0 .and. &
        fo%lr_step_epochs == 10 .and. fo%lr_min == 0d0 .and. fo%target_loss == 0d0 .and. &
        fo%patience == 0 .and. fo%min_delta == 0d0 .and. fo%restore_best == 0 .and. &
        .not. c_associated(fo%callback) .and. .not. c_associated(fo%user_data) .and. &
        fo%callback_every == 0, "fit defaults' values")
  end subroutine

  ! Precisions (bf16 and fp16 only on cuda: the reference backend refuses them and keeps its own),
  ! the epilogue and graph settings (cuda only), and the loss scaler's defaults, set and read back
  ! through the bind(C) type.
  subroutine test_precision_and_loss_scaler()
    type(c_ptr) :: ctx, net
    type(cumlp_network_options) :: no
    type(cumlp_loss_scaler) :: ls, back
    integer(c_int) :: status
    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    call check(cumlp_context_precision(ctx) == CUMLP_PRECISION_FP32, "precision: fp32 at first")
    call check_ok(cumlp_context_set_precision(ctx, CUMLP_PRECISION_TF32), "precision tf32", ctx)
    call check(cumlp_context_set_precision(ctx, CUMLP_PRECISION_BF16) == &
        CUMLP_ERROR_NOT_SUPPORTED, "precision bf16 on the reference backend: not supported")
    call check(index(cumlp_last_error(ctx), "bf16") > 0, "precision bf16: the message names it")
    call check(cumlp_context_precision(ctx) == CUMLP_PRECISION_TF32, "precision: still tf32")
    ! GEMM epilogues and CUDA graphs: off on a backend without them, which refuses them on
    call check(cumlp_context_epilogues(ctx) == CUMLP_EPILOGUES_OFF, "epilogues: off")
    call check(cumlp_context_set_epilogues(ctx, CUMLP_EPILOGUES_RELU) == &
        CUMLP_ERROR_NOT_SUPPORTED, "epilogues relu on the reference backend: not supported")
    call check_ok(cumlp_context_set_epilogues(ctx, CUMLP_EPILOGUES_OFF), "epilogues off", ctx)
    call check(cumlp_context_graphs(ctx) == 0, "graphs: off")
    call check(cumlp_context_set_graphs(ctx, 1_c_int) == CUMLP_ERROR_NOT_SUPPORTED, &
        "graphs on the reference backend: not supported")
    call check_ok(cumlp_context_set_graphs(ctx, 0_c_int), "graphs off", ctx)
    call check_ok(cumlp_loss_scaler_defaults(ls), "loss scaler defaults", c_null_ptr)
    call check(ls%scale == 65536d0 .and. ls%growth_factor == 2d0 .and. &
        ls%backoff_factor == 0.5d0 .and. ls%growth_interval == 2000_c_int64_t .and. &
        ls%clean_steps == 0_c_int64_t .and. ls%overflows == 0_c_int64_t, &
        "loss scaler defaults' values")
    status = cumlp_network_defaults(no)
    call check_ok(cumlp_network_create(ctx, 1_c_int, [2_c_int64_t, 1_c_int64_t], &
        [CUMLP_ACT_SIGMOID], no, net), "network for the loss scaler", ctx)
    ls%scale = 1024d0
    ls%growth_interval = 7_c_int64_t
    ls%overflows = 3_c_int64_t
    call check_ok(cumlp_network_set_loss_scaler(net, ls), "set the loss scaler", ctx)
    call check_ok(cumlp_network_get_loss_scaler(net, back), "get the loss scaler", ctx)
    call check(back%scale == 1024d0 .and. back%growth_interval == 7_c_int64_t .and. &
        back%overflows == 3_c_int64_t .and. back%backoff_factor == 0.5d0, &
        "the loss scaler read back")
    ls%backoff_factor = 2d0
    call check(cumlp_network_set_loss_scaler(net, ls) == CUMLP_ERROR_INVALID_VALUE, &
        "backoff_factor 2: CUMLP_ERROR_INVALID_VALUE")
    call cumlp_network_destroy(net)
    call cumlp_context_destroy(ctx)
  end subroutine

  function new_context(backend) result(ctx)
    integer(c_int), intent(in) :: backend
    type(c_ptr) :: ctx
    type(cumlp_context_options) :: co
    integer(c_int) :: status
    status = cumlp_context_defaults(co)
    co%backend = backend
    status = cumlp_context_create(ctx, co)
    if (status /= CUMLP_SUCCESS) ctx = c_null_ptr
  end function

  ! A tensor holding the columns of host (rows x cols, column-major: the Fortran array as it is).
  function new_tensor(ctx, host) result(t)
    type(c_ptr), intent(in) :: ctx
    real(c_double), intent(in) :: host(:, :)
    type(c_ptr) :: t
    call check_ok(cumlp_tensor_create(ctx, size(host, 1, c_int64_t), size(host, 2, c_int64_t), &
        t), "tensor create", ctx)
    call check_ok(cumlp_tensor_upload_f64(t, host, size(host, kind=c_int64_t)), &
        "tensor upload", ctx)
  end function

  ! Seed 003's worked example: a 2-2-2 sigmoid network, squared error, one SGD step with learning
  ! rate 0.5 and the biases frozen. tol: half a unit of the printed digits on the reference
  ! backend (which keeps the inputs in double); about 1e-6 on the fp32 backends.
  subroutine test_worked_example(backend, tol)
    integer(c_int), intent(in) :: backend
    real(c_double), intent(in) :: tol
    ! W(j, i) is the weight from input i to unit j: w1..w4 = .15 .20 .25 .30 row by row, so the
    ! column-major W1 is [.15, .25, .20, .30]; likewise W2 from w5..w8 = .40 .45 .50 .55.
    real(c_double), parameter :: w1(2, 2) = reshape([0.15d0, 0.25d0, 0.20d0, 0.30d0], [2, 2])
    real(c_double), parameter :: w2(2, 2) = reshape([0.40d0, 0.50d0, 0.45d0, 0.55d0], [2, 2])
    real(c_double), parameter :: b1(2) = [0.35d0, 0.35d0], b2(2) = [0.60d0, 0.60d0]
    real(c_double), parameter :: input(2, 1) = reshape([0.05d0, 0.10d0], [2, 1])
    real(c_double), parameter :: target(2, 1) = reshape([0.01d0, 0.99d0], [2, 1])
    type(c_ptr) :: ctx, net, opt, x, t, y
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    real(c_double) :: loss, out(2, 1), w(2, 2), b(2), params(12), grads(12)
    type(cumlp_step_summary) :: summary
    integer(c_int) :: status
    integer(c_int64_t) :: in_use, peak
    character(:), allocatable :: tag

    if (cumlp_backend_is_built(backend) == 0) return
    ctx = new_context(backend)
    if (.not. c_associated(ctx)) return   ! e.g. a backend with no device here
    tag = "worked example (" // cumlp_backend_name(backend) // "): "
    call check(cumlp_context_backend(ctx) == backend, tag // "context backend")
    call check(len(cumlp_describe(ctx)) > 0, tag // "describe")
    call check_ok(cumlp_context_synchronize(ctx), tag // "synchronize", ctx)

    status = cumlp_network_defaults(no)
    no%loss = CUMLP_LOSS_SQUARED_ERROR
    call check_ok(cumlp_network_create(ctx, 2_c_int, [2_c_int64_t, 2_c_int64_t, 2_c_int64_t], &
        [CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID], no, net), tag // "network create", ctx)
    call check(cumlp_network_num_layers(net) == 2, tag // "num_layers")
    call check(cumlp_network_width(net, 2_c_int) == 2, tag // "width")
    call check(cumlp_network_activation(net, 1_c_int) == CUMLP_ACT_SIGMOID, tag // "activation")
    call check(cumlp_network_loss(net) == CUMLP_LOSS_SQUARED_ERROR, tag // "loss")
    call check(c_associated(cumlp_network_context(net), ctx), tag // "network context")
    call check(cumlp_network_num_parameters(net) == 12, tag // "12 parameters")
    call check_ok(cumlp_context_memory(ctx, in_use, peak), tag // "memory", ctx)
    ! Parameters and gradients: 2 x 12 doubles on the reference backend.
    call check(in_use > 0 .and. peak >= in_use, tag // "memory in use")
    if (backend == CUMLP_BACKEND_REFERENCE) call check(in_use == 192, tag // "192 bytes in use")
    call check_ok(cumlp_network_set_layer_f64(net, 0_c_int, w1, b1), tag // "set layer 0", ctx)
    call check_ok(cumlp_network_set_layer_f64(net, 1_c_int, w2, b2), tag // "set layer 1", ctx)
    if (backend == CUMLP_BACKEND_REFERENCE) then
      ! The flat order: W1, b1, W2, b2, each column-major.
      call check_ok(cumlp_network_get_parameters_f64(net, params, 12_c_int64_t), &
          tag // "get parameters", ctx)
      call check(all(params == [reshape(w1, [4]), b1, reshape(w2, [4]), b2]), &
          tag // "flat parameter order")
    end if

    x = new_tensor(ctx, input)
    t = new_tensor(ctx, target)
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, 1_c_int64_t, y), tag // "tensor y", ctx)
    call check(cumlp_tensor_rows(y) == 2, tag // "y's rows")
    call check(cumlp_tensor_cols(y) == 1, tag // "y's columns")
    call check_ok(cumlp_forward(net, x, y), tag // "forward", ctx)
    call check_ok(cumlp_tensor_download_f64(y, out, 2_c_int64_t), tag // "download", ctx)
    call check_near(out(1, 1), 0.75136507d0, max(tol, 5d-9), tag // "out_o1")
    call check_near(out(2, 1), 0.772928465d0, tol, tag // "out_o2")

    status = cumlp_optimizer_defaults(oo)
    oo%type = CUMLP_OPT_SGD
    oo%learning_rate = 0.5d0
    call check_ok(cumlp_optimizer_create(net, oo, opt), tag // "optimizer create", ctx)
    call check_ok(cumlp_network_freeze(net, 0_c_int, 0_c_int, 1_c_int), tag // "freeze 0", ctx)
    call check_ok(cumlp_network_freeze(net, 1_c_int, 0_c_int, 1_c_int), tag // "freeze 1", ctx)

    ! The gradients of the worked example: dE/dw5 = 0.082167041 (printed to 9 digits).
    call check_ok(cumlp_loss_backward(net, x, t, loss), tag // "loss backward", ctx)
    call check_near(loss, 0.298371109d0, max(tol, 1d-9), tag // "E_total (loss_backward)")
    call check_ok(cumlp_network_get_gradients_f64(net, grads, 12_c_int64_t), &
        tag // "gradients", ctx)
    call check_near(grads(7), 0.082167041d0, max(tol, 5d-10), tag // "dE/dw5")

    call check_ok(cumlp_train_step_async(net, opt, x, t), tag // "queued train step", ctx)
    call check_ok(cumlp_optimizer_sync(opt, summary), tag // "sync", ctx)
    call check(summary%steps == 1 .and. summary%taken == 1 .and. summary%loss_samples == 1, &
        tag // "the summary of one step")
    call check_near(summary%loss, 0.298371109d0, max(tol, 1d-9), tag // "E_total")
    call check(cumlp_optimizer_step_count(opt) == 1, tag // "one step")
    call check_ok(cumlp_network_get_layer_f64(net, 1_c_int, w, b), tag // "get layer 1", ctx)
    call check_near(w(1, 1), 0.35891648d0, max(tol, 1d-9), tag // "w5")
    call check_near(w(1, 2), 0.408666186d0, tol, tag // "w6")
    call check_near(w(2, 1), 0.511301270d0, tol, tag // "w7")
    call check_near(w(2, 2), 0.561370121d0, tol, tag // "w8")
    call check(all(b == real(real(b2, c_float), c_double)) .or. all(b == b2), &
        tag // "frozen b2")
    ! Weights only (biases left out: NULL on the C side).
    call check_ok(cumlp_network_get_layer_f64(net, 0_c_int, weights=w), tag // "get W1", ctx)
    call check_near(w(1, 1), 0.149780716d0, tol, tag // "w1")
    call check_near(w(1, 2), 0.19956143d0, max(tol, 5d-9), tag // "w2")
    call check_near(w(2, 1), 0.24975114d0, max(tol, 5d-9), tag // "w3")
    call check_near(w(2, 2), 0.29950229d0, max(tol, 5d-9), tag // "w4")
    call check_ok(cumlp_evaluate_loss(net, x, t, loss), tag // "evaluate loss", ctx)
    call check_near(loss, 0.2910277737d0, max(tol, 1d-9), tag // "E_total after the step")

    call cumlp_tensor_destroy(y)
    call cumlp_tensor_destroy(x)
    call cumlp_tensor_destroy(t)
    call cumlp_optimizer_destroy(opt)
    call cumlp_network_destroy(net)
    call check_ok(cumlp_context_reset_peak_memory(ctx), tag // "reset peak", ctx)
    call check_ok(cumlp_context_memory(ctx, in_use, peak), tag // "memory after", ctx)
    call check(peak == in_use, tag // "peak reset")
    ! Everything destroyed: nothing held (the cuda backend keeps its reduction scratch).
    if (backend /= CUMLP_BACKEND_CUDA) call check(in_use == 0, tag // "nothing left")
    call cumlp_context_destroy(ctx)
  end subroutine

  ! XOR on the reference backend: a 2-4-1 tanh/sigmoid network with momentum, to 100%; then a
  ! gradient check and checkpoints of the trained network.
  ! Every optimizer from cumlp_optimizer_defaults_for (clipping on for half of them) lowers XOR's
  ! loss and reports its gradient norm; a NaN input skips the step (CUMLP_STEP_SKIPPED), counted.
  subroutine test_every_optimizer()
    use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
    real(c_float) :: xs(2, 4) = reshape([0, 0, 0, 1, 1, 0, 1, 1], [2, 4])
    real(c_float), parameter :: ts(1, 4) = reshape([0, 1, 1, 0], [1, 4])
    type(c_ptr) :: ctx, net, opt, x, t
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    real(c_double) :: first, loss
    integer(c_int) :: type, status
    integer :: i
    character(:), allocatable :: tag

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    status = cumlp_network_defaults(no)
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, 4_c_int64_t, x), "optimizers: x", ctx)
    call check_ok(cumlp_tensor_create(ctx, 1_c_int64_t, 4_c_int64_t, t), "optimizers: t", ctx)
    call check_ok(cumlp_tensor_upload(x, xs, 8_c_int64_t), "optimizers: upload x", ctx)
    call check_ok(cumlp_tensor_upload(t, ts, 4_c_int64_t), "optimizers: upload t", ctx)
    do type = 0, CUMLP_OPTIMIZER_COUNT - 1
      tag = "optimizer " // cumlp_optimizer_name(type) // ": "
      no%seed = 11
      call check_ok(cumlp_network_create(ctx, 2_c_int, [2_c_int64_t, 4_c_int64_t, 1_c_int64_t], &
          [CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID], no, net), tag // "network", ctx)
      call check_ok(cumlp_optimizer_defaults_for(type, oo), tag // "defaults", ctx)
      call check(oo%type == type, tag // "type")
      if (mod(type, 2) == 0) oo%clip_norm = 1d0
      call check_ok(cumlp_optimizer_create(net, oo, opt), tag // "create", ctx)
      call check(cumlp_optimizer_gradient_norm(opt) == -1d0, tag // "no norm before a step")
      call check_ok(cumlp_train_step(net, opt, x, t, first), tag // "first step", ctx)
      call check(cumlp_optimizer_gradient_norm(opt) > 0, tag // "gradient norm")
      do i = 2, 200
        status = cumlp_train_step(net, opt, x, t, loss)
        if (status /= CUMLP_SUCCESS) exit
      end do
      call check_ok(status, tag // "200 steps", ctx)
      call check(loss < first, tag // "the loss falls")
      xs(1, 1) = ieee_value(xs(1, 1), ieee_quiet_nan)
      call check_ok(cumlp_tensor_upload(x, xs, 8_c_int64_t), tag // "upload NaN", ctx)
      call check(cumlp_train_step(net, opt, x, t, loss) == CUMLP_STEP_SKIPPED, &
          tag // "NaN: step skipped")
      ! one check each: gfortran may leave the second operand of .and. unevaluated
      call check(cumlp_optimizer_skipped_steps(opt) == 1, tag // "skipped")
      call check(cumlp_optimizer_step_count(opt) == 200, tag // "skipped, not counted as a step")
      xs(1, 1) = 0
      call check_ok(cumlp_tensor_upload(x, xs, 8_c_int64_t), tag // "upload", ctx)
      call cumlp_optimizer_destroy(opt)
      call cumlp_network_destroy(net)
    end do
    call cumlp_tensor_destroy(x)
    call cumlp_tensor_destroy(t)
    call cumlp_context_destroy(ctx)
  end subroutine

  subroutine test_xor_and_checkpoints()
    real(c_float), parameter :: xs(2, 4) = reshape([0, 0, 0, 1, 1, 0, 1, 1], [2, 4])
    real(c_float), parameter :: ts(1, 4) = reshape([0, 1, 1, 0], [1, 4])
    type(c_ptr) :: ctx, net, opt, x, t, y, net2, opt2, scaler
    type(cumlp_network_options) :: no
    type(cumlp_model_info) :: info
    real(c_float) :: offsets(2), scales(2)
    type(cumlp_optimizer_options) :: oo
    real(c_float) :: out(1, 4), p(17), p2(17)
    real(c_double) :: first, loss, errs(4)
    integer(c_int) :: status
    integer :: i, unit, nbytes
    integer(c_int8_t), allocatable, target :: bytes(:)
    character(:), allocatable :: path

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    call check(c_associated(ctx), "xor: reference context")
    status = cumlp_network_defaults(no)
    no%seed = 11
    call check_ok(cumlp_network_create(ctx, 2_c_int, [2_c_int64_t, 4_c_int64_t, 1_c_int64_t], &
        [CUMLP_ACT_TANH, CUMLP_ACT_SIGMOID], no, net), "xor: network", ctx)
    status = cumlp_optimizer_defaults(oo)
    oo%type = CUMLP_OPT_MOMENTUM
    oo%learning_rate = 0.5d0
    call check_ok(cumlp_optimizer_create(net, oo, opt), "xor: optimizer", ctx)
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, 4_c_int64_t, x), "xor: x", ctx)
    call check_ok(cumlp_tensor_create(ctx, 1_c_int64_t, 4_c_int64_t, t), "xor: t", ctx)
    call check_ok(cumlp_tensor_create(ctx, 1_c_int64_t, 4_c_int64_t, y), "xor: y", ctx)
    call check_ok(cumlp_tensor_upload(x, xs, 8_c_int64_t), "xor: upload x", ctx)
    call check_ok(cumlp_tensor_upload(t, ts, 4_c_int64_t), "xor: upload t", ctx)

    call check_ok(cumlp_train_step(net, opt, x, t, first), "xor: first step", ctx)
    do i = 2, 1999
      status = cumlp_train_step(net, opt, x, t)   ! no loss: C gets NULL
      if (status /= CUMLP_SUCCESS) exit
    end do
    call check_ok(status, "xor: steps without loss", ctx)
    call check_ok(cumlp_train_step(net, opt, x, t, loss), "xor: last step", ctx)
    call check(loss < 0.01d0 * first, "xor: loss falls a hundredfold")
    call check(cumlp_optimizer_step_count(opt) == 2000, "xor: 2000 steps")
    call check_ok(cumlp_forward(net, x, y), "xor: forward", ctx)
    call check_ok(cumlp_tensor_download(y, out, 4_c_int64_t), "xor: download", ctx)
    call check(all((out > 0.5) .eqv. (ts > 0.5)), "xor: 100% accuracy")

    call check_ok(cumlp_gradient_check(net, x, t, 0d0, errs, 4_c_int64_t), "gradient check", ctx)
    call check(all(errs < 1d-6), "gradient check: relative errors < 1e-6")

    ! Checkpoints: save with the optimizer, load it back three ways.
    call check_ok(cumlp_optimizer_set_learning_rate(opt, 0.25d0), "set learning rate", ctx)
    call check(cumlp_optimizer_learning_rate(opt) == 0.25d0, "learning rate")
    path = tmpdir // "/test_fortran.safetensors"
    call check_ok(cumlp_checkpoint_save(net, opt, cumlp_cstr(path)), "checkpoint save", ctx)
    call check_ok(cumlp_network_get_parameters(net, p, 17_c_int64_t), "get parameters", ctx)

    call check_ok(cumlp_checkpoint_load(ctx, cumlp_cstr(path), 0_c_int, net2, opt2), &
        "checkpoint load", ctx)
    call check(c_associated(opt2), "checkpoint load: optimizer")
    call check(cumlp_optimizer_step_count(opt2) == 2000, "checkpoint load: step count")
    call check(cumlp_optimizer_learning_rate(opt2) == 0.25d0, "checkpoint load: learning rate")
    call check_ok(cumlp_network_get_parameters(net2, p2, 17_c_int64_t), "get parameters 2", ctx)
    call check(all(p2 == p), "checkpoint load: parameters")
    call cumlp_optimizer_destroy(opt2)
    call cumlp_network_destroy(net2)

    ! Without opt: the C side gets NULL and creates none.
    call check_ok(cumlp_checkpoint_load(ctx, cumlp_cstr(path), 0_c_int, net2), &
        "checkpoint load without optimizer", ctx)
    call check_ok(cumlp_network_set_parameters(net2, [(0.0_c_float, i = 1, 17)], 17_c_int64_t), &
        "set parameters", ctx)
    call check_ok(cumlp_checkpoint_load_into(net2, c_null_ptr, cumlp_cstr(path), 0_c_int), &
        "checkpoint load into", ctx)
    call check_ok(cumlp_network_get_parameters(net2, p2, 17_c_int64_t), "get parameters 3", ctx)
    call check(all(p2 == p), "checkpoint load into: parameters")
    call cumlp_network_destroy(net2)

    ! From memory: the file's bytes, read with stream access.
    open (newunit=unit, file=path, access="stream", form="unformatted", status="old", &
        action="read")
    inquire (unit=unit, size=nbytes)
    allocate(bytes(nbytes))
    read (unit) bytes
    close (unit)
    call check_ok(cumlp_checkpoint_load_memory(ctx, c_loc(bytes), int(nbytes, c_size_t), &
        0_c_int, net2, opt2), "checkpoint load memory", ctx)
    call check(c_associated(opt2), "checkpoint load memory: optimizer")
    call check_ok(cumlp_network_get_parameters(net2, p2, 17_c_int64_t), "get parameters 4", ctx)
    call check(all(p2 == p), "checkpoint load memory: parameters")
    call cumlp_optimizer_destroy(opt2)
    call cumlp_network_destroy(net2)
    ! With the inputs' scaling and the model info: they come back as they were saved.
    call check_ok(cumlp_scaler_create(ctx, 2_c_int64_t, [0.5_c_float, -1.0_c_float], &
        [2.0_c_float, 0.25_c_float], scaler), "scaler create", ctx)
    status = cumlp_model_info_defaults(info)
    info%task = CUMLP_TASK_CLASSIFY
    info%num_classes = 2
    call check_ok(cumlp_checkpoint_save_with(net, c_null_ptr, scaler, info, cumlp_cstr(path)), &
        "checkpoint save with", ctx)
    call cumlp_scaler_destroy(scaler)
    status = cumlp_model_info_defaults(info)
    call check_ok(cumlp_checkpoint_load_with(ctx, cumlp_cstr(path), 0_c_int, net2, opt2, scaler, &
        info), "checkpoint load with", ctx)
    call check(.not. c_associated(opt2), "checkpoint load with: no optimizer saved")
    call check(info%task == CUMLP_TASK_CLASSIFY .and. info%num_classes == 2 .and. &
        info%label_column == -1, "checkpoint load with: model info")
    call check_ok(cumlp_scaler_get(scaler, offsets, scales, 2_c_int64_t), "scaler get", ctx)
    call check(all(offsets == [0.5_c_float, -1.0_c_float]) .and. &
        all(scales == [2.0_c_float, 0.25_c_float]), "checkpoint load with: scaling")
    call cumlp_scaler_destroy(scaler)
    call cumlp_network_destroy(net2)
    call check_ok(cumlp_checkpoint_load_with(ctx, cumlp_cstr(path), 0_c_int, net2), &
        "checkpoint load with, nothing else", ctx)
    call cumlp_network_destroy(net2)
    open (newunit=unit, file=path, access="stream", form="unformatted", status="old", &
        action="read")
    inquire (unit=unit, size=nbytes)
    deallocate(bytes)
    allocate(bytes(nbytes))
    read (unit) bytes
    close (unit)
    call check_ok(cumlp_checkpoint_load_memory_with(ctx, c_loc(bytes), int(nbytes, c_size_t), &
        0_c_int, net2, scaler=scaler), "checkpoint load memory with", ctx)
    call check(c_associated(scaler), "checkpoint load memory with: scaler")
    call cumlp_scaler_destroy(scaler)
    call cumlp_network_destroy(net2)
    ! A damaged copy (one payload byte changed) fails its checksum.
    bytes(nbytes) = not(bytes(nbytes))
    call check(cumlp_checkpoint_load_memory(ctx, c_loc(bytes), int(nbytes, c_size_t), 0_c_int, &
        net2) == CUMLP_ERROR_CHECKSUM, "damaged checkpoint: CUMLP_ERROR_CHECKSUM")
    call check(.not. c_associated(net2), "damaged checkpoint: no network")
    open (newunit=unit, file=path, status="old")
    close (unit, status="delete")

    call cumlp_tensor_destroy(y)
    call cumlp_tensor_destroy(x)
    call cumlp_tensor_destroy(t)
    call cumlp_optimizer_destroy(opt)
    call cumlp_network_destroy(net)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! Error statuses come back as the documented codes, with a message, and leave no handle.
  subroutine test_errors()
    type(c_ptr) :: ctx, net, t
    type(cumlp_context_options) :: co
    type(cumlp_network_options) :: no
    integer(c_int) :: status
    real(c_double) :: host(3)

    status = cumlp_context_defaults(co)
    co%backend = 99
    call check(cumlp_context_create(ctx, co) == CUMLP_ERROR_INVALID_VALUE, &
        "context with backend 99: CUMLP_ERROR_INVALID_VALUE")
    call check(.not. c_associated(ctx), "context with backend 99: no context")
    call check(len(cumlp_last_error(c_null_ptr)) > 0, "context error message")

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    call check(len(cumlp_last_error(ctx)) == 0, "no error yet")
    status = cumlp_network_defaults(no)
    ! A zero width.
    status = cumlp_network_create(ctx, 2_c_int, [2_c_int64_t, 0_c_int64_t, 1_c_int64_t], &
        [CUMLP_ACT_SIGMOID, CUMLP_ACT_SIGMOID], no, net)
    call check(status == CUMLP_ERROR_INVALID_VALUE, "zero width: CUMLP_ERROR_INVALID_VALUE")
    call check(.not. c_associated(net), "zero width: no network")
    call check(len(cumlp_last_error(ctx)) > 0, "zero width: message")
    ! Softmax without its loss.
    status = cumlp_network_create(ctx, 1_c_int, [2_c_int64_t, 3_c_int64_t], [CUMLP_ACT_SOFTMAX], &
        no, net)
    call check(status == CUMLP_ERROR_INVALID_VALUE, "softmax with squared error")
    ! A count that does not match the tensor.
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, 2_c_int64_t, t), "tensor 2x2", ctx)
    call check(cumlp_tensor_upload_f64(t, host, 3_c_int64_t) == CUMLP_ERROR_INVALID_VALUE, &
        "upload of 3 into 2x2: CUMLP_ERROR_INVALID_VALUE")
    call check(len(cumlp_last_error(ctx)) > 0, "upload: message")
    call cumlp_tensor_destroy(t)
    ! A file that does not exist.
    call check(cumlp_checkpoint_load(ctx, cumlp_cstr(tmpdir // "/no/such/file.safetensors"), &
        0_c_int, net) == CUMLP_ERROR_IO, "missing checkpoint: CUMLP_ERROR_IO")
    call check(.not. c_associated(net), "missing checkpoint: no network")
    ! NULL handles.
    call check(cumlp_context_backend(c_null_ptr) == -1, "backend of NULL is -1")
    call check(cumlp_tensor_rows(c_null_ptr) == -1, "rows of NULL is -1")
    call check(cumlp_forward(c_null_ptr, c_null_ptr, c_null_ptr) == CUMLP_ERROR_INVALID_VALUE, &
        "forward of NULLs")
    call cumlp_network_destroy(c_null_ptr)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! ---- datasets, scalers, fit ------------------------------------------------------------------

  ! Checks that a call returned the status want, that the output handle out is NULL (set it to
  ! c_loc(sentinel) before the call; pass c_null_ptr where there is none) and, with has, that the
  ! message of ctx (c_null_ptr: the per-thread one) contains has.
  subroutine check_fails(status, want, out, ctx, what, has)
    integer(c_int), intent(in) :: status, want
    type(c_ptr), intent(in) :: out, ctx
    character(*), intent(in) :: what
    character(*), intent(in), optional :: has
    character(:), allocatable :: msg
    msg = cumlp_last_error(ctx)
    if (status == want) then
      passed = passed + 1
    else
      failed = failed + 1
      print '("FAILED: ", a, ": got ", a, " (", a, "), want ", a)', what, &
          cumlp_status_string(status), msg, cumlp_status_string(want)
    end if
    call check(.not. c_associated(out), what // ": output handle NULL")
    if (present(has)) then
      if (index(msg, has) > 0) then
        passed = passed + 1
      else
        failed = failed + 1
        print '("FAILED: ", a, ": message """, a, """ lacks """, a, """")', what, msg, has
      end if
    end if
  end subroutine

  subroutine write_text(path, text)
    character(*), intent(in) :: path, text
    integer :: unit
    open (newunit=unit, file=path, access="stream", form="unformatted", status="replace", &
        action="write")
    write (unit) text
    close (unit)
  end subroutine

  subroutine write_bytes(path, b)
    character(*), intent(in) :: path
    integer(c_int8_t), intent(in) :: b(:)
    integer :: unit
    open (newunit=unit, file=path, access="stream", form="unformatted", status="replace", &
        action="write")
    write (unit) b
    close (unit)
  end subroutine

  subroutine delete_file(path)
    character(*), intent(in) :: path
    integer :: unit
    open (newunit=unit, file=path, status="old")
    close (unit, status="delete")
  end subroutine

  ! [samples, features, outputs, classes] of a dataset (one array: no impure calls joined by
  ! .and., which gfortran may skip).
  function dims(ds) result(d)
    type(c_ptr), intent(in) :: ds
    integer(c_int64_t) :: d(4)
    d(1) = cumlp_dataset_num_samples(ds)
    d(2) = cumlp_dataset_num_features(ds)
    d(3) = cumlp_dataset_num_outputs(ds)
    d(4) = cumlp_dataset_num_classes(ds)
  end function

  ! Byte values 0 .. 255 as c_int8_t.
  function bytes(v) result(b)
    integer, intent(in) :: v(:)
    integer(c_int8_t) :: b(size(v))
    b = int(merge(v - 256, v, v > 127), c_int8_t)
  end function

  ! CSV from memory and from a file: a header, padding, a blank line, "\r\n", no final newline;
  ! classes counted; another delimiter and label column; regression targets.
  subroutine test_csv()
    character, parameter :: cr = achar(13)
    real(c_float), parameter :: want_x(2, 4) = reshape([1.5_c_float, -2.0_c_float, 3.0_c_float, &
        0.4_c_float, -0.25_c_float, 7.0_c_float, 8.0_c_float, 9.0_c_float], [2, 4])
    real(c_float), parameter :: want_t(3, 4) = reshape([0.0_c_float, 1.0_c_float, 0.0_c_float, &
        1.0_c_float, 0.0_c_float, 0.0_c_float, 0.0_c_float, 0.0_c_float, 1.0_c_float, &
        0.0_c_float, 1.0_c_float, 0.0_c_float], [3, 4])
    character(:), allocatable :: text, path
    type(c_ptr) :: ctx, ds, ds2
    type(cumlp_csv_options) :: cv
    real(c_float), pointer :: x(:, :), t(:, :), x2(:, :), t2(:, :)
    integer(c_int) :: status
    integer(c_int64_t) :: i

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    text = "a,b,class" // nl // "1.5,-2,1" // nl // " 3 , 4e-1 , 0" // nl // nl // &
        "-0.25,7,2" // cr // nl // "8,9,1"
    status = cumlp_csv_defaults(cv)
    cv%has_header = 1
    cv%num_classes = -1
    call check_ok(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        "csv memory", ctx)
    call check(all(dims(ds) == [4, 2, 3, 3]), "csv: 4 samples, 2 features, 3 classes counted")
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(associated(x) .and. associated(t), "csv: features and targets")
    call check(all(shape(x) == [2, 4]) .and. all(shape(t) == [3, 4]), "csv: array shapes")
    call check(all(x == want_x), "csv: features")
    call check(all(t == want_t), "csv: one-hot targets")
    call check(all([(cumlp_dataset_label(ds, i), i = 0, 3)] == [1, 0, 2, 1]), "csv: labels")
    call check(all([cumlp_dataset_label(ds, 4_c_int64_t), cumlp_dataset_label(ds, -1_c_int64_t)] &
        == -1), "csv: label out of range is -1")
    ! The pointer is the dataset's memory.
    x(2, 3) = 42
    x2 => cumlp_dataset_features(ds)
    call check(x2(2, 3) == 42, "csv: features pointer writes the dataset")
    x(2, 3) = 7

    ! The same text from a file.
    path = tmpdir // "/test_fortran.csv"
    call write_text(path, text)
    call check_ok(cumlp_dataset_read_csv(ctx, cumlp_cstr(path), cv, ds2), "csv file", ctx)
    x2 => cumlp_dataset_features(ds2)
    t2 => cumlp_dataset_targets(ds2)
    call check(all(dims(ds2) == [4, 2, 3, 3]) .and. all(x2 == want_x) .and. all(t2 == want_t), &
        "csv file: same data as from memory")
    call delete_file(path)
    call cumlp_dataset_destroy(ds2)
    call cumlp_dataset_destroy(ds)

    ! ';' delimiter, target in column 0, regression.
    text = "2.5;1;2" // nl // "-1;3;4" // nl
    status = cumlp_csv_defaults(cv)
    cv%delimiter = ichar(';')
    cv%label_column = 0
    call check_ok(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        "csv regression", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(all(dims(ds) == [2, 2, 1, 0]), "csv regression: 1 output, 0 classes")
    call check(all(x == reshape([1.0_c_float, 2.0_c_float, 3.0_c_float, 4.0_c_float], [2, 2])), &
        "csv regression: features")
    call check(all(t == reshape([2.5_c_float, -1.0_c_float], [1, 2])), "csv regression: targets")
    call check(cumlp_dataset_label(ds, 0_c_int64_t) == -1, "csv regression: no label")
    call cumlp_dataset_destroy(ds)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! FANN from memory (regression and classification) and from a file.
  subroutine test_fann()
    character(:), allocatable :: text, path
    type(c_ptr) :: ctx, ds, ds2
    real(c_float), pointer :: x(:, :), t(:, :), x2(:, :), t2(:, :)
    integer(c_int64_t) :: i

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    text = "4 2 1" // nl // "0 0" // nl // "0" // nl // "0 1" // nl // "1" // nl // "1 0" // nl &
        // "1" // nl // "1 1" // nl // "0" // nl
    call check_ok(cumlp_dataset_read_fann_memory(ctx, text, len(text, c_size_t), 0_c_int, ds), &
        "fann memory", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(all(dims(ds) == [4, 2, 1, 0]), "fann: 4 samples, 2 inputs, 1 output, regression")
    call check(all(x == reshape([0, 0, 0, 1, 1, 0, 1, 1], [2, 4])), "fann: inputs")
    call check(all(t == reshape([0, 1, 1, 0], [1, 4])), "fann: outputs")
    call cumlp_dataset_destroy(ds)

    ! Classification: the class is the largest output. No final newline.
    text = "3 1 2" // nl // "0.5" // nl // "0.9 0.1" // nl // "-1" // nl // "0.2 0.8" // nl // &
        "2" // nl // "0.3 0.7"
    call check_ok(cumlp_dataset_read_fann_memory(ctx, text, len(text, c_size_t), 1_c_int, ds), &
        "fann classification", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(all(dims(ds) == [3, 1, 2, 2]), "fann classification: 2 classes")
    call check(all(x == reshape([0.5_c_float, -1.0_c_float, 2.0_c_float], [1, 3])), &
        "fann classification: inputs")
    call check(all([(cumlp_dataset_label(ds, i), i = 0, 2)] == [0, 1, 1]), &
        "fann classification: labels")
    call check(all(t == reshape([1, 0, 0, 1, 0, 1], [2, 3])), "fann classification: one-hot")

    path = tmpdir // "/test_fortran.fann"
    call write_text(path, text)
    call check_ok(cumlp_dataset_read_fann(ctx, cumlp_cstr(path), 1_c_int, ds2), "fann file", ctx)
    x2 => cumlp_dataset_features(ds2)
    t2 => cumlp_dataset_targets(ds2)
    call check(all(dims(ds2) == [3, 1, 2, 2]) .and. all(x2 == x) .and. all(t2 == t), &
        "fann file: same data as from memory")
    call delete_file(path)
    call cumlp_dataset_destroy(ds2)
    call cumlp_dataset_destroy(ds)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! IDX from memory and from files: three 2 x 2 unsigned-byte images and their labels.
  subroutine test_idx()
    integer, parameter :: pixels(12) = [0, 255, 128, 7, 1, 2, 3, 4, 200, 100, 50, 25]
    integer(c_int8_t), allocatable, target :: images(:), labels(:), short(:)
    character(:), allocatable :: ipath, lpath
    type(c_ptr) :: ctx, ds, ds2
    real(c_float), pointer :: x(:, :), t(:, :), x2(:, :)
    integer(c_int64_t) :: i

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    images = bytes([0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2, pixels])
    labels = bytes([0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1])
    call check_ok(cumlp_dataset_read_idx_memory(ctx, c_loc(images), size(images, kind=c_size_t), &
        c_loc(labels), size(labels, kind=c_size_t), 0_c_int, ds), "idx memory", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(all(dims(ds) == [3, 4, 3, 3]), "idx: 3 samples of 4 features, 3 classes")
    call check(all(x == reshape(real(pixels, c_float), [4, 3])), "idx: pixel values as stored")
    call check(all([(cumlp_dataset_label(ds, i), i = 0, 2)] == [2, 0, 1]), "idx: labels")
    call check(all(sum(t, dim=1) == 1), "idx: one-hot columns")
    call cumlp_dataset_destroy(ds)

    call check_ok(cumlp_dataset_read_idx_memory(ctx, c_loc(images), size(images, kind=c_size_t), &
        c_loc(labels), size(labels, kind=c_size_t), 5_c_int, ds), "idx with 5 classes", ctx)
    call check(all(dims(ds) == [3, 4, 5, 5]), "idx: num_classes 5 fixes the class count")
    call cumlp_dataset_destroy(ds)

    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_idx_memory(ctx, c_loc(images), &
        size(images, kind=c_size_t), c_loc(labels), size(labels, kind=c_size_t), 2_c_int, ds), &
        CUMLP_ERROR_INVALID_VALUE, ds, ctx, "idx: label 2 of 2 classes", "label 2")
    allocate(short, source=images(1:size(images) - 1))
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_idx_memory(ctx, c_loc(short), size(short, kind=c_size_t), &
        c_loc(labels), size(labels, kind=c_size_t), 0_c_int, ds), CUMLP_ERROR_TRUNCATED, ds, ctx, &
        "idx: one byte short", "<memory images>")
    deallocate(short)
    allocate(short, source=images)
    short(3) = 7   ! no such element type
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_idx_memory(ctx, c_loc(short), size(short, kind=c_size_t), &
        c_loc(labels), size(labels, kind=c_size_t), 0_c_int, ds), CUMLP_ERROR_FORMAT, ds, ctx, &
        "idx: bad magic", "magic")

    ipath = tmpdir // "/test_fortran-images.idx"
    lpath = tmpdir // "/test_fortran-labels.idx"
    call write_bytes(ipath, images)
    call write_bytes(lpath, labels)
    call check_ok(cumlp_dataset_read_idx(ctx, cumlp_cstr(ipath), cumlp_cstr(lpath), 0_c_int, ds2), &
        "idx files", ctx)
    x2 => cumlp_dataset_features(ds2)
    call check(all(dims(ds2) == [3, 4, 3, 3]) .and. &
        all(x2 == reshape(real(pixels, c_float), [4, 3])), "idx files: same data as from memory")
    call check(cumlp_dataset_label(ds2, 0_c_int64_t) == 2, "idx files: labels")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_idx(ctx, cumlp_cstr(ipath), &
        cumlp_cstr(tmpdir // "/no-such-labels.idx"), 0_c_int, ds), CUMLP_ERROR_IO, ds, ctx, &
        "idx: missing labels file", "no-such-labels.idx")
    call delete_file(ipath)
    call delete_file(lpath)
    call cumlp_dataset_destroy(ds2)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! A created dataset filled through the array pointers and set_labels; shuffles, subsets and
  ! splits keep each sample's features and targets together.
  subroutine test_shuffle_subset_split()
    integer(c_int64_t), parameter :: n = 30
    type(c_ptr) :: ctx, ds, twin, sub, tr, va
    real(c_float), pointer :: x(:, :), t(:, :), xb(:, :), xs(:, :), ts(:, :), xtr(:, :), xva(:, :)
    real(c_float), allocatable :: t0(:, :), x0(:, :)
    integer(c_int32_t) :: labels(n), bad(n)
    integer(c_int64_t) :: j, id
    integer(c_int) :: label
    logical :: ok

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    call check_ok(cumlp_dataset_create(ctx, 2_c_int64_t, 3_c_int64_t, n, 3_c_int, ds), &
        "dataset create", ctx)
    call check_ok(cumlp_dataset_create(ctx, 2_c_int64_t, 3_c_int64_t, n, 3_c_int, twin), &
        "dataset create twin", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    call check(all(shape(x) == [2, 30]) .and. all(shape(t) == [3, 30]), "create: shapes")
    call check(all(x == 0) .and. all(t == 0), "create: zeroed")
    do j = 1, n
      x(1, j) = real(j - 1, c_float)
      x(2, j) = 10 * x(1, j)
      labels(j) = int(mod(j - 1, 3_c_int64_t), c_int32_t)
    end do
    call check_ok(cumlp_dataset_set_labels(ds, labels, n), "set labels", ctx)
    ok = .true.
    do j = 1, n
      ok = ok .and. t(labels(j) + 1, j) == 1 .and. sum(t(:, j)) == 1
    end do
    call check(ok, "set labels: one-hot at label + 1")
    allocate(t0, source=t)
    bad = labels
    bad(5) = 3
    call check_fails(cumlp_dataset_set_labels(ds, bad, n), CUMLP_ERROR_INVALID_VALUE, c_null_ptr, &
        ctx, "set labels: label 3 of 3 classes", "label")
    call check(all(t == t0), "set labels: a failed call leaves the targets")
    xb => cumlp_dataset_features(twin)
    xb = x
    call check_ok(cumlp_dataset_set_labels(twin, labels, n), "set labels twin", ctx)

    ! Shuffle: the same seed gives the same order; samples stay whole.
    call check_ok(cumlp_dataset_shuffle(ds, 7_c_int64_t), "shuffle", ctx)
    call check_ok(cumlp_dataset_shuffle(twin, 7_c_int64_t), "shuffle twin", ctx)
    call check(all(x == xb), "shuffle: same seed, same order")
    call check(any(x(1, :) /= [(real(j, c_float), j = 0, n - 1)]), "shuffle: order changed")
    ok = all(x(2, :) == 10 * x(1, :))
    do j = 1, n
      label = cumlp_dataset_label(ds, j - 1)
      ok = ok .and. label == mod(int(x(1, j), c_int64_t), 3_c_int64_t)
    end do
    call check(ok, "shuffle: features and targets move together")
    ok = .true.
    do id = 0, n - 1
      ok = ok .and. count(x(1, :) == real(id, c_float)) == 1
    end do
    call check(ok, "shuffle: a permutation")
    call check_ok(cumlp_dataset_shuffle(twin, 8_c_int64_t), "shuffle with seed 8", ctx)
    call check(any(xb /= x), "shuffle: another seed, another order")

    ! Subset: a copy of samples 5 .. 8 (from 0).
    call check_ok(cumlp_dataset_subset(ds, 5_c_int64_t, 4_c_int64_t, sub), "subset", ctx)
    xs => cumlp_dataset_features(sub)
    ts => cumlp_dataset_targets(sub)
    call check(all(dims(sub) == [4, 2, 3, 3]), "subset: 4 samples, 3 classes")
    call check(all(xs == x(:, 6:9)) .and. all(ts == t(:, 6:9)), "subset: samples 5 to 8")
    xs(1, 1) = -1
    call check(x(1, 6) /= -1, "subset: a copy")
    call cumlp_dataset_destroy(sub)
    sub = c_loc(sentinel)
    call check_fails(cumlp_dataset_subset(ds, 28_c_int64_t, 5_c_int64_t, sub), &
        CUMLP_ERROR_INVALID_VALUE, sub, ctx, "subset past the end", "outside")
    sub = c_loc(sentinel)
    call check_fails(cumlp_dataset_subset(ds, 0_c_int64_t, 0_c_int64_t, sub), &
        CUMLP_ERROR_INVALID_VALUE, sub, ctx, "empty subset")

    ! Split: round(0.2 * 30) = 6 validation samples; together the two hold every sample once.
    allocate(x0, source=x)
    call check_ok(cumlp_dataset_split(ds, 0.2d0, 3_c_int64_t, tr, va), "split", ctx)
    call check(all(dims(va) == [6, 2, 3, 3]), "split: 6 validation samples")
    call check(all(dims(tr) == [24, 2, 3, 3]), "split: 24 training samples")
    xtr => cumlp_dataset_features(tr)
    xva => cumlp_dataset_features(va)
    ok = all(xtr(2, :) == 10 * xtr(1, :)) .and. all(xva(2, :) == 10 * xva(1, :))
    do id = 0, n - 1
      ok = ok .and. count(xtr(1, :) == real(id, c_float)) + count(xva(1, :) == real(id, c_float)) &
          == 1
    end do
    do j = 1, 6
      label = cumlp_dataset_label(va, j - 1)
      ok = ok .and. label == mod(int(xva(1, j), c_int64_t), 3_c_int64_t)
    end do
    call check(ok, "split: a partition of whole samples")
    call check(all(x == x0), "split: the source is unchanged")
    call cumlp_dataset_destroy(tr)
    call cumlp_dataset_destroy(va)
    tr = c_loc(sentinel)
    va = c_loc(sentinel)
    call check_fails(cumlp_dataset_split(ds, 0.01d0, 3_c_int64_t, tr, va), &
        CUMLP_ERROR_INVALID_VALUE, tr, ctx, "split leaving no validation sample", "at least one")
    call check(.not. c_associated(va), "split failed: no validation set")
    tr = c_loc(sentinel)
    va = c_loc(sentinel)
    call check_fails(cumlp_dataset_split(ds, 1d0, 3_c_int64_t, tr, va), &
        CUMLP_ERROR_INVALID_VALUE, va, ctx, "split fraction 1")

    ! Split off in place: the same sets as split, the training samples left in ds.
    call check_ok(cumlp_dataset_split(ds, 0.2d0, 3_c_int64_t, tr, va), "split again", ctx)
    call check_ok(cumlp_dataset_split_off(ds, 0.2d0, 3_c_int64_t, sub), "split off", ctx)
    call check(all(dims(ds) == [24, 2, 3, 3]), "split off: 24 samples kept")
    call check(all(dims(sub) == [6, 2, 3, 3]), "split off: 6 split off")
    xs => cumlp_dataset_features(ds)
    xtr => cumlp_dataset_features(tr)
    xva => cumlp_dataset_features(va)
    call check(all(xs == xtr), "split off: the training samples of split")
    xs => cumlp_dataset_features(sub)
    call check(all(xs == xva), "split off: the validation samples of split")
    call cumlp_dataset_destroy(tr)
    call cumlp_dataset_destroy(va)
    call cumlp_dataset_destroy(sub)

    call cumlp_dataset_destroy(twin)
    call cumlp_dataset_destroy(ds)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! Min-max and standardizing scalers, per feature and over all features, stored and restored.
  subroutine test_scaler()
    real(c_float), parameter :: raw(2, 4) = reshape([1.0_c_float, 10.0_c_float, 2.0_c_float, &
        20.0_c_float, 3.0_c_float, 30.0_c_float, 5.0_c_float, 60.0_c_float], [2, 4])
    type(c_ptr) :: ctx, ds, ds_b, ds_c, ds_d, wide, sc, sc_b, sc_c, sc_d
    real(c_float), pointer :: x(:, :), xb(:, :), xd(:, :)
    real(c_float) :: offsets(2), scales(2), scales_only(2), o3(3)
    real(c_double) :: sd(2)
    integer(c_int) :: status

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    status = cumlp_dataset_create(ctx, 2_c_int64_t, 1_c_int64_t, 4_c_int64_t, 0_c_int, ds)
    x => cumlp_dataset_features(ds)
    x = raw
    call check_ok(cumlp_dataset_subset(ds, 0_c_int64_t, 4_c_int64_t, ds_b), "scaler: copy b", ctx)
    call check_ok(cumlp_dataset_subset(ds, 0_c_int64_t, 4_c_int64_t, ds_c), "scaler: copy c", ctx)
    call check_ok(cumlp_dataset_subset(ds, 0_c_int64_t, 4_c_int64_t, ds_d), "scaler: copy d", ctx)

    ! Min-max per feature: offset = min, scale = 1 / (max - min).
    call check_ok(cumlp_scaler_fit(ds, CUMLP_SCALE_MINMAX, 1_c_int, sc), "scaler fit minmax", ctx)
    call check(cumlp_scaler_num_features(sc) == 2, "scaler: 2 features")
    call check_ok(cumlp_scaler_get(sc, offsets, scales, 2_c_int64_t), "scaler get", ctx)
    call check(all(offsets == [1.0_c_float, 10.0_c_float]), "minmax: offsets are the minima")
    call check(all(scales == [0.25_c_float, real(1d0 / 50d0, c_float)]), &
        "minmax: scales are 1 / range")
    call check_ok(cumlp_scaler_get(sc, scales=scales_only, count=2_c_int64_t), &
        "scaler get without offsets", ctx)
    call check(all(scales_only == scales), "scaler get: scales alone")
    call check_fails(cumlp_scaler_get(sc, offsets, scales, 3_c_int64_t), &
        CUMLP_ERROR_INVALID_VALUE, c_null_ptr, ctx, "scaler get with count 3", "count")
    call check_ok(cumlp_scaler_apply(sc, ds), "scaler apply", ctx)
    call check(all(x(1, :) == [0.0_c_float, 0.25_c_float, 0.5_c_float, 1.0_c_float]), &
        "minmax: feature 1 in [0, 1]")
    call check(all(abs(x(2, :) - [0.0_c_float, 0.2_c_float, 0.4_c_float, 1.0_c_float]) < 1e-6), &
        "minmax: feature 2 in [0, 1]")

    ! Standardize per feature: offset = mean, scale = 1 / population standard deviation.
    call check_ok(cumlp_scaler_fit(ds_b, CUMLP_SCALE_STANDARDIZE, 1_c_int, sc_b), &
        "scaler fit standardize", ctx)
    call check_ok(cumlp_scaler_get(sc_b, offsets, scales, 2_c_int64_t), "scaler get b", ctx)
    sd = [sqrt(8.75d0 / 4), sqrt(1400d0 / 4)]
    call check(all(offsets == [2.75_c_float, 30.0_c_float]), "standardize: offsets are the means")
    call check(all(abs(scales * sd - 1) < 1d-6), "standardize: scales are 1 / sd")
    call check_ok(cumlp_scaler_apply(sc_b, ds_b), "scaler apply b", ctx)
    xb => cumlp_dataset_features(ds_b)
    call check(all(abs(sum(xb, dim=2) / 4) < 1e-6), "standardize: mean 0")
    call check(all(abs(sum(xb**2, dim=2) / 4 - 1) < 1e-5), "standardize: variance 1")

    ! Stored statistics restore the same scaler (ctx may be NULL).
    call check_ok(cumlp_scaler_create(c_null_ptr, 2_c_int64_t, offsets, scales, sc_d), &
        "scaler create", c_null_ptr)
    call check_ok(cumlp_scaler_apply(sc_d, ds_d), "scaler apply d", ctx)
    xd => cumlp_dataset_features(ds_d)
    call check(all(xd == xb), "scaler create: same scaling as the fitted scaler")

    ! One pair over all features.
    call check_ok(cumlp_scaler_fit(ds_c, CUMLP_SCALE_MINMAX, 0_c_int, sc_c), "scaler fit all", ctx)
    call check_ok(cumlp_scaler_get(sc_c, offsets, scales, 2_c_int64_t), "scaler get c", ctx)
    call check(all(offsets == 1) .and. all(scales == real(1d0 / 59d0, c_float)), &
        "minmax over all features: one pair")

    ! Errors.
    call cumlp_scaler_destroy(sc)
    call cumlp_scaler_destroy(c_null_ptr)
    sc = c_loc(sentinel)
    call check_fails(cumlp_scaler_create(c_null_ptr, 2_c_int64_t, [0.0_c_float, 0.0_c_float], &
        [1.0_c_float, 0.0_c_float], sc), CUMLP_ERROR_INVALID_VALUE, sc, c_null_ptr, &
        "scaler create with a zero scale", "scale")
    sc = c_loc(sentinel)
    call check_fails(cumlp_scaler_fit(ds, 7_c_int, 1_c_int, sc), CUMLP_ERROR_INVALID_VALUE, sc, &
        ctx, "scaler fit with method 7", "method")
    status = cumlp_dataset_create(ctx, 3_c_int64_t, 1_c_int64_t, 2_c_int64_t, 0_c_int, wide)
    call check_fails(cumlp_scaler_apply(sc_c, wide), CUMLP_ERROR_INVALID_VALUE, c_null_ptr, ctx, &
        "scaler of 2 features on 3", "features")
    call check(cumlp_scaler_num_features(c_null_ptr) == -1, "scaler: NULL has -1 features")
    call check(cumlp_scaler_apply(c_null_ptr, ds) == CUMLP_ERROR_INVALID_VALUE, &
        "scaler apply of NULL")
    o3 = 0
    call check(cumlp_scaler_get(c_null_ptr, o3, count=3_c_int64_t) == CUMLP_ERROR_INVALID_VALUE, &
        "scaler get of NULL")

    call cumlp_dataset_destroy(wide)
    call cumlp_scaler_destroy(sc_b)
    call cumlp_scaler_destroy(sc_c)
    call cumlp_scaler_destroy(sc_d)
    call cumlp_dataset_destroy(ds)
    call cumlp_dataset_destroy(ds_b)
    call cumlp_dataset_destroy(ds_c)
    call cumlp_dataset_destroy(ds_d)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! The learning-rate schedules against their formulas.
  subroutine test_schedule()
    type(cumlp_fit_options) :: fo
    real(c_double) :: rate
    integer(c_int), target :: milestones(2) = [2, 4]
    integer(c_int) :: status
    real(c_double), parameter :: pi = acos(-1d0)

    status = cumlp_fit_defaults(fo)
    call check_ok(cumlp_schedule_learning_rate(fo, 0.1d0, 7_c_int, rate), "schedule", c_null_ptr)
    call check(rate == 0.1d0, "constant schedule")
    fo%schedule = CUMLP_LR_STEP
    fo%lr_gamma = 0.5d0
    fo%lr_step_epochs = 2
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 1_c_int, rate)
    call check_near(rate, 0.1d0, 1d-17, "step schedule, epoch 1")
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 5_c_int, rate)
    call check_near(rate, 0.025d0, 1d-17, "step schedule, epoch 5")
    fo%schedule = CUMLP_LR_EXPONENTIAL
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 3_c_int, rate)
    call check_near(rate, 0.0125d0, 1d-17, "exponential schedule, epoch 3")
    fo%schedule = CUMLP_LR_COSINE
    fo%epochs = 10
    fo%lr_min = 0.01d0
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 0_c_int, rate)
    call check_near(rate, 0.1d0, 1d-16, "cosine schedule, epoch 0")
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 3_c_int, rate)
    call check_near(rate, 0.01d0 + 0.09d0 * (1 + cos(pi * 0.3d0)) / 2, 1d-16, &
        "cosine schedule, epoch 3")
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 5_c_int, rate)
    call check_near(rate, 0.055d0, 1d-16, "cosine schedule, epoch 5")
    ! (rate is INTENT(OUT): undefined after a failed call in Fortran, whatever C leaves in it.)
    fo%lr_gamma = 0
    call check_fails(cumlp_schedule_learning_rate(fo, 0.1d0, 3_c_int, rate), &
        CUMLP_ERROR_INVALID_VALUE, c_null_ptr, c_null_ptr, "schedule with lr_gamma 0", "lr_gamma")
    fo%lr_gamma = 0.5d0
    call check_fails(cumlp_schedule_learning_rate(fo, 0.1d0, -1_c_int, rate), &
        CUMLP_ERROR_INVALID_VALUE, c_null_ptr, c_null_ptr, "schedule of epoch -1", "epoch")
    ! MULTISTEP's milestones: a Fortran array passed by c_loc; with a warm-up of 1 epoch
    fo%schedule = CUMLP_LR_MULTISTEP
    fo%milestones = c_loc(milestones)
    fo%num_milestones = 2
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 3_c_int, rate)
    call check_near(rate, 0.05d0, 1d-17, "multistep schedule, epoch 3")
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 4_c_int, rate)
    call check_near(rate, 0.025d0, 1d-17, "multistep schedule, epoch 4")
    fo%warmup_epochs = 1
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 0_c_int, rate)
    call check_near(rate, 0.05d0, 1d-17, "warm-up, epoch 0")
    fo%schedule = CUMLP_LR_POLY
    fo%lr_power = 2
    status = cumlp_schedule_learning_rate(fo, 0.1d0, 5_c_int, rate)
    call check_near(rate, 0.01d0 + 0.09d0 * 0.25d0, 1d-17, "poly schedule, epoch 5")
    milestones(2) = 1
    fo%schedule = CUMLP_LR_MULTISTEP
    call check_fails(cumlp_schedule_learning_rate(fo, 0.1d0, 3_c_int, rate), &
        CUMLP_ERROR_INVALID_VALUE, c_null_ptr, c_null_ptr, "unsorted milestones", "milestones")
    milestones(2) = 4
  end subroutine

  ! An easy separable problem as CSV text with a header line: x1 in [2, 8] and x2 in [100, 300]
  ! (scales far apart, for the scaler), class 1 where (x1 - 5) / 3 + (x2 - 200) / 100 > 0, points
  ! within 0.15 of the boundary left out. rows: the number of samples written.
  subroutine separable_csv(text, rows)
    character(:), allocatable, intent(out) :: text
    integer, intent(out) :: rows
    character(64) :: line
    real(c_double) :: u, v, x1, x2, s
    integer :: i
    text = "x1,x2,class" // nl
    rows = 0
    do i = 1, 240
      u = modulo(i * 0.6180339887498949d0, 1d0)
      v = modulo(i * 0.7548776662466927d0 + 0.5d0, 1d0)
      x1 = 2 + 6 * u
      x2 = 100 + 200 * v
      s = (x1 - 5) / 3 + (x2 - 200) / 100
      if (abs(s) < 0.15d0) cycle
      write (line, '(es15.7, ",", es15.7, ",", i0)') x1, x2, merge(1, 0, s > 0)
      text = text // trim(line) // nl
      rows = rows + 1
    end do
  end subroutine

  ! The whole pipeline on one backend: CSV -> split -> standardize -> cumlp_fit with a Fortran
  ! callback (step schedule) -> evaluate and predict, checked against values recomputed here;
  ! then callbacks every 3 batches, stops by callback, target loss and patience, and errors.
  subroutine test_fit_classification(backend)
    integer(c_int), intent(in) :: backend
    type(c_ptr) :: ctx, all_ds, train, val, scaler, net, opt, net2, opt2, wide, x, y
    type(cumlp_csv_options) :: cv
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    type(cumlp_fit_options) :: fo
    type(cumlp_fit_result) :: fr
    type(cumlp_eval_result) :: er, er0
    type(fit_log), target :: flog
    procedure(cumlp_fit_callback), pointer :: callback
    real(c_float), pointer :: xt(:, :), xv(:, :), tv(:, :)
    real(c_float), allocatable :: out(:, :), out7(:, :), fwd(:, :)
    real(c_float) :: offsets(2)
    real(c_double) :: rate, mean(2), sd(2), loss, mse
    character(:), allocatable :: text, tag
    integer :: rows, k, correct
    integer(c_int) :: status, label
    integer(c_int64_t) :: n, ntrain, nval, bpe, j, steps0
    integer :: per
    logical :: ok, ok_lr, ok_scores

    if (cumlp_backend_is_built(backend) == 0) return
    ctx = new_context(backend)
    if (.not. c_associated(ctx)) return   ! e.g. a backend with no device here
    tag = "fit (" // cumlp_backend_name(backend) // "): "

    call separable_csv(text, rows)
    status = cumlp_csv_defaults(cv)
    cv%has_header = 1
    cv%num_classes = 2
    call check_ok(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, all_ds), &
        tag // "read csv", ctx)
    n = cumlp_dataset_num_samples(all_ds)
    call check(n == rows .and. rows > 150, tag // "every row read")
    call check_ok(cumlp_dataset_split(all_ds, 0.2d0, 9_c_int64_t, train, val), tag // "split", ctx)
    nval = floor(0.2d0 * real(n, c_double) + 0.5d0, c_int64_t)
    ntrain = cumlp_dataset_num_samples(train)
    call check(cumlp_dataset_num_samples(val) == nval .and. ntrain == n - nval, &
        tag // "split sizes")

    ! Standardize both splits with the training split's statistics.
    xt => cumlp_dataset_features(train)
    mean = sum(real(xt, c_double), dim=2) / real(ntrain, c_double)
    call check_ok(cumlp_scaler_fit(train, CUMLP_SCALE_STANDARDIZE, 1_c_int, scaler), &
        tag // "scaler fit", ctx)
    call check_ok(cumlp_scaler_get(scaler, offsets=offsets, count=2_c_int64_t), &
        tag // "scaler get", ctx)
    call check(all(abs(offsets - mean) <= 1d-6 * abs(mean)), tag // "offsets are the means")
    call check_ok(cumlp_scaler_apply(scaler, train), tag // "scale train", ctx)
    call check_ok(cumlp_scaler_apply(scaler, val), tag // "scale validation", ctx)
    mean = sum(real(xt, c_double), dim=2) / real(ntrain, c_double)
    sd = sqrt(sum(real(xt, c_double)**2, dim=2) / real(ntrain, c_double))
    call check(all(abs(mean) < 1d-5) .and. all(abs(sd - 1) < 1d-5), &
        tag // "training features standardized")

    status = cumlp_network_defaults(no)
    no%loss = CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY
    no%seed = 5
    call check_ok(cumlp_network_create(ctx, 2_c_int, [2_c_int64_t, 8_c_int64_t, 2_c_int64_t], &
        [CUMLP_ACT_TANH, CUMLP_ACT_SOFTMAX], no, net), tag // "network", ctx)
    status = cumlp_optimizer_defaults(oo)
    oo%type = CUMLP_OPT_ADAM
    oo%learning_rate = 0.02d0
    call check_ok(cumlp_optimizer_create(net, oo, opt), tag // "optimizer", ctx)

    ! 30 epochs of batches of 16, the rate halved every 10 epochs, a callback after each epoch.
    callback => on_progress   ! on_progress has the interface cumlp_fit_callback
    status = cumlp_fit_defaults(fo)
    fo%epochs = 30
    fo%batch_size = 16
    fo%schedule = CUMLP_LR_STEP
    fo%lr_gamma = 0.5d0
    fo%lr_step_epochs = 10
    fo%callback = c_funloc(callback)
    fo%user_data = c_loc(flog)
    call check(c_associated(fo%callback, c_funloc(on_progress)), tag // "c_funloc")
    call fit_log_reset(flog, 0_c_int)
    call check_ok(cumlp_fit(net, opt, train, val, fo, fr), tag // "fit", ctx)
    bpe = (ntrain + 15) / 16
    call check(fr%epochs_run == 30 .and. fr%stop_reason == CUMLP_STOP_EPOCHS, &
        tag // "30 epochs run")
    call check(fr%steps == 30 * bpe, tag // "steps")
    call check(cumlp_optimizer_step_count(opt) == 30 * bpe, tag // "optimizer steps")
    call check(flog%calls == 30, tag // "the callback ran once per epoch")
    ok = .true.
    ok_lr = .true.
    ok_scores = .true.
    do k = 1, 30
      ok = ok .and. flog%epoch(k) == k - 1 .and. flog%end_of_epoch(k) == 1 .and. &
          flog%batch(k) == bpe .and. flog%batches_per_epoch(k) == bpe .and. flog%steps(k) == k * bpe
      status = cumlp_schedule_learning_rate(fo, 0.02d0, k - 1, rate)
      ok_lr = ok_lr .and. status == CUMLP_SUCCESS .and. flog%learning_rate(k) == rate
      ok_scores = ok_scores .and. flog%train_loss(k) > 0 .and. flog%train_accuracy(k) >= 0 .and. &
          flog%train_accuracy(k) <= 1 .and. flog%validation_loss(k) > 0 .and. &
          flog%validation_accuracy(k) >= 0 .and. flog%validation_accuracy(k) <= 1
    end do
    call check(ok, tag // "callback progress: epoch, batch, steps")
    call check(ok_lr, tag // "callback progress: the scheduled rates")
    call check(flog%learning_rate(30) == 0.02d0 * 0.25d0, tag // "rate of the last epoch")
    call check(ok_scores, tag // "callback progress: losses and accuracies")
    call check(cumlp_optimizer_learning_rate(opt) == flog%learning_rate(30), &
        tag // "optimizer left at the last epoch's rate")
    call check(flog%train_loss(30) == fr%train_loss .and. &
        flog%validation_loss(30) == fr%validation_loss .and. &
        flog%validation_accuracy(30) == fr%validation_accuracy, tag // "result = last progress")
    call check(fr%train_accuracy >= 0.95d0, tag // "training accuracy >= 95%")
    call check(fr%validation_accuracy >= 0.95d0, tag // "validation accuracy >= 95%")
    call check(fr%best_epoch >= 0 .and. fr%best_epoch < 30 .and. &
        fr%best_validation_loss <= fr%validation_loss .and. &
        fr%best_validation_loss == minval(flog%validation_loss(1:30)), tag // "best epoch")
    call check(fr%seconds >= 0, tag // "seconds")
    if (fr%validation_accuracy < 0.95d0) print '(2x, a, 3es12.4)', &
        "train/validation accuracy, validation loss:", fr%train_accuracy, &
        fr%validation_accuracy, fr%validation_loss

    ! evaluate in fit's batches gives fit's numbers; in one batch the same accuracy.
    call check_ok(cumlp_evaluate(net, val, 16_c_int64_t, er), tag // "evaluate", ctx)
    call check(er%accuracy == fr%validation_accuracy, tag // "evaluate: fit's accuracy")
    call check_near(er%loss, fr%validation_loss, 1d-12, tag // "evaluate: fit's loss")
    call check_near(er%mse, fr%validation_mse, 1d-12, tag // "evaluate: fit's mse")
    call check_ok(cumlp_evaluate(net, val, 0_c_int64_t, er0), tag // "evaluate batch 0", ctx)
    call check(er0%accuracy == er%accuracy, tag // "evaluate batch 0: accuracy")
    call check_near(er0%loss, er%loss, 1d-6, tag // "evaluate batch 0: loss")

    ! predict, and the scores recomputed from its outputs.
    allocate(out(2, nval), out7(2, nval), fwd(2, nval))
    out = -1
    call check_ok(cumlp_predict(net, val, 0_c_int64_t, out, size(out, kind=c_int64_t)), &
        tag // "predict", ctx)
    tv => cumlp_dataset_targets(val)
    correct = 0
    loss = 0
    mse = 0
    do j = 1, nval
      label = cumlp_dataset_label(val, j - 1)
      if (maxloc(out(:, j), dim=1) - 1 == label) correct = correct + 1
      loss = loss - log(real(out(label + 1, j), c_double))
      mse = mse + sum((real(out(:, j), c_double) - real(tv(:, j), c_double))**2)
    end do
    call check(real(correct, c_double) / real(nval, c_double) == er%accuracy, &
        tag // "predict: evaluate's accuracy")
    call check_near(loss / real(nval, c_double), er%loss, 1d-5, tag // "predict: evaluate's loss")
    call check_near(mse / real(2 * nval, c_double), er%mse, 1d-6, tag // "predict: evaluate's mse")
    call check(all(abs(sum(out, dim=1) - 1) < 1e-5), tag // "predict: softmax columns sum to 1")
    call check_ok(cumlp_predict(net, val, 7_c_int64_t, out7, size(out7, kind=c_int64_t)), &
        tag // "predict in batches of 7", ctx)
    call check(maxval(abs(out7 - out)) <= 1e-6, tag // "predict: batch size does not matter")
    ! The same outputs through a tensor and cumlp_forward.
    xv => cumlp_dataset_features(val)
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, nval, x), tag // "tensor x", ctx)
    call check_ok(cumlp_tensor_create(ctx, 2_c_int64_t, nval, y), tag // "tensor y", ctx)
    call check_ok(cumlp_tensor_upload(x, xv, size(xv, kind=c_int64_t)), tag // "upload", ctx)
    call check_ok(cumlp_forward(net, x, y), tag // "forward", ctx)
    call check_ok(cumlp_tensor_download(y, fwd, size(fwd, kind=c_int64_t)), tag // "download", ctx)
    call check(maxval(abs(fwd - out)) <= 1e-6, tag // "predict = forward")
    call cumlp_tensor_destroy(x)
    call cumlp_tensor_destroy(y)
    call check_fails(cumlp_predict(net, val, 0_c_int64_t, out, size(out, kind=c_int64_t) - 1), &
        CUMLP_ERROR_INVALID_VALUE, c_null_ptr, ctx, tag // "predict with a wrong count", "count")

    ! A callback every 3 batches as well: (bpe - 1) / 3 calls inside each epoch, one at its end.
    call fit_log_reset(flog, 0_c_int)
    fo%epochs = 2
    fo%schedule = CUMLP_LR_CONSTANT
    fo%callback_every = 3
    call check_ok(cumlp_fit(net, opt, train, val, fo, fr), tag // "fit, callback every 3", ctx)
    per = int((bpe - 1) / 3 + 1)
    call check(per >= 2 .and. flog%calls == 2 * per, tag // "callback every 3: number of calls")
    ok = .true.
    do k = 1, 2 * per
      if (mod(k, per) == 0) then
        ok = ok .and. flog%end_of_epoch(k) == 1 .and. flog%batch(k) == bpe .and. &
            flog%validation_loss(k) > 0
      else
        ok = ok .and. flog%end_of_epoch(k) == 0 .and. flog%batch(k) == 3 * mod(k, per) .and. &
            flog%validation_loss(k) == -1
      end if
      ok = ok .and. flog%epoch(k) == (k - 1) / per .and. &
          flog%steps(k) == flog%epoch(k) * bpe + flog%batch(k)
    end do
    call check(ok, tag // "callback every 3: progress")
    fo%callback_every = 0

    ! The callback asks to stop at its third call.
    call fit_log_reset(flog, 3_c_int)
    fo%epochs = 10
    call check_ok(cumlp_fit(net, opt, train, val, fo, fr), tag // "fit stopped by callback", ctx)
    call check(fr%stop_reason == CUMLP_STOP_CALLBACK .and. fr%epochs_run == 3 .and. &
        flog%calls == 3 .and. fr%steps == 3 * bpe, tag // "stopped by the callback")

    ! A target loss every epoch reaches, then patience with an improvement no epoch makes.
    call fit_log_reset(flog, 0_c_int)
    fo%target_loss = 10
    call check_ok(cumlp_fit(net, opt, train, val, fo, fr), tag // "fit to a target loss", ctx)
    call check(fr%stop_reason == CUMLP_STOP_TARGET_LOSS .and. fr%epochs_run == 1 .and. &
        flog%calls == 1, tag // "stopped at the target loss")
    fo%target_loss = 0
    call fit_log_reset(flog, 0_c_int)
    fo%patience = 1
    fo%min_delta = 1d9
    call check_ok(cumlp_fit(net, opt, train, val, fo, fr), tag // "fit with patience", ctx)
    call check(fr%stop_reason == CUMLP_STOP_PATIENCE .and. fr%epochs_run == 2 .and. &
        fr%best_epoch == 0 .and. flog%calls == 2, tag // "stopped by patience")
    fo%patience = 0
    fo%min_delta = 0

    ! No result, no validation set, no callback.
    fo%epochs = 1
    fo%callback = c_null_funptr
    steps0 = cumlp_optimizer_step_count(opt)
    call fit_log_reset(flog, 0_c_int)
    call check_ok(cumlp_fit(net, opt, train, c_null_ptr, fo), tag // "fit without result", ctx)
    call check(cumlp_optimizer_step_count(opt) - steps0 == bpe, &
        tag // "fit without result: one epoch")
    call check(flog%calls == 0, tag // "fit without result: no callback")

    ! Errors.
    fo%epochs = 0
    call check_fails(cumlp_fit(net, opt, train, val, fo), CUMLP_ERROR_INVALID_VALUE, c_null_ptr, &
        ctx, tag // "fit of 0 epochs", "epochs")
    fo%epochs = 1
    fo%lr_gamma = 2
    call check_fails(cumlp_fit(net, opt, train, val, fo), CUMLP_ERROR_INVALID_VALUE, c_null_ptr, &
        ctx, tag // "fit with lr_gamma 2", "lr_gamma")
    fo%lr_gamma = 0.1d0
    call check_fails(cumlp_fit(net, opt, c_null_ptr, val, fo), CUMLP_ERROR_INVALID_VALUE, &
        c_null_ptr, ctx, tag // "fit without training set", "NULL")
    status = cumlp_dataset_create(ctx, 3_c_int64_t, 2_c_int64_t, 5_c_int64_t, 2_c_int, wide)
    call check_fails(cumlp_fit(net, opt, wide, c_null_ptr, fo), CUMLP_ERROR_INVALID_VALUE, &
        c_null_ptr, ctx, tag // "fit on 3 features", "features")
    call check_fails(cumlp_evaluate(net, wide, 0_c_int64_t, er), CUMLP_ERROR_INVALID_VALUE, &
        c_null_ptr, ctx, tag // "evaluate on 3 features", "features")
    status = cumlp_network_create(ctx, 1_c_int, [2_c_int64_t, 2_c_int64_t], [CUMLP_ACT_SOFTMAX], &
        no, net2)
    status = cumlp_optimizer_create(net2, oo, opt2)
    call check_fails(cumlp_fit(net, opt2, train, val, fo), CUMLP_ERROR_INVALID_VALUE, c_null_ptr, &
        ctx, tag // "fit with another network's optimizer", "another network")

    call cumlp_optimizer_destroy(opt2)
    call cumlp_network_destroy(net2)
    call cumlp_dataset_destroy(wide)
    call cumlp_optimizer_destroy(opt)
    call cumlp_network_destroy(net)
    call cumlp_scaler_destroy(scaler)
    call cumlp_dataset_destroy(train)
    call cumlp_dataset_destroy(val)
    call cumlp_dataset_destroy(all_ds)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! A linear regression fitted exactly: y = 0.5 x1 - 0.25 x2 + 0.1 by a 2-1 identity network.
  subroutine test_fit_regression(backend)
    integer(c_int), intent(in) :: backend
    integer(c_int64_t), parameter :: n = 64
    type(c_ptr) :: ctx, ds, net, opt
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    type(cumlp_fit_options) :: fo
    type(cumlp_fit_result) :: fr
    type(cumlp_eval_result) :: er
    real(c_float), pointer :: x(:, :), t(:, :)
    real(c_float) :: w(1, 2), b(1), out(1, n)
    integer(c_int64_t) :: j
    integer(c_int) :: status
    character(:), allocatable :: tag

    if (cumlp_backend_is_built(backend) == 0) return
    ctx = new_context(backend)
    if (.not. c_associated(ctx)) return
    tag = "regression (" // cumlp_backend_name(backend) // "): "
    call check_ok(cumlp_dataset_create(ctx, 2_c_int64_t, 1_c_int64_t, n, 0_c_int, ds), &
        tag // "dataset", ctx)
    x => cumlp_dataset_features(ds)
    t => cumlp_dataset_targets(ds)
    do j = 1, n
      x(1, j) = real(mod(j - 1, 8_c_int64_t), c_float) / 4 - 1
      x(2, j) = real((j - 1) / 8, c_float) / 4 - 1
      t(1, j) = 0.5_c_float * x(1, j) - 0.25_c_float * x(2, j) + 0.1_c_float
    end do
    status = cumlp_network_defaults(no)
    call check_ok(cumlp_network_create(ctx, 1_c_int, [2_c_int64_t, 1_c_int64_t], &
        [CUMLP_ACT_IDENTITY], no, net), tag // "network", ctx)
    status = cumlp_optimizer_defaults(oo)
    oo%learning_rate = 0.5d0
    call check_ok(cumlp_optimizer_create(net, oo, opt), tag // "optimizer", ctx)
    status = cumlp_fit_defaults(fo)
    fo%epochs = 100
    fo%batch_size = 8
    call check_ok(cumlp_fit(net, opt, ds, c_null_ptr, fo, fr), tag // "fit", ctx)
    call check(fr%stop_reason == CUMLP_STOP_EPOCHS .and. fr%epochs_run == 100 .and. &
        fr%steps == 800, tag // "100 epochs of 8 batches")
    call check(fr%train_accuracy == -1 .and. fr%validation_loss == -1 .and. &
        fr%validation_accuracy == -1 .and. fr%validation_mse == -1 .and. fr%best_epoch == -1 &
        .and. fr%best_validation_loss == -1, tag // "no accuracy, no validation")
    call check_ok(cumlp_evaluate(net, ds, 0_c_int64_t, er), tag // "evaluate", ctx)
    call check(er%accuracy == -1, tag // "evaluate: no accuracy")
    call check(er%mse < 1d-9, tag // "evaluate: mse < 1e-9")
    call check_near(er%loss, er%mse / 2, 1d-12, tag // "loss = mse / 2 for one output")
    call check_ok(cumlp_network_get_layer(net, 0_c_int, w, b), tag // "get layer", ctx)
    call check_near(real(w(1, 1), c_double), 0.5d0, 1d-4, tag // "w1")
    call check_near(real(w(1, 2), c_double), -0.25d0, 1d-4, tag // "w2")
    call check_near(real(b(1), c_double), 0.1d0, 1d-4, tag // "b")
    call check_ok(cumlp_predict(net, ds, 5_c_int64_t, out, n), tag // "predict", ctx)
    call check(maxval(abs(out - t)) < 1e-4, tag // "predict: the targets")
    call cumlp_optimizer_destroy(opt)
    call cumlp_network_destroy(net)
    call cumlp_dataset_destroy(ds)
    call cumlp_context_destroy(ctx)
  end subroutine

  ! Bad input to the readers and NULL handles: the documented status, no dataset, a message.
  subroutine test_dataset_errors()
    type(c_ptr) :: ctx, ds
    type(cumlp_csv_options) :: cv
    character(:), allocatable :: text
    integer(c_int) :: status

    ctx = new_context(CUMLP_BACKEND_REFERENCE)
    status = cumlp_csv_defaults(cv)
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv(ctx, cumlp_cstr(""), cv, ds), CUMLP_ERROR_IO, ds, &
        ctx, "csv: empty path", "cannot open")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv(ctx, cumlp_cstr(tmpdir // "/no/such.csv"), cv, ds), &
        CUMLP_ERROR_IO, ds, ctx, "csv: missing file", "no/such.csv")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv(ctx, cumlp_cstr(tmpdir), cv, ds), CUMLP_ERROR_IO, ds, &
        ctx, "csv: a directory", "directory")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_fann(ctx, cumlp_cstr(""), 0_c_int, ds), CUMLP_ERROR_IO, &
        ds, ctx, "fann: empty path", "cannot open")

    text = "1,2" // nl // "3,abc" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_FORMAT, ds, ctx, "csv: a field that is not a number", "line 2")
    text = "1,2,3" // nl // "4,5" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_FORMAT, ds, ctx, "csv: ragged rows", "line 2")
    text = "1" // nl // "2" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_FORMAT, ds, ctx, "csv: one column")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, "1,2", 0_c_size_t, cv, ds), &
        CUMLP_ERROR_FORMAT, ds, ctx, "csv: no text", "no data rows")
    text = "1,inf" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_NON_FINITE, ds, ctx, "csv: inf", "finite")
    text = "1,2" // nl
    cv%num_classes = 2
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_INVALID_VALUE, ds, ctx, "csv: label 2 of 2 classes", "label 2")
    cv%num_classes = 0
    cv%label_column = 5
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_INVALID_VALUE, ds, ctx, "csv: label column 5 of 2", "label_column")
    cv%label_column = -1
    cv%delimiter = ichar('.')
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), cv, ds), &
        CUMLP_ERROR_INVALID_VALUE, ds, ctx, "csv: '.' as delimiter", "delimiter")
    cv%delimiter = ichar(',')
    ! Without a context the message goes to the per-thread slot.
    text = "1,2" // nl // "x,4" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_csv_memory(c_null_ptr, text, len(text, c_size_t), cv, &
        ds), CUMLP_ERROR_FORMAT, ds, c_null_ptr, "csv without context", "<memory>: line 2")

    text = "3 2 1" // nl // "0 0" // nl // "1" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_fann_memory(ctx, text, len(text, c_size_t), 0_c_int, ds), &
        CUMLP_ERROR_TRUNCATED, ds, ctx, "fann: fewer samples than announced")
    text = "1 2 1" // nl // "0 x" // nl // "1" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_fann_memory(ctx, text, len(text, c_size_t), 0_c_int, ds), &
        CUMLP_ERROR_FORMAT, ds, ctx, "fann: not a number", "line 2")
    text = "1 1 1" // nl // "0" // nl // "1" // nl
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_read_fann_memory(ctx, text, len(text, c_size_t), 1_c_int, ds), &
        CUMLP_ERROR_INVALID_VALUE, ds, ctx, "fann: classification with 1 output", "2 outputs")

    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_create(ctx, 0_c_int64_t, 1_c_int64_t, 1_c_int64_t, 0_c_int, &
        ds), CUMLP_ERROR_INVALID_VALUE, ds, ctx, "dataset of 0 features", "at least 1")
    ds = c_loc(sentinel)
    call check_fails(cumlp_dataset_create(ctx, 2_c_int64_t, 3_c_int64_t, 4_c_int64_t, 2_c_int, &
        ds), CUMLP_ERROR_INVALID_VALUE, ds, ctx, "dataset of 2 classes in 3 outputs", &
        "num_classes")

    call check(all(dims(c_null_ptr) == -1), "NULL dataset: -1 counts")
    call check(cumlp_dataset_label(c_null_ptr, 0_c_int64_t) == -1, "NULL dataset: label -1")
    call check(.not. associated(cumlp_dataset_features(c_null_ptr)), "NULL dataset: no features")
    call check(.not. associated(cumlp_dataset_targets(c_null_ptr)), "NULL dataset: no targets")
    call check(cumlp_dataset_shuffle(c_null_ptr, 1_c_int64_t) == CUMLP_ERROR_INVALID_VALUE, &
        "shuffle of NULL")
    call cumlp_dataset_destroy(c_null_ptr)
    call cumlp_context_destroy(ctx)
  end subroutine

end program test_fortran
