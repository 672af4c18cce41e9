#!/usr/bin/env bash
# The GPU benchmark and the GPU demo on a lent device machine (an H100 through the
# `device` tool), in one call. The machine has python3 with PyTorch (CUDA) but no
# network and no Vulkan loader, so both travel from here.
#
# Prepare on the build machine, once per session (.gl and dist stay untracked):
#   printf '/.gl/\n/dist/\n' >> .git/info/exclude
#   mkdir -p .gl /tmp/amd64/partial
#   o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
#   apt-get $o update && (cd .gl && apt-get $o download libvulkan1)
#   maturin build --release -o dist          # an abi3 wheel: fits the device's Python 3.12
# Then run it there (device time is short: one call, then give the machine back):
#   run(command="bash benches/device_gpu.sh", carry=[".gl", "dist"], timeout_s=540)
# and copy the printed tables into BENCHMARKS.md (card, driver, date, ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/convcore-device-out}"
mkdir -p "$OUT"

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
# The NVIDIA Vulkan driver manifest lives under the driver's mount on these machines.
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then
    export VK_DRIVER_FILES="$icd"
fi

python3 -m pip install -q --no-deps --no-index --force-reinstall dist/convcore-*.whl
{
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader || true
    python3 -c "import convcore, json; print(json.dumps(convcore.devices(), indent=1))"
} | tee "$OUT/adapters.txt"

# Per-operation times and the training step beside PyTorch CUDA (ratios printed).
timeout 300 python3 benches/gpu.py --repeat 10 | tee "$OUT/bench.txt"
# The demo convnet trained on the card (accuracy and samples/s at the end).
timeout 200 python3 -m convcore demo "$OUT/demo" --device gpu 2>&1 | tr '\r' '\n' | grep -v 'ETA' \
    | tee "$OUT/demo.txt" | tail -n 15
