// Global and shared memory as the kernels declare them: WG_GLOBAL(type) for a pointer
// parameter, WG_SHARED(type, name, [extents]) for a __shared__ array. The checked emulation
// (cuda_emu.h) defines both as types that check and count every access.
#ifndef WG_GLOBAL
#define WG_GLOBAL(T) T* __restrict__
#define WG_SHARED(T, name, dims) __shared__ T name dims
#endif
