import * as tfCore from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { describe, expect, it } from "vitest";
import { createKernelBackend, describeGpuLoadProblem, loadTfjsNodeGpu, selectKernelBackend } from "./select-kernel-backend.js";

// The loader's own words when pnpm skipped the package's install script (seen on this machine).
const BINDING_MISSING =
  "The Node.js native addon module (tfjs_binding.node) can not be found at path: /repo/node_modules/.pnpm/@tensorflow+tfjs-node-gpu@4.22.0_seedrandom@3.0.5/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node. \nPlease run command 'npm rebuild @tensorflow/tfjs-node-gpu --build-addon-from-source' to rebuild the native addon module.";
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
    expect(reason).toMatch(/^cpu \(.*\); no GPU \(CUDA library libcudart\.so\.11\.0 missing\)$/);
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
    await expect(selectKernelBackend({ device: "gpu", loadGpu: () => Promise.reject(new Error(BINDING_MISSING)) })).rejects.toMatchObject({
      code: "GPU_UNAVAILABLE",
      message:
        "GPU requested, but no GPU backend loads (tfjs-node-gpu native binding missing); its install script did not run: in the repository run `pnpm approve-builds` (allow @tensorflow/tfjs-node-gpu) then `pnpm rebuild @tensorflow/tfjs-node-gpu`, or use --device cpu",
    });
  });

  it("says in a few words what is missing, whatever the loader printed", () => {
    const notInstalled = Object.assign(new Error("Cannot find package '@tensorflow/tfjs-node-gpu' imported from /x/stmerge.js"), { code: "ERR_MODULE_NOT_FOUND" });
    expect(describeGpuLoadProblem(notInstalled).short).toBe("tfjs-node-gpu not installed");
    expect(describeGpuLoadProblem(notInstalled).fix).toContain("install @tensorflow/tfjs-node-gpu@4.22.0");
    expect(describeGpuLoadProblem(new Error(BINDING_MISSING)).short).toBe("tfjs-node-gpu native binding missing");
    expect(describeGpuLoadProblem(new Error("libcudnn.so.8: cannot open shared object file: No such file or directory")).short).toBe("CUDA library libcudnn.so.8 missing");
    expect(describeGpuLoadProblem(new Error("Segmentation in \u001b[31m something\nelse")).short).toBe("tfjs-node-gpu did not load");
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
