"""Where the benchmarks find their data and write their results.

The data sets nobody here wrote (Spider, defog sql-eval) are not in the repository: they live in the shared
directory beside it, ``<repository root>/../shared``. ``$BENCH_SHARED_DIR`` moves the whole shared directory;
``$SPIDER_DIR`` and ``$SQL_EVAL_DIR`` move one data set. On the command line ``--shared-dir``,
``--spider-dir`` and ``--sql-eval-dir`` do the same and win over the environment.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = REPO_ROOT / "bench"
DATA_DIR = BENCH_DIR / "data"  # our own question sets, committed
RESULTS_DIR = BENCH_DIR / "results"
BENCHMARKS_MD = REPO_ROOT / "BENCHMARKS.md"

SHARED_DIR_ENV = "BENCH_SHARED_DIR"
# Each shared data set: its directory name under the shared directory, and the variable that moves it alone.
DATASET_ENV = {"spider": "SPIDER_DIR", "sql-eval": "SQL_EVAL_DIR"}


def shared_dir() -> Path:
    """``$BENCH_SHARED_DIR``, else ``<repository root>/../shared``."""
    configured = os.environ.get(SHARED_DIR_ENV)
    return _absolute(Path(configured)) if configured else REPO_ROOT.parent / "shared"


def dataset_dir(name: str, *, own_dir: Path | None = None, shared: Path | None = None) -> Path:
    """A shared data set's directory, first found of: `own_dir` (its flag), `shared`/<name> (--shared-dir),
    its own environment variable, then `shared_dir()`/<name>."""
    if name not in DATASET_ENV:
        raise ValueError(f"unknown data set {name!r}; known: {sorted(DATASET_ENV)}")
    if own_dir is not None:
        return _absolute(own_dir)
    if shared is not None:
        return _absolute(shared) / name
    configured = os.environ.get(DATASET_ENV[name])
    return _absolute(Path(configured)) if configured else shared_dir() / name


def _absolute(path: Path) -> Path:
    # Database URLs built from these paths are opened by Serve replicas, whose working directory differs.
    return path.expanduser().resolve()


def add_dataset_flags(parser: argparse.ArgumentParser, *names: str) -> None:
    """``--shared-dir`` and one ``--<name>-dir`` per data set the script reads."""
    parser.add_argument(
        "--shared-dir", type=Path, default=None,
        help=f"the shared data directory (default: ${SHARED_DIR_ENV}, else <repository root>/../shared)",
    )  # fmt: skip
    for name in names:
        parser.add_argument(
            f"--{name}-dir", type=Path, default=None,
            help=f"the {name} data set (default: <shared dir>/{name}, or ${DATASET_ENV[name]})",
        )  # fmt: skip


def dataset_dir_from_args(args: argparse.Namespace, name: str) -> Path:
    """`dataset_dir` for the flags `add_dataset_flags` added."""
    return dataset_dir(name, own_dir=getattr(args, f"{name.replace('-', '_')}_dir"), shared=args.shared_dir)
