--
-- 001_status: the order_flow.status type (SPEC 3.1).
-- A workflow state name, stored as its fixed 4-byte process position.
--
\set SHOW_CONTEXT never
-- the type's operators live in schema order_flow
SET search_path = public, order_flow;

-- text input and output by name
SELECT 'quoted'::order_flow.status AS s, pg_typeof('quoted'::order_flow.status) AS type;
SELECT pg_column_size('contract_signed'::order_flow.status) AS bytes;

-- an unknown name: 22P02 with a hint naming the closest known states
SELECT 'qoted'::order_flow.status;
\echo :LAST_ERROR_SQLSTATE
SELECT 'shiped'::order_flow.status;
\echo :LAST_ERROR_SQLSTATE
SELECT 'Quoted'::order_flow.status;
\echo :LAST_ERROR_SQLSTATE

-- ORDER BY follows the process, not the alphabet
SELECT u.s AS by_process, u.s::text AS as_text
  FROM unnest('{paid,inquiry,shipped,cancelled,quoted,on_hold,delivered}'::order_flow.status[]) AS u(s)
 ORDER BY u.s;
SELECT 'inquiry'::order_flow.status < 'quoted'::order_flow.status AS inquiry_before_quoted,
       'paid'::order_flow.status > 'shipped'::order_flow.status AS paid_after_shipped,
       'packed'::order_flow.status = 'packed'::order_flow.status AS packed_is_packed;

-- casts: implicit to text, assignment from text and varchar
SELECT upper('contract_signed'::order_flow.status) AS implicit_to_text;
CREATE TABLE status_demo (id int PRIMARY KEY, s order_flow.status NOT NULL);
INSERT INTO status_demo VALUES (1, 'paid'::text), (2, 'inquiry'::varchar), (3, 'shipped'),
                               (4, 'contract_signed'), (5, 'quoted');
SELECT id, s FROM status_demo ORDER BY s;
INSERT INTO status_demo VALUES (6, 'payed'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT 'picking'::text::order_flow.status AS explicit_from_text;

-- placing a new name between two existing ones: positions never move
SELECT order_flow.create_status('credit_check', after => 'warehouse_confirmed', before => 'stock_shortage');
SELECT label FROM order_flow.status_label
 WHERE label IN ('warehouse_confirmed', 'credit_check', 'stock_shortage')
 ORDER BY sort_position;
SELECT _order_flow.status_position('warehouse_confirmed') < _order_flow.status_position('credit_check')
   AND _order_flow.status_position('credit_check') < _order_flow.status_position('stock_shortage') AS placed_between;
SELECT order_flow.create_status('credit_check');
\echo :LAST_ERROR_SQLSTATE
SELECT order_flow.create_status('late_fee', after => 'no_such_state');
\echo :LAST_ERROR_SQLSTATE
SELECT order_flow.create_status('late_fee', after => 'paid', before => 'quoted');
\echo :LAST_ERROR_SQLSTATE

-- the dictionary refuses changes: stored values and indexes depend on it
UPDATE order_flow.status_label SET sort_position = sort_position + 1 WHERE label = 'quoted';
\echo :LAST_ERROR_SQLSTATE
UPDATE order_flow.status_label SET label = 'offered' WHERE label = 'quoted';
\echo :LAST_ERROR_SQLSTATE
DELETE FROM order_flow.status_label WHERE label = 'credit_check';
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS still_there FROM order_flow.status_label WHERE label IN ('quoted', 'credit_check');

-- btree and hash indexes on a status column
CREATE TABLE status_many (id int PRIMARY KEY, s order_flow.status NOT NULL);
INSERT INTO status_many
SELECT g, (ARRAY['inquiry', 'quoted', 'contract_signed', 'credit_check', 'packed', 'shipped', 'paid'])[1 + g % 7]
  FROM generate_series(1, 3500) g;
CREATE INDEX status_many_btree ON status_many (s);
CREATE TABLE status_many_h (id int PRIMARY KEY, s order_flow.status NOT NULL);
INSERT INTO status_many_h SELECT * FROM status_many;
CREATE INDEX status_many_hash ON status_many_h USING hash (s);
VACUUM ANALYZE status_many;
ANALYZE status_many_h;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT count(*) FROM status_many WHERE s BETWEEN 'contract_signed' AND 'shipped';
SELECT s, count(*) FROM status_many WHERE s BETWEEN 'contract_signed' AND 'shipped' GROUP BY s ORDER BY s;
EXPLAIN (COSTS OFF) SELECT count(*) FROM status_many_h WHERE s = 'credit_check';
SELECT count(*) AS credit_checks FROM status_many_h WHERE s = 'credit_check';
RESET enable_seqscan;
RESET enable_bitmapscan;

-- binary send/receive: COPY BINARY carries the name and reads it back
-- (a scratch file in the server's data directory)
SELECT current_setting('data_directory') || '/order_flow_regress_status.bin' AS binfile \gset
COPY status_demo TO :'binfile' (FORMAT binary);
CREATE TABLE status_copy (LIKE status_demo);
COPY status_copy FROM :'binfile' (FORMAT binary);
SELECT id, s FROM status_copy ORDER BY id;
SELECT count(*) AS differences
  FROM ((TABLE status_demo EXCEPT TABLE status_copy) UNION ALL (TABLE status_copy EXCEPT TABLE status_demo)) d;
SELECT position('\x0000000f'::bytea || convert_to('contract_signed', 'UTF8')
                IN pg_read_binary_file('order_flow_regress_status.bin')) > 0 AS name_on_the_wire;

DROP TABLE status_demo, status_copy, status_many, status_many_h;
RESET search_path;
