#!/usr/bin/env bash
# Idempotent set-up of everything speechrl needs on a fresh Debian machine (run as root):
#   apt packages (espeak-ng, sox, libsndfile, wordnet-base) and a venv at .venv/ with pinned deps.
# A second call reuses what is installed (stamp files keyed on the requirement files' hash).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
APT_PKGS="espeak-ng sox libsndfile1 wordnet-base wordnet-sense-index"

need_apt=0
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || need_apt=1; done
if [ "$need_apt" = 1 ]; then
  echo "[setup] installing apt packages: $APT_PKGS"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
fi

stamp=".venv/.speechrl-$(cat envs/constraints.txt envs/requirements.txt pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv with pinned dependencies (first run: a few minutes)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  .venv/bin/pip install -q torch==2.13.0
  PIP_CONSTRAINT="$ROOT/envs/constraints.txt" .venv/bin/pip install -q -r envs/requirements.txt
  PIP_CONSTRAINT="$ROOT/envs/constraints.txt" .venv/bin/pip install -q --no-deps -e .
  .venv/bin/pip check
  rm -f .venv/.speechrl-*; touch "$stamp"
fi
# NLTK's METEOR needs WordNet: Debian ships it; copy into a project-local NLTK_DATA (no download).
.venv/bin/python -m speechrl.setup_nltk "$ROOT/.venv/nltk_data"
echo "[setup] ready: $(.venv/bin/python -c 'import torch,transformers;print("torch",torch.__version__,"transformers",transformers.__version__)')"
