"""`python -m facegan` (also what `torchrun -m facegan` runs)."""

import sys

from facegan.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
