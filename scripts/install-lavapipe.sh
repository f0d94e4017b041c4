#!/usr/bin/env bash
# Installs a CPU Vulkan driver that Dawn accepts (Mesa >= 25 lavapipe from Debian
# bookworm-backports), so the webgpu backend runs on a machine without a GPU (slowly).
# Debian 12's own mesa-vulkan-drivers 22.3 is rejected by Dawn (PLATFORM.md).
#
# Needs root and apt. The backports entry reuses the mirror URI and signing key of the
# machine's existing Debian source, so no host name is written here.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then echo "install-lavapipe: needs root (apt-get)"; exit 1; fi
if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  deb822=/etc/apt/sources.list.d/debian.sources
  if [ -f "$deb822" ]; then
    uri=$(awk '/^URIs:/ {print $2; exit}' "$deb822")
    key=$(awk '/^Signed-By:/ {print $2; exit}' "$deb822")
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: %s\n' "$uri" "$key" \
      > /etc/apt/sources.list.d/imagerate-backports.sources
  elif [ -f /etc/apt/sources.list ]; then
    line=$(grep -m1 -E '^deb .* bookworm ' /etc/apt/sources.list)
    echo "${line/ bookworm / bookworm-backports }" > /etc/apt/sources.list.d/imagerate-backports.list
  else
    echo "install-lavapipe: no Debian apt source found to derive bookworm-backports from"; exit 1
  fi
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
dpkg-query -W -f='installed ${Package} ${Version}\n' mesa-vulkan-drivers libvulkan1
