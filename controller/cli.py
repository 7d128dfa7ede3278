"""Command line: siteedge run | check-config | demo | --version."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from controller import __version__
from controller.core.config import Config, ConfigError
from controller.sdnotify import Notifier

EXIT_CONFIG = 2
RESTART = -1  # internal: _run asks main() to re-execute the process (never an exit status)


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr
    )
    # The ocpp library logs every frame at INFO, including idTags: keep it at WARNING.
    logging.getLogger("ocpp").setLevel(logging.WARNING)


def _load(path: str) -> Config | None:
    """The validated config, or None after printing one line per problem to stderr."""
    from controller.app import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return None


def _check_config(path: str) -> int:
    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    print(
        f"{path}: ok ({len(config.chargers)} charger(s), {len(config.evse_uids())} EVSE(s), "
        f"{len(config.meters)} meter(s), uplink {config.mqtt.url}, topics {config.mqtt.topic_root}/#)"
    )
    return 0


async def _run(path: str) -> int:
    from controller.app import SiteController

    config = _load(path)
    if config is None:
        return EXIT_CONFIG
    _setup_logging(config.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    restart = False

    def request_restart() -> None:
        nonlocal restart
        restart = True
        stop.set()

    controller = SiteController(config, config_path=path, on_restart=request_restart)
    notifier = Notifier()
    keep_alive: asyncio.Task[None] | None = None
    try:
        await controller.start()
        # Type=notify: systemd counts the service as started only now, with every listener open.
        notifier.send("READY=1", f"STATUS=siteedge {__version__}: site {config.site.location_id} running")
        keep_alive = asyncio.create_task(notifier.keep_alive(), name="sd-watchdog")
        await stop.wait()
        logging.getLogger("siteedge").info("%s requested; shutting down", "restart" if restart else "stop")
    finally:
        # A restart re-executes in place (same pid): systemd sees a reload, ended by the next READY=1.
        notifier.send("RELOADING=1" if restart else "STOPPING=1")
        if keep_alive is not None:
            keep_alive.cancel()
        await controller.stop()
    return RESTART if restart else 0


def _reexec() -> None:
    """Start over with the same command line in this process (same pid, so any supervisor keeps it)."""
    logging.getLogger("siteedge").info("restarting: %s", " ".join(sys.orig_argv))
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `siteedge` console script."""
    parser = argparse.ArgumentParser(
        prog="siteedge", description="Edge-site controller for EV charging sites."
    )
    parser.add_argument("--version", action="version", version=f"siteedge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the controller (OCPP server, Modbus, uplink, web UI)")
    run.add_argument("--config", required=True, help="TOML configuration file")
    check = sub.add_parser("check-config", help="validate a configuration file (exit 2 if invalid)")
    check.add_argument("file")
    demo = sub.add_parser("demo", help="run a simulated site with its own broker and backend")
    demo.add_argument("--duration", type=float, default=None, help="exit after this many seconds")
    demo.add_argument("--api-port", type=int, default=8080, help="web UI port (0 = any free port)")
    demo.add_argument("--speed", type=float, default=30.0, help="simulated-time speed-up of the cars")
    demo.add_argument("--workdir", default="var/demo", help="config, data, logs and recordings")
    args = parser.parse_args(argv)

    if args.command == "check-config":
        return _check_config(args.file)
    if args.command == "run":
        code = asyncio.run(_run(args.config))
        if code == RESTART:
            # Graceful restart (web UI): everything is stopped and flushed; the new process
            # reads the config file again. Re-exec rather than an exit code for a supervisor:
            # it works under systemd, a SysV/BusyBox init script, or with none at all.
            _reexec()
        return code
    # The demo lives in hil/ (simulators), which production code never imports: hand over the
    # process instead, so Ctrl-C and exit codes behave as if it had been started directly.
    cmd = [sys.executable, "-m", "hil.demo", "--api-port", str(args.api_port), "--speed", str(args.speed)]
    cmd += ["--workdir", args.workdir]
    if args.duration is not None:
        cmd += ["--duration", str(args.duration)]
    os.execv(sys.executable, cmd)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
