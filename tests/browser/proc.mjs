// Child processes and temporary directories for the browser tests: every child runs in its own
// process group (a browser's helpers, xvfb-run's Xvfb, WebKit's web processes go with it); groups
// still running and directories not yet removed when this process exits (or is killed by a
// signal) are killed and removed.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

/** Process groups still running and temporary directories still there. */
const groups = new Set();
const dirs = new Set();
const killAll = () => {
  // SIGTERM first, so that Xvfb removes its lock file; "exit" handlers cannot await, so wait
  // synchronously (up to 2 s).
  for (const pid of groups) killGroup(pid, "SIGTERM");
  const end = Date.now() + 2000;
  while (Date.now() < end && [...groups].some((pid) => liveMembers(pid).length > 0)) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
  for (const pid of groups) killGroup(pid, "SIGKILL");
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
};
process.on("exit", killAll);
// A signal (a test runner's timeout, Ctrl-C) would end node without "exit": exit instead, so the
// "exit" handlers (these and harness.mjs's) run.
for (const [signal, code] of /** @type {const} */ ([["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]])) {
  process.once(signal, () => process.exit(code));
}

/**
 * Sends `signal` to the process group `pid` leads; quiet when it is gone.
 * @param {number} pid
 * @param {NodeJS.Signals} signal
 */
export function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/** Remembers the group of a child that something else spawned detached (puppeteer's Firefox). */
export function adoptGroup(/** @type {number} */ pid) {
  groups.add(pid);
}

/**
 * Starts `cmd` in its own process group, collecting its output (minus lines `drop` matches) in
 * `child.output`.
 * @param {string} cmd
 * @param {string[]} args
 * @param {RegExp} [drop]
 * @param {NodeJS.ProcessEnv} [env] the child's environment (default: this process's)
 * @returns {import("node:child_process").ChildProcess & {output: string}}
 */
export function startGroup(cmd, args, drop, env = process.env) {
  const child = /** @type {any} */ (spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], detached: true, env }));
  if (child.pid === undefined) throw new Error(`cannot start ${cmd}`);
  groups.add(child.pid);
  child.once("exit", () => groups.delete(child.pid));
  child.output = "";
  /** @param {Buffer} b */
  const keep = (b) => (child.output += String(b).split("\n").filter((l) => l && !(drop && drop.test(l))).map((l) => l + "\n").join(""));
  child.stdout.on("data", keep);
  child.stderr.on("data", keep);
  // A failed spawn (ENOENT) is reported through `exitCode`/`output`, not as an uncaught error.
  child.on("error", (/** @type {Error} */ e) => (child.output += `spawn error: ${e.message}\n`));
  return child;
}

/**
 * The processes of group `pgid` that have not exited (zombies excluded: nobody may reap them
 * here). Linux only, like the rest of these tests.
 * @param {number} pgid
 */
function liveMembers(pgid) {
  return readdirSync("/proc").filter((name) => {
    if (!/^\d+$/.test(name)) return false;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      return Number(pgrp) === pgid && state !== "Z";
    } catch {
      return false; // gone meanwhile
    }
  });
}

/**
 * Stops a child of `startGroup` and its whole group: SIGTERM to the group, then up to `graceMs`
 * for every member to exit (Xvfb removes its lock file on SIGTERM, a browser its profile lock),
 * then SIGKILL for whatever is left.
 * @param {import("node:child_process").ChildProcess} child
 */
export async function stopGroup(child, graceMs = 5000) {
  const pid = /** @type {number} */ (child.pid);
  const end = Date.now() + graceMs;
  killGroup(pid, "SIGTERM");
  while (Date.now() < end && (child.exitCode === null && child.signalCode === null || liveMembers(pid).length > 0)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  killGroup(pid, "SIGKILL");
  groups.delete(pid);
}

/** A fresh temporary directory named `baton-<what>-XXXXXX`. */
export async function tempDir(/** @type {string} */ what) {
  const dir = await mkdtemp(path.join(tmpdir(), `baton-${what}-`));
  dirs.add(dir);
  return dir;
}

/** Removes a temporary directory, retrying while exiting processes still write to it. */
export async function removeDir(/** @type {string} */ dir) {
  await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  dirs.delete(dir);
}

/** This process's environment without what configures baton (`BATON_*`, `RUST_LOG`): a test's
 * broker runs on its own config file only, whatever the shell that started the tests has set. */
export function cleanEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BATON_") && k !== "RUST_LOG"));
}
