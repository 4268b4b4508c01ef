"""Every PyTorch oracle goes through tests/torch_oracle.py (float64, contiguous channels-first).

A float32 torch result can be wrong (torch 2.13.0, channels-last input, AVX2: see
tests/test_torch_oracle_regression.py), so no test may build its own torch tensors from NumPy or
run torch in float32. This test reads the test sources and names every line that does.
"""

import re
from pathlib import Path

TESTS = Path(__file__).parent
ALLOWED = {"torch_oracle.py", "test_torch_oracle_regression.py", "test_oracle_discipline.py"}
FORBIDDEN = re.compile(
    r"torch\.(tensor|from_numpy|as_tensor|asarray)\(|torch\.float32|\.float\(\)"
    r"|set_default_dtype|torch\.channels_last"
)


def test_no_test_builds_torch_tensors_itself():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path.name in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(TESTS)}:{number}: {line.strip()}")
    assert not offenders, (
        "use tests/torch_oracle.py (leaf, to_nchw, nchw, nhwc, to_numpy, assert_matches) instead:\n"
        + "\n".join(offenders)
    )


def test_the_rule_catches_what_it_should():
    bad = ["x = torch.tensor(a)", "torch.from_numpy(a)", "t.float()", "dtype=torch.float32"]
    for line in [*bad, "memory_format=torch.channels_last"]:
        assert FORBIDDEN.search(line), line
    assert not FORBIDDEN.search("xt = to_nchw(x); to_numpy(t, channels_last=True)")
