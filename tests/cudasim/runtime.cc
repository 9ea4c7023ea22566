/*
 * runtime.cc - the CUDA runtime calls cumlp makes, on the CPU (see cudasim.h).
 *
 * Device memory is host memory recorded in a registry. Every pointer a call is given is checked
 * against it at the call, and again when the queued operation runs, so that a host pointer, a copy
 * of the wrong kind, a range past an allocation's end and a free before the work that uses the
 * memory ran are all reported ("cudasim: ...") and fail as on a GPU. Each device allocation is a
 * mapping of its own that the host cannot touch (PROT_NONE) except while queued work runs, and
 * that ends against an inaccessible guard page: host code that dereferences a device pointer, and
 * an access past an allocation's end, fault as on a GPU (a SIGSEGV, which the handler below names
 * before the process dies).
 *
 * Asynchronous work is queued per stream and runs only when a synchronization point needs it, and
 * then only what that point needs: cudaStreamSynchronize(s) runs s's queue, a wait on an event
 * also runs what the event's record needs, cudaDeviceSynchronize runs everything. Where several
 * streams could go next, the schedule (cudasim::schedule) picks, not the order of issue. So a
 * missing wait between two streams shows up as wrong results instead of working by luck. The
 * eager schedule (cudasim::eager) runs each operation when it is queued instead, so that a host
 * write into memory a queued copy reads, made after queuing it, comes too late, as it may on a
 * GPU that has already run the copy.
 *
 * Stream 0 (and cudaStreamLegacy, cudaStreamPerThread) is one ordinary stream here: the implicit
 * synchronization of the legacy default stream with blocking streams is not modelled (cumlp uses
 * its own non-blocking streams only).
 */
#include "cudasim.h"
#include "cudasim_control.h"
#include "host.h"

#include <cuda_runtime_api.h>

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <thread>
#include <vector>

/* ASan, which must be told which bytes past an allocation's end are not to be touched. */
#ifdef CUDASIM_ASAN
#include <sanitizer/asan_interface.h>
#define CUDASIM_NO_ASAN __attribute__((no_sanitize("address")))
#else
#define CUDASIM_NO_ASAN
#endif

/* A graph is the list of operations captured on a stream, in the order they were issued (cumlp
 * captures one stream, so the list is the graph's one chain of dependencies); an executable graph
 * is a copy of that list. Each operation is the closure the stream would have queued, run again
 * at every launch: what it reads (kernel arguments, GEMM scalars, pointers) is what it was given
 * at capture, and memory it reads is read when it runs. */
struct graph_node {
    const char *what;
    std::function<cudaError_t()> run;
};

struct CUgraph_st {
    std::vector<graph_node> nodes;
};

struct CUgraphExec_st {
    std::vector<graph_node> nodes;
};

namespace cudasim {
namespace {

using host_clock = std::chrono::steady_clock;

struct allocation {
    std::size_t size;
    std::uint64_t id;
    bool pinned; /* cudaHostAlloc: host memory the device reads when a copy runs */
};

/* A device allocation starts 256-byte aligned, as cudaMalloc's do, and its rounded size ends where
 * an inaccessible guard page begins. The slack between the bytes asked for and the guard page
 * holds this word, a NaN as a float and (twice) as a double, so that a read of it shows in the
 * results; it is checked after every kernel (check_guards), so that a write into it is reported.
 * In the ASan build the slack is poisoned: ASan reports a read or a write of it where it happens.
 * Past the slack, the guard page faults. */
constexpr std::uint32_t kSlackWord = 0xfff5a5a5u;

unsigned char slack_byte(std::uintptr_t address) {
    return (unsigned char)(kSlackWord >> (8 * (address % 4)));
}

struct queued_op {
    std::uint64_t seq; /* order of issue, over all streams */
    const char *what;
    std::function<cudaError_t()> run;
    std::uint64_t awaits; /* a stream wait: the seq of the event record it waits for, else 0 */
};

struct stream_state {
    std::deque<queued_op> queue;
    int device = -1;  /* -1: the default stream, which is every device's */
    bool live = true; /* destroyed streams stay until their queued work has run */
    /* Stream capture (cudaStreamBeginCapture): the graph being recorded, else nullptr; whether a
     * prohibited call has invalidated it; its mode and the thread that began it. */
    cudaGraph_t capture = nullptr;
    bool capture_invalid = false;
    cudaStreamCaptureMode capture_mode = cudaStreamCaptureModeGlobal;
    std::thread::id capture_thread;
};

struct event_state {
    unsigned flags = 0;
    std::uint64_t last_record = 0; /* seq of the latest cudaEventRecord, 0: never recorded */
    bool timed = false;            /* the latest record has run, at `when` */
    host_clock::time_point when;
};

using stream_map = std::map<cudaStream_t, std::unique_ptr<stream_state>>;

struct state {
    std::recursive_mutex mutex;
    std::mutex registry_mutex; /* the allocations alone: is_device_range comes from kernels */
    std::map<std::uintptr_t, allocation> allocations;
    std::size_t device_bytes = 0;
    std::uint64_t next_allocation = 1, next_seq = 1;
    stream_state legacy;
    stream_map streams;
    std::map<cudaEvent_t, std::shared_ptr<event_state>> events;
    std::map<std::uint64_t, stream_state *> pending; /* seq -> stream, every queued operation */
    std::set<cudaGraph_t> graphs;                    /* made by cudaStreamEndCapture */
    std::set<cudaGraphExec_t> graph_execs;           /* made by cudaGraphInstantiate */
    int device_open = 0; /* drains running: device memory is accessible while > 0 */
    cudaError_t sticky = cudaSuccess;
    int fail_allocation = 0, fail_host_allocation = 0, inject_sticky = 0;
    int break_capture = 0; /* cudasim_break_capture's countdown */
    ~state();
};

state &sim() {
    static state s;
    return s;
}

/* The last error is per host thread, as the runtime keeps it; so is the current device. */
thread_local cudaError_t last_error = cudaSuccess;
/* An operation of a graph launch is running (see still_live). */
thread_local bool graph_replay = false;
thread_local int current_device = 0;
std::atomic<int> report_count{0};

/* Records a failing call's error for cudaGetLastError. cudaErrorNotReady is "not actually an
 * error" (driver_types.h) and is not recorded. */
cudaError_t returned(cudaError_t err) {
    if (err != cudaSuccess && err != cudaErrorNotReady) last_error = err;
    return err;
}

long env_number(const char *name, long fallback) {
    const char *text = std::getenv(name);
    char *end = nullptr;
    long value = text ? std::strtol(text, &end, 10) : fallback;
    return text && (end == text || *end != '\0' || value < 0) ? fallback : value;
}

/* Read at every call, so that a test can change them with setenv. */
int device_count() {
    return (int)std::min(env_number("CUDASIM_DEVICES", 1), 64L);
}
std::size_t memory_bytes() {
    return (std::size_t)env_number("CUDASIM_MEMORY_MB", 16384) << 20;
}

/* The error of a call that failed at its start (the sticky error) wins over what came after. */
cudaError_t first_error(cudaError_t first, cudaError_t then) {
    return first != cudaSuccess ? first : then;
}

std::size_t rounded(std::size_t bytes) {
    return (bytes + 255) / 256 * 256;
}

/* ---- the registry ---------------------------------------------------------------------------- */

struct found {
    std::uintptr_t base = 0;
    allocation a{};
    bool ok = false;
};

found locate(const void *p) {
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    auto &all = sim().allocations;
    auto it = all.upper_bound((std::uintptr_t)p);
    if (it == all.begin()) return {};
    --it;
    if ((std::uintptr_t)p >= it->first + it->second.size) return {};
    return {it->first, it->second, true};
}

std::size_t room(const found &f, const void *p) {
    return f.base + f.a.size - (std::uintptr_t)p;
}

std::size_t page_bytes() {
    static const std::size_t page = (std::size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* The pages of a device allocation of `size` bytes at `base`: its data pages, which end where
 * the rounded size ends, and the guard page after them. */
struct device_pages {
    char *begin;      /* the first data page */
    std::size_t data; /* the data pages' bytes; the guard page follows */
    char *guard() const { return begin + data; }
};

device_pages pages_of(std::uintptr_t base, std::size_t size) {
    std::size_t span = rounded(size), page = page_bytes();
    std::size_t data = (span + page - 1) / page * page;
    return {reinterpret_cast<char *>(base + span - data), data};
}

void install_fault_handler();
void ensure_signal_stack();

/* mprotect, which fails only when the process has run out of mappings (vm.max_map_count: every
 * device allocation takes two or three), and then the simulator cannot go on. */
void protect(void *p, std::size_t bytes, int prot) {
    if (mprotect(p, bytes, prot) == 0) return;
    std::fprintf(stderr, "cudasim: mprotect of the device memory at %p failed: %s\n", p,
                 std::strerror(errno));
    std::abort();
}

/* A new device allocation's memory: filled with 0xff bytes ("the memory is not cleared": a NaN
 * as floats, so that a read of an element never written shows), the slack with kSlackWord. */
void *map_device(std::size_t bytes) {
    install_fault_handler();
    std::size_t span = rounded(bytes), page = page_bytes();
    std::size_t data = (span + page - 1) / page * page;
    void *m = mmap(nullptr, data + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    char *p = static_cast<char *>(m) + data - span;
    std::memset(p, 0xff, bytes);
    for (std::size_t k = bytes; k < span; k++)
        p[k] = (char)slack_byte((std::uintptr_t)(p + k));
#ifdef CUDASIM_ASAN
    ASAN_POISON_MEMORY_REGION(p + bytes, span - bytes);
#endif
    protect(static_cast<char *>(m) + data, page, PROT_NONE);
    if (!sim().device_open) protect(m, data, PROT_NONE);
    return p;
}

void unmap_device(std::uintptr_t base, std::size_t size) {
    device_pages pages = pages_of(base, size);
#ifdef CUDASIM_ASAN
    /* The shadow outlives the mapping: a later one at the same address must start clean. */
    ASAN_UNPOISON_MEMORY_REGION(pages.begin, pages.data);
#endif
    munmap(pages.begin, pages.data + page_bytes());
}

void *add_allocation(std::size_t bytes, bool pinned) {
    void *p = pinned ? std::aligned_alloc(256, rounded(bytes)) : map_device(bytes);
    if (!p) return nullptr;
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    sim().allocations[(std::uintptr_t)p] = {bytes, sim().next_allocation++, pinned};
    if (!pinned) sim().device_bytes += rounded(bytes);
    return p;
}

/* Makes device memory accessible to the host (while queued work runs) or not (otherwise), as a
 * GPU's memory is not the host's; the guard pages stay inaccessible. Nested: the memory closes
 * when the outermost user is done. Called under the shim's lock. */
void open_device_memory(bool open) {
    int before = sim().device_open;
    sim().device_open += open ? 1 : -1;
    if (before != (open ? 0 : 1)) return; /* 0 -> 1 opens, 1 -> 0 closes: nested, nothing */
    if (open) ensure_signal_stack();      /* kernels run on this thread: a fiber may overflow */
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    for (const auto &[base, a] : sim().allocations) {
        if (a.pinned) continue;
        device_pages pages = pages_of(base, a.size);
        protect(pages.begin, pages.data, open ? PROT_READ | PROT_WRITE : PROT_NONE);
    }
}

/* Device memory accessible for as long as it lives, from its first open(). */
class device_access {
  public:
    device_access() = default;
    device_access(const device_access &) = delete;
    device_access &operator=(const device_access &) = delete;
    ~device_access() {
        if (open_) open_device_memory(false);
    }
    void open() {
        if (!open_) open_device_memory(true);
        open_ = true;
    }

  private:
    bool open_ = false;
};

/* ---- faults of host code ----------------------------------------------------------------------
 * A SIGSEGV in a device allocation's pages is host code touching device memory (its data pages,
 * inaccessible outside queued work) or an access past its end (its guard page). The handler says
 * which, naming the allocation, then hands the signal to the handler it replaced (ASan's report,
 * or the default action: the process dies). It runs on an alternate stack, so that a fiber's stack
 * overflow can be handed on too. */
struct sigaction previous_segv;
std::atomic<bool> registry_gone{false}; /* the state is destroyed (at exit): nothing to look up */

/* The allocation whose pages hold `address`, if the registry can be had (the lock is tried: the
 * fault may have interrupted a thread that holds it). */
bool owner_of(std::uintptr_t address, std::uintptr_t *base, allocation *a) {
    if (registry_gone) return false;
    std::unique_lock<std::mutex> lock(sim().registry_mutex, std::try_to_lock);
    for (int tries = 0; !lock.owns_lock() && tries < 1000; tries++) {
        sched_yield();
        lock.try_lock();
    }
    if (!lock.owns_lock()) return false;
    auto &all = sim().allocations;
    auto next = all.upper_bound(address);
    for (auto it : {next, next == all.begin() ? all.end() : std::prev(next)}) {
        if (it == all.end() || it->second.pinned) continue;
        device_pages pages = pages_of(it->first, it->second.size);
        auto first = reinterpret_cast<std::uintptr_t>(pages.begin);
        if (address >= first && address < first + pages.data + page_bytes()) {
            *base = it->first;
            *a = it->second;
            return true;
        }
    }
    return false;
}

void on_segv(int sig, siginfo_t *info, void *context) {
    auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
    std::uintptr_t base = 0;
    allocation a{};
    if (owner_of(address, &base, &a)) {
        char text[400];
        bool past = address >= reinterpret_cast<std::uintptr_t>(pages_of(base, a.size).guard());
        int n = past ? std::snprintf(text, sizeof text,
                                     "cudasim: an access past the end of the device allocation "
                                     "at %p (%zu bytes): address %p, %zu bytes past its end\n",
                                     (void *)base, a.size, (void *)address,
                                     (std::size_t)(address - base - a.size))
                     : std::snprintf(text, sizeof text,
                                     "cudasim: host code touched device memory at %p (the device "
                                     "allocation at %p, %zu bytes): only queued work, kernels and "
                                     "copies, may access it\n",
                                     (void *)address, (void *)base, a.size);
        if (n > 0) (void)!write(2, text, std::min((std::size_t)n, sizeof text - 1));
    }
    if (previous_segv.sa_flags & SA_SIGINFO) {
        previous_segv.sa_sigaction(sig, info, context);
    } else if (previous_segv.sa_handler != SIG_DFL && previous_segv.sa_handler != SIG_IGN) {
        previous_segv.sa_handler(sig);
    } else {
        /* The default action: returning re-runs the faulting access, which now kills. */
        signal(SIGSEGV, SIG_DFL);
    }
}

/* An alternate signal stack for the calling thread, unless it has one (ASan gives its threads
 * one). */
void ensure_signal_stack() {
    struct alternate_stack {
        bool checked = false;
        std::vector<char> memory;
        ~alternate_stack() {
            if (memory.empty()) return;
            stack_t off{};
            off.ss_flags = SS_DISABLE;
            sigaltstack(&off, nullptr);
        }
    };
    thread_local alternate_stack mine;
    stack_t current{};
    if (mine.checked) return;
    mine.checked = true;
    if (sigaltstack(nullptr, &current) != 0 || !(current.ss_flags & SS_DISABLE)) return;
    mine.memory.resize(std::max<std::size_t>(SIGSTKSZ, 64 * 1024));
    stack_t st{};
    st.ss_sp = mine.memory.data();
    st.ss_size = mine.memory.size();
    sigaltstack(&st, nullptr);
}

void install_fault_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        struct sigaction sa {};
        sa.sa_sigaction = on_segv;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGSEGV, &sa, &previous_segv);
    });
    ensure_signal_stack();
}

/* What is wrong with freeing p with the call that frees pinned memory (or device memory), or
 * nullptr. */
const char *free_problem(const found &f, const void *p, bool pinned) {
    if (!f.ok) return "is not a live allocation (never allocated, or freed already)";
    if (f.base != (std::uintptr_t)p) return "points inside an allocation, not to its start";
    if (f.a.pinned == pinned) return nullptr;
    return pinned ? "is device memory (cudaFree frees it)"
                  : "is pinned host memory (cudaFreeHost frees it)";
}

/* Frees an allocation; false (reported) for anything but the start of a live one of its kind. */
bool remove_allocation(const char *what, void *p, bool pinned) {
    found f = locate(p);
    if (const char *problem = free_problem(f, p, pinned)) {
        report("%s(%p): the pointer %s", what, p, problem);
        return false;
    }
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    if (!pinned) sim().device_bytes -= rounded(f.a.size);
    sim().allocations.erase(f.base);
    if (pinned)
        std::free(p);
    else
        unmap_device(f.base, f.a.size);
    return true;
}

/* Host memory for a copy: pageable memory is not checked (ASan does that); pinned memory must
 * hold the range; device memory is the wrong kind. */
bool check_host(const char *what, const char *name, const void *p, std::size_t bytes, span *out) {
    found f = locate(p);
    const char *problem = nullptr;
    if (!p)
        problem = "is NULL";
    else if (f.ok && !f.a.pinned)
        problem = "is device memory where host memory is needed (a copy of the wrong kind)";
    else if (f.ok && room(f, p) < bytes)
        problem = "runs past the end of its pinned allocation";
    if (problem) {
        report("%s: %s %p (%zu bytes) %s", what, name, p, bytes, problem);
        return false;
    }
    *out = {p, bytes, f.ok ? f.a.id : 0};
    return true;
}

/* ---- streams, events and the scheduler ------------------------------------------------------- */

bool is_default(cudaStream_t s) {
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
}

stream_state *find_stream(cudaStream_t handle, const char *what) {
    if (is_default(handle)) return &sim().legacy;
    auto it = sim().streams.find(handle);
    if (it != sim().streams.end() && it->second->live) return it->second.get();
    report("%s: stream %p is not a live stream (never created, or destroyed)", what,
           (void *)handle);
    return nullptr;
}

/* A stream to queue work on: it must belong to the current device, as a kernel launch demands. */
stream_state *work_stream(cudaStream_t handle, const char *what) {
    stream_state *s = find_stream(handle, what);
    if (s && s->device >= 0 && s->device != current_device) {
        report("%s: stream %p belongs to device %d, but device %d is current", what, (void *)handle,
               s->device, current_device);
        return nullptr;
    }
    return s;
}

std::shared_ptr<event_state> find_event(cudaEvent_t handle, const char *what) {
    auto it = sim().events.find(handle);
    if (it != sim().events.end()) return it->second;
    report("%s: event %p is not a live event (never created, or destroyed)", what, (void *)handle);
    return nullptr;
}

bool is_pending(std::uint64_t seq) {
    return sim().pending.count(seq) != 0;
}

cudaError_t drain(std::map<stream_state *, std::uint64_t> need);

/* Queues an operation; the eager schedule runs it at once (with what it waits for, which has run
 * already), as an idle GPU would. A fault becomes the sticky error either way. */
std::uint64_t push(stream_state *s, const char *what, std::function<cudaError_t()> run,
                   std::uint64_t awaits = 0) {
    if (s->capture) { /* recorded, not run: it runs at each launch of the graph */
        if (!s->capture_invalid) s->capture->nodes.push_back({what, std::move(run)});
        return 0;
    }
    std::uint64_t seq = sim().next_seq++;
    s->queue.push_back({seq, what, std::move(run), awaits});
    sim().pending[seq] = s;
    if (eager()) drain({{s, seq}});
    return seq;
}

/* ---- stream capture: what a capture forbids --------------------------------------------------
 * "Potentially unsafe API calls" (an allocation, a free, a device-wide synchronization) are
 * prohibited while a capture in cudaStreamCaptureModeGlobal is under way on any thread, or one in
 * cudaStreamCaptureModeThreadLocal on the calling thread (cudaStreamCaptureMode); such a call fails
 * with cudaErrorStreamCaptureUnsupported and invalidates the capture, whose cudaStreamEndCapture
 * then fails with cudaErrorStreamCaptureInvalidated. So does a synchronization of the capturing
 * stream itself, and a copy to or from pageable memory on it. */

/* The streams whose capture an unsafe call from this thread would break. */
std::vector<stream_state *> captures_forbidding_unsafe_calls() {
    std::vector<stream_state *> out;
    for (auto &entry : sim().streams) {
        stream_state *s = entry.second.get();
        if (!s->capture) continue;
        if (s->capture_mode == cudaStreamCaptureModeGlobal ||
            (s->capture_mode == cudaStreamCaptureModeThreadLocal &&
             s->capture_thread == std::this_thread::get_id()))
            out.push_back(s);
    }
    return out;
}

/* cudaErrorStreamCaptureUnsupported, invalidating the captures, when an unsafe call is prohibited
 * now; else cudaSuccess. */
cudaError_t unsafe_call() {
    std::vector<stream_state *> breaking = captures_forbidding_unsafe_calls();
    for (stream_state *s : breaking)
        s->capture_invalid = true;
    return breaking.empty() ? cudaSuccess : cudaErrorStreamCaptureUnsupported;
}

/* cudaErrorStreamCaptureUnsupported, invalidating its capture, when s is capturing. */
cudaError_t forbidden_while_capturing(stream_state *s) {
    if (!s->capture) return cudaSuccess;
    s->capture_invalid = true;
    return cudaErrorStreamCaptureUnsupported;
}

/* Work queued into a capture that is invalid is refused with cudaErrorStreamCaptureInvalidated;
 * cudasim_break_capture's call is refused with cudaErrorStreamCaptureUnsupported, as a call the
 * capture prohibits is, and invalidates the capture. */
cudaError_t capture_refuses(stream_state *s) {
    if (!s->capture) return cudaSuccess;
    if (s->capture_invalid) return cudaErrorStreamCaptureInvalidated;
    if (sim().break_capture > 0 && --sim().break_capture == 0) {
        s->capture_invalid = true;
        return cudaErrorStreamCaptureUnsupported;
    }
    return cudaSuccess;
}

/* What a stream wait does when it runs: only its place in the order matters. */
cudaError_t nothing() {
    return cudaSuccess;
}

void sweep_destroyed_streams() {
    for (auto it = sim().streams.begin(); it != sim().streams.end();)
        it = !it->second->live && it->second->queue.empty() ? sim().streams.erase(it) : ++it;
}

/* A fault leaves the device unusable: "any further CUDA work will return the same error"
 * (driver_types.h, cudaErrorIllegalAddress). The queued work is dropped. */
cudaError_t make_sticky(cudaError_t err) {
    sim().sticky = err;
    sim().legacy.queue.clear();
    for (auto &entry : sim().streams)
        entry.second->queue.clear();
    sim().pending.clear();
    sweep_destroyed_streams();
    return err;
}

/* What must run, per stream: its queued operations up to this seq. */
using needs = std::map<stream_state *, std::uint64_t>;

/* Adds what the waits among the needed operations need (the awaited record and what precedes it
 * on its stream), until nothing more is added. */
void add_awaited(needs &need) {
    for (bool grew = true; grew;) {
        grew = false;
        for (auto &entry : need)
            for (const queued_op &o : entry.first->queue) {
                if (o.seq > entry.second) break;
                auto awaited = sim().pending.find(o.awaits);
                if (!o.awaits || awaited == sim().pending.end()) continue;
                std::uint64_t &upto = need[awaited->second];
                if (upto < o.awaits) upto = o.awaits, grew = true;
            }
    }
}

/* The stream whose next operation runs now, among those that may go: by the schedule. */
stream_state *pick(const needs &need) {
    std::vector<stream_state *> ready;
    for (const auto &entry : need) {
        const std::deque<queued_op> &q = entry.first->queue;
        if (!q.empty() && q.front().seq <= entry.second && !is_pending(q.front().awaits))
            ready.push_back(entry.first);
    }
    if (ready.empty()) return nullptr;
    std::sort(ready.begin(), ready.end(), [](const stream_state *a, const stream_state *b) {
        return a->queue.front().seq < b->queue.front().seq;
    });
    switch (schedule()) {
    case order::forward:
        return ready.back(); /* the latest issued first: never the host's order by luck */
    case order::reverse:
        return ready.front();
    case order::shuffle:
        return ready[schedule_pick(ready.size())];
    }
    return ready.front();
}

/* Runs what `need` names, in an order the schedule picks; the sticky error if something faults. */
cudaError_t drain(needs need) {
    add_awaited(need);
    device_access access; /* opened when there is work to run */
    while (stream_state *s = pick(need)) {
        access.open();
        queued_op o = std::move(s->queue.front());
        s->queue.pop_front();
        sim().pending.erase(o.seq);
        cudaError_t err = o.run();
        if (err != cudaSuccess) return make_sticky(err);
    }
    /* add_awaited closed `need` over the waits, and a wait only names an earlier record: pick
     * can stop with needed work left only if that broke. */
    for (const auto &[s, upto] : need)
        if (!s->queue.empty() && s->queue.front().seq <= upto) {
            std::fprintf(stderr, "cudasim: %s (operation %llu) was needed but left unrun\n",
                         s->queue.front().what, (unsigned long long)s->queue.front().seq);
            std::abort();
        }
    sweep_destroyed_streams();
    return cudaSuccess;
}

cudaError_t run_until(std::uint64_t seq) {
    auto it = sim().pending.find(seq);
    if (it == sim().pending.end()) return sim().sticky;
    return drain({{it->second, seq}});
}

cudaError_t run_stream(stream_state *s) {
    return s->queue.empty() ? cudaSuccess : run_until(s->queue.back().seq);
}

/* ---- copies ---------------------------------------------------------------------------------- */

/* One side of a copy: device memory when `device`, else host memory. */
bool check_side(const char *name, const void *p, std::size_t bytes, bool device, span *out) {
    if (device) return check_device("cudaMemcpyAsync", name, p, bytes, out);
    return check_host("cudaMemcpyAsync", name, p, bytes, out);
}

/* Queues the checked copy as the asynchronous copies behave ("API synchronization behavior", CUDA
 * runtime API): into pageable memory "the function will return only once the copy has completed"
 * (so the call runs what the copy needs); "if pageable memory must first be staged to pinned
 * memory, the driver may synchronize with the stream and stage the copy", so a pageable source is
 * read at the call (the stream synchronization, a "may", is not modelled: nothing may rely on it);
 * a pinned or device source is read when the copy runs. */
cudaError_t queue_copy(stream_state *s, span dst, span src, bool src_device, bool dst_device) {
    std::shared_ptr<std::vector<char>> staged;
    if (!src_device && !src.allocation) {
        const char *from = static_cast<const char *>(src.p);
        staged = std::make_shared<std::vector<char>>(from, from + src.bytes);
    }
    std::uint64_t seq = push(s, "cudaMemcpyAsync", [dst, src, staged]() {
        if (!still_live("cudaMemcpyAsync", "dst", dst) ||
            !still_live("cudaMemcpyAsync", "src", src))
            return cudaErrorIllegalAddress;
        std::memmove(const_cast<void *>(dst.p), staged ? staged->data() : src.p, dst.bytes);
        return cudaSuccess;
    });
    return !dst_device && !dst.allocation ? run_until(seq) : cudaSuccess;
}

/* ---- device properties ----------------------------------------------------------------------- */

/* An H100-like device: what a kernel launch or cumlp may ask about. */
void fill_properties(cudaDeviceProp *p, int device) {
    std::memset(p, 0, sizeof *p);
    std::snprintf(p->name, sizeof p->name, "cudasim (CPU simulator of CUDA)");
    p->uuid.bytes[0] = (char)device;
    p->totalGlobalMem = memory_bytes();
    p->sharedMemPerBlock = 48 << 10;
    p->sharedMemPerBlockOptin = 227 << 10;
    p->sharedMemPerMultiprocessor = 228 << 10;
    p->regsPerBlock = p->regsPerMultiprocessor = 65536;
    p->warpSize = 32;
    p->memPitch = INT_MAX;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = INT_MAX;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->totalConstMem = 64 << 10;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = 132;
    p->maxThreadsPerMultiProcessor = 2048;
    p->maxBlocksPerMultiProcessor = 32;
    p->l2CacheSize = 50 << 20;
    p->memoryBusWidth = 5120;
    p->asyncEngineCount = 2;
    p->concurrentKernels = p->unifiedAddressing = p->canMapHostMemory = 1;
    p->pciBusID = device + 1;
}

/* ---- the error names ------------------------------------------------------------------------- */

/* The errors the simulator returns (device.cc's included), with the real runtime's strings. */
#define CUDASIM_ERRORS(X)                                                                          \
    X(cudaSuccess, "no error")                                                                     \
    X(cudaErrorInvalidValue, "invalid argument")                                                   \
    X(cudaErrorMemoryAllocation, "out of memory")                                                  \
    X(cudaErrorInitializationError, "initialization error")                                        \
    X(cudaErrorLaunchFailure, "unspecified launch failure")                                        \
    X(cudaErrorLaunchTimeout, "the launch timed out and was terminated")                           \
    X(cudaErrorLaunchOutOfResources, "too many resources requested for launch")                    \
    X(cudaErrorInvalidDeviceFunction, "invalid device function")                                   \
    X(cudaErrorInvalidConfiguration, "invalid configuration argument")                             \
    X(cudaErrorInvalidMemcpyDirection, "invalid copy direction for memcpy")                        \
    X(cudaErrorNoDevice, "no CUDA-capable device is detected")                                     \
    X(cudaErrorInvalidDevice, "invalid device ordinal")                                            \
    X(cudaErrorInvalidResourceHandle, "invalid resource handle")                                   \
    X(cudaErrorNotReady, "device not ready")                                                       \
    X(cudaErrorIllegalAddress, "an illegal memory access was encountered")                         \
    X(cudaErrorAssert, "device-side assert triggered")                                             \
    X(cudaErrorIllegalInstruction, "an illegal instruction was encountered")                       \
    X(cudaErrorMisalignedAddress, "misaligned address")                                            \
    X(cudaErrorNotSupported, "operation not supported")                                            \
    X(cudaErrorStreamCaptureUnsupported, "operation not permitted when stream is capturing")       \
    X(cudaErrorStreamCaptureInvalidated,                                                           \
      "operation failed due to a previous error during capture")                                   \
    X(cudaErrorGraphExecUpdateFailure,                                                             \
      "the graph update was not performed because it included changes which violated constraints " \
      "specific to instantiated graph update")                                                     \
    X(cudaErrorIllegalState, "the operation cannot be performed in the present state")             \
    X(cudaErrorUnknown, "unknown error")

const char *error_text(cudaError_t err, bool name) {
    switch (err) {
#define CUDASIM_ERROR_CASE(e, text)                                                                \
    case e:                                                                                        \
        return name ? #e : text;
        CUDASIM_ERRORS(CUDASIM_ERROR_CASE)
#undef CUDASIM_ERROR_CASE
    default:
        return "unrecognized error code";
    }
}

state::~state() {
    registry_gone = true;
    std::size_t device = 0, bytes = 0, pinned = 0;
    for (const auto &entry : allocations) {
        if (entry.second.pinned) {
            pinned++;
        } else {
            device++;
            bytes += entry.second.size;
        }
        if (entry.second.pinned)
            std::free((void *)entry.first);
        else
            unmap_device(entry.first, entry.second.size);
    }
    std::size_t live_streams = 0;
    for (const auto &entry : streams)
        live_streams += entry.second->live;
    if (device) report("%zu device allocations (%zu bytes) never freed", device, bytes);
    if (pinned) report("%zu pinned host allocations never freed", pinned);
    if (live_streams) report("%zu streams never destroyed", live_streams);
    if (!events.empty()) report("%zu events never destroyed", events.size());
    if (!graphs.empty()) report("%zu graphs never destroyed", graphs.size());
    if (!graph_execs.empty()) report("%zu executable graphs never destroyed", graph_execs.size());
    for (cudaGraph_t g : graphs)
        delete g;
    for (cudaGraphExec_t e : graph_execs)
        delete e;
}

} // namespace

/* ---- what the other parts of the simulator call ---------------------------------------------- */

void report(const char *fmt, ...) {
    char text[1024];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(text, sizeof text, fmt, args);
    va_end(args);
    std::fprintf(stderr, "cudasim: %s\n", text);
    report_count++;
}

std::unique_lock<std::recursive_mutex> hold() {
    return std::unique_lock<std::recursive_mutex>(sim().mutex);
}

cudaError_t begin_call() {
    state &s = sim();
    if (s.sticky != cudaSuccess) return s.sticky;
    if (s.inject_sticky > 0 && --s.inject_sticky == 0) return make_sticky(cudaErrorIllegalAddress);
    return device_count() == 0 ? cudaErrorNoDevice : cudaSuccess;
}

cudaError_t sticky_error() {
    auto lock = hold();
    return sim().sticky;
}

cudaError_t set_last_error(cudaError_t err) {
    return returned(err);
}

bool is_device_range(const void *p, std::size_t bytes) {
    found f = locate(p);
    return f.ok && !f.a.pinned && room(f, p) >= bytes;
}

std::uint64_t device_allocation(const void *p) {
    found f = locate(p);
    return f.ok && !f.a.pinned ? f.a.id : 0;
}

/* The first byte of the allocation's slack that is not kSlackWord's, or 0; it restores them.
 * Not instrumented: ASan has the slack poisoned. */
CUDASIM_NO_ASAN std::size_t check_slack(std::uintptr_t base, std::size_t size) {
    unsigned char *p = reinterpret_cast<unsigned char *>(base);
    std::size_t span = rounded(size), bad = 0;
    for (std::size_t k = size; k < span; k++)
        if (p[k] != slack_byte(base + k)) {
            bad = bad ? bad : k;
            p[k] = slack_byte(base + k);
        }
    return bad;
}

bool check_guards(const char *kernel) {
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    bool intact = true;
    for (const auto &[base, a] : sim().allocations) {
        if (a.pinned) continue;
        if (std::size_t k = check_slack(base, a.size)) {
            report("kernel %s wrote past the end of the device allocation at %p (%zu bytes): "
                   "byte %zu",
                   kernel, (void *)base, a.size, k);
            intact = false;
        }
    }
    return intact;
}

bool check_device(const char *what, const char *name, const void *p, std::size_t bytes, span *out) {
    found f = locate(p);
    if (!f.ok || f.a.pinned) {
        report("%s: %s %p is not device memory (%s)", what, name, p,
               f.ok ? "pinned host memory" : "a host pointer, or memory not allocated");
        return false;
    }
    if (room(f, p) < bytes) {
        report("%s: %s %p + %zu bytes runs %zu bytes past the end of its allocation (%zu bytes at "
               "%p)",
               what, name, p, bytes, bytes - room(f, p), f.a.size, (void *)f.base);
        return false;
    }
    *out = {p, bytes, f.a.id};
    return true;
}

bool still_live(const char *what, const char *name, const span &s) {
    if (!s.allocation) return true;
    found f = locate(s.p);
    if (f.ok && f.a.id == s.allocation && room(f, s.p) >= s.bytes) return true;
    /* A graph's operations hold the addresses of their capture, which stay valid for whatever
     * allocation holds them when the graph runs (a buffer freed and allocated again at the same
     * address, as a caller's batch may be) */
    if (graph_replay && f.ok && room(f, s.p) >= s.bytes) return true;
    report("%s: %s %p was freed before the operation ran (use after free)", what, name, s.p);
    return false;
}

bool in_graph_replay() {
    return graph_replay;
}

cudaError_t enqueue_op(cudaStream_t stream, const char *what, std::function<cudaError_t()> op) {
    auto lock = hold();
    stream_state *s = work_stream(stream, what);
    if (!s) return cudaErrorInvalidResourceHandle;
    if (cudaError_t refused = capture_refuses(s)) return refused;
    push(s, what, std::move(op));
    return cudaSuccess;
}

void enqueue(cudaStream_t stream, const char *what, std::function<cudaError_t()> op) {
    auto lock = hold();
    cudaError_t err = begin_call();
    if (err == cudaSuccess) err = enqueue_op(stream, what, std::move(op));
    returned(err);
}

bool is_stream(cudaStream_t stream, const char *what) {
    auto lock = hold();
    return find_stream(stream, what) != nullptr;
}

int current_device_id() {
    return current_device;
}

device_memory_opened::device_memory_opened() : lock_(hold()) {
    open_device_memory(true);
}

device_memory_opened::~device_memory_opened() {
    open_device_memory(false);
}

cudaError_t synchronize_all() {
    auto lock = hold();
    needs all;
    std::vector<stream_state *> streams{&sim().legacy};
    for (auto &entry : sim().streams)
        streams.push_back(entry.second.get());
    for (stream_state *s : streams)
        if (!s->queue.empty()) all[s] = s->queue.back().seq;
    return drain(all);
}

} // namespace cudasim

using namespace cudasim;

/* ---- the simulator's control (cudasim_control.h) --------------------------------------------- */

int cudasim_error_count(void) {
    return report_count;
}

void cudasim_fail_allocation(int nth) {
    auto lock = hold();
    sim().fail_allocation = nth;
}

void cudasim_fail_host_allocation(int nth) {
    auto lock = hold();
    sim().fail_host_allocation = nth;
}

void cudasim_inject_sticky_error(int nth) {
    auto lock = hold();
    sim().inject_sticky = nth;
}

void cudasim_break_capture(int nth) {
    auto lock = hold();
    sim().break_capture = nth;
}

void cudasim_reset(void) {
    auto lock = hold();
    sim().sticky = cudaSuccess;
    sim().fail_allocation = sim().fail_host_allocation = sim().inject_sticky = 0;
    sim().break_capture = 0;
    last_error = cudaSuccess;
    report_count = 0;
}

/* ---- errors ---------------------------------------------------------------------------------- */

/* A sticky error cannot be cleared: "any further CUDA work will return the same error". */
cudaError_t cudaGetLastError(void) {
    auto lock = hold();
    cudaError_t err = first_error(sim().sticky, last_error);
    last_error = cudaSuccess;
    return err;
}

cudaError_t cudaPeekAtLastError(void) {
    auto lock = hold();
    return first_error(sim().sticky, last_error);
}

const char *cudaGetErrorName(cudaError_t err) {
    return error_text(err, true);
}

const char *cudaGetErrorString(cudaError_t err) {
    return error_text(err, false);
}

/* The start of a runtime call: the lock, then the sticky (or injected) error or
 * cudaErrorNoDevice returned at once. */
#define START_CALL()                                                                               \
    auto lock = hold();                                                                            \
    if (cudaError_t start_err_ = begin_call()) return returned(start_err_)

/* Returns err (recorded as the last error) from the calling function when cond holds. */
#define FAIL_IF(cond, err)                                                                         \
    if (cond) return returned(err)

/* ---- device ---------------------------------------------------------------------------------- */

cudaError_t cudaGetDeviceCount(int *count) {
    auto lock = hold();
    cudaError_t err = begin_call();
    FAIL_IF(!count, cudaErrorInvalidValue);
    if (err == cudaSuccess || err == cudaErrorNoDevice) *count = device_count();
    return returned(err);
}

cudaError_t cudaGetDevice(int *device) {
    START_CALL();
    FAIL_IF(!device, cudaErrorInvalidValue);
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    START_CALL();
    FAIL_IF(device < 0 || device >= device_count(), cudaErrorInvalidDevice);
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    START_CALL();
    FAIL_IF(!prop, cudaErrorInvalidValue);
    FAIL_IF(device < 0 || device >= device_count(), cudaErrorInvalidDevice);
    fill_properties(prop, device);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    START_CALL();
    FAIL_IF(!free_bytes || !total_bytes, cudaErrorInvalidValue);
    std::lock_guard<std::mutex> guard(sim().registry_mutex);
    *total_bytes = memory_bytes();
    *free_bytes = *total_bytes - std::min(*total_bytes, sim().device_bytes);
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    START_CALL();
    if (cudaError_t capturing = unsafe_call()) return returned(capturing);
    return returned(synchronize_all());
}

/* ---- memory ---------------------------------------------------------------------------------- */

/* "The memory is not cleared": it is filled with 0xff bytes (NaN as floats), so that a read of an
 * element never written shows (map_device). A zero-byte request gives NULL, as the runtime does. */
cudaError_t cudaMalloc(void **ptr, size_t size) {
    START_CALL();
    FAIL_IF(!ptr, cudaErrorInvalidValue);
    *ptr = nullptr;
    if (cudaError_t capturing = unsafe_call()) return returned(capturing);
    bool injected = sim().fail_allocation > 0 && --sim().fail_allocation == 0;
    FAIL_IF(injected || size > memory_bytes() - std::min(memory_bytes(), sim().device_bytes),
            cudaErrorMemoryAllocation);
    if (size == 0) return cudaSuccess;
    void *p = add_allocation(size, false);
    FAIL_IF(!p, cudaErrorMemoryAllocation);
    *ptr = p;
    return cudaSuccess;
}

/* The frees and destroys release what they are given even when the call fails with the sticky
 * error (a real process would tear the context down and lose it all), so that the exit check
 * stays meaningful. */
cudaError_t cudaFree(void *ptr) {
    auto lock = hold();
    cudaError_t err = begin_call();
    if (cudaError_t capturing = unsafe_call()) return returned(first_error(err, capturing));
    bool freed = !ptr || remove_allocation("cudaFree", ptr, false);
    return returned(first_error(err, freed ? cudaSuccess : cudaErrorInvalidValue));
}

cudaError_t cudaHostAlloc(void **ptr, size_t size, unsigned int flags) {
    START_CALL();
    const unsigned known = cudaHostAllocPortable | cudaHostAllocMapped | cudaHostAllocWriteCombined;
    FAIL_IF(!ptr || (flags & ~known), cudaErrorInvalidValue);
    *ptr = nullptr;
    if (cudaError_t capturing = unsafe_call()) return returned(capturing);
    bool injected = sim().fail_host_allocation > 0 && --sim().fail_host_allocation == 0;
    FAIL_IF(injected, cudaErrorMemoryAllocation);
    *ptr = size ? add_allocation(size, true) : nullptr;
    FAIL_IF(size && !*ptr, cudaErrorMemoryAllocation);
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
    auto lock = hold();
    cudaError_t err = begin_call();
    if (cudaError_t capturing = unsafe_call()) return returned(first_error(err, capturing));
    bool freed = !ptr || remove_allocation("cudaFreeHost", ptr, true);
    return returned(first_error(err, freed ? cudaSuccess : cudaErrorInvalidValue));
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    START_CALL();
    FAIL_IF(kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault,
            cudaErrorInvalidMemcpyDirection);
    stream_state *s = work_stream(stream, "cudaMemcpyAsync");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    if (count == 0) return cudaSuccess;
    /* cudaMemcpyDefault: the kind is inferred from the pointers (unified addressing). */
    bool dst_device = kind == cudaMemcpyDefault
                          ? is_device_range(dst, 1)
                          : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_device = kind == cudaMemcpyDefault
                          ? is_device_range(src, 1)
                          : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    span d{}, r{};
    FAIL_IF(!check_side("dst", dst, count, dst_device, &d) ||
                !check_side("src", src, count, src_device, &r),
            cudaErrorInvalidValue);
    /* a capture records no copy from or to pageable memory (it would run at the call) */
    if ((!dst_device && !d.allocation) || (!src_device && !r.allocation))
        if (cudaError_t capturing = forbidden_while_capturing(s)) return returned(capturing);
    if (cudaError_t refused = capture_refuses(s)) return returned(refused);
    /* "The memory areas may not overlap" (cudaMemcpyAsync): a memmove here, undefined there. */
    auto from = static_cast<const char *>(src), to = static_cast<const char *>(dst);
    if (to < from + count && from < to + count) {
        report("cudaMemcpyAsync: dst %p and src %p overlap (%zu bytes each)", dst, src, count);
        return returned(cudaErrorInvalidValue);
    }
    return returned(queue_copy(s, d, r, src_device, dst_device));
}

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream) {
    START_CALL();
    stream_state *s = work_stream(stream, "cudaMemsetAsync");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    span d{};
    if (count == 0) return cudaSuccess;
    FAIL_IF(!check_device("cudaMemsetAsync", "devPtr", ptr, count, &d), cudaErrorInvalidValue);
    if (cudaError_t refused = capture_refuses(s)) return returned(refused);
    push(s, "cudaMemsetAsync", [d, value]() {
        if (!still_live("cudaMemsetAsync", "devPtr", d)) return cudaErrorIllegalAddress;
        std::memset(const_cast<void *>(d.p), value, d.bytes);
        return cudaSuccess;
    });
    return cudaSuccess;
}

/* ---- streams --------------------------------------------------------------------------------- */

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    START_CALL();
    FAIL_IF(!stream || flags > cudaStreamNonBlocking, cudaErrorInvalidValue);
    auto s = std::make_unique<stream_state>();
    s->device = current_device;
    *stream = reinterpret_cast<cudaStream_t>(s.get());
    sim().streams.emplace(*stream, std::move(s));
    return cudaSuccess;
}

/* "In case the device is still doing work in the stream ... the function will return immediately
 * and the resources ... will be released automatically once the device has completed all work"
 * (cudaStreamDestroy): the queued work stays, to run when something needs it. */
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    auto lock = hold();
    cudaError_t err = begin_call();
    stream_state *s = is_default(stream) ? nullptr : find_stream(stream, "cudaStreamDestroy");
    if (s && s->capture) { /* a bug of the caller's: the capture is dropped */
        report("cudaStreamDestroy: stream %p is capturing", (void *)stream);
        delete s->capture;
        s->capture = nullptr;
    }
    if (s) s->live = false;
    sweep_destroyed_streams();
    return returned(first_error(err, s ? cudaSuccess : cudaErrorInvalidResourceHandle));
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    START_CALL();
    stream_state *s = find_stream(stream, "cudaStreamSynchronize");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    if (cudaError_t capturing = forbidden_while_capturing(s)) return returned(capturing);
    return returned(run_stream(s));
}

/* Nothing runs by itself here: polling runs the stream's work, but answers cudaErrorNotReady the
 * first time, so that a caller that polls once and goes on is still caught. (In the eager
 * schedule the work has run when it was queued: the stream is idle.) */
cudaError_t cudaStreamQuery(cudaStream_t stream) {
    START_CALL();
    stream_state *s = find_stream(stream, "cudaStreamQuery");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    if (cudaError_t capturing = forbidden_while_capturing(s)) return returned(capturing);
    if (s->queue.empty()) return cudaSuccess;
    return returned(first_error(run_stream(s), cudaErrorNotReady));
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int *device) {
    START_CALL();
    FAIL_IF(!device, cudaErrorInvalidValue);
    stream_state *s = find_stream(stream, "cudaStreamGetDevice");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    *device = s->device >= 0 ? s->device : current_device;
    return cudaSuccess;
}

/* Waits for the event's latest record at the time of the call; an event never recorded (or whose
 * record has run) needs no wait. */
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    START_CALL();
    FAIL_IF(flags & ~cudaEventWaitExternal, cudaErrorInvalidValue);
    stream_state *s = work_stream(stream, "cudaStreamWaitEvent");
    std::shared_ptr<event_state> e = find_event(event, "cudaStreamWaitEvent");
    FAIL_IF(!s || !e, cudaErrorInvalidResourceHandle);
    if (s->capture) {
        report("cudaStreamWaitEvent: dependencies between streams in a capture are not simulated");
        return returned(forbidden_while_capturing(s));
    }
    if (is_pending(e->last_record)) push(s, "cudaStreamWaitEvent", nothing, e->last_record);
    return cudaSuccess;
}

/* ---- events ---------------------------------------------------------------------------------- */

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    START_CALL();
    const unsigned known = cudaEventBlockingSync | cudaEventDisableTiming | cudaEventInterprocess;
    FAIL_IF(!event || (flags & ~known), cudaErrorInvalidValue);
    auto e = std::make_shared<event_state>();
    e->flags = flags;
    *event = reinterpret_cast<cudaEvent_t>(e.get());
    sim().events.emplace(*event, std::move(e));
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

/* A record still queued keeps its event alive: "resources ... will be released automatically once
 * the device has completed event" (cudaEventDestroy). */
cudaError_t cudaEventDestroy(cudaEvent_t event) {
    auto lock = hold();
    cudaError_t err = begin_call();
    bool known = find_event(event, "cudaEventDestroy") != nullptr;
    sim().events.erase(event);
    return returned(first_error(err, known ? cudaSuccess : cudaErrorInvalidResourceHandle));
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    START_CALL();
    std::shared_ptr<event_state> e = find_event(event, "cudaEventRecord");
    stream_state *s = work_stream(stream, "cudaEventRecord");
    FAIL_IF(!e || !s, cudaErrorInvalidResourceHandle);
    if (s->capture) {
        report("cudaEventRecord: events recorded in a capture are not simulated");
        return returned(forbidden_while_capturing(s));
    }
    std::uint64_t seq = sim().next_seq;
    e->last_record = seq;
    e->timed = false;
    push(s, "cudaEventRecord", [e, seq]() {
        if (e->last_record == seq) e->timed = true, e->when = host_clock::now();
        return cudaSuccess;
    });
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    START_CALL();
    std::shared_ptr<event_state> e = find_event(event, "cudaEventSynchronize");
    FAIL_IF(!e, cudaErrorInvalidResourceHandle);
    return returned(is_pending(e->last_record) ? run_until(e->last_record) : cudaSuccess);
}

/* As cudaStreamQuery: the first poll of a pending event runs its work and says NotReady. */
cudaError_t cudaEventQuery(cudaEvent_t event) {
    START_CALL();
    std::shared_ptr<event_state> e = find_event(event, "cudaEventQuery");
    FAIL_IF(!e, cudaErrorInvalidResourceHandle);
    if (!is_pending(e->last_record)) return cudaSuccess;
    return returned(first_error(run_until(e->last_record), cudaErrorNotReady));
}

/* The rules of cudaEventElapsedTime's documentation: never recorded or created with
 * cudaEventDisableTiming: cudaErrorInvalidResourceHandle; not completed: cudaErrorNotReady. The
 * time is the host time between the two records' execution. */
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    START_CALL();
    FAIL_IF(!ms, cudaErrorInvalidValue);
    std::shared_ptr<event_state> a = find_event(start, "cudaEventElapsedTime");
    std::shared_ptr<event_state> b = find_event(end, "cudaEventElapsedTime");
    FAIL_IF(!a || !b || !a->last_record || !b->last_record, cudaErrorInvalidResourceHandle);
    if (is_pending(a->last_record) || is_pending(b->last_record)) return cudaErrorNotReady;
    FAIL_IF(((a->flags | b->flags) & cudaEventDisableTiming) || !a->timed || !b->timed,
            cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
    return cudaSuccess;
}

/* ---- graphs ---------------------------------------------------------------------------------- */

/* Capture on the legacy default stream is not allowed ("the legacy stream cannot be captured").
 * Work queued on the stream before the capture began is not part of the graph, and still runs as
 * queued work does. */
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    START_CALL();
    FAIL_IF(mode != cudaStreamCaptureModeGlobal && mode != cudaStreamCaptureModeThreadLocal &&
                mode != cudaStreamCaptureModeRelaxed,
            cudaErrorInvalidValue);
    /* the legacy stream cannot be captured ("the NULL stream", cudaStreamLegacy); the per-thread
     * default stream, which the simulator does not model apart from it, is refused too */
    FAIL_IF(is_default(stream), cudaErrorStreamCaptureUnsupported);
    stream_state *s = work_stream(stream, "cudaStreamBeginCapture");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    FAIL_IF(s->capture, cudaErrorIllegalState);
    s->capture = new CUgraph_st();
    s->capture_invalid = false;
    s->capture_mode = mode;
    s->capture_thread = std::this_thread::get_id();
    return cudaSuccess;
}

/* Ends the capture either way, also after a fault (as the frees release what they are given):
 * an invalidated capture, or one ended with the sticky error, gives no graph. */
cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    auto lock = hold();
    cudaError_t err = begin_call();
    FAIL_IF(!graph, first_error(err, cudaErrorInvalidValue));
    *graph = nullptr;
    stream_state *s = find_stream(stream, "cudaStreamEndCapture");
    FAIL_IF(!s, first_error(err, cudaErrorInvalidResourceHandle));
    FAIL_IF(!s->capture, first_error(err, cudaErrorIllegalState));
    cudaGraph_t captured = s->capture;
    bool invalid = s->capture_invalid;
    s->capture = nullptr;
    s->capture_invalid = false;
    if (invalid || err != cudaSuccess) {
        delete captured;
        return returned(first_error(err, cudaErrorStreamCaptureInvalidated));
    }
    sim().graphs.insert(captured);
    *graph = captured;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *status) {
    START_CALL();
    FAIL_IF(!status, cudaErrorInvalidValue);
    stream_state *s = find_stream(stream, "cudaStreamIsCapturing");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    *status = !s->capture          ? cudaStreamCaptureStatusNone
              : s->capture_invalid ? cudaStreamCaptureStatusInvalidated
                                   : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags) {
    START_CALL();
    FAIL_IF(!exec, cudaErrorInvalidValue);
    *exec = nullptr;
    FAIL_IF(flags != 0, cudaErrorInvalidValue); /* cumlp asks for no instantiation flags */
    if (!sim().graphs.count(graph)) {
        report("cudaGraphInstantiate: %p is not a live graph", (void *)graph);
        return returned(cudaErrorInvalidValue);
    }
    *exec = new CUgraphExec_st{graph->nodes};
    sim().graph_execs.insert(*exec);
    return cudaSuccess;
}

/* Queues the graph's operations on the stream, in their order, as one launch. */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    START_CALL();
    if (!sim().graph_execs.count(exec)) {
        report("cudaGraphLaunch: %p is not a live executable graph", (void *)exec);
        return returned(cudaErrorInvalidValue);
    }
    stream_state *s = work_stream(stream, "cudaGraphLaunch");
    FAIL_IF(!s, cudaErrorInvalidResourceHandle);
    /* in the eager schedule a node runs as it is pushed: one that faults ends the launch */
    for (const graph_node &node : exec->nodes) {
        std::function<cudaError_t()> run = node.run;
        push(s, node.what, [run]() {
            graph_replay = true;
            cudaError_t err = run();
            graph_replay = false;
            return err;
        });
        if (sim().sticky != cudaSuccess) return returned(sim().sticky);
    }
    return cudaSuccess;
}

/* The update succeeds when the new graph has the same operations, one for one, in the same order
 * (its kernels, copies and library calls may take other arguments); else the executable graph is
 * left as it was and the result says the topology changed. */
cudaError_t cudaGraphExecUpdate(cudaGraphExec_t exec, cudaGraph_t graph,
                                cudaGraphExecUpdateResultInfo *info) {
    START_CALL();
    FAIL_IF(!info || !sim().graph_execs.count(exec) || !sim().graphs.count(graph),
            cudaErrorInvalidValue);
    std::memset(info, 0, sizeof *info);
    bool same = exec->nodes.size() == graph->nodes.size();
    for (std::size_t i = 0; same && i < exec->nodes.size(); i++)
        same = std::strcmp(exec->nodes[i].what, graph->nodes[i].what) == 0;
    if (!same) {
        info->result = cudaGraphExecUpdateErrorTopologyChanged;
        return returned(cudaErrorGraphExecUpdateFailure);
    }
    exec->nodes = graph->nodes;
    info->result = cudaGraphExecUpdateSuccess;
    return cudaSuccess;
}

/* Destroying an executable graph whose launch is still queued is allowed: the queued operations
 * hold their own copies. Released even after a fault. */
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    auto lock = hold();
    cudaError_t err = begin_call();
    bool known = sim().graph_execs.erase(exec) != 0;
    if (known) delete exec;
    return returned(first_error(err, known ? cudaSuccess : cudaErrorInvalidValue));
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    auto lock = hold();
    cudaError_t err = begin_call();
    bool known = sim().graphs.erase(graph) != 0;
    if (known) delete graph;
    return returned(first_error(err, known ? cudaSuccess : cudaErrorInvalidValue));
}
