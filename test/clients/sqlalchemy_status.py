"""test/clients/sqlalchemy_status.py -- SQLAlchemy (Debian's python3-sqlalchemy,
1.4, over python3-psycopg2) reflects a managed table whose status column is
order_flow.status, reads, filters and moves orders, as the README's "Using
order_flow from application code" shows; TAP on stdout.

Without the recipe, reflection warns "Did not recognize type
'order_flow.status'" and types the column NullType; with it (the type
name registered as text in the dialect's ischema_names) the column is
text to SQLAlchemy and every comparison still runs in process order in the
server.  Connects with the libpq environment (PGHOST, PGPORT, PGUSER,
PGDATABASE) to a database with the extension, off the search_path.
"""
import warnings

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import base as pg_base

from _tap import check, done

# libpq reads PGHOST, PGPORT, PGUSER and PGDATABASE itself
engine = sa.create_engine("postgresql+psycopg2://", future=True)

with engine.begin() as conn:
    conn.execute(sa.text("DROP TABLE IF EXISTS sa_orders"))
    conn.execute(sa.text("CREATE TABLE sa_orders (id text PRIMARY KEY, status order_flow.status NOT NULL "
                         "DEFAULT 'inquiry', amount numeric)"))
    conn.execute(sa.text("INSERT INTO sa_orders (id, amount) VALUES ('S1', 10), ('S2', 20), ('S3', 30)"))
    conn.execute(sa.text("SELECT order_flow.manage('sa_orders')"))
    conn.execute(sa.text("UPDATE sa_orders SET status = 'quoted' WHERE id IN ('S2', 'S3')"))
    conn.execute(sa.text("UPDATE sa_orders SET status = 'contract_signed' WHERE id = 'S3'"))


def reflect():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = sa.Table("sa_orders", sa.MetaData(), autoload_with=engine)
    return table, [str(w.message) for w in caught]


# before the recipe
table, caught = reflect()
check(any("Did not recognize type 'order_flow.status'" in m for m in caught),
      "without the recipe, reflection warns that it does not know order_flow.status", caught)
check(isinstance(table.c.status.type, sa.types.NullType), "... and types the column NullType",
      repr(table.c.status.type))

# the README's recipe: the type (and its array) are text to SQLAlchemy
pg_base.ischema_names["order_flow.status"] = sa.types.Text
table, caught = reflect()
check(not any("order_flow.status" in m for m in caught), "with the recipe, reflection does not warn", caught)
check(isinstance(table.c.status.type, sa.types.Text), "... and the column is Text", repr(table.c.status.type))

with engine.begin() as conn:
    rows = conn.execute(sa.select(table.c.id, table.c.status).order_by(table.c.id)).all()
    check([tuple(r) for r in rows] == [("S1", "inquiry"), ("S2", "quoted"), ("S3", "contract_signed")],
          "statuses read as str", rows)
    ids = conn.execute(sa.select(table.c.id).where(table.c.status >= "quoted").order_by(table.c.id)).scalars().all()
    check(ids == ["S2", "S3"], "status >= 'quoted' compares by process, not alphabetically", ids)
    ids = conn.execute(sa.select(table.c.id).where(table.c.status.in_(["inquiry", "contract_signed"]))
                       .order_by(table.c.id)).scalars().all()
    check(ids == ["S1", "S3"], "status IN (...) finds the rows", ids)
    top = conn.execute(sa.select(sa.func.max(table.c.status))).scalar()
    check(top == "contract_signed", "max(status) is the order furthest along", top)
    conn.execute(table.update().where(table.c.id == "S1").values(status="quoted"))
    check(conn.execute(sa.text("SELECT state FROM order_flow.tracked_order WHERE order_key = 'S1'")).scalar()
          == "quoted", "an UPDATE from SQLAlchemy is a validated, audited transition")

try:
    with engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == "S1").values(status="shipped"))
    check(False, "an illegal move from SQLAlchemy is refused")
except sa.exc.DBAPIError as e:
    diag = e.orig.diag
    check(e.orig.pgcode == "23514" and diag.constraint_name == "order_flow_transition",
          "an illegal move from SQLAlchemy is refused: 23514, constraint order_flow_transition",
          (e.orig.pgcode, diag.constraint_name))

with engine.begin() as conn:
    conn.execute(sa.text("SELECT order_flow.unmanage('sa_orders')"))
    conn.execute(sa.text("DROP TABLE sa_orders"))

done()
