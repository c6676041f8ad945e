"""Runs every ```python block of docs/python.md, in order, in a scratch
directory, so the documentation cannot drift from the code."""

import os
import re
import unittest
from pathlib import Path

from util import SegmentTest

DOC = Path(os.environ.get("COMMY_DOCS", Path(__file__).resolve().parents[2] / "docs" / "python.md"))


def blocks():
    text = DOC.read_text(encoding="utf-8")
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


class TestDocs(SegmentTest):
    def test_every_example_runs(self):
        if not DOC.exists():
            self.fail(f"{DOC} is missing")
        found = blocks()
        self.assertGreaterEqual(len(found), 5, "docs/python.md should show every type")
        old = os.getcwd()
        os.chdir(self.dir)
        try:
            for i, code in enumerate(found):
                with self.subTest(block=i, first_line=code.splitlines()[0] if code else ""):
                    exec(compile(code, f"{DOC.name}[block {i}]", "exec"), {"__name__": "__doc_example__"})
        finally:
            os.chdir(old)


if __name__ == "__main__":
    unittest.main()
