"""Print the spikes and counts of one cell type as rtclass publishes them.

python examples/subscribe.py [--address tcp://127.0.0.1:5560] [--cell-type PkC_ss]
"""

import argparse

from rtclass.client import Subscriber

ap = argparse.ArgumentParser()
ap.add_argument("--address", default="tcp://127.0.0.1:5560")
ap.add_argument("--cell-type", default="PkC_ss")
args = ap.parse_args()

with Subscriber(args.address, cell_types=[args.cell_type], counts=True, timeout_s=30) as sub:
    for batch in sub:
        print(
            f"{batch.size} {args.cell_type} spikes, units {sorted(set(batch['unit'].tolist()))}, "
            f"last counts {sub.counts_latest.get(args.cell_type, [])[-1:]}"
        )
