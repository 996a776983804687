// Imports a built function the way Vercel's Node.js launcher does (its index.mjs, then the
// default export's fetch) and sends POST /identify without a token, with a wrong one, and
// with KEY. Prints one line per request: the status, and whether the body names a customer.
//   node test/vercel/invoke.mjs <path to .func/index.mjs>
const { default: handler } = await import(process.argv[2]);
const call = (headers = {}) =>
  handler.fetch(
    new Request("https://identify.example/identify", {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify({ email: "lorraine@hillvalley.edu", phoneNumber: "123456" }),
    }),
  );
for (const [label, headers] of [
  ["no token", {}],
  ["wrong token", { authorization: "Bearer wrong-wrong-wrong-wrong" }],
  ["the key", { authorization: `Bearer ${process.env.KEY ?? ""}` }],
]) {
  const response = await call(headers);
  const body = await response.text();
  const what = body.includes("primaryContactId") ? "a customer" : JSON.parse(body).error?.code;
  console.log(`  ${label}: ${response.status} (${what})`);
}
process.exit(0);
