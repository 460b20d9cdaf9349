"""Stage kernels forked from a warm process: each stage still runs in a fresh kernel of its own, but
the kernel starts with torch, pandas, scikit-learn, matplotlib, timm, the ONNX exporter and kdcore
already imported, instead of paying 10-15 s for them per stage.

The warm process is Python's own fork server (``multiprocessing``'s ``forkserver`` start method):
started once per ``kd study``, it imports ``kdcore.study.kernel_preload`` and forks a child per
kernel. jupyter_client starts kernels through a provisioner; ``ForkedKernelManager`` gives papermill
one whose launch forks instead of spawning a Python interpreter, and everything else (connection
file, ports, messaging, shutdown, the failing cell's report) is jupyter_client's and nbclient's as
for any kernel. The fork server itself never runs a tensor operation, so no OpenMP or BLAS thread
exists when it forks; each kernel sets its own thread counts from the environment it is given.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import uuid
from contextlib import contextmanager

from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

from kdcore.errors import Stopped

PRELOAD = "kdcore.study.kernel_preload"
LAUNCHER = "ipykernel_launcher"  # the module a python kernelspec runs: the one kernel that can be forked


def _fork_server() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([PRELOAD])  # read when the server starts: at the first kernel
    return context


def _serve(argv: list[str], env: dict[str, str], cwd: str | None) -> None:
    """The forked child: become the kernel ``argv`` describes, in the environment papermill gave it."""
    os.setsid()  # its own session and process group, as jupyter_client gives a spawned kernel
    os.environ.clear()
    os.environ.update(env, JPY_PARENT_PID=str(os.getppid()))  # ipykernel exits when the fork server does
    if cwd:
        os.chdir(cwd)
    from threadpoolctl import threadpool_limits

    # OpenMP and BLAS read their variables when loaded, which was in the fork server, not here
    threadpool_limits(int(env.get("OMP_NUM_THREADS") or os.cpu_count() or 1))
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance(argv=argv)


class _Forked:
    """What ``LocalProvisioner`` uses of a ``subprocess.Popen``, for a process from the fork server."""

    stdin = stdout = stderr = None

    def __init__(self, process: multiprocessing.process.BaseProcess):
        self.process, self.pid = process, process.pid

    def poll(self) -> int | None:
        return self.process.exitcode

    def wait(self, timeout: float | None = None) -> int | None:
        self.process.join(timeout)
        return self.process.exitcode

    def send_signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkedProvisioner(LocalProvisioner):
    """``LocalProvisioner`` with a launch that forks the warm process (for an ipykernel kernelspec;
    any other kernel is spawned as usual)."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        if LAUNCHER not in cmd:
            return await super().launch_kernel(cmd, **kwargs)
        argv = cmd[cmd.index(LAUNCHER) + 1:]
        process = _fork_server().Process(target=_serve, args=(argv, kwargs.get("env") or dict(os.environ), kwargs.get("cwd")),
                                         name="kernel")
        process.start()
        self.process = _Forked(process)
        self.pid = self.pgid = process.pid  # the child leads its own group (or is about to: signals fall back to the pid)
        self.cwd = kwargs.get("cwd")
        return self.connection_info


class ForkedKernelManager(AsyncKernelManager):
    """The kernel manager papermill is given (``kernel_manager_class``): kernels from the warm process."""

    async def _async_pre_start_kernel(self, **kw):
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", None) or uuid.uuid4().hex
            self.provisioner = ForkedProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
GRACE_S = 3.0  # a kernel told to stop (SIGTERM) gets this long before it is killed


def end_descendants(spared: frozenset[int] = frozenset(), fork_server: bool = False,
                    grace_s: float = GRACE_S) -> list[int]:
    """Stop every process this one started, however deep (the stage kernels forked into sessions
    of their own, their workers), but the ``spared`` pids: SIGTERM, then SIGKILL for those still
    alive after ``grace_s``; with ``fork_server``, then the fork server itself, told to stop as
    multiprocessing expects (a later study in this process starts a new one). Returns their pids."""
    import psutil

    server = multiprocessing.forkserver._forkserver._forkserver_pid
    children = [c for c in psutil.Process().children(recursive=True) if c.pid not in spared | {server}]
    for child in children:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(children, timeout=grace_s)
    for child in alive:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=grace_s)
    if fork_server and server is not None and server not in spared:
        multiprocessing.forkserver._forkserver._stop()  # closes its "alive" pipe: it exits, and is reaped
    return [c.pid for c in children] + ([server] if fork_server and server else [])


@contextmanager
def stopped_by_signals():
    """While the block runs, SIGTERM, SIGHUP and SIGINT stop it (``Stopped``): its kernels and its
    fork server end first, then the block. On any other way out, a kernel still alive ends too (the
    fork server stays for the next study of this process, and exits with it). Processes that ran
    before the block are spared. A finished stage keeps its record; one cut short resumes at the
    next run."""
    import psutil

    spared = frozenset(c.pid for c in psutil.Process().children(recursive=True))

    def stop(signum, frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        end_descendants(spared, fork_server=True)  # first: the threads waiting on a kernel return once it is gone
        raise Stopped(signum)

    main = threading.current_thread() is threading.main_thread()  # where Python lets handlers be set
    previous = {s: signal.signal(s, stop) for s in STOP_SIGNALS} if main else {}
    try:
        yield
    finally:
        for s in previous:  # a second signal while cleaning up is not raised again
            signal.signal(s, signal.SIG_IGN)
        try:
            end_descendants(spared)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
