"""python -m gatewayctl ..."""

from __future__ import annotations

import sys

from gatewayctl.cli import main

if __name__ == "__main__":
    sys.exit(main())
