"""The BR2_EXTERNAL tree (buildroot/) is consistent with itself and with the app, without Buildroot.

CI has no Buildroot checkout, so `make ... defconfig`, check-dotconfig and check-package run where
one is at hand (docs/buildroot.md). What they cannot see, or what would only fail hours into a
full build, is checked here: names, sources, package dirs, setup types, hashes, defconfig paths,
the unit against our console script, the image config against the data partition.
shellcheck and systemd-analyze run when installed (`make test` installs shellcheck).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from controller.core.config import validate

REPO = Path(__file__).parents[2]
TREE = REPO / "buildroot"
NAME = "SITEEDGE"
EXT_VAR = f"$(BR2_EXTERNAL_{NAME}_PATH)"
BOARD = TREE / "board" / "siteedge"
OVERLAY = BOARD / "rootfs_overlay"
PKG = TREE / "package"
UNIT = PKG / "siteedge" / "siteedge.service"
FACTORY_CONFIG = "/etc/siteedge/siteedge.toml"

# package/pkg-python.mk (2026.02.x and 2026.08): the only accepted values.
SETUP_TYPES = {
    "setuptools", "setuptools-rust", "pep517", "flit", "flit-bootstrap", "hatch", "maturin", "poetry",
}
# pyproject [build-system] build-backend -> the Buildroot setup type that builds it.
BACKEND_SETUP_TYPE = {
    "setuptools.build_meta": "setuptools",
    "hatchling.build": "hatch",
    "poetry.core.masonry.api": "poetry",
    "flit_core.buildapi": "flit",
    "maturin": "maturin",
}
# Runtime dependency (pyproject) -> the Kconfig symbol that puts it in the image.
IMAGE_PACKAGE = {
    "pymodbus": "BR2_PACKAGE_PYTHON_PYMODBUS_SITEEDGE",
    "pyserial": "BR2_PACKAGE_PYTHON_SERIAL",
    "ocpp": "BR2_PACKAGE_PYTHON_OCPP",
    "paho-mqtt": "BR2_PACKAGE_PYTHON_PAHO_MQTT",
    "tinydb": "BR2_PACKAGE_PYTHON_TINYDB",
    "fastapi": "BR2_PACKAGE_PYTHON_FASTAPI",
    "uvicorn": "BR2_PACKAGE_PYTHON_UVICORN",
    "websockets": "BR2_PACKAGE_PYTHON_WEBSOCKETS",
    "tomlkit": "BR2_PACKAGE_PYTHON_TOMLKIT",
    "jsonschema-rs": "BR2_PACKAGE_PYTHON_JSONSCHEMA_RS",
}
# Packages of this tree that provide a pyproject dependency at a version of our choosing.
OWN_VERSION_OF = {
    "pymodbus": "python-pymodbus-siteedge",
    "ocpp": "python-ocpp",
    "tinydb": "python-tinydb",
    "jsonschema-rs": "python-jsonschema-rs",
}
# What upstream Buildroot ships for the rest, at the commit this tree is tested with
# (show-info of e991fa0716, 2026.08-rc1-25; docs/buildroot.md). 2026.02.x is older (tomlkit 0.13.3).
UPSTREAM_VERSION = {
    "pyserial": "3.5",
    "paho-mqtt": "2.1.0",
    "fastapi": "0.136.3",
    "uvicorn": "0.46.0",
    "websockets": "16.0",
    "tomlkit": "0.14.0",
}
# Cargo-vendored archives whose sha256 can only be computed with crates.io at hand
# (docs/buildroot.md, "First build"). Remove the entry when the hash line is added.
VENDOR_HASH_PENDING = {"python-jsonschema-rs"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def make_vars(mk: Path) -> dict[str, str]:
    """`VAR = value` assignments of a package .mk (continuation lines joined)."""
    text = mk.read_text().replace("\\\n", " ")
    return {m[1]: " ".join(m[2].split()) for m in re.finditer(r"^([A-Z0-9_]+)\s*\??=\s*(.*)$", text, re.M)}


def packages() -> list[Path]:
    return sorted(p for p in PKG.iterdir() if p.is_dir())


def prefix(pkg: Path) -> str:
    return pkg.name.upper().replace("-", "_")


def hash_entries(pkg: Path) -> list[list[str]]:
    hashfile = pkg / f"{pkg.name}.hash"
    lines = [ln for ln in hashfile.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return [ln.split() for ln in lines]


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def fstab_mounts() -> dict[str, tuple[str, str]]:
    """Mount point -> (device, fstype) of the fstab lines post-build.sh appends."""
    script = (BOARD / "post-build.sh").read_text()
    mounts = {}
    for m in re.finditer(r"printf '([^']*)\\n'", script):
        fields = m[1].replace("\\t", " ").split()
        if len(fields) >= 3:
            mounts[fields[1]] = (fields[0], fields[2])
    return mounts


def factory_config() -> dict:
    return tomllib.loads((OVERLAY / FACTORY_CONFIG.lstrip("/")).read_text())


def test_external_desc_names_the_tree_and_external_mk_includes_every_package() -> None:
    desc = dict(
        line.split(":", 1) for line in (TREE / "external.desc").read_text().splitlines() if ":" in line
    )
    assert desc["name"].strip() == NAME
    assert re.fullmatch(r"[A-Za-z0-9_]+", desc["name"].strip())
    assert desc.get("desc", "").strip()
    include = (TREE / "external.mk").read_text()
    assert f"include $(sort $(wildcard {EXT_VAR}/package/*/*.mk))" in include


def test_config_in_sources_exist_and_every_package_is_sourced() -> None:
    sources = re.findall(r'^source "([^"]+)"', (TREE / "Config.in").read_text(), re.M)
    ext = f"$BR2_EXTERNAL_{NAME}_PATH/"
    assert sources and all(s.startswith(ext) for s in sources)
    paths = [TREE / s.removeprefix(ext) for s in sources]
    assert [p for p in paths if not p.is_file()] == []
    assert sorted(p.parent.name for p in paths) == [p.name for p in packages()]


def test_package_dirs_are_complete_and_consistently_named() -> None:
    for pkg in packages():
        mk = pkg / f"{pkg.name}.mk"
        assert (pkg / "Config.in").is_file() and mk.is_file(), pkg.name
        variables = make_vars(mk)
        assert f"{prefix(pkg)}_VERSION" in variables, f"{mk.name}: variables named after the package"
        assert "$(eval $(python-package))" in mk.read_text(), pkg.name
        assert f"config BR2_PACKAGE_{prefix(pkg)}\n" in (pkg / "Config.in").read_text()
        setup = variables.get(f"{prefix(pkg)}_SETUP_TYPE")
        assert setup in SETUP_TYPES, f"{pkg.name}: SETUP_TYPE {setup!r} is not one of {sorted(SETUP_TYPES)}"
        local = variables.get(f"{prefix(pkg)}_SITE_METHOD") == "local"
        # A local package has no archive to hash; every downloaded one needs a .hash file.
        assert (pkg / f"{pkg.name}.hash").is_file() or local, f"{pkg.name}: missing .hash"


def test_hash_files_cover_each_archive_and_license_file() -> None:
    for pkg in packages():
        variables = make_vars(pkg / f"{pkg.name}.mk")
        if variables.get(f"{prefix(pkg)}_SITE_METHOD") == "local":
            continue
        entries = hash_entries(pkg)
        for entry in entries:
            assert len(entry) == 3, f"{pkg.name}.hash: {' '.join(entry)!r} needs type, hash, file"
            assert entry[0] == "sha256" and re.fullmatch(r"[0-9a-f]{64}", entry[1]), entry
        hashed = {entry[2] for entry in entries}
        version = variables[f"{prefix(pkg)}_VERSION"]
        if variables[f"{prefix(pkg)}_SETUP_TYPE"] in ("maturin", "setuptools-rust"):
            archive = f"{pkg.name}-{version}-cargo6.tar.gz"  # checked after cargo vendoring
            if pkg.name in VENDOR_HASH_PENDING:
                assert archive not in hashed, f"{pkg.name}: hash added, drop it from VENDOR_HASH_PENDING"
                continue
        else:
            archive = variables[f"{prefix(pkg)}_SOURCE"].replace(f"$({prefix(pkg)}_VERSION)", version)
        assert archive in hashed, f"{pkg.name}.hash: no hash for {archive}"
        licenses = variables[f"{prefix(pkg)}_LICENSE_FILES"].split()
        assert licenses and set(licenses) <= hashed, f"{pkg.name}.hash: license files {licenses}"


def test_app_package_matches_pyproject() -> None:
    project = pyproject()
    variables = make_vars(PKG / "siteedge" / "siteedge.mk")
    assert variables["SITEEDGE_VERSION"] == project["project"]["version"]
    backend = project["build-system"]["build-backend"]
    assert variables["SITEEDGE_SETUP_TYPE"] == BACKEND_SETUP_TYPE[backend]
    assert variables["SITEEDGE_SITE"] == f"$(realpath {EXT_VAR}/..)"
    # The local method rsyncs the repository: never this tree or build output into the build.
    exclusions = variables["SITEEDGE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS"].split()
    assert {"--exclude=/buildroot", "--exclude=/output", "--exclude=/.venv"} <= set(exclusions)


def test_every_runtime_dependency_is_in_the_image_at_an_accepted_version() -> None:
    selects = set(re.findall(r"^\tselect (\S+)", (PKG / "siteedge" / "Config.in").read_text(), re.M))
    for spec in pyproject()["project"]["dependencies"]:
        req = Requirement(spec)
        assert req.name in IMAGE_PACKAGE, f"{req.name}: new dependency, add it to buildroot/ (IMAGE_PACKAGE)"
        assert IMAGE_PACKAGE[req.name] in selects, f"package/siteedge/Config.in must select it for {req.name}"
        if req.name in OWN_VERSION_OF:
            pkg = PKG / OWN_VERSION_OF[req.name]
            version = make_vars(pkg / f"{pkg.name}.mk")[f"{prefix(pkg)}_VERSION"]
            assert req.specifier.contains(version), f"{pkg.name} {version} does not satisfy {spec}"
        else:
            version = UPSTREAM_VERSION[req.name]
            assert req.specifier.contains(version), f"Buildroot ships {req.name} {version}, not {spec}"


def test_defconfigs_reference_existing_files_and_force_hash_checks() -> None:
    defconfigs = sorted((TREE / "configs").glob("*_defconfig"))
    assert [d.name for d in defconfigs] == ["siteedge_cm4io_64_defconfig", "siteedge_rpi4_64_defconfig"]
    for defconfig in defconfigs:
        text = defconfig.read_text()
        assert "BR2_DOWNLOAD_FORCE_CHECK_HASHES=y" in text.splitlines()
        assert "BR2_PACKAGE_SITEEDGE=y" in text.splitlines()
        refs = re.findall(re.escape(EXT_VAR) + r"/([^\" ]+)", text)
        assert refs, defconfig.name
        # `make defconfig` accepts a missing file; the build would stop much later.
        assert [r for r in refs if not (TREE / r).exists()] == [], defconfig.name


def test_unit_runs_our_console_script_on_the_data_partition() -> None:
    unit = unit_settings()
    scripts = pyproject()["project"]["scripts"]
    exec_start = shlex.split(unit["ExecStart"][0])
    assert Path(exec_start[0]).name in scripts and exec_start[0].startswith("/usr/bin/")
    assert scripts[Path(exec_start[0]).name] == "controller.cli:main"
    assert exec_start[1:3] == ["run", "--config"]
    data_dir = factory_config()["site"]["data_dir"]
    assert Path(exec_start[3]).parent == Path(data_dir)
    # The live config is seeded from the factory file the overlay installs.
    assert FACTORY_CONFIG in unit["ExecStartPre"][0] and exec_start[3] in unit["ExecStartPre"][0]
    assert unit["RequiresMountsFor"] == [data_dir] and unit["ReadWritePaths"] == [data_dir]
    assert unit["Restart"] == ["always"] and unit["User"] == ["siteedge"]
    assert "dialout" in unit["SupplementaryGroups"][0].split()
    # siteedge sends READY=1 and WATCHDOG=1 itself (controller/sdnotify.py, tested in
    # tests/component/test_sdnotify.py): Type=notify with a watchdog restarts a hung event loop.
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert 10 <= int(unit["WatchdogSec"][0]) <= 120
    tmpfiles = (PKG / "siteedge" / "siteedge-tmpfiles.conf").read_text()
    assert f"d {data_dir} 0750 siteedge siteedge -" in tmpfiles.splitlines()


def test_image_config_is_valid_and_keeps_its_data_on_the_data_partition() -> None:
    config = validate(factory_config())
    assert config.api.tls is True
    mounts = fstab_mounts()
    mount = next((m for m in mounts if Path(config.site.data_dir).is_relative_to(m) and m != "/"), None)
    assert mount == "/data", f"data_dir {config.site.data_dir} is not below a mounted data partition"
    device, fstype = mounts[mount]
    label = device.removeprefix("LABEL=")
    genimage = (BOARD / "genimage.cfg").read_text()
    image = re.search(r"image data\.ext4 \{(.*?)\n\}", genimage, re.S)
    assert image is not None and f'label = "{label}"' in image[1] and fstype in image[1]
    assert re.search(r'partition data \{[^}]*image = "data\.ext4"', genimage)
    assert "align = 1M" in genimage


def test_post_build_adds_the_data_mount_once(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "fstab").write_text("/dev/root / auto ro 0 1\n")
    for _ in range(2):  # Buildroot runs it again on every rebuild of the same target dir
        subprocess.run(["sh", str(BOARD / "post-build.sh"), str(tmp_path)], check=True)
    lines = (tmp_path / "etc" / "fstab").read_text().splitlines()
    assert lines == ["/dev/root / auto ro 0 1", "LABEL=data\t/data\text4\tdefaults,noatime,nofail\t0\t2"]
    assert (tmp_path / "data").is_dir()


def test_rs485_uart_is_free_of_consoles() -> None:
    cmdline = (BOARD / "cmdline.txt").read_text().split()
    assert not [arg for arg in cmdline if arg.startswith(("console=ttyAMA", "console=serial"))]
    assert "ro" in cmdline
    for defconfig in (TREE / "configs").glob("*_defconfig"):
        assert 'BR2_TARGET_GENERIC_GETTY_PORT="tty1"' in defconfig.read_text().splitlines()


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck not installed (make test installs it)"
)
def test_board_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in BOARD.glob("*.sh"))
    done = subprocess.run(["shellcheck", *scripts], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not Path("/usr/lib/systemd/system").is_dir(),
    reason="systemd-analyze or the host's unit directory is missing (no systemd on this host)",
)
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # A fake root: the host's units for the dependencies, stubs for the binaries the unit starts.
    (tmp_path / "usr" / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "etc" / "systemd" / "system").mkdir(parents=True)
    shutil.copy(UNIT, tmp_path / "etc" / "systemd" / "system" / UNIT.name)
    for binary in ("usr/bin/siteedge", "bin/sh"):
        stub = tmp_path / binary
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text("#!/bin/sh\n")
        stub.chmod(0o755)
    done = subprocess.run(
        ["systemd-analyze", "verify", f"--root={tmp_path}", UNIT.name],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )
    # Unknown keys and bad values are only warnings (rc 0): any output is a failure.
    assert done.returncode == 0 and done.stderr.strip() == "" and done.stdout.strip() == "", done.stderr
