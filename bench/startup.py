#!/usr/bin/env python3
"""Startup benchmark for otk.

Measures the wall time of starting a trivial command (``/bin/true``) and
waiting for it to finish, for several variants, run in alternation: every
round runs every variant once, in a freshly shuffled order, so that drift on
the machine (frequency scaling, background load, page cache) affects all
variants alike.

Default variants:

* ``bare``       -- ``/bin/true`` directly (the harness baseline);
* ``otk-strict`` -- ``otk sandbox run --profile strict -- /bin/true``;
* ``bwrap``      -- bubblewrap with comparable isolation (only if ``bwrap``
  is on PATH and works on this machine).

More variants can be added with ``--variant NAME=CMD``.

Exit status: 0 on success, 1 if a variant fails, 2 on usage errors or when
the otk binary is missing.

This is run on demand; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OTK = REPO_ROOT / ".build" / "release" / "otk"
BUILD_HINT = "swift build -c release --static-swift-stdlib"
TRIVIAL_COMMAND = "/bin/true"
PREFLIGHT_TIMEOUT_S = 60

EXIT_OK = 0
EXIT_VARIANT_FAILED = 1
EXIT_USAGE = 2

BASELINE = "bare"
OTK_VARIANT = "otk-strict"
BWRAP_VARIANT = "bwrap"


@dataclass(frozen=True)
class Variant:
    """A named command line to benchmark."""

    name: str
    argv: tuple[str, ...]

    def display(self) -> str:
        """Return the command line as a shell-quoted string."""
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Skipped:
    """A default variant that was not run, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class Stats:
    """Summary statistics of one variant's samples, in milliseconds."""

    median: float
    p10: float
    p90: float
    mean: float


class VariantFailed(Exception):
    """A variant exited non-zero (or could not be started)."""

    def __init__(self, variant: Variant, detail: str) -> None:
        super().__init__(f"{variant.name}: {detail}")
        self.variant = variant
        self.detail = detail


# --------------------------------------------------------------------------
# Command line


def parse_variant_spec(text: str) -> Variant:
    """Parse a ``NAME=CMD`` argument (CMD split with shlex) into a Variant."""
    name, sep, command = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=CMD, got {text!r}")
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"cannot split {command!r}: {error}")
    if not argv:
        raise argparse.ArgumentTypeError(f"variant {name!r} has an empty command")
    return Variant(name, tuple(argv))


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Benchmark the startup time of otk against /bin/true "
        "and bubblewrap, with the variants run in alternation.",
    )
    parser.add_argument(
        "--otk", type=Path, default=DEFAULT_OTK,
        help=f"otk binary (default: {DEFAULT_OTK})",
    )
    parser.add_argument(
        "--rounds", type=positive_int, default=200,
        help="recorded rounds; each runs every variant once (default: 200)",
    )
    parser.add_argument(
        "--warmup", type=non_negative_int, default=10,
        help="unrecorded rounds before timing (default: 10)",
    )
    parser.add_argument(
        "--variant", dest="variants", action="append", default=[],
        type=parse_variant_spec, metavar="NAME=CMD",
        help="add a variant; CMD is split with shlex (repeatable)",
    )
    parser.add_argument(
        "--seed", type=int, default=None,
        help="seed for the per-round shuffle (default: random, printed)",
    )
    parser.add_argument(
        "--json", type=Path, default=None, metavar="FILE",
        help="also write the results as JSON to FILE",
    )
    args = parser.parse_args(argv)
    reserved = {BASELINE, OTK_VARIANT, BWRAP_VARIANT}
    seen: set[str] = set()
    for variant in args.variants:
        if variant.name in reserved or variant.name in seen:
            parser.error(f"duplicate variant name {variant.name!r}")
        seen.add(variant.name)
    return args


# --------------------------------------------------------------------------
# Variants


def is_executable_file(path: Path) -> bool:
    """True if path is a regular file we may execute."""
    return path.is_file() and os.access(path, os.X_OK)


def otk_argv(otk: Path) -> tuple[str, ...]:
    """The otk command line for the strict-profile variant."""
    return (str(otk.absolute()), "sandbox", "run", "--profile", "strict", "--", TRIVIAL_COMMAND)


def root_layout_args() -> list[str]:
    """bwrap arguments recreating /bin, /lib, /lib64 and /sbin.

    On a merged-/usr host these are symlinks into /usr and are recreated as
    symlinks; where one is a real directory it is bind-mounted read-only;
    where it does not exist it is left out.
    """
    args: list[str] = []
    for name in ("bin", "lib", "lib64", "sbin"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    return args


def bwrap_argv(bwrap: str, workspace: Path) -> tuple[str, ...]:
    """A bubblewrap command line with isolation comparable to otk strict."""
    return (
        bwrap,
        "--unshare-all", "--unshare-user", "--uid", "1000", "--gid", "1000",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
        "--ro-bind", "/usr", "/usr",
        *root_layout_args(),
        "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
        "--bind", str(workspace), "/workspace", "--chdir", "/workspace",
        "--hostname", "otk",
        "--", TRIVIAL_COMMAND,
    )


def probe(variant: Variant) -> Optional[str]:
    """Run a variant once; return None on exit 0, else a description of the failure."""
    try:
        result = subprocess.run(
            variant.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, close_fds=True, timeout=PREFLIGHT_TIMEOUT_S,
        )
    except OSError as error:
        return f"cannot start: {error}"
    except subprocess.TimeoutExpired:
        return f"did not finish within {PREFLIGHT_TIMEOUT_S}s"
    if result.returncode == 0:
        return None
    stderr = result.stderr.decode(errors="replace").strip() or "(no stderr)"
    return f"exit status {result.returncode}; stderr:\n{stderr}"


def bwrap_variant(workspace: Path) -> Variant | Skipped:
    """The bwrap variant, or the reason it is skipped."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Skipped(BWRAP_VARIANT, "bwrap not found on PATH")
    variant = Variant(BWRAP_VARIANT, bwrap_argv(bwrap, workspace))
    failure = probe(variant)
    if failure is not None:
        one_line = failure.replace("\n", " ")
        return Skipped(BWRAP_VARIANT, f"bwrap does not work here ({one_line})")
    return variant


def build_variants(
    otk: Path, extra: Sequence[Variant], workspace: Path
) -> tuple[list[Variant], list[Skipped]]:
    """All variants to time, and the default ones that were skipped."""
    variants = [
        Variant(BASELINE, (TRIVIAL_COMMAND,)),
        Variant(OTK_VARIANT, otk_argv(otk)),
    ]
    skipped: list[Skipped] = []
    bwrap = bwrap_variant(workspace)
    if isinstance(bwrap, Skipped):
        skipped.append(bwrap)
    else:
        variants.append(bwrap)
    variants.extend(extra)
    return variants, skipped


def preflight(variants: Sequence[Variant]) -> list[VariantFailed]:
    """Run every variant once; return the failures."""
    failures = []
    for variant in variants:
        failure = probe(variant)
        if failure is not None:
            failures.append(VariantFailed(variant, failure))
    return failures


# --------------------------------------------------------------------------
# Timing


def time_once(variant: Variant) -> int:
    """Wall time in ns of one run of the variant; raises VariantFailed on non-zero exit.

    No timeout is passed: with a timeout, subprocess polls with sleeps,
    which would distort the measurement.
    """
    start = time.perf_counter_ns()
    result = subprocess.run(
        variant.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, close_fds=True,
    )
    elapsed = time.perf_counter_ns() - start
    if result.returncode != 0:
        raise VariantFailed(variant, f"exit status {result.returncode} during timing")
    return elapsed


def run_rounds(
    variants: Sequence[Variant], rounds: int, rng: random.Random
) -> dict[str, list[int]]:
    """Run `rounds` rounds, each variant once per round in a shuffled order."""
    samples: dict[str, list[int]] = {v.name: [] for v in variants}
    order = list(variants)
    for _ in range(rounds):
        rng.shuffle(order)
        for variant in order:
            samples[variant.name].append(time_once(variant))
    return samples


# --------------------------------------------------------------------------
# Statistics and reporting


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


def summarize(samples_ns: Sequence[int]) -> Stats:
    """Median, p10, p90 and mean of samples given in ns, returned in ms."""
    values = sorted(ns / 1e6 for ns in samples_ns)
    return Stats(
        median=percentile(values, 50),
        p10=percentile(values, 10),
        p90=percentile(values, 90),
        mean=sum(values) / len(values),
    )


def machine_info() -> dict:
    """CPUs available to this process (like nproc), kernel release, Python."""
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def build_report(
    variants: Sequence[Variant],
    skipped: Sequence[Skipped],
    samples: dict[str, list[int]],
    settings: dict,
) -> dict:
    """Collect everything into one JSON-serialisable report.

    `settings` holds the date, machine, rounds, warmup and seed.
    """
    stats = {v.name: summarize(samples[v.name]) for v in variants}
    bare = stats[BASELINE].median
    bwrap = stats[BWRAP_VARIANT].median if BWRAP_VARIANT in stats else None
    rows = []
    for variant in variants:
        s = stats[variant.name]
        rows.append({
            "name": variant.name,
            "argv": list(variant.argv),
            "median_ms": s.median,
            "p10_ms": s.p10,
            "p90_ms": s.p90,
            "mean_ms": s.mean,
            "ratio_to_bare": s.median / bare,
            "ratio_to_bwrap": s.median / bwrap if bwrap else None,
            "overhead_over_bare_ms": s.median - bare,
            "samples_ms": [ns / 1e6 for ns in samples[variant.name]],
        })
    return {
        **settings,
        "skipped": [{"name": s.name, "reason": s.reason} for s in skipped],
        "variants": rows,
        "otk_overhead_over_bare_ms": stats[OTK_VARIANT].median - bare,
    }


def format_ratio(value: Optional[float]) -> str:
    """A ratio as 'x12.3', or '-' when not applicable."""
    return "-" if value is None else f"x{value:.2f}"


def format_table(rows: Sequence[dict]) -> str:
    """The per-variant results as a fixed-width text table."""
    width = max(len("variant"), *(len(r["name"]) for r in rows))
    header = (
        f"{'variant':<{width}}  {'median':>9}  {'p10':>9}  {'p90':>9}  {'mean':>9}"
        f"  {'vs bare':>8}  {'vs bwrap':>8}  {'+ms bare':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['name']:<{width}}  {r['median_ms']:>9.3f}  {r['p10_ms']:>9.3f}"
            f"  {r['p90_ms']:>9.3f}  {r['mean_ms']:>9.3f}"
            f"  {format_ratio(r['ratio_to_bare']):>8}"
            f"  {format_ratio(r['ratio_to_bwrap']):>8}"
            f"  {r['overhead_over_bare_ms']:>+9.3f}"
        )
    return "\n".join(lines)


def print_header(variants: Sequence[Variant], skipped: Sequence[Skipped],
                 settings: dict) -> None:
    """Print the date, the machine, the settings and the variants before timing."""
    info = settings["machine"]
    print(f"date:    {settings['date']}")
    print(f"machine: nproc={info['nproc']} kernel={info['kernel']} python={info['python']}")
    print(f"rounds:  {settings['rounds']} (+{settings['warmup']} warmup), "
          f"shuffled per round, seed={settings['seed']}")
    print("variants:")
    for variant in variants:
        print(f"  {variant.name}: {variant.display()}")
    for skip in skipped:
        print(f"  {skip.name}: SKIPPED -- {skip.reason}")
    print(flush=True)


def print_results(report: dict) -> None:
    """Print the table and the otk overhead summary."""
    print("wall time per run in ms (start to exit, via subprocess.run)")
    print(format_table(report["variants"]))
    print()
    print(f"otk overhead over bare (median difference): "
          f"{report['otk_overhead_over_bare_ms']:.3f} ms")


def write_json(path: Path, report: dict) -> None:
    """Write the report as JSON."""
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


# --------------------------------------------------------------------------
# Main


def report_failures(failures: Sequence[VariantFailed]) -> None:
    """Print failing variants with their command line and stderr."""
    for failure in failures:
        print(f"error: variant {failure.variant.name!r} failed: "
              f"{failure.variant.display()}", file=sys.stderr)
        print(f"  {failure.detail}".replace("\n", "\n  "), file=sys.stderr)
    print("a benchmark of a failing command is meaningless; fix it first",
          file=sys.stderr)


def benchmark(args: argparse.Namespace, workspace: Path) -> int:
    """Build, check and time the variants; print (and optionally save) the results."""
    variants, skipped = build_variants(args.otk, args.variants, workspace)
    failures = preflight(variants)
    if failures:
        report_failures(failures)
        return EXIT_VARIANT_FAILED

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    settings = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "rounds": args.rounds,
        "warmup": args.warmup,
        "seed": seed,
    }
    print_header(variants, skipped, settings)
    try:
        run_rounds(variants, args.warmup, rng)
        samples = run_rounds(variants, args.rounds, rng)
    except VariantFailed as failure:
        report_failures([failure])
        return EXIT_VARIANT_FAILED

    report = build_report(variants, skipped, samples, settings)
    print_results(report)
    if args.json is not None:
        write_json(args.json, report)
    return EXIT_OK


def main(argv: Sequence[str]) -> int:
    """Entry point; returns the exit status."""
    args = parse_args(argv)
    if not is_executable_file(args.otk):
        print(f"error: otk binary not found (or not executable): {args.otk}\n"
              f"build it from the repository root ({REPO_ROOT}) with:\n"
              f"  {BUILD_HINT}\n"
              f"or point --otk at an existing binary.", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="otk-bench-ws-") as workspace:
        return benchmark(args, Path(workspace))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
