"""``slidenet train``: build a model, train it with a progress bar, checkpoint every epoch.

The checkpoint (by default the ``--out`` file itself) is written atomically at the end of every
epoch and holds weights, optimizer state, epoch counter, random-generator states and the run's
settings. Ctrl-C (SIGINT) leaves the last finished epoch's checkpoint on disk and exits with code
130; ``--resume`` continues from it and ends with the same weights, bit for bit, as a run that was
never interrupted (same data, batch size and validation split, which the checkpoint remembers).
"""

from __future__ import annotations

import gc
import shlex
import signal
import sys
import threading
from pathlib import Path

import numpy as np

from slidenet import __version__
from slidenet.callbacks import Callback
from slidenet.cli import _common, _data
from slidenet.cli._common import CLIError, UsageError, note

DEFAULTS = {"epochs": 10, "batch_size": 32, "validation_split": 0.0, "seed": 0}
#: Settings a checkpoint remembers; on --resume, options not given take these values.
REMEMBERED = ("dataset", "epochs", "batch_size", "validation_split", "seed", "out", "checkpoint")

EXAMPLES = """\
slidenet train --model mnist_cnn --dataset mnist-sample --epochs 8 --out cnn.slidenet
slidenet train --model lenet5 --dataset fashion-mnist --optimizer sgd --lr 0.05 --epochs 5
slidenet train --model my_nets.py:small_cnn --dataset photos/ --image-size 64x64 --out pets.slidenet
slidenet train --resume cnn.slidenet                # continue after Ctrl-C, from the last epoch
slidenet train --resume cnn.slidenet --epochs 12    # or train a finished model for longer
mpiexec -n 2 slidenet train --model mnist_cnn --dataset mnist-sample --distributed"""


def add_parser(subparsers):
    p = _common.add_command(
        subparsers,
        "train",
        help="train a model on a data set, with a checkpoint every epoch",
        description=(
            "Train a model and save it. A checkpoint is written at the end of every epoch (to "
            "--out unless --checkpoint says otherwise); Ctrl-C stops with exit code 130 and prints "
            "how to resume. --model FILE.py:FUNCTION imports and runs your own Python file."
        ),
        examples=EXAMPLES,
    )
    p.add_argument(
        "--model",
        metavar="NAME|FILE.py:FUNCTION",
        help=f"a built-in model ({', '.join(_common.builder_names())}) or a function in a Python "
        "file that returns a Sequential or a Model (called with input_shape= and classes= if it "
        "takes them)",
    )
    p.add_argument("--dataset", metavar="DATASET", help=_data.HELP)
    p.add_argument(
        "--epochs",
        type=_common.positive_int,
        metavar="N",
        help=f"total number of epochs, counting those of a resumed checkpoint (default "
        f"{DEFAULTS['epochs']})",
    )
    p.add_argument(
        "--batch-size",
        type=_common.positive_int,
        metavar="N",
        help=f"examples per step (default {DEFAULTS['batch_size']})",
    )
    p.add_argument(
        "--optimizer",
        choices=_common.OPTIMIZERS,
        help="optimizer (default adam, with its default --lr)",
    )
    p.add_argument("--lr", type=_common.positive_float, help="learning rate")
    p.add_argument(
        "--seed",
        type=_common.non_negative_int,
        help="random seed for weights, shuffling and dropout (default 0: runs repeat exactly)",
    )
    p.add_argument(
        "--validation-split",
        type=_common.fraction,
        metavar="FRACTION",
        help="fraction of the training data, from its end, kept out of training and evaluated "
        "after every epoch (default 0)",
    )
    p.add_argument("--out", metavar="MODEL", help="model file to write (default NAME.slidenet)")
    p.add_argument(
        "--checkpoint", metavar="PATH", help="where to write the checkpoints (default: --out)"
    )
    p.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue from a checkpoint; the model, optimizer and the settings above come from it "
        "unless given again",
    )
    p.add_argument(
        "--image-size",
        type=_common.image_size,
        metavar="HxW",
        help="for a FOLDER data set: resize images to this size (default: their most common size)",
    )
    p.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="0 quiet, 1 progress bar (default), 2 one line per epoch",
    )
    p.add_argument(
        "--report",
        metavar="PATH",
        help="after training, write an HTML report of the model on the test split, as "
        "'slidenet report' does (needs matplotlib)",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="train data-parallel in every process that mpiexec starts (mpiexec -n 4 slidenet "
        "train ... --distributed; needs the 'mpi' extra): --batch-size is the global batch, split "
        "evenly; each process trains on its shard of the data; rank 0 prints and writes the "
        "checkpoints, which resume with or without --distributed",
    )
    p.set_defaults(run=run)
    return p


class EpochCheckpoint(Callback):
    """Saves the model with the CLI's metadata at the end of every epoch.

    ``saved`` is the epoch count of the file on disk, ``current`` the epoch being trained (1-based)
    and ``saving`` is true while a save is in progress (then the weights are still those of the
    epoch boundary and the save can be redone after an interrupt).
    """

    def __init__(self, path, meta):
        self.path, self.meta = Path(path), meta
        self.saved, self.current, self.saving = None, None, False
        self.write = True  # False in the processes of a distributed run other than rank 0

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        self.saving = True
        self.save()
        self.saved = epoch + 1
        self.saving = False

    def save(self, path=None):
        """Save; the file holds the whole history (fit with initial_epoch keeps the resumed
        run's epochs, see slidenet.models.saving.file_history)."""
        if self.write:
            _common.save(self.model, path or self.path, self.meta)


def _settings(args, meta):
    """The run's settings: given options, else the checkpoint's, else the defaults."""
    remembered = meta.get("train", {}) if args.resume else {}
    settings = {}
    for key in REMEMBERED:
        value = getattr(args, key)
        settings[key] = value if value is not None else remembered.get(key, DEFAULTS.get(key))
    if settings["dataset"] is None:
        raise UsageError(
            "the following arguments are required: --dataset"
            + (" (the checkpoint does not record one)" if args.resume else "")
        )
    return settings


def _check_fit(model, data):
    outputs = model.output_shape[-1]
    if len(model.output_shape) != 2 or (outputs != 1 and outputs < data.n_classes):
        raise CLIError(
            f"the model's output {model.output_shape} does not fit {data.n_classes} classes; "
            "give it one output per class"
        )
    if outputs == 1 and data.n_classes > 2:
        raise CLIError(f"a model with one output cannot learn {data.n_classes} classes")


def _new_model(args, settings):
    if not args.model:
        raise UsageError("the following arguments are required: --model (or --resume)")
    from slidenet.utils import set_random_seed

    builder = _common.resolve_builder(args.model)  # fail early on a wrong name
    if Path(settings["dataset"]).is_dir() and not _common.accepts(builder[1], "input_shape"):
        # a builder with its own input size: the folder's images are converted to it
        set_random_seed(settings["seed"])
        name, model = _common.build_model(builder)
        data = _data.load(settings["dataset"], target=_common.model_input(model))
    else:
        data = _data.load(settings["dataset"], size=args.image_size)
        set_random_seed(settings["seed"])
        name, model = _common.build_model(builder, data.input_shape, data.n_classes)
    _common.compile_classifier(model, args.optimizer, args.lr)
    return name, model, data


def _resumed_model(args, settings, meta):
    from slidenet.utils import set_random_seed

    given = [f"--{k}" for k in ("model", "optimizer", "lr") if getattr(args, k) is not None]
    if given:
        note(f"--resume: the model and optimizer come from the checkpoint; ignoring {given}")
    set_random_seed(settings["seed"])
    model, _ = _common.load(args.resume)
    if model.optimizer is None:
        _common.compile_classifier(model)
    data = _data.load(settings["dataset"], target=_common.model_input(model))
    return meta.get("train", {}).get("model", model.name), model, data


def run(args) -> int:
    from slidenet.distributed import comm

    if getattr(args, "distributed", False):
        from slidenet.distributed.cli_support import run_command

        return run_command("slidenet train", _run, args)
    if comm.launcher_size() > 1:
        raise UsageError(
            f"this process is one of {comm.launcher_size()} started by mpiexec; add "
            "--distributed to train data-parallel (without it every process trains alone)"
        )
    return _run(args)


def _run(args) -> int:
    meta = _common.read_meta(args.resume) if args.resume else {}
    if args.resume and not Path(args.resume).is_file():
        raise CLIError(f"no checkpoint at {args.resume!r}")
    settings = _settings(args, meta)
    if args.report:
        from slidenet.cli import report

        report.require_viz()  # fail before training, not after it
    if args.resume:
        name, model, data = _resumed_model(args, settings, meta)
    else:
        name, model, data = _new_model(args, settings)
    _check_fit(model, data)
    default_out = args.resume or f"{Path(name.split(':')[-1]).name}.slidenet"
    out = Path(settings["out"] or default_out)
    checkpoint = Path(settings["checkpoint"] or out)
    settings.update(out=str(out), checkpoint=str(checkpoint), model=name)
    run_meta = {
        "slidenet": __version__,
        "class_names": data.class_names,
        "train": {**settings, "image_size": list(data.input_shape[:2])},
    }
    epochs, done = settings["epochs"], model.epoch
    saver = EpochCheckpoint(checkpoint, run_meta)
    fit_args = {"x": data.x_train, "y": data.y_train, "batch_size": settings["batch_size"]}
    fit_args.update(verbose=args.verbose, validation_split=settings["validation_split"])
    callbacks, parallel = [], None
    if getattr(args, "distributed", False):
        from slidenet.distributed.cli_support import distribute

        fit_args, callbacks, parallel = distribute(model, fit_args, saver)
    opt = model.optimizer
    print(f"{name} ({model.count_params():,} parameters) on {data.describe()}", flush=True)
    if parallel and done < epochs:
        print(parallel, flush=True)
    if done < epochs:
        print(
            f"{type(opt).__name__} learning rate {opt.learning_rate:g}, batch size "
            f"{settings['batch_size']}, epochs {done + 1}..{epochs}; checkpoint: {checkpoint}",
            flush=True,
        )
    prior = dict(model.history.history) if (args.resume and model.history) else {}
    if done >= epochs:
        note(f"the checkpoint has {done} epochs already; give --epochs > {done} to train more")
    else:
        interrupted = False
        try:
            model.fit(**fit_args, epochs=epochs, callbacks=[*callbacks, saver], initial_epoch=done)
        except KeyboardInterrupt:
            interrupted = True
        if interrupted:  # outside the handler: fit's frames and its progress bar are gone
            return _interrupted(args, saver, model)
    if done < epochs and out != checkpoint:
        saver.save(out)
    if not saver.write:  # distributed: rank 0 evaluates and reports
        return 0
    loss, accuracy = _test_scores(model, data)
    print(f"test: loss {loss:.4f} - accuracy {accuracy:.4f} ({len(data.x_test):,} images)")
    if done < epochs:
        print(f"saved {out}")
    if args.report:
        history = report.merged_history(prior, model, trained=done < epochs)
        report.write(model, data, args.report, meta=run_meta, history=history)
        print(f"report: {args.report}")
    q = shlex.quote
    print(
        f"next: slidenet evaluate {q(str(out))} --dataset {q(settings['dataset'])}   |   "
        f"slidenet predict {q(str(out))} IMAGE.png"
    )
    return 0


def _test_scores(model, data):
    values = model.evaluate(data.x_test, data.y_test, batch_size=256, verbose=0)
    values = values if isinstance(values, list) else [values]
    if len(values) > 1:
        return values[0], values[1]
    probs = model.predict(data.x_test, batch_size=256)
    return values[0], float(np.mean(probs.argmax(axis=1) == data.y_test))


def _interrupted(args, saver, model) -> int:
    """Ctrl-C: make sure the last finished epoch is on disk, print how to resume, exit 130."""
    if saver.saving:  # stopped inside the epoch-end save: the weights are still the boundary's
        _without_sigint(saver.save)
        saver.saved, saver.saving = model.epoch, False
        during = f"at the end of epoch {model.epoch}"
    else:
        during = f"during epoch {saver.current}" if saver.current else "before the first epoch"
    gc.collect()  # a progress bar still open prints its last state now, not after the hint
    if saver.saved is not None:
        source = saver.path
        where = f"{source} holds {saver.saved} finished epoch(s)"
    elif args.resume:
        source = Path(args.resume)
        where = f"{source} is unchanged"
    else:
        print(
            f"slidenet train: interrupted {during}; no epoch finished, nothing was saved",
            file=sys.stderr,
        )
        return 130
    print(
        f"slidenet train: interrupted {during}; {where}; resume with: "
        f"slidenet train --resume {shlex.quote(str(source))}",
        file=sys.stderr,
        flush=True,
    )
    return 130


def _without_sigint(fn):
    if threading.current_thread() is not threading.main_thread():
        return fn()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return fn()
    finally:
        signal.signal(signal.SIGINT, previous)
