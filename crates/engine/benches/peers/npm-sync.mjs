#!/usr/bin/env node
// Peer for the side-by-side benchmark: Stripe's TypeScript sync engine (npm @stripe/sync-engine
// 1.0.32, installed by ensure_peers in scripts/lib/peers.sh) doing a full backfill through its
// library API, as its CLI's `sync` does: runMigrations, StripeSync.create, fullSync.
//
//   PEER_STRIPE_BASE=http://127.0.0.1:12111 PEER_STRIPE_KEY=sk_test_fake \
//   PEER_DATABASE_URL=postgres://postgres@127.0.0.1:5432/db PEER_SCHEMA=npm \
//   PEER_STREAMS=customers,products,charges,payment_intents,invoices \
//   node crates/engine/benches/peers/npm-sync.mjs
//
// Resolution: the package and its `stripe` are loaded with a require rooted in
// PEER_SYNC_ENGINE_DIR (default .tools/peers/stripe-sync-engine beside this repository's root),
// so no NODE_PATH is needed (ESM ignores it anyway). Both are loaded as CommonJS so that this
// script and the package share one `stripe` module.
//
// Optional: PEER_WORKERS (fullSync's workerCount, default 50, the CLI's default),
// PEER_RATE_LIMIT (its own limiter, requests per second through a Postgres function, default 25,
// the CLI's default; the library's default is 10), PEER_OPENAPI_SPEC (a Stripe spec3.json for the
// migrations; default: the repository's crates/stripe-fake/tests/data/openapi-schemas-2023-08-16
// .json.gz, see below), PEER_STRIPE_API_VERSION (default 2020-08-27, the CLI's default),
// PEER_VERBOSE=1 (the package's info logs on stderr).
//
// Pointing stripe-node elsewhere: the package builds its Stripe client itself
// (`new Stripe(key, {apiVersion, telemetry, maxNetworkRetries, appInfo})`) and takes neither a
// client nor host options, and reads no environment variable for the host. stripe-node's
// constructor reads its options through Stripe.prototype._getPropsFromConfig, so this script wraps
// that method to add host, port and protocol from PEER_STRIPE_BASE before the package constructs
// its client.
//
// Migrations: 1.0.32 creates its data tables from Stripe's OpenAPI spec, which it downloads from
// GitHub (unreachable here) unless given openApiSpecPath. The repository's extract of that spec
// (component schemas of API version 2023-08-16, with x-resourceId) lacks only the `openapi` field,
// so it is written out with one. Tables: <PEER_SCHEMA>.<stream> with the object in _raw_data
// (jsonb), `id` and one column per property generated from it, and _account_id.

import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

function die(message) {
  process.stderr.write(`npm-sync: ${message}\n`);
  process.exit(1);
}

const env = process.env;
for (const name of ['PEER_STRIPE_BASE', 'PEER_STRIPE_KEY', 'PEER_DATABASE_URL', 'PEER_SCHEMA', 'PEER_STREAMS']) {
  if (!env[name]) die(`${name} is not set`);
}
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../../../..');
const engineDir = env.PEER_SYNC_ENGINE_DIR ?? path.join(repo, '.tools/peers/stripe-sync-engine');
if (!fs.existsSync(path.join(engineDir, 'node_modules/@stripe/sync-engine/package.json'))) {
  die(`@stripe/sync-engine is not installed in ${engineDir} (scripts/lib/peers.sh: ensure_peers)`);
}
const require = createRequire(path.join(engineDir, 'package.json'));
const Stripe = require('stripe');
const { StripeSync, runMigrations, VERSION } = require('@stripe/sync-engine');

const base = new URL(env.PEER_STRIPE_BASE);
const protocol = base.protocol.replace(':', '');
const stripeTarget = {
  host: base.hostname,
  port: base.port || (protocol === 'http' ? '80' : '443'),
  protocol,
};
const getProps = Stripe.prototype._getPropsFromConfig;
Stripe.prototype._getPropsFromConfig = function (config) {
  return getProps.call(this, { ...(config ?? {}), ...stripeTarget });
};

const verbose = env.PEER_VERBOSE === '1';
const logger = {
  info: (...args) => verbose && console.error(...args),
  warn: (...args) => console.error(...args),
  error: (...args) => console.error(...args),
};

const schema = env.PEER_SCHEMA;
const streams = env.PEER_STREAMS.split(',').map((s) => s.trim()).filter(Boolean);
const workers = Number.parseInt(env.PEER_WORKERS ?? '50', 10);
const rateLimit = Number.parseInt(env.PEER_RATE_LIMIT ?? '25', 10);
const apiVersion = env.PEER_STRIPE_API_VERSION ?? '2020-08-27';

let specPath = env.PEER_OPENAPI_SPEC;
let tmp;
if (!specPath) {
  const extract = path.join(repo, 'crates/stripe-fake/tests/data/openapi-schemas-2023-08-16.json.gz');
  const spec = JSON.parse(zlib.gunzipSync(fs.readFileSync(extract)).toString('utf8'));
  spec.openapi = '3.0.0';
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-sync-'));
  specPath = path.join(tmp, 'spec3.json');
  fs.writeFileSync(specPath, JSON.stringify(spec));
}

// The package prints its progress with console.log: keep stdout for the result line.
const emit = (line) => process.stdout.write(`${line}\n`);
console.log = (...args) => console.error(...args);

let sync;
let failure;
try {
  const started = Date.now();
  await runMigrations({
    databaseUrl: env.PEER_DATABASE_URL,
    schemaName: schema,
    stripeApiVersion: apiVersion,
    openApiSpecPath: specPath,
    logger,
  });
  const migrated = Date.now();

  sync = await StripeSync.create({
    stripeSecretKey: env.PEER_STRIPE_KEY,
    schemaName: schema,
    stripeApiVersion: apiVersion,
    poolConfig: { connectionString: env.PEER_DATABASE_URL, max: 10, keepAlive: true }, // the CLI's pool
    logger,
  });
  // Stream (table) names to the package's object names (customers -> customer).
  const objects = streams.map((stream) => {
    const found = Object.entries(sync.resourceRegistry).find(([, cfg]) => cfg.tableName === stream);
    if (!found) throw new Error(`stream ${stream} is not one @stripe/sync-engine syncs`);
    return found[0];
  });

  // fullSync(tables, segmentedSync, workerCount, rateLimit, monitorProgress, interval): interval 0
  // so that a run completed earlier in the same schema does not make it skip.
  const result = await sync.fullSync(objects, true, workers, rateLimit, false, 0);

  const { rows } = await sync.postgresClient.query(
    `SELECT status, error_message FROM "${schema}"."sync_runs"
     WHERE account_id = $1 ORDER BY started_at DESC LIMIT 1`,
    [sync.accountId],
  );
  const run = rows[0];
  const records = {};
  for (const stream of streams) records[stream] = result.totals[stream] ?? 0;
  emit(JSON.stringify({
    peer: 'npm',
    package: `@stripe/sync-engine ${VERSION}`,
    status: run?.status ?? 'none',
    records,
    total: result.totalSynced,
    migrate_seconds: (migrated - started) / 1000,
    sync_seconds: (Date.now() - migrated) / 1000,
  }));
  if (!run || run.status !== 'complete') {
    failure = `the sync run ended ${run?.status ?? 'without a run'}: ${run?.error_message ?? ''}`;
  }
} catch (err) {
  console.error(err);
  failure = err instanceof Error ? err.message : String(err);
} finally {
  if (sync) await sync.close().catch(() => {});
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
}
if (failure) die(failure);
