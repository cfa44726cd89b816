import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** `name (file:line)`, the file relative to the repository root. */
  frame: string;
  ms: number;
  percent: number;
}

export interface ProfileSummary {
  file: string;
  /** Milliseconds of samples inside the measured window (or the whole profile, see `windowed`). */
  totalMs: number;
  /** Of which the event loop waited with nothing to run. */
  idleMs: number;
  windowed: boolean;
  /** Self time by function, idle left out; `percent` is of the busy (non-idle) time. */
  self: ProfileEntry[];
  /** Inclusive time of EzSession's own functions (build/lib). */
  libInclusive: ProfileEntry[];
  /** Self time grouped by where the code lives: build/lib, node_modules/<package>, node internals, GC. */
  byOwner: ProfileEntry[];
}

/**
 * Summarizes a `node --cpu-prof` profile. Only samples taken inside [fromUs, toUs] count, when
 * that window holds samples (V8 stamps them with CLOCK_MONOTONIC microseconds, the clock of
 * process.hrtime), so boot and warm-up stay out of it.
 */
export function summarizeProfile(file: string, root: string, window?: { fromUs: number; toUs: number }, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);

  // Sample i lasts until sample i+1.
  const durations: number[] = [];
  const stamps: number[] = [];
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    stamps.push(t);
  }
  for (let i = 0; i < stamps.length; i++) durations.push(i + 1 < stamps.length ? stamps[i + 1] - stamps[i] : 0);

  let inWindow = (i: number) => window !== undefined && stamps[i] >= window.fromUs && stamps[i] <= window.toUs;
  let windowedMs = 0;
  for (let i = 0; i < stamps.length; i++) if (inWindow(i)) windowedMs += durations[i] / 1000;
  const windowed = window !== undefined && windowedMs > 0.5 * ((window.toUs - window.fromUs) / 1000);
  if (!windowed) inWindow = () => true;

  const self = new Map<string, number>();
  const owners = new Map<string, number>();
  const libInclusive = new Map<string, number>();
  let totalUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    if (!inWindow(i)) continue;
    const us = durations[i];
    totalUs += us;
    const node = byId.get(profile.samples[i])!;
    const key = frameName(node, root);
    self.set(key, (self.get(key) ?? 0) + us);
    const owner = ownerOf(node, root);
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const ancestor = byId.get(id)!;
      if (ownerOf(ancestor, root) !== 'build/lib') continue;
      const name = frameName(ancestor, root);
      if (seen.has(name)) continue;
      seen.add(name);
      libInclusive.set(name, (libInclusive.get(name) ?? 0) + us);
    }
  }
  const idleUs = self.get('(idle)') ?? 0;
  const busyUs = totalUs - idleUs;
  self.delete('(idle)');
  owners.delete('(idle)');
  const entries = (map: Map<string, number>, limit: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, limit)
      .map(([frame, us]) => ({ frame, ms: us / 1000, percent: busyUs ? (100 * us) / busyUs : 0 }));
  return {
    file: relative(root, file),
    totalMs: totalUs / 1000,
    idleMs: idleUs / 1000,
    windowed,
    self: entries(self, top),
    libInclusive: entries(libInclusive, 10),
    byOwner: entries(owners, 12)
  };
}

function pathOf(url: string, root: string): string {
  if (!url) return '';
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  return path.startsWith('/') ? relative(root, path) : path;
}

function frameName(node: CpuProfileNode, root: string): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  const path = pathOf(url, root);
  return path ? `${name} (${path}:${lineNumber + 1})` : name;
}

function ownerOf(node: CpuProfileNode, root: string): string {
  const { functionName, url } = node.callFrame;
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const path = pathOf(url, root);
  if (path.startsWith('build/lib/')) return 'build/lib';
  if (path.startsWith('build/')) return path.split('/').slice(0, 2).join('/');
  const nm = path.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const parts = path.slice(nm + 'node_modules/'.length).split('/');
    return `node_modules/${parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`;
  }
  return path;
}
