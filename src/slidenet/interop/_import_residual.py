"""Import ResNet basic blocks as :class:`slidenet.layers.ResidualBlock` layers.

Pattern (channels-first, 2D)::

    x -> Conv(F x F, stride s, 'same') -> [BatchNormalization] -> Relu
      -> Conv(F x F, stride 1, 'same') -> [BatchNormalization] ---> Add -> Relu
    x -> nothing, or Conv(1 x 1, stride s) -> [BatchNormalization] -^

It becomes one ResidualBlock. Conv biases fold into the following batch norm (moving_mean -=
bias); a missing batch norm (PyTorch folds them into the convs when it exports in eval mode)
becomes one that adds the bias and nothing else. A tensor that feeds two branches which do not
form this pattern (other padding, other ops, a Relu missing) is imported node by node as a graph
(Conv2D, BatchNormalization, ReLU, Add ...). So is a block in a file slidenet wrote from a graph
of separate layers: there the pattern counts only when the node names say the file was written
from a ResidualBlock (``'block/add'`` followed by the Relu ``'block'``), so graphs round-trip
layer by layer; and a block whose weights other nodes read too (a shared block) becomes shared
Conv2D and BatchNormalization layers.
"""

from __future__ import annotations

import numpy as np

from slidenet.interop._common import UnsupportedOnnxError
from slidenet.interop._import_spatial import pad_pairs
from slidenet.ops.shapes import same_pads


def _branch(imp, start, x):
    """Nodes from ``start`` up to the Add that ends the branch, and that Add."""
    nodes, node, tensor = [], start, x
    while node is not None and node.op_type != "Add" and len(nodes) < 8:
        data = [i for i in node.input if i and i not in imp.consts]
        if data != [tensor]:
            raise imp.fail(node, f"it reads {data}; a residual branch is a chain.")
        nodes.append(node)
        tensor = node.output[0]
        node = imp.single_user(tensor)
    if node is None or node.op_type != "Add":
        where = imp.label(nodes[-1]) if nodes else repr(x)
        raise UnsupportedOnnxError(
            f"{imp.where}: the branch from '{x}' through {where} does not end in an Add."
        )
    return [n for n in nodes if n.op_type != "Identity"], node


def _split(imp, nodes, want_convs: int):
    """[(conv, bn or None), ...] for a branch of Conv[, BN] groups separated by one Relu."""
    groups, i = [], 0
    while i < len(nodes):
        if nodes[i].op_type != "Conv":
            raise imp.fail(nodes[i], "a residual branch holds Conv, BatchNormalization and Relu.")
        has_bn = i + 1 < len(nodes) and nodes[i + 1].op_type == "BatchNormalization"
        bn = nodes[i + 1] if has_bn else None
        groups.append((nodes[i], bn))
        i += 2 if bn is not None else 1
        if len(groups) < want_convs:
            if i >= len(nodes) or nodes[i].op_type != "Relu":
                raise imp.fail(nodes[i - 1], "the block's first Conv/BN must be followed by Relu.")
            i += 1
    if len(groups) != want_convs:
        raise UnsupportedOnnxError(
            f"{imp.where}: a residual branch has {len(groups)} Conv(s); ResidualBlock has 2 on the "
            "main path and 0 or 1 on the shortcut."
        )
    return groups


def _conv(imp, node, in_hw, kernel, strides, same: bool):
    """The conv's (K, D, F, F) weight and bias, after checking its geometry."""
    w, b, a = imp.const(node, 1), imp.const(node, 2, optional=True), imp.attrs(node)
    if w.ndim != 4 or a.get("group", 1) != 1 or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise imp.fail(node, "a residual block's convs are 2D, ungrouped and undilated.")
    got = (tuple(w.shape[2:]), tuple(a.get("strides", [1, 1])))
    if got != (tuple(kernel), tuple(strides)):
        raise imp.fail(node, f"kernel/strides {got} do not match the block's {kernel}/{strides}.")
    pads = pad_pairs(imp, node, a, in_hw, kernel, strides, (1, 1))
    want = tuple(same_pads(n, k, s) for n, k, s in zip(in_hw, kernel, strides, strict=True))
    if tuple(pads) != (want if same else ((0, 0), (0, 0))):
        raise imp.fail(
            node,
            f"pads {pads} differ from the 'same' padding {want} of ResidualBlock (TensorFlow's "
            "split: the extra cell at the end).",
        )
    return w, b


def _bn_weights(imp, bn, bias, eps: float, k: int):
    """gamma, beta, moving_mean, moving_variance for epsilon ``eps``, with a conv bias folded."""
    if bn is None:
        gamma, beta, mean, var, e = np.ones(k), np.zeros(k), np.zeros(k), np.ones(k) - eps, eps
    else:
        gamma, beta, mean, var = (np.asarray(imp.const(bn, i), np.float64) for i in range(1, 5))
        e = float(imp.attrs(bn).get("epsilon", 1e-5))
    if bias is not None:
        mean = mean - bias
    var = var + e - eps
    if np.any(var < 0):
        raise UnsupportedOnnxError(f"{imp.where}: batch norms of one block need equal epsilons.")
    return [gamma, beta, mean, var]


def _plan(imp, users, x):
    """(block arguments, weights per sub-layer, nodes, relu) of the block read by ``users``;
    UnsupportedOnnxError when the nodes are not a basic block."""
    branches = [([], u) if u.op_type == "Add" else _branch(imp, u, x) for u in users]
    (nodes_a, add), (nodes_b, add_b) = branches
    if add is not add_b:
        raise UnsupportedOnnxError("the branches do not meet")
    main, short = sorted((nodes_a, nodes_b), key=lambda n: -sum(m.op_type == "Conv" for m in n))
    (c1, bn1), (c2, bn2) = _split(imp, main, 2)
    shortcut = _split(imp, short, 1)[0] if short else None
    relu = imp.single_user(add.output[0])
    if relu is None or relu.op_type != "Relu":
        raise UnsupportedOnnxError("no Relu after the Add")
    if imp.producer_name == "slidenet" and add.name != f"{relu.name}/add":
        raise UnsupportedOnnxError("slidenet wrote these nodes from separate layers")
    nodes = [*main, *short, add]
    if any(imp.weight_uses.get(i, 0) > 1 for n in nodes for i in n.input if i in imp.consts):
        raise UnsupportedOnnxError("weights shared with other nodes: kept as shared layers")
    w1 = imp.const(c1, 1)
    k, kernel = int(w1.shape[0]), tuple(w1.shape[2:])
    strides = tuple(imp.attrs(c1).get("strides", [1, 1]))
    in_hw = imp.shape[:-1]
    out_hw = tuple(-(-n // s) for n, s in zip(in_hw, strides, strict=True))
    w1, b1 = _conv(imp, c1, in_hw, kernel, strides, same=True)
    w2, b2 = _conv(imp, c2, out_hw, kernel, (1, 1), same=True)
    first_bn = bn1 or bn2 or (shortcut[1] if shortcut else None)
    eps = float(imp.attrs(first_bn).get("epsilon", 1e-5)) if first_bn else 1e-3
    momentum = float(imp.attrs(first_bn).get("momentum", 0.9)) if first_bn else 0.99
    weights = {
        "conv1": [w1.transpose(2, 3, 1, 0)],
        "bn1": _bn_weights(imp, bn1, b1, eps, k),
        "conv2": [w2.transpose(2, 3, 1, 0)],
        "bn2": _bn_weights(imp, bn2, b2, eps, k),
    }
    if shortcut:
        ws, bs = _conv(imp, shortcut[0], in_hw, (1, 1), strides, same=False)
        weights["shortcut_conv"] = [ws.transpose(2, 3, 1, 0)]
        weights["shortcut_bn"] = _bn_weights(imp, shortcut[1], bs, eps, k)
    args = {
        "filters": k,
        "kernel_size": kernel,
        "strides": strides,
        "shortcut": "projection" if shortcut else "identity",
        "momentum": momentum,
        "epsilon": eps,
    }
    return args, weights, nodes, relu


def residual_block(imp, state) -> bool:
    """Convert the ResNet basic block read from ``state['x']``, if there is one; True if so.

    ``state`` is the tensor's state: on success it becomes the state of the block's output.
    """
    from slidenet.layers.residual import ResidualBlock

    x = state["x"]
    users = imp.users(x)
    if len(users) != 2 or state["layout"] != "first" or state["rank"] != 4:
        return False
    imp.current = state
    try:
        args, weights, nodes, relu = _plan(imp, users, x)
    except UnsupportedOnnxError:
        return False  # not a basic block: imported node by node
    add = nodes[-1]
    block = ResidualBlock(**args, name=imp.layer_name(add, "add"))
    imp.add(block)
    for part, values in weights.items():
        getattr(block, part).set_weights(values)
    for node in nodes:
        imp.take(node)
    state["x"] = imp.take(relu)
    imp.producer[state["x"]] = block
    return True
