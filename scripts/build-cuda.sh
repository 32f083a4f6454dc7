#!/usr/bin/env bash
# Builds `target/cuda/stepscope.xz`: a `--features cuda` release build of the app, for
# scripts/gpu-check.sh on a GPU machine that has no Rust. Runs where there is no GPU: CUDA's
# compiler and libraries come from PyPI (the CUDA 13.0 wheels, matching the GPU machines' driver
# and nvcc 13.0), and the driver library, which only a GPU machine has, is linked against a stub
# that names the real one (`libcuda.so.1`), as CUDA's own stubs do.
#
#   bash scripts/build-cuda.sh            # about 20 minutes on 2 cores
#
# The device tool carries at most 64 MiB of working tree and carried files: carry
# `target/cuda/stepscope.xz` (xz-compressed) and unpack it there with `xz -dk`.
set -euo pipefail

VENV=${VENV:-target/cuda/venv}
CAP=${CUDA_COMPUTE_CAP:-90} # H100 and H200
mkdir -p target/cuda
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-crt==13.0.*" \
    "nvidia-cublas==13.0.*" "nvidia-curand" "nvidia-cuda-nvrtc==13.0.*"
fi
CUDA_ROOT=$(cd "$VENV"/lib/python3*/site-packages/nvidia/cu13 && pwd)

# Unversioned names for the linker, and the driver stub.
LINK_DIR=$(pwd)/target/cuda/link
mkdir -p "$LINK_DIR"
for lib in cublas cublasLt curand nvrtc cudart; do
  real=$(ls "$CUDA_ROOT"/lib/lib$lib.so.* | head -1)
  ln -sf "$real" "$LINK_DIR/lib$lib.so"
done
# The driver API functions cudarc calls, each a stub; the real libcuda.so.1 replaces it at run time.
grep -rhoE '\bcu[A-Z][A-Za-z0-9_]+\b' ~/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/*.rs \
  | sort -u | sed 's/.*/void &(void) {}/' > "$LINK_DIR/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK_DIR/libcuda.so" "$LINK_DIR/cuda_stub.c"

export PATH="$CUDA_ROOT/bin:$PATH"
export CUDA_ROOT CUDA_PATH="$CUDA_ROOT" CUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT" CUDA_COMPUTE_CAP="$CAP"
export NVCC_CCBIN=${NVCC_CCBIN:-$(command -v gcc)}
export LIBRARY_PATH="$LINK_DIR${LIBRARY_PATH:+:$LIBRARY_PATH}"
export RUSTFLAGS="${RUSTFLAGS:-} -L $LINK_DIR"
cargo build --release --features cuda -p stepscope --bin stepscope --target-dir target/cuda/build
strip -o target/cuda/stepscope target/cuda/build/release/stepscope
xz -T0 -6 -kf target/cuda/stepscope
ls -la target/cuda/stepscope target/cuda/stepscope.xz
