"""The backtest on a real multi-process Dask cluster that the test starts (a scheduler and two
worker processes on 127.0.0.1), and its resumption after the driver is killed mid-run.

Both use the stand-in engine of ``test_backtest`` (a real refit takes minutes); the worker
processes and the killed driver import it from this directory (``PYTHONPATH``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from regimecast.workflows import backtest as bt
from regimecast.workflows import backtest_origin as bto

import test_backtest as tb          # noqa: E402  (this directory is on sys.path under pytest)

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
STARTUP_S = 90                       # seconds for the scheduler and both workers to come up
SETTINGS = bto.BacktestSettings(start="2014-01", every=6, end="2015-01", horizons=(1, 3, 12), seed=17,
                                chains=2, draws=50, paths=8, max_draws=100)     # origins 2014-01, 2014-07, 2015-01


def _env() -> dict:
    path = os.pathsep.join([str(HERE), str(SRC), os.environ.get("PYTHONPATH", "")])
    return os.environ | {"PYTHONPATH": path, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster():
    """A scheduler and two single-threaded worker processes, each its own OS process."""
    from distributed import Client

    address = f"tcp://127.0.0.1:{_free_port()}"
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--no-dashboard"], env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs += [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"], env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        with Client(address, timeout=STARTUP_S) as client:
            client.wait_for_workers(2, timeout=STARTUP_S)
            pids = client.run(os.getpid)
        assert len(set(pids.values()) - {os.getpid()}) == 2          # two worker processes, neither this one
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_backtest_on_a_multi_process_cluster_gives_the_serial_numbers(inputs, tmp_path, cluster):
    serial = bt.run_backtest(inputs, SETTINGS, tmp_path / "serial", serial=True, engine=tb.stand_in_engine)
    par = bt.run_backtest(inputs, SETTINGS, tmp_path / "cluster", scheduler=cluster, engine=tb.stand_in_engine)
    assert sorted(par.computed) == ["2014-01", "2014-07", "2015-01"] and not par.failed
    assert par.config_hash == serial.config_hash and tb._numbers(par.records) == tb._numbers(serial.records)


@pytest.fixture
def inputs(workspace, fred_dir):
    return bt.load_inputs(workspace, data_dir=fred_dir)


DRIVER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import test_backtest as tb
    import test_backtest_cluster as tc
    from regimecast.store.workspace import Workspace
    from regimecast.workflows import backtest as bt

    def slow(job):                       # each origin takes a while, so the kill lands between two
        time.sleep(3.0)
        return tb.stand_in_engine(job)

    inputs = bt.load_inputs(Workspace.at(sys.argv[1]), data_dir=sys.argv[2])
    bt.run_backtest(inputs, tc.SETTINGS, Path(sys.argv[3]), serial=True, engine=slow)
""")


def test_a_killed_backtest_resumes_where_it_stopped(inputs, workspace, fred_dir, tmp_path):
    runs = tmp_path / "runs"
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(driver), str(workspace.root), str(fred_dir), str(runs)],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not list(runs.glob("backtest/*/origin-*.json")):
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]
        assert time.monotonic() < deadline, "no origin finished in 300 s"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)                 # no clean-up: as a lost machine or power cut
    proc.wait(timeout=30)
    written = sorted(p.name for p in runs.glob("backtest/*/origin-*.json"))
    assert 1 <= len(written) < 3
    for p in runs.glob("backtest/*/origin-*.json"):                 # every file there is a whole record
        assert json.loads(p.read_text())["origin"] in ("2014-01", "2014-07")
    resumed = bt.run_backtest(inputs, SETTINGS, runs, serial=True, engine=tb.stand_in_engine)
    done = [n[len("origin-"):-len(".json")] for n in written]
    assert resumed.reused == done and sorted(resumed.computed) == sorted({"2014-01", "2014-07", "2015-01"} - set(done))
    fresh = bt.run_backtest(inputs, SETTINGS, tmp_path / "fresh", serial=True, engine=tb.stand_in_engine)
    assert tb._numbers(resumed.records) == tb._numbers(fresh.records)
