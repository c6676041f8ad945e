"""Runs every ```python block of docs/python.md, in order, in a scratch
directory, so the documentation cannot drift from the code."""

import os
import re
import unittest
from pathlib import Path

from util import CommyServer, SegmentTest

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
        server = None
        try:
            for i, code in enumerate(found):
                env = {"__name__": "__doc_example__"}
                if "commy.Session" in code:
                    # URL, CA_FILE and API_KEY: a real commy-server started for the examples
                    server = server or CommyServer()
                    env.update(URL=server.url, CA_FILE=server.ca_file, API_KEY=CommyServer.KEY)
                with self.subTest(block=i, first_line=code.splitlines()[0] if code else ""):
                    exec(compile(code, f"{DOC.name}[block {i}]", "exec"), env)
        finally:
            os.chdir(old)
            if server is not None:
                server.stop()
        self.assertIsNotNone(server, "docs/python.md should show sessions")


if __name__ == "__main__":
    unittest.main()
