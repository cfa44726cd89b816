import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppDef } from './definitions.js';
import type { ReadyLine } from './apps/serve.js';

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** A bench app running in its own process. */
export interface AppProcess {
  pid: number;
  url: string;
  controlUrl: string;
  /** SIGTERM (the app closes and exits normally), SIGKILL after 10 s. Resolves once it has exited. */
  stop(): Promise<void>;
  output(): string;
}

const live = new Set<ChildProcess>();

/** Whether `taskset` exists and the machine has at least two CPUs, so app and load can be pinned apart. */
export function canPin(): boolean {
  if (cpuCount() < 2) return false;
  return spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
}

/** Every online CPU (`nproc --all`), whatever this process's own affinity. */
export function allCpus(): number {
  try {
    return Number(spawnSync('nproc', ['--all'], { encoding: 'utf8' }).stdout.trim()) || 1;
  } catch {
    return 1;
  }
}

export function cpuCount(): number {
  try {
    return Number(spawnSync('nproc', { encoding: 'utf8' }).stdout.trim()) || 1;
  } catch {
    return 1;
  }
}

export interface StartOptions {
  root: string;
  env: Record<string, string>;
  /** CPU to pin the app to with taskset; undefined: not pinned. */
  cpu?: number;
  nodeArgs?: string[];
}

export async function startApp(app: AppDef, options: StartOptions): Promise<AppProcess> {
  const entry = join(options.root, 'build', 'bench', 'apps', app.entry);
  const nodeArgv = [...(options.nodeArgs ?? []), entry, ...app.args];
  // taskset execs node, so the pid we get is node's own.
  const [command, args] =
    options.cpu === undefined
      ? [process.execPath, nodeArgv]
      : ['taskset', ['-c', String(options.cpu), process.execPath, ...nodeArgv]];
  const child = spawn(command, args, {
    cwd: options.root,
    env: { ...process.env, ...options.env, NODE_ENV: 'production' },
    stdio: ['pipe', 'pipe', 'pipe']
  });
  live.add(child);
  let output = '';
  let stdoutBuffer = '';
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => {
      live.delete(child);
      resolve();
    });
    child.once('error', () => {
      live.delete(child);
      resolve();
    });
  });
  const ready = new Promise<ReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${app.id} was not ready after ${READY_TIMEOUT_MS} ms`)), READY_TIMEOUT_MS);
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      output = (output + text).slice(-16_384);
      stdoutBuffer += text;
      let newline: number;
      while ((newline = stdoutBuffer.indexOf('\n')) >= 0) {
        const line = stdoutBuffer.slice(0, newline);
        stdoutBuffer = stdoutBuffer.slice(newline + 1);
        if (line.startsWith('{"ready":true')) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as ReadyLine);
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-16_384);
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`${app.id} exited during startup (code ${child.exitCode}, signal ${child.signalCode})\n${output.trim()}`));
    });
  });
  // stdin stays open: the app shuts down when it closes (e.g. the driver died).
  child.stdin!.on('error', () => undefined);

  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  };

  try {
    const line = await ready;
    return { pid: child.pid!, url: line.url, controlUrl: line.controlUrl, stop, output: () => output };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Kills every app this process started and has not stopped yet (by pid, on a signal). */
export function killAllApps(): void {
  for (const child of live) child.kill('SIGKILL');
}

const CLOCK_TICKS = (() => {
  const ticks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
  return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
})();

/** CPU seconds (user + system, all threads) a process has used so far; undefined when it is gone. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 of stat(5), counted from the state (field 3) here.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** Resident set size in MiB, from /proc/PID/status VmRSS. */
export function rssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU seconds all CPUs of the machine spent busy so far (/proc/stat: everything but idle and iowait). */
export function machineBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return (user + nice + system + irq + softirq + (steal ?? 0)) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** The 1-minute load average. */
export function loadAverage(): number | undefined {
  try {
    return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  } catch {
    return undefined;
  }
}
