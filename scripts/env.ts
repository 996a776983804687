/** Loads `.env` into process.env for the local scripts, as Vercel does for deployments. */

/** Reads `.env` from the working directory if there is one; variables already set win. */
export function loadDotEnv(): void {
  try {
    process.loadEnvFile(".env");
  } catch (error) {
    if ((error as { code?: string }).code !== "ENOENT") throw error;
  }
}
