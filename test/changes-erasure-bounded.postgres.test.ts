/**
 * A change-feed page's work is bounded by its limit inside an erasure of any size: a page of
 * 10 from the middle of an erasure of 20,000 contacts handles no more rows anywhere than a
 * page of 10 can need. Counted, not timed: auto_explain reports each statement identify_changes
 * runs, with the rows every plan node produced, as notices to this test's own session.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createPostgresDatabase,
  postgresAvailable,
  type TestDatabase,
} from "./support/databases.js";

/** A plan node as auto_explain's JSON gives it. */
interface PlanNode {
  "Node Type": string;
  "Actual Rows": number;
  "Actual Loops": number;
  Plans?: PlanNode[];
}

/** Every node of a plan, the root first. */
const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

describe.skipIf(!postgresAvailable())(
  "a change-feed page inside a large erasure, on postgres",
  () => {
    let database: TestDatabase;
    let client: pg.Client;

    beforeAll(async () => {
      database = await createPostgresDatabase();
      client = new pg.Client({ connectionString: database.url });
      await client.connect();
    });
    afterAll(async () => {
      await client?.end();
      await database?.drop();
    });

    it("reads a page of 10 from the middle of a 20,000-contact erasure producing at most 21 rows in any plan node", async () => {
      const {
        rows: [erasure],
      } = await client.query<{ transaction_id: string; id: string }>(
        `insert into erasures (request_id, contact_ids, contact_count, event_count)
       select 'TICKET-8004', array_agg(n order by n), 20000, 0 from generate_series(1, 20000) n
       returning transaction_id, id`,
      );
      await client.query("load 'auto_explain'");
      await client.query(`set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on;
      set auto_explain.log_timing = off; set auto_explain.log_nested_statements = on;
      set auto_explain.log_format = json; set auto_explain.log_level = notice`);
      const plans: { "Query Text": string; Plan: PlanNode }[] = [];
      client.on("notice", (notice) => {
        const json = notice.message?.slice(notice.message.indexOf("{"));
        if (notice.message?.includes("plan:") && json) plans.push(JSON.parse(json));
      });
      // After the erasure's first 10,000 contacts (ids 1 to 20,000, in place order).
      const page = await client.query<{ contact_id: number }>(
        "select contact_id from identify_changes($1, 9223372036854775807, $2, 10000, 10)",
        [erasure?.transaction_id, erasure?.id],
      );
      await client.query("set auto_explain.log_min_duration = -1");
      expect(page.rows.map((row) => row.contact_id)).toEqual(
        Array.from({ length: 10 }, (_, i) => 10_001 + i),
      );
      // The statements that read the feed's tables: at most 10 events, 11 erasure rows, 10
      // erased contacts, merged. (Others, such as the horizon's look at pg_stat_activity,
      // depend on the server's other sessions.)
      const feedReads = plans.filter((plan) => plan["Query Text"].includes("erasures"));
      expect(feedReads.length).toBeGreaterThan(0);
      const produced = feedReads.flatMap((plan) =>
        nodesOf(plan.Plan).map((node) => ({
          node: node["Node Type"],
          rows: node["Actual Rows"] * node["Actual Loops"],
        })),
      );
      expect(produced.filter((node) => node.rows > 21)).toEqual([]);
    });
  },
);
