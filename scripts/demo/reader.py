"""The Python side of the three-language demo: opens the C writer's segment
read-only and prints what is in it. Usage: reader.py PATH"""
import sys

import commy

with commy.Segment(sys.argv[1], readonly=True, create=False) as seg:
    visits = seg.box("visits", open="existing")
    prices = seg.map("prices", open="existing")
    scores = seg.ordered_map("scores", open="existing")
    log = seg.deque("log", open="existing")
    print(f"Python reader: visits={visits.value}, "
          f"prices={{{', '.join(f'{k}: {v}' for k, v in sorted(prices.items()))}}}")
    print(f"Python reader: scores in order: {list(scores.items())}; log: {list(log)}")
