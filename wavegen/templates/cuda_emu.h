// CUDA emulation for running generated .cu sources on the CPU (wavegen's interpreter mode).
// Blocks run one after another. The threads of a block run as fibers (ucontext) on one OS
// thread: each runs until it reaches __syncthreads() or returns, then the next; a round ends
// when every thread has done so. __shared__ variables become static storage, shared by the
// threads of the running block, as on the device.
//
// Checked emulation (WG_EMU_CHECK, wavegen.emulation): the kernels' WG_GLOBAL pointers and
// WG_SHARED arrays become types that check every access and log it, and the launch reports
//  - global accesses outside the tensor a parameter was given, and shared-array indices
//    outside its extents (the access is dropped: a load reads 0);
//  - reads of shared memory no thread of the block has written (initcheck);
//  - a word of shared memory written by one thread and read or written by another within
//    one round, i.e. with no __syncthreads between them (racecheck);
// each with the kernel, block and thread, and counts, per warp-wide memory instruction
// (the k-th execution of one access site by the 32 threads of a warp), the 32-byte sectors
// a global request touches, the shared-memory wavefronts (bank conflicts) of a shared one
// and the lanes taking part (wavegen/emulation.py reads them).
#pragma once
#include <ucontext.h>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>
#ifdef WG_EMU_CHECK     // (the plain emulation compiles without these headers: faster)
#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#define WG_EMU_ASAN 1
#endif

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace wg_emu {
inline dim3 block_idx, thread_idx, block_dim, grid_dim;

struct Fiber {
  ucontext_t context;
  char* stack = nullptr;
  size_t thread = 0;      // linear index in the block
  bool done = false;
};

inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline const std::function<void()>* body = nullptr;
inline unsigned round = 0;       // barriers the running block has passed
#ifdef WG_EMU_ASAN
// AddressSanitizer follows stack switches only when told (it would report the fibers'
// stacks as overflows otherwise).
inline const void* scheduler_stack = nullptr;
inline size_t scheduler_stack_size = 0;
#endif
inline size_t stack_size() {
#ifdef WG_EMU_ASAN
  return 256 * 1024;    // sanitized frames are larger
#else
  return 64 * 1024;
#endif
}

// Scheduler -> fiber and back, with the sanitizer told of each switch.
inline void enter(Fiber& f) {
#ifdef WG_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f.stack, stack_size());
  swapcontext(&scheduler, &f.context);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  swapcontext(&scheduler, &f.context);
#endif
}

inline void leave(bool exiting) {
#ifdef WG_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(exiting ? nullptr : &fake, scheduler_stack,
                                 scheduler_stack_size);
  if (exiting) return;     // uc_link switches
  swapcontext(&current->context, &scheduler);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  if (!exiting) swapcontext(&current->context, &scheduler);
#endif
}

#ifdef WG_EMU_CHECK
// ---- checked emulation: findings -------------------------------------------------------
inline const char* kernel_name = "";
inline std::string first_finding;
inline size_t findings = 0;

inline void report(const std::string& what) {
  if (findings++ == 0) {
    char where[160];
    std::snprintf(where, sizeof where, " (kernel %s, block (%u, %u, %u), thread (%u, %u, %u))",
                  kernel_name, block_idx.x, block_idx.y, block_idx.z, thread_idx.x,
                  thread_idx.y, thread_idx.z);
    first_finding = what + where;
  }
}

inline std::string describe_thread(size_t t) {
  const size_t bx = block_dim.x, by = block_dim.y;
  return "thread (" + std::to_string(t % bx) + ", " + std::to_string(t / bx % by) + ", " +
         std::to_string(t / (bx * by)) + ")";
}

// ---- checked emulation: the access log of the running block ---------------------------
enum Space : uint8_t { GLOBAL = 0, SHARED = 1 };
struct Access {
  uint64_t address;   // global: the byte address; shared: the byte offset in its array
  uint32_t site, occurrence, warp, bytes;
  uint8_t space, store, lane;
};
inline std::vector<Access> log;
// An access site: its return address and its callers' two (frame pointers kept): on the
// device every helper is inlined, so one access in a helper called from two places is two
// instructions, which a warp runs apart.
struct Site {
  const void* at[3];
  bool operator==(const Site& o) const {
    return at[0] == o.at[0] && at[1] == o.at[1] && at[2] == o.at[2];
  }
};
struct SiteHash {
  size_t operator()(const Site& s) const {
    return std::hash<const void*>()(s.at[0]) ^ (std::hash<const void*>()(s.at[1]) << 1) ^
           (std::hash<const void*>()(s.at[2]) << 2);
  }
};
inline std::unordered_map<Site, uint32_t, SiteHash> sites;   // access site -> small id
inline std::vector<std::vector<uint32_t>> occurrences;        // [thread][site] executions

[[gnu::noinline]] inline void record(Space space, bool store, uint64_t address,
                                     uint32_t bytes) {
  Site where;      // (not brace-initialised: this header passes through Jinja)
  where.at[0] = __builtin_return_address(0);
  where.at[1] = __builtin_return_address(1);
  where.at[2] = __builtin_return_address(2);
  const uint32_t site = sites.emplace(where, uint32_t(sites.size())).first->second;
  std::vector<uint32_t>& mine = occurrences[current->thread];
  if (mine.size() <= site) mine.resize(site + 1, 0);
  const size_t t = current->thread;
  log.push_back({address, site, mine[site]++, uint32_t(t / 32), bytes, uint8_t(space),
                 uint8_t(store), uint8_t(t % 32)});
}

// Totals over the launches since the last read, per direction (0 load, 1 store): the
// warp-wide requests, the lanes taking part and the lanes their warps had; global: the
// sectors the requests touch, the fewest their distinct bytes could, and the sectors each
// block touches, once per block (no reuse across blocks: the traffic model's bytes) and
// that the launch touches (each byte once: the kernel's floor);
// shared: wavefronts (the most distinct words one bank serves in a request) and the fewest
// possible.
inline const char* const GLOBAL_COUNTS[] = {"requests", "lanes", "warp_lanes", "sectors",
                                            "min_sectors", "block_sectors", "launch_sectors"};
inline const char* const SHARED_COUNTS[] = {"requests", "lanes", "warp_lanes", "wavefronts",
                                            "min_wavefronts"};
struct Counters {
  double global[2][7] = {};
  double shared[2][5] = {};
  double blocks = 0;
};
inline Counters counters;
inline std::vector<uint64_t> launch_sectors[2];   // of the running launch, by direction

// "global_load_requests,...,blocks": the names of the doubles wg_emu_counters writes.
inline std::string counter_names() {
  std::string names;
  for (const char* dir : {"load", "store"})
    for (const char* c : GLOBAL_COUNTS) names += std::string("global_") + dir + "_" + c + ",";
  for (const char* dir : {"load", "store"})
    for (const char* c : SHARED_COUNTS) names += std::string("shared_") + dir + "_" + c + ",";
  return names + "blocks";
}

// Copies the counters, in counter_names()'s order, into `out` and clears them.
inline void take_counters(double* out) {
  const double* c = &counters.global[0][0];     // Counters holds doubles only
  std::copy(c, c + sizeof(Counters) / sizeof(double), out);
  counters = Counters();
}

inline void tally_block(size_t threads) {
  std::sort(log.begin(), log.end(), [](const Access& a, const Access& b) {
    return std::tie(a.space, a.store, a.warp, a.site, a.occurrence, a.lane) <
           std::tie(b.space, b.store, b.warp, b.site, b.occurrence, b.lane);
  });
  std::vector<uint64_t> units, block_sectors[2];
  for (size_t i = 0; i < log.size();) {
    size_t j = i;
    while (j < log.size() && log[j].space == log[i].space && log[j].store == log[i].store &&
           log[j].warp == log[i].warp && log[j].site == log[i].site &&
           log[j].occurrence == log[i].occurrence) ++j;
    const Access& a = log[i];
    const double lanes = double(j - i);
    const double warp_lanes = double(std::min<size_t>(32, threads - size_t(a.warp) * 32));
    units.clear();
    const unsigned shift = a.space == GLOBAL ? 5 : 2;    // 32-byte sectors, 4-byte words
    for (size_t k = i; k < j; ++k)
      for (uint64_t u = log[k].address >> shift;
           u <= (log[k].address + log[k].bytes - 1) >> shift; ++u) units.push_back(u);
    std::sort(units.begin(), units.end());
    units.erase(std::unique(units.begin(), units.end()), units.end());
    uint64_t distinct_bytes = 0;
    {
      std::vector<std::pair<uint64_t, uint64_t>> ranges;
      for (size_t k = i; k < j; ++k) ranges.push_back({log[k].address, log[k].address + log[k].bytes});
      std::sort(ranges.begin(), ranges.end());
      uint64_t end = 0;
      for (auto& r : ranges) {
        const uint64_t from = std::max(r.first, end);
        if (r.second > from) distinct_bytes += r.second - from;
        end = std::max(end, r.second);
      }
    }
    if (a.space == GLOBAL) {
      double* c = counters.global[a.store];
      c[0] += 1; c[1] += lanes; c[2] += warp_lanes; c[3] += double(units.size());
      c[4] += double((distinct_bytes + 31) / 32);
      block_sectors[a.store].insert(block_sectors[a.store].end(), units.begin(), units.end());
    } else {
      unsigned per_bank[32] = {0};
      for (uint64_t w : units) ++per_bank[w % 32];
      double* c = counters.shared[a.store];
      c[0] += 1; c[1] += lanes; c[2] += warp_lanes;
      c[3] += double(*std::max_element(per_bank, per_bank + 32));
      c[4] += double((units.size() + 31) / 32);
    }
    i = j;
  }
  for (int store = 0; store < 2; ++store) {
    std::vector<uint64_t>& s = block_sectors[store];
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    counters.global[store][5] += double(s.size());
    launch_sectors[store].insert(launch_sectors[store].end(), s.begin(), s.end());
  }
  counters.blocks += 1;
  log.clear();
}

// ---- checked emulation: global memory ---------------------------------------------------
struct Span { uintptr_t base; size_t bytes; const char* name; };
inline std::vector<Span> spans;     // the launch's tensors, by pointer parameter

// A pointer into the tensor given to one parameter (span): indexing checks the element
// lies within it and logs the access; loads return values, stores write through.
template <typename T>
struct global_ptr {
  T* p = nullptr;
  int span = -1;
  using Value = std::remove_const_t<T>;

  global_ptr operator+(int64_t k) const { return {p + k, span}; }
  global_ptr operator-(int64_t k) const { return {p - k, span}; }
  friend global_ptr operator+(int64_t k, global_ptr q) { return q + k; }

  // A load (const T) returns the value; a store (T) the element, or a scratch element
  // where the index is outside the tensor.
  [[gnu::always_inline]] inline decltype(auto) operator[](int64_t k) const {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p + k);
    constexpr bool load = std::is_const_v<T>;
    const Span& s = spans[span];
    if (at < s.base || at + sizeof(T) > s.base + s.bytes) {
      const int64_t offset = (int64_t(at) - int64_t(s.base)) / int64_t(sizeof(T));
      report(std::string(load ? "global load" : "global store") + " outside the tensor given to " +
             s.name + ": element " + std::to_string(offset) + " of " +
             std::to_string(s.bytes / sizeof(T)));
      static Value scratch;
      scratch = Value();
      if constexpr (load) return Value(scratch); else return static_cast<Value&>(scratch);
    } else {
      record(GLOBAL, !load, at, sizeof(T));
      if constexpr (load) return Value(p[k]); else return static_cast<Value&>(p[k]);
    }
  }
  decltype(auto) operator*() const { return (*this)[0]; }
};

// ---- checked emulation: shared memory ---------------------------------------------------
struct SharedState {
  virtual void reset() = 0;
};
inline std::vector<SharedState*> shared_arrays;   // reset at every block's start

constexpr uint32_t NOBODY = 0xffffffffu, SEVERAL = 0xfffffffeu;

// A __shared__ array of type A (e.g. float[4][16][40]) with a shadow per element: the round
// and thread of its last write, the round and reader(s) of its reads.
template <typename A>
struct shared_array : SharedState {
  using T = std::remove_all_extents_t<A>;
  static constexpr size_t size = sizeof(A) / sizeof(T);
  T data[size];
  struct Shadow { uint32_t write_round, writer, read_round, reader; };
  Shadow shadow[size];
  const char* name;

  explicit shared_array(const char* name_) : name(name_) { reset(); shared_arrays.push_back(this); }
  void reset() override {
    for (size_t i = 0; i < size; ++i) {
      data[i] = std::numeric_limits<T>::quiet_NaN();     // uninitialised shows as NaN
      shadow[i] = {NOBODY, NOBODY, NOBODY, NOBODY};
    }
  }
  std::string element(size_t i) const { return std::string(name) + " element " + std::to_string(i); }

  T load(size_t i) {
    Shadow& s = shadow[i];
    const uint32_t me = uint32_t(current->thread);
    if (s.writer == NOBODY)
      report("read of uninitialised shared memory: " + element(i) +
             " has not been written by any thread of the block");
    else if (s.write_round == round && s.writer != me)
      report("shared-memory race: " + element(i) + " read here was written by " +
             describe_thread(s.writer) + " with no __syncthreads between");
    if (s.read_round != round) { s.read_round = round; s.reader = me; }
    else if (s.reader != me) s.reader = SEVERAL;
    record(SHARED, false, i * sizeof(T), sizeof(T));
    return data[i];
  }
  void store(size_t i, T v) {
    Shadow& s = shadow[i];
    const uint32_t me = uint32_t(current->thread);
    if (s.write_round == round && s.writer != me)
      report("shared-memory race: " + element(i) + " written here was written by " +
             describe_thread(s.writer) + " with no __syncthreads between");
    else if (s.read_round == round && s.reader != me)
      report("shared-memory race: " + element(i) + " written here was read by " +
             (s.reader == SEVERAL ? std::string("other threads") : describe_thread(s.reader)) +
             " with no __syncthreads between");
    s.write_round = round;
    s.writer = me;
    record(SHARED, true, i * sizeof(T), sizeof(T));
    data[i] = v;
  }
};

// An element of the array: loads convert, stores assign.
template <typename A>
struct shared_element {
  shared_array<A>* array;
  size_t at;
  using T = typename shared_array<A>::T;
  operator T() const { return array->load(at); }
  const shared_element& operator=(T v) const { array->store(at, v); return *this; }
};

// The array indexed down to the array type B, at flat offset `at` in units of B.
template <typename A, typename B>
struct shared_index {
  shared_array<A>* array;
  size_t at;
  using Next = std::remove_extent_t<B>;
  using Result = std::conditional_t<std::is_array_v<Next>, shared_index<A, Next>,
                                    shared_element<A>>;
  Result operator[](int64_t k) const {
    constexpr size_t extent = std::extent_v<B>;
    if (k < 0 || size_t(k) >= extent) {
      report("shared index " + std::to_string(k) + " outside [0, " + std::to_string(extent) +
             ") of " + array->name);
      k = 0;
    }
    return Result{array, at * extent + size_t(k)};
  }
};

template <typename A>
struct shared : shared_array<A> {
  using shared_array<A>::shared_array;
  auto operator[](int64_t k) { return shared_index<A, A>{this, 0}[k]; }
};
#endif  // WG_EMU_CHECK

// Parameter `index` of the launch as the kernel takes it: bound to its tensor's extent.
template <typename T>
inline auto bind(T* p, int index) {
#ifdef WG_EMU_CHECK
  return global_ptr<T>{p, index};
#else
  (void)index;
  return p;
#endif
}

inline void fiber_main() {
#ifdef WG_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, nullptr, nullptr);
#endif
  (*body)();
  current->done = true;
  leave(true);   // returning resumes the scheduler through uc_link
}

// Runs the kernel over the grid; returns the number of findings (checked emulation).
inline size_t launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
  const size_t threads = size_t(block.x) * block.y * block.z;
  std::vector<Fiber> fibers(threads);
  std::vector<char> stacks(threads * stack_size());
  grid_dim = grid;
  block_dim = block;
  body = &kernel;
#ifdef WG_EMU_CHECK
  findings = 0;
  first_finding.clear();
  occurrences.assign(threads, {});
#endif
#ifdef WG_EMU_ASAN
  pthread_attr_t attr;
  pthread_getattr_np(pthread_self(), &attr);
  void* bottom;
  pthread_attr_getstack(&attr, &bottom, &scheduler_stack_size);
  scheduler_stack = bottom;
  pthread_attr_destroy(&attr);
#endif
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        block_idx = dim3(bx, by, bz);
        round = 0;
#ifdef WG_EMU_CHECK
        for (SharedState* s : shared_arrays) s->reset();
        for (auto& o : occurrences) o.clear();
#endif
        for (size_t i = 0; i < threads; ++i) {
          Fiber& f = fibers[i];
          f.done = false;
          f.thread = i;
          f.stack = &stacks[i * stack_size()];
          getcontext(&f.context);
          f.context.uc_stack.ss_sp = f.stack;
          f.context.uc_stack.ss_size = stack_size();
          f.context.uc_link = &scheduler;
          makecontext(&f.context, fiber_main, 0);
        }
        for (bool running = true; running; ++round) {   // one round per barrier
          running = false;
          for (size_t i = 0; i < threads; ++i) {
            Fiber& f = fibers[i];
            if (f.done) continue;
            thread_idx = dim3(unsigned(i % block.x), unsigned(i / block.x % block.y),
                              unsigned(i / (size_t(block.x) * block.y)));
            current = &f;
            enter(f);
            running = running || !f.done;
          }
        }
#ifdef WG_EMU_CHECK
        tally_block(threads);
#endif
      }
#ifdef WG_EMU_CHECK
  for (int store = 0; store < 2; ++store) {
    std::vector<uint64_t>& s = launch_sectors[store];
    std::sort(s.begin(), s.end());
    counters.global[store][6] += double(std::unique(s.begin(), s.end()) - s.begin());
    s.clear();
  }
  return findings;
#else
  return 0;
#endif
}
}  // namespace wg_emu

inline void __syncthreads() { wg_emu::leave(false); }

#define blockIdx wg_emu::block_idx
#define threadIdx wg_emu::thread_idx
#define blockDim wg_emu::block_dim
#define gridDim wg_emu::grid_dim
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __restrict__ __restrict
#define __shared__ static
#define __constant__ static const
#ifdef WG_EMU_CHECK
#define WG_GLOBAL(T) wg_emu::global_ptr<T>
#define WG_SHARED(T, name, dims) static wg_emu::shared<T dims> name(#name)
#else
#define WG_GLOBAL(T) T* __restrict
#define WG_SHARED(T, name, dims) static T name dims
#endif

// CUDA's reciprocal square root, a device function there.
template <typename T>
inline T rsqrt(T x) { return T(1) / std::sqrt(x); }
