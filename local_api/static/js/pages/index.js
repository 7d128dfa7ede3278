// Every page of the app, in navigation order. Each module exports {route, title, role, render}.
import dashboard from "./dashboard.js";
import charger from "./charger.js";
import commissioning from "./commissioning.js";
import meters from "./meters.js";
import sessions from "./sessions.js";
import tokens from "./tokens.js";
import system from "./system.js";

export default [dashboard, charger, commissioning, meters, sessions, tokens, system];
