# Two entry points: `make run` (set up, then run the main job) and `make test` (set up, then test).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := xvfb xdotool imagemagick fonts-dejavu-core ffmpeg chromium mosquitto mosquitto-clients \
  gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
DEMO := out/demo.mp4
SOURCE ?= $(DEMO)

.PHONY: setup system-deps run test lint bench clean container-deps base-image image image-full image-test

REQUIREMENTS := requirements.txt requirements-float32.txt requirements-tf.txt requirements-lite.txt requirements-export.txt requirements-serve.txt requirements-ray.txt requirements-test.txt requirements-report.txt

$(BIN)/.installed: $(REQUIREMENTS) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

setup: $(BIN)/.installed

# X server, window tools, fonts for Qt, ffmpeg for the window and video tests, chromium for the page tests,
# mosquitto (a real MQTT broker) for the MQTT tests
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

# ---- container image (docs/container.md) --------------------------------------------------------------------
# Podman as root on a host whose kernel has hybrid cgroups: runc (crun refuses them), cgroupfs, and limits
# below the machine's hard ones (Podman's default open-files limit is above it). Docker works with the same
# Containerfile: docker build --target lean -t livemask:lean .
CONTAINER_APT := podman runc debootstrap
PODMAN ?= podman --runtime runc --cgroup-manager cgroupfs
IMAGE ?= livemask
BASE_IMAGE := debian:bookworm-slim
CONTAINER_LIMITS := --ulimit nofile=20000:20000 --ulimit nproc=4096:4096
ONNX_MODEL := models/mask_classifier.onnx
# the host's pip settings as build secrets (never stored in a layer), each only when it exists, so a
# machine without them builds unchanged: PIP_* variables (but the host paths PIP_CERT, PIP_FIND_LINKS,
# PIP_CONFIG_FILE), /etc/pip.conf, and the CA bundle at a path of its own
PIP_CA := $(firstword $(wildcard $(PIP_CERT) /etc/ssl/certs/ca-certificates.crt))
, := ,
PIP_SECRETS = --secret id=pipenv,src=build/pip.env $(if $(wildcard /etc/pip.conf),--secret id=pipconf$(,)src=/etc/pip.conf) \
  $(if $(PIP_CA),--secret id=hostca$(,)src=$(PIP_CA))
# --format docker keeps the HEALTHCHECK (the OCI format has none)
BUILD = $(PODMAN) build --format docker --network host $(CONTAINER_LIMITS) $(PIP_SECRETS) -f Containerfile

# podman, runc and debootstrap (Debian, as root)
container-deps:
	@$(MAKE) --no-print-directory system-deps APT_PACKAGES="$(CONTAINER_APT)"

# the base image: pulled, or when no registry can be reached, made with debootstrap and imported under its name
base-image: container-deps
	@$(PODMAN) image exists $(BASE_IMAGE) || $(PODMAN) pull -q $(BASE_IMAGE) 2>/dev/null || { \
	  echo "cannot pull $(BASE_IMAGE): building it with debootstrap"; \
	  rootfs=$$(mktemp -d) && debootstrap --variant=minbase bookworm $$rootfs http://deb.debian.org/debian >/dev/null \
	  && rm -rf $$rootfs/var/cache/apt/archives/*.deb $$rootfs/var/lib/apt/lists/* \
	  && tar -C $$rootfs -c . | $(PODMAN) import -q - $(BASE_IMAGE) >/dev/null; status=$$?; rm -rf $$rootfs; exit $$status; }

# the exported classifier the lean image runs (made from the .keras model when it is missing)
$(ONNX_MODEL):
	$(BIN)/livemask export --format onnx --output $@

build/pip.env: FORCE
	@mkdir -p build && env | grep -E '^PIP_[A-Z_]+=' | grep -vE '^PIP_(CERT|FIND_LINKS|CONFIG_FILE)=' > $@ || true

FORCE:

image: base-image $(ONNX_MODEL) build/pip.env
	$(BUILD) --target lean -t $(IMAGE):lean .

image-full: base-image $(ONNX_MODEL) build/pip.env
	$(BUILD) --target full -t $(IMAGE):full .

# the container checks (tests/test_container.py): builds the lean image, then runs it
image-test: setup image
	LIVEMASK_IMAGE=$(IMAGE):lean $(BIN)/python -m pytest -q -m container tests/test_container.py
