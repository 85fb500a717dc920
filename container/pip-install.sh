#!/bin/sh
# pip install inside an image build, with the building host's pip settings when the build passed them
# as secrets (Makefile: PIP_SECRETS): PIP_* variables (pipenv, KEY=VALUE lines), pip.conf (pipconf) and
# the CA bundle (hostca, at a path of its own). A build without them installs from PyPI unchanged.
set -e
if [ -f /run/secrets/pipenv ]; then
  while IFS= read -r line; do
    case "$line" in PIP_*=*) export "$line" ;; esac
  done < /run/secrets/pipenv
fi
if [ -f /run/secrets/pipconf ]; then export PIP_CONFIG_FILE=/run/secrets/pipconf; fi
if [ -f /run/secrets/hostca ]; then export PIP_CERT=/run/secrets/hostca; fi
exec pip install --quiet "$@"
