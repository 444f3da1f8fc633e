#!/usr/bin/env bash
# GPU benchmarks of issue 13 ("GPU-ready training"), as one prepared script for a machine with one CUDA GPU.
#
# What it measures:
#   1. bench/supernet_throughput.py --device cuda: the supernet's batched inherited-weight evaluation
#      against the naive path, and the supernet's training step against the stand-alone one, on the GPU
#      (writes bench/results/supernet_throughput_cuda.md).
#   2. bench/standalone_gpu.py: stand-alone jobs per hour on the one GPU for fp32, auto (bf16 +
#      channels-last), auto + torch.compile and auto with K concurrent jobs, with mean val accuracy
#      (writes bench/results/standalone_gpu.md).
#   Both are then concatenated into bench/results/gpu.md under a header (date, GPU, torch version).
#
# It is never required for CI: without CUDA it prints one line on stderr and exits 2. Only built-in
# data are used (nothing is downloaded). Each step runs under `timeout`; the whole script stays under
# 8 minutes. A step that fails or times out is noted in gpu.md and the script exits 1 at the end.
#
# Run from anywhere:  bash bench/gpu.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! python -c "import torch; assert torch.cuda.is_available()" >/dev/null 2>&1; then
    echo "bench/gpu.sh: CUDA is not available (torch.cuda.is_available() is False); nothing run" >&2
    exit 2
fi

out=bench/results/gpu.md
supernet_md=bench/results/supernet_throughput_cuda.md
standalone_md=bench/results/standalone_gpu.md
marker=$(mktemp)  # a results file older than this is from an earlier run and is not included
trap 'rm -f "$marker"' EXIT
failed=0

run_step() {  # run_step SECONDS COMMAND...: run under timeout, report a non-zero status, never abort the script
    local limit=$1 rc=0
    shift
    echo "== $* (timeout ${limit} s)"
    timeout --kill-after=10 "$limit" "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then
        failed=1
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "bench/gpu.sh: '$*' timed out after ${limit} s" >&2
        else
            echo "bench/gpu.sh: '$*' exited with status $rc" >&2
        fi
    fi
    return 0
}

run_step 120 python bench/supernet_throughput.py --device cuda --output "$supernet_md"
run_step 300 python bench/standalone_gpu.py --device cuda --output "$standalone_md"

gpu=$(python -c "import torch; print(torch.cuda.get_device_name())")
versions=$(python -c "import torch; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}')")
{
    echo "# GPU benchmarks (issue 13): $gpu"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $gpu, $versions, $(nproc) CPU cores; \`bash bench/gpu.sh\`"
    for md in "$supernet_md" "$standalone_md"; do
        echo
        if [ -f "$md" ] && [ "$md" -nt "$marker" ]; then
            cat "$md"
        else
            echo "## $md: no results from this run (the step failed or timed out before writing; see its output)"
        fi
    done
} >"$out"
echo "wrote $out"
exit "$failed"
