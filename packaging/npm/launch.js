// Runs one of the native binaries of the platform package npm installed beside this one (an
// optional dependency chosen by its os/cpu), passing arguments, exit code and signals through.
"use strict";

const { spawn } = require("child_process");
const path = require("path");

const PLATFORMS = require("./platforms.json");

function fail(message) {
  process.stderr.write(`stripe-sync-rs: ${message}\n`);
  process.exit(1);
}

module.exports = function launch(binary) {
  const platform = `${process.platform} ${process.arch}`;
  const pkg = PLATFORMS[platform];
  if (!pkg) {
    fail(`no prebuilt binaries for ${platform} (there are for: ${Object.keys(PLATFORMS).join(", ")}); build from source: cargo install --path crates/engine`);
  }
  let dir;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch (e) {
    fail(`the package ${pkg} (the ${platform} binaries) is not installed: it is an optional dependency, so reinstall without --omit=optional or --no-optional`);
  }
  const exe = path.join(dir, "bin", binary);
  const child = spawn(exe, process.argv.slice(2), { stdio: "inherit" });
  // Ctrl-C at a terminal reaches the binary itself (it is in the terminal's foreground process
  // group), and npx passes it on to this process too: passing it on again would be a second
  // Ctrl-C, which stops sync-engine at once instead of gracefully. So this process only waits
  // for the binary to end.
  process.on("SIGINT", () => {});
  // SIGTERM and SIGHUP come to this process alone (a process manager, npx passing one on): the
  // binary gets each once, so that a supervisor (stripe-sync start --foreground) stops its
  // processes in order instead of being left running when node dies.
  const passed = {};
  for (const signal of ["SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      const now = Date.now();
      if (now - (passed[signal] || 0) > 1000) {
        passed[signal] = now;
        child.kill(signal);
      }
    });
  }
  child.on("error", (e) => fail(`cannot run ${exe}: ${e.message}`));
  child.on("exit", (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    } else {
      process.exit(code);
    }
  });
};
