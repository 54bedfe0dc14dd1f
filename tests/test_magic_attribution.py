"""``%carbon last`` and the registry, after a cell charged its share of the machine (issue 13)."""

from __future__ import annotations

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from notebook_carbon.magic import load_ipython_extension, unload_ipython_extension
from notebook_carbon.meters.detect import Detection
from notebook_carbon.meters.shares import CpuTimeShare
from notebook_carbon.registry import Registry
from notebook_carbon.session import Session
from notebook_carbon.settings import Settings
from notebook_carbon.testing import FakeMeter


class Ticking:
    """A cumulative reading that moves by ``step`` each time it is read."""

    def __init__(self, step: float) -> None:
        self.value, self.step = 0.0, step

    def __call__(self) -> float:
        self.value += self.step
        return self.value


@pytest.fixture
def shell(tmp_path):
    cpu = FakeMeter("cpu", "rapl", "package-0", 40.0)
    cpu.share_rule = CpuTimeShare(lambda: Ticking(1.0), Ticking(4.0))  # the tree: a quarter of the machine's work
    ram = FakeMeter("ram", "estimate-ram", "RAM 16 GB", 6.0)  # no rule: charged whole
    session = Session(Settings(registry=str(tmp_path / "registry.sqlite"), region="FR", project="paper"),
                      detection=Detection(meters=(cpu, ram), notes=()))  # fmt: skip
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    ext = load_ipython_extension(shell, session=session)
    yield shell, ext
    unload_ipython_extension(shell)


def test_last_shows_each_components_share_and_the_devices_energy(shell):
    shell, ext = shell
    shell.run_cell("%%carbon --quiet --name shared\nimport time\ntime.sleep(0.05)")
    with capture_output() as shown:
        shell.run_cell("%carbon last")
    report = shown.stdout
    result = ext.last
    cpu = next(c for c in result.measurement.components if c.component == "cpu")
    assert cpu.share == pytest.approx(0.25) and cpu.energy_j == pytest.approx(0.25 * cpu.machine_energy_j)
    assert "attribution: this run's share of each device, of the " in report
    assert "25 % of the device's" in report
    assert "(this process tree's CPU time, 1.00 s of the machine's busy 4.00 s)" in report
    with Registry.open(ext.session.settings.registry_location()) as reg:
        run = reg.get_run(result.uid)
        components = {c["component"]: c for c in reg.components(result.uid)}
    assert run["attribution"] == "share"
    assert run["machine_energy_j"] == pytest.approx(cpu.machine_energy_j + components["ram"]["energy_j"])
    assert (components["cpu"]["share"], components["cpu"]["machine_energy_j"]) == (
        pytest.approx(0.25), pytest.approx(cpu.machine_energy_j))
    assert components["ram"]["share"] is None and components["ram"]["machine_energy_j"] is None
