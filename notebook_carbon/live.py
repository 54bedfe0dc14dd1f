"""The live meter: one ipywidgets line under a ``%%carbon`` cell that has run for a second or more.

While such a cell runs in a front end that renders widgets (JupyterLab, Notebook 7, classic Notebook
with the widgets extension), one ``ipywidgets.HTML`` line shows the elapsed time, the power each
component draws now and the energy and emissions so far. It is fed by the shared sampler thread, at
most about once a second, and when the cell ends (ok, failed or interrupted) the widget is closed,
its output emptied and the usual summary line printed once. Everywhere else (terminal IPython,
nbclient or nbconvert execution, a front end without widgets) nothing changes: one summary line.

Which front end renders widgets (``WidgetSupport.renders_widgets``), in this order:

1. Not an ipykernel (terminal IPython): no.
2. A widget manager answered the probe: yes. The kernel cannot see the browser, so once per kernel,
   after the first cell that follows loading the extension, it asks a question only a widget manager
   answers: it opens two models on the ``jupyter.widget`` comm target, a plain ``WidgetModel`` and a
   ``DirectionalLinkModel`` (what ``ipywidgets.jsdlink`` creates) from the first model's attribute
   ``sent`` to its attribute ``seen``. A widget manager creating that link copies the value at once
   and sends it back as an ``update`` of the first model (``@jupyter-widgets/controls``
   ``DirectionalLinkModel.updateBindings`` -> ``save_changes``). The probe carries an empty parent
   header: nbclient keeps only the messages of the cell it runs, so it never records the probe (no
   widget state in an executed notebook), while front ends take comm messages whatever their parent.
   A front end that opened ipywidgets' ``jupyter.widget.control`` comm while ipywidgets was imported
   (a widget manager does on connecting) counts as an answer too; with ipywidgets not imported that
   comm finds no target and leaves no trace, hence the probe.
3. The front end refused the probe (closed its comms: JupyterLab without the widget manager does
   for targets it does not know): no.
4. Not known yet: yes for a notebook front end with a user at it (the execute request names its cell,
   ``cellId``, and lets it read input, ``allow_stdin``), no otherwise. The answer comes on the shell
   channel, so the kernel reads it only once it is idle: in a "Run All" right after loading, the cells
   queued behind the probe run before it. nbclient, nbconvert, papermill and Voila send
   ``allow_stdin`` false and no cell id. Should such a front end not render widgets, it shows nothing:
   the display has no ``text/plain``, and it is emptied when the cell ends.

None of this imports ipywidgets: a cell shorter than ``SHOW_AFTER_S`` never does (~200 ms), and costs
one small object.

Threads. The sampler thread calls ``LiveMeter.on_sample``; ipykernel routes output and comm
messages by the parent header, which lives in context variables of the notebook thread. So the
meter copies the cell's context in ``pre_run_cell`` and creates, displays and updates the widget
inside it: every message carries the running cell's parent, never the next cell's. No thread is
started here; the sampler is shared and long-lived by design.
"""

from __future__ import annotations

import contextvars
import html
import sys
import threading
import uuid
from collections.abc import Mapping
from typing import Any

from .units import duration_text, emissions_text, energy_text, power_text

SHOW_AFTER_S = 1.0
"""Seconds a cell runs before its live line appears; quicker cells never import ipywidgets."""
UPDATE_EVERY_S = 1.0
"""The line changes at most about this often (seconds), whatever the sampling interval."""

# ipywidgets 8 wire protocol, written out so that the probe needs no import of ipywidgets.
_PROTOCOL_VERSION = "2.1.0"
_BASE = {"_model_module": "@jupyter-widgets/base", "_model_module_version": "2.0.0",
         "_view_module": "@jupyter-widgets/base", "_view_module_version": "2.0.0", "_view_name": None}
_CONTROLS = {"_model_module": "@jupyter-widgets/controls", "_model_module_version": "2.0.0",
             "_view_module": "@jupyter-widgets/controls", "_view_module_version": "2.0.0", "_view_name": None}
_VIEW_MIMETYPE = "application/vnd.jupyter.widget-view+json"
_LABELS = {"gpu": "GPU", "cpu": "CPU", "ram": "RAM"}
_STYLE = "font-family: var(--jp-code-font-family, monospace); font-size: var(--jp-code-font-size, 13px)"


class WidgetSupport:
    """Whether the front end of ``shell`` renders ipywidgets, and the live meters of its cells.

    Only an ipykernel shell (one with a ``kernel``) can have such a front end; for any other shell
    every method here is a no-op.
    """

    def __init__(self, shell) -> None:
        self.shell = shell
        self._kernel = getattr(shell, "kernel", None)
        self._answer: bool | None = None  # the probe's: a widget manager answered, or the comms were refused
        self._probed = self._kernel is None
        self._probe: dict[str, Any] = {}  # comm id -> comm, while the probe is out
        self._token = ""
        self.disabled: str | None = None
        """Why the live meter is off for this session (it failed once), if it is."""

    def renders_widgets(self) -> bool:
        """Whether the cell about to run is shown by a front end that renders widgets (notebook thread)."""
        if self._kernel is None or self.disabled is not None:
            return False
        if self._answer is not None:
            return self._answer
        widgets = sys.modules.get("ipywidgets")  # never imported here: only looked at
        widget_class = getattr(widgets, "Widget", None) if widgets is not None else None
        if getattr(widget_class, "_control_comm", None) is not None:
            return True
        try:
            request = self._kernel.get_parent() or {}  # this cell's execute_request
            metadata, content = request.get("metadata") or {}, request.get("content") or {}
            return bool(metadata.get("cellId")) and content.get("allow_stdin") is True
        except Exception:  # a kernel unlike ipykernel's: no live line, and the run goes on unharmed
            return False

    def meter(self, *, name: str | None, intensity, pue: float) -> LiveMeter:
        """The live meter of a run about to start (notebook thread, in ``pre_run_cell``)."""
        return LiveMeter(self.shell, name=name, intensity=intensity, pue=pue)

    def after_cell(self) -> None:
        """Ask the front end once, after the first cell following load (a front end is connected then)."""
        if self._probed:
            return
        self._probed = True
        self._send_probe()

    def disable(self, reason: str) -> None:
        self.disabled = reason

    def close(self) -> None:
        """Withdraw an unanswered probe (when the extension is unloaded)."""
        self._close_probe()

    # -- the probe --------------------------------------------------------------------------------

    def _send_probe(self) -> None:
        import comm

        kernel = self._kernel
        manager = comm.get_comm_manager()
        self._token = uuid.uuid4().hex
        source, link = uuid.uuid4().hex, uuid.uuid4().hex
        states = {
            source: {**_BASE, "_model_name": "WidgetModel", "sent": self._token, "seen": ""},
            link: {
                **_CONTROLS,
                "_model_name": "DirectionalLinkModel",
                "source": [f"IPY_MODEL_{source}", "sent"],
                "target": [f"IPY_MODEL_{source}", "seen"],
            },
        }
        for comm_id, state in states.items():
            probe = comm.create_comm(comm_id=comm_id, target_name="jupyter.widget", primary=False)
            probe.on_msg(self._on_probe_msg)
            probe.on_close(self._on_probe_close)
            manager.register_comm(probe)
            self._probe[comm_id] = probe
            content = {
                "comm_id": comm_id,
                "target_name": "jupyter.widget",
                "target_module": None,
                "data": {"state": state, "buffer_paths": []},
            }
            # An empty parent: no cell's output stream (and so no nbclient notebook) holds the probe.
            kernel.session.send(
                kernel.iopub_socket,
                "comm_open",
                content,
                parent={},
                metadata={"version": _PROTOCOL_VERSION},
                ident=probe.topic,
            )

    def _on_probe_msg(self, msg: dict[str, Any]) -> None:
        data = msg.get("content", {}).get("data") or {}
        if data.get("method") == "update" and (data.get("state") or {}).get("seen") == self._token:
            self._answer = True
            self._close_probe()

    def _on_probe_close(self, msg: dict[str, Any]) -> None:
        # the front end refused a model: no widget manager, or one that cannot build these
        self._probe.pop(msg.get("content", {}).get("comm_id"), None)
        if self._answer is None:
            self._answer = False
        self._close_probe()

    def _close_probe(self) -> None:
        probes, self._probe = self._probe, {}
        for probe in probes.values():
            probe.close()


class LiveMeter:
    """The live line of one run: made on the notebook thread, fed by the sampler, closed at the end."""

    def __init__(self, shell, *, name: str | None, intensity, pue: float) -> None:
        self._shell = shell
        # The cell's parent header, as ipykernel keeps it (context variables): output and comm
        # messages sent from the sampler inside this context go to this cell.
        self._context = contextvars.copy_context()
        self._name = name
        self._intensity = intensity
        self._pue = pue
        self._lock = threading.Lock()  # one update at a time, and none once closed
        self._widget: Any = None
        self._display_id = ""
        self._shown_at = -1.0  # the window's elapsed seconds at the last value shown
        self._closed = False
        self.values_shown = 0
        """Values the line has shown (its first and every update)."""
        self.error: BaseException | None = None
        """What stopped the live line, if something did."""

    def on_sample(self, window) -> None:
        """Sampler hook: show the line once the cell has run ``SHOW_AFTER_S``, then update it."""
        if self._closed or self.error is not None or window.elapsed_s() < SHOW_AFTER_S:
            return
        with self._lock:
            elapsed_s = window.elapsed_s()
            # 0.9: the sampler's reads are a second apart give or take a little; never skip one
            if self._closed or self.error is not None or elapsed_s - self._shown_at < 0.9 * UPDATE_EVERY_S:
                return
            try:
                value = live_html(self._text(window, elapsed_s))
                self._context.run(self._show, value)
                self._shown_at = elapsed_s
                self.values_shown += 1
            except Exception as exc:  # the measurement goes on; post_run_cell reports it once
                self.error = exc

    def _text(self, window, elapsed_s: float) -> str:
        from .impact.footprint import footprint

        energy_j = sum(window.energy_so_far_j().values())
        emissions_g = footprint(energy_j, pue=self._pue, intensity=self._intensity).emissions_g
        return live_text(self._name, elapsed_s, window.latest_power_w(), energy_j, emissions_g)

    def _show(self, value: str) -> None:
        """Create and display the widget, or update it; runs in the cell's context."""
        if self._widget is not None:
            self._widget.value = value
            return
        import ipywidgets  # first use in this kernel: ~200 ms, on the sampler thread

        widget = ipywidgets.HTML(value=value)
        self._widget = widget
        self._display_id = uuid.uuid4().hex
        bundle = {_VIEW_MIMETYPE: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id}}
        # no text/plain: a notebook saved while the cell runs shows no "HTML(value=...)" anywhere
        self._shell.display_pub.publish(data=bundle, metadata={}, transient={"display_id": self._display_id})

    def close(self) -> BaseException | None:
        """Stop updating, close the widget and empty its output (notebook thread, in ``post_run_cell``).

        Returns what stopped the line early or went wrong closing it, for the caller to report.
        """
        with self._lock:  # waits for an update in progress; none starts after this
            self._closed = True
            widget, self._widget = self._widget, None
        if widget is not None:
            try:
                for model in (widget, widget.layout, widget.style):
                    model.close()
                # the output keeps its place but shows nothing, live or in the saved notebook
                self._shell.display_pub.publish(
                    data={}, metadata={}, transient={"display_id": self._display_id}, update=True
                )
            except Exception as exc:
                self.error = self.error or exc
        return self.error


# -- the line (pure) ----------------------------------------------------------------------------------


def format_power(power_w: float) -> str:
    """Watts as "253 W", "41.2 W", "6 W", "1.2 kW": ``units.power_text``."""
    return power_text(power_w)


def live_text(
    name: str | None, elapsed_s: float, power_w: Mapping[str, float], energy_j: float, emissions_g: float
) -> str:
    """``carbon [name] (running): 3.1 Wh · 1.2 g CO2e · 12 s · now GPU 253 W, CPU 41.2 W, RAM 6 W``.

    Whole seconds, since the line changes once a second; components in the summary line's order.
    """
    head = "carbon" + (f" [{name}]" if name else "") + " (running)"
    power = ", ".join(f"{label} {format_power(power_w[c])}" for c, label in _LABELS.items() if c in power_w)
    fields = [
        energy_text(energy_j),
        emissions_text(emissions_g),
        duration_text(float(int(elapsed_s))),
        f"now {power}" if power else "no power reading yet",
    ]
    return f"{head}: " + " · ".join(fields)


def live_html(text: str) -> str:
    """The widget's value: ``text`` escaped (run names are the user's), in the notebook's code font."""
    return f'<span class="nc-live-meter" style="{_STYLE}">{html.escape(text)}</span>'
