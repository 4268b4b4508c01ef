"""Downloads from a local HTTP server: atomic writes, checksums, mirrors, the offline error."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest
from dataset_fixtures import *  # noqa: F403 - the fixtures, and the autouse isolation

from slidenet.datasets import fashion_mnist, mnist
from slidenet.datasets._mnist_like import IDX_FILES
from slidenet.datasets.utils import (
    ChecksumError,
    DatasetNotFoundError,
    download,
    sha256_file,
)

MODULES = {"mnist": mnist, "fashion_mnist": fashion_mnist}
SUBDIRS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}


def leftovers(folder):
    """Every file in ``folder`` (recursively), as names relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- download() --------------------------------------------------------------------------------


def test_download_verifies_and_moves_into_place(tmp_path, http_server):
    url, root, _ = http_server
    payload = bytes(range(256)) * 1000
    (root / "blob.bin").write_bytes(payload)
    dest = tmp_path / "out" / "sub" / "blob.bin"
    sha = sha256_file(root / "blob.bin")
    assert download(url + "blob.bin", dest, sha.upper(), desc="blob", progress=False) == dest
    assert dest.read_bytes() == payload
    assert leftovers(tmp_path / "out") == ["sub/blob.bin"]  # no temporary file left


def test_download_checksum_mismatch_keeps_nothing(tmp_path, http_server):
    url, root, _ = http_server
    (root / "blob.bin").write_bytes(b"the wrong bytes")
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(ChecksumError, match=r"SHA-256 mismatch for '.*blob\.bin': expected 0{64}"):
        download(url + "blob.bin", dest, "0" * 64, progress=False)
    assert leftovers(tmp_path / "out") == []


def test_download_mismatch_leaves_an_existing_file_alone(tmp_path, http_server):
    url, root, _ = http_server
    (root / "blob.bin").write_bytes(b"new bytes")
    dest = tmp_path / "blob.bin"
    dest.write_bytes(b"old bytes")
    with pytest.raises(ChecksumError):
        download(url + "blob.bin", dest, "0" * 64, progress=False)
    assert dest.read_bytes() == b"old bytes"
    assert [p.name for p in tmp_path.iterdir() if p.name != "www"] == ["blob.bin"]


def test_download_http_error_keeps_nothing(tmp_path, http_server):
    url, _, _ = http_server
    with pytest.raises(urllib.error.HTTPError, match="404") as info:
        download(url + "missing.bin", tmp_path / "out" / "missing.bin", "0" * 64, progress=False)
    info.value.close()
    assert leftovers(tmp_path / "out") == []


def test_download_connection_refused_keeps_nothing(tmp_path, closed_url):
    with pytest.raises(OSError):
        download(closed_url + "x.bin", tmp_path / "out" / "x.bin", "0" * 64, progress=False)
    assert leftovers(tmp_path / "out") == []


# --- load_data() downloads ---------------------------------------------------------------------


def serve_fixture(name, root, write_fixture, monkeypatch, seed=0):
    """Write the four .gz files under root/<subdir>/ and patch in their true SHA-256."""
    folder = root / SUBDIRS[name]
    expected = write_fixture(folder, gz=True, seed=seed)
    sums = {f"{n}.gz": sha256_file(folder / f"{n}.gz") for n in IDX_FILES}
    monkeypatch.setattr(MODULES[name], "SHA256", sums)
    return expected


def assert_loaded(loaded, expected):
    for got, want in zip((*loaded[0], *loaded[1]), (*expected[0], *expected[1]), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", list(MODULES))
def test_load_data_downloads_into_the_cache(
    tmp_path, http_server, write_fixture, monkeypatch, closed_url, name
):
    url, root, server = http_server
    expected = serve_fixture(name, root, write_fixture, monkeypatch)
    monkeypatch.setattr(MODULES[name], "MIRRORS", [f"{url}{SUBDIRS[name]}/"])
    assert_loaded(MODULES[name].load_data(), expected)
    cached = sorted(f"{SUBDIRS[name]}/{n}.gz" for n in IDX_FILES)
    assert leftovers(tmp_path / "cache") == cached
    assert len(server.requests) == 4
    # the second call reads the cache: the mirror is gone and nothing is requested
    monkeypatch.setattr(MODULES[name], "MIRRORS", [closed_url])
    assert_loaded(MODULES[name].load_data(), expected)
    assert len(server.requests) == 4


def test_slidenet_mirror_overrides_the_list(tmp_path, http_server, write_fixture, monkeypatch):
    url, root, _ = http_server
    expected = serve_fixture("fashion_mnist", root, write_fixture, monkeypatch)
    monkeypatch.setenv("SLIDENET_MIRROR", url.rstrip("/"))  # the module list points nowhere
    assert_loaded(fashion_mnist.load_data(), expected)


def test_next_mirror_after_a_failure(tmp_path, http_server, write_fixture, monkeypatch, closed_url):
    url, root, _ = http_server
    expected = serve_fixture("mnist", root, write_fixture, monkeypatch)
    monkeypatch.setattr(mnist, "MIRRORS", [closed_url, f"{url}nothing-here/", f"{url}mnist/"])
    assert_loaded(mnist.load_data(), expected)


def test_only_missing_files_are_downloaded(tmp_path, http_server, write_fixture, monkeypatch):
    url, root, server = http_server
    expected = serve_fixture("mnist", root, write_fixture, monkeypatch)
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    for n in IDX_FILES[:3]:  # a partial cache, e.g. from an interrupted first run
        (cache / f"{n}.gz").write_bytes((root / "mnist" / f"{n}.gz").read_bytes())
    monkeypatch.setattr(mnist, "MIRRORS", [f"{url}mnist/"])
    assert_loaded(mnist.load_data(), expected)
    assert server.requests == ["/mnist/t10k-labels-idx1-ubyte.gz"]


def test_checksum_mismatch_keeps_nothing_in_the_cache(
    tmp_path, http_server, write_fixture, monkeypatch
):
    url, root, _ = http_server
    serve_fixture("mnist", root, write_fixture, monkeypatch)
    sums = dict(mnist.SHA256, **{"train-images-idx3-ubyte.gz": "f" * 64})
    monkeypatch.setattr(mnist, "SHA256", sums)
    monkeypatch.setattr(mnist, "MIRRORS", [f"{url}mnist/"])
    with pytest.raises(DatasetNotFoundError, match=r"SHA-256 mismatch for '.*train-images") as info:
        mnist.load_data()
    assert isinstance(info.value.__cause__, OSError)
    assert "train-images-idx3-ubyte.gz" not in leftovers(tmp_path / "cache" / "mnist")
    assert not any(".part" in f for f in leftovers(tmp_path / "cache"))


@pytest.mark.parametrize("name", list(MODULES))
def test_offline_error_says_what_to_put_where(tmp_path, monkeypatch, name):
    monkeypatch.setattr(MODULES[name], "SYSTEM_COPIES", [tmp_path / "system-copy"])
    with pytest.raises(DatasetNotFoundError) as info:
        MODULES[name].load_data()
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert message.startswith(f"{name}.load_data: the ")
    cache = tmp_path / "cache" / SUBDIRS[name]
    assert f"put these files (gzipped or not) into {cache}:" in message
    for n in IDX_FILES:
        assert f"{n}.gz" in message
    assert "SLIDENET_DATA" in message
    assert str(tmp_path / "system-copy") in message
    assert "load_data(path=...)" in message
    assert "The download failed: http://127.0.0.1:" in message
    assert "refused" in message.lower()
    assert not (tmp_path / "cache").exists() or leftovers(tmp_path / "cache") == []
