#!/usr/bin/env bash
# Prepares a fresh Debian/Ubuntu machine to run TorVM and its tests (as root):
# Debian packages, npm dependencies, the torvm-qemu system user, the torvm group and the VM image.
# Caches live outside the repository. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "[setup] $*" >&2; }

if [ "$(id -u)" != 0 ]; then echo "setup.sh: run as root (sudo $0)" >&2; exit 2; fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then echo "setup.sh: Node.js 20 or later is required (found: $(node --version 2>/dev/null || echo none))" >&2; exit 2; fi

say "installing Debian packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
grep -v -e '^#' -e '^$' .ci/apt-packages.txt | xargs apt-get install -y -qq --no-install-recommends >/dev/null

say "installing npm dependencies"
npm ci --no-audit --no-fund --loglevel=error

say "building the web GUI (packages/gui/dist, served by the daemon from memory)"
npm run build -w @torvm/gui --silent >/dev/null

say "creating the torvm-qemu system user (QEMU runs as it) and the torvm group (may use the API socket)"
getent group torvm-qemu >/dev/null || groupadd --system torvm-qemu
id -u torvm-qemu >/dev/null 2>&1 || useradd --system --gid torvm-qemu --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin torvm-qemu
getent group torvm >/dev/null || groupadd --system torvm

: "${TORVM_IMAGE_DIR:=/var/cache/torvm/image}"
: "${TORVM_IMAGE_DIR_AARCH64:=/var/cache/torvm/image-aarch64}"
say "building the VM images into $TORVM_IMAGE_DIR and $TORVM_IMAGE_DIR_AARCH64 (package cache /var/cache/torvm-image)"
node --import tsx image/src/main.ts --arch x86_64 --out "$TORVM_IMAGE_DIR" --cache /var/cache/torvm-image
node --import tsx image/src/main.ts --arch aarch64 --out "$TORVM_IMAGE_DIR_AARCH64" --cache /var/cache/torvm-image
say "done"
