"""Builds the convert benchmark input: an SD1.5-layout (LDM keys) F32 checkpoint saved by torch.save
in the zip format, about 4.3 GB, from ../shared/bench/make_synthetic.py and ../shared/model-layouts.

usage: make_sd15_checkpoint.py OUT.ckpt [--scale S]   (S > 1 shrinks every large dimension)"""
import argparse
import os
import subprocess
import sys
import tempfile

import torch
from safetensors.torch import load_file

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--scale", type=int, default=1)
ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "../../../../shared"))
a = ap.parse_args()
with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(a.out))) as tmp:
    st = os.path.join(tmp, "sd15.safetensors")
    subprocess.run([sys.executable, os.path.join(a.shared, "bench/make_synthetic.py"), os.path.join(a.shared, "model-layouts/sd1-ldm.json"), st,
                    "--dtype", "F32", "--components", "diffuser,clip_l,vae", "--scale", str(a.scale)], check=True)
    sd = load_file(st)
    # Real SD1.5 training checkpoints wrap the weights in state_dict with a few extras.
    torch.save({"state_dict": sd, "global_step": 840000, "epoch": 6}, a.out)
print(f"{a.out}: {os.path.getsize(a.out) / 1e9:.2f} GB")
