// CUDA emulation for running generated .cu sources on the CPU (wavegen's interpreter mode).
// Blocks run one after another. The threads of a block run as fibers (ucontext) on one OS
// thread: each runs until it reaches __syncthreads() or returns, then the next; a round ends
// when every thread has done so. __shared__ variables become static storage, shared by the
// threads of the running block, as on the device.
#pragma once
#include <ucontext.h>
#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace wg_emu {
inline dim3 block_idx, thread_idx, block_dim, grid_dim;

struct Fiber {
  ucontext_t context;
  bool done = false;
};

inline ucontext_t scheduler;
inline Fiber* current = nullptr;
inline const std::function<void()>* body = nullptr;

inline void fiber_main() {
  (*body)();
  current->done = true;   // returning resumes the scheduler through uc_link
}

inline void launch(dim3 grid, dim3 block, const std::function<void()>& kernel) {
  const size_t threads = size_t(block.x) * block.y * block.z;
  const size_t stack_size = 64 * 1024;
  std::vector<Fiber> fibers(threads);
  std::vector<char> stacks(threads * stack_size);
  grid_dim = grid;
  block_dim = block;
  body = &kernel;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        block_idx = dim3(bx, by, bz);
        for (size_t i = 0; i < threads; ++i) {
          Fiber& f = fibers[i];
          f.done = false;
          getcontext(&f.context);
          f.context.uc_stack.ss_sp = &stacks[i * stack_size];
          f.context.uc_stack.ss_size = stack_size;
          f.context.uc_link = &scheduler;
          makecontext(&f.context, fiber_main, 0);
        }
        for (bool running = true; running;) {   // one round per barrier
          running = false;
          for (size_t i = 0; i < threads; ++i) {
            Fiber& f = fibers[i];
            if (f.done) continue;
            thread_idx = dim3(unsigned(i % block.x), unsigned(i / block.x % block.y),
                              unsigned(i / (size_t(block.x) * block.y)));
            current = &f;
            swapcontext(&scheduler, &f.context);
            running = running || !f.done;
          }
        }
      }
}
}  // namespace wg_emu

inline void __syncthreads() { swapcontext(&wg_emu::current->context, &wg_emu::scheduler); }

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

// CUDA's reciprocal square root, a device function there.
template <typename T>
inline T rsqrt(T x) { return T(1) / std::sqrt(x); }
