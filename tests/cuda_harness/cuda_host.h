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
static dim3 threadIdx, blockIdx, blockDim;

extern "C" void harness_set_thread(unsigned block, unsigned thread, unsigned threads_per_block) {
    blockIdx.x = block;
    threadIdx.x = thread;
    blockDim.x = threads_per_block;
}

static inline int atomicAdd(int* address, int value) {
    const int old = *address;
    *address = old + value;
    return old;
}
