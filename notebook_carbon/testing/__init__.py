"""Fakes shipped with the library, for our tests and for yours. Importable without pytest.

One module per fake (``powercap``, ``nvml``, ``meters``, ``frontend``); every name below is
importable from here: ``from notebook_carbon.testing import FakeMeter``.

``FakePowercap``
    Builds a Linux powercap tree (RAPL packages, dram/core/psys subdomains) in a directory, so the
    real RAPL code reads real files: ``probe_rapl(fake.root)`` or ``Settings(powercap_root=...)``.
``FakeNVML``
    A stand-in for the pynvml module with scripted GPUs; raises pynvml's own exception classes.
``FakeMeter``
    An ``EnergyMeter`` of constant power, for tests of measurement windows and the magic.
``fake_detection``
    A ``Detection`` made of ``FakeMeter``\\ s.

``FakeWidgetFrontEnd``
    A Jupyter client that answers widget messages as JupyterLab's widget manager does, to test
    (and benchmark) what a kernel shows in a widget-capable front end without a browser.

Example::

    from notebook_carbon.testing import FakePowercap
    from notebook_carbon.meters.rapl import probe_rapl

    fake = FakePowercap(tmp_path)
    fake.add_package(energy_uj=1_000_000)
    meter = probe_rapl(fake.root).cpu
    state = meter.begin(0.0)
    fake.set_energy("intel-rapl:0", 3_000_000)
    assert meter.end(state, 1.0) == 2.0  # joules
"""

from .frontend import FakeWidgetFrontEnd
from .meters import FakeMeter, fake_detection
from .nvml import FakeGpu, FakeNVML, Scripted
from .powercap import DEFAULT_MAX_ENERGY_RANGE_UJ, FakePowercap

__all__ = [
    "DEFAULT_MAX_ENERGY_RANGE_UJ",
    "FakeGpu",
    "FakeMeter",
    "FakeNVML",
    "FakePowercap",
    "FakeWidgetFrontEnd",
    "Scripted",
    "fake_detection",
]
