# Two entry points: `make run` (set up, then run the main job) and `make test` (set up, then test).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := xvfb xdotool imagemagick fonts-dejavu-core ffmpeg chromium \
  gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
DEMO := out/demo.mp4
SOURCE ?= $(DEMO)

.PHONY: setup system-deps run test lint bench clean

REQUIREMENTS := requirements.txt requirements-tf.txt requirements-lite.txt requirements-export.txt requirements-serve.txt requirements-ray.txt requirements-test.txt

$(BIN)/.installed: $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.installed

# X server, window tools, fonts for Qt, ffmpeg for the window and video tests, chromium for the page tests
# (Debian, as root)
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(DEMO): | setup
	$(BIN)/python -m livemask.apps.demo $(DEMO)

# the main job: headless run over a clip (a demo clip made from scikit-image's photos unless SOURCE=...)
run: setup $(if $(filter $(DEMO),$(SOURCE)),$(DEMO))
	$(BIN)/livemask run --source $(SOURCE) --headless --output out/run.mp4 --events out/run.jsonl

test: setup system-deps
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check livemask face_detector tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_classifier.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_explain.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_batch.py
	$(BIN)/python benchmarks/bench_alerts.py

clean:
	rm -rf $(VENV) out .pytest_cache
