"""The ``modelgen`` command: check, build, latex, run, sweep, cache, examples (copies the bundled example models), ..."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
import warnings
from pathlib import Path

import click

from . import __version__, backends, schemes
from .atomic import write_text_atomic
from .cache import ModuleClashError
from .diagnostics import ModelError, format_diagnostics
from .exporters import FORMATS as EXPORT_FORMATS
from .memory import MemoryLimitError, parse_size
from .network import check_save_path, is_network_file, load_network
from .runtime import SimulationError, StaleModuleError

__all__ = ["main"]


def _load(path: str):
    from .api import load

    return load(path)


def _fail(err: ModelError, as_json: bool = False) -> None:
    click.echo(format_diagnostics(err.diagnostics, as_json=as_json), err=not as_json)
    n = len(err.errors)
    if not as_json:
        click.echo(f"{n} error{'s' if n != 1 else ''}", err=True)
    sys.exit(1)


def _warn(model) -> None:
    if model.warnings:
        click.echo(format_diagnostics(list(model.warnings)), err=True)


@contextlib.contextmanager
def _reporting_errors(progress=None):
    """Run a block that simulates: warnings are printed after it; modelgen's errors end the
    command with their message and exit status 1 (never a traceback)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ModelError as e:
            if progress is not None:
                progress.close()
            _print_warnings(caught)
            _fail(e)
        except (SimulationError, StaleModuleError, MemoryLimitError, ModuleClashError) as e:
            if progress is not None:
                progress.close()
            _print_warnings(caught)
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        except backends.BackendUnavailableError as e:  # e.g. --backend cuda without CuPy or a GPU: a usage error
            if progress is not None:
                progress.close()
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except OSError as e:  # an unwritable or full output folder (generated/, a results file)
            if progress is not None:
                progress.close()
            _print_warnings(caught)
            _cannot_write(e.filename or "a file", e)
    if progress is not None:
        progress.close()
    _print_warnings(caught)


def _cannot_write(path, err: OSError) -> None:
    """Stop with one line: which file could not be written and why (never a traceback)."""
    reason = err.strerror or str(err)
    hint = ""
    if isinstance(err, PermissionError) or err.errno == errno.EROFS:
        hint = "; choose a writable place (e.g. --out-dir for generated code)"
    elif err.errno == errno.ENOSPC:
        hint = "; free some space or write elsewhere (an earlier file of that name was left as it was)"
    click.echo(f"error: cannot write {path}: {reason}{hint}", err=True)
    sys.exit(1)


def _print_warnings(caught) -> None:
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)


def _assignments(pairs: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise click.BadParameter(f"expected NAME=VALUE, e.g. I_ext=10uA/cm^2, got {pair!r}", param_hint=option)
        if name.strip() in out:
            raise click.BadParameter(
                f"{name.strip()} is given twice ({out[name.strip()]!r} and {value.strip()!r}); give it once",
                param_hint=option,
            )
        out[name.strip()] = value.strip()
    return out


class _MethodChoice(click.Choice):
    """The integration schemes registered when the option is read (schemes.register() may add some
    after this module is imported)."""

    def __init__(self) -> None:
        super().__init__(schemes.METHODS)

    @property
    def choices(self) -> tuple[str, ...]:
        return schemes.METHODS

    @choices.setter
    def choices(self, _value) -> None:
        pass  # always the registry's


method_option = click.option(
    "--method",
    type=_MethodChoice(),
    default=None,
    help="Integration scheme (default: the model's `method` line, else auto).",
)


class _Size(click.ParamType):
    """A memory size: 4GiB, 500MB, 2G or a number of bytes."""

    name = "SIZE"

    def convert(self, value, param, ctx):
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


max_memory_option = click.option(
    "--max-memory",
    type=_Size(),
    default=None,
    help="Refuse (before allocating) a run estimated to need more memory than SIZE, e.g. 4GiB or 500MB "
    "(default: the memory available).",
)


out_dir_option = click.option(
    "-o",
    "--out-dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Directory of generated modules (default: modelgen's cache; see `modelgen cache`).",
)


backend_option = click.option(
    "--backend",
    type=click.Choice(list(backends.names())),
    default="numpy",
    show_default=True,
    help="numpy, or numba: compiled SIMD loops over the neurons on all cores (pip install numba), "
    "or cuda: one NVIDIA GPU thread per neuron (pip install -e '.[cuda]').",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="modelgen")
@click.option(
    "--path",
    "paths",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Folder to search for current files used by models (repeatable; before MODELGEN_PATH and the library).",
)
def main(paths: tuple[str, ...]) -> None:
    """Neuron membrane models as text -> sympy -> generated numpy simulators."""
    if paths:
        os.environ["MODELGEN_PATH"] = os.pathsep.join([*paths, *filter(None, [os.environ.get("MODELGEN_PATH")])])


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    help="Diagnostics as text or as JSON for editors.",
)
@method_option
def check(files: tuple[str, ...], fmt: str, method: str | None) -> None:
    """Parse and check model FILES: names, units, equations. Exit 1 on errors."""
    all_diags = []
    failed = False
    for f in files:
        try:
            if is_network_file(f):
                net = load_network(f, draw=False)  # every statement checked; the synapses are drawn by run
                if fmt == "text":
                    pops = ", ".join(f"{p.name} ({p.model.name}, {p.n})" for p in net.populations.values())
                    click.echo(
                        f"{f}: ok -- network {net.name}: {pops}; about {net.n_synapses:,} synapses, "
                        f"{len(net.projections)} projections"
                    )
                continue
            m = _load(f)
            plan = m.plan(method)
            all_diags.extend(m.warnings)
            if fmt == "text":
                _warn(m.model)
                click.echo(
                    f"{f}: ok -- model {m.name}: {len(m.states)} states, {len(m.currents)} currents, "
                    f"{len(m.model.parameters)} parameters; integration {plan.method}"
                )
                for state, why in plan.reasons.items():
                    click.echo(f"  {state}: {why}")
        except ModelError as e:
            failed = True
            all_diags.extend(e.diagnostics)
            if fmt == "text":
                click.echo(format_diagnostics(e.diagnostics), err=True)
                click.echo(f"{f}: {len(e.errors)} error{'s' if len(e.errors) != 1 else ''}", err=True)
        except MemoryLimitError as e:
            failed = True
            click.echo(f"{f}: error: {e}", err=True)
    if fmt == "json":
        click.echo(format_diagnostics(all_diags, as_json=True))
    sys.exit(1 if failed else 0)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", default="generated", show_default=True, help="Directory for the generated module.")
@method_option
@backend_option
def build(file: str, out_dir: str, method: str | None, backend: str) -> None:
    """Generate the simulator module of FILE (a model, or every model of a network)."""
    if is_network_file(file):
        with _reporting_errors():
            net = load_network(file)
            for pop in net.populations.values():
                click.echo(f"wrote {pop.model.build(out_dir, method)}  ({pop.model.plan(method).method})")
        return
    with _reporting_errors():
        m = _load(file)
        _warn(m.model)
        plan = m.plan(method)
        path = m.build(out_dir, method, backend)
    click.echo(f"wrote {path}  ({plan.method})")
    for state, why in plan.reasons.items():
        click.echo(f"  {state}: {why}")


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--derivation/--no-derivation", default=True, help="Show the steps from Q = C V to dV/dt.")
@click.option("--expand", is_flag=True, help="Substitute intermediate expressions and currents into the ODEs.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["tex", "markdown", "html"]),
    default="tex",
    show_default=True,
    help="LaTeX fragment, or Markdown/HTML with $$ math for docs sites and notebooks.",
)
@click.option("--standalone", is_flag=True, help="A complete document: a compilable .tex file, or an HTML page.")
def latex(file: str, derivation: bool, expand: bool, fmt: str, standalone: bool) -> None:
    """Print the model's equations as LaTeX, derived from Q = C V."""
    try:
        m = _load(file)
    except ModelError as e:
        _fail(e)
    click.echo(m.latex(derivation=derivation, expand=expand, fmt=fmt, standalone=standalone), nl=False)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--duration", default="100 ms", show_default=True, help="Simulated time, with a unit.")
@click.option("--dt", default="0.01 ms", show_default=True, help="Time step, with a unit.")
@click.option(
    "--n",
    "n",
    default=None,
    type=click.IntRange(min=1),
    help="Number of neurons (default: 1, or the count in linspace(a, b, COUNT)).",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=VALUE",
    help="Input with a unit or a protocol, e.g. I_ext=10uA/cm^2, 'I_ext=step(10 uA/cm^2, on=20 ms, off=80 ms)', "
    "'I_ext=ou(mean=5 uA/cm^2, sigma=2 uA/cm^2, tau=5 ms)', 'I_ext=linspace(0, 20, n) uA/cm^2' (repeatable).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a parameter, e.g. g_K=30mS/cm^2 or per neuron 'g_Na=normal(120, 5) mS/cm^2' (repeatable).",
)
@click.option(
    "--init",
    "initial",
    multiple=True,
    metavar="NAME=VALUE",
    help="Override a state's initial value, e.g. V=-70mV (repeatable).",
)
@click.option(
    "--record",
    multiple=True,
    metavar="VAR",
    help="Variable to record: a state, input, current or expression (repeatable; default: the membrane potential).",
)
@click.option(
    "--record-neurons", default=10, show_default=True, type=click.IntRange(min=0), help="Record the first K neurons."
)
@click.option(
    "--save",
    type=click.Path(),
    default=None,
    help="Save the result: FILE.npz (arrays), FILE.csv (traces), or a results folder (npz, traces.csv, "
    "spikes.csv, metadata.json with everything needed to repeat the run).",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw the inputs, recorded traces and a spike raster to FILE.png|svg|pdf (needs matplotlib).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary line.")
@out_dir_option
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of every random number (connectivity, initial values, drives).",
)
@method_option
@backend_option
@click.option(
    "--dtype",
    type=click.Choice(["float64", "float32"]),
    default="float64",
    show_default=True,
    help="Float type of the state (float32: half the memory traffic; HH spike times within one step of float64).",
)
@max_memory_option
def run(
    file,
    duration,
    dt,
    n,
    inputs,
    params,
    initial,
    record,
    record_neurons,
    save,
    plot,
    quiet,
    out_dir,
    seed,
    method,
    backend,
    dtype,
    max_memory,
) -> None:
    """Simulate N neurons of FILE (or a network file) and print a summary (and save results)."""

    import numpy as np

    if is_network_file(file):
        if inputs or params or initial:
            raise click.UsageError("for a network, set inputs, parameters and initial values in the network file")
        _run_network(file, duration, dt, seed, record, save, out_dir, method, plot, quiet, max_memory, backend, dtype)
        return

    from .protocols import implied_n

    inputs, params = _assignments(inputs, "--input"), _assignments(params, "--param")
    n = n or implied_n([*inputs.values(), *params.values()]) or 1
    progress = _Progress("simulating", enabled=not quiet)
    with _reporting_errors(progress):
        m = _load(file)
        _warn(m.model)
        record = list(record)
        if plot:  # draw the inputs too
            record = record or [m.model.membrane_state or m.model.states[0].name]
            record += [i.name for i in m.model.inputs if i.name not in record]
        result = m.run(
            duration=duration,
            dt=dt,
            n=n,
            inputs=inputs,
            params=params,
            initial=_assignments(initial, "--init"),
            record=record or None,
            record_indices=np.arange(min(n, record_neurons)),
            method=method,
            out_dir=out_dir,
            seed=seed,
            progress=progress,
            dtype=dtype,
            backend=backend,
            max_memory=max_memory,
        )
    _keep(result, save, plot, quiet, "plot_run", "out.npz (or traces.csv, or a results folder)", bool(record))


def _keep(result, save, plot, quiet: bool, plotter: str, save_example: str, recorded: bool) -> None:
    """Save and draw a run's result as asked (saying where on stderr), say if recorded traces go
    nowhere, and print the summary line on stdout (unless quiet)."""
    if save:
        try:
            saved = result.save(save)
        except OSError as e:
            _cannot_write(save, e)
        if not quiet:
            click.echo(f"saved {saved}", err=True)
    if plot:
        _plot(lambda plots: getattr(plots, plotter)(result, plot), plot, quiet)
    if recorded and not save and not plot:
        _not_kept(list(result.traces), save_example)
    if not quiet:
        click.echo(result.summary())


def _not_kept(traces: list[str], save_example: str) -> None:
    """Say on stderr that traces were recorded but neither saved nor drawn, and how to keep them."""
    click.echo(
        f"note: the recorded traces ({', '.join(traces)}) were not kept; "
        f"add --save {save_example} or --plot trace.png to keep them",
        err=True,
    )


def _run_network(
    file,
    duration,
    dt,
    seed,
    record,
    save,
    out_dir,
    method,
    plot=None,
    quiet=False,
    max_memory=None,
    backend="numpy",
    dtype="float64",
) -> None:
    from .api import quantity
    from .units import TIME

    if save:
        try:
            check_save_path(save)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--save") from None
    progress = _Progress("simulating", enabled=not quiet)
    with _reporting_errors(progress):
        net = load_network(file, seed=seed, max_memory=max_memory)
        result = net.run(
            quantity(duration, TIME, "duration", "ms"),
            quantity(dt, TIME, "dt", "ms"),
            out_dir,
            method,
            list(record),
            progress=progress,
            backend=backend,
            dtype=dtype,
        )
    _keep(result, save, plot, quiet, "plot_network", "out.npz", bool(result.traces))


class _Progress:
    """A progress bar on stderr for runs expected to last more than about two seconds.

    Shown only on a terminal and not with --quiet; the runtime calls it every few dozen
    steps, and it looks at the clock before doing anything else.
    """

    def __init__(self, label: str, enabled: bool = True, clock=time.monotonic, unit: str | None = None):
        self.label, self.clock = label, clock
        self.unit = unit  # what is counted, e.g. "points": the bar then shows the count and the rate
        self.enabled = enabled and sys.stderr.isatty()
        self.start: float | None = None
        self.bar = None
        self.shown, self.last_render = 0, 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self.start is None:
            self.start = now
            return
        if self.bar is None:
            elapsed = now - self.start
            if elapsed < 0.5 or elapsed * total / max(done, 1) < 2.0:
                return
            self.bar = click.progressbar(
                length=total,
                label=self.label,
                file=sys.stderr,
                width=30,
                show_pos=self.unit is not None,
                item_show_func=(lambda text: text) if self.unit else None,
            )
            self.bar.__enter__()
        if now - self.last_render >= 0.1 or done >= total:
            rate = f"{done / max(now - self.start, 1e-9):.3g} {self.unit}/s" if self.unit else None
            self.bar.update(done - self.shown, rate)
            self.shown, self.last_render = done, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _axes_and_values(model, pairs: dict[str, str], kind: str):
    from .sweep import parse_axis

    axes, fixed = [], {}
    declared = (
        {p.name: p for p in model.model.parameters} if kind == "parameter" else {i.name: i for i in model.model.inputs}
    )
    for name, text in pairs.items():
        if name not in declared:
            from .api import _unknown

            raise _unknown(kind, name, list(declared))
        axis = parse_axis(text, name, kind, declared[name])
        if axis is None:
            fixed[name] = text
        else:
            axes.append(axis)
    return axes, fixed


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=RANGE",
    help="A parameter to sweep, START:STOP:STEP UNIT or V1,V2,… UNIT (e.g. g_K=20:40:5mS/cm^2), or a fixed value.",
)
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="NAME=RANGE",
    help="An input to sweep (e.g. I_ext=0:20:1uA/cm^2), or a fixed value or protocol.",
)
@click.option("--duration", default="1000 ms", show_default=True, help="Simulated time of every point, with a unit.")
@click.option("--dt", default="0.01 ms", show_default=True, help="Time step, with a unit.")
@click.option(
    "--transient",
    default="0 ms",
    show_default=True,
    help="Leave out this initial time from the rate and the mean potential.",
)
@click.option(
    "--out", type=click.Path(dir_okay=False), default=None, help="Write the CSV table here (default: stdout)."
)
@click.option(
    "--plot-fi",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw the f-I curve (rate against the input) to this image.",
)
@out_dir_option
@click.option(
    "--seed",
    default="0",
    show_default=True,
    help="Seed of every random number; for a network, the seeds of an ensemble (1:100 or 1,5,9).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@method_option
@max_memory_option
@click.option(
    "--summary",
    "summaries",
    multiple=True,
    type=click.Choice(["rate", "cv", "active", "spikes"]),
    help="For a network: what to tabulate per population (default: rate and cv).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None, help="Run the chunks on a local Dask cluster of N processes."
)
@click.option(
    "--scheduler",
    envvar="DASK_SCHEDULER_ADDRESS",
    default=None,
    metavar="tcp://HOST:PORT",
    help="Run the chunks on the Dask cluster of this scheduler (default: $DASK_SCHEDULER_ADDRESS).",
)
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=None,
    metavar="POINTS",
    help="Points per chunk (default: what records in 128 MB, and on Dask about 8 chunks per worker).",
)
@click.option("--resume", is_flag=True, help="Finish the interrupted sweep whose chunks are kept beside --out.")
@backend_option
def sweep(
    file,
    params,
    inputs,
    duration,
    dt,
    transient,
    out,
    plot_fi,
    out_dir,
    seed,
    quiet,
    method,
    max_memory,
    summaries,
    workers,
    scheduler,
    chunk,
    resume,
    backend="numpy",
) -> None:
    """Run a grid of parameter/input values of FILE as one population; print a CSV table.

    One row per grid point: the swept values, the firing rate (Hz), the first-spike
    latency (ms from the start; empty if the point never spiked) and the mean membrane
    potential. For a network FILE, one network run per point of --seed 1:100 and --param
    POP.NAME=RANGE, with the rate and CV of every population. With --out, each finished chunk is kept in OUT.chunks/ until the table is
    written, so an interrupted sweep resumes with --resume. --workers N or --scheduler run
    the chunks on Dask (pip install 'modelgen[distributed]').
    """
    from .sweep import plan_sweep

    if resume and not out:
        raise click.UsageError("--resume needs --out: the chunks of a sweep are kept beside its table")
    if workers and scheduler:
        raise click.UsageError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    progress = _Progress("sweep", enabled=not quiet)
    with _reporting_errors(progress):
        start = time.perf_counter()
        if is_network_file(file):
            if inputs or plot_fi or transient != "0 ms":
                raise click.UsageError(
                    "--input, --transient and --plot-fi sweep models; a network sets them in its file"
                )
            from .ensemble import DEFAULT_SUMMARIES, parse_seeds, plan_ensemble

            plan = plan_ensemble(
                file, parse_seeds(seed), _assignments(params, "--param"), duration, dt, method, out_dir, max_memory,
                summaries or DEFAULT_SUMMARIES, chunk, backend,
            )  # fmt: skip
            name = plan.spec.name
        else:
            if not seed.strip().isdigit():
                raise click.BadParameter("a model sweep takes one seed, a whole number", param_hint="--seed")
            m = _load(file)
            _warn(m.model)
            p_axes, p_fixed = _axes_and_values(m, _assignments(params, "--param"), "parameter")
            i_axes, i_fixed = _axes_and_values(m, _assignments(inputs, "--input"), "input")
            if not p_axes and not i_axes:
                raise click.UsageError("give at least one range to sweep, e.g. --input I_ext=0:20:1uA/cm^2")
            plan = plan_sweep(
                m, p_axes + i_axes, p_fixed, i_fixed, duration, dt, transient, method, int(seed), out_dir, max_memory, chunk,
                backend,
            )  # fmt: skip
            name = m.name
        cut = chunk is None and not is_network_file(file)  # a network run is big enough to be a chunk
        table, where = _run_sweep_plan(plan, out, resume, workers, scheduler, cut, progress)
        wall = time.perf_counter() - start
    _write_table(out, table.to_csv())
    if plot_fi:
        _plot(lambda plots: plots.plot_fi(table, plot_fi, title=name), plot_fi, quiet)
    if not quiet:
        rate = table.metadata["neuron_steps"] / max(wall, 1e-9)
        click.echo(
            f"{name}: {table.metadata['n']} points in {table.metadata['runs']} run(s) of {table.metadata['duration_ms']:g} ms"
            f"{where}; {wall:.2f} s, {rate:.3g} neuron-steps/s" + (f"; wrote {out}" if out else ""),
            err=True,
        )


def _run_sweep_plan(plan, out, resume: bool, workers: int | None, scheduler: str | None, cut: bool, progress):
    """Run a sweep's chunks here or on Dask, keeping each finished chunk beside ``out``; return (table, where it ran).

    ``cut``: on Dask, cut the grid into more chunks than one process would (a few per worker).
    """
    from dataclasses import replace

    from .distributed import DistributedError
    from .sweep import run_chunks
    from .sweep_store import ChunkStore, SweepStoreError

    try:
        with contextlib.ExitStack() as stack:
            client = None
            if workers or scheduler:
                from .distributed import connect, default_chunk_points

                client = stack.enter_context(connect(workers, scheduler))
                progress.unit = "points"  # the bar counts points as chunks come back
                if cut:
                    plan = replace(plan, chunk=min(plan.chunk, default_chunk_points(plan.n, client)))
            store = ChunkStore.beside(out) if out else None
            done = {}
            if store is not None:
                Path(out).parent.mkdir(parents=True, exist_ok=True)
                plan, done = store.open(plan, resume)
            save = store.save if store is not None else None
            if client is None:
                table = run_chunks(plan, done, save, progress)
                where = ""
            else:
                from .distributed import run_chunks_on

                table = run_chunks_on(client, plan, done, save, progress)
                where = f" on {len(client.scheduler_info()['workers'])} Dask worker(s)"
            if done:
                where += f" ({len(done)} kept from the interrupted run)"
    except (DistributedError, SweepStoreError) as e:
        progress.close()
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    return table, where


def _write_table(out, text: str) -> None:
    """Write the table to ``out`` (then drop the chunks kept beside it), or to stdout."""
    if not out:
        click.echo(text, nl=False)
        return
    from .sweep_store import ChunkStore

    try:
        write_text_atomic(out, text)
    except OSError as e:
        _cannot_write(out, e)
    ChunkStore.beside(out).remove()


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@method_option
def show(file: str, method: str | None) -> None:
    """Summarise FILE: states, currents, inputs, parameters, events and the scheme of each state."""
    from .summary import model_summary

    try:
        m = _load(file)
        _warn(m.model)
        text = model_summary(m, method)
    except ModelError as e:
        _fail(e)
    click.echo(text, nl=False)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The picture: equations.png, .svg or .pdf."
)
@click.option("--derivation/--no-derivation", default=True, help="Show the steps from Q = C V to dV/dt.")
@click.option("--expand", is_flag=True, help="Substitute intermediate expressions and currents into the ODEs.")
def render(file: str, output: str, derivation: bool, expand: bool) -> None:
    """Draw the equations of FILE as a picture with matplotlib's mathtext (no TeX needed)."""
    from .latex import model_blocks

    try:
        m = _load(file)
        _warn(m.model)
    except ModelError as e:
        _fail(e)
    blocks = model_blocks(m.model, m.derivation, derivation, expand)
    title = m.name + (f": {m.model.description}" if m.model.description else "")
    _plot(lambda plots: plots.render_equations(blocks, output, title=title), output)


@main.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--to", "fmt", required=True, type=click.Choice(list(EXPORT_FORMATS)), help="The format to write.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The file to write (default: standard output).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
def export(file: str, fmt: str, output: str | None, force: bool) -> None:
    """Write the model (or network) in FILE in another format: json, brian2, neuroml, nmodl."""
    from .exporters import export_model, export_network

    if output and Path(output).exists() and not force:
        click.echo(f"error: {output} exists; choose another name or add --force to replace it", err=True)
        sys.exit(1)
    with _reporting_errors():
        try:
            text = (
                export_network(load_network(file), fmt)
                if is_network_file(file)
                else export_model(_load(file).model, fmt)
            )
        except ValueError as e:  # a format that cannot hold this model or network
            click.echo(f"error: {e}", err=True)
            sys.exit(1)
        if output:
            write_text_atomic(output, text)
    if output:
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)


@main.group(invoke_without_command=True)
@click.pass_context
def cache(ctx: click.Context) -> None:
    """Show where generated modules are cached and how much room they take (`modelgen cache clear` empties it)."""
    if ctx.invoked_subcommand is not None:
        return
    from .cache import CACHE_ENV, cache_dir, cache_usage

    usage = cache_usage()
    click.echo(f"cache: {usage.root}" + (f"  (from {CACHE_ENV})" if os.environ.get(CACHE_ENV) else ""))
    click.echo(f"this modelgen ({__version__}) writes to {cache_dir()}")
    for version, (modules, size) in usage.versions.items():
        click.echo(f"  {version}: {modules} module{'s' if modules != 1 else ''}, {_size_text(size)}")
    click.echo(f"total: {usage.modules} module{'s' if usage.modules != 1 else ''}, {_size_text(usage.size)}")


@cache.command("clear")
def cache_clear() -> None:
    """Delete every cached module (of every modelgen version) and numba's compiled code for them."""
    from .cache import clear_cache

    try:
        before = clear_cache()
    except OSError as e:
        _cannot_write(e.filename or "the cache", e)
    click.echo(
        f"removed {before.modules} module{'s' if before.modules != 1 else ''} ({_size_text(before.size)}) from {before.root}"
    )


def _size_text(size: int) -> str:
    """Return a byte count as text: 512 B, 3.4 KiB, 12.0 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # pragma: no cover


def _examples_folder() -> Path:
    """Return the folder of the bundled example models: modelgen/examples in an installed wheel, models/ in a checkout."""
    here = Path(__file__).resolve().parent
    installed = here / "examples"  # the wheel maps models/ to modelgen/examples (pyproject.toml: package-dir)
    checkout = here.parent / "models"
    if not installed.is_dir() and (here.parent / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return installed


@main.command()
@click.argument("dest", default="models", type=click.Path(file_okay=False))
def examples(dest: str) -> None:
    """Copy the bundled example models and networks into DEST (default: models, as the README's commands use)."""
    sources = sorted(p for p in _examples_folder().iterdir() if p.suffix in (".model", ".network"))
    target = Path(dest)
    existing = [target / p.name for p in sources if (target / p.name).exists()]
    if existing:
        click.echo(
            f"error: {existing[0]} already exists{f' (and {len(existing) - 1} more)' if len(existing) > 1 else ''}; "
            "modelgen examples does not overwrite files: choose another folder",
            err=True,
        )
        sys.exit(1)
    for source in sources:
        try:
            target.mkdir(parents=True, exist_ok=True)
            write_text_atomic(target / source.name, source.read_text(encoding="utf-8"))
        except OSError as e:
            _cannot_write(e.filename or target / source.name, e)
    click.echo(f"copied {len(sources)} example files to {str(target).rstrip('/')}/", err=True)
    click.echo(f"  try: modelgen run {target / 'hh.model'} --duration 100ms --input I_ext=10uA/cm^2", err=True)


@main.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-o", "--out-dir", default=".", type=click.Path(file_okay=False), help="Folder to write into.")
@click.option("--model", is_flag=True, help="Also write a single-compartment model using the current.")
def import_(file: str, out_dir: str, model: bool) -> None:
    """Import a NEURON channel (.mod file) as a current file NAME.current (the SUFFIX), checked."""
    from .importers.nmodl import write_imported

    try:
        for path in write_imported(file, out_dir, model):
            click.echo(f"wrote {path}", err=True)
    except ModelError as e:
        _fail(e)
    except ImportError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    except OSError as e:
        _cannot_write(e.filename or out_dir, e)


def _plot(draw, path, quiet: bool = False) -> None:
    """Call ``draw(modelgen.plots)``, which writes ``path``, or stop with a clear message if matplotlib is missing."""
    try:
        from . import plots
    except ImportError:
        click.echo("error: plotting needs matplotlib: pip install 'modelgen[plot]'", err=True)
        sys.exit(1)
    try:
        draw(plots)
    except (OSError, ValueError) as e:
        click.echo(f"error: cannot write the picture: {e}", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(f"wrote {path}", err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
