import { handlerSuite } from "./suites/handler.js";

// The whole HTTP contract behind PgBouncer in transaction mode, with server_round_robin.
handlerSuite("pgbouncer");
