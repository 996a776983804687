/**
 * The function's routes, in one table: what the function dispatches on (api/identify.ts), what
 * the deployment sends to the function (scripts/build-function.ts writes it into Vercel's
 * routing) and what `npm start` hands to the function rather than to public/
 * (scripts/server.ts). Three readers of one list, so a route added here is added everywhere;
 * api/identify.ts fails to type-check until it has a handler for it.
 *
 * Each path also answers under /api (Vercel's own path of the function) and with one trailing
 * slash. Each route takes one method; any other gets 405 naming it.
 */
import type { Scope } from "./auth.js";

/** One route of the function. */
export interface Route {
  /** The handler's name in api/identify.ts, and the event name of its log line. */
  readonly name: string;
  /** The path without /api and without a trailing slash. */
  readonly path: string;
  /** The one method it answers; any other gets 405 with `Allow: <method>`. */
  readonly method: "GET" | "POST";
  /** Which keys open it (lib/auth.ts): the feed's ids also to FEED_API_KEYS, customers' values only to API_KEYS. */
  readonly scope: Scope;
}

/** Every route of the function. */
export const ROUTES = [
  { name: "identify", path: "/identify", method: "POST", scope: "identify" },
  { name: "changes", path: "/identify/changes", method: "GET", scope: "feed" },
] as const satisfies readonly Route[];

/** A route's name: the keys of api/identify.ts's handler table. */
export type RouteName = (typeof ROUTES)[number]["name"];

/**
 * Every path of the function as one regular expression source, as Vercel's Build Output
 * routing takes it (`src`): any route's path, under /api or not, with or without a slash.
 */
export const FUNCTION_PATHS = `^/(?:api/)?(?:${ROUTES.map((route) => route.path.slice(1)).join("|")})/?$`;

/** The route a request path belongs to: the path less /api and one trailing slash. */
export function routeOf(pathname: string): (typeof ROUTES)[number] | undefined {
  const unslashed =
    pathname.length > 1 && pathname.endsWith("/") ? pathname.slice(0, -1) : pathname;
  const path = unslashed.startsWith("/api/") ? unslashed.slice("/api".length) : unslashed;
  return ROUTES.find((route) => route.path === path);
}
