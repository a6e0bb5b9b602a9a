#!/usr/bin/env bash
# Idempotent set-up of everything speechrl needs on a fresh Debian machine (run as root):
#   apt packages (espeak-ng, sox, libsndfile, wordnet-base) and a venv at .venv/ with pinned deps.
# A second call reuses what is installed (stamp files keyed on the requirement files' hash).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
APT_PKGS="espeak-ng sox libsndfile1 wordnet-base wordnet-sense-index slurm-wlm slurmctld slurmd slurm-client munge"  # slurm + munge: the SLURM tests start a single-node cluster

need_apt=0
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || need_apt=1; done
if [ "$need_apt" = 1 ]; then
  echo "[setup] installing apt packages: $APT_PKGS"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $APT_PKGS >/dev/null
fi

pip_install() {  # quiet pip; drops warnings about unreadable local index paths, keeps pip's exit status
  .venv/bin/pip install -q "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

stamp=".venv/.speechrl-$(cat envs/constraints.txt envs/requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "[setup] creating .venv with pinned dependencies (first run: a few minutes)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  pip_install --upgrade pip
  pip_install torch==2.13.0  # the CPU wheel; installed first so nothing pulls a CUDA build
  PIP_CONSTRAINT="$ROOT/envs/constraints.txt" pip_install -r envs/requirements.lock
  PIP_CONSTRAINT="$ROOT/envs/constraints.txt" pip_install --no-deps -e .
  .venv/bin/pip check
  rm -f .venv/.speechrl-*; touch "$stamp"
fi
# NLTK's METEOR needs WordNet: Debian ships it; copy into a project-local NLTK_DATA (no download).
.venv/bin/python -m speechrl.setup_nltk "$ROOT/.venv/nltk_data"
echo "[setup] ready: $(.venv/bin/python -c 'import torch,transformers;print("torch",torch.__version__,"transformers",transformers.__version__)')"
