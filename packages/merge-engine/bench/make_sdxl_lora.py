#!/usr/bin/env python3
"""A synthetic rank-R kohya LoRA for SDXL (sd-scripts' default target set: every Transformer2D
linear of the UNet with LDM names, both text encoders' attention and MLP, te2 q/k/v separately),
F16, random factors, alpha = R. Needs numpy only.

usage: make_sdxl_lora.py SDXL_LAYOUT.json[.gz] OUT.safetensors [--rank 32]
(the layout: packages/merge-engine/test/fixtures/layouts/sdxl-sgm.json.gz)"""
import argparse, gzip, json, re, struct
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("layout"); ap.add_argument("out"); ap.add_argument("--rank", type=int, default=32)
a = ap.parse_args()
layout = json.load(gzip.open(a.layout, "rt") if a.layout.endswith(".gz") else open(a.layout))["components"]
rng = np.random.default_rng(0)
modules = []  # (name, out, in)
unet = re.compile(r"^model\.diffusion_model\.(.+\.(transformer_blocks\.\d+\.(attn[12]\.(to_q|to_k|to_v|to_out\.0)|ff\.net\.(0\.proj|2))|proj_in|proj_out))\.weight$")
for key, shape, _ in layout["diffuser"]:
    m = unet.match(key)
    if m and len(shape) == 2:
        modules.append(("lora_unet_" + m.group(1).replace(".", "_"), shape[0], shape[1]))
te1 = re.compile(r"^conditioner\.embedders\.0\.transformer\.(text_model\.encoder\.layers\.\d+\.(self_attn\.(q|k|v|out)_proj|mlp\.fc[12]))\.weight$")
for key, shape, _ in layout["clip_l"]:
    m = te1.match(key)
    if m: modules.append(("lora_te1_" + m.group(1).replace(".", "_"), shape[0], shape[1]))
for key, shape, _ in layout["clip_g"]:
    m = re.match(r"^conditioner\.embedders\.1\.model\.transformer\.resblocks\.(\d+)\.(attn\.in_proj_weight|attn\.out_proj\.weight|mlp\.c_fc\.weight|mlp\.c_proj\.weight)$", key)
    if not m: continue
    base = f"lora_te2_text_model_encoder_layers_{m.group(1)}_"
    if m.group(2) == "attn.in_proj_weight":
        for leaf in "qkv": modules.append((base + f"self_attn_{leaf}_proj", shape[1], shape[1]))
    else:
        leaf = {"attn.out_proj.weight": "self_attn_out_proj", "mlp.c_fc.weight": "mlp_fc1", "mlp.c_proj.weight": "mlp_fc2"}[m.group(2)]
        modules.append((base + leaf, shape[0], shape[1]))
r = a.rank
header, blobs, off = {}, [], 0
def add(name, arr):
    global off
    b = arr.astype(np.float16).tobytes()
    header[name] = {"dtype": "F16", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
for name, o, i in modules:
    add(name + ".lora_down.weight", rng.standard_normal((r, i), dtype=np.float32) * 0.02)
    add(name + ".lora_up.weight", rng.standard_normal((o, r), dtype=np.float32) * 0.002)
    add(name + ".alpha", np.array(r, dtype=np.float32))
header["__metadata__"] = {"ss_network_dim": str(r), "ss_network_alpha": str(r), "synthetic": "true"}
hb = json.dumps(header, separators=(",", ":")).encode()
hb += b" " * ((8 - len(hb) % 8) % 8)
with open(a.out, "wb") as f:
    f.write(struct.pack("<Q", len(hb))); f.write(hb)
    for b in blobs: f.write(b)
print(f"{len(modules)} modules, rank {r}, {off / 2**20:.0f} MiB")
