/**
 * The cold-start baseline: the least a function can do to answer the same request, the Neon
 * driver's Pool and the very statement identify sends, with no ORM, no validation and no
 * configuration module. bench/cold-start.ts bundles it exactly as the real function is.
 */
import { neonConfig, Pool } from "@neondatabase/serverless";
import ws from "ws";

let pool: Pool | undefined;

function open(): Pool {
  neonConfig.webSocketConstructor = ws;
  neonConfig.coalesceWrites = false;
  const proxy = process.env.NEON_WS_PROXY ? new URL(process.env.NEON_WS_PROXY) : undefined;
  if (proxy) {
    const token = proxy.searchParams.get("token") ?? "";
    neonConfig.wsProxy = (host, port) =>
      `${proxy.host}${proxy.pathname}?address=${host}:${port}&token=${token}`;
    neonConfig.useSecureWebSocket = false;
    neonConfig.pipelineTLS = false;
    neonConfig.pipelineConnect = false;
  }
  return new Pool({ connectionString: process.env.DATABASE_URL });
}

export default {
  async fetch(request: Request): Promise<Response> {
    const body = (await request.json()) as { email?: string; phoneNumber?: string };
    pool ??= open();
    const { rows } = await pool.query(
      "select outcome, id, email, phone_number, link_precedence, linked_id from identify_contact($1::text, $2::text, $3::jsonb)",
      // The options the service sends with its defaults, so both run the very same statement.
      [
        body.email ?? null,
        body.phoneNumber ?? null,
        JSON.stringify({
          requestId: "baseline",
          lockTimeoutMs: 5000,
          deadlineMs: 8000,
          maxContacts: 1000,
        }),
      ],
    );
    return Response.json({ rows });
  },
};
