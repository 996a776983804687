/**
 * The model the concurrent storms (test/suites/storm.ts) are held to, and its check that a
 * response is linearizable. A customer is a set of contacts, and a write only ever joins
 * sets (a new secondary joins its phone's customer, a merge joins two customers), so the
 * state after a set of writes does not depend on their order.
 */

export type Operation =
  | { kind: "lookup"; customer: number; email: boolean; phone: boolean }
  | { kind: "add"; customer: number; email: string }
  | { kind: "merge"; customer: number; other: number };

export interface Answered {
  operation: Operation;
  /** performance.now() just before the request was sent, and once it was answered. */
  sent: number;
  answered: number;
  /** The customer answered: its primary first, then its secondaries. */
  contactIds: number[];
}

/** The customer containing `target` once `writes` have been applied, as contact ids. */
function customerAfter(
  writes: readonly Answered[],
  initial: readonly number[],
  addedId: ReadonlyMap<string, number>,
  target: number,
): Set<number> {
  const parent = new Map<number, number>();
  const find = (id: number): number => {
    let root = id;
    while (parent.get(root) !== root) root = parent.get(root) ?? root;
    parent.set(id, root);
    return root;
  };
  const union = (a: number, b: number) => parent.set(find(a), find(b));
  for (const id of initial) parent.set(id, id);
  for (const { operation } of writes) {
    const anchor = initial[operation.customer] as number;
    if (operation.kind === "add") {
      const id = addedId.get(operation.email) as number;
      parent.set(id, id);
      union(id, anchor);
    } else if (operation.kind === "merge") {
      union(anchor, initial[operation.other] as number);
    }
  }
  const root = find(target);
  return new Set([...parent.keys()].filter((id) => find(id) === root));
}

const sameSet = (a: ReadonlySet<number>, b: ReadonlySet<number>) =>
  a.size === b.size && [...a].every((id) => b.has(id));

/** The contacts a write joins: the new secondary and its customer's, or two customers'. */
function joined(write: Answered, initial: readonly number[], addedId: ReadonlyMap<string, number>) {
  const { operation } = write;
  const anchor = initial[operation.customer] as number;
  if (operation.kind === "add") return [addedId.get(operation.email) as number, anchor];
  if (operation.kind === "merge") return [anchor, initial[operation.other] as number];
  return [];
}

/**
 * Whether the answer is the model's customer after some set of writes that contains every
 * write answered before it was sent (and itself, for a write) and only writes sent before
 * it was answered. Writes only join, so the largest set that can give the answer is those
 * allowed writes that join contacts of the answer alone or contacts outside it alone (one
 * joining the answer to a contact outside it can never be in the set); the answer is
 * linearizable exactly when that set gives it.
 */
export function linearizable(
  response: Answered,
  writes: readonly Answered[],
  initial: readonly number[],
  addedId: ReadonlyMap<string, number>,
): boolean {
  const answer = new Set(response.contactIds);
  const crosses = (write: Answered) =>
    new Set(joined(write, initial, addedId).map((id) => answer.has(id))).size > 1;
  const must = writes.filter((w) => w === response || w.answered < response.sent);
  if (must.some(crosses)) return false;
  const chosen = writes.filter(
    (w) => must.includes(w) || (w.sent < response.answered && !crosses(w)),
  );
  const target = initial[response.operation.customer] as number;
  return sameSet(customerAfter(chosen, initial, addedId, target), answer);
}
