// A downstream consumer against a built function: reads GET /identify/changes while 800
// concurrent POST /identify create and merge customers, reads to the end, and compares its
// mirror (contact → primary) with the database; then runs `npm run forget` from CHECKOUT with
// only DATABASE_URL set, reads again, and compares again.
//   KEY=… DATABASE_URL=… CHECKOUT=<repo> node test/vercel/feed-mirror.mjs <.func/index.mjs>
import { execFileSync } from "node:child_process";

const { default: handler } = await import(process.argv[2]);
const { KEY, DATABASE_URL, CHECKOUT } = process.env;
const auth = { authorization: `Bearer ${KEY}` };
const post = (email, phoneNumber) =>
  handler
    .fetch(
      new Request("https://identify.example/identify", {
        method: "POST",
        headers: { "content-type": "application/json", ...auth },
        body: JSON.stringify({ email, phoneNumber }),
      }),
    )
    .then((response) => response.json());

const mirror = new Map();
let cursor;
let pages = 0;
let changes = 0;
async function readPage() {
  const query = `limit=50${cursor ? `&after=${cursor}` : ""}`;
  const response = await handler.fetch(
    new Request(`https://identify.example/identify/changes?${query}`, { headers: auth }),
  );
  if (response.status !== 200) throw new Error(`feed ${response.status} ${await response.text()}`);
  const page = await response.json();
  pages++;
  for (const change of page.changes) {
    changes++;
    if (change.primaryContactId === null) mirror.delete(change.contactId);
    else mirror.set(change.contactId, change.primaryContactId);
  }
  cursor = page.next;
  return page.changes.length;
}
const readToEnd = async () => {
  while ((await readPage()) > 0);
};
const live = () =>
  new Map(
    execFileSync(
      "psql",
      [
        "-tAq",
        DATABASE_URL,
        "-c",
        "select id, coalesce(linked_id, id) from contacts where deleted_at is null",
      ],
      { encoding: "utf8" },
    )
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => line.split("|").map(Number)),
  );
const equal = (a, b) => a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

const unauthenticated = await handler.fetch(
  new Request("https://identify.example/identify/changes"),
);
console.log(`  unauthenticated read: ${unauthenticated.status}`);
await readToEnd();

// 20 groups of 10 customers: created, given secondaries, merged with each other, shuffled.
const tasks = [];
for (let g = 0; g < 20; g++) {
  for (let i = 0; i < 10; i++) {
    tasks.push(() => post(`c${g}-${i}@feed.io`, `${g * 100 + i}`));
    tasks.push(() => post(`s${g}-${i}@feed.io`, `${g * 100 + i}`));
  }
  for (let k = 0; k < 20; k++) {
    const a = Math.floor(Math.random() * 10);
    const b = (a + 1 + Math.floor(Math.random() * 9)) % 10;
    tasks.push(() => post(`c${g}-${a}@feed.io`, `${g * 100 + b}`));
  }
}
tasks.sort(() => Math.random() - 0.5);
let writing = true;
let readWhileWriting = 0;
let next = 0;
const reader = (async () => {
  while (writing) {
    readWhileWriting += await readPage();
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
})();
await Promise.all(
  Array.from({ length: 24 }, async () => {
    while (next < tasks.length) await tasks[next++]();
  }),
);
writing = false;
await reader;
await readToEnd();
console.log(
  `  ${tasks.length} requests: ${changes} changes in ${pages} pages (${readWhileWriting} while writing); mirror of ${mirror.size} contacts equals the database: ${equal(mirror, live())}`,
);

const out = execFileSync(
  "npm",
  ["run", "-s", "forget", "--", "--email", "c7-3@feed.io", "--yes", "--request-id", "TICKET-9001"],
  {
    cwd: CHECKOUT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL },
    encoding: "utf8",
  },
);
console.log(`  npm run forget: ${out.trim().split("\n").at(-1)}`);
const before = mirror.size;
await readToEnd();
console.log(
  `  read again: mirror ${before} → ${mirror.size} contacts, equals the database: ${equal(mirror, live())}`,
);
process.exit(0);
