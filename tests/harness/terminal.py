"""What a terminal would act on, for the tests that check the CLI's escaping
(hb-cli/src/escape.rs, docs/cli.md "Escaping"). Read the output with
`procs.Proc(argv, raw=True)` (tests/system/procs.py): it splits lines at b"\\n" only, so
a CR or a U+2028 stays visible. `unsafe_chars` is the CLI's rule: Unicode general
category Other or Separator, except the ASCII space."""

import unicodedata

# Each of these must reach the terminal escaped; the test inputs are built from them.
NEWLINE_ESC_BIDI = "x\ny\x1b[2J\u202egnp.exe\r\u2028z\u200b\x9b"


def unsafe_chars(text):
    return [c for c in text if c != " " and unicodedata.category(c)[0] in "CZ"]
