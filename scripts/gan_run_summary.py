"""Summarise GAN training runs from their ``monitor_log.csv`` (issue 19: the swing and the last fifth of training).

``python scripts/gan_run_summary.py RUN [RUN ...]``

Per run: epochs, the collapse monitor's diversity ratio by epoch (EMA generator against real training clips;
1 = as diverse as the real clips, below ``train.collapse_threshold`` (0.25) = a collapse warning), the
minimum over the final fifth of the epochs and whether any monitor warning fell there, and, where logged, the
last epoch's strikes per clip (real / generated) and ADA probability."""
import csv
import math
import sys
from pathlib import Path


def summary(run: Path) -> str:
    rows = list(csv.DictReader((run / "monitor_log.csv").open()))
    if not rows:
        return f"{run}: no epochs logged"
    div = [float(r["diversity"]) for r in rows]
    n = len(rows)
    tail = rows[n - max(1, math.ceil(n / 5)):]
    warn = [f"epoch {r['epoch']}: {r['warning'].split(':')[0]}" for r in tail if r.get("warning")]
    last = rows[-1]
    extra = ""
    if last.get("mean_strikes_fake"):
        extra += f"; strikes/clip real {float(last['mean_strikes_real']):.1f}, generated {float(last['mean_strikes_fake']):.1f}"
    if last.get("mean_ada_p"):
        extra += f"; ADA p {float(last['mean_ada_p']):.2f}"
    return (f"{run}: {n} epochs; diversity by epoch {', '.join(f'{d:.2f}' for d in div)}; final fifth "
            f"(epochs {tail[0]['epoch']}-{tail[-1]['epoch']}) min {min(float(r['diversity']) for r in tail):.2f}, "
            f"{'warnings: ' + '; '.join(warn) if warn else 'no warning'}{extra}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        print(summary(Path(arg)))
