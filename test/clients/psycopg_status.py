"""test/clients/psycopg_status.py -- psycopg 3 (Debian's python3-psycopg)
reads and writes order_flow.status values and arrays of them, as the
README's "Using order_flow from application code" shows; TAP on stdout.

Connects with the libpq environment (PGHOST, PGPORT, PGUSER, PGDATABASE)
to a database with the extension, whose search_path (the client's
default) does not include order_flow.
"""
import psycopg
from psycopg.types import TypeInfo
from psycopg.types.string import TextBinaryLoader, TextLoader

from _tap import check, done

def setup(conn):
    # the README's recipe: the status type and its array, as text, in both formats
    info = TypeInfo.fetch(conn, "order_flow.status")
    conn.adapters.register_loader(info.oid, TextLoader)
    conn.adapters.register_loader(info.oid, TextBinaryLoader)
    info.register(conn)          # order_flow.status[] -> list of str
    return info


with psycopg.connect(autocommit=True) as raw:
    # what a client sees before the recipe
    row = raw.execute("SELECT 'quoted'::order_flow.status").fetchone()
    check(row[0] == "quoted", "text format: a status reads as str without any set-up", repr(row[0]))
    arr = raw.execute("SELECT '{inquiry,quoted}'::order_flow.status[]").fetchone()[0]
    check(arr == "{inquiry,quoted}", "... but an array of them is an unparsed string", repr(arr))
    with raw.cursor(binary=True) as cur:
        b = cur.execute("SELECT 'quoted'::order_flow.status").fetchone()[0]
    check(isinstance(b, (bytes, bytearray, memoryview)), "binary format: a status reads as bytes", repr(b))

with psycopg.connect(autocommit=True) as conn:
    setup(conn)
    conn.execute("SET search_path = public")
    conn.execute("DROP TABLE IF EXISTS py_orders")
    conn.execute("CREATE TABLE py_orders (id int PRIMARY KEY, status order_flow.status NOT NULL, "
                 "history order_flow.status[])")
    # writing: str and list of str parameters
    conn.execute("INSERT INTO py_orders VALUES (%s, %s, %s), (%s, %s, %s), (%s, %s, %s)",
                 (1, "quoted", ["inquiry", "quoted"], 2, "shipped", ["inquiry", "quoted", "shipped"],
                  3, "inquiry", []))
    rows = conn.execute("SELECT id, status, history FROM py_orders ORDER BY id").fetchall()
    check(rows[0] == (1, "quoted", ["inquiry", "quoted"]), "a str and a list of str are written and read back",
          rows[0])
    check(rows[2][2] == [], "an empty array reads as []", rows[2])
    with conn.cursor(binary=True) as cur:
        brow = cur.execute("SELECT status, history FROM py_orders WHERE id = 2").fetchone()
    check(brow == ("shipped", ["inquiry", "quoted", "shipped"]), "binary format: str and list of str", brow)

    # filtering off the search_path, with str parameters
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM py_orders WHERE status >= %s ORDER BY id", ("quoted",)).fetchall()]
    check(ids == [1, 2], "status >= %s compares by process (not alphabetically)", ids)
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM py_orders WHERE status = %s", ("shipped",)).fetchall()]
    check(ids == [2], "status = %s finds the row", ids)
    ids = [r[0] for r in conn.execute(
        "SELECT id FROM py_orders WHERE status = ANY(%s) ORDER BY id", (["inquiry", "shipped"],)).fetchall()]
    check(ids == [2, 3], "status = ANY(%s) with a list finds the rows", ids)
    top = conn.execute("SELECT max(status) FROM py_orders").fetchone()[0]
    check(top == "shipped", "max(status) is the state furthest along", top)
    try:
        conn.execute("SELECT id FROM py_orders WHERE status < %s::text", ("nope",))
        check(False, "ordering against a name that is no state is refused")
    except psycopg.errors.InvalidTextRepresentation as e:
        check(e.sqlstate == "22P02", "ordering against a name that is no state is refused (22P02)", e)
    conn.execute("DROP TABLE py_orders")

done()
