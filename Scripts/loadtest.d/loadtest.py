"""Entry point of Scripts/loadtest: python3 Scripts/loadtest.d/loadtest.py SCENARIO [options]."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from cc_loadtest.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
