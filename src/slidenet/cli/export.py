"""``slidenet export``: write a saved model (or a model builder's) as an ONNX file."""

from __future__ import annotations

import numpy as np

from slidenet.cli import _common
from slidenet.cli._common import CLIError

EXAMPLES = """\
slidenet export cnn.slidenet -o cnn.onnx
slidenet export cnn.slidenet -o cnn.onnx --verify     # compare with ONNX Runtime
slidenet export --model lenet5 -o lenet5.onnx --opset 13"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "export",
        help="write a model as ONNX, for ONNX Runtime and other frameworks",
        description=(
            "Write a saved model file (or a model builder's untrained model, --model) as ONNX. "
            "The graph takes and returns channels-last arrays (N, H, W, C), the same arrays "
            "slidenet's predict does. Needs the onnx package (pip install 'slidenet[onnx]'); "
            "--verify also needs onnxruntime."
        ),
        examples=EXAMPLES,
    )
    _common.add_model_source(p)
    p.add_argument("-o", "--out", required=True, metavar="FILE.onnx", help="the ONNX file to write")
    p.add_argument(
        "--opset",
        type=_common.positive_int,
        default=17,
        help="ONNX opset (13 or later; default 17)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run the file in ONNX Runtime on 8 random inputs and print the largest difference",
    )
    p.set_defaults(run=run)
    return p


def run(args) -> int:
    from slidenet.interop.onnx_export import to_onnx
    from slidenet.utils.files import atomic_write

    model = _common.model_from_source(args)
    proto = to_onnx(model, opset=args.opset)
    data = proto.SerializeToString()
    atomic_write(args.out, lambda f: f.write(data))
    print(
        f"wrote {args.out}: {len(proto.graph.node)} ONNX nodes, opset {args.opset}, "
        f"{_shapes('input', proto.graph.input)} -> {_shapes('output', proto.graph.output)}, "
        f"{len(data):,} bytes"
    )
    if args.verify:
        diff = verify(model, args.out)
        print(f"ONNX Runtime vs slidenet on 8 random inputs: max |difference| = {diff:.2g}")
    return 0


def _shapes(what: str, infos) -> str:
    """'input (N, 28, 28, 1)', or 'inputs a (N, 6, 6, 1), b (N, 3)' for several."""

    def dims(info):
        return ", ".join(str(d.dim_value or d.dim_param) for d in info.type.tensor_type.shape.dim)

    if len(infos) == 1:
        return f"{what} ({dims(infos[0])})"
    return f"{what}s " + ", ".join(f"{i.name} ({dims(i)})" for i in infos)


def verify(model, path, n: int = 8, seed: int = 0) -> float:
    """Largest |ONNX Runtime - slidenet| over ``n`` random inputs in [0, 1) (every output)."""
    try:
        import onnxruntime
    except ImportError:
        raise CLIError("--verify needs onnxruntime: pip install onnxruntime") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds = {i.name: rng.random((n, *i.shape[1:]), dtype=np.float32) for i in session.get_inputs()}
    xs = list(feeds.values())
    if getattr(model, "_input_struct", "single") == "dict":
        want = model.predict(dict(zip(model._input_names, xs, strict=True)))
    else:
        want = model.predict(xs if len(xs) > 1 else xs[0])
    if isinstance(want, dict):
        want = [want[k] for k in model.output_names]
    want = want if isinstance(want, list | tuple) else [want]
    got = session.run(None, feeds)
    return max(
        float(np.abs(g.astype(np.float64) - w).max()) for g, w in zip(got, want, strict=True)
    )
