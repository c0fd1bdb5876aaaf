# faasd: `make run` serves the example stack, `make test` runs every test.
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
# Pure-Go user and DNS lookups: the daemon looks up a function's user on every cold start,
# and the C resolver's NSS libraries cost milliseconds the first time.
TAGS    := osusergo,netgo

# Packages with concurrency run under the race detector.
UNIT := ./config/... ./accounts/... ./cgroup/... ./systemd/... ./supervisor/... ./proxy/... ./queue/... ./api/... ./catalog/... ./scaler/... ./watchdog/... ./stack/... ./export/... ./webui/... ./cmd/... \
        ./client/... ./cliconfig/... ./deploy/... ./filewatch/... ./gate/... ./statedir/... ./templates/... ./internal/... \
        ./program/...

.PHONY: build examples deps test-deps run test lint unit fuzz-short fuzz e2e bench bench-cold clean

build:
	$(GO) build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/faasd ./cmd/faasd

examples:
	CGO_ENABLED=0 $(GO) build -o bin/hello-go ./examples/hello-go

# The Debian packages of the example stack and the templates (Ruby, Sinatra, Puma, mysql2,
# MariaDB, Node.js, Python); a no-op once they are installed. The tests also need the
# browser that drives the web UI, and systemd-analyze to check the unit `faasd install`
# writes.
deps:
	./scripts/install-deps.sh

test-deps:
	./scripts/install-deps.sh chromium systemd

# Root is needed once, for the packages (sudo make deps); faasd itself runs as whoever
# starts it: as you, every function and MariaDB run as you; as root, each function gets an
# account of its own and MariaDB runs as mysql.
run: deps build examples
	@echo "faasd: the example stack on http://127.0.0.1:8080 (frank-says, guestbook on MariaDB, hello-go, stronghash, wordcount)"
	@if [ "$$(id -u)" -eq 0 ]; then \
		echo "  as root: each function runs as an account of its own, MariaDB as mysql"; \
	else \
		echo "  as $$(id -un): every function and MariaDB run as you; no root needed now that the packages are installed"; \
	fi
	@echo "  API login: admin, password in .faasd/credentials/basic-auth-password (or: bin/faasd login -f faasd.toml)"
	@echo "  Web UI: http://127.0.0.1:8080/ui/ (log in as admin with that password)"
	@echo "  Ctrl-C stops everything"
	./bin/faasd serve -f faasd.toml

# The runtimes the tests start for real (Ruby, Node.js, Python, MariaDB, Chromium) come first.
test: test-deps lint unit fuzz-short e2e

lint:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 $(UNIT)

# Fuzz targets, as package:name. `make test` runs each for FUZZTIME; `make fuzz` for
# longer (FUZZTIME=1h to choose). A failing input is written to the package's
# testdata/fuzz/NAME/ and runs with the unit tests from then on: commit it with the fix.
FUZZ     := ./config:FuzzParse ./config:FuzzParseScalePolicy ./catalog:FuzzDeploymentSpec ./watchdog:FuzzHeaderEnv \
            ./proxy:FuzzRequestHead ./proxy:FuzzResponseHead
FUZZTIME ?= 10s

fuzz-short:
	@for t in $(FUZZ); do \
		echo "fuzz $${t##*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) $${t%%:*} || exit 1; \
	done

fuzz: FUZZTIME = 5m
fuzz: fuzz-short

# The e2e tests build the daemon with the race detector and drive it as a user would.
e2e:
	FAASD_E2E_RACE=1 $(GO) test -count=1 -timeout 20m ./e2e/...

bench: build examples
	SKIP_BUILD=1 ./bench/proxy.sh

bench-cold:
	$(GO) run ./bench/coldstart

clean:
	rm -rf bin .faasd
