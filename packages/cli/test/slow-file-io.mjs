// Test-only preload (`node --import`): slows every FileHandle write and/or read by a fixed delay so
// a test can signal a real stmerge process in the middle of writing an output. Lives in test code
// only; the CLI itself has no hook.
import { open } from "node:fs/promises";

const writeDelay = Number(process.env.STMERGE_TEST_WRITE_DELAY_MS ?? 0);
const readDelay = Number(process.env.STMERGE_TEST_READ_DELAY_MS ?? 0);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const probe = await open(process.execPath, "r");
const proto = Object.getPrototypeOf(probe);
await probe.close();
const { write, read } = proto;
if (writeDelay > 0) {
  proto.write = async function (...args) {
    await sleep(writeDelay);
    return write.apply(this, args);
  };
}
if (readDelay > 0) {
  proto.read = async function (...args) {
    await sleep(readDelay);
    return read.apply(this, args);
  };
}
