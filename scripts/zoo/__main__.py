"""`python scripts/zoo` (or `python -m zoo` from scripts/): run the CLI (zoo/cli.py)."""

import os
import subprocess
import sys

if __name__ == "__main__":
    HERE = os.path.dirname(os.path.abspath(__file__))
    # Before anything else: pin the string hash seed (scripted modules list their
    # __constants__ in set order).
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = dict(os.environ, PYTHONHASHSEED="0")
        sys.exit(subprocess.call([sys.executable, HERE, *sys.argv[1:]], env=env))
    # Import from scripts/ as the package `zoo`, not from this folder, so that TorchScript's
    # qualified names are __torch__.zoo.<file>.X whichever way this is invoked.
    sys.path[0] = os.path.dirname(HERE)
    from zoo.cli import main

    sys.exit(main())
