#!/usr/bin/env bash
# On a GPU host (or in a GPU container: apptainer --nv, CDI), check what ana-headless says about
# the GPU and that it is reached for real. Run from the checkout; needs the launcher (a
# virtualenv's bin/ana-headless, or bin/ana-headless of the checkout) and glxinfo.
#
#   scripts/gpu-truth-check.sh [ANA_HEADLESS]
#
# 1. doctor: the GPU devices, each GLVND vendor library and whether it loads, the likely
#    cause of a software fallback;
# 2. --require-gpu: a run that needs a hardware renderer must get one (else it ends with 125
#    and the cause, which is what this check is for: it says what the host lacks);
# 3. the version and profile the child is told (--require-gl 3.3 for Anatomist's shaders).
# Exit status: 0 when a hardware renderer was reached, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
ANA="${1:-bin/ana-headless}"

echo "== doctor"
"$ANA" doctor
echo
echo "== a run that needs a hardware renderer (--require-gpu), with OpenGL 3.3 (--require-gl)"
"$ANA" exec --require-gpu --require-gl 3.3 -v sh -c \
  'echo "mode=$ANA_HEADLESS_MODE renderer=$ANA_HEADLESS_RENDERER gl=$ANA_HEADLESS_GL_VERSION"; glxinfo -B | grep -E "renderer|version string"'
status=$?
echo
if [ "$status" -eq 0 ]; then
  echo "hardware renderer reached"
  exit 0
fi
echo "no hardware renderer reached (status $status): see doctor's GPU section above"
exit 1
