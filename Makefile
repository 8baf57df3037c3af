# order_flow -- PGXS build, plus the project's own targets:
#   make test    every suite (pg_regress, pgTAP, isolation, TAP); ends "N passed, N failed"
#                FAKETIME='2027-01-31 23:30:00 UTC'  cluster and clients under faketime (TAP skipped)
#                OF_TIMEZONE=America/New_York        the test cluster's timezone/log_timezone
#                (command-line variables reach test/scripts/test.sh through the environment)
#   make test-clock  pg_regress, pgTAP and isolation at month edges and a DST change, in
#                several server time zones, under faketime; ends "N passed, N failed"
#   make demo    a wholesaler's day replayed through the extension
#   make bench   benchmarks, with ratios against baselines measured in the same run

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

MODULE_big = order_flow
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))

EXTENSION = order_flow
DATA = $(sort $(wildcard sql/order_flow--*.sql))

REGRESS = $(sort $(basename $(notdir $(wildcard sql/[0-9][0-9][0-9]_*.sql))))
REGRESS_OPTS = --inputdir=. --load-extension=order_flow

PG_CPPFLAGS = -I$(srcdir)/src
PG_CFLAGS = -Wall -Werror -Wmissing-prototypes

# Bootstrap: build needs PGXS, which a fresh machine may not have yet.
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
else
all:
	bash test/scripts/deps.sh
	$(MAKE) all
endif

# every object is rebuilt when a header changes (shared-memory layouts live
# there); after the include, so that the default goal stays PGXS's "all"
$(OBJS): $(wildcard src/*.h)

.PHONY: test test-clock demo bench deps
deps:
	bash test/scripts/deps.sh

test:
	bash test/scripts/test.sh

test-clock:
	bash test/scripts/test_clock.sh

demo:
	bash test/scripts/demo.sh

bench:
	bash test/scripts/bench.sh
