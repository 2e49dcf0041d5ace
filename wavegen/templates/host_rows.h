// Host shells: moving rows between tensors (in S) and sums (in T).
#include <type_traits>

// Rows pass between the sums (in T) and the tensors (in S) through wg_convert (where S is
// float16 and the CPU converts it in hardware, 8 at a time: GCC does not vectorize the
// conversion by itself). Where S is T, the sums write the tensor directly: wg_stage
// returns it and wg_unstage has nothing to do.
template <typename D, typename Src>
static inline void wg_convert(D* __restrict dst, const Src* __restrict src, wg_int n) {
  for (wg_int i = 0; i < n; ++i) dst[i] = src[i];
}
template <typename S, typename T>
static inline T* wg_stage(S* out, T* scratch) {
  if constexpr (std::is_same_v<S, T>) return out; else return scratch;
}
template <typename S, typename T>
static inline void wg_unstage(S* out, const T* staged, wg_int n) {
  if constexpr (!std::is_same_v<S, T>) wg_convert(out, staged, n);
}
// A row of a tensor to read as Read: the row itself, or converted into scratch.
template <typename S, typename Read>
static inline const Read* wg_view(const S* row, Read* scratch, wg_int n) {
  if constexpr (std::is_same_v<S, Read>) {
    return row;
  } else {
    wg_convert(scratch, row, n);
    return scratch;
  }
}
