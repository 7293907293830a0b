# The two commands of the README. Each sets up .venv itself, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_BIN ?= /usr/lib/postgresql/15/bin
# graphql-http's server audits (pinned in tests/graphql/http_audit/package.json), installed here by npm.
HTTP_AUDIT := var/node/http-audit
# playwright-core (pinned in tests/insights/browser/package.json) and the dashboard's chart library,
# for the dashboard's browser test (tests/insights/test_dashboard.py).
DASHBOARD_BROWSER := var/node/dashboard-browser
BENCH_PEER := var/node/bench-peer
DASHBOARD_LIB := var/node/dashboard-lib
HOST ?= $(or $(CRM_HOST),127.0.0.1)
PORT ?= $(or $(CRM_PORT),8000)

.PHONY: serve test test-sqlite test-postgresql schema bench bench-data postgres-binaries node-tools browser-tools office-tools finance-tools clean

# The accounting programs the finance plugin (plugins/crm_finance) is tested against, each in a
# place of its own under var/counterparts/: Tryton and fava (beancount) in their own venvs from
# PyPI, hledger-web from Debian (linked there).
COUNTERPARTS := var/counterparts
TRYTON_PACKAGES := 'trytond>=8.2,<8.3' 'trytond-account-invoice>=8.2,<8.3' 'trytond-sale>=8.2,<8.3' 'trytond-account-payment>=8.2,<8.3' 'proteus>=8.2,<8.3'
FAVA_PACKAGES := 'beancount>=3' 'fava>=1.30'

# What the documents plugin (plugins/crm_documents) converts PDFs with: LibreOffice headless, the
# uno module of Debian's Python (its warm converter processes), fonts for Latin and CJK text, and
# poppler's pdftotext for looking at PDFs by hand.
OFFICE_PACKAGES := libreoffice-writer-nogui libreoffice-calc-nogui python3-uno fonts-liberation2 fonts-noto-cjk poppler-utils

$(STAMP): pyproject.toml plugins/crm_audit/pyproject.toml plugins/crm_documents/pyproject.toml plugins/crm_finance/pyproject.toml plugins/crm_marketing/pyproject.toml plugins/crm_service/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet -e plugins/crm_audit
	$(BIN)/pip install --quiet -e 'plugins/crm_documents[dev]'
	$(BIN)/pip install --quiet -e 'plugins/crm_finance[dev]'
	$(BIN)/pip install --quiet -e 'plugins/crm_marketing[dev]'
	$(BIN)/pip install --quiet -e 'plugins/crm_service[dev]'
	touch $(STAMP)

## make serve: migrate, load demo data into an empty database, serve on http://$(HOST):$(PORT)/graphql
serve: $(STAMP)
	@# LibreOffice for PDF documents (best effort: without it, DOCX and XLSX documents still work).
	-@$(MAKE) --no-print-directory office-tools
	@# GraphiQL's files from the npm registry, so the page works without internet access
	@# (best effort: without npm or a registry the page loads them from its CDN).
	-@$(BIN)/python -m crm_graph.graphql.ide fetch
	@# The dashboard's chart library (ECharts, pinned with its hash), served at /dashboard
	@# (best effort: without it the page says how to fetch it).
	-@$(BIN)/python -m crm_graph.dashboard fetch
	$(BIN)/crm-graph serve --seed-demo --host $(HOST) --port $(PORT)

# Tests marked one_pass (their subject is not the database) run once: in the SQLite pass, but for
# these directories', which run in the PostgreSQL pass so that the two passes take about as long
# (measured: the SQLite pass carries about 4 minutes of one_pass tests, finance's 3 of them).
# The slowest tests of each pass, at the end of its log: what to look at when the suite grows slow.
DURATIONS := --durations=40 --durations-min=5
BALANCE := --one-pass-postgresql plugins/crm_documents/tests --one-pass-postgresql plugins/crm_service/tests

## make test: the whole suite on SQLite and on a throwaway PostgreSQL the run starts itself.
## The two runs go side by side (one core each; together they take about the time of the
## longer one); each one's output is shown whole when both have finished.
test: $(STAMP) postgres-binaries node-tools browser-tools office-tools finance-tools mail-tools rt-tools
	@mkdir -p var
	@echo "running the suite on SQLite and on PostgreSQL side by side ..."
	@$(BIN)/python -m pytest --db sqlite $(BALANCE) $(DURATIONS) > var/test-sqlite.log 2>&1 & sqlite=$$!; \
	$(BIN)/python -m pytest --db postgresql $(BALANCE) $(DURATIONS) > var/test-postgresql.log 2>&1; postgresql=$$?; \
	wait $$sqlite; sqlite=$$?; \
	echo "=== SQLite ==="; cat var/test-sqlite.log; echo "=== PostgreSQL ==="; cat var/test-postgresql.log; \
	test $$sqlite -eq 0 && test $$postgresql -eq 0

test-sqlite: $(STAMP) node-tools browser-tools office-tools finance-tools mail-tools rt-tools
	$(BIN)/python -m pytest --db sqlite

test-postgresql: $(STAMP) postgres-binaries node-tools browser-tools office-tools finance-tools mail-tools rt-tools
	$(BIN)/python -m pytest --db postgresql

# PostgreSQL server binaries (initdb, pg_ctl) for the test run; installed from Debian if missing.
postgres-binaries:
	@if [ ! -x $(PG_BIN)/initdb ] && ! command -v initdb >/dev/null; then \
		echo "PostgreSQL server binaries missing: installing postgresql-15"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null; fi; \
	fi

# Node.js and npm (from Debian if missing) and the graphql-http package, for the
# GraphQL-over-HTTP audit in tests/graphql/test_http_contract.py.
node-tools:
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		echo "Node.js missing: installing nodejs and npm"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; fi; \
	fi
	@if ! cmp -s tests/graphql/http_audit/package.json $(HTTP_AUDIT)/package.json || [ ! -d $(HTTP_AUDIT)/node_modules/graphql-http ]; then \
		mkdir -p $(HTTP_AUDIT) && cp tests/graphql/http_audit/package.json $(HTTP_AUDIT)/ && \
		npm install --silent --no-audit --no-fund --no-package-lock --prefix $(HTTP_AUDIT) >/dev/null; \
	fi

# Debian's Chromium (from Debian if missing), playwright-core and the chart library, for the
# dashboard's test in headless Chromium (tests/insights/test_dashboard.py).
browser-tools: $(STAMP) node-tools
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Chromium missing: installing chromium"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; \
	fi
	@if ! cmp -s tests/insights/browser/package.json $(DASHBOARD_BROWSER)/package.json || [ ! -d $(DASHBOARD_BROWSER)/node_modules/playwright-core ]; then \
		mkdir -p $(DASHBOARD_BROWSER) && cp tests/insights/browser/package.json $(DASHBOARD_BROWSER)/ && \
		npm install --silent --no-audit --no-fund --no-package-lock --prefix $(DASHBOARD_BROWSER) >/dev/null; \
	fi
	@$(BIN)/python -m crm_graph.dashboard fetch $(DASHBOARD_LIB) >/dev/null

# LibreOffice and the rest of OFFICE_PACKAGES, from Debian, when one of them is missing (~300 MB, ~30 s).
office-tools:
	@if ! dpkg-query -W -f='$${Status}\n' $(OFFICE_PACKAGES) 2>/dev/null | grep -qv '^install ok installed$$' && \
		[ "$$(dpkg-query -W -f='$${Status}\n' $(OFFICE_PACKAGES) 2>/dev/null | wc -l)" -eq "$(words $(OFFICE_PACKAGES))" ]; then :; else \
		echo "LibreOffice or its fonts missing: installing $(OFFICE_PACKAGES)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(OFFICE_PACKAGES) >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(OFFICE_PACKAGES) >/dev/null; fi; \
	fi

finance-tools:
	@if [ ! -x $(COUNTERPARTS)/tryton/bin/trytond ]; then \
		echo "Tryton missing: installing it into $(COUNTERPARTS)/tryton"; \
		$(PYTHON) -m venv $(COUNTERPARTS)/tryton && $(COUNTERPARTS)/tryton/bin/pip install --quiet $(TRYTON_PACKAGES); \
	fi
	@if [ ! -x $(COUNTERPARTS)/fava/bin/fava ] || [ ! -x $(COUNTERPARTS)/fava/bin/bean-check ]; then \
		echo "fava missing: installing it into $(COUNTERPARTS)/fava"; \
		$(PYTHON) -m venv $(COUNTERPARTS)/fava && $(COUNTERPARTS)/fava/bin/pip install --quiet $(FAVA_PACKAGES); \
	fi
	@if ! command -v hledger-web >/dev/null || ! command -v hledger >/dev/null; then \
		echo "hledger missing: installing hledger and hledger-web"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hledger-web hledger >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends hledger-web hledger >/dev/null; fi; \
	fi
	@mkdir -p $(COUNTERPARTS)/hledger/bin && ln -sf "$$(command -v hledger)" $(COUNTERPARTS)/hledger/bin/hledger && \
		ln -sf "$$(command -v hledger-web)" $(COUNTERPARTS)/hledger/bin/hledger-web

# exim4 and dovecot (real bounces, the bounce and support mailboxes) and Request Tracker (the helpdesk).
include plugins/crm_marketing/mail-tools.mk
include plugins/crm_service/rt-tools.mk

## make schema: regenerate schema.graphql (the public contract) after changing the API
schema: $(STAMP)
	$(BIN)/crm-graph export-schema > schema.graphql
	$(BIN)/python -m crm_graph.graphql.reference > docs/api.md

## make bench: every benchmark scenario on SQLite and a throwaway PostgreSQL, against plain code in
## the same run; writes bench/results/latest.json and bench/RESULTS.md (bench/run.py says what each is).
bench: $(STAMP) postgres-binaries node-tools
	@# The peer of scenario j (PostGraphile, from the npm registry), beside the other Node tools.
	@if ! cmp -s bench/peer/package.json $(BENCH_PEER)/package.json || [ ! -x $(BENCH_PEER)/node_modules/.bin/postgraphile ]; then \
		mkdir -p $(BENCH_PEER) && cp bench/peer/package.json $(BENCH_PEER)/ && \
		npm install --silent --no-audit --no-fund --no-package-lock --prefix $(BENCH_PEER) >/dev/null; \
	fi
	@if ! command -v wrk >/dev/null; then echo "wrk missing: installing it (Debian package wrk)"; \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; fi; \
	fi
	$(BIN)/python bench/hotspots.py
	$(BIN)/python bench/run.py

## make bench-data: benchmark volumes (100k customers, 1M orders, 200k opportunities, 100k tickets)
## with bulk inserts into the database of CRM_DATABASE_URL (an empty one; by default var/bench.sqlite3).
bench-data: $(STAMP)
	CRM_DATABASE_URL=$${CRM_DATABASE_URL:-sqlite+aiosqlite:///$(CURDIR)/var/bench.sqlite3} $(BIN)/crm-graph bench generate

clean:
	rm -rf $(VENV) var *.egg-info
