import { handlerSuite } from "./suites/handler.js";

handlerSuite("postgres");
