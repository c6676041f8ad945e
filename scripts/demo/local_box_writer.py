"""A local client written with the commy Python package: maps a service file
and sets an i64 box to each value given, 20 ms apart (what
server/tests/local_writer does in C). Usage: local_box_writer.py PATH VAR VALUE..."""
import sys
import time

import commy

with commy.Segment(sys.argv[1], create=False) as seg:
    box = seg.box(sys.argv[2], open="existing")
    for v in sys.argv[3:]:
        box.value = int(v)
        time.sleep(0.02)
