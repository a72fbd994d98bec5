"""``pianoforge train perform`` and ``train gan``: the training flags, their checks, the calls into training/."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pianoforge import cliargs
from pianoforge.cli.common import fatal


def add_train(sub: argparse._SubParsersAction) -> None:
    t = sub.add_parser("train", help="train a model (perform, gan)")
    tsub = t.add_subparsers(dest="train_command", required=True, metavar="TASK")
    tp = tsub.add_parser("perform", help="train a perform model (score to audio) on a dataset store",
                         description="Train or resume (rerun the same command) a perform model. A sampler preset "
                                     "is fitted by least squares instead (minutes; the loop flags do not apply; "
                                     "--set train.sampler_rounds=N / train.sampler_iterations=N do).")
    tp.add_argument("--data", type=Path, required=True, help="dataset store built with `pianoforge data build`")
    tp.add_argument("--preset", default="default",
                    help="preset name (lan2018, lan2018-baseline, default, notesynth, notesynth-subframe, sampler) "
                         "or YAML")
    tp.add_argument("--out", type=Path, required=True, help="run folder (logs, checkpoints, best.safetensors)")
    tp.add_argument("--init-from", type=Path,
                    help="start from the weights of this perform checkpoint (same model config; fine-tuning). "
                         "Only read when the run starts; a resumed run continues from its own state")
    _add_loop_flags(tp)
    tp.set_defaults(func=cmd_train_perform)
    tg = tsub.add_parser("gan", help="train a spectrogram GAN (dcgan, specgan, stylegan, framegan, notegan) on a "
                                     "dataset store",
                         description="Train or resume (rerun the same command) a GAN. Writes per-epoch sample grids "
                                     "and Griffin-Lim WAVs (samples/), a diversity/divergence log with warnings "
                                     "(monitor_log.csv) and generator-only checkpoints. See docs/improvise.md.")
    tg.add_argument("--data", type=Path, required=True,
                    help="dataset store built with the preset's geometry (e.g. `data build --preset gan-cpu`)")
    tg.add_argument("--preset", default="specgan",
                    help="MODEL[-GEOMETRY]: dcgan, specgan, stylegan, framegan or notegan, and cpu (default), fine, "
                         "10s or 20s, e.g. specgan-10s (notegan: cpu or fine only); or a YAML path "
                         "(default specgan = specgan-cpu)")
    tg.add_argument("--out", type=Path, required=True, help="run folder (logs, samples, checkpoints, best.safetensors)")
    _add_loop_flags(tg)
    tg.set_defaults(func=cmd_train_gan)


def _add_loop_flags(tp: argparse.ArgumentParser) -> None:
    pos, nonneg = cliargs.positive_int, cliargs.nonneg_int  # ranges checked at parse time: argparse's exit 2
    tp.add_argument("--max-epochs", type=pos, help="stop after N epochs (default: the preset's train.max_epochs)")
    tp.add_argument("--max-minutes", type=cliargs.positive_float,
                    help="stop after M minutes of training in this invocation (checkpointed; a rerun continues)")
    tp.add_argument("--max-steps", type=pos, help="stop after N optimizer steps")
    tp.add_argument("--batch-size", type=pos, help="examples per batch and process (default: the preset's; at most "
                                                   "the training examples: a larger one is an error, not clamped)")
    tp.add_argument("--lr", type=cliargs.positive_float, help="learning rate (default: the preset's train.lr)")
    tp.add_argument("--no-validation", action="store_true",
                    help="train on a store without a validation split: best.safetensors is then the epoch with the "
                         "lowest mean training loss (otherwise such a store is refused)")
    tp.add_argument("--lr-plateau", type=pos, metavar="N",
                    help="halve the learning rate after N epochs without a better validation loss "
                         "(train.lr_plateau_patience; default: the preset's, else off)")
    tp.add_argument("--seed", type=nonneg, default=0, help="random seed (default 0)")
    tp.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="override a preset value, e.g. --set train.lr=1e-4 (repeatable; keys: the preset's YAML)")
    tp.add_argument("--ckpt-every", type=pos, default=200, help="save a resumable state every N steps (default 200)")
    tp.add_argument("--keep-epoch-states", action="store_true",
                    help="also keep every epoch's full training state as checkpoints/epoch-NNNN (~50 MB each for "
                         "NoteGAN once the step state it links to is pruned), so a new run can start from any epoch with --from-state")
    tp.add_argument("--from-state", type=Path, metavar="PATH",
                    help="start this new run from a saved training state: a run folder (its latest state) or one "
                         "of its checkpoints/step-N or epoch-N folders. Weights, optimizer moments, step, epoch and "
                         "random state carry over; the train section may differ (e.g. a learning-rate decay from a "
                         "chosen epoch), the model section may not. Only read when the run starts")
    tp.add_argument("--loader-workers", type=nonneg, default=0, help="DataLoader worker processes (default 0)")
    tp.add_argument("--devices", type=pos, default=1, help="processes (GPUs) per node for DDP (default 1)")
    tp.add_argument("--num-nodes", type=pos, default=1, help="nodes for multi-node DDP (default 1)")
    tp.add_argument("--node-rank", type=nonneg, default=0, help="this node's rank in multi-node DDP (default 0)")
    tp.add_argument("--strategy", choices=["auto", "ddp"], default="auto",
                    help="ddp: DistributedDataParallel (implied by --devices/--num-nodes > 1)")
    tp.add_argument("--accelerator", choices=["auto", "cpu", "cuda"], default="auto",
                    help="device kind (default auto: CUDA when available)")
    tp.add_argument("--master-addr", default="127.0.0.1", help="DDP rendezvous address (multi-node)")
    tp.add_argument("--master-port", type=cliargs.int_in(0, 65535), default=0,
                    help="DDP rendezvous port (default 0: a free port)")
    tp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _loop_settings(a: argparse.Namespace, train_cfg):
    """Engine settings: the preset's checked train section (a PerformTrainConfig or GanTrainConfig), then flags."""
    from pianoforge.training.config import loop_settings

    return loop_settings(train_cfg, max_epochs=a.max_epochs, batch_size=a.batch_size, max_minutes=a.max_minutes,
                         max_steps=a.max_steps, num_workers=a.loader_workers, seed=a.seed,
                         ckpt_every_steps=a.ckpt_every, devices=a.devices, num_nodes=a.num_nodes,
                         node_rank=a.node_rank, accelerator=a.accelerator, master_addr=a.master_addr,
                         master_port=a.master_port, progress=not a.quiet, no_validation=a.no_validation,
                         keep_epoch_states=a.keep_epoch_states,
                         from_state=None if a.from_state is None else str(a.from_state))


def _check_accelerator(a: argparse.Namespace) -> None:
    """--accelerator cuda on a machine without a CUDA GPU: one line, before anything is loaded."""
    if a.accelerator == "cuda":
        import torch

        if not torch.cuda.is_available():
            fatal("--accelerator cuda: torch sees no CUDA GPU here; use --accelerator cpu (or auto)")
        if a.devices > torch.cuda.device_count():
            fatal(f"--devices {a.devices}: only {torch.cuda.device_count()} CUDA GPU(s) here")
    if a.node_rank >= a.num_nodes:
        fatal(f"--node-rank {a.node_rank} must be below --num-nodes {a.num_nodes}")


def _train_overrides(a: argparse.Namespace) -> list[str]:
    """--set overrides plus those of the shortcut flags (--lr, --lr-plateau), recorded in the run's preset."""
    overrides = list(a.set)
    if a.lr is not None:
        overrides.append(f"train.lr={a.lr}")
    if a.lr_plateau is not None:
        overrides.append(f"train.lr_plateau_patience={a.lr_plateau}")
    return overrides


def cmd_train_perform(a: argparse.Namespace) -> int:
    from pianoforge.config import load_preset
    from pianoforge.training.config import check_perform_preset
    from pianoforge.training.perform import train_perform

    _check_accelerator(a)
    overrides = _train_overrides(a)
    if a.init_from is not None:
        overrides.append(f"train.init_from={Path(a.init_from).resolve()}")
    preset = load_preset(a.preset, overrides)
    settings = _loop_settings(a, check_perform_preset(preset))
    if a.strategy == "ddp" and a.devices * a.num_nodes < 2:
        print("note: --strategy ddp with one process runs without DDP", file=sys.stderr)
    summary = train_perform(a.data, preset, a.out, settings)
    if summary and summary.get("kind") == "sampler":
        if not summary.get("already_finished"):
            print(f"{a.out}: sampler fit complete; {summary['rounds']} rounds, training audio error "
                  f"{summary['train_error']:.5f}, validation {summary['valid_error']:.5f}, {summary['seconds']:.0f} s; "
                  f"checkpoint {a.out / 'best.safetensors'}")
    elif summary and not summary.get("already_finished"):
        best = summary["best"]
        print(f"{a.out}: {summary['stop_reason']}; {summary['epochs']} epochs, {summary['steps']} steps, "
              f"best {summary['monitor']}={best if best is None else round(best, 5)}, {summary['elapsed_s']:.0f} s; "
              f"checkpoint {a.out / 'best.safetensors'}")
    return 0


def cmd_train_gan(a: argparse.Namespace) -> int:
    from pianoforge.models.gan import load_gan_preset
    from pianoforge.training.config import gan_train_config
    from pianoforge.training.gan import train_gan

    _check_accelerator(a)
    preset = load_gan_preset(a.preset, _train_overrides(a))
    settings = _loop_settings(a, gan_train_config(preset))
    if a.strategy == "ddp" and a.devices * a.num_nodes < 2:
        print("note: --strategy ddp with one process runs without DDP", file=sys.stderr)
    summary = train_gan(a.data, preset, a.out, settings)
    if summary and not summary.get("already_finished"):
        print(f"{a.out}: {summary['stop_reason']}; {summary['epochs']} epochs, {summary['steps']} steps, "
              f"{summary['elapsed_s']:.0f} s; generator {a.out / 'best.safetensors'} (best {summary['monitor']}) and "
              f"{a.out / 'last.safetensors'}; samples {a.out / 'samples'}; health {a.out / 'monitor_log.csv'}")
    return 0
