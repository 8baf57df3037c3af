// test/clients/node_pg_status.js -- node `pg` (from npm) reads and writes
// order_flow.status values and arrays of them, as the README's "Using
// order_flow from application code" shows; TAP on stdout.
//
// Connects with the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE)
// to a database with the extension, whose search_path (the client's
// default) does not include order_flow.  The pg module is found through
// NODE_PATH (test/scripts/deps.sh installs it under .build/node).
'use strict';
const { Client, types } = require('pg');

let n = 0;
let failed = 0;
function check(cond, what, detail) {
  n += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
  if (!cond) {
    failed += 1;
    if (detail !== undefined) console.log(`#   ${JSON.stringify(detail)}`);
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const client = new Client();
  await client.connect();

  // before the recipe: a status is a string, an array of them is not parsed
  let r = await client.query("SELECT 'quoted'::order_flow.status AS s, '{inquiry,quoted}'::order_flow.status[] AS a");
  check(r.rows[0].s === 'quoted', 'a status reads as a string without any set-up', r.rows[0].s);
  check(r.rows[0].a === '{inquiry,quoted}', '... but an array of them is an unparsed string', r.rows[0].a);

  // the README's recipe: parse order_flow.status[] as text[] is parsed
  r = await client.query("SELECT typarray FROM pg_type WHERE oid = 'order_flow.status'::regtype");
  types.setTypeParser(Number(r.rows[0].typarray), types.getTypeParser(1009));   // 1009: text[]

  await client.query('SET search_path = public');
  await client.query('DROP TABLE IF EXISTS js_orders');
  await client.query('CREATE TABLE js_orders (id int PRIMARY KEY, status order_flow.status NOT NULL, history order_flow.status[])');
  await client.query('INSERT INTO js_orders VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)',
    [1, 'quoted', ['inquiry', 'quoted'], 2, 'shipped', ['inquiry', 'quoted', 'shipped'], 3, 'inquiry', []]);
  r = await client.query('SELECT id, status, history FROM js_orders ORDER BY id');
  check(same(r.rows[0], { id: 1, status: 'quoted', history: ['inquiry', 'quoted'] }),
    'a string and an array of strings are written and read back', r.rows[0]);
  check(same(r.rows[2].history, []), 'an empty array reads as []', r.rows[2]);

  r = await client.query('SELECT id FROM js_orders WHERE status >= $1 ORDER BY id', ['quoted']);
  check(same(r.rows.map((x) => x.id), [1, 2]), 'status >= $1 compares by process (not alphabetically)', r.rows);
  r = await client.query('SELECT id FROM js_orders WHERE status = $1', ['shipped']);
  check(same(r.rows.map((x) => x.id), [2]), 'status = $1 finds the row', r.rows);
  r = await client.query('SELECT id FROM js_orders WHERE status = ANY($1) ORDER BY id', [['inquiry', 'shipped']]);
  check(same(r.rows.map((x) => x.id), [2, 3]), 'status = ANY($1) with an array finds the rows', r.rows);
  r = await client.query('SELECT max(status) AS m FROM js_orders');
  check(r.rows[0].m === 'shipped', 'max(status) is the state furthest along', r.rows[0]);
  try {
    await client.query('SELECT id FROM js_orders WHERE status < $1::text', ['nope']);
    check(false, 'ordering against a name that is no state is refused');
  } catch (e) {
    check(e.code === '22P02', 'ordering against a name that is no state is refused (22P02)', e.code);
  }
  await client.query('DROP TABLE js_orders');
  await client.end();
}

main().then(() => {
  console.log(`1..${n}`);
  process.exit(failed ? 1 : 0);
}).catch((e) => {
  console.log(`not ok ${n + 1} - ${e.message}`);
  console.log(`1..${n + 1}`);
  process.exit(1);
});
