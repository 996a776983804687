/**
 * The one route table (lib/routes.ts): the path expression Vercel's routing is given
 * (scripts/build-function.ts) and the lookup that the function and `npm start` dispatch on
 * agree on every path, so a request the deployment sends to the function is one it serves,
 * and the function answers a path that is no route with 404 rather than serving it as another.
 */
import { describe, expect, it } from "vitest";
import identify from "../api/identify.js";
import { FUNCTION_PATHS, ROUTES, routeOf } from "../lib/routes.js";

/** Every spelling of every route, and near misses that must be none. */
const ROUTE_PATHS = ROUTES.flatMap((route) => [
  route.path,
  `${route.path}/`,
  `/api${route.path}`,
  `/api${route.path}/`,
]);
const NOT_ROUTES = [
  "/",
  "/api",
  "/api/",
  "/identify//",
  "/api/api/identify",
  "/identifyx",
  "/identify/changesx",
  "/identify/changes/x",
  "/Identify",
  "/x/identify",
  "/index.html",
];

describe("the route table", () => {
  it("routes each route's path, under /api or not, with or without a slash, to that route", () => {
    for (const route of ROUTES) {
      for (const path of [
        route.path,
        `${route.path}/`,
        `/api${route.path}`,
        `/api${route.path}/`,
      ]) {
        expect(routeOf(path)?.name, path).toBe(route.name);
      }
    }
  });

  it("gives Vercel's routing an expression that matches exactly the paths the function routes", () => {
    const deployed = new RegExp(FUNCTION_PATHS);
    for (const path of [...ROUTE_PATHS, ...NOT_ROUTES]) {
      expect(deployed.test(path), path).toBe(routeOf(path) !== undefined);
    }
    expect(NOT_ROUTES.filter((path) => routeOf(path) !== undefined)).toEqual([]);
  });

  it("has the function answer a path that is no route with 404 not_found", async () => {
    const response = await identify.fetch(new Request("http://localhost/identify/x"));
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });
});
