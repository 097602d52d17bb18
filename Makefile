# Thin wrapper: `make demo` and `make test` do everything on a fresh Debian machine
# (install missing packages when root, configure, build, run). The real build is CMake.
JOBS      ?= $(shell nproc 2>/dev/null || echo 2)
BUILD     ?= build
TESTBUILD ?= build-test
DEMO_OUT  ?= demo-out

DEB_PKGS := cmake make gcc g++ pkg-config zlib1g-dev libhdf5-dev hdf5-tools libgsl-dev \
            libcriterion-dev gnuplot-nox libopenmpi-dev openmpi-bin

.PHONY: all deps build build-test demo test bench clean fuzz readme-figures fidelity

all: build

deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "orchsim: installing Debian packages:$$missing"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "orchsim: missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

$(BUILD)/CMakeCache.txt: | deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

build-test: deps
	cmake -S . -B $(TESTBUILD) -DCMAKE_BUILD_TYPE=Debug -DORCHSIM_WERROR=ON -DORCHSIM_SANITIZE=ON
	cmake --build $(TESTBUILD) -j $(JOBS)

demo: build
	./cli/demo.sh $(BUILD)/orchsim $(DEMO_OUT)

test: build-test
	cd $(TESTBUILD) && ctest --output-on-failure -j $(JOBS)

# The small PNGs README.md shows: the demo's figures at 900x600.
readme-figures: build
	rm -rf $(DEMO_OUT)
	ORCHSIM_PLOT_SIZE=900x600 ./cli/demo.sh $(BUILD)/orchsim $(DEMO_OUT)
	mkdir -p plots/readme
	cp $(DEMO_OUT)/plots/*.png plots/readme/
	$(BUILD)/orchsim fidelity -q --no-plot -o $(FIDELITY_OUT) > /dev/null
	$(BUILD)/orchsim plot fidelity $(FIDELITY_OUT)/fidelity.csv -o $(FIDELITY_OUT) --size 900x600
	cp $(FIDELITY_OUT)/fidelity.png plots/readme/

# Every published training run in bench/fidelity/runs/ (every *.csv, each row with its own
# calibration where it names one) replayed with its configuration: predicted vs published
# tokens/s/GPU, MAPE overall, per runs file and by group, collectives vs nccl-tests, the figure.
FIDELITY_OUT ?= fidelity-out
fidelity: build
	$(BUILD)/orchsim fidelity --all -o $(FIDELITY_OUT) --json $(FIDELITY_OUT)/fidelity.json

bench: build
	@echo "benchmarks are in $(BUILD)/bench/; see bench/RESULTS.md for the commands"

# One folder for a bare GPU machine (no HDF5/GSL/Criterion; CUDA, cuBLAS and NCCL only as pip
# wheels): a static orchsim (HDF5, GSL, szip/libaec, zlib; no MPI), the GPU module (static
# cudart), a small trace and run.sh, at most 48 MiB (exec/bundle/pack.sh fails listing every
# file's size when over). On the GPU machine: gpu-bundle/run.sh [OUTDIR].
BUNDLE_BUILD ?= build-bundle
BUNDLE ?= gpu-bundle
.PHONY: gpu-bundle
gpu-bundle: deps
	cmake -S . -B $(BUNDLE_BUILD) -DCMAKE_BUILD_TYPE=Release -DORCHSIM_STATIC=ON -DORCHSIM_MPI=OFF -DORCHSIM_WERROR=OFF
	cmake --build $(BUNDLE_BUILD) -j $(JOBS) --target orchsim orchsim_gpu
	./exec/bundle/pack.sh $(BUNDLE_BUILD) $(BUNDLE)

clean:
	rm -rf $(BUILD) $(TESTBUILD) $(DEMO_OUT)
