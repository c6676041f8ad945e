#!/usr/bin/env python3
"""Generates docs/abi.md, the C ABI reference, from the public headers.

The headers are the documentation (STYLE.md): every function's comment says
what it does, who owns what, its errors and whether it blocks. This script
only rearranges them into one page, so the page cannot drift from them.

  scripts/gen-abi-doc.py                 write docs/abi.md
  scripts/gen-abi-doc.py --check OUTDIR  write OUTDIR/abi.md and fail (exit 1,
                                         with a diff) if docs/abi.md differs
  scripts/gen-abi-doc.py --symbols LIB   fail if a commy_* symbol exported by
                                         the shared library LIB is missing
                                         from docs/abi.md
  scripts/gen-abi-doc.py --examples      fail if a code block of docs/*.md
                                         tagged file=PATH[#region] differs
                                         from that file (or region of it)

Python standard library only.
"""
import difflib
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABI = os.path.join(ROOT, "abi")
DOC = os.path.join(ROOT, "docs", "abi.md")


class HeaderError(Exception):
    pass


def comment_text(raw):
    """The text of a /* ... */ comment, without the markers and the ' * ' gutter."""
    body = raw.strip()
    assert body.startswith("/*") and body.endswith("*/")
    body = body[2:-2]
    lines = body.split("\n")
    out = []
    for i, line in enumerate(lines):
        if i > 0:
            m = re.match(r"^\s*\*( ?)(.*)$", line)
            line = m.group(2) if m else line.strip()
        out.append(line.rstrip())
    while out and not out[0].strip():
        out.pop(0)
    while out and not out[-1].strip():
        out.pop()
    out[0] = out[0].strip()
    return out


def parse_header(path):
    """Returns (intro lines, declarations outside the functions, function groups).

    A function group is (comment lines or None, [prototypes]): a comment
    followed, with no blank line between, by one or more COMMY_API
    prototypes. A comment followed by a blank line is a note of its own,
    kept as a group without prototypes."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    m = re.match(r"\s*(/\*.*?\*/)", text, re.S)
    if not m:
        raise HeaderError(f"{path}: no leading comment describing the module")
    intro = comment_text(m.group(1))
    rest = text[m.end():]
    lines = rest.split("\n")

    decls = []      # lines outside COMMY_BEGIN_DECLS ... COMMY_END_DECLS
    groups = []
    in_decls = False
    pending = None  # comment lines waiting for their prototypes
    i = 0
    while i < len(lines):
        line = lines[i]
        s = line.strip()
        if s == "COMMY_BEGIN_DECLS":
            in_decls = True
            i += 1
            continue
        if s == "COMMY_END_DECLS":
            if pending:
                groups.append((pending, []))
            pending = None
            in_decls = False
            i += 1
            continue
        if not in_decls:
            decls.append(line)
            i += 1
            continue
        if not s:
            if pending:
                groups.append((pending, []))
                pending = None
            i += 1
            continue
        if s.startswith("/*"):
            if pending:
                groups.append((pending, []))
            j = i
            chunk = [lines[j]]
            while "*/" not in lines[j]:
                j += 1
                if j >= len(lines):
                    raise HeaderError(f"{path}: unterminated comment at line {i + 1}")
                chunk.append(lines[j])
            pending = comment_text("\n".join(chunk))
            i = j + 1
            continue
        if s.startswith("COMMY_API"):
            protos = []
            while i < len(lines) and lines[i].strip().startswith("COMMY_API"):
                j = i
                chunk = [lines[j].strip()]
                while not lines[j].rstrip().endswith(";"):
                    j += 1
                    if j >= len(lines):
                        raise HeaderError(f"{path}: unterminated prototype at line {i + 1}")
                    chunk.append(lines[j].strip())
                protos.append(" ".join(chunk)[len("COMMY_API "):])
                i = j + 1
            groups.append((pending, protos))
            pending = None
            continue
        raise HeaderError(f"{path}:{i + 1}: cannot parse inside COMMY_BEGIN_DECLS: {s!r}")

    # drop the include guard, the includes and the guard's #endif
    guard = None
    kept = []
    for line in decls:
        s = line.strip()
        g = re.match(r"#ifndef (COMMY_\w+_H)$", s)
        if g and guard is None:
            guard = g.group(1)
            continue
        if guard and s == f"#define {guard}":
            continue
        if s.startswith("#include"):
            continue
        kept.append(line.rstrip())
    while kept and kept[-1] == "":
        kept.pop()
    if kept and kept[-1].strip() == "#endif":
        kept.pop()
    out = []
    for line in kept:  # collapse runs of blank lines
        if line == "" and (not out or out[-1] == ""):
            continue
        out.append(line)
    while out and out[-1] == "":
        out.pop()
    return intro, out, groups


def func_name(proto):
    m = re.search(r"\(?\*?\s*(commy_\w+)\s*\(", proto)
    if not m:
        raise HeaderError(f"no function name in prototype {proto!r}")
    return m.group(1)


def md_escape(s):
    """Header prose in markdown: '<kind>' is not an HTML tag, '*out' not emphasis."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*")


LABEL = re.compile(r"^(Errors|Blocks|Returns|Threads|Ownership):\s*(.*)$")
PARAM = re.compile(r"^([a-z_][a-z0-9_]*):\s+(.*)$")


def render_comment(lines):
    """Markdown for a function comment: prose paragraphs joined, parameter
    lines ('out:  receives ...') as a list, 'Errors:' / 'Blocks:' in bold."""
    blocks = []  # (kind, text)
    for line in lines + [""]:
        s = md_escape(line.strip())
        if not s:
            blocks.append(("break", ""))
            continue
        m = LABEL.match(s)
        p = PARAM.match(s)
        if m:
            blocks.append(("label", f"**{m.group(1)}:** {m.group(2)}".rstrip()))
        elif p:
            blocks.append(("param", f"- `{p.group(1)}`: {p.group(2)}"))
        elif blocks and blocks[-1][0] in ("prose", "label", "param"):
            kind, t = blocks[-1]
            blocks[-1] = (kind, t + " " + s)
        else:
            blocks.append(("prose", s))
    out = []
    prev = "break"
    for kind, t in blocks:
        if kind == "break":
            prev = kind
            continue
        if out and not (kind == "param" and prev == "param"):
            out.append("")
        out.append(t)
        prev = kind
    return "\n".join(out)


def render_intro(lines):
    """Markdown for a module's leading comment; indented paragraphs stay preformatted."""
    paras, cur = [], []
    for line in lines + [""]:
        if line.strip():
            cur.append(line)
        elif cur:
            paras.append(cur)
            cur = []
    out = []
    for p in paras:
        if all(l.startswith("  ") for l in p):
            out.append("```text\n" + "\n".join(l[2:] if l.startswith("  ") else l for l in p) + "\n```")
        else:
            out.append(md_escape(" ".join(l.strip() for l in p)))
    return "\n\n".join(out)


def header_order():
    """The module headers in the order commy.h includes them."""
    with open(os.path.join(ABI, "commy.h"), encoding="utf-8") as f:
        names = re.findall(r'#include "commy/(\w+\.h)"', f.read())
    present = sorted(n for n in os.listdir(os.path.join(ABI, "commy")) if n.endswith(".h"))
    missing = [n for n in present if n not in names]
    if missing:
        raise HeaderError(f"abi/commy.h does not include {', '.join(missing)}")
    return names


def strerror_texts():
    """code name -> the text commy_strerror returns, read from core/error.c."""
    path = os.path.join(ROOT, "core", "error.c")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return dict(re.findall(r'case (COMMY_\w+):\s*return "([^"]*)";', text))


def error_table(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    rows = re.findall(r"^#define (COMMY_(?:OK|E\w+)) (-?\d+)[ \t]*(?:/\*\s*(.*?)\s*\*/)?[ \t]*$", text, re.M)
    texts = strerror_texts()
    out = ["| code | name | meaning | `commy_strerror` |", "| ---: | --- | --- | --- |"]
    for name, code, meaning in rows:
        if name not in texts:
            raise HeaderError(f"core/error.c: commy_strerror has no case for {name}")
        meaning = meaning or ("success" if name == "COMMY_OK" else "")
        out.append(f"| {code} | `{name}` | {meaning.replace('|', '&#124;')} | {texts[name]} |")
    return "\n".join(out), {r[0] for r in rows}


def generate():
    names = header_order()
    md = []
    md.append("# The commy C ABI reference")
    md.append("")
    md.append("<!-- Generated by scripts/gen-abi-doc.py from abi/commy.h, abi/commy/*.h and the\n"
              "     commy_strerror texts of core/error.c. Do not edit: change the header comments\n"
              "     and run `python3 scripts/gen-abi-doc.py`. CTest's abi_doc_current fails when\n"
              "     this file is stale. -->")
    md.append("")
    md.append("Every function exported by `libcommy` (`#include <commy.h>`, link with `-lcommy`),\n"
              "module by module, with the comment its header gives it: what it does, its\n"
              "parameters, who owns what, the errors it returns and whether it blocks. The C\n"
              "guide is [c.md](c.md); the session client is explained in [sessions.md](sessions.md).")
    md.append("")
    md.append("Conventions that hold everywhere (STYLE.md): a function that can fail returns\n"
              "`COMMY_OK` (0) or a negative `COMMY_E*` code and then `commy_error_last()` describes\n"
              "the failure; output parameters come first; a handle from `commy_x_open` is released\n"
              "with `commy_x_close`, which accepts NULL.")
    md.append("")
    md.append("## Modules")
    md.append("")
    sections = []
    all_funcs = []
    for n in names:
        path = os.path.join(ABI, "commy", n)
        intro, decls, groups = parse_header(path)
        module = n[:-2]
        md.append(f"- [{module}](#{module}) (`commy/{n}`)")
        sec = [f"## {module}", "", f"`#include <commy/{n}>` (included by `commy.h`)", "", render_intro(intro), ""]
        if n == "errors.h":
            table, codes = error_table(path)
            sec += ["### Error codes", "", table, ""]
            decls = [l for l in decls
                     if not re.match(r"#define COMMY_(OK|E\w+) ", l.strip())
                     and not l.strip().startswith("/* commy-server and commy_session")]
            while decls and decls[0] == "":
                decls.pop(0)
        if any(l.strip() for l in decls):
            title = "Macros" if n == "version.h" else "Types and constants"
            sec += [f"### {title}", "", "```c", *decls, "```", ""]
        fgroups = [g for g in groups if g[1]]
        if fgroups:
            sec += ["### Functions", ""]
        for comment, protos in groups:
            if not protos:
                sec += [render_comment(comment), ""]
                continue
            fnames = [func_name(p) for p in protos]
            all_funcs += fnames
            sec += ["#### " + ", ".join(f"`{f}`" for f in fnames), "", "```c", *protos, "```", ""]
            if comment:
                sec += [render_comment(comment), ""]
            else:
                sec += ["(No comment of its own: see the module's description above.)", ""]
        sections.append("\n".join(sec).rstrip() + "\n")
    dup = sorted({f for f in all_funcs if all_funcs.count(f) > 1})
    if dup:
        raise HeaderError(f"declared twice: {', '.join(dup)}")
    md.append("")
    md.append(f"{len(all_funcs)} functions in all.")
    md.append("")
    return "\n".join(md) + "\n" + "\n".join(sections)


def check(outdir):
    os.makedirs(outdir, exist_ok=True)
    fresh = generate()
    out = os.path.join(outdir, "abi.md")
    with open(out, "w", encoding="utf-8") as f:
        f.write(fresh)
    try:
        with open(DOC, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = ""
    if current == fresh:
        print("docs/abi.md is current")
        return 0
    diff = difflib.unified_diff(current.splitlines(True), fresh.splitlines(True),
                                "docs/abi.md (committed)", out + " (from the headers)")
    sys.stdout.writelines(diff)
    print("\ndocs/abi.md is stale: the headers changed. Run `python3 scripts/gen-abi-doc.py` and commit docs/abi.md.")
    return 1


def symbols(lib):
    nm = subprocess.run(["nm", "-D", "--defined-only", lib], capture_output=True, text=True)
    if nm.returncode != 0:
        print(f"nm -D {lib} failed: {nm.stderr.strip()}")
        return 1
    syms = sorted({f.split()[-1].split("@")[0] for f in nm.stdout.splitlines()
                   if f.split() and f.split()[-1].startswith("commy_")})
    if not syms:
        print(f"{lib} exports no commy_* symbol: wrong file?")
        return 1
    with open(DOC, encoding="utf-8") as f:
        documented = set(re.findall(r"^#### (.*)$", f.read(), re.M))
    documented = {n for line in documented for n in re.findall(r"`(commy_\w+)`", line)}
    missing = [s for s in syms if s not in documented]
    if missing:
        print("exported by %s but not documented in docs/abi.md: %s" % (lib, ", ".join(missing)))
        print("Declare them with a comment in a public header and regenerate docs/abi.md.")
        return 1
    print(f"all {len(syms)} commy_* symbols of {os.path.basename(lib)} are documented in docs/abi.md")
    return 0


def region(text, name, path):
    lines = text.split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() == f"/* [{name}] */"]
    ends = [i for i, l in enumerate(lines) if l.strip() == f"/* [/{name}] */"]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise HeaderError(f"{path}: region [{name}] must be marked once by /* [{name}] */ ... /* [/{name}] */")
    body = lines[starts[0] + 1:ends[0]]
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return "\n".join(l[indent:] for l in body) + "\n"


def examples():
    """Every fenced block tagged file=PATH or file=PATH#REGION equals its source."""
    docs = os.path.join(ROOT, "docs")
    bad = 0
    seen = 0
    for n in sorted(os.listdir(docs)):
        if not n.endswith(".md"):
            continue
        with open(os.path.join(docs, n), encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"^```(\w+) file=(\S+)\n(.*?)^```$", text, re.S | re.M):
            seen += 1
            ref, body = m.group(2), m.group(3)
            path, _, name = ref.partition("#")
            try:
                with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                    src = f.read()
                want = region(src, name, path) if name else src
            except (OSError, HeaderError) as e:
                print(f"docs/{n}: block file={ref}: {e}")
                bad += 1
                continue
            if body != want:
                bad += 1
                print(f"docs/{n}: the block tagged file={ref} differs from {ref}:")
                sys.stdout.writelines(difflib.unified_diff(body.splitlines(True), want.splitlines(True),
                                                           f"docs/{n}", ref))
    if bad:
        print(f"\n{bad} code block(s) out of sync: copy the example file into the markdown (or fix the file).")
        return 1
    if not seen:
        print("no code block tagged file=... found in docs/*.md")
        return 1
    print(f"{seen} tagged code blocks in docs/*.md match their example files")
    return 0


def main(argv):
    try:
        if len(argv) == 3 and argv[1] == "--check":
            return check(argv[2])
        if len(argv) == 3 and argv[1] == "--symbols":
            return symbols(argv[2])
        if len(argv) == 2 and argv[1] == "--examples":
            return examples()
        if len(argv) == 1:
            with open(DOC, "w", encoding="utf-8") as f:
                f.write(generate())
            print("wrote docs/abi.md")
            return 0
    except HeaderError as e:
        print(f"gen-abi-doc: {e}")
        return 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
