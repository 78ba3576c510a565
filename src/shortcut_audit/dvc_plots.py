"""An HTML template that lets ``dvc plots show`` render without network access.

DVC's default page loads Vega, Vega-Lite and Vega-Embed from a CDN, so its plots stay
blank on a machine without internet. ``shortcut-audit plots-template`` (run by
``make setup``) downloads the three libraries once from the npm registry, checks each
tarball against its pinned Subresource-Integrity hash, and writes
``.dvc/plots/offline.html``: DVC's page with the libraries inlined and no ``{scripts}``
placeholder, so DVC adds no CDN tags. ``.dvc/config`` names it as ``plots.html_template``.

The versions are the ones DVC's own page asks for, so every built-in template renders as
it would online.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io as _io
import sys
import tarfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shortcut_audit.io import atomic_path

__all__ = ["LIBRARIES", "IntegrityError", "Library", "build_template", "check_integrity", "install", "main"]

TEMPLATE_PATH = Path(".dvc/plots/offline.html")


@dataclass(frozen=True)
class Library:
    """One npm package whose minified build is inlined."""

    name: str
    version: str
    integrity: str  # the registry's "dist.integrity" (sha512, base64)
    member: str  # the file inside the tarball

    @property
    def url(self) -> str:
        return f"https://registry.npmjs.org/{self.name}/-/{self.name}-{self.version}.tgz"


LIBRARIES = (
    Library(
        "vega",
        "5.20.2",
        "sha512-qmH7aD9GGPpssVdxL1xgcdxTbQzyRUeRR16Os385ymvQhiwCYQNA6+eXUPAZDTVLfk0RXu6Jzj6kUE5jQ80EVw==",
        "package/build/vega.min.js",
    ),
    Library(
        "vega-lite",
        "5.2.0",
        "sha512-Yxcg8MvYfxHcG6BbkaKT0oVCIMIcE19UvqIsEwBmyd/7h2nzW7oRnID81T8UrY7hpDrIr6wa2JADOT2dhGNErw==",
        "package/build/vega-lite.min.js",
    ),
    Library(
        "vega-embed",
        "6.18.2",
        "sha512-wcDyQPE4J5aiCDc3/suH5RQDvrKkjuLkhzUcbOLwEkNF8/+pp17tS0JghzEvAPNRg+5aG1/N2ydixq8Lk3dOlg==",
        "package/build/vega-embed.min.js",
    ),
)

#: DVC's page layout; ``{plot_divs}`` is filled by DVC, the libraries are inlined.
PAGE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>DVC Plot</title>
{libraries}
    <style>
        table {
            border-spacing: 15px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


class IntegrityError(ValueError):
    """A downloaded tarball does not match its pinned hash."""


def check_integrity(library: Library, payload: bytes) -> None:
    """Raise :class:`IntegrityError` unless ``payload`` has ``library``'s pinned sha512."""
    algorithm, _, expected = library.integrity.partition("-")
    found = base64.b64encode(hashlib.new(algorithm, payload).digest()).decode()
    if found != expected:
        raise IntegrityError(
            f"{library.url}: {algorithm} {found} differs from the pinned {expected}; "
            "the download is corrupt or the registry served another file"
        )


def extract(library: Library, payload: bytes) -> str:
    """The library's minified script from its (checked) tarball."""
    with tarfile.open(fileobj=_io.BytesIO(payload), mode="r:gz") as archive:
        member = archive.extractfile(library.member)
        if member is None:
            raise IntegrityError(f"{library.url}: {library.member} is not a file")
        text = member.read().decode("utf-8")
    if "</script" in text.lower():
        raise IntegrityError(f"{library.member} contains '</script' and cannot be inlined")
    return text


def build_template(scripts: dict[str, str]) -> str:
    """The page with each script inlined (name -> source), in the given order."""
    blocks = [f"    <script>/* {name} */\n{source}\n    </script>" for name, source in scripts.items()]
    return PAGE.replace("{libraries}", "\n".join(blocks))


def download(url: str, attempts: int = 3, timeout: float = 60.0) -> bytes:
    """GET ``url`` with a few retries (the registry is the only network this uses)."""
    for attempt in range(1, attempts + 1):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - https, pinned hash
                return response.read()
        except OSError as err:
            if attempt == attempts:
                raise OSError(f"could not download {url}: {err}") from err
            time.sleep(2 * attempt)
    raise AssertionError("unreachable")


def install(root: Path = Path("."), fetch: Callable[[str], bytes] = download) -> Path:
    """Write ``.dvc/plots/offline.html`` under ``root`` (skipped when already complete)."""
    target = Path(root) / TEMPLATE_PATH
    marker = "".join(f"{lib.name}@{lib.version};" for lib in LIBRARIES)
    if target.is_file() and marker in target.read_text(encoding="utf-8", errors="replace"):
        return target
    scripts = {}
    for library in LIBRARIES:
        payload = fetch(library.url)
        check_integrity(library, payload)
        scripts[f"{library.name}@{library.version};"] = extract(library, payload)
    page = build_template(scripts).replace("<title>", f"<!-- {marker} -->\n    <title>", 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
        Path(tmp).chmod(0o644)
    return target


def main(argv: list[str] | None = None) -> int:
    """``shortcut-audit plots-template``: exit 0 written, 1 download or integrity failure."""
    parser = argparse.ArgumentParser(prog="shortcut-audit plots-template", description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="repository root (default: .)")
    args = parser.parse_args(argv)
    try:
        path = install(Path(args.root))
    except (OSError, IntegrityError, tarfile.TarError) as err:
        print(f"shortcut-audit plots-template: {err}", file=sys.stderr)
        return 1
    print(f"wrote {path} (dvc plots show renders offline)")
    return 0
