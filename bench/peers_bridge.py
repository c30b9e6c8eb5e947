"""Plugs oimsearch into the shared peer harness without copying it.

The harness lives outside the repo (``../shared/bench/peers`` beside the repo root, or
``--peers-dir``). Its adapters are found by name through ``benchlib.adapters.ALL_PEERS``,
``module -> benchlib.adapters.<module>``. :func:`register` adds this folder (``bench/``) to that
package's search path and our adapter to the table, so ``get_peer("oimsearch")`` imports
``bench/oimsearch_peer.py`` in any process that called it: the orchestrator, each worker (which
``bench/run.py`` runs in place of the harness's ``run.py``) and each cold-start child (whose
code gets :data:`PRELUDE` in front, see :func:`install_hooks`).

Kept light (standard library only): it runs in front of every cold-start child of our peer.
"""

from __future__ import annotations

import importlib.util
import os
import sys

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_DIR = os.path.dirname(BENCH_DIR)
DEFAULT_PEERS_DIR = os.path.join(os.path.dirname(REPO_DIR), "shared", "bench", "peers")

# name -> (module in bench/, class), the harness's own convention
OUR_PEERS = {"oimsearch": ("oimsearch_peer", "OimsearchPeer")}

PRELUDE = (
    "import sys\n"
    "sys.path.insert(0, {bench!r})\n"
    "import peers_bridge\n"
    "peers_bridge.register({peers!r})\n"
)


def find_peers_dir(override: str | None = None) -> str | None:
    """``--peers-dir``, else ``$OIMSEARCH_PEERS_DIR``, else ``../shared/bench/peers`` relative to
    the repo root; None if the harness is not there."""
    if override:
        if not os.path.isfile(os.path.join(override, "run.py")):
            raise SystemExit(f"--peers-dir {override}: no run.py there")
        return os.path.abspath(override)
    for cand in (os.environ.get("OIMSEARCH_PEERS_DIR"), DEFAULT_PEERS_DIR):
        if cand and os.path.isfile(os.path.join(cand, "run.py")):
            return os.path.abspath(cand)
    return None


def register(peers_dir: str):
    """Makes ``benchlib.adapters.get_peer`` know our adapter(s); returns ``benchlib.adapters``."""
    if peers_dir not in sys.path:
        sys.path.insert(0, peers_dir)
    import benchlib.adapters as adapters

    if BENCH_DIR not in adapters.__path__:
        adapters.__path__.append(BENCH_DIR)
    adapters.ALL_PEERS.update(OUR_PEERS)
    return adapters


def load_harness(peers_dir: str):
    """The harness's ``run.py`` as module ``peers_run`` (our own script is also ``run.py``)."""
    register(peers_dir)
    mod = sys.modules.get("peers_run")
    if mod is None:
        spec = importlib.util.spec_from_file_location(
            "peers_run", os.path.join(peers_dir, "run.py")
        )
        mod = importlib.util.module_from_spec(spec)
        sys.modules["peers_run"] = mod
        spec.loader.exec_module(mod)
    return mod


def install_hooks(peers_run, peers_dir: str, peer: str, evaluate) -> None:
    """Worker-side hooks on the harness module (its ``worker()`` looks these names up at call
    time): ``evaluate`` is replaced by ours (full top-100 run lists, scored later by
    bench/metrics.py); for our own peer, cold-start children get :data:`PRELUDE` so that
    their ``get_peer("oimsearch")`` works."""
    peers_run.evaluate = evaluate
    if peer in OUR_PEERS:
        original = peers_run.timed_child
        prelude = PRELUDE.format(bench=BENCH_DIR, peers=peers_dir)

        def timed_child(code, timeout=120):
            return original(code if code == "pass" else prelude + code, timeout)

        peers_run.timed_child = timed_child
