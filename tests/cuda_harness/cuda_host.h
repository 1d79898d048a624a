// The CUDA built-ins a modelgen kernel uses, for compiling its source as plain C++ (tests only).
// The host harness (fakecupy.py) runs a launch as a loop over blocks and threads, one call of
// the kernel per thread, after setting blockIdx/threadIdx through harness_set_thread: threads
// run one after another, so atomicAdd need not be atomic.
#include <math.h>

#include <cmath>

#define __global__
#define __device__
#define __forceinline__ inline

struct dim3 {
    unsigned x, y, z;
};
static dim3 threadIdx, blockIdx, blockDim, gridDim;

extern "C" void harness_set_thread(unsigned block, unsigned thread, unsigned threads_per_block, unsigned blocks) {
    blockIdx.x = block;
    threadIdx.x = thread;
    blockDim.x = threads_per_block;
    gridDim.x = blocks;
}

// CUDA's overloads used by the kernels: int (spike lists), float and double (ring buffers),
// unsigned long long (event counts)
template <typename T>
static inline T atomicAdd(T* address, T value) {
    const T old = *address;
    *address = old + value;
    return old;
}
