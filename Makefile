# pgtwin: `make demo` runs the main job on a throwaway sample source,
# `make test` runs every test. Both install what is missing on Debian 12.

GO      ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN     := bin/pgtwin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
DEBS    := postgresql postgresql-contrib locales btrfs-progs xfsprogs e2fsprogs util-linux passwd systemd nftables iproute2
# The demo lives outside the checkout: postgres runs as its own user and must
# be able to reach it, which a checkout under /root would not allow.
DEMO_DIR ?= /tmp/pgtwin-demo
# Test time limit per package; CI allows 90 minutes for the whole run.
TEST_TIMEOUT ?= 40m

.PHONY: all build deps test vet fmt-check demo demo-stop bench clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pgtwin

# Installs the Debian packages the tests and the demo need, only when missing.
deps:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root, or apt-get install them)"; exit 1; fi; \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Tests need root (loop devices, mounts, useradd); packages run two at a time
# because each starts its own PostgreSQL clusters on a 2-core machine.
test: deps fmt-check vet
	$(GO) test -count=1 -p 2 -timeout $(TEST_TIMEOUT) ./...

# Benchmarks: see README for what each prints and the figures measured.
bench: deps
	PGTWIN_BENCH=1 $(GO) test -count=1 -p 1 -run 'TestBench' -v -timeout 180m ./engine/ ./engine/proxy/ ./e2e/ ./sync/
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./anonymize/

demo: deps build
	$(GO) run ./e2e/demo --bin $(BIN) --dir $(DEMO_DIR)

demo-stop:
	$(GO) run ./e2e/demo --dir $(DEMO_DIR) --stop

clean:
	rm -rf bin
