"""One hour at real time with a scripted fault schedule (rtclass.bench.soak): sender stalls of
0.05-3 s with catch-up, a sender restart, two bursts of 2,000 malformed frames, a subscriber that
never reads. Reports samples sent against processed and counted lost, malformed frames sent against
counted, restarts, RSS in the first and last window, spike -> labelled event latency per window
(all, and outside the 5 s after each fault), and the spike timeline against the ground truth
between every two faults.

    python benchmarks/soak.py [--duration 3600] [--window 300] [--out benchmarks/results/soak.json]
"""

import sys

from rtclass.bench.soak import main

if __name__ == "__main__":
    sys.exit(main())
