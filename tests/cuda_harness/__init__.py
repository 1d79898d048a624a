"""A CPU stand-in for CuPy (fakecupy) and the header that compiles CUDA kernels as C++ (tests only)."""
