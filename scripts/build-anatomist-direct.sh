#!/usr/bin/env bash
# Build pyaims' and pyanatomist's sip bindings (the DIRECT Anatomist: libanatomist, Qt's OpenGL
# and the GL library loaded into the Python process itself) on top of the socket build that
# `make anatomist` leaves in $ANA_ROOT/build.
#
# Only the bindings are compiled: a second brainvisa-cmake tree ($ANA_ROOT/build-direct) is
# configured with the same components plus anatomist-gpl, and its C++ libraries are links to
# the socket build's, so that the `<target>/fast` make targets compile the sip modules and their
# two helper libraries (libpyaims, libpyanatomistexports) and nothing else.
#
# Every step leaves a marker file and is skipped when it is there: run it again after a failure
# or an interruption and it goes on where it stopped. Each step's output is in
# $ANA_ROOT/build-direct/<step>.log; this script's own output names each step with its time.
#
# Using the bindings (Debian's /usr/bin/python3, a display):
#   PYTHONPATH=$ANA_ROOT/build-direct/python (soma, soma.aims, anatomist, the sip modules)
#   LD_LIBRARY_PATH=$ANA_ROOT/build-direct/lib:$ANA_ROOT/build/lib
#   BRAINVISA_SHARE=$ANA_ROOT/build/share
#
# Env: ANA_ROOT (the socket build's root; default $HOME/.cache/ana-headless-vendor/anatomist),
#      VENDOR_DIR (the vendored sources; default ../shared/vendor beside this checkout),
#      JOBS (default 2), OPT (default -O0: the sip-generated code is large and only needs to run
#      tests), STOP_AFTER=<step> (stop after that step, e.g. codegen before the socket build ends).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ANA_ROOT="${ANA_ROOT:-$HOME/.cache/ana-headless-vendor/anatomist}"
VENDOR_DIR="${VENDOR_DIR:-$here/../../shared/vendor}"
JOBS="${JOBS:-2}"
OPT="${OPT:--O0}"
SRC="$ANA_ROOT/src"                  # the socket build's sources (read only here)
SRCD="$ANA_ROOT/src-direct"          # anatomist-gpl's C++ and sip sources
BVC="$ANA_ROOT/bvcmake/share/brainvisa-cmake-6.0/cmake"
B="$ANA_ROOT/build"                  # the socket build (read only here)
BD="$ANA_ROOT/build-direct"
PYTHON=/usr/bin/python3              # the client Python: Debian's, with apt's PyQt5
# Everything this script starts inherits the lowest priority: the machines it runs on are shared.
renice -n 19 -p $$ > /dev/null
mkdir -p "$BD"

current=""
on_exit() {
  local rc=$? log="$BD/${current:-setup}.log"
  [ $rc -eq 0 ] && return
  echo "FAILED (rc=$rc) in step: ${current:-setup}$([ -f "$log" ] && echo "; its log: $log")" >&2
}
trap on_exit EXIT

# step NAME: returns 1 (skip) when NAME is done, else announces it.
step() {
  current="$1"
  if [ -f "$BD/.done-$1" ]; then echo "=== $(date -u +%H:%M:%S) $1: done before"; return 1; fi
  echo "=== $(date -u +%H:%M:%S) $1"
  started=$(date +%s)
}
done_step() {
  echo "    $current: $(( $(date +%s) - started ))s"
  touch "$BD/.done-$current"
  current=""
}
# run LOGNAME COMMAND...: the command's output goes to $BD/LOGNAME.log, its tail to stderr on failure.
run() {
  local log="$BD/$1.log"; shift
  "$@" > "$log" 2>&1 || { local rc=$?; tail -40 "$log" >&2; return $rc; }
}
stop_after() { [ "${STOP_AFTER:-}" != "$1" ] || { echo "stopped after $1"; current=""; exit 0; }; }

# ---------------------------------------------------------------- apt packages
# sip 4.19 is what brainvisa-cmake drives with no change on Debian/Ubuntu (it reads PyQt5's .sip
# files from PyQt5/bindings, as pyqt5-dev installs them, and generates code for PyQt5.sip, the
# sip module of apt's python3-pyqt5).
if step apt; then
  missing=()
  # python3-pyqt5.qtopengl: the anatomist sip module imports PyQt5.QtOpenGL when it loads.
  for p in sip-dev python3-sip-dev pyqt5-dev python3-dev python3-numpy python3-pyqt5 \
           python3-pyqt5.qtopengl xvfb xauth; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "    installing: ${missing[*]}"
    run apt env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  done_step
fi

# ---------------------------------------------------------------- sources
current="the socket build's sources"
[ -f "$BVC/brainvisa-compilation.cmake" ] && [ -f "$SRC/COMMITS" ] \
  || { echo "no socket build's sources in $ANA_ROOT: run \`make anatomist\` first" >&2; exit 1; }
if step sources; then
  tarball="$VENDOR_DIR/src/brainvisa-pyanatomist-sip-src.tar.xz"
  [ -f "$tarball" ] || { echo "no $tarball" >&2; exit 1; }
  rm -rf "$SRCD"; mkdir -p "$SRCD"
  tar -xJf "$tarball" -C "$SRCD" --strip-components=1
  # The tarball holds anatomist-gpl's C++ side; its Python package is the socket build's copy.
  cp -r "$SRC/anatomist-gpl/pyanatomist/python" "$SRCD/anatomist-gpl/pyanatomist/"
  # anatomist-gpl asks for aims-gpl (not among the sources), yet nothing of pyanatomist uses
  # it: all that its sip files and libpyanatomist include or link is in aims-free and
  # anatomist-free.
  sed -i -e 's/BRAINVISA_FIND_PACKAGE( aims-gpl REQUIRED )/BRAINVISA_FIND_PACKAGE( aims-free REQUIRED )/' \
         -e 's/AIMS-GPL_USE_FILE/AIMS-FREE_USE_FILE/' -e 's/aims-gpl_FOUND/aims-free_FOUND/' \
         "$SRCD/anatomist-gpl/CMakeLists.txt"
  done_step
fi

# ---------------------------------------------------------------- configure
ver() {  # ver <project source dir> -> x.y.z from its project_info.cmake
  local f="$1/project_info.cmake"
  [ -f "$f" ] || f="$1/cmake/project_info.cmake"
  echo "$(sed -n 's/.*VERSION_MAJOR \([0-9]*\).*/\1/p' "$f").$(sed -n 's/.*VERSION_MINOR \([0-9]*\).*/\1/p' "$f").$(sed -n 's/.*VERSION_PATCH \([0-9]*\).*/\1/p' "$f")"
}
if step configure; then
  soma_base_ver=$("$PYTHON" -c "import sys; sys.path.insert(0, '$SRC/soma-base/python'); import soma.info as i; print('%s.%s.%s' % (i.version_major, i.version_minor, i.version_micro))")
  components="soma-base soma-io aims-free anatomist-free anatomist-gpl"
  {
    echo 'cmake_policy( SET CMP0074 NEW )'
    for v in BRAINVISA_PROJECTS _BRAINVISA_PROJECTS BRAINVISA_COMPONENTS _BRAINVISA_COMPONENTS; do
      echo "set( $v $components CACHE STRING \"\" FORCE )"
    done
    for c in $components; do
      if [ "$c" = anatomist-gpl ]; then dir="$SRCD/$c"; else dir="$SRC/$c"; fi
      if [ "$c" = soma-base ]; then v=$soma_base_ver; else v=$(ver "$dir"); fi
      echo "set( BRAINVISA_SOURCES_$c \"$dir\" CACHE STRING \"\" FORCE )"
      echo "set( ${c}_DIR \"$BD/share/$c-${v%.*}/cmake\" CACHE STRING \"\" FORCE )"
      echo "set( ${c}_VERSION \"$v\" )"
    done
    echo 'set( PYTHON_INSTALL_DIRECTORY python )'
  } > "$BD/bv_maker.cmake"
  cat > "$BD/CMakeLists.txt" <<EOF
cmake_minimum_required( VERSION 3.20 )
set( CMAKE_PREFIX_PATH "\${CMAKE_BINARY_DIR}" \${CMAKE_PREFIX_PATH} )
project( "Brainvisa" )
include( "$BVC/brainvisa-compilation.cmake" )
EOF
  # Two passes, as for the socket build: brainvisa-cmake needs them in a multi-component tree.
  # The flags other than -O are the socket build's, so that both trees see the same headers alike.
  # SIP4MAKE_EXECUTABLE=sip: brainvisa-cmake's bv_sip4make wrapper needs a `python` command and
  # the toml module; with sip itself the sip rules run sip directly (its documented fallback).
  for pass in 1 2; do
    (cd "$BD" && run "configure$pass" cmake -Dbrainvisa-cmake_DIR="$BVC" \
      -DDESIRED_QT_VERSION=5 -DCMAKE_BUILD_TYPE=Release \
      "-DCMAKE_CXX_FLAGS_RELEASE=$OPT -DNDEBUG" "-DCMAKE_C_FLAGS_RELEASE=$OPT -DNDEBUG" \
      "-DCMAKE_Fortran_FLAGS_RELEASE=$OPT" \
      -DPYTHON_EXECUTABLE="$PYTHON" -DBUILD_ECAT=OFF -DBUILD_VIDAIO=OFF \
      -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache \
      -DSIP4MAKE_EXECUTABLE=/usr/bin/sip .)
  done
  for t in aimssip anatomistsip; do
    grep -q "^$t:" "$BD/Makefile" || { echo "configure made no $t target: see $BD/configure2.log" >&2; exit 1; }
  done
  done_step
fi
stop_after configure

# ---------------------------------------------------------------- headers, sip and Python files
# The copy targets put headers, the .sip files and the pure-Python packages into the tree; they
# go first, as in the socket build (they race with compilation under -j2 otherwise).
if step copy; then
  targets=$(cd "$BD" && make help | sed -n 's/^\.\.\. \(.*_target_[0-9]*\)$/\1/p' | tr '\n' ' ')
  # shellcheck disable=SC2086  # one word per target
  (cd "$BD" && run copy make -j"$JOBS" $targets run_uic)
  done_step
fi
stop_after copy

# ---------------------------------------------------------------- C++ code from the .sip files
# sip's rules, run alone: `<target>/fast` would compile too, and this step needs no socket build.
sip_parts() {  # sip_parts <module> <its build_files dir>: the generated .cpp files make knows
  sed -n "s|^\($2/sip$1part[0-9]*\.cpp\):.*|\1|p" "$BD/$2/CMakeFiles/$1.dir/build.make" | sort -u
}
for m in aimssip:build_files/aims-free/pyaims/src/sip \
         anatomistsip:build_files/anatomist-gpl/pyanatomist/src/sip; do
  module=${m%%:*} dir=${m#*:}
  if step "codegen-$module"; then
    # shellcheck disable=SC2046  # one word per file
    (cd "$BD" && run "codegen-$module" make -f "$dir/CMakeFiles/$module.dir/build.make" \
      $(sip_parts "$module" "$dir"))
    done_step
  fi
done
stop_after codegen

# ---------------------------------------------------------------- compile and link
# The C++ libraries are the socket build's: links to them stand where this tree would build its
# own, so that the bindings link against (and, through their RUNPATH, load) the same files.
link_socket_libs() {
  mkdir -p "$BD/lib"
  for f in "$B"/lib/lib*.so*; do
    [ -e "$BD/lib/${f##*/}" ] || ln -s "$f" "$BD/lib/${f##*/}"
  done
}
# build <target> <socket build marker>: compile and link <target> alone (`/fast`: none of the
# targets it depends on), once the socket build has made the libraries it links against. make
# keeps the objects it has finished, so an interrupted step resumes with the next one.
build() {
  if step "$1"; then
    [ -f "$B/.built-$2" ] \
      || { echo "the socket build has not made $2 yet ($B/.built-$2): run \`make anatomist\` first" >&2; exit 1; }
    link_socket_libs
    (cd "$BD" && run "$1" make -j"$JOBS" "$1/fast")
    done_step
  fi
}
build pyaims aimsdata
build aimssip aimsdata
build pyanatomistexports anatomist
build anatomistsip anatomist

# ---------------------------------------------------------------- check
# Not a marked step: it says, each time, whether the bindings load in the client Python.
current=check
echo "=== $(date -u +%H:%M:%S) check: import anatomist.direct.api in a virtual display"
run check env PYTHONPATH="$BD/python" LD_LIBRARY_PATH="$BD/lib:$B/lib" BRAINVISA_SHARE="$B/share" \
  xvfb-run -a "$PYTHON" -c 'import anatomist.direct.api as a; print(a)'
cat "$BD/check.log"
current=""
