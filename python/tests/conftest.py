"""Every test imports nnbackprop from this checkout's python/ folder (which finds
build/lib/libnnbackprop.so), not from an installed copy."""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
