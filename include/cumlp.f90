! cumlp.f90 - Fortran 2008 binding of cumlp (module `cumlp`), through ISO_C_BINDING.
!
! include/cumlp.h is the manual: every procedure here has the meaning, arguments and status codes
! of the C function of the same name. This file only says how each crosses the language border:
!
!  - Handles (contexts, tensors, networks, optimizers, datasets, scalers) are type(c_ptr). A
!    handle that does not exist is c_null_ptr: pass it where the manual allows NULL
!    (cumlp_last_error(c_null_ptr), cumlp_checkpoint_save(net, c_null_ptr, path), no validation
!    set in cumlp_fit); every destroy accepts it.
!  - Functions that can fail return an integer(c_int) status: CUMLP_SUCCESS (0) or a
!    CUMLP_ERROR_* value below; cumlp_last_error(ctx) gives the reason.
!  - Sizes and counts are integer(c_int64_t); enums and flags are integer(c_int), and so are the
!    counts of named values, CUMLP_<SET>_COUNT (C enum constants).
!  - Output arguments are INTENT(OUT): after a failed call their values are undefined in Fortran
!    (gfortran may drop a store made before the call), although C leaves them unchanged. Output
!    handles are the exception in practice: the C side sets them to NULL on failure. The value
!    of the name parsers (cumlp_*_from_name) is the other exception: it is INTENT(INOUT), so that
!    it keeps its value when the name is unknown, as in C.
!  - Option structs are bind(C) derived types with the C layout. Fill one with its
!    cumlp_*_defaults() call and change the fields you need; pass it where C takes the pointer.
!    (C's "NULL for the defaults" is not offered: pass a filled struct.)
!  - Functions returning const char* are wrapped so that they return a Fortran
!    character(:), allocatable (cumlp_version_string, cumlp_status_string, cumlp_last_error,
!    cumlp_backend_name, cumlp_precision_name, cumlp_epilogues_name, cumlp_activation_name,
!    cumlp_loss_name, cumlp_init_name, cumlp_optimizer_name, cumlp_schedule_name, cumlp_task_name,
!    cumlp_transport_name); cumlp_describe returns cumlp_context_describe's text the same way. The
!    name parsers cumlp_backend_from_name, cumlp_precision_from_name, cumlp_epilogues_from_name,
!    cumlp_activation_from_name, cumlp_loss_from_name, cumlp_init_from_name, cumlp_optimizer_from_name,
!    cumlp_schedule_from_name, cumlp_task_from_name and cumlp_transport_from_name take the name as
!    a Fortran character(*), trailing blanks ignored (they pass cumlp_cstr(name)).
!  - Named values. cumlp.h lists each set of named values once, as an X-macro (CUMLP_<SET>_LIST:
!    statuses, backends, precisions, epilogue settings, activations, losses, init schemes,
!    optimizers, schedules, tasks, transports), and derives
!    the enum and the count CUMLP_<SET>_COUNT from it. Fortran cannot expand C macros: the
!    integer constants below, counts included, are a copy of those lists, in the same order.
!    tests/fortran/test_fortran.f90 checks the copy against the library: every constant against
!    the C header's value, each set's constants against cumlp_*_name and cumlp_*_from_name (the
!    statuses against cumlp_status_string), and each count against C's.
!  - File paths are C strings: pass trim(path) // c_null_char, or cumlp_cstr(path). Text in
!    memory (the CSV and FANN *_memory readers) is a character string with its length, no
!    c_null_char: cumlp_dataset_read_csv_memory(ctx, text, len(text, c_size_t), options, ds).
!  - Where C accepts NULL for an output or input array (the loss of a training step, the weights
!    or biases of get/set_layer, the optimizer of checkpoint_load, the optimizer, scaler and model
!    info of checkpoint_load_with, the statistics of scaler_get,
!    the result of cumlp_fit), the Fortran argument is OPTIONAL: leave it out for NULL.
!    cumlp_dataset_features(ds) and cumlp_dataset_targets(ds) return the dataset's own memory as
!    a 2-D array pointer. These few procedures are thin Fortran wrappers; all others are direct
!    bind(C) interfaces. The raw interfaces they call (and those behind the string functions and
!    the name parsers) are public too, named cumlp_c_*, with the C signatures (NULL as
!    c_null_ptr, C strings as character(kind=c_char) arrays ending in c_null_char).
!  - The cumlp_fit callback is a bind(C) procedure with the abstract interface cumlp_fit_callback:
!    options%callback = c_funloc(my_callback), options%user_data = c_loc(my_state).
!  - Indices that C counts from 0 stay 0-based: layers, epochs, samples (cumlp_dataset_label,
!    cumlp_dataset_subset) and classes (labels, cumlp_dataset_label's result).
!  - Data-parallel training (cumlp.h, "Data-parallel training over MPI"): a communicator crosses as
!    its Fortran handle, an integer(c_int) (MPI_Fint): the INTEGER of `use mpi`, or comm%MPI_VAL
!    of `use mpi_f08`. cumlp_network_set_comm_f and cumlp_mpi_agree_f are cumlp_mpi.h's _f
!    calls; they return CUMLP_ERROR_NOT_SUPPORTED from a cumlp built without MPI.
!
! Data layout. cumlp stores a batch of B samples with n features as an n x B column-major matrix,
! one sample per column, and layer l's weights W as an n_l x n_(l-1) column-major matrix
! (W(j, i) links input unit i to unit j). Fortran arrays are column-major too, so an n x B Fortran
! array, real(c_float) :: x(n, B), IS cumlp's n x B matrix: pass it to cumlp_tensor_upload with
! count = size(x, kind=c_int64_t), and declare weights as w(n_out, n_in), no transposes needed.
! (Contiguous arrays only: pass whole arrays or contiguous sections such as x(:, j1:j2).)
!
! Building: the module is built and installed with the library (CUMLP_FORTRAN in
! cmake/fortran.cmake): cumlp.mod and libcumlp_fortran.a, with this source beside cumlp.h. A .mod
! file only works with the compiler (and version) that wrote it; with another compiler, compile
! this file into your program. Link the C library (cumlp) as well.

module cumlp
  use, intrinsic :: iso_c_binding
  implicit none
  private :: c_string_to_fortran

  ! ---- version (cumlp.h's CUMLP_VERSION_* macros) -------------------------------------------
  integer(c_int), parameter :: CUMLP_VERSION_MAJOR = 0
  integer(c_int), parameter :: CUMLP_VERSION_MINOR = 1
  integer(c_int), parameter :: CUMLP_VERSION_PATCH = 0
  ! C's CUMLP_VERSION_NUMBER (Fortran ignores case, and cumlp_version_number is the function).
  integer(c_int), parameter :: CUMLP_MODULE_VERSION_NUMBER = &
      CUMLP_VERSION_MAJOR * 10000 + CUMLP_VERSION_MINOR * 100 + CUMLP_VERSION_PATCH

  ! ---- enums: the values of cumlp.h's enums, as integer(c_int) constants ----------------------
  ! The sets that cumlp.h generates from a CUMLP_<SET>_LIST end with their CUMLP_<SET>_COUNT.
  ! cumlp_status
  integer(c_int), parameter :: CUMLP_SUCCESS = 0
  integer(c_int), parameter :: CUMLP_ERROR_INVALID_VALUE = 1
  integer(c_int), parameter :: CUMLP_ERROR_ALLOC_FAILED = 2
  integer(c_int), parameter :: CUMLP_ERROR_NOT_SUPPORTED = 3
  integer(c_int), parameter :: CUMLP_ERROR_NO_DEVICE = 4
  integer(c_int), parameter :: CUMLP_ERROR_DEVICE = 5
  integer(c_int), parameter :: CUMLP_ERROR_IO = 6
  integer(c_int), parameter :: CUMLP_ERROR_FORMAT = 7
  integer(c_int), parameter :: CUMLP_ERROR_TRUNCATED = 8
  integer(c_int), parameter :: CUMLP_ERROR_SIZE_LIMIT = 9
  integer(c_int), parameter :: CUMLP_ERROR_SHAPE_MISMATCH = 10
  integer(c_int), parameter :: CUMLP_ERROR_CHECKSUM = 11
  integer(c_int), parameter :: CUMLP_ERROR_NON_FINITE = 12
  integer(c_int), parameter :: CUMLP_ERROR_INTERNAL = 13
  integer(c_int), parameter :: CUMLP_STEP_SKIPPED = 14   ! not an error: see cumlp.h
  integer(c_int), parameter :: CUMLP_ERROR_COMMUNICATION = 15
  integer(c_int), parameter :: CUMLP_STATUS_COUNT = 16
  ! cumlp_backend
  integer(c_int), parameter :: CUMLP_BACKEND_AUTO = 0
  integer(c_int), parameter :: CUMLP_BACKEND_REFERENCE = 1
  integer(c_int), parameter :: CUMLP_BACKEND_CPU = 2
  integer(c_int), parameter :: CUMLP_BACKEND_CUDA = 3
  integer(c_int), parameter :: CUMLP_BACKEND_COUNT = 4
  ! cumlp_precision
  integer(c_int), parameter :: CUMLP_PRECISION_FP32 = 0
  integer(c_int), parameter :: CUMLP_PRECISION_TF32 = 1
  integer(c_int), parameter :: CUMLP_PRECISION_BF16 = 2
  integer(c_int), parameter :: CUMLP_PRECISION_FP16 = 3
  integer(c_int), parameter :: CUMLP_PRECISION_COUNT = 4
  ! cumlp_epilogues (GEMM epilogues)
  integer(c_int), parameter :: CUMLP_EPILOGUES_OFF = 0
  integer(c_int), parameter :: CUMLP_EPILOGUES_RELU = 1
  integer(c_int), parameter :: CUMLP_EPILOGUES_ALL = 2
  integer(c_int), parameter :: CUMLP_EPILOGUES_COUNT = 3
  ! cumlp 0.1.0's names of CUMLP_PRECISION_FP32 and CUMLP_PRECISION_TF32
  integer(c_int), parameter :: CUMLP_MATH_STRICT_FP32 = 0
  integer(c_int), parameter :: CUMLP_MATH_TF32 = 1
  ! cumlp_activation
  integer(c_int), parameter :: CUMLP_ACT_IDENTITY = 0
  integer(c_int), parameter :: CUMLP_ACT_SIGMOID = 1
  integer(c_int), parameter :: CUMLP_ACT_TANH = 2
  integer(c_int), parameter :: CUMLP_ACT_RELU = 3
  integer(c_int), parameter :: CUMLP_ACT_LEAKY_RELU = 4
  integer(c_int), parameter :: CUMLP_ACT_GELU = 5
  integer(c_int), parameter :: CUMLP_ACT_SOFTMAX = 6
  integer(c_int), parameter :: CUMLP_ACTIVATION_COUNT = 7
  ! cumlp_loss
  integer(c_int), parameter :: CUMLP_LOSS_SQUARED_ERROR = 0
  integer(c_int), parameter :: CUMLP_LOSS_SOFTMAX_CROSS_ENTROPY = 1
  integer(c_int), parameter :: CUMLP_LOSS_SIGMOID_BINARY_CROSS_ENTROPY = 2
  integer(c_int), parameter :: CUMLP_LOSS_COUNT = 3
  ! cumlp_init
  integer(c_int), parameter :: CUMLP_INIT_NORMAL = 0
  integer(c_int), parameter :: CUMLP_INIT_UNIFORM = 1
  integer(c_int), parameter :: CUMLP_INIT_XAVIER_NORMAL = 2
  integer(c_int), parameter :: CUMLP_INIT_XAVIER_UNIFORM = 3
  integer(c_int), parameter :: CUMLP_INIT_HE_NORMAL = 4
  integer(c_int), parameter :: CUMLP_INIT_HE_UNIFORM = 5
  integer(c_int), parameter :: CUMLP_INIT_COUNT = 6
  ! cumlp_bias_init
  integer(c_int), parameter :: CUMLP_BIAS_ZERO = 0
  integer(c_int), parameter :: CUMLP_BIAS_DRAWN = 1
  ! cumlp_optimizer_type
  integer(c_int), parameter :: CUMLP_OPT_SGD = 0
  integer(c_int), parameter :: CUMLP_OPT_MOMENTUM = 1
  integer(c_int), parameter :: CUMLP_OPT_NESTEROV = 2
  integer(c_int), parameter :: CUMLP_OPT_ADAM = 3
  integer(c_int), parameter :: CUMLP_OPT_ADAMW = 4
  integer(c_int), parameter :: CUMLP_OPT_ADAMAX = 5
  integer(c_int), parameter :: CUMLP_OPT_NADAM = 6
  integer(c_int), parameter :: CUMLP_OPT_RMSPROP = 7
  integer(c_int), parameter :: CUMLP_OPT_ADAGRAD = 8
  integer(c_int), parameter :: CUMLP_OPT_ADADELTA = 9
  integer(c_int), parameter :: CUMLP_OPTIMIZER_COUNT = 10
  ! flags of the checkpoint load functions
  integer(c_int), parameter :: CUMLP_CHECKPOINT_ALLOW_NON_FINITE = 1
  ! cumlp_task
  integer(c_int), parameter :: CUMLP_TASK_UNKNOWN = 0
  integer(c_int), parameter :: CUMLP_TASK_CLASSIFY = 1
  integer(c_int), parameter :: CUMLP_TASK_REGRESS = 2
  integer(c_int), parameter :: CUMLP_TASK_COUNT = 3
  ! cumlp_csv_options%label_column for data without targets
  integer(c_int), parameter :: CUMLP_CSV_NO_TARGET = -2
  ! cumlp_scaling
  integer(c_int), parameter :: CUMLP_SCALE_MINMAX = 0
  integer(c_int), parameter :: CUMLP_SCALE_STANDARDIZE = 1
  ! cumlp_lr_schedule
  integer(c_int), parameter :: CUMLP_LR_CONSTANT = 0
  integer(c_int), parameter :: CUMLP_LR_STEP = 1
  integer(c_int), parameter :: CUMLP_LR_EXPONENTIAL = 2
  integer(c_int), parameter :: CUMLP_LR_COSINE = 3
  integer(c_int), parameter :: CUMLP_LR_MULTISTEP = 4
  integer(c_int), parameter :: CUMLP_LR_LINEAR = 5
  integer(c_int), parameter :: CUMLP_LR_POLY = 6
  integer(c_int), parameter :: CUMLP_SCHEDULE_COUNT = 7
  ! cumlp_stop_reason
  integer(c_int), parameter :: CUMLP_STOP_EPOCHS = 0
  integer(c_int), parameter :: CUMLP_STOP_TARGET_LOSS = 1
  integer(c_int), parameter :: CUMLP_STOP_PATIENCE = 2
  integer(c_int), parameter :: CUMLP_STOP_CALLBACK = 3
  integer(c_int), parameter :: CUMLP_STOP_ERROR = 4
  ! CUMLP_DATASET_MAX_ELEMENTS
  integer(c_int64_t), parameter :: CUMLP_DATASET_MAX_ELEMENTS = 4294967296_c_int64_t
  ! cumlp_transport (data-parallel training)
  integer(c_int), parameter :: CUMLP_TRANSPORT_AUTO = 0
  integer(c_int), parameter :: CUMLP_TRANSPORT_MPI = 1
  integer(c_int), parameter :: CUMLP_TRANSPORT_MPI_HOST = 2
  integer(c_int), parameter :: CUMLP_TRANSPORT_MPI_DEVICE = 3
  integer(c_int), parameter :: CUMLP_TRANSPORT_NCCL = 4
  integer(c_int), parameter :: CUMLP_TRANSPORT_COUNT = 5

  ! ---- option and result structs: field for field the C structs (bind(C) lays them out the same,
  ! padding included). Fill the options with their cumlp_*_defaults() call first. ----------------
  type, bind(C) :: cumlp_context_options
    integer(c_int) :: backend      ! a CUMLP_BACKEND_*; default CUMLP_BACKEND_AUTO
    integer(c_int) :: device       ! CUDA device ordinal; default 0
    type(c_ptr) :: stream          ! a cudaStream_t, or c_null_ptr for the context's own
    integer(c_int) :: precision    ! a CUMLP_PRECISION_*; default CUMLP_PRECISION_FP32 (math_mode
                                   ! in cumlp 0.1.0)
    integer(c_int) :: num_threads  ! cpu backend threads; 0 (default) means all cores
  end type cumlp_context_options

  type, bind(C) :: cumlp_network_options
    integer(c_int) :: loss               ! a CUMLP_LOSS_*; default CUMLP_LOSS_SQUARED_ERROR
    integer(c_int) :: init               ! a CUMLP_INIT_*; default CUMLP_INIT_XAVIER_UNIFORM
    real(c_double) :: init_scale         ! default 1.0
    integer(c_int) :: bias_init          ! a CUMLP_BIAS_*; default CUMLP_BIAS_ZERO
    real(c_double) :: leaky_relu_slope   ! default 0.01
    integer(c_int64_t) :: seed           ! C uint64_t; default 42
  end type cumlp_network_options

  ! cumlp_optimizer_defaults gives the defaults below; cumlp_optimizer_defaults_for(type, options)
  ! gives PyTorch's defaults of a type (see cumlp.h).
  type, bind(C) :: cumlp_optimizer_options
    integer(c_int) :: type               ! a CUMLP_OPT_*; default CUMLP_OPT_SGD
    real(c_double) :: learning_rate      ! default 0.01
    real(c_double) :: momentum           ! MOMENTUM, NESTEROV, RMSPROP; default 0.9
    real(c_double) :: weight_decay       ! L2 (ADAMW: decoupled); default 0
    real(c_double) :: beta1              ! default 0.9
    real(c_double) :: beta2              ! default 0.999
    real(c_double) :: epsilon            ! default 1e-8
    real(c_double) :: alpha              ! RMSPROP; default 0.99
    real(c_double) :: rho                ! ADADELTA; default 0.9
    integer(c_int) :: centered           ! RMSPROP: 0 (default) or 1
    real(c_double) :: lr_decay           ! ADAGRAD; default 0
    real(c_double) :: initial_accumulator_value ! ADAGRAD; default 0
    real(c_double) :: momentum_decay     ! NADAM; default 4e-3
    real(c_double) :: clip_norm          ! > 0: clip the gradients' global L2 norm; 0 (default) off
    real(c_double) :: clip_value         ! > 0: clamp each gradient; 0 (default) off
    integer(c_int) :: non_finite_error   ! 0 (default): skip a NaN/Inf step; 1: an error
  end type cumlp_optimizer_options

  ! The structs of the dataset and training-loop API.
  type, bind(C) :: cumlp_csv_options
    integer(c_int) :: has_header     ! 1: skip the first line; default 0
    integer(c_int) :: label_column   ! 0-based column of the target; -1 (default) the last
    integer(c_int) :: num_classes    ! 0 (default) regression; > 0 classes; -1 counted
    integer(c_int) :: delimiter      ! the separator's character code; default ichar(',')
  end type cumlp_csv_options

  ! What a cumlp_fit callback receives (by reference: type(cumlp_fit_progress), intent(in)).
  type, bind(C) :: cumlp_fit_progress
    integer(c_int) :: epoch                  ! from 0
    integer(c_int) :: end_of_epoch           ! 1 after a whole epoch (validation done), else 0
    integer(c_int64_t) :: batch              ! batches done in this epoch
    integer(c_int64_t) :: batches_per_epoch
    integer(c_int64_t) :: steps              ! optimizer steps taken by this cumlp_fit call
    real(c_double) :: learning_rate          ! the rate of this epoch
    real(c_double) :: train_loss             ! mean over this epoch's batches so far
    real(c_double) :: train_accuracy         ! -1 for regression
    real(c_double) :: validation_loss        ! at the end of an epoch with validation, else -1
    real(c_double) :: validation_accuracy    ! likewise; -1 for regression
    real(c_double) :: validation_mse         ! likewise
    real(c_double) :: seconds                ! since cumlp_fit started
    integer(c_int64_t) :: skipped_steps      ! steps skipped by this cumlp_fit call (NaN or Inf)
    real(c_double) :: gradient_norm          ! the last step's global gradient norm
    real(c_double) :: mean_gradient_norm     ! its mean over this epoch's steps so far
  end type cumlp_fit_progress

  type, bind(C) :: cumlp_fit_options
    integer(c_int) :: epochs             ! >= 1; default 10
    integer(c_int64_t) :: batch_size     ! >= 1; default 32
    integer(c_int) :: shuffle            ! 1 (default): a new sample order every epoch
    integer(c_int64_t) :: seed           ! C uint64_t; seed of the shuffles; default 1
    integer(c_int) :: schedule           ! a CUMLP_LR_*; default CUMLP_LR_CONSTANT
    real(c_double) :: lr_gamma           ! STEP and EXPONENTIAL factor in (0, 1]; default 0.1
    integer(c_int) :: lr_step_epochs     ! period of STEP, >= 1; default 10
    real(c_double) :: lr_min             ! floor of COSINE, >= 0; default 0
    real(c_double) :: target_loss        ! stop when an epoch's training loss < this; 0 off
    integer(c_int) :: patience           ! epochs without validation improvement; 0 off
    real(c_double) :: min_delta          ! >= 0; default 0
    integer(c_int) :: restore_best       ! 1: end with the best validation epoch's parameters
    type(c_funptr) :: callback           ! c_funloc of a procedure(cumlp_fit_callback), or
                                         ! c_null_funptr (default) for none
    type(c_ptr) :: user_data             ! passed to the callback (c_loc of your state)
    integer(c_int64_t) :: callback_every ! also call it every this many batches; 0: epochs only
    integer(c_int) :: max_consecutive_skips ! stop after this many skipped steps in a row; 10
    integer(c_int) :: warmup_epochs      ! linear warm-up epochs; default 0
    type(c_ptr) :: milestones            ! MULTISTEP: c_loc of an integer(c_int), target array of
                                         ! strictly increasing epochs; default c_null_ptr
    integer(c_int) :: num_milestones     ! its size; default 0
    real(c_double) :: lr_power           ! POLY's power, > 0; default 1
  end type cumlp_fit_options

  type, bind(C) :: cumlp_fit_result
    integer(c_int) :: epochs_run         ! epochs started
    integer(c_int) :: stop_reason        ! a CUMLP_STOP_*
    integer(c_int64_t) :: steps          ! optimizer steps taken
    real(c_double) :: train_loss         ! of the last epoch
    real(c_double) :: train_accuracy     ! of the last epoch; -1 for regression
    real(c_double) :: validation_loss    ! of the last validated epoch; -1 without validation
    real(c_double) :: validation_accuracy
    real(c_double) :: validation_mse
    integer(c_int) :: best_epoch         ! from 0; -1 without validation
    real(c_double) :: best_validation_loss
    real(c_double) :: seconds            ! wall time of the call
    integer(c_int64_t) :: skipped_steps  ! steps skipped (NaN or Inf)
  end type cumlp_fit_result

  type, bind(C) :: cumlp_model_info
    integer(c_int) :: task         ! a CUMLP_TASK_*; default CUMLP_TASK_UNKNOWN (nothing recorded)
    integer(c_int) :: num_classes  ! CLASSIFY: the output width (2 for one output); else 0
    integer(c_int) :: label_column ! the CSV column (from 0) of the targets; default -1, the last
  end type cumlp_model_info

  type, bind(C) :: cumlp_eval_result
    real(c_double) :: loss               ! mean loss per sample
    real(c_double) :: accuracy           ! -1 for regression
    real(c_double) :: mse                ! mean over samples and outputs of (output - target)^2
  end type cumlp_eval_result

  ! FP16's loss scaler, settings and state (cumlp.h, "Loss scaling").
  type, bind(C) :: cumlp_loss_scaler
    real(c_double) :: scale              ! default 65536 (2^16)
    real(c_double) :: growth_factor      ! default 2
    real(c_double) :: backoff_factor     ! default 0.5
    integer(c_int64_t) :: growth_interval ! default 2000; 0: never grows
    integer(c_int64_t) :: clean_steps    ! state: steps taken since the last overflow or growth
    integer(c_int64_t) :: overflows      ! state: steps skipped for an overflow
  end type cumlp_loss_scaler

  ! What cumlp_optimizer_sync reports (C's cumlp_step_summary): the steps since the last sync.
  type, bind(C) :: cumlp_step_summary
    integer(c_int64_t) :: steps        ! the steps run
    integer(c_int64_t) :: taken        ! of them applied
    integer(c_int64_t) :: skipped      ! skipped (non-finite loss or gradients, FP16 overflow)
    integer(c_int64_t) :: failed       ! failed under non_finite_error, or not applied after one
    real(c_double) :: loss             ! mean loss per sample of the finite losses; NaN if none
    integer(c_int64_t) :: loss_samples ! the samples of that mean
  end type cumlp_step_summary

  ! The interface of a cumlp_fit callback (C's cumlp_fit_callback). Write it as a module or
  ! external procedure with bind(C) (an internal procedure cannot be bind(C)), for example
  !   integer(c_int) function on_progress(progress, user_data) bind(C)
  !     type(cumlp_fit_progress), intent(in) :: progress
  !     type(c_ptr), value :: user_data
  ! and set options%callback = c_funloc(on_progress). Return 0 to go on, nonzero to stop.
  abstract interface
    function cumlp_fit_callback(progress, user_data) bind(C)
      import :: c_int, c_ptr, cumlp_fit_progress
      type(cumlp_fit_progress), intent(in) :: progress
      type(c_ptr), value :: user_data
      integer(c_int) :: cumlp_fit_callback
    end function
  end interface

  interface
    ! ---- version and status codes -------------------------------------------------------------
    function cumlp_version_number() bind(C, name="cumlp_version_number")
      import :: c_int
      integer(c_int) :: cumlp_version_number
    end function

    function cumlp_c_version_string() bind(C, name="cumlp_version_string")
      import :: c_ptr
      type(c_ptr) :: cumlp_c_version_string
    end function

    function cumlp_c_status_string(status) bind(C, name="cumlp_status_string")
      import :: c_ptr, c_int
      integer(c_int), value :: status
      type(c_ptr) :: cumlp_c_status_string
    end function

    ! ---- context: backend, device, stream and the last error message ---------------------------
    function cumlp_context_defaults(options) bind(C, name="cumlp_context_defaults")
      import :: c_int, cumlp_context_options
      type(cumlp_context_options), intent(out) :: options
      integer(c_int) :: cumlp_context_defaults
    end function

    function cumlp_context_create(ctx, options) bind(C, name="cumlp_context_create")
      import :: c_int, c_ptr, cumlp_context_options
      type(c_ptr), intent(out) :: ctx
      type(cumlp_context_options), intent(in) :: options
      integer(c_int) :: cumlp_context_create
    end function

    subroutine cumlp_context_destroy(ctx) bind(C, name="cumlp_context_destroy")
      import :: c_ptr
      type(c_ptr), value :: ctx
    end subroutine

    function cumlp_c_last_error(ctx) bind(C, name="cumlp_last_error")
      import :: c_ptr
      type(c_ptr), value :: ctx
      type(c_ptr) :: cumlp_c_last_error
    end function

    function cumlp_context_backend(ctx) bind(C, name="cumlp_context_backend")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_backend
    end function

    function cumlp_c_backend_name(backend) bind(C, name="cumlp_backend_name")
      import :: c_int, c_ptr
      integer(c_int), value :: backend
      type(c_ptr) :: cumlp_c_backend_name
    end function

    ! name: a C string (cumlp_cstr(name)); backend is left unchanged when the name is unknown.
    function cumlp_c_backend_from_name(name, backend) bind(C, name="cumlp_backend_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: backend
      integer(c_int) :: cumlp_c_backend_from_name
    end function

    function cumlp_backend_is_built(backend) bind(C, name="cumlp_backend_is_built")
      import :: c_int
      integer(c_int), value :: backend
      integer(c_int) :: cumlp_backend_is_built
    end function

    function cumlp_context_synchronize(ctx) bind(C, name="cumlp_context_synchronize")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_synchronize
    end function

    function cumlp_context_set_precision(ctx, precision) &
        bind(C, name="cumlp_context_set_precision")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int), value :: precision
      integer(c_int) :: cumlp_context_set_precision
    end function

    function cumlp_context_precision(ctx) bind(C, name="cumlp_context_precision")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_precision
    end function

    function cumlp_context_set_epilogues(ctx, epilogues) &
        bind(C, name="cumlp_context_set_epilogues")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int), value :: epilogues
      integer(c_int) :: cumlp_context_set_epilogues
    end function

    function cumlp_context_epilogues(ctx) bind(C, name="cumlp_context_epilogues")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_epilogues
    end function

    function cumlp_context_set_graphs(ctx, on) bind(C, name="cumlp_context_set_graphs")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int), value :: on
      integer(c_int) :: cumlp_context_set_graphs
    end function

    function cumlp_context_graphs(ctx) bind(C, name="cumlp_context_graphs")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_graphs
    end function

    function cumlp_c_epilogues_name(epilogues) bind(C, name="cumlp_epilogues_name")
      import :: c_int, c_ptr
      integer(c_int), value :: epilogues
      type(c_ptr) :: cumlp_c_epilogues_name
    end function

    ! name: a C string (cumlp_cstr(name)); epilogues is left unchanged when the name is unknown.
    function cumlp_c_epilogues_from_name(name, epilogues) &
        bind(C, name="cumlp_epilogues_from_name")
      import :: c_char, c_int
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: epilogues
      integer(c_int) :: cumlp_c_epilogues_from_name
    end function

    function cumlp_c_precision_name(precision) bind(C, name="cumlp_precision_name")
      import :: c_int, c_ptr
      integer(c_int), value :: precision
      type(c_ptr) :: cumlp_c_precision_name
    end function

    ! name: a C string (cumlp_cstr(name)); precision is left unchanged when the name is unknown.
    function cumlp_c_precision_from_name(name, precision) &
        bind(C, name="cumlp_precision_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: precision
      integer(c_int) :: cumlp_c_precision_from_name
    end function

    ! cumlp 0.1.0's name of cumlp_context_set_precision.
    function cumlp_context_set_math_mode(ctx, math_mode) &
        bind(C, name="cumlp_context_set_math_mode")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int), value :: math_mode
      integer(c_int) :: cumlp_context_set_math_mode
    end function

    ! buf receives at most buf_size - 1 characters and a NUL; cumlp_describe() below is simpler.
    function cumlp_context_describe(ctx, buf, buf_size) bind(C, name="cumlp_context_describe")
      import :: c_int, c_ptr, c_char, c_size_t
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(out) :: buf(*)
      integer(c_size_t), value :: buf_size
      integer(c_int) :: cumlp_context_describe
    end function

    function cumlp_context_memory(ctx, in_use_bytes, peak_bytes) &
        bind(C, name="cumlp_context_memory")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ctx
      integer(c_int64_t), intent(out) :: in_use_bytes, peak_bytes
      integer(c_int) :: cumlp_context_memory
    end function

    function cumlp_context_reset_peak_memory(ctx) bind(C, name="cumlp_context_reset_peak_memory")
      import :: c_int, c_ptr
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_context_reset_peak_memory
    end function

    ! ---- tensors: fp32 matrices in the context's memory (device memory on the cuda backend) ----
    function cumlp_tensor_create(ctx, rows, cols, tensor) bind(C, name="cumlp_tensor_create")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ctx
      integer(c_int64_t), value :: rows, cols
      type(c_ptr), intent(out) :: tensor
      integer(c_int) :: cumlp_tensor_create
    end function

    function cumlp_tensor_create_view(parent, first_col, num_cols, view) &
        bind(C, name="cumlp_tensor_create_view")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: parent
      integer(c_int64_t), value :: first_col, num_cols
      type(c_ptr), intent(out) :: view
      integer(c_int) :: cumlp_tensor_create_view
    end function

    ! data: c_loc of caller memory (a device pointer on the cuda backend); see the manual.
    function cumlp_tensor_wrap(ctx, data, rows, cols, tensor) bind(C, name="cumlp_tensor_wrap")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ctx, data
      integer(c_int64_t), value :: rows, cols
      type(c_ptr), intent(out) :: tensor
      integer(c_int) :: cumlp_tensor_wrap
    end function

    subroutine cumlp_tensor_destroy(tensor) bind(C, name="cumlp_tensor_destroy")
      import :: c_ptr
      type(c_ptr), value :: tensor
    end subroutine

    function cumlp_tensor_rows(tensor) bind(C, name="cumlp_tensor_rows")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: tensor
      integer(c_int64_t) :: cumlp_tensor_rows
    end function

    function cumlp_tensor_cols(tensor) bind(C, name="cumlp_tensor_cols")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: tensor
      integer(c_int64_t) :: cumlp_tensor_cols
    end function

    function cumlp_tensor_data(tensor) bind(C, name="cumlp_tensor_data")
      import :: c_ptr
      type(c_ptr), value :: tensor
      type(c_ptr) :: cumlp_tensor_data
    end function

    ! host: a rows x cols array (or any contiguous array of count elements), column-major.
    function cumlp_tensor_upload(tensor, host, count) bind(C, name="cumlp_tensor_upload")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: tensor
      real(c_float), intent(in) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_tensor_upload
    end function

    function cumlp_tensor_download(tensor, host, count) bind(C, name="cumlp_tensor_download")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: tensor
      real(c_float), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_tensor_download
    end function

    function cumlp_tensor_upload_f64(tensor, host, count) bind(C, name="cumlp_tensor_upload_f64")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: tensor
      real(c_double), intent(in) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_tensor_upload_f64
    end function

    function cumlp_tensor_download_f64(tensor, host, count) &
        bind(C, name="cumlp_tensor_download_f64")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: tensor
      real(c_double), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_tensor_download_f64
    end function

    ! ---- networks: create, shape queries, parameters (flat and per layer), freezing -------------
    function cumlp_c_activation_name(activation) bind(C, name="cumlp_activation_name")
      import :: c_int, c_ptr
      integer(c_int), value :: activation
      type(c_ptr) :: cumlp_c_activation_name
    end function

    ! name: a C string (cumlp_cstr(name)); activation is left unchanged for an unknown name.
    function cumlp_c_activation_from_name(name, activation) &
        bind(C, name="cumlp_activation_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: activation
      integer(c_int) :: cumlp_c_activation_from_name
    end function

    function cumlp_c_loss_name(loss) bind(C, name="cumlp_loss_name")
      import :: c_int, c_ptr
      integer(c_int), value :: loss
      type(c_ptr) :: cumlp_c_loss_name
    end function

    ! name: a C string (cumlp_cstr(name)); loss is left unchanged when the name is unknown.
    function cumlp_c_loss_from_name(name, loss) bind(C, name="cumlp_loss_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: loss
      integer(c_int) :: cumlp_c_loss_from_name
    end function

    function cumlp_c_init_name(init) bind(C, name="cumlp_init_name")
      import :: c_int, c_ptr
      integer(c_int), value :: init
      type(c_ptr) :: cumlp_c_init_name
    end function

    ! name: a C string (cumlp_cstr(name)); init is left unchanged when the name is unknown.
    function cumlp_c_init_from_name(name, init) bind(C, name="cumlp_init_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: init
      integer(c_int) :: cumlp_c_init_from_name
    end function

    function cumlp_network_defaults(options) bind(C, name="cumlp_network_defaults")
      import :: c_int, cumlp_network_options
      type(cumlp_network_options), intent(out) :: options
      integer(c_int) :: cumlp_network_defaults
    end function

    ! widths(0:num_layers) (input width first), activations(num_layers) of CUMLP_ACT_*.
    function cumlp_network_create(ctx, num_layers, widths, activations, options, net) &
        bind(C, name="cumlp_network_create")
      import :: c_int, c_ptr, c_int64_t, cumlp_network_options
      type(c_ptr), value :: ctx
      integer(c_int), value :: num_layers
      integer(c_int64_t), intent(in) :: widths(*)
      integer(c_int), intent(in) :: activations(*)
      type(cumlp_network_options), intent(in) :: options
      type(c_ptr), intent(out) :: net
      integer(c_int) :: cumlp_network_create
    end function

    subroutine cumlp_network_destroy(net) bind(C, name="cumlp_network_destroy")
      import :: c_ptr
      type(c_ptr), value :: net
    end subroutine

    function cumlp_network_num_layers(net) bind(C, name="cumlp_network_num_layers")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: cumlp_network_num_layers
    end function

    function cumlp_network_width(net, i) bind(C, name="cumlp_network_width")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: net
      integer(c_int), value :: i
      integer(c_int64_t) :: cumlp_network_width
    end function

    function cumlp_network_activation(net, layer) bind(C, name="cumlp_network_activation")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: layer
      integer(c_int) :: cumlp_network_activation
    end function

    function cumlp_network_loss(net) bind(C, name="cumlp_network_loss")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: cumlp_network_loss
    end function

    function cumlp_network_context(net) bind(C, name="cumlp_network_context")
      import :: c_ptr
      type(c_ptr), value :: net
      type(c_ptr) :: cumlp_network_context
    end function

    function cumlp_network_num_parameters(net) bind(C, name="cumlp_network_num_parameters")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: net
      integer(c_int64_t) :: cumlp_network_num_parameters
    end function

    function cumlp_network_get_parameters(net, host, count) &
        bind(C, name="cumlp_network_get_parameters")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: net
      real(c_float), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_get_parameters
    end function

    function cumlp_network_set_parameters(net, host, count) &
        bind(C, name="cumlp_network_set_parameters")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: net
      real(c_float), intent(in) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_set_parameters
    end function

    function cumlp_network_get_parameters_f64(net, host, count) &
        bind(C, name="cumlp_network_get_parameters_f64")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: net
      real(c_double), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_get_parameters_f64
    end function

    function cumlp_network_set_parameters_f64(net, host, count) &
        bind(C, name="cumlp_network_set_parameters_f64")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: net
      real(c_double), intent(in) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_set_parameters_f64
    end function

    ! The four layer calls take pointers that may be NULL: the module procedures
    ! cumlp_network_get_layer(_f64) / cumlp_network_set_layer(_f64) below wrap these.
    function cumlp_c_network_get_layer(net, layer, weights, biases) &
        bind(C, name="cumlp_network_get_layer")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, weights, biases
      integer(c_int), value :: layer
      integer(c_int) :: cumlp_c_network_get_layer
    end function

    function cumlp_c_network_set_layer(net, layer, weights, biases) &
        bind(C, name="cumlp_network_set_layer")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, weights, biases
      integer(c_int), value :: layer
      integer(c_int) :: cumlp_c_network_set_layer
    end function

    function cumlp_c_network_get_layer_f64(net, layer, weights, biases) &
        bind(C, name="cumlp_network_get_layer_f64")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, weights, biases
      integer(c_int), value :: layer
      integer(c_int) :: cumlp_c_network_get_layer_f64
    end function

    function cumlp_c_network_set_layer_f64(net, layer, weights, biases) &
        bind(C, name="cumlp_network_set_layer_f64")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, weights, biases
      integer(c_int), value :: layer
      integer(c_int) :: cumlp_c_network_set_layer_f64
    end function

    function cumlp_network_freeze(net, layer, freeze_weights, freeze_biases) &
        bind(C, name="cumlp_network_freeze")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: layer, freeze_weights, freeze_biases
      integer(c_int) :: cumlp_network_freeze
    end function

    ! ---- forward, loss and backward passes, gradients -------------------------------------------
    function cumlp_forward(net, x, y) bind(C, name="cumlp_forward")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, x, y
      integer(c_int) :: cumlp_forward
    end function

    ! loss may be NULL: wrapped by cumlp_loss_backward below (loss OPTIONAL).
    function cumlp_c_loss_backward(net, x, t, loss) bind(C, name="cumlp_loss_backward")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, x, t, loss
      integer(c_int) :: cumlp_c_loss_backward
    end function

    function cumlp_evaluate_loss(net, x, t, loss) bind(C, name="cumlp_evaluate_loss")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: net, x, t
      real(c_double), intent(out) :: loss
      integer(c_int) :: cumlp_evaluate_loss
    end function

    function cumlp_network_get_gradients(net, host, count) &
        bind(C, name="cumlp_network_get_gradients")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: net
      real(c_float), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_get_gradients
    end function

    function cumlp_network_get_gradients_f64(net, host, count) &
        bind(C, name="cumlp_network_get_gradients_f64")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: net
      real(c_double), intent(out) :: host(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_network_get_gradients_f64
    end function

    function cumlp_loss_scaler_defaults(scaler) bind(C, name="cumlp_loss_scaler_defaults")
      import :: c_int, cumlp_loss_scaler
      type(cumlp_loss_scaler), intent(out) :: scaler
      integer(c_int) :: cumlp_loss_scaler_defaults
    end function

    function cumlp_network_get_loss_scaler(net, scaler) &
        bind(C, name="cumlp_network_get_loss_scaler")
      import :: c_int, c_ptr, cumlp_loss_scaler
      type(c_ptr), value :: net
      type(cumlp_loss_scaler), intent(out) :: scaler
      integer(c_int) :: cumlp_network_get_loss_scaler
    end function

    function cumlp_network_set_loss_scaler(net, scaler) &
        bind(C, name="cumlp_network_set_loss_scaler")
      import :: c_int, c_ptr, cumlp_loss_scaler
      type(c_ptr), value :: net
      type(cumlp_loss_scaler), intent(in) :: scaler
      integer(c_int) :: cumlp_network_set_loss_scaler
    end function

    ! ---- optimizers: SGD, momentum, Nesterov, the Adam family, RMSprop, Adagrad, Adadelta --------
    function cumlp_c_optimizer_name(type) bind(C, name="cumlp_optimizer_name")
      import :: c_int, c_ptr
      integer(c_int), value :: type
      type(c_ptr) :: cumlp_c_optimizer_name
    end function

    ! name: a C string (cumlp_cstr(name)); type is left unchanged when the name is unknown.
    function cumlp_c_optimizer_from_name(name, type) bind(C, name="cumlp_optimizer_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: type
      integer(c_int) :: cumlp_c_optimizer_from_name
    end function

    function cumlp_optimizer_defaults(options) bind(C, name="cumlp_optimizer_defaults")
      import :: c_int, cumlp_optimizer_options
      type(cumlp_optimizer_options), intent(out) :: options
      integer(c_int) :: cumlp_optimizer_defaults
    end function

    function cumlp_optimizer_defaults_for(type, options) &
        bind(C, name="cumlp_optimizer_defaults_for")
      import :: c_int, cumlp_optimizer_options
      integer(c_int), value :: type
      type(cumlp_optimizer_options), intent(out) :: options
      integer(c_int) :: cumlp_optimizer_defaults_for
    end function

    function cumlp_optimizer_create(net, options, opt) bind(C, name="cumlp_optimizer_create")
      import :: c_int, c_ptr, cumlp_optimizer_options
      type(c_ptr), value :: net
      type(cumlp_optimizer_options), intent(in) :: options
      type(c_ptr), intent(out) :: opt
      integer(c_int) :: cumlp_optimizer_create
    end function

    subroutine cumlp_optimizer_destroy(opt) bind(C, name="cumlp_optimizer_destroy")
      import :: c_ptr
      type(c_ptr), value :: opt
    end subroutine

    function cumlp_optimizer_set_learning_rate(opt, learning_rate) &
        bind(C, name="cumlp_optimizer_set_learning_rate")
      import :: c_int, c_ptr, c_double
      type(c_ptr), value :: opt
      real(c_double), value :: learning_rate
      integer(c_int) :: cumlp_optimizer_set_learning_rate
    end function

    function cumlp_optimizer_learning_rate(opt) bind(C, name="cumlp_optimizer_learning_rate")
      import :: c_ptr, c_double
      type(c_ptr), value :: opt
      real(c_double) :: cumlp_optimizer_learning_rate
    end function

    function cumlp_optimizer_step_count(opt) bind(C, name="cumlp_optimizer_step_count")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: opt
      integer(c_int64_t) :: cumlp_optimizer_step_count
    end function

    function cumlp_optimizer_skipped_steps(opt) bind(C, name="cumlp_optimizer_skipped_steps")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: opt
      integer(c_int64_t) :: cumlp_optimizer_skipped_steps
    end function

    function cumlp_optimizer_gradient_norm(opt) bind(C, name="cumlp_optimizer_gradient_norm")
      import :: c_ptr, c_double
      type(c_ptr), value :: opt
      real(c_double) :: cumlp_optimizer_gradient_norm
    end function

    function cumlp_optimizer_step(opt) bind(C, name="cumlp_optimizer_step")
      import :: c_int, c_ptr
      type(c_ptr), value :: opt
      integer(c_int) :: cumlp_optimizer_step
    end function

    ! cumlp_train_step without the wait (cumlp.h); cumlp_optimizer_sync reads what the steps
    ! came to.
    function cumlp_train_step_async(net, opt, x, t) bind(C, name="cumlp_train_step_async")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, opt, x, t
      integer(c_int) :: cumlp_train_step_async
    end function

    function cumlp_optimizer_sync(opt, summary) bind(C, name="cumlp_optimizer_sync")
      import :: c_int, c_ptr, cumlp_step_summary
      type(c_ptr), value :: opt
      type(cumlp_step_summary), intent(out) :: summary
      integer(c_int) :: cumlp_optimizer_sync
    end function

    ! loss may be NULL: wrapped by cumlp_train_step below (loss OPTIONAL).
    function cumlp_c_train_step(net, opt, x, t, loss) bind(C, name="cumlp_train_step")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, opt, x, t, loss
      integer(c_int) :: cumlp_c_train_step
    end function

    ! ---- gradient check against finite differences --------------------------------------------
    ! max_rel_error(2 * num_layers): for layer l (0-based), (2l + 1) is W's and (2l + 2) b's.
    function cumlp_gradient_check(net, x, t, step_size, max_rel_error, count) &
        bind(C, name="cumlp_gradient_check")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: net, x, t
      real(c_double), value :: step_size
      real(c_double), intent(out) :: max_rel_error(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_gradient_check
    end function

    ! ---- checkpoints (safetensors); paths end in c_null_char -----------------------------------
    ! opt: an optimizer of net whose state is saved too, or c_null_ptr for none.
    function cumlp_checkpoint_save(net, opt, path) bind(C, name="cumlp_checkpoint_save")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: net, opt
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: cumlp_checkpoint_save
    end function

    ! opt may be NULL: wrapped by cumlp_checkpoint_load below (opt OPTIONAL).
    function cumlp_c_checkpoint_load(ctx, path, flags, net, opt) &
        bind(C, name="cumlp_checkpoint_load")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: flags
      type(c_ptr), intent(out) :: net
      type(c_ptr), value :: opt
      integer(c_int) :: cumlp_c_checkpoint_load
    end function

    ! opt: an optimizer of net to restore too, or c_null_ptr.
    function cumlp_checkpoint_load_into(net, opt, path, flags) &
        bind(C, name="cumlp_checkpoint_load_into")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: net, opt
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: flags
      integer(c_int) :: cumlp_checkpoint_load_into
    end function

    ! opt may be NULL: wrapped by cumlp_checkpoint_load_memory below (opt OPTIONAL).
    function cumlp_c_checkpoint_load_memory(ctx, data, size, flags, net, opt) &
        bind(C, name="cumlp_checkpoint_load_memory")
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: ctx, data
      integer(c_size_t), value :: size
      integer(c_int), value :: flags
      type(c_ptr), intent(out) :: net
      type(c_ptr), value :: opt
      integer(c_int) :: cumlp_c_checkpoint_load_memory
    end function

    function cumlp_model_info_defaults(info) bind(C, name="cumlp_model_info_defaults")
      import :: c_int, cumlp_model_info
      type(cumlp_model_info), intent(out) :: info
      integer(c_int) :: cumlp_model_info_defaults
    end function

    ! opt and scaler may be c_null_ptr (none); info is a filled cumlp_model_info (task
    ! CUMLP_TASK_UNKNOWN records nothing).
    function cumlp_checkpoint_save_with(net, opt, scaler, info, path) &
        bind(C, name="cumlp_checkpoint_save_with")
      import :: c_int, c_ptr, c_char, cumlp_model_info
      type(c_ptr), value :: net, opt, scaler
      type(cumlp_model_info), intent(in) :: info
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int) :: cumlp_checkpoint_save_with
    end function

    ! opt, scaler and info may be NULL: wrapped by cumlp_checkpoint_load_with below (OPTIONAL).
    function cumlp_c_checkpoint_load_with(ctx, path, flags, net, opt, scaler, info) &
        bind(C, name="cumlp_checkpoint_load_with")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: flags
      type(c_ptr), intent(out) :: net
      type(c_ptr), value :: opt, scaler, info
      integer(c_int) :: cumlp_c_checkpoint_load_with
    end function

    ! opt, scaler and info may be NULL: wrapped by cumlp_checkpoint_load_memory_with below.
    function cumlp_c_checkpoint_load_memory_with(ctx, data, size, flags, net, opt, scaler, info) &
        bind(C, name="cumlp_checkpoint_load_memory_with")
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: ctx, data
      integer(c_size_t), value :: size
      integer(c_int), value :: flags
      type(c_ptr), intent(out) :: net
      type(c_ptr), value :: opt, scaler, info
      integer(c_int) :: cumlp_c_checkpoint_load_memory_with
    end function

    ! ---- datasets (host memory): n_features x n_samples features, n_outputs x n_samples targets -
    ! Samples and classes are numbered from 0, as in C. ctx may be c_null_ptr (messages then go to
    ! cumlp_last_error(c_null_ptr)); it must outlive the dataset.
    function cumlp_dataset_create(ctx, n_features, n_outputs, n_samples, num_classes, ds) &
        bind(C, name="cumlp_dataset_create")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ctx
      integer(c_int64_t), value :: n_features, n_outputs, n_samples
      integer(c_int), value :: num_classes
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_create
    end function

    subroutine cumlp_dataset_destroy(ds) bind(C, name="cumlp_dataset_destroy")
      import :: c_ptr
      type(c_ptr), value :: ds
    end subroutine

    function cumlp_dataset_num_samples(ds) bind(C, name="cumlp_dataset_num_samples")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t) :: cumlp_dataset_num_samples
    end function

    function cumlp_dataset_num_features(ds) bind(C, name="cumlp_dataset_num_features")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t) :: cumlp_dataset_num_features
    end function

    function cumlp_dataset_num_outputs(ds) bind(C, name="cumlp_dataset_num_outputs")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t) :: cumlp_dataset_num_outputs
    end function

    function cumlp_dataset_num_classes(ds) bind(C, name="cumlp_dataset_num_classes")
      import :: c_int, c_ptr
      type(c_ptr), value :: ds
      integer(c_int) :: cumlp_dataset_num_classes
    end function

    ! The dataset's own memory; the module procedures cumlp_dataset_features/targets below give it
    ! as a Fortran array pointer.
    function cumlp_c_dataset_features(ds) bind(C, name="cumlp_dataset_features")
      import :: c_ptr
      type(c_ptr), value :: ds
      type(c_ptr) :: cumlp_c_dataset_features
    end function

    function cumlp_c_dataset_targets(ds) bind(C, name="cumlp_dataset_targets")
      import :: c_ptr
      type(c_ptr), value :: ds
      type(c_ptr) :: cumlp_c_dataset_targets
    end function

    ! The class (from 0) of sample i (from 0); -1 for regression or i out of range.
    function cumlp_dataset_label(ds, i) bind(C, name="cumlp_dataset_label")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t), value :: i
      integer(c_int) :: cumlp_dataset_label
    end function

    ! labels(count): classes from 0, one per sample.
    function cumlp_dataset_set_labels(ds, labels, count) bind(C, name="cumlp_dataset_set_labels")
      import :: c_int, c_ptr, c_int32_t, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int32_t), intent(in) :: labels(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_dataset_set_labels
    end function

    ! ---- dataset readers; paths end in c_null_char (cumlp_cstr(path)) ---------------------------
    function cumlp_dataset_read_idx(ctx, images_path, labels_path, num_classes, ds) &
        bind(C, name="cumlp_dataset_read_idx")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: images_path(*), labels_path(*)
      integer(c_int), value :: num_classes
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_idx
    end function

    ! images, labels: c_loc of the first of images_size (labels_size) bytes (target arrays).
    function cumlp_dataset_read_idx_memory(ctx, images, images_size, labels, labels_size, &
        num_classes, ds) bind(C, name="cumlp_dataset_read_idx_memory")
      import :: c_int, c_ptr, c_size_t
      type(c_ptr), value :: ctx, images, labels
      integer(c_size_t), value :: images_size, labels_size
      integer(c_int), value :: num_classes
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_idx_memory
    end function

    function cumlp_csv_defaults(options) bind(C, name="cumlp_csv_defaults")
      import :: c_int, cumlp_csv_options
      type(cumlp_csv_options), intent(out) :: options
      integer(c_int) :: cumlp_csv_defaults
    end function

    function cumlp_dataset_read_csv(ctx, path, options, ds) bind(C, name="cumlp_dataset_read_csv")
      import :: c_int, c_ptr, c_char, cumlp_csv_options
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: path(*)
      type(cumlp_csv_options), intent(in) :: options
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_csv
    end function

    ! text: a character string (no c_null_char needed), size = len(text, c_size_t); lines end in
    ! new_line('a') (char(10)).
    function cumlp_dataset_read_csv_memory(ctx, text, size, options, ds) &
        bind(C, name="cumlp_dataset_read_csv_memory")
      import :: c_int, c_ptr, c_char, c_size_t, cumlp_csv_options
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: text(*)
      integer(c_size_t), value :: size
      type(cumlp_csv_options), intent(in) :: options
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_csv_memory
    end function

    function cumlp_dataset_read_fann(ctx, path, classification, ds) &
        bind(C, name="cumlp_dataset_read_fann")
      import :: c_int, c_ptr, c_char
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: path(*)
      integer(c_int), value :: classification
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_fann
    end function

    function cumlp_dataset_read_fann_memory(ctx, text, size, classification, ds) &
        bind(C, name="cumlp_dataset_read_fann_memory")
      import :: c_int, c_ptr, c_char, c_size_t
      type(c_ptr), value :: ctx
      character(kind=c_char), intent(in) :: text(*)
      integer(c_size_t), value :: size
      integer(c_int), value :: classification
      type(c_ptr), intent(out) :: ds
      integer(c_int) :: cumlp_dataset_read_fann_memory
    end function

    ! ---- shuffles, subsets and splits ---------------------------------------------------------
    ! seed: C uint64_t.
    function cumlp_dataset_shuffle(ds, seed) bind(C, name="cumlp_dataset_shuffle")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t), value :: seed
      integer(c_int) :: cumlp_dataset_shuffle
    end function

    ! Samples first .. first + count - 1, counted from 0.
    function cumlp_dataset_subset(ds, first, count, out) bind(C, name="cumlp_dataset_subset")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: ds
      integer(c_int64_t), value :: first, count
      type(c_ptr), intent(out) :: out
      integer(c_int) :: cumlp_dataset_subset
    end function

    function cumlp_dataset_split(ds, validation_fraction, seed, train, validation) &
        bind(C, name="cumlp_dataset_split")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: ds
      real(c_double), value :: validation_fraction
      integer(c_int64_t), value :: seed
      type(c_ptr), intent(out) :: train, validation
      integer(c_int) :: cumlp_dataset_split
    end function

    ! ds keeps the training samples: its features and targets arrays change (take new views).
    function cumlp_dataset_split_off(ds, validation_fraction, seed, validation) &
        bind(C, name="cumlp_dataset_split_off")
      import :: c_int, c_ptr, c_double, c_int64_t
      type(c_ptr), value :: ds
      real(c_double), value :: validation_fraction
      integer(c_int64_t), value :: seed
      type(c_ptr), intent(out) :: validation
      integer(c_int) :: cumlp_dataset_split_off
    end function

    ! ---- feature scaling: x -> (x - offset) * scale -------------------------------------------
    ! method: a CUMLP_SCALE_*; per_feature: 1 per feature, 0 one pair for all features.
    function cumlp_scaler_fit(train, method, per_feature, scaler) bind(C, name="cumlp_scaler_fit")
      import :: c_int, c_ptr
      type(c_ptr), value :: train
      integer(c_int), value :: method, per_feature
      type(c_ptr), intent(out) :: scaler
      integer(c_int) :: cumlp_scaler_fit
    end function

    ! ctx may be c_null_ptr.
    function cumlp_scaler_create(ctx, count, offsets, scales, scaler) &
        bind(C, name="cumlp_scaler_create")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: ctx
      integer(c_int64_t), value :: count
      real(c_float), intent(in) :: offsets(*), scales(*)
      type(c_ptr), intent(out) :: scaler
      integer(c_int) :: cumlp_scaler_create
    end function

    subroutine cumlp_scaler_destroy(scaler) bind(C, name="cumlp_scaler_destroy")
      import :: c_ptr
      type(c_ptr), value :: scaler
    end subroutine

    function cumlp_scaler_num_features(scaler) bind(C, name="cumlp_scaler_num_features")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: scaler
      integer(c_int64_t) :: cumlp_scaler_num_features
    end function

    ! offsets and scales may be NULL: wrapped by cumlp_scaler_get below (both OPTIONAL).
    function cumlp_c_scaler_get(scaler, offsets, scales, count) bind(C, name="cumlp_scaler_get")
      import :: c_int, c_ptr, c_int64_t
      type(c_ptr), value :: scaler, offsets, scales
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_c_scaler_get
    end function

    function cumlp_scaler_apply(scaler, ds) bind(C, name="cumlp_scaler_apply")
      import :: c_int, c_ptr
      type(c_ptr), value :: scaler, ds
      integer(c_int) :: cumlp_scaler_apply
    end function

    ! ---- the training loop, evaluation and prediction -----------------------------------------
    function cumlp_c_schedule_name(schedule) bind(C, name="cumlp_schedule_name")
      import :: c_int, c_ptr
      integer(c_int), value :: schedule
      type(c_ptr) :: cumlp_c_schedule_name
    end function

    ! name: a C string (cumlp_cstr(name)); schedule is left unchanged when the name is unknown.
    function cumlp_c_schedule_from_name(name, schedule) bind(C, name="cumlp_schedule_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: schedule
      integer(c_int) :: cumlp_c_schedule_from_name
    end function

    function cumlp_c_task_name(task) bind(C, name="cumlp_task_name")
      import :: c_int, c_ptr
      integer(c_int), value :: task
      type(c_ptr) :: cumlp_c_task_name
    end function

    ! name: a C string (cumlp_cstr(name)); task is left unchanged when the name is unknown.
    function cumlp_c_task_from_name(name, task) bind(C, name="cumlp_task_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: task
      integer(c_int) :: cumlp_c_task_from_name
    end function

    function cumlp_fit_defaults(options) bind(C, name="cumlp_fit_defaults")
      import :: c_int, cumlp_fit_options
      type(cumlp_fit_options), intent(out) :: options
      integer(c_int) :: cumlp_fit_defaults
    end function

    ! The rate of epoch `epoch` (from 0) under options' schedule, from base_rate.
    function cumlp_schedule_learning_rate(options, base_rate, epoch, rate) &
        bind(C, name="cumlp_schedule_learning_rate")
      import :: c_int, c_double, cumlp_fit_options
      type(cumlp_fit_options), intent(in) :: options
      real(c_double), value :: base_rate
      integer(c_int), value :: epoch
      real(c_double), intent(out) :: rate
      integer(c_int) :: cumlp_schedule_learning_rate
    end function

    ! options and result may be NULL: wrapped by cumlp_fit below (result OPTIONAL).
    function cumlp_c_fit(net, opt, train, validation, options, result) bind(C, name="cumlp_fit")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, opt, train, validation, options, result
      integer(c_int) :: cumlp_c_fit
    end function

    ! ---- data-parallel training over MPI (and NCCL) -----------------------------------------
    function cumlp_c_transport_name(transport) bind(C, name="cumlp_transport_name")
      import :: c_int, c_ptr
      integer(c_int), value :: transport
      type(c_ptr) :: cumlp_c_transport_name
    end function

    ! name: a C string (cumlp_cstr(name)); transport is left unchanged when the name is unknown.
    function cumlp_c_transport_from_name(name, transport) &
        bind(C, name="cumlp_transport_from_name")
      import :: c_int, c_char
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int), intent(inout) :: transport
      integer(c_int) :: cumlp_c_transport_from_name
    end function

    function cumlp_transport_is_built(transport) bind(C, name="cumlp_transport_is_built")
      import :: c_int
      integer(c_int), value :: transport
      integer(c_int) :: cumlp_transport_is_built
    end function

    ! comm: the communicator's Fortran handle (MPI_COMM_WORLD of `use mpi`); collective.
    function cumlp_network_set_comm_f(net, comm, transport) bind(C, name="cumlp_network_set_comm_f")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int), value :: comm, transport
      integer(c_int) :: cumlp_network_set_comm_f
    end function

    ! Collective over comm: the status of the lowest rank that failed, on every rank.
    function cumlp_mpi_agree_f(comm, status, ctx) bind(C, name="cumlp_mpi_agree_f")
      import :: c_int, c_ptr
      integer(c_int), value :: comm, status
      type(c_ptr), value :: ctx
      integer(c_int) :: cumlp_mpi_agree_f
    end function

    function cumlp_network_num_ranks(net) bind(C, name="cumlp_network_num_ranks")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: cumlp_network_num_ranks
    end function

    function cumlp_network_rank(net) bind(C, name="cumlp_network_rank")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: cumlp_network_rank
    end function

    function cumlp_network_transport(net) bind(C, name="cumlp_network_transport")
      import :: c_int, c_ptr
      type(c_ptr), value :: net
      integer(c_int) :: cumlp_network_transport
    end function

    ! opt: an optimizer of net, or c_null_ptr for the parameters alone; collective.
    function cumlp_network_broadcast(net, opt) bind(C, name="cumlp_network_broadcast")
      import :: c_int, c_ptr
      type(c_ptr), value :: net, opt
      integer(c_int) :: cumlp_network_broadcast
    end function

    ! batch_size 0 selects 256.
    function cumlp_evaluate(net, ds, batch_size, result) bind(C, name="cumlp_evaluate")
      import :: c_int, c_ptr, c_int64_t, cumlp_eval_result
      type(c_ptr), value :: net, ds
      integer(c_int64_t), value :: batch_size
      type(cumlp_eval_result), intent(out) :: result
      integer(c_int) :: cumlp_evaluate
    end function

    ! out: an n_outputs x n_samples array (count = its size), one sample's outputs per column.
    function cumlp_predict(net, ds, batch_size, out, count) bind(C, name="cumlp_predict")
      import :: c_int, c_ptr, c_float, c_int64_t
      type(c_ptr), value :: net, ds
      integer(c_int64_t), value :: batch_size
      real(c_float), intent(out) :: out(*)
      integer(c_int64_t), value :: count
      integer(c_int) :: cumlp_predict
    end function

    ! C library strlen, for the string helpers.
    function cumlp_c_strlen(s) bind(C, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: s
      integer(c_size_t) :: cumlp_c_strlen
    end function
  end interface

contains

  ! ---- strings: C's const char * as Fortran character(:), allocatable ---------------------------

  ! Copies the NUL-terminated C string at p ("" for c_null_ptr).
  function c_string_to_fortran(p) result(s)
    type(c_ptr), intent(in) :: p
    character(:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    if (.not. c_associated(p)) then
      s = ''
      return
    end if
    n = int(cumlp_c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(n) :: s)
    do i = 1, n
      s(i:i) = chars(i)
    end do
  end function

  ! s as a C string for path arguments: trailing blanks removed, c_null_char appended.
  function cumlp_cstr(s) result(c)
    character(*), intent(in) :: s
    character(kind=c_char, len=:), allocatable :: c
    c = trim(s) // c_null_char
  end function

  function cumlp_version_string() result(s)
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_version_string())
  end function

  function cumlp_status_string(status) result(s)
    integer(c_int), intent(in) :: status
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_status_string(status))
  end function

  ! The message of the last failed call in ctx; c_null_ptr for the per-thread one.
  function cumlp_last_error(ctx) result(s)
    type(c_ptr), intent(in) :: ctx
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_last_error(ctx))
  end function

  function cumlp_backend_name(backend) result(s)
    integer(c_int), intent(in) :: backend
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_backend_name(backend))
  end function

  function cumlp_precision_name(precision) result(s)
    integer(c_int), intent(in) :: precision
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_precision_name(precision))
  end function

  function cumlp_epilogues_name(epilogues) result(s)
    integer(c_int), intent(in) :: epilogues
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_epilogues_name(epilogues))
  end function

  function cumlp_activation_name(activation) result(s)
    integer(c_int), intent(in) :: activation
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_activation_name(activation))
  end function

  function cumlp_loss_name(loss) result(s)
    integer(c_int), intent(in) :: loss
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_loss_name(loss))
  end function

  function cumlp_init_name(init) result(s)
    integer(c_int), intent(in) :: init
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_init_name(init))
  end function

  function cumlp_optimizer_name(type) result(s)
    integer(c_int), intent(in) :: type
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_optimizer_name(type))
  end function

  function cumlp_schedule_name(schedule) result(s)
    integer(c_int), intent(in) :: schedule
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_schedule_name(schedule))
  end function

  function cumlp_task_name(task) result(s)
    integer(c_int), intent(in) :: task
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_task_name(task))
  end function

  function cumlp_transport_name(transport) result(s)
    integer(c_int), intent(in) :: transport
    character(:), allocatable :: s
    s = c_string_to_fortran(cumlp_c_transport_name(transport))
  end function

  ! cumlp_context_describe's one line ("" if the call fails).
  function cumlp_describe(ctx) result(s)
    type(c_ptr), intent(in) :: ctx
    character(:), allocatable :: s
    character(kind=c_char), target :: buf(512)
    buf = c_null_char
    if (cumlp_context_describe(ctx, buf, int(size(buf), c_size_t)) /= CUMLP_SUCCESS) then
      s = ''
      return
    end if
    s = c_string_to_fortran(c_loc(buf))
  end function

  ! ---- name parsers: a Fortran name (trailing blanks ignored) into a value ----------------------
  ! The value is INTENT(INOUT): on failure (CUMLP_ERROR_INVALID_VALUE, the accepted names in
  ! cumlp_last_error(c_null_ptr)) it keeps the value it had, as in C. With INTENT(OUT) it would be
  ! undefined, and gfortran may drop the caller's store before the call.

  function cumlp_backend_from_name(name, backend) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: backend
    integer(c_int) :: status
    status = cumlp_c_backend_from_name(cumlp_cstr(name), backend)
  end function

  function cumlp_precision_from_name(name, precision) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: precision
    integer(c_int) :: status
    status = cumlp_c_precision_from_name(cumlp_cstr(name), precision)
  end function

  function cumlp_epilogues_from_name(name, epilogues) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: epilogues
    integer(c_int) :: status
    status = cumlp_c_epilogues_from_name(cumlp_cstr(name), epilogues)
  end function

  function cumlp_activation_from_name(name, activation) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: activation
    integer(c_int) :: status
    status = cumlp_c_activation_from_name(cumlp_cstr(name), activation)
  end function

  function cumlp_loss_from_name(name, loss) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: loss
    integer(c_int) :: status
    status = cumlp_c_loss_from_name(cumlp_cstr(name), loss)
  end function

  function cumlp_init_from_name(name, init) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: init
    integer(c_int) :: status
    status = cumlp_c_init_from_name(cumlp_cstr(name), init)
  end function

  function cumlp_optimizer_from_name(name, type) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: type
    integer(c_int) :: status
    status = cumlp_c_optimizer_from_name(cumlp_cstr(name), type)
  end function

  function cumlp_schedule_from_name(name, schedule) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: schedule
    integer(c_int) :: status
    status = cumlp_c_schedule_from_name(cumlp_cstr(name), schedule)
  end function

  function cumlp_task_from_name(name, task) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: task
    integer(c_int) :: status
    status = cumlp_c_task_from_name(cumlp_cstr(name), task)
  end function

  function cumlp_transport_from_name(name, transport) result(status)
    character(*), intent(in) :: name
    integer(c_int), intent(inout) :: transport
    integer(c_int) :: status
    status = cumlp_c_transport_from_name(cumlp_cstr(name), transport)
  end function

  ! ---- wrappers for the arguments C lets be NULL (leave the OPTIONAL argument out) -------------

  ! weights(n_l, n_(l-1)) (or n_l * n_(l-1) elements) and biases(n_l); either may be left out.
  function cumlp_network_get_layer(net, layer, weights, biases) result(status)
    type(c_ptr), intent(in) :: net
    integer(c_int), intent(in) :: layer
    real(c_float), intent(out), optional, target :: weights(*), biases(*)
    integer(c_int) :: status
    type(c_ptr) :: w, b
    w = c_null_ptr
    b = c_null_ptr
    if (present(weights)) w = c_loc(weights(1))
    if (present(biases)) b = c_loc(biases(1))
    status = cumlp_c_network_get_layer(net, layer, w, b)
  end function

  function cumlp_network_set_layer(net, layer, weights, biases) result(status)
    type(c_ptr), intent(in) :: net
    integer(c_int), intent(in) :: layer
    real(c_float), intent(in), optional, target :: weights(*), biases(*)
    integer(c_int) :: status
    type(c_ptr) :: w, b
    w = c_null_ptr
    b = c_null_ptr
    if (present(weights)) w = c_loc(weights(1))
    if (present(biases)) b = c_loc(biases(1))
    status = cumlp_c_network_set_layer(net, layer, w, b)
  end function

  function cumlp_network_get_layer_f64(net, layer, weights, biases) result(status)
    type(c_ptr), intent(in) :: net
    integer(c_int), intent(in) :: layer
    real(c_double), intent(out), optional, target :: weights(*), biases(*)
    integer(c_int) :: status
    type(c_ptr) :: w, b
    w = c_null_ptr
    b = c_null_ptr
    if (present(weights)) w = c_loc(weights(1))
    if (present(biases)) b = c_loc(biases(1))
    status = cumlp_c_network_get_layer_f64(net, layer, w, b)
  end function

  function cumlp_network_set_layer_f64(net, layer, weights, biases) result(status)
    type(c_ptr), intent(in) :: net
    integer(c_int), intent(in) :: layer
    real(c_double), intent(in), optional, target :: weights(*), biases(*)
    integer(c_int) :: status
    type(c_ptr) :: w, b
    w = c_null_ptr
    b = c_null_ptr
    if (present(weights)) w = c_loc(weights(1))
    if (present(biases)) b = c_loc(biases(1))
    status = cumlp_c_network_set_layer_f64(net, layer, w, b)
  end function

  ! Without loss, the batch loss is not computed (no wait for the device).
  function cumlp_loss_backward(net, x, t, loss) result(status)
    type(c_ptr), intent(in) :: net, x, t
    real(c_double), intent(out), optional, target :: loss
    integer(c_int) :: status
    type(c_ptr) :: l
    l = c_null_ptr
    if (present(loss)) l = c_loc(loss)
    status = cumlp_c_loss_backward(net, x, t, l)
  end function

  function cumlp_train_step(net, opt, x, t, loss) result(status)
    type(c_ptr), intent(in) :: net, opt, x, t
    real(c_double), intent(out), optional, target :: loss
    integer(c_int) :: status
    type(c_ptr) :: l
    l = c_null_ptr
    if (present(loss)) l = c_loc(loss)
    status = cumlp_c_train_step(net, opt, x, t, l)
  end function

  ! With opt present it receives the file's optimizer, or c_null_ptr when the file holds no
  ! optimizer state; without it no optimizer is created.
  function cumlp_checkpoint_load(ctx, path, flags, net, opt) result(status)
    type(c_ptr), intent(in) :: ctx
    character(kind=c_char), intent(in) :: path(*)
    integer(c_int), intent(in) :: flags
    type(c_ptr), intent(out) :: net
    type(c_ptr), intent(out), optional, target :: opt
    integer(c_int) :: status
    type(c_ptr) :: o
    o = c_null_ptr
    if (present(opt)) o = c_loc(opt)
    status = cumlp_c_checkpoint_load(ctx, path, flags, net, o)
  end function

  ! data: c_loc of the first of size bytes holding a checkpoint (a target array). opt as above.
  function cumlp_checkpoint_load_memory(ctx, data, size, flags, net, opt) result(status)
    type(c_ptr), intent(in) :: ctx, data
    integer(c_size_t), intent(in) :: size
    integer(c_int), intent(in) :: flags
    type(c_ptr), intent(out) :: net
    type(c_ptr), intent(out), optional, target :: opt
    integer(c_int) :: status
    type(c_ptr) :: o
    o = c_null_ptr
    if (present(opt)) o = c_loc(opt)
    status = cumlp_c_checkpoint_load_memory(ctx, data, size, flags, net, o)
  end function

  ! With opt, scaler and info present they receive the file's optimizer (or c_null_ptr), its
  ! inputs' scaling (or c_null_ptr) and its model info (task CUMLP_TASK_UNKNOWN when it records
  ! none); each left out is not read.
  function cumlp_checkpoint_load_with(ctx, path, flags, net, opt, scaler, info) result(status)
    type(c_ptr), intent(in) :: ctx
    character(kind=c_char), intent(in) :: path(*)
    integer(c_int), intent(in) :: flags
    type(c_ptr), intent(out) :: net
    type(c_ptr), intent(out), optional, target :: opt, scaler
    type(cumlp_model_info), intent(inout), optional, target :: info
    integer(c_int) :: status
    type(c_ptr) :: o, s, i
    o = c_null_ptr
    s = c_null_ptr
    i = c_null_ptr
    if (present(opt)) o = c_loc(opt)
    if (present(scaler)) s = c_loc(scaler)
    if (present(info)) i = c_loc(info)
    status = cumlp_c_checkpoint_load_with(ctx, path, flags, net, o, s, i)
  end function

  ! data: c_loc of the first of size bytes holding a checkpoint. The rest as above.
  function cumlp_checkpoint_load_memory_with(ctx, data, size, flags, net, opt, scaler, info) &
      result(status)
    type(c_ptr), intent(in) :: ctx, data
    integer(c_size_t), intent(in) :: size
    integer(c_int), intent(in) :: flags
    type(c_ptr), intent(out) :: net
    type(c_ptr), intent(out), optional, target :: opt, scaler
    type(cumlp_model_info), intent(inout), optional, target :: info
    integer(c_int) :: status
    type(c_ptr) :: o, s, i
    o = c_null_ptr
    s = c_null_ptr
    i = c_null_ptr
    if (present(opt)) o = c_loc(opt)
    if (present(scaler)) s = c_loc(scaler)
    if (present(info)) i = c_loc(info)
    status = cumlp_c_checkpoint_load_memory_with(ctx, data, size, flags, net, o, s, i)
  end function

  ! ---- datasets, scalers and fit: array views and the arguments C lets be NULL ----------------

  ! The features of ds as an n_features x n_samples array pointer into the dataset's own memory
  ! (x(:, j) is sample j - 1): reading and writing it reads and writes the dataset. Valid until
  ! ds is destroyed; not associated for c_null_ptr. Use with =>: x => cumlp_dataset_features(ds).
  function cumlp_dataset_features(ds) result(x)
    type(c_ptr), intent(in) :: ds
    real(c_float), pointer :: x(:, :)
    type(c_ptr) :: p
    x => null()
    p = cumlp_c_dataset_features(ds)
    if (c_associated(p)) &
        call c_f_pointer(p, x, [cumlp_dataset_num_features(ds), cumlp_dataset_num_samples(ds)])
  end function

  ! The targets of ds as an n_outputs x n_samples array pointer, as cumlp_dataset_features.
  function cumlp_dataset_targets(ds) result(t)
    type(c_ptr), intent(in) :: ds
    real(c_float), pointer :: t(:, :)
    type(c_ptr) :: p
    t => null()
    p = cumlp_c_dataset_targets(ds)
    if (c_associated(p)) &
        call c_f_pointer(p, t, [cumlp_dataset_num_outputs(ds), cumlp_dataset_num_samples(ds)])
  end function

  ! offsets(count) and scales(count); either may be left out.
  function cumlp_scaler_get(scaler, offsets, scales, count) result(status)
    type(c_ptr), intent(in) :: scaler
    real(c_float), intent(out), optional, target :: offsets(*), scales(*)
    integer(c_int64_t), intent(in) :: count
    integer(c_int) :: status
    type(c_ptr) :: o, s
    o = c_null_ptr
    s = c_null_ptr
    if (present(offsets)) o = c_loc(offsets(1))
    if (present(scales)) s = c_loc(scales(1))
    status = cumlp_c_scaler_get(scaler, o, s, count)
  end function

  ! validation: a dataset, or c_null_ptr for none. options: filled by cumlp_fit_defaults. result
  ! may be left out. A callback in options is called from inside this call.
  function cumlp_fit(net, opt, train, validation, options, result) result(status)
    type(c_ptr), intent(in) :: net, opt, train, validation
    type(cumlp_fit_options), intent(in), target :: options
    type(cumlp_fit_result), intent(out), optional, target :: result
    integer(c_int) :: status
    type(c_ptr) :: r
    r = c_null_ptr
    if (present(result)) r = c_loc(result)
    status = cumlp_c_fit(net, opt, train, validation, c_loc(options), r)
  end function

end module cumlp
