#!/usr/bin/env python3
"""Thin shim: the dump tool lives in codec.dump (installed as the console script codec-dump)."""

import sys

from codec.dump import main

if __name__ == "__main__":
    sys.exit(main())
