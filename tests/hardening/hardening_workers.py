"""Worker processes for the crash-safety, resume and memory tests (run as a script, so that the
test process itself is never killed, limited or measured).

    python hardening_workers.py kill-saves DIR TRIALS SEED   SIGKILL a saving child TRIALS times
    python hardening_workers.py fsize-save TARGET LIMIT     save under RLIMIT_FSIZE=LIMIT
    python hardening_workers.py resume-trials DIR TRIALS SEED MODE   SIGKILL training, resume
    python hardening_workers.py memory MODE DIR             peak RSS of predict / fit on a memmap

Each prints one JSON line with what it saw; the tests check it.
"""

from __future__ import annotations

import os

# one BLAS thread: the workers fork, and the numbers must not depend on thread timing
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve()


def run_worker(*args, timeout=60, env=None):
    """Run this file as a subprocess; return the JSON it printed last."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, str(HERE), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if proc.returncode != 0:
        raise AssertionError(f"worker {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----- crash safety ---------------------------------------------------------------------------
def distinct_model(seed, width=384):
    """A model whose every weight (and Adam slot) identifies ``seed``: about 1.6 MB on disk."""
    import slidenet as keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.layers.Dense(width, input_shape=(256,)), keras.layers.Dense(4)])
    model.compile(keras.optimizers.Adam(0.01), "mse")
    model.train_on_batch(np.full((2, 256), seed, np.float32), np.zeros((2, 4), np.float32))
    return model


def kill_saves(folder, trials, seed):
    """Fork a child that saves models A and B in turn to one path, SIGKILL it at a random time,
    keep a copy of what the path holds, and repeat."""
    folder = Path(folder)
    target = folder / "model.slidenet"
    models = [distinct_model(1), distinct_model(2)]
    models[0].save(target)
    rng = random.Random(seed)
    t0 = time.perf_counter()
    models[1].save(folder / "timing.slidenet")
    save_s = time.perf_counter() - t0
    (folder / "timing.slidenet").unlink()
    report = {"save_s": save_s, "trials": []}
    for trial in range(int(trials)):
        start = rng.randrange(2)
        pid = os.fork()
        if pid == 0:  # the child: save forever until killed
            try:
                i = start
                while True:
                    models[i % 2].save(target)
                    i += 1
            finally:
                os._exit(1)
        time.sleep(rng.uniform(0.2, 4.0) * save_s)
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        shutil.copyfile(target, folder / f"after-kill-{trial:03d}.bin")
        report["trials"].append(
            {"killed": os.WIFSIGNALED(status), "listing": sorted(p.name for p in folder.iterdir())}
        )
    print(json.dumps(report))


def fsize_save(target, limit):
    """Save a large model over ``target`` with the file size limited to ``limit`` bytes."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG from write() instead of dying
    big = distinct_model(2, width=1024)
    resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), int(limit)))
    try:
        big.save(target)
    except OSError as e:
        result = {"error": type(e).__name__, "errno": e.errno, "message": str(e)}
    else:
        result = {"error": None}
    result["listing"] = sorted(p.name for p in Path(target).parent.iterdir())
    print(json.dumps(result))


# ----- exact resume ---------------------------------------------------------------------------
EPOCHS = 6
NETS = """
import slidenet as keras


def tiny(input_shape, classes):
    return keras.Sequential([
        keras.layers.Input(input_shape),
        keras.layers.RandomFlip("horizontal"),  # augmentation's generator must resume too
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3),
        keras.layers.Dense(classes, activation="softmax"),
    ])
"""


def resume_data(folder):
    """A tiny data set (as arrays and as a Keras-format .npz for the CLI) and the model file."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (300, 12, 12), dtype=np.uint8)
    y = (x[:, :6].mean(axis=(1, 2)) > x[:, 6:].mean(axis=(1, 2))).astype(np.int64) + (
        x[:, :, :6].mean(axis=(1, 2)) > 127
    )
    np.savez(folder / "data.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:], y_test=y[240:])
    (folder / "nets.py").write_text(NETS)
    return (x[:240, :, :, None] / np.float32(255)).astype(np.float32), y[:240]


def train_to_the_end(mode, folder, ckpt):
    """One attempt: start or resume from ``ckpt``, train to EPOCHS, write final.slidenet."""
    import slidenet as keras
    from slidenet.callbacks import LearningRateScheduler, ModelCheckpoint

    if mode == "cli":
        from slidenet.cli import main

        if ckpt.exists():
            args = ["train", "--resume", ckpt, "--verbose", "0"]
        else:
            args = [
                *("train", "--model", f"{folder.parent / 'nets.py'}:tiny"),
                *("--dataset", folder.parent / "data.npz", "--epochs", EPOCHS, "--seed", 5),
                *("--batch-size", 16, "--validation-split", 0.2, "--out", ckpt, "--verbose", 0),
            ]
        if main([str(a) for a in args]) != 0:
            raise RuntimeError("slidenet train failed")
        shutil.copyfile(ckpt, folder / "final.slidenet")
        return
    x, y = resume_data(folder.parent)
    if ckpt.exists():
        model = keras.load_model(ckpt)
    else:
        keras.utils.set_random_seed(5)
        model = keras.Sequential()
        for layer in _tiny((12, 12, 1), 3).layers:
            model.add(layer)
        model.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(
        x,
        y,
        batch_size=16,
        epochs=EPOCHS,
        initial_epoch=model.epoch,
        validation_split=0.2,
        verbose=0,
        callbacks=[ModelCheckpoint(ckpt), LearningRateScheduler(lambda epoch, lr: lr * 0.8)],
    )
    model.save(folder / "final.slidenet")


def _tiny(input_shape, classes):
    namespace = {}
    exec(NETS, namespace)  # the same builder the CLI imports from nets.py
    return namespace["tiny"](input_shape, classes)


def _attempt(mode, folder, ckpt):
    """Fork a child that runs train_to_the_end; return its pid."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            train_to_the_end(mode, folder, ckpt)
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            os._exit(code)
    return pid


def resume_trials(folder, trials, seed, mode):
    """An uninterrupted run, then TRIALS runs SIGKILLed at random points (up to 3 times each) and
    resumed from their checkpoint until they finish.

    A kill point is a random epoch boundary at or after the checkpoint, plus a random delay of
    up to 1.2 epochs: it lands in the middle of an epoch, in a checkpoint save, or while the
    attempt is still loading.
    """
    import slidenet.cli  # noqa: F401 - imported once here, not in every forked attempt

    folder = Path(folder)
    resume_data(folder)
    ref = folder / "reference"
    ref.mkdir()
    # an epoch's length, timed between the first and the last checkpoint: not the start-up
    # (imports, loading compiled kernels), which can be longer than several epochs
    pid, seen, status = _attempt(mode, ref, ref / "ckpt.slidenet"), {}, None
    while status is None:
        epoch = _epoch_of(ref / "ckpt.slidenet")
        if epoch is not None and epoch not in seen:
            seen[epoch] = time.perf_counter()
        status = _wait(pid, 0.002)
    first, last = min(seen), max(seen)
    epoch_s = (seen[last] - seen[first]) / max(last - first, 1)
    if status != 0:
        raise RuntimeError("the reference run failed")
    rng = random.Random(seed)
    report = {"epoch_s": epoch_s, "trials": []}
    for trial in range(trials):
        here = folder / f"trial-{trial}"
        here.mkdir()
        ckpt, kills, resumed_from = here / "ckpt.slidenet", 0, []
        while True:
            done = _epoch_of(ckpt) or 0
            resumed_from.append(_epoch_of(ckpt))
            pid = _attempt(mode, here, ckpt)
            status = _wait(pid, 0)
            if kills < 3 and done < EPOCHS - 1:
                target = rng.randint(done, EPOCHS - 1)  # the checkpoint to wait for
                while status is None and (_epoch_of(ckpt) or 0) < target:
                    status = _wait(pid, 0.005)
                status = status if status is not None else _wait(pid, rng.uniform(0, 1.2) * epoch_s)
                if status is None:
                    os.kill(pid, signal.SIGKILL)
                    _, status = os.waitpid(pid, 0)
                    if os.WIFSIGNALED(status):
                        kills += 1
                        continue
            if status is None:
                _, status = os.waitpid(pid, 0)
            if status != 0:
                raise RuntimeError(f"trial {trial}: training failed (status {status})")
            break
        report["trials"].append({"kills": kills, "resumed_from": resumed_from})
    print(json.dumps(report))


def _wait(pid, seconds):
    """The child's exit status if it ends within ``seconds``, else None."""
    deadline = time.perf_counter() + seconds
    while True:
        wpid, status = os.waitpid(pid, os.WNOHANG)
        if wpid:
            return status
        if time.perf_counter() >= deadline:
            return None
        time.sleep(0.002)


def _epoch_of(ckpt):
    """Epochs in the checkpoint (None before the first); it is replaced atomically, so it can
    be read while the training process writes the next one."""
    import zipfile

    try:
        with zipfile.ZipFile(ckpt) as zf:
            return json.loads(zf.read("slidenet.json"))["training"]["epoch"]
    except FileNotFoundError:
        return None


# ----- bounded memory ---------------------------------------------------------------------------
def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def memory(mode, folder, n):
    """Peak memory of predict (or fit) on an (n, 28, 28) uint8 memmap written to ``folder``."""
    import tracemalloc

    import slidenet as keras

    folder, n = Path(folder), int(n)
    path = folder / "images.npy"
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, 28, 28)}
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:  # written in pieces: nothing of this size is ever in memory
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n, 5000):
            f.write(rng.integers(0, 256, (min(5000, n - start), 28, 28), dtype=np.uint8).data)
    x = np.load(path, mmap_mode="r")
    y = np.asarray(rng.integers(0, 10, n))
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Conv2D(4, 3, strides=2, activation="relu", input_shape=(28, 28, 1)),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x[:512], y[:512], batch_size=256, verbose=0)  # warm up buffers and caches
    model.predict(x[:512], batch_size=256)
    baseline = _peak_rss_mb()
    tracemalloc.start()  # NumPy reports its array buffers to tracemalloc
    t0 = time.perf_counter()
    if mode == "predict":
        out = model.predict(x, batch_size=256)
        assert out.shape == (n, 10) and np.isfinite(out).all()
    else:
        model.fit(x, y, batch_size=256, epochs=1, validation_split=0.1, verbose=0)
        model.evaluate(x, y, batch_size=256, verbose=0)
    seconds = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    result = {
        "n": n,
        "seconds": seconds,
        "input_mb": x.nbytes / 2**20,
        "float32_copy_mb": x.nbytes * 4 / 2**20,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _peak_rss_mb(),
        "mapped_file_rss_mb": _status_mb("RssFile"),
        "traced_peak_mb": traced_peak,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    if command == "kill-saves":
        kill_saves(rest[0], int(rest[1]), int(rest[2]))
    elif command == "resume-trials":
        resume_trials(rest[0], int(rest[1]), int(rest[2]), rest[3])
    elif command == "memory":
        memory(rest[0], rest[1], int(rest[2]))
    elif command == "fsize-save":
        fsize_save(rest[0], int(rest[1]))
    else:
        raise SystemExit(f"unknown command {command!r}")
