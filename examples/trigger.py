"""Closed-loop trigger: on every spike of one cell type, emit a trigger (an LSL marker and a ZMQ
message) and measure the latency from the spike's source time to the trigger.

    python examples/trigger.py [--cell-type PkC_cs] [--address tcp://127.0.0.1:5560] [--count N]

The latency is ``pylsl.local_clock() - t_source`` at the moment the trigger is sent: meaningful
when the source's clock is this machine's LSL clock (an LSL stream from this machine, e.g.
`rtclass demo` or `rtclass replay --to lsl:...`). It covers the stream transport, rtclass's
processing (detection look-ahead, match window, chunking) and the spike transport to this process.
"""

import argparse
import json

import numpy as np
import pylsl
import zmq

from rtclass.client import Subscriber

ap = argparse.ArgumentParser()
ap.add_argument("--address", default="tcp://127.0.0.1:5560", help="rtclass's spike publisher")
ap.add_argument("--cell-type", default="PkC_cs")
ap.add_argument("--trigger-address", default="tcp://127.0.0.1:5580", help="where triggers are published")
ap.add_argument("--count", type=int, default=0, help="stop after this many triggers (0: run until Ctrl-C)")
args = ap.parse_args()

marker = pylsl.StreamOutlet(pylsl.StreamInfo("rtclass-trigger", "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string))
pub = zmq.Context.instance().socket(zmq.PUB)
pub.bind(args.trigger_address)
latencies = []
try:
    with Subscriber(args.address, cell_types=[args.cell_type], timeout_s=60) as sub:
        for batch in sub:
            for spike in batch:
                now = pylsl.local_clock()
                marker.push_sample([f"{args.cell_type} unit {spike['unit']}"], spike["t_source"])
                pub.send_multipart(
                    [b"trigger", json.dumps({"unit": int(spike["unit"]), "sample": int(spike["sample"])}).encode()]
                )
                latencies.append((now - spike["t_source"]) * 1000)
            if args.count and len(latencies) >= args.count:
                break
except KeyboardInterrupt:
    pass
if latencies:
    lat = np.array(latencies)
    print(
        f"{lat.size} triggers on {args.cell_type}; spike -> trigger latency: p50 {np.percentile(lat, 50):.2f} ms, "
        f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.2f} ms"
    )
