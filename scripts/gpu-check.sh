#!/usr/bin/env bash
# The GPU check (issue 14): run from the repository root on a Linux machine with an NVIDIA GPU,
# PyTorch and diffusers (no Rust and no network needed):
#
#   STEPSCOPE=target/cuda/stepscope bash scripts/gpu-check.sh
#
# STEPSCOPE is a `--features cuda` build of the app (scripts/build-cuda.sh makes one where there is
# no GPU; it links the CUDA libraries dynamically, found here through PyTorch's `nvidia/*/lib`).
# It prints:
#   1. the tiny pipelines run on CUDA and on the CPU by the same binary (text encoder,
#      transformer, VAE decoder; and the VAE encoder through an image-to-video run): every
#      tensor of the two files within 1e-3 (f32);
#   2. one denoising step of a random-weight Wan2.1 1.3B in the published layout, bf16, at
#      480 x 832 x 33 frames (latent 9 x 60 x 104) and x 81 (21 x 60 x 104), Stepscope against
#      diffusers on the same GPU in the same run, with the ratio, and the VAE decode of each.
set -euo pipefail

STEPSCOPE=${STEPSCOPE:-target/cuda/stepscope}
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export XDG_CACHE_HOME="$WORK/cache"
# The CUDA libraries PyTorch ships (cuBLAS, cuRAND, NVRTC), for the dynamically linked binary.
TORCH_LIBS=$("$PYTHON" -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/*/lib/*.so*")})))' 2>/dev/null || true)
export LD_LIBRARY_PATH="${TORCH_LIBS}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$STEPSCOPE" --version

echo "== 1. tiny pipelines: CUDA against the CPU"
PROMPT="a red ball rolls across a wooden table"
for device in cpu cuda:0; do
  "$STEPSCOPE" record --pipeline tests/fixtures/wan_pipeline_tiny --prompt "$PROMPT" --max-text-len 40 \
    --guidance 3 --seed 5 --size 3x4x6 --steps 4 --decode-steps 0,3 --device "$device" --quiet \
    -o "$WORK/t2v-${device%%:*}.safetensors"
done
"$PYTHON" scripts/gpu_check.py compare "$WORK/t2v-cpu.safetensors" "$WORK/t2v-cuda.safetensors" 1e-3

TI2V="$WORK/ti2v"
mkdir -p "$TI2V"
cp -r tests/fixtures/wan_pipeline_tiny/{text_encoder,tokenizer,scheduler} "$TI2V/"
cp -r tests/fixtures/wan22_vae_tiny "$TI2V/vae"
cp -r tests/fixtures/wan_pipeline_tiny_ti2v/. "$TI2V/"
for device in cpu cuda:0; do
  "$STEPSCOPE" record --pipeline "$TI2V" --image "$TI2V/image.png" --prompt "$PROMPT" --max-text-len 40 \
    --seed 5 --size 3x4x6 --steps 4 --decode-steps 3 --device "$device" --quiet \
    -o "$WORK/ti2v-${device%%:*}.safetensors"
done
"$PYTHON" scripts/gpu_check.py compare "$WORK/ti2v-cpu.safetensors" "$WORK/ti2v-cuda.safetensors" 1e-3

echo "== 2. Wan2.1 1.3B (random weights, published layout), bf16, one step"
"$PYTHON" scripts/gpu_check.py realsize "$WORK/wan13"
for size in 9x60x104 21x60x104; do
  IFS=x read -r frames height width <<< "$size"
  reference=$("$PYTHON" scripts/gpu_check.py time "$WORK/wan13" "$frames" "$height" "$width")
  echo "$reference"
  ours=$("$STEPSCOPE" record --pipeline "$WORK/wan13" --prompt "$PROMPT" --max-text-len 512 --seed 0 \
    --size "$size" --steps 4 --decode-steps 3 --dtype bf16 --device cuda:0 --timings --quiet \
    -o "$WORK/real.safetensors" 2>&1)
  echo "$ours" | sed 's/^/  stepscope: /'
  step_ms=$(echo "$ours" | sed -n 's/^median step: \([0-9.]*\) ms.*/\1/p')
  decode_ms=$(echo "$ours" | sed -n 's/.*decode of step 3: \([0-9.]*\) ms/\1/p')
  torch_step=$(echo "$reference" | sed -n 's/^diffusers step_ms //p')
  torch_decode=$(echo "$reference" | sed -n 's/^diffusers decode_ms //p')
  "$PYTHON" -c "print(f'latent $size: step {float($step_ms):.1f} ms (diffusers {float($torch_step):.1f} ms, ratio {float($step_ms) / float($torch_step):.2f}; goal <= 1.0); VAE decode {float($decode_ms):.0f} ms (diffusers {float($torch_decode):.0f} ms)')"
done
