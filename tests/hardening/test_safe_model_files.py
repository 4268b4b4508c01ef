"""Model files are untrusted input: every malicious file here is built by hand and must be refused
with a ModelFileError that says why, before anything is unpickled or allocated."""

import io
import json
import pickle
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import slidenet as keras
from slidenet.models import ModelFileError, file_checks, saving


@pytest.fixture
def good(tmp_path):
    """A small valid model file (with Adam state) and its members."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Dense(3, activation="softmax", input_shape=(4,))])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(np.ones((4, 4), np.float32), np.arange(4) % 3, verbose=0)
    path = tmp_path / "good.slidenet"
    model.save(path)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    return members


def write_zip(path, members, compression=zipfile.ZIP_STORED):
    """Write (name or ZipInfo, bytes) pairs as given: duplicates and odd names included."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in members:
                zf.writestr(name, data)
    return path


def npy(array, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=allow_pickle)
    return buf.getvalue()


def npy_with_header(header: dict, data: bytes) -> bytes:
    """A .npy file whose header says whatever we like (version 1.0, padded as numpy pads)."""
    text = repr(header).encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def load_refused(path, match):
    with pytest.raises(ModelFileError, match=match) as info:
        keras.load_model(path)
    assert Path(path).name in str(info.value)  # every message names the file
    return info.value


class Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (Path.write_text, (Path(self.target), "code ran"))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything calls pickle's loaders while the file is read."""

    def forbidden(*args, **kwargs):
        raise AssertionError("load_model tried to unpickle")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)


def test_object_array_with_a_code_payload_is_refused(tmp_path, good, no_unpickling):
    sentinel = tmp_path / "pwned.txt"
    evil_array = np.array([Payload(sentinel)], dtype=object)
    members = {**good, "weights/0000.npy": npy(evil_array, allow_pickle=True)}
    path = write_zip(tmp_path / "evil.slidenet", members.items())
    err = load_refused(path, r"weights/0000\.npy is not a plain array: it holds Python objects")
    assert "never run code" in str(err)
    assert not sentinel.exists()


def test_raw_pickle_member_and_pickled_header_are_refused(tmp_path, good, no_unpickling):
    sentinel = tmp_path / "pwned.txt"
    payload = pickle.dumps(Payload(sentinel))
    path = write_zip(tmp_path / "p1.slidenet", {**good, "weights/0001.npy": payload}.items())
    load_refused(path, r"weights/0001\.npy is not a plain \.npy array")
    path = write_zip(tmp_path / "p2.slidenet", {**good, "slidenet.json": payload}.items())
    load_refused(path, r"slidenet\.json is corrupt")
    assert not sentinel.exists()


def test_every_array_goes_through_the_header_check_and_allow_pickle_false(
    tmp_path, good, monkeypatch
):
    checked, loads = [], []
    real_check, real_load = file_checks.check_npy_header, np.load
    monkeypatch.setattr(
        file_checks, "check_npy_header", lambda d, n, p: checked.append(n) or real_check(d, n, p)
    )
    monkeypatch.setattr(np, "load", lambda *a, **k: loads.append(k) or real_load(*a, **k))
    path = write_zip(tmp_path / "ok.slidenet", good.items())
    keras.load_model(path)
    arrays = sorted(n for n in good if n.endswith(".npy"))
    assert sorted(checked) == arrays and len(arrays) == 6  # kernel, bias, Adam m and v of each
    assert loads == [{"allow_pickle": False}] * len(arrays)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/cron.d/evil", "an absolute path"),
        ("C:/Windows/evil.npy", "an absolute path"),
        ("weights/../../evil.npy", r"a '\.\.' path component"),
        ("..", r"a '\.\.' path component"),
        ("weights\\0000.npy", "a backslash in its name"),
    ],
)
def test_unsafe_member_names_are_refused(tmp_path, good, name, why):
    path = write_zip(tmp_path / "names.slidenet", [*good.items(), (name, b"x")])
    load_refused(path, f"zip member .* has {why}. Refused")


def test_duplicate_member_names_are_refused(tmp_path, good):
    # a second weights/0000.npy after the real one: zipfile would silently read the last one
    other = npy(np.zeros((4, 3), np.float32))
    path = write_zip(tmp_path / "dup.slidenet", [*good.items(), ("weights/0000.npy", other)])
    load_refused(path, r"'weights/0000\.npy' has the same name as another member")


def test_declared_shape_over_the_limit_is_refused_before_allocation(tmp_path, good, monkeypatch):
    def no_allocation(*args, **kwargs):
        raise AssertionError("np.load was reached")

    monkeypatch.setattr(np, "load", no_allocation)
    huge = npy_with_header({"descr": "<f4", "fortran_order": False, "shape": (2**40,)}, b"")
    path = write_zip(tmp_path / "huge.slidenet", {**good, "weights/0000.npy": huge}.items())
    load_refused(path, r"declares shape \(1099511627776,\) of float32, 4096 GiB, over the limit")
    # a plausible shape whose data is not there (would otherwise be allocated, then fail)
    short = npy_with_header({"descr": "<f8", "fortran_order": False, "shape": (1000, 1000)}, b"0")
    path = write_zip(tmp_path / "short.slidenet", {**good, "weights/0000.npy": short}.items())
    load_refused(path, r"declares shape \(1000, 1000\) of float64 \(8,000,000 bytes\) but holds 1")


@pytest.mark.parametrize(
    ("descr", "match"),
    [
        ("<U8", "not a plain array of numbers"),
        ("<c16", "not a plain array of numbers"),
        ([("a", "<f4")], "not a plain array of numbers"),
        ("|O", "holds Python objects"),
    ],
)
def test_non_numeric_dtypes_are_refused(tmp_path, good, descr, match):
    bad = npy_with_header({"descr": descr, "fortran_order": False, "shape": (0,)}, b"")
    path = write_zip(tmp_path / "dtype.slidenet", {**good, "weights/0001.npy": bad}.items())
    load_refused(path, match)


def test_unknown_npy_version_is_refused(tmp_path, good):
    data = bytearray(good["weights/0000.npy"])
    data[6:8] = b"\x07\x00"
    path = write_zip(tmp_path / "v7.slidenet", {**good, "weights/0000.npy": bytes(data)}.items())
    load_refused(path, r"weights/0000\.npy is not a plain \.npy array")


def patch_declared_size(blob: bytes, name: str, size: int) -> bytes:
    """Set a member's uncompressed size in the central directory (what a bomb declares)."""
    blob = bytearray(blob)
    pos = blob.find(b"PK\x01\x02")
    while pos >= 0:
        name_len = struct.unpack_from("<H", blob, pos + 28)[0]
        if blob[pos + 46 : pos + 46 + name_len] == name.encode():
            struct.pack_into("<I", blob, pos + 24, size)
        pos = blob.find(b"PK\x01\x02", pos + 4)
    return bytes(blob)


def test_zip_bombs_are_refused_from_the_declared_sizes(tmp_path, good):
    path = write_zip(tmp_path / "bomb.slidenet", good.items())
    blob = patch_declared_size(path.read_bytes(), "weights/0000.npy", 0xFFFFFFF0)
    path.write_bytes(blob)
    load_refused(path, r"weights/0000\.npy' unpacks to 4 GiB, over the limit of 2 GiB")
    # members under the per-array limit that add up to more than the total limit
    extra = [(f"pad/{i}.bin", b"") for i in range(3)]
    path = write_zip(tmp_path / "bombs.slidenet", [*good.items(), *extra])
    blob = path.read_bytes()
    for i in range(3):
        blob = patch_declared_size(blob, f"pad/{i}.bin", 1_900_000_000)
    path.write_bytes(blob)
    load_refused(path, r"unpack to more than 4 GiB in all \(a zip bomb\?\)")
    # the JSON member has its own, smaller limit
    path = write_zip(tmp_path / "json.slidenet", good.items())
    path.write_bytes(patch_declared_size(path.read_bytes(), "slidenet.json", 100 * 1024**2))
    load_refused(path, r"'slidenet\.json' unpacks to 100 MiB, over the limit of 64 MiB")


def test_a_real_deflate_bomb_is_refused(tmp_path, good, monkeypatch):
    monkeypatch.setattr(file_checks, "MAX_TOTAL_BYTES", 8 * 1024**2)  # so the test stays small
    bomb = [("pad.bin", bytes(16 * 1024**2))]  # 16 MiB of zeros deflate to 16 KiB
    path = write_zip(tmp_path / "deflate.slidenet", [*good.items(), *bomb], zipfile.ZIP_DEFLATED)
    assert path.stat().st_size < 100_000
    load_refused(path, r"unpack to more than 8 MiB in all")


def test_too_many_members_is_refused(tmp_path, good):
    extra = [(f"x/{i}", b"") for i in range(saving.MAX_MEMBERS)]
    path = write_zip(tmp_path / "many.slidenet", [*good.items(), *extra])
    total = f"{len(good) + saving.MAX_MEMBERS:,}"
    load_refused(path, f"has {total} zip members; a model file has at most 10,000")


@pytest.mark.parametrize(
    ("bit", "why"), [(0x01, "encryption"), (0x40, "encryption"), (0x20, "patch data")]
)
def test_encrypted_or_patched_member_is_refused(tmp_path, good, bit, why):
    # zipfile itself raises NotImplementedError for bits 5 and 6 (found by a mutation fuzzer)
    path = write_zip(tmp_path / "enc.slidenet", good.items())
    blob = bytearray(path.read_bytes())
    pos = blob.find(b"PK\x01\x02")
    blob[pos + 8] |= bit  # the general purpose flags of the first member
    path.write_bytes(bytes(blob))
    load_refused(path, f"has {why}")


@pytest.mark.parametrize(
    ("version", "match"),
    [
        (2, r"format version 2; this slidenet reads version 1\. Upgrade slidenet"),
        (0, r"format version 0; this slidenet reads version 1\. The file is corrupt"),
        ("1", r"format version '1'; this slidenet reads version 1"),
        (None, r"format version None; this slidenet reads version 1"),
        (True, r"format version True; this slidenet reads version 1"),
    ],
)
def test_unknown_format_versions_are_named(tmp_path, good, version, match):
    header = json.loads(good["slidenet.json"])
    header["version"] = version
    members = {**good, "slidenet.json": json.dumps(header).encode()}
    load_refused(write_zip(tmp_path / "ver.slidenet", members.items()), match)


def edit_header(good, **changes):
    header = json.loads(good["slidenet.json"])
    for key, value in changes.items():
        target = header
        *parents, last = key.split("__")
        for p in parents:
            target = target[int(p)] if isinstance(target, list) else target[p]
        target[int(last) if isinstance(target, list) else last] = value
    return {**good, "slidenet.json": json.dumps(header).encode()}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"n_weights": "2"}, r"n_weights='2'; expected a count"),
        ({"n_weights": -1}, r"n_weights=-1; expected a count"),
        ({"n_optimizer": 10**9}, r"n_optimizer=1000000000; expected a count"),
        ({"n_weights": 3}, r"is missing weights/0002\.npy"),
        ({"training__epoch": 1e308 * 10}, r"epoch=inf; expected a count"),
        ({"model__layers__0__config__units": 10**12}, r"would need about .* of weights"),
        ({"model__layers__0__config__dtype": "object"}, r"has dtype object; layers compute in"),
        ({"model__layers__0__config__units": 5}, r"weights shaped \[\(4, 5\), \(5,\)\]"),
        ({"model__input_shape": [10**6, 10**6, 10**3]}, r"of outputs per example"),
        ({"model__layers__0__class_name": "os.system"}, r"layer type 'os\.system', unknown"),
        ({"training__epoch": -1}, r"epoch=-1; expected a count"),
        ({"compile__optimizer__config__beta_1": 1.0}, r"Adam: beta_1 must be in \[0, 1\)"),
        ({"compile__optimizer__config__epsilon": 0.0}, r"Adam: epsilon must be a finite number"),
        ({"compile__optimizer_iterations": "7"}, r"optimizer_iterations='7'; expected a count"),
        # values of the wrong type name the part of the description they sit in
        ({"model__layers__0__config__activation": ["relu"]}, r"the config of layer 0 \(Dense\)"),
        ({"model__layers__0": 7}, r"layer 0 of the model description is malformed"),
        ({"training__history": [1, 2]}, r"the training state .* is malformed"),
        ({"compile__metrics": 5}, r"the compile settings .* is malformed"),
    ],
)
def test_malformed_headers_give_model_file_errors(tmp_path, good, changes, match):
    members = edit_header(good, **changes)
    load_refused(write_zip(tmp_path / "hdr.slidenet", members.items()), match)


def test_deeply_nested_json_is_refused(tmp_path, good):
    deep = b'{"format": "slidenet-model", "version": 1, "x": ' + b"[" * 10**5 + b"]" * 10**5 + b"}"
    members = {**good, "slidenet.json": deep}
    load_refused(write_zip(tmp_path / "deep.slidenet", members.items()), "slidenet.json is corrupt")


def test_a_valid_file_still_loads_exactly(tmp_path, good):
    path = write_zip(tmp_path / "ok.slidenet", good.items())
    model = keras.load_model(path)
    expected = np.load(io.BytesIO(good["weights/0000.npy"]), allow_pickle=False)
    np.testing.assert_array_equal(model.get_weights()[0], expected)
    assert model.optimizer.iterations == 1


def test_optimizer_state_of_the_wrong_shape_is_refused(tmp_path, good):
    # before, this loaded and the next fit failed inside Adam with a NumPy broadcasting error
    members = {**good, "optimizer/0001.npy": npy(np.zeros(7, np.float32))}
    path = write_zip(tmp_path / "slots.slidenet", members.items())
    load_refused(path, r"optimizer state holds arrays shaped \[\(4, 3\), \(7,\), .* needs")


def test_compiled_but_untrained_model_round_trips(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3, input_shape=(4,))])
    model.compile("adam", "mse")  # no optimizer state yet
    model.save(tmp_path / "fresh.slidenet")
    loaded = keras.load_model(tmp_path / "fresh.slidenet")
    assert loaded.optimizer.variables() == [] and loaded.optimizer.iterations == 0


def test_unbalanced_npy_header_is_refused(tmp_path, good):
    # numpy's header parser raises tokenize.TokenError here (found by a mutation fuzzer)
    text = b"{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3, }"
    text = text.ljust(117) + b"\n"
    bad = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(48)
    path = write_zip(tmp_path / "tok.slidenet", {**good, "weights/0000.npy": bad}.items())
    load_refused(path, r"weights/0000\.npy is not a plain \.npy array")


@pytest.mark.parametrize("value", [np.inf, np.nan, 1e300])
@pytest.mark.parametrize("member", ["weights/0000.npy", "optimizer/0000.npy"])
def test_non_finite_or_float32_overflowing_arrays_are_refused(tmp_path, good, member, value):
    """1e300 is finite in float64 but infinite in the float32 layer (found by the atheris fuzzer
    as an overflow in the cast)."""
    array = np.load(io.BytesIO(good[member])).astype(np.float64)
    array.flat[0] = value
    path = write_zip(tmp_path / "nonfinite.slidenet", {**good, member: npy(array)}.items())
    load_refused(path, r"holds NaN or infinite values .* the file is corrupt")
