/**
 * `npm run dev:vercel` serves without keys (vercel dev sets VERCEL_ENV=development), so it
 * must listen where only this machine reaches it, as `npm start` does by default. The Vercel
 * CLI is not installed with the project, so this reads the address the script passes it.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "../lib/hosts.js";

describe("npm run dev:vercel", () => {
  it("tells vercel dev to listen on a loopback address, not on every interface", async () => {
    const { scripts } = JSON.parse(await readFile("package.json", "utf8")) as {
      scripts: Record<string, string>;
    };
    // vercel dev --listen takes a port alone (every interface) or host:port.
    const listen = /\s--listen[\s=](\S+)/.exec(scripts["dev:vercel"] ?? "")?.[1] ?? "";
    const host = listen.includes(":") ? listen.slice(0, listen.lastIndexOf(":")) : "";
    expect(host !== "" && isLoopbackHost(host), `--listen ${listen}`).toBe(true);
  });
});
