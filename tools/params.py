"""Edit or check params.yaml: `set` keeps its comments and validates before replacing the file.

    python tools/params.py set key=value [key=value ...] [--file params.yaml]
    python tools/params.py check [--file params.yaml]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dlgmm_core.errors import run_stage  # noqa: E402
from dlgmm_core.params.editor import set_params  # noqa: E402
from dlgmm_core.params.load import load_params  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/params.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    setter = sub.add_parser("set", help="set key=value pairs in params.yaml",
                            description="Set key=value pairs in params.yaml (dotted keys, YAML values), keeping its "
                                        "comments; the result is validated before the file is replaced.")
    setter.add_argument("assignments", nargs="+", metavar="key=value",
                        help="a dotted key and a YAML value, e.g. train.lr=3e-4; quote or bracket a key segment that "
                             "holds a dot, and quote the whole argument for the shell: "
                             "'data.omniglot.known_sha256.\"images_background_small1.zip\"=<sha256>' or "
                             "'data.omniglot.known_sha256[images_background_small1.zip]=<sha256>'")
    setter.add_argument("--file", default="params.yaml")
    checker = sub.add_parser("check", help="validate params.yaml")
    checker.add_argument("--file", default="params.yaml")
    args = parser.parse_args(argv)
    if args.command == "set":
        set_params(args.file, args.assignments)
    else:
        load_params(args.file)
    print(f"{args.file}: ok")


if __name__ == "__main__":
    run_stage(main)
