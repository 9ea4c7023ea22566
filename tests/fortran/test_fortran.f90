! ctest-labels: unit
!
! The Fortran binding (include/cumlp.f90) used from Fortran: struct layouts against the C
! compiler's, defaults through the bind(C) types, seed 003's worked example on the reference
! backend (to the printed digits), XOR trained to 100%, a gradient check, checkpoints through
! files and memory, and error statuses with their messages. Everything it creates it destroys
! (the sanitizer build checks for leaks). Prints "N passed, N failed" last; fails by error stop.
program test_fortran
  use, intrinsic :: iso_c_binding
  use cumlp
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

  call get_tmpdir()
  call test_strings()
  call test_constants()
  call test_layouts()
  call test_defaults()
  call test_worked_example(CUMLP_BACKEND_REFERENCE, 5d-10)
  call test_worked_example(CUMLP_BACKEND_CPU, 1d-6)
  call test_worked_example(CUMLP_BACKEND_CUDA, 1d-6)   ! skipped without a GPU
  call test_xor_and_checkpoints()
  call test_errors()
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
        CUMLP_ERROR_NON_FINITE, CUMLP_ERROR_INTERNAL, CUMLP_BACKEND_AUTO, &
        CUMLP_BACKEND_REFERENCE, CUMLP_BACKEND_CPU, CUMLP_BACKEND_CUDA, CUMLP_MATH_STRICT_FP32, &
        CUMLP_MATH_TF32, CUMLP_ACT_IDENTITY, CUMLP_ACT_SIGMOID, CUMLP_ACT_TANH, CUMLP_ACT_RELU, &
        CUMLP_ACT_LEAKY_RELU, CUMLP_ACT_GELU, CUMLP_ACT_SOFTMAX, CUMLP_LOSS_SQUARED_ERROR, &
        CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY, CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY, &
        CUMLP_INIT_NORMAL, CUMLP_INIT_UNIFORM, CUMLP_INIT_XAVIER_NORMAL, &
        CUMLP_INIT_XAVIER_UNIFORM, CUMLP_INIT_HE_NORMAL, CUMLP_INIT_HE_UNIFORM, CUMLP_BIAS_ZERO, &
        CUMLP_BIAS_DRAWN, CUMLP_OPT_SGD, CUMLP_OPT_MOMENTUM, CUMLP_OPT_NESTEROV, CUMLP_OPT_ADAM, &
        CUMLP_CHECKPOINT_ALLOW_NON_FINITE, CUMLP_SCALE_MINMAX, CUMLP_SCALE_STANDARDIZE, &
        CUMLP_LR_CONSTANT, CUMLP_LR_STEP, CUMLP_LR_EXPONENTIAL, CUMLP_LR_COSINE, &
        CUMLP_STOP_EPOCHS, CUMLP_STOP_TARGET_LOSS, CUMLP_STOP_PATIENCE, CUMLP_STOP_CALLBACK, &
        CUMLP_STOP_ERROR, CUMLP_DATASET_MAX_ELEMENTS]
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

  subroutine test_layouts()
    type(cumlp_context_options), target :: co
    type(cumlp_network_options), target :: no
    type(cumlp_optimizer_options), target :: oo
    type(cumlp_csv_options), target :: cv
    type(cumlp_fit_progress), target :: fp
    type(cumlp_fit_options), target :: fo
    type(cumlp_fit_result), target :: fr
    type(cumlp_eval_result), target :: er
    call compare_layout(0_c_int, "cumlp_context_options", c_sizeof(co), c_loc(co), &
        [c_loc(co%backend), c_loc(co%device), c_loc(co%stream), c_loc(co%math_mode), &
         c_loc(co%num_threads)])
    call compare_layout(1_c_int, "cumlp_network_options", c_sizeof(no), c_loc(no), &
        [c_loc(no%loss), c_loc(no%init), c_loc(no%init_scale), c_loc(no%bias_init), &
         c_loc(no%leaky_relu_slope), c_loc(no%seed)])
    call compare_layout(2_c_int, "cumlp_optimizer_options", c_sizeof(oo), c_loc(oo), &
        [c_loc(oo%type), c_loc(oo%learning_rate), c_loc(oo%momentum), c_loc(oo%weight_decay), &
         c_loc(oo%beta1), c_loc(oo%beta2), c_loc(oo%epsilon)])
    call compare_layout(3_c_int, "cumlp_csv_options", c_sizeof(cv), c_loc(cv), &
        [c_loc(cv%has_header), c_loc(cv%label_column), c_loc(cv%num_classes), &
         c_loc(cv%delimiter)])
    call compare_layout(4_c_int, "cumlp_fit_progress", c_sizeof(fp), c_loc(fp), &
        [c_loc(fp%epoch), c_loc(fp%end_of_epoch), c_loc(fp%batch), &
         c_loc(fp%batches_per_epoch), c_loc(fp%steps), c_loc(fp%learning_rate), &
         c_loc(fp%train_loss), c_loc(fp%train_accuracy), c_loc(fp%validation_loss), &
         c_loc(fp%validation_accuracy), c_loc(fp%validation_mse), c_loc(fp%seconds)])
    call compare_layout(5_c_int, "cumlp_fit_options", c_sizeof(fo), c_loc(fo), &
        [c_loc(fo%epochs), c_loc(fo%batch_size), c_loc(fo%shuffle), c_loc(fo%seed), &
         c_loc(fo%schedule), c_loc(fo%lr_gamma), c_loc(fo%lr_step_epochs), c_loc(fo%lr_min), &
         c_loc(fo%target_loss), c_loc(fo%patience), c_loc(fo%min_delta), &
         c_loc(fo%restore_best), c_loc(fo%callback), c_loc(fo%user_data), &
         c_loc(fo%callback_every)])
    call compare_layout(6_c_int, "cumlp_fit_result", c_sizeof(fr), c_loc(fr), &
        [c_loc(fr%epochs_run), c_loc(fr%stop_reason), c_loc(fr%steps), c_loc(fr%train_loss), &
         c_loc(fr%train_accuracy), c_loc(fr%validation_loss), c_loc(fr%validation_accuracy), &
         c_loc(fr%validation_mse), c_loc(fr%best_epoch), c_loc(fr%best_validation_loss), &
         c_loc(fr%seconds)])
    call compare_layout(7_c_int, "cumlp_eval_result", c_sizeof(er), c_loc(er), &
        [c_loc(er%loss), c_loc(er%accuracy), c_loc(er%mse)])
  end subroutine

  ! The defaults the manual lists, read through the Fortran types: a second check of the layout.
  subroutine test_defaults()
    type(cumlp_context_options) :: co
    type(cumlp_network_options) :: no
    type(cumlp_optimizer_options) :: oo
    call check_ok(cumlp_context_defaults(co), "context defaults", c_null_ptr)
    call check(co%backend == CUMLP_BACKEND_AUTO .and. co%device == 0 .and. &
        .not. c_associated(co%stream) .and. co%math_mode == CUMLP_MATH_STRICT_FP32 .and. &
        co%num_threads == 0, "context defaults' values")
    call check_ok(cumlp_network_defaults(no), "network defaults", c_null_ptr)
    call check(no%loss == CUMLP_LOSS_SQUARED_ERROR .and. no%init == CUMLP_INIT_XAVIER_UNIFORM &
        .and. no%init_scale == 1d0 .and. no%bias_init == CUMLP_BIAS_ZERO .and. &
        no%leaky_relu_slope == 0.01d0 .and. no%seed == 42_c_int64_t, "network defaults' values")
    call check_ok(cumlp_optimizer_defaults(oo), "optimizer defaults", c_null_ptr)
    call check(oo%type == CUMLP_OPT_SGD .and. oo%learning_rate == 0.01d0 .and. &
        oo%momentum == 0.9d0 .and. oo%weight_decay == 0d0 .and. oo%beta1 == 0.9d0 .and. &
        oo%beta2 == 0.999d0 .and. oo%epsilon == 1d-8, "optimizer defaults' values")
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
    integer(c_int) :: status
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

    call check_ok(cumlp_train_step(net, opt, x, t, loss), tag // "train step", ctx)
    call check_near(loss, 0.298371109d0, max(tol, 1d-9), tag // "E_total")
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
    call cumlp_context_destroy(ctx)
  end subroutine

  ! XOR on the reference backend: a 2-4-1 tanh/sigmoid network with momentum, to 100%; then a
  ! gradient check and checkpoints of the trained network.
  subroutine test_xor_and_checkpoints()
    real(c_float), parameter :: xs(2, 4) = reshape([0, 0, 0, 1, 1, 0, 1, 1], [2, 4])
    real(c_float), parameter :: ts(1, 4) = reshape([0, 1, 1, 0], [1, 4])
    type(c_ptr) :: ctx, net, opt, x, t, y, net2, opt2
    type(cumlp_network_options) :: no
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

end program test_fortran
