"""Inputs for bench/convert-batch.mjs, written by real PyTorch (torch.save, zip format).

usage: make_batch_inputs.py OUT_DIR [--small 50] [--small-mb 1] [--large 3] [--large-mb 200]
OUT_DIR/small/: LoRA-, VAE- and embedding-like state dicts of about --small-mb MB each.
OUT_DIR/large/: SD-checkpoint-like files (a `state_dict` wrapper, fp16) of about --large-mb MB.
"""
import argparse
import os

import torch

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--small", type=int, default=50)
p.add_argument("--small-mb", type=float, default=1.0)
p.add_argument("--large", type=int, default=3)
p.add_argument("--large-mb", type=float, default=200.0)
a = p.parse_args()
g = torch.Generator().manual_seed(0)
os.makedirs(os.path.join(a.out, "small"), exist_ok=True)
os.makedirs(os.path.join(a.out, "large"), exist_ok=True)


def floats(numel, dtype):
    return torch.randn(numel, generator=g).to(dtype)


for i in range(a.small):
    kind = i % 3
    numel = int(a.small_mb * 1e6 / 2 / 8) // 64 * 64
    if kind == 0:  # LoRA
        sd = {f"lora_unet_block_{j}.lora_down.weight": floats(numel, torch.float16).reshape(-1, 8) for j in range(8)}
    elif kind == 1:  # VAE
        sd = {f"decoder.up.{j}.conv.weight": floats(numel, torch.float16).reshape(-1, 4) for j in range(8)}
    else:  # embedding
        sd = {"string_to_param": {"*": floats(numel * 4, torch.float32).reshape(-1, 64)}, "name": f"emb{i}"}
    torch.save(sd, os.path.join(a.out, "small", f"file_{i:03d}.pt"))

for i in range(a.large):
    per = int(a.large_mb * 1e6 / 2 / 16) // 64 * 64
    sd = {f"model.diffusion_model.input_blocks.{j}.0.weight": floats(per, torch.float16).reshape(-1, 16) for j in range(16)}
    torch.save({"state_dict": sd}, os.path.join(a.out, "large", f"model_{i}.ckpt"))
print("done")
