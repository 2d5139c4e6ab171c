#!/usr/bin/env python3
"""Builds a pickle benchmark input: a full-size checkpoint with the real key layout of a public
architecture (the compact layouts committed at packages/merge-engine/test/fixtures/layouts),
saved by torch.save in the zip format the way training scripts save SD checkpoints:
{"state_dict": {...}, "global_step": ..., "epoch": ...}. Float tensors are N(0, 0.05^2) from a
seeded torch.Generator (one stream per tensor, so the output is reproducible), integer tensors
(position ids) are aranges. An SD1.5 layout in F32 with the diffuser, text encoder and VAE is
about 4.3 GB.

usage: make_torch_checkpoint.py LAYOUT OUT.ckpt [--dtype F32|F16|BF16] [--seed N]
           [--components diffuser,clip_l,vae] [--scale S]
LAYOUT: a layout name (sd1-ldm, ...) or a path to a .json.gz. --scale S divides every dimension
larger than 64 by S (a small checkpoint with the same keys)."""
import argparse
import gzip
import json
import os

import torch

LAYOUTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../packages/merge-engine/test/fixtures/layouts")
FLOAT = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
INT = {"I64": torch.int64, "I32": torch.int32}


def read_layout(name):
    path = name if name.endswith(".json.gz") else os.path.join(LAYOUTS, name + ".json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def build_state_dict(layout, dtype, seed, components, scale):
    pick = components or [c for c in layout["components"] if c not in ("ema", "scheduler")]
    state = {}
    generator = torch.Generator().manual_seed(seed)
    for part, component in enumerate(pick):
        for index, (key, shape, layout_dtype) in enumerate(layout["components"][component]):
            shape = [max(1, d // scale) if d > 64 else d for d in shape]
            if layout_dtype in INT:
                count = 1
                for d in shape:
                    count *= d
                state[key] = torch.arange(count, dtype=INT[layout_dtype]).reshape(shape)
                continue
            generator.manual_seed(seed * 1_000_003 + part * 100_003 + index)
            state[key] = (torch.randn(shape, generator=generator, dtype=torch.float32) * 0.05).to(FLOAT[dtype])
    return state


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("layout")
    ap.add_argument("out")
    ap.add_argument("--dtype", default="F32", choices=sorted(FLOAT))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--components", default="")
    ap.add_argument("--scale", type=int, default=1)
    a = ap.parse_args()
    layout = read_layout(a.layout)
    state = build_state_dict(layout, a.dtype, a.seed, [c for c in a.components.split(",") if c], a.scale)
    temp = a.out + ".tmp"
    torch.save({"state_dict": state, "global_step": 840000, "epoch": 6}, temp)
    os.replace(temp, a.out)
    print(f"{a.out}: {len(state)} tensors, {os.path.getsize(a.out) / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
