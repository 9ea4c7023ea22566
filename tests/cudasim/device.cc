/*
 * device.cc - the CUDA simulator's device: runs a kernel's grid on the CPU, every CUDA thread a
 * fiber, and checks the collectives (see include/cudasim_device.h).
 *
 * A grid runs on the host thread that synchronizes, one block after the other in the schedule's
 * order. Within a block the scheduler resumes every runnable thread once per round, in the
 * schedule's order; a thread runs until it reaches a collective or returns. When no thread can
 * run, the collectives they wait at are resolved: a warp's shuffle once every lane its mask names
 * waits at it, the block's barrier once every thread that has not returned waits at it. Anything
 * else is a fault of the kernel: reported, and the launch fails.
 */
#include "cudasim_control.h"
#include "include/cudasim_device.h"

#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <map>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

/* ASan must be told when the stack changes under it (a fiber switch), or it reports the other
 * stack's frames as errors. */
#ifdef CUDASIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace cudasim {
namespace {

/* ---- the schedule --------------------------------------------------------------------------- */

struct schedule_state {
    order kind = order::forward;
    bool eager = false;
    unsigned long long seed = 1;
};

const schedule_state &the_schedule() {
    static const schedule_state state = [] {
        schedule_state s;
        const char *env = std::getenv("CUDASIM_SCHEDULE");
        std::string text = env ? env : "forward";
        if (text == "reverse") {
            s.kind = order::reverse;
        } else if (text == "eager") {
            s.eager = true;
        } else if (text.rfind("shuffle", 0) == 0) {
            s.kind = order::shuffle;
            if (text.size() > 8 && text[7] == ':')
                s.seed = std::strtoull(text.c_str() + 8, nullptr, 10);
        } else if (text != "forward") {
            std::fprintf(stderr,
                         "cudasim: CUDASIM_SCHEDULE=%s is not forward, reverse, eager or "
                         "shuffle[:SEED]; running forward\n",
                         text.c_str());
        }
        return s;
    }();
    return state;
}

/* The shuffle's generator: one per host thread, each seeded with the schedule's seed, so that
 * what a thread draws depends only on what that thread runs, not on how the host threads
 * interleave. (Work queued by one thread and run by another's synchronization draws from the
 * thread that runs it.) */
std::mt19937_64 &generator() {
    thread_local std::mt19937_64 rng{the_schedule().seed};
    return rng;
}

/* 0 .. n-1 in the schedule's order. */
std::vector<std::size_t> ordered(std::size_t n) {
    std::vector<std::size_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    if (schedule() == order::reverse) std::reverse(v.begin(), v.end());
    if (schedule() == order::shuffle) std::shuffle(v.begin(), v.end(), generator());
    return v;
}

/* ---- fibers ---------------------------------------------------------------------------------
 * A switch between fibers saves the callee-saved registers on the old stack and loads them from
 * the new one. On x86-64 that is a few instructions (below); glibc's swapcontext would do the
 * same plus a system call for the signal mask, which made shuffle-heavy kernels 20 times slower.
 * Elsewhere ucontext does it. */

#if defined(__x86_64__)
#define CUDASIM_FAST_SWITCH 1
/* void cudasim_switch_stack(void **save_sp, void *load_sp): saves rbp, rbx, r12-r15, MXCSR and
 * the x87 control word on the current stack and its stack pointer in *save_sp, then loads those
 * from load_sp and returns on that stack. */
extern "C" void cudasim_switch_stack(void **save_sp, void *load_sp);
/* .pushsection/.popsection: the compiler's idea of the current section survives the asm. */
asm(R"(
    .pushsection .text
    .globl cudasim_switch_stack
    .type cudasim_switch_stack, @function
cudasim_switch_stack:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size cudasim_switch_stack, .-cudasim_switch_stack
    .popsection
    .pushsection .note.GNU-stack, "", @progbits
    .popsection
)");
#endif

/* Where a suspended fiber (or the scheduler) resumes. */
struct fiber_context {
#ifdef CUDASIM_FAST_SWITCH
    void *sp = nullptr;
#else
    ucontext_t uc;
#endif
};

constexpr std::size_t kStackBytes = 256 * 1024; /* kernels are shallow; sanitizers widen frames */
constexpr int kMaxThreads = 1024;               /* per block, as on the GPU */
#ifdef CUDASIM_ASAN
constexpr std::size_t kStackTopBytes = 4096; /* the frames below which every kernel runs */
#endif

enum class state { runnable, at_barrier, at_shuffle, finished };

struct shuffle_request {
    shuffle_kind kind;
    unsigned mask;
    std::uint64_t bits, result;
    int arg, width;
};

struct sim_thread {
    fiber_context context;
    char *stack = nullptr;
    void *fake_stack = nullptr; /* ASan's, while the thread is switched out */
    thread_indices indices;
    int linear = 0; /* x + y Dx + z Dx Dy: the lane is linear % 32 */
    state st = state::runnable;
    std::source_location site; /* of the collective it waits at */
    shuffle_request shuffle{};
    bool abandoned = false; /* left suspended by a faulted block: its stack holds dead frames */
};

/* One block's threads and the scheduler's own context. Reused from block to block. */
struct block_runner {
    std::vector<sim_thread> threads;
    int count = 0;
    fiber_context scheduler;
    void *scheduler_fake_stack = nullptr;
    const void *scheduler_stack_bottom = nullptr;
    std::size_t scheduler_stack_size = 0;
    sim_thread *running = nullptr;
    const std::function<void()> *body = nullptr;
    const char *kernel = "";
    std::string fault; /* the first fault of the block, "" if none */
    block_runner() : threads(kMaxThreads) {}
    ~block_runner() {
        for (sim_thread &t : threads)
            if (t.stack) munmap(t.stack, kStackBytes);
    }
};

thread_local block_runner *runner = nullptr;

block_runner &the_runner() {
    static thread_local block_runner r;
    return r;
}

/* A stack with an inaccessible page below it, so that an overflow faults at once. */
char *new_stack() {
    void *p = mmap(nullptr, kStackBytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        std::perror("cudasim: mmap of a fiber stack");
        std::abort();
    }
    mprotect(p, (std::size_t)sysconf(_SC_PAGESIZE), PROT_NONE);
    return static_cast<char *>(p);
}

void fiber_switch(fiber_context &save, fiber_context &load) {
#ifdef CUDASIM_FAST_SWITCH
    cudasim_switch_stack(&save.sp, load.sp);
#else
    swapcontext(&save.uc, &load.uc);
#endif
}

void thread_entry() noexcept;

/* Makes the fiber start at thread_entry on its stack when it is switched to. */
void fiber_start(fiber_context &c, char *stack) {
#ifdef CUDASIM_FAST_SWITCH
    /* The frame cudasim_switch_stack pops: MXCSR and control word (defaults), six registers,
     * then thread_entry as the return address; above it a null return address for
     * thread_entry, which never returns. After the ret, rsp is 8 past a 16-byte boundary, as at
     * any function's entry. */
    auto top = reinterpret_cast<std::uintptr_t>(stack + kStackBytes) & ~std::uintptr_t{15};
    auto *frame = reinterpret_cast<std::uint64_t *>(top) - 9;
    std::uint32_t control[2] = {0x1F80u, 0x037Fu};
    std::memcpy(&frame[0], control, sizeof control);
    for (int i = 1; i <= 6; i++)
        frame[i] = 0;
    frame[7] = reinterpret_cast<std::uint64_t>(&thread_entry);
    frame[8] = 0;
    c.sp = frame;
#else
    getcontext(&c.uc);
    c.uc.uc_stack.ss_sp = stack;
    c.uc.uc_stack.ss_size = kStackBytes;
    c.uc.uc_link = nullptr;
    makecontext(&c.uc, thread_entry, 0);
#endif
}

void switch_to_thread(block_runner &r, sim_thread &t) {
    r.running = &t;
#ifdef CUDASIM_ASAN
    __sanitizer_start_switch_fiber(&r.scheduler_fake_stack, t.stack, kStackBytes);
#endif
    fiber_switch(r.scheduler, t.context);
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(r.scheduler_fake_stack, nullptr, nullptr);
#endif
    r.running = nullptr;
}

/* Called by the running thread: back to the scheduler (for good when it has finished). */
void switch_to_scheduler(block_runner &r, sim_thread &t) {
#ifdef CUDASIM_ASAN
    bool finished = t.st == state::finished;
    __sanitizer_start_switch_fiber(finished ? nullptr : &t.fake_stack, r.scheduler_stack_bottom,
                                   r.scheduler_stack_size);
#endif
    fiber_switch(t.context, r.scheduler);
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(t.fake_stack, nullptr, nullptr);
#endif
}

/* Where a new fiber starts: it takes no arguments (its thread is the one the scheduler switched
 * to), runs the kernel's body and goes back to the scheduler for good. noexcept: there is no frame
 * to unwind into above it (its return address is null), so an exception that escapes a kernel
 * ends the process here (std::terminate) instead of unwinding off the fiber's stack. */
void thread_entry() noexcept {
    block_runner &r = *runner;
    sim_thread &t = *r.running;
#ifdef CUDASIM_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &r.scheduler_stack_bottom, &r.scheduler_stack_size);
#endif
    (*r.body)();
    t.st = state::finished;
    switch_to_scheduler(r, t);
    std::abort(); /* a finished thread is never resumed */
}

/* ---- collectives ---------------------------------------------------------------------------- */

std::string where(const std::source_location &s) {
    const char *file = std::strrchr(s.file_name(), '/');
    return std::string(file ? file + 1 : s.file_name()) + ":" + std::to_string(s.line());
}

std::string thread_name(const sim_thread &t) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "thread (%u,%u,%u) of block (%u,%u,%u)", t.indices.thread_idx.x,
                  t.indices.thread_idx.y, t.indices.thread_idx.z, t.indices.block_idx.x,
                  t.indices.block_idx.y, t.indices.block_idx.z);
    return buf;
}

bool same_site(const std::source_location &a, const std::source_location &b) {
    return a.line() == b.line() && a.column() == b.column() &&
           std::strcmp(a.file_name(), b.file_name()) == 0;
}

void set_fault(block_runner &r, const std::string &what) {
    if (r.fault.empty()) r.fault = what;
}

/* The lane a shuffle reads: shfl.sync's source lane (PTX ISA, "shfl.sync", Semantics), with the
 * operand c that sm_30_intrinsics.hpp passes: ((32 - width) << 8) | 0x1f, or (32 - width) << 8
 * for __shfl_up_sync. Only the low 5 bits of srcLane, delta and laneMask count. A lane out of
 * range reads its own value: up and down do not cross their segment of `width` lanes, and an xor
 * may read an earlier segment but not a later one ("each group of width consecutive threads are
 * able to access elements from earlier groups of threads", CUDA C++ Programming Guide, "Warp
 * Shuffle Functions"). */
int source_lane(const shuffle_request &q, int lane) {
    const int b = q.arg & 31, segmask = (32 - q.width) & 31;
    const int clamp = q.kind == shuffle_kind::up ? 0 : 31;
    const int min_lane = lane & segmask, max_lane = min_lane | (clamp & ~segmask);
    int j = lane;
    bool in_range = true;
    switch (q.kind) {
    case shuffle_kind::index:
        j = min_lane | (b & ~segmask);
        in_range = j <= max_lane;
        break;
    case shuffle_kind::up:
        j = lane - b;
        in_range = j >= max_lane;
        break;
    case shuffle_kind::down:
        j = lane + b;
        in_range = j <= max_lane;
        break;
    case shuffle_kind::xor_:
        j = lane ^ b;
        in_range = j <= max_lane;
        break;
    }
    return in_range ? j : lane;
}

/* Resolves the shuffle that warp w's lanes wait at, if all the lanes its mask names are there.
 * Returns true if the lanes may run on. */
bool resolve_warp(block_runner &r, int w) {
    int first = w * 32, lanes = std::min(32, r.count - first);
    const sim_thread *lead = nullptr;
    for (int l = 0; l < lanes && !lead; l++)
        if (r.threads[first + l].st == state::at_shuffle) lead = &r.threads[first + l];
    if (!lead) return false;
    const shuffle_request &q = lead->shuffle;
    std::string at = where(lead->site);
    for (int l = 0; l < 32; l++) {
        if (!(q.mask >> l & 1u)) continue;
        if (l >= lanes) {
            set_fault(r, "the shuffle at " + at + " names lane " + std::to_string(l) +
                             " in its mask, but warp " + std::to_string(w) + " has only " +
                             std::to_string(lanes) + " threads (a partial warp)");
            return false;
        }
        const sim_thread &t = r.threads[first + l];
        if (t.st == state::finished) {
            set_fault(r, "the shuffle at " + at + " waits for " + thread_name(t) +
                             ", which has returned");
            return false;
        }
        if (t.st != state::at_shuffle) return false; /* it waits at a barrier: a deadlock */
        if (!same_site(t.site, lead->site) || t.shuffle.mask != q.mask) {
            set_fault(r, "lanes of warp " + std::to_string(w) + " wait at different shuffles (" +
                             at + " and " + where(t.site) + ") or with different masks");
            return false;
        }
    }
    for (int l = 0; l < lanes; l++) {
        sim_thread &t = r.threads[first + l];
        if (t.st != state::at_shuffle) continue;
        if (!(q.mask >> l & 1u)) {
            set_fault(r, thread_name(t) + " takes part in the shuffle at " + at +
                             " but is not in its mask");
            return false;
        }
        /* width must be a power of 2 no greater than warpSize, else the results are undefined
         * (CUDA C++ Programming Guide, "Warp Shuffle Functions"). */
        int width = t.shuffle.width;
        if (width < 1 || width > 32 || (width & (width - 1)) != 0) {
            set_fault(r, thread_name(t) + " shuffles at " + at + " with width " +
                             std::to_string(width) + " (a power of 2 up to 32)");
            return false;
        }
        int src = source_lane(t.shuffle, l);
        if (!(q.mask >> src & 1u)) {
            set_fault(r, thread_name(t) + " reads lane " + std::to_string(src) +
                             " in the shuffle at " + at + ", which is not in the mask");
            return false;
        }
        t.shuffle.result = r.threads[first + src].shuffle.bits;
    }
    for (int l = 0; l < lanes; l++)
        if (r.threads[first + l].st == state::at_shuffle) r.threads[first + l].st = state::runnable;
    return true;
}

/* Releases the block's barrier if every thread that has not returned waits at the same one. */
bool resolve_barrier(block_runner &r) {
    const sim_thread *lead = nullptr, *gone = nullptr;
    for (int i = 0; i < r.count; i++) {
        const sim_thread &t = r.threads[i];
        if (t.st == state::at_shuffle) return false;
        if (t.st == state::finished && !gone) gone = &t;
        if (t.st == state::at_barrier && !lead) lead = &t;
    }
    if (!lead) return false;
    if (gone) {
        set_fault(r, "the __syncthreads at " + where(lead->site) + " is not reached by " +
                         thread_name(*gone) + ", which has returned");
        return false;
    }
    for (int i = 0; i < r.count; i++) {
        const sim_thread &t = r.threads[i];
        if (!same_site(t.site, lead->site)) {
            set_fault(r, "threads of a block wait at different __syncthreads (" +
                             where(lead->site) + " and " + where(t.site) + " in " + thread_name(t) +
                             "): a barrier under divergence");
            return false;
        }
    }
    for (int i = 0; i < r.count; i++)
        r.threads[i].st = state::runnable;
    return true;
}

/* Called when no thread can run; false if the block cannot go on (a fault is recorded). */
bool resolve_collectives(block_runner &r) {
    bool progress = false;
    for (int w = 0; w * 32 < r.count && r.fault.empty(); w++)
        progress |= resolve_warp(r, w);
    if (progress || !r.fault.empty()) return progress && r.fault.empty();
    if (resolve_barrier(r)) return true;
    if (r.fault.empty())
        set_fault(r, "the threads of the block wait at collectives that cannot complete: some at "
                     "a __syncthreads, some at a shuffle (a deadlock)");
    return false;
}

/* ---- blocks and grids ----------------------------------------------------------------------- */

void start_threads(block_runner &r, uint3 block_idx, dim3 block, dim3 grid) {
    for (int i = 0; i < r.count; i++) {
        sim_thread &t = r.threads[i];
        if (!t.stack) t.stack = new_stack();
#ifdef CUDASIM_ASAN
        /* The frames a faulted block left never returned: their red zones are still poisoned.
         * Nor do thread_entry's and switch_to_scheduler's frames at the top of every finished
         * thread's stack, where fiber_start writes the new thread's first frame. */
        if (t.abandoned)
            ASAN_UNPOISON_MEMORY_REGION(t.stack, kStackBytes);
        else
            ASAN_UNPOISON_MEMORY_REGION(t.stack + kStackBytes - kStackTopBytes, kStackTopBytes);
#endif
        t.abandoned = false;
        t.linear = i;
        t.st = state::runnable;
        t.fake_stack = nullptr;
        unsigned x = (unsigned)i % block.x, y = (unsigned)i / block.x % block.y,
                 z = (unsigned)i / (block.x * block.y);
        t.indices = {{x, y, z}, block_idx, block, grid};
        fiber_start(t.context, t.stack);
    }
}

/* Runs one block; returns false on a fault (recorded in r.fault). */
bool run_block(block_runner &r, uint3 block_idx, dim3 block, dim3 grid) {
    r.count = (int)(block.x * block.y * block.z);
    r.fault.clear();
    start_threads(r, block_idx, block, grid);
    for (;;) {
        bool ran = false, all_done = true;
        for (std::size_t i : ordered((std::size_t)r.count)) {
            sim_thread &t = r.threads[i];
            if (t.st != state::finished) all_done = false;
            if (t.st != state::runnable) continue;
            switch_to_thread(r, t);
            ran = true;
        }
        if (all_done) return true;
        if (!ran && !resolve_collectives(r)) {
            for (int i = 0; i < r.count; i++)
                r.threads[i].abandoned = r.threads[i].st != state::finished;
            return false;
        }
    }
}

uint3 block_index(std::size_t linear, dim3 grid) {
    unsigned x = (unsigned)(linear % grid.x), y = (unsigned)(linear / grid.x % grid.y),
             z = (unsigned)(linear / ((std::size_t)grid.x * grid.y));
    return {x, y, z};
}

} // namespace

/* ---- the interface ------------------------------------------------------------------------------
 */

order schedule() {
    return the_schedule().kind;
}

bool eager() {
    return the_schedule().eager;
}

std::size_t schedule_pick(std::size_t n) {
    if (n == 0 || schedule() != order::shuffle) return 0;
    return (std::size_t)(generator()() % n);
}

const thread_indices &current_indices() {
    if (!runner || !runner->running) {
        std::fprintf(stderr, "cudasim: a CUDA built-in variable read outside a kernel\n");
        std::abort();
    }
    return runner->running->indices;
}

/* Called by the running thread: waits at a collective until the scheduler resolves it. */
static void wait_at(state st, const std::source_location &site) {
    if (!runner || !runner->running) {
        std::fprintf(stderr, "cudasim: a collective called outside a kernel\n");
        std::abort();
    }
    sim_thread &t = *runner->running;
    t.st = st;
    t.site = site;
    switch_to_scheduler(*runner, t);
}

void syncthreads(const std::source_location &site) {
    wait_at(state::at_barrier, site);
}

std::uint64_t shuffle(shuffle_kind kind, unsigned mask, std::uint64_t bits, int arg, int width,
                      const std::source_location &site) {
    if (!runner || !runner->running) {
        std::fprintf(stderr, "cudasim: a shuffle called outside a kernel\n");
        std::abort();
    }
    runner->running->shuffle = {kind, mask, bits, 0, arg, width};
    wait_at(state::at_shuffle, site);
    return runner->running->shuffle.result;
}

/* The grid size of each kernel's last launch, for cudasim_last_launch_blocks. */
static std::mutex launches_mutex;
static std::map<std::string, unsigned long> last_launch_blocks;

static void record_launch(const char *kernel, std::size_t blocks) {
    std::lock_guard<std::mutex> lock(launches_mutex);
    last_launch_blocks[kernel] = (unsigned long)blocks;
}

cudaError_t run_grid(const char *kernel, dim3 grid, dim3 block, std::size_t shared_bytes,
                     const std::function<void()> &body) {
    (void)shared_bytes; /* cumlp's kernels use static shared memory only */
    if (runner) {
        /* The threads of the running grid are suspended on this host thread's one block_runner,
         * which a second grid would reuse under them: a synchronization from device code. */
        std::fprintf(stderr, "cudasim: kernel %s launched while kernel %s runs on this thread\n",
                     kernel, runner->kernel);
        std::abort();
    }
    block_runner &r = the_runner();
    runner = &r;
    r.body = &body;
    r.kernel = kernel;
    std::size_t blocks = (std::size_t)grid.x * grid.y * grid.z;
    record_launch(kernel, blocks);
    cudaError_t result = cudaSuccess;
    for (std::size_t b : ordered(blocks)) {
        if (run_block(r, block_index(b, grid), block, grid)) continue;
        report("kernel %s: %s", kernel, r.fault.c_str());
        result = cudaErrorLaunchFailure;
        break;
    }
    runner = nullptr;
    return result;
}

bool check_configuration(const char *kernel, dim3 grid, dim3 block, std::size_t shared_bytes) {
    std::size_t threads = (std::size_t)block.x * block.y * block.z;
    /* The limits of cudaDeviceProp::maxGridSize (2^31 - 1, 65535, 65535), maxThreadsPerBlock,
     * maxThreadsDim[2] and sharedMemPerBlock (runtime.cc's fill_properties). */
    bool ok = grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && grid.x <= 0x7fffffffu &&
              grid.y <= 65535 && grid.z <= 65535 && threads >= 1 &&
              threads <= (std::size_t)kMaxThreads && block.z <= 64 && shared_bytes <= 48 * 1024;
    if (ok) return true;
    report("kernel %s: a launch of (%u,%u,%u) blocks of (%u,%u,%u) threads, %zu bytes of shared "
           "memory: not a valid configuration",
           kernel, grid.x, grid.y, grid.z, block.x, block.y, block.z, shared_bytes);
    set_last_error(cudaErrorInvalidConfiguration);
    return false;
}

bool argument_check::pointer(int index, bool inside, const void *p) {
    std::uint64_t id = p ? device_allocation(p) : 0;
    const char *in = inside ? ", a member of it," : "";
    if (!running_) {
        ids_.push_back(id);
        if (!p || id) return true;
        report("kernel %s: argument %d%s (%p) is not device memory", kernel_, index, in, p);
        return false;
    }
    if (next_ < ids_.size() && ids_[next_++] == id) return true;
    /* a graph's kernel holds the addresses of its capture, valid for whatever allocation holds
     * them when the graph runs (runtime.cc, still_live) */
    if (id && in_graph_replay()) return true;
    report("kernel %s: argument %d%s (%p) was freed before the kernel ran (use after free%s)",
           kernel_, index, in, p, id ? ", its address allocated again" : "");
    return false;
}

} // namespace cudasim

extern "C" unsigned long cudasim_last_launch_blocks(const char *kernel) {
    std::lock_guard<std::mutex> lock(cudasim::launches_mutex);
    auto it = cudasim::last_launch_blocks.find(kernel ? kernel : "");
    return it == cudasim::last_launch_blocks.end() ? 0 : it->second;
}
