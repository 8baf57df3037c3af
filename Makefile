# order_flow -- PGXS build, plus the project's own targets:
#   make               build the library and assemble the SQL scripts (needs PGXS:
#                      `make deps` installs it on Debian)
#   make install       install them
#   make installcheck  against an installed extension and a running server
#                      (PGHOST/PGPORT): pg_regress (sql/, expected/), isolation
#                      (test/isolation/specs/) and TAP (test/t/; as a non-root user)
#   make installcheck-pgtap  the pgTAP files (test/pgtap/) through pg_prove
#   make deps          the Debian packages the build and the harness need
#   make dist          the release archive (.build/order_flow-<version>.zip, for PGXN)
#   make deb           the Debian package(s) postgresql-<major>-order-flow (.build/*.deb)
#   make test          every suite on a private throwaway cluster, packages and build
#                      included; ends "N passed, N failed"
#                PG_CONFIG=/path/to/pg_config      against that server instead of Debian's 15
#                FAKETIME='2027-01-31 23:30:00 UTC'  cluster and clients under faketime (TAP skipped)
#                OF_TIMEZONE=America/New_York        the test cluster's timezone/log_timezone
#                (command-line variables reach test/scripts/test.sh through the environment)
#   make test-clock  pg_regress, pgTAP and isolation at month edges and a DST change, in
#                several server time zones, under faketime; ends "N passed, N failed"
#   make demo    a wholesaler's day replayed through the extension
#   make bench   benchmarks, with ratios against baselines measured in the same run

PG_CONFIG ?= pg_config

EXTENSION = order_flow
EXTVERSION := $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)

# ------------------------------------------------------------------ C library
MODULE_big = order_flow
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*/*.c)))
PG_CPPFLAGS = -I$(srcdir)/src/include -DOF_VERSION='"$(EXTVERSION)"'
PG_CFLAGS = -Wall -Werror -Wmissing-prototypes

# ---------------------------------------------------------------- SQL scripts
# src/sql/README.md has the rules.  The install script of the current version
# is pre_install/ (objects created once) followed by the idempotent sources;
# the update script from the previous version is that update's modfiles
# around the same idempotent sources.  Released scripts are frozen copies,
# checked against src/sql/released/SHA256SUMS.
SQL_PRE_INSTALL = $(foreach s,internal status status_ops status_text catalogue tracking checkpoints restore station privileges metrics metrics_fold citus,src/sql/pre_install/$(s).sql)
SQL_SOURCES = $(foreach s,status citus tracking catalogue broadcast station metrics monitor comments privileges,src/sql/$(s).sql)
PREV_VERSION = 1.1
SQL_UPDATE_PRE = src/sql/updates/$(PREV_VERSION)--$(EXTVERSION).pre.sql
# objects new in this version: created by the update from their pre_install files
SQL_UPDATE_NEW = src/sql/pre_install/status_ops.sql src/sql/pre_install/status_text.sql src/sql/pre_install/checkpoints.sql src/sql/pre_install/restore.sql src/sql/pre_install/metrics_fold.sql src/sql/pre_install/citus.sql
SQL_UPDATE_POST = src/sql/updates/$(PREV_VERSION)--$(EXTVERSION).post.sql

DATA = $(sort $(wildcard src/sql/released/*.sql))
# the README, installed as the extension's documentation under a name of its own
DOCS = .build/README.order_flow.md src/monitoring/order_flow.prometheus.yaml
DATA_built = .build/$(EXTENSION)--$(EXTVERSION).sql \
             .build/$(EXTENSION)--$(PREV_VERSION)--$(EXTVERSION).sql
EXTRA_CLEAN = .build

# ---------------------------------------------------------------------- tests
REGRESS = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS = --load-extension=$(EXTENSION)
ISOLATION = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso --load-extension=$(EXTENSION)
TAP_TESTS = 1
PROVE_TESTS = $(sort $(wildcard test/t/*.pl))

PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)
ifneq ($(wildcard $(PGXS)),)
include $(PGXS)
# after the include: Makefile.global sets PROVE_FLAGS
PROVE_FLAGS += -I test/t
else
# no PGXS yet: make test, demo, bench and deps install it themselves
all install installcheck clean:
	@echo "PGXS not found through PG_CONFIG=$(PG_CONFIG): run \"make deps\" (Debian), or pass PG_CONFIG=/path/to/pg_config" >&2; exit 1
endif

# every object is rebuilt when a header changes (shared-memory layouts live
# there); after the include, so that the default goal stays PGXS's "all"
$(OBJS): $(wildcard src/include/*.h) $(EXTENSION).control

# ... and when the server it is built for changes (PG_CONFIG=... of another
# major): .build/server-id names the last one; a different one removes the
# objects.  (A stamp prerequisite would not do: PGXS marks every target
# .SECONDARY, so a missing stamp never forces a rebuild.)
SERVER_ID := $(shell { $(PG_CONFIG) --version; $(PG_CONFIG) --bindir; } 2>/dev/null | tr -c 'A-Za-z0-9.\n' '_' | tr -d '\n')
ifneq ($(SERVER_ID),$(shell cat .build/server-id 2>/dev/null))
$(shell rm -f $(OBJS) $(OBJS:.o=.bc) $(MODULE_big)$(DLSUFFIX); mkdir -p .build; echo '$(SERVER_ID)' > .build/server-id)
endif

# The business names the metrics depend on (src/include/metric_names.h):
# each `#define OF_X "a", "b"` becomes a substitution of @OF_X@ by 'a', 'b'.
.build/metric_names.sed: src/include/metric_names.h
	@mkdir -p .build
	sed -n 's/^#define \(OF_[A-Z_]*\) \(".*"\)$$/\1 \2/p' $< | \
	  while read -r name values; do \
	    printf 's/@%s@/%s/g\n' "$$name" "$$(printf '%s' "$$values" | tr '"' "'")"; \
	  done > $@.tmp
	mv $@.tmp $@

# assemble: $(call assemble,title,files...)
define assemble
	@mkdir -p .build
	{ printf '%s\n' '/*' ' * order_flow $(1)' ' *' \
	    ' * Generated by make from src/sql/ (see src/sql/README.md): edit the' \
	    ' * sources there, not this file.' ' */' \
	    '\echo Use "$(2)" to load this file. \quit'; \
	  for f in $(3); do printf '\n/* ==== %s ==== */\n\n' "$$f"; \
	    sed -f .build/metric_names.sed "$$f"; done; } > $@.tmp
	@if grep -n '@OF_[A-Z_]*@' $@.tmp; then \
	  echo "$@: placeholders above are not defined in src/include/metric_names.h" >&2; exit 1; fi
	mv $@.tmp $@
endef

.build/$(EXTENSION)--$(EXTVERSION).sql: $(SQL_PRE_INSTALL) $(SQL_SOURCES) .build/metric_names.sed $(EXTENSION).control Makefile
	$(call assemble,$(EXTVERSION) -- install script,CREATE EXTENSION $(EXTENSION),$(SQL_PRE_INSTALL) $(SQL_SOURCES))

.build/$(EXTENSION)--$(PREV_VERSION)--$(EXTVERSION).sql: $(SQL_UPDATE_PRE) $(SQL_UPDATE_NEW) $(SQL_SOURCES) $(SQL_UPDATE_POST) .build/metric_names.sed $(EXTENSION).control Makefile
	$(call assemble,$(PREV_VERSION) -> $(EXTVERSION),ALTER EXTENSION $(EXTENSION) UPDATE TO '$(EXTVERSION)',$(SQL_UPDATE_PRE) $(SQL_UPDATE_NEW) $(SQL_SOURCES) $(SQL_UPDATE_POST))

.build/README.order_flow.md: README.md
	@mkdir -p .build
	cp $< $@
all: .build/README.order_flow.md

# the release archive for PGXN (META.json), from the committed tree
dist:
	@mkdir -p .build
	git archive --format zip --prefix=$(EXTENSION)-$(EXTVERSION).0/ -o .build/$(EXTENSION)-$(EXTVERSION).0.zip HEAD
	@echo .build/$(EXTENSION)-$(EXTVERSION).0.zip

.PHONY: test test-clock demo bench deps deb installcheck-pgtap check-released dist
deps:
	bash test/scripts/deps.sh

# the Debian package(s), postgresql-<major>-order-flow, into .build/
deb:
	bash test/scripts/deb.sh

# the released scripts are byte for byte what was released
check-released:
	cd src/sql/released && sha256sum --check --quiet SHA256SUMS

# each file in a fresh database (pgtap must be installable on the server)
PGTAP_DB = order_flow_pgtap
installcheck-pgtap:
	@rc=0; for f in $(sort $(wildcard test/pgtap/*.sql)); do \
	  $(bindir)/psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $(PGTAP_DB)' \
	    -c 'CREATE DATABASE $(PGTAP_DB)' || exit 1; \
	  pg_prove --psql-bin $(bindir)/psql -d $(PGTAP_DB) $$f || rc=1; \
	done; \
	$(bindir)/psql -X -q -d postgres -c 'DROP DATABASE IF EXISTS $(PGTAP_DB)'; exit $$rc

# PG_CONFIG=... on the command line runs them against that server instead of 15
OF_RUN = $(if $(filter command line,$(origin PG_CONFIG)),OF_PG_CONFIG=$(PG_CONFIG)) bash

test:
	$(OF_RUN) test/scripts/test.sh

test-clock:
	$(OF_RUN) test/scripts/test_clock.sh

demo:
	$(OF_RUN) test/scripts/demo.sh

bench:
	$(OF_RUN) test/scripts/bench.sh
