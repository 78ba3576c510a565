"""The offline page for ``dvc plots show``: pinned hashes, inlined libraries, no network."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile

import pytest

from shortcut_audit import dvc_plots
from shortcut_audit.dvc_plots import IntegrityError, Library, build_template, check_integrity, install


def _tarball(member: str, text: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = text.encode()
        info = tarfile.TarInfo(member)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _library(name: str, payload: bytes) -> Library:
    digest = base64.b64encode(hashlib.sha512(payload).digest()).decode()
    return Library(name, "1.0.0", f"sha512-{digest}", "package/build/lib.min.js")


def test_a_tarball_must_match_its_pinned_hash():
    payload = _tarball("package/build/lib.min.js", "var a = 1;")
    library = _library("lib", payload)
    check_integrity(library, payload)
    with pytest.raises(IntegrityError, match="differs from the pinned"):
        check_integrity(library, payload[:-1] + bytes([payload[-1] ^ 1]))


def test_the_pinned_libraries_are_the_ones_dvc_asks_for():
    from dvc_render.vega import VegaRenderer

    for library in dvc_plots.LIBRARIES:
        assert f"npm/{library.name}@{library.version}" in VegaRenderer.SCRIPTS


def test_the_page_inlines_every_library_and_loads_nothing(tmp_path, monkeypatch):
    sources = {name: f"window.{name.replace('-', '_')} = {{}};" for name in ("vega", "vega-lite", "vega-embed")}
    payloads = {name: _tarball("package/build/lib.min.js", text) for name, text in sources.items()}
    libraries = tuple(_library(name, payloads[name]) for name in sources)
    monkeypatch.setattr(dvc_plots, "LIBRARIES", libraries)
    fetched = []

    def fetch(url):
        fetched.append(url)
        return payloads[url.split("/")[3]]

    page = install(tmp_path, fetch).read_text()
    assert fetched == [lib.url for lib in libraries]
    assert all(text in page for text in sources.values())
    assert page.count("{plot_divs}") == 1 and "{scripts}" not in page
    assert "http" not in page and "<script src" not in page
    install(tmp_path, fetch)  # complete already: nothing downloaded again
    assert len(fetched) == len(libraries)


def test_a_script_that_would_close_its_tag_is_refused():
    payload = _tarball("package/build/lib.min.js", "var s = '</script>';")
    with pytest.raises(IntegrityError, match="cannot be inlined"):
        dvc_plots.extract(_library("lib", payload), payload)


def test_braces_in_the_template_stay_literal():
    page = build_template({"x": "function f() { return {a: {b: 1}}; }"})
    assert "function f() { return {a: {b: 1}}; }" in page and "border-spacing: 15px;\n        }" in page
