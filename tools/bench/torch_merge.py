#!/usr/bin/env python3
"""The PyTorch baseline for the weighted-sum benchmark: what a user would otherwise run to merge
N safetensors checkpoints on the CPU. Each model is loaded whole with safetensors' load_file (as
A1111-style mergers do), its floating tensors are added into one float32 accumulator with the
model's weight, and the sum is saved as float16. Non-float tensors (position ids) come from the
first model. Peak memory is one loaded model plus the float32 accumulator.

usage: torch_merge.py OUT.safetensors A.safetensors:WEIGHT B.safetensors:WEIGHT ..."""
import sys

import torch
from safetensors.torch import load_file, save_file


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = argv[1]
    specs = []
    for arg in argv[2:]:
        path, _, weight = arg.rpartition(":")
        specs.append((path, float(weight)))
    total = {}
    for index, (path, weight) in enumerate(specs):
        state = load_file(path)
        for key, tensor in state.items():
            if not tensor.is_floating_point():
                if index == 0:
                    total[key] = tensor.clone()
            elif key not in total:
                total[key] = tensor.to(torch.float32).mul_(weight)
            else:
                total[key].add_(tensor.to(torch.float32), alpha=weight)
        del state
    save_file({k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in total.items()}, out)


if __name__ == "__main__":
    main(sys.argv)
