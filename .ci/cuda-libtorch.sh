#!/usr/bin/env bash
# A CUDA libtorch for CI's CUDA build: torch 2.14.1 (CUDA 13) and the nvidia wheels its
# libraries load, in the venv given as $1. torch itself goes in with --no-deps: the mirror
# lacks its Python-only dependency cuda-bindings, and nothing here imports torch in Python
# (the addon needs libtorch's headers, CMake files and shared libraries).
set -euo pipefail
venv="$1"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("torch") else 1)'; then
  exit 0
fi
python3 -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check --timeout 20 --retries 1)
"${pip[@]}" --no-deps torch==2.14.1
"${pip[@]}" 'cuda-toolkit[cublas,cudart,cufft,cufile,cupti,curand,cusolver,cusparse,nvjitlink,nvrtc,nvtx]==13.0.3' \
  nvidia-cudnn-cu13==9.24.0.43 nvidia-cusparselt-cu13==0.8.1 nvidia-nccl-cu13==2.30.7 nvidia-nvshmem-cu13==3.4.5
