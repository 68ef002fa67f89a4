//! orcd-kernels: CUDA C sources compiled at run time by NVRTC, and the table of entry points.
