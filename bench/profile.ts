/**
 * Summarizes a V8 CPU profile (`node --cpu-prof`, a .cpuprofile JSON file): self time by
 * module (an npm package, a file of this repository, a part of Node, or V8's own buckets
 * such as garbage collection and idle) and the functions with the most self time.
 * `npm run bench -- --profile` writes one for the service and prints this; by hand:
 * `npx tsx bench/profile.ts <file.cpuprofile>`.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath, pathToFileURL } from "node:url";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  endTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const REPO_ROOT = pathToFileURL(fileURLToPath(new URL("..", import.meta.url))).href;

/** The module a function belongs to, by its script URL. */
function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith("(") ? functionName : "(native V8 builtins)";
  const packages = url.split("/node_modules/");
  if (packages.length > 1) {
    const [scope = "", name = ""] = (packages[packages.length - 1] ?? "").split("/");
    return scope.startsWith("@") ? `${scope}/${name}` : scope;
  }
  if (url.startsWith("node:internal/")) return `node:${url.slice(14).split("/")[0]}`;
  if (url.startsWith("node:")) return url;
  if (url.startsWith(REPO_ROOT)) return url.slice(REPO_ROOT.length);
  return url;
}

export interface ProfileSummary {
  /** Sampled time the process was busy: everything but V8's "(idle)". */
  totalMs: number;
  idleMs: number;
  modules: { module: string; ms: number }[];
  functions: { name: string; module: string; ms: number }[];
}

/**
 * Self time per module and function. With `window`, only the samples from `lengthMs` long
 * up to `beforeEndMs` before the profile ends (the bench's measured window, not start-up).
 */
export function summarizeProfile(
  profile: CpuProfile,
  window?: { lengthMs: number; beforeEndMs: number },
): ProfileSummary {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  const last = profile.endTime - (window?.beforeEndMs ?? 0) * 1000;
  const first = window ? last - window.lengthMs * 1000 : Number.NEGATIVE_INFINITY;
  let time = profile.endTime - profile.timeDeltas.reduce((sum, us) => sum + us, 0);
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    time += us;
    if (time < first || time > last) return;
    self.set(id, (self.get(id) ?? 0) + us);
    total += us;
  });
  const modules = new Map<string, number>();
  const functions = new Map<string, { name: string; module: string; ms: number }>();
  for (const [id, us] of self) {
    const frame = byId.get(id)?.callFrame;
    if (!frame) continue;
    const module = moduleOf(frame.url, frame.functionName);
    modules.set(module, (modules.get(module) ?? 0) + us / 1000);
    const name = `${frame.functionName || "(anonymous)"}:${frame.lineNumber + 1}`;
    const key = `${module} ${name}`;
    const entry = functions.get(key) ?? { name, module, ms: 0 };
    entry.ms += us / 1000;
    functions.set(key, entry);
  }
  const idleMs = modules.get("(idle)") ?? 0;
  modules.delete("(idle)");
  return {
    totalMs: total / 1000 - idleMs,
    idleMs,
    modules: [...modules].map(([module, ms]) => ({ module, ms })).sort((a, b) => b.ms - a.ms),
    functions: [...functions.values()]
      .filter((row) => row.module !== "(idle)")
      .sort((a, b) => b.ms - a.ms),
  };
}

/** The summary as text: modules over 0.5% of the samples, then the top functions. */
export function renderProfile(summary: ProfileSummary, topFunctions = 15): string {
  const share = (ms: number) => `${((100 * ms) / summary.totalMs).toFixed(1).padStart(5)}%`;
  return [
    `self time by module, share of ${(summary.totalMs / 1000).toFixed(1)} s busy ` +
      `(${(summary.idleMs / 1000).toFixed(1)} s idle not counted)`,
    ...summary.modules
      .filter((row) => row.ms / summary.totalMs >= 0.005)
      .map((row) => `  ${share(row.ms)}  ${row.module}`),
    `top ${topFunctions} functions by self time`,
    ...summary.functions
      .slice(0, topFunctions)
      .map((row) => `  ${share(row.ms)}  ${row.name}  (${row.module})`),
  ].join("\n");
}

export const readProfile = (path: string) => JSON.parse(readFileSync(path, "utf8")) as CpuProfile;

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const path = process.argv[2];
  if (!path) throw new Error("usage: tsx bench/profile.ts <file.cpuprofile>");
  console.log(renderProfile(summarizeProfile(readProfile(path))));
}
