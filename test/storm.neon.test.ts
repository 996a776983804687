import { stormSuite } from "./suites/storm.js";
import { servedDatabase } from "./support/databases.js";

// The storm held to the model (test/suites/storm.ts) through the Neon serverless driver and its WebSocket proxy.
stormSuite(servedDatabase("neon"));
