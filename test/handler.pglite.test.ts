import { handlerSuite } from "./suites/handler.js";

handlerSuite("pglite");
