# sensorhub — the commands a developer needs. `make` lists them.
#
# The machines this project is built on run an older Go with GOTOOLCHAIN=local;
# go.mod needs the Go 1.27 language, and every build here uses the 1.27.3
# patch release, the security floor, which the go command fetches from the
# module proxy when GOTOOLCHAIN names it. go.mod's go line stays at 1.27 so
# that programs importing sensorhub choose their own patch release.
export GOTOOLCHAIN := go1.27.3

BIN       := bin/sensorhub
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

# Local development defaults, the same as the service's own (docs/configuration.md).
DB_HOST   ?= 127.0.0.1
DB_PORT   ?= 5432
DB_USER   ?= service
DB_NAME   ?= sensorhub
PG_SUPERUSER ?= postgres

# make test against docker-compose.yaml (make dev-up):
#   DB_PORT=54321 DB_PASSWORD=service REDIS_PORT=63791 make test
ifdef DB_PASSWORD
export SENSORHUB_TEST_DATABASE_URL ?= postgres://$(DB_USER):$(DB_PASSWORD)@$(DB_HOST):$(DB_PORT)/$(DB_NAME)?sslmode=disable
endif
ifdef REDIS_PORT
export SENSORHUB_TEST_REDIS_URL ?= redis://127.0.0.1:$(REDIS_PORT)/0
endif

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  %-17s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build bin/sensorhub
	CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/sensorhub

.PHONY: run
run: build dev-db ## create the local database if missing, migrate it, run the service on :5005
	$(BIN) migrate up
	$(BIN) run

.PHONY: migrate
migrate: build ## apply all pending migrations
	$(BIN) migrate up

# dev-db makes a fresh local Postgres (trust auth, no `service` role, no
# `sensorhub` database) ready for `make run`. It does nothing when DB_USER can
# already connect to DB_NAME, e.g. on the Postgres of docker-compose.yaml.
.PHONY: dev-db
dev-db: ## create the role DB_USER and database DB_NAME on a local Postgres if missing
	@if PGPASSWORD="$$DB_PASSWORD" psql -w "host=$(DB_HOST) port=$(DB_PORT) user=$(DB_USER) dbname=$(DB_NAME) connect_timeout=5" -qAtc 'SELECT 1' >/dev/null 2>&1; then \
		echo "dev-db: $(DB_USER)@$(DB_HOST):$(DB_PORT)/$(DB_NAME) is ready"; \
	else \
		echo "dev-db: creating role $(DB_USER) and database $(DB_NAME) as $(PG_SUPERUSER)"; \
		printf '%s\n' \
			"SELECT format('CREATE ROLE %I LOGIN', '$(DB_USER)') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$(DB_USER)') \gexec" \
			"SELECT format('CREATE DATABASE %I OWNER %I', '$(DB_NAME)', '$(DB_USER)') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$(DB_NAME)') \gexec" \
		| psql "host=$(DB_HOST) port=$(DB_PORT) user=$(PG_SUPERUSER) dbname=postgres connect_timeout=5" -v ON_ERROR_STOP=1 -q; \
	fi

.PHONY: test
test: lint test-deps ## make lint, then every test with -race against the local Postgres and Redis (fails if either is down)
	go test -race -count=1 -timeout 15m ./...

# The status page's browser test (cmd/sensorhub/api_test.go) runs Debian's
# headless chromium. Installing it needs root (apt-get); when it is there
# already, this does nothing.
.PHONY: test-deps
test-deps: ## install what the tests need besides Go, Postgres and Redis: Debian's chromium (as root, when missing)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The fault suite (docs/guarantees.md): the real binary against its own
# Redis and PostgreSQL servers, killed, restarted and partitioned, with every
# reading checked. make test runs it too; these run it alone, and larger.
# The tests build the binary themselves, with -tags faulthooks for its
# SIGKILL hooks (cmd/sensorhub/faulthooks.go); make build leaves them out.
FAULT_TESTS := TestFault|TestBadInput|TestCheck|TestProducer
FAULT_PKGS  := ./cmd/sensorhub/ ./sensorhub/redis/ ./internal/checker/

.PHONY: test-faults
test-faults: ## the fault suite alone, at the size make test runs it
	go test -race -count=1 -timeout 15m -run '$(FAULT_TESTS)' -v $(FAULT_PKGS)

.PHONY: test-faults-soak
test-faults-soak: ## the fault suite with SOAK (default 10) times the readings, for manual runs
	SENSORHUB_SOAK=$(or $(SOAK),10) go test -count=1 -timeout 3h -run '$(FAULT_TESTS)' -v $(FAULT_PKGS)

.PHONY: docs-check
docs-check: ## check every command, variable and link that README.md and docs/ show (make test runs it too)
	go test -count=1 ./internal/doccheck/

.PHONY: test-short
test-short: ## unit tests only: no Postgres, no Redis
	go test -short -count=1 ./...

.PHONY: fuzz
fuzz: ## fuzz the message decoder for FUZZTIME (default 60s)
	go test -run '^$$' -fuzz FuzzDecode -fuzztime $(or $(FUZZTIME),60s) ./sensorhub/

# Linters run at pinned versions from the module proxy; nothing to install.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0

# govulncheck's own database, vuln.go.dev, is out of reach here and in CI; the
# module proxy is not. So the database comes from the module golang.org/x/vulndb
# at VULNDB: its cmd/indexdb turns the module's OSV files (data/osv) into the
# layout `-db file://` reads, once per version, into the git-ignored .cache/.
# The build goes to a temporary directory first, so an interrupted or
# concurrent one never leaves half a database behind. To bump it, set VULNDB to
# what `go list -m -f '{{.Version}}' golang.org/x/vulndb@latest` prints.
VULNDB     := v0.0.0-20261105234957-e22db6528018
VULNDB_DIR := .cache/vulndb/$(VULNDB)

$(VULNDB_DIR)/index/modules.json:
	@mkdir -p $(dir $(VULNDB_DIR))
	go mod download golang.org/x/vulndb@$(VULNDB)
	tmp=$$(mktemp -d $(VULNDB_DIR).XXXXXX) && \
	go run golang.org/x/vulndb/cmd/indexdb@$(VULNDB) -out "$$tmp" \
		-vulns "$$(go list -m -f '{{.Dir}}' golang.org/x/vulndb@$(VULNDB))/data/osv" && \
	{ mv -T "$$tmp" $(VULNDB_DIR) 2>/dev/null || rm -rf "$$tmp"; }

.PHONY: lint
lint: ## gofmt, go vet and staticcheck (also on the faulthooks build), govulncheck (make vuln)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: files above need formatting'; exit 1; }
	go vet ./...
	go vet -tags faulthooks ./cmd/sensorhub/
	go run $(STATICCHECK) ./...
	go run $(STATICCHECK) -tags faulthooks ./cmd/sensorhub/
	@$(MAKE) --no-print-directory vuln

.PHONY: vuln
vuln: $(VULNDB_DIR)/index/modules.json ## govulncheck ./... against a database built offline from golang.org/x/vulndb@VULNDB
	go run $(GOVULNCHECK) -db file://$(CURDIR)/$(VULNDB_DIR) ./...

.PHONY: dev-up
dev-up: ## start Postgres (:54321) and Redis (:63791) of docker-compose.yaml
	docker compose up -d postgres redis

.PHONY: dev-down
dev-down: ## stop the docker-compose.yaml services
	docker compose down

.PHONY: docker-build
docker-build: ## build the image sensorhub:$(VERSION)
	docker build --build-arg VERSION=$(VERSION) -t sensorhub:$(VERSION) .

.PHONY: clean
clean: ## remove build output
	rm -rf bin

.PHONY: bench
bench: build ## measure throughput, latency, RSS and CPU against a minimal loop (N=1000000, RATE=10000, DURATION=30s, PRELOAD=20000000, API_PRELOAD=10000000, ROUNDS=3)
	go run ./cmd/bench -binary $(BIN) -n $(or $(N),1000000) -live-rate $(or $(RATE),10000) -live-duration $(or $(DURATION),30s) \
		-growth-preload $(or $(PRELOAD),20000000) -api-preload $(or $(API_PRELOAD),10000000) -rounds $(or $(ROUNDS),3)
