#!/usr/bin/env python3
"""Packages built binaries for scripts/release: the archive, the npm packages, the PyPI wheel,
and SHA256SUMS. Standard library only (plus `npm pack` for the npm tarballs), so that it runs
wherever scripts/release does."""

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

NAME = "stripe-sync-rs"
SUMMARY = "Stripe to Postgres sync: sync-engine, the connectors, and the stripe-sync bundle (prebuilt binaries)"
ROOT = Path(__file__).resolve().parents[2]

# Rust target -> (npm os, npm cpu, npm libc, wheel platform prefix)
TARGETS = {
    "x86_64-unknown-linux-gnu": ("linux", "x64", "glibc", "manylinux_{glibc}_x86_64"),
    "aarch64-unknown-linux-gnu": ("linux", "arm64", "glibc", "manylinux_{glibc}_aarch64"),
    "x86_64-apple-darwin": ("darwin", "x64", None, "macosx_10_12_x86_64"),
    "aarch64-apple-darwin": ("darwin", "arm64", None, "macosx_11_0_arm64"),
}


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_sums(directory, paths):
    lines = [f"{sha256(directory / p)}  {p}\n" for p in sorted(paths)]
    (directory / "SHA256SUMS").write_text("".join(lines))


def stage_binaries(bin_dir, binaries, dest):
    """Copies the binaries, without their debug info where strip is available (debug builds
    shrink about fourfold; symbols stay, so backtraces keep function names)."""
    dest.mkdir(parents=True)
    strip = shutil.which("strip")
    for name in binaries:
        target = dest / name
        shutil.copy2(bin_dir / name, target)
        if strip:
            subprocess.run([strip, "--strip-debug", str(target)], check=True)
        target.chmod(0o755)


def archive(args, binaries):
    base = f"stripe-sync-{args.version}-{args.target}"
    top = args.out / "stage" / base
    stage_binaries(args.bin_dir, binaries, top)
    shutil.copy2(ROOT / "README.md", top / "README.md")
    shutil.copy2(ROOT / "LICENSE", top / "LICENSE")
    write_sums(top, binaries + ["README.md", "LICENSE"])
    path = args.out / f"{base}.tar.gz"
    with tarfile.open(path, "w:gz", compresslevel=6) as tar:
        for entry in sorted(top.iterdir()):
            tar.add(entry, arcname=f"{base}/{entry.name}", filter=normalise)
    return path, top


def normalise(info):
    # Reproducible: no owner names or build-machine ids.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def npm_packages(args, binaries, top):
    os_, cpu, libc, _ = TARGETS[args.target]
    platform_name = f"{NAME}-{os_}-{cpu}"
    npm_dir = args.out / "npm"
    npm_dir.mkdir(exist_ok=True)
    stage = args.out / "stage" / "npm"

    native = stage / platform_name
    (native / "bin").mkdir(parents=True)
    for name in binaries:
        shutil.copy2(top / name, native / "bin" / name)
    shutil.copy2(ROOT / "LICENSE", native / "LICENSE")
    (native / "README.md").write_text(
        f"# {platform_name}\n\nThe {os_}-{cpu} binaries of [{NAME}](https://www.npmjs.com/package/{NAME}); "
        f"installed by it as an optional dependency. Use `npx {NAME}` instead.\n"
    )
    manifest = {
        "name": platform_name,
        "version": args.version,
        "description": f"{SUMMARY}: {os_}-{cpu} binaries",
        "license": "Apache-2.0",
        "os": [os_],
        "cpu": [cpu],
        "files": ["bin/", "README.md", "LICENSE"],
        "preferUnplugged": True,
    }
    if libc:
        manifest["libc"] = [libc]
    (native / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")

    launcher = stage / NAME
    template = ROOT / "packaging" / "npm"
    shutil.copytree(template, launcher)
    shutil.copy2(ROOT / "LICENSE", launcher / "LICENSE")
    manifest = json.loads((template / "package.json").read_text())
    manifest["version"] = args.version
    # Every platform package this release has; npm installs the one whose os/cpu match.
    manifest["optionalDependencies"] = {platform_name: args.version}
    (launcher / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (launcher / "platforms.json").write_text(
        json.dumps({f"{os_} {cpu}": platform_name}, indent=2) + "\n"
    )
    tarballs = []
    for package in (native, launcher):
        out = subprocess.run(
            ["npm", "pack", "--json", "--pack-destination", str(npm_dir)],
            cwd=package,
            check=True,
            capture_output=True,
            text=True,
        )
        tarballs.append(npm_dir / json.loads(out.stdout)[0]["filename"])
    return tarballs


def glibc_needed(paths):
    """The newest glibc symbol version the binaries use, as (major, minor)."""
    newest = (2, 17)
    for path in paths:
        data = path.read_bytes()
        for match in re.finditer(rb"GLIBC_(\d+)\.(\d+)", data):
            newest = max(newest, (int(match[1]), int(match[2])))
    return newest


def pep440(version):
    return re.sub(r"-(alpha|beta|rc)\.(\d+)$", lambda m: {"alpha": "a", "beta": "b", "rc": "rc"}[m[1]] + m[2], version)


def wheel(args, binaries, top):
    """A wheel that holds only executables (as maturin's `bin` bindings make them): pip, uv and
    pipx install them into the environment's bin directory."""
    _, _, libc, platform = TARGETS[args.target]
    if libc:
        major, minor = glibc_needed([top / b for b in binaries])
        platform = platform.format(glibc=f"{major}_{minor}")
    dist = NAME.replace("-", "_")
    version = pep440(args.version)
    tag = f"py3-none-{platform}"
    path = args.out / "pypi" / f"{dist}-{version}-{tag}.whl"
    path.parent.mkdir(exist_ok=True)
    info = f"{dist}-{version}.dist-info"
    readme = (ROOT / "packaging" / "pypi" / "README.md").read_text()
    metadata = (
        "Metadata-Version: 2.1\n"
        f"Name: {NAME}\n"
        f"Version: {version}\n"
        f"Summary: {SUMMARY}\n"
        "License: Apache-2.0\n"
        "Requires-Python: >=3.8\n"
        "Description-Content-Type: text/markdown\n"
        "\n" + readme
    )
    wheel_file = (
        "Wheel-Version: 1.0\n"
        "Generator: stripe-sync scripts/release\n"
        "Root-Is-Purelib: false\n"
        f"Tag: {tag}\n"
    )
    files = [(f"{dist}-{version}.data/scripts/{b}", (top / b).read_bytes(), 0o755) for b in binaries]
    files += [
        (f"{info}/METADATA", metadata.encode(), 0o644),
        (f"{info}/WHEEL", wheel_file.encode(), 0o644),
        (f"{info}/licenses/LICENSE", (ROOT / "LICENSE").read_bytes(), 0o644),
    ]
    record = io.StringIO()
    for name, data, _ in files:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write(f"{name},sha256={digest},{len(data)}\n")
    record.write(f"{info}/RECORD,,\n")
    files.append((f"{info}/RECORD", record.getvalue().encode(), 0o644))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as whl:
        for name, data, mode in files:
            entry = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = (0o100000 | mode) << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            whl.writestr(entry, data)
    return path


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", required=True)
    parser.add_argument("--target", required=True)
    parser.add_argument("--bin-dir", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--binaries", required=True)
    args = parser.parse_args()
    if args.target not in TARGETS:
        sys.exit(f"error: no npm or PyPI platform is known for target {args.target} ({', '.join(TARGETS)})")
    binaries = args.binaries.split()
    shutil.rmtree(args.out / "stage", ignore_errors=True)
    shutil.rmtree(args.out / "npm", ignore_errors=True)
    shutil.rmtree(args.out / "pypi", ignore_errors=True)
    tarball, top = archive(args, binaries)
    packages = npm_packages(args, binaries, top)
    whl = wheel(args, binaries, top)
    write_sums(args.out, [tarball.name] + [str(p.relative_to(args.out)) for p in packages + [whl]])
    shutil.rmtree(args.out / "stage")


if __name__ == "__main__":
    main()
