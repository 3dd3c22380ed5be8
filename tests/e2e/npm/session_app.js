// A small express app whose sessions live in Databunker through @databunker/session-store.
//
//   DATABUNKER_URL=... DATABUNKER_TOKEN=... SESSION_SECRET=... node session_app.js
//
// Listens on a free port of 127.0.0.1 and prints {"listening": <port>} on stdout once ready.
// Routes (all GET, all answer JSON):
//   /login   sets user "ann" and counts a view
//   /me      counts a view when logged in; shows the session either way
//   /logout  destroys the session
// Every answer carries {sid, user, views, session}; `session` is the session object as the
// app holds it (what the store posts to the server). Errors from the store end up in the error
// handler: 500 {"error": "<message>"}, also written to stderr.
//
// The process exits when its standard input closes (the test that started it has gone), on
// SIGTERM, or after MAX_LIFETIME_SECONDS (default 300), so it cannot outlive a test run.
"use strict";

const crypto = require("node:crypto");
const express = require("express");
const session = require("express-session");
const DatabunkerSessionStore = require("@databunker/session-store")(session);

const url = process.env.DATABUNKER_URL;
const token = process.env.DATABUNKER_TOKEN;
const secret = process.env.SESSION_SECRET;
if (!url || !token || !secret) {
  process.stderr.write("DATABUNKER_URL, DATABUNKER_TOKEN and SESSION_SECRET must be set\n");
  process.exit(2);
}

function view(req) {
  return {
    sid: req.sessionID,
    user: req.session.user || null,
    views: req.session.views || 0,
    session: JSON.parse(JSON.stringify(req.session)),
  };
}

const app = express();
app.use(
  session({
    store: new DatabunkerSessionStore({ url, token }),
    secret,
    resave: false,
    saveUninitialized: false,
    // The server accepts UUIDs only as session ids.
    genid: () => crypto.randomUUID(),
  }),
);

app.get("/login", (req, res) => {
  req.session.user = "ann";
  req.session.views = (req.session.views || 0) + 1;
  res.json(view(req));
});

app.get("/me", (req, res) => {
  if (req.session.user) {
    req.session.views = (req.session.views || 0) + 1;
  }
  res.json(view(req));
});

app.get("/logout", (req, res, next) => {
  const sid = req.sessionID;
  req.session.destroy((err) => {
    if (err) {
      next(err);
      return;
    }
    res.json({ destroyed: sid });
  });
});

// express-session hands the store's error (a message string) to next().
app.use((err, req, res, _next) => {
  const message = (err && err.message) || String(err);
  process.stderr.write(`${req.method} ${req.path} failed: ${message}\n`);
  res.status(500).json({ error: message });
});

const server = app.listen(0, "127.0.0.1", () => {
  process.stdout.write(`${JSON.stringify({ listening: server.address().port })}\n`);
});
server.on("error", (err) => {
  process.stderr.write(`listen failed: ${err.stack || err}\n`);
  process.exit(2);
});

process.on("SIGTERM", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));
process.stdin.on("error", () => process.exit(0));
process.stdin.resume();
const lifetime = Number(process.env.MAX_LIFETIME_SECONDS || 300);
setTimeout(() => {
  process.stderr.write(`stopping after ${lifetime} s\n`);
  process.exit(3);
}, lifetime * 1000).unref();
