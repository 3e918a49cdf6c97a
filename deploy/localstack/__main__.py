"""Entry point of ``python -m deploy.localstack``."""

import sys

from deploy.localstack.cli import main

if __name__ == "__main__":
    sys.exit(main())
