"""The arrows of the house, checked on the real import graph: the import-linter contracts of
pyproject.toml (the layers), and here with grimp what needs the module list worked out: no
product module imports the simulators or the dev harness, and the emulator borrows nothing
of the client's reading of Paytm.

Product = every module of agent/ and drivers/ outside agent.sim, except agent.cli and
agent.demo, which launch simulators (`edc-agent emulator`, `register`, `demo`).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_TIMEOUT_S = 120
SIM = "agent.sim"
LAUNCHERS = frozenset({"agent.cli", "agent.demo"})
# What the emulator transcribes itself from Paytm's documents (docs/emulator.md).
CLIENT_READINGS = ("agent.paytm.codes", "agent.receipts", "agent.paytm.edc",
                   "agent.paytm.edc_answers", "agent.paytm.pg", "agent.paytm.pg_models",
                   "agent.paytm.answer_fields",
                   # Its own checksum and JSON member text (signature.py, jsonraw.py): the
                   # oracle must not share the code it judges.
                   "agent.paytm.checksum", "agent.paytm.jsontext")


def _build() -> grimp.ImportGraph:
    return grimp.build_graph("agent", "drivers", include_external_packages=False)


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return _build()


def _product(graph: grimp.ImportGraph) -> list[str]:
    return sorted(m for m in graph.modules
                  if not (m == SIM or m.startswith(SIM + ".")) and m not in LAUNCHERS)


def test_the_graph_sees_the_simulators(graph: grimp.ImportGraph) -> None:
    assert {"agent.sim.paytm.app", "agent.sim.register.console"} <= graph.modules
    assert graph.find_modules_that_directly_import("agent.sim.paytm.server") == {"agent.cli"}


def test_no_product_module_imports_a_simulator(graph: grimp.ImportGraph) -> None:
    simulators = graph.find_descendants(SIM) | {SIM}
    offenders = []
    for module in _product(graph):
        for imported in graph.find_modules_directly_imported_by(module) & simulators:
            offenders.append(f"{module} imports {imported}")
    assert offenders == []


def test_nothing_imports_a_launcher_but_the_entry_points(graph: grimp.ImportGraph) -> None:
    # A product module reaching agent.demo would reach the simulators through it.
    for launcher in LAUNCHERS:
        importers = graph.find_modules_that_directly_import(launcher)
        assert importers <= {"agent.__main__", "agent.cli"}, (launcher, importers)


# `edc-agent emulator --config` reads the agent's own config and key file with the agent's
# loaders (server.py), and those name the client's ChecksumMode and MerchantKey. That path,
# and only it, may reach agent.paytm.checksum: server.py turns what it read into the
# emulator's own types at once.
EMULATOR_SERVER = "agent.sim.paytm.server"
AGENT_FILE_LOADERS = frozenset({"agent.config", "agent.keyfile"})
LOADER_TYPES = frozenset({"agent.paytm.checksum"})


def test_the_emulator_does_not_borrow_the_clients_reading_of_paytm(
        graph: grimp.ImportGraph) -> None:
    emulator = graph.find_descendants("agent.sim.paytm") | {"agent.sim.paytm"}
    loading = {m for m in emulator if graph.find_modules_directly_imported_by(m)
               & AGENT_FILE_LOADERS}
    assert loading <= {EMULATOR_SERVER}
    without_loaders = _build()  # grimp graphs cannot be copied; this one is cut below
    for loader in AGENT_FILE_LOADERS:
        if without_loaders.direct_import_exists(importer=EMULATOR_SERVER, imported=loader):
            without_loaders.remove_import(importer=EMULATOR_SERVER, imported=loader)
    for reading in CLIENT_READINGS:
        judged = without_loaders if reading in LOADER_TYPES else graph
        chains = [m for m in emulator
                  if judged.chain_exists(importer=m, imported=reading)]
        assert chains == [], f"{reading} reached from {chains}"


def test_no_product_module_imports_the_dev_harness() -> None:
    # devtools is not installed with the product: an import of it would fail in the field.
    graph = grimp.build_graph("agent", "drivers", "devtools", include_external_packages=False)
    harness = graph.find_descendants("devtools") | {"devtools"}
    offenders = [f"{module} imports {imported}"
                 for module in sorted(graph.modules) if module.split(".")[0] != "devtools"
                 for imported in graph.find_modules_directly_imported_by(module) & harness]
    assert offenders == []


def test_every_import_contract_of_the_house_is_kept() -> None:
    # The layers and bans of docs/architecture.md live in pyproject's [tool.importlinter];
    # .ci/run runs lint-imports too, this keeps them in the suite a developer runs.
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
        "contracts"]
    assert len(contracts) >= 7
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache", "--no-logo"], cwd=ROOT, text=True,
                          capture_output=True, timeout=LINT_TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" KEPT") == len(contracts), done.stdout
