"""The `pricecast` command line. It fills the one config object from a YAML file and flags.

Every config field is a flag named after it (`--epochs 2 --seed 3 --units 8`); heavy modules
(TensorFlow, Prefect, MLflow) are imported only by the command that needs them.
"""

from __future__ import annotations

import argparse
import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import ValidationError

from pricecast.cli.commands import COMMANDS
from pricecast.cli.flags import ALL, READS, add_config_flags, build_config, config_fields, flag_name, given_values
from pricecast.prefect_server import stop_unused, use_local_server
from pricecast.process import fewer_collections, go_offline

#: Commands that talk to Prefect: they use the home's long-lived server when it runs.
USES_PREFECT = {"train", "backtest", "tune", "retrain", "forecast", "score", "serve", "trigger"}
#: Commands that run flows here: without a server to use, they start Prefect's temporary server first thing.
RUNS_FLOWS = {"train", "backtest", "tune", "retrain", "forecast", "score"}

#: What `pricecast` exits with; docs/reference/exit-codes.md is generated from this table.
EXIT_CODES = {
    0: "done",
    1: "the environment failed: a tracking server, price store or stack that does not answer, a full disk; "
    "`trigger --wait`: the run did not complete; `stack status`: a service is not running; "
    "an unexpected error (with its traceback)",
    2: "bad input or config: a price file, a config value, a flag (argparse's usage errors too); nothing was written",
    3: "`server status`: no long-lived Prefect server runs for this home; `fetch`: the calendar check failed "
    "(bars missing for `fetch.missing_sessions` sessions or more; what was fetched is merged)",
    128 + signal.SIGINT: "stopped by SIGINT (Ctrl+C): the MLflow run ends KILLED, no half-made version",
    128 + signal.SIGTERM: "stopped by SIGTERM: the MLflow run ends KILLED, no half-made version",
}

__all__ = ["EXIT_CODES", "build_config", "config_fields", "flag_name", "given_values", "main", "parser", "run"]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="pricecast", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    for name, (_, help_text, extra) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        if extra:
            extra(command)
        add_config_flags(command, READS.get(name, ALL))
    return top


class Stopped(BaseException):
    """SIGTERM as an exception: the MLflow run ends KILLED and Prefect's temporary server stops.

    A BaseException, like KeyboardInterrupt, so no `except Exception` swallows it.
    """


def config_errors(exc: ValidationError) -> str:
    """A config's validation errors on one line: `group.field = value: what is wrong`."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))} = {e['input']!r}: {e['msg']}" for e in exc.errors())


def _stop(signum: int, frame: object) -> None:
    raise Stopped(f"stopped by {signal.Signals(signum).name}")


def _signal_of(exc: BaseException) -> signal.Signals | None:
    """The signal `exc` stands for: ours (Stopped), Python's (KeyboardInterrupt) or Prefect's, else None."""
    if isinstance(exc, Stopped):
        return signal.SIGTERM
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if type(exc).__name__ == "TerminationSignal":  # Prefect's, raised in a flow on SIGTERM
        return signal.Signals(exc.signal)
    return None


def stopped_by(exc: BaseException | None) -> str | None:
    """The signal's name when `exc` was raised while the command was stopping on one (its clean-up failed:
    the tracking server has gone, say), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if (sig := _signal_of(exc)) is not None:
            return sig.name
        exc = exc.__cause__ or exc.__context__
    return None


def resend_lost_signals(previous: Callable[[Any], object]) -> Callable[[Any], None]:
    """A `sys.unraisablehook` that sends a signal again when its exception was raised where Python ignores
    exceptions: a signal handler runs in whatever Python code the main thread is in, a weakref callback or a
    `__del__` included, and an exception raised there is printed and dropped (seen once: SIGTERM arrived
    while a weakref callback ran, Prefect's TerminationSignal was dropped, and the training went on). Sent
    again from another thread a moment later, it is handled once the main thread is back in its own code.
    Other unraisable exceptions go to `previous`."""

    def hook(unraisable: Any) -> None:
        sig = _signal_of(unraisable.exc_value)
        if sig is None:
            previous(unraisable)
        else:
            threading.Timer(0.05, os.kill, (os.getpid(), sig)).start()

    return hook


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `pricecast` console script.

    Exit codes: `EXIT_CODES`.
    """
    fewer_collections()
    args = parser().parse_args(argv)
    go_offline()
    from pricecast.errors import DataError, DiskFullError, FetchError, StackError, StoreError, TrackingError

    # During a flow Prefect's own handler turns SIGTERM into a crash of the flow run, then
    # hands the signal on to this one.
    previous = signal.signal(signal.SIGTERM, _stop)
    previous_hook, sys.unraisablehook = sys.unraisablehook, resend_lost_signals(sys.unraisablehook)
    try:
        config = build_config(args)
        if args.command in RUNS_FLOWS:
            from pricecast.cli.warm import hand_over

            if (code := hand_over(config.paths(), list(argv or sys.argv[1:]))) is not None:
                return code
        if args.command in USES_PREFECT:
            use_local_server(config.paths(), start_early=args.command in RUNS_FLOWS)
        return COMMANDS[args.command][0](config, args)
    except ValidationError as exc:
        print(f"pricecast: invalid config: {config_errors(exc)}", file=sys.stderr)
    except (DataError, FileNotFoundError, LookupError) as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
    except (TrackingError, DiskFullError, StoreError, StackError, FetchError) as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
        return 1
    except Stopped as exc:
        print(f"pricecast: {exc}", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:  # Ctrl+C: the MLflow run has ended KILLED, the flow run Crashed
        print("pricecast: stopped by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    except Exception as exc:
        if (name := stopped_by(exc)) is None:
            raise  # unexpected: its traceback
        first = (str(exc).strip().splitlines() or [""])[0]
        print(f"pricecast: while stopping: {type(exc).__name__}: {first}", file=sys.stderr)
        print(f"pricecast: stopped by {name}", file=sys.stderr)
        return 128 + signal.Signals[name]
    finally:
        stop_unused()
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook
    return 2


def run() -> None:
    """The console script: `main`, then exit without the interpreter's teardown.

    Exit handlers run (Prefect sends its last logs, the temporary server stops) and output is
    flushed; what is skipped is unloading TensorFlow and friends, 2-5 s of nothing useful.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    atexit._run_exitfuncs()
    os._exit(code)
