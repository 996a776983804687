/**
 * The five workloads as request sources: which identifiers each request carries, and what
 * the answer must then contain. Sources are pure and seeded, so a run's mix is repeatable;
 * the data they draw on (a sample of stored contacts, prepared merge pairs) comes from
 * preload.ts.
 */
import type { ContactBody, PlannedRequest, RequestSource } from "./load.js";
import type { MergePair, SampleContact } from "./preload.js";

/** The workloads, in the order they run. */
export const WORKLOADS = ["lookup", "new", "secondary", "merge", "mixed"] as const;
/** One of WORKLOADS. */
export type WorkloadName = (typeof WORKLOADS)[number];

/** Share of a workload's requests that use up a prepared merge pair. */
export const MERGE_SHARE: Record<WorkloadName, number> = {
  lookup: 0,
  new: 0,
  secondary: 0,
  merge: 1,
  mixed: 0.03,
};

/** The data a source draws on. */
interface WorkloadInputs {
  sample: readonly SampleContact[];
  pairs: readonly MergePair[];
}

/** A small, fast, seedable PRNG (mulberry32): repeatable request mixes. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Identifiers nobody has used yet in this bench run (process-wide counter). */
let freshSerial = 0;
const freshEmail = () => `customer.n${++freshSerial}@newmail.example`;
const freshPhone = () => `+447${String(++freshSerial).padStart(9, "0")}`;

const body = (email: string | null, phoneNumber: string | null) =>
  JSON.stringify({ email, phoneNumber });

const missing = (list: string[], value: string | null, what: string) =>
  value !== null && !list.includes(value) ? `${what} ${value} missing` : undefined;

function lookupRequests(sample: readonly SampleContact[]): RequestSource {
  if (sample.length === 0) throw new Error("lookup needs stored contacts");
  let index = 0;
  return () => {
    const row = sample[index % sample.length] as SampleContact;
    const turn = index++ % 3;
    // Rotate email only / phone only / both, as far as the stored contact allows.
    const email = turn === 1 && row.phoneNumber !== null ? null : row.email;
    const phoneNumber = turn === 0 && row.email !== null ? null : row.phoneNumber;
    return {
      body: body(email, phoneNumber),
      check: (contact) =>
        missing(contact.emails, email, "email") ??
        missing(contact.phoneNumbers, phoneNumber, "phone"),
    };
  };
}

function newRequests(next: () => number): RequestSource {
  return () => {
    const roll = next();
    const email = roll < 0.95 ? freshEmail() : null;
    const phoneNumber = roll < 0.9 || roll >= 0.95 ? freshPhone() : null;
    return {
      body: body(email, phoneNumber),
      check: (contact: ContactBody) =>
        contact.secondaryContactIds.length > 0
          ? "a new customer came back with secondaries"
          : (missing(contact.emails, email, "email") ??
            missing(contact.phoneNumbers, phoneNumber, "phone")),
    };
  };
}

function secondaryRequests(sample: readonly SampleContact[]): RequestSource {
  const phones = [...new Set(sample.flatMap((row) => (row.phoneNumber ? [row.phoneNumber] : [])))];
  if (phones.length === 0) throw new Error("secondary needs stored phone numbers");
  let index = 0;
  return () => {
    const phoneNumber = phones[index++ % phones.length] as string;
    const email = freshEmail();
    return {
      body: body(email, phoneNumber),
      check: (contact) =>
        contact.secondaryContactIds.length === 0
          ? "no secondary was added"
          : (missing(contact.emails, email, "email") ??
            missing(contact.phoneNumbers, phoneNumber, "phone")),
    };
  };
}

function mergeRequests(pairs: readonly MergePair[]): RequestSource {
  let index = 0;
  return () => {
    const pair = pairs[index++];
    if (!pair) return undefined;
    return {
      body: body(pair.email, pair.otherPhoneNumber),
      check: (contact) =>
        contact.secondaryContactIds.length === 0
          ? "the two customers were not merged"
          : (missing(contact.emails, pair.otherEmail, "merged email") ??
            missing(contact.phoneNumbers, pair.phoneNumber, "merged phone")),
    };
  };
}

/** Builds the request source of a workload from its inputs; `seed` fixes the mix. */
export function requestSource(
  name: WorkloadName,
  inputs: WorkloadInputs,
  seed: number,
): RequestSource {
  const next = random(seed);
  switch (name) {
    case "lookup":
      return lookupRequests(inputs.sample);
    case "new":
      return newRequests(next);
    case "secondary":
      return secondaryRequests(inputs.sample);
    case "merge":
      return mergeRequests(inputs.pairs);
    case "mixed": {
      const lookup = lookupRequests(inputs.sample);
      const fresh = newRequests(next);
      const secondary = secondaryRequests(inputs.sample);
      const merge = mergeRequests(inputs.pairs);
      return (): PlannedRequest | undefined => {
        const roll = next();
        if (roll < 0.8) return lookup();
        if (roll < 0.9) return fresh();
        if (roll < 0.97) return secondary();
        return merge();
      };
    }
  }
}
