# The two commands a new user needs: `make demo` and `make test`. Each installs what is missing
# (Debian packages, through deploy/install-deps.sh) and builds first.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: all deps build test demo bench sanitize clean

all: build

deps:
	@deploy/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# Unit tests and the fuzz run go in parallel; interop tests (network namespaces, root) run serially.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

demo: build
	@deploy/demo/tunnel_demo.sh $(BUILD)/apps/firebreak
	@deploy/demo/portal_demo.sh $(BUILD)/apps/firebreak
	@deploy/demo/connection_demo.sh $(BUILD)
	@deploy/demo/access_demo.sh $(BUILD)

# Speed: our tunnel beside wireguard-go in the same run, and seal+open beside raw OpenSSL; the
# goodbye's recovery beside the same restarts without it.
bench: build
	@$(BUILD)/tests/bench_seal_open
	@tests/bench/tunnel_bench.sh $(BUILD)/apps/firebreak
	@tests/bench/portal_bench.sh $(BUILD)/apps/firebreak
	@tests/bench/flood_bench.sh $(BUILD)/apps/firebreak
	@tests/bench/connection_bench.sh $(BUILD)
	@tests/bench/access_bench.sh $(BUILD)
	@$(BUILD)/tests/bench_goodbye

# The unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: deps
	@cmake -S . -B $(BUILD)-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DFIREBREAK_SANITIZE=ON > /dev/null
	@cmake --build $(BUILD)-asan -j $(JOBS)
	@cd $(BUILD)-asan && ctest --output-on-failure -L unit -j $(JOBS)

clean:
	rm -rf $(BUILD) $(BUILD)-asan
