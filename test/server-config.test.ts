/**
 * The settings only `npm start` reads: PORT, HOST, ALLOWED_HOSTS, and the rule that a HOST
 * other machines reach needs API_KEYS (or ALLOW_PUBLIC_ACCESS=true). Every refusal names its
 * variable.
 */
import { describe, expect, it } from "vitest";
import { LOOPBACK_HOSTS } from "../lib/hosts.js";
import { readServerConfig } from "../scripts/server-config.js";

const KEY = "k3y-for-tests-0123456789";

describe("npm start on an interface other machines reach", () => {
  it.each(["0.0.0.0", "::", "10.0.0.5", "identify.internal"])(
    "refuses HOST=%s without API_KEYS, naming API_KEYS and ALLOW_PUBLIC_ACCESS",
    (host) => {
      const attempt = () => readServerConfig({ HOST: host });
      expect(attempt).toThrow(/^Invalid environment: API_KEYS: required to listen on HOST=/);
      expect(attempt).toThrow(/ALLOW_PUBLIC_ACCESS=true/);
    },
  );

  it("serves other machines with API_KEYS, or with ALLOW_PUBLIC_ACCESS=true", () => {
    expect(readServerConfig({ HOST: "0.0.0.0", API_KEYS: KEY }).HOST).toBe("0.0.0.0");
    expect(readServerConfig({ HOST: "0.0.0.0", ALLOW_PUBLIC_ACCESS: "true" }).HOST).toBe("0.0.0.0");
  });

  it.each(["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"])(
    "stays keyless on the loopback HOST=%s, for development",
    (host) => {
      expect(readServerConfig({ HOST: host }).HOST).toBe(host);
    },
  );
});

describe("PORT and HOST", () => {
  it.each(["abc", "70000", "-1", "3000.5", "30 00"])("refuses PORT=%j, naming PORT", (value) => {
    expect(() => readServerConfig({ PORT: value })).toThrow(
      /^Invalid environment: PORT: must be a port number from 0 to 65535$/,
    );
  });

  it("reads PORT as a number, 3000 by default, and 0 for any free port", () => {
    expect(readServerConfig({}).PORT).toBe(3000);
    expect(readServerConfig({ PORT: " 8080 " }).PORT).toBe(8080);
    expect(readServerConfig({ PORT: "0" }).PORT).toBe(0);
  });

  it.each(["not a host", "http://localhost", "localhost:3000", "-x.example"])(
    "refuses HOST=%j, naming HOST",
    (value) => {
      expect(() => readServerConfig({ HOST: value })).toThrow(/^Invalid environment: HOST: /);
    },
  );

  it("reads HOST as an IP address or a name, 127.0.0.1 by default", () => {
    expect(readServerConfig({}).HOST).toBe("127.0.0.1");
    for (const host of ["0.0.0.0", "::", "::1", "localhost", "identify.internal"]) {
      expect(readServerConfig({ HOST: host, API_KEYS: KEY }).HOST).toBe(host);
    }
  });
});

describe("ALLOWED_HOSTS", () => {
  it("is the loopback names when unset", () => {
    expect(readServerConfig({}).ALLOWED_HOSTS).toEqual(LOOPBACK_HOSTS);
  });

  it("reads host names as URLs spell them: lower case, IPv6 in brackets", () => {
    expect(
      readServerConfig({ ALLOWED_HOSTS: "Identify.Example.com, [::1] ,10.0.0.5" }).ALLOWED_HOSTS,
    ).toEqual(["identify.example.com", "[::1]", "10.0.0.5"]);
  });

  it("reads * as any host", () => {
    expect(readServerConfig({ ALLOWED_HOSTS: "*" }).ALLOWED_HOSTS).toEqual(["*"]);
  });

  it.each(["localhost:3000", "http://identify.example", "identify.example/path", "::1", ","])(
    "refuses %j, naming ALLOWED_HOSTS",
    (value) => {
      expect(() => readServerConfig({ ALLOWED_HOSTS: value })).toThrow(
        /^Invalid environment: ALLOWED_HOSTS: /,
      );
    },
  );

  it.each(["x.com:80", "x.com:443", "x.com:", "[::1]:80", "10.0.0.5:8080"])(
    "refuses %j, a name with a port (even the scheme's default), saying to write the name alone",
    (value) => {
      const attempt = () => readServerConfig({ ALLOWED_HOSTS: value });
      expect(attempt).toThrow(/^Invalid environment: ALLOWED_HOSTS: "[^"]+" is not a host name/);
      expect(attempt).toThrow(/write the name alone, without a scheme, port or path/);
    },
  );
});
