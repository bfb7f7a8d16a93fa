// Runs a Rust test binary built for wasm32-wasip1 under Node's WASI (cargo's `runner` for the
// core's unit tests on wasm32: `cargo xtask test`). Usage: node test-runner.mjs FILE.wasm [ARGS].
//
// Rust's wasm32 std aborts on panic, so the first failing test ends the run: xtask passes
// `--nocapture` so that the panic message is printed before the abort.
import { readFile } from "node:fs/promises";
import process from "node:process";
import { WASI } from "node:wasi";

const [file, ...args] = process.argv.slice(2);
if (!file) {
  console.error("usage: node test-runner.mjs FILE.wasm [ARGS]");
  process.exit(2);
}

const wasi = new WASI({
  version: "preview1",
  args: [file, ...args],
  env: process.env,
  returnOnExit: true,
});

// Rust's std names pthread_join and pthread_detach on wasm32-wasip1; newer wasi-libc
// releases define them as stubs, Debian 12's (2022) does not, so the Debian build leaves them
// to be imported (xtask/wasi/undefined-symbols.txt). libtest never starts a thread on wasm.
const noThreads = (name) => () => {
  throw new Error(`${name} called: there are no threads on wasm32-wasip1`);
};
const imports = {
  ...wasi.getImportObject(),
  env: {
    pthread_join: noThreads("pthread_join"),
    pthread_detach: noThreads("pthread_detach"),
  },
};

try {
  const module = await WebAssembly.compile(await readFile(file));
  const instance = await WebAssembly.instantiate(module, imports);
  process.exitCode = wasi.start(instance);
} catch (error) {
  // A panic is an abort, which traps: the test named last failed, its message is above.
  console.error(`\ntest binary stopped: ${error.message}`);
  process.exitCode = 101;
}
