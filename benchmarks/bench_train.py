"""Training throughput of Penchant's ``vae`` against RecBole's MultiVAE and Cornac's VAECF.

For each size the script generates implicit data once (:func:`_common.shop_events`,
deduplicated to distinct user–item pairs) and writes it where every side reads it: an
``.npz`` of pairs (Penchant, Cornac) and RecBole's atomic ``.inter`` file with the same
pairs. Each (library, size) then trains in a fresh subprocess, the peers under their own
virtual environment (created and filled by this script), with the same batch size,
layer sizes, learning rate, epochs and threads. Only the training epochs are timed:

- Penchant: ``losses["seconds"]`` of each epoch from ``penchant.training.train`` (the
  batch loop alone; no validation, no checkpoints);
- RecBole: ``Trainer._train_epoch`` per epoch, on a ``UserDataLoader`` over every user;
- Cornac: each epoch of ``VAECF.fit``'s loop, from its call to ``Dataset.user_iter`` to
  the iterator's end after the epoch's last batch.

s/epoch is each library's fastest epoch: the first pays for warm-up, and on shared cores
the fastest is the one least slowed by other work (every epoch is printed too).

    python benchmarks/bench_train.py [--quick] [--sizes 0.1 0.333 1] [--epochs 2]
        [--threads 2] [--libraries penchant recbole cornac] [--model vae|dae|cvae]
        [--peers-venv DIR] [--folder DIR] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _common import T0, mib, peak_kib, run_child, shop_events, thread_env

HERE = Path(__file__).resolve().parent
FULL = {"users": 140_000, "items": 20_000, "events": 10_000_000}  # ML-20M's scale
PEERS = ["torch==2.13.0", "recbole==1.2.1", "cornac==3.0.1", "setuptools<81"]
LIBRARIES = ("penchant", "recbole", "cornac")
#: RecBole's data set name: its atomic file is <folder>/<name>/<name>.inter.
INTER = "bench"
#: The issue's target: penchant users/s at least this multiple of RecBole MultiVAE's.
TARGET_RATIO = 2.0


def write_data(folder: Path, users: int, items: int, events: int) -> dict[str, Any]:
    """Generate once, deduplicate to implicit pairs, write both formats."""
    import pandas as pd

    data = shop_events(users, items, events)
    pairs = np.unique(data["user_id"] * items + data["item_id"])
    user, item = np.divmod(pairs, items)
    np.savez(folder / "pairs.npz", user=user, item=item)
    (folder / INTER).mkdir(exist_ok=True)
    frame = pd.DataFrame({"user_id:token": user, "item_id:token": item})
    frame.to_csv(folder / INTER / f"{INTER}.inter", sep="\t", index=False)
    return {"events": len(data["user_id"]), "pairs": len(pairs),
            "users": len(np.unique(user)), "items": len(np.unique(item))}


# -- the children: each trains one library on one size and prints a JSON line ---------

def child_penchant(spec: dict[str, Any]) -> dict[str, Any]:
    """The plugin path a pipeline takes: events → ``interactions`` → ``vae.fit``."""
    import pandas as pd
    import torch

    from penchant import Context, Dataset, Events, Features
    from penchant.plugins import Registry

    torch.set_num_threads(spec["threads"])
    pairs = np.load(Path(spec["folder"]) / "pairs.npz")
    frame = pd.DataFrame({"user": pairs["user"], "item": pairs["item"], "time": T0})
    features = Features.start(Dataset(Events.from_frame(frame, time_unit="s")),
                              pd.Timestamp(T0 + 1, unit="s", tz="UTC"))
    registry = Registry()
    features = registry.get("features", "interactions")({}).extract(features, Context())
    model = registry.get("model", spec["model"])({
        "epochs": spec["epochs"], "batch_size": spec["batch_size"], "hidden": spec["hidden"],
        "latent": spec["latent"], "lr": spec["lr"], "patience": 0, "device": spec["device"]})
    seconds: list[float] = []
    ctx = Context(seed=0, device=spec["device"],
                  epoch_end=lambda epoch, losses, metrics: seconds.append(losses["seconds"]))
    baseline = peak_kib()
    profiler = cProfile.Profile() if spec["profile"] else None
    if profiler:
        profiler.enable()
    model.fit(features, None, ctx)
    out = {"seconds": seconds, "trained_users": int((np.diff(features.matrix.indptr) > 0)
                                                    .sum()),
           "baseline_kib": baseline, "peak_kib": peak_kib()}
    if profiler:
        profiler.disable()
        text = io.StringIO()
        stats = pstats.Stats(profiler, stream=text)
        text.write(f"--- penchant {spec['model']}.fit, by own time (tottime) ---\n")
        stats.sort_stats("tottime").print_stats(spec["profile_lines"])
        text.write("--- by cumulative time ---\n")
        stats.sort_stats("cumulative").print_stats(spec["profile_lines"])
        out["profile"] = text.getvalue()
    return out


def child_recbole(spec: dict[str, Any]) -> dict[str, Any]:
    """MultiVAE through RecBole's own Config, dataset and Trainer, on every user (no
    split: RecBole's evaluation is not what is measured)."""
    # RecBole 1.2.1 still uses aliases numpy 2 removed.
    for alias, real in {"float_": np.float64, "complex_": np.complex128, "bool8": np.bool_,
                        "int_": np.int64, "unicode_": np.str_}.items():
        if alias not in np.__dict__:
            setattr(np, alias, real)
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.data.dataloader import UserDataLoader
    from recbole.model.general_recommender import MultiVAE
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    folder = Path(spec["folder"])
    os.chdir(folder)  # RecBole writes log_tensorboard/ into the working folder
    config = Config(model="MultiVAE", dataset=INTER, config_dict={
        "data_path": str(folder), "checkpoint_dir": str(folder / "recbole-saved"),
        "load_col": {"inter": ["user_id", "item_id"]}, "device": "cpu", "use_gpu": False,
        "seed": 0, "reproducibility": True, "show_progress": False, "state": "ERROR",
        "epochs": spec["epochs"], "train_batch_size": spec["batch_size"],
        "learning_rate": spec["lr"], "mlp_hidden_size": [spec["hidden"]],
        # RecBole's encoder emits mu and logvar side by side: latent_dimension is twice
        # the latent size the decoder reads.
        "latent_dimension": 2 * spec["latent"], "dropout_prob": 0.5, "anneal_cap": 0.2,
        "total_anneal_steps": 2000, "train_neg_sample_args": None,
        "eval_args": {"split": {"RS": [1.0, 0.0, 0.0]}, "order": "RO", "group_by": None,
                      "mode": "full"}})
    init_seed(config["seed"], config["reproducibility"])
    torch.set_num_threads(spec["threads"])
    dataset = create_dataset(config)
    train_set = dataset.build()[0]  # every pair: the split puts all of them in training
    train_data = UserDataLoader(config, train_set, None, shuffle=True)
    model = MultiVAE(config, train_set).to(config["device"])
    trainer = Trainer(config, model)
    baseline = peak_kib()
    seconds = []
    for epoch in range(spec["epochs"]):
        started = time.perf_counter()
        trainer._train_epoch(train_data, epoch)
        seconds.append(time.perf_counter() - started)
    return {"seconds": seconds, "trained_users": int(train_set.user_num - 1),
            "baseline_kib": baseline, "peak_kib": peak_kib()}


def child_cornac(spec: dict[str, Any]) -> dict[str, Any]:
    """VAECF's own training loop on a Cornac Dataset built from the arrays (``from_uir``
    would go through a Python tuple per pair)."""
    import torch
    from cornac.data import Dataset
    from cornac.models import VAECF

    torch.set_num_threads(spec["threads"])
    pairs = np.load(Path(spec["folder"]) / "pairs.npz")
    users, user_index = np.unique(pairs["user"], return_inverse=True)
    items, item_index = np.unique(pairs["item"], return_inverse=True)
    train_set = Dataset(len(users), len(items), dict(zip(users.tolist(), range(len(users)),
                                                         strict=True)),
                        dict(zip(items.tolist(), range(len(items)), strict=True)),
                        (user_index, item_index, np.ones(len(user_index))), seed=0)
    model = VAECF(k=spec["latent"], autoencoder_structure=[spec["hidden"]],
                  n_epochs=spec["epochs"],
                  batch_size=spec["batch_size"], learning_rate=spec["lr"], beta=0.2,
                  likelihood="mult", act_fn="tanh", use_gpu=False, verbose=False, seed=0)
    # learn() asks for a fresh user iterator at the start of each epoch and exhausts it
    # after the epoch's last batch: timing the iterator times each epoch.
    iterate = train_set.user_iter
    seconds: list[float] = []

    def timed_epoch(*args: Any, **kwargs: Any) -> Iterator[np.ndarray]:
        started = time.perf_counter()
        yield from iterate(*args, **kwargs)
        seconds.append(time.perf_counter() - started)

    train_set.user_iter = timed_epoch
    baseline = peak_kib()
    model.fit(train_set)
    return {"seconds": seconds, "trained_users": len(users), "baseline_kib": baseline,
            "peak_kib": peak_kib()}


CHILDREN = {"penchant": child_penchant, "recbole": child_recbole, "cornac": child_cornac}


# -- the parent ------------------------------------------------------------------------

def peers_python(venv: Path) -> Path:
    """The peers' interpreter, creating and filling their venv on first use. torch is
    pinned to the CPU wheel this machine holds; a bare ``torch`` would fetch a CUDA build
    of several gigabytes."""
    python = venv / "bin" / "python"
    probe = ("import torch, recbole, cornac; "
             "assert torch.version.cuda is None, 'a CUDA build of torch'; "
             "print(torch.__version__, recbole.__version__, cornac.__version__)")
    if not python.exists():
        print(f"creating {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if found.returncode:
        print(f"installing {' '.join(PEERS)} into {venv} ...", flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PEERS], check=True)
        found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
        if found.returncode:
            raise SystemExit(f"the peers' venv {venv} does not work:\n{found.stderr}")
    print(f"peers: torch, recbole, cornac = {found.stdout.strip()}")
    return python


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.1, 1 / 3, 1.0],
                        help="fractions of the full size (users and events; the catalogue "
                             "stays whole), default 0.1 0.333 1")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (0.01 0.03) and one epoch: checks the set-up")
    parser.add_argument("--users", type=int, default=FULL["users"])
    parser.add_argument("--items", type=int, default=FULL["items"])
    parser.add_argument("--events", type=int, default=FULL["events"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--hidden", type=int, default=600)
    parser.add_argument("--latent", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu",
                        help="Penchant's device, e.g. cuda on a GPU machine (the peers stay "
                             "on the CPU)")
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=list(LIBRARIES))
    parser.add_argument("--model", default="vae", choices=("vae", "dae", "cvae"),
                        help="Penchant's model, with the same layer sizes (the peers always "
                             "train their Mult-VAE)")
    parser.add_argument("--peers-venv", type=Path, default=HERE / ".peers-venv")
    parser.add_argument("--folder", type=Path,
                        help="keep the data files here (default: a temporary folder)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile Penchant's training and print the top lines")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--child", nargs=2, metavar=("LIBRARY", "SPEC"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(CHILDREN[args.child[0]](json.loads(args.child[1]))))
        return
    if args.quick:
        args.sizes, args.epochs = [0.01, 0.03], 1
    peers = [lib for lib in args.libraries if lib != "penchant"]
    python = {"penchant": Path(sys.executable)}
    if peers:
        python.update(dict.fromkeys(peers, peers_python(args.peers_venv.resolve())))
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = (args.folder or Path(tmp)).resolve()
        bench(args, root, python)


def bench(args: argparse.Namespace, root: Path, python: dict[str, Path]) -> None:
    print(f"{args.epochs} epoch(s), batch {args.batch_size} users, layers items → "
          f"{args.hidden} → {args.latent} → {args.hidden} → items, lr {args.lr}, "
          f"{args.threads} thread(s), penchant's {args.model} on {args.device}")
    rows = []
    for size in args.sizes:
        shape = {k: max(1, round(getattr(args, k) * size)) for k in ("users", "events")}
        folder = root / f"size-{size:g}"
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        data = write_data(folder, shape["users"], args.items, shape["events"])
        print(f"\nsize {size:g}: {data['events']:,} events → {data['pairs']:,} distinct pairs, "
              f"{data['users']:,} users × {data['items']:,} items (written in "
              f"{time.perf_counter() - started:.0f} s)", flush=True)
        spec = {"folder": str(folder), "epochs": args.epochs, "batch_size": args.batch_size,
                "hidden": args.hidden, "latent": args.latent, "lr": args.lr,
                "threads": args.threads, "profile": args.profile, "device": args.device,
                "profile_lines": args.profile_lines, "model": args.model}
        figures = {}
        for lib in args.libraries:
            got = run_child([python[lib], __file__, "--child", lib, json.dumps(spec)],
                            f"{lib} at size {size:g}",
                            thread_env(args.threads, TMPDIR=str(folder)))
            got["per_epoch"] = min(got["seconds"])
            got["users_per_s"] = got["trained_users"] / got["per_epoch"]
            figures[lib] = got
            print(f"  {lib:<9} epochs {', '.join(f'{s:.1f}' for s in got['seconds'])} s; "
                  f"peak RSS {mib(got['peak_kib'] * 1024)} MiB", flush=True)
            if got.get("profile"):
                print(got["profile"])
        rows.append((size, data, figures))
    report(rows)


def report(rows: list[tuple[float, dict[str, Any], dict[str, Any]]]) -> None:
    print(f"\n{'size':>6} {'pairs':>11} {'users':>8}  {'library':<9} {'s/epoch':>8} "
          f"{'users/s':>9} {'peak MiB':>9} {'before':>7}  penchant ÷ it")
    for size, data, figures in rows:
        ours = figures.get("penchant")
        for lib, got in figures.items():
            ratio = "" if ours is None or lib == "penchant" else \
                f"{ours['users_per_s'] / got['users_per_s']:.2f}x"
            print(f"{size:>6g} {data['pairs']:>11,} {got['trained_users']:>8,}  {lib:<9} "
                  f"{got['per_epoch']:>8.1f} {got['users_per_s']:>9,.0f} "
                  f"{mib(got['peak_kib'] * 1024):>9} {mib(got['baseline_kib'] * 1024):>7}  "
                  f"{ratio}")
    print(f"\ns/epoch is the fastest epoch; users/s = users trained ÷ s/epoch. "
          f"\"before\" is the peak RSS before training (interpreter, libraries, data).\n"
          f"Target (issue #8): penchant ≥ {TARGET_RATIO:g}x RecBole MultiVAE's users/s.")


if __name__ == "__main__":
    main()
