#!/usr/bin/env bash
# Install the Debian packages ana-headless, its demo and its tests need, if any is missing.
#   usage: scripts/system-deps.sh [runtime|test]
# As root it runs apt-get; otherwise it uses sudo when there is one, or says what to install.
set -euo pipefail

RUNTIME=(xvfb xauth x11-utils mesa-utils libgl1-mesa-dri libegl1 libgl1 util-linux
         python3 python3-venv
         # what the PyQt5 wheel's xcb platform plugin links against
         libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
         libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-xkb1
         libxcb-cursor0 libx11-xcb1 libfontconfig1 libdbus-1-3 libglib2.0-0)
# Tests also run weston + Xwayland (the server of hosts without Xvfb), xpra, git (the
# fresh-clone test) and the clients xvfb-run is compared with.
TEST=(weston xwayland xpra git procps)

wanted=("${RUNTIME[@]}")
[ "${1:-runtime}" = test ] && wanted+=("${TEST[@]}")

missing=()
for package in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' \
    || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  echo "ana-headless: please install these Debian packages (as root): ${missing[*]}" >&2
  exit 1
fi
echo "ana-headless: installing Debian packages: ${missing[*]}" >&2
"${SUDO[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >&2
