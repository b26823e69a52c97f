#!/usr/bin/env bash
# Interleaved timing of the gdchaos MNIST ball (benchmarks/mnist_ball.py) and the independent
# PyTorch reference (../shared/bench/torch_reference.py seq), ROUNDS rounds each, in one session.
# Usage: benchmarks/compare_torch.sh [ROUNDS] [TORCH_PYTHON]   (GDCHAOS_DATA must hold mnist/)
set -euo pipefail
rounds=${1:-3}
torch_python=${2:-python}
here=$(cd "$(dirname "$0")" && pwd)
bench=${GDCHAOS_BENCH:-$here/../../shared/bench}
for i in $(seq "$rounds"); do
  python "$here/mnist_ball.py" --epochs 4
  (cd "$bench" && "$torch_python" torch_reference.py seq 2)
done
