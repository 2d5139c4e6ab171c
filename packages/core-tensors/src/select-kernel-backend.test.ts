import * as tfCore from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { describe, expect, it } from "vitest";
import { createKernelBackend, loadTfjsNodeGpu, selectKernelBackend } from "./select-kernel-backend.js";
import type { TfNamespace } from "./tfjs-kernel-backend.js";

// Stand-in for tfjs-node-gpu: tfjs-core on its CPU backend, quiet (PROD stops its console banner).
async function loadTfjsCpu(): Promise<TfNamespace> {
  tfCore.env().set("PROD", true);
  await tfCore.setBackend("cpu");
  return tfCore as unknown as TfNamespace;
}

describe("selectKernelBackend", () => {
  it("cpu: worker-thread kernels, never touching the GPU package", async () => {
    let tried = false;
    const { backend, device, reason } = await selectKernelBackend({ device: "cpu", workers: 1, loadGpu: async () => ((tried = true), loadTfjsCpu()) });
    expect(tried).toBe(false);
    expect(device).toBe("cpu");
    expect(backend.kind).toBe("cpu");
    expect(reason).toBe("cpu (1 worker thread): CPU requested");
    await backend.close();
  });

  it("auto: falls back to the CPU with a one-line note when the GPU package does not load", async () => {
    const { backend, device, reason } = await selectKernelBackend({ device: "auto", loadGpu: () => Promise.reject(new Error("libcudart.so.11.0: cannot open shared object file\nmore detail")) });
    expect(device).toBe("cpu");
    expect(backend.kind).toBe("cpu");
    expect(reason).toMatch(/^cpu \(.*\): GPU backend not loadable \(libcudart\.so\.11\.0: cannot open shared object file\)$/);
    await backend.close();
  });

  it("auto: with the real optional package (its native binding is absent here) still yields a working backend", async () => {
    const selection = await selectKernelBackend({ workers: 0 });
    expect(["cpu", "gpu"]).toContain(selection.device);
    expect(selection.reason).not.toContain("\n");
    const out = await selection.backend.add(new Float32Array([1, 2]), new Float32Array([3, 4]));
    expect(Array.from(out)).toEqual([4, 6]);
    await selection.backend.close();
  });

  it("gpu: a typed error when the GPU package cannot be loaded", async () => {
    await expect(selectKernelBackend({ device: "gpu", loadGpu: () => Promise.reject(new Error("Cannot find module 'tfjs_binding.node'")) })).rejects.toMatchObject({
      code: "GPU_UNAVAILABLE",
      message: "GPU requested but @tensorflow/tfjs-node-gpu could not be loaded: Cannot find module 'tfjs_binding.node'",
    });
  });

  it("gpu: uses the tfjs adapter when a tfjs namespace loads", async () => {
    const { backend, device, reason } = await selectKernelBackend({ device: "gpu", workers: 0, loadGpu: loadTfjsCpu });
    expect(device).toBe("gpu");
    expect(backend.kind).toBe("tfjs");
    expect(reason).toBe("gpu (tfjs cpu backend): GPU requested");
    expect(Array.from(await backend.lerp(new Float32Array([0, 10]), new Float32Array([10, 20]), 0.5))).toEqual([5, 15]);
    await backend.close();
  });

  it("rejects an unknown device", async () => {
    await expect(createKernelBackend({ device: "tpu" as "cpu" })).rejects.toMatchObject({ code: "DEVICE_UNKNOWN" });
  });

  it("loadTfjsNodeGpu either loads the real TensorFlow backend or throws (never crashes the process)", async () => {
    const outcome = await loadTfjsNodeGpu().then(
      (tf) => tf.getBackend(),
      (error: Error) => `failed: ${error.message.split("\n")[0]}`,
    );
    expect(outcome === "tensorflow" || outcome.startsWith("failed: ")).toBe(true);
  });
});
