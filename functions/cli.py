"""`cmbcluster`: the console command.

    cmbcluster up            run the platform locally (what `make up` does)
    cmbcluster check-config  validate the environment's configuration and exit
"""

from __future__ import annotations

import argparse
import sys

from .core.config import ConfigError, ensure_secret_key, load_settings
from .core.logs import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cmbcluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="run the platform locally")
    sub.add_parser("check-config", help="validate the configuration and exit")
    args = parser.parse_args(argv)

    try:
        settings = ensure_secret_key(load_settings())
    except ConfigError as err:
        print(f"cmbcluster: configuration error: {err}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print("configuration ok")
        return 0
    configure_logging()
    from .local import serve  # imports the local-only parts only when serving

    serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
