"""test/clients/_tap.py -- TAP output shared by the Python client tests
(imported by them; test.sh does not run files whose name begins with "_").
"""
import sys

_n = 0
_failed = 0


def check(cond, what, detail=""):
    """The next numbered assertion: ok when cond holds, else not ok with detail."""
    global _n, _failed
    _n += 1
    print(("ok %d - %s" if cond else "not ok %d - %s") % (_n, what))
    if not cond:
        _failed += 1
        if detail:
            print("#   " + str(detail))


def done():
    """The plan, printed last, and the exit status."""
    print("1..%d" % _n)
    sys.exit(1 if _failed else 0)
