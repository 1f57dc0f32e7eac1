#!/usr/bin/env bash
# Build, once, a Debian 13 ("trixie") root for the distribution tests (tests/distros).
#   usage: scripts/debian-root.sh xvfb|weston DEST
# xvfb: Debian 13 with Xvfb. weston: Debian 13 with weston and Xwayland and no Xvfb nor Xorg
# server, the stand-in for RHEL 10, which ships no Xvfb. Both have Debian's Python, PyQt5 and
# Mesa, and what ana-headless and its demo use; not ana-headless itself, which the tests bring.
# The downloaded packages stay in $ANA_VENDOR_CACHE/debian13-debs (one cache for both
# flavours), so that a rebuild downloads nothing it has. DEST is built as DEST.tmp and renamed
# when complete, with a marker file listing the versions it got: a build that was interrupted
# starts again, and a complete one is not redone.
set -euo pipefail

usage() {
  echo "usage: $0 xvfb|weston DEST" >&2
  exit 2
}
[ $# -eq 2 ] || usage
flavour=$1
dest=${2%/}
# What a user of a Qt / OpenGL script has: Python, PyQt5 with its QtOpenGL package (the demo's
# QOpenGLContext.versionFunctions() loads its PyQt5._QOpenGLFunctions_2_0), Mesa's software GL,
# glxinfo, xdpyinfo and xauth; ana-headless's click and sh (sh only stops an xpra server, but it
# is packaged: the root has all of ana-headless's requirements).
packages=(python3 python3-pyqt5 python3-pyqt5.qtopengl python3-click python3-sh
          libgl1-mesa-dri libglx-mesa0 mesa-utils x11-utils xauth util-linux)
case $flavour in
  xvfb) packages+=(xvfb) ;;
  weston) packages+=(weston xwayland) ;;
  *) usage ;;
esac
# Named in the marker with their versions: what the tests ran against.
shown=(python3 python3-pyqt5 python3-click)
[ "$flavour" = xvfb ] && shown+=(xvfb) || shown+=(weston xwayland)

MARKER=.ana-headless-root
if [ -f "$dest/$MARKER" ]; then
  echo "debian13-$flavour: already built in $dest"
  exit 0
fi
if [ -e "$dest" ]; then
  echo "debian-root: $dest exists but is not a complete root of ours (no $MARKER): not touched" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  # The root is a real Debian system (owners, device-less /dev) and the tests chroot into it.
  echo "debian-root: building a Debian root needs root" >&2
  exit 1
fi
if ! command -v mmdebstrap > /dev/null; then
  echo "debian-root: installing mmdebstrap" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap >&2
fi

cache=${ANA_VENDOR_CACHE:-$HOME/.cache/ana-headless-vendor}/debian13-debs
tmp=$dest.tmp
log=$dest.log
mkdir -p "$cache" "$(dirname "$dest")"
if [ -e "$tmp" ]; then
  # A build that was interrupted. Its mounts lived in the namespace below and went with it, but
  # rm must never cross into a file system mounted there all the same.
  if findmnt -rn -o TARGET | grep -q "^$(realpath "$tmp")/"; then
    echo "debian-root: something is mounted under $tmp: unmount it first" >&2
    exit 1
  fi
  rm -rf --one-file-system "$tmp"
fi

started=$(date +%s)
echo "debian13-$flavour: building a Debian 13 root in $dest (a few minutes; log: $log)..."
# A mount namespace of its own: the /proc, /sys and /dev that mmdebstrap mounts in the root
# cannot outlive it, even if it is killed. The root gets the mount point of the checkout that the
# tests bind there (tests/distros/inroot.py).
if ! unshare --mount --propagation private \
  mmdebstrap --variant=apt --mode=root --skip=essential/unlink \
    --include="$(IFS=,; echo "${packages[*]}")" \
    --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
    --setup-hook="sync-in $cache /var/cache/apt/archives/" \
    --customize-hook="sync-out /var/cache/apt/archives $cache" \
    --customize-hook='mkdir -p "$1"/opt/ana-headless' \
    trixie "$tmp" > "$log" 2>&1; then
  tail -30 "$log" >&2
  echo "debian-root: the build failed (log: $log); run it again to resume from its downloads" >&2
  exit 1
fi
if [ "$flavour" = weston ] && compgen -G "$tmp/usr/bin/X[vo]*" > /dev/null; then
  echo "debian-root: an X server other than Xwayland came in: $(ls "$tmp"/usr/bin/X[vo]*)" >&2
  exit 1
fi
chroot "$tmp" dpkg-query -W -f '${Package} ${Version}\n' "${shown[@]}" > "$tmp/$MARKER"
mv "$tmp" "$dest"
echo "debian13-$flavour: built in $dest in $(($(date +%s) - started)) s, $(du -sh "$dest" | cut -f1):" \
  $(tr '\n' ' ' < "$dest/$MARKER")
