"""``FakeWidgetFrontEnd``: a Jupyter client that answers widget messages as JupyterLab's widget
manager does, to test (and benchmark) what a kernel shows in a widget-capable front end without a
browser.
"""

from __future__ import annotations

import time
import uuid

__all__ = ["FakeWidgetFrontEnd"]


class FakeWidgetFrontEnd:
    """A Jupyter client doing with comm messages what JupyterLab 4 with ipywidgets 8 does.

    ``widgets=True``: the widget manager's part. On connecting it restores widgets: it opens a
    ``jupyter.widget.control`` comm and sends ``request_states`` (the kernel, without ipywidgets
    imported, closes it: a real front end then falls back on ``comm_info_request``). A
    ``comm_open`` on ``jupyter.widget`` creates a model from its state (protocol major version 2, or
    the comm is closed); a ``DirectionalLinkModel`` copies its source attribute to its target at once
    and sends that as an ``update`` of the target model. Updates from the kernel change models;
    ``comm_close`` removes them. Comms of any other target are closed, as JupyterLab closes comms
    whose target it does not know. ``widgets=False``: JupyterLab without the widget manager, which
    knows no comm target at all.

    ``execute`` sends an execute request as JupyterLab does (``cell_id`` in its metadata and
    ``allow_stdin``), or as a plain client does without them. Every iopub message is handled,
    whatever its parent, and kept in ``messages``.
    """

    def __init__(self, client, *, widgets: bool = True) -> None:
        self.client = client
        self.widgets = widgets
        self.models: dict[str, dict] = {}
        self.messages: list[dict] = []
        if widgets:
            self._open_control_comm()

    # what the front end sends
    def send(self, msg_type: str, content: dict, metadata: dict | None = None) -> str:
        msg = self.client.session.msg(msg_type, content, metadata=metadata or {})
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def execute(self, code: str, *, cell_id: str | None = None, allow_stdin: bool = True) -> str:
        content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                   "allow_stdin": allow_stdin, "stop_on_error": True}
        return self.send("execute_request", content, {"cellId": cell_id} if cell_id else {})

    def _open_control_comm(self) -> None:
        comm_id = uuid.uuid4().hex
        content = {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}}
        self.send("comm_open", content, {"version": "1.0.0"})
        self.send("comm_msg", {"comm_id": comm_id, "data": {"method": "request_states"}})

    # what it does with the kernel's messages
    def wait(self, msg_id: str, *, on_message=None, timeout_s: float = 120) -> list[dict]:
        """Handle iopub messages until the request ``msg_id`` is done; return that request's messages."""
        deadline = time.monotonic() + timeout_s
        while True:
            msg = self.client.get_iopub_msg(timeout=max(deadline - time.monotonic(), 0.1))
            self.messages.append(msg)
            self._handle(msg)
            if on_message is not None:
                on_message(msg)
            if msg["msg_type"] == "status" and msg["parent_header"].get("msg_id") == msg_id:
                if msg["content"]["execution_state"] == "idle":
                    return self.of_request(msg_id)

    def of_request(self, msg_id: str) -> list[dict]:
        return [m for m in self.messages if m["parent_header"].get("msg_id") == msg_id]

    def run(self, code: str, **kwargs) -> list[dict]:
        return self.wait(self.execute(code, **kwargs))

    def _handle(self, msg: dict) -> None:
        kind, content = msg["msg_type"], msg["content"]
        if kind == "comm_open":
            version = str(msg["metadata"].get("version", ""))
            if not self.widgets or content["target_name"] != "jupyter.widget" or not version.startswith("2."):
                self.send("comm_close", {"comm_id": content["comm_id"], "data": {}})
                return
            state = dict(content["data"]["state"])
            self.models[content["comm_id"]] = state
            if state.get("_model_name") in ("DirectionalLinkModel", "LinkModel"):
                self._link(state)
        elif kind == "comm_msg" and content["comm_id"] in self.models:
            data = content["data"]
            if data.get("method") in ("update", "echo_update"):
                self.models[content["comm_id"]].update(data["state"])
        elif kind == "comm_close":
            self.models.pop(content["comm_id"], None)

    def _link(self, state: dict) -> None:
        (source, source_attr), (target, target_attr) = state["source"], state["target"]
        source, target = source.removeprefix("IPY_MODEL_"), target.removeprefix("IPY_MODEL_")
        value = self.models[source].get(source_attr)
        if self.models[target].get(target_attr) != value:  # set + save_changes: only a change is sent
            self.models[target][target_attr] = value
            update = {"method": "update", "state": {target_attr: value}, "buffer_paths": []}
            self.send("comm_msg", {"comm_id": target, "data": update})
