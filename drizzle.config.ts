/** drizzle-kit configuration: generates migrations from lib/db/schema.ts into drizzle/. */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./lib/db/schema.ts",
  out: "./drizzle",
  // Only `drizzle-kit check` and `generate` need no database; a URL is read for `studio`.
  ...(process.env.DATABASE_URL ? { dbCredentials: { url: process.env.DATABASE_URL } } : {}),
});
