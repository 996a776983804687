/**
 * The storms' linearizability check (test/support/storm-model.ts) must refuse what is not
 * linearizable, or the storms prove nothing. Customers 0 and 1 are contacts 10 and 11.
 */
import { describe, expect, it } from "vitest";
import { type Answered, linearizable } from "./support/storm-model.js";

const initial = [10, 11];
const addedId = new Map([["new@x.io", 12]]);
const merge: Answered = {
  operation: { kind: "merge", customer: 0, other: 1 },
  sent: 10,
  answered: 20,
  contactIds: [10, 11],
};
const add: Answered = {
  operation: { kind: "add", customer: 0, email: "new@x.io" },
  sent: 10,
  answered: 20,
  contactIds: [10, 12],
};
const lookup = (sent: number, answered: number, contactIds: number[]): Answered => ({
  operation: { kind: "lookup", customer: 0, email: true, phone: true },
  sent,
  answered,
  contactIds,
});

describe("the storms' linearizability check", () => {
  it("accepts a lookup answered as before a merge that overlapped it", () => {
    expect(linearizable(lookup(15, 25, [10]), [merge], initial, addedId)).toBe(true);
  });

  it("accepts a lookup answered as after a merge that overlapped it", () => {
    expect(linearizable(lookup(15, 25, [10, 11]), [merge], initial, addedId)).toBe(true);
  });

  it("refuses a lookup that misses a merge answered before it was sent", () => {
    expect(linearizable(lookup(30, 40, [10]), [merge], initial, addedId)).toBe(false);
  });

  it("refuses a lookup that shows a merge sent after it was answered", () => {
    expect(linearizable(lookup(0, 5, [10, 11]), [merge], initial, addedId)).toBe(false);
  });

  it("refuses a customer that no set of the writes makes", () => {
    expect(linearizable(lookup(15, 25, [10, 12]), [merge], initial, addedId)).toBe(false);
  });

  it("refuses a write's answer that leaves out its own write", () => {
    const answered = { ...add, contactIds: [10] };
    expect(linearizable(answered, [answered], initial, addedId)).toBe(false);
  });
});
