import { handlerSuite } from "./suites/handler.js";

// The whole HTTP contract through the Neon serverless driver, as deployed on Neon.
handlerSuite("neon");
