// Drives the published @databunker/store client against a running server.
//
//   DATABUNKER_URL=... DATABUNKER_TOKEN=... node store.js <scenario> '<input JSON>'
//
// Prints exactly one JSON object on stdout: every client call's answer under a name, as the
// client returned it. A call that throws (the client throws on a network failure) is recorded
// as {"thrown": "<message>"} so the caller sees which step broke. Exits 0 unless the scenario
// itself is unknown or the input is not JSON.
"use strict";

const crypto = require("node:crypto");
const DatabunkerStore = require("@databunker/store");

const url = process.env.DATABUNKER_URL;
const token = process.env.DATABUNKER_TOKEN;

async function step(results, name, call) {
  try {
    results[name] = await call();
  } catch (err) {
    results[name] = { thrown: String((err && err.stack) || err) };
  }
  return results[name];
}

function tokenOf(answer) {
  return answer && typeof answer.token === "string" ? answer.token : "missing-token";
}

const scenarios = {
  // Create, read by every identity, merge-patch, read again, create a duplicate.
  async users(input) {
    const store = new DatabunkerStore({ url, token });
    const r = {};
    const created = await step(r, "created", () =>
      store.users.create({ login: input.login, email: input.email, name: input.name }),
    );
    const user = tokenOf(created);
    await step(r, "byToken", () => store.users.get("token", user));
    await step(r, "byEmail", () => store.users.get("email", input.email));
    await step(r, "byLogin", () => store.users.get("login", input.login));
    await step(r, "changed", () =>
      store.users.set("token", user, { name: null, city: input.city }),
    );
    await step(r, "afterChange", () => store.users.get("email", input.email));
    await step(r, "duplicate", () =>
      store.users.create({ email: input.email, name: "Somebody Else" }),
    );
    await step(r, "missing", () => store.users.get("email", input.absentEmail));
    return r;
  },

  // The same client with a token the server does not know.
  async denied(input) {
    const store = new DatabunkerStore({ url, token: crypto.randomUUID() });
    const r = {};
    await step(r, "create", () => store.users.create({ email: input.email }));
    await step(r, "get", () => store.users.get("token", input.user));
    await step(r, "lbasis", () => store.agreements.rawlist());
    return r;
  },

  // List the legal bases (and filter them as the client's README does), accept two,
  // withdraw one of them.
  async agreements(input) {
    const store = new DatabunkerStore({ url, token });
    const r = {};
    const created = await step(r, "created", () => store.users.create({ email: input.email }));
    r.user = tokenOf(created);
    const listed = await step(r, "lbasis", () => store.agreements.rawlist());
    const rows = listed && Array.isArray(listed.rows) ? listed.rows : [];
    r.signupConsents = rows
      .filter((row) => row.module === "signup-page" && row.basistype === "consent")
      .map((row) => row.brief);
    await step(r, "accepted", () =>
      store.agreements.accept("token", r.user, input.kept, {
        referencecode: input.referencecode,
        lastmodifiedby: "shop",
      }),
    );
    await step(r, "acceptedLogin", () =>
      store.agreements.accept("email", input.email, input.withdrawn, {}),
    );
    await step(r, "withdrawn", () =>
      store.agreements.withdraw("email", input.email, input.withdrawn),
    );
    return r;
  },

  // An app record ("collection"): create, read, overwrite through another identity, read,
  // and read a collection that was never written.
  async collections(input) {
    const store = new DatabunkerStore({ url, token });
    const shop = store.collection("shop");
    const r = {};
    const created = await step(r, "created", () => store.users.create({ email: input.email }));
    r.user = tokenOf(created);
    await step(r, "firstSet", () => shop.set("token", r.user, input.first));
    await step(r, "firstGet", () => shop.get("token", r.user));
    await step(r, "secondSet", () => shop.set("email", input.email, input.second));
    await step(r, "secondGet", () => shop.get("email", input.email));
    await step(r, "missing", () => store.collection("wishlist").get("token", r.user));
    return r;
  },
};

async function main() {
  const [name, raw] = process.argv.slice(2);
  const scenario = scenarios[name];
  if (!scenario) {
    throw new Error(`unknown scenario ${JSON.stringify(name)}`);
  }
  if (!url || !token) {
    throw new Error("DATABUNKER_URL and DATABUNKER_TOKEN must be set");
  }
  const result = await scenario(JSON.parse(raw || "{}"));
  // The client keeps its sockets alive; exit once the answer is written.
  process.stdout.write(`${JSON.stringify(result)}\n`, () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`${(err && err.stack) || err}\n`);
  process.exit(2);
});
