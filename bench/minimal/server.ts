/**
 * The minimal correct implementation the bench measures the service against: node:http, a
 * raw `pg` Pool (as many connections as the service's default pool) and one call of
 * minimal_identify (schema.sql) per request. No validation library, no logging, no auth.
 * Reads DATABASE_URL and PORT; prints "listening" when ready.
 */
import { createServer } from "node:http";
import pg from "pg";

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 5 });

interface Row {
  id: number;
  email: string | null;
  phone_number: string | null;
  linked_id: number | null;
}

/** A trimmed string, null when absent or blank, undefined when not a string. */
const text = (value: unknown) =>
  value == null || value === ""
    ? null
    : typeof value === "string"
      ? value.trim() || null
      : undefined;

const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("end", async () => {
    const reply = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown>;
      const email = text(body.email);
      const phone = text(body.phoneNumber);
      if (email === undefined || phone === undefined || (email === null && phone === null)) {
        return reply(400, { error: "email or phoneNumber required" });
      }
      const { rows } = await pool.query<Row>("select * from minimal_identify($1, $2)", [
        email?.toLowerCase() ?? null,
        phone,
      ]);
      const unique = (values: (string | null)[]) => [
        ...new Set(values.filter((v): v is string => v !== null)),
      ];
      reply(200, {
        contact: {
          primaryContactId: rows[0]?.id,
          emails: unique(rows.map((row) => row.email)),
          phoneNumbers: unique(rows.map((row) => row.phone_number)),
          secondaryContactIds: rows.slice(1).map((row) => row.id),
        },
      });
    } catch (error) {
      reply(500, { error: error instanceof Error ? error.message : String(error) });
    }
  });
});

server.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
process.once("SIGTERM", () => {
  server.close();
  server.closeIdleConnections();
  void pool.end().finally(() => process.exit(0));
});
