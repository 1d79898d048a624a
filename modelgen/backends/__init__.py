"""Code generation backends: one package per target (numpy, numba, cuda)."""
