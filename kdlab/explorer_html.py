"""The explorer as one HTML file: `python -m kdlab explorer-html OUT.html`.

A page that opens anywhere (a course website, an e-mail attachment, a laptop without Python) with the real
teacher's and baseline student's logits for the test images it shows and the trained grid, every panel
computed and drawn by the same JavaScript as the Voilà page (explorer_static/explorer.js). Its address is
the view's permalink, read and written with the same `T`, `alpha`, `example` and `hide` as Voilà's. Only
"Train now" needs a kernel, and the page says where to find one. Everything is inside the file, so it opens
from file:// with the network off.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path

from kdlab.canvas import STATIC
from kdlab.checkpoints import write_text_atomically
from kdlab.explorer_data import ExplorerData, load_explorer_data
from kdlab.widgets import page_payload

__all__ = ["TRAIN_ELSEWHERE", "explorer_html", "run"]

TRAIN_ELSEWHERE = ("Train now needs a running Python kernel: open notebooks/00_explorer.ipynb in JupyterLab, or "
                   "serve it with `voila notebooks/00_explorer.ipynb`.")

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kdlab: the distillation explorer</title>
<link rel="icon" href="data:,">
<style>
body { margin: 8px; font: 14px sans-serif; }
h1 { font-size: 18px; margin: 0 0 4px; }
.kdlab-intro { margin: 0 0 8px; max-width: 60em; }
@@CSS@@</style>
</head>
<body>
<h1>The distillation explorer</h1>
<p class="kdlab-intro">L = α·T²·KL(softmax(z<sub>t</sub>/T) ‖ softmax(z<sub>s</sub>/T))
+ (1−α)·CE(y, softmax(z<sub>s</sub>)). Move T, α and the test image (drag, arrow keys, or type a number
and press Enter): this page computes every panel itself, from the teacher's and the baseline student's
logits on @@COUNT@@ @@DATASET@@ test images. Its address is a link to what it shows.</p>
<div id="kdlab-explorer"></div>
<script type="application/json" id="kdlab-data">@@DATA@@</script>
<script type="module">
@@SCRIPT@@
mountStandalone(document.getElementById("kdlab-explorer"),
                JSON.parse(document.getElementById("kdlab-data").textContent));
</script>
</body>
</html>
"""


def explorer_html(data: ExplorerData, examples: int | None = None) -> str:
    """The page: `data`'s first `examples` test images (all by default), its grid and the explorer's code."""
    payload = page_payload(data, examples, train=TRAIN_ELSEWHERE)
    text = json.dumps(payload, separators=(",", ":")).replace("<", "\\u003c")  # no "</script>" can end it early
    filled = {"CSS": (STATIC / "explorer.css").read_text(encoding="utf-8"), "DATA": text,
              "COUNT": str(len(payload["examples"]["labels"])), "DATASET": html.escape(data.test.name),
              "SCRIPT": (STATIC / "explorer.js").read_text(encoding="utf-8")}
    return re.sub("@@([A-Z]+)@@", lambda marker: filled[marker[1]], _PAGE)  # one pass: no value is read as a marker


def run(arguments, device) -> int:
    """The `explorer-html` command: load (or train and cache) what the explorer shows, and write the page."""
    output = Path(arguments.output)
    if output.is_dir() or not output.parent.is_dir():  # said before any training, not after
        raise ValueError(f"{output} is a folder; give a file name such as {output / 'explorer.html'}"
                         if output.is_dir() else f"{output.parent} is not a folder; create it first")
    data = load_explorer_data(arguments.dataset, arguments.data_root, device=device, offline=arguments.offline,
                              progress=sys.stderr.isatty())
    page = explorer_html(data, arguments.examples)
    path = write_text_atomically(arguments.output, page)
    print(f"wrote {path} ({len(page.encode()) / 1e6:.2f} MB): open it in a browser, no server or network needed")
    return 0
