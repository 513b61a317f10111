#!/usr/bin/env bash
# Makes sure the rehearsal's tools are installed: podman and runc (build and run the images),
# mmdebstrap (the stand-in base image's Debian rootfs) and chromium (the runner's browser step).
# Debian's packages are used. Nothing is configured system-wide: local_ecs/podman.py keeps podman's
# configuration and storage in .rehearsal/containers/ of the work tree.
set -euo pipefail
missing=()
for tool in podman runc mmdebstrap chromium; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
echo "Installing Debian packages for the rehearsal: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
