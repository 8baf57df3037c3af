/*
 * test/demo/history.sql -- the last twelve months, imported at go-live.
 *
 * Until today the order book lived in spreadsheets.  The DBA imports the
 * last twelve months of it into public.order_archive (one row per order,
 * its state as the spreadsheet had it) and back-dates every step the
 * spreadsheet recorded with order_flow.import_transition() -- validated
 * against the workflow like any move, audited as 'import', no broadcast --
 * and every payment, service request, complaint and exception note with
 * order_flow.record().  This is what gives the evening report's KPIs,
 * Pareto table, delay reasons and customer health their history.
 *
 * The history itself comes from the project's deterministic generator
 * (test/gen/generator.sql, loaded by demo.sql): seasonal volume, the
 * customers' classes and regions as in public.customers, the history of
 * the 1,000 biggest accounts (C0001-C1000; the others are new), a realistic
 * exception mix, slower deliveries in the east's and south's rainy months.
 * Runs as the DBA.
 */

SELECT clock_timestamp() AS history_started \gset
SELECT of_gen.load_api(4000, 1000, 12, now() - interval '1 day',
                       tbl => 'public.order_archive', key_prefix => 'H', customer_digits => 4) AS imported \gset
SELECT format('       %s orders of the last 12 months imported (%s audit events: import_transition, record) in %s s',
              to_char((SELECT count(*) FROM public.order_archive), 'FM9,999'),
              to_char(:imported, 'FM999,999'),
              round(extract(epoch FROM clock_timestamp() - :'history_started'::timestamptz)::numeric, 1))
       AS line \gset
\echo :line
